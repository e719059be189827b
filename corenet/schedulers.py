"""Learning-rate schedules (spec optimizers.md §13); ``t`` counts completed epochs/steps."""
from __future__ import annotations

import math

from .errors import HyperparameterError, check_positive, check_range
from .optimizer import Scheduler
from .plugins import hookimpl


class Constant(Scheduler):
    """``η_t = η₀`` (``scheduler:constant``)."""

    name = "constant"

    def lr_at(self, t, base_lr):
        return base_lr


class Step(Scheduler):
    """``η_t = η₀ · γ^⌊t/step_size⌋`` (``scheduler:step``; step_size 150, γ 0.1)."""

    name = "step"

    def __init__(self, step_size: int = 150, gamma: float = 0.1, unit: str = "epoch"):
        super().__init__(unit)
        if int(step_size) < 1:
            raise HyperparameterError(f"scheduler 'step': step_size must be >= 1, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = check_positive(gamma, "scheduler 'step'", "gamma")

    def lr_at(self, t, base_lr):
        return base_lr * self.gamma ** (t // self.step_size)

    def get_config(self):
        return {"step_size": self.step_size, "gamma": self.gamma, **super().get_config()}


class MultiStep(Scheduler):
    """``η_t = η₀ · γ^#{milestones ≤ t}`` (``scheduler:multistep``; γ 0.1)."""

    name = "multistep"

    def __init__(self, milestones=(), gamma: float = 0.1, unit: str = "epoch"):
        super().__init__(unit)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = check_positive(gamma, "scheduler 'multistep'", "gamma")

    def lr_at(self, t, base_lr):
        return base_lr * self.gamma ** sum(m <= t for m in self.milestones)

    def get_config(self):
        return {"milestones": self.milestones, "gamma": self.gamma, **super().get_config()}


class Exponential(Scheduler):
    """``η_t = η₀ γ^t`` (``scheduler:exponential``; γ 0.95)."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95, unit: str = "epoch"):
        super().__init__(unit)
        self.gamma = check_positive(gamma, "scheduler 'exponential'", "gamma")

    def lr_at(self, t, base_lr):
        return base_lr * self.gamma ** t

    def get_config(self):
        return {"gamma": self.gamma, **super().get_config()}


class InverseTime(Scheduler):
    """``η_t = η₀ / (1 + decay·t)`` (``scheduler:inverse_time``; decay 0.01)."""

    name = "inverse_time"

    def __init__(self, decay: float = 0.01, unit: str = "epoch"):
        super().__init__(unit)
        self.decay = check_positive(decay, "scheduler 'inverse_time'", "decay", allow_zero=True)

    def lr_at(self, t, base_lr):
        return base_lr / (1.0 + self.decay * t)

    def get_config(self):
        return {"decay": self.decay, **super().get_config()}


class Annealing(Scheduler):
    """``η_t = η₀`` for ``t ≤ t₀``, ``η₀ t₀ / t`` after (``scheduler:annealing``; t₀ 100)."""

    name = "annealing"

    def __init__(self, t0: int = 100, unit: str = "epoch"):
        super().__init__(unit)
        self.t0 = check_positive(t0, "scheduler 'annealing'", "t0")

    def lr_at(self, t, base_lr):
        return base_lr if t <= self.t0 else base_lr * self.t0 / t

    def get_config(self):
        return {"t0": self.t0, **super().get_config()}


class Cosine(Scheduler):
    """``η_t = η_min + ½(η₀ − η_min)(1 + cos(π·min(t, T)/T))`` (``scheduler:cosine``)."""

    name = "cosine"

    def __init__(self, T: int, eta_min: float = 0.0, unit: str = "epoch"):
        super().__init__(unit)
        self.T = check_positive(T, "scheduler 'cosine'", "T")
        self.eta_min = check_positive(eta_min, "scheduler 'cosine'", "eta_min", allow_zero=True)

    def lr_at(self, t, base_lr):
        return self.eta_min + 0.5 * (base_lr - self.eta_min) * (
            1.0 + math.cos(math.pi * min(t, self.T) / self.T))

    def get_config(self):
        return {"T": self.T, "eta_min": self.eta_min, **super().get_config()}


class LinearWarmup(Scheduler):
    """``η_t = η₀ (t+1)/T_w`` for ``t < T_w``, then ``after`` (a schedule spec, default
    constant) evaluated at ``t − T_w`` (``scheduler:linear_warmup``; warmup 5)."""

    name = "linear_warmup"

    def __init__(self, warmup: int = 5, after=None, unit: str = "epoch"):
        super().__init__(unit)
        from . import registry

        if int(warmup) < 1:
            raise HyperparameterError(f"scheduler 'linear_warmup': warmup must be >= 1, got "
                                      f"{warmup}")
        self.warmup = int(warmup)
        self.after = after
        self._after = registry.create("scheduler", after) if after else Constant(unit)

    def lr_at(self, t, base_lr):
        if t < self.warmup:
            return base_lr * (t + 1) / self.warmup
        return self._after.lr_at(t - self.warmup, base_lr)

    def get_config(self):
        return {"warmup": self.warmup, "after": self.after, **super().get_config()}


class ReduceOnPlateau(Scheduler):
    """Multiply the rate by ``factor`` when the monitored metric has not improved
    (``metric < best·(1 − threshold)`` in mode min; ``> best·(1 + threshold)`` in max) for
    ``patience`` evaluations, then wait ``cooldown``; never below ``min_lr``
    (``scheduler:reduce_on_plateau``). The trainer passes ``val_loss`` (or the training
    loss without validation data) to ``step_epoch``."""

    name = "reduce_on_plateau"

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, mode: str = "min"):
        super().__init__("epoch")
        self.factor = check_range(factor, "scheduler 'reduce_on_plateau'", "factor", 0, 1,
                                  low_open=True, high_open=True)
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold = float(threshold)
        self.min_lr = float(min_lr)
        if mode not in ("min", "max"):
            raise HyperparameterError(f"scheduler 'reduce_on_plateau': mode must be min or "
                                      f"max, got {mode!r}")
        self.mode = mode
        self.best, self.bad, self.cooling = None, 0, 0

    def lr_at(self, t, base_lr):
        return base_lr

    def bind(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        return self

    def step_epoch(self, metric=None) -> None:
        if metric is None:
            return
        m = float(metric)
        better = (self.best is None or
                  (m < self.best * (1 - self.threshold) if self.mode == "min"
                   else m > self.best * (1 + self.threshold)))
        if better:
            self.best, self.bad = m, 0
        else:
            self.bad += 1
        if self.cooling > 0:
            self.cooling -= 1
            self.bad = 0
        elif self.bad > self.patience:
            for g in self.optimizer.param_groups:
                g["lr"] = max(g["lr"] * self.factor, self.min_lr)
            self.cooling, self.bad = self.cooldown, 0

    def state_dict(self):
        return {"best": self.best, "bad": self.bad, "cooling": self.cooling,
                "lrs": [g["lr"] for g in self.optimizer.param_groups]}

    def load_state_dict(self, state):
        self.best, self.bad, self.cooling = state["best"], state["bad"], state["cooling"]
        for g, lr in zip(self.optimizer.param_groups, state["lrs"]):
            g["lr"] = lr

    def get_config(self):
        return {"factor": self.factor, "patience": self.patience, "threshold": self.threshold,
                "cooldown": self.cooldown, "min_lr": self.min_lr, "mode": self.mode}


@hookimpl
def corenet_register_schedulers():
    return [Constant, Step, MultiStep, Exponential, InverseTime, Annealing, Cosine,
            LinearWarmup, ReduceOnPlateau]
