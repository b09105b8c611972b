#!/usr/bin/python3
"""bench/report.py — turns the benchmark CSVs into summary.md and plots.

    /usr/bin/python3 bench/report.py [--c c.csv] [--py py.csv] [--section FILE.md ...]
                                     [--out .]

Reads hg_bench's CSV (JIT, interpreter, gcc loop, OpenBLAS as packaged and with
OPENBLAS_CORETYPE=SkylakeX, compile costs) and, if present, bench.py's (hologram_ffi vs
NumPy).  Writes summary.md: speed-up tables (time of the other path / time of the JIT, so
> 1 means the JIT is faster), contraction throughput, per-call overhead, compile costs, and
the issue's speed targets with the measured ratio and met/missed; the markdown sections
given with --section (fusion.py's: evaluate() vs per-op calls, NumPy, numexpr, numba;
tensors.py's: N-d compute vs NumPy), those present, as they are;
and PNGs (log-log time vs size per op beside the JIT's speed-up vs size over NumPy, the
interpreter and the gcc loop, GFLOP/s vs size for gemm/matvec, compile cost per op).
"""
import argparse
import csv
import math
import os
import statistics
import sys
from collections import defaultdict

MI = 1 << 20
MAPS = ["vector_add_f32", "vector_sub_f32", "vector_mul_f32", "vector_div_f32",
        "vector_min_f32", "vector_max_f32", "vector_abs_f32", "vector_neg_f32",
        "vector_relu_f32", "vector_clip_f32", "scalar_add_f32", "scalar_mul_f32"]
TRANSCENDENTAL = ["sigmoid_f32", "tanh_f32", "gelu_f32", "softmax_f32"]
REDUCTIONS = ["reduce_sum_f32", "reduce_min_f32", "reduce_max_f32"]
LOSSES = ["mse_loss_f32", "cross_entropy_loss_f32", "binary_cross_entropy_loss_f32"]
JIT_VS_INTERP = ["sigmoid_f32", "gelu_f32", "softmax_f32"] + LOSSES


class Results:
    """best_ns by (op, size label, impl), over both CSVs; Python rows get a "py:" impl
    prefix (py:numpy, py:hg_jit, py:hg_interp)."""

    def __init__(self):
        self.best, self.median, self.rows, self.info = {}, {}, [], {}
        self.ops, self.sizes = [], defaultdict(list)

    def load(self, path, prefix):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["kind"] == "info":
                    self.info[prefix + row["op"]] = row["note"]
                    continue
                impl = prefix + row["impl"]
                row["impl"] = impl
                self.rows.append(row)
                best = float(row["best_ns"] or 0)
                if best <= 0:
                    continue
                key = (row["op"], row["size"], impl)
                self.best[key] = best
                self.median[key] = float(row["median_ns"] or 0)
                if row["kind"] in ("elem", "gemm", "matvec"):
                    if row["op"] not in self.ops:
                        self.ops.append(row["op"])
                    if row["size"] not in self.sizes[row["op"]]:
                        self.sizes[row["op"]].append(row["size"])

    def get(self, op, size, impl):
        return self.best.get((op, str(size), impl))

    def ratio(self, op, size, other, base="jit"):
        """time(other) / time(base): > 1 when base is faster; None if either is missing."""
        a, b = self.get(op, size, other), self.get(op, size, base)
        return a / b if a and b else None

    def elem_sizes(self):
        sizes = {int(s) for (op, s, _) in self.best if s.isdigit()}
        return sorted(sizes)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo ("unknown" without it)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def fmt_ns(ns):
    if ns is None:
        return "–"
    for unit, scale in (("ns", 1), ("µs", 1e3), ("ms", 1e6)):
        if ns < 1e3 * scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns / 1e9:.3g} s"


def fmt_x(r):
    return "–" if r is None else f"{r:.2f}×"


def size_label(n):
    n = int(n)
    if n >= MI and n % MI == 0:
        return f"{n // MI} Mi"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} Ki"
    return str(n)


def spread(ts):
    """The interquartile range of sample times ts over their median."""
    q = statistics.quantiles(ts, n=4) if len(ts) >= 4 else [min(ts), 0, max(ts)]
    return (q[2] - q[0]) / statistics.median(ts)


def emit(md, md_path):
    """Prints markdown section md and writes it to md_path (when not None)."""
    print(md)
    if md_path:
        with open(md_path, "w") as f:
            f.write(md)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def worst(res, ops, size, other, base, minimum):
    """(smallest ratio over ops, text listing the ops below `minimum`) or (None, '')."""
    ratios = {op: res.ratio(op, size, other, base) for op in ops}
    ratios = {op: r for op, r in ratios.items() if r is not None}
    if not ratios:
        return None, ""
    low = [f"{op.replace('_f32', '')} {r:.2f}×" for op, r in ratios.items() if r < minimum]
    return min(ratios.values()), ", ".join(low)


def section_speedups(res, ops, sizes, other, base, title, note):
    header = ["op"] + [size_label(s) for s in sizes]
    rows = [[op] + [fmt_x(res.ratio(op, s, other, base)) for s in sizes] for op in ops]
    return f"### {title}\n\n{note}\n\n" + table(header, rows) + "\n"


def section_times(res, ops, size):
    impls = [("jit", "JIT"), ("interp", "interp"), ("gcc", "gcc -O3 loop"),
             ("py:numpy", "NumPy"), ("py:hg_jit", "hologram_ffi (JIT)")]
    impls = [(k, t) for k, t in impls if any(res.get(op, size, k) for op in ops)]
    header = ["op"] + [t for _, t in impls] + ["JIT vs interp", "JIT vs gcc", "JIT vs NumPy"]
    rows = []
    for op in ops:
        rows.append([op] + [fmt_ns(res.get(op, size, k)) for k, _ in impls] + [
            fmt_x(res.ratio(op, size, "interp")), fmt_x(res.ratio(op, size, "gcc")),
            fmt_x(res.ratio(op, size, "py:numpy", "py:hg_jit"))])
    return (f"### Best time per call at n = {size_label(size)}\n\n" + table(header, rows) +
            "\n")


def section_contractions(res, core, skx_core):
    impls = [("jit", "JIT"), ("interp", "interp"), ("gcc", "gcc loop"),
             ("openblas", f"OpenBLAS ({core})"), ("openblas_skylakex", f"OpenBLAS ({skx_core})"),
             ("py:numpy", "NumPy matmul")]
    out = ""
    for op in ("gemm_f32", "matvec_f32"):
        sizes = res.sizes.get(op, [])
        if not sizes:
            continue
        present = [(k, t) for k, t in impls if any(res.get(op, s, k) for s in sizes)]
        header = ["shape"] + [f"{t} GFLOP/s" for _, t in present] + [
            "JIT vs OpenBLAS", "JIT vs OpenBLAS SkylakeX"]
        rows = []
        for s in sizes:
            dims = [int(d) for d in s.split("x")]
            flops = 2 * math.prod(dims)
            cells = []
            for k, _ in present:
                t = res.get(op, s, k)
                cells.append(f"{flops / t:.1f}" if t else "–")
            rows.append([s] + cells + [fmt_x(res.ratio(op, s, "openblas")),
                                       fmt_x(res.ratio(op, s, "openblas_skylakex"))])
        out += f"### {op}\n\n" + table(header, rows) + "\n"
    return out


def compile_stats(res, impl):
    vals = [float(r["median_ns"]) for r in res.rows
            if r["kind"] == "compile" and r["impl"] == impl and float(r["median_ns"] or 0) > 0]
    return statistics.median(vals) if vals else None


def section_compile(res):
    rows = []
    for impl, what in (("cold_compile", "cold compile, per kernel (LLVM: lowering + O3 + "
                                        "codegen)"),
                       ("cold_call", "first call with a cold cache (wall)"),
                       ("disk_load", "load from the disk cache, per kernel"),
                       ("disk_call", "first call served from the disk cache (wall)")):
        rows.append([what, fmt_ns(compile_stats(res, impl))])
    hit = res.get("vector_add_f32", 16, "jit")
    rows.append(["cache hit: vector_add n = 16, whole C call", fmt_ns(hit)])
    return "### Compile costs (median over ops; n = 1024, gemm/matvec 64)\n\n" + table(
        ["what", "median"], rows) + "\n"


def targets(res, size):
    """Rows (target, measured, met/missed, limiting ops)."""
    rows = []

    def add(name, value, ok, text, detail=""):
        verdict = "–" if value is None else ("met" if ok else "**missed**")
        rows.append([name, text if value is not None else "not measured", verdict, detail])

    r, low = worst(res, MAPS, size, "py:numpy", "py:hg_jit", 1.0)
    add(f"elementwise maps at {size_label(size)} ≥ 1.0× NumPy (min over 12)", r,
        r is not None and r >= 1.0, fmt_x(r), low)
    r, low = worst(res, MAPS, size, "gcc", "jit", 0.9)
    add(f"elementwise maps at {size_label(size)} ≥ 0.9× gcc loop (min over 12)", r,
        r is not None and r >= 0.9, fmt_x(r), low)
    r, low = worst(res, TRANSCENDENTAL, size, "py:numpy", "py:hg_jit", 3.0)
    add(f"sigmoid/tanh/gelu/softmax at {size_label(size)} ≥ 3× NumPy (min)", r,
        r is not None and r >= 3.0, fmt_x(r), low)
    r, low = worst(res, REDUCTIONS + LOSSES, size, "py:numpy", "py:hg_jit", 3.0)
    add(f"sum/min/max and losses at {size_label(size)} ≥ 3× NumPy (min)", r,
        r is not None and r >= 3.0, fmt_x(r), low)
    r, low = worst(res, JIT_VS_INTERP, size, "interp", "jit", 2.0)
    add(f"JIT ≥ 2× interpreter: sigmoid, gelu, softmax, losses at {size_label(size)} (min)",
        r, r is not None and r >= 2.0, fmt_x(r), low)
    big = "1024x1024x1024"
    r = res.ratio("gemm_f32", big, "openblas")
    skx = res.ratio("gemm_f32", big, "openblas_skylakex")
    add("gemm 1024³ ≥ 1.0× OpenBLAS as packaged", r, r is not None and r >= 1.0, fmt_x(r),
        f"vs SkylakeX: {fmt_x(skx)}")
    small = [s for s in ("16x16x16", "32x32x32", "64x64x64")
             if res.ratio("gemm_f32", s, "openblas")]
    if small:
        ratios = {s: res.ratio("gemm_f32", s, "openblas") for s in small}
        r = min(ratios.values())
        low = ", ".join(f"{s} {v:.2f}×" for s, v in ratios.items() if v < 1.5)
    else:
        r, low = None, ""
    add("gemm 16³–64³ ≥ 1.5× OpenBLAS as packaged (min)", r, r is not None and r >= 1.5,
        fmt_x(r), low)
    hit = res.get("vector_add_f32", 16, "jit")
    add("C cache-hit call at n = 16 ≤ 100 ns", hit, hit is not None and hit <= 100,
        fmt_ns(hit))
    py, npy = res.get("vector_add_f32", 16, "py:hg_jit"), res.get("vector_add_f32", 16,
                                                                  "py:numpy")
    r = npy / py if py and npy else None
    add("Python vector_add_f32 n = 16 faster than numpy.add(out=)", r,
        r is not None and r > 1.0, f"{fmt_ns(py)} vs {fmt_ns(npy)} ({fmt_x(r)})")
    c = compile_stats(res, "cold_compile")
    add("cold compile ≤ 10 ms median per kernel", c, c is not None and c <= 10e6, fmt_ns(c),
        f"first call {fmt_ns(compile_stats(res, 'cold_call'))}")
    d = compile_stats(res, "disk_load")
    add("disk-cache load ≤ 0.5 ms", d, d is not None and d <= 0.5e6, fmt_ns(d),
        f"first call {fmt_ns(compile_stats(res, 'disk_call'))}")
    return rows


def checks(res):
    """Rows whose result check did not pass (hologram paths must be 'ok')."""
    bad = []
    for r in res.rows:
        chk = r.get("check") or "-"
        if chk not in ("ok", "-") or (r.get("note") or "").strip():
            bad.append([r["op"], r["size"], r["impl"], chk, r.get("note") or ""])
    return bad


# The speed-up curves: (label, color, style, numerator impl, denominator impl); > 1 means
# the denominator (hologram's JIT) is faster.
SPEEDUPS = [("NumPy / hologram_ffi JIT (Python)", "C3", "-D", "py:numpy", "py:hg_jit"),
            ("interpreter / JIT (C)", "C1", "-s", "interp", "jit"),
            ("gcc -O3 loop / JIT (C)", "C2", "-^", "gcc", "jit")]


def figure_legend(fig, axes):
    """One legend for the figure: each label of its panels once, in order of appearance."""
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower right", ncol=1, fontsize=10)


def speedup_plot(plt, res, ops, cols, rows, out_dir):
    """speedups.png: per op, the SPEEDUPS ratios against n (the same grid as
    elementwise.png, so the two read side by side); False when no ratio is there."""
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False)
    drawn = False
    for ax, op in zip(axes.flat, ops):
        for label, color, style, num, den in SPEEDUPS:
            pts = sorted((int(s), res.ratio(op, s, num, den)) for s in res.sizes[op]
                         if res.ratio(op, s, num, den))
            if pts:
                ax.semilogx(*zip(*pts), style, color=color, label=label, ms=3, lw=1.2)
                drawn = True
        ax.axhline(1, color="0.4", lw=0.8, ls="--")
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:g}×"))
        ax.set_title(op.replace("_f32", ""), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    figure_legend(fig, axes)
    fig.suptitle("speed-up of hologram's JIT vs n (other path's time / the JIT's): above the "
                 "dashed 1× line the JIT is faster; log2 scale", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    if drawn:
        fig.savefig(os.path.join(out_dir, "speedups.png"), dpi=80)
    plt.close(fig)
    return drawn


def plot(res, out_dir):
    """Writes elementwise.png (times), speedups.png (ratios), contractions.png and
    compile.png; returns their names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"jit": ("JIT", "C0", "-o"), "interp": ("interpreter", "C1", "-s"),
              "gcc": ("gcc -O3 loop", "C2", "-^"), "py:numpy": ("NumPy (from Python)", "C3", "-D"),
              "py:hg_jit": ("hologram_ffi JIT", "C4", "--o"),
              "openblas": ("OpenBLAS packaged", "C5", "-v"),
              "openblas_skylakex": ("OpenBLAS SkylakeX", "C6", "-<")}
    written = []
    elem_ops = [op for op in res.ops if op not in ("gemm_f32", "matvec_f32")]
    if elem_ops:
        cols = 6
        rows = math.ceil(len(elem_ops) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False)
        for ax, op in zip(axes.flat, elem_ops):
            for impl, (label, color, style) in styles.items():
                pts = sorted((int(s), res.get(op, s, impl)) for s in res.sizes[op]
                             if res.get(op, s, impl))
                if pts:
                    ax.loglog(*zip(*pts), style, color=color, label=label, ms=3, lw=1.2)
            ax.set_title(op.replace("_f32", ""), fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(elem_ops):]:
            ax.axis("off")
        figure_legend(fig, axes)
        fig.suptitle("best time per call (ns) vs n — lower is better; log-log", fontsize=13)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        fig.savefig(os.path.join(out_dir, "elementwise.png"), dpi=80)
        plt.close(fig)
        written.append("elementwise.png")
        if speedup_plot(plt, res, elem_ops, cols, rows, out_dir):
            written.append("speedups.png")
    con = [op for op in ("gemm_f32", "matvec_f32") if res.sizes.get(op)]
    if con:
        fig, axes = plt.subplots(1, len(con), figsize=(7 * len(con), 4.5), squeeze=False)
        for ax, op in zip(axes.flat, con):
            squares = [s for s in res.sizes[op] if len(set(s.split("x"))) == 1
                       and int(s.split("x")[0]) & (int(s.split("x")[0]) - 1) == 0]
            for impl, (label, color, style) in styles.items():
                pts = []
                for s in squares:
                    t = res.get(op, s, impl)
                    if t:
                        dims = [int(d) for d in s.split("x")]
                        pts.append((dims[0], 2 * math.prod(dims) / t))
                if pts:
                    ax.semilogx(*zip(*sorted(pts)), style, color=color, label=label, ms=4,
                                base=2)
            ax.set_title(f"{op}: square power-of-two sizes (N)", fontsize=11)
            ax.set_xlabel("N")
            ax.set_ylabel("GFLOP/s (higher is better)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "contractions.png"), dpi=80)
        plt.close(fig)
        written.append("contractions.png")
    comp = defaultdict(dict)
    for r in res.rows:
        if r["kind"] == "compile" and float(r["median_ns"] or 0) > 0:
            comp[r["impl"]][r["op"]] = float(r["median_ns"]) / 1e6
    if comp.get("cold_compile"):
        ops = list(comp["cold_compile"])
        fig, ax = plt.subplots(figsize=(11, 4.5))
        width = 0.4
        xs = range(len(ops))
        ax.bar([x - width / 2 for x in xs], [comp["cold_compile"][o] for o in ops], width,
               label="cold compile per kernel")
        if comp.get("disk_load"):
            ax.bar([x + width / 2 for x in xs], [comp["disk_load"].get(o, 0) for o in ops],
                   width, label="disk-cache load per kernel")
        ax.axhline(10, color="C3", lw=1, ls="--", label="10 ms target (compile)")
        ax.axhline(0.5, color="C2", lw=1, ls=":", label="0.5 ms target (disk load)")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([o.replace("_f32", "") for o in ops], rotation=60, ha="right",
                           fontsize=8)
        ax.set_yscale("log")
        top = max(max(comp["cold_compile"].values()), 10)
        ax.set_ylim(top=top * 30)  # room for the legend above the bars
        ax.set_ylabel("ms (median, log scale)")
        ax.set_title("JIT compile and disk-cache load cost per op")
        ax.legend(fontsize=8, loc="upper left", ncol=4)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "compile.png"), dpi=80)
        plt.close(fig)
        written.append("compile.png")
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--c", default="c.csv")
    ap.add_argument("--py", default="py.csv")
    ap.add_argument("--section", action="append", default=[],
                    help="a markdown section to include (fusion.py's, tensors.py's)")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    res = Results()
    if not os.path.exists(args.c):
        sys.exit(f"report.py: {args.c} not found (run hg_bench first)")
    res.load(args.c, "")
    if os.path.exists(args.py):
        res.load(args.py, "py:")
    else:
        print(f"report.py: {args.py} not found: no NumPy comparison", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    sizes = res.elem_sizes()
    size = MI if MI in sizes else (max(sizes) if sizes else MI)
    core = res.info.get("openblas_core", "?")
    skx = res.info.get("openblas_core_skylakex", "SkylakeX")
    elem_ops = [op for op in res.ops if op not in ("gemm_f32", "matvec_f32")]
    pngs = plot(res, args.out)

    md = ["# hologram benchmark summary\n"]
    md.append(
        f"hologram {res.info.get('hologram_version', '?')}; JIT {res.info.get('jit', '?')}; "
        f"reference loops: {res.info.get('compiler', '?')}; OpenBLAS as packaged runs core "
        f"**{core}**, with OPENBLAS_CORETYPE=SkylakeX core **{skx}**; "
        f"{res.info.get('threads', '')}; NumPy {res.info.get('py:numpy_version', '–')} "
        f"({res.info.get('py:numpy_blas', '')}; {res.info.get('py:environment', '')}).\n")
    md.append("Times are the best of N interleaved samples (medians are in the CSVs). "
              "A ratio is the other path's time divided by the JIT's: **> 1 means the JIT "
              "is faster**. The gcc loop is plain C (`expf`/`logf`/`tanhf` from libm, float "
              "accumulators) built with `-O3 -march=native` under `-std=c11` (no FMA "
              "contraction, no reassociation): the compiler's best static effort. NumPy runs "
              "with preallocated `out=` arrays; the NumPy ratios compare hologram_ffi (JIT) "
              "and NumPy in the same Python process.\n")
    if size != MI:
        md.append(f"_No 1 Mi run in these CSVs: the targets use n = {size_label(size)}._\n")
    md.append("## Targets\n")
    md.append(table(["target", "measured", "verdict", "below target / detail"],
                    targets(res, size)))
    md.append("\n## Elementwise, reductions, activations, losses\n")
    md.append(section_times(res, elem_ops, size))
    md.append(section_speedups(res, elem_ops, sizes, "interp", "jit", "JIT vs interpreter",
                               "time(interp) / time(JIT), C harness."))
    md.append(section_speedups(res, elem_ops, sizes, "gcc", "jit", "JIT vs gcc -O3 loop",
                               "time(gcc loop) / time(JIT), C harness."))
    if any(k[2] == "py:numpy" for k in res.best):
        md.append(section_speedups(res, elem_ops, sizes, "py:numpy", "py:hg_jit",
                                   "JIT vs NumPy (Python)",
                                   "time(NumPy) / time(hologram_ffi JIT call), one process; "
                                   "at n = 16 this is per-call overhead."))
    md.append("## gemm and matvec\n")
    md.append(section_contractions(res, core, skx))
    md.append("## Overheads\n")
    md.append(section_compile(res))
    py16 = res.get("vector_add_f32", 16, "py:hg_jit")
    np16 = res.get("vector_add_f32", 16, "py:numpy")
    md.append(table(["per call, vector_add n = 16", "time"],
                    [["C: hg_vector_add_f32 (JIT, cache hit)",
                      fmt_ns(res.get("vector_add_f32", 16, "jit"))],
                     ["C: hg_vector_add_f32 (interpreter)",
                      fmt_ns(res.get("vector_add_f32", 16, "interp"))],
                     ["C: gcc loop (no API call)", fmt_ns(res.get("vector_add_f32", 16, "gcc"))],
                     ["Python: hologram_ffi.vector_add_f32 (JIT)", fmt_ns(py16)],
                     ["Python: numpy.add(a, b, out=c)", fmt_ns(np16)]]) + "\n")
    for section in args.section:
        if os.path.exists(section):
            with open(section) as f:
                md.append(f.read())
        else:
            print(f"report.py: {section} not found: that section is left out", file=sys.stderr)
    bad = checks(res)
    md.append("## Result checks and notes\n")
    if bad:
        md.append("Rows whose result check was not `ok` or that carry a note (hologram paths "
                  "must be within the API's tolerance of a double-precision loop; `loose` on "
                  "gcc/OpenBLAS rows is informational, e.g. a sequential float sum):\n\n")
        md.append(table(["op", "size", "impl", "check", "note"], bad))
    else:
        md.append("Every path's result matched the double-precision reference within the "
                  "API's tolerance.\n")
    if pngs:
        md.append("\n## Plots\n")
        if "elementwise.png" in pngs and "speedups.png" in pngs:   # side by side
            md.append("| time per call | speed-up of the JIT |\n|---|---|\n"
                      "| ![elementwise.png](elementwise.png) | ![speedups.png](speedups.png) |\n")
        md.extend(f"![{p}]({p})\n" for p in pngs if p not in ("elementwise.png", "speedups.png")
                  or "speedups.png" not in pngs)
    path = os.path.join(args.out, "summary.md")
    with open(path, "w") as f:
        f.write("\n".join(md))
    print(f"report.py: wrote {path}" + (f" and {', '.join(pngs)}" if pngs else ""))


if __name__ == "__main__":
    main()
