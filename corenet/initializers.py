"""Weight and bias initializers (spec initialization.md; D-21, D-50, D-66).

Every class is an :class:`corenet.initializer.Initializer`: ``init(shape, fan_in,
fan_out, dtype, rng)`` returns an array of ``shape``. Hyperparameters go to
``__init__``; all draws use the generator passed in (README §4; an integer is turned
into ``numpy.random.default_rng(int)``). Fans come from
:func:`corenet.initializer.compute_fans` (§2). Fan-based initializers raise
``ValueError`` naming themselves when a fan is missing (e.g. for a 1-D bias).

Defaults (D-50): dense/conv weights ``glorot_uniform``, biases ``zeros``.
Recommended pairings (§4, §8): ReLU family -> ``he_*``; tanh / linear -> ``lecun_*``
or ``glorot_*``; SELU -> ``lecun_normal`` weights with ``zeros`` biases and
standardised inputs (self-normalising fixed point (0, 1)); see
:func:`recommended_initializer`.

The module also holds the mean-field utilities of §5–§6: :func:`gain`,
:func:`gauss_moment`, :func:`empirical_gain`, :func:`propagate_variance`.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import HyperparameterError, check_positive
from .initializer import Initializer
from .plugins import hookimpl

#: std of N(0, 1) truncated at ±2 (D-21: a ratio of standard deviations, not variances)
TRUNC2_STD_FACTOR = 0.8796256610342398
#: variance of N(0, 1) truncated at ±2
TRUNC2_VAR_FACTOR = 0.7737413035499232

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def _as_rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _finite(value, component, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise HyperparameterError(f"{component}: {name} must be finite, got {value!r}")
    return v


def _truncated(rng, shape, mean, std, cut):
    """N(mean, std²) conditioned on |w − mean| <= cut·std, by redrawing values outside."""
    out = rng.normal(mean, std, size=shape)
    bad = np.abs(out - mean) > cut * std
    while bad.any():
        out[bad] = rng.normal(mean, std, size=int(bad.sum()))
        bad = np.abs(out - mean) > cut * std
    return out


# --------------------------------------------------------------------------- basic (§3)
class Zeros(Initializer):
    """All zeros (default for biases, D-50). Any shape; fans unused."""
    name = "zeros"

    def sample(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones. Any shape; fans unused."""
    name = "ones"

    def sample(self, shape, fan_in, fan_out, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value`` (§3). Any shape; fans unused."""
    name = "constant"

    def __init__(self, value=0.0):
        self.value = _finite(value, "initializer 'constant'", "value")

    def sample(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class Uniform(Initializer):
    """``𝒰(low, high)``, variance ``(high − low)²/12`` (§3). Requires ``low < high``."""
    name = "uniform"

    def __init__(self, low=-0.05, high=0.05):
        c = "initializer 'uniform'"
        self.low, self.high = _finite(low, c, "low"), _finite(high, c, "high")
        if not self.low < self.high:
            raise HyperparameterError(f"{c}: low must be < high, got low={low!r}, high={high!r}")

    def sample(self, shape, fan_in, fan_out, rng):
        return _as_rng(rng).uniform(self.low, self.high, size=shape)

    def get_config(self):
        return {"low": self.low, "high": self.high}


class Normal(Initializer):
    """``𝒩(mean, std²)`` (§3); ``std > 0``."""
    name = "normal"

    def __init__(self, mean=0.0, std=0.05):
        c = f"initializer {self.name!r}"
        self.mean = _finite(mean, c, "mean")
        self.std = check_positive(std, c, "std")

    def sample(self, shape, fan_in, fan_out, rng):
        return _as_rng(rng).normal(self.mean, self.std, size=shape)

    def get_config(self):
        return {"mean": self.mean, "std": self.std}


class TruncatedNormal(Normal):
    """``𝒩(mean, std²)`` conditioned on ``|w − mean| <= cut·std`` (values outside are
    redrawn; §3). For ``cut = 2`` the result has variance ``0.7737413035499232·std²``
    (std factor 0.8796256610342398, D-21)."""
    name = "truncated_normal"

    def __init__(self, mean=0.0, std=0.05, cut=2.0):
        super().__init__(mean, std)
        self.cut = check_positive(cut, f"initializer {self.name!r}", "cut")

    def sample(self, shape, fan_in, fan_out, rng):
        return _truncated(_as_rng(rng), shape, self.mean, self.std, self.cut)

    def get_config(self):
        return {**super().get_config(), "cut": self.cut}


# --------------------------------------------------------------------------- variance scaling (§4)
class VarianceScaling(Initializer):
    """Zero-mean draw with variance ``σ² = gain·scale/n`` (§4), where ``n`` is
    ``fan_in``, ``fan_out`` or ``(fan_in + fan_out)/2`` (``mode``).

    * ``normal``: ``𝒩(0, σ²)`` (untruncated, D-50);
    * ``truncated_normal``: ``σ₀ = σ/0.8796256610342398``, ``𝒩(0, σ₀²)`` redrawn outside
      ``±2σ₀`` (final variance σ²);
    * ``uniform``: ``𝒰(−√(3σ²), √(3σ²))``.

    ``gain`` multiplies the *variance* (§5; e.g. ``gain=16`` = Glorot's ×4 bound for
    logistic units). Needs both fans from :func:`corenet.initializer.compute_fans`.
    """
    name = "variance_scaling"

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal", gain=1.0):
        c = f"initializer {self.name!r}"
        self.scale = check_positive(scale, c, "scale")
        self.gain = check_positive(gain, c, "gain")
        if mode not in _MODES:
            raise HyperparameterError(f"{c}: mode must be one of {_MODES}, got {mode!r}")
        if distribution not in _DISTRIBUTIONS:
            raise HyperparameterError(f"{c}: distribution must be one of {_DISTRIBUTIONS}, "
                                      f"got {distribution!r}")
        self.mode, self.distribution = mode, distribution

    def variance(self, fan_in, fan_out) -> float:
        """Target variance ``gain·scale/n`` for these fans."""
        c = f"initializer {self.name!r}"
        for fan, label in ((fan_in, "fan_in"), (fan_out, "fan_out")):
            if fan is None:
                raise ValueError(f"{c} needs fan_in and fan_out (got {label}=None); 1-D "
                                 f"arrays such as biases have no fans (initialization.md §2)")
            if not fan > 0:
                raise ValueError(f"{c}: {label} must be > 0, got {fan!r}")
        n = {"fan_in": fan_in, "fan_out": fan_out,
             "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        return self.gain * self.scale / float(n)

    def sample(self, shape, fan_in, fan_out, rng):
        rng = _as_rng(rng)
        sigma = math.sqrt(self.variance(fan_in, fan_out))
        if self.distribution == "normal":
            return rng.normal(0.0, sigma, size=shape)
        if self.distribution == "uniform":
            bound = math.sqrt(3.0) * sigma
            return rng.uniform(-bound, bound, size=shape)
        return _truncated(rng, shape, 0.0, sigma / TRUNC2_STD_FACTOR, 2.0)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "gain": self.gain}


class _Named(VarianceScaling):
    _fixed: tuple = ()

    def __init__(self, gain=1.0):
        super().__init__(*self._fixed, gain=gain)

    def get_config(self):
        return {"gain": self.gain}


class LecunUniform(_Named):
    """``𝒰(±√(3·gain/fan_in))`` (variance ``gain/fan_in``; §4)."""
    name, _fixed = "lecun_uniform", (1.0, "fan_in", "uniform")


class LecunNormal(_Named):
    """``𝒩(0, gain/fan_in)`` (untruncated; §4). With zero biases and standardised inputs
    this is the self-normalising initialisation for SELU networks (§8)."""
    name, _fixed = "lecun_normal", (1.0, "fan_in", "normal")


class GlorotUniform(_Named):
    """``𝒰(±√(6·gain/(fan_in + fan_out)))`` (§4); default for weights (D-50)."""
    name, _fixed = "glorot_uniform", (1.0, "fan_avg", "uniform")


class GlorotNormal(_Named):
    """``𝒩(0, 2·gain/(fan_in + fan_out))`` (untruncated; §4)."""
    name, _fixed = "glorot_normal", (1.0, "fan_avg", "normal")


class HeUniform(_Named):
    """``𝒰(±√(6·gain/fan_in))`` (§4); for ReLU-family layers."""
    name, _fixed = "he_uniform", (2.0, "fan_in", "uniform")


class HeNormal(_Named):
    """``𝒩(0, 2·gain/fan_in)`` (untruncated; §4); for ReLU-family layers."""
    name, _fixed = "he_normal", (2.0, "fan_in", "normal")


# --------------------------------------------------------------------------- orthogonal, bias (§7, §9)
class Orthogonal(Initializer):
    """Orthogonal initialisation (§9): view the array as ``(shape[0], prod(shape[1:]))``,
    draw ``A ~ 𝒩(0, 1)`` of shape ``(max, min)``, ``Q, R = qr(A)``,
    ``Q ← Q·diag(sign(diag R))``, transpose if rows < cols, multiply by ``√gain``.
    Rows (or columns, whichever are fewer) are orthonormal. Needs ``ndim >= 2``."""
    name = "orthogonal"

    def __init__(self, gain=1.0):
        self.gain = check_positive(gain, f"initializer {self.name!r}", "gain")

    def sample(self, shape, fan_in, fan_out, rng):
        if len(shape) < 2:
            raise ValueError(f"initializer 'orthogonal' needs an array with at least 2 "
                             f"dimensions, got shape {shape}")
        rows, cols = shape[0], int(np.prod(shape[1:]))
        a = _as_rng(rng).normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        d = np.sign(np.diag(r))
        d[d == 0] = 1.0
        q = q * d
        if rows < cols:
            q = q.T
        return (math.sqrt(self.gain) * q).reshape(shape)

    def get_config(self):
        return {"gain": self.gain}


class TargetMean(Initializer):
    """Bias of a regression output layer: ``b_k = mean_n y_nk`` over the training targets
    (§7). Give the targets (``(N,)`` or ``(N, K)``; images ``(N, C, ...)`` are averaged
    over N only) or the precomputed ``mean``; :meth:`set_targets` supplies them at build
    time. ``sample`` returns the mean, which must have the requested ``shape`` (size K)."""
    name = "target_mean"

    def __init__(self, targets=None, mean=None):
        self.mean = None
        if mean is not None:
            m = np.asarray(mean, dtype=np.float64)
            if not np.isfinite(m).all():
                raise HyperparameterError("initializer 'target_mean': mean contains NaN or inf")
            self.mean = m
        if targets is not None:
            self.set_targets(targets)

    def set_targets(self, targets) -> "TargetMean":
        y = np.asarray(targets, dtype=np.float64)
        if y.ndim == 0 or y.shape[0] == 0:
            raise ValueError(f"initializer 'target_mean': targets must have shape (N, ...) "
                             f"with N >= 1, got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError("initializer 'target_mean': targets contain NaN or inf")
        self.mean = y.mean(axis=0)
        return self

    def sample(self, shape, fan_in, fan_out, rng):
        if self.mean is None:
            raise ValueError("initializer 'target_mean' needs the training targets: pass "
                             "targets=... or call set_targets(y) before building the layer")
        if self.mean.size != int(np.prod(shape)):
            raise ValueError(f"initializer 'target_mean': bias shape {shape} does not match "
                             f"the target mean of shape {self.mean.shape}")
        return self.mean.reshape(shape).copy()

    def get_config(self):
        return {"mean": None if self.mean is None else self.mean.tolist()}


def get_initializer(spec):
    """An initializer from a name, a ``{"name": ..., **kwargs}`` dict, a
    ``(name, kwargs)`` pair, a class or an instance (returned unchanged)."""
    from . import registry
    return registry.create("initializer", spec)


# --------------------------------------------------------------------------- gains, mean field (§5, §6)
_GAINS = {"identity": 1.0, "linear": 1.0, "tanh": 1.0, "sigmoid": 1.0, "softsign": 1.0,
          "relu": 2.0, "selu": 1.0}
_RECOMMENDED = {"relu": "he_normal", "leaky_relu": "he_normal", "prelu": "he_normal",
                "generalized_relu": "he_normal", "elu": "he_normal", "selu": "lecun_normal",
                "tanh": "glorot_uniform", "identity": "glorot_uniform",
                "sigmoid": "glorot_uniform", "softsign": "glorot_uniform"}


def gain(activation: str, param=None) -> float:
    """Variance gain that keeps the forward second moment constant (§5): identity, tanh,
    sigmoid (Glorot convention), softsign, selu (with lecun_normal) → 1; relu → 2;
    leaky_relu(α) → ``2/(1 + α²)`` (α defaults to 0.01, PyTorch's default slope)."""
    if activation == "leaky_relu":
        alpha = 0.01 if param is None else float(param)
        return 2.0 / (1.0 + alpha * alpha)
    try:
        return _GAINS[activation]
    except KeyError:
        raise ValueError(f"gain: no tabulated gain for activation {activation!r}; known: "
                         f"{sorted(_GAINS) + ['leaky_relu']} (use empirical_gain)") from None


def recommended_initializer(activation: str) -> str:
    """Weight initializer name recommended for ``activation`` (§4, §8)."""
    return _RECOMMENDED.get(activation, "glorot_uniform")


def _as_function(f):
    if callable(f):
        return f
    from . import registry
    return registry.create("activation", f).f


def gauss_moment(f, q=1.0, n=2) -> float:
    """``E_{S~𝒩(0,q)}[f(S)^n]`` by adaptive quadrature on (−∞, 0] and [0, ∞) separately
    (kinks sit at 0; §6.3), absolute accuracy ~1e-10. ``f`` is a callable or an
    activation name from the registry."""
    from scipy import integrate
    fn = _as_function(f)
    q = check_positive(q, "gauss_moment", "q")
    c = 1.0 / math.sqrt(2.0 * math.pi * q)

    def integrand(x):
        return float(np.asarray(fn(np.array([x], dtype=np.float64)))[0]) ** n \
            * c * math.exp(-x * x / (2.0 * q))
    kw = dict(epsabs=1e-13, epsrel=1e-12, limit=200)
    return integrate.quad(integrand, -np.inf, 0.0, **kw)[0] + \
        integrate.quad(integrand, 0.0, np.inf, **kw)[0]


def empirical_gain(f) -> float:
    """``1 / E_{Z~𝒩(0,1)}[f(Z)²]`` (§5): relu 2, tanh 2.5361754161, sigmoid 3.4085598416."""
    return 1.0 / gauss_moment(f, 1.0, 2)


def propagate_variance(f, q0, fan_in_times_var, layers) -> list[float]:
    """Mean-field sequence ``q_{l+1} = Jσ_w² · E[f(√q_l Z)²]`` for ``layers`` steps (§6.1),
    starting from ``q0``; returns ``[q_1, …, q_layers]``."""
    out, q = [], float(q0)
    for _ in range(int(layers)):
        q = float(fan_in_times_var) * gauss_moment(f, q, 2)
        out.append(q)
    return out


_CLASSES = [Zeros, Ones, Constant, Uniform, Normal, TruncatedNormal, VarianceScaling,
            LecunUniform, LecunNormal, GlorotUniform, GlorotNormal, HeUniform, HeNormal,
            Orthogonal, TargetMean]


@hookimpl
def corenet_register_initializers():
    return list(_CLASSES)
