"""Magnitude pruning (``pruner:magnitude``, spec pruning.md §2)."""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError
from .base import Pruner, count_pruned, k_from_amount, prune_entries, smallest


class MagnitudePruner(Pruner):
    """Remove the unpruned prunable weights of smallest ``|w|`` (pruning.md §2).

    ``scope="global"`` ranks all prunable weights together (ties → the lower index in
    the parameter-vector order of README §2.3); ``scope="layer"`` applies the same
    fraction within each array (``k_p = ⌊f·n_p + ½⌋``). ``threshold`` instead prunes every
    unpruned weight with ``|w| < threshold``. One-shot (``prune``), iterative
    (``rounds`` with ``retrain_epochs``) or on a sparsity schedule during training
    (``model.fit(..., callbacks=[MagnitudePruner(target_sparsity=0.9, end_epoch=20)])``);
    see :class:`~corenet.pruners.Pruner` for the common options.

    Example (TV-PR-04): ``w = [0.5, −0.05, 0.2, −0.8, 0.01]``, ``amount=0.4`` → k = 2,
    mask ``[1, 0, 1, 1, 0]``.
    """

    name = "magnitude"
    needs_data = False
    needs_loss = False

    def __init__(self, amount=0.2, *, threshold=None, scope: str = "global", **kwargs):
        super().__init__(amount=amount, **kwargs)
        if scope not in ("global", "layer"):
            raise HyperparameterError(f"pruner 'magnitude': scope must be 'global' or "
                                      f"'layer', got {scope!r}")
        if threshold is not None and not (np.isfinite(threshold) and threshold >= 0):
            raise HyperparameterError(f"pruner 'magnitude': threshold must be >= 0, got "
                                      f"{threshold!r}")
        self.threshold, self.scope = threshold, scope

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold, "scope": self.scope}

    def scores(self, params) -> list[np.ndarray]:
        """``|w|`` per parameter, ``+inf`` at already pruned entries."""
        return [np.where(p.mask.ravel() != 0, np.abs(p.data.ravel()), np.inf) for p in params]

    def step(self, ctx, k: int) -> dict:
        params = self._params(ctx["model"])
        scores = self.scores(params)
        optimizer = ctx.get("optimizer")
        chosen = []
        if self.threshold is not None:
            chosen = [np.flatnonzero(s < self.threshold) for s in scores]
        elif self.scope == "global":
            flat = np.concatenate(scores)
            pick = smallest(flat, k)
            offsets = np.cumsum([0] + [s.size for s in scores])
            chosen = [pick[(pick >= a) & (pick < b)] - a for a, b in zip(offsets[:-1],
                                                                           offsets[1:])]
        else:
            n_unpruned = count_pruned(params)[0]
            frac = k / n_unpruned if n_unpruned else 0.0
            for p, s in zip(params, scores):
                kp = min(k_from_amount(frac, p.count_nonzero_weights()),
                         p.count_nonzero_weights())
                chosen.append(smallest(s, kp))
        removed = 0
        for p, idx in zip(params, chosen):
            if idx.size:
                prune_entries(p, idx, optimizer)
                removed += idx.size
        return {"pruned": removed}
