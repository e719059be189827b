"""Public facade of the compiled element-wise, softmax and cross-entropy kernels.

Every function validates its arrays here, in Python, before the compiled code runs
without the GIL: float32/float64 only, one dtype for all arrays (no silent casts,
README §3), C-contiguous, matching shapes, writable outputs, labels in 0..K-1. Bad input
raises an exception from :mod:`corenet.errors` (``DTypeError``, ``ShapeError``) or
``ValueError`` naming the kernel, what it expected and what it received.

Outputs can be passed with ``out=`` (same shape and dtype, C-contiguous) so layers reuse
buffers; element-wise kernels allow ``out`` to be an input. The thread count comes from
:func:`corenet.config.get_num_threads`; small arrays run serially (activations: below
65,536 elements, 262,144 for the memory-bound ones; 262,144 and 1,048,576 under
``OMP_WAIT_POLICY=PASSIVE``; see each kernel module).
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

__all__ = ["ACTIVATION_CODES", "activation_forward", "activation_backward",
           "MASK_ACTIVATIONS", "activation_forward_mask", "activation_backward_mask",
           "prelu_forward",
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
    dx = _output(out, kernel, dy.shape, dy.dtype)
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
    out = _output(out, kernel, x.shape, x.dtype)
    mask = _mask(mask, kernel, x.size, True)
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
    dx = _output(out, kernel, dy.shape, dy.dtype)
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


# ---- pooling ----
# Max / average pooling, max-unpooling and nearest-neighbour upsampling (convolution.md
# §5-6, D-20, D-70, D-71) on (N, C, H, W) maps; 1-D layers call these with H = 1.
from typing import NamedTuple  # noqa: E402

from ._kernels import pool as _pool  # noqa: E402

__all__ += ["PoolGeometry", "pool2d_geometry", "max_pool2d_forward", "max_pool2d_backward",
            "avg_pool2d_forward", "avg_pool2d_backward", "max_unpool2d_forward",
            "max_unpool2d_backward", "upsample_nearest2d_forward",
            "upsample_nearest2d_backward"]
UPSAMPLE_MODES = ("copy", "avg_transpose")


class PoolGeometry(NamedTuple):
    """Normalised window geometry: ``kernel_size (kh, kw)``, ``stride (sh, sw)``,
    ``padding ((top, bottom), (left, right))`` and ``output_size (H_out, W_out)``."""
    kernel_size: tuple
    stride: tuple
    padding: tuple
    output_size: tuple


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _int_pair(value, component, name, minimum):
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = (value, value) if _is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(map(_is_int, pair))
            and all(v >= minimum for v in pair)):
        raise HyperparameterError(f"{component}: {name} must be an int >= {minimum} or a pair "
                                  f"of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(padding, kernel_size, stride, component):
    """((top, bottom), (left, right)) from an int, (ph, pw), ((t, b), (l, r)), "valid"
    or "same" (stride 1 only: total k − 1, the extra zero at the bottom/right, D-69)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise HyperparameterError(f"{component}: padding='same' needs stride 1, got "
                                          f"stride {stride}")
            return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_size)
        raise HyperparameterError(f"{component}: padding must be 'valid', 'same', an int or "
                                  f"pairs, got {padding!r}")
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        pads = tuple(_int_pair(p, component, "padding (lo, hi)", 0) for p in padding)
    else:
        ph, pw = _int_pair(padding, component, "padding", 0)
        pads = ((ph, ph), (pw, pw))
    return pads


def pool2d_geometry(input_hw, kernel_size=2, stride=None, padding=0, *,
                    component="kernels.pool2d") -> PoolGeometry:
    """Validate a pooling window for an input of spatial size ``input_hw`` (H, W).

    ``kernel_size`` and ``stride`` (default: kernel_size) are ints or pairs; ``padding``
    is an int, a pair, explicit ``((top, bottom), (left, right))``, ``"valid"`` or
    ``"same"``. Each padding must be ≤ kernel/2 (every window then holds a real
    element). Output size (convolution.md §2, d = 1):
    ``H_out = ⌊(H + P_top + P_bottom − kh)/sh⌋ + 1``; ``H_out < 1`` raises ShapeError.
    """
    kh, kw = _int_pair(kernel_size, component, "kernel_size", 1)
    st = (kh, kw) if stride is None else _int_pair(stride, component, "stride", 1)
    pads = _padding(padding, (kh, kw), st, component)
    for (lo, hi), k, axis in zip(pads, (kh, kw), ("rows", "columns")):
        if 2 * lo > k or 2 * hi > k:
            raise HyperparameterError(f"{component}: padding of the {axis} must be <= "
                                      f"kernel_size/2 = {k / 2:g}, got ({lo}, {hi})")
    h, w = (int(s) for s in input_hw)
    if h < 1 or w < 1:
        raise ShapeError(f"{component}: the input has an empty spatial size {(h, w)}")
    out = tuple((size + lo + hi - k) // s + 1 if size + lo + hi >= k else 0
                for size, (lo, hi), k, s in zip((h, w), pads, (kh, kw), st))
    if min(out) < 1:
        raise ShapeError(f"{component}: the {kh}x{kw} window is larger than the padded input "
                         f"({h}+{pads[0][0] + pads[0][1]}) x ({w}+{pads[1][0] + pads[1][1]}); "
                         f"output size would be {out}")
    return PoolGeometry((kh, kw), st, pads, out)


def _check4(x, kernel, name, dtype=None):
    _check(x, kernel, name, dtype=dtype)
    if x.ndim != 4:
        raise ShapeError(f"{kernel}: {name} must have shape (N, C, H, W), got {x.shape}")
    return x


def _switches(s, kernel, shape, name="switches"):
    if not isinstance(s, np.ndarray):
        raise DTypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(s).__name__}")
    if s.dtype != np.int64:
        raise DTypeError(f"{kernel}: {name} must have dtype int64, got {s.dtype}")
    if s.shape != tuple(shape):
        raise ShapeError(f"{kernel}: {name} must have shape {tuple(shape)}, got {s.shape}")
    if not s.flags.c_contiguous:
        raise ValueError(f"{kernel}: {name} must be C-contiguous, got strides {s.strides}")
    return s


def _input_shape(shape, kernel, dy_shape):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ShapeError(f"{kernel}: input_shape must be (N, C, H, W), got {shape!r}") from None
    if len(shape) != 4 or shape[:2] != tuple(dy_shape[:2]):
        raise ShapeError(f"{kernel}: input_shape must be (N, C, H, W) with N, C = "
                         f"{tuple(dy_shape[:2])} of dy, got {shape}")
    return shape


def _planes(a):
    """(N, C, H, W) -> (N·C, H, W) view."""
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def max_pool2d_forward(x, kernel_size=2, stride=None, padding=0, out=None,
                       switches_out=None):
    """Max pooling (convolution.md §5.1): ``(y, switches)`` for x (N, C, H, W).

    y (N, C, H_out, W_out) holds each window's maximum; switches (int64, same shape) the
    flat index into the H·W plane of the unpadded input of the first maximum in
    row-major window order, or of the first NaN (D-20). Padded positions act as −∞.
    Geometry as in :func:`pool2d_geometry`.
    """
    kernel = "kernels.max_pool2d_forward"
    _check4(x, kernel, "x")
    g = pool2d_geometry(x.shape[2:], kernel_size, stride, padding, component=kernel)
    shape = x.shape[:2] + g.output_size
    y = _output(out, kernel, shape, x.dtype)
    if switches_out is None:
        sw = np.empty(shape, dtype=np.int64)
    else:
        sw = _switches(switches_out, kernel, shape, "switches_out")
    (kh, kw), (sth, stw), ((pt, _), (pl, _)) = g.kernel_size, g.stride, g.padding
    _pool.max_pool_forward(_planes(x), _planes(y), _planes(sw), kh, kw, sth, stw, pt, pl,
                           config.get_num_threads())
    return y, sw


def max_pool2d_backward(dy, switches, input_shape, out=None):
    """``dX`` (``input_shape``): zero, then ``dX.flat_plane[switch] += dY`` for every output
    position (overlapping windows accumulate, fixed row-major order; D-20)."""
    kernel = "kernels.max_pool2d_backward"
    _check4(dy, kernel, "dy")
    _switches(switches, kernel, dy.shape)
    shape = _input_shape(input_shape, kernel, dy.shape)
    dx = _output(out, kernel, shape, dy.dtype)
    bad = _pool.max_pool_backward(_planes(dy), _planes(switches), _planes(dx),
                                  config.get_num_threads())
    if bad:
        raise ValueError(f"{kernel}: {bad} switch(es) outside 0..{shape[2] * shape[3] - 1} "
                         f"(the H·W plane of input_shape {shape})")
    return dx


def avg_pool2d_forward(x, kernel_size=2, stride=None, padding=0, count_include_pad=True,
                       out=None):
    """Average pooling (convolution.md §5.2): ``Y = (1/m) Σ_window x_pad`` with m = kh·kw
    (``count_include_pad=True``, D-70) or the number of in-bounds elements."""
    kernel = "kernels.avg_pool2d_forward"
    _check4(x, kernel, "x")
    g = pool2d_geometry(x.shape[2:], kernel_size, stride, padding, component=kernel)
    y = _output(out, kernel, x.shape[:2] + g.output_size, x.dtype)
    (kh, kw), (sth, stw), ((pt, _), (pl, _)) = g.kernel_size, g.stride, g.padding
    _pool.avg_pool_forward(_planes(x), _planes(y), kh, kw, sth, stw, pt, pl,
                           bool(count_include_pad), config.get_num_threads())
    return y


def avg_pool2d_backward(dy, input_shape, kernel_size=2, stride=None, padding=0,
                        count_include_pad=True, out=None):
    """Average-pooling backward: every in-bounds element of a window receives ``dY/m``
    (accumulated over overlapping windows). Returns dX of ``input_shape``."""
    kernel = "kernels.avg_pool2d_backward"
    _check4(dy, kernel, "dy")
    shape = _input_shape(input_shape, kernel, dy.shape)
    g = pool2d_geometry(shape[2:], kernel_size, stride, padding, component=kernel)
    if dy.shape[2:] != g.output_size:
        raise ShapeError(f"{kernel}: dy must have shape {shape[:2] + g.output_size} for "
                         f"input_shape {shape}, got {dy.shape}")
    dx = _output(out, kernel, shape, dy.dtype)
    (kh, kw), (sth, stw), ((pt, _), (pl, _)) = g.kernel_size, g.stride, g.padding
    _pool.avg_pool_backward(_planes(dy), _planes(dx), kh, kw, sth, stw, pt, pl,
                            bool(count_include_pad), config.get_num_threads())
    return dx


def max_unpool2d_forward(x, switches, output_size, out=None):
    """Max-unpooling (convolution.md §6.1): Y (N, C, H_out, W_out) is zero except
    ``Y.flat_plane[switch] = X``; when switches repeat the last entry in row-major order
    wins. Every switch must lie in ``0 … H_out·W_out − 1``."""
    kernel = "kernels.max_unpool2d_forward"
    _check4(x, kernel, "x")
    _switches(switches, kernel, x.shape)
    ho, wo = _int_pair(output_size, kernel, "output_size", 1)
    y = _output(out, kernel, x.shape[:2] + (ho, wo), x.dtype)
    bad = _pool.max_unpool_forward(_planes(x), _planes(switches), _planes(y),
                                   config.get_num_threads())
    if bad:
        raise ValueError(f"{kernel}: {bad} switch(es) outside 0..{ho * wo - 1} (the plane of "
                         f"output_size {(ho, wo)})")
    return y


def max_unpool2d_backward(dy, switches, out=None):
    """``dX[n, c, i, j] = dY.flat_plane[switch[n, c, i, j]]`` (dX has switches' shape).

    When switches repeat (overlapping pools), only the entry the forward pass wrote last
    (row-major order) receives the gradient and the overwritten ones get 0: the exact
    gradient of :func:`max_unpool2d_forward` (convolution.md §6.1 states the gather for
    every entry, which is the gradient only when switches are distinct)."""
    kernel = "kernels.max_unpool2d_backward"
    _check4(dy, kernel, "dy")
    if not isinstance(switches, np.ndarray) or switches.ndim != 4 \
            or switches.shape[:2] != dy.shape[:2]:
        raise ShapeError(f"{kernel}: switches must be (N, C, H_p, W_p) with N, C = "
                         f"{dy.shape[:2]} of dy, got {getattr(switches, 'shape', switches)}")
    _switches(switches, kernel, switches.shape)
    dx = _output(out, kernel, switches.shape, dy.dtype)
    scratch = np.empty((dy.shape[0] * dy.shape[1], dy.shape[2] * dy.shape[3]), np.uint8)
    bad = _pool.max_unpool_backward(_planes(dy), _planes(switches), _planes(dx), scratch,
                                    config.get_num_threads())
    if bad:
        raise ValueError(f"{kernel}: {bad} switch(es) outside 0..{dy.shape[2] * dy.shape[3] - 1}"
                         f" (the plane of dy {dy.shape})")
    return dx


def _upsample_args(scale_factor, mode, kernel):
    sh, sw = _int_pair(scale_factor, kernel, "scale_factor", 1)
    if mode not in UPSAMPLE_MODES:
        raise HyperparameterError(f"{kernel}: mode must be one of {UPSAMPLE_MODES}, got "
                                  f"{mode!r}")
    return sh, sw, (1.0 / (sh * sw) if mode == "avg_transpose" else 1.0)


def upsample_nearest2d_forward(x, scale_factor=2, mode="copy", out=None):
    """Nearest-neighbour copy (convolution.md §6.2): ``Y[n, c, i, j] = X[n, c, ⌊i/sh⌋,
    ⌊j/sw⌋]`` (transpose of sum pooling); ``mode="avg_transpose"`` also multiplies by
    ``1/(sh·sw)`` (transpose of average pooling). Y: (N, C, H·sh, W·sw)."""
    kernel = "kernels.upsample_nearest2d_forward"
    _check4(x, kernel, "x")
    sh, sw, scale = _upsample_args(scale_factor, mode, kernel)
    n, c, h, w = x.shape
    y = _output(out, kernel, (n, c, h * sh, w * sw), x.dtype)
    _pool.upsample_nearest_forward(_planes(x), _planes(y), sh, sw, scale,
                                   config.get_num_threads())
    return y


def upsample_nearest2d_backward(dy, scale_factor=2, mode="copy", out=None):
    """Transpose of :func:`upsample_nearest2d_forward`: ``dX`` = sums of dY over each
    ``sh×sw`` block (times ``1/(sh·sw)`` for ``avg_transpose``)."""
    kernel = "kernels.upsample_nearest2d_backward"
    _check4(dy, kernel, "dy")
    sh, sw, scale = _upsample_args(scale_factor, mode, kernel)
    n, c, ho, wo = dy.shape
    if ho % sh or wo % sw:
        raise ShapeError(f"{kernel}: dy's spatial size {(ho, wo)} is not a multiple of "
                         f"scale_factor {(sh, sw)}")
    dx = _output(out, kernel, (n, c, ho // sh, wo // sw), dy.dtype)
    _pool.upsample_nearest_backward(_planes(dy), _planes(dx), sh, sw, scale,
                                    config.get_num_threads())
    return dx


# ---- convolution ----
# Convolution and transposed convolution (spec convolution.md §1-4, D-02, D-18, D-19, D-66,
# D-69). Layouts: x (N, C, H, W) / (N, C, L); conv weight (C_out, C_in/groups, kh, kw);
# transposed-conv weight (C_in, C_out/groups, kh, kw). Geometry arguments: ``stride`` and
# ``dilation`` an int or one int per spatial axis; ``padding`` an int, one int per axis,
# explicit (lo, hi) per axis, or "valid" / "same" / "full" (strings: stride 1 only; "same"
# puts the extra zero bottom/right, D-69). All results are deterministic and independent
# of the thread count. ``workspace`` (a :class:`Workspace`) keeps the im2col buffers
# between calls; without it they are allocated per call.

import contextlib  # noqa: E402
import threading  # noqa: E402
from typing import NamedTuple  # noqa: E402

from ._kernels import conv as _conv  # noqa: E402
from ._kernels import conv_direct as _direct  # noqa: E402

_CONV_CHUNKS = 16            # fixed sample chunks of weight gradients (thread-independent)
_CONV_PARTIAL_MAX = 1 << 24  # elements of chunk partials we accept before using fewer chunks
_CONV_SERIAL_FLOPS = 2e6     # below this a pass runs on one thread
_INT_MAX = 2 ** 31 - 1
_CONV_TILE = 1 << 20          # im2col tile: about this many elements per column buffer
_CONV_BLOCK = 1 << 18         # block mode: samples per tile so cols has about this many
_CONV_DIRECT_MIN_HW = 256     # 1×1 convs with at least this many pixels stay per sample
_CONV_SHIFT_MIN = 16          # stride-1 convs with C/G, O/G >= this and
_CONV_SHIFT_WIDEN = 1.15      # (Wo + d(kw - 1))/Wo <= this use the shift method
_CONV_DIRECT = True           # use the direct float32 loops where they apply
_DIRECT_WIDEN = 1.5           # direct float32 loops: (Wo + d(kw - 1))/Wo <= this
_DIRECT_BLOCK = 1 << 19       # weight gradients: padded samples per block, this many floats
_DIRECT_CHUNKS = 8            # weight gradients: fixed sample chunks (partial sums)


class Workspace:
    """Scratch memory reused across calls of the convolution kernels (one per layer).

    ``get(key, size, dtype)`` returns a 1-D buffer of at least ``size`` elements; a buffer
    only grows, so a layer called with one batch shape allocates once.
    """

    def __init__(self):
        self._buffers = {}

    def get(self, key, size, dtype):
        dt = np.dtype(dtype)
        buf = self._buffers.get((key, dt))
        if buf is None or buf.size < size:
            buf = np.empty(max(int(size), 1), dtype=dt)
            self._buffers[(key, dt)] = buf
        return buf

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())

    def clear(self) -> None:
        self._buffers.clear()


def _conv_int(v, kernel, name, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise HyperparameterError(f"{kernel}: {name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _conv_tuple(value, nd, kernel, name, minimum=1):
    """An int or a sequence of ``nd`` ints as a tuple of ``nd`` ints >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (_conv_int(value, kernel, name, minimum),) * nd
    if isinstance(value, (tuple, list)) and len(value) == nd:
        return tuple(_conv_int(v, kernel, name, minimum) for v in value)
    raise HyperparameterError(f"{kernel}: {name} must be an int or {nd} ints, got {value!r}")


def conv_padding(padding, kernel_size, stride=1, dilation=1, nd=2, kernel="conv"):
    """Normalise ``padding`` to ``((lo, hi), ...)`` per spatial axis (convolution.md §2).

    ``padding``: int (all sides), ``nd`` ints (symmetric per axis; for ``nd == 1`` a pair
    is ``(lo, hi)``), ``nd`` pairs ``(lo, hi)``, or ``"valid"`` (0), ``"same"`` (total
    ``d(k − 1)``, ``lo = ⌊T/2⌋``, extra zero bottom/right, D-69) or ``"full"``
    (``d(k − 1)`` each side); strings other than "valid" need stride 1.
    """
    k = _conv_tuple(kernel_size, nd, kernel, "kernel_size")
    s = _conv_tuple(stride, nd, kernel, "stride")
    d = _conv_tuple(dilation, nd, kernel, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding not in ("same", "full"):
            raise HyperparameterError(f"{kernel}: padding must be an int, a tuple, 'valid', "
                                      f"'same' or 'full', got {padding!r}")
        if any(v != 1 for v in s):
            raise HyperparameterError(f"{kernel}: padding={padding!r} needs stride 1, "
                                      f"got stride {s}")
        tot = [dd * (kk - 1) for kk, dd in zip(k, d)]
        if padding == "full":
            return tuple((t, t) for t in tot)
        return tuple((t // 2, t - t // 2) for t in tot)
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = _conv_int(padding, kernel, "padding", 0)
        return ((p, p),) * nd
    if isinstance(padding, (tuple, list)):
        if nd == 1 and len(padding) == 1 and not isinstance(padding[0], (tuple, list)):
            p = _conv_int(padding[0], kernel, "padding", 0)
            return ((p, p),)
        if nd == 1 and len(padding) == 2 and not isinstance(padding[0], (tuple, list)):
            return (tuple(_conv_int(v, kernel, "padding", 0) for v in padding),)
        if len(padding) == nd:
            out = []
            for v in padding:
                if isinstance(v, (tuple, list)) and len(v) == 2:
                    out.append(tuple(_conv_int(u, kernel, "padding", 0) for u in v))
                else:
                    p = _conv_int(v, kernel, "padding", 0)
                    out.append((p, p))
            return tuple(out)
    raise HyperparameterError(f"{kernel}: padding must be an int, {nd} ints, {nd} (lo, hi) "
                              f"pairs, 'valid', 'same' or 'full', got {padding!r}")


def conv_output_size(size, kernel_size, stride=1, padding=(0, 0), dilation=1):
    """``⌊(H + P_lo + P_hi − d(k − 1) − 1)/S⌋ + 1`` for one axis (D-19); may be < 1."""
    lo, hi = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    return (size + lo + hi - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel_size, stride=1, padding=(0, 0), dilation=1,
                               output_padding=0):
    """``(H − 1)S − P_lo − P_hi + d(k − 1) + output_padding + 1`` (convolution.md §4)."""
    lo, hi = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    return (size - 1) * stride - lo - hi + dilation * (kernel_size - 1) + output_padding + 1


class _ConvArgs(NamedTuple):
    stride: tuple
    padding: tuple      # ((lo, hi), (lo, hi))
    dilation: tuple
    groups: int


def _conv_args(kernel, nd, ksize, stride, padding, dilation, groups, transpose=False):
    """Normalised 2-D geometry (1-D problems get a leading axis of size 1)."""
    s = _conv_tuple(stride, nd, kernel, "stride")
    d = _conv_tuple(dilation, nd, kernel, "dilation")
    if transpose and isinstance(padding, str) and padding != "valid":
        raise HyperparameterError(f"{kernel}: padding must be an int, a tuple or 'valid' for "
                                  f"a transposed convolution, got {padding!r}")
    p = conv_padding(padding, ksize[-nd:], s, d, nd, kernel)
    g = _conv_int(groups, kernel, "groups", 1)
    if nd == 1:
        s, p, d = (1,) + s, ((0, 0),) + p, (1,) + d
    return _ConvArgs(s, p, d, g)


def _conv_check(a, kernel, name, ndim, dtype=None):
    _check(a, kernel, name, dtype=dtype)
    if a.ndim != ndim:
        lay = {3: "(N, C, L)", 4: "(N, C, H, W)"}.get(ndim, f"{ndim} dimensions")
        if name in ("w", "weight"):
            lay = f"{ndim} dimensions"
        raise ShapeError(f"{kernel}: {name} must have shape {lay}, got {a.shape}")
    return a


def _conv_out(out, kernel, shape, dtype, *inputs):
    y = _output(out, kernel, shape, dtype)
    if out is not None and any(a is not None and np.may_share_memory(y, a) for a in inputs):
        raise ValueError(f"{kernel}: out must not overlap an input")
    return y


def _conv_bias(b, kernel, n, dtype, name="b"):
    if b is None:
        return np.empty(0, dtype=dtype)
    _check(b, kernel, name, dtype=dtype, shape=(n,))
    return b


def _conv_channels(kernel, c_in, w_in, c_out, groups, what="x"):
    """Check C_in = groups · (weight input channels) and groups | C_out."""
    if min(c_in, w_in, c_out) < 1:
        raise ShapeError(f"{kernel}: channel counts must be >= 1 (input {c_in}, weight "
                         f"{w_in} per group, output {c_out})")
    if c_in != w_in * groups:
        raise ShapeError(f"{kernel}: {what} has {c_in} channels but the weight expects "
                         f"{w_in} × groups={groups} = {w_in * groups}")
    if c_out % groups:
        raise ShapeError(f"{kernel}: {c_out} output channels are not divisible by "
                         f"groups={groups}")


def _conv_out_hw(kernel, hw, ksize, a):
    out = tuple(conv_output_size(hw[i], ksize[i], a.stride[i], a.padding[i], a.dilation[i])
                for i in range(2))
    if min(out) < 1:
        raise ShapeError(f"{kernel}: the kernel (size {tuple(ksize)}, dilation "
                         f"{a.dilation}) is larger than the padded input (size {tuple(hw)}, "
                         f"padding {a.padding}): output size {out} < 1")
    return out


def _conv_threads(flops, items):
    nt = config.get_num_threads() if flops >= _CONV_SERIAL_FLOPS else 1
    return max(1, min(nt, items))


def _conv_chunks(n, wsize):
    return max(1, min(n, _CONV_CHUNKS, _CONV_PARTIAL_MAX // max(wsize, 1)))


class _BlasThreads:
    """Thread count of the OpenBLAS behind ``scipy.linalg.cython_blas``, set per call.

    The conv passes call BLAS from inside their own ``prange`` threads; a multi-threaded
    OpenBLAS would then start its own threads on top (oversubscription: measured 10-100×
    slower on 2 cores), and a threaded OpenBLAS may also split a GEMM's inner dimension,
    which would make weight gradients depend on the thread count. ``limit(1)`` sets
    OpenBLAS to one thread for the duration of a pass and restores the previous count;
    the passes get their parallelism from the batch alone. The library is found among the loaded shared objects
    (``/proc/self/maps``) by its exported ``scipy_openblas_set_num_threads`` (scipy wheels)
    or ``openblas_set_num_threads``; without one (other BLAS, other OS) nothing is changed.
    """

    def __init__(self, suffix=""):
        self._suffix = suffix    # "64_": the ILP64 OpenBLAS inside NumPy's wheel
        self._lib = False        # False: not searched yet; None: not found
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None

    def _find(self):
        import ctypes
        self._lib = None
        try:
            with open("/proc/self/maps") as fh:
                paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower()}
        except OSError:
            return
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas", "openblas"):
                fs = getattr(lib, prefix + "_set_num_threads" + self._suffix, None)
                fg = getattr(lib, prefix + "_get_num_threads" + self._suffix, None)
                if fs is not None and fg is not None:
                    fs.argtypes, fs.restype, fg.restype = [ctypes.c_int], None, ctypes.c_int
                    self._lib = (fg, fs)
                    return

    @contextlib.contextmanager
    def limit(self, n):
        if self._lib is False:
            self._find()
        if self._lib is None:
            yield
            return
        get, set_ = self._lib
        with self._lock:
            if self._depth == 0:
                self._saved = get()
            self._depth += 1
            if get() != n:
                set_(n)
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and get() != self._saved:
                    set_(self._saved)


_BLAS = _BlasThreads()
_NUMPY_BLAS = _BlasThreads("64_")
_SMALL_GEMM = (1 << 18, 1 << 23)    # m·n·k window of matmul's single-threaded BLAS


def matmul(a, b, out=None):
    """``a @ b`` (NumPy's matmul) for the products of corenet's layers. Products of
    m·n·k in ``_SMALL_GEMM`` run with one BLAS thread: OpenBLAS would split them over its
    threads (its threshold is m·n·k > 2¹⁸), whose workers then spin for a while after the
    call, competing with the kernels' OpenMP threads for the cores (the 2-thread LeNet-5
    step ran 3-10× slower on a loaded 2-core machine). Smaller products are single-threaded
    inside OpenBLAS anyway; larger ones keep the BLAS threads."""
    mnk = a.shape[-2] * a.shape[-1] * b.shape[-1] if a.ndim >= 2 and b.ndim >= 2 else 0
    if _SMALL_GEMM[0] < mnk < _SMALL_GEMM[1]:
        with _NUMPY_BLAS.limit(1):
            return np.matmul(a, b, out=out)
    return np.matmul(a, b, out=out)


def _conv_ws(workspace, key, size, dtype):
    if workspace is None:
        return np.empty(max(size, 1), dtype=dtype)
    if not isinstance(workspace, Workspace):
        raise TypeError(f"kernels: workspace must be a corenet.kernels.Workspace, got "
                        f"{type(workspace).__name__}")
    return workspace.get(key, size, dtype)


def _conv_limits(kernel, *dims):
    if max(dims) > _INT_MAX:
        raise ShapeError(f"{kernel}: a matrix dimension exceeds the BLAS limit {_INT_MAX}")


def _conv_nonempty(kernel, w_shape, x_shape):
    if min(w_shape) < 1 or min(x_shape) < 1:
        raise ShapeError(f"{kernel}: empty weight {tuple(w_shape)} or input (C, H, W) = "
                         f"{tuple(x_shape)}; every axis but the batch must be >= 1")


def _empty4(dtype):
    return np.empty((0, 0, 0, 0), dtype=dtype)


def _use_shift(a, cg, og, wo, kw):
    """The shift method for stride-1 convs with wide groups whose scratch columns add
    little work; im2col otherwise."""
    wide = wo + a.dilation[1] * (kw - 1)
    return (a.stride == (1, 1) and min(cg, og) >= _CONV_SHIFT_MIN
            and wide <= _CONV_SHIFT_WIDEN * wo)


def _repack(w, workspace):
    """W (O, C/G, kh, kw) as Wt (kh·kw, O, C/G) for the shift method."""
    o, cg, kh, kw = w.shape
    wt = _conv_ws(workspace, "wt", w.size, w.dtype)[:w.size].reshape(kh * kw, o, cg)
    np.copyto(wt.reshape(kh, kw, o, cg), w.transpose(2, 3, 0, 1))
    return wt


def _partials(workspace, items, size, dtype):
    if items == 0:
        return np.empty((0, 0), dtype)
    return _conv_ws(workspace, "partial", items * size, dtype)[:items * size] \
        .reshape(items, size)


def _finish_dw(partial, dw, shift, workspace):
    """dw = Σ_chunks partial (in chunk order); shift partials are in the Wt layout."""
    nt = config.get_num_threads()
    if not shift:
        _conv.sum_rows(partial, dw.reshape(-1), nt)
        return
    o, cg, kh, kw = dw.shape
    dwt = _conv_ws(workspace, "dwt", dw.size, dw.dtype)[:dw.size]
    _conv.sum_rows(partial, dwt, nt)
    np.copyto(dw, dwt.reshape(kh, kw, o, cg).transpose(2, 3, 0, 1))


def _use_direct(dtype, a, out_wo, kw):
    """The direct float32 loops of conv_direct.pyx (AVX-512F / AVX2 present, stride 1,
    one group, scratch columns of the wide grid at most _DIRECT_WIDEN of the output)."""
    return (_CONV_DIRECT and _direct.isa() > 0 and dtype == np.float32 and a.groups == 1
            and a.stride == (1, 1) and out_wo + a.dilation[1] * (kw - 1) <= _DIRECT_WIDEN * out_wo)


def _direct_weight_grad(x, gy, dw, ksize, a, workspace, nt):
    """dw (O, C, kh, kw) = corr(x, gy) by the direct loops, summed per fixed sample chunk
    (in chunk order) so the result does not depend on the thread count."""
    n, c, h, wd = x.shape
    o, (kh, kw) = gy.shape[1], ksize
    ho, wo = gy.shape[2:]
    pad, dil = (a.padding[0][0], a.padding[1][0]), a.dilation
    one = _direct.workspace_size(c, h, wd, o, ho, wo, kh, kw, pad, dil, 1, 1)
    chunks = max(1, min(_DIRECT_CHUNKS, _conv_chunks(n, dw.size)))
    block = max(1, min(-(-n // chunks), _DIRECT_BLOCK // one))
    nt = max(1, min(nt, chunks))
    ws = _conv_ws(workspace, "direct", one * block * nt, x.dtype)
    partial = _partials(workspace, chunks, dw.size, x.dtype)
    _direct.weight_grad_pass(x, gy, partial, ws, (kh, kw), pad, dil, block, nt)
    dwt = _conv_ws(workspace, "dwt", dw.size, dw.dtype)[:dw.size]
    _conv.sum_rows(partial, dwt, nt)
    np.copyto(dw.reshape(o, c, kh, kw), dwt.reshape(c, kh, kw, o).transpose(3, 0, 1, 2))


def _direct_forward(x, wt, b, y, pad, dil, workspace, nt):
    """y = conv(x) + b by the direct loops; wt is the weight repacked as (C, kh, kw, O)."""
    n, c, h, wd = x.shape
    o, ho, wo = y.shape[1:]
    kh, kw = wt.shape[1:3]
    nt = max(1, min(nt, n))
    ws = _conv_ws(workspace, "direct", _direct.workspace_size(
        c, h, wd, o, ho, wo, kh, kw, pad, dil, 1, nt), x.dtype)
    _direct.forward_pass(x, wt, b, y, ws, pad, dil, nt)


def _direct_repack(w, workspace, flip=False):
    """W (O, C, kh, kw) as (C, kh, kw, O); flipped: as (O, kh, kw, C) with the kernel
    rotated by 180° (the weight of the input-gradient correlation)."""
    o, c, kh, kw = w.shape
    if flip:
        wt = _conv_ws(workspace, "wflip", w.size, w.dtype)[:w.size].reshape(o, kh, kw, c)
        np.copyto(wt, w[:, :, ::-1, ::-1].transpose(0, 2, 3, 1))
    else:
        wt = _conv_ws(workspace, "wt", w.size, w.dtype)[:w.size].reshape(c, kh, kw, o)
        np.copyto(wt, w.transpose(1, 2, 3, 0))
    return wt


def _is_dense(a, in_hw, out_hw, kh, kw):
    """The kernel covers the whole unpadded input and the output is 1×1 (LeNet-5's C5):
    the convolution is a matrix product over the batch."""
    return (a.groups == 1 and tuple(out_hw) == (1, 1) and tuple(in_hw) == (kh, kw)
            and a.dilation == (1, 1) and a.padding == ((0, 0), (0, 0)))


def _dense_pass(x, w, b, y, gy, dw, dx, bias_dx):
    """Dense form of a convolution with a 1×1 output (see _is_dense), by NumPy's matmul:
    y = X·Wᵀ + b, dW = Gᵀ·X, dx = G·W (+ bias_dx per input channel), X (N, C·kh·kw)."""
    n, o = (x if x is not None else gy).shape[0], w.shape[0]
    x2, w2 = (None if x is None else x.reshape(n, -1)), w.reshape(o, -1)
    if y is not None:
        y2 = y.reshape(n, o)
        matmul(x2, w2.T, out=y2)
        if b is not None and b.size:
            y2 += b
    if dw is not None:
        matmul(gy.reshape(n, o).T, x2, out=dw.reshape(o, -1))
    if dx is not None:
        dx2 = dx.reshape(n, -1)
        matmul(gy.reshape(n, o), w2, out=dx2)
        if bias_dx is not None and bias_dx.size:
            dx.reshape(n, bias_dx.size, -1)[...] += bias_dx[:, None]


def _conv_tiling(n, c, kh, kw, in_hw, out_hw, stride, pad):
    """(tile, nb) of the im2col passes: ``tile`` output rows per column buffer of one
    sample, or — when a whole sample's columns are small — blocks of ``nb`` > 1 samples
    per buffer (one GEMM over the block). Depends on the shapes only, never on the thread
    count (so results do not either)."""
    ho, wo = out_hw
    per_sample = c * kh * kw * ho * wo
    direct = kh == kw == 1 and stride == (1, 1) and pad == (0, 0) and tuple(in_hw) == out_hw
    tile = _conv.tile_rows(c, kh, kw, ho, wo, _CONV_TILE)
    nb = min(n, _CONV_BLOCK // max(per_sample, 1))
    if tile < ho or nb < 2 or (direct and ho * wo >= _CONV_DIRECT_MIN_HW):
        nb = 1
    return tile, nb


def _gemm_plan(n, c, kh, kw, in_hw, out_hw, a, wsize, want_dw):
    """``(tile, nb, items)`` of the GEMM passes: the tiling of _conv_tiling and the work
    items — weight-gradient chunks (at least one block of samples each), else one item
    per block (or per sample)."""
    tile, nb = _conv_tiling(n, c, kh, kw, in_hw, out_hw, a.stride,
                            (a.padding[0][0], a.padding[1][0]))
    blocks = -(-n // nb)
    return tile, nb, (_conv_chunks(blocks, wsize) if want_dw else blocks)


def _forward_pass(x, w, b, y, gy, out_hw, a, dw, workspace, kernel):
    """The forward-role pass: y = conv(x, w) + b (if y) and dw = corr(x, gy) (if dw)."""
    n, c, h, wd = x.shape
    o, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = out_hw
    _conv_nonempty(kernel, w.shape, (c, h, wd))
    _conv_limits(kernel, (ho + a.dilation[0] * (kh - 1)) * (wo + a.dilation[1] * (kw - 1)),
                 h * wd, c * kh * kw, o)
    want_y, want_dw = y is not None, dw is not None
    if n == 0:
        if want_dw:
            dw.fill(0)
        return
    flops = 2.0 * n * o * ho * wo * (c // a.groups) * kh * kw * (want_y + want_dw)
    if _is_dense(a, (h, wd), (ho, wo), kh, kw):
        _dense_pass(x, w, b, y, gy, dw, None, None)
        return
    if _use_direct(x.dtype, a, wo, kw):
        nt = _conv_threads(flops, n)
        if want_y:
            _direct_forward(x, _direct_repack(w, workspace), b, y,
                            (a.padding[0][0], a.padding[1][0]), a.dilation, workspace, nt)
        if want_dw:
            _direct_weight_grad(x, gy, dw, (kh, kw), a, workspace, nt)
        return
    tile, nb, items = _gemm_plan(n, c, kh, kw, (h, wd), (ho, wo), a, w.size, want_dw)
    nt = _conv_threads(flops, items)
    partial = _partials(workspace, items if want_dw else 0, w.size, x.dtype)
    e4 = _empty4(x.dtype)
    if _use_shift(a, c // a.groups, o // a.groups, wo, kw):
        ws = _conv_ws(workspace, "cols", _conv.shift_workspace_size(
            c, o, ho, wo, kh, kw, a.dilation[0], a.dilation[1], nt), x.dtype)
        with _BLAS.limit(1):
            _conv.shift_pass(x, _repack(w, workspace), b, y if want_y else e4,
                             gy if want_dw else e4, partial, ws, (kh, kw), (ho, wo),
                             (a.padding[0][0], a.padding[1][0]), a.dilation, a.groups,
                             want_y, want_dw, nt)
        if want_dw:
            _finish_dw(partial, dw, True, workspace)
        return
    pad = (a.padding[0][0], a.padding[1][0])
    ws = _conv_ws(workspace, "cols", _conv.workspace_size(
        n, c, h, wd, o, ho, wo, kh, kw, a.stride, pad, tile, nb, 1, nt), x.dtype)
    with _BLAS.limit(1):
        _conv.forward_pass(x, w, b, y if want_y else e4, gy if want_dw else e4, partial, ws,
                           tuple(out_hw), a.stride, pad, a.dilation, a.groups, want_y,
                           want_dw, tile, nb, nt)
    if want_dw:
        _finish_dw(partial, dw, False, workspace)


def _backward_pass(dy, w, bias_dx, dx, x, in_hw, a, dw, workspace, kernel):
    """The backward-role pass: dx = convT(dy, w) + bias_dx (if dx), dw = corr(x, dy)."""
    n, o, ho, wo = dy.shape
    c, kh, kw = w.shape[1] * a.groups, w.shape[2], w.shape[3]
    _conv_nonempty(kernel, w.shape, (c,) + tuple(in_hw))
    _conv_limits(kernel, ho * wo, in_hw[0] * in_hw[1], c * kh * kw, o)
    want_dx, want_dw = dx is not None, dw is not None
    if n == 0:
        if want_dw:
            dw.fill(0)
        return
    flops = 2.0 * n * o * ho * wo * (c // a.groups) * kh * kw * (want_dx + want_dw)
    if _is_dense(a, in_hw, (ho, wo), kh, kw):
        _dense_pass(x, w, None, None, dy, dw, dx, bias_dx)
        return
    pad = (a.padding[0][0], a.padding[1][0])
    fpad = (a.dilation[0] * (kh - 1) - pad[0], a.dilation[1] * (kw - 1) - pad[1])
    if want_dw and _use_direct(dy.dtype, a, wo, kw):
        _direct_weight_grad(x, dy, dw, (kh, kw), a, workspace, _conv_threads(flops, n))
        want_dw = False
    if want_dx and min(fpad) >= 0 and _use_direct(dy.dtype, a, in_hw[1], kw):
        _direct_forward(dy, _direct_repack(w, workspace, flip=True), bias_dx, dx, fpad,
                        a.dilation, workspace, _conv_threads(flops, n))
        want_dx = False
    if not (want_dx or want_dw):
        return
    tile, nb, items = _gemm_plan(n, c, kh, kw, tuple(in_hw), (ho, wo), a, w.size, want_dw)
    nt = _conv_threads(flops, items)
    partial = _partials(workspace, items if want_dw else 0, w.size, dy.dtype)
    e4 = _empty4(dy.dtype)
    ws = _conv_ws(workspace, "cols", _conv.workspace_size(
        n, c, in_hw[0], in_hw[1], o, ho, wo, kh, kw, a.stride, pad, tile, nb, 2, nt),
        dy.dtype)
    with _BLAS.limit(1):
        _conv.backward_pass(dy, w, bias_dx, dx if want_dx else e4, x if want_dw else e4,
                            partial, ws, tuple(in_hw), a.stride, pad, a.dilation, a.groups,
                            want_dx, want_dw, tile, nb, nt)
    if want_dw:
        _finish_dw(partial, dw, False, workspace)


def _as4(a, nd):
    return a if nd == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])


def _conv_forward_nd(nd, x, w, b, stride, padding, dilation, groups, out, workspace):
    kernel = f"kernels.conv{nd}d_forward"
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=x.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups)
    x4, w4 = _as4(x, nd), _as4(w, nd)
    _conv_channels(kernel, x.shape[1], w.shape[1], w.shape[0], a.groups)
    bias = _conv_bias(b, kernel, w.shape[0], x.dtype)
    ho, wo = _conv_out_hw(kernel, x4.shape[2:], w4.shape[2:], a)
    shape = (x.shape[0], w.shape[0]) + ((ho, wo) if nd == 2 else (wo,))
    y = _conv_out(out, kernel, shape, x.dtype, x, w, b)
    _forward_pass(x4, w4, bias, _as4(y, nd), None, (ho, wo), a, None, workspace, kernel)
    return y


def _conv_backward_nd(nd, x, dy, w, stride, padding, dilation, groups, need_input_grad,
                      need_weight_grad, need_bias_grad, workspace):
    kernel = f"kernels.conv{nd}d_backward"
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=x.dtype)
    _conv_check(dy, kernel, "dy", nd + 2, dtype=x.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups)
    x4, w4, dy4 = _as4(x, nd), _as4(w, nd), _as4(dy, nd)
    _conv_channels(kernel, x.shape[1], w.shape[1], w.shape[0], a.groups)
    out_hw = _conv_out_hw(kernel, x4.shape[2:], w4.shape[2:], a)
    want = (x.shape[0], w.shape[0]) + out_hw[2 - nd:]
    if dy.shape != want:
        raise ShapeError(f"{kernel}: dy must have shape {want} (the conv output), got "
                         f"{dy.shape}")
    dx = np.empty_like(x) if need_input_grad else None
    dw = np.empty_like(w) if need_weight_grad else None
    if dx is not None or dw is not None:
        _backward_pass(dy4, w4, np.empty(0, x.dtype), None if dx is None else _as4(dx, nd),
                       x4, x4.shape[2:], a, dw, workspace, kernel)
    db = conv_bias_grad(dy) if need_bias_grad else None
    return dx, dw, db


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, out=None,
                   workspace=None):
    """2-D cross-correlation (convolution.md §3.2; D-02: no kernel flip).

    ``Y[n,o,i,j] = b[o] + Σ_{c∈group(o),p,q} W[o,c,p,q]·x_pad[n,c,i·S_h+p·d_h, j·S_w+q·d_w]``.
    x ``(N, C, H, W)``, w ``(O, C/groups, kh, kw)``, b ``(O,)`` or None → y
    ``(N, O, H_out, W_out)`` (§2 sizes; a size < 1 raises ShapeError, a ValueError).
    """
    return _conv_forward_nd(2, x, w, b, stride, padding, dilation, groups, out, workspace)


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, out=None,
                   workspace=None):
    """1-D cross-correlation ``Y[n,o,i] = b[o] + Σ_{c,p} W[o,c,p]·x_pad[n,c,i·S+p·d]``
    (convolution.md §3.2); x ``(N, C, L)``, w ``(O, C/groups, k)`` → ``(N, O, L_out)``."""
    return _conv_forward_nd(1, x, w, b, stride, padding, dilation, groups, out, workspace)


def conv2d_backward(x, dy, w, *, stride=1, padding=0, dilation=1, groups=1,
                    need_input_grad=True, need_weight_grad=True, need_bias_grad=True,
                    workspace=None):
    """Gradients of :func:`conv2d_forward` (convolution.md §3.3) in one im2col pass:
    ``(dx, dw, db)`` (None where not needed) with ``db[o] = Σ dY[n,o,i,j]``,
    ``dW[o,c,p,q] = Σ dY[n,o,i,j]·x_pad[n,c,iS+pd,jS+qd]``, dx the scatter-add of
    ``dY·W`` with the padding removed (D-18; uncovered inputs get 0, D-19)."""
    return _conv_backward_nd(2, x, dy, w, stride, padding, dilation, groups, need_input_grad,
                             need_weight_grad, need_bias_grad, workspace)


def conv1d_backward(x, dy, w, *, stride=1, padding=0, dilation=1, groups=1,
                    need_input_grad=True, need_weight_grad=True, need_bias_grad=True,
                    workspace=None):
    """Gradients ``(dx, dw, db)`` of :func:`conv1d_forward` (convolution.md §3.3)."""
    return _conv_backward_nd(1, x, dy, w, stride, padding, dilation, groups, need_input_grad,
                             need_weight_grad, need_bias_grad, workspace)


def _input_grad_nd(nd, dy, w, input_size, stride, padding, dilation, groups, out, workspace):
    kernel = f"kernels.conv{nd}d_input_grad"
    _conv_check(dy, kernel, "dy", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=dy.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups)
    size = _conv_tuple(input_size, nd, kernel, "input_size")
    in_hw = size if nd == 2 else (1,) + size
    if dy.shape[1] != w.shape[0] or w.shape[0] % a.groups:
        raise ShapeError(f"{kernel}: dy has {dy.shape[1]} channels, the weight {w.shape[0]} "
                         f"output channels (groups={a.groups})")
    out_hw = _conv_out_hw(kernel, in_hw, _as4(w, nd).shape[2:], a)
    if dy.shape[2:] != out_hw[2 - nd:]:
        raise ShapeError(f"{kernel}: dy spatial shape must be {out_hw[2 - nd:]} for input "
                         f"size {size}, got {dy.shape[2:]}")
    shape = (dy.shape[0], w.shape[1] * a.groups) + size
    dx = _conv_out(out, kernel, shape, dy.dtype, dy, w)
    _backward_pass(_as4(dy, nd), _as4(w, nd), np.empty(0, dy.dtype), _as4(dx, nd), None,
                   in_hw, a, None, workspace, kernel)
    return dx


def conv2d_input_grad(dy, w, input_size, *, stride=1, padding=0, dilation=1, groups=1,
                      out=None, workspace=None):
    """``∂L/∂x`` of a conv2d with input spatial size ``input_size`` = (H, W): the
    transposed convolution of dy (convolution.md §3.3-4; D-18). dy ``(N, O, H_out, W_out)``,
    w ``(O, C/groups, kh, kw)`` → ``(N, C, H, W)``. Also the curvature map
    ``h_x = convT(h, W ⊙ W)`` of networks.md §7.5 (pass ``w*w``)."""
    return _input_grad_nd(2, dy, w, input_size, stride, padding, dilation, groups, out,
                          workspace)


def conv1d_input_grad(dy, w, input_size, *, stride=1, padding=0, dilation=1, groups=1,
                      out=None, workspace=None):
    """``∂L/∂x`` of a conv1d with input length ``input_size`` (see conv2d_input_grad)."""
    return _input_grad_nd(1, dy, w, input_size, stride, padding, dilation, groups, out,
                          workspace)


def _weight_grad_nd(nd, x, dy, kernel_size, stride, padding, dilation, groups, out,
                    workspace):
    kernel = f"kernels.conv{nd}d_weight_grad"
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(dy, kernel, "dy", nd + 2, dtype=x.dtype)
    ks = _conv_tuple(kernel_size, nd, kernel, "kernel_size")
    a = _conv_args(kernel, nd, ks, stride, padding, dilation, groups)
    x4, dy4 = _as4(x, nd), _as4(dy, nd)
    if x.shape[1] % a.groups or dy.shape[1] % a.groups:
        raise ShapeError(f"{kernel}: channels ({x.shape[1]} in, {dy.shape[1]} out) are not "
                         f"divisible by groups={a.groups}")
    k2 = ks if nd == 2 else (1,) + ks
    out_hw = _conv_out_hw(kernel, x4.shape[2:], k2, a)
    if dy.shape[0] != x.shape[0] or dy4.shape[2:] != out_hw:
        raise ShapeError(f"{kernel}: dy must have shape "
                         f"{(x.shape[0], dy.shape[1]) + out_hw[2 - nd:]}, got {dy.shape}")
    shape = (dy.shape[1], x.shape[1] // a.groups) + ks
    dw = _conv_out(out, kernel, shape, x.dtype, x, dy)
    _forward_pass(x4, _as4(dw, nd), np.empty(0, x.dtype), None, dy4, out_hw, a, _as4(dw, nd),
                  workspace, kernel)
    return dw


def conv2d_weight_grad(x, dy, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
                       out=None, workspace=None):
    """``dW[o,c,p,q] = Σ_{n,i,j} dY[n,o,i,j]·x_pad[n,c,iS+pd,jS+qd]`` (convolution.md §3.3):
    the correlation of the padded input with the output gradient. x ``(N, C, H, W)``, dy
    ``(N, O, H_out, W_out)`` → ``(O, C/groups, kh, kw)``. With ``x*x`` and a curvature map
    h it gives the Gauss-Newton diagonal ``Σ h·x_pad²`` of networks.md §7.5; with an
    R-value it gives the R-backward terms of §7.2."""
    return _weight_grad_nd(2, x, dy, kernel_size, stride, padding, dilation, groups, out,
                           workspace)


def conv1d_weight_grad(x, dy, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
                       out=None, workspace=None):
    """Weight gradient of a conv1d (see conv2d_weight_grad) → ``(O, C/groups, k)``."""
    return _weight_grad_nd(1, x, dy, kernel_size, stride, padding, dilation, groups, out,
                           workspace)


def conv_bias_grad(dy, out=None):
    """``db[o] = Σ_{n, spatial} dY[n, o, ...]`` for dy ``(N, O, ...)`` (convolution.md §3.3);
    accumulated in double precision, per channel in a fixed order."""
    kernel = "kernels.conv_bias_grad"
    _check(dy, kernel, "dy")
    if dy.ndim < 2:
        raise ShapeError(f"{kernel}: dy must have shape (N, C, ...), got {dy.shape}")
    db = _output(out, kernel, (dy.shape[1],), dy.dtype)
    s = int(np.prod(dy.shape[2:], dtype=np.int64))
    _conv.channel_sums(dy.reshape(dy.shape[0], dy.shape[1], s), db, config.get_num_threads())
    return db


def _convt_setup(kernel, nd, x, w, stride, padding, output_padding, dilation, groups):
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=x.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups, transpose=True)
    op = _conv_tuple(output_padding, nd, kernel, "output_padding", 0)
    op = op if nd == 2 else (0,) + op
    for i in range(2):
        if op[i] >= max(a.stride[i], a.dilation[i]):
            raise HyperparameterError(f"{kernel}: output_padding must be < max(stride, "
                                      f"dilation) = {max(a.stride[i], a.dilation[i])}, got "
                                      f"{op[i]}")
    if x.shape[1] != w.shape[0]:
        raise ShapeError(f"{kernel}: x has {x.shape[1]} channels but the weight "
                         f"(C_in, C_out/groups, ...) has C_in = {w.shape[0]}")
    if w.shape[0] % a.groups:
        raise ShapeError(f"{kernel}: {w.shape[0]} input channels are not divisible by "
                         f"groups={a.groups}")
    x4, w4 = _as4(x, nd), _as4(w, nd)
    out_hw = tuple(conv_transpose_output_size(x4.shape[2 + i], w4.shape[2 + i], a.stride[i],
                                              a.padding[i], a.dilation[i], op[i])
                   for i in range(2))
    if min(out_hw) < 1:
        raise ShapeError(f"{kernel}: output size {out_hw[2 - nd:]} < 1 (input "
                         f"{x.shape[2:]}, padding {a.padding[2 - nd:]})")
    return a, x4, w4, out_hw


def _convt_forward_nd(nd, x, w, b, stride, padding, output_padding, dilation, groups, out,
                      workspace):
    kernel = f"kernels.conv_transpose{nd}d_forward"
    a, x4, w4, out_hw = _convt_setup(kernel, nd, x, w, stride, padding, output_padding,
                                     dilation, groups)
    c_out = w.shape[1] * a.groups
    bias = _conv_bias(b, kernel, c_out, x.dtype)
    y = _conv_out(out, kernel, (x.shape[0], c_out) + out_hw[2 - nd:], x.dtype, x, w, b)
    _backward_pass(x4, w4, bias, _as4(y, nd), None, out_hw, a, None, workspace, kernel)
    return y


def _convt_backward_nd(nd, x, dy, w, stride, padding, output_padding, dilation, groups,
                       need_input_grad, need_weight_grad, need_bias_grad, workspace):
    kernel = f"kernels.conv_transpose{nd}d_backward"
    a, x4, w4, out_hw = _convt_setup(kernel, nd, x, w, stride, padding, output_padding,
                                     dilation, groups)
    _conv_check(dy, kernel, "dy", nd + 2, dtype=x.dtype)
    want = (x.shape[0], w.shape[1] * a.groups) + out_hw[2 - nd:]
    if dy.shape != want:
        raise ShapeError(f"{kernel}: dy must have shape {want} (the output), got {dy.shape}")
    dx = np.empty_like(x) if need_input_grad else None
    dw = np.empty_like(w) if need_weight_grad else None
    if dx is not None or dw is not None:
        _forward_pass(_as4(dy, nd), w4, np.empty(0, x.dtype),
                      None if dx is None else _as4(dx, nd), x4, x4.shape[2:], a,
                      None if dw is None else _as4(dw, nd), workspace, kernel)
    db = conv_bias_grad(dy) if need_bias_grad else None
    return dx, dw, db


def conv_transpose2d_forward(x, w, b=None, *, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, out=None, workspace=None):
    """Transposed convolution (convolution.md §4): the adjoint of conv2d with the same
    S, P, d. ``Y_full[n,o,iS+pd,jS+qd] += X[n,c,i,j]·W[c,o,p,q]``, cropped to rows
    ``P_lo … P_lo+H_out−1`` (likewise columns), plus ``b[o]``. x ``(N, C_in, H, W)``, w
    ``(C_in, C_out/groups, kh, kw)`` → ``(N, C_out, H_out, W_out)`` with
    ``H_out = (H−1)S − P_lo − P_hi + d(k−1) + output_padding + 1``,
    ``0 ≤ output_padding < max(S, d)``."""
    return _convt_forward_nd(2, x, w, b, stride, padding, output_padding, dilation, groups,
                             out, workspace)


def conv_transpose1d_forward(x, w, b=None, *, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, out=None, workspace=None):
    """1-D transposed convolution (see conv_transpose2d_forward); x ``(N, C_in, L)``,
    w ``(C_in, C_out/groups, k)``."""
    return _convt_forward_nd(1, x, w, b, stride, padding, output_padding, dilation, groups,
                             out, workspace)


def conv_transpose2d_backward(x, dy, w, *, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, need_input_grad=True,
                              need_weight_grad=True, need_bias_grad=True, workspace=None):
    """Gradients ``(dx, dw, db)`` of :func:`conv_transpose2d_forward` (convolution.md §4):
    ``dX[n,c,i,j] = Σ W[c,o,p,q]·dY_ext[n,o,iS+pd,jS+qd]`` (a conv2d of dY),
    ``dW[c,o,p,q] = Σ X[n,c,i,j]·dY_ext[n,o,iS+pd,jS+qd]``, ``db[o] = Σ dY[n,o,i,j]``."""
    return _convt_backward_nd(2, x, dy, w, stride, padding, output_padding, dilation, groups,
                              need_input_grad, need_weight_grad, need_bias_grad, workspace)


def conv_transpose1d_backward(x, dy, w, *, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, need_input_grad=True,
                              need_weight_grad=True, need_bias_grad=True, workspace=None):
    """Gradients ``(dx, dw, db)`` of :func:`conv_transpose1d_forward`."""
    return _convt_backward_nd(1, x, dy, w, stride, padding, output_padding, dilation, groups,
                              need_input_grad, need_weight_grad, need_bias_grad, workspace)


def convolve_true(x, h, mode="valid"):
    """True (flipped-kernel) 2-D convolution ``(x ∗ h)[i,j] = Σ_{p,q} h[p,q]·x[i−p, j−q]``
    of one channel (convolution.md §1, D-02): the cross-correlation with ``h[::-1, ::-1]``.

    x ``(H, W)``, h ``(kh, kw)`` (same float dtype). ``mode``: ``"valid"`` (no padding),
    ``"full"`` (``k − 1`` zeros each side) or ``"same"`` (output ``(H, W)``, ``r`` zeros
    each side for odd k = 2r + 1; for even k one more zero top/left, as
    ``scipy.signal.convolve2d``).
    """
    kernel = "kernels.convolve_true"
    _conv_check(x, kernel, "x", 2)
    _conv_check(h, kernel, "h", 2, dtype=x.dtype)
    kh, kw = h.shape
    if mode == "valid":
        pad = 0
    elif mode == "full":
        pad = ((kh - 1, kh - 1), (kw - 1, kw - 1))
    elif mode == "same":
        pad = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in (kh, kw))
    else:
        raise HyperparameterError(f"{kernel}: mode must be 'valid', 'same' or 'full', "
                                  f"got {mode!r}")
    w = np.ascontiguousarray(h[::-1, ::-1])
    return conv2d_forward(x[None, None], w[None, None], padding=pad)[0, 0]
# ---- end convolution ----


# ---- cascade ----
from ._kernels import cascade as _cascade  # noqa: E402

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
    codes = np.ascontiguousarray(codes, dtype=np.intc)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    if codes.shape != (P,) or beta.shape != (P,):
        raise ShapeError(f"{kernel}: codes and beta must have shape ({P},), got "
                         f"{codes.shape} and {beta.shape}")
    if P and (codes.min() < 0 or codes.max() >= _cascade.NCODES):
        raise ValueError(f"{kernel}: unit codes must be in 0..{_cascade.NCODES - 1}, got "
                         f"{codes.min()}..{codes.max()}")
    if not np.isfinite(beta).all():
        raise ValueError(f"{kernel}: beta must be finite")
    V = _output(V, kernel, S.shape, S.dtype, "V")
    dV = _output(dV, kernel, S.shape, S.dtype, "dV")
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
        if not math.isfinite(v):
            raise ValueError(f"{kernel}: {name} must be finite, got {v!r}")
    _cascade.quickprop(w.reshape(-1), g.reshape(-1), d.reshape(-1), p.reshape(-1),
                       float(lr), float(mu), float(decay))
# ---- end cascade ----
