"""The base classes of optimizers and learning-rate schedules (spec optimizers.md).

Shaped like PyTorch's ``Optimizer``: ``param_groups`` (dicts holding ``params`` and the
group's hyperparameters, defaults filled in), per-parameter ``state`` keyed by the
:class:`~corenet.Parameter`, ``step()``, ``zero_grad()``, ``state_dict()`` referring to
parameters by position, ``load_state_dict()``.
"""
from __future__ import annotations

import numpy as np

from .errors import HyperparameterError
from .parameter import Parameter


class Optimizer:
    """Base optimizer.

    Subclasses set ``name`` and ``defaults`` (a dict of hyperparameter defaults), may
    override ``check_hyperparameters(group)`` (raise :class:`HyperparameterError` for bad
    values) and implement ``update(p, g, state, group)``, which changes ``p.data`` in
    place given the masked gradient ``g``. The base ``step`` masks gradients before the
    update and re-applies masks after it, so masked weights stay exactly zero under every
    optimizer (pruning.md §1). Frozen parameters (``trainable=False``) are skipped.

    Parameters may be given at construction or later with :meth:`bind` (the trainer binds
    an optimizer given by name to the model's parameters once the model is built).
    """

    name: str = ""
    defaults: dict = {"lr": 0.01}
    #: hyperparameters every optimizer accepts (optimizers.md §0): coupled
    #: ``g ← g + λθ`` and decoupled ``θ ← θ − lr·λ·θ`` weight decay, applied to the
    #: parameters with ``decay=True`` (weights; not biases, D-42).
    common_defaults: dict = {"weight_decay": 0.0, "decoupled_weight_decay": 0.0}

    def __init__(self, params=None, **hyperparameters):
        allowed = {**self.common_defaults, **type(self).defaults}
        unknown = set(hyperparameters) - set(allowed)
        if unknown:
            raise HyperparameterError(
                f"optimizer {self.name!r}: unknown hyperparameter(s) {sorted(unknown)}; "
                f"allowed: {sorted(allowed)}")
        self.defaults = {**allowed, **hyperparameters}
        self.check_hyperparameters(self.defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Parameter, dict] = {}
        self.iterations = 0
        if params is not None:
            self.bind(params)

    # ------------------------------------------------------------ parameters and groups
    def bind(self, params) -> "Optimizer":
        """Attach parameters: a list of Parameters or a list of group dicts."""
        self.param_groups = []
        self.state = {}
        params = list(params)
        if params and isinstance(params[0], dict):
            for group in params:
                self.add_param_group(group)
        else:
            self.add_param_group({"params": params})
        return self

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = list(group.pop("params"))
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer {self.name!r}: params must be corenet Parameters, "
                                f"got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"optimizer {self.name!r}: a parameter appears in two groups")
        unknown = set(group) - set(self.defaults)
        if unknown:
            raise HyperparameterError(f"optimizer {self.name!r}: unknown hyperparameter(s) "
                                      f"{sorted(unknown)} in a parameter group")
        full = {**self.defaults, **group}
        self.check_hyperparameters(full)
        full["params"] = params
        self.param_groups.append(full)

    @property
    def bound(self) -> bool:
        return bool(self.param_groups)

    def parameters(self) -> list[Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    def check_hyperparameters(self, group: dict) -> None:
        """Raise :class:`HyperparameterError` for out-of-range values (lr must be >= 0)."""
        for key in ("lr", "weight_decay", "decoupled_weight_decay"):
            value = group.get(key)
            if value is None:
                continue
            try:
                ok = np.isfinite(value) and value >= 0
            except TypeError:
                ok = False
            if not ok:
                raise HyperparameterError(f"optimizer {self.name!r}: {key} must be a number "
                                          f">= 0, got {value!r}")

    # ------------------------------------------------------------ stepping
    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad.fill(0.0)

    def step(self, loss=None) -> None:
        """One update of every trainable parameter from its ``grad`` (masks respected).
        ``loss`` (the objective at the current parameters) is ignored here; rules that use
        it (iRprop+) override ``step``."""
        if not self.param_groups:
            raise RuntimeError(f"optimizer {self.name!r} has no parameters: pass them to the "
                               f"constructor or call bind(model.parameters())")
        self.iterations += 1
        for group in self.param_groups:
            wd, dwd = group["weight_decay"], group["decoupled_weight_decay"]
            for p in group["params"]:
                if not p.trainable:
                    continue
                g = p.grad
                if p.masked:
                    g = g * p._mask
                if p.decay:
                    if wd:
                        g = g + wd * p.data
                    if dwd:
                        p.data -= (group["lr"] * dwd) * p.data
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self.update(p, g, state, group)
                if p.masked:
                    p.data *= p._mask

    def update(self, p: Parameter, g: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ structural changes
    def zero_state(self, param: Parameter, mask: np.ndarray) -> None:
        """Zero the per-weight state of pruned entries (``mask == 0``)."""
        for value in self.state.get(param, {}).values():
            if isinstance(value, np.ndarray) and value.shape == param.shape:
                value *= mask

    def state_resize(self, param: Parameter, new_shape, slices) -> None:
        """Resize per-weight state after a layer grows: old values go to ``slices`` of a
        zero array of ``new_shape``."""
        for key, value in list(self.state.get(param, {}).items()):
            if isinstance(value, np.ndarray) and value.ndim > 0:
                grown = np.zeros(new_shape, dtype=value.dtype)
                grown[slices] = value
                self.state[param][key] = grown

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """``{"state": {index: {key: value}}, "param_groups": [...], "iterations": t}``;
        parameters are referred to by their position across groups."""
        index = {id(p): i for i, p in enumerate(self.parameters())}
        groups = []
        for group in self.param_groups:
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = [index[id(p)] for p in group["params"]]
            groups.append(g)
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups, "iterations": self.iterations}

    def load_state_dict(self, state_dict: dict) -> None:
        params = self.parameters()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError(f"optimizer {self.name!r}: state_dict has a different group "
                             f"structure than this optimizer")
        for g, own in zip(groups, self.param_groups):
            for k, v in g.items():
                if k != "params":
                    own[k] = v
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            restored = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.ndim and v.shape != p.shape and v.size == p.size:
                        raise ValueError(f"optimizer {self.name!r}: state {k!r} of parameter "
                                         f"{i} has shape {v.shape}, expected {p.shape}")
                    v = v.copy()
                restored[k] = v
            self.state[p] = restored
        self.iterations = int(state_dict.get("iterations", 0))

    def get_config(self) -> dict:
        return dict(self.defaults)

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"] if self.param_groups else self.defaults["lr"]

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({cfg})"


class Scheduler:
    """A learning-rate schedule (optimizers.md §13): sets ``group["lr"]`` of every group of
    an optimizer from the group's base rate ``η₀`` and a counter ``t``.

    ``unit="epoch"`` (default) advances ``t`` in ``step_epoch(metric)`` after each epoch;
    ``unit="step"`` advances it in ``step_batch()`` after each optimizer step (README §8).
    Subclasses implement ``lr_at(t, base_lr)``; stateful ones (``reduce_on_plateau``)
    override ``step_epoch``.
    """

    name: str = ""

    def __init__(self, unit: str = "epoch"):
        if unit not in ("epoch", "step"):
            raise HyperparameterError(f"scheduler {self.name!r}: unit must be 'epoch' or "
                                      f"'step', got {unit!r}")
        self.unit = unit
        self.optimizer = None
        self.base_lrs: list[float] = []
        self.count = 0

    def bind(self, optimizer: Optimizer) -> "Scheduler":
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.count = 0
        self._apply()
        return self

    def lr_at(self, t: int, base_lr: float) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.count, base)

    def step_batch(self) -> None:
        if self.unit == "step":
            self.count += 1
            self._apply()

    def step_epoch(self, metric=None) -> None:
        if self.unit == "epoch":
            self.count += 1
            self._apply()

    def state_dict(self) -> dict:
        return {"count": self.count, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self.base_lrs = list(state["base_lrs"])
        self._apply()

    def get_config(self) -> dict:
        return {"unit": self.unit}
