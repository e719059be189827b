"""Kernels of cascade-correlation growth: the values and derivatives of a pool of
candidate units (growing.md §4.3) and the Quickprop step (optimizers.md §10.1)
(compiled kernels: ``corenet/_kernels/cascade.pyx``)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import config
from .._kernels import cascade as _cascade
from ..errors import DTypeError, HyperparameterError, ShapeError
from ._common import _apart, _check, _output

#: unit types with a compiled pool kernel (others use NumPy in corenet.cascor)
CASCADE_UNIT_CODES: dict[str, int] = dict(_cascade.CODES)


def cascade_pool_values(S, codes, beta, V=None, dV=None):
    """``V = f(βs)`` and ``dV = β f′(βs)`` for a pool of candidate units (growing.md §4.3).

    S ``(N, P)`` float32/float64 net inputs, C-contiguous; ``codes`` ``(P,)`` unit types
    from :data:`CASCADE_UNIT_CODES` (identity, sigmoid, sigmoid_symmetric, tanh,
    gaussian, sin, cos, arctan, softsign); ``beta`` ``(P,)`` steepnesses. ``V``/``dV``
    optional outputs of S's shape and dtype. Returns ``(V, dV)``.
    """
    kernel = "kernels.cascade_pool_values"
    _check(S, kernel, "S")
    if S.ndim != 2:
        raise ShapeError(f"{kernel}: S must have shape (N, P), got {S.shape}")
    P = S.shape[1]
    codes, beta = np.asarray(codes), np.asarray(beta)
    if codes.dtype.kind not in "iu" and codes.size:
        raise DTypeError(f"{kernel}: codes must be integers, got dtype {codes.dtype}")
    if beta.dtype.kind not in "biuf":
        raise DTypeError(f"{kernel}: beta must be real numbers, got dtype {beta.dtype}")
    if codes.shape != (P,) or beta.shape != (P,):
        raise ShapeError(f"{kernel}: codes and beta must have shape ({P},), got "
                         f"{codes.shape} and {beta.shape}")
    if P and (codes.min() < 0 or codes.max() >= _cascade.NCODES):
        raise ValueError(f"{kernel}: unit codes must be in 0..{_cascade.NCODES - 1}, got "
                         f"{codes.min()}..{codes.max()}")
    codes = np.ascontiguousarray(codes, dtype=np.intc)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    if not np.isfinite(beta).all():
        raise ValueError(f"{kernel}: beta must be finite")
    given = V is not None or dV is not None
    V = _output(V, kernel, S.shape, S.dtype, "V")
    dV = _output(dV, kernel, S.shape, S.dtype, "dV")
    if given:
        _apart(V, kernel, S, name="V")
        _apart(dV, kernel, S, V, name="dV")
    _cascade.pool_values(S, codes, beta, V, dV, config.get_num_threads())
    return V, dV


def cascade_quickprop(w, g, d, p, lr: float, mu: float, decay: float = 0.0):
    """One ``optimizer:quickprop`` step in ``"fahlman"`` mode (optimizers.md §10.1), in
    place: ``w`` weights, ``g`` slope of the minimised function, ``d`` previous step and
    ``p`` previous slope (updated). All four C-contiguous, same shape and float dtype."""
    kernel = "kernels.cascade_quickprop"
    _check(w, kernel, "w")
    for name, a in (("g", g), ("d", d), ("p", p)):
        _check(a, kernel, name, dtype=w.dtype, shape=w.shape)
    for name, a in (("w", w), ("d", d), ("p", p)):
        if not a.flags.writeable:
            raise ValueError(f"{kernel}: {name} must be writable")
    for name, v in (("lr", lr), ("mu", mu), ("decay", decay)):
        if not isinstance(v, numbers.Real):
            raise HyperparameterError(f"{kernel}: {name} must be a real number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"{kernel}: {name} must be finite, got {v!r}")
    _cascade.quickprop(w.reshape(-1), g.reshape(-1), d.reshape(-1), p.reshape(-1),
                       float(lr), float(mu), float(decay))
