"""Gradient descent and SGD with momentum / Nesterov (spec optimizers.md §1-3)."""
from __future__ import annotations

from ..errors import HyperparameterError
from ._base import StatefulOptimizer, check_choice, check_flag, check_interval


class SGD(StatefulOptimizer):
    """Stochastic gradient descent (``optimizer:sgd``, optimizers.md §1-3).

    * plain: ``θ ← θ − η g``;
    * standard momentum (default form, D-08): ``v ← μ v + (1 − τ) g``, ``θ ← θ − η v``
      with ``v₀ = 0``, μ = ``momentum``, τ = ``dampening``;
    * classical form (``momentum_form="classical"``): ``V ← μ V − η g``, ``θ ← θ + V``
      (identical for constant η; with a schedule the new η applies only to the new g);
    * Nesterov (``nesterov=True``, requires τ = 0): ``v ← μ v + g``,
      ``θ ← θ − η (g + μ v)``.

    State (shape of the parameter): ``momentum_buffer`` v (standard form) or ``velocity``
    V (classical form). Defaults: lr 0.01, momentum 0, dampening 0, nesterov False (D-75).
    """

    name = "sgd"
    defaults = {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                "momentum_form": "standard"}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "momentum", 0.0, 1.0, high_open=True)
        check_interval(self, group, "dampening", 0.0, 1.0)
        check_flag(self, group, "nesterov")
        mu, tau = group["momentum"], group["dampening"]
        if group["nesterov"] and (mu <= 0 or tau != 0):
            raise HyperparameterError(f"optimizer {self.name!r}: nesterov needs momentum > 0 "
                                      f"and dampening 0, got momentum={mu!r}, "
                                      f"dampening={tau!r}")
        check_choice(self, group, "momentum_form", ("standard", "classical"))

    def update(self, p, g, state, group):
        lr, mu = group["lr"], group["momentum"]
        if mu == 0.0:
            self.init_state(p, state, group, ())
            p.data -= lr * g
            return
        if group["momentum_form"] == "classical":
            self.init_state(p, state, group, ("velocity",))
            V = state["velocity"]
            V *= mu
            V -= lr * g
            p.data += V
            return
        self.init_state(p, state, group, ("momentum_buffer",))
        v = state["momentum_buffer"]
        v *= mu
        tau = group["dampening"]
        v += g if tau == 0.0 else (1.0 - tau) * g
        if group["nesterov"]:
            p.data -= lr * (g + mu * v)
        else:
            p.data -= lr * v

    @classmethod
    def examples(cls):
        return [{"lr": 0.05}, {"lr": 0.05, "momentum": 0.9},
                {"lr": 0.05, "momentum": 0.9, "nesterov": True},
                {"lr": 0.05, "momentum": 0.9, "momentum_form": "classical"}]


class GD(SGD):
    """Full-batch gradient descent ``θ ← θ − η g`` (``optimizer:gd``, optimizers.md §1).

    The same rule as ``sgd``; the trainer passes the gradient of the mean loss over all
    samples when ``batch_size`` equals the data-set size (use ``fit(batch_size=len(X))``).
    """

    name = "gd"

    @classmethod
    def examples(cls):
        return [{"lr": 0.05}]
