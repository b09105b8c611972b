"""Shared fixtures: the engine backend (every math test runs under "jit" and "interp"), a
session executor, and NumPy transfer helpers."""
import math

import numpy as np
import pytest

import hologram_ffi as hg

BACKENDS = ("jit", "interp")
LENGTHS = (0, 1, 15, 16, 17, 1000, 1_000_000)
F32_EPS = 2.0 ** -23           # one ulp of 1.0f


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Runs the test under one backend, restoring the previous one afterwards; "jit" is
    skipped in a build without it (HG_WITH_JIT=OFF)."""
    previous = hg.get_backend()
    try:
        hg.set_backend(request.param)
    except hg.InvalidArgumentError as exc:
        pytest.skip(str(exc))
    yield request.param
    hg.set_backend(previous)


@pytest.fixture
def ex():
    """A fresh executor, cleaned up (with everything it owns) after the test."""
    handle = hg.new_executor()
    yield handle
    hg.executor_cleanup(handle)


def upload(e, array, length=None):
    """A new buffer of `length` (default array.size) floats holding float32 `array`."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    buf = hg.executor_allocate_buffer(e, array.size if length is None else length)
    hg.buffer_copy_from_numpy(e, buf, array)
    return buf


def download(e, buf):
    return hg.buffer_to_numpy(e, buf)


def sum_bound(terms):
    """The API's reduction bound: 1e-6*log2(n)*sum|terms| (log2 taken >= 1 so that the
    float32 rounding of the terms themselves is covered at n = 1)."""
    terms = np.asarray(terms, dtype=np.float64)
    return 1e-6 * max(math.log2(max(terms.size, 1)), 1.0) * float(np.abs(terms).sum())


def exp_family_close(y, ref):
    """Elementwise |y - ref| <= 2 ulp*|ref| + 1e-7 (float64 reference); NaN matches NaN and
    an infinity itself."""
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    tol = 2 * F32_EPS * np.abs(ref) + 1e-7
    with np.errstate(invalid="ignore"):
        ok = (y == ref) | (np.isnan(y) & np.isnan(ref)) | (np.abs(y - ref) <= tol)
    bad = np.flatnonzero(~ok)
    assert bad.size == 0, (f"{bad.size} elements off, first at {bad[0]}: "
                           f"{y[bad[0]]!r} vs {ref[bad[0]]!r}")
