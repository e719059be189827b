"""The Rprop family: Rprop+, Rprop−, iRprop+, iRprop− (spec optimizers.md §11;
Riedmiller & Braun 1993, Igel & Hüsken 2000; decisions D-13, D-51)."""
from __future__ import annotations

import numpy as np

from ._base import StatefulOptimizer, check_choice, check_pair
from ..errors import HyperparameterError

VARIANTS = ("rprop+", "rprop-", "irprop+", "irprop-")


class Rprop(StatefulOptimizer):
    """Resilient backpropagation (``optimizer:rprop``, optimizers.md §11).

    Only the sign of each partial derivative is used (``sign(0) = 0``: no move). Each
    weight has a step size Δ (init ``lr`` = Δ₀). With ``π = g_prev · g``: π > 0 →
    ``Δ ← min(Δη⁺, Δ_max)``; π < 0 → ``Δ ← max(Δη⁻, Δ_min)``; π = 0 → Δ unchanged (D-51).
    Then, per ``variant``:

    * ``"rprop-"``: ``θ ← θ − sign(g)Δ``; ``g_prev ← g``.
    * ``"rprop+"`` (weight backtracking): π < 0 → ``Δθ ← −Δθ_prev``, ``g_prev ← 0``;
      otherwise ``Δθ ← −sign(g)Δ``, ``g_prev ← g``; ``θ ← θ + Δθ``; ``Δθ_prev ← Δθ``.
    * ``"irprop-"`` (default): π < 0 → g ← 0 (no move, ``g_prev ← 0``); then as rprop-.
    * ``"irprop+"``: as rprop+, but on π < 0 the previous step is reverted only if the
      loss increased, ``E_t > E_prev``; otherwise Δθ = 0. Needs ``step(loss=E_t)`` with the
      loss at the current (pre-update) parameters; raises without it.

    The first step moves every weight by ``−sign(g)Δ₀``. Rprop is a full-batch method
    (``full_batch = True``; with noisy mini-batch gradients the sign logic breaks down).
    State: ``step_size`` Δ (init ``lr``; ``lr`` for grown entries too), ``prev_grad``,
    ``prev_update`` Δθ (``+`` variants), ``loss_prev`` (``irprop+``).
    Defaults (D-13, D-51): lr Δ₀ 0.1, etas (η⁻, η⁺) = (0.5, 1.2), step_sizes
    (Δ_min, Δ_max) = (1e-6, 50), variant "irprop-".
    """

    name = "rprop"
    full_batch = True
    defaults = {"lr": 0.1, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0),
                "variant": "irprop-"}

    @property
    def uses_loss(self) -> bool:
        """True when a group uses ``irprop+`` (the trainer must pass ``step(loss=E_t)``)."""
        return any(g["variant"] == "irprop+" for g in (self.defaults, *self.param_groups))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        if group["lr"] <= 0:
            raise HyperparameterError(f"optimizer {self.name!r}: lr (the initial step size "
                                      f"Δ₀) must be > 0, got {group['lr']!r}")
        eta_minus, eta_plus = check_pair(self, group, "etas")
        if not 0.0 < eta_minus < 1.0 < eta_plus:
            raise HyperparameterError(f"optimizer {self.name!r}: etas (η⁻, η⁺) must satisfy "
                                      f"0 < η⁻ < 1 < η⁺, got {group['etas']!r}")
        dmin, dmax = check_pair(self, group, "step_sizes")
        if not 0.0 <= dmin <= dmax:
            raise HyperparameterError(f"optimizer {self.name!r}: step_sizes (Δ_min, Δ_max) "
                                      f"must satisfy 0 <= Δ_min <= Δ_max, got "
                                      f"{group['step_sizes']!r}")
        check_choice(self, group, "variant", VARIANTS)

    def fresh_state(self, group):
        return {"step_size": group["lr"]}

    def update(self, p, g, state, group):
        variant = group["variant"]
        plus = variant.endswith("+")
        if variant == "irprop+" and self.loss_value is None:
            raise ValueError(f"optimizer {self.name!r}: variant 'irprop+' needs the loss at "
                             f"the current parameters: call step(loss=E_t)")
        self.init_state(p, state, group,
                        ("step_size", "prev_grad") + (("prev_update",) if plus else ()))
        eta_minus, eta_plus = group["etas"]
        dmin, dmax = group["step_sizes"]
        delta, g_prev = state["step_size"], state["prev_grad"]
        prod = np.multiply(g_prev, g)
        inc, dec = prod > 0, prod < 0
        np.multiply(delta, eta_plus, out=delta, where=inc)
        np.minimum(delta, dmax, out=delta, where=inc)
        np.multiply(delta, eta_minus, out=delta, where=dec)
        np.maximum(delta, dmin, out=delta, where=dec)

        # g_prev ← g, or 0 where the sign changed (all variants but rprop-)
        np.copyto(g_prev, g)
        if variant != "rprop-":
            g_prev[dec] = 0
        step = np.sign(g_prev if variant == "irprop-" else g).astype(p.dtype, copy=False)
        step *= delta
        np.negative(step, out=step)                 # Δθ = −sign(g)Δ
        if plus:
            prev_update = state["prev_update"]
            previous = state.get("loss_prev")
            if variant == "rprop+" or (previous is not None and self.loss_value > previous):
                np.negative(prev_update, out=step, where=dec)   # backtrack
            else:
                step[dec] = 0
            np.copyto(prev_update, step)
        if variant == "irprop+":
            state["loss_prev"] = self.loss_value
        p.data += step

    @classmethod
    def examples(cls):
        return [{"variant": v, "lr": 0.05} for v in VARIANTS if v != "irprop+"]
