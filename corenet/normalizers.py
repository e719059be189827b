"""Input (and target) scalers: ``standardize`` and ``min_max`` (spec normalization.md §1, D-67).

Both learn per-feature statistics from the *training* data with ``fit`` and apply them
unchanged to any later data (validation and test data are never re-fitted, D-67).

Layout of the statistics
------------------------
* ``(N,)``: one scalar feature; ``(N, D)``: one statistic per column.
* ``(N, C, ...)`` (images, ``ndim >= 3``): per channel over N and the spatial axes, as
  normalization.md §1 prescribes (``per_channel=None`` → automatic).
  ``per_channel=False`` instead treats every non-batch element (the flattened
  ``C·H·W`` features) as its own feature; ``per_channel=True`` forces channel
  statistics (axis 1) also for ``(N, C)``, where it is the same as per column.

Inputs may be any real array (integers are converted to float64); float32 input gives
float32 output. Statistics are computed and stored in float64. ``state()`` returns plain
arrays (no pickle) and ``load_state`` restores them.
"""
from __future__ import annotations

import numpy as np

from .errors import (CorenetError, HyperparameterError, ShapeError, check_array,
                     check_positive)
from .normalizer import Normalizer
from .plugins import hookimpl


class NotFittedError(CorenetError, RuntimeError):
    """``transform`` / ``inverse_transform`` / ``state`` was called before ``fit``."""


def _prepare(X, component, name="input"):
    x = np.asarray(X)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    check_array(x, component, finite=True, name=name)
    if x.ndim == 0:
        raise ShapeError(f"{component}: {name} must have shape (N, ...), got a scalar")
    return x


class _Scaler(Normalizer):
    """Shared machinery: statistics ``center`` and ``scale`` with ``transform(X) =
    (X − center)/scale·a + b`` (``a = 1, b = 0`` for standardize)."""

    _keys = ("center", "scale")

    def __init__(self, per_channel=None):
        if per_channel not in (None, True, False):
            raise HyperparameterError(f"normalizer {self.name!r}: per_channel must be None, "
                                      f"True or False, got {per_channel!r}")
        self.per_channel = per_channel
        self._stats = None      # dict of float64 arrays
        self._shape = None      # feature shape (non-batch dims) seen by fit

    # ---- layout
    def _channel_mode(self, ndim):
        return ndim >= 2 and (self.per_channel or (self.per_channel is None and ndim >= 3))

    def _axes(self, ndim):
        if self._channel_mode(ndim):
            return (0,) + tuple(range(2, ndim))
        return (0,)

    def _bshape(self, x):
        """Shape the stored statistics take to broadcast against ``x``."""
        if self._channel_mode(x.ndim):
            return (1, x.shape[1]) + (1,) * (x.ndim - 2)
        return (1,) + x.shape[1:]

    def _check_fitted(self, x, what):
        if self._stats is None:
            raise NotFittedError(f"normalizer {self.name!r}: call fit(X_train) before {what}")
        ok = x.ndim == len(self._shape) + 1 and (
            x.shape[1] == self._shape[0] if self._channel_mode(x.ndim)
            else x.shape[1:] == self._shape)
        if not ok:
            want = ("(N, %d, ...)" % self._shape[0]) if self._channel_mode(x.ndim) \
                else str((None,) + self._shape).replace("None", "N")
            raise ShapeError(f"normalizer {self.name!r}: {what} expected input of shape "
                             f"{want} (as in fit), got {x.shape}")

    # ---- API
    def fit(self, X):
        x = _prepare(X, f"normalizer {self.name!r}", "fit input")
        if x.shape[0] == 0:
            raise ShapeError(f"normalizer {self.name!r}: fit needs at least one sample, "
                             f"got shape {x.shape}")
        x64 = x.astype(np.float64, copy=False)
        stats = self._fit_stats(x64, self._axes(x.ndim))
        self._shape = tuple(x.shape[1:])
        self._stats = {k: np.asarray(v, dtype=np.float64).reshape(
            v.shape[1] if self._channel_mode(x.ndim) else v.shape[1:]) for k, v in stats.items()}
        return self

    def _stat(self, key, x):
        return self._stats[key].reshape(self._bshape(x))

    def transform(self, X):
        x = _prepare(X, f"normalizer {self.name!r}")
        self._check_fitted(x, "transform")
        out = self._forward(x.astype(np.float64, copy=False), x)
        return out.astype(x.dtype, copy=False)

    def inverse_transform(self, X):
        x = _prepare(X, f"normalizer {self.name!r}")
        self._check_fitted(x, "inverse_transform")
        out = self._inverse(x.astype(np.float64, copy=False), x)
        return out.astype(x.dtype, copy=False)

    def state(self):
        if self._stats is None:
            raise NotFittedError(f"normalizer {self.name!r}: state() before fit")
        st = {k: v.copy() for k, v in self._stats.items()}
        st["feature_shape"] = np.asarray(self._shape, dtype=np.int64)
        return st

    def load_state(self, state):
        missing = [k for k in (*self._keys, "feature_shape") if k not in state]
        if missing:
            raise ValueError(f"normalizer {self.name!r}: load_state is missing {missing}; "
                             f"got keys {sorted(state)}")
        shape = tuple(int(s) for s in np.asarray(state["feature_shape"]).reshape(-1))
        stats = {k: np.array(state[k], dtype=np.float64) for k in self._keys}
        channel = self._channel_mode(len(shape) + 1)
        want = (shape[0],) if channel else shape
        for k, v in stats.items():
            if v.shape != want:
                raise ShapeError(f"normalizer {self.name!r}: state[{k!r}] must have shape "
                                 f"{want} for feature shape {shape}, got {v.shape}")
            if not np.isfinite(v).all():
                raise ValueError(f"normalizer {self.name!r}: state[{k!r}] has NaN or inf")
        self._stats, self._shape = stats, shape
        return self

    @property
    def fitted(self) -> bool:
        return self._stats is not None


class Standardize(_Scaler):
    """``transform(X) = (X − μ)/s``, ``inverse_transform(Z) = Z·s + μ`` (normalization.md §1).

    ``μ_j`` and ``s_j`` (population std, ddof = 0) per feature over the training set;
    for images ``(N, C, H, W)`` per channel over N, H, W. A constant feature
    (``s_j < eps``, default ``1e-12``) gets ``s_j = 1`` instead of a division by ~0, so
    it is only centred. ``with_mean=False`` uses μ = 0; ``with_std=False`` uses s = 1.
    """
    name = "standardize"

    def __init__(self, with_mean=True, with_std=True, eps=1e-12, per_channel=None):
        super().__init__(per_channel)
        self.with_mean, self.with_std = bool(with_mean), bool(with_std)
        self.eps = check_positive(eps, "normalizer 'standardize'", "eps")

    def _fit_stats(self, x, axes):
        mean = x.mean(axis=axes, keepdims=True)
        std = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True))
        std = np.where(std < self.eps, 1.0, std)
        if not self.with_mean:
            mean = np.zeros_like(mean)
        if not self.with_std:
            std = np.ones_like(std)
        return {"center": mean, "scale": std}

    def _forward(self, x, orig):
        return (x - self._stat("center", orig)) / self._stat("scale", orig)

    def _inverse(self, z, orig):
        return z * self._stat("scale", orig) + self._stat("center", orig)

    @property
    def mean_(self):
        return None if self._stats is None else self._stats["center"]

    @property
    def scale_(self):
        return None if self._stats is None else self._stats["scale"]

    def get_config(self):
        return {"with_mean": self.with_mean, "with_std": self.with_std, "eps": self.eps,
                "per_channel": self.per_channel}


class MinMax(_Scaler):
    """``transform(X) = a + (X − min)/(max − min)·(b − a)`` for ``feature_range=(a, b)``
    (default (0, 1)); ``inverse_transform`` undoes it. The spec (normalization.md §1)
    only defines ``standardize``; this scaler follows the PyTorch/scikit-learn
    convention. Min and max are per feature (per channel for images) over the training
    set; a constant feature (``max − min < eps``) uses range 1, so it maps to ``a``.
    Test data outside the training range map outside ``[a, b]`` (no clipping).
    """
    name = "min_max"

    def __init__(self, feature_range=(0.0, 1.0), eps=1e-12, per_channel=None):
        super().__init__(per_channel)
        try:
            a, b = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise HyperparameterError(f"normalizer 'min_max': feature_range must be a pair "
                                      f"(low, high), got {feature_range!r}") from None
        if not (np.isfinite(a) and np.isfinite(b) and a < b):
            raise HyperparameterError(f"normalizer 'min_max': feature_range must satisfy "
                                      f"low < high, got {feature_range!r}")
        self.feature_range = (a, b)
        self.eps = check_positive(eps, "normalizer 'min_max'", "eps")

    def _fit_stats(self, x, axes):
        lo = x.min(axis=axes, keepdims=True)
        span = x.max(axis=axes, keepdims=True) - lo
        return {"center": lo, "scale": np.where(span < self.eps, 1.0, span)}

    def _forward(self, x, orig):
        a, b = self.feature_range
        return a + (x - self._stat("center", orig)) / self._stat("scale", orig) * (b - a)

    def _inverse(self, z, orig):
        a, b = self.feature_range
        return (z - a) / (b - a) * self._stat("scale", orig) + self._stat("center", orig)

    @property
    def data_min_(self):
        return None if self._stats is None else self._stats["center"]

    @property
    def data_range_(self):
        return None if self._stats is None else self._stats["scale"]

    def get_config(self):
        return {"feature_range": list(self.feature_range), "eps": self.eps,
                "per_channel": self.per_channel}


@hookimpl
def corenet_register_normalizers():
    return [Standardize, MinMax]
