"""Dropout family and noise layers (regularization.md §3.1, §5; D-36, D-64).

``dropout``, ``dropout2d``, ``alpha_dropout``, ``gaussian_noise`` and the Monte-Carlo
predictor :func:`predict_mc`. Every random draw uses the layer's own generator
``self.rng`` (a child of the model's ``random_state``, README §4), in Python; a fresh
mask / noise sample is drawn at every training forward pass and backward reuses it.
In eval mode every layer here is the identity (weight-scaling dropout: ``q·x``).
After a training forward, ``layer.mask`` (dropout family, 0/1 in the input dtype,
broadcastable to the input) or ``layer.noise`` (``gaussian_noise``, ε) holds the sample.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, ShapeError, check_positive, check_range
from ..layer import Layer
from ..plugins import hookimpl

class _DiagonalPasses:
    """Second-order passes (networks.md §7.2, §7.5) of a layer that multiplies its input
    element-wise by the factor d of its last forward pass (mask, scale or 1 + σε; additive
    noise has d = 1): R-forward and backward are both ``· d`` (= ``_backward``), the
    Gauss-Newton diagonal pass is ``h · d²`` (backward applied twice)."""

    def _rop_forward(self, x_dot, tangents):
        return None if x_dot is None else self._backward(x_dot)

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        return self._backward(dy), self._backward(dy_dot)

    def _diag_gn_backward(self, h, diag):
        return self._backward(self._backward(h))


SELU_LAMBDA = 1.0507009873554804934
SELU_ALPHA = 1.6732632423543772848
ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA      # α′ = −λα, the SELU saturation value


class Dropout(_DiagonalPasses, Layer):
    """Dropout (``layer:dropout``, regularization.md §5.1, D-36).

    ``rate = p`` is the **drop** probability, ``q = 1 − p``. Training: ``m ~ Bernoulli(q)``
    element-wise (``m = 1[u ≥ p]`` with ``u ~ U[0, 1)`` from ``self.rng``), fresh per
    sample and per forward pass, or one mask of shape ``(1, …)`` shared by the batch with
    ``shared_mask=True``. ``mode="inverted"`` (default): ``y = x ⊙ m/q``, backward
    ``dx = dy ⊙ m/q``, eval ``y = x``. ``mode="weight_scaling"``: ``y = x ⊙ m``,
    backward ``dx = dy ⊙ m``, eval ``y = q·x`` (= scaling the next layer's weights, not
    its bias). ``rate = 0`` is the identity; ``rate = 1`` gives ``y = 0``, ``dx = 0``.
    Any input shape ``(N, …)``.
    """

    name = "dropout"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (6,)},
                {"config": {"rate": 0.3, "mode": "weight_scaling", "shared_mask": True},
                 "input_shape": (2, 3, 3)}]
    MODES = ("inverted", "weight_scaling")

    def __init__(self, rate: float = 0.5, mode: str = "inverted", shared_mask: bool = False, *,
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        self.rate = check_range(rate, self.name, "rate", 0.0, 1.0)
        if mode not in self.MODES:
            raise HyperparameterError(f"{self.name}: mode must be one of {self.MODES}, got "
                                      f"{mode!r}")
        self.variant = mode          # ``mode`` is the train/eval flag of every layer
        self.shared_mask = bool(shared_mask)
        self.mask = None

    @property
    def keep(self) -> float:
        return 1.0 - self.rate

    def _mask_shape(self, shape):
        """Shape of one Bernoulli draw for an input of ``shape`` (with batch axis)."""
        return ((1,) if self.shared_mask else shape[:1]) + tuple(shape[1:])

    def _draw(self, shape):
        u = self.rng.random(self._mask_shape(shape))
        return (u >= self.rate).astype(self.dtype)

    def _forward(self, x):
        self._scale = None
        if not self.training:
            self.mask = None
            if self.variant == "weight_scaling" and self.rate > 0:
                self._scale = self.keep
                return x * self.dtype.type(self.keep)
            return x
        if self.rate == 0:
            self.mask = None
            return x
        self.mask = self._draw(x.shape)
        if self.rate == 1:
            self._scale = 0.0
            return np.zeros_like(x)
        if self.variant == "inverted":
            self._scale = self.mask * self.dtype.type(1.0 / self.keep)
        else:
            self._scale = self.mask
        return x * self._scale

    def _backward(self, dy):
        if self._scale is None:
            return dy
        if isinstance(self._scale, float):
            return np.zeros_like(dy) if self._scale == 0 else dy * self.dtype.type(self._scale)
        return dy * self._scale

    def get_config(self):
        return {"rate": self.rate, "mode": self.variant, "shared_mask": self.shared_mask,
                **super().get_config()}


class Dropout2d(Dropout):
    """Channel dropout (``layer:dropout2d``, regularization.md §5.1): one Bernoulli(q)
    variable per ``(n, c)`` channel, broadcast over all spatial positions of
    ``(N, C, H, W)`` (or ``(N, C, L)``); otherwise as :class:`Dropout` (``shared_mask``
    draws one ``(1, C, 1, 1)`` mask for the batch)."""

    name = "dropout2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (3, 4, 4)},
                {"config": {"rate": 0.2, "mode": "weight_scaling"}, "input_shape": (3, 5)}]

    def _build(self, input_shape, rng):
        if len(input_shape) < 2:
            raise ShapeError(f"{self.label}: expects inputs (N, C, H, W) or (N, C, L), got "
                             f"per-sample shape {tuple(input_shape)}")

    def _mask_shape(self, shape):
        return ((1,) if self.shared_mask else shape[:1]) + (shape[1],) + (1,) * (len(shape) - 2)


class AlphaDropout(_DiagonalPasses, Layer):
    """Alpha-dropout for SELU networks (``layer:alpha_dropout``, regularization.md §5.3).

    With ``α′ = −λα`` (SELU constants) and ``q = 1 − rate``:
    ``a = (q + α′² q (1 − q))^{−1/2}``, ``b = −a (1 − q) α′``. Training:
    ``m ~ Bernoulli(q)`` element-wise, ``y = a (x ⊙ m + α′(1 − m)) + b``, backward
    ``dx = a · m ⊙ dy``. Eval: ``y = x``. ``rate`` in [0, 1), default 0.05 (D-64).
    """

    name = "alpha_dropout"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (6,)}, {"config": {"rate": 0.1},
                                                       "input_shape": (2, 3)}]

    def __init__(self, rate: float = 0.05, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.rate = check_range(rate, self.name, "rate", 0.0, 1.0, high_open=True)
        q = 1.0 - self.rate
        self.a = (q + ALPHA_PRIME ** 2 * q * (1.0 - q)) ** -0.5
        self.b = -self.a * (1.0 - q) * ALPHA_PRIME
        self.mask = None

    def _forward(self, x):
        self._am = None
        if not self.training or self.rate == 0:
            self.mask = None
            return x
        self.mask = (self.rng.random(x.shape) >= self.rate).astype(self.dtype)
        t = self.dtype.type
        self._am = self.mask * t(self.a)
        # a(x m + α′(1 − m)) + b = (a m) x + (a α′ + b) − a α′ m
        a_alpha = self.a * ALPHA_PRIME
        return self._am * x + (t(a_alpha + self.b) - self.mask * t(a_alpha))

    def _backward(self, dy):
        return dy if self._am is None else dy * self._am

    def get_config(self):
        return {"rate": self.rate, **super().get_config()}


class GaussianNoise(_DiagonalPasses, Layer):
    """Input / neuron noise (``layer:gaussian_noise``, regularization.md §3.1).

    Training: ``ε ~ 𝒩(0, 1)`` element-wise, fresh every forward pass;
    ``mode="additive"`` (default) ``y = x + σε``, backward ``dx = dy``;
    ``mode="multiplicative"`` ``y = x ⊙ (1 + σε)``, backward ``dx = dy ⊙ (1 + σε)`` (same
    ε). Eval: ``y = x``. ``stddev σ = 0.1``. Any input shape.
    """

    name = "gaussian_noise"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (6,)},
                {"config": {"stddev": 0.5, "mode": "multiplicative"}, "input_shape": (2, 3)}]
    MODES = ("additive", "multiplicative")

    def __init__(self, stddev: float = 0.1, mode: str = "additive", *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.stddev = check_positive(stddev, self.name, "stddev", allow_zero=True)
        if mode not in self.MODES:
            raise HyperparameterError(f"{self.name}: mode must be one of {self.MODES}, got "
                                      f"{mode!r}")
        self.noise_mode = mode       # ``mode`` is the train/eval flag of every layer
        self.noise = None

    def _forward(self, x):
        self._factor = None
        if not self.training or self.stddev == 0:
            self.noise = None
            return x
        self.noise = self.rng.standard_normal(x.shape, dtype=self.dtype)
        sigma = self.dtype.type(self.stddev)
        if self.noise_mode == "additive":
            return x + sigma * self.noise
        self._factor = 1 + sigma * self.noise
        return x * self._factor

    def _backward(self, dy):
        return dy if self._factor is None else dy * self._factor

    def get_config(self):
        return {"stddev": self.stddev, "mode": self.noise_mode, **super().get_config()}


STOCHASTIC_AT_INFERENCE = (Dropout, AlphaDropout)


def predict_mc(model, X, T: int = 100, rng=None, batch_size: int = 1024):
    """Monte-Carlo dropout (regularization.md §5.2): ``(mean, variance)`` of T stochastic
    forward passes.

    The model is put in eval mode (batch norm uses its running statistics, noise layers
    are off) except its dropout-family layers (``dropout``, ``dropout2d``,
    ``alpha_dropout``), which keep drawing masks. For classifiers whose last layer ends
    in softmax/sigmoid the outputs are the probabilities. ``variance`` is the population
    variance over the T passes (ddof = 0), accumulated with Welford's update. ``rng``
    (seed or Generator): when given, the dropout layers draw from children of it for
    this call (reproducible), and their own generators are left untouched. The model's
    modes and generators are restored afterwards.
    """
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise HyperparameterError(f"predict_mc: T must be a positive integer, got {T!r}")
    X = model.check_input(X, "predict_mc input")
    if not model.built:
        model.build(X.shape[1:])
    layers = [layer for layer in model.layers_in_order()
              if isinstance(layer, STOCHASTIC_AT_INFERENCE)]
    was_training = model.training
    saved = [(layer, layer.training, layer.rng) for layer in layers]
    try:
        model.eval()
        if rng is not None:
            children = np.random.default_rng(rng).spawn(len(layers))
            for layer, child in zip(layers, children):
                layer.rng = child
        for layer in layers:
            layer.train(True)
        means, variances = [], []
        for start in range(0, X.shape[0], batch_size):
            xb = X[start:start + batch_size]
            mean = m2 = None
            for t in range(1, T + 1):
                y = np.asarray(model.forward(xb), dtype=np.float64)
                if mean is None:
                    mean, m2 = y.copy(), np.zeros_like(y)
                    continue
                delta = y - mean
                mean += delta / t
                m2 += delta * (y - mean)
            means.append(mean)
            variances.append(m2 / T)
    finally:
        model.train(was_training)
        for layer, training, layer_rng in saved:
            layer.train(training)
            layer.rng = layer_rng
    if not means:
        shape = (0,) + tuple(model.output_shape())
        return np.zeros(shape, model.dtype), np.zeros(shape, model.dtype)
    return (np.concatenate(means).astype(model.dtype),
            np.concatenate(variances).astype(model.dtype))


@hookimpl
def corenet_register_layers():
    return [Dropout, Dropout2d, AlphaDropout, GaussianNoise]
