"""Geometric augmentations (spec regularization.md §9, D-65).

Coordinates: row ``i`` (down), column ``j`` (right), centre ``c = ((H−1)/2, (W−1)/2)``.
Inverse mapping: output pixel ``(i, j)`` samples the input at real coordinates ``(u, v)``
with bilinear interpolation (``"nearest"`` optional); every neighbour outside the image
contributes ``fill`` (default 0). Coordinates within 1e-9 of an integer are snapped to it,
so exact angles such as 90° reproduce ``numpy.rot90(x, k=−1)`` exactly (TV-AUG-01).
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError
from ._base import Augmentation, check_images, check_nonneg, check_pair

_SNAP = 1e-9


def sample(x, u, v, interpolation: str = "bilinear", fill: float = 0.0) -> np.ndarray:
    """``y[n, c, i, j] = x[n, c](u[n, i, j], v[n, i, j])`` for ``x (N, C, H, W)`` and real
    coordinates ``u, v (N, H_out, W_out)``; bilinear or nearest, ``fill`` outside."""
    n, _, h, w = x.shape
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    ru, rv = np.rint(u), np.rint(v)
    u = np.where(np.abs(u - ru) < _SNAP, ru, u)
    v = np.where(np.abs(v - rv) < _SNAP, rv, v)
    nidx = np.arange(n).reshape(n, 1, 1)

    def gather(ii, jj):
        ok = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
        vals = x[nidx, :, np.clip(ii, 0, h - 1), np.clip(jj, 0, w - 1)]    # (N, Ho, Wo, C)
        return np.where(ok[..., None], vals, fill)

    if interpolation == "nearest":
        out = gather(np.floor(u + 0.5).astype(np.intp), np.floor(v + 0.5).astype(np.intp))
    else:
        i0, j0 = np.floor(u), np.floor(v)
        di, dj = (u - i0)[..., None], (v - j0)[..., None]
        i0, j0 = i0.astype(np.intp), j0.astype(np.intp)
        out = ((1 - di) * (1 - dj)) * gather(i0, j0) + ((1 - di) * dj) * gather(i0, j0 + 1) \
            + (di * (1 - dj)) * gather(i0 + 1, j0) + (di * dj) * gather(i0 + 1, j0 + 1)
    return np.ascontiguousarray(np.moveaxis(out, -1, 1), dtype=x.dtype)


def _grid(h, w):
    i, j = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                       indexing="ij")
    return i, j, (h - 1) / 2.0, (w - 1) / 2.0


def rotation_coords(h, w, phi):
    """``u = c_i + (i−c_i)cos φ − (j−c_j)sin φ``, ``v = c_j + (i−c_i)sin φ + (j−c_j)cos φ``
    for angles ``phi (N,)`` in radians; shapes ``(N, H, W)``."""
    i, j, ci, cj = _grid(h, w)
    c, s = np.cos(phi)[:, None, None], np.sin(phi)[:, None, None]
    return ci + (i - ci) * c - (j - cj) * s, cj + (i - ci) * s + (j - cj) * c


def shear_coords(h, w, psi):
    """``u = i``, ``v = j + tan ψ·(i − c_i)`` for angles ``psi (N,)`` in radians."""
    i, j, ci, _ = _grid(h, w)
    t = np.tan(psi)[:, None, None]
    return np.broadcast_to(i, (len(psi), h, w)), j + t * (i - ci)


def _as_batch(x):
    """View ``(..., H, W)`` as ``(1, M, H, W)`` for the deterministic helpers."""
    x = np.asarray(x)
    if x.ndim < 2 or x.dtype.kind != "f":
        x = np.asarray(x, dtype=np.float64)
    return x.reshape((1, -1) + x.shape[-2:])


def rotate(x, degrees: float, interpolation: str = "bilinear", fill: float = 0.0):
    """Rotate every image of ``x (..., H, W)`` by ``degrees`` (positive = clockwise on screen:
    90° equals ``numpy.rot90(x, k=−1)`` on the last two axes, D-65)."""
    xb = _as_batch(x)
    u, v = rotation_coords(xb.shape[2], xb.shape[3], np.array([np.deg2rad(degrees)]))
    return sample(xb, u, v, interpolation, fill).reshape(np.shape(x))


def shear(x, degrees: float, interpolation: str = "bilinear", fill: float = 0.0):
    """Shear every image of ``x (..., H, W)``: ``y[i, j] = x(i, j + tan ψ·(i − c_i))``."""
    xb = _as_batch(x)
    u, v = shear_coords(xb.shape[2], xb.shape[3], np.array([np.deg2rad(degrees)]))
    return sample(xb, u, v, interpolation, fill).reshape(np.shape(x))


def translate(x, shift, fill: float = 0.0):
    """``y[i, j] = x[i − Δi, j − Δj]`` (``fill`` outside) for integer ``shift = (Δi, Δj)``."""
    xb = _as_batch(x)
    h, w = xb.shape[2:]
    i, j, _, _ = _grid(h, w)
    return sample(xb, (i - shift[0])[None], (j - shift[1])[None], "nearest",
                  fill).reshape(np.shape(x))


def _check_interp(interpolation, who):
    if interpolation not in ("bilinear", "nearest"):
        raise HyperparameterError(f"{who}: interpolation must be 'bilinear' or 'nearest', got "
                                  f"{interpolation!r}")
    return interpolation


class _Geometric(Augmentation):
    def __init__(self, interpolation="bilinear", fill=0.0, p=1.0, clip=None):
        super().__init__(p, clip)
        who = f"augmentation {self.name!r}"
        self.interpolation = _check_interp(interpolation, who)
        fill = float(fill)
        if not np.isfinite(fill):
            raise HyperparameterError(f"{who}: fill must be finite, got {fill!r}")
        self.fill = fill

    def get_config(self):
        return {"interpolation": self.interpolation, "fill": self.fill, **super().get_config()}


class RandomFlip(Augmentation):
    """Mirror images (``augmentation:random_flip``): horizontally ``x[..., ::-1]`` and/or
    vertically ``x[..., ::-1, :]``. Each enabled axis is flipped independently per sample
    with probability ``p`` (default 0.5)."""

    name = "random_flip"

    def __init__(self, horizontal: bool = True, vertical: bool = False, p: float = 0.5,
                 clip=None):
        super().__init__(p, clip)
        self.horizontal, self.vertical = bool(horizontal), bool(vertical)

    def _transform(self, x, rng):
        out = x.copy()
        for enabled, axis in ((self.horizontal, 3), (self.vertical, 2)):
            if enabled:
                chosen = rng.random(x.shape[0]) < self.p
                out[chosen] = np.flip(out[chosen], axis=axis)
        return out

    def get_config(self):
        return {"horizontal": self.horizontal, "vertical": self.vertical,
                **super().get_config()}


class RandomTranslate(_Geometric):
    """Integer shifts ``(Δi, Δj)`` uniform in ``[−s, s]`` per sample
    (``augmentation:random_translate``, ``max_shift=(2, 2)``):
    ``y[i, j] = x[i − Δi, j − Δj]`` or ``fill``."""

    name = "random_translate"

    def __init__(self, max_shift=(2, 2), fill: float = 0.0, p: float = 1.0, clip=None):
        super().__init__("nearest", fill, p, clip)
        self.max_shift = check_pair(max_shift, f"augmentation {self.name!r}", "max_shift")

    def _apply(self, x, rng):
        n, _, h, w = x.shape
        si, sj = self.max_shift
        di = rng.integers(-si, si + 1, size=n)[:, None, None]
        dj = rng.integers(-sj, sj + 1, size=n)[:, None, None]
        i, j, _, _ = _grid(h, w)
        return sample(x, i - di, j - dj, "nearest", self.fill)

    def get_config(self):
        return {"max_shift": list(self.max_shift), "fill": self.fill,
                **Augmentation.get_config(self)}


class RandomCrop(_Geometric):
    """Pad by ``padding`` pixels of ``fill`` (zero-padding by default), then take a uniformly
    random window of ``size`` (``augmentation:random_crop``; ``size=None`` keeps the input
    size ``(H, W)``, ``padding=4``). A size other than the input's needs ``p = 1``."""

    name = "random_crop"

    def __init__(self, size=None, padding: int = 4, fill: float = 0.0, p: float = 1.0,
                 clip=None):
        super().__init__("nearest", fill, p, clip)
        who = f"augmentation {self.name!r}"
        self.size = None if size is None else check_pair(size, who, "size", low=1)
        self.padding = check_pair(padding, who, "padding")
        self.keeps_shape = self.size is None

    def _apply(self, x, rng):
        n, _, h, w = x.shape
        ph, pw = self.padding
        sh, sw = self.size or (h, w)
        if sh > h + 2 * ph or sw > w + 2 * pw:
            raise HyperparameterError(f"augmentation 'random_crop': size {(sh, sw)} exceeds the "
                                      f"padded image {(h + 2 * ph, w + 2 * pw)}")
        oi = rng.integers(0, h + 2 * ph - sh + 1, size=n)[:, None, None]
        oj = rng.integers(0, w + 2 * pw - sw + 1, size=n)[:, None, None]
        i, j, _, _ = _grid(sh, sw)
        return sample(x, i + oi - ph, j + oj - pw, "nearest", self.fill)

    def get_config(self):
        return {"size": None if self.size is None else list(self.size),
                "padding": list(self.padding),
                "fill": self.fill, **Augmentation.get_config(self)}


class RandomRotation(_Geometric):
    """Rotation by ``φ ~ 𝒰(−degrees, degrees)`` per sample about the centre
    (``augmentation:random_rotation``, ``degrees=15``; :func:`rotation_coords`)."""

    name = "random_rotation"

    def __init__(self, degrees: float = 15.0, interpolation: str = "bilinear",
                 fill: float = 0.0, p: float = 1.0, clip=None):
        super().__init__(interpolation, fill, p, clip)
        self.degrees = check_nonneg(degrees, f"augmentation {self.name!r}", "degrees")

    def _apply(self, x, rng):
        phi = np.deg2rad(rng.uniform(-self.degrees, self.degrees, size=x.shape[0]))
        u, v = rotation_coords(x.shape[2], x.shape[3], phi)
        return sample(x, u, v, self.interpolation, self.fill)

    def get_config(self):
        return {"degrees": self.degrees, **super().get_config()}


class RandomShear(_Geometric):
    """Horizontal shear by ``ψ ~ 𝒰(−degrees, degrees)`` per sample
    (``augmentation:random_shear``, ``degrees=10``): ``u = i``, ``v = j + tan ψ·(i − c_i)``."""

    name = "random_shear"

    def __init__(self, degrees: float = 10.0, interpolation: str = "bilinear",
                 fill: float = 0.0, p: float = 1.0, clip=None):
        super().__init__(interpolation, fill, p, clip)
        self.degrees = check_nonneg(degrees, f"augmentation {self.name!r}", "degrees")
        if self.degrees >= 90.0:
            raise HyperparameterError(f"augmentation {self.name!r}: degrees must be < 90, got "
                                      f"{degrees!r}")

    def _apply(self, x, rng):
        psi = np.deg2rad(rng.uniform(-self.degrees, self.degrees, size=x.shape[0]))
        u, v = shear_coords(x.shape[2], x.shape[3], psi)
        return sample(x, u, v, self.interpolation, self.fill)

    def get_config(self):
        return {"degrees": self.degrees, **super().get_config()}


__all__ = ["RandomCrop", "RandomFlip", "RandomRotation", "RandomShear", "RandomTranslate",
           "check_images", "rotate", "rotation_coords", "sample", "shear", "shear_coords",
           "translate"]
