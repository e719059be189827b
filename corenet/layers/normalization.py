"""Normalisation layers: ``batch_norm``, ``layer_norm``, ``weight_norm``, ``local_response_norm``.

Spec: normalization.md §2 (batch norm; D-06, D-07, D-34, D-35, D-60), §3 (layer norm; D-23),
§4 (weight norm; D-22, D-78), README §7 (train/eval modes). ``local_response_norm`` is not in
the spec; it follows PyTorch's ``LocalResponseNorm`` (AlexNet LRN).

All four compute in the layer dtype with NumPy (no compiled kernel: every operation is a
vectorised reduction or broadcast). None has second-order R-rules: Hessian-vector products
fall back to central differences of gradients (networks.md §7.2).
"""
from __future__ import annotations

import numpy as np

from .. import registry
from ..errors import (CorenetError, HyperparameterError, ShapeError, check_positive,
                      check_range)
from ..layer import Layer
from ..plugins import hookimpl


class ZeroNormError(CorenetError, ValueError):
    """A weight-norm direction vector ``v`` of some output unit has norm 0 (spec §4)."""


def _positive_int(value, component, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HyperparameterError(f"{component}: {name} must be a positive integer, "
                                  f"got {value!r}")
    return int(value)


# ============================================================================ batch norm
class BatchNorm(Layer):
    """Batch normalisation (``layer:batch_norm``, normalization.md §2; Ioffe & Szegedy 2015).

    Input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` (any ``(N, C, ...)``); statistics per
    channel (axis 1) over the ``M = N·Π(spatial)`` elements of that channel. Output has the
    input's shape. Parameters ``gamma`` (init 1, D-07) and ``beta`` (init 0) of shape ``(C,)``
    when ``affine``; buffers ``running_mean`` (init 0) and ``running_var`` (init 1).

    Training forward (§2.2, D-06)::

        μ_B = mean(x),  σ²_B = mean((x − μ_B)²)      (biased, used for normalising)
        x̂ = (x − μ_B)/√(σ²_B + ε),  y = γ x̂ + β      (D-60)
        running_mean ← (1 − m)·running_mean + m·μ_B
        running_var  ← (1 − m)·running_var  + m·σ²_B·M/(M − 1)   (unbiased; D-35)

    Eval forward (§2.3): ``y = γ (x − running_mean)/√(running_var + ε) + β``; the running
    statistics never change in eval. With ``track_running_stats=False`` the batch statistics
    are used in both modes and no running statistics exist. Using batch statistics with
    ``M = 1`` raises ``ShapeError`` (a ``ValueError``; the variance is undefined).

    Backward (§2.4, exact with the cross-sample terms, D-34), means over the M elements::

        dx̂ = γ dy;  dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / √(σ²_B + ε)
        dγ = Σ dy·x̂;  dβ = Σ dy

    In eval mode (fixed statistics) ``dx = γ dy/√(running_var + ε)``.
    """

    name = "batch_norm"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        self.num_features = _positive_int(num_features, "batch_norm", "num_features")
        self.eps = check_positive(eps, "batch_norm", "eps")
        self.momentum = check_range(momentum, "batch_norm", "momentum", 0.0, 1.0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.gamma = self.beta = None
        self.running_mean = self.running_var = None

    @classmethod
    def examples(cls):
        return [{"config": {"num_features": 3}, "input_shape": (3,)},
                {"config": {"num_features": 2, "momentum": 0.3}, "input_shape": (2, 5)},
                {"config": {"num_features": 2, "affine": False}, "input_shape": (2, 3, 3)},
                {"config": {"num_features": 2, "track_running_stats": False},
                 "input_shape": (2, 2, 2)}]

    def _build(self, input_shape, rng):
        if len(input_shape) < 1 or input_shape[0] != self.num_features:
            raise ShapeError(f"{self.label}: expected input (N, {self.num_features}, ...) with "
                             f"num_features={self.num_features} channels on axis 1, got "
                             f"per-sample shape {tuple(input_shape)}")
        c = self.num_features
        if self.affine:
            self.gamma = self.add_parameter("gamma", np.ones(c), decay=False)
            self.beta = self.add_parameter("beta", np.zeros(c), decay=False)
        if self.track_running_stats:
            self.running_mean = np.zeros(c, dtype=self.dtype)
            self.running_var = np.ones(c, dtype=self.dtype)

    def buffers(self) -> dict:
        if not self.track_running_stats or self.running_mean is None:
            return {}
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    @staticmethod
    def _layout(x):
        return (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)

    def _forward(self, x):
        axes, bshape = self._layout(x)
        M = x.size // x.shape[1]
        self._batch_stats = self.training or not self.track_running_stats
        if self._batch_stats:
            if M < 2:
                raise ShapeError(f"{self.label}: batch statistics need more than one value per "
                                 f"channel (M = N·spatial = {M} for input shape {x.shape}); "
                                 f"use a batch of at least 2 samples or eval mode")
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(bshape)
            var = np.mean(centred * centred, axis=axes)
            if self.training and self.track_running_stats:
                m = self.momentum
                self.running_mean *= 1.0 - m
                self.running_mean += m * mean
                self.running_var *= 1.0 - m
                self.running_var += m * var * (M / (M - 1.0))
        else:
            centred = x - self.running_mean.reshape(bshape)
            var = self.running_var
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype, copy=False)
        xhat = centred * inv_std.reshape(bshape)
        self._xhat, self._inv_std = xhat, inv_std
        if not self.affine:
            return xhat
        return xhat * self.gamma.data.reshape(bshape) + self.beta.data.reshape(bshape)

    def _backward(self, dy):
        axes, bshape = self._layout(dy)
        xhat = self._xhat
        if self.affine:
            if self.gamma.trainable:
                self.gamma.grad += np.sum(dy * xhat, axis=axes)
            if self.beta.trainable:
                self.beta.grad += np.sum(dy, axis=axes)
            dxhat = dy * self.gamma.data.reshape(bshape)
        else:
            dxhat = dy
        inv_std = self._inv_std.reshape(bshape)
        if not self._batch_stats:
            return dxhat * inv_std
        mean_d = dxhat.mean(axis=axes).reshape(bshape)
        mean_dx = np.mean(dxhat * xhat, axis=axes).reshape(bshape)
        return (dxhat - mean_d - xhat * mean_dx) * inv_std

    def get_config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                **super().get_config()}


# ============================================================================ layer norm
class LayerNorm(Layer):
    """Layer normalisation (``layer:layer_norm``, normalization.md §3; Ba et al. 2016).

    Per sample over the trailing ``normalized_shape`` axes (default: every non-batch axis;
    for ``(N, D)`` the D features)::

        μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ)/√(σ² + ε)   (ε inside, D-23)
        y = γ ⊙ x̂ + β          γ (ones), β (zeros) of shape normalized_shape

    Backward (means over the D normalised elements of one sample)::

        dx̂ = γ ⊙ dy;  dx = (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)) / √(σ² + ε)
        dγ = Σ_n dy ⊙ x̂;  dβ = Σ_n dy      (sums over the batch and any leading axes)

    Identical in train and eval, works with a batch of 1. Output shape = input shape.
    """

    name = "layer_norm"

    def __init__(self, normalized_shape=None, eps: float = 1e-5,
                 elementwise_affine: bool = True, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        if normalized_shape is not None:
            if isinstance(normalized_shape, (int, np.integer)):
                normalized_shape = (normalized_shape,)
            normalized_shape = tuple(_positive_int(s, "layer_norm", "normalized_shape entry")
                                     for s in normalized_shape)
            if not normalized_shape:
                raise HyperparameterError("layer_norm: normalized_shape must not be empty")
        self.normalized_shape = normalized_shape
        self.eps = check_positive(eps, "layer_norm", "eps")
        self.elementwise_affine = bool(elementwise_affine)
        self.gamma = self.beta = None

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (4,)},
                {"config": {"normalized_shape": [3, 3]}, "input_shape": (2, 3, 3)},
                {"config": {"elementwise_affine": False}, "input_shape": (2, 3)}]

    def _build(self, input_shape, rng):
        shape = tuple(input_shape) if self.normalized_shape is None else self.normalized_shape
        k = len(shape)
        if k == 0 or len(input_shape) < k or tuple(input_shape[len(input_shape) - k:]) != shape:
            raise ShapeError(f"{self.label}: normalized_shape {shape} must equal the trailing "
                             f"per-sample dimensions, got per-sample shape {tuple(input_shape)}")
        self._norm_shape = shape
        if self.elementwise_affine:
            self.gamma = self.add_parameter("gamma", np.ones(shape), decay=False)
            self.beta = self.add_parameter("beta", np.zeros(shape), decay=False)

    def _forward(self, x):
        axes = tuple(range(x.ndim - len(self._norm_shape), x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=axes, keepdims=True)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._xhat = centred * self._inv_std
        self._axes = axes
        if not self.elementwise_affine:
            return self._xhat
        return self._xhat * self.gamma.data + self.beta.data

    def _backward(self, dy):
        axes, xhat = self._axes, self._xhat
        lead = tuple(range(dy.ndim - len(axes)))
        if self.elementwise_affine:
            if self.gamma.trainable:
                self.gamma.grad += np.sum(dy * xhat, axis=lead)
            if self.beta.trainable:
                self.beta.grad += np.sum(dy, axis=lead)
            dxhat = dy * self.gamma.data
        else:
            dxhat = dy
        mean_d = dxhat.mean(axis=axes, keepdims=True)
        mean_dx = np.mean(dxhat * xhat, axis=axes, keepdims=True)
        return (dxhat - mean_d - xhat * mean_dx) * self._inv_std

    def get_config(self):
        ns = None if self.normalized_shape is None else list(self.normalized_shape)
        return {"normalized_shape": ns, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, **super().get_config()}


# ============================================================================ weight norm
class WeightNorm(Layer):
    """Weight normalisation wrapper (``layer:weight_norm``, normalization.md §4, Salimans &
    Kingma 2016). The spec lists ``weight_norm`` as a normalizer name; corenet registers it
    as a layer that wraps another layer.

    ``layer`` is a layer spec (``{"name": "dense", "out_features": 4}``, a name, or an unbuilt
    :class:`Layer`) of a dense or conv layer. Each output unit's weight vector (a row of the
    dense ``W``; a ``(C_in, k...)`` slice of a conv ``W``; axis 1 for ``conv_transpose*``) is
    reparameterised as::

        w = g · v/‖v‖          g: (units,), v: the shape of the wrapped weight

    Init (D-78): ``v`` = the wrapped layer's initial weight, ``g = ‖v‖`` (w unchanged).
    Parameters, in order: ``g``, ``v``, then the wrapped layer's other parameters (bias).
    ``v`` has ``decay=True`` (L2's default group), ``g`` has ``decay=False``.

    Backward: the wrapped layer's ``∇_w L`` is mapped with the FULL projection (D-22)::

        ∇_g L = (∇_w L · v)/‖v‖
        ∇_v L = (g/‖v‖)(I − v vᵀ/‖v‖²) ∇_w L = (g/‖v‖)∇_w L − (g ∇_g L/‖v‖²) v

    A unit with ``‖v‖ = 0`` raises :class:`ZeroNormError` (a ``ValueError``). Shapes are those
    of the wrapped layer; its fused activation (if any) is kept.
    """

    name = "weight_norm"

    def __init__(self, layer, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        if isinstance(layer, Layer):
            if layer.built:
                raise HyperparameterError(f"weight_norm: the wrapped {layer.label} is already "
                                          f"built; pass an unbuilt layer or a layer spec")
            inner = layer
        else:
            if layer is None or (isinstance(layer, dict) and "name" not in layer):
                raise HyperparameterError(f"weight_norm: layer must be a layer spec such as "
                                          f"{{'name': 'dense', 'out_features': 4}}, got {layer!r}")
            inner = registry.create("layer", layer)
        if not isinstance(inner, Layer) or inner.n_inputs != 1:
            raise HyperparameterError(f"weight_norm: can only wrap a single-input layer, got "
                                      f"{layer!r}")
        self.layer = inner
        self.output_activation = inner.output_activation
        self.g = self.v = self._w = None

    @classmethod
    def examples(cls):
        return [{"config": {"layer": {"name": "dense", "out_features": 3}}, "input_shape": (6,)},
                {"config": {"layer": {"name": "dense", "out_features": 2, "activation": "tanh"}},
                 "input_shape": (5,)}]

    def _build(self, input_shape, rng):
        inner = self.layer
        inner.key = self.key
        inner.build(input_shape, self.dtype, rng)
        weights = [p for p in inner.parameters() if p.role == "weight"]
        if len(weights) != 1 or weights[0].data.ndim < 2:
            raise HyperparameterError(f"weight_norm: the wrapped {inner.label} has no weight "
                                      f"matrix to normalise; weight_norm wraps dense and conv "
                                      f"layers")
        w = weights[0]
        self._w = w
        self._axis = 1 if inner.name.startswith("conv_transpose") else 0
        self._red = tuple(a for a in range(w.data.ndim) if a != self._axis)
        self._bshape = tuple(-1 if a == self._axis else 1 for a in range(w.data.ndim))
        norms = self._norms(w.data)
        self.g = self.add_parameter("g", norms, decay=False)
        self.v = self.add_parameter("v", w.data.copy(), decay=True, fan_in=w.fan_in,
                                    fan_out=w.fan_out)
        if w.masked:
            self.v.mask = w.mask
            w.mask = None
        self._params.extend(p for p in inner.parameters() if p is not w)

    def _norms(self, v):
        n = np.sqrt(np.sum(v * v, axis=self._red))
        if np.any(n == 0):
            units = np.flatnonzero(n == 0).tolist()
            raise ZeroNormError(f"{self.label}: ‖v‖ = 0 for output unit(s) {units[:10]}; the "
                                f"direction w = g·v/‖v‖ is undefined")
        return n

    def output_shape(self, input_shape):
        return self.layer.output_shape(input_shape)

    def _set_weight(self):
        self._n = self._norms(self.v.data)
        self._w.data[...] = self.v.data * (self.g.data / self._n).reshape(self._bshape)

    def _forward(self, x):
        self._set_weight()
        return self.layer.forward(x)

    def _forward_logits(self, x):
        self._set_weight()
        return self.layer.forward_logits(x)

    def _project(self):
        gw = self._w.grad
        v, g, n = self.v.data, self.g.data, self._n
        dg = np.sum(gw * v, axis=self._red) / n
        if self.g.trainable:
            self.g.grad += dg
        if self.v.trainable:
            self.v.grad += (gw * (g / n).reshape(self._bshape)
                            - v * (g * dg / (n * n)).reshape(self._bshape))
        gw.fill(0.0)

    def _backward(self, dy):
        self._w.grad.fill(0.0)
        dx = self.layer.backward(dy)
        self._project()
        return dx

    def _backward_logits(self, ds):
        self._w.grad.fill(0.0)
        dx = self.layer.backward_logits(ds)
        self._project()
        return dx

    def train(self, mode: bool = True):
        self.layer.train(mode)
        return super().train(mode)

    def weight(self) -> np.ndarray:
        """The effective weight ``w = g v/‖v‖`` (a new array)."""
        return self.v.data * (self.g.data / self._norms(self.v.data)).reshape(self._bshape)

    def data_init(self, x) -> None:
        """Data-dependent initialisation (§4, MAY): with g = 1 and bias 0 run ``x`` and set per
        unit ``g = 1/σ_t``, ``b = −μ_t/σ_t`` where ``t = vᵀx/‖v‖`` (statistics over the batch
        and spatial positions). Needs a wrapped layer with a bias."""
        bias = [p for p in self.layer.parameters() if p.role == "bias"]
        if not bias:
            raise HyperparameterError(f"{self.label}: data_init needs a wrapped layer with a "
                                      f"bias")
        self._prepare((x,))
        self.g.data[...] = 1.0
        bias[0].data[...] = 0.0
        t = self.forward_logits(x)
        axes = tuple(a for a in range(t.ndim) if a != 1)
        mu, sd = t.mean(axis=axes), t.std(axis=axes)
        if np.any(sd == 0):
            raise ZeroNormError(f"{self.label}: data_init found a unit with zero output "
                                f"variance on this batch")
        self.g.data[...] = 1.0 / sd
        bias[0].data[...] = -mu / sd

    def get_config(self):
        spec = {"name": self.layer.name, **self.layer.get_config()}
        return {"layer": spec, **super().get_config()}


# ============================================================================ LRN
def _window_sum(a, lo, hi):
    """``out[:, c] = Σ_{i=c−lo}^{c+hi} a[:, i]`` along axis 1 (zeros outside 0…C−1)."""
    c = a.shape[1]
    pad = np.zeros((a.shape[0], c + lo + hi) + a.shape[2:], dtype=a.dtype)
    pad[:, lo:lo + c] = a
    out = pad[:, 0:c].copy()
    for i in range(1, lo + hi + 1):
        out += pad[:, i:i + c]
    return out


class LocalResponseNorm(Layer):
    """Local response normalisation across channels (``layer:local_response_norm``, AlexNet).

    Not in the spec; PyTorch's ``LocalResponseNorm`` convention. Input ``(N, C, ...)``
    (``(N, C)`` allowed), normalised across axis 1 within a window of ``size = n`` channels::

        D_c = k + (α/n) Σ_{c′=c−⌊n/2⌋}^{c+⌊(n−1)/2⌋} x_{c′}²     (out-of-range channels are 0;
        y_c = x_c · D_c^{−β}                                     the divisor is always n)

    Exact backward (the window couples channels)::

        dx_j = dy_j D_j^{−β} − (2αβ/n) x_j Σ_{c: j ∈ window(c)} dy_c x_c D_c^{−β−1}

    Defaults ``alpha=1e-4, beta=0.75, k=1`` (PyTorch); ``size`` is required (AlexNet uses 5).
    ``k`` must be > 0 so that ``D > 0``.
    """

    name = "local_response_norm"

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *,
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        comp = "local_response_norm"
        self.size = _positive_int(size, comp, "size")
        self.alpha = check_positive(alpha, comp, "alpha", allow_zero=True)
        self.beta = check_range(beta, comp, "beta", -np.inf, np.inf)
        self.k = check_positive(k, comp, "k")

    @classmethod
    def examples(cls):
        return [{"config": {"size": 3, "alpha": 0.5, "k": 2.0}, "input_shape": (4, 2, 2)},
                {"config": {"size": 2, "alpha": 0.3}, "input_shape": (3,)}]

    def _build(self, input_shape, rng):
        if len(input_shape) < 1:
            raise ShapeError(f"{self.label}: expected input (N, C, ...), got per-sample shape "
                             f"{tuple(input_shape)}")

    def _forward(self, x):
        n = self.size
        s = _window_sum(x * x, n // 2, (n - 1) // 2)
        d = self.k + (self.alpha / n) * s
        dpow = d ** (-self.beta)
        self._x, self._d, self._dpow = x, d, dpow
        return x * dpow

    def _backward(self, dy):
        n, x = self.size, self._x
        u = dy * x * self._dpow / self._d
        t = _window_sum(u, (n - 1) // 2, n // 2)
        return dy * self._dpow - (2.0 * self.alpha * self.beta / n) * x * t

    def get_config(self):
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k,
                **super().get_config()}


@hookimpl
def corenet_register_layers():
    return [BatchNorm, LayerNorm, WeightNorm, LocalResponseNorm]
