"""The main job's Python part: the seed README's Quick Start, verbatim, then a short
side-by-side timing of the JIT, the interpreter and NumPy on a few operations.

Run: PYTHONPATH=<build>/python /usr/bin/python3 bench/quickstart.py
"""
import os
import time

import numpy as np

# NumPy's ufuncs run on one thread: compare like with like unless told otherwise.
os.environ.setdefault("HOLOGRAM_THREADS", "1")

# ---- the seed README's Quick Start, unchanged ---------------------------------------------
import hologram_ffi as hg
import json

# Get version information
print(f"Hologram FFI Version: {hg.get_version()}")

# Create an executor
executor_handle = hg.new_executor()

# Allocate buffers
size = 1024
a_handle = hg.executor_allocate_buffer(executor_handle, size)
b_handle = hg.executor_allocate_buffer(executor_handle, size)
c_handle = hg.executor_allocate_buffer(executor_handle, size)

# Fill buffers with data
data_a = [float(i) for i in range(size)]
data_b = [float(i * 2) for i in range(size)]
hg.buffer_copy_from_slice(executor_handle, a_handle, json.dumps(data_a))
hg.buffer_copy_from_slice(executor_handle, b_handle, json.dumps(data_b))

# Perform vector addition
hg.vector_add_f32(executor_handle, a_handle, b_handle, c_handle, size)

# Get results
result_json = hg.buffer_to_vec(executor_handle, c_handle)
result = json.loads(result_json)
print(f"First 10 results: {result[:10]}")

# Clean up resources
hg.buffer_cleanup(a_handle)
hg.buffer_cleanup(b_handle)
hg.buffer_cleanup(c_handle)
hg.executor_cleanup(executor_handle)

# ---- JIT vs interpreter vs NumPy ----------------------------------------------------------
N = 1 << 20
ROUNDS = 15


def best_time(fn):
    """Seconds of the fastest of ROUNDS calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def numpy_softmax(x, y):
    np.subtract(x, x.max(), out=y)
    np.exp(y, out=y)
    y /= y.sum()


rng = np.random.default_rng(1)
x_np = rng.uniform(-4, 4, N).astype(np.float32)
t_np = rng.uniform(0, 1, N).astype(np.float32)
y_np = np.empty_like(x_np)
with hg.Executor() as ex:
    x, t = ex.from_numpy(x_np), ex.from_numpy(t_np)
    y, out = ex.allocate_buffer(N), ex.allocate_buffer(1)
    e = ex.handle
    cases = [
        ("vector_add_f32", lambda: hg.vector_add_f32(e, x, t, y, N),
         lambda: np.add(x_np, t_np, out=y_np)),
        ("sigmoid_f32", lambda: hg.sigmoid_f32(e, x, y, N),
         lambda: np.divide(1.0, 1.0 + np.exp(-x_np), out=y_np)),
        ("softmax_f32", lambda: hg.softmax_f32(e, x, y, N),
         lambda: numpy_softmax(x_np, y_np)),
        ("reduce_sum_f32", lambda: hg.reduce_sum_f32(e, x, out, N),
         lambda: x_np.sum()),
        ("mse_loss_f32", lambda: hg.mse_loss_f32(e, x, t, out, N),
         lambda: np.mean(np.square(x_np - t_np))),
    ]
    threads = os.environ["HOLOGRAM_THREADS"]
    print(f"\nSide by side, n = {N:,} float32 elements, best of {ROUNDS} "
          f"(HOLOGRAM_THREADS={threads}; NumPy one thread):")
    print(f"{'op':<16} {'JIT':>10} {'interp':>10} {'NumPy':>10} {'JIT/interp':>11} "
          f"{'JIT/NumPy':>10}")
    for name, ours, theirs in cases:
        hg.set_backend("jit")
        t_jit = best_time(ours)
        hg.set_backend("interp")
        t_interp = best_time(ours)
        hg.set_backend("jit")
        t_numpy = best_time(theirs)
        print(f"{name:<16} {t_jit * 1e6:>8.0f}µs {t_interp * 1e6:>8.0f}µs "
              f"{t_numpy * 1e6:>8.0f}µs {t_interp / t_jit:>10.2f}x {t_numpy / t_jit:>9.2f}x")
    stats = hg.cache_stats()
    print(f"kernel cache: {stats['entries']} kernels, {stats['compiles']} compiled, "
          f"{stats['disk_loads']} loaded from disk, {stats['hits']} hits")
