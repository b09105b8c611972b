"""Exceptions of hologram_ffi.

Each C status (HG_STATUS_MAP in hologram.h) raises one class; the mapping is keyed by the
status *names* the extension was compiled with (read from the cdef'd enum), so it cannot
drift from the header's numbering.  Every class derives from HologramError and from the
builtin exception a Python user would catch for that kind of failure.
"""


class HologramError(Exception):
    """Base class of every hologram error; `.status` is the C hg_status value (an int)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class InvalidHandleError(HologramError, ValueError):
    """A handle that is 0, made up, freed, or of the wrong kind."""


class InvalidArgumentError(HologramError, ValueError):
    """An argument out of its documented range (negative length, lo > hi, bad class...)."""


class ShapeError(HologramError, ValueError):
    """Tensor shapes that do not fit the operation."""


class OutOfBoundsError(HologramError, IndexError):
    """A length or index past the end of a buffer or dimension."""


class JsonError(HologramError, ValueError):
    """Malformed JSON or JSON of the wrong form (the message gives the byte position)."""


class BufferInUseError(HologramError, RuntimeError):
    """A buffer freed while tensors still view it."""


class OutOfMemoryError(HologramError, MemoryError):
    """A size the machine (or the API's limits) cannot hold."""


class CompileError(HologramError, RuntimeError):
    """A kernel that failed to compile."""


class ExpressionError(HologramError, ValueError):
    """An expression that cannot be compiled (a syntax error, an unknown function or name,
    a wrong number of arguments, a reduction inside a map, a limit): the message names the
    column and the offending token, name or limit."""


# C status name -> class; statuses not listed (HG_ERR_INTERNAL, future ones) raise the base.
STATUS_CLASSES = {
    "HG_ERR_INVALID_HANDLE": InvalidHandleError,
    "HG_ERR_INVALID_ARGUMENT": InvalidArgumentError,
    "HG_ERR_SHAPE": ShapeError,
    "HG_ERR_OUT_OF_BOUNDS": OutOfBoundsError,
    "HG_ERR_JSON": JsonError,
    "HG_ERR_BUSY": BufferInUseError,
    "HG_ERR_NO_MEMORY": OutOfMemoryError,
    "HG_ERR_COMPILE": CompileError,
    "HG_ERR_EXPRESSION": ExpressionError,
}

__all__ = [
    "HologramError", "InvalidHandleError", "InvalidArgumentError", "ShapeError",
    "OutOfBoundsError", "JsonError", "BufferInUseError", "OutOfMemoryError", "CompileError",
    "ExpressionError",
]
