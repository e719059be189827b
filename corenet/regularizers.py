"""Weight-decay penalties: L2 and L1 (spec regularization.md §1-2, D-42)."""
from __future__ import annotations

import numpy as np

from .plugins import hookimpl
from .regularizer import Regularizer


class L2(Regularizer):
    """``λ Ω``, ``Ω = ½‖w‖²``, gradient ``λ w`` (``regularizer:l2``, D-42); biases and
    normalisation parameters excluded unless ``include_bias``."""

    name = "l2"

    def penalty_of(self, data):
        return 0.5 * float(np.vdot(data, data))

    def grad_of(self, data):
        return data

    @classmethod
    def examples(cls):
        """Constructor arguments for the contract tests (:mod:`corenet.testing`)."""
        return [{"lam": 0.1}, {"lam": 0.5, "include_bias": True}]


class L1(Regularizer):
    """``λ Σ|w|``, subgradient ``λ sign(w)`` with ``sign(0) = 0`` (``regularizer:l1``, D-04)."""

    name = "l1"

    def penalty_of(self, data):
        return float(np.abs(data).sum())

    def grad_of(self, data):
        return np.sign(data)

    @classmethod
    def examples(cls):
        """Constructor arguments for the contract tests (:mod:`corenet.testing`)."""
        return [{"lam": 0.1}, {"lam": 0.5, "include_bias": True}]


@hookimpl
def corenet_register_regularizers():
    return [L2, L1]
