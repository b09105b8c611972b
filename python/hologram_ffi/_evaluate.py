"""hologram_ffi._evaluate — expressions: numexpr's evaluate() on NumPy arrays in place, and
the flat expr_* functions of the C API (hg_expr_compile, hg_expr_run).

    evaluate(text, local_dict, out=)
      → names of the text (compiled once with every name an array: _names)
      → values from local_dict / the caller's frame, each an array or a scalar
      → the expression compiled for that split (cached by text and split: _compiled)
      → checks (float32) → one shape, C-contiguous: hg_expr_run_raw on the arrays' memory;
      otherwise (broadcasting, strides, axis=k): hg_expr_run_arrays with hg_array views
      (no copy either way; the GIL is released during the call) → out / a new array / a
      float
    apply(op, *arrays, axis=) / softmax(x, axis=-1): an op of ops.def on N-d arrays
      (hg_op_run_arrays)

The language, its semantics and limits are those of hg_expr_compile in hologram.h.
"""
import json
import sys
import threading

from ._core import _F32_LIMIT, _STATUS_VALUES, _Refused, _coerce, _error, _ffi, _lib, _numpy
from .errors import ExpressionError, InvalidArgumentError, ShapeError

_EXPRESSION = _STATUS_VALUES["HG_ERR_EXPRESSION"]
_INVALID_ARGUMENT = _STATUS_VALUES["HG_ERR_INVALID_ARGUMENT"]
_SHAPE = _STATUS_VALUES["HG_ERR_SHAPE"]

_CACHE_LIMIT = 256         # compiled expressions kept by evaluate(); the oldest go first


# ---- the flat functions ------------------------------------------------------------------

_RESULTS = {}              # expression handle -> 1 when it yields a scalar (expr_run)


def expr_compile(source, scalars_json=None):
    """Compiles an expression and returns its handle (hg_expr_compile).

    `source` is expression text (numexpr's syntax) or a program document as JSON (what
    expr_describe() gives under "after").  `scalars_json`: None, or the JSON array (or a
    list) of the names that are scalar parameters; every other name is an array.  Raises
    ExpressionError (syntax, unknown function or arity, a reduction inside a map, limits),
    JsonError, TypeError for a source that is not str."""
    if not isinstance(source, str):
        raise TypeError(f"expr_compile(): source must be str, not {type(source).__name__}")
    if isinstance(scalars_json, (list, tuple)):
        scalars_json = json.dumps(list(scalars_json))
    elif scalars_json is not None and not isinstance(scalars_json, str):
        raise TypeError("expr_compile(): scalars_json must be None, str (JSON) or a list of "
                        f"names, not {type(scalars_json).__name__}")
    for what, text in (("source", source), ("scalars_json", scalars_json or "")):
        if "\0" in text:
            raise ExpressionError(f"expr_compile(): {what} contains a NUL character at "
                                  f"position {text.index(chr(0))}", _EXPRESSION)
    out = _ffi.new("uint64_t *")
    try:
        encoded = source.encode(), (scalars_json.encode() if scalars_json else _ffi.NULL)
    except UnicodeEncodeError as exc:
        raise ExpressionError(f"expr_compile(): {exc}", _EXPRESSION) from None
    status = _lib.hg_expr_compile(encoded[0], encoded[1], out)
    if status:
        raise _error(status)
    return out[0]


def _yields_result(expr_handle):
    """1 when the expression yields a scalar (read once per handle)."""
    flag = _RESULTS.get(expr_handle)
    if flag is None:
        flag = int(json.loads(_document(_lib.hg_expr_variables, expr_handle))["result"])
        _RESULTS[expr_handle] = flag
    return flag


def expr_run(executor_handle, expr_handle, input_handles, params, output_handle, length):
    """Runs an expression on buffers of an executor (hg_expr_run): input_handles are its
    arrays and params its scalars in binding order (expr_variables()); a map writes
    output_handle; a reduction returns its value as a float (and writes output[0] unless
    output_handle is 0).  Returns None for a map."""
    inputs, values = list(input_handles), list(params)
    result = _ffi.new("float *")
    try:
        for v in values:  # cffi would narrow a float beyond float32 to an infinity
            if not -_F32_LIMIT < v < _F32_LIMIT:
                raise _Refused
        status = _lib.hg_expr_run(executor_handle, expr_handle, inputs, len(inputs), values,
                                  len(values), output_handle, length, result)
    except (TypeError, OverflowError, _Refused):
        spec = [("executor_handle", "int"), ("expr_handle", "int"), ("output_handle", "int"),
                ("length", "int")]
        executor_handle, expr_handle, output_handle, length = _coerce(
            "expr_run", spec, (executor_handle, expr_handle, output_handle, length))
        inputs = list(_coerce("expr_run", [(f"input_handles[{i}]", "int")
                                           for i in range(len(inputs))], inputs))
        values = list(_coerce("expr_run", [(f"params[{i}]", "float")
                                           for i in range(len(values))], values))
        status = _lib.hg_expr_run(executor_handle, expr_handle, inputs, len(inputs), values,
                                  len(values), output_handle, length, result)
    if status:
        raise _error(status)
    return result[0] if _yields_result(expr_handle) else None


def expr_cleanup(expr_handle):
    """Frees an expression (hg_expr_cleanup); InvalidHandleError when already freed."""
    try:
        status = _lib.hg_expr_cleanup(expr_handle)
    except (TypeError, OverflowError):
        (expr_handle,) = _coerce("expr_cleanup", (("expr_handle", "int"),), (expr_handle,))
        status = _lib.hg_expr_cleanup(expr_handle)
    if status:
        raise _error(status)
    _RESULTS.pop(expr_handle, None)


# ---- evaluate ------------------------------------------------------------------------------

class _Compiled:
    """One compiled expression for one split of its names into arrays and scalars: the
    handle (freed with the object, so a thread still running it keeps it alive), where its
    arrays and scalars are among the caller's values (`order`: name -> index; default:
    the arrays then the scalars), its names in binding order, what it produces."""
    __slots__ = ("handle", "arrays", "scalars", "names", "output", "result", "axis")

    def __init__(self, text, scalars, order=None):
        self.handle = expr_compile(text, json.dumps(list(scalars)) if scalars else None)
        try:
            info = json.loads(_document(_lib.hg_expr_variables, self.handle))
        except BaseException:
            _lib.hg_expr_cleanup(self.handle)
            raise
        self.names = tuple(info["arrays"] + info["scalars"])
        if order is None:
            order = {n: i for i, n in enumerate(self.names)}
        self.arrays = tuple(order[n] for n in info["arrays"])
        self.scalars = tuple(order[n] for n in info["scalars"])
        self.output = info["output"]
        self.result = info["result"]
        self.axis = info["axis"]

    def __del__(self):
        try:
            _lib.hg_expr_cleanup(self.handle)  # after clear_all_registries: already gone
        except Exception:
            pass


def _document(c_function, key):
    """The JSON text that hg_expr_variables / hg_expr_describe / hg_op_describe (c_function)
    gives for `key` (a handle, or an op's name as bytes)."""
    out = _ffi.new("char **")
    status = c_function(key, out)
    if status:
        raise _error(status)
    try:
        return _ffi.string(out[0]).decode()
    finally:
        _lib.hg_free_string(out[0])


_names = {}                # text -> its names in order of first appearance
_compiled = {}             # (text, scalar mask) -> _Compiled, oldest first
_lock = threading.Lock()   # misses only


def _names_of(text):
    """The names of `text` in order of first appearance (compiled once, all as arrays)."""
    names = _names.get(text)
    if names is None:
        if not isinstance(text, str):
            raise TypeError(f"evaluate(): the expression must be str, not "
                            f"{type(text).__name__}")
        handle = expr_compile(text)
        try:
            names = tuple(json.loads(_document(_lib.hg_expr_variables, handle))["arrays"])
        finally:
            _lib.hg_expr_cleanup(handle)
        with _lock:
            if len(_names) >= _CACHE_LIMIT:
                _names.pop(next(iter(_names)))
            _names[text] = names
    return names


def _compile(text, names, mask):
    """The _Compiled of (text, mask), compiled on a miss."""
    key = (text, mask)
    with _lock:
        c = _compiled.get(key)
        if c is None:
            c = _Compiled(text, [n for i, n in enumerate(names) if mask >> i & 1],
                          {n: i for i, n in enumerate(names)})
            if len(_compiled) >= _CACHE_LIMIT:
                _compiled.pop(next(iter(_compiled)))
            _compiled[key] = c
    return c


def forget_all():
    """Drops every cached expression (clear_all_registries frees their handles)."""
    with _lock:
        _compiled.clear()
        _names.clear()
    _RESULTS.clear()


def _scalar(text, name, value, where=None):
    """A scalar's float32-representable float, or the error naming it (in a message that
    starts with `where`, default evaluate(text))."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        where = where or f"evaluate({text!r})"
        raise TypeError(f"{where}: '{name}' is {type(value).__name__}: not a float32 array or "
                        "a real number") from None
    if v != v or abs(v) < _F32_LIMIT or v in (float("inf"), float("-inf")):
        return v
    where = where or f"evaluate({text!r})"
    raise InvalidArgumentError(f"{where}: scalar '{name}' = {v!r} is beyond the float32 range",
                               _INVALID_ARGUMENT)


def _global(text, name, local_dict, caller):
    """The value of `name` in local_dict, else in the caller's globals, or ExpressionError."""
    try:
        return local_dict[name]
    except KeyError:
        try:
            return caller.f_globals[name]
        except KeyError:
            raise ExpressionError(f"evaluate({text!r}): name '{name}' is not defined",
                                  _EXPRESSION) from None


_MAX_ARRAYS = 32            # CANON_MAX_INPUTS: inputs of one expression
_MAX_DIMS = 8               # HG_MAX_DIMS
_tls = threading.local()   # per thread: the pointer array and result cell of the C call
_F32 = []                  # numpy.dtype(float32), once NumPy is imported


def _call_cells():
    """This thread's (float *[_MAX_ARRAYS], float *) for hg_expr_run_raw: reused by every
    call of the thread (the C call releases the GIL, so threads cannot share them)."""
    cells = getattr(_tls, "cells", None)
    if cells is None:
        cells = _tls.cells = (_ffi.new("float *[]", _MAX_ARRAYS), _ffi.new("float *"))
    return cells


def evaluate(ex, local_dict=None, *, out=None):
    """Evaluates expression `ex` (numexpr's syntax: see hg_expr_compile in hologram.h) as
    one fused kernel, like numexpr.evaluate.

    Names are looked up in `local_dict` (default: the caller's locals), then the caller's
    globals.  A float32 NumPy array of any shape and strides (transposes, slices with
    steps, negative steps too) is an array input, read in place with no copy; arrays of
    different shapes broadcast by NumPy's rules.  A Python or NumPy number (or a 0-d array)
    is a scalar parameter (a new value never recompiles).  Returns a new float32 array of
    the broadcast shape, or `out` filled in place (float32, any strides, the broadcast
    shape; it may be one of the inputs), or a Python float for a reduction of everything
    (sum, mean, min, max), or an array for one over an axis (numexpr's sum(e, axis=1)).
    Arrays of one shape, C-contiguous, take the 1-D path (hg_expr_run_raw); the rest runs
    N-d (hg_expr_run_arrays).  Compiled expressions are cached by text.

    Raises ExpressionError for a syntax error or an undefined name, TypeError for an array
    that is not float32 (nothing is ever cast), ShapeError for shapes that do not
    broadcast, InvalidArgumentError for an out that overlaps an input other than in place,
    an axis out of range, or a scalar beyond float32."""
    names = _names.get(ex) if type(ex) is str else None
    if names is None:
        names = _names_of(ex)
    caller = None
    if local_dict is None:
        caller = sys._getframe(1)
        local_dict = caller.f_locals
    np = _numpy()
    ndarray = np.ndarray
    try:
        values = [local_dict[name] for name in names]
    except KeyError:
        values = [_global(ex, name, local_dict, caller or sys._getframe(1)) for name in names]
    mask = 0
    for i, v in enumerate(values):
        if type(v) is not ndarray or not v.ndim:
            mask |= 1 << i
    c = _compiled.get((ex, mask)) or _compile(ex, names, mask)
    return _run(ex, c, values, names, out)


def _float32(np):
    """numpy.dtype(float32), made once."""
    return _F32[0] if _F32 else _F32.append(np.dtype(np.float32)) or _F32[0]


def _check_array(ex, name, a, np):
    """TypeError unless `a` (named `name` in messages) is a float32 numpy.ndarray."""
    f32 = _float32(np)
    if type(a) is not np.ndarray or (a.dtype is not f32 and a.dtype != f32):
        raise TypeError(f"{ex}: array '{name}' has dtype {a.dtype}; it must be float32 "
                        "(convert it with .astype(numpy.float32))"
                        if isinstance(a, np.ndarray) else
                        f"{ex}: array '{name}' must be a float32 numpy.ndarray, not "
                        f"{type(a).__name__}")


def _run(ex, c, values, names, out):
    """Runs compiled expression c of text ex on values (c.arrays and c.scalars index them;
    names[i] names values[i] in messages) into out (or a new array, or a float): the checks
    and the call of evaluate() and Expression.  Arrays of one shape, C-contiguous, run as
    1-D (hg_expr_run_raw); anything else (broadcasting, strides, axis=k) through
    _run_nd."""
    if c.axis is not None:
        return _run_nd(ex, c, values, names, out)
    np = _numpy()
    ndarray = np.ndarray
    f32 = _F32[0] if _F32 else _float32(np)
    from_buffer = _ffi.from_buffer
    pointers, value = getattr(_tls, "cells", None) or _call_cells()
    keep = []                  # the buffers' cdata, alive until the call returns
    shape = None
    n = 1
    for j, i in enumerate(c.arrays):
        a = values[i]
        if type(a) is not ndarray or (a.dtype is not f32 and a.dtype != f32):
            _check_array(f"evaluate({ex!r})", names[i], a, np)
        if shape is None:
            shape, n = a.shape, a.size
        elif a.shape != shape:
            return _run_nd(ex, c, values, names, out)
        try:
            buf = from_buffer("float[]", a)
        except ValueError:     # cffi's refusal of a view that is not C-contiguous
            return _run_nd(ex, c, values, names, out)
        pointers[j] = buf
        keep.append(buf)
    params = [_scalar(ex, names[i], values[i]) for i in c.scalars] if c.scalars else _ffi.NULL
    if out is not None:
        if c.result:
            raise InvalidArgumentError(f"evaluate({ex!r}): a reduction over every axis "
                                       "returns a float; out= is for maps and axis=k "
                                       "reductions", _INVALID_ARGUMENT)
        if type(out) is not ndarray or (out.dtype is not f32 and out.dtype != f32):
            raise TypeError(f"evaluate({ex!r}): out must be a float32 numpy.ndarray, not "
                            f"{getattr(out, 'dtype', type(out).__name__)}")
        if shape is not None and out.shape != shape:
            return _run_nd(ex, c, values, names, out)
        result, n = out, out.size
    elif c.result:
        result = None
    else:
        result = np.empty(shape if shape is not None else (), dtype=np.float32)
    if result is not None:
        try:
            target = from_buffer("float[]", result, True)  # require_writable (positional:
            # a keyword argument costs cffi 90 ns)
        except ValueError:
            if result is out and out.flags.writeable:
                return _run_nd(ex, c, values, names, out)
            raise InvalidArgumentError(f"evaluate({ex!r}): out is not writeable",
                                       _INVALID_ARGUMENT) from None
    else:
        target = _ffi.NULL
    status = _lib.hg_expr_run_raw(c.handle, pointers, len(keep), params,
                                  len(c.scalars), target, n, value)
    if status:
        raise _error(status)
    return value[0] if c.result else result


def _arrays(where, named, np):
    """The hg_array[] of (name, float32 ndarray) pairs: their memory as it is (no copy),
    strides in elements.  ShapeError for a rank above HG_MAX_DIMS, InvalidArgumentError
    for strides that are not whole elements."""
    cells = _ffi.new("hg_array[]", len(named))
    for k, (name, a) in enumerate(named):
        _check_array(where, name, a, np)
        if a.ndim > _MAX_DIMS:
            raise ShapeError(f"{where}: array '{name}' has {a.ndim} dimensions (at most "
                             f"{_MAX_DIMS})", _SHAPE)
        cell = cells[k]
        cell.data = _ffi.cast("float *", a.ctypes.data)
        cell.ndim = a.ndim
        for d, (extent, stride) in enumerate(zip(a.shape, a.strides)):
            if stride % 4:
                raise InvalidArgumentError(f"{where}: array '{name}' has a stride of {stride} "
                                           "bytes, not whole float32 elements",
                                           _INVALID_ARGUMENT)
            cell.shape[d] = extent
            cell.strides[d] = stride // 4
    return cells


def _broadcast(where, named, np):
    """The broadcast shape of the named arrays, or ShapeError naming theirs."""
    try:
        return np.broadcast_shapes(*(a.shape for _, a in named))
    except ValueError:
        raise ShapeError(f"{where}: shapes " + ", ".join(f"'{n}' {a.shape}" for n, a in named)
                         + " do not broadcast", _SHAPE) from None


def _reduced(where, shape, axes, keepdims):
    """`shape` without the axes (an int, a tuple of ints, or None: all), or with extent 1
    there when keepdims; InvalidArgumentError for an axis out of range or repeated."""
    nd = len(shape)
    picked = range(nd) if axes is None else (axes,) if isinstance(axes, int) else tuple(axes)
    norm = set()
    for ax in picked:
        if not isinstance(ax, int) or isinstance(ax, bool):
            raise TypeError(f"{where}: an axis must be an int, not {type(ax).__name__}")
        if not -nd <= ax < nd or ax % nd in norm:
            raise InvalidArgumentError(f"{where}: axis {ax} is "
                                       + ("named twice" if -nd <= ax < nd else
                                          f"out of range for {nd} dimensions"),
                                       _INVALID_ARGUMENT)
        norm.add(ax % nd)
    return tuple(1 if d in norm else e for d, e in enumerate(shape)
                 if keepdims or d not in norm)


def _target(where, out, shape, np):
    """out checked (a writeable float32 ndarray), or a new array of `shape`."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    _check_array(where, "out", out, np)
    if not out.flags.writeable:
        raise InvalidArgumentError(f"{where}: out is not writeable", _INVALID_ARGUMENT)
    return out


def _run_nd(ex, c, values, names, out):
    """_run on N-d arrays: NumPy broadcasting, any strides, axis=k (hg_expr_run_arrays)."""
    np = _numpy()
    where = f"evaluate({ex!r})"
    named = [(names[i], values[i]) for i in c.arrays]
    for name, a in named:
        _check_array(where, name, a, np)
    shape = _broadcast(where, named, np)
    full = c.result and c.axis is None
    if full and out is not None:
        raise InvalidArgumentError(f"{where}: a reduction over every axis returns a float; "
                                   "out= is for maps and axis=k reductions", _INVALID_ARGUMENT)
    result = _target(where, out, _reduced(where, shape, c.axis, False) if c.result else shape,
                     np)
    params = [_scalar(ex, names[i], values[i]) for i in c.scalars] if c.scalars else _ffi.NULL
    status = _lib.hg_expr_run_arrays(c.handle, _arrays(where, named, np), len(named), params,
                                     len(c.scalars), _arrays(where, [("out", result)], np))
    if status:
        raise _error(status)
    return float(result) if full else result


_OPS = {}                  # op name -> its hg_op_describe document (dict)


def _op_info(op):
    """hg_op_describe(op) as a dict, read once per op."""
    info = _OPS.get(op)
    if info is None:
        if not isinstance(op, str):
            raise TypeError(f"apply(): op must be str (a name of ops.def), not "
                            f"{type(op).__name__}")
        info = _OPS[op] = json.loads(_document(_lib.hg_op_describe, op.encode()))
    return info


def apply(op, *arrays, params=(), axis=None, keepdims=False, out=None):
    """Runs built-in op `op` (a name of ops.def: "vector_add_f32", "reduce_max_f32",
    "softmax_f32", "mse_loss_f32", ...) on float32 NumPy arrays of any shape and strides,
    with NumPy broadcasting, in place (no copy): hg_op_run_arrays.

    Maps return the broadcast shape.  Reductions and losses reduce `axis` (None: all; an
    int or a tuple of ints), softmax normalizes over it (None: the last axis); the
    result has the shape without those axes (with extent 1 there if keepdims), a float
    when that is no axis at all and out is None.  `params` are the op's scalars (clip's
    bounds, scalar_add's scalar).  out: a float32 array of the result's shape (any
    strides), written in place."""
    np = _numpy()
    info = _op_info(op)
    where = f"apply({op!r})"
    named = [(f"{k + 1}", a) for k, a in enumerate(arrays)]
    if len(named) != info["arrays"]:
        raise TypeError(f"{where} takes {info['arrays']} array(s), got {len(named)}")
    for name, a in named:
        _check_array(where, name, a, np)
    shape = _broadcast(where, named, np)
    family = info["family"]
    if family == "map" and axis is not None:
        raise InvalidArgumentError(f"{where}: a map has no axes (axis={axis!r})",
                                   _INVALID_ARGUMENT)
    reduces = family in ("reduce", "loss")
    if family == "softmax" and axis is None:
        axis = -1
    full = reduces and not keepdims and (axis is None or
                                         len(_reduced(where, shape, axis, False)) == 0)
    if family == "softmax":
        _reduced(where, shape, axis, True)   # the axes checked; the output keeps the shape
    result = _target(where, out, _reduced(where, shape, axis, keepdims) if reduces else shape,
                     np)
    values = [_scalar(op, f"params[{j}]", v, where) for j, v in enumerate(params)]
    axes = None if axis is None else json.dumps(axis if isinstance(axis, int) else list(axis))
    status = _lib.hg_op_run_arrays(op.encode(), _arrays(where, named, np), len(named),
                                   values or _ffi.NULL, len(values),
                                   axes.encode() if axes else _ffi.NULL,
                                   _arrays(where, [("out", result)], np))
    if status:
        raise _error(status)
    return float(result) if full and out is None else result


def softmax(x, axis=-1, out=None):
    """softmax_f32 of float32 array x along `axis` (an int or a tuple; default the last):
    exp(x - max) / sum(exp(x - max)) over it, as a new array of x's shape or into out."""
    return apply("softmax_f32", x, axis=axis, out=out)


class Expression:
    """A compiled expression called with its values in order, for a loop that runs one
    formula many times: the same kernel, checks, errors and results as evaluate(), without
    its name lookup (a third of its per-call cost).

        f = Expression("a*w + b", scalars=["w"])
        f.arrays, f.scalars          # ('a', 'b'), ('w',): the order of the arguments
        f(x, y, 0.5, out=o)          # the arrays, then the scalars

    The handle is freed with the object (or by close())."""

    def __init__(self, text, scalars=()):
        if isinstance(scalars, str):
            raise TypeError("Expression(): scalars must be a list of names, not str")
        self.text = text
        self._c = _Compiled(text, list(scalars))
        self.arrays = self._c.names[:len(self._c.arrays)]
        self.scalars = self._c.names[len(self._c.arrays):]

    def __call__(self, *values, out=None):
        c = self._c
        if c is None:
            raise InvalidArgumentError(f"Expression({self.text!r}) was closed",
                                       _INVALID_ARGUMENT)
        if len(values) != len(c.names):
            raise TypeError(f"Expression({self.text!r}) takes {len(c.names)} arguments (the "
                            f"arrays {', '.join(self.arrays) or '-'}, then the scalars "
                            f"{', '.join(self.scalars) or '-'}), got {len(values)}")
        return _run(self.text, c, values, c.names, out)

    def describe(self):
        """expr_describe() of the compiled expression, as JSON text."""
        return _document(_lib.hg_expr_describe, self._c.handle)

    def close(self):
        """Frees the compiled expression now (calls then raise)."""
        self._c = None

    def __repr__(self):
        return f"<hologram_ffi.Expression {self.text!r} arrays={self.arrays} scalars={self.scalars}>"
