"""Validation shared by the kernel facades (see :mod:`corenet.kernels`): arrays are
float32/float64 ``numpy.ndarray`` of one dtype, C-contiguous, of the expected shape;
outputs are allocated when not given and must be writable."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError, check_array

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------- validation
def _check(x, kernel, name, dtype=None, shape=None):
    check_array(x, kernel, dtype=dtype, name=name)
    if x.dtype not in _FLOATS:
        raise DTypeError(f"{kernel}: {name} must be float32 or float64, got dtype {x.dtype}")
    if shape is not None and x.shape != tuple(shape):
        raise ShapeError(f"{kernel}: {name} must have shape {tuple(shape)}, got {x.shape}")
    return x


def _output(out, kernel, shape, dtype, name="out"):
    if out is None:
        return np.empty(shape, dtype=dtype)
    _check(out, kernel, name, dtype=dtype, shape=shape)
    if not out.flags.writeable:
        raise ValueError(f"{kernel}: {name} must be writable")
    return out
