"""Every error row of API.md: the exception class (and its builtin base), a message naming
the value, and no buffer modified."""
import json
import re
import math
import pickle
import threading

import numpy as np
import pytest

import hologram_ffi as hg
from conftest import download, upload


def test_exception_hierarchy_and_status_names():
    pairs = {
        hg.InvalidHandleError: ValueError, hg.InvalidArgumentError: ValueError,
        hg.ShapeError: ValueError, hg.OutOfBoundsError: IndexError, hg.JsonError: ValueError,
        hg.BufferInUseError: RuntimeError, hg.OutOfMemoryError: MemoryError,
        hg.CompileError: RuntimeError, hg.ExpressionError: ValueError,
    }
    for cls, builtin in pairs.items():
        assert issubclass(cls, hg.HologramError) and issubclass(cls, builtin)
    statuses = hg._ffi.typeof("hg_status").elements
    assert {statuses[v] for v, cls in hg._ERROR_CLASSES.items() if cls in pairs} == set(
        hg.errors.STATUS_CLASSES)


@pytest.mark.parametrize("cls", [hg.HologramError] + sorted(set(hg.errors.STATUS_CLASSES.values()),
                                                            key=lambda c: c.__name__))
def test_errors_pickle_as_themselves(cls):
    """What a worker process raises (hologram_ffi.dask) reaches the caller unchanged."""
    e = pickle.loads(pickle.dumps(cls("what went wrong", 7)))
    assert type(e) is cls and str(e) == "what went wrong" and e.status == 7


@pytest.fixture
def abc(ex):
    a = upload(ex, np.arange(8, dtype=np.float32))
    b = upload(ex, np.ones(8, dtype=np.float32))
    c = upload(ex, np.full(8, 5.0, dtype=np.float32))
    return a, b, c


def names(handle):
    """A regex matching `handle` written in decimal or in hex, as messages may give it."""
    return rf"(?i)\b({handle}|0x0*{handle:x})\b"


def _unchanged(ex, c):
    np.testing.assert_array_equal(download(ex, c), np.full(8, 5.0, np.float32))


@pytest.mark.parametrize("bad", [0, 12345678, 2 ** 64 - 1])
def test_made_up_handles(ex, abc, bad):
    a, b, c = abc
    with pytest.raises(hg.InvalidHandleError, match=names(bad)) as info:
        hg.vector_add_f32(ex, a, bad, c, 8)
    assert info.value.status == hg._STATUS_VALUES["HG_ERR_INVALID_HANDLE"]
    _unchanged(ex, c)
    with pytest.raises(hg.InvalidHandleError):
        hg.vector_add_f32(bad, a, b, c, 8)
    with pytest.raises(hg.InvalidHandleError):
        hg.buffer_length(bad)
    with pytest.raises(hg.InvalidHandleError):
        hg.tensor_shape(bad)


def test_freed_and_wrong_kind_handles(ex, abc):
    a, b, c = abc
    t = hg.tensor_from_buffer(a, "[8]")
    with pytest.raises(hg.InvalidHandleError, match=names(t)):
        hg.vector_add_f32(ex, t, b, c, 8)           # tensor where a buffer is expected
    with pytest.raises(hg.InvalidHandleError):
        hg.vector_add_f32(a, a, b, c, 8)            # buffer where an executor is expected
    with pytest.raises(hg.InvalidHandleError):
        hg.tensor_ndim(a)
    hg.buffer_cleanup(b)
    with pytest.raises(hg.InvalidHandleError, match=names(b)):
        hg.vector_add_f32(ex, a, b, c, 8)
    _unchanged(ex, c)


def test_buffer_of_another_executor(ex, abc):
    a, b, c = abc
    other = hg.new_executor()
    try:
        foreign = hg.executor_allocate_buffer(other, 8)
        with pytest.raises(hg.InvalidHandleError):
            hg.vector_add_f32(ex, a, foreign, c, 8)
        _unchanged(ex, c)
    finally:
        hg.executor_cleanup(other)


@pytest.mark.parametrize("call", [
    lambda e, a, b, c: hg.vector_add_f32(e, a, b, c, 9),
    lambda e, a, b, c: hg.vector_relu_f32(e, a, c, 9),
    lambda e, a, b, c: hg.scalar_mul_f32(e, a, c, 100, 2.0),
    lambda e, a, b, c: hg.buffer_fill(e, c, 1.0, 9),
    lambda e, a, b, c: hg.buffer_copy(e, a, c, 9),
    lambda e, a, b, c: hg.sigmoid_f32(e, a, c, 9),
    lambda e, a, b, c: hg.gemm_f32(e, a, b, c, 3, 3, 3),
    lambda e, a, b, c: hg.matvec_f32(e, a, b, c, 3, 3),
], ids=["add", "relu", "scalar_mul", "fill", "copy", "sigmoid", "gemm", "matvec"])
def test_n_past_the_end(ex, abc, call):
    a, b, c = abc
    with pytest.raises(hg.OutOfBoundsError):
        call(ex, a, b, c)
    _unchanged(ex, c)


@pytest.mark.parametrize("text,error", [
    ("[1, 2,", hg.JsonError), ("[1, 2, x]", hg.JsonError), ("{\"a\": 1}", hg.JsonError),
    ("[1, \"2\"]", hg.JsonError), ("[1, [2]]", hg.JsonError), ("", hg.JsonError),
    ("[1, 2, 3, 4, 5, 6, 7, 8, 9]", hg.OutOfBoundsError),
])
def test_malformed_json_leaves_buffer_unchanged(ex, abc, text, error):
    _, _, c = abc
    with pytest.raises(error) as info:
        hg.buffer_copy_from_slice(ex, c, text)
    if error is hg.JsonError:
        assert any(ch.isdigit() for ch in str(info.value)), "message gives no position"
    _unchanged(ex, c)


def test_json_accepts_python_specials(ex, abc):
    _, _, c = abc
    hg.buffer_copy_from_slice(ex, c, json.dumps([float("nan"), float("inf"), -float("inf"), 1]))
    got = download(ex, c)
    assert math.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf and got[3] == 1


def test_shape_errors(ex):
    b = upload(ex, np.arange(24, dtype=np.float32))
    t3 = hg.tensor_from_buffer(b, "[2, 3, 4]")
    with pytest.raises(hg.ShapeError):
        hg.tensor_transpose(t3)
    with pytest.raises(hg.ShapeError):
        hg.tensor_reshape(ex, t3, "[5, 5]")
    ta = hg.tensor_from_buffer(b, "[2, 3]")
    tb = hg.tensor_from_buffer(b, "[4, 2]")
    with pytest.raises(hg.ShapeError, match=r"2.*3.*4.*2"):
        hg.tensor_matmul(ex, ta, tb)
    with pytest.raises(hg.ShapeError, match="inner dimensions differ"):
        hg.tensor_matmul(ex, t3, ta)                     # [2, 3, 4] x [2, 3]
    with pytest.raises(hg.ShapeError):
        hg.tensor_from_buffer_with_strides(b, "[2, 3]", "[3]")
    with pytest.raises(hg.ShapeError):
        hg.tensor_from_buffer(b, "[]")
    with pytest.raises(hg.OutOfBoundsError):
        hg.tensor_from_buffer(b, "[5, 5]")
    with pytest.raises(hg.OutOfBoundsError):
        hg.tensor_from_buffer_with_strides(b, "[2, 3]", "[12, 6]")
    for bad in ("[-1]", "[1.5]", "[\"2\"]", "[2,", "7"):
        with pytest.raises(hg.JsonError):
            hg.tensor_from_buffer(b, bad)
    with pytest.raises(hg.OutOfBoundsError):
        hg.tensor_select(t3, 3, 0)
    with pytest.raises(hg.OutOfBoundsError):
        hg.tensor_select(t3, 1, 3)


@pytest.mark.parametrize("length", [2 ** 40, 2 ** 64 - 1, 1073741824])
def test_absurd_sizes(ex, length):
    with pytest.raises(hg.OutOfMemoryError):
        hg.executor_allocate_buffer(ex, length)


@pytest.mark.parametrize("geometry", [(96, 16, 16), (0, 0, 16), (0, 49, 16), (0, 16, 0),
                                      (0, 16, 257), (0, 1, 3)])
def test_bad_boundary_geometry(ex, geometry):
    with pytest.raises(hg.InvalidArgumentError):
        hg.executor_allocate_boundary_buffer(ex, *geometry)


def test_double_cleanup():
    e = hg.new_executor()
    b = hg.executor_allocate_buffer(e, 4)
    t = hg.tensor_from_buffer(b, "[4]")
    hg.tensor_cleanup(t)
    with pytest.raises(hg.InvalidHandleError):
        hg.tensor_cleanup(t)
    hg.buffer_cleanup(b)
    with pytest.raises(hg.InvalidHandleError):
        hg.buffer_cleanup(b)
    hg.executor_cleanup(e)
    with pytest.raises(hg.InvalidHandleError):
        hg.executor_cleanup(e)


def test_buffer_in_use(ex):
    b = hg.executor_allocate_buffer(ex, 6)
    t1 = hg.tensor_from_buffer(b, "[6]")
    t2 = hg.tensor_from_buffer(b, "[2, 3]")
    with pytest.raises(hg.BufferInUseError, match="2"):
        hg.buffer_cleanup(b)
    assert hg.buffer_length(b) == 6
    hg.tensor_cleanup(t1)
    hg.tensor_cleanup(t2)
    hg.buffer_cleanup(b)


def test_argument_checks_before_the_call(ex, abc):
    a, b, c = abc
    with pytest.raises(hg.InvalidArgumentError, match="-1"):
        hg.vector_add_f32(ex, a, b, c, -1)
    with pytest.raises(hg.InvalidArgumentError):
        hg.executor_allocate_buffer(ex, -5)
    with pytest.raises(hg.InvalidArgumentError):
        hg.buffer_length(-a)
    with pytest.raises(hg.InvalidArgumentError):
        hg.buffer_length(2 ** 64)
    for bad in (8.0, "8", None, [8]):
        with pytest.raises(TypeError):
            hg.vector_add_f32(ex, a, b, c, bad)
    with pytest.raises(TypeError):
        hg.scalar_add_f32(ex, a, c, 8, "1.0")
    with pytest.raises(TypeError):
        hg.tensor_from_buffer(a, [8])
    _unchanged(ex, c)
    hg.vector_add_f32(np.uint64(ex), np.uint64(a), b, c, np.int64(8))   # __index__ accepted
    hg.scalar_add_f32(ex, a, c, 8, 2)                                 # int for a float
    hg.scalar_add_f32(ex, a, c, 8, np.float32(0.5))


@pytest.mark.parametrize("call,position", [
    (lambda ex, b: hg.buffer_copy_from_slice(ex, b, "[1, 2]\x00, 3, 4]"), 6),
    (lambda ex, b: hg.tensor_from_buffer(b, "[2\x00, 4]"), 2),
    (lambda ex, b: hg.tensor_from_buffer_with_strides(b, "[8]", "[1]\x00"), 3),
    (lambda ex, b: hg.set_backend("interp\x00jit"), 6),
])
def test_embedded_nul_is_refused(ex, abc, call, position):
    """C would stop reading at the NUL: '[1, 2]\\0, 3, 4]' would write [1, 2] and succeed."""
    _, _, c = abc
    before = hg.get_backend()
    with pytest.raises(ValueError, match=rf"NUL character at position {position}\b"):
        call(ex, c)
    _unchanged(ex, c)
    assert hg.get_backend() == before


def test_lone_surrogate_is_named(ex, abc):
    _, _, c = abc
    with pytest.raises(hg.InvalidArgumentError,
                       match=r"data_json contains a lone surrogate '\\ud800' at position 4"):
        hg.buffer_copy_from_slice(ex, c, "[1, \ud800]")
    with pytest.raises(hg.InvalidArgumentError, match="position 1"):
        hg.tensor_from_buffer(c, "[\udfff]")
    _unchanged(ex, c)


@pytest.mark.parametrize("value,shown", [
    (1e300, re.escape("1e+300")), (-3.5e38, re.escape("3.5e+38")), (2 ** 128, str(2 ** 128)),
    (3.4028235677973366e38, re.escape("3.4028235677973366e+38")),  # the midpoint: to inf
    (2 ** 2000, r"1148130695274254524\d?\.\.\.029376 \(603 digits\)"),
    (np.float64(1e39), re.escape("1e+39")),
])
def test_scalars_beyond_float32_are_refused(ex, abc, value, shown):
    """A finite value that float32 cannot hold raises, naming it, instead of becoming inf."""
    a, _, c = abc
    for call in (lambda: hg.scalar_add_f32(ex, a, c, 8, value),
                 lambda: hg.buffer_fill(ex, c, value, 8),
                 lambda: hg.vector_clip_f32(ex, a, c, 8, -value, value),
                 lambda: hg.expr_run(ex, _expr_with_scalar(), [a], [value], c, 8)):
        with pytest.raises(hg.InvalidArgumentError, match=shown):
            call()
    _unchanged(ex, c)


_EXPR = []


def _expr_with_scalar():
    """One compiled 'x + s' for the test above (freed with the process's registries)."""
    if not _EXPR:
        _EXPR.append(hg.expr_compile("x + s", '["s"]'))
    return _EXPR[0]


def test_scalars_at_the_float32_edge(ex, abc):
    """What rounds to a finite float32 is taken (to nearest), NaN and infinities as
    documented per op."""
    _, _, c = abc
    flt_max = float(np.finfo(np.float32).max)
    for value in (flt_max, 3.4028235e38, 3.4028235677973362e38, -flt_max):
        hg.buffer_fill(ex, c, value, 1)
        assert download(ex, c)[0] == np.float32(math.copysign(flt_max, value))
    for value in (float("inf"), float("-inf")):
        hg.buffer_fill(ex, c, value, 1)
        assert download(ex, c)[0] == value
    hg.buffer_fill(ex, c, float("nan"), 1)
    assert np.isnan(download(ex, c)[0])


def test_huge_integers_are_named(ex, abc):
    a, b, c = abc
    with pytest.raises(hg.InvalidArgumentError, match=r"length = .*\(603 digits\) exceeds"):
        hg.vector_add_f32(ex, a, b, c, 2 ** 2000)
    with pytest.raises(hg.InvalidArgumentError, match=r"start = -\d+\.\.\.\d+ \(61 digits"):
        hg.tensor_slice(hg.tensor_from_buffer(c, "[8]"), 0, -10 ** 60, 8, 1)
    _unchanged(ex, c)


@pytest.mark.parametrize("shape", ["[2.0]", "[1e3]", "[8, 1.0]", "[-0]", "[8E0]"])
def test_shapes_are_integer_literals(ex, abc, shape):
    _, _, c = abc
    with pytest.raises(hg.JsonError, match="integer literal"):
        hg.tensor_from_buffer(c, shape)
    with pytest.raises(hg.JsonError, match="integer literal"):
        hg.tensor_from_buffer_with_strides(c, "[8]", shape)


def test_closed_executor_names_its_handle():
    with hg.Executor() as e:
        b = e.allocate_buffer(4)
        handle = e.handle
    for call in (lambda: e.allocate_buffer(4), lambda: e.buffer_fill(b, 1.0, 4),
                 lambda: e.to_numpy(b), lambda: e.from_numpy(np.ones(2, np.float32))):
        with pytest.raises(hg.InvalidHandleError, match=f"0x{handle:016x}.* is closed"):
            call()
    assert "closed" in repr(e)
    e.close()  # still idempotent


def test_clip_bounds(ex, abc):
    a, _, c = abc
    with pytest.raises(hg.InvalidArgumentError):
        hg.vector_clip_f32(ex, a, c, 8, 2.0, 1.0)
    with pytest.raises(hg.InvalidArgumentError):
        hg.vector_clip_f32(ex, a, c, 8, float("nan"), 1.0)
    _unchanged(ex, c)


def test_reductions_of_nothing(ex, abc):
    a, _, c = abc
    assert hg.reduce_sum_f32(ex, a, c, 0) == 0.0
    for op in (hg.reduce_min_f32, hg.reduce_max_f32, hg.softmax_f32):
        with pytest.raises(hg.InvalidArgumentError):
            op(ex, a, c, 0)


def test_backend_names():
    with pytest.raises(hg.InvalidArgumentError, match="gpu"):
        hg.set_backend("gpu")
    assert hg.get_backend() in ("jit", "interp")


def test_error_messages_are_per_thread(ex):
    """Two threads failing at once each read their own message."""
    barrier = threading.Barrier(2)
    seen = {}

    def fail(bad):
        barrier.wait()
        for _ in range(200):
            try:
                hg.buffer_length(bad)
            except hg.InvalidHandleError as exc:
                if not re.search(names(bad), str(exc)):
                    seen[bad] = str(exc)
                    return
        seen[bad] = None

    threads = [threading.Thread(target=fail, args=(v,)) for v in (111111, 999999)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert seen == {111111: None, 999999: None}
