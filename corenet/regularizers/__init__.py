"""The regularizer family (spec regularization.md §1-4, §8; D-42, D-44, D-52, D-54, D-56).

Penalties (coupled ``λ∇Ω`` added between backward and the step; hook-free):
``l2``, ``l1``, ``log_penalty``, ``weight_elimination``, ``gradient_normalized``,
``soft_weight_sharing`` (also learns its mixture after each step).
Parameter-acting (through event hooks): ``l2(decoupled=True)``, ``l1(mode="proximal")``,
``max_norm``, ``weight_noise``, ``flat_minimum_search``.

Hook-carrying regularizers are plugin objects: the trainer registers the objects of
``regularizers=[...]`` with the plugin manager for the run (as it does callbacks); with a
trainer that does not, pass the same object in ``callbacks=[...]`` as well (it is
registered once). Hard weight sharing and tied transposes (§4.1-4.2) are layers:
``tied_dense`` / ``tie`` and ``pair_distance`` in :mod:`corenet.layers.special`.
"""
from ..plugins import hookimpl
from ._base import GroupSelection, PenaltyRegularizer
from .constraints import MaxNorm, WeightNoise
from .fms import FlatMinimumSearch, fms_terms, fms_value_and_grad
from .penalties import (DecoupledL2, GradientNormalized, L1, L2, LogPenalty, ProximalL1,
                        WeightElimination, soft_threshold)
from .soft_sharing import SoftWeightSharing, mixture_terms


@hookimpl
def corenet_register_regularizers():
    return [L2, L1, LogPenalty, WeightElimination, GradientNormalized, MaxNorm, WeightNoise,
            SoftWeightSharing, FlatMinimumSearch]


__all__ = ["DecoupledL2", "FlatMinimumSearch", "GradientNormalized", "GroupSelection", "L1",
           "L2", "LogPenalty", "MaxNorm", "PenaltyRegularizer", "ProximalL1",
           "SoftWeightSharing", "WeightElimination", "WeightNoise", "fms_terms",
           "fms_value_and_grad", "mixture_terms", "soft_threshold"]
