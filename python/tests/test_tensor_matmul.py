"""tensor_matmul against np.matmul: random batched shapes (ranks 2-4, broadcast batches,
zero extents) on random views (offsets, permuted storage, slices with steps, narrowing,
stride-0 broadcasting) made the same way in hologram and NumPy over the same floats, on both
engines; then NumPy's accept/refuse decision and result shape for random shape pairs, and
every error as its exception class with a message naming the shapes.

Tolerance, per element of C: |got - ref| <= 1e-6 * (k + 1) * (|A| @ |B|), ref = np.matmul in
float64 (tests/test_jit.c's contraction bound; k = 0 must give exact zeros)."""
import json
import re

import numpy as np
import pytest

import hologram_ffi as hg

LENGTH = 1 << 16                   # the buffer every operand views


def dims(d):
    return json.dumps([int(x) for x in d])


@pytest.fixture
def world():
    """An executor, a buffer of LENGTH random floats, a 1-D tensor over all of it, and the
    same floats in NumPy."""
    rng = np.random.default_rng(20261210)
    with hg.Executor() as ex:
        data = rng.standard_normal(LENGTH).astype(np.float32)
        buf = ex.from_numpy(data)
        yield rng, ex, ex.tensor_from_buffer(buf, dims([LENGTH])), data


def operand(rng, ex, flat, data, shape):
    """A random view of `shape` over the buffer and the same view of `data`, made by the
    same steps on both sides: contiguous storage at a random offset with its dimensions in a
    random order and padded, permuted into place, each dimension sliced with a random start
    and step (a narrow when the step is 1), and some broadcast from extent 1."""
    nd = len(shape)
    spread = [rng.random() < 0.2 for _ in shape]             # broadcast from extent 1
    inner = [1 if s else n for s, n in zip(spread, shape)]
    starts = [int(rng.integers(0, 3)) for _ in shape]
    steps = [int(rng.integers(1, 4)) for _ in shape]
    full = [s + max(n, 1) * st + int(rng.integers(0, 2))
            for n, s, st in zip(inner, starts, steps)]
    order = [int(d) for d in rng.permutation(nd)]             # stored dim j is view dim order[j]
    stored = [full[d] for d in order]
    size = int(np.prod(stored))
    offset = int(rng.integers(0, LENGTH - size + 1))
    t = ex.tensor_reshape(ex.tensor_narrow(flat, 0, offset, size), dims(stored))
    a = data[offset:offset + size].reshape(stored)
    back = [int(d) for d in np.argsort(order)]
    t, a = ex.tensor_permute(t, dims(back)), np.transpose(a, back)
    for d, (n, s, st) in enumerate(zip(inner, starts, steps)):
        key = (slice(None),) * d + (slice(s, s + n * st, st),)
        t = ex.tensor_narrow(t, d, s, n) if st == 1 else ex.tensor_slice(t, d, s, s + n * st, st)
        a = a[key]
    if any(spread):
        t, a = ex.tensor_broadcast_to(t, dims(shape)), np.broadcast_to(a, shape)
    assert json.loads(hg.tensor_shape(t)) == list(shape) and a.shape == tuple(shape)
    return t, a


def check(ex, ta, tb, a, b):
    """tensor_matmul(ta, tb) against np.matmul(a, b) in float64: shape, a new contiguous
    buffer of exactly its elements, the values within the bound at the top."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = np.matmul(a64, b64)
    tol = 1e-6 * (a.shape[-1] + 1) * np.matmul(np.abs(a64), np.abs(b64))
    tc = ex.tensor_matmul(ta, tb)
    assert json.loads(hg.tensor_shape(tc)) == list(ref.shape)
    assert hg.tensor_is_contiguous(tc) == 1 and hg.tensor_offset(tc) == 0
    cb = hg.tensor_buffer(tc)
    assert cb not in (hg.tensor_buffer(ta), hg.tensor_buffer(tb))
    assert hg.buffer_length(cb) == ref.size
    got = ex.to_numpy(cb).reshape(ref.shape).astype(np.float64)
    bad = np.argwhere(~(np.abs(got - ref) <= tol))
    assert bad.size == 0, (f"{len(bad)} elements off, first at {tuple(bad[0])}: "
                           f"{got[tuple(bad[0])]!r} vs {ref[tuple(bad[0])]!r}")


def random_pair(rng):
    """Shapes [..., m, k] and [..., k, n] whose batches broadcast: a shared batch of 0-2
    dimensions, each side keeping a suffix of it with some extents set to 1."""
    batch = [int(rng.integers(0 if rng.random() < 0.05 else 1, 4))
             for _ in range(int(rng.integers(0, 3)))]
    m, k, n = (int(rng.integers(0 if rng.random() < 0.08 else 1, 24)) for _ in range(3))

    def side():
        kept = batch[int(rng.integers(0, len(batch) + 1)):]
        return [1 if rng.random() < 0.25 else e for e in kept]
    return side() + [m, k], side() + [k, n]


def test_random_views_against_numpy(world, backend):
    rng, ex, flat, data = world
    for _ in range(60):
        sa, sb = random_pair(rng)
        ta, a = operand(rng, ex, flat, data, sa)
        tb, b = operand(rng, ex, flat, data, sb)
        check(ex, ta, tb, a, b)


def test_fixed_cases(world, backend):
    """The shapes the header names, the views the original got wrong (offsets, transposes),
    a permuted [k, b, m] tensor viewed as [b, m, k], and zero extents."""
    _, ex, flat, data = world

    def contiguous(shape, offset):
        size = int(np.prod(shape))
        return (ex.tensor_reshape(ex.tensor_narrow(flat, 0, offset, size), dims(shape)),
                data[offset:offset + size].reshape(shape))

    pairs = [([3, 4, 5], [3, 5, 2]), ([1, 4, 5], [3, 5, 2]), ([3, 4, 5], [1, 5, 2]),
             ([4, 5], [3, 5, 2]), ([3, 4, 5], [5, 2]), ([2, 1, 4, 5], [3, 5, 6]),
             ([0, 4, 5], [5, 2]), ([3, 0, 5], [3, 5, 2]), ([3, 4, 0], [3, 0, 2]),
             ([1, 4, 5], [0, 5, 2]), ([2, 4, 5], [2, 5, 0]), ([2, 40, 300], [300, 70])]
    for sa, sb in pairs:
        ta, a = contiguous(sa, 7)
        tb, b = contiguous(sb, 40000)
        check(ex, ta, tb, a, b)
    kbm, kbm_np = contiguous([5, 3, 4], 123)                 # [k, b, m] storage
    ta, a = ex.tensor_permute(kbm, "[1, 2, 0]"), np.transpose(kbm_np, (1, 2, 0))  # [b, m, k]
    tb, b = contiguous([3, 5, 6], 999)
    check(ex, ta, tb, a, b)
    t2, m2 = contiguous([6, 5], 31)                           # transposed, at an offset
    check(ex, ta, ex.tensor_transpose(t2), a, m2.T)
    t3, m3 = contiguous([2, 6, 3], 5000)                     # narrowed: from offset 5018
    check(ex, ex.tensor_transpose(t2), ex.tensor_narrow(t3, 0, 1, 1), m2.T, m3[1:2])


def shape_tensor(ex, buf, shape):
    """A tensor of any shape over one element (strides 0)."""
    return ex.tensor_from_buffer_with_strides(buf, dims(shape), dims([0] * len(shape)))


def test_shapes_against_numpy(world, backend):
    """Random shape pairs of ranks 2-5 (extents 0-3): hologram accepts exactly what np.matmul
    accepts, with its result shape and values (every element k * x * y); a refusal is a
    ShapeError naming both shapes."""
    rng, ex, _, _ = world
    bx, by = ex.from_numpy(np.float32([1.5])), ex.from_numpy(np.float32([-2.0]))
    agreed = refused = 0
    for _ in range(300):
        sa = [int(rng.integers(0, 4)) for _ in range(int(rng.integers(2, 6)))]
        sb = [int(rng.integers(0, 4)) for _ in range(int(rng.integers(2, 6)))]
        if rng.random() < 0.7:
            sb[-2] = sa[-1]
        ta, tb = shape_tensor(ex, bx, sa), shape_tensor(ex, by, sb)
        try:
            want = np.matmul(np.full(sa, 1.5, np.float32), np.full(sb, -2, np.float32))
        except ValueError:
            refused += 1
            with pytest.raises(hg.ShapeError, match=re.escape(f"matmul {sa} x {sb}: ")):
                ex.tensor_matmul(ta, tb)
            continue
        agreed += 1
        tc = ex.tensor_matmul(ta, tb)
        assert json.loads(hg.tensor_shape(tc)) == list(want.shape)
        got = ex.to_numpy(hg.tensor_buffer(tc)).reshape(want.shape)
        np.testing.assert_array_equal(got, want)
        cb = hg.tensor_buffer(tc)
        hg.tensor_cleanup(tc)
        hg.buffer_cleanup(cb)
    assert agreed > 50 and refused > 50


def test_errors(world):
    _, ex, _, _ = world
    buf = ex.from_numpy(np.arange(64, dtype=np.float32))
    t = {s: ex.tensor_from_buffer(buf, s) for s in
         ("[24]", "[4, 6]", "[2, 3, 4]", "[2, 5, 6]", "[0, 2, 2]", "[3, 2, 2]")}
    wide = ex.tensor_from_buffer_with_strides(buf, "[5, 4, 6]", "[0, 6, 1]")
    cases = [
        (t["[24]"], t["[4, 6]"], hg.ShapeError,
         r"matmul \[24\] x \[4, 6\]: A is 1-D and B 2-D: both need at least 2 dimensions "
         r"\(a 1-D operand is not promoted as NumPy does: unsqueeze it\)"),
        (t["[2, 3, 4]"], t["[2, 5, 6]"], hg.ShapeError,
         r"matmul \[2, 3, 4\] x \[2, 5, 6\]: inner dimensions differ: dimension 2 of A has 4, "
         r"dimension 1 of B has 5"),
        (t["[2, 3, 4]"], wide, hg.ShapeError,
         r"matmul \[2, 3, 4\] x \[5, 4, 6\]: batch dimensions do not broadcast: dimension 0 "
         r"of A has 2, dimension 0 of B has 5, and neither is 1"),
        (t["[0, 2, 2]"], t["[3, 2, 2]"], hg.ShapeError, "dimension 0 of A has 0, dimension 0 "
         "of B has 3"),
        (shape_tensor(ex, buf, [65536, 1]), shape_tensor(ex, buf, [1, 65536]), hg.ShapeError,
         r"the result's shape \[65536, 65536\] has 4294967296 elements, at most 4294967295"),
        (shape_tensor(ex, buf, [2**32, 0]), shape_tensor(ex, buf, [0, 2**32]), hg.ShapeError,
         r"is too large: its nonzero dimensions multiply to more than 2\^64"),
        (shape_tensor(ex, buf, [32768, 1]), shape_tensor(ex, buf, [1, 65536]),
         hg.OutOfMemoryError, "length 2147483648 exceeds the maximum"),
        (t["[4, 6]"], buf, hg.InvalidHandleError, "not a tensor"),
    ]
    for a, b, error, message in cases:
        with pytest.raises(error, match=message):
            ex.tensor_matmul(a, b)
    assert issubclass(hg.ShapeError, ValueError)            # as NumPy's ValueError
    with hg.Executor() as other:
        foreign = other.tensor_from_buffer(other.allocate_buffer(9), "[3, 3]")
        with pytest.raises(hg.InvalidHandleError, match="belongs to executor"):
            ex.tensor_matmul(foreign, foreign)
        with pytest.raises(hg.InvalidHandleError, match="belongs to executor"):
            ex.tensor_matmul(t["[4, 6]"], foreign)
    with pytest.raises(hg.InvalidArgumentError, match="is negative"):
        ex.tensor_matmul(-1, t["[4, 6]"])
