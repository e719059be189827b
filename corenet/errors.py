"""Exceptions and the input checks shared by every component.

Every message names the component, what it expected and what it received.
"""
from __future__ import annotations

import numpy as np


class CorenetError(Exception):
    """Base class of corenet's own errors."""


class ShapeError(CorenetError, ValueError):
    """An array has the wrong rank or size for the component that received it."""


class DTypeError(CorenetError, TypeError):
    """An array has a dtype the component cannot use (integer, object, ...)."""


class NotFiniteError(CorenetError, FloatingPointError):
    """NaN or inf appeared in inputs, targets, a loss or a gradient."""


class PluginError(CorenetError, LookupError):
    """A plugin or a registered component is missing, duplicated or broken."""


class HyperparameterError(CorenetError, ValueError):
    """A hyperparameter is outside its allowed range."""


def check_array(x, component: str, *, ndim=None, dtype=None, allow_empty: bool = True,
                finite: bool = False, name: str = "input") -> np.ndarray:
    """Validate a floating array without copying it.

    Raises :class:`DTypeError` for non-ndarray or non-float input, :class:`ShapeError`
    for the wrong rank, ``ValueError`` for non-contiguous memory and
    :class:`NotFiniteError` when ``finite`` and the array holds NaN or inf.
    """
    if not isinstance(x, np.ndarray):
        raise DTypeError(f"{component}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{component}: {name} must be a floating array (float32/float64), "
                         f"got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise DTypeError(f"{component}: {name} must have dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ShapeError(f"{component}: {name} must have {want} dimensions, "
                             f"got shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{component}: {name} must be C-contiguous "
                         f"(use numpy.ascontiguousarray), got strides {x.strides}")
    if not allow_empty and x.size == 0:
        raise ShapeError(f"{component}: {name} is empty (shape {x.shape})")
    if finite and not np.isfinite(x).all():
        raise NotFiniteError(f"{component}: {name} contains NaN or inf")
    return x


def check_positive(value, component: str, name: str, *, allow_zero: bool = False) -> float:
    """Raise :class:`HyperparameterError` unless ``value`` is a finite number > 0 (>= 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: {name} must be a number, got {value!r}") from None
    ok = v >= 0 if allow_zero else v > 0
    if not np.isfinite(v) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise HyperparameterError(f"{component}: {name} must be {bound}, got {value!r}")
    return v


def check_range(value, component: str, name: str, low: float, high: float, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """Raise :class:`HyperparameterError` unless low <= value <= high (open ends as asked)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: {name} must be a number, got {value!r}") from None
    bad = (v < low or v > high or (low_open and v == low) or (high_open and v == high)
           or not np.isfinite(v))
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise HyperparameterError(f"{component}: {name} must be in {lb}{low}, {high}{hb}, "
                                  f"got {value!r}")
    return v
