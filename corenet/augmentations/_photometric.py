"""Photometric and noise augmentations (spec regularization.md §9). Random parameters are
drawn per sample; images are ``(N, C, H, W)``."""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, ShapeError
from ._base import Augmentation, check_nonneg

_LUMA = np.array([0.299, 0.587, 0.114])


def grey(x) -> np.ndarray:
    """Per-pixel grey values ``(N, 1, H, W)``: ``0.299R + 0.587G + 0.114B`` for 3 channels,
    the channel mean otherwise (the image itself for 1 channel)."""
    if x.shape[1] == 3:
        return np.einsum("nchw,c->nhw", x, _LUMA)[:, None]
    return x.mean(axis=1, keepdims=True)


class _Delta(Augmentation):
    def __init__(self, delta: float = 0.2, p: float = 1.0, clip=None):
        super().__init__(p, clip)
        self.delta = check_nonneg(delta, f"augmentation {self.name!r}", "delta")

    def _factor(self, rng, n):
        return rng.uniform(1.0 - self.delta, 1.0 + self.delta, size=n)[:, None, None, None]

    def get_config(self):
        return {"delta": self.delta, **super().get_config()}


class Brightness(_Delta):
    """``augmentation:brightness`` (``delta=0.2``): ``mode="multiplicative"`` (default)
    ``x·β``, ``β ~ 𝒰(1−δ, 1+δ)``; ``mode="additive"`` ``x + β``, ``β ~ 𝒰(−δ, δ)``."""

    name = "brightness"

    def __init__(self, delta: float = 0.2, mode: str = "multiplicative", p: float = 1.0,
                 clip=None):
        super().__init__(delta, p, clip)
        if mode not in ("multiplicative", "additive"):
            raise HyperparameterError(f"augmentation 'brightness': mode must be "
                                      f"'multiplicative' or 'additive', got {mode!r}")
        self.mode = mode

    def _apply(self, x, rng):
        if self.mode == "additive":
            return x + rng.uniform(-self.delta, self.delta, size=x.shape[0])[:, None, None, None]
        return x * self._factor(rng, x.shape[0])

    def get_config(self):
        return {"mode": self.mode, **super().get_config()}


class Contrast(_Delta):
    """``augmentation:contrast`` (``delta=0.2``): ``(x − m)·c + m`` with ``m`` the mean of
    the image's grey values (:func:`grey`) and ``c ~ 𝒰(1−δ, 1+δ)``."""

    name = "contrast"

    def _apply(self, x, rng):
        m = grey(x).mean(axis=(1, 2, 3), keepdims=True)
        return (x - m) * self._factor(rng, x.shape[0]) + m


class Saturation(_Delta):
    """``augmentation:saturation`` (``delta=0.2``, 3-channel RGB only): per pixel
    ``grey + s(x − grey)``, ``grey = 0.299R + 0.587G + 0.114B``, ``s ~ 𝒰(1−δ, 1+δ)``."""

    name = "saturation"

    def _apply(self, x, rng):
        if x.shape[1] != 3:
            raise ShapeError(f"augmentation 'saturation': needs 3-channel (RGB) images, got "
                             f"{x.shape[1]} channel(s) (shape {x.shape})")
        g = grey(x)
        return g + self._factor(rng, x.shape[0]) * (x - g)


class _Noise(Augmentation):
    def __init__(self, stddev: float = 0.05, p: float = 1.0, clip=None):
        super().__init__(p, clip)
        self.stddev = check_nonneg(stddev, f"augmentation {self.name!r}", "stddev")

    def get_config(self):
        return {"stddev": self.stddev, **super().get_config()}


class ChannelNoise(_Noise):
    """``augmentation:channel_noise`` (``stddev=0.05``): per sample and channel an offset
    ``β_c ~ 𝒩(0, σ²)`` added to all pixels of channel c."""

    name = "channel_noise"

    def _apply(self, x, rng):
        return x + self.stddev * rng.standard_normal((x.shape[0], x.shape[1], 1, 1))


class GaussianInputNoise(_Noise):
    """``augmentation:gaussian_input_noise`` (``stddev=0.05``): per-pixel ``𝒩(0, σ²)``."""

    name = "gaussian_input_noise"

    def _apply(self, x, rng):
        return x + self.stddev * rng.standard_normal(x.shape)
