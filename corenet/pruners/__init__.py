"""Pruners (plugin family ``pruner``; spec pruning.md): masks, magnitude pruning, Optimal
Brain Damage, Optimal Brain Surgeon (full and layer-wise), unit pruning and compaction.

Registered: ``magnitude``, ``obd``, ``obs``, ``layerwise_obs``, ``unit``. Every pruner is

* a one-shot tool: ``pruner.prune(model, X, y) -> PruneReport`` (rounds of score → mask
  → retrain with stop criteria; parameters and masks restored on any error), and
* a per-run plugin: ``model.fit(X, y, callbacks=[pruner])`` prunes at epoch ends along
  a sparsity schedule.

Helpers: :func:`sparsity_summary`, :func:`set_masks`, :func:`unprune`,
:func:`prunable_parameters`, :func:`compact` (physically remove dead units).
"""
from __future__ import annotations

from ..plugins import hookimpl
from .base import (FlatLayout, Pruner, PruneReport, Snapshot, check_masks, format_sparsity,
                   is_prunable, prunable_parameters, set_masks, sparsity_summary, unprune)
from .compact import compact
from .layerwise import LayerwiseOBSPruner, layer_hessian
from .magnitude import MagnitudePruner
from .obd import OBDPruner
from .obs import OBSPruner, cap_corrections, obs_correction, obs_saliencies
from .unit import UnitPruner

__all__ = ["Pruner", "PruneReport", "MagnitudePruner", "OBDPruner", "OBSPruner",
           "LayerwiseOBSPruner", "UnitPruner", "compact", "sparsity_summary",
           "format_sparsity", "set_masks", "unprune", "prunable_parameters", "is_prunable",
           "check_masks", "Snapshot", "FlatLayout", "obs_saliencies", "obs_correction",
           "cap_corrections", "layer_hessian"]


@hookimpl
def corenet_register_pruners():
    return [MagnitudePruner, OBDPruner, OBSPruner, LayerwiseOBSPruner, UnitPruner]
