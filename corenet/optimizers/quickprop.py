"""Quickprop (spec optimizers.md §10; Fahlman 1988; decisions D-12, D-73)."""
from __future__ import annotations

import numpy as np

from ._base import StatefulOptimizer, check_choice, check_interval


class Quickprop(StatefulOptimizer):
    """Quickprop (``optimizer:quickprop``, optimizers.md §10).

    Each weight models the loss along itself as a parabola through the current slope and
    the previous one and jumps to its minimum, ``Δθ^{(t)} = Δθ^{(t−1)} g^{(t)} /
    (g^{(t−1)} − g^{(t)})``, with Fahlman's safeguards (``mode="fahlman"``, default,
    D-12). With the slope ``s = g + decay·θ``, ``shrink = μ/(1 + μ)``, previous step d and
    previous slope p, per element::

        d < 0:  step = −ε s if s > 0 else 0
                s ≥ shrink·p → step += μ d        (maximum growth)
                p − s = 0     → step = −ε s        (degenerate secant)
                otherwise     → step += d s/(p − s) (parabola minimum)
        d > 0:  the mirror image (s < 0 for the gradient term, s ≤ shrink·p for μ d)
        d = 0:  step = −ε s                        (bootstrap / restart)
        step clipped to ±max_step if given;  θ ← θ + step;  d ← step;  p ← s

    ``mode="secant"``: ``step = d·g/(p − g)`` if d ≠ 0 and p ≠ g, else ``−ε g``
    (``decay`` ignored; one step to the minimum of a 1-D quadratic after the bootstrap).

    ``decay`` acts on every parameter it is given, biases included (Fahlman's decay is
    part of the slope of every weight; the generic ``weight_decay`` follows D-42 instead).
    State: ``prev_step`` d and ``prev_slope`` p (zeros; zeros for grown entries too).
    Defaults: lr ε 0.35, mu 1.75 (D-73; cascade-correlation uses 2.0), decay 1e-4,
    max_step None, mode "fahlman".
    """

    name = "quickprop"
    defaults = {"lr": 0.35, "mu": 1.75, "decay": 1e-4, "max_step": None, "mode": "fahlman"}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "mu", 0.0, low_open=True)
        check_interval(self, group, "decay", 0.0)
        check_interval(self, group, "max_step", 0.0, low_open=True, allow_none=True)
        check_choice(self, group, "mode", ("fahlman", "secant"))

    def update(self, p, g, state, group):
        self.init_state(p, state, group, ("prev_step", "prev_slope"))
        d, prev = state["prev_step"], state["prev_slope"]
        eps = group["lr"]
        if group["mode"] == "secant":
            s = g
            step = np.multiply(s, -eps)
            denom = prev - s
            use = (d != 0) & (denom != 0)
            np.divide(d * s, denom, out=step, where=use)
        else:
            s = g + group["decay"] * p.data if group["decay"] else g
            step = self._fahlman(s, d, prev, eps, group["mu"])
        if group["max_step"] is not None:
            np.clip(step, -group["max_step"], group["max_step"], out=step)
        p.data += step
        d[...] = step
        prev[...] = s

    @staticmethod
    def _fahlman(s, d, prev, eps, mu):
        """The safeguarded Quickprop step of optimizers.md §10.1, vectorised."""
        shrink = mu / (1.0 + mu)
        grad_term = np.multiply(s, -eps)
        down, up = d < 0, d > 0
        # gradient term only while the slope still points the way of the previous step
        use_grad = (d == 0) | (down & (s > 0)) | (up & (s < 0))
        step = np.where(use_grad, grad_term, 0.0).astype(s.dtype, copy=False)
        limit = shrink * prev
        maximal = (down & (s >= limit)) | (up & (s <= limit))
        denom = prev - s
        moving = down | up
        degenerate = moving & ~maximal & (denom == 0)
        secant = moving & ~maximal & ~degenerate
        step += np.where(maximal, mu * d, 0.0)
        np.copyto(step, grad_term, where=degenerate)
        quotient = np.zeros_like(step)
        np.divide(d * s, denom, out=quotient, where=secant)
        step += quotient
        return step

    @classmethod
    def examples(cls):
        return [{"lr": 0.1}, {"lr": 0.1, "mode": "secant"}, {"lr": 0.1, "max_step": 0.5}]
