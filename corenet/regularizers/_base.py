"""Group selection and per-layer strengths shared by corenet's regularizers
(spec regularization.md §1, D-42).

* ``params`` selects the group θ_g: ``"weights"`` (default: parameters with
  ``decay=True`` — dense and conv weights; not biases, normalisation parameters or PReLU α),
  ``"all"`` (every trainable parameter), a list of layer names (the model keys: ``"0"``,
  ``"1"`` in a ``Sequential``, node names in a ``Graph``; within them the weights, or every
  parameter with ``include_bias=True``) or a predicate ``f(layer_name, param_name) -> bool``
  (not JSON-serialisable). ``include_bias=True`` is the older spelling of ``params="all"``.
* ``lam`` is a float ``λ >= 0`` or a dict ``{layer_name: λ}`` (per-layer strengths; layers
  missing from the dict are not regularised).

A parameter's layer name and role come from its stable name ``"<layer key>.<role>"``.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import HyperparameterError, check_positive
from ..regularizer import Regularizer


def split_name(p) -> tuple[str, str]:
    """``("<layer key>", "<role>")`` of a parameter (layer ``""`` when it has no key)."""
    name = str(p.name)
    if "." in name:
        layer, role = name.rsplit(".", 1)
        return layer, role
    return "", name


def check_lam(lam, component: str):
    """A float >= 0 or a dict ``{layer_name: float >= 0}``."""
    if isinstance(lam, dict):
        out = {}
        for key, value in lam.items():
            if not isinstance(key, str):
                raise HyperparameterError(f"{component}: the keys of a per-layer lam dict must "
                                          f"be layer names (str), got {key!r}")
            out[key] = check_positive(value, component, f"lam[{key!r}]", allow_zero=True)
        return out
    return check_positive(lam, component, "lam", allow_zero=True)


def check_params(params, component: str):
    if params in ("weights", "all") or callable(params):
        return params
    if isinstance(params, (list, tuple)) and all(isinstance(s, str) for s in params):
        return list(params)
    raise HyperparameterError(f"{component}: params must be 'weights', 'all', a list of layer "
                              f"names or a predicate f(layer_name, param_name), got {params!r}")


def check_int(value, component: str, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise HyperparameterError(f"{component}: {name} must be an integer >= {low}, "
                                  f"got {value!r}")
    return int(value)


def check_choice(value, component: str, name: str, choices) -> str:
    if value not in choices:
        raise HyperparameterError(f"{component}: {name} must be one of {list(choices)}, "
                                  f"got {value!r}")
    return value


class GroupSelection:
    """``params`` / ``include_bias`` selection (mixin; needs ``self.name``)."""

    def _init_selection(self, include_bias, params):
        self.include_bias = bool(include_bias)
        self.params = check_params(params, f"regularizer {self.name!r}")

    def applies_to(self, p) -> bool:
        if not p.trainable:
            return False
        sel = self.params
        if callable(sel):
            layer, role = split_name(p)
            return bool(sel(layer, role))
        if sel == "all":
            return True
        ok_kind = p.decay or self.include_bias
        if sel == "weights":
            return ok_kind
        return ok_kind and split_name(p)[0] in sel

    def selected(self, params) -> list:
        return [p for p in params if self.applies_to(p)]

    def _selection_config(self) -> dict:
        return {"include_bias": self.include_bias,
                "params": list(self.params) if isinstance(self.params, list) else self.params}


class PenaltyRegularizer(GroupSelection, Regularizer):
    """A coupled penalty ``Σ_p λ_p Ω(θ_p)``: subclasses implement ``penalty_of(data)`` and
    ``grad_of(data)`` (without λ); ``λ_p`` is ``lam`` or ``lam[layer of p]``."""

    #: a pure function of the parameter values (usable inside ``gradient_normalized``)
    pure_penalty = True

    def __init__(self, lam: float = 1e-4, include_bias: bool = False, params="weights"):
        self.lam = check_lam(lam, f"regularizer {self.name!r}")
        self._init_selection(include_bias, params)

    def lam_for(self, p) -> float:
        if isinstance(self.lam, dict):
            return self.lam.get(split_name(p)[0], 0.0)
        return self.lam

    def penalty(self, params) -> float:
        """``Σ_p λ_p Ω(θ_p)`` over the selected parameters."""
        total = 0.0
        for p in params:
            if self.applies_to(p):
                lam = self.lam_for(p)
                if lam:
                    total += lam * float(self.penalty_of(p.data))
        return total

    def add_grad(self, params) -> None:
        """``p.grad += λ_p ∇Ω(θ_p)`` for the selected parameters (coupled)."""
        for p in params:
            if self.applies_to(p):
                lam = self.lam_for(p)
                if lam:
                    p.grad += (lam * self.grad_of(p.data)).astype(p.dtype, copy=False)

    def get_config(self) -> dict:
        lam = dict(self.lam) if isinstance(self.lam, dict) else self.lam
        return {"lam": lam, **self._selection_config()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def finite_float(value, component: str, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: {name} must be a number, got {value!r}") \
            from None
    if not math.isfinite(v):
        raise HyperparameterError(f"{component}: {name} must be finite, got {value!r}")
    return v
