"""The augmentation base class (spec regularization.md §9)."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, HyperparameterError, ShapeError, check_range


def as_rng(rng) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"augmentation: rng must be a numpy.random.Generator, an int or None, "
                    f"got {type(rng).__name__}")


def check_images(x, who: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise DTypeError(f"{who}: expected a numpy.ndarray of images, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{who}: images must be float32/float64, got dtype {x.dtype}")
    if x.ndim not in (3, 4):
        raise ShapeError(f"{who}: expected one image (C, H, W) or a batch (N, C, H, W), got "
                         f"shape {x.shape}")
    return x


def check_nonneg(value, who: str, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{who}: {name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise HyperparameterError(f"{who}: {name} must be >= 0, got {value!r}")
    return v


def check_pair(value, who: str, name: str, *, low: int = 0) -> tuple[int, int]:
    """An int or a pair of ints >= low, as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        a, b = pair
    except (TypeError, ValueError):
        raise HyperparameterError(f"{who}: {name} must be an int or a pair of ints, got "
                                  f"{value!r}") from None
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise HyperparameterError(f"{who}: {name} must hold integers >= {low}, got "
                                      f"{value!r}")
    return int(a), int(b)


class Augmentation:
    """A random, label-preserving transform of float images (``augmentation:*``, §9).

    ``t(x, rng)`` takes one image ``(C, H, W)`` or a batch ``(N, C, H, W)`` and a numpy
    Generator (or a seed) and returns a new array of the same dtype; parameters are drawn
    independently per sample, fresh at every call. Each sample is transformed with
    probability ``p`` (default 1.0) and left unchanged otherwise; ``clip=(lo, hi)`` clips the
    result. Subclasses implement ``_apply(x, rng)`` on the selected samples ``(n, C, H, W)``.
    """

    name: str = ""
    #: the output has the input's spatial size (False only for crops to another size)
    keeps_shape = True

    def __init__(self, p: float = 1.0, clip=None):
        who = f"augmentation {self.name!r}"
        self.p = check_range(p, who, "p", 0.0, 1.0)
        if clip is not None:
            try:
                lo, hi = (float(c) for c in clip)
            except (TypeError, ValueError):
                raise HyperparameterError(f"{who}: clip must be a pair (lo, hi), got "
                                          f"{clip!r}") from None
            if not lo < hi:
                raise HyperparameterError(f"{who}: clip needs lo < hi, got {clip!r}")
            clip = (lo, hi)
        self.clip = clip

    def __call__(self, x, rng=None) -> np.ndarray:
        who = f"augmentation {self.name!r}"
        x = check_images(x, who)
        single = x.ndim == 3
        xb = x[None] if single else x
        rng = as_rng(rng)
        out = self._transform(xb, rng)
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        out = np.ascontiguousarray(out, dtype=x.dtype)
        return out[0] if single else out

    def _transform(self, x, rng):
        if self.p >= 1.0:
            return self._apply(x, rng)
        chosen = rng.random(x.shape[0]) < self.p
        if not self.keeps_shape:
            raise HyperparameterError(f"augmentation {self.name!r}: a transform that changes "
                                      f"the image size needs p = 1")
        out = x.copy()
        if chosen.any():
            out[chosen] = self._apply(x[chosen], rng)
        return out

    def _apply(self, x, rng):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"p": self.p, "clip": None if self.clip is None else list(self.clip)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"
