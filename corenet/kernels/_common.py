"""Validation shared by the kernel facades (see :mod:`corenet.kernels`): arrays are
float32/float64 ``numpy.ndarray`` of one dtype, C-contiguous, of the expected shape;
outputs are allocated when not given and must be writable."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError, check_array

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT_MAX = 2 ** 31 - 1      # C int: the bound of the size and geometry arguments


# ----------------------------------------------------------------------------- validation
def _check(x, kernel, name, dtype=None, shape=None):
    check_array(x, kernel, dtype=dtype, name=name)
    if x.dtype not in _FLOATS:
        raise DTypeError(f"{kernel}: {name} must be float32 or float64, got dtype {x.dtype}")
    if shape is not None and x.shape != tuple(shape):
        raise ShapeError(f"{kernel}: {name} must have shape {tuple(shape)}, got {x.shape}")
    return x


def _output(out, kernel, shape, dtype, name="out", apart=(), inplace=()):
    """A new array, or the caller's ``out`` checked: its shape, dtype, C order, that it is
    writable, that it shares no memory with the inputs ``apart`` and at most whole with
    the inputs ``inplace`` (the element-wise kernels may compute in place)."""
    if out is None:
        return _empty(shape, dtype, kernel, name)
    _check(out, kernel, name, dtype=dtype, shape=shape)
    if not out.flags.writeable:
        raise ValueError(f"{kernel}: {name} must be writable")
    _apart(out, kernel, *inplace, name=name, same_ok=True)
    _apart(out, kernel, *apart, name=name)
    return out


def _empty(shape, dtype, kernel, name="out"):
    """``numpy.empty`` whose errors name the kernel: a shape NumPy cannot have (a negative
    or too large size, from the arguments) raises ShapeError, a failed allocation
    MemoryError."""
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError as e:
        raise MemoryError(f"{kernel}: cannot allocate {name} of shape {tuple(shape)}: "
                          f"{e}") from None
    except ValueError as e:
        raise ShapeError(f"{kernel}: {name} cannot have shape {tuple(shape)}: {e}") from None


def _apart(out, kernel, *inputs, name="out", same_ok=False):
    """Raise ValueError when ``out`` shares memory with one of ``inputs`` (None skipped).
    ``same_ok``: out may be one of them exactly (same memory, shape and strides: the
    element-wise kernels compute in place), but not overlap one partially."""
    for a in inputs:
        if a is None or not np.may_share_memory(out, a):
            continue
        if same_ok and a.shape == out.shape and a.strides == out.strides \
                and a.__array_interface__["data"][0] == out.__array_interface__["data"][0]:
            continue
        raise ValueError(f"{kernel}: {name} must not overlap an input"
                         + (" (it may be the input itself)" if same_ok else ""))
