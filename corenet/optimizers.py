"""Gradient descent and SGD with momentum / Nesterov (spec optimizers.md §1-3)."""
from __future__ import annotations

from .errors import HyperparameterError
from .optimizer import Optimizer
from .plugins import hookimpl


class SGD(Optimizer):
    """Stochastic gradient descent (``optimizer:sgd``, optimizers.md §1-3).

    * plain: ``θ ← θ − η g``;
    * standard momentum (default form, D-08): ``v ← μ v + (1 − τ) g``, ``θ ← θ − η v``
      with ``v₀ = 0``, μ = ``momentum``, τ = ``dampening``;
    * classical form (``momentum_form="classical"``): ``V ← μ V − η g``, ``θ ← θ + V``;
    * Nesterov (``nesterov=True``, requires τ = 0): ``v ← μ v + g``,
      ``θ ← θ − η (g + μ v)``.

    Defaults: lr 0.01, momentum 0, dampening 0, nesterov False (D-75).
    """

    name = "sgd"
    defaults = {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                "momentum_form": "standard"}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        mu, tau = group["momentum"], group["dampening"]
        if not 0.0 <= mu < 1.0:
            raise HyperparameterError(f"optimizer {self.name!r}: momentum must be in [0, 1), "
                                      f"got {mu!r}")
        if not 0.0 <= tau <= 1.0:
            raise HyperparameterError(f"optimizer {self.name!r}: dampening must be in [0, 1], "
                                      f"got {tau!r}")
        if group["nesterov"] and (mu <= 0 or tau != 0):
            raise HyperparameterError(f"optimizer {self.name!r}: nesterov needs momentum > 0 "
                                      f"and dampening 0, got momentum={mu!r}, "
                                      f"dampening={tau!r}")
        if group["momentum_form"] not in ("standard", "classical"):
            raise HyperparameterError(f"optimizer {self.name!r}: momentum_form must be "
                                      f"'standard' or 'classical', got "
                                      f"{group['momentum_form']!r}")

    def update(self, p, g, state, group):
        lr, mu = group["lr"], group["momentum"]
        if mu == 0.0:
            p.data -= lr * g
            return
        if group["momentum_form"] == "classical":
            V = state.get("velocity")
            if V is None:
                V = state["velocity"] = p.data * 0.0
            V *= mu
            V -= lr * g
            p.data += V
            return
        v = state.get("momentum_buffer")
        if v is None:
            v = state["momentum_buffer"] = p.data * 0.0
        v *= mu
        tau = group["dampening"]
        v += g if tau == 0.0 else (1.0 - tau) * g
        if group["nesterov"]:
            p.data -= lr * (g + mu * v)
        else:
            p.data -= lr * v


class GD(SGD):
    """Full-batch gradient descent ``θ ← θ − η g`` (``optimizer:gd``, optimizers.md §1).

    The same rule as ``sgd``; the trainer passes the gradient of the mean loss over all
    samples when ``batch_size`` equals the data-set size (use ``fit(batch_size=len(X))``).
    """

    name = "gd"


@hookimpl
def corenet_register_optimizers():
    return [GD, SGD]
