"""hologram_ffi._core — what every part of the package shares: the compiled extension
(ffi, lib), the version check, the map from C statuses to exceptions, and argument
validation for the slow path of a call."""
import math
import operator

from . import errors
from .errors import HologramError, InvalidArgumentError

try:
    from ._hologram_ffi import ffi as _ffi, lib as _lib
except ImportError as _exc:
    raise ImportError(
        "hologram_ffi: the compiled extension hologram_ffi._hologram_ffi is missing or "
        "cannot load libhologram.so.0 (an installed wheel keeps it beside the extension, "
        "a CMake build in <build>/); build it with CMake (target hologram_ffi) and put "
        "<build>/python on PYTHONPATH, or install it with `pip install "
        f"--no-build-isolation python/` in a venv ({_exc})") from _exc


def _library_version():
    """The shared library's hg_get_version(), or ImportError."""
    out = _ffi.new("const char **")
    if _lib.hg_get_version(out) != 0:
        raise ImportError("hologram_ffi: hg_get_version failed")
    return _ffi.string(out[0]).decode()


def _check_versions(header_version, library_version):
    """ImportError unless the extension's compiled header and the loaded library agree."""
    if header_version != library_version:
        raise ImportError(
            f"hologram_ffi: extension compiled against hologram.h {header_version} but "
            f"libhologram.so reports {library_version}; rebuild the extension")


__version__ = _library_version()
_HEADER_VERSION = _ffi.string(_lib.hg_py_header_version).decode()
_check_versions(_HEADER_VERSION, __version__)

# ---- statuses and errors ---------------------------------------------------------------

_STATUS_NAMES = _ffi.typeof("hg_status").elements          # {value: "HG_ERR_..."}
_STATUS_VALUES = {name: value for value, name in _STATUS_NAMES.items()}
_ERROR_CLASSES = {value: errors.STATUS_CLASSES.get(name, HologramError)
                  for value, name in _STATUS_NAMES.items()}
_INVALID_ARGUMENT = _STATUS_VALUES["HG_ERR_INVALID_ARGUMENT"]
_U64_MAX = 2 ** 64 - 1
_I64_MIN, _I64_MAX = -2 ** 63, 2 ** 63 - 1


def _error(status):
    """The exception for a nonzero C status, with the calling thread's last message."""
    message = _ffi.string(_lib.hg_last_error()).decode("utf-8", "replace")
    if not message:
        message = _ffi.string(_lib.hg_status_string(status)).decode()
    return _ERROR_CLASSES.get(status, HologramError)(message, status)


def _check(status):
    """Raises the exception for a nonzero status."""
    if status:
        raise _error(status)


# Finite values below this magnitude round to a finite float32 (FLT_MAX plus half an ulp);
# beyond it they would become infinities.
_F32_LIMIT = 2.0 ** 128 * (1 - 2.0 ** -25)


class _Refused(Exception):
    """Raised by a generated wrapper's fast path for a value it must not pass on as is (a
    float beyond float32, a str with NUL); sends the call through _coerce, which names it."""


def _show(value):
    """A value for a message: repr, with very long integers abbreviated."""
    text = repr(value)
    if isinstance(value, int) and len(text) > 40:
        return f"{text[:20]}...{text[-6:]} ({len(text.lstrip('-'))} digits)"
    return text


def _coerce(fname, spec, values):
    """Validates arguments that cffi refused or the fast path sent here (slow path only):
    returns them converted (ints via __index__, floats via __float__, str as UTF-8 text) or
    raises TypeError / InvalidArgumentError naming the argument and its value.  Kinds:
    "int" (uint64_t), "int64" (int64_t), "u8" (uint8_t), "float" (float32: finite values
    beyond its range are refused, NaN and infinities pass), "str" (no NUL, no lone
    surrogate), "str?" (a str or None), "ints" / "floats" (a sequence of them: a list)."""
    converted = []
    for (name, kind), value in zip(spec, values):
        if kind in ("ints", "floats"):
            if value is None or isinstance(value, (str, bytes)) or \
                    not hasattr(value, "__len__"):
                raise TypeError(f"{fname}(): {name} must be a list of "
                                f"{'integers' if kind == 'ints' else 'numbers'}, not "
                                f"{type(value).__name__}")
            one = "int" if kind == "ints" else "float"
            value = list(_coerce(fname, [(f"{name}[{i}]", one) for i in range(len(value))],
                                 list(value)))
        elif kind in ("int", "int64", "u8"):
            try:
                value = operator.index(value)
            except TypeError:
                raise TypeError(f"{fname}(): {name} must be an integer, not "
                                f"{type(value).__name__}") from None
            if kind == "int64" and not _I64_MIN <= value <= _I64_MAX:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {_show(value)} is outside [-2**63, 2**63)",
                    _INVALID_ARGUMENT)
            if kind == "int" and value < 0:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {_show(value)} is negative", _INVALID_ARGUMENT)
            if kind == "u8" and not 0 <= value <= 255:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {_show(value)} is outside [0, 255]",
                    _INVALID_ARGUMENT)
            if kind == "int" and value > _U64_MAX:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {_show(value)} exceeds 2**64-1", _INVALID_ARGUMENT)
        elif kind == "float":
            if isinstance(value, (str, bytes)) or not hasattr(type(value), "__float__"):
                raise TypeError(f"{fname}(): {name} must be a real number, not "
                                f"{type(value).__name__}")
            try:
                number = float(value)
            except OverflowError:
                number = None
            if number is None or (math.isfinite(number) and
                                  not -_F32_LIMIT < number < _F32_LIMIT):
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {_show(value)} is beyond the float32 range "
                    f"(magnitude at most 3.4028235e+38)", _INVALID_ARGUMENT)
            value = number
        elif kind == "str?" and value is None:
            pass
        elif not isinstance(value, str):
            raise TypeError(f"{fname}(): {name} must be str (JSON text)"
                            f"{' or None' if kind == 'str?' else ''}, not "
                            f"{type(value).__name__}")
        else:
            _check_text(fname, name, value)
        converted.append(value)
    return tuple(converted)


def _check_text(fname, name, text):
    """InvalidArgumentError (a ValueError) naming the position of a NUL or a lone surrogate
    in str `text`, which C would cut or UTF-8 cannot carry."""
    at = text.find("\0")
    if at >= 0:
        raise InvalidArgumentError(
            f"{fname}(): {name} contains a NUL character at position {at}", _INVALID_ARGUMENT)
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{fname}(): {name} contains a lone surrogate {text[exc.start]!r} at position "
            f"{exc.start}", _INVALID_ARGUMENT) from None


_np = None


def _numpy():
    """NumPy, imported on first use (the flat API works without it)."""
    global _np
    if _np is None:
        import numpy
        _np = numpy
    return _np
