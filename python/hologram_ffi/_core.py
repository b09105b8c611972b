"""hologram_ffi._core — what every part of the package shares: the compiled extension
(ffi, lib), the version check, the map from C statuses to exceptions, and argument
validation for the slow path of a call."""
import operator

from . import errors
from .errors import HologramError, InvalidArgumentError

try:
    from ._hologram_ffi import ffi as _ffi, lib as _lib
except ImportError as _exc:
    raise ImportError(
        "hologram_ffi: the compiled extension hologram_ffi._hologram_ffi is missing or "
        "cannot load libhologram.so; build it with CMake (target hologram_ffi) and put "
        "<build>/python on PYTHONPATH, or `pip install --no-build-isolation python/` with "
        f"HOLOGRAM_LIB_DIR set ({_exc})") from _exc


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


def _coerce(fname, spec, values):
    """Validates arguments that cffi refused (slow path only): returns them converted
    (ints via __index__, floats via __float__) or raises TypeError / InvalidArgumentError
    naming the argument.  Kinds: "int" (uint64_t), "int64" (int64_t), "u8" (uint8_t),
    "float", "str", "str?" (str or None), "ints" / "floats" (a sequence of them: a list)."""
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
                    f"{fname}(): {name} = {value} is outside [-2**63, 2**63)",
                    _INVALID_ARGUMENT)
            if kind == "int" and value < 0:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {value} is negative", _INVALID_ARGUMENT)
            if kind == "u8" and not 0 <= value <= 255:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {value} is outside [0, 255]", _INVALID_ARGUMENT)
            if kind == "int" and value > _U64_MAX:
                raise InvalidArgumentError(
                    f"{fname}(): {name} = {value} exceeds 2**64-1", _INVALID_ARGUMENT)
        elif kind == "float":
            if isinstance(value, (str, bytes)) or not hasattr(type(value), "__float__"):
                raise TypeError(f"{fname}(): {name} must be a real number, not "
                                f"{type(value).__name__}")
            value = float(value)
        elif not isinstance(value, str) and not (kind == "str?" and value is None):
            raise TypeError(f"{fname}(): {name} must be str (JSON text)"
                            f"{' or None' if kind == 'str?' else ''}, not "
                            f"{type(value).__name__}")
        converted.append(value)
    return tuple(converted)


_np = None


def _numpy():
    """NumPy, imported on first use (the flat API works without it)."""
    global _np
    if _np is None:
        import numpy
        _np = numpy
    return _np
