"""N-d compute (hologram.h "N-d compute"): evaluate(), apply() and softmax() on NumPy arrays
of any shape and strides with broadcasting, and the tensor functions (tensor_evaluate,
tensor_evaluate_into, tensor_apply, tensor_reduce) on views, under both engines.

References: random trees of exact kinds bit-equal to their NumPy float32 evaluation (the
trees and comparisons of test_expr.py); every map op bit-equal to the same 1-D op on
contiguous copies; reductions, softmax and losses against float64 within the API's sum
bound.  Operands are random views: transposes, steps, negative steps, offsets, extents 1,
broadcast dimensions, ranks 1-4."""
import json
import math
import pathlib
import re

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import sum_bound
from test_expr import APPROX, F32, data, f32, same, tree

OPS_DEF = pathlib.Path(__file__).resolve().parents[2] / "canon" / "ops.def"
OPS = dict(re.findall(r"^HG_OP\((\w+), (\w+),", OPS_DEF.read_text(), re.M))   # name -> family


# ---- random operands --------------------------------------------------------------------------

def view(rng, shape, lo=-10.0, hi=10.0, spice=True):
    """A float32 array of `shape` that is a random view of a larger base: transposed, stepped,
    reversed and/or offset, filled with data()."""
    nd = len(shape)
    perm = rng.permutation(nd) if nd > 1 and rng.random() < 0.5 else np.arange(nd)
    steps = [int(rng.choice([1, 1, 2, 3])) for _ in range(nd)]
    flips = [bool(rng.random() < 0.25) for _ in range(nd)]
    offset = int(rng.integers(0, 3))
    base_shape = [0] * nd
    for d in range(nd):           # dimension perm[d] of the base holds dimension d
        base_shape[perm[d]] = shape[d] * steps[d] + (1 if shape[d] else 0)
    size = int(np.prod(base_shape)) + offset
    base = data(rng, size, lo, hi, spice)[offset:].reshape(base_shape)
    v = base.transpose(perm)
    index = tuple(slice(None, None, -s) if f else slice(0, None, s)
                  for s, f in zip(steps, flips))
    v = v[index]
    v = v[tuple(slice(0, e) for e in shape)]
    assert v.shape == tuple(shape)
    return v


def shapes(rng, n_ops, max_nd=4, max_extent=9):
    """(broadcast shape, [operand shapes]): ranks 1..max_nd, some extents 1, some operands
    broadcast (an extent 1 or missing leading dimensions)."""
    nd = int(rng.integers(1, max_nd + 1))
    full = [int(rng.integers(1, max_extent + 1)) if rng.random() < 0.85 else 1 for _ in range(nd)]
    ops = []
    for _ in range(n_ops):
        s = [1 if rng.random() < 0.25 else e for e in full]
        drop = int(rng.integers(0, nd)) if rng.random() < 0.3 else 0
        ops.append(tuple(s[drop:]))
    return tuple(full), ops


# ---- expressions --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_random_exact_trees_nd(backend, seed):
    rng = np.random.default_rng(2000 + seed)
    arrays, scalars = ["a", "b", "c"], ["w"]
    for _ in range(10):
        text, ref = tree(rng, 3, arrays, scalars)
        while not re.search(r"\b[abc]\b", text):
            text, ref = tree(rng, 3, arrays, scalars)
        full, ops = shapes(rng, 3)
        env = {k: view(rng, s) for k, s in zip(arrays, ops)}
        env["w"] = float(rng.uniform(-3, 3))
        got = hg.evaluate(text, env)
        with np.errstate(all="ignore"):
            want = ref({k: (v if k in arrays else F32(v)) for k, v in env.items()})
        used = [env[k] for k in arrays if re.search(rf"\b{k}\b", text)]
        shape = np.broadcast_shapes(*(u.shape for u in used))
        assert got.shape == shape and got.dtype == F32
        same(got, np.broadcast_to(want, shape))
        # out=: a strided view of a bigger array, the rest untouched
        big = np.full((2,) + shape, -7.0, F32)
        out = big[1][(slice(None, None, -1),) + (slice(None),) * (len(shape) - 1)]
        assert hg.evaluate(text, env, out=out) is out
        same(out, np.broadcast_to(want, shape))
        assert np.all(big[0] == -7.0)


def test_every_map_op_nd(backend, ex):
    """apply() of each map op on a transposed, broadcast pair: bit-equal to the 1-D op of
    the seed API on contiguous copies of the broadcast operands."""
    rng = np.random.default_rng(7)
    x = view(rng, (23, 17), -6, 6)
    y = view(rng, (17,), 0.1, 6)
    bx, by = np.broadcast_arrays(x, y)
    n = bx.size
    a, b, c = (upload(ex, np.ascontiguousarray(v)) for v in (bx, by, np.zeros(n, F32)))
    params = {"vector_clip_f32": (-1.5, 2.25), "scalar_add_f32": (0.75,),
              "scalar_mul_f32": (-1.5,)}
    maps = [o for o, fam in OPS.items() if fam == "MAP" and o != "buffer_fill"]
    for op in maps:
        info = json.loads(hg.op_describe(op))
        pars = params.get(op, ())
        assert info["scalars"] == len(pars), op
        operands = (x, y)[:info["arrays"]]
        got = hg.apply(op, *operands, params=pars)
        flat = getattr(hg, op)
        if info["arrays"] == 2:
            flat(ex, a, b, c, n)
        elif op == "buffer_copy":
            flat(ex, a, c, n)
        else:
            flat(ex, a, c, n, *pars)
        want = hg.buffer_to_numpy(ex, c)[:n].reshape(bx.shape)
        assert got.shape == bx.shape, op
        same(got, want)


def upload(e, array):
    buf = hg.executor_allocate_buffer(e, max(array.size, 1))
    hg.buffer_copy_from_numpy(e, buf, np.ascontiguousarray(array, dtype=F32).reshape(-1))
    return buf


# ---- reductions ---------------------------------------------------------------------------------

def check_reduced(got, terms, axis, kind, keepdims=False):
    """got against the float64 `kind` of terms over axis (None: all), within the sum bound
    (min and max exact)."""
    t = np.asarray(terms, dtype=np.float64)
    want = getattr(np, kind)(t, axis=axis, keepdims=keepdims)
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == np.shape(want)
    if kind in ("min", "max"):
        assert np.array_equal(got, want, equal_nan=True)
        return
    mag = np.sum(np.abs(t), axis=axis, keepdims=keepdims)
    count = t.size if axis is None else np.prod([t.shape[a] for a in np.atleast_1d(axis)])
    tol = 1e-6 * max(math.log2(max(count, 2)), 1.0) * mag / (count if kind == "mean" else 1)
    assert np.all(np.abs(got - want) <= tol + 1e-30), (got, want)


@pytest.mark.parametrize("seed", range(6))
def test_axis_reductions(backend, seed):
    rng = np.random.default_rng(3000 + seed)
    for _ in range(8):
        _, (sa, sb) = shapes(rng, 2, max_extent=40)
        a, b = view(rng, sa, spice=False), view(rng, sb, spice=False)
        full = np.broadcast_shapes(sa, sb)
        nd = len(full)
        terms = f32(a * b).astype(np.float64)
        for kind in ("sum", "mean", "min", "max"):
            ax = int(rng.integers(-nd, nd))
            got = hg.evaluate(f"{kind}(a * b, axis={ax})", {"a": a, "b": b})
            check_reduced(got, np.broadcast_to(terms, full), ax, kind)
            whole = hg.evaluate(f"{kind}(a * b)", {"a": a, "b": b})
            assert isinstance(whole, float)
            check_reduced(whole, np.broadcast_to(terms, full), None, kind)
        # the ops, over several axes, with keepdims
        axes = tuple(sorted(set(int(v) for v in rng.integers(0, a.ndim, size=2))))
        for op, kind in (("reduce_sum_f32", "sum"), ("reduce_min_f32", "min"),
                         ("reduce_max_f32", "max")):
            for keep in (False, True):
                got = hg.apply(op, a, axis=axes, keepdims=keep)
                check_reduced(got, a, axes, kind, keep)


def test_softmax(backend):
    rng = np.random.default_rng(11)
    for shape, axis in (((64, 1000), -1), ((3, 5, 70), -1), ((33, 17), 0), ((4, 6, 8), (0, 2)),
                        ((1, 1), -1), ((5, 0), -1), ((300,), 0)):
        x = view(rng, shape, -30, 30, spice=False)
        got = hg.softmax(x, axis=axis)
        t = x.astype(np.float64)
        e = np.exp(t - t.max(axis=axis, keepdims=True)) if t.size else t
        want = e / e.sum(axis=axis, keepdims=True) if t.size else t
        assert got.shape == shape and got.dtype == F32
        n = int(np.prod([shape[a] for a in np.atleast_1d(axis)])) if shape else 1
        tol = (sum_bound(np.ones(max(n, 1))) + 4 * 2.0 ** -23) * want + 1e-30
        assert np.all(np.abs(got - want) <= tol)
        out = np.empty(shape, F32).T.copy().T      # a transposed (Fortran-order) out
        assert hg.softmax(x, axis=axis, out=out) is out
        assert np.all(np.abs(out - want) <= tol)   # its plan may sum in another order


def test_losses_per_row(backend):
    rng = np.random.default_rng(12)
    p = view(rng, (40, 300), 0.05, 0.95, spice=False)
    t = view(rng, (40, 300), 0.0, 1.0, spice=False)
    q, tt = p.astype(np.float64), t.astype(np.float64)
    refs = {"mse_loss_f32": ((q - tt) ** 2).mean(axis=-1),
            "cross_entropy_loss_f32": -(tt * np.log(q)).mean(axis=-1),
            "binary_cross_entropy_loss_f32":
                -(tt * np.log(q) + (1 - tt) * np.log(1 - q)).mean(axis=-1)}
    for op, want in refs.items():
        got = hg.apply(op, p, t, axis=-1)
        assert got.shape == (40,)
        assert np.all(np.abs(got - want) <= 1e-5 * np.abs(want) + 1e-7), op
        whole = hg.apply(op, p, t)
        assert isinstance(whole, float) and abs(whole - want.mean()) <= 1e-5 * abs(want.mean())


def test_transcendentals_nd(backend):
    rng = np.random.default_rng(13)
    x = view(rng, (37, 41), -8, 8, spice=False)
    b = view(rng, (41,), -1, 1, spice=False)
    got = hg.evaluate("tanh(x) * b + exp(-x * x)", {"x": x, "b": b})
    t = x.astype(np.float64)
    want = APPROX["TANH"](t) * b + np.exp(-f32(x * x).astype(np.float64))
    assert np.all(np.abs(got - want) <= 4 * 2.0 ** -23 * (np.abs(want) + 1) + 1e-7)


# ---- tensors ------------------------------------------------------------------------------------

def tensor_values(e, t):
    """A tensor's elements as an array of its shape (through tensor_contiguous)."""
    shape = json.loads(hg.tensor_shape(t))
    c = hg.tensor_contiguous(e.handle, t)
    values = hg.buffer_to_numpy(e.handle, hg.tensor_buffer(c))[:int(np.prod(shape))].reshape(shape)
    hg.tensor_cleanup(c)
    return values


def test_tensors(backend):
    rng = np.random.default_rng(14)
    with hg.Executor() as e:
        base = data(rng, 6 * 8 * 10, spice=False)
        t = e.tensor_from_buffer(e.from_numpy(base), "[6, 8, 10]")
        v = base.reshape(6, 8, 10)
        perm = e.tensor_permute(t, "[2, 0, 1]")                 # [10, 6, 8]
        sl = e.tensor_slice(t, 2, 1, 9, 3)                       # [6, 8, 3]
        row = e.tensor_unsqueeze(e.tensor_select(t, 0, 4), 0)    # [1, 8, 10]
        bias = e.tensor_from_buffer(e.from_numpy(data(rng, 10, spice=False)), "[10]")
        bv = tensor_values(e, bias)
        x = hg.expr_compile("a * w - b", ["w"])
        r = e.tensor_evaluate(x, [t, row], [0.5])
        same(tensor_values(e, r), v * F32(0.5) - v[4][None])
        r = e.tensor_apply("vector_add_f32", [t, bias], [], None, 0)
        same(tensor_values(e, r), v + bv)
        r = e.tensor_apply("vector_sub_f32", [sl, sl], [], None, 0)
        same(tensor_values(e, r), v[:, :, 1:9:3] - v[:, :, 1:9:3])
        pv = v.transpose(2, 0, 1)
        for kind in ("sum", "mean", "min", "max"):
            for axes, keep in ((None, 0), ("1", 1), ("[0, 2]", 0), ("-1", 0)):
                r = e.tensor_reduce(perm, kind, axes, keep)
                ax = None if axes is None else tuple(np.atleast_1d(json.loads(axes)))
                check_reduced(tensor_values(e, r), pv, ax, kind, bool(keep))
        s = e.tensor_apply("softmax_f32", [perm], [], None, 0)
        want = np.exp(pv - pv.max(-1, keepdims=True))
        want /= want.sum(-1, keepdims=True)
        assert np.allclose(tensor_values(e, s), want, rtol=1e-5, atol=1e-7)
        # into a view: the odd columns of a copy get the even ones doubled
        cp = e.tensor_contiguous(t)
        odd = e.tensor_slice(cp, 2, 1, -1, 2)
        even = e.tensor_slice(t, 2, 0, -1, 2)
        hg.tensor_evaluate_into(e.handle, x, [even, even], [2.0], odd)
        after = tensor_values(e, cp)
        same(after[:, :, 1::2], v[:, :, 0::2] * F32(2.0) - v[:, :, 0::2])
        same(after[:, :, 0::2], v[:, :, 0::2])
        hg.expr_cleanup(x)


# ---- errors -------------------------------------------------------------------------------------

def test_errors_nd():
    a = np.ones((4, 8), F32)
    with pytest.raises(hg.ShapeError, match=r"'a' \(4, 8\), 'b' \(5,\) do not broadcast"):
        hg.evaluate("a + b", {"a": a, "b": np.ones(5, F32)})
    with pytest.raises(hg.InvalidArgumentError, match=r"axis 2 is out of range for 2 dim"):
        hg.evaluate("sum(a, axis=2)", {"a": a})
    with pytest.raises(hg.InvalidArgumentError, match=r"axis -3 is out of range"):
        hg.apply("reduce_sum_f32", a, axis=-3)
    with pytest.raises(hg.InvalidArgumentError, match=r"axis -1 is named twice"):
        hg.apply("reduce_sum_f32", a, axis=(1, -1))
    with pytest.raises(hg.InvalidArgumentError, match=r"a map has no axes"):
        hg.apply("vector_neg_f32", a, axis=0)
    deep = np.ones((2,) * 9, F32)
    same(hg.evaluate("a * 2", {"a": deep}), deep * 2)   # one contiguous shape: run as 1-D
    with pytest.raises(hg.ShapeError, match=r"9 dimensions \(at most 8\)"):
        hg.evaluate("a * 2", {"a": deep[..., ::-1]})
    with pytest.raises(TypeError, match=r"dtype float64"):
        hg.softmax(np.ones((2, 3)))
    with pytest.raises(hg.InvalidArgumentError, match=r"reduce_min_f32 of no elements"):
        hg.apply("reduce_min_f32", np.ones((3, 0), F32), axis=1)
    with pytest.raises(hg.InvalidArgumentError, match=r"unknown op 'vector_pow_f32'"):
        hg.apply("vector_pow_f32", a)
    with pytest.raises(hg.InvalidArgumentError, match=r"contraction"):
        hg.apply("gemm_f32", a, a)
    # outputs that cannot be written: a broadcast view, a partial overlap, read-only
    twice = np.lib.stride_tricks.as_strided(np.zeros(8, F32), (4, 8), (0, 4))
    with pytest.raises(hg.InvalidArgumentError, match=r"names some elements twice"):
        hg.evaluate("a * 2", {"a": a}, out=twice)
    big = np.zeros(40, F32)
    src = big[:32].reshape(4, 8)
    with pytest.raises(hg.InvalidArgumentError, match=r"overlaps input 1"):
        hg.evaluate("a * 2", {"a": src.T}, out=big[1:33].reshape(8, 4))
    assert np.all(big == 0)
    ro = np.zeros((4, 8), F32)
    ro.flags.writeable = False
    with pytest.raises(hg.InvalidArgumentError, match=r"not writeable"):
        hg.evaluate("a * 2", {"a": a}, out=ro[:, ::-1])
    with hg.Executor() as e:
        t = e.tensor_from_buffer(e.allocate_buffer(32), "[4, 8]")
        u = e.tensor_from_buffer(e.allocate_buffer(5), "[5]")
        x = hg.expr_compile("a + b")
        with pytest.raises(hg.ShapeError, match=r"shapes \[4, 8\] and \[5\] do not broadcast"):
            e.tensor_evaluate(x, [t, u], [])
        with pytest.raises(hg.InvalidArgumentError, match=r"takes 2 arrays and 0 scalars"):
            e.tensor_evaluate(x, [t], [])
        with pytest.raises(TypeError, match=r"tensor_handles\[1\] must be an integer"):
            e.tensor_evaluate(x, [t, "u"], [])
        with pytest.raises(TypeError, match=r"axes_json must be str \(JSON text\) or None"):
            e.tensor_reduce(t, "sum", 1, 0)
        with pytest.raises(hg.InvalidArgumentError, match=r"keepdims = 300 is outside"):
            e.tensor_reduce(t, "sum", None, 300)
        with pytest.raises(hg.JsonError):
            e.tensor_reduce(t, "sum", "[1,", 0)
        hg.expr_cleanup(x)
