#!/usr/bin/python3
"""bench/fusion.py — formulas fused into one kernel by hologram_ffi.evaluate(), against the
same formula as hologram per-op calls, a NumPy chain, numexpr and a numba loop.

    PYTHONPATH=<build>/python /usr/bin/python3 bench/fusion.py [--quick] [--csv FILE]
        [--md FILE]

Six formulas (2*a+3*b, a*b+c, sigmoid(a*w+b) with w = 0.5 a scalar parameter,
tanh(a)*b+c, sum((a-b)**2), where(a>0, a, 0.1*a)) at n = 1 Mi, 16 Ki and 16 (the per-call
overhead; --quick: 16 Ki only, few rounds), float32, one process, one thread
(HOLOGRAM_THREADS, OPENBLAS_NUM_THREADS set before NumPy and hologram_ffi load;
numexpr.set_num_threads(1); numba without parallel or fastmath).  Each path at its best
plain effort, with no allocation in the timed loop:

    evaluate   hologram_ffi.evaluate(text, d, out=o) (a reduction returns a float)
    hg_ops     the seed's flat ops on hologram buffers (data uploaded once), e.g.
               scalar_mul_f32, scalar_mul_f32, vector_add_f32 for 2*a+3*b
    numpy      ufuncs with out= into preallocated temporaries; where(a>0, a, 0.1*a) as
               maximum(a, 0.1*a) like hg_ops (the same function: copyto(where=) is 10x slower)
    numexpr    numexpr.evaluate(text, d, out=o); sigmoid spelled 1/(1+exp(-x)); w and 0.1
               passed as float32 scalars (a Python float makes numexpr compute in float64
               and refuse a float32 out= under its default casting='safe')
    numba      an @njit loop writing a preallocated out, float32 constants (the same
               float32 tree); the sum accumulates in float64 (s = 0.0), as usually written

numexpr and numba are optional (Debian's python3-numexpr, python3-numba): a missing one is
skipped with a message.  Memory is pre-touched.  Paths are timed round-robin (the order
rotates each round), each sample one untimed call (the other paths may have evicted this
one's data) then a timed batch of back-to-back calls of a generated loop; best, median and
spread (interquartile range / median) over the samples.  Every result is checked against a
float64 NumPy reference: `bit-exact` (identical to the NumPy float32 chain: the exact
formulas, same tree), `ok` (within tolerance: exact formulas 2^-22 and transcendental ones
1e-6 relative to the terms' magnitude, sums 1e-6*log2(n)*sum|terms|), `inexact` (an exact
formula within tolerance but not bit-identical), `DIFFERS`.  It measures and never asserts
speed.  Writes a CSV (a row per formula x size x path, and info rows: CPU, load average
before and after, versions) and a markdown table with the targets at 1 Mi: evaluate
>= 1.0x numba, >= 2x the NumPy chain, >= 3x numexpr.
"""
import argparse
import csv
import math
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HOLOGRAM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings)

import hologram_ffi as hf  # noqa: E402
from report import cpu_model, fmt_ns, fmt_x, size_label, table  # noqa: E402  (bench/report.py)
from progress import Progress, count_and_exit  # noqa: E402  (bench/progress.py)

FULL_SIZES = [1 << 20, 1 << 14, 16]
QUICK_SIZES = [1 << 14]
IMPLS = ["evaluate", "hg_ops", "numpy", "numexpr", "numba"]
TITLES = {"evaluate": "evaluate", "hg_ops": "hg per-op", "numpy": "NumPy chain",
          "numexpr": "numexpr", "numba": "numba"}
TARGETS = {"numba": 1.0, "numpy": 2.0, "numexpr": 3.0}   # time(other) / time(evaluate) at 1 Mi
TOL = {"exact": 2.0 ** -22, "transcendental": 1e-6}     # |error| / magnitude of the terms
FIELDS = ["kind", "formula", "size", "impl", "best_ns", "median_ns", "spread_pct",
          "ratio_best", "ratio_median", "samples", "calls", "check", "max_err", "note"]
W = 0.5                      # sigmoid's scalar parameter: a Python float for evaluate
F1, F2, F3 = np.float32(1), np.float32(2), np.float32(3)
F01, W32 = np.float32(0.1), np.float32(W)


# ---- numba kernels (plain functions, compiled with numba.njit when numba is there) --------

def nb_lin(a, b, out):
    for i in range(a.shape[0]):
        out[i] = F2 * a[i] + F3 * b[i]


def nb_fma(a, b, c, out):
    for i in range(a.shape[0]):
        out[i] = a[i] * b[i] + c[i]


def nb_sigmoid(a, b, w, out):
    for i in range(a.shape[0]):
        out[i] = F1 / (F1 + np.exp(-(a[i] * w + b[i])))


def nb_tanh(a, b, c, out):
    for i in range(a.shape[0]):
        out[i] = np.tanh(a[i]) * b[i] + c[i]


def nb_sumsq(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        d = a[i] - b[i]
        s += d * d
    return s


def nb_where(a, out):
    for i in range(a.shape[0]):
        out[i] = a[i] if a[i] > 0 else F01 * a[i]


class Formula:
    """One formula as each path spells it: evaluate's text, numexpr's text, the NumPy and
    hologram per-op statements (the last one's value is the result), the numba kernel and
    its arguments, and ref(a, b, c) -> (float64 value, magnitude of its terms)."""

    def __init__(self, text, kind, numexpr, numpy, hg, numba, ref):
        self.text, self.kind, self.numexpr = text, kind, numexpr
        self.numpy, self.hg, self.numba, self.ref = numpy, hg, numba, ref
        self.scalar = kind == "sum"


FORMULAS = [
    Formula("2*a+3*b", "exact", "2*a+3*b",
            ["mul(a, 2, out=t1)", "mul(b, 3, out=t2)", "add(t1, t2, out=o)"],
            ["smul(e, A, T1, n, 2.0)", "smul(e, B, T2, n, 3.0)", "vadd(e, T1, T2, O, n)"],
            (nb_lin, "a, b, o"),
            lambda a, b, c: (2 * a + 3 * b, abs(2 * a) + abs(3 * b))),
    Formula("a*b+c", "exact", "a*b+c",
            ["mul(a, b, out=t1)", "add(t1, c, out=o)"],
            ["vmul(e, A, B, T1, n)", "vadd(e, T1, C, O, n)"],
            (nb_fma, "a, b, c, o"),
            lambda a, b, c: (a * b + c, abs(a * b) + abs(c))),
    Formula("sigmoid(a*w+b)", "transcendental", "1/(1+exp(-(a*w+b)))",
            ["mul(a, w, out=t1)", "add(t1, b, out=t1)", "neg(t1, out=t1)", "exp(t1, out=t1)",
             "add(t1, 1, out=t1)", "div(1, t1, out=o)"],
            ["smul(e, A, T1, n, w)", "vadd(e, T1, B, T2, n)", "sig(e, T2, O, n)"],
            (nb_sigmoid, "a, b, w32, o"),
            lambda a, b, c: (1 / (1 + np.exp(-(a * W + b))),) * 2),
    Formula("tanh(a)*b+c", "transcendental", "tanh(a)*b+c",
            ["tanh(a, out=t1)", "mul(t1, b, out=t1)", "add(t1, c, out=o)"],
            ["tanh_(e, A, T1, n)", "vmul(e, T1, B, T2, n)", "vadd(e, T2, C, O, n)"],
            (nb_tanh, "a, b, c, o"),
            lambda a, b, c: (np.tanh(a) * b + c, abs(np.tanh(a) * b) + abs(c))),
    Formula("sum((a-b)**2)", "sum", "sum((a-b)**2)",
            ["sub(a, b, out=t1)", "mul(t1, t1, out=t1)", "t1.sum()"],
            ["vsub(e, A, B, T1, n)", "vmul(e, T1, T1, T2, n)", "rsum(e, T2, R, n)"],
            (nb_sumsq, "a, b"),
            lambda a, b, c: (((a - b) ** 2).sum(),) * 2),
    Formula("where(a>0, a, 0.1*a)", "exact", "where(a>0, a, k*a)",
            ["mul(a, 0.1, out=t1)", "maximum(a, t1, out=o)"],
            ["smul(e, A, T1, n, 0.1)", "vmax(e, A, T1, O, n)"],
            (nb_where, "a, o"),
            lambda a, b, c: (np.where(a > 0, a, 0.1 * a), abs(np.where(a > 0, a, 0.1 * a)))),
]


def optional_modules():
    """{'numexpr': module or None, 'numba': module or None}, with a message for a missing
    one."""
    mods = {}
    for name, package in (("numexpr", "python3-numexpr"), ("numba", "python3-numba")):
        try:
            mods[name] = __import__(name)
        except Exception as exc:  # not installed, or broken against this NumPy
            print(f"fusion.py: {name} unavailable ({type(exc).__name__}: {exc}); its column "
                  f"is skipped (apt-get install {package})", file=sys.stderr)
            mods[name] = None
    if mods["numexpr"]:
        mods["numexpr"].set_num_threads(1)
    return mods


def make_loop(stmts, env):
    """loop(calls) running the statements calls times (no extra call layer), returning the
    last statement's last value."""
    body = "; ".join(stmts[:-1] + ["_r = " + stmts[-1]])
    code = f"def _loop(_calls):\n    _r = None\n    for _ in range(_calls):\n        {body}\n    return _r\n"
    scope = dict(env)
    exec(code, scope)  # noqa: S102  (our own generated source)
    return scope["_loop"]


class Data:
    """Float32 inputs a, b, c of one size, NumPy temporaries t1, t2, an output per
    path, and the hologram buffers: A, B, C (copies of the inputs), T1, T2, O, R."""

    def __init__(self, n, rng, e):
        self.n, self.e = n, e
        self.a, self.b, self.c = (rng.uniform(-4, 4, n).astype(np.float32) for _ in range(3))
        self.t1, self.t2 = np.ones(n, np.float32), np.ones(n, np.float32)
        self.out = {name: np.ones(n, np.float32) for name in IMPLS}
        self.bufs = {}
        for key, src in (("A", self.a), ("B", self.b), ("C", self.c), ("T1", self.t1),
                         ("T2", self.t2), ("O", self.t1), ("R", self.t1[:16])):
            self.bufs[key] = hf.executor_allocate_buffer(e, src.size)
            hf.buffer_copy_from_numpy(e, self.bufs[key], src)  # also pre-touches
        self.a64, self.b64, self.c64 = (x.astype(np.float64) for x in (self.a, self.b, self.c))

    def free(self):
        for handle in self.bufs.values():
            hf.buffer_cleanup(handle)


def loops(f, d, mods, kernels):
    """{impl: loop} for formula f on data d (paths whose module is missing are left out)."""
    arrays = {"a": d.a, "b": d.b, "c": d.c}
    out = d.out
    ev_src = f"ev({f.text!r}, env)" if f.scalar else f"ev({f.text!r}, env, out=o)"
    result = {"evaluate": make_loop([ev_src], {"ev": hf.evaluate, "o": out["evaluate"],
                                                "env": dict(arrays, w=W)})}
    hg_env = dict(d.bufs, e=d.e, n=d.n, w=W, smul=hf.scalar_mul_f32, vadd=hf.vector_add_f32,
                  vsub=hf.vector_sub_f32, vmul=hf.vector_mul_f32, vmax=hf.vector_max_f32,
                  sig=hf.sigmoid_f32, tanh_=hf.tanh_f32, rsum=hf.reduce_sum_f32)
    result["hg_ops"] = make_loop(f.hg, hg_env)
    np_env = dict(arrays, t1=d.t1, t2=d.t2, o=out["numpy"], w=W, mul=np.multiply,
                  add=np.add, sub=np.subtract, div=np.divide, neg=np.negative, exp=np.exp,
                  tanh=np.tanh, maximum=np.maximum)
    result["numpy"] = make_loop(f.numpy, np_env)
    if mods["numexpr"]:
        src = f"ev({f.numexpr!r}, env)" if f.scalar else f"ev({f.numexpr!r}, env, out=o)"
        result["numexpr"] = make_loop([src], {"ev": mods["numexpr"].evaluate,
                                              "o": out["numexpr"],
                                              "env": dict(arrays, w=W32, k=F01)})
    if kernels:
        fn, args = f.numba
        result["numba"] = make_loop([f"k({args})"], dict(arrays, k=kernels[fn.__name__],
                                                         w32=W32, o=out["numba"]))
    return result


def compile_numba(numba):
    """{kernel name: njit dispatcher}, compiled for float32 arrays (outside any timing),
    and the compile seconds; ({}, 0) without numba."""
    if numba is None:
        return {}, 0.0
    x = np.ones(16, np.float32)
    t0 = time.perf_counter()
    kernels = {}
    for f in FORMULAS:
        fn, args = f.numba
        k = numba.njit(fn)
        env = {"a": x, "b": x, "c": x, "o": x.copy(), "w32": W32}
        k(*(env[name.strip()] for name in args.split(",")))
        kernels[fn.__name__] = k
    return kernels, time.perf_counter() - t0


class Timing:
    """Samples of one path: per-call times, batch size, check text, largest error, note."""

    def __init__(self, name, loop):
        self.name, self.loop = name, loop
        self.times, self.calls, self.check, self.err, self.note = [], 1, "-", None, ""
        self.value = None

    def best(self):
        return min(self.times) if self.times else None

    def median(self):
        return statistics.median(self.times) if self.times else None

    def spread(self):
        """Interquartile range / median, in percent."""
        if len(self.times) < 4:
            return None
        q = statistics.quantiles(self.times, n=4)
        return 100 * (q[2] - q[0]) / statistics.median(self.times)


def check(f, d, value, chain):
    """(check text, largest error relative to the terms' magnitude) of one path's result;
    `chain` is the NumPy float32 chain's result (None for the chain itself)."""
    ref, scale = f.ref(d.a64, d.b64, d.c64)
    if f.scalar:
        err = abs(float(value) - ref) / scale
        return ("ok" if err <= 1e-6 * math.log2(d.n) else "DIFFERS"), err
    got = value.astype(np.float64)
    diff = np.abs(got - ref)
    err = float(np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1), diff)))
    ok = err <= TOL[f.kind]
    if f.kind == "exact" and chain is not None:
        if np.array_equal(value, chain, equal_nan=True):
            return "bit-exact", err
        return ("inexact" if ok else "DIFFERS"), err
    return ("ok" if ok else "DIFFERS"), err


def result_of(im, d, value):
    """The result of path im's last call: a float for a reduction, else its output."""
    if value is not None and np.ndim(value) == 0:
        return float(value)
    if im.name == "hg_ops":
        return hf.buffer_to_numpy(d.e, d.bufs["O"])
    return d.out[im.name].copy()


def measure(f, d, timings, rounds, sample_ns):
    """First call and check of every path, batch calibration, then `rounds` round-robin
    samples (the order rotating), each one untimed call then a timed batch."""
    chain = None
    for im in timings:
        try:
            value = im.loop(1)
        except Exception as exc:  # an error is reported in the row, not fatal
            im.note = f"error: {type(exc).__name__}: {exc}"
            continue
        im.value = result_of(im, d, value)
        if im.name == "numpy":
            chain = im.value
        t = min(_once(im.loop) for _ in range(3))
        im.calls = max(1, math.ceil(sample_ns / max(t, 1)))
    for im in timings:
        if not im.note:
            im.check, im.err = check(f, d, im.value,
                                     None if im.name == "numpy" or f.scalar else chain)
    live = [im for im in timings if not im.note]
    for r in range(rounds):
        k = r % len(live) if live else 0
        for im in live[k:] + live[:k]:
            im.loop(1)  # untimed: the previous path's data may have left the caches
            t0 = time.perf_counter_ns()
            im.loop(im.calls)
            im.times.append((time.perf_counter_ns() - t0) / im.calls)


def _once(loop):
    t0 = time.perf_counter_ns()
    loop(1)
    return time.perf_counter_ns() - t0


def machine_info(mods, numba_compile_s):
    info = {"cpu": f"{cpu_model()} ({os.cpu_count()} CPUs)",
            "hologram_version": hf.get_version(), "numpy_version": np.__version__,
            "numexpr_version": getattr(mods["numexpr"], "__version__", "not installed"),
            "numba_version": getattr(mods["numba"], "__version__", "not installed"),
            "python": sys.version.split()[0],
            "threads": " ".join(f"{k}={os.environ.get(k)}" for k in
                                ("HOLOGRAM_THREADS", "OPENBLAS_NUM_THREADS")) +
            (" numexpr.set_num_threads(1)" if mods["numexpr"] else "")}
    if mods["numexpr"]:
        info["numexpr_vml"] = str(mods["numexpr"].use_vml)
    if mods["numba"]:
        info["numba_compile_s"] = f"{numba_compile_s:.2f} (6 kernels; outside the timing)"
    return info


def ratio(res, formula, n, impl, stat="best"):
    """time(impl) / time(evaluate): > 1 when evaluate is faster; None if one is missing."""
    other, ev = res.get((formula, n, impl)), res.get((formula, n, "evaluate"))
    if not other or not ev:
        return None
    a, b = getattr(other, stat)(), getattr(ev, stat)()
    return a / b if a and b else None


def write_csv(path, info, res):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for key, value in info.items():
            w.writerow({"kind": "info", "formula": key, "note": value.replace(",", ";")})
        for (formula, n, impl), im in res.items():
            best, med, spread = im.best(), im.median(), im.spread()
            w.writerow({
                "kind": "fusion", "formula": formula, "size": n, "impl": impl,
                "best_ns": f"{best:.1f}" if best else "",
                "median_ns": f"{med:.1f}" if med else "",
                "spread_pct": f"{spread:.1f}" if spread is not None else "",
                "ratio_best": _num(ratio(res, formula, n, impl)),
                "ratio_median": _num(ratio(res, formula, n, impl, "median")),
                "samples": len(im.times), "calls": im.calls, "check": im.check,
                "max_err": f"{im.err:.3g}" if im.err is not None else "",
                "note": im.note.replace(",", ";").replace("\n", " ")})


def _num(x):
    return f"{x:.4f}" if x is not None else ""


def flags(res, formula, n):
    """The paths of one row whose check is not ok/bit-exact, with their error or note."""
    out = []
    for impl in IMPLS:
        im = res.get((formula, n, impl))
        if im and im.check not in ("ok", "bit-exact"):
            detail = f"{im.err:.2g} of the terms" if im.err is not None else im.note
            out.append(f"{TITLES[impl]}: {im.check} ({detail})")
    return "; ".join(out) or "ok"


def markdown(info, res, sizes, present):
    others = [i for i in IMPLS if i != "evaluate" and i in present]
    md = ["## Fusion: evaluate() against per-op calls, NumPy, numexpr, numba\n",
          f"{info['cpu']}; load average {info['load_before']} before, {info['load_after']} "
          f"after; hologram {info['hologram_version']}, NumPy {info['numpy_version']}, "
          f"numexpr {info['numexpr_version']}, numba {info['numba_version']}; one thread "
          f"({info['threads']}).\n",
          "Each cell is the best time per call (median in parentheses) over interleaved "
          "samples; a ratio is the other path's best time divided by evaluate's: **> 1 "
          "means evaluate is faster**. evaluate: `hologram_ffi.evaluate(text, d, out=o)`; "
          "hg per-op: the seed's flat ops on hologram buffers; NumPy: ufuncs with `out=` into "
          "preallocated temporaries (`where` as `maximum(a, 0.1*a)`, the same function, as "
          "hg per-op); numexpr: one thread, `out=`, w and 0.1 as float32 "
          "scalars; numba: `@njit` loop (no parallel, no fastmath) with float32 constants, "
          "the sum accumulated in float64 (`s = 0.0`). Checks against a float64 reference: "
          "`bit-exact` = identical to the NumPy float32 chain; `inexact`/`DIFFERS` are "
          "listed.\n"]
    if 1 << 20 in sizes:
        md.append("### Targets at n = 1 Mi (best-time ratios; median-time ratio in "
                  "parentheses)\n")
        header = ["formula"] + [f"{TITLES[i]}/evaluate ≥ {TARGETS[i]:g}×" for i in TARGETS
                                if i in present]
        rows = []
        for f in FORMULAS:
            row = [f"`{f.text}`"]
            for impl, goal in TARGETS.items():
                if impl not in present:
                    continue
                r = ratio(res, f.text, 1 << 20, impl)
                rm = ratio(res, f.text, 1 << 20, impl, "median")
                verdict = "–" if r is None else ("met" if r >= goal else "**missed**")
                row.append(f"{fmt_x(r)} ({fmt_x(rm)}) {verdict}")
            rows.append(row)
        md.append(table(header, rows))
    for n in sizes:
        title = ("per-call overhead" if n <= 64 else "")
        md.append(f"### n = {size_label(n)}" + (f" ({title})" if title else "") + "\n")
        header = (["formula"] + [TITLES[i] for i in ["evaluate"] + others] +
                  [f"{TITLES[i]}/ev" for i in others] + ["checks"])
        rows = []
        for f in FORMULAS:
            cells = [f"`{f.text}`"]
            for impl in ["evaluate"] + others:
                im = res.get((f.text, n, impl))
                cells.append(f"{fmt_ns(im.best())} ({fmt_ns(im.median())})"
                             if im and im.times else "–")
            cells += [fmt_x(ratio(res, f.text, n, impl)) for impl in others]
            cells.append(flags(res, f.text, n))
            rows.append(cells)
        md.append(table(header, rows))
    return "\n".join(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="n = 16 Ki only, few rounds")
    ap.add_argument("--csv", default="fusion.csv")
    ap.add_argument("--md", default="fusion.md")
    ap.add_argument("--count", action="store_true",
                    help="print the number of progress steps and exit (bench/progress.py)")
    args = ap.parse_args()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    count_and_exit(args, len(sizes) * len(FORMULAS))
    rounds, sample_ns = (7, 0.5e6) if args.quick else (30, 3e6)
    load_before = os.getloadavg()
    mods = optional_modules()
    kernels, numba_s = compile_numba(mods["numba"])
    info = machine_info(mods, numba_s)
    e = hf.new_executor()
    rng = np.random.default_rng(2024)
    res = {}
    progress = Progress(len(sizes) * len(FORMULAS), "fusion.py")
    try:
        for n in sizes:
            d = Data(n, rng, e)
            for f in FORMULAS:
                timings = [Timing(name, loop) for name, loop in
                           loops(f, d, mods, kernels).items()]
                measure(f, d, timings, rounds, sample_ns)
                for im in timings:
                    res[(f.text, n, im.name)] = im
                progress.write(f"{f.text:22s} {size_label(n):>6s}  " + "  ".join(
                    f"{im.name} {fmt_ns(im.best())}" + ("" if im.check in ("ok", "bit-exact")
                                                        else f" [{im.check}{im.note}]")
                    for im in timings))
                progress.set_postfix_str(f"{f.text} n={size_label(n)}")
                progress.update(1)
            d.free()
    finally:
        progress.close()
        hf.executor_cleanup(e)
    info["load_before"] = " ".join(f"{x:.2f}" for x in load_before)
    info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    present = {impl for (_, _, impl) in res}
    for path in (args.csv, args.md):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_csv(args.csv, info, res)
    with open(args.md, "w") as fh:
        fh.write(markdown(info, res, sizes, present))
    print(f"CSV: {args.csv}; markdown: {args.md}")


if __name__ == "__main__":
    main()
