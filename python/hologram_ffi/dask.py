"""hologram_ffi.dask — hologram kernels as Dask tasks: evaluate() and the ops of canon/ops.def
on float32 Dask arrays, run chunk by chunk by Dask's schedulers (a distributed cluster of
worker processes, one machine or many, or Dask's local schedulers).

    evaluate("2*a + 3*b")       a map: one blockwise task per output chunk, running
                                hologram_ffi.evaluate (one fused kernel) on its blocks
    evaluate("sum((a-b)**2)")   a reduction (sum, mean, min, max; axis=k): a Dask tree
                                reduction (dask.array.reduction) whose chunk step is
                                hologram's partial of the chunk, as (value, count):
                                  sum, mean   the chunk's sum (mean: the sum's text), float64
                                  min, max    the chunk's min / max (float32)
                                then combine/aggregate steps that merge partials (counts
                                added, sums in float64, min/max by hologram's own reduce:
                                exact), divide a mean by its count, round once to float32
    apply(op, *arrays)          an op of ops.def by family: maps as above, reductions and
                                losses as trees (a loss's partial is its loss times the
                                chunk's count), softmax on blocks whole along its axes
    matmul(a, b)                Dask's blocked matmul: hologram's gemm per (i, k, j) block
                                pair, then the same tree summing over the k blocks

Nothing process-local ever enters a graph: tasks carry texts, op names, numbers and blocks.
Each process makes its own state at its first task (_process(): again after a fork), its
executor at its first gemm, and compiles each kernel once (its kernel cache), loading what
another process on the machine already compiled from the on-disk cache
(HOLOGRAM_CACHE_DIR, shared by the workers of a machine).  Inside a Dask worker, a task
uses one thread (HOLOGRAM_THREADS=1 and set_num_threads(1) at the process's first task
unless the variable is set already): Dask runs one task per core itself.

Importing this module needs Dask (dask.array); `import hologram_ffi` never imports it.
"""
import json
import math
import os
import re
import sys
import threading
import warnings
from functools import partial

try:
    import dask.array as da
except ImportError as _exc:
    raise ImportError("hologram_ffi.dask needs Dask's arrays (dask.array), which did not "
                      "import (Debian: apt-get install python3-dask, and python3-distributed "
                      f"for a cluster): {_exc}") from _exc
import numpy as np

import hologram_ffi as _hg
from . import _evaluate
from ._core import _STATUS_VALUES, _check, _ffi, _lib
from .errors import ExpressionError, InvalidArgumentError, ShapeError

__all__ = ["evaluate", "apply", "sigmoid", "gelu", "softmax", "mse_loss", "cross_entropy_loss",
           "binary_cross_entropy_loss", "matmul", "worker_info"]

_INVALID_ARGUMENT = _STATUS_VALUES["HG_ERR_INVALID_ARGUMENT"]
_SHAPE = _STATUS_VALUES["HG_ERR_SHAPE"]
_EXPRESSION = _STATUS_VALUES["HG_ERR_EXPRESSION"]
_F32 = np.dtype(np.float32)
_IDENTITY = {"sum": 0.0, "min": math.inf, "max": -math.inf}   # a partial of no elements


# ---- per-process state (never pickled: handles are process-local) -------------------------

class _Process:
    """hologram's state in one process: its pid, whether it runs inside a Dask worker, and
    its executor (made at its first gemm)."""

    def __init__(self):
        self.pid = os.getpid()
        self.in_worker = _in_dask_worker()
        if self.in_worker and "HOLOGRAM_THREADS" not in os.environ:
            os.environ["HOLOGRAM_THREADS"] = "1"   # what worker_info reports
            _hg.set_num_threads(1)                  # the environment may have been read
        self.executor = None


_state = None
_lock = threading.Lock()
_tls = threading.local()   # per thread: its gemm scratch buffers (pid, {slot: (handle, n)})


def _reset_after_fork():
    """In a forked child: the parent's state and a lock another thread may have held."""
    global _state, _lock
    _state, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _in_dask_worker():
    """True when this process runs a dask.distributed worker (distributed.get_worker():
    the worker of the task this thread runs, else one running in the process)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def _process():
    """This process's _Process, made at its first task (and anew when the pid changed)."""
    global _state
    s = _state
    if s is None or s.pid != os.getpid():
        with _lock:
            s = _state
            if s is None or s.pid != os.getpid():
                s = _state = _Process()
    return s


def _executor():
    """This process's executor, made once at first use."""
    s = _process()
    if s.executor is None:
        with _lock:
            if s.executor is None:
                s.executor = _hg.new_executor()
    return s.executor


def worker_info():
    """What hologram holds in the calling process, as a dict: pid, in_worker (a
    dask.distributed worker), executor (its handle, None before the first gemm),
    HOLOGRAM_THREADS and HOLOGRAM_CACHE_DIR (the environment's values, None if unset),
    backend, cache (cache_stats()).  Run on every worker with
    client.run(hologram_ffi.dask.worker_info)."""
    s = _state if _state is not None and _state.pid == os.getpid() else None
    return {"pid": os.getpid(), "in_worker": _in_dask_worker(),
            "executor": s.executor if s else None,
            "HOLOGRAM_THREADS": os.environ.get("HOLOGRAM_THREADS"),
            "HOLOGRAM_CACHE_DIR": os.environ.get("HOLOGRAM_CACHE_DIR"),
            "backend": _hg.get_backend(), "cache": _hg.cache_stats()}


# ---- tasks (run on the workers) --------------------------------------------------------------

def _run_expression(text, names, scalars, *blocks):
    """hologram_ffi.evaluate(text) with `names` bound to the blocks and the (name, value)
    pairs of `scalars`."""
    env = dict(scalars)
    env.update(zip(names, blocks))
    return _hg.evaluate(text, env)


def _run_op(op, params, axis, keepdims, *blocks):
    """hologram_ffi.apply(op) on the blocks (a 0-d one may come as a NumPy scalar)."""
    return _hg.apply(op, *map(np.asarray, blocks), params=params, axis=axis,
                     keepdims=keepdims)


def _map_block(*blocks, job):
    """A map's task: job (a _run_* partial) on the output chunk's blocks."""
    _process()
    return job(*blocks)


def _partial_block(*blocks, job, axes, reduce, scale):
    """A reduction's chunk step: (value, count) of the blocks over `axes`: value has the
    blocks' broadcast shape with extent 1 on those axes (float64 for sums, float32 for
    min/max; times count when `scale`, for a loss's mean), count the number of elements
    reduced into each value."""
    _process()
    shape = np.broadcast_shapes(*(b.shape for b in blocks))
    kept = tuple(1 if d in axes else e for d, e in enumerate(shape))
    count = math.prod(shape[d] for d in axes)
    if count == 0:
        value = np.full(kept, _IDENTITY[reduce], np.float64 if reduce == "sum" else _F32)
    else:
        value = np.asarray(job(*blocks), dtype=np.float64 if reduce == "sum" else _F32)
        value = value.reshape(kept)
        if scale:
            value = value * count
    return value, count


def _gemm_block(a, b):
    """A matmul's chunk step: (a @ b by hologram's gemm, of shape (m, 1, n), float64; k)."""
    _process()
    m, k = a.shape
    n = b.shape[1]
    if not (m and n and k):
        return np.zeros((m, 1, n)), k
    c = np.empty((m, n), _F32)
    ex = _executor()
    buffers = [_scratch(ex, slot, size) for slot, size in enumerate((m * k, k * n, m * n))]
    for buf, x in zip(buffers, (a, b)):
        _hg.buffer_copy_from_numpy(ex, buf, np.ascontiguousarray(x))
    _hg.gemm_f32(ex, buffers[0], buffers[1], buffers[2], m, n, k)
    _check(_lib.hg_buffer_read(ex, buffers[2], _ffi.from_buffer("float[]", c, True), c.size))
    return c.reshape(m, 1, n).astype(np.float64), k


def _scratch(ex, slot, size):
    """This thread's scratch buffer `slot` of executor ex with at least `size` elements
    (grown, never shrunk, kept for the process's life: a task does not allocate and
    zero-fill executor buffers; threads have their own, since tasks of one worker may run
    at once)."""
    pid = os.getpid()
    cached = getattr(_tls, "scratch", None)
    if cached is None or cached[0] != pid:
        cached = _tls.scratch = (pid, {})
    held = cached[1].get(slot)
    if held is None or held[1] < size:
        if held is not None:
            _hg.buffer_cleanup(held[0])
        held = cached[1][slot] = (_hg.executor_allocate_buffer(ex, size), size)
    return held[0]


def _identity(x, axis, keepdims):
    """The chunk step dask.array.reduction applies to the partials (already reduced)."""
    return x


def _leaves(parts):
    """The (value, count) partials in what a tree step receives: one, or nested lists."""
    if isinstance(parts, tuple):
        yield parts
    else:
        for p in parts:
            yield from _leaves(p)


def _merge(parts, reduce):
    """One (value, count) of several over the same region: float64 sums added, min/max by
    hologram's reduce (NaN propagates, -0 < +0), counts added."""
    parts = list(_leaves(parts))
    count = sum(p[1] for p in parts)
    if len(parts) == 1:
        return parts[0][0], count
    stack = np.stack([p[0] for p in parts])
    if reduce == "sum":
        return stack.sum(axis=0), count
    out = np.empty(stack.shape[1:], _F32)
    return _hg.apply(f"reduce_{reduce}_f32", stack, axis=0, out=out), count


def _combine(parts, axis, keepdims, reduce):
    """A tree's combine step."""
    return _merge(parts, reduce)


def _aggregate(parts, axis, keepdims, reduce, mean, where):
    """A tree's last step: the merged value (divided by its count for a mean) rounded to
    float32, without the reduced axes unless keepdims (a NumPy float32 scalar when no axis
    is left); InvalidArgumentError for a min or max of no elements."""
    value, count = _merge(parts, reduce)
    if count == 0 and reduce != "sum":
        raise InvalidArgumentError(f"{where}: {reduce} over no elements has no value",
                                   _INVALID_ARGUMENT)
    if mean:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = value / count
    value = value.astype(_F32)
    if not keepdims:
        value = value.reshape(tuple(e for d, e in enumerate(value.shape) if d not in axis))
    return value[()] if value.ndim == 0 else value      # 0-d: a NumPy scalar, as Dask's


# ---- graph building (the caller's process) ------------------------------------------------------

def _known(x):
    """True when every chunk size of Dask array x is known."""
    return not any(math.isnan(c) for cs in x.chunks for c in cs)


def _dask_arrays(where, named):
    """The (name, value) pairs with each value a float32 Dask array (a NumPy array through
    da.asarray).  TypeError naming a value that is not float32 (and its dtype) or not an
    array, and when none of them is a Dask array (hologram_ffi's own functions are for
    NumPy)."""
    if not any(isinstance(v, da.Array) for _, v in named):
        raise TypeError(f"{where}: no Dask array among its operands; hologram_ffi.evaluate "
                        "and hologram_ffi.apply take NumPy arrays")
    out = []
    for name, value in named:
        if isinstance(value, da.Array):
            if value.dtype != _F32:
                raise TypeError(f"{where}: Dask array '{name}' has dtype {value.dtype}; it must "
                                "be float32 (convert it with .astype(numpy.float32))")
        elif isinstance(value, np.ndarray):
            _evaluate._check_array(where, name, value, np)
            value = da.asarray(value)
        else:
            raise TypeError(f"{where}: '{name}' must be a float32 Dask or NumPy array, not "
                            f"{type(value).__name__}")
        out.append((name, value))
    return out


def _aligned(where, named):
    """The broadcast shape of the named Dask arrays, with the block indices of each for
    dask.array.blockwise (dimensions counted from the last, as Dask's elementwise
    operations do).  ShapeError for shapes that do not broadcast, a rank above 8, and
    arrays of unknown chunk sizes (NaN) meeting another array: Dask would pair their
    blocks by position without knowing their sizes."""
    for name, a in named:
        if a.ndim > _evaluate._MAX_DIMS:
            raise ShapeError(f"{where}: array '{name}' has {a.ndim} dimensions (at most "
                             f"{_evaluate._MAX_DIMS})", _SHAPE)
    ranked = [(name, a) for name, a in named if a.ndim]
    if len({a.name for _, a in ranked}) <= 1:       # one array (maybe named twice) and 0-d ones
        shape = ranked[0][1].shape if ranked else ()
    else:
        unknown = [name for name, a in ranked if not _known(a)]
        if unknown:
            raise ShapeError(f"{where}: the chunk sizes of "
                             f"{', '.join(repr(n) for n in unknown)} are unknown (NaN, after "
                             "boolean indexing for example), so Dask cannot align them with "
                             "the other arrays' chunks; call .compute_chunk_sizes() on them "
                             "first", _SHAPE)
        try:
            shape = np.broadcast_shapes(*(a.shape for _, a in named))
        except ValueError:
            raise ShapeError(f"{where}: shapes "
                             + ", ".join(f"'{n}' {a.shape}" for n, a in named)
                             + " do not broadcast", _SHAPE) from None
    pairs = []
    for _, a in named:
        pairs += [a, tuple(range(a.ndim))[::-1]]
    return shape, pairs


def _map(where, token, job, named):
    """A float32 Dask array of the named arrays' broadcast shape: job on each output
    chunk's blocks."""
    shape, pairs = _aligned(where, named)
    nd = len(shape)
    return da.blockwise(_map_block, tuple(range(nd))[::-1], *pairs, job=job, dtype=_F32,
                        meta=np.empty((0,) * nd, _F32), token=token)


def _reduce(where, token, job, named, axes, reduce, mean, scale, keepdims):
    """A float32 Dask array: the tree reduction over `axes` (normalized, of the broadcast
    shape) of job's partials on the blocks; InvalidArgumentError at once when a min or max
    is over no elements."""
    shape, pairs = _aligned(where, named)
    nd = len(shape)
    if reduce != "sum" and not any(math.isnan(shape[d]) for d in axes) and \
            math.prod(shape[d] for d in axes) == 0:
        raise InvalidArgumentError(f"{where}: {reduce} over no elements (the reduced axes of "
                                   f"{list(shape)} have extent 0) has no value",
                                   _INVALID_ARGUMENT)
    index = tuple(range(nd))[::-1]
    parts = da.blockwise(_partial_block, index, *pairs, job=job, axes=axes, reduce=reduce,
                         scale=scale, adjust_chunks={index[d]: 1 for d in axes},
                         dtype=np.float64, meta=np.empty((0,) * nd, np.float64), token=token)
    return _tree(parts, axes, reduce, mean, keepdims, where, token)


def _tree(parts, axes, reduce, mean, keepdims, where, token):
    """dask.array.reduction over the (value, count) partials `parts` (one per block, extent
    1 on `axes`); its keys start with `token`."""
    nd = parts.ndim - (0 if keepdims else len(axes))
    return da.reduction(parts, _identity, partial(_aggregate, reduce=reduce, mean=mean,
                                                  where=where),
                        combine=partial(_combine, reduce=reduce), axis=axes,
                        keepdims=keepdims, dtype=_F32, concatenate=False,
                        meta=np.empty((0,) * nd, _F32), name=token)


def _axes(where, nd, axis):
    """`axis` (None: all; an int or a sequence of ints, negative from the last) as a sorted
    tuple of dimensions, or InvalidArgumentError / TypeError."""
    _evaluate._reduced(where, (1,) * nd, axis, False)      # the checks and their messages
    picked = range(nd) if axis is None else (axis,) if isinstance(axis, int) else axis
    return tuple(sorted(a % nd for a in picked))


_MEAN = re.compile(r"^(\s*)mean")


def evaluate(ex, local_dict=None):
    """Evaluates expression `ex` (hologram_ffi.evaluate's language: hg_expr_compile in
    hologram.h) on float32 Dask arrays; returns a lazy float32 Dask array (compute() or
    persist() it).

    Names are looked up in `local_dict` (default: the caller's locals), then the caller's
    globals.  Arrays: float32 Dask arrays of any chunks, and float32 NumPy arrays (made
    Dask arrays by da.asarray: they travel inside the graph, so keep them small, a bias row
    for instance).  Numbers are scalar parameters, and so are 0-d Dask arrays (a lazy
    scalar such as a reduction's result).  Shapes broadcast by NumPy's rules; chunks are
    aligned as Dask's elementwise operations align them (rechunked to common boundaries;
    an extent-1 dimension broadcast).

    A map has the broadcast shape and its chunks, one task per output chunk running the
    fused kernel on the chunk's blocks: each element is what hologram_ffi.evaluate gives
    on the whole NumPy arrays, bit for bit.  A reduction of everything (sum, mean, min,
    max) gives a 0-d array, one over axis=k the shape without k: each chunk's partial by
    hologram (a mean's is its sum, with the count), merged by a tree of combine steps
    (sums in float64, rounded once to float32 at the end: within 1e-6*log2(n)*sum|terms|;
    min/max by hologram's reduce, so exactly the whole-array result, NaN and -0 < +0
    included).  A mean of nothing is NaN, a sum 0; compute() of a 0-d result gives a NumPy
    float32 scalar.

    Raises, when the graph is built: ExpressionError (a syntax error, an undefined name),
    TypeError (an array that is not float32, naming it and its dtype; a value that is
    neither an array nor a number; no Dask array at all), ShapeError (shapes that do not
    broadcast, a rank above 8, arrays of unknown chunk sizes combined with other arrays),
    InvalidArgumentError (an axis out of range, a scalar beyond float32, a min or max of
    no elements).  compute() raises what a chunk's task raised, as the same exception
    class (for example ShapeError for a block whose real shape is not the declared one)."""
    names = _evaluate._names_of(ex)
    caller = sys._getframe(1)
    if local_dict is None:
        local_dict = caller.f_locals
    where = f"evaluate({ex!r})"
    arrays, scalars, mask = [], [], 0
    for i, name in enumerate(names):
        try:
            value = local_dict[name]
        except KeyError:
            value = _evaluate._global(ex, name, local_dict, caller)
        if isinstance(value, da.Array) or (isinstance(value, np.ndarray) and value.ndim):
            arrays.append((name, value))
            if not value.ndim:
                mask |= 1 << i
        else:
            scalars.append((name, _evaluate._scalar(ex, name, value)))
            mask |= 1 << i
    arrays = _dask_arrays(where, arrays)
    c = _evaluate._compiled.get((ex, mask)) or _evaluate._compile(ex, names, mask)
    array_names = tuple(n for n, _ in arrays)
    if not c.result:
        job = partial(_run_expression, ex, array_names, tuple(scalars))
        return _map(where, "hg-evaluate", job, arrays)
    kind = json.loads(_evaluate._document(_lib.hg_expr_variables, c.handle))["kind"]
    if kind not in ("sum", "mean", "min", "max"):
        raise ExpressionError(f"{where}: a {kind} reduction runs on NumPy arrays only "
                              "(hologram_ffi.evaluate)", _EXPRESSION)
    text = _MEAN.sub(r"\1sum", ex, count=1) if kind == "mean" else ex
    nd = max(a.ndim for _, a in arrays)
    axes = _axes(where, nd, c.axis)
    job = partial(_run_expression, text, array_names, tuple(scalars))
    return _reduce(where, "hg-evaluate", job, arrays, axes, "sum" if kind == "mean" else kind,
                   kind == "mean", False, False)


def apply(op, *arrays, params=(), axis=None, keepdims=False):
    """Op `op` of canon/ops.def (a name: "vector_add_f32", "reduce_max_f32", "softmax_f32",
    "mse_loss_f32", ...) on float32 Dask arrays, as hologram_ffi.apply on each chunk's
    blocks, with NumPy broadcasting; returns a lazy float32 Dask array.

    By the op's family: a map gives the broadcast shape, one task per chunk (each element
    what hologram_ffi.apply gives, bit for bit).  A reduction (reduce_sum/min/max_f32) or
    a loss reduces `axis` (None: all; an int or a tuple of ints) through a tree as
    evaluate()'s reductions do; a loss's partial is the chunk's loss times its count, so
    the result is the loss of all elements (within the sum bound), keepdims keeps the
    axes at extent 1.  softmax normalizes over `axis` (None: the last), which must each be
    one chunk: a split one is rechunked to one chunk, with a PerformanceWarning naming it.
    Contractions: matmul().

    Raises when the graph is built: TypeError (an op name that is not str, a wrong number
    of arrays, an array that is not float32, naming its dtype, no Dask array at all),
    InvalidArgumentError (an unknown op, an axis out of range or given to a map, a wrong
    number of params, a param beyond float32), ShapeError (as evaluate())."""
    where = f"apply({op!r})"
    info = _evaluate._op_info(op)
    if len(arrays) != info["arrays"]:
        raise TypeError(f"{where} takes {info['arrays']} array(s), got {len(arrays)}")
    family = info["family"]
    if family == "contract":
        raise InvalidArgumentError(f"{where}: a contraction; use hologram_ffi.dask.matmul()",
                                   _INVALID_ARGUMENT)
    if len(params) != info["scalars"]:
        raise InvalidArgumentError(f"{where} takes {info['scalars']} param(s), got "
                                   f"{len(params)}", _INVALID_ARGUMENT)
    params = tuple(_evaluate._scalar(op, f"params[{j}]", v, where) for j, v in enumerate(params))
    named = _dask_arrays(where, [(f"{k + 1}", a) for k, a in enumerate(arrays)])
    nd = max((a.ndim for _, a in named), default=0)
    if family == "map":
        if axis is not None:
            raise InvalidArgumentError(f"{where}: a map has no axes (axis={axis!r})",
                                       _INVALID_ARGUMENT)
        return _map(where, f"hg-{op}", partial(_run_op, op, params, None, False), named)
    if family == "softmax":
        axes = _axes(where, nd, -1 if axis is None else axis)
        x = _whole_along(where, named[0][1], axes)
        return _map(where, f"hg-{op}", partial(_run_op, op, params, axes, False),
                    [("1", x)])
    axes = _axes(where, nd, axis)
    job = partial(_run_op, op, params, axes, True)
    loss = family == "loss"
    return _reduce(where, f"hg-{op}", job, named, axes, info["reduce"], loss, loss, keepdims)


def _whole_along(where, x, axes):
    """x with one chunk along each of `axes`: as it is, or rechunked with a
    PerformanceWarning naming the split axes."""
    split = {d: x.chunks[d] for d in axes if len(x.chunks[d]) > 1}
    if not split:
        return x
    warnings.warn(f"{where}: normalizes over axes {list(axes)}, but axis "
                  + ", ".join(f"{d} is split into {len(c)} chunks" for d, c in split.items())
                  + f"; rechunked to one chunk along {'it' if len(split) == 1 else 'them'} "
                  f"(x.rechunk({{{', '.join(f'{d}: -1' for d in split)}}}) before the call "
                  "avoids this warning)", da.core.PerformanceWarning,
                  stacklevel=_caller_level())
    return x.rechunk({d: -1 for d in split})


def _caller_level():
    """The warnings.warn stacklevel of the first frame outside this module."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        level, frame = level + 1, frame.f_back
    return level


def sigmoid(x):
    """sigmoid_f32 of float32 Dask array x: 1/(1+exp(-x)), elementwise (apply())."""
    return apply("sigmoid_f32", x)


def gelu(x):
    """gelu_f32 of float32 Dask array x (the tanh form), elementwise (apply())."""
    return apply("gelu_f32", x)


def softmax(x, axis=-1):
    """softmax_f32 of float32 Dask array x over `axis` (default the last): exp(x - max) /
    sum(exp(x - max)) along it.  The axis must be one chunk (chunk the other axes); a
    split one is rechunked with a PerformanceWarning (apply())."""
    return apply("softmax_f32", x, axis=axis)


def mse_loss(p, t, axis=None):
    """mean((p - t)**2) of float32 Dask arrays over `axis` (None: all, a 0-d array) as a
    tree of per-chunk losses and counts (apply())."""
    return apply("mse_loss_f32", p, t, axis=axis)


def cross_entropy_loss(p, t, axis=None):
    """-mean(t * log(max(p, 1e-7))) over `axis` (None: all), as mse_loss."""
    return apply("cross_entropy_loss_f32", p, t, axis=axis)


def binary_cross_entropy_loss(p, t, axis=None):
    """-mean(t*log(q) + (1-t)*log(1-q)), q = clamp(p, 1e-7, 1-1e-7), over `axis` (None:
    all), as mse_loss."""
    return apply("binary_cross_entropy_loss_f32", p, t, axis=axis)


def matmul(a, b):
    """a @ b for 2-D float32 Dask (or NumPy) arrays [m, k] and [k, n]: Dask's blocked
    matmul, hologram's gemm_f32 on each pair of blocks (i, k) x (k, j) (on the worker's
    own executor and scratch buffers), the products summed over the k blocks by a tree in
    float64 and rounded once to float32; the result is chunked as a's rows and b's
    columns (k chunks aligned as Dask aligns them).  Error within 1e-5*k*max|a|*max|b|
    elementwise.  ShapeError (naming both shapes) for operands that are not 2-D, inner
    dimensions that differ or are of unknown size; TypeError as evaluate()."""
    where = "matmul()"
    (_, a), (_, b) = _dask_arrays(where, [("a", a), ("b", b)])
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"{where}: needs [m, k] @ [k, n]; got shapes {a.shape} and {b.shape}",
                         _SHAPE)
    if any(math.isnan(c) for c in a.chunks[1] + b.chunks[0]):
        raise ShapeError(f"{where}: the chunk sizes along k of shapes {a.shape} and {b.shape} "
                         "are unknown (NaN), so Dask cannot align them; call "
                         ".compute_chunk_sizes() on the operands first", _SHAPE)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"{where}: inner dimensions differ: shapes {a.shape} and {b.shape}",
                         _SHAPE)
    parts = da.blockwise(_gemm_block, "ikj", a, "ik", b, "kj", adjust_chunks={"k": 1},
                         dtype=np.float64, meta=np.empty((0, 0, 0), np.float64),
                         token="hg-gemm")
    return _tree(parts, (1,), "sum", False, False, where, "hg-matmul")
