"""Optimal Brain Damage (``pruner:obd``; LeCun, Denker & Solla 1990; pruning.md §4)."""
from __future__ import annotations

import numpy as np

from .. import curvature
from ..errors import HyperparameterError, NotFiniteError
from .base import FlatLayout, Pruner, apply_flat_mask, smallest


def candidate_mask(model, params) -> np.ndarray:
    """Boolean vector over θ: the unpruned entries of ``params``."""
    layout = FlatLayout(model)
    cand = np.zeros(layout.n, dtype=bool)
    for p in params:
        idx = layout.indices_of(p)
        cand[idx] = p.mask.ravel() != 0
    return cand


class OBDPruner(Pruner):
    """Remove the weights of smallest saliency ``s_q = ½ H_qq θ_q²`` (D-26), H the
    Hessian of the mean training loss on the pruning data; then retrain and repeat
    (``rounds``, ``retrain_epochs``). ``hessian_method``: ``"gauss_newton_diag"``
    (LeCun's O(n_θ) second-order backward pass, default), ``"exact"`` (n_θ HVPs, small
    models) or ``"fisher"`` (networks.md §7.5). Each round records the predicted
    increase ``Σ s_q`` of the pruned weights. Common options: :class:`~corenet.pruners.Pruner`.

    OBD assumes a diagonal Hessian: it moves no other weight, so it cannot see that two
    weights do one weight's job (OBS can).
    """

    name = "obd"

    def __init__(self, amount=0.2, *, hessian_method: str = "gauss_newton_diag", **kwargs):
        super().__init__(amount=amount, **kwargs)
        if hessian_method not in ("gauss_newton_diag", "exact", "fisher"):
            raise HyperparameterError(f"pruner 'obd': hessian_method must be "
                                      f"'gauss_newton_diag', 'exact' or 'fisher', got "
                                      f"{hessian_method!r}")
        self.hessian_method = hessian_method

    def get_config(self) -> dict:
        return {**super().get_config(), "hessian_method": self.hessian_method}

    def saliencies(self, model, loss, X, y) -> np.ndarray:
        """``½ h_q θ_q²`` over θ (README §2.3) at the current parameters."""
        h = curvature.hessian_diag(model, loss, X, y, method=self.hessian_method)
        if not np.isfinite(h).all():
            raise NotFiniteError("pruner 'obd': the Hessian diagonal holds NaN or inf; "
                                 "nothing was pruned")
        theta = model.get_flat_parameters()
        return 0.5 * h.astype(np.float64) * theta.astype(np.float64) ** 2

    def step(self, ctx, k: int) -> dict:
        model = ctx["model"]
        if ctx["X"] is None:
            raise ValueError("pruner 'obd': no pruning data (pass data=(X, y))")
        s = self.saliencies(model, ctx["loss"], ctx["X"], ctx["y"])
        cand = np.flatnonzero(candidate_mask(model, self._params(model)))
        pick = cand[smallest(s[cand], k)]
        keep = np.ones(s.size)
        keep[pick] = 0
        apply_flat_mask(model, keep, ctx.get("optimizer"))
        return {"pruned": int(pick.size), "predicted_increase": float(s[pick].sum()),
                "indices": pick.tolist()}
