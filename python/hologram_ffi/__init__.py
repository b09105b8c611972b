"""hologram_ffi — Python bindings of hologram, a JIT-compiling float32 array runtime.

The flat API keeps the 50 functions of the Hologram FFI seed (same names, argument order and
return types: handles are ints, JSON in and out as str, u8 flags as 0/1, reductions and
losses return float, None for void).  Beyond the seed: NumPy transfer
(buffer_copy_from_numpy, buffer_to_numpy), engine control (set_backend, get_backend,
set_num_threads, get_num_threads, cache_stats, cache_reset) and an Executor class that frees what it made.  The submodule
hologram_ffi.dask runs evaluate() and the ops on Dask arrays (it needs Dask; importing this
package never imports it).

How the flat functions are made: the extension (built by build_ffi.py, cffi API mode)
carries the C prototypes of hologram.h; every `hg_status hg_<name>(...)` becomes
`<name>(...)` here, generated once at import: inputs passed straight to the C function,
out-parameters allocated and read back, `char **` results freed, a nonzero status raised as
the exception class of its name (errors.py) with hg_last_error()'s message.

Arguments: integers (handles, lengths, indices) must be ints or objects with __index__
(NumPy integers); a negative or too large value raises InvalidArgumentError and a
non-integer (float, str, None) raises TypeError, both before any C call.  Signed positions
(int64_t in C: tensor_slice's start, end, step) take any int in [-2**63, 2**63), the
same way.  bool is an int subclass and is accepted as 0/1 (rejecting it would cost every
call a type check).  Float parameters (value, scalar, min_val, max_val) take int or float;
a finite value that does not round to a finite float32 (1e300, 2**200) raises
InvalidArgumentError naming it, NaN and infinities pass as each op documents.  JSON and
name parameters take str; a NUL character (C would stop there) or a lone surrogate (UTF-8
cannot carry it) raises InvalidArgumentError (a ValueError) naming its position.  Methods
of a closed Executor raise InvalidHandleError naming its handle.
"""
import inspect
import json
import re
import warnings

from . import errors
from .errors import (BufferInUseError, CompileError, ExpressionError, HologramError,
                     InvalidArgumentError, InvalidHandleError, JsonError, OutOfBoundsError,
                     OutOfMemoryError, ShapeError)

from ._core import (_ERROR_CLASSES, _F32_LIMIT, _HEADER_VERSION, _INVALID_ARGUMENT,
                    _STATUS_VALUES, _Refused, _check, _check_versions, _coerce, _error, _ffi,
                    _lib, _numpy, __version__)

# ---- the flat API, generated from the prototypes ---------------------------------------

_PROTOTYPE = re.compile(r"^(.*?)\b(hg_\w+)\((.*)\)$")
_PARAM = re.compile(r"^(.*?)\s*\b(\w+)$")
_INPUT_KINDS = {"uint64_t": "int", "int64_t": "int64", "uint8_t": "u8", "float": "float",
                "const char *": "str", "const uint64_t *": "ints", "const float *": "floats"}
# List parameters (`const T *name` then `uint64_t n_name`): one Python list, its length
# passed for the count.  JSON parameters that may be NULL take None.
_LIST_KINDS = ("ints", "floats")
_NULLABLE = frozenset({"axes_json"})
# out-parameter C type -> expression reading it (o: the cdata); "owned" frees a char *.
_OUTPUT_READERS = {
    "uint64_t *": "{o}[0]", "uint32_t *": "{o}[0]", "uint8_t *": "{o}[0]",
    "float *": "{o}[0]", "const char **": "_string({o}[0]).decode()", "char **": "owned",
}
# Functions with a hand-written Python face (NumPy transfer, the stats dict, expressions:
# _evaluate.py).
_CUSTOM = frozenset({"hg_buffer_write", "hg_buffer_read", "hg_buffer_pin", "hg_buffer_unpin",
                     "hg_cache_stats_get",
                     "hg_expr_compile", "hg_expr_run", "hg_expr_run_raw", "hg_expr_cleanup",
                     "hg_expr_run_arrays", "hg_op_run_arrays"})
# Header parameter names -> the seed's names (`class` is a Python keyword: class_index).
_SEED_NAMES = {
    "executor": "executor_handle", "buffer": "buffer_handle", "tensor": "tensor_handle",
    "a": "a_handle", "b": "b_handle", "c": "c_handle", "src": "src_handle",
    "dst": "dst_handle", "p": "pred_handle", "t": "target_handle", "out": "output_handle",
    "lo": "min_val", "hi": "max_val", "s": "scalar", "json": "data_json",
    "expr": "expr_handle", "tensors": "tensor_handles",
}
# In functions without matrix dimensions, x/y/n are the seed's input/output/length.
_VECTOR_NAMES = {"x": "input_handle", "y": "output_handle", "n": "length"}
_MATRIX_NAMES = {"x": "x_handle", "y": "y_handle"}
_FUNCTION_NAMES = {("hg_tensor_reshape", "shape_json"): "new_shape_json"}


def _seed_name(cname, cparams, name):
    """The Python parameter name for C parameter `name` of `cname`."""
    if (cname, name) in _FUNCTION_NAMES:
        return _FUNCTION_NAMES[(cname, name)]
    contextual = _MATRIX_NAMES if "m" in cparams else _VECTOR_NAMES
    return contextual.get(name) or _SEED_NAMES.get(name, name)


def _parse(prototype):
    """(return type, C name, [(C type, C param name)]) of one normalized prototype."""
    result, cname, params = _PROTOTYPE.match(prototype).groups()
    pairs = [] if params == "void" else [_PARAM.match(p).groups() for p in params.split(", ")]
    return result.strip(), cname, pairs


def _generate(cname, pairs):
    """Python source of the wrapper for `hg_status cname(pairs)`, its input spec and the
    type of its out-parameter (or None)."""
    pyname = cname[3:]
    cnames = {n for _, n in pairs}
    inputs, args, out_type, guards = [], [], None, []
    counted = None             # the list whose length the next parameter is
    for ctype, name in pairs:
        if name.startswith("out_"):
            out_type = ctype
            args.append("_o")
        elif counted:
            args.append(f"len({counted})")
            counted = None
        else:
            pname = _seed_name(cname, cnames, name)
            kind = _INPUT_KINDS[ctype]
            if kind == "str" and name in _NULLABLE:
                kind = "str?"
            inputs.append((pname, kind))
            if kind in _LIST_KINDS:
                counted = pname
            args.append(f"{pname}.encode()" if kind == "str" else
                        f"(_NULL if {pname} is None else {pname}.encode())" if kind == "str?"
                        else pname)
            # the fast path's checks of what cffi would pass on silently: a float beyond
            # float32 (narrowed to an infinity; NaN fails the test too and is let through
            # by _coerce), a NUL (C would cut the text there)
            if kind == "float":
                guards.append(f"not -_F32 < {pname} < _F32")
            elif kind == "floats":
                guards.append(f"not all(-_F32 < _v < _F32 for _v in {pname})")
            elif kind == "str":
                guards.append(f"'\\0' in {pname}")
            elif kind == "str?":
                guards.append(f"({pname} is not None and '\\0' in {pname})")
    params = ", ".join(n for n, _ in inputs)
    call = f"_st = _c({', '.join(args)})"
    lines = [f"def {pyname}({params}):"]
    if out_type:
        lines.append("    _o = _new(_T)")
    if inputs:
        lines.append("    try:")
        if guards:
            lines += [f"        if {' or '.join(guards)}:", "            raise _Refused"]
        lines += [f"        {call}", "    except _CONVERSION_ERRORS:",
                  f"        {params}, = _coerce({pyname!r}, _SPEC, ({params},))",
                  f"        {call}"]
    else:
        lines.append(f"    {call}")
    lines += ["    if _st:", "        raise _error(_st)"]
    reader = _OUTPUT_READERS[out_type] if out_type else None
    if reader == "owned":
        lines += ["    _s = _o[0]", "    try:", "        return _string(_s).decode()",
                  "    finally:", "        _free(_s)"]
    elif reader:
        lines.append("    return " + reader.format(o="_o"))
    return "\n".join(lines) + "\n", tuple(inputs), out_type


_RETURNS = {"uint64_t *": "int", "uint32_t *": "int", "uint8_t *": "int", "float *": "float",
            "const char **": "str", "char **": "str"}
_WORD = re.compile(r"\b([A-Za-z_]\w*)\b(\[|\||)")


def _op_math(pyname):
    """The `math` column of canon/ops.def for op `pyname` (hg_op_describe), or None when
    `pyname` is no op."""
    out = _ffi.new("char **")
    if _lib.hg_op_describe(pyname.encode(), out) != 0:
        return None
    try:
        return json.loads(_ffi.string(out[0]).decode())["math"]
    finally:
        _lib.hg_free_string(out[0])


def _docstring(cname, pairs, spec, out_type, prototype):
    """The docstring of a generated wrapper: its Python signature; for an op of
    canon/ops.def its exact semantics with the math's names spelled as the Python
    parameters (_math_names); then the C prototype it calls."""
    pyname = cname[3:]
    returns = _RETURNS.get(out_type, "None")
    lines = [f"{pyname}({', '.join(n for n, _ in spec)}) -> {returns}", ""]
    math_text = _op_math(pyname)
    if math_text is not None:
        lines.append(f"{_math_names(cname, pairs, math_text)} (canon/ops.def).")
        if returns == "float":
            lines.append("Returns the result, also written to element 0 of the output.")
    lines.append(f"Calls `{prototype}`; raises a HologramError subclass on failure.")
    return "\n".join(lines)


def _math_names(cname, pairs, text):
    """ops.def's math `text` with the C parameter names of `cname` replaced by the Python
    ones: a buffer where it is indexed, in |...| or next to an operator (c[i], |x|, 0.5*x:
    a handle stands for its buffer's elements; a word between spaces is prose, as the x of
    "m x n"; a capital letter for the lower-case parameter, gemm's C = A * B; a
    letter that names no parameter for the one parameter starting with it, buffer_fill's
    b[i]), a number (n, s, lo, hi, value) wherever it appears as a word."""
    cnames = [n for _, n in pairs if not n.startswith("out_")]
    numbers = {n for t, n in pairs if t != "uint64_t" or n in ("n", "m", "k")}

    def python_name(m):
        word, after = m.group(1), m.group(2)
        if word in numbers:
            return _seed_name(cname, set(cnames), word) + after
        spaced = text[m.start() - 1:m.start()] == " " and text[m.end():m.end() + 1] == " "
        if after not in ("[", "|") and (word not in cnames or spaced):
            return m.group(0)           # "m x n", "a NaN bound": not parameters
        key = word.lower() if len(word) == 1 and word.isupper() else word
        if key not in cnames:
            starting = [n for n in cnames if n[0] == key and n not in numbers]
            key = starting[0] if len(key) == 1 and len(starting) == 1 else None
        return (_seed_name(cname, set(cnames), key) if key else word) + after
    return _WORD.sub(python_name, text)


def _bind(prototype):
    """Creates the flat wrapper of one `hg_status hg_...` prototype; returns (python name,
    function, name of its out-parameter or None)."""
    _, cname, pairs = _parse(prototype)
    source, spec, out_type = _generate(cname, pairs)
    namespace = {
        "_c": getattr(_lib, cname), "_new": _ffi.new, "_string": _ffi.string,
        "_free": _lib.hg_free_string, "_error": _error, "_coerce": _coerce, "_SPEC": spec,
        "_T": _ffi.typeof(out_type.replace("const ", "")) if out_type else None,
        "_CONVERSION_ERRORS": (TypeError, OverflowError, AttributeError, UnicodeEncodeError,
                               _Refused),
        "_Refused": _Refused, "_F32": _F32_LIMIT, "_NULL": _ffi.NULL,
    }
    exec(compile(source, f"<hologram_ffi {cname}>", "exec"), namespace)
    fn = namespace[cname[3:]]
    fn.__module__ = __name__
    fn.__doc__ = _docstring(cname, pairs, spec, out_type, prototype)
    out_name = next((n for _, n in pairs if n.startswith("out_")), None)
    return cname[3:], fn, out_name


_PROTOTYPES = _ffi.string(_lib.hg_py_prototypes).decode().split("\n")
_FLAT = {}              # python name -> function, in header order
_OUT_NAMES = {}         # python name -> C out-parameter name (out_buffer, out_tensor, ...)
for _proto in _PROTOTYPES:
    if _proto.startswith("hg_status ") and _parse(_proto)[1] not in _CUSTOM:
        _name, _fn, _OUT_NAMES[_name] = _bind(_proto)
        _FLAT[_name] = _fn
# Docstrings of generated functions that say more than their prototype.
_FLAT["expr_variables"].__doc__ = (
    "The variables of an expression in binding order and what it produces, as JSON text: "
    '{"arrays": [...], "scalars": [...], "kind": "map" | "sum" | "mean" | "min" | "max" | '
    '"program", "output": bool, "result": bool} (hg_expr_variables).')
_FLAT["expr_describe"].__doc__ = (
    "The canonical form of an expression before and after rewriting, as JSON text: source, "
    "kind, nodes_before, nodes_after, hash, and the programs 'before' and 'after' (nodes, "
    "stages, arrays, scalars; expr_compile accepts either back) (hg_expr_describe).")
_FLAT["tensor_matmul"].__doc__ = (
    "np.matmul of tensors a [..., m, k] and b [..., k, n] of one executor: a new row-major "
    "[..., m, n] tensor over a new buffer.  Ranks 2-8; the dimensions before the last two "
    "broadcast as NumPy's ([m, k] @ [b, k, n] and [1, m, k] @ [b, k, n] give [b, m, n]); any "
    "strides and offsets, read in place.  A 1-D operand raises ShapeError (unsqueeze it), as "
    "do inner or batch dimensions that do not match (the message names both shapes) "
    "(hg_tensor_matmul).")
_FLAT["tensor_evaluate"].__doc__ = (
    "Runs a compiled expression (expr_compile) on tensors of the executor, with NumPy "
    "broadcasting and any strides, into a new row-major tensor: the broadcast shape for a "
    "map, the reduced shape for sum/mean/min/max (axis=k: that axis; else all of them). "
    "tensor_handles are its arrays and params its scalars in binding order "
    "(hg_tensor_evaluate). Raises ShapeError for shapes that do not broadcast.")
_FLAT["tensor_evaluate_into"].__doc__ = (
    "tensor_evaluate into tensor output_handle (any view: the broadcast shape for a map; a "
    "reduction's shape, or keepdims' when it has the inputs' rank); it may be an input for "
    "a map (in place). Returns None (hg_tensor_evaluate_into).")
_FLAT["tensor_apply"].__doc__ = (
    "Op `op` of canon/ops.def (\"vector_add_f32\", \"reduce_max_f32\", \"softmax_f32\", "
    "\"mse_loss_f32\", ...; not the contractions) on tensors with broadcasting, into a new "
    "tensor: maps on the broadcast shape; reductions and losses over axes_json (None: all "
    "axes; \"1\", \"-1\" or \"[0, 2]\"), keepdims 0/1; softmax over its axes (None: the "
    "last). params: the op's scalars (hg_tensor_apply).")
_FLAT["tensor_reduce"].__doc__ = (
    "kind (\"sum\", \"mean\", \"min\", \"max\") of a tensor over axes_json (None: all; an "
    "integer or a JSON list, negative from the last), keepdims 0/1, into a new tensor "
    "(hg_tensor_reduce).")
_FLAT["op_describe"].__doc__ = (
    "The row of canon/ops.def named `op` as JSON text: name, family (map, reduce, loss, "
    "softmax, contract), arrays, scalars, reduce, min_n, math (hg_op_describe).")
globals().update(_FLAT)

# ---- expressions (_evaluate.py) -----------------------------------------------------------

from . import _evaluate  # noqa: E402  (after the flat functions it complements)
from ._evaluate import (Expression, apply, evaluate, expr_cleanup,  # noqa: E402
                        expr_compile, expr_run, softmax)


def clear_all_registries():
    """Frees every executor, buffer, tensor and expression of the process (the handles
    become invalid), including the expressions evaluate() keeps compiled."""
    _evaluate.forget_all()
    _FLAT["clear_all_registries"]()


# ---- beyond the seed: NumPy transfer and the kernel cache ------------------------------

def _float32(fname, array, cast):
    """`array` as the C-contiguous float32 ndarray to copy: itself when it is one; with
    cast=True, numpy.ascontiguousarray(array, float32) of any array-like.  Else TypeError
    naming the dtype (or type), InvalidArgumentError for a non-contiguous float32 array."""
    np = _numpy()
    if cast:
        return np.ascontiguousarray(array, dtype=np.float32)
    if not isinstance(array, np.ndarray) or array.dtype != np.float32:
        raise TypeError(f"{fname}(): array must be a numpy.ndarray of dtype float32, not "
                        f"{getattr(array, 'dtype', type(array).__name__)} (cast=True "
                        "converts)")
    if not array.flags.c_contiguous:
        raise InvalidArgumentError(f"{fname}(): array is not C-contiguous (use "
                                   "numpy.ascontiguousarray, or cast=True)", _INVALID_ARGUMENT)
    return array


def buffer_copy_from_numpy(executor_handle, buffer_handle, array, cast=False):
    """Copies a C-contiguous float32 array (any shape, read as flat) into the buffer's
    first array.size elements, without a temporary.  Raises TypeError naming the dtype for
    another dtype or a non-array, InvalidArgumentError for a non-contiguous array,
    OutOfBoundsError when the array is longer than the buffer.  cast=True instead converts
    any array-like to contiguous float32 first (numpy.ascontiguousarray: float64 rounds)."""
    array = _float32("buffer_copy_from_numpy", array, cast)
    try:
        status = _lib.hg_buffer_write(executor_handle, buffer_handle,
                                      _ffi.from_buffer("float[]", array), array.size)
    except (TypeError, OverflowError):
        executor_handle, buffer_handle = _coerce(
            "buffer_copy_from_numpy", (("executor_handle", "int"), ("buffer_handle", "int")),
            (executor_handle, buffer_handle))
        status = _lib.hg_buffer_write(executor_handle, buffer_handle,
                                      _ffi.from_buffer("float[]", array), array.size)
    _check(status)


def _as_numpy(executor_handle, buffer_handle, keep):
    """buffer_as_numpy; `keep` (an Executor or None) lives as long as the pin."""
    np = _numpy()
    data, length = _ffi.new("float **"), _ffi.new("uint64_t *")
    try:
        status = _lib.hg_buffer_pin(executor_handle, buffer_handle, data, length)
    except (TypeError, OverflowError):
        executor_handle, buffer_handle = _coerce(
            "buffer_as_numpy", (("executor_handle", "int"), ("buffer_handle", "int")),
            (executor_handle, buffer_handle))
        status = _lib.hg_buffer_pin(executor_handle, buffer_handle, data, length)
    _check(status)
    unpin = _lib.hg_buffer_unpin

    def release(_, keep=keep):    # a finalizer: it must not raise, and cannot fail here
        unpin(executor_handle, buffer_handle)
    # The cffi buffer keeps `pinned` alive, every array over it keeps the buffer alive
    # (ndarray.base), so the unpin runs when the last view of the memory is collected.
    pinned = _ffi.gc(data[0], release)
    return np.frombuffer(_ffi.buffer(pinned, length[0] * 4), dtype=np.float32)


def buffer_as_numpy(executor_handle, buffer_handle):
    """A writable float32 array of buffer_length elements over the buffer's own memory, not
    a copy: ops on the buffer show in the array and writes to the array are the buffer's
    (order them yourself against ops on other threads).  While the array or any view of it
    (a[2:5], a.reshape(...)) lives, the buffer is pinned (hg_buffer_pin): buffer_cleanup,
    executor_cleanup and clear_all_registries raise BufferInUseError and free nothing; the
    pin is dropped when the last of them is garbage-collected."""
    return _as_numpy(executor_handle, buffer_handle, None)


def buffer_to_numpy(executor_handle, buffer_handle):
    """A new float32 array with the buffer's buffer_length elements."""
    np = _numpy()
    result = np.empty(buffer_length(buffer_handle), dtype=np.float32)
    try:
        status = _lib.hg_buffer_read(executor_handle, buffer_handle,
                                     _ffi.from_buffer("float[]", result), result.size)
    except (TypeError, OverflowError):
        (executor_handle,) = _coerce("buffer_to_numpy", (("executor_handle", "int"),),
                                     (executor_handle,))
        status = _lib.hg_buffer_read(executor_handle, buffer_handle,
                                     _ffi.from_buffer("float[]", result), result.size)
    _check(status)
    return result


_CACHE_FIELDS = tuple(name for name, _ in _ffi.typeof("hg_cache_stats").fields)


def cache_stats():
    """The process's kernel-cache counters as a dict (hits, misses, compiles, disk_loads,
    evictions, entries, capacity, fallbacks: int; compile_seconds, disk_load_seconds:
    float; disk_error: str, "" unless the on-disk cache was refused, else why)."""
    stats = _ffi.new("hg_cache_stats *")
    _check(_lib.hg_cache_stats_get(stats))
    result = {name: getattr(stats, name) for name in _CACHE_FIELDS}
    result["disk_error"] = _ffi.string(stats.disk_error).decode("utf-8", "replace")
    return result


# ---- Executor: a context manager over one executor handle ------------------------------

def _quietly(free, handle):
    """Frees `handle` unless it is already gone or still viewed (the executor's cleanup
    takes it then)."""
    try:
        free(handle)
    except (InvalidHandleError, BufferInUseError):
        pass


def _method(fn, takes_executor, record):
    """An Executor method calling flat `fn` (with self.handle first when it takes the
    executor) and recording the new handle it returns in self.<record>."""
    if takes_executor and record:
        def method(self, *args):
            handle = fn(self.handle if self.handle is not None else self._closed(), *args)
            getattr(self, record).append(handle)
            return handle
    elif takes_executor:
        def method(self, *args):
            return fn(self.handle if self.handle is not None else self._closed(), *args)
    else:
        def method(self, *args):
            handle = fn(*args)
            getattr(self, record).append(handle)
            return handle
    params = list(inspect.signature(fn).parameters.values())[1 if takes_executor else 0:]
    method.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params)
    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


class Executor:
    """One executor; `with Executor() as ex:` frees, on exit, the tensors and buffers made
    through it and then the executor.  Methods are the flat functions that take an
    executor (given implicitly: ex.vector_add_f32(a, b, c, n)), with the `executor_`
    prefix dropped (ex.allocate_buffer(n)), plus the tensor constructors that take none
    (ex.tensor_from_buffer(b, shape_json), tensor_transpose, tensor_select and the views:
    tensor_permute, tensor_narrow, tensor_slice, ...); handles they return are recorded and
    freed by close()."""

    def __init__(self):
        self.handle = self._freed = new_executor()
        self.buffers = []
        self.tensors = []

    def _closed(self):
        """Raises InvalidHandleError: a method called after close()."""
        raise InvalidHandleError(f"Executor (handle 0x{self._freed:016x}) is closed",
                                 _STATUS_VALUES["HG_ERR_INVALID_HANDLE"])

    def from_numpy(self, array, cast=False):
        """A new buffer holding a copy of a float32 array (flattened; C-contiguous or not).
        Another dtype raises TypeError naming it, unless cast=True converts it (as
        buffer_copy_from_numpy's cast does)."""
        np = _numpy()
        if self.handle is None:
            self._closed()
        if not cast and isinstance(array, np.ndarray) and array.dtype == np.float32:
            array = np.ascontiguousarray(array)
        array = _float32("from_numpy", array, cast)
        buffer = self.allocate_buffer(array.size)
        buffer_copy_from_numpy(self.handle, buffer, array)
        return buffer

    def as_numpy(self, buffer_handle):
        """buffer_as_numpy(self.handle, buffer_handle): an array over the buffer's memory,
        which keeps this Executor alive and the buffer pinned while it (or a view of it)
        lives; close() raises BufferInUseError meanwhile."""
        return _as_numpy(self.handle if self.handle is not None else self._closed(),
                         buffer_handle, self)

    def to_numpy(self, buffer_handle):
        """The buffer's elements as a new float32 array."""
        return buffer_to_numpy(self.handle if self.handle is not None else self._closed(),
                               buffer_handle)

    def close(self):
        """Frees the executor with every buffer and tensor it owns, then the recorded
        tensors over other executors' buffers.  Idempotent; handles already freed
        elsewhere (or by clear_all_registries) are skipped.  While an array over one of
        its buffers lives (buffer_as_numpy, as_numpy), raises BufferInUseError and frees
        nothing: the Executor stays open."""
        handle = self.handle
        if handle is None:
            return
        try:
            executor_cleanup(handle)
        except InvalidHandleError:
            pass
        self.handle = None
        for tensor in reversed(self.tensors):
            _quietly(tensor_cleanup, tensor)
        self.tensors.clear()
        self.buffers.clear()

    def __del__(self):
        """An Executor collected unclosed is closed, with a ResourceWarning (as an unclosed
        file gives)."""
        if getattr(self, "handle", None) is None:
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
        try:
            self.close()
        except BufferInUseError:  # arrays over its buffers (buffer_as_numpy): left open
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def __repr__(self):
        if self.handle is None:
            return f"<hologram_ffi.Executor handle=0x{self._freed:016x} closed>"
        return f"<hologram_ffi.Executor handle=0x{self.handle:016x}>"


_RECORDS = {"out_buffer": "buffers", "out_tensor": "tensors"}
for _name, _fn in _FLAT.items():
    if _name == "executor_cleanup":     # close() does it, after the recorded handles
        continue
    _takes_executor = _fn.__code__.co_varnames[:1] == ("executor_handle",)
    _record = _RECORDS.get(_OUT_NAMES[_name])
    if _takes_executor or _record == "tensors":
        setattr(Executor, _name.removeprefix("executor_"),
                _method(_fn, _takes_executor, _record))

__all__ = sorted(_FLAT) + [
    "evaluate", "expr_compile", "expr_run", "expr_cleanup", "apply", "softmax",
    "buffer_copy_from_numpy", "buffer_to_numpy", "buffer_as_numpy", "cache_stats",
    "Executor", "Expression",
] + errors.__all__

del _proto, _name, _fn, _takes_executor, _record
