#!/usr/bin/python3
"""bench/tensors.py — N-d compute (broadcasting, strides, axis reductions, row softmax, a
matmul with a fused epilogue) against NumPy, side by side in one process, one thread.

    PYTHONPATH=<build>/python /usr/bin/python3 bench/tensors.py [--quick] [--csv FILE]
        [--md FILE]

Cases (float32; --quick: a quarter of the rows, fewer rounds):

    bias      x + bias[None, :], x 1024x1024: evaluate("x + b", out=o) / np.add(out=o)
    gelu      gelu(x @ W + b), x and W 1024x1024: hologram's gemm_f32 into a buffer, then
              tensor_evaluate_into("gelu(y + b)") on its tensor (one fused pass) / NumPy's
              matmul(out=) then the tanh-form GELU chain with out= temporaries
    softmax   row softmax of 4096x1024: softmax(x, out=o) / max, subtract, exp, sum, divide
              with out= temporaries
    sum0      sum over axis 0 of 4096x1024: apply("reduce_sum_f32", axis=0, out=o) /
              x.sum(axis=0, out=o)
    sum1      the same over axis 1
    aT_b      a.T + b at 2048x2048 (a transposed view): evaluate(out=o) / np.add(a.T, b, out=o)

Both sides get preallocated outputs and pre-touched memory (no allocation or page fault in
the timed loop), HOLOGRAM_THREADS=1 and OPENBLAS_NUM_THREADS=1 (set before the imports).
Paths run round-robin (the order alternates each round), each sample one untimed call then
a timed batch; best, median and spread (interquartile range / median) per path.  Results
are checked against float64 NumPy (maps of exact ops: bit-equal to NumPy float32;
transcendental and reducing cases within 1e-5 relative to the magnitude of the terms).
Prints and writes (--md) a markdown table with the target: hologram at least 1.5x NumPy
(ratio = NumPy's time / hologram's, best and median); the CSV has a row per case x path
and info rows (CPU, load average before and after).  It measures; it never asserts speed.
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
from progress import Progress, count_and_exit  # noqa: E402  (bench/progress.py)
from report import cpu_model, emit, fmt_ns, fmt_x, spread, table  # noqa: E402  (bench/report.py)

TARGET = 1.5
F32 = np.float32
C0, C1, HALF, ONE = F32(math.sqrt(2 / math.pi)), F32(0.044715), F32(0.5), F32(1)


class Case:
    """One comparison: `impls` maps a path name to a function running it once (into
    preallocated memory); `check(name)` compares that path's last result with the
    reference and returns (status, max error)."""

    def __init__(self, name, title, impls, check):
        self.name, self.title, self.impls, self.check = name, title, impls, check


def rel_check(got, ref, terms):
    """max |got - ref| / (|terms| + tiny): the error relative to the terms' magnitude."""
    err = np.abs(np.asarray(got, np.float64) - ref) / (np.abs(terms) + 1e-30)
    return float(np.nanmax(err)) if err.size else 0.0


def make_cases(rows, rng, ex):
    cases = []

    # x + bias[None, :]
    x = rng.standard_normal((rows // 4, 1024), dtype=F32)
    b = rng.standard_normal(1024, dtype=F32)
    o = {"hologram": np.zeros_like(x), "numpy": np.zeros_like(x)}
    bias2 = b[None, :]
    cases.append(Case("bias", f"x + bias[None, :] ({x.shape[0]}x1024)", {
        "hologram": lambda: hf.evaluate("x + b", {"x": x, "b": bias2}, out=o["hologram"]),
        "numpy": lambda: np.add(x, bias2, out=o["numpy"])},
        lambda k: ("bit-exact" if np.array_equal(o[k], x + bias2) else "DIFFERS", 0.0)))

    # gelu(x @ W + b): matmul, then the fused epilogue
    m = rows // 4
    xg = rng.standard_normal((m, 1024), dtype=F32) / 8
    w = rng.standard_normal((1024, 1024), dtype=F32) / 8
    bg = rng.standard_normal(1024, dtype=F32)
    bx, bw, bb = (hf.executor_allocate_buffer(ex, a.size) for a in (xg, w, bg))
    for buf, a in ((bx, xg), (bw, w), (bb, bg)):
        hf.buffer_copy_from_numpy(ex, buf, a)
    by, bo = hf.executor_allocate_buffer(ex, m * 1024), hf.executor_allocate_buffer(ex, m * 1024)
    ty = hf.tensor_from_buffer(by, f"[{m}, 1024]")
    tb = hf.tensor_from_buffer(bb, "[1024]")
    to = hf.tensor_from_buffer(bo, f"[{m}, 1024]")
    gelu = hf.expr_compile("gelu(y + b)")
    yn, t1, t2 = (np.zeros((m, 1024), F32) for _ in range(3))
    on = np.zeros((m, 1024), F32)

    def hg_gelu():
        hf.gemm_f32(ex, bx, bw, by, m, 1024, 1024)
        hf.tensor_evaluate_into(ex, gelu, [ty, tb], [], to)

    def np_gelu():
        np.matmul(xg, w, out=yn)
        np.add(yn, bg, out=yn)
        np.multiply(yn, yn, out=t1)
        np.multiply(t1, yn, out=t1)
        np.multiply(t1, C1, out=t1)
        np.add(t1, yn, out=t1)
        np.multiply(t1, C0, out=t1)
        np.tanh(t1, out=t1)
        np.add(t1, ONE, out=t1)
        np.multiply(yn, HALF, out=t2)
        np.multiply(t2, t1, out=on)

    def gelu_check(k):
        y = xg.astype(np.float64) @ w.astype(np.float64) + bg
        ref = 0.5 * y * (1 + np.tanh(math.sqrt(2 / math.pi) * (y + 0.044715 * y ** 3)))
        got = hf.buffer_to_numpy(ex, bo)[:m * 1024].reshape(m, 1024) if k == "hologram" else on
        mag = np.abs(xg.astype(np.float64)) @ np.abs(w.astype(np.float64)) + np.abs(bg)
        err = rel_check(got, ref, mag)
        return ("ok" if err < 1e-5 else "DIFFERS"), err

    cases.append(Case("gelu", f"gelu(x @ W + b) ({m}x1024 @ 1024x1024)",
                      {"hologram": hg_gelu, "numpy": np_gelu}, gelu_check))

    # row softmax
    xs = rng.standard_normal((rows, 1024), dtype=F32) * 3
    os_ = {"hologram": np.zeros_like(xs), "numpy": np.zeros_like(xs)}
    mx, sm = np.zeros((rows, 1), F32), np.zeros((rows, 1), F32)
    ts = np.zeros_like(xs)

    def np_softmax():
        np.max(xs, axis=1, keepdims=True, out=mx)
        np.subtract(xs, mx, out=ts)
        np.exp(ts, out=ts)
        np.sum(ts, axis=1, keepdims=True, out=sm)
        np.divide(ts, sm, out=os_["numpy"])

    def softmax_check(k):
        t = xs.astype(np.float64)
        e = np.exp(t - t.max(1, keepdims=True))
        ref = e / e.sum(1, keepdims=True)
        err = rel_check(os_[k], ref, ref)
        return ("ok" if err < 1e-5 else "DIFFERS"), err

    cases.append(Case("softmax", f"row softmax ({rows}x1024)", {
        "hologram": lambda: hf.softmax(xs, out=os_["hologram"]), "numpy": np_softmax},
        softmax_check))

    # sums over an axis
    for axis in (0, 1):
        outs = {k: np.zeros(xs.shape[1 - axis], F32) for k in ("hologram", "numpy")}

        def check(k, axis=axis, outs=outs):
            t = xs.astype(np.float64)
            err = rel_check(outs[k], t.sum(axis), np.abs(t).sum(axis))
            return ("ok" if err < 1e-5 else "DIFFERS"), err

        cases.append(Case(f"sum{axis}", f"sum over axis {axis} ({rows}x1024)", {
            "hologram": lambda axis=axis, outs=outs: hf.apply("reduce_sum_f32", xs, axis=axis,
                                                              out=outs["hologram"]),
            "numpy": lambda axis=axis, outs=outs: xs.sum(axis=axis, out=outs["numpy"])}, check))

    # a.T + b
    n = rows // 2
    a = rng.standard_normal((n, n), dtype=F32)
    bt = rng.standard_normal((n, n), dtype=F32)
    ot = {"hologram": np.zeros_like(a), "numpy": np.zeros_like(a)}
    at = a.T
    cases.append(Case("aT_b", f"a.T + b ({n}x{n})", {
        "hologram": lambda: hf.evaluate("a + b", {"a": at, "b": bt}, out=ot["hologram"]),
        "numpy": lambda: np.add(at, bt, out=ot["numpy"])},
        lambda k: ("bit-exact" if np.array_equal(ot[k], at + bt) else "DIFFERS", 0.0)))
    return cases


def measure(case, rounds, sample_s):
    """Per path: the sample times (seconds per call) of `rounds` round-robin rounds."""
    calls = {}
    for name, fn in case.impls.items():
        fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        calls[name] = max(1, int(sample_s / one))
    times = {name: [] for name in case.impls}
    names = list(case.impls)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, k = case.impls[name], calls[name]
            fn()
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t0) / k)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--csv")
    ap.add_argument("--md")
    ap.add_argument("--count", action="store_true",
                    help="print the number of progress steps and exit (bench/progress.py)")
    args = ap.parse_args(argv)
    rows, rounds, sample = (1024, 5, 0.02) if args.quick else (4096, 15, 0.05)
    load0 = os.getloadavg()
    rng = np.random.default_rng(42)
    ex = hf.new_executor()
    cases = make_cases(rows, rng, ex)
    count_and_exit(args, len(cases))
    progress = Progress(len(cases), "tensors.py")
    results = []
    for case in cases:
        times = measure(case, rounds, sample)
        checks = {k: case.check(k) for k in case.impls}
        results.append((case, times, checks))
        h, n = times["hologram"], times["numpy"]
        print(f"{case.name:8s} hologram {fmt_ns(min(h) * 1e9):>9s}  numpy {fmt_ns(min(n) * 1e9):>9s}"
              f"  ratio {min(n) / min(h):5.2f}x best, {statistics.median(n) / statistics.median(h):5.2f}x"
              f" median  {checks['hologram'][0]}", file=sys.stderr)
        progress.set_postfix_str(case.name)
        progress.update(1)
    progress.close()
    load1 = os.getloadavg()
    hf.executor_cleanup(ex)
    head = ["case", "hologram best", "NumPy best", "ratio best", "ratio median",
            "spread (h / np)", f"≥ {TARGET}×", "check"]
    body = []
    for case, times, checks in results:
        h, n = times["hologram"], times["numpy"]
        rb, rm = min(n) / min(h), statistics.median(n) / statistics.median(h)
        body.append([case.title, fmt_ns(min(h) * 1e9), fmt_ns(min(n) * 1e9), fmt_x(rb), fmt_x(rm),
                     f"{spread(h) * 100:.0f}% / {spread(n) * 100:.0f}%",
                     "yes" if rm >= TARGET else "no", checks["hologram"][0]])
    md = (f"## N-d compute vs NumPy (tensors.py)\n\nNumPy {np.__version__}, one thread, "
          f"{cpu_model()}; load average "
          f"{load0[0]:.2f} before, {load1[0]:.2f} after; {rounds} rounds.\n\n" + table(head, body))
    emit(md, args.md)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["kind", "case", "impl", "best_ns", "median_ns", "spread_pct", "check",
                        "max_err"])
            w.writerow(["info", "cpu", cpu_model(), "", "", "", "", ""])
            w.writerow(["info", "load", f"{load0[0]:.2f}", f"{load1[0]:.2f}", "", "", "", ""])
            for case, times, checks in results:
                for k, ts in times.items():
                    w.writerow(["time", case.name, k, f"{min(ts) * 1e9:.0f}",
                                f"{statistics.median(ts) * 1e9:.0f}", f"{spread(ts) * 100:.1f}",
                                checks[k][0], f"{checks[k][1]:.3g}"])
    bad = [case.name for case, _, checks in results if "DIFFERS" in (c[0] for c in checks.values())]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
