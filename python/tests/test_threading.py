"""Several threads calling into one shared executor and into their own (cffi releases the
GIL on every call)."""
import threading

import numpy as np

import hologram_ffi as hg
from conftest import download, upload

THREADS = 4
ROUNDS = 200


def _run_threads(target):
    errors = []

    def guarded(i):
        try:
            target(i)
        except BaseException as exc:            # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def _work(e, i):
    n = 1000 + i
    x = np.arange(n, dtype=np.float32) * (i + 1)
    a, c = upload(e, x), hg.executor_allocate_buffer(e, n)
    for r in range(ROUNDS):
        hg.scalar_add_f32(e, a, c, n, float(r))
        if r % 50 == 0:
            np.testing.assert_array_equal(download(e, c), x + np.float32(r))
            assert hg.reduce_max_f32(e, c, c, n) == float(x[-1] + np.float32(r))
    hg.buffer_cleanup(a)
    hg.buffer_cleanup(c)


def test_threads_share_one_executor():
    e = hg.new_executor()
    try:
        _run_threads(lambda i: _work(e, i))
    finally:
        hg.executor_cleanup(e)


def test_threads_with_their_own_executors():
    def own(i):
        e = hg.new_executor()
        try:
            _work(e, i)
            t = hg.tensor_from_buffer(hg.executor_allocate_buffer(e, 12), "[3, 4]")
            assert hg.tensor_shape(hg.tensor_transpose(t)) == "[4, 3]"
        finally:
            hg.executor_cleanup(e)

    _run_threads(own)


def test_threads_allocating_and_freeing():
    e = hg.new_executor()
    try:
        def churn(i):
            for _ in range(ROUNDS):
                b = hg.executor_allocate_buffer(e, 64 + i)
                t = hg.tensor_from_buffer(b, "[8, 8]")
                hg.tensor_cleanup(t)
                hg.buffer_cleanup(b)

        _run_threads(churn)
    finally:
        hg.executor_cleanup(e)
