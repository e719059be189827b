"""Public facade of the compiled element-wise, softmax and cross-entropy kernels.

Every function validates its arrays here, in Python, before the compiled code runs
without the GIL: float32/float64 only, one dtype for all arrays (no silent casts,
README §3), C-contiguous, matching shapes, writable outputs, labels in 0..K-1. Bad input
raises an exception from :mod:`corenet.errors` (``DTypeError``, ``ShapeError``) or
``ValueError`` naming the kernel, what it expected and what it received.

Outputs can be passed with ``out=`` (same shape and dtype, C-contiguous) so layers reuse
buffers; element-wise kernels allow ``out`` to be an input. The thread count comes from
:func:`corenet.config.get_num_threads`; small arrays (≤ 32768 elements) run serially.
Results are deterministic and do not depend on the thread count.

Activation names and hyperparameters (spec networks.md §2.2, defaults as in the spec):
``identity, sigmoid, sigmoid_symmetric, tanh, scaled_tanh(a=1.7159, b=2/3), arctan,
softsign, relu, leaky_relu(alpha=0.01), generalized_relu(alpha=0.0), elu(alpha=1.0),
selu, softplus(beta=1.0), erf, gaussian, sign`` (forward only) and ``gelu`` (exact erf
form), ``silu`` (x·σ(x)), both as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from . import config
from ._kernels import activations as _act
from ._kernels import softmax_ce as _sce
from ._reference import ACTIVATION_PARAMS, resolve_params
from .errors import DTypeError, HyperparameterError, ShapeError, check_array

ACTIVATION_CODES: dict[str, int] = dict(_act.CODES)
_NAME_OF_CODE = {}
for _n, _c in ACTIVATION_CODES.items():
    _NAME_OF_CODE.setdefault(_c, _n)
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

__all__ = ["ACTIVATION_CODES", "activation_forward", "activation_backward", "prelu_forward",
           "prelu_backward", "softmax", "log_softmax", "softmax_cross_entropy"]


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


def _resolve(activation):
    """(name, code) from an activation name or integer code."""
    if isinstance(activation, (int, np.integer)) and not isinstance(activation, bool):
        if int(activation) not in _NAME_OF_CODE:
            raise ValueError(f"corenet.kernels: unknown activation code {activation!r}; "
                             f"codes are {sorted(_NAME_OF_CODE)}")
        return _NAME_OF_CODE[int(activation)], int(activation)
    if activation not in ACTIVATION_CODES:
        raise ValueError(f"corenet.kernels: unknown activation {activation!r}; "
                         f"known: {', '.join(sorted(ACTIVATION_CODES))}")
    return activation, ACTIVATION_CODES[activation]


def _params(name, kernel, params):
    """Validated hyperparameters as the kernel's (p1, p2)."""
    p = resolve_params(name, params)
    for key, value in p.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise HyperparameterError(f"{kernel}: {key} must be a number, got {value!r}") from None
        if not math.isfinite(v):
            raise HyperparameterError(f"{kernel}: {key} must be finite, got {value!r}")
        p[key] = v
    if name == "softplus" and p["beta"] <= 0:
        raise HyperparameterError(f"{kernel}: beta must be > 0, got {p['beta']!r}")
    if name == "scaled_tanh":
        return p["a"], p["b"]
    if name == "softplus":
        return p["beta"], 0.0
    return p.get("alpha", 0.0), 0.0


def activation_params(activation, config: dict) -> tuple[float, float, bool]:
    """``(p1, p2, from_y)`` of an activation for the compiled kernels: its validated
    hyperparameters and whether its backward can use the cached output."""
    name, code = _resolve(activation)
    p1, p2 = _params(name, f"kernels[{name}]", dict(config))
    from_y = (code in _act.FROM_Y and not (name == "elu" and p1 <= 0)
              and not (name == "scaled_tanh" and p1 == 0))
    return p1, p2, from_y


# ----------------------------------------------------------------------------- activations
def activation_forward(activation, x, out=None, **params):
    """``out = f(x)`` element-wise (networks.md §2.2) for any shape; returns ``out``.

    ``activation`` is a name (see module doc) or a code from ``ACTIVATION_CODES``;
    ``params`` are its hyperparameters (spec defaults when omitted). ``out`` may be x.
    """
    name, code = _resolve(activation)
    kernel = f"kernels.activation_forward[{name}]"
    p1, p2 = _params(name, kernel, params)
    _check(x, kernel, "x")
    out = _output(out, kernel, x.shape, x.dtype)
    _act.activation_forward(code, x.reshape(-1), out.reshape(-1), p1, p2,
                            config.get_num_threads())
    return out


def activation_backward(activation, x, y, dy, out=None, **params):
    """``dx = dy ⊙ f′(x)`` (networks.md §2.2, kinks by D-04); returns ``dx``.

    ``x`` is the forward input and ``y`` the cached output ``f(x)``; either may be None.
    For sigmoid, sigmoid_symmetric, tanh, scaled_tanh, elu (alpha > 0) and selu the
    output route is used when ``y`` is given (same values as the x route up to
    rounding); the others need ``x``. ``out`` may be dy. ``sign`` raises
    NotImplementedError (not differentiable).
    """
    name, code = _resolve(activation)
    kernel = f"kernels.activation_backward[{name}]"
    if code in _act.NOT_DIFFERENTIABLE:
        raise NotImplementedError(f"{kernel}: activation {name!r} is not differentiable; "
                                  f"it has no backward pass")
    p1, p2 = _params(name, kernel, params)
    _check(dy, kernel, "dy")
    for arr, label in ((x, "x"), (y, "y")):
        if arr is not None:
            _check(arr, kernel, label, dtype=dy.dtype, shape=dy.shape)
    from_y = (y is not None and code in _act.FROM_Y and not (name == "elu" and p1 <= 0)
              and not (name == "scaled_tanh" and p1 == 0))
    if not from_y and x is None:
        raise ValueError(f"{kernel}: the input x is required (got x=None"
                         f"{'' if y is None else '; this activation cannot use y'})")
    src = y if from_y else x
    dx = _output(out, kernel, dy.shape, dy.dtype)
    _act.activation_backward(code, src.reshape(-1), dy.reshape(-1), dx.reshape(-1), p1, p2,
                             from_y, config.get_num_threads())
    return dx


def _prelu_views(x, alpha, kernel):
    """x as (N, C, S) and alpha as (C,) or (1,), checked against each other."""
    _check(alpha, kernel, "alpha", dtype=x.dtype)
    if alpha.ndim > 1:
        raise ShapeError(f"{kernel}: alpha must have shape (C,) or (1,), got {alpha.shape}")
    a = alpha.reshape(-1)
    if x.ndim >= 2:
        n, c = x.shape[0], x.shape[1]
        s = int(np.prod(x.shape[2:], dtype=np.int64))
    else:
        n, c, s = 1, 1, x.size
    if a.size not in (1, c):
        raise ShapeError(f"{kernel}: alpha must have 1 or C = {c} entries (channel axis 1 of "
                         f"x with shape {x.shape}), got shape {alpha.shape}")
    return (n, c, s), a


def prelu_forward(x, alpha, out=None):
    """PReLU ``out = x if x > 0 else α_c x`` (networks.md §2.2); channel axis 1; alpha
    (C,) per channel or (1,) shared (inputs with < 2 dims have one channel)."""
    kernel = "kernels.prelu_forward"
    _check(x, kernel, "x")
    shape3, a = _prelu_views(x, alpha, kernel)
    out = _output(out, kernel, x.shape, x.dtype)
    _act.prelu_forward(x.reshape(shape3), a, out.reshape(shape3), config.get_num_threads())
    return out


def prelu_backward(x, dy, alpha, out=None):
    """``(dx, dalpha)``: ``dx = dy ⊙ (1 if x > 0 else α_c)`` (D-04: α at 0) and
    ``dalpha_c = Σ dy·x·1[x ≤ 0]`` over all positions of channel c (all positions when
    alpha is shared); ``dalpha`` has alpha's shape. Deterministic summation order."""
    kernel = "kernels.prelu_backward"
    _check(x, kernel, "x")
    _check(dy, kernel, "dy", dtype=x.dtype, shape=x.shape)
    shape3, a = _prelu_views(x, alpha, kernel)
    dx = _output(out, kernel, x.shape, x.dtype)
    partial = np.empty(shape3[:2], dtype=x.dtype)
    dalpha = np.empty(a.shape, dtype=x.dtype)
    _act.prelu_backward(x.reshape(shape3), dy.reshape(shape3), a, dx.reshape(shape3),
                        partial, dalpha, config.get_num_threads())
    return dx, dalpha.reshape(alpha.shape)


# ----------------------------------------------------------------------------- softmax
def _rowwise(fn, kernel, z, axis, out):
    _check(z, kernel, "z")
    if z.ndim == 0:
        raise ShapeError(f"{kernel}: z must have at least 1 dimension, got shape ()")
    if not -z.ndim <= axis < z.ndim:
        raise ShapeError(f"{kernel}: axis {axis} is out of range for shape {z.shape}")
    out = _output(out, kernel, z.shape, z.dtype)
    axis %= z.ndim
    if axis == z.ndim - 1:
        k = z.shape[-1]
        fn(z.reshape(-1, k), out.reshape(-1, k), config.get_num_threads())
        return out
    zt = np.ascontiguousarray(np.moveaxis(z, axis, -1))
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
