"""Tensor views (tensor_permute, narrow, slice, view_1d, broadcast_to, unsqueeze, squeeze,
broadcast_shapes, is_broadcast_compatible_with) against NumPy doing the same thing on the
same data: shapes, strides and offsets in elements, and the values read back through
tensor_contiguous + buffer_to_numpy.  Random strided tensors of rank 1-4 and random chains of
views, then every error as its exception class with a message naming the value.

Strides of extent-1 dimensions are not compared, nor strides and offsets of views without
elements: they never reach an element, and NumPy's own choice for them depends on the path
(expand_dims goes through reshape, which gives an empty array new strides).  The C tests
(tests/test_tensor.c) fix hologram's choices for those."""
import json
import re

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import upload

LENGTH = 1 << 15                   # the buffer every random tensor views


# ---- the two sides ---------------------------------------------------------------------

def geometry(data, v):
    """(shape, strides, offset) of NumPy view `v` of the 1-D float32 array `data`, in
    elements."""
    assert np.shares_memory(data, v) or v.size == 0
    offset = v.__array_interface__["data"][0] - data.__array_interface__["data"][0]
    assert offset % 4 == 0 and all(s % 4 == 0 for s in v.strides)
    return list(v.shape), [s // 4 for s in v.strides], offset // 4


def check(ex, t, data, v):
    """Hologram tensor t and NumPy view v (of `data`, the buffer's contents) agree: shape,
    numel, the values in row-major order and, when there are elements, the offset and the
    strides where the extent is not 1."""
    shape, strides, offset = geometry(data, v)
    assert json.loads(hg.tensor_shape(t)) == shape
    assert hg.tensor_ndim(t) == v.ndim and hg.tensor_numel(t) == v.size
    if v.size > 0:
        got = json.loads(hg.tensor_strides(t))
        assert [s for s, n in zip(got, shape) if n != 1] == \
            [s for s, n in zip(strides, shape) if n != 1], (got, strides, shape)
        assert hg.tensor_offset(t) == offset
    assert hg.tensor_offset(t) <= LENGTH
    c = hg.tensor_contiguous(ex.handle, t)
    copy = hg.tensor_buffer(c)
    np.testing.assert_array_equal(ex.to_numpy(copy), v.ravel())
    hg.tensor_cleanup(c)
    hg.buffer_cleanup(copy)


def dims(d):
    return json.dumps([int(x) for x in d])


def random_base(rng, ex, buf, data):
    """A random strided tensor of rank 1-4 with an offset, and the same view in NumPy."""
    ndim = int(rng.integers(1, 5))
    shape = [int(rng.integers(0, 6)) if rng.random() < 0.1 else int(rng.integers(1, 6))
             for _ in range(ndim)]
    # a random permutation of row-major strides, sometimes stepped or broadcast (0)
    order = rng.permutation(ndim)
    strides, s = [0] * ndim, 1
    for d in order[::-1]:
        k = int(rng.integers(1, 3))
        strides[d] = 0 if rng.random() < 0.1 else s * k
        s *= max(shape[d], 1) * k
    reach = sum((n - 1) * st for n, st in zip(shape, strides)) if min(shape) > 0 else 0
    offset = int(rng.integers(0, LENGTH - reach))
    outer = hg.tensor_from_buffer_with_strides(buf, dims([2] + shape), dims([offset] + strides))
    t = ex.tensor_select(outer, 0, 1)
    hg.tensor_cleanup(outer)
    v = np.lib.stride_tricks.as_strided(data[offset:], shape, [4 * x for x in strides])
    return t, v


def index(dim, key):
    return (slice(None),) * dim + (key, Ellipsis)


# Random steps of a chain: each returns (a call making the hologram view, the NumPy view)
# for the current tensor, or None when it does not apply to it.

def step_permute(rng, ex, t, v):
    perm = [int(p) for p in rng.permutation(v.ndim)]
    return lambda: ex.tensor_permute(t, dims(perm)), np.transpose(v, perm)


def pick_start(rng, v):
    """A random dimension of v (not 0-D), its extent n and a start in [0, n]."""
    dim = int(rng.integers(v.ndim))
    return dim, v.shape[dim], int(rng.integers(0, v.shape[dim] + 1))


def step_narrow(rng, ex, t, v):
    if v.ndim == 0:
        return None
    dim, n, start = pick_start(rng, v)
    length = int(rng.integers(0, n - start + 1))
    return (lambda: ex.tensor_narrow(t, dim, start, length),
            v[index(dim, slice(start, start + length))])


def step_slice(rng, ex, t, v):
    if v.ndim == 0:
        return None
    dim, n, start = pick_start(rng, v)
    end = -1 if rng.random() < 0.3 else int(rng.integers(0, n + 1))
    step = int(rng.integers(1, 5))
    return (lambda: ex.tensor_slice(t, dim, start, end, step),
            v[index(dim, slice(start, None if end == -1 else end, step))])


def step_view_1d(rng, ex, t, v):
    assert hg.tensor_is_contiguous(t) == v.flags.c_contiguous
    if not v.flags.c_contiguous:
        with pytest.raises(hg.ShapeError, match="use tensor_contiguous"):
            hg.tensor_view_1d(t)
        return None
    flat = v.reshape(-1)
    assert v.size == 0 or np.shares_memory(flat, v)        # NumPy made a view too
    return lambda: ex.tensor_view_1d(t), flat


def step_broadcast_to(rng, ex, t, v):
    lead = [int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, 3)))]
    target = lead + [int(rng.integers(0, 4)) if n == 1 and rng.random() < 0.7 else n
                     for n in v.shape]
    if len(target) > 8 or np.prod(target, dtype=np.int64) > 20000:
        return None
    return lambda: ex.tensor_broadcast_to(t, dims(target)), np.broadcast_to(v, target)


def step_unsqueeze(rng, ex, t, v):
    if v.ndim == 8:
        return None
    dim = int(rng.integers(0, v.ndim + 1))
    return lambda: ex.tensor_unsqueeze(t, dim), np.expand_dims(v, dim)


def step_squeeze(rng, ex, t, v):
    ones = [d for d, n in enumerate(v.shape) if n == 1]
    if not ones:
        return None
    dim = int(rng.choice(ones))
    return lambda: ex.tensor_squeeze(t, dim), np.squeeze(v, dim)


def step_select(rng, ex, t, v):
    live = [d for d, n in enumerate(v.shape) if n > 0]
    if not live:
        return None
    dim = int(rng.choice(live))
    i = int(rng.integers(v.shape[dim]))
    return lambda: ex.tensor_select(t, dim, i), v[index(dim, i)]


def apply(step, rng, ex, t, v, data):
    """Runs a step on both sides: the new (tensor, view), or None.  An empty view whose
    offset NumPy moves past the buffer (possible when another dimension is 0) is refused
    by hologram (offset <= buffer length is an invariant): that is checked instead."""
    made = step(rng, ex, t, v)
    if made is None:
        return None
    make, w = made
    if w.size == 0 and geometry(data, w)[2] > LENGTH:
        with pytest.raises(hg.OutOfBoundsError, match="past the end of buffer"):
            make()
        return None
    return make(), w


STEPS = [step_permute, step_narrow, step_slice, step_view_1d, step_broadcast_to,
         step_unsqueeze, step_squeeze, step_select]


@pytest.fixture
def world():
    """An executor, a buffer of LENGTH random floats and the same floats in NumPy."""
    rng = np.random.default_rng(20261201)
    with hg.Executor() as ex:
        data = rng.standard_normal(LENGTH).astype(np.float32)
        buf = ex.from_numpy(data)
        yield rng, ex, buf, data


# ---- each view against NumPy --------------------------------------------------------------

@pytest.mark.parametrize("step", STEPS, ids=lambda f: f.__name__[5:])
def test_each_view_on_random_tensors(world, backend, step):
    rng, ex, buf, data = world
    applied = 0
    for _ in range(60):
        t, v = random_base(rng, ex, buf, data)
        check(ex, t, data, v)
        made = apply(step, rng, ex, t, v, data)
        if made is not None:
            check(ex, made[0], data, made[1])
            assert hg.tensor_buffer(made[0]) == buf
            applied += 1
    assert applied >= 10


def test_random_chains_of_views(world, backend):
    rng, ex, buf, data = world
    for _ in range(80):
        t, v = random_base(rng, ex, buf, data)
        for _ in range(int(rng.integers(1, 7))):
            made = apply(STEPS[int(rng.integers(len(STEPS)))], rng, ex, t, v, data)
            if made is not None:
                t, v = made
                check(ex, t, data, v)


def test_fixed_views(world):
    _, ex, buf, data = world
    base = data[:24].reshape(2, 3, 4)
    t = ex.tensor_from_buffer(buf, "[2, 3, 4]")
    cases = [
        (ex.tensor_permute(t, "[2, 0, 1]"), np.transpose(base, (2, 0, 1))),
        (ex.tensor_narrow(t, 2, 1, 2), base[:, :, 1:3]),
        (ex.tensor_slice(t, 2, 1, -1, 2), base[:, :, 1::2]),
        (ex.tensor_slice(t, 1, 0, 3, 2), base[:, 0:3:2]),
        (ex.tensor_slice(t, 0, 2, 1, 1), base[2:1]),
        (ex.tensor_view_1d(t), base.reshape(-1)),
        (ex.tensor_broadcast_to(t, "[5, 2, 3, 4]"), np.broadcast_to(base, (5, 2, 3, 4))),
        (ex.tensor_unsqueeze(t, 3), np.expand_dims(base, 3)),
        (ex.tensor_squeeze(ex.tensor_unsqueeze(t, 1), 1), np.squeeze(base[:, None], 1)),
    ]
    for view, want in cases:
        check(ex, view, data, want)
    col = ex.tensor_narrow(t, 2, 3, 1)                   # [2, 3, 1]
    check(ex, ex.tensor_broadcast_to(col, "[2, 3, 6]"), data,
          np.broadcast_to(base[:, :, 3:4], (2, 3, 6)))
    assert json.loads(hg.tensor_strides(ex.tensor_broadcast_to(col, "[4, 2, 3, 6]"))) == \
        [0, 12, 4, 0]


def test_zero_d_tensors(world):
    _, ex, buf, data = world
    row = ex.tensor_from_buffer(buf, "[5]")
    scalar = ex.tensor_select(row, 0, 3)                   # 0-D, element 3
    check(ex, scalar, data, data[:5][3, ...])
    check(ex, ex.tensor_permute(scalar, "[]"), data, np.transpose(data[:5][3, ...], ()))
    check(ex, ex.tensor_view_1d(scalar), data, data[:5][3, ...].reshape(-1))
    check(ex, ex.tensor_unsqueeze(scalar, 0), data, np.expand_dims(data[:5][3, ...], 0))
    check(ex, ex.tensor_broadcast_to(scalar, "[2, 3]"), data,
          np.broadcast_to(data[:5][3, ...], (2, 3)))
    check(ex, ex.tensor_broadcast_to(scalar, "[]"), data, data[:5][3, ...])
    check(ex, ex.tensor_squeeze(ex.tensor_narrow(row, 0, 3, 1), 0), data,
          np.squeeze(data[3:4], 0))
    assert hg.tensor_broadcast_shapes(scalar, scalar) == "[]"
    for fn, args in ((hg.tensor_narrow, (0, 0, 1)), (hg.tensor_slice, (0, 0, -1, 1)),
                     (hg.tensor_squeeze, (0,)), (hg.tensor_select, (0, 0))):
        with pytest.raises(hg.OutOfBoundsError, match="0-D tensor"):
            fn(scalar, *args)
    with pytest.raises(hg.OutOfBoundsError, match=r"dim 1 is out of range for a 0-D tensor"):
        hg.tensor_unsqueeze(scalar, 1)


# ---- broadcast shapes --------------------------------------------------------------------

def shape_tensor(ex, buf, shape):
    """A tensor of any `shape` over buf (zero strides; 0-D through a select)."""
    if not shape:
        return ex.tensor_select(ex.tensor_from_buffer(buf, "[1]"), 0, 0)
    return ex.tensor_from_buffer_with_strides(buf, dims(shape), dims([0] * len(shape)))


def test_broadcast_shapes_against_numpy(world):
    rng, ex, buf, _ = world
    agreed = refused = 0
    for _ in range(400):
        a = [int(rng.integers(0, 4)) for _ in range(int(rng.integers(0, 5)))]
        suffix = a[len(a) - int(rng.integers(0, len(a) + 1)):]   # b: new leading dims, then
        b = [int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, 3)))] + \
            [int(rng.choice([1, n, rng.integers(0, 4)])) for n in suffix]  # 1, same or any
        ta, tb = shape_tensor(ex, buf, a), shape_tensor(ex, buf, b)
        try:
            want = list(np.broadcast_shapes(tuple(a), tuple(b)))
        except ValueError:
            want = None
        assert hg.tensor_is_broadcast_compatible_with(ta, tb) == (want is not None)
        assert hg.tensor_is_broadcast_compatible_with(tb, ta) == (want is not None)
        if want is None:
            refused += 1
            with pytest.raises(hg.ShapeError, match=rf"shapes {re.escape(str(a))} and "
                               rf"{re.escape(str(b))} do not broadcast"):
                hg.tensor_broadcast_shapes(ta, tb)
        else:
            agreed += 1
            assert json.loads(hg.tensor_broadcast_shapes(ta, tb)) == want
            assert json.loads(hg.tensor_broadcast_shapes(tb, ta)) == want
        hg.tensor_cleanup(ta)
        hg.tensor_cleanup(tb)
    assert agreed > 50 and refused > 50


def test_broadcast_shapes_of_tensors_of_other_executors(world):
    _, ex, buf, _ = world
    with hg.Executor() as other:
        b2 = other.allocate_buffer(3)
        t = other.tensor_from_buffer(b2, "[1, 3]")
        u = ex.tensor_from_buffer(buf, "[4, 1]")
        assert json.loads(hg.tensor_broadcast_shapes(t, u)) == [4, 3]


# ---- lifetimes ------------------------------------------------------------------------------

VIEWS = {
    "permute": lambda t: hg.tensor_permute(t, "[1, 0]"),
    "narrow": lambda t: hg.tensor_narrow(t, 1, 1, 2),
    "slice": lambda t: hg.tensor_slice(t, 1, 0, -1, 2),
    "view_1d": lambda t: hg.tensor_view_1d(t),
    "broadcast_to": lambda t: hg.tensor_broadcast_to(t, "[4, 2, 3]"),
    "unsqueeze": lambda t: hg.tensor_unsqueeze(t, 0),
    "squeeze": lambda t: hg.tensor_squeeze(hg.tensor_unsqueeze(t, 0), 0),
}


@pytest.mark.parametrize("name", VIEWS)
def test_view_keeps_its_buffer(ex, name):
    b = hg.executor_allocate_buffer(ex, 6)
    t = hg.tensor_from_buffer(b, "[2, 3]")
    v = VIEWS[name](t)
    hg.tensor_cleanup(t)
    if name == "squeeze":                  # the intermediate unsqueeze still views b too
        with pytest.raises(hg.BufferInUseError, match="viewed by 2 tensors"):
            hg.buffer_cleanup(b)
        return
    with pytest.raises(hg.BufferInUseError, match="viewed by 1 tensor"):
        hg.buffer_cleanup(b)
    assert hg.tensor_buffer(v) == b
    hg.tensor_cleanup(v)
    hg.buffer_cleanup(b)


@pytest.mark.parametrize("name", VIEWS)
def test_views_go_with_their_executor(name):
    e = hg.new_executor()
    b = hg.executor_allocate_buffer(e, 6)
    v = VIEWS[name](hg.tensor_from_buffer(b, "[2, 3]"))
    hg.executor_cleanup(e)
    with pytest.raises(hg.InvalidHandleError):
        hg.tensor_shape(v)


def test_executor_records_views():
    with hg.Executor() as ex:
        b = ex.allocate_buffer(6)
        t = ex.tensor_from_buffer(b, "[2, 3]")
        made = [ex.tensor_permute(t, "[1, 0]"), ex.tensor_narrow(t, 0, 1, 1),
                ex.tensor_slice(t, 1, 0, -1, 2), ex.tensor_view_1d(t),
                ex.tensor_broadcast_to(t, "[2, 2, 3]"), ex.tensor_unsqueeze(t, 2)]
        made.append(ex.tensor_squeeze(made[-1], 2))
        assert ex.tensors == [t] + made
    for h in made:
        with pytest.raises(hg.InvalidHandleError):
            hg.tensor_ndim(h)


# ---- errors --------------------------------------------------------------------------------

@pytest.fixture
def t234(ex):
    buf = upload(ex, np.arange(24, dtype=np.float32))
    return hg.tensor_from_buffer(buf, "[2, 3, 4]")


def test_permute_errors(t234):
    with pytest.raises(hg.ShapeError, match=r"dims \[0, 1\] has 2 entries.* has 3 dimensions"):
        hg.tensor_permute(t234, "[0, 1]")
    with pytest.raises(hg.ShapeError, match=r"dims \[0, 2, 2\] is not a permutation.*"
                       r"2 appears twice"):
        hg.tensor_permute(t234, "[0, 2, 2]")
    with pytest.raises(hg.ShapeError, match=r"5 is out of range"):
        hg.tensor_permute(t234, "[0, 5, 1]")
    with pytest.raises(hg.ShapeError, match=r"more than 8 entries"):
        hg.tensor_permute(t234, json.dumps(list(range(9))))
    with pytest.raises(hg.JsonError, match="'-1'"):
        hg.tensor_permute(t234, "[0, -1, 2]")
    with pytest.raises(hg.JsonError, match="'1.5'"):
        hg.tensor_permute(t234, "[0, 1.5, 2]")
    with pytest.raises(TypeError, match="dims_json must be str"):
        hg.tensor_permute(t234, [2, 0, 1])


def test_narrow_errors(t234):
    with pytest.raises(hg.OutOfBoundsError,
                       match="narrow start 3 with length 2 goes past the end of dimension 2 "
                             "of size 4"):
        hg.tensor_narrow(t234, 2, 3, 2)
    with pytest.raises(IndexError, match=r"dim 3 is out of range for a 3-D tensor \(0\.\.2\)"):
        hg.tensor_narrow(t234, 3, 0, 1)
    with pytest.raises(hg.OutOfBoundsError, match=f"start {2**64 - 1} with length 2"):
        hg.tensor_narrow(t234, 0, 2**64 - 1, 2)
    with pytest.raises(hg.InvalidArgumentError, match="start = -1 is negative"):
        hg.tensor_narrow(t234, 0, -1, 1)
    with pytest.raises(TypeError, match="length must be an integer"):
        hg.tensor_narrow(t234, 0, 0, 1.0)


def test_slice_errors(t234):
    with pytest.raises(hg.InvalidArgumentError, match="slice step 0: the step must be >= 1"):
        hg.tensor_slice(t234, 0, 0, -1, 0)
    with pytest.raises(hg.InvalidArgumentError,
                       match="slice step -1 is negative: negative steps are not supported"):
        hg.tensor_slice(t234, 0, 0, -1, -1)
    with pytest.raises(hg.OutOfBoundsError,
                       match=r"slice start -2 is outside \[0, 3\] for dimension 1 of size 3"):
        hg.tensor_slice(t234, 1, -2, -1, 1)
    with pytest.raises(hg.OutOfBoundsError, match="slice start 4 is outside"):
        hg.tensor_slice(t234, 1, 4, -1, 1)
    with pytest.raises(hg.OutOfBoundsError,
                       match=r"slice end 5 is outside \[0, 4\] \(or -1, to the end\)"):
        hg.tensor_slice(t234, 2, 0, 5, 1)
    with pytest.raises(hg.OutOfBoundsError, match="slice end -3 is outside"):
        hg.tensor_slice(t234, 2, 0, -3, 1)
    with pytest.raises(hg.OutOfBoundsError, match=f"slice start {-2**63} is outside"):
        hg.tensor_slice(t234, 2, -2**63, -1, 1)
    with pytest.raises(hg.OutOfBoundsError, match="dim 3 is out of range"):
        hg.tensor_slice(t234, 3, 0, -1, 1)
    # int64_t: the range and the type are checked before the C call, naming the parameter
    with pytest.raises(hg.InvalidArgumentError,
                       match=rf"tensor_slice\(\): end = {2**63} is outside \[-2\*\*63, 2\*\*63\)"):
        hg.tensor_slice(t234, 0, 0, 2**63, 1)
    with pytest.raises(hg.InvalidArgumentError, match=rf"start = {-2**63 - 1} is outside"):
        hg.tensor_slice(t234, 0, -2**63 - 1, -1, 1)
    with pytest.raises(hg.InvalidArgumentError, match=rf"step = {2**64} is outside"):
        hg.tensor_slice(t234, 0, 0, -1, 2**64)
    with pytest.raises(TypeError, match="start must be an integer, not float"):
        hg.tensor_slice(t234, 0, 0.0, -1, 1)
    with pytest.raises(TypeError, match="step must be an integer, not str"):
        hg.tensor_slice(t234, 0, 0, -1, "1")
    with pytest.raises(TypeError, match="end must be an integer, not NoneType"):
        hg.tensor_slice(t234, 0, 0, None, 1)
    with pytest.raises(hg.InvalidArgumentError, match="dim = -1 is negative"):
        hg.tensor_slice(t234, -1, 0, -1, 1)
    # NumPy integers and large steps are fine
    s = hg.tensor_slice(t234, np.uint8(2), np.int64(1), np.int32(-1), np.int64(2**63 - 1))
    assert json.loads(hg.tensor_shape(s)) == [2, 3, 1] and hg.tensor_offset(s) == 1


def test_view_1d_broadcast_unsqueeze_squeeze_errors(t234):
    p = hg.tensor_permute(t234, "[1, 0, 2]")
    with pytest.raises(hg.ShapeError, match="tensor_view_1d needs a contiguous tensor; use "
                                            r"tensor_contiguous .*shape \[3, 2, 4\], "
                                            r"strides \[4, 12, 1\]"):
        hg.tensor_view_1d(p)
    with pytest.raises(hg.ShapeError, match=r"cannot broadcast shape \[2, 3, 4\] to \[2, 3, 5\]"):
        hg.tensor_broadcast_to(t234, "[2, 3, 5]")
    with pytest.raises(hg.ShapeError, match=r"cannot broadcast shape \[2, 3, 4\] to \[3, 4\]"):
        hg.tensor_broadcast_to(t234, "[3, 4]")
    with pytest.raises(hg.ShapeError, match=r"shape \[65536, 65536, 2, 3, 4\] has "
                                            r"103079215104 elements, at most 4294967295"):
        hg.tensor_broadcast_to(t234, "[65536, 65536, 2, 3, 4]")
    with pytest.raises(hg.JsonError, match="found 'x'"):
        hg.tensor_broadcast_to(t234, "[x]")
    with pytest.raises(hg.OutOfBoundsError, match=r"dim 4 is out of range for a 3-D tensor "
                                                  r"\(0\.\.3\)"):
        hg.tensor_unsqueeze(t234, 4)
    u = t234
    for _ in range(5):
        u = hg.tensor_unsqueeze(u, 0)
    with pytest.raises(hg.ShapeError, match="would give 9 dimensions, at most 8"):
        hg.tensor_unsqueeze(u, 0)
    with pytest.raises(hg.ShapeError, match=r"squeeze of dimension 1 needs extent 1, shape "
                                            r"\[2, 3, 4\] has 3 there"):
        hg.tensor_squeeze(t234, 1)
    with pytest.raises(hg.OutOfBoundsError, match="dim 3 is out of range"):
        hg.tensor_squeeze(t234, 3)


def test_broadcast_shapes_errors(ex, t234):
    t4 = hg.tensor_from_buffer(hg.tensor_buffer(t234), "[4]")
    t5 = hg.tensor_from_buffer(hg.tensor_buffer(t234), "[5]")
    with pytest.raises(hg.ShapeError, match=r"shapes \[2, 3, 4\] and \[5\] do not broadcast: "
                                            r".*extents 4 and 5 differ"):
        hg.tensor_broadcast_shapes(t234, t5)
    assert hg.tensor_is_broadcast_compatible_with(t234, t5) == 0
    assert hg.tensor_is_broadcast_compatible_with(t234, t4) == 1
    buf = hg.tensor_buffer(t234)
    for fn in (hg.tensor_broadcast_shapes, hg.tensor_is_broadcast_compatible_with):
        with pytest.raises(hg.InvalidHandleError, match=f"(?i)0x0*{buf:x}"):
            fn(t234, buf)


def test_bad_handles_and_nothing_created(ex, t234):
    buf = hg.tensor_buffer(t234)
    calls = [lambda h: hg.tensor_permute(h, "[0]"), lambda h: hg.tensor_narrow(h, 0, 0, 1),
             lambda h: hg.tensor_slice(h, 0, 0, -1, 1), hg.tensor_view_1d,
             lambda h: hg.tensor_broadcast_to(h, "[1]"), lambda h: hg.tensor_unsqueeze(h, 0),
             lambda h: hg.tensor_squeeze(h, 0)]
    for call in calls:
        for bad in (buf, ex, 0, 12345):
            with pytest.raises(hg.InvalidHandleError):
                call(bad)
    # a failed view creates nothing: the buffer is still viewed by t234 alone
    failing = [lambda: hg.tensor_permute(t234, "[0]"), lambda: hg.tensor_narrow(t234, 0, 2, 1),
               lambda: hg.tensor_slice(t234, 0, 3, -1, 1),
               lambda: hg.tensor_slice(t234, 0, 0, -1, 0),
               lambda: hg.tensor_broadcast_to(t234, "[5]"),
               lambda: hg.tensor_unsqueeze(t234, 4), lambda: hg.tensor_squeeze(t234, 0)]
    for call in failing:
        with pytest.raises(hg.HologramError):
            call()
    with pytest.raises(hg.BufferInUseError, match="viewed by 1 tensor$"):
        hg.buffer_cleanup(buf)
