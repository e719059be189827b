"""Softmax, log-softmax and the fused softmax cross-entropy from logits (networks.md
§2.3, §3.4; compiled kernels: ``corenet/_kernels/softmax_ce.pyx``)."""
from __future__ import annotations

import numpy as np

from .. import config
from .._kernels import softmax_ce as _sce
from ..errors import DTypeError, HyperparameterError, ShapeError
from ._common import _check, _output


def _rowwise(fn, kernel, z, axis, out):
    _check(z, kernel, "z")
    if z.ndim == 0:
        raise ShapeError(f"{kernel}: z must have at least 1 dimension, got shape ()")
    if not isinstance(axis, (int, np.integer)):
        raise HyperparameterError(f"{kernel}: axis must be an int, got {axis!r}")
    if not -z.ndim <= axis < z.ndim:
        raise ShapeError(f"{kernel}: axis {axis} is out of range for shape {z.shape}")
    out = _output(out, kernel, z.shape, z.dtype, inplace=(z,))
    axis = int(axis) % z.ndim
    if z.size == 0:
        return out
    if axis == z.ndim - 1:
        k = z.shape[-1]
        fn(z.reshape(-1, k), out.reshape(-1, k), config.get_num_threads())
        return out
    zt = np.moveaxis(z, axis, -1).copy()    # a copy: computed in place, z must not change
    fn(zt.reshape(-1, zt.shape[-1]), zt.reshape(-1, zt.shape[-1]), config.get_num_threads())
    np.copyto(out, np.moveaxis(zt, -1, axis))
    return out


def softmax(z, axis: int = -1, out=None):
    """``p = exp(z − m) / Σ exp(z − m)``, m the maximum along ``axis`` (networks.md §2.3).
    Any shape; ``axis=1`` for (N, C, H, W) maps. ``out`` may be z."""
    return _rowwise(_sce.softmax, "kernels.softmax", z, axis, out)


def log_softmax(z, axis: int = -1, out=None):
    """``z − m − log Σ exp(z − m)`` along ``axis`` (networks.md §2.3). ``out`` may be z."""
    return _rowwise(_sce.log_softmax, "kernels.log_softmax", z, axis, out)


def softmax_cross_entropy(z, y, loss_out=None, grad_out=None):
    """Fused softmax cross-entropy from logits (networks.md §3.4, README §10).

    z: logits (N, K). y: float targets (N, K) of z's dtype (one-hot or soft, rows
    summing to 1 — not checked here, the loss does that) or integer labels (N,) in
    0..K−1 (no one-hot is built). Returns ``(loss, grad)``: per-sample
    ``loss_n = −Σ_k y_nk log_softmax(z_n)_k`` (N,) and ``grad = softmax(z) − y`` (N, K),
    both unreduced. ``grad_out`` must not overlap z or y.
    """
    kernel = "kernels.softmax_cross_entropy"
    _check(z, kernel, "z")
    if z.ndim != 2:
        raise ShapeError(f"{kernel}: z must have shape (N, K), got {z.shape}")
    n, k = z.shape
    if k == 0 and n > 0:
        raise ShapeError(f"{kernel}: z has no classes (shape {z.shape})")
    if not isinstance(y, np.ndarray):
        raise DTypeError(f"{kernel}: y must be a numpy.ndarray, got {type(y).__name__}")
    labels = y.dtype.kind in "iu"
    if labels:
        if y.shape != (n,):
            raise ShapeError(f"{kernel}: integer labels must have shape ({n},), got {y.shape}")
        if n and (y.min() < 0 or y.max() >= k):
            bad = y[(y < 0) | (y >= k)][0]
            raise ValueError(f"{kernel}: labels must be in 0..{k - 1}, got {bad}")
        y = np.ascontiguousarray(y, dtype=np.int64)
    else:
        _check(y, kernel, "y", dtype=z.dtype, shape=z.shape)
    loss = _output(loss_out, kernel, (n,), z.dtype, name="loss_out")
    grad = _output(grad_out, kernel, z.shape, z.dtype, name="grad_out")
    if np.may_share_memory(grad, z) or np.may_share_memory(grad, y) or \
            np.may_share_memory(loss, grad):
        raise ValueError(f"{kernel}: grad_out must not overlap z, y or loss_out")
    fn = _sce.softmax_cross_entropy_labels if labels else _sce.softmax_cross_entropy
    fn(z, y, loss, grad, config.get_num_threads())
    return loss, grad
