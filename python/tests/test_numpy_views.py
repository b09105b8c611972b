"""NumPy views without copies (buffer_as_numpy, Executor.as_numpy: hg_buffer_pin), the one
dtype rule of from_numpy and buffer_copy_from_numpy, and unclosed Executors collected with
a ResourceWarning."""
import gc
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import hologram_ffi as hg


def busy(fn, *args):
    with pytest.raises(hg.BufferInUseError) as info:
        fn(*args)
    return str(info.value)


def test_view_is_the_buffer(ex):
    b = hg.executor_allocate_buffer(ex, 1000)
    a = hg.buffer_as_numpy(ex, b)
    assert a.dtype == np.float32 and a.shape == (1000,) and a.flags.writeable
    assert a.ctypes.data % 64 == 0
    a[:] = np.arange(1000, dtype=np.float32) - 500
    hg.vector_abs_f32(ex, b, b, 1000)                  # the op writes what the array shows
    np.testing.assert_array_equal(a, np.abs(np.arange(1000, dtype=np.float32) - 500))
    hg.scalar_mul_f32(ex, b, b, 10, 2.0)
    assert a[:10].tolist() == [1000.0 - 2 * i for i in range(10)]
    assert hg.buffer_to_numpy(ex, b).tolist() == a.tolist()
    del a
    hg.buffer_cleanup(b)


def test_pin_until_every_view_is_gone(ex):
    b = hg.executor_allocate_buffer(ex, 8)
    a = hg.buffer_as_numpy(ex, b)
    assert "has 1 pin" in busy(hg.buffer_cleanup, b)
    assert "has 1 pin" in busy(hg.executor_cleanup, ex)
    assert "nothing freed" in busy(hg.clear_all_registries)
    second = hg.buffer_as_numpy(ex, b)
    assert "has 2 pins" in busy(hg.buffer_cleanup, b)
    del second
    part = a[2:5]                                       # a view of the view keeps the pin
    part[:] = 7
    del a
    gc.collect()
    assert "has 1 pin" in busy(hg.buffer_cleanup, b)
    assert hg.buffer_to_numpy(ex, b).tolist() == [0, 0, 7, 7, 7, 0, 0, 0]
    del part
    hg.buffer_cleanup(b)                                # the last view is gone: freed
    with pytest.raises(hg.InvalidHandleError):
        hg.buffer_as_numpy(ex, b)


def test_pin_dropped_by_the_garbage_collector(ex):
    b = hg.executor_allocate_buffer(ex, 4)
    holder = {"array": hg.buffer_as_numpy(ex, b)[1:]}
    holder["self"] = holder                             # a cycle: only gc.collect frees it
    del holder
    busy(hg.buffer_cleanup, b)
    gc.collect()
    hg.buffer_cleanup(b)


def test_views_of_empty_and_boundary_buffers(ex):
    empty = hg.executor_allocate_buffer(ex, 0)
    a = hg.buffer_as_numpy(ex, empty)
    assert a.shape == (0,) and a.dtype == np.float32
    busy(hg.buffer_cleanup, empty)
    del a
    hg.buffer_cleanup(empty)
    b1 = hg.executor_allocate_boundary_buffer(ex, 3, 16, 16)    # 64 floats
    b2 = hg.executor_allocate_boundary_buffer(ex, 3, 4, 4)      # the same class: shared
    v1 = hg.buffer_as_numpy(ex, b1)
    v1[:4] = [1, 2, 3, 4]
    assert hg.buffer_as_numpy(ex, b2).tolist() == [1, 2, 3, 4]
    hg.buffer_cleanup(b2)
    busy(hg.executor_cleanup, ex)                       # the pool is the executor's
    del v1


def test_bad_handles_pin_nothing(ex):
    b = hg.executor_allocate_buffer(ex, 4)
    other = hg.new_executor()
    with pytest.raises(hg.InvalidHandleError):
        hg.buffer_as_numpy(other, b)                    # a buffer of another executor
    with pytest.raises(hg.InvalidArgumentError):
        hg.buffer_as_numpy(ex, -1)
    with pytest.raises(TypeError):
        hg.buffer_as_numpy(ex, "b")
    hg.executor_cleanup(other)
    hg.buffer_cleanup(b)                                # no pin was left behind


def test_executor_close_waits_for_its_arrays():
    ex = hg.Executor()
    b = ex.allocate_buffer(16)
    a = ex.as_numpy(b)
    with pytest.raises(hg.BufferInUseError):
        ex.close()
    assert ex.handle is not None                        # still open: nothing was freed
    a[:] = 3
    assert ex.reduce_sum_f32(b, ex.allocate_buffer(1), 16) == 48
    del a
    ex.close()
    with pytest.raises(hg.InvalidHandleError):
        ex.allocate_buffer(1)


def test_pins_from_many_threads(ex):
    """Views made and dropped by 8 threads at once over one buffer: every pin is counted
    and dropped, and cleanup fails exactly while one lives."""
    b = hg.executor_allocate_buffer(ex, 1024)
    barrier = threading.Barrier(8)
    errors = []

    def work(k):
        try:
            barrier.wait()
            for i in range(300):
                a = hg.buffer_as_numpy(ex, b)
                views = [a[k::8], a.reshape(32, 32)[k]]
                views[0][i % 128] = k
                del a, views
        except Exception as exc:   # noqa: BLE001 — reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    keep = hg.buffer_as_numpy(ex, b)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert "has 1 pin" in busy(hg.buffer_cleanup, b)
    del keep
    hg.buffer_cleanup(b)


def test_one_dtype_rule_for_both_copies(ex):
    b = hg.executor_allocate_buffer(ex, 3)
    x64 = np.array([0.1, 2.5, -3.0])
    for call in (lambda a, **kw: hg.buffer_copy_from_numpy(ex, b, a, **kw),
                 lambda a, **kw: hg.Executor.from_numpy(executor, a, **kw)):
        with hg.Executor() as executor:
            for bad, name in ((x64, "float64"), (x64.astype(np.int32), "int32"),
                              ([1.0, 2.0], "list")):
                with pytest.raises(TypeError, match=f"not {name} \\(cast=True converts\\)"):
                    call(bad)
            call(x64, cast=True)
            call([1, 2, 3], cast=True)
    hg.buffer_copy_from_numpy(ex, b, x64, cast=True)
    assert hg.buffer_to_numpy(ex, b).tolist() == x64.astype(np.float32).tolist()
    with hg.Executor() as executor:
        nc = np.arange(6, dtype=np.float32)[::2]                 # float32, not contiguous
        assert executor.to_numpy(executor.from_numpy(nc)).tolist() == [0, 2, 4]
        with pytest.raises(hg.InvalidArgumentError, match="not C-contiguous"):
            hg.buffer_copy_from_numpy(ex, b, nc)
        hg.buffer_copy_from_numpy(ex, b, nc, cast=True)


def test_unclosed_executor_warns_and_is_freed():
    ex = hg.Executor()
    handle = ex.handle
    ex.allocate_buffer(10)
    with pytest.warns(ResourceWarning, match="unclosed <hologram_ffi.Executor"):
        del ex
        gc.collect()
    with pytest.raises(hg.InvalidHandleError):
        hg.executor_cleanup(handle)                     # freed by the collector
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with hg.Executor():                              # closed: no warning
            pass


RSS_PROBE = r"""
import gc, warnings
import hologram_ffi as hg

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

warnings.simplefilter("ignore", ResourceWarning)
hg.Executor().allocate_buffer(1)     # the library's one-time state, before the baseline
gc.collect()
before = rss_mib()
for _ in range(100):
    ex = hg.Executor()
    b = ex.allocate_buffer(1 << 20)
    ex.buffer_fill(b, 1.0, 1 << 20)                               # 4 MiB, touched
    for c in range(96):                                           # the 1.1 MiB pool, touched
        ex.buffer_fill(ex.allocate_boundary_buffer(c, 48, 256), 1.0, 3072)
    del ex
gc.collect()
print(f"{before:.1f} {rss_mib():.1f}")
"""


def test_hundred_unclosed_executors_leave_little_memory():
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:      # an ASan build: freed blocks are reused, not quarantined
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=0"
    out = subprocess.run([sys.executable, "-c", RSS_PROBE], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    print(f"RSS before {before:.1f} MiB, after 100 unclosed executors {after:.1f} MiB")
    assert after - before < 64, (before, after)          # 100 leaked would be >= 500 MiB
