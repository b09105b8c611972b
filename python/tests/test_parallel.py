"""Threads (hg_set_num_threads, HOLOGRAM_THREADS, the work-sharing pool) and fork():
results that do not depend on the thread count, bad values refused by name, a thread count
changed while other threads compute, and children that use hologram right after fork()
(multiprocessing's fork and spawn, and a raw os.fork() while another thread compiles)."""
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import download, sum_bound, upload

F32 = np.float32
N = 1 << 20 | 12345          # past every split threshold, not a multiple of a chunk
# ThreadSanitizer kills a forked child of a multi-threaded process that starts a thread
# (its die_after_fork): under TSan (the sanitizer build preloads its runtime) the fork
# tests cannot run; they run in every other build, ASan's included.
UNDER_TSAN = "tsan" in os.environ.get("LD_PRELOAD", "")
no_fork_under_tsan = pytest.mark.skipif(UNDER_TSAN, reason="TSan: no threads in a forked "
                                        "child of a multi-threaded process")


@pytest.fixture(autouse=True)
def _restore_threads():
    before = hg.get_num_threads()
    yield
    hg.set_num_threads(before)


def _ops(e, x, y, n):
    """Outputs of a map, a transcendental map, three reductions, a loss, softmax and a gemm
    (bits as uint32, so NaN and -0 compare exactly)."""
    a, b, c = upload(e, x), upload(e, y), hg.executor_allocate_buffer(e, n)
    out = {}
    hg.vector_add_f32(e, a, b, c, n)
    out["add"] = download(e, c).view(np.uint32)
    hg.sigmoid_f32(e, a, c, n)
    out["sigmoid"] = download(e, c).view(np.uint32)
    hg.softmax_f32(e, a, c, n)
    out["softmax"] = download(e, c).view(np.uint32)
    out["sum"] = np.float32(hg.reduce_sum_f32(e, a, c, n)).view(np.uint32)
    out["min"] = np.float32(hg.reduce_min_f32(e, a, c, n)).view(np.uint32)
    out["max"] = np.float32(hg.reduce_max_f32(e, a, c, n)).view(np.uint32)
    out["mse"] = np.float32(hg.mse_loss_f32(e, a, b, c, n)).view(np.uint32)
    m, k, nn = 300, 257, 129
    A, B = upload(e, x[:m * k]), upload(e, y[:k * nn])
    C = hg.executor_allocate_buffer(e, m * nn)
    hg.gemm_f32(e, A, B, C, m, nn, k)
    out["gemm"] = download(e, C)
    for h in (a, b, c, A, B, C):
        hg.buffer_cleanup(h)
    return out


def test_results_do_not_depend_on_the_thread_count(backend):
    rng = np.random.default_rng(3)
    x = rng.uniform(-4, 4, N).astype(F32)
    y = rng.uniform(0.01, 1, N).astype(F32)
    x[[5, N // 2, N - 3]] = [-0.0, np.inf, -np.inf]
    e = hg.new_executor()
    runs = {}
    for t in (1, 2, 3):
        hg.set_num_threads(t)
        runs[t] = _ops(e, x, y, N)
    hg.executor_cleanup(e)
    for t in (2, 3):
        for name in runs[1]:
            if name == "gemm":   # not an exact op: compared with a tolerance below
                continue
            np.testing.assert_array_equal(runs[t][name], runs[1][name], err_msg=f"{name}, {t} threads")
    m, k, nn = 300, 257, 129
    ref = x[:m * k].astype(np.float64).reshape(m, k) @ y[:k * nn].astype(np.float64).reshape(k, nn)
    for t in (1, 2, 3):
        np.testing.assert_allclose(runs[t]["gemm"].reshape(m, nn), ref, rtol=1e-5, atol=1e-3)
    assert np.isnan(runs[1]["sum"].view(F32))      # inf + -inf, in whichever chunks they fall


def test_one_row_and_one_column_gemm_shapes():
    """m = 1 (row-major B: direct tiles; column-major B: swapped into the matvec shape) and
    n = 1 (the matvec kernel), against NumPy float64, on 1 and 2 threads."""
    rng = np.random.default_rng(8)
    e = hg.new_executor()
    try:
        for m, n, k in ((1, 1024, 1024), (1, 3, 700), (1024, 1, 1024), (5, 2000, 300),
                        (64, 4096, 16)):
            A = rng.standard_normal((m, k)).astype(F32)
            B = rng.standard_normal((k, n)).astype(F32)
            ref = A.astype(np.float64) @ B
            for t in (1, 2):
                hg.set_num_threads(t)
                ta = hg.tensor_from_buffer(upload(e, A.ravel()), f"[{m}, {k}]")
                # B as the transpose of a row-major (n, k): column-major, b_rs = 1
                bt = hg.tensor_from_buffer(upload(e, np.ascontiguousarray(B.T).ravel()), f"[{n}, {k}]")
                tb = hg.tensor_from_buffer(upload(e, B.ravel()), f"[{k}, {n}]")
                for rhs in (tb, hg.tensor_transpose(bt)):
                    c = hg.tensor_matmul(e, ta, rhs)
                    got = download(e, hg.tensor_buffer(c)).reshape(m, n)
                    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3 * np.sqrt(k),
                                               err_msg=f"{m}x{n}x{k}, {t} threads")
    finally:
        hg.executor_cleanup(e)


@pytest.mark.parametrize("bad", [0, -1, 257, 10**12])
def test_set_num_threads_refuses_bad_values_by_name(bad):
    hg.set_num_threads(2)
    with pytest.raises(hg.InvalidArgumentError, match=f"threads = {bad} is not in 1..256"):
        hg.set_num_threads(bad)
    assert hg.get_num_threads() == 2


@pytest.mark.parametrize("bad", ["4", 2.5, None])
def test_set_num_threads_refuses_non_integers(bad):
    with pytest.raises(TypeError):
        hg.set_num_threads(bad)


def _child(code, env_extra):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1e3", "257", "100000000000000000000", " 2",
                                 ""])
def test_hologram_threads_bad_values_are_named(bad):
    code = ("import hologram_ffi as hg\n"
            "try:\n    hg.get_num_threads()\nexcept hg.InvalidArgumentError as exc:\n"
            "    print('refused', exc)\nelse:\n    print('accepted', hg.get_num_threads())\n"
            "hg.set_num_threads(3)\nprint('set', hg.get_num_threads())\n")
    r = _child(code, {"HOLOGRAM_THREADS": bad})
    assert r.returncode == 0, r.stderr
    if bad == "":           # unset in effect: the default
        assert "accepted" in r.stdout
    else:
        assert f'HOLOGRAM_THREADS="{bad}" is not an integer from 1 to 256' in r.stdout
    assert "set 3" in r.stdout


def test_default_is_the_affinity_mask():
    code = "import hologram_ffi as hg; print(hg.get_num_threads())"
    r = _child(code, {"HOLOGRAM_THREADS": ""})
    assert int(r.stdout) == min(len(os.sched_getaffinity(0)), 256)
    if len(os.sched_getaffinity(0)) > 1:
        pinned = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code],
                                capture_output=True, text=True, timeout=60)
        assert pinned.returncode == 0 and int(pinned.stdout) == 1


def test_set_num_threads_while_other_threads_compute():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, N).astype(F32)
    e = hg.new_executor()
    a, want = upload(e, x), None
    hg.set_num_threads(1)
    c0 = hg.executor_allocate_buffer(e, N)
    hg.sigmoid_f32(e, a, c0, N)
    want = download(e, c0)
    errors, stop = [], threading.Event()

    def compute():
        c = hg.executor_allocate_buffer(e, N)
        try:
            for _ in range(30):
                hg.sigmoid_f32(e, a, c, N)
                np.testing.assert_array_equal(download(e, c), want)
        except BaseException as exc:
            errors.append(exc)

    def flip():
        i = 0
        while not stop.is_set():
            hg.set_num_threads(1 + i % 3)
            i += 1

    workers = [threading.Thread(target=compute) for _ in range(3)]
    flipper = threading.Thread(target=flip)
    flipper.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    flipper.join()
    hg.executor_cleanup(e)
    assert not errors, errors


def _use_hologram(q):
    """A child's first calls: a new executor, a split map and a reduction."""
    x = np.linspace(-1, 1, N, dtype=F32)
    e = hg.new_executor()
    a = upload(e, x)
    c = hg.executor_allocate_buffer(e, N)
    hg.vector_add_f32(e, a, a, c, N)
    ok = np.array_equal(download(e, c), x + x)
    s = hg.reduce_sum_f32(e, a, c, N)
    hg.executor_cleanup(e)
    q.put((ok, abs(s - x.astype(np.float64).sum()) <= sum_bound(x), hg.get_num_threads()))


@pytest.mark.parametrize("method", [pytest.param("fork", marks=no_fork_under_tsan), "spawn"])
def test_child_processes_use_hologram_after_a_threaded_op(method):
    hg.set_num_threads(2)
    parent = hg.new_executor()
    a = upload(parent, np.ones(N, F32))
    hg.reduce_sum_f32(parent, a, a, N)          # the pool has run: its workers exist
    ctx = multiprocessing.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=_use_hologram, args=(q,)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(ok and small for ok, small, _ in results), results
    if method == "fork":                          # the setting is inherited; the pool anew
        assert all(t == 2 for _, _, t in results)
    hg.executor_cleanup(parent)


@no_fork_under_tsan
def test_raw_fork_while_another_thread_compiles():
    """A parent thread compiles new kernels (new expressions, new exact lengths) while the
    main thread forks; every child creates an executor and computes at once, and exits."""
    stop = threading.Event()

    def compile_forever():
        e = hg.new_executor()
        i = 0
        while not stop.is_set():
            n = 40 + i % 200
            b = hg.executor_allocate_buffer(e, n)
            hg.evaluate(f"x * {i}.5 + sqrt(abs(x)) * {i % 7}", {"x": np.ones(n, F32)})
            hg.tanh_f32(e, b, b, n)
            hg.buffer_cleanup(b)
            i += 1
        hg.executor_cleanup(e)

    th = threading.Thread(target=compile_forever)
    th.start()
    try:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:                        # the child: hologram at once, then _exit
                code = 1
                try:
                    e = hg.new_executor()
                    x = np.linspace(0, 1, N, dtype=F32)
                    a = upload(e, x)
                    hg.scalar_mul_f32(e, a, a, N, 2.0)
                    code = 0 if np.array_equal(download(e, a), x * F32(2)) else 2
                    hg.executor_cleanup(e)
                finally:
                    os._exit(code)
            deadline_ok = False
            for _ in range(600):                 # 60 s
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    deadline_ok = True
                    break
                threading.Event().wait(0.1)
            if not deadline_ok:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("a child forked while a thread compiled hung")
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        stop.set()
        th.join()


def test_nd_results_do_not_depend_on_the_thread_count(backend):
    """N-d operands (GRID programs, split along dimension 0): a transposed map, a
    broadcast, reductions along each axis, row softmax, a strided copy — the same bits on
    1, 2 and 3 threads, and NumPy's values (float64 reference, stated tolerances)."""
    rng = np.random.default_rng(5)
    a = rng.uniform(-3, 3, (700, 900)).astype(F32)
    b = rng.uniform(-3, 3, (900, 700)).astype(F32)
    row = rng.uniform(-1, 1, 700).astype(F32)
    runs = {}
    for t in (1, 2, 3):
        hg.set_num_threads(t)
        runs[t] = {
            "aT+b": hg.evaluate("aT + b * 2", {"aT": a.T, "b": b}),
            "bias": hg.evaluate("b + row", {"b": b, "row": row}),
            "sum0": hg.apply("reduce_sum_f32", a, axis=0),
            "sum1": hg.apply("reduce_sum_f32", a, axis=1),
            "max1": hg.apply("reduce_max_f32", a[:, ::3], axis=1),
            "softmax": hg.softmax(a, axis=-1),
            "copy": hg.evaluate("x", {"x": a[::-1, ::2]}),
        }
    for t in (2, 3):
        for name, got in runs[t].items():
            np.testing.assert_array_equal(got.view(np.uint32), runs[1][name].view(np.uint32),
                                          err_msg=f"{name}, {t} threads")
    r, d = runs[1], a.astype(np.float64)
    np.testing.assert_array_equal(r["aT+b"], a.T + b * F32(2))
    np.testing.assert_array_equal(r["bias"], b + row)
    np.testing.assert_array_equal(r["max1"], a[:, ::3].max(axis=1))
    np.testing.assert_array_equal(r["copy"], a[::-1, ::2])
    np.testing.assert_allclose(r["sum0"], d.sum(axis=0), rtol=0, atol=1e-6 * 10 * np.abs(d).sum(axis=0).max())
    np.testing.assert_allclose(r["sum1"], d.sum(axis=1), rtol=0, atol=1e-6 * 10 * np.abs(d).sum(axis=1).max())
    e = np.exp(d - d.max(axis=1, keepdims=True))
    np.testing.assert_allclose(r["softmax"], e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
