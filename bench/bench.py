#!/usr/bin/python3
"""bench/bench.py — hologram_ffi (JIT and interpreter) against NumPy, in one process.

    PYTHONPATH=<build>/python /usr/bin/python3 bench/bench.py [--quick] [--ops a,b]
        [--sizes 16,1Ki,...] [--csv py.csv]

Every elementwise, reduction, activation and loss op of canon/ops.def (the op list is read
from that table), plus gemm and matvec, for lengths 16 ... 16 Mi.  NumPy runs its best
plain effort: ufuncs with preallocated `out=` arrays (no temporaries), `.sum()`/`.mean()`
for reductions, `matmul(out=)` (OpenBLAS) for the contractions.  Implementations are timed
round-robin, each sample being one untimed call (the other paths may have evicted this
one's data) and then `calls` back-to-back timed calls of a generated loop (no wrapper
function around single calls), so the n = 16 rows give the per-call overhead:
hologram_ffi.vector_add_f32(e, a, b, c, n) vs numpy.add(a, b, out=c).

Data goes in and out through buffer_copy_from_numpy / buffer_to_numpy.  Results are
compared with NumPy's after the warm-up call (check column: ok / differs); the benchmark
measures and never asserts speed.  Single-threaded: OPENBLAS_NUM_THREADS and
HOLOGRAM_THREADS default to 1 (set before NumPy and hologram_ffi load).
"""
import argparse
import csv
import math
import os
import re
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HOLOGRAM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings)

import hologram_ffi as hf  # noqa: E402
from progress import Progress, count_and_exit  # noqa: E402  (bench/progress.py)

HERE = os.path.dirname(os.path.abspath(__file__))
OPS_DEF = os.path.join(HERE, "..", "canon", "ops.def")
FULL_SIZES = [16, 1 << 10, 1 << 16, 1 << 20, 1 << 24]
QUICK_SIZES = [16, 1 << 16]
FULL_SHAPES = [(s, s, s) for s in (16, 32, 64, 128, 256, 512, 1024)] + [
    (100, 100, 100), (4096, 64, 64), (64, 4096, 64), (1, 1024, 1024)]
QUICK_SHAPES = [(16, 16, 16), (64, 64, 64)]
FIELDS = ["kind", "op", "size", "m", "n", "k", "impl", "best_ns", "median_ns", "gbps",
          "gflops", "samples", "calls", "check", "note"]
SIGS = ("BIN", "UN", "UN1", "UN2", "RED", "LOSS")
PARAMS = {"UN1": (1.5,), "UN2": (-1.0, 1.0)}  # scalar_add/mul s; clip lo, hi (as hg_bench)


def read_ops():
    """[(name, family, sig, n_in)] of the public elementwise/reduction/loss rows of
    canon/ops.def, in table order."""
    text = open(OPS_DEF).read()
    rows = re.findall(r"^HG_OP\((\w+),\s*(\w+),\s*(\w+),\s*(\d+)", text, re.M)
    return [(n, f, s, int(k)) for n, f, s, k in rows if s in SIGS]


class Views:
    """Float32 arrays of one size: inputs x, y (general), p, t (loss), outputs c, and
    scratch u, w for NumPy's multi-step ops."""

    def __init__(self, n, rng):
        self.n = n
        self.x = rng.uniform(-4, 4, n).astype(np.float32)
        y = rng.uniform(0.5, 2, n)
        self.y = np.where(rng.random(n) < 0.5, -y, y).astype(np.float32)
        self.p = rng.uniform(0.01, 0.99, n).astype(np.float32)
        self.t = rng.random(n).astype(np.float32)
        self.c, self.u, self.w = (np.ones(n, np.float32) for _ in range(3))


def numpy_op(name, v):
    """(source of one call, its globals) running op `name` with NumPy on views v; None
    when there is no NumPy counterpart.  The call returns the scalar result, if any."""
    a, b, c, p, t, u, w = v.x, v.y, v.c, v.p, v.t, v.u, v.w
    ufunc2 = {"vector_add_f32": np.add, "vector_sub_f32": np.subtract,
              "vector_mul_f32": np.multiply, "vector_div_f32": np.divide,
              "vector_min_f32": np.minimum, "vector_max_f32": np.maximum}
    ufunc1 = {"vector_abs_f32": np.abs, "vector_neg_f32": np.negative, "tanh_f32": np.tanh}
    if name in ufunc2:
        return "f(a, b, out=c)", {"f": ufunc2[name], "a": a, "b": b, "c": c}
    if name in ufunc1:
        return "f(a, out=c)", {"f": ufunc1[name], "a": a, "c": c}
    simple = {
        "vector_relu_f32": "np.maximum(a, 0, out=c)",
        "vector_clip_f32": "np.clip(a, -1.0, 1.0, out=c)",
        "scalar_add_f32": "np.add(a, 1.5, out=c)",
        "scalar_mul_f32": "np.multiply(a, 1.5, out=c)",
        "reduce_sum_f32": "a.sum()",
        "reduce_min_f32": "a.min()",
        "reduce_max_f32": "a.max()",
    }
    env = {"np": np, "a": a, "c": c, "p": p, "t": t, "u": u, "w": w, "n": v.n}
    if name in simple:
        return simple[name], env

    def sigmoid():
        np.negative(a, out=c)
        np.exp(c, out=c)
        np.add(c, 1, out=c)
        np.reciprocal(c, out=c)

    def gelu():
        np.multiply(a, a, out=u)
        np.multiply(u, a, out=u)
        np.multiply(u, 0.044715, out=u)
        np.add(u, a, out=u)
        np.multiply(u, math.sqrt(2 / math.pi), out=u)
        np.tanh(u, out=u)
        np.add(u, 1, out=u)
        np.multiply(u, a, out=c)
        np.multiply(c, 0.5, out=c)

    def softmax():
        np.subtract(a, a.max(), out=c)
        np.exp(c, out=c)
        np.multiply(c, 1 / c.sum(), out=c)

    def mse():
        np.subtract(p, t, out=u)
        np.multiply(u, u, out=u)
        return u.mean()

    def cross_entropy():
        np.maximum(p, 1e-7, out=u)
        np.log(u, out=u)
        np.multiply(u, t, out=u)
        return -u.mean()

    def bce():
        np.clip(p, 1e-7, 1 - 1e-7, out=u)
        np.log(u, out=w)
        np.subtract(1, u, out=u)
        np.log(u, out=u)  # u = log(1-q), w = log(q): t*w + (1-t)*u = u + t*(w-u)
        np.subtract(w, u, out=w)
        np.multiply(w, t, out=w)
        np.add(w, u, out=w)
        return -w.mean()

    composite = {"sigmoid_f32": sigmoid, "gelu_f32": gelu, "softmax_f32": softmax,
                 "mse_loss_f32": mse, "cross_entropy_loss_f32": cross_entropy,
                 "binary_cross_entropy_loss_f32": bce}
    if name in composite:
        return "g()", {"g": composite[name]}
    return None


def hg_op(name, sig, family, e, bufs, n):
    """(source of one hologram_ffi call, its globals) for op `name`."""
    loss = family == "LOSS"
    env = {"f": getattr(hf, name), "e": e, "a": bufs["p" if loss else "x"],
           "b": bufs["t" if loss else "y"], "c": bufs["c"], "o": bufs["out"], "n": n}
    par = ", ".join(repr(v) for v in PARAMS.get(sig, ()))
    src = {"BIN": "f(e, a, b, c, n)", "UN": "f(e, a, c, n)", "UN1": f"f(e, a, c, n, {par})",
           "UN2": f"f(e, a, c, n, {par})", "RED": "f(e, a, o, n)",
           "LOSS": "f(e, a, b, o, n)"}[sig]
    return src, env


def make_loop(src, env):
    """A function loop(calls) running `src` calls times (no extra call layer), returning
    the last call's value."""
    code = f"def _loop(_calls):\n    _r = None\n    for _ in range(_calls):\n        _r = {src}\n    return _r\n"
    scope = dict(env)
    exec(code, scope)  # noqa: S102  (our own generated source)
    return scope["_loop"]


class Impl:
    """One path: a name, a loop, an optional hologram backend to select, a result getter."""

    def __init__(self, name, loop, backend=None, result=None):
        self.name, self.loop, self.backend, self.result = name, loop, backend, result
        self.times, self.calls, self.samples, self.check, self.note = [], 1, 0, "-", ""


def select(impl):
    if impl.backend:
        hf.set_backend(impl.backend)


def measure(impls, expect, quick):
    """Warm-up, check, calibration, then round-robin timing of impls; expect(value of the
    warm-up call, impl) -> check text."""
    sample_ns, budget_ns = (50e3, 2e6) if quick else (200e3, 40e6)
    nmax = 20 if quick else 200
    for im in impls:
        select(im)
        try:
            t0 = time.perf_counter_ns()
            value = im.loop(1)
            t = time.perf_counter_ns() - t0
        except Exception as exc:  # an error is reported in the row, not fatal
            im.note, im.samples = f"error: {type(exc).__name__}: {exc}", 0
            continue
        im.check = expect(value, im)
        if t < 20e6:
            for _ in range(2):
                t0 = time.perf_counter_ns()
                im.loop(1)
                t = min(t, time.perf_counter_ns() - t0)
        t = max(t, 1)
        im.calls = 1 if t >= sample_ns else math.ceil(sample_ns / t)
        nmin = 1 if t > 1e9 else 2 if t > 1e8 else 3 if quick else 5
        im.samples = int(min(max(budget_ns / (t * im.calls), nmin), nmax))
    for r in range(max((im.samples for im in impls), default=0)):
        for im in impls:
            if r >= im.samples:
                continue
            select(im)
            im.loop(1)  # untimed: the previous impl's data may have left the caches
            t0 = time.perf_counter_ns()
            im.loop(im.calls)
            im.times.append((time.perf_counter_ns() - t0) / im.calls)


def close(got, ref, scalar):
    """Loose agreement of two results (a sanity check, not the accuracy tests)."""
    if scalar:
        return abs(float(got) - float(ref)) <= 1e-3 * abs(float(ref)) + 1e-6
    return bool(np.allclose(got, ref, rtol=1e-4, atol=1e-6, equal_nan=True))


def write_rows(writer, kind, op, size, mnk, impls, nbytes, flops):
    for im in impls:
        best = min(im.times) if im.times else 0
        med = statistics.median(im.times) if im.times else 0
        writer.writerow({
            "kind": kind, "op": op, "size": size, "m": mnk[0], "n": mnk[1], "k": mnk[2],
            "impl": im.name, "best_ns": f"{best:.1f}", "median_ns": f"{med:.1f}",
            "gbps": f"{nbytes / best:.4g}" if best else 0,
            "gflops": f"{flops / best:.4g}" if best else 0,
            "samples": len(im.times), "calls": im.calls, "check": im.check,
            "note": im.note.replace(",", ";").replace("\n", " ")})


def fmt(ns):
    if not ns:
        return "n/a"
    for unit, scale in (("ns", 1), ("us", 1e3), ("ms", 1e6)):
        if ns < 1e3 * scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns / 1e9:.3g} s"


def summary_line(op, size, impls):
    best = {im.name: min(im.times) for im in impls if im.times}
    parts = [f"{im.name} {fmt(best.get(im.name))}" for im in impls]
    if "hg_jit" in best and "numpy" in best:
        parts.append(f"numpy/jit {best['numpy'] / best['hg_jit']:.2f}x")
    flags = [f"[{im.name}: {im.check} {im.note}]".replace(" ]", "]") for im in impls
             if im.note or im.check not in ("ok", "-")]
    return f"{op:30s} {size:>11s}  " + "  ".join(parts + flags)


def backends():
    """hologram backends to run: jit (if it can be selected) and interp."""
    names = []
    for name in ("jit", "interp"):
        try:
            hf.set_backend(name)
            names.append(name)
        except hf.HologramError as exc:
            print(f"backend {name} unavailable: {exc}", file=sys.stderr)
    return names


def run_elementwise(args, writer, e, ops, progress):
    rng = np.random.default_rng(12345)
    for n in args.sizes:
        v = Views(n, rng)
        bufs = {}
        for key in ("x", "y", "p", "t", "c"):
            bufs[key] = hf.executor_allocate_buffer(e, n)
            hf.buffer_copy_from_numpy(e, bufs[key], getattr(v, key))  # also pre-touches
        bufs["out"] = hf.executor_allocate_buffer(e, 16)
        for name, family, sig, n_in in ops:
            progress.set_postfix_str(f"{name} n={n}")
            np_src = numpy_op(name, v)
            if np_src is None:
                print(f"bench.py: no NumPy counterpart for {name}; skipped", file=sys.stderr)
                progress.update(1)
                continue
            scalar = family in ("REDUCE", "LOSS")
            ref = {}

            def expect(value, im, scalar=scalar):
                got = value if scalar else (v.c.copy() if im.name == "numpy" else
                                            hf.buffer_to_numpy(e, bufs["c"]))
                if im.name == "numpy":
                    ref["r"] = got
                    return "ok"
                return "ok" if close(got, ref["r"], scalar) else "differs"

            impls = [Impl("numpy", make_loop(*np_src))]
            impls += [Impl("hg_" + be, make_loop(*hg_op(name, sig, family, e, bufs, n)), be)
                      for be in args.backends]
            measure(impls, expect, args.quick)
            nbytes = 4 * n * (n_in + (0 if scalar else 1))
            write_rows(writer, "elem", name, str(n), (1, n, 0), impls, nbytes, 0)
            progress.write(summary_line(name, str(n), impls))
            progress.update(1)
        for handle in bufs.values():
            hf.buffer_cleanup(handle)


def contraction_cases(shapes):
    """[(op, (m, n, k))]: each gemm shape and its matvec m x k (once)."""
    cases = []
    for m, n, k in shapes:
        cases.append(("gemm_f32", (m, n, k)))
        if ("matvec_f32", (m, k, 0)) not in cases:
            cases.append(("matvec_f32", (m, k, 0)))
    return cases


def run_contractions(args, writer, e, progress):
    rng = np.random.default_rng(54321)
    for op, (m, n, k) in contraction_cases(args.shapes):
        progress.set_postfix_str(f"{op} {m}x{n}x{k}")
        if args.ops and op not in args.ops:
            progress.update(1)
            continue
        gemm = op == "gemm_f32"
        inner = k if gemm else n
        cols = n if gemm else 1
        A = rng.uniform(-4, 4, (m, inner)).astype(np.float32)
        B = rng.uniform(-2, 2, (inner, cols)).astype(np.float32)
        C = np.ones((m, cols), np.float32)
        bufs = {key: hf.executor_allocate_buffer(e, arr.size) for key, arr in
                (("a", A), ("b", B), ("c", C))}
        hf.buffer_copy_from_numpy(e, bufs["a"], A)
        hf.buffer_copy_from_numpy(e, bufs["b"], B)
        hf.buffer_copy_from_numpy(e, bufs["c"], C)
        Bv = B if gemm else B.reshape(inner)
        Cv = C if gemm else C.reshape(m)
        ref = {}

        def expect(value, im):
            got = Cv.copy() if im.name == "numpy" else hf.buffer_to_numpy(e, bufs["c"])
            if im.name == "numpy":
                ref["r"] = got.reshape(-1)
                return "ok"
            tol = 1e-5 * inner * 4 * 2
            return "ok" if np.max(np.abs(got - ref["r"])) <= tol else "differs"

        env = {"f": getattr(hf, op), "e": e, "a": bufs["a"], "b": bufs["b"], "c": bufs["c"],
               "m": m, "n": n, "k": k}
        src = "f(e, a, b, c, m, n, k)" if gemm else "f(e, a, b, c, m, n)"
        impls = [Impl("numpy", make_loop("mm(A, B, out=C)", {"mm": np.matmul, "A": A,
                                                              "B": Bv, "C": Cv}))]
        impls += [Impl("hg_" + be, make_loop(src, env), be) for be in args.backends]
        measure(impls, expect, args.quick)
        size = f"{m}x{n}x{k}" if gemm else f"{m}x{n}"
        flops = 2 * m * n * k if gemm else 2 * m * n
        nbytes = 4 * (A.size + B.size + C.size)
        write_rows(writer, "gemm" if gemm else "matvec", op, size, (m, n, k), impls, nbytes,
                   flops)
        progress.write(summary_line(op, size, impls))
        progress.update(1)
        for handle in bufs.values():
            hf.buffer_cleanup(handle)


def parse_count(text):
    m = re.fullmatch(r"(\d+)\s*(k|ki|m|mi)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size '{text}'")
    shift = {"": 0, "k": 10, "ki": 10, "m": 20, "mi": 20}[(m.group(2) or "").lower()]
    return int(m.group(1)) << shift


def info_rows(writer):
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                      "OPENBLAS_NUM_THREADS", "HOLOGRAM_THREADS")
           if k in os.environ}
    notes = {"hologram_version": hf.get_version(), "numpy_version": np.__version__,
             "python": sys.version.split()[0],
             "environment": " ".join(f"{k}={v}" for k, v in env.items())}
    try:
        import threadpoolctl
        notes["numpy_blas"] = " ".join(
            f"{p.get('internal_api')}:{p.get('architecture')}:{p.get('num_threads')}"
            for p in threadpoolctl.threadpool_info())
    except ImportError:
        notes["numpy_blas"] = "threadpoolctl not installed: kernel unknown"
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if key in env:
            print(f"note: {key}={env[key]} is set; it changes NumPy's OpenBLAS kernels "
                  "(and can slow NumPy)", file=sys.stderr)
    for what, note in notes.items():
        writer.writerow({"kind": "info", "op": what, "note": str(note).replace(",", ";")})
    print("hologram_ffi " + notes["hologram_version"] + ", NumPy " + notes["numpy_version"] +
          (", " + notes["environment"] if notes["environment"] else "") +
          "; " + notes["numpy_blas"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 16 and 64Ki, few reps")
    ap.add_argument("--ops", help="comma list of op names")
    ap.add_argument("--sizes", help="comma list of lengths (k/Ki/M/Mi suffixes)")
    ap.add_argument("--csv", default="py.csv")
    ap.add_argument("--count", action="store_true",
                    help="print the number of progress steps and exit (bench/progress.py)")
    args = ap.parse_args()
    args.ops = set(args.ops.split(",")) if args.ops else None
    args.sizes = ([parse_count(s) for s in args.sizes.split(",")] if args.sizes else
                  QUICK_SIZES if args.quick else FULL_SIZES)
    args.shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    ops = [row for row in read_ops() if not args.ops or row[0] in args.ops]
    total = len(ops) * len(args.sizes) + len(contraction_cases(args.shapes))
    count_and_exit(args, total)
    args.backends = backends()
    os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        info_rows(writer)
        e = hf.new_executor()
        progress = Progress(total, "bench.py")
        try:
            run_elementwise(args, writer, e, ops, progress)
            run_contractions(args, writer, e, progress)
        finally:
            progress.close()
            hf.executor_cleanup(e)
    print(f"CSV: {args.csv}")


if __name__ == "__main__":
    main()
