"""Plain NumPy twins of the compiled kernels: the oracles of the kernel tests.

Each function here has the semantics of the kernel of the same name in
:mod:`corenet.kernels`, written as directly as possible (spec networks.md §2.2, §2.3,
§3.4; README §10 stable forms; D-04 left branch at kinks). Element-wise activation
formulas are evaluated in float64 and rounded once to the input dtype, as the kernels
do. These functions do not validate their input and are not fast.

``ACTIVATION_PARAMS`` (name -> ((param, default), ...)) is the one table of activation
hyperparameters and spec defaults, shared by the facade and the activation family.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf as _erf, erfc as _erfc

SELU_LAMBDA = 1.0507009873554804934
SELU_ALPHA = 1.6732632423543772848

ACTIVATION_PARAMS = {
    "identity": (), "sigmoid": (), "sigmoid_symmetric": (), "tanh": (),
    "scaled_tanh": (("a", 1.7159), ("b", 2.0 / 3.0)),
    "arctan": (), "softsign": (), "relu": (),
    "leaky_relu": (("alpha", 0.01),),
    "generalized_relu": (("alpha", 0.0),),   # spec gives no default; 0 = relu
    "elu": (("alpha", 1.0),), "selu": (),
    "softplus": (("beta", 1.0),),
    "erf": (), "gaussian": (), "sign": (),
    "gelu": (), "silu": (),
}
# activations whose backward may use the cached output y (twin of the kernel's from_y)
FROM_Y = ("sigmoid", "sigmoid_symmetric", "tanh", "scaled_tanh", "elu", "selu")


def resolve_params(name: str, params: dict) -> dict:
    """Spec defaults of ``name`` updated with ``params`` (unknown keys raise TypeError)."""
    spec = dict(ACTIVATION_PARAMS[name])
    unknown = set(params) - set(spec)
    if unknown:
        raise TypeError(f"activation {name!r}: unknown parameter(s) {sorted(unknown)}; "
                        f"it takes {sorted(spec) or 'none'}")
    spec.update(params)
    return spec


def sigmoid(x):
    """Sign-split logistic function (README §10), float64."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _phi(x):
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _f(name, x, p):
    if name == "identity":
        return x.copy()
    if name == "sigmoid":
        return sigmoid(x)
    if name == "sigmoid_symmetric":
        return sigmoid(x) - 0.5
    if name == "tanh":
        return np.tanh(x)
    if name == "scaled_tanh":
        return p["a"] * np.tanh(p["b"] * x)
    if name == "arctan":
        return np.arctan(x)
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "relu":
        return np.where(x <= 0, 0.0, x)
    if name in ("leaky_relu", "generalized_relu"):
        return np.where(x <= 0, p["alpha"] * x, x)
    if name == "elu":
        return np.where(x <= 0, p["alpha"] * np.expm1(np.minimum(x, 0.0)), x)
    if name == "selu":
        return np.where(x <= 0, SELU_LAMBDA * SELU_ALPHA * np.expm1(np.minimum(x, 0.0)),
                        SELU_LAMBDA * x)
    if name == "softplus":
        bx = p["beta"] * x
        return (np.maximum(bx, 0.0) + np.log1p(np.exp(-np.abs(bx)))) / p["beta"]
    if name == "erf":
        return _erf(x)
    if name == "gaussian":
        return np.exp(-0.5 * x * x)
    if name == "sign":
        return np.where(x >= 0, 1.0, -1.0)
    if name == "gelu":
        return x * 0.5 * _erfc(-x / np.sqrt(2.0))
    if name == "silu":
        return x * sigmoid(x)
    raise KeyError(name)


def _df(name, x, p):
    if name == "identity":
        return np.ones_like(x)
    if name in ("sigmoid", "sigmoid_symmetric"):
        s = sigmoid(x)
        return s * (1.0 - s)
    if name == "tanh":
        t = np.tanh(x)
        return 1.0 - t * t
    if name == "scaled_tanh":
        t = np.tanh(p["b"] * x)
        return p["a"] * p["b"] * (1.0 - t * t)
    if name == "arctan":
        return 1.0 / (1.0 + x * x)
    if name == "softsign":
        return 1.0 / (1.0 + np.abs(x)) ** 2
    if name == "relu":
        return np.where(x <= 0, 0.0, 1.0)
    if name in ("leaky_relu", "generalized_relu"):
        return np.where(x <= 0, p["alpha"], 1.0)
    if name == "elu":
        return np.where(x <= 0, p["alpha"] * np.exp(np.minimum(x, 0.0)), 1.0)
    if name == "selu":
        return np.where(x <= 0, SELU_LAMBDA * SELU_ALPHA * np.exp(np.minimum(x, 0.0)),
                        SELU_LAMBDA)
    if name == "softplus":
        return sigmoid(p["beta"] * x)
    if name == "erf":
        return 2.0 / np.sqrt(np.pi) * np.exp(-x * x)
    if name == "gaussian":
        return -x * np.exp(-0.5 * x * x)
    if name == "gelu":
        return 0.5 * _erfc(-x / np.sqrt(2.0)) + x * _phi(x)
    if name == "silu":
        s = sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
    raise NotImplementedError(f"activation {name!r} is not differentiable")


def _d2f(name, x, p):
    if name in ("identity", "relu", "leaky_relu", "generalized_relu"):
        return np.zeros_like(x)
    if name in ("sigmoid", "sigmoid_symmetric"):
        s = sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if name == "tanh":
        t = np.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    if name == "scaled_tanh":
        t = np.tanh(p["b"] * x)
        return -2.0 * p["a"] * p["b"] ** 2 * t * (1.0 - t * t)
    if name == "arctan":
        return -2.0 * x / (1.0 + x * x) ** 2
    if name == "softsign":
        return -2.0 * np.sign(x) / (1.0 + np.abs(x)) ** 3
    if name == "elu":
        return np.where(x <= 0, p["alpha"] * np.exp(np.minimum(x, 0.0)), 0.0)
    if name == "selu":
        return np.where(x <= 0, SELU_LAMBDA * SELU_ALPHA * np.exp(np.minimum(x, 0.0)), 0.0)
    if name == "softplus":
        s = sigmoid(p["beta"] * x)
        return p["beta"] * s * (1.0 - s)
    if name == "erf":
        return -2.0 * x * (2.0 / np.sqrt(np.pi) * np.exp(-x * x))
    if name == "gaussian":
        return (x * x - 1.0) * np.exp(-0.5 * x * x)
    if name == "gelu":
        return _phi(x) * (2.0 - x * x)
    if name == "silu":
        s = sigmoid(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
    raise NotImplementedError(f"activation {name!r} is not differentiable")


def _as64(x):
    return np.asarray(x, dtype=np.float64)


def _dtype_of(x):
    x = np.asarray(x)
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def activation_f(name: str, x, **params) -> np.ndarray:
    """f(x) in float64 (reference for ``Activation.f``)."""
    return _f(name, _as64(x), resolve_params(name, params))


def activation_df(name: str, x, **params) -> np.ndarray:
    """f′(x) in float64, left branch at kinks (D-04)."""
    return _df(name, _as64(x), resolve_params(name, params))


def activation_d2f(name: str, x, **params) -> np.ndarray:
    """f″(x) in float64, left branch at kinks (D-04)."""
    return _d2f(name, _as64(x), resolve_params(name, params))


def activation_forward(name: str, x, **params) -> np.ndarray:
    """Twin of ``kernels.activation_forward``: f(x) rounded to x's dtype."""
    return activation_f(name, x, **params).astype(_dtype_of(x))


def activation_backward(name: str, x, y, dy, **params) -> np.ndarray:
    """Twin of ``kernels.activation_backward``: ``dy * f'(x)``, from y when given and
    the activation has an output-based route (``FROM_Y``), rounded to dy's dtype."""
    p = resolve_params(name, params)
    dt = _dtype_of(dy)
    dy = _as64(dy)
    if y is not None and name in FROM_Y and (name != "elu" or p["alpha"] > 0) and \
            (name != "scaled_tanh" or p["a"] != 0):
        y = _as64(y)
        if name == "sigmoid":
            d = y * (1.0 - y)
        elif name == "sigmoid_symmetric":
            s = y + 0.5
            d = s * (1.0 - s)
        elif name == "tanh":
            d = 1.0 - y * y
        elif name == "scaled_tanh":
            t = y / p["a"]
            d = p["a"] * p["b"] * (1.0 - t * t)
        elif name == "elu":
            d = np.where(y <= 0, y + p["alpha"], 1.0)
        else:
            d = np.where(y <= 0, y + SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA)
    else:
        d = _df(name, _as64(x), p)
    return (dy * d).astype(dt)


def _prelu_alpha(x, alpha):
    """alpha broadcast along axis 1 (per channel) or as a scalar (one entry)."""
    alpha = np.asarray(alpha).reshape(-1)
    if alpha.size == 1:
        return alpha[0]
    return alpha.reshape((1, -1) + (1,) * (np.ndim(x) - 2))


def prelu_forward(x, alpha) -> np.ndarray:
    """``x if x > 0 else alpha_c * x`` (channel = axis 1)."""
    x = np.asarray(x)
    return np.where(x <= 0, _prelu_alpha(x, alpha) * x, x).astype(x.dtype)


def prelu_backward(x, dy, alpha):
    """``(dx, dalpha)``: ``dx = dy * (1 if x > 0 else alpha_c)``,
    ``dalpha_c = Σ dy x 1[x <= 0]`` over every axis except 1 (all axes if shared)."""
    x, dy = np.asarray(x), np.asarray(dy)
    alpha = np.asarray(alpha)
    neg = x <= 0
    dx = np.where(neg, _prelu_alpha(x, alpha) * dy, dy).astype(x.dtype)
    terms = np.where(neg, dy * x, 0).astype(x.dtype)
    if alpha.size == 1:
        dalpha = terms.sum().reshape(alpha.shape)
    else:
        dalpha = terms.sum(axis=tuple(a for a in range(x.ndim) if a != 1))
    return dx, dalpha.astype(x.dtype)


def softmax(z, axis: int = -1) -> np.ndarray:
    """``exp(z - max) / Σ exp(z - max)`` along ``axis``."""
    z = np.asarray(z)
    e = np.exp(_as64(z) - _as64(z).max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(z.dtype)


def log_softmax(z, axis: int = -1) -> np.ndarray:
    """``z - max - log Σ exp(z - max)`` along ``axis``."""
    z = np.asarray(z)
    z64 = _as64(z)
    m = z64.max(axis=axis, keepdims=True)
    return (z64 - m - np.log(np.exp(z64 - m).sum(axis=axis, keepdims=True))).astype(z.dtype)


def softmax_cross_entropy(z, y):
    """``(loss (N,), grad (N, K))``: ``loss_n = -Σ_k y_nk log_softmax(z_n)_k``,
    ``grad = softmax(z) - y``; y is float (N, K) or integer labels (N,)."""
    z = np.asarray(z)
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        onehot = np.zeros(z.shape, dtype=np.float64)
        onehot[np.arange(z.shape[0]), y] = 1.0
        y = onehot
    q = log_softmax(_as64(z))
    loss = -(_as64(y) * q).sum(axis=1)
    grad = np.exp(q) - _as64(y)
    return loss.astype(z.dtype), grad.astype(z.dtype)
