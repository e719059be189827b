"""Element-wise activations: name/code and hyperparameter resolution,
``activation_forward`` / ``activation_backward``, the 1-bit mask route of the ReLU
family and PReLU (compiled kernels: ``corenet/_kernels/activations.pyx``).

Activation names and hyperparameters (spec networks.md §2.2, defaults as in the spec):
``identity, sigmoid, sigmoid_symmetric, tanh, scaled_tanh(a=1.7159, b=2/3), arctan,
softsign, relu, leaky_relu(alpha=0.01), generalized_relu(alpha=0.0), elu(alpha=1.0),
selu, softplus(beta=1.0), erf, gaussian, sign`` (forward only) and ``gelu`` (exact erf
form), ``silu`` (x·σ(x)), both as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from .. import config
from .._kernels import activations as _act
from .._reference import resolve_params
from ..errors import DTypeError, HyperparameterError, ShapeError
from ._common import _apart, _check, _output

ACTIVATION_CODES: dict[str, int] = dict(_act.CODES)
_NAME_OF_CODE = {}
for _n, _c in ACTIVATION_CODES.items():
    _NAME_OF_CODE.setdefault(_c, _n)


def _resolve(activation):
    """(name, code) from an activation name or integer code."""
    if isinstance(activation, (int, np.integer)) and not isinstance(activation, bool):
        if int(activation) not in _NAME_OF_CODE:
            raise ValueError(f"corenet.kernels: unknown activation code {activation!r}; "
                             f"codes are {sorted(_NAME_OF_CODE)}")
        return _NAME_OF_CODE[int(activation)], int(activation)
    if not isinstance(activation, str) or activation not in ACTIVATION_CODES:
        raise ValueError(f"corenet.kernels: unknown activation {activation!r}; "
                         f"known: {', '.join(sorted(ACTIVATION_CODES))}")
    return activation, ACTIVATION_CODES[activation]


def _params(name, kernel, params):
    """Validated hyperparameters as the kernel's (p1, p2)."""
    try:
        p = resolve_params(name, params)
    except TypeError as e:                 # unknown parameter names
        raise TypeError(f"{kernel}: {e}") from None
    for key, value in p.items():
        try:
            if isinstance(value, (str, bytes)):     # no silent parsing of "0.5"
                raise TypeError
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


_ARGS_CACHE: dict = {}


def _args(activation, params, what):
    """``(name, code, p1, p2)`` of an activation and its keyword hyperparameters, validated
    (errors name ``kernels.<what>[<name>]``) once per distinct (activation, params) and
    then taken from a small cache (the facade runs per layer call)."""
    try:
        key = (type(activation), activation, *sorted(params.items()))
        hit = _ARGS_CACHE.get(key)
    except TypeError:                      # unhashable / unorderable: validate, no cache
        key = hit = None
    if hit is None:
        name, code = _resolve(activation)
        hit = (name, code, *_params(name, f"kernels.{what}[{name}]", params))
        if key is not None:
            if len(_ARGS_CACHE) >= 256:
                _ARGS_CACHE.clear()
            _ARGS_CACHE[key] = hit
    return hit


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
    name, code, p1, p2 = _args(activation, params, "activation_forward")
    kernel = f"kernels.activation_forward[{name}]"
    _check(x, kernel, "x")
    out = _output(out, kernel, x.shape, x.dtype, inplace=(x,))
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
    name, code, p1, p2 = _args(activation, params, "activation_backward")
    kernel = f"kernels.activation_backward[{name}]"
    if code in _act.NOT_DIFFERENTIABLE:
        raise NotImplementedError(f"{kernel}: activation {name!r} is not differentiable; "
                                  f"it has no backward pass")
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
    dx = _output(out, kernel, dy.shape, dy.dtype, inplace=(dy, x, y))
    _act.activation_backward(code, src.reshape(-1), dy.reshape(-1), dx.reshape(-1), p1, p2,
                             from_y, config.get_num_threads())
    return dx


# ReLU family with a bit mask: the backward reads one bit per element instead of x.
MASK_ACTIVATIONS = ("relu", "leaky_relu", "generalized_relu")


def _mask_activation(activation, kernel_name, params):
    name, code, alpha, _ = _args(activation, params, kernel_name)
    kernel = f"kernels.{kernel_name}[{name}]"
    if name not in MASK_ACTIVATIONS:
        raise ValueError(f"{kernel}: only {', '.join(MASK_ACTIVATIONS)} have a mask route, "
                         f"got {name!r}")
    return code, kernel, alpha


def _mask(mask, kernel, n, writable):
    nbytes = (n + 7) // 8
    if mask is None and writable:
        return np.empty(nbytes, dtype=np.uint8)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8:
        raise DTypeError(f"{kernel}: mask must be a numpy.ndarray of dtype uint8, got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != (nbytes,) or not mask.flags.c_contiguous:
        raise ShapeError(f"{kernel}: mask must be a C-contiguous array of shape ({nbytes},) "
                         f"(one bit per element), got shape {mask.shape}")
    if writable and not mask.flags.writeable:
        raise ValueError(f"{kernel}: mask must be writable")
    return mask


def activation_forward_mask(activation, x, out=None, mask=None, **params):
    """``(out, mask)``: ``out = f(x)`` exactly as :func:`activation_forward`, for
    relu / leaky_relu / generalized_relu (``MASK_ACTIVATIONS``), plus ``mask``, one bit
    per element of x in C order: uint8 of shape ``((x.size + 7) // 8,)``, bit ``i % 8`` of
    byte ``i // 8`` (``numpy.packbits(..., bitorder="little")``) set where
    ``not x <= 0`` (f′ = 1; NaN included), clear where f′ = alpha (D-04). ``out`` may be
    x; ``mask`` (optional) is filled and returned.
    """
    code, kernel, alpha = _mask_activation(activation, "activation_forward_mask", params)
    _check(x, kernel, "x")
    out = _output(out, kernel, x.shape, x.dtype, inplace=(x,))
    mask_given = mask is not None
    mask = _mask(mask, kernel, x.size, True)
    if mask_given:
        _apart(mask, kernel, x, out, name="mask")
    _act.mask_forward(code, x.reshape(-1), out.reshape(-1), mask, alpha,
                      config.get_num_threads())
    return out, mask


def activation_backward_mask(activation, mask, dy, out=None, **params):
    """``dx = dy ⊙ f′(x)`` from the ``mask`` of :func:`activation_forward_mask`:
    ``dy`` where the bit is set, ``alpha·dy`` (relu: ``0·dy``) where it is clear; the same
    values, bit for bit, as :func:`activation_backward` from x, at 1/32 (float32) of the
    bytes of x. ``out`` may be dy."""
    code, kernel, alpha = _mask_activation(activation, "activation_backward_mask", params)
    _check(dy, kernel, "dy")
    mask = _mask(mask, kernel, dy.size, False)
    dx = _output(out, kernel, dy.shape, dy.dtype, inplace=(dy,), apart=(mask,))
    _act.mask_backward(mask, dy.reshape(-1), dx.reshape(-1), alpha, config.get_num_threads())
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
    out = _output(out, kernel, x.shape, x.dtype, inplace=(x,), apart=(alpha,))
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
    dx = _output(out, kernel, x.shape, x.dtype, inplace=(x, dy), apart=(alpha,))
    partial = np.empty(shape3[:2], dtype=x.dtype)
    dalpha = np.empty(a.shape, dtype=x.dtype)
    _act.prelu_backward(x.reshape(shape3), dy.reshape(shape3), a, dx.reshape(shape3),
                        partial, dalpha, config.get_num_threads())
    return dx, dalpha.reshape(alpha.shape)
