#!/usr/bin/env python3
"""bench/parallel.py — threads (issue "parallel execution that never stalls"): hologram's
default thread count against one thread on a loaded machine, two threads against one on an
idle machine (and against OpenBLAS on two), one-thread streams against a C loop with
non-temporal stores, and small gemm shapes against OpenBLAS on one thread.

  PYTHONPATH=build/python /usr/bin/python3 bench/parallel.py [--quick] [--csv F] [--md F]

Every figure is a median over interleaved repetitions (the two sides of a ratio alternate),
inputs pre-touched.  "Loaded": K busy processes pinned to the cores other than core 0 (K = 1
and 3) while the default (all CPUs of the affinity mask) and one thread run side by side.
Before the idle figures the bench samples /proc/stat for a second: when other processes
used more than 10% of the machine, it says the idle figures cannot be trusted.
OpenBLAS runs through NumPy (its thread count set with openblas_set_num_threads).  The C
stream loops are compiled here with cc -O3 -march=native (bench/stream_ref.c).
"""
import argparse
import ctypes
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import hologram_ffi as hg

F32 = np.float32
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from progress import Progress, count_and_exit  # noqa: E402  (bench/progress.py)


def openblas_threads():
    """openblas_set_num_threads of the OpenBLAS NumPy loaded, or None."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "openblas" in path and ".so" in path:
                try:
                    return ctypes.CDLL(path).openblas_set_num_threads
                except (OSError, AttributeError):
                    return None
    return None


def stream_ref():
    """The C reference loops (normal and non-temporal stores), compiled for this host."""
    out = os.path.join(tempfile.mkdtemp(prefix="hg-stream-"), "stream_ref.so")
    subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-o", out,
                    os.path.join(HERE, "stream_ref.c")], check=True)
    lib = ctypes.CDLL(out)
    for name in ("ref_add_nt", "ref_mul_nt"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_size_t]
    return lib


def busy_share(seconds=1.0):
    """Share of the machine's CPU time used by anything (this process is idle meanwhile)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]           # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def median_pair(fa, fb, reps):
    """Medians (seconds) of fa and fb, run alternately reps times after one warm-up each;
    also the spread (max/min of the per-rep ratio fa/fb over the middle half)."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        t = time.perf_counter(); fa(); ta.append(time.perf_counter() - t)
        t = time.perf_counter(); fb(); tb.append(time.perf_counter() - t)
    ratios = sorted(b / a for a, b in zip(ta, tb))
    mid = ratios[len(ratios) // 4: len(ratios) - len(ratios) // 4] or ratios
    return float(np.median(ta)), float(np.median(tb)), (mid[0], mid[-1])


class Ops:
    """hologram calls on buffers of one executor, inputs pre-touched."""

    def __init__(self, ex, n):
        rng = np.random.default_rng(1)
        self.ex, self.n = ex, n
        self.a = ex.from_numpy(rng.uniform(-2, 2, n).astype(F32))
        self.b = ex.from_numpy(rng.uniform(-2, 2, n).astype(F32))
        self.c = ex.from_numpy(np.zeros(n, F32))

    def fn(self, name):
        e, a, b, c, n = self.ex.handle, self.a, self.b, self.c, self.n
        return {"add": lambda: hg.vector_add_f32(e, a, b, c, n),
                "mul": lambda: hg.vector_mul_f32(e, a, b, c, n),
                "sigmoid": lambda: hg.sigmoid_f32(e, a, c, n),
                "sum": lambda: hg.reduce_sum_f32(e, a, c, n)}[name]


class Gemm:
    def __init__(self, ex, m, n, k):
        rng = np.random.default_rng(2)
        self.A = rng.standard_normal((m, k)).astype(F32)
        self.B = rng.standard_normal((k, n)).astype(F32)
        self.C = np.zeros((m, n), F32)
        self.ex, self.shape = ex, (m, n, k)
        self.a, self.b = ex.from_numpy(self.A.ravel()), ex.from_numpy(self.B.ravel())
        self.c = ex.from_numpy(self.C.ravel())

    def hologram(self):
        m, n, k = self.shape
        if n == 1:
            return lambda: hg.matvec_f32(self.ex.handle, self.a, self.b, self.c, m, k)
        return lambda: hg.gemm_f32(self.ex.handle, self.a, self.b, self.c, m, n, k)

    def numpy(self):
        return lambda: np.matmul(self.A, self.B, out=self.C)


def on_threads(t, f, setter=hg.set_num_threads):
    """f run with `t` threads set first (hologram's, or setter's: OpenBLAS's)."""
    def run():
        setter(t)
        f()
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    ap.add_argument("--csv", help="write the rows here")
    ap.add_argument("--md", help="write the Markdown section here")
    ap.add_argument("--count", action="store_true",
                    help="print the number of progress steps and exit (bench/progress.py)")
    args = ap.parse_args()
    reps = 7 if args.quick else 31
    ncpu, mask = os.cpu_count(), sorted(os.sched_getaffinity(0))
    default = hg.get_num_threads()
    rows, md = [], []
    blas = openblas_threads()
    loaded = default > 1 and len(mask) > 1
    steps = ((8 if loaded else 0) +
             ((3 * (1 if args.quick else 2) + 2 + bool(blas)) if default > 1 else 0) +
             2 + (3 if blas else 0))
    count_and_exit(args, steps)
    progress = Progress(steps, "parallel.py")

    def row(section, what, a_name, a, b_name, b, spread, target, want=1.0, at_most=False):
        """One figure: ratio = a / b (how many times faster b is than a) unless at_most,
        then b / a (how many times slower b is); met when it is >= want (<= for at_most).
        spread: the middle half of the per-repetition ratios b / a."""
        ratio = b / a if at_most else a / b
        lo, hi = (spread if at_most else (1 / spread[1], 1 / spread[0]))
        met = ratio <= want if at_most else ratio >= want
        rows.append({"section": section, "what": what, "a": a_name, "a_us": f"{a * 1e6:.1f}",
                     "b": b_name, "b_us": f"{b * 1e6:.1f}", "ratio": f"{ratio:.2f}",
                     "spread": f"{lo:.2f}-{hi:.2f}", "target": target, "met": met})
        progress.write(f"{section:>14} {what:<18} {a_name} {a * 1e6:9.1f} us  {b_name} "
                       f"{b * 1e6:9.1f} us  {ratio:5.2f}x ({lo:.2f}-{hi:.2f})  {target}: "
                       f"{'met' if met else 'MISSED'}")
        progress.set_postfix_str(f"{section} {what}")
        progress.update(1)

    print(f"parallel.py: {ncpu} CPUs, affinity {mask}, hologram default threads {default}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with hg.Executor() as ex:
        m1 = Ops(ex, 1 << 20)
        g512 = Gemm(ex, 512, 512, 512)
        # ---- loaded machine: default threads against one ----
        others = [c for c in mask if c != mask[0]]
        if loaded:
            for k in (1, 3):
                hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        for _ in range(k)]
                try:
                    for i, h in enumerate(hogs):
                        os.sched_setaffinity(h.pid, {others[i % len(others)]})
                    time.sleep(0.3)
                    cases = [(f"{name} 1M", m1.fn(name)) for name in ("add", "sigmoid", "sum")]
                    cases.append(("gemm 512^3", g512.hologram()))
                    for what, f in cases:
                        one, dflt, spread = median_pair(on_threads(1, f),
                                                        on_threads(default, f), reps)
                        row(f"loaded K={k}", what, "1 thread", one, f"{default} threads",
                            dflt, spread, "default <= 1.2x one", want=1.2, at_most=True)
                finally:
                    for h in hogs:
                        h.kill()
                        h.wait()
        else:
            print("parallel.py: one CPU in the affinity mask: no loaded-machine figures")
        hg.set_num_threads(default)
        # ---- idle machine: two threads against one ----
        share = busy_share()
        trusted = share < 0.10
        note = "" if trusted else f" (machine {share:.0%} busy: not trusted)"
        print(f"parallel.py: before the idle figures, other processes used {share:.0%} of the "
              f"machine{note}", flush=True)
        if default > 1:
            sizes = [1 << 20] if args.quick else [1 << 20, 1 << 24]
            for n in sizes:
                ops = m1 if n == 1 << 20 else Ops(ex, n)
                for name in ("add", "sigmoid", "sum"):
                    f = ops.fn(name)
                    one, two, spread = median_pair(on_threads(1, f), on_threads(2, f),
                                                   reps)
                    row("idle" + note, f"{name} {n >> 20}M", "1 thread", one, "2 threads", two,
                        spread, ">= 1.8x", want=1.8)
                del ops
            g = Gemm(ex, 1024, 1024, 1024) if not args.quick else g512
            one, two, spread = median_pair(on_threads(1, g.hologram()),
                                           on_threads(2, g.hologram()), max(5, reps // 4))
            gname = "gemm %d^3" % g.shape[0]
            row("idle" + note, gname, "1 thread", one, "2 threads", two, spread, ">= 1.8x",
                want=1.8)
            if blas:
                ob, hg2, spread = median_pair(on_threads(2, g.numpy(), blas),
                                              on_threads(2, g.hologram()), max(5, reps // 4))
                row("idle" + note, gname, "OpenBLAS 2t", ob, "hologram 2t", hg2, spread,
                    ">= 1.0x OpenBLAS", want=1.0)
            mv = Gemm(ex, 4096, 1, 4096)
            one, two, spread = median_pair(on_threads(1, mv.hologram()),
                                           on_threads(2, mv.hologram()), reps)
            row("idle" + note, "matvec 4096^2", "1 thread", one, "2 threads", two, spread,
                ">= 1.5x", want=1.5)
        # ---- streams at 16M, one thread, against the non-temporal C loop ----
        ref = stream_ref()
        n = 1 << 22 if args.quick else 1 << 24
        s = Ops(ex, n)
        xa, xb, xc = (np.random.default_rng(3).uniform(-1, 1, n).astype(F32) for _ in range(3))
        for name, cfn in (("add", ref.ref_add_nt), ("mul", ref.ref_mul_nt)):
            c_loop = lambda cfn=cfn: cfn(xa.ctypes.data, xb.ctypes.data, xc.ctypes.data, n)
            c_t, h_t, spread = median_pair(c_loop, on_threads(1, s.fn(name)), reps)
            row("stream", f"{name} {n >> 20}M", "C nt loop", c_t, "hologram 1t", h_t, spread,
                ">= 0.95x", want=0.95)
        del s
        # ---- small gemm shapes, one thread, against OpenBLAS ----
        if blas:
            for shape in ((1, 1024, 1024), (1024, 1, 1024), (64, 4096, 16)):
                g = Gemm(ex, *shape)
                f = g.hologram() if shape[1] != 1 else (
                    lambda g=g: hg.gemm_f32(ex.handle, g.a, g.b, g.c, *g.shape))
                ob, h1, spread = median_pair(on_threads(1, g.numpy(), blas),
                                             on_threads(1, f), reps)
                row("small gemm", "%dx%dx%d" % shape, "OpenBLAS 1t", ob, "hologram 1t", h1,
                    spread, ">= 0.5x OpenBLAS", want=0.5)
        hg.set_num_threads(default)
    progress.close()
    md.append(f"## Threads (parallel.py)\n\n{ncpu} CPUs, affinity {mask}, default threads "
              f"{default}; medians of {reps} interleaved repetitions, spread = the middle half "
              "of per-repetition ratios. Ratio: how many times faster the hologram column is "
              "than the baseline; loaded rows: how many times slower the default is than one "
              "thread (lower is better).\n")
    md.append("| section | what | baseline | µs | hologram | µs | ratio (spread) | target |")
    md.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        md.append(f"| {r['section']} | {r['what']} | {r['a']} | {r['a_us']} | {r['b']} | "
                  f"{r['b_us']} | {r['ratio']} ({r['spread']}) | {r['target']}: "
                  f"{'met' if r['met'] else '**missed**'} |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["section"])
            w.writeheader()
            w.writerows(rows)
    if args.md:
        with open(args.md, "w") as f:
            f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
