"""Performance measurements: per-call overhead at small n and throughput at large n, JIT vs
interpreter vs NumPy, plus the kernel-cache counters."""
import json
import timeit

import hologram_ffi as hg

try:
    import numpy as np
except ImportError:
    np = None


def best_of(stmt, number, repeat=5):
    """Seconds per call, the best of `repeat` runs of `number` calls."""
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


def main():
    executor = hg.new_executor()
    default_backend = hg.get_backend()
    print(f"hologram {hg.get_version()}")
    print(f"{'op':16} {'n':>9} {'backend':>8} {'hologram':>12} {'numpy':>12}")
    for n, number in ((16, 20000), (1000, 20000), (1_000_000, 50)):
        a = hg.executor_allocate_buffer(executor, n)
        b = hg.executor_allocate_buffer(executor, n)
        c = hg.executor_allocate_buffer(executor, n)
        hg.buffer_fill(executor, a, 1.5, n)
        hg.buffer_fill(executor, b, 2.5, n)
        if np is not None:
            x, y, z = (np.full(n, v, np.float32) for v in (1.5, 2.5, 0.0))
            t_np = best_of(lambda: np.add(x, y, out=z), number)
        for backend in ("jit", "interp"):
            try:
                hg.set_backend(backend)
            except hg.InvalidArgumentError:                    # a build without the JIT
                continue
            hg.vector_add_f32(executor, a, b, c, n)                # warm the kernel cache
            t = best_of(lambda: hg.vector_add_f32(executor, a, b, c, n), number)
            numpy_text = f"{t_np * 1e6:10.2f}us" if np is not None else "         -"
            print(f"{'vector_add_f32':16} {n:>9} {backend:>8} {t * 1e6:10.2f}us {numpy_text}")
        hg.set_backend(default_backend)
        for handle in (a, b, c):
            hg.buffer_cleanup(handle)

    n = 1_000_000
    buf = hg.executor_allocate_buffer(executor, n)
    data = json.dumps([float(i % 100) for i in range(n)])
    t_json = best_of(lambda: hg.buffer_copy_from_slice(executor, buf, data), 3, 3)
    print(f"JSON transfer of {n} floats: {t_json * 1e3:.1f} ms")
    if np is not None:
        arr = np.arange(n, dtype=np.float32)
        t_np = best_of(lambda: hg.buffer_copy_from_numpy(executor, buf, arr), 100)
        print(f"NumPy transfer of {n} floats: {t_np * 1e3:.3f} ms")
    stats = hg.cache_stats()
    print("kernel cache: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in stats.items()))
    hg.executor_cleanup(executor)


if __name__ == "__main__":
    main()
