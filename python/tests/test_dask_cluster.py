"""hologram_ffi.dask on a real cluster: distributed.LocalCluster with two worker processes
of one thread each, arrays of 2e7 float32 in 16 chunks made on the workers.  Maps bit-equal
to hologram_ffi.evaluate on the whole arrays (and to NumPy on exact ones), reductions within
the sum bound, the ops, the workers' own state (threads, executor, kernels compiled once,
the disk cache shared), a worker killed mid-computation, a chunk's error raised as its
class.  Skipped only where Dask or dask.distributed is not installed (dev.sh installs
python3-dask and python3-distributed)."""
import os
import signal

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import exp_family_close, sum_bound

try:
    import dask.array as da
    import distributed

    import hologram_ffi.dask as hd
except ImportError as exc:
    pytest.skip(f"Dask or dask.distributed is not installed ({exc}); dev.sh installs "
                "python3-dask and python3-distributed", allow_module_level=True)

F32 = np.float32
SHAPE, CHUNKS = (4000, 5000), (1000, 1250)          # 2e7 elements, 4 x 4 = 16 chunks


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(client, the workers' kernel-cache directory): a LocalCluster of 2 processes x 1
    thread whose workers share a fresh disk cache and do not inherit HOLOGRAM_THREADS."""
    cache = tmp_path_factory.mktemp("worker-kernel-cache")
    threads = os.environ.pop("HOLOGRAM_THREADS", None)   # workers get the environment at spawn
    try:
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None,
                                      env={"HOLOGRAM_CACHE_DIR": str(cache)})
    finally:
        if threads is not None:
            os.environ["HOLOGRAM_THREADS"] = threads
    client = distributed.Client(lc)
    yield client, cache
    client.close()
    lc.close()


@pytest.fixture(scope="module")
def data(cluster):
    """(a, b) as Dask arrays of SHAPE in CHUNKS, made on the workers, and (A, B) their
    values as NumPy arrays."""
    rs = da.random.RandomState(1234)
    a = rs.uniform(-3, 3, SHAPE, chunks=CHUNKS).astype(F32)
    b = rs.uniform(-3, 3, SHAPE, chunks=CHUNKS).astype(F32)
    A, B = a.compute(), b.compute()
    assert a.size >= 2e7 and a.npartitions >= 16
    return a, b, A, B


def test_maps_bit_exact(data):
    a, b, A, B = data
    y = hd.evaluate("2*a + 3*b").compute()
    np.testing.assert_array_equal(y, F32(2) * A + F32(3) * B)
    w = 0.5
    y = hd.evaluate("sigmoid(a*w + b)").compute()
    np.testing.assert_array_equal(y, hg.evaluate("sigmoid(a*w + b)", {"a": A, "b": B, "w": w}))
    t = A.astype(np.float64) * w + B
    exp_family_close(y[::97], 1 / (1 + np.exp(-t[::97])))
    np.testing.assert_array_equal(hd.sigmoid(a).compute(), hg.apply("sigmoid_f32", A))


@pytest.mark.parametrize("text", ["sum((a - b)**2)", "mean(a*b)", "min(a - b)", "max(a*b)",
                                  "sum(a*b, axis=0)", "mean(a - b, axis=1)"])
def test_reductions(data, text):
    a, b, A, B = data
    got = hd.evaluate(text).compute()
    if text.startswith(("min", "max")):
        assert got == hg.evaluate(text, {"a": A, "b": B})
        return
    a64, b64 = A.astype(np.float64), B.astype(np.float64)
    terms = {"sum((a - b)**2)": (a64 - b64) ** 2, "mean(a*b)": a64 * b64,
             "sum(a*b, axis=0)": a64 * b64, "mean(a - b, axis=1)": a64 - b64}[text]
    if "axis=0" in text:
        ref, bound = terms.sum(0), [sum_bound(terms[:, j]) for j in range(terms.shape[1])]
    elif "axis=1" in text:
        ref = terms.mean(1)
        bound = [sum_bound(row) / row.size for row in terms]
    else:
        n = terms.size if text.startswith("mean") else 1
        ref, bound = terms.sum() / n, sum_bound(terms) / n
    assert np.all(np.abs(np.asarray(got, np.float64) - ref) <= np.asarray(bound)
                  + 2 ** -24 * np.abs(ref))


def test_ops(data):
    a, b, A, B = data
    p = hd.sigmoid(a)
    got = float(hd.mse_loss(p, hd.sigmoid(b)).compute())
    P, Q = hg.apply("sigmoid_f32", A).astype(np.float64), hg.apply("sigmoid_f32", B)
    terms = (P - Q) ** 2
    assert abs(got - terms.mean()) <= sum_bound(terms) / terms.size
    s = hd.softmax(a[:1000].rechunk((250, -1))).compute()   # rows chunked, each row whole
    x = A[:1000].astype(np.float64)
    e = np.exp(x - x.max(1, keepdims=True))
    assert np.all(np.abs(s - e / e.sum(1, keepdims=True)) <= 1e-5 * e / e.sum(1, keepdims=True)
                  + 1e-30)
    m = hd.matmul(a[:1000, :2000], b[:2000, :600])     # 1 x 2 x 1 blocks of gemm
    ref = A[:1000, :2000].astype(np.float64) @ B[:2000, :600]
    assert np.abs(m.compute() - ref).max() <= 1e-5 * 2000 * 3 * 3


def _round(client, r):
    """Runs a fused reduction and a matmul on each worker alone, on inputs filled with a
    value of their own (new keys for the scheduler: computed again, never reused); every
    worker's worker_info() afterwards."""
    n = 2000 * 2500
    for i, w in enumerate(sorted(client.run(hd.worker_info))):
        k = 2 * r + i
        x = da.full((2000, 2500), k, chunks=CHUNKS, dtype=F32)   # 2 x 2 chunks
        s, m = client.compute([hd.evaluate("sum(sigmoid(x*0.5 - 1))"),
                               hd.matmul(x, x.T).max()], workers=[w], allow_other_workers=False)
        assert abs(s.result() - n / (1 + np.exp(1 - k / 2))) <= 1e-5 * n
        assert m.result() == k * k * 2500
    return client.run(hd.worker_info)


def test_worker_state(cluster):
    client, cache = cluster
    before, after = _round(client, 1), _round(client, 2)
    assert len(after) == 2 and len({i["pid"] for i in after.values()}) == 2
    for w, info in after.items():
        assert info["in_worker"] and info["HOLOGRAM_THREADS"] == "1"
        assert info["HOLOGRAM_CACHE_DIR"] == str(cache)
        assert info["executor"] is not None and info["executor"] == before[w]["executor"]
        for counter in ("compiles", "disk_loads", "entries"):   # every kernel from its cache
            assert info["cache"][counter] == before[w]["cache"][counter], counter
        if info["backend"] == "jit":
            assert info["cache"]["hits"] >= before[w]["cache"]["hits"] + 4
        else:                              # the interpreter needs no kernel
            assert info["cache"]["hits"] == info["cache"]["entries"] == 0


def test_kernels_compiled_by_one_worker_load_from_disk_on_the_other(cluster):
    client, _ = cluster
    one, other = sorted(client.run(hd.worker_info))
    text = "x*1.0625 + 3.5"               # a form no other test compiles
    stats = {}
    for k, w in enumerate((one, other)):  # inputs that differ: new keys, computed again
        x = da.full(300_000, k, chunks=100_000, dtype=F32)
        y = client.compute(hd.evaluate(text), workers=[w], allow_other_workers=False)
        np.testing.assert_array_equal(y.result(), np.full(300_000, F32(k * 1.0625 + 3.5)))
        stats[w] = client.run(hd.worker_info)
    backend = stats[one][one]["backend"]
    a0, a1 = stats[one][other]["cache"], stats[other][other]["cache"]
    if backend == "jit":                   # compiled on `one`, loaded from disk on `other`
        assert stats[one][one]["cache"]["compiles"] > 0
        assert a1["compiles"] == a0["compiles"] and a1["disk_loads"] > a0["disk_loads"]
    else:                                  # the interpreter compiles nothing
        assert a1["compiles"] == a0["compiles"] == 0


def _kill_once(block, marker, block_id=None):
    """Kills its own worker process when it computes block (2, 1) the first time (claimed
    through `marker`, a file made exclusively); otherwise the block itself."""
    if block_id == (2, 1):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return block
        os.kill(os.getpid(), signal.SIGKILL)
    return block


def test_a_worker_killed_mid_computation(cluster, data, tmp_path):
    client, _ = cluster
    a, b, A, B = data
    marker = str(tmp_path / "killed")
    pids = set(i["pid"] for i in client.run(hd.worker_info).values())
    doomed = a.map_blocks(_kill_once, marker, meta=np.empty((0, 0), F32))
    got = hd.evaluate("sum((doomed - b)**2)").compute()
    assert os.path.exists(marker)
    terms = (A.astype(np.float64) - B) ** 2
    assert abs(float(got) - terms.sum()) <= sum_bound(terms)
    client.wait_for_workers(2, timeout=60)
    assert len(pids & set(i["pid"] for i in client.run(hd.worker_info).values())) == 1


def _lying(block, block_id=None):
    """Block (1, 2) one row longer than the graph declares."""
    return np.ones((block.shape[0] + (block_id == (1, 2)), block.shape[1]), F32)


def test_a_chunk_error_is_raised_as_its_class(data):
    a, b, _, _ = data
    liar = a.map_blocks(_lying, meta=np.empty((0, 0), F32))
    with pytest.raises(hg.ShapeError, match=r"shapes 'liar' \(1001, 1250\), 'b' \(1000, 1250\) "
                                            "do not broadcast") as caught:
        hd.evaluate("liar + b").compute()
    assert caught.value.status == hg._STATUS_VALUES["HG_ERR_SHAPE"]
