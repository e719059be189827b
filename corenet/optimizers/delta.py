"""Per-weight learning rates adapted from gradient signs: the delta-delta and
delta-bar-delta rules (spec optimizers.md §4-5, decisions D-09, D-53)."""
from __future__ import annotations

import numpy as np

from ._base import StatefulOptimizer, check_interval
from ..errors import HyperparameterError


class DeltaDelta(StatefulOptimizer):
    """Delta-delta rule (``optimizer:delta_delta``, optimizers.md §4; Barto & Sutton 1981,
    Jacobs 1988).

    Per weight: ``η_i ← clip(η_i + γ g_i^{(t)} g_i^{(t−1)}, lr_min, lr_max)`` with
    ``g^{(0)} = 0``, then ``θ_i ← θ_i − η_i g_i^{(t)}``. The clip at ``lr_min = 0`` keeps
    the rates non-negative (D-53); ``lr_max=None`` means no upper bound.
    State: ``lrs`` η (initialised to ``lr``, also for entries added by growth) and
    ``prev_grad``. Defaults: lr 0.01, meta_lr γ 1e-3, lr_min 0, lr_max None.
    """

    name = "delta_delta"
    defaults = {"lr": 0.01, "meta_lr": 1e-3, "lr_min": 0.0, "lr_max": None}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "meta_lr", 0.0)
        check_interval(self, group, "lr_min", 0.0)
        check_interval(self, group, "lr_max", group["lr_min"], allow_none=True)

    def fresh_state(self, group):
        return {"lrs": group["lr"]}

    def update(self, p, g, state, group):
        self.init_state(p, state, group, ("lrs", "prev_grad"))
        eta, prev = state["lrs"], state["prev_grad"]
        prev *= g                                   # g^{(t)} g^{(t−1)}
        prev *= group["meta_lr"]
        eta += prev
        np.maximum(eta, group["lr_min"], out=eta)
        if group["lr_max"] is not None:
            np.minimum(eta, group["lr_max"], out=eta)
        np.multiply(eta, g, out=prev)
        p.data -= prev
        prev[...] = g

    @classmethod
    def examples(cls):
        return [{"lr": 0.05, "meta_lr": 0.01}]


class DeltaBarDelta(StatefulOptimizer):
    """Delta-bar-delta rule (``optimizer:delta_bar_delta``, optimizers.md §5; Jacobs 1988).

    Per weight, with the **previous** average ḡ (D-09)::

        if ḡ_i g_i > 0:  η_i ← η_i + κ          (additive increase)
        elif ḡ_i g_i < 0: η_i ← (1 − φ) η_i     (multiplicative decrease)
        u_i ← μ u_i + η_i g_i;   θ_i ← θ_i − u_i
        ḡ_i ← (1 − θ_avg) g_i + θ_avg ḡ_i       (after its use)

    State: ``lrs`` η (init ``lr``, also for grown entries), ``grad_avg`` ḡ, ``velocity`` u
    (momentum > 0 only). Defaults: lr 0.01, kappa 1e-3, phi 0.1, theta 0.7, momentum 0.
    """

    name = "delta_bar_delta"
    defaults = {"lr": 0.01, "kappa": 1e-3, "phi": 0.1, "theta": 0.7, "momentum": 0.0}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        if group["lr"] <= 0:
            raise HyperparameterError(f"optimizer {self.name!r}: lr (the initial rate) must "
                                      f"be > 0, got {group['lr']!r}")
        check_interval(self, group, "kappa", 0.0, low_open=True)
        check_interval(self, group, "phi", 0.0, 1.0, low_open=True, high_open=True)
        check_interval(self, group, "theta", 0.0, 1.0, low_open=True, high_open=True)
        check_interval(self, group, "momentum", 0.0, 1.0, high_open=True)

    def fresh_state(self, group):
        return {"lrs": group["lr"]}

    def update(self, p, g, state, group):
        mu = group["momentum"]
        self.init_state(p, state, group,
                        ("lrs", "grad_avg") + (("velocity",) if mu > 0 else ()))
        eta, avg = state["lrs"], state["grad_avg"]
        prod = np.multiply(avg, g)
        up, down = prod > 0, prod < 0
        np.add(eta, group["kappa"], out=eta, where=up)
        np.multiply(eta, 1.0 - group["phi"], out=eta, where=down)
        np.multiply(eta, g, out=prod)               # η_i g_i
        if mu > 0:
            u = state.get("velocity")
            if u is None:
                u = state["velocity"] = np.zeros_like(eta)
            u *= mu
            u += prod
            p.data -= u
        else:
            p.data -= prod
        theta = group["theta"]
        avg *= theta
        avg += (1.0 - theta) * g

    @classmethod
    def examples(cls):
        return [{"lr": 0.05}, {"lr": 0.05, "momentum": 0.5}]
