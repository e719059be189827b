"""Shared machinery of corenet's optimizers (spec optimizers.md §0).

:class:`StatefulOptimizer` extends the engine's :class:`~corenet.Optimizer` with what
every rule of this package needs:

* ``step(loss=None)``: the optional loss ``E_t`` at the current (pre-update) parameters,
  kept in ``self.loss_value`` for rules that use it (iRprop+);
* lazily created per-parameter state in the parameter's dtype, with every array entry at
  a pruned position set to 0 before the update (optimizers.md §0, pruning.md §1);
* growth (``state_resize``): old entries are kept, new entries get the rule's fresh value
  (zeros unless :meth:`fresh_state` says otherwise, e.g. Rprop step sizes = ``lr``);
* hyperparameter checks that raise :class:`~corenet.HyperparameterError` naming the
  optimizer, the hyperparameter, the allowed range and the value received.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, NotFiniteError
from ..optimizer import Optimizer


def _number(opt, key, value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"optimizer {opt.name!r}: {key} must be a number, "
                                  f"got {value!r}") from None
    if not np.isfinite(v):
        raise HyperparameterError(f"optimizer {opt.name!r}: {key} must be finite, got {value!r}")
    return v


def check_interval(opt, group, key, low=None, high=None, *, low_open=False, high_open=False,
                   allow_none=False):
    """Raise :class:`HyperparameterError` unless ``low (<|<=) group[key] (<|<=) high``."""
    value = group[key]
    if value is None and allow_none:
        return
    v = _number(opt, key, value)
    bad = ((low is not None and (v < low or (low_open and v == low)))
           or (high is not None and (v > high or (high_open and v == high))))
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}" \
                   f"{')' if high_open or high is None else ']'}"
        raise HyperparameterError(f"optimizer {opt.name!r}: {key} must be in {interval}, "
                                  f"got {value!r}")


def check_choice(opt, group, key, choices):
    if group[key] not in choices:
        raise HyperparameterError(f"optimizer {opt.name!r}: {key} must be one of "
                                  f"{list(choices)}, got {group[key]!r}")


def check_pair(opt, group, key):
    """``group[key]`` must be a pair of numbers (tuples and JSON lists accepted)."""
    value = group[key]
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise HyperparameterError(f"optimizer {opt.name!r}: {key} must be a pair of numbers, "
                                  f"got {value!r}")
    return tuple(_number(opt, key, v) for v in value)


def check_flag(opt, group, key):
    if not isinstance(group[key], (bool, np.bool_)):
        raise HyperparameterError(f"optimizer {opt.name!r}: {key} must be True or False, "
                                  f"got {group[key]!r}")


class StatefulOptimizer(Optimizer):
    """Base of this package's optimizers (see the module docstring)."""

    #: True for rules that read the loss passed to ``step(loss=...)`` (iRprop+).
    uses_loss = False
    #: True for solvers that need the data (``data_step``/``minimize``), not a gradient.
    needs_data = False

    def __init__(self, params=None, **hyperparameters):
        self.loss_value = None
        super().__init__(params, **hyperparameters)

    # ------------------------------------------------------------------ stepping
    def step(self, loss=None) -> None:
        """One update of every trainable parameter from its ``grad``.

        ``loss`` is the objective ``E_t`` at the current parameters (before this update);
        rules that need it (``rprop`` variant ``irprop+``) raise when it is missing, the
        others ignore it.
        """
        if loss is not None:
            try:
                loss = float(loss)
            except (TypeError, ValueError):
                raise TypeError(f"optimizer {self.name!r}: step(loss=...) must be a number, "
                                f"got {type(loss).__name__}") from None
            if not np.isfinite(loss):
                raise NotFiniteError(f"optimizer {self.name!r}: step got a non-finite loss "
                                     f"{loss}")
        self.loss_value = loss
        super().step()

    def fresh_state(self, group: dict) -> dict:
        """Initial value of each per-weight state array (missing keys start at 0)."""
        return {}

    def init_state(self, p, state: dict, group: dict, keys) -> None:
        """Create the missing arrays ``keys`` (shape and dtype of ``p``) with their fresh
        values, count the step (``state["step"]``, 1 at the first update, D-57) and zero
        every state array at the pruned positions of ``p``."""
        if "step" not in state:
            fresh = self.fresh_state(group)
            for key in keys:
                state[key] = np.full(p.shape, fresh.get(key, 0.0), dtype=p.dtype)
            state["step"] = 0
        state["step"] += 1
        if p.masked:
            mask = p._mask
            for value in state.values():
                if isinstance(value, np.ndarray) and value.shape == p.shape:
                    value *= mask

    # ------------------------------------------------------------------ growth
    def _group_of(self, param):
        for group in self.param_groups:
            if any(q is param for q in group["params"]):
                return group
        return self.defaults

    def state_resize(self, param, new_shape, slices) -> None:
        """Resize the per-weight state of ``param`` after a layer grows: old values go to
        ``slices`` of an array of ``new_shape`` whose other entries get the fresh value
        (zeros; Rprop step sizes and delta-rule rates = ``lr``; AdaGrad's accumulator =
        ``initial_accumulator``), optimizers.md §0."""
        state = self.state.get(param)
        if not state:
            return
        fresh = self.fresh_state(self._group_of(param))
        for key, value in list(state.items()):
            if isinstance(value, np.ndarray) and value.ndim > 0:
                grown = np.full(new_shape, fresh.get(key, 0.0), dtype=value.dtype)
                grown[slices] = value
                state[key] = grown

    @classmethod
    def examples(cls) -> list[dict]:
        """Hyperparameter sets for the automatic contract tests (``corenet.testing``)."""
        return [{}]
