"""Every operation against NumPy, under both backends, at lengths 0, 1, 15, 16, 17, 1000 and
1,000,000 (conftest.LENGTHS).  Tolerances (API.md):
  maps (+ - * / min max abs neg relu clip, scalar ops, fill, copy): bit-equal to float32 NumPy;
  sigmoid/tanh/gelu: |y - y64| <= 2 ulp*|y64| + 1e-7 against float64;
  softmax: that bound plus 1e-6*log2(n)*|y64| for the normalizing sum;
  reductions and losses: |r - r64| <= 1e-6*max(log2 n, 1)*sum|terms| (/n for means);
  gemm/matvec: |C - C64| <= 1e-5*k*max|A|*max|B| elementwise.
"""
import math

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import LENGTHS, download, exp_family_close, sum_bound, upload

RNG_SEED = 20240601


def data(n, lo=-10.0, hi=10.0, seed=0):
    return np.random.default_rng(RNG_SEED + seed).uniform(lo, hi, n).astype(np.float32)


# name -> (number of inputs, scalar parameters, float32 NumPy reference)
EXACT_MAPS = {
    "vector_add_f32": (2, (), lambda a, b: a + b),
    "vector_sub_f32": (2, (), lambda a, b: a - b),
    "vector_mul_f32": (2, (), lambda a, b: a * b),
    "vector_div_f32": (2, (), lambda a, b: a / b),
    "vector_min_f32": (2, (), np.minimum),
    "vector_max_f32": (2, (), np.maximum),
    "vector_abs_f32": (1, (), np.abs),
    "vector_neg_f32": (1, (), np.negative),
    "vector_relu_f32": (1, (), lambda a: np.maximum(a, np.float32(0))),
    "vector_clip_f32": (1, (-2.5, 3.0),
                        lambda a: np.minimum(np.maximum(a, np.float32(-2.5)), np.float32(3.0))),
    "scalar_add_f32": (1, (1.25,), lambda a: a + np.float32(1.25)),
    "scalar_mul_f32": (1, (-0.3,), lambda a: a * np.float32(-0.3)),
}

ACTIVATIONS = {
    "sigmoid_f32": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh_f32": np.tanh,
    "gelu_f32": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (x + 0.044715 * x ** 3))),
}


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("op", sorted(EXACT_MAPS))
def test_exact_maps(backend, ex, op, n):
    arity, params, ref = EXACT_MAPS[op]
    inputs = [data(n, seed=i) for i in range(arity)]
    bufs = [upload(ex, x) for x in inputs]
    out = hg.executor_allocate_buffer(ex, n)
    getattr(hg, op)(ex, *bufs, out, n, *params)
    with np.errstate(all="ignore"):
        expected = ref(*inputs)
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(download(ex, out), expected)


@pytest.mark.parametrize("op", ["vector_min_f32", "vector_max_f32", "vector_div_f32",
                                "vector_add_f32", "vector_mul_f32"])
def test_special_values(backend, ex, op):
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 3e38, 1e-45],
                       dtype=np.float32)
    a, b = np.repeat(special, special.size), np.tile(special, special.size)
    out = hg.executor_allocate_buffer(ex, a.size)
    getattr(hg, op)(ex, upload(ex, a), upload(ex, b), out, a.size)
    _, _, ref = EXACT_MAPS[op]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(download(ex, out), ref(a, b))


def test_relu_keeps_nan(backend, ex):
    a = np.array([np.nan, -1.0, 2.0, -np.inf], dtype=np.float32)
    out = hg.executor_allocate_buffer(ex, 4)
    hg.vector_relu_f32(ex, upload(ex, a), out, 4)
    np.testing.assert_array_equal(download(ex, out), [np.nan, 0.0, 2.0, 0.0])


@pytest.mark.parametrize("n", LENGTHS)
def test_fill_and_copy(backend, ex, n):
    src = upload(ex, data(n))
    dst = hg.executor_allocate_buffer(ex, n + 3)
    hg.buffer_fill(ex, dst, 2.5, n + 3)
    hg.buffer_copy(ex, src, dst, n)
    expected = np.concatenate([data(n), np.full(3, 2.5, np.float32)])
    np.testing.assert_array_equal(download(ex, dst), expected)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_activations(backend, ex, op, n):
    x = data(n, -20.0, 20.0)
    out = hg.executor_allocate_buffer(ex, n)
    getattr(hg, op)(ex, upload(ex, x), out, n)
    exp_family_close(download(ex, out), ACTIVATIONS[op](x.astype(np.float64)))


@pytest.mark.parametrize("n", LENGTHS)
def test_softmax(backend, ex, n):
    x = data(n, -30.0, 30.0)
    out = hg.executor_allocate_buffer(ex, max(n, 1))
    if n == 0:
        with pytest.raises(hg.InvalidArgumentError):
            hg.softmax_f32(ex, upload(ex, x), out, n)
        return
    hg.softmax_f32(ex, upload(ex, x), out, n)
    x64 = x.astype(np.float64)
    ref = np.exp(x64 - x64.max())
    ref /= ref.sum()
    y = download(ex, out).astype(np.float64)
    tol = (2 * 2.0 ** -23 + 1e-6 * max(math.log2(n), 1.0)) * ref + 1e-7
    assert np.all(np.abs(y - ref) <= tol)
    assert abs(y.sum() - 1.0) <= 1e-5 * max(math.log2(n), 1.0)


def test_softmax_stable_for_large_inputs(backend, ex):
    x = np.array([1000.0, 999.0, -1000.0, 1000.0], dtype=np.float32)
    out = hg.executor_allocate_buffer(ex, 4)
    hg.softmax_f32(ex, upload(ex, x), out, 4)
    ref = np.exp(x.astype(np.float64) - 1000.0)
    exp_family_close(download(ex, out), ref / ref.sum())


REDUCTIONS = {"reduce_sum_f32": np.sum, "reduce_min_f32": np.min, "reduce_max_f32": np.max}


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("op", sorted(REDUCTIONS))
def test_reductions(backend, ex, op, n):
    x = data(n)
    out = hg.executor_allocate_buffer(ex, 1)
    if n == 0 and op != "reduce_sum_f32":
        with pytest.raises(hg.InvalidArgumentError):
            getattr(hg, op)(ex, upload(ex, x), out, n)
        return
    result = getattr(hg, op)(ex, upload(ex, x), out, n)
    assert isinstance(result, float)
    assert download(ex, out)[0] == np.float32(result)
    expected = REDUCTIONS[op](x.astype(np.float64)) if n else 0.0
    if op == "reduce_sum_f32":
        assert abs(result - expected) <= sum_bound(x)
    else:
        assert result == expected


@pytest.mark.parametrize("op", ["reduce_min_f32", "reduce_max_f32"])
def test_reductions_propagate_nan(backend, ex, op):
    x = data(100)
    x[37] = np.nan
    out = hg.executor_allocate_buffer(ex, 1)
    assert math.isnan(getattr(hg, op)(ex, upload(ex, x), out, 100))


def _losses(p, t):
    """float64 references and their terms: name -> (terms, value)."""
    q = np.clip(p, 1e-7, 1 - 1e-7)
    mse = (p - t) ** 2
    ce = t * np.log(np.maximum(p, 1e-7))
    bce = t * np.log(q) + (1 - t) * np.log(1 - q)
    return {
        "mse_loss_f32": (mse, mse.mean()),
        "cross_entropy_loss_f32": (ce, -ce.mean()),
        "binary_cross_entropy_loss_f32": (bce, -bce.mean()),
    }


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("op", ["mse_loss_f32", "cross_entropy_loss_f32",
                                "binary_cross_entropy_loss_f32"])
def test_losses(backend, ex, op, n):
    p, t = data(n, 0.0, 1.0, seed=1), data(n, 0.0, 1.0, seed=2)
    out = hg.executor_allocate_buffer(ex, 1)
    pb, tb = upload(ex, p), upload(ex, t)
    if n == 0:
        with pytest.raises(hg.InvalidArgumentError):
            getattr(hg, op)(ex, pb, tb, out, n)
        return
    result = getattr(hg, op)(ex, pb, tb, out, n)
    assert download(ex, out)[0] == np.float32(result)
    terms, expected = _losses(p.astype(np.float64), t.astype(np.float64))[op]
    assert abs(result - expected) <= sum_bound(terms) / n + 1e-7


def test_losses_clamp(backend, ex):
    p = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    t = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    out = hg.executor_allocate_buffer(ex, 1)
    bce = hg.binary_cross_entropy_loss_f32(ex, upload(ex, p), upload(ex, t), out, 3)
    ce = hg.cross_entropy_loss_f32(ex, upload(ex, p), upload(ex, t), out, 3)
    assert math.isfinite(bce) and math.isfinite(ce)
    _, ce_ref = _losses(p.astype(np.float64), t.astype(np.float64))["cross_entropy_loss_f32"]
    assert abs(ce - ce_ref) <= 1e-5 * abs(ce_ref)


GEMM_SHAPES = [(1, 1, 1), (3, 5, 7), (15, 16, 17), (16, 16, 16), (17, 17, 17), (4, 3, 0),
               (0, 5, 3), (100, 10, 1000), (256, 256, 256)]


def _contraction_tol(k, a, b):
    return 1e-5 * max(k, 1) * float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0))


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
def test_gemm(backend, ex, m, n, k):
    a, b = data(m * k, -1, 1, seed=3), data(k * n, -1, 1, seed=4)
    c = hg.executor_allocate_buffer(ex, m * n)
    hg.buffer_fill(ex, c, 99.0, m * n)
    hg.gemm_f32(ex, upload(ex, a), upload(ex, b), c, m, n, k)
    ref = a.astype(np.float64).reshape(m, k) @ b.astype(np.float64).reshape(k, n)
    got = download(ex, c).reshape(m, n)
    assert np.all(np.abs(got - ref) <= _contraction_tol(k, a, b) + 0.0)


@pytest.mark.parametrize("m,n", [(1, 1), (15, 16), (16, 17), (17, 15), (128, 64),
                                 (1000, 1000), (3, 0)])
def test_matvec(backend, ex, m, n):
    a, x = data(m * n, -1, 1, seed=5), data(n, -1, 1, seed=6)
    y = hg.executor_allocate_buffer(ex, m)
    hg.matvec_f32(ex, upload(ex, a), upload(ex, x), y, m, n)
    ref = a.astype(np.float64).reshape(m, n) @ x.astype(np.float64)
    assert np.all(np.abs(download(ex, y) - ref) <= _contraction_tol(n, a, x))


def test_in_place_alias(backend, ex):
    a = data(1000)
    c = data(1000, seed=1)
    cb = upload(ex, c)
    hg.vector_add_f32(ex, upload(ex, a), cb, cb, 1000)
    np.testing.assert_array_equal(download(ex, cb), a + c)


def test_json_round_trip_is_exact(backend, ex):
    import json
    x = np.concatenate([data(1000), np.array([0.1, np.nan, np.inf, -np.inf, -0.0, 1e-45,
                                              3.4028235e38], dtype=np.float32)])
    buf = upload(ex, x)
    text = hg.buffer_to_vec(ex, buf)
    back = np.array(json.loads(text), dtype=np.float32)
    np.testing.assert_array_equal(back, x)
    assert np.signbit(back[-3])
    other = hg.executor_allocate_buffer(ex, x.size)
    hg.buffer_copy_from_slice(ex, other, text)
    np.testing.assert_array_equal(download(ex, other), x)
    assert "0.1," in text and "NaN" in text and "-Infinity" in text
