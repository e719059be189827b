"""A synthetic semantic-segmentation data set for U-Nets (convolution.md §8.3).

Not in the spec; corenet's own generator. Each image is a noisy dark background with a
few bright filled shapes; the label of a pixel is the class of the shape covering it
(0 = background). Shapes drawn later occlude earlier ones, in the image and in the labels
alike, so the labels are exactly what the image shows.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError

KINDS = ("disc", "square", "triangle", "diamond")


def _shape_mask(kind, yy, xx, cy, cx, r):
    if kind == "disc":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "square":
        return (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
    if kind == "triangle":          # apex up, base at cy + r, half-width r at the base
        t = (yy - (cy - r)) / 2.0
        return (yy >= cy - r) & (yy <= cy + r) & (np.abs(xx - cx) <= t)
    return np.abs(yy - cy) + np.abs(xx - cx) <= r           # diamond


def synthetic_segmentation(n: int = 256, size: int = 32, n_classes: int = 3,
                           random_state=None, *, max_shapes: int = 3, noise: float = 0.1,
                           dtype=np.float64):
    """``n`` images ``(n, 1, size, size)`` and per-pixel labels ``(n, size, size)`` (int64).

    Classes: 0 is the background; with ``n_classes = 2`` every object (a disc or a square,
    at random) is class 1; with ``n_classes = 3 … 5`` class k ≥ 1 is the shape
    ``("disc", "square", "triangle", "diamond")[k − 1]``, so telling classes apart needs
    the shape, not the brightness. Each image holds 1 … ``max_shapes`` objects of
    radius (half side) uniform in ``[size/10, size/4]`` centred uniformly inside the image;
    objects have intensity 1 and the background 0, plus Gaussian noise of standard
    deviation ``noise``. Deterministic for a given ``random_state`` (an int or a NumPy
    Generator).
    """
    for name, value, low in (("n", n, 1), ("size", size, 8), ("max_shapes", max_shapes, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise HyperparameterError(f"dataset 'synthetic_segmentation': {name} must be an "
                                      f"integer >= {low}, got {value!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
            or not 2 <= n_classes <= 1 + len(KINDS):
        raise HyperparameterError(f"dataset 'synthetic_segmentation': n_classes must be an "
                                  f"integer in [2, {1 + len(KINDS)}], got {n_classes!r}")
    if not np.isfinite(noise) or noise < 0:
        raise HyperparameterError(f"dataset 'synthetic_segmentation': noise must be >= 0, "
                                  f"got {noise!r}")
    rng = random_state if isinstance(random_state, np.random.Generator) else \
        np.random.default_rng(random_state)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.zeros((n, 1, size, size))
    labels = np.zeros((n, size, size), dtype=np.int64)
    r_lo, r_hi = size / 10.0, size / 4.0
    for i in range(n):
        for _ in range(int(rng.integers(1, max_shapes + 1))):
            if n_classes == 2:
                cls, kind = 1, KINDS[int(rng.integers(0, 2))]
            else:
                cls = int(rng.integers(1, n_classes))
                kind = KINDS[cls - 1]
            r = rng.uniform(r_lo, r_hi)
            cy, cx = rng.uniform(0, size - 1, size=2)
            m = _shape_mask(kind, yy, xx, cy, cx, r)
            images[i, 0][m] = 1.0
            labels[i][m] = cls
    if noise:
        images += rng.normal(0.0, noise, size=images.shape)
    return images.astype(dtype), labels
