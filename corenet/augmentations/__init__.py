"""The data-augmentation family (``augmentation:*``, spec regularization.md §9, D-65) and
the ``augment`` callback that applies one to every training batch.

Transforms act on float images ``(C, H, W)`` or batches ``(N, C, H, W)`` with independent
random parameters per sample, drawn fresh at every call from a numpy Generator:
``random_flip``, ``random_translate``, ``random_crop``, ``random_rotation``,
``random_shear`` (geometry: inverse mapping, bilinear, fill 0, centre ``((H−1)/2,
(W−1)/2)``, 90° = ``numpy.rot90(·, k=−1)``), ``brightness``, ``contrast``, ``saturation``,
``channel_noise``, ``gaussian_input_noise``, and ``compose([t₁, …])``. Deterministic
helpers: :func:`rotate`, :func:`shear`, :func:`translate`, :func:`sample`.
"""
from __future__ import annotations

import numpy as np

from .. import registry
from ..callback import Callback
from ..errors import HyperparameterError, ShapeError
from ..plugins import hookimpl
from ._base import Augmentation, as_rng
from ._geometry import (RandomCrop, RandomFlip, RandomRotation, RandomShear, RandomTranslate,
                        rotate, sample, shear, translate)
from ._photometric import (Brightness, ChannelNoise, Contrast, GaussianInputNoise, Saturation,
                           grey)


def _spec(t) -> dict:
    return {"name": t.name, **t.get_config()}


class Compose(Augmentation):
    """``augmentation:compose``: apply ``transforms`` in order (each with its own ``p`` and
    ``clip``); the whole chain is applied to a sample with probability ``p`` (default 1).
    Transforms may be instances, names, ``{"name": ..., **kwargs}`` dicts or
    ``(name, kwargs)`` pairs."""

    name = "compose"

    def __init__(self, transforms=(), p: float = 1.0, clip=None):
        super().__init__(p, clip)
        if isinstance(transforms, (str, dict, Augmentation)):
            transforms = [transforms]
        self.transforms = [registry.create("augmentation", t) for t in transforms]
        for t in self.transforms:
            if not isinstance(t, Augmentation):
                raise HyperparameterError(f"augmentation 'compose': {t!r} is not an "
                                          f"augmentation")
        self.keeps_shape = all(t.keeps_shape for t in self.transforms)

    def _apply(self, x, rng):
        out = x
        for t in self.transforms:
            out = t(out, rng)
        return out if out is not x else x.copy()

    def get_config(self):
        return {"transforms": [_spec(t) for t in self.transforms], **super().get_config()}


def make_augmentation(spec) -> Augmentation:
    """An augmentation from an instance, a name, a dict, a ``(name, kwargs)`` pair or a list
    of those (composed)."""
    if isinstance(spec, (list, tuple)) and not (len(spec) == 2 and isinstance(spec[0], str)
                                                and isinstance(spec[1], dict)):
        return Compose(list(spec))
    t = registry.create("augmentation", spec)
    if not isinstance(t, Augmentation):
        raise HyperparameterError(f"augment: {spec!r} is not an augmentation")
    return t


class Augment(Callback):
    """Augment every training batch (``callback:augment``, regularization.md §9,
    ``include_original=False``): in ``corenet_on_batch_begin`` the batch ``X (N, C, H, W)``
    is replaced, in place, by ``transform(X, rng)`` before the forward pass, so each sample
    is augmented afresh every time it is used; validation data is never augmented.

    In-place replacement needs a batch that is a private copy: the trainer gathers one
    (``X[idx]``) when it shuffles. A batch that is a view of the training array (``shuffle
    =False`` with a trainer that slices) is refused with an error rather than corrupting
    the data. ``transform`` must keep the shape (e.g. ``random_crop`` with ``size=None``).
    ``rng``: ``default_rng(random_state)`` at train begin, or a child of the trainer's
    generator when ``random_state`` is None (bit-reproducible runs).
    ``include_original=True`` (both versions in the objective) is not offered: it changes
    the batch size.
    """

    name = "augment"

    def __init__(self, transform="random_flip", random_state=None):
        self.transform = make_augmentation(transform)
        if not self.transform.keeps_shape:
            raise HyperparameterError(f"augment: the transform {self.transform!r} changes the "
                                      f"image size; the batch is replaced in place")
        if random_state is not None and not isinstance(random_state, (int, np.integer)):
            raise HyperparameterError(f"augment: random_state must be an int or None, got "
                                      f"{random_state!r}")
        self.random_state = random_state
        self.rng = None

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        self.rng = (np.random.default_rng(self.random_state) if self.random_state is not None
                    else trainer.rng.spawn(1)[0])

    @hookimpl
    def corenet_on_batch_begin(self, trainer, X):
        if X.ndim != 4:
            raise ShapeError(f"augment: expects image batches (N, C, H, W), got shape {X.shape}")
        if not X.flags.owndata or not X.flags.writeable:
            raise RuntimeError("augment: the training batch is a view of the training data "
                               "(fit(..., shuffle=False)); augmenting it in place would "
                               "change the data set. Train with shuffle=True")
        if self.rng is None:
            self.rng = as_rng(self.random_state)
        X[...] = self.transform(X, self.rng)

    def get_config(self):
        return {"transform": _spec(self.transform), "random_state": self.random_state}


@hookimpl
def corenet_register_augmentations():
    return [RandomFlip, RandomTranslate, RandomCrop, RandomRotation, RandomShear, Brightness,
            Contrast, Saturation, ChannelNoise, GaussianInputNoise, Compose]


@hookimpl
def corenet_register_callbacks():
    return [Augment]


__all__ = ["Augment", "Augmentation", "Brightness", "ChannelNoise", "Compose", "Contrast",
           "GaussianInputNoise", "RandomCrop", "RandomFlip", "RandomRotation", "RandomShear",
           "RandomTranslate", "Saturation", "grey", "make_augmentation", "rotate", "sample",
           "shear", "translate"]
