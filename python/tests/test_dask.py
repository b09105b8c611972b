"""hologram_ffi.dask on Dask's synchronous scheduler, under both engines: maps bit-equal to
hologram_ffi.evaluate / apply on the whole NumPy arrays (whatever the chunks, misaligned
ones included), reductions against float64 within the sum bound (min/max bit-equal to the
whole-array result), matmul within the gemm bound, bad input refused when the graph is
built, the per-process state across a fork; and, without Dask, that `import hologram_ffi`
never imports it.  The real cluster:
test_dask_cluster.py."""
import ast
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import exp_family_close, sum_bound

try:
    import dask.array as da

    import hologram_ffi.dask as hd
    MISSING = None
except ImportError as exc:
    MISSING = f"Dask is not installed ({exc}); dev.sh installs python3-dask"

needs_dask = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
F32 = np.float32
PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]


def _python(code):
    """The output of `code` run in a fresh interpreter with this one's environment (which
    must succeed)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---- without Dask ------------------------------------------------------------------------------

def test_import_hologram_ffi_never_imports_dask():
    assert _python("import sys, numpy, hologram_ffi as hg\n"
                   "hg.evaluate('a + 1', {'a': numpy.ones(3, numpy.float32)})\n"
                   "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                   "('dask', 'distributed')))").strip() == "[]"


def test_hologram_ffi_dask_without_dask_is_an_import_error():
    said = _python("import sys\nsys.modules['dask'] = None\n"
                   "import hologram_ffi\n"
                   "try:\n    import hologram_ffi.dask\n"
                   "except ImportError as e:\n    print(e)\n")
    assert "hologram_ffi.dask needs Dask's arrays" in said and "python3-dask" in said


# ---- operands ------------------------------------------------------------------------------------

def _data(rng, shape, lo=-4.0, hi=4.0):
    return rng.uniform(lo, hi, shape).astype(F32)


def _chunked(x, rng):
    """x as a Dask array with random chunks along every axis (sizes 1 to the extent)."""
    chunks = []
    for e in x.shape:
        c, left = [], e
        while left > 0:
            c.append(int(min(left, rng.integers(1, max(e // 2, 1) + 2))))
            left -= c[-1]
        chunks.append(tuple(c) or (0,))
    return da.from_array(x, chunks=tuple(chunks))


def _compute(x):
    return x.compute(scheduler="synchronous")


SHAPES = [((37,), (37,)), ((40, 30), (30,)), ((12, 1, 9), (5, 1)), ((6, 7, 8), (6, 7, 8))]


@needs_dask
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("text", ["2*a + 3*b", "where(a > 0, a, 0.1*b) - a*b",
                                  "sigmoid(a*w + b)", "gelu(a) / (1 + abs(b))"])
def test_maps_equal_the_whole_array_result(backend, text, seed):
    rng = np.random.default_rng(seed)
    sa, sb = SHAPES[seed]
    A, B, w = _data(rng, sa), _data(rng, sb), 0.75
    a, b = _chunked(A, rng), _chunked(B, rng)
    y = hd.evaluate(text)
    assert y.dtype == F32 and y.shape == np.broadcast_shapes(sa, sb)
    got = _compute(y)
    np.testing.assert_array_equal(got, hg.evaluate(text, {"a": A, "b": B, "w": w}))
    if text == "2*a + 3*b":
        np.testing.assert_array_equal(got, F32(2) * A + F32(3) * B)


@needs_dask
def test_map_operands_numpy_and_lazy_scalars(backend):
    rng = np.random.default_rng(5)
    X, bias = _data(rng, (50, 20)), _data(rng, (20,))
    x = da.from_array(X, chunks=(7, 20))
    total = hd.evaluate("sum(x)")                   # a 0-d Dask array: a lazy scalar
    y = hd.evaluate("x / total + bias")             # bias: a NumPy array
    s = float(_compute(total))
    assert abs(s - X.astype(np.float64).sum()) <= sum_bound(X)
    np.testing.assert_array_equal(_compute(y), hg.evaluate("x / s + bias", {"x": X, "s": s,
                                                                           "bias": bias}))
    assert _compute(hd.evaluate("total * 2")) == F32(s) * 2          # a 0-d map
    assert _compute(hd.evaluate("max(total)")) == F32(s)            # reduced over no axis


REDUCTIONS = ["sum((a - b)**2)", "mean(a*b)", "min(a - b)", "max(a*b)", "sum(a*b, axis=0)",
              "mean(a + b, axis=-1)", "min(a*b, axis=1)", "max(a - b, axis=0)"]


@needs_dask
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("text", REDUCTIONS)
def test_reductions(backend, text, seed):
    rng = np.random.default_rng(10 + seed)
    A, B = _data(rng, (60, 45)), _data(rng, (45,) if seed == 1 else (60, 45))
    a, b = _chunked(A, rng), _chunked(B, rng)
    r = hd.evaluate(text)
    whole = hg.evaluate(text, {"a": A, "b": B})
    got = _compute(r)
    assert got.dtype == F32 and np.shape(got) == np.shape(whole)
    kind = text.split("(")[0]
    if kind in ("min", "max"):            # hologram's reduce merges the partials: exact
        np.testing.assert_array_equal(got, whole)
        return
    a64, b64 = A.astype(np.float64), B.astype(np.float64)
    terms = {"sum((a - b)**2)": (a64 - b64) ** 2, "mean(a*b)": a64 * b64,
             "sum(a*b, axis=0)": a64 * b64, "mean(a + b, axis=-1)": a64 + b64}[text]
    terms = np.broadcast_to(terms, (60, 45))
    axis = 0 if "axis=0" in text else -1 if "axis=-1" in text else None
    rows = terms.reshape(1, -1) if axis is None else np.moveaxis(terms, axis, -1)
    n = rows.shape[-1]
    for g, row in zip(np.ravel(got), rows):
        want = row.sum() / (n if kind == "mean" else 1)
        bound = sum_bound(row) / (n if kind == "mean" else 1)
        assert abs(float(g) - want) <= bound + 2 ** -24 * abs(want)


@needs_dask
def test_min_max_propagate_nan_and_order_zeros(backend):
    z = np.zeros(40, F32)
    z[3] = -0.0                   # in the first of five chunks (np.min of the partials: +0)
    assert np.signbit(_compute(hd.evaluate("min(a)", {"a": da.from_array(z, chunks=8)})))
    assert not np.signbit(_compute(hd.evaluate("max(a)", {"a": da.from_array(-z, chunks=8)})))
    x = np.ones(40, F32)
    x[21] = np.nan
    for text in ("min(a)", "max(a)", "sum(a)", "mean(a)"):
        assert np.isnan(_compute(hd.evaluate(text, {"a": da.from_array(x, chunks=8)}))), text


@needs_dask
def test_reductions_of_nothing():
    empty = da.zeros((0, 4), dtype=F32, chunks=2)
    assert _compute(hd.evaluate("sum(e)", {"e": empty})) == 0
    assert np.isnan(_compute(hd.evaluate("mean(e)", {"e": empty})))
    np.testing.assert_array_equal(_compute(hd.evaluate("sum(e, axis=0)", {"e": empty})),
                                  np.zeros(4, F32))
    for text in ("min(e)", "max(e, axis=0)"):
        with pytest.raises(hg.InvalidArgumentError, match="over no elements"):
            hd.evaluate(text, {"e": empty})
    # Unknown sizes: known only when the chunks run; empty chunks are neutral
    x = da.from_array(np.arange(20, dtype=F32), chunks=5)
    kept = x[x > 12]
    assert _compute(hd.evaluate("min(k)", {"k": kept})) == 13
    assert _compute(hd.evaluate("sum(k)", {"k": kept})) == sum(range(13, 20))
    with pytest.raises(hg.InvalidArgumentError, match="max over no elements"):
        _compute(hd.evaluate("max(k)", {"k": x[x > 100]}))


# ---- ops -----------------------------------------------------------------------------------------

def _softmax_close(got, x, axis):
    """got within test_nd's softmax bound of the float64 softmax of x over axis."""
    t = x.astype(np.float64)
    e = np.exp(t - t.max(axis=axis, keepdims=True))
    want = e / e.sum(axis=axis, keepdims=True)
    tol = (sum_bound(np.ones(x.shape[axis])) + 4 * 2.0 ** -23) * want + 1e-30
    assert got.shape == x.shape and got.dtype == F32
    assert np.all(np.abs(got - want) <= tol)


@needs_dask
def test_activations_and_softmax(backend):
    rng = np.random.default_rng(3)
    X = _data(rng, (70, 33), -8, 8)
    x = da.from_array(X, chunks=(9, 33))
    y = _compute(hd.sigmoid(x))
    np.testing.assert_array_equal(y, hg.apply("sigmoid_f32", X))
    exp_family_close(y, 1 / (1 + np.exp(-X.astype(np.float64))))
    np.testing.assert_array_equal(_compute(hd.gelu(_chunked(X, rng))), hg.apply("gelu_f32", X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # rows whole: no rechunk, no warning
        y = hd.softmax(x)
    assert y.chunks == x.chunks
    _softmax_close(_compute(y), X, -1)


@needs_dask
def test_softmax_over_a_split_axis_rechunks_with_a_warning(backend):
    X = np.random.default_rng(4).standard_normal((6, 40)).astype(F32) * 5
    with pytest.warns(da.core.PerformanceWarning,
                      match=r"axis 1 is split into 4 chunks; rechunked.*rechunk\(\{1: -1\}\)") \
            as caught:
        y = hd.softmax(da.from_array(X, chunks=(3, 10)))
    assert caught[0].filename == __file__
    assert y.chunks == ((3, 3), (40,))
    _softmax_close(_compute(y), X, -1)
    with pytest.warns(da.core.PerformanceWarning, match="axis 0 is split into 4 chunks"):
        y0 = hd.softmax(da.from_array(X, chunks=(3, 10)).T, axis=0)
    _softmax_close(_compute(y0), X.T, 0)


LOSSES = {"mse_loss": lambda p, t: (p - t) ** 2,
          "cross_entropy_loss": lambda p, t: -t * np.log(np.maximum(p, np.float32(1e-7))),
          "binary_cross_entropy_loss": lambda p, t: -(t * np.log(np.clip(p, 1e-7, 1 - 1e-7)) + (
              1 - t) * np.log(1 - np.clip(p, 1e-7, 1 - 1e-7)))}


@needs_dask
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("axis", [None, -1])
def test_losses(backend, name, axis):
    rng = np.random.default_rng(6)
    P, T = rng.uniform(0, 1, (64, 50)).astype(F32), rng.uniform(0, 1, (64, 50)).astype(F32)
    r = getattr(hd, name)(_chunked(P, rng), _chunked(T, rng), axis=axis)
    got = np.asarray(_compute(r), np.float64)
    terms = LOSSES[name](P.astype(np.float64), T.astype(np.float64))
    rows = terms.reshape(1, -1) if axis is None else terms
    ref = rows.mean(axis=1)
    assert got.shape == (() if axis is None else (64,))
    for g, want, row in zip(np.ravel(got), ref, rows):
        assert abs(g - want) <= sum_bound(row) / row.size + 2 ** -23 * abs(want) + 1e-7


@needs_dask
def test_apply_by_family(backend):
    rng = np.random.default_rng(7)
    X, Y = _data(rng, (30, 12, 5)), _data(rng, (12, 1))
    x, y = _chunked(X, rng), _chunked(Y, rng)
    np.testing.assert_array_equal(_compute(hd.apply("vector_max_f32", x, y)),
                                  hg.apply("vector_max_f32", X, Y))
    np.testing.assert_array_equal(_compute(hd.apply("vector_clip_f32", x, params=(-1, 2.5))),
                                  np.clip(X, F32(-1), F32(2.5)))
    got = _compute(hd.apply("reduce_max_f32", x, axis=(0, 2), keepdims=True))
    np.testing.assert_array_equal(got, X.max(axis=(0, 2), keepdims=True))
    s = _compute(hd.apply("reduce_sum_f32", x, axis=(0, 2)))
    ref = X.astype(np.float64).sum(axis=(0, 2))
    for g, want, row in zip(s, ref, np.moveaxis(X, 1, 0).reshape(12, -1)):
        assert abs(float(g) - want) <= sum_bound(row)


@needs_dask
def test_matmul(backend):
    rng = np.random.default_rng(8)
    A, B = _data(rng, (70, 90), -1, 1), _data(rng, (90, 40), -1, 1)
    c = hd.matmul(da.from_array(A, chunks=(30, 20)), da.from_array(B, chunks=(25, 15)))
    assert c.shape == (70, 40) and c.dtype == F32 and c.chunks[0] == (30, 30, 10)
    got = _compute(c)
    ref = A.astype(np.float64) @ B.astype(np.float64)
    assert np.abs(got - ref).max() <= 1e-5 * 90 * np.abs(A).max() * np.abs(B).max()
    # 4 threads at once: one executor, scratch buffers of their own
    np.testing.assert_array_equal(c.compute(scheduler="threads", num_workers=4), got)
    one = _compute(hd.matmul(da.from_array(A, chunks=(70, 90)), B))  # one k block: the gemm
    with hg.Executor() as ex:
        bufs = [ex.from_numpy(A), ex.from_numpy(B), ex.allocate_buffer(70 * 40)]
        ex.gemm_f32(*bufs, 70, 40, 90)
        np.testing.assert_array_equal(one, ex.to_numpy(bufs[2]).reshape(70, 40))
    np.testing.assert_array_equal(_compute(hd.matmul(da.zeros((3, 0), dtype=F32), da.zeros((0, 4), dtype=F32))),
                                  np.zeros((3, 4), F32))


# ---- bad input, refused when the graph is built ------------------------------------------------

@needs_dask
def test_bad_input_is_refused_at_graph_build_time():
    a = da.ones((10, 4), chunks=5, dtype=F32)
    d64 = da.ones((10, 4), chunks=5)
    with pytest.raises(TypeError, match=r"Dask array 'd64' has dtype float64; it must be float32"):
        hd.evaluate("a + d64")
    with pytest.raises(TypeError, match=r"array 'n' has dtype int64"):
        hd.evaluate("a + n", {"a": a, "n": np.ones(4, np.int64)})
    with pytest.raises(TypeError, match=r"'s' is str"):
        hd.evaluate("a + s", {"a": a, "s": "1"})
    with pytest.raises(hg.ExpressionError, match="name 'nowhere' is not defined"):
        hd.evaluate("a + nowhere")
    with pytest.raises(hg.ExpressionError):
        hd.evaluate("a +* 2")
    for no_dask in (lambda: hd.evaluate("x * 2", {"x": np.ones(3, F32)}),
                    lambda: hd.evaluate("w * 2", {"w": 1.5}),
                    lambda: hd.matmul(np.ones((2, 2), F32), np.ones((2, 2), F32))):
        with pytest.raises(TypeError, match="no Dask array among its operands"):
            no_dask()
    with pytest.raises(hg.ShapeError, match=r"shapes 'a' \(10, 4\), 'b' \(3,\) do not broadcast"):
        hd.evaluate("a + b", {"a": a, "b": da.ones(3, dtype=F32)})
    programs = []
    for text in ("a*2 + 1", "sum(a*2)"):          # program documents (expr_describe's)
        h = hg.expr_compile(text)
        programs.append(json.dumps(json.loads(hg.expr_describe(h))["after"]))
        hg.expr_cleanup(h)
    np.testing.assert_array_equal(_compute(hd.evaluate(programs[0])), np.full((10, 4), 3, F32))
    with pytest.raises(hg.ExpressionError, match="a program reduction runs on NumPy arrays"):
        hd.evaluate(programs[1])
    with pytest.raises(hg.InvalidArgumentError, match="axis 2 is out of range"):
        hd.evaluate("sum(a, axis=2)")
    with pytest.raises(hg.InvalidArgumentError, match="beyond the float32 range"):
        hd.evaluate("a * w", {"a": a, "w": 1e300})
    x = da.from_array(np.arange(10, dtype=F32), chunks=5)
    with pytest.raises(hg.ShapeError, match=r"chunk sizes of 'p', 'q' are unknown.*"
                                            r"compute_chunk_sizes\(\)"):
        hd.evaluate("p + q", {"p": x[x > 3], "q": x[x > 2]})
    np.testing.assert_array_equal(_compute(hd.evaluate("p * p + 1", {"p": x[x > 6]})),
                                  np.array([50, 65, 82], F32))
    with pytest.raises(TypeError, match="Dask array '1' has dtype float64"):
        hd.sigmoid(d64)
    with pytest.raises(TypeError, match="takes 2 array"):
        hd.apply("vector_add_f32", a)
    with pytest.raises(hg.InvalidArgumentError, match="a contraction; use"):
        hd.apply("gemm_f32", a, a)
    with pytest.raises(hg.InvalidArgumentError, match="a map has no axes"):
        hd.apply("vector_abs_f32", a, axis=0)
    with pytest.raises(hg.InvalidArgumentError, match="takes 2 param"):
        hd.apply("vector_clip_f32", a, params=(1,))
    with pytest.raises(hg.InvalidArgumentError, match="unknown op 'no_such_op'"):
        hd.apply("no_such_op", a)
    for p, q in ((a, a), (a[0], a.T), (da.ones((2, 3, 4), dtype=F32), a)):
        with pytest.raises(hg.ShapeError, match=rf"shapes {re.escape(str(p.shape))} and "
                                                rf"{re.escape(str(q.shape))}"):
            hd.matmul(p, q)
    with pytest.raises(TypeError, match="Dask array 'b' has dtype float64"):
        hd.matmul(a, d64.T)


@needs_dask
def test_a_chunk_error_is_raised_at_compute_as_its_class():
    def lying(block, block_id=None):    # block 2 is one element longer than declared
        extra = 1 if block_id is not None and block_id[0] == 2 else 0
        return np.ones(block.shape[0] + extra, F32)

    x = da.ones(20, chunks=5, dtype=F32).map_blocks(lying, dtype=F32)
    y = hd.evaluate("x + z", {"x": x, "z": da.ones(20, chunks=5, dtype=F32)})
    with pytest.raises(hg.ShapeError, match=r"shapes 'x' \(6,\), 'z' \(5,\) do not broadcast"):
        _compute(y)


# ---- per-process state -----------------------------------------------------------------------------

@needs_dask
def test_state_is_per_process_and_made_again_after_a_fork():
    before = os.environ.get("HOLOGRAM_THREADS")
    parent = hd._executor()
    assert hd._executor() == parent and hd.worker_info()["executor"] == parent
    assert hd.worker_info()["in_worker"] is False
    assert os.environ.get("HOLOGRAM_THREADS") == before   # not a Dask worker: untouched
    a = da.from_array(np.arange(12, dtype=F32).reshape(3, 4), chunks=2)
    _compute(hd.matmul(a, a.T))                           # scratch buffers of this thread
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                          # the child: a new state, working
        code = 1
        try:
            os.close(r)
            child = hd._executor()
            c = _compute(hd.matmul(a, a.T))
            m = np.arange(12, dtype=F32).reshape(3, 4)
            ok = child != parent and hd._state.pid == os.getpid() and np.array_equal(c, m @ m.T)
            os.write(w, b"ok" if ok else b"wrong")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        said = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and said == b"ok"
    assert hd._executor() == parent


@needs_dask
def test_stubs_match_runtime():
    tree = ast.parse((PYTHON_DIR / "hologram_ffi" / "dask.pyi").read_text())
    stubs = {node.name: [a.arg for a in node.args.args + [node.args.vararg] * bool(
        node.args.vararg) + node.args.kwonlyargs]
             for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(stubs) == set(hd.__all__)
    for name, params in stubs.items():
        assert list(inspect.signature(getattr(hd, name)).parameters) == params, name
