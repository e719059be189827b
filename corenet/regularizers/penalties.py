"""Weight penalties (spec regularization.md §2, D-04, D-42, D-44, D-56).

Each is ``λ Ω(θ_g)`` with its gradient ``λ ∇Ω`` added into ``p.grad`` between backward and
the optimizer step (coupled). Two modes act on the parameters instead and therefore carry
event hooks (they are separate classes, so the penalty-only regularizers stay hook-free):

* ``l2(decoupled=True)`` → :class:`DecoupledL2`: ``θ ← θ − lr·λ·θ`` in
  ``corenet_on_before_step``, i.e. on the pre-update θ just before the optimizer's own
  update — exactly the order of the optimizers' ``decoupled_weight_decay`` (AdamW, D-44),
  so ``adam`` + ``l2(λ, decoupled=True)`` equals ``adam(decoupled_weight_decay=λ)``.
* ``l1(mode="proximal")`` → :class:`ProximalL1`: the soft threshold
  ``w ← sign(w)·max(|w| − lr·λ, 0)`` in ``corenet_on_after_step`` (§2.2).

``lr`` is the current learning rate of the optimizer's parameter group holding θ. Hook
regularizers are registered with the plugin manager for the run by the trainer (pass them
in ``regularizers=[...]``; with a trainer that registers only callbacks, pass the same
object in ``callbacks=[...]`` too). Their ``penalty`` still reports ``λΩ`` for the logged
objective ``R``; their ``add_grad`` adds nothing.
"""
from __future__ import annotations

import numpy as np

from .. import registry
from ..errors import HyperparameterError, check_positive
from ..plugins import hookimpl
from ._base import PenaltyRegularizer, check_choice


def _examples():
    return [{"lam": 0.1}, {"lam": 0.5, "include_bias": True},
            {"lam": {"0": 0.3}, "params": "all"}]


class L2(PenaltyRegularizer):
    """``Ω = ½‖w‖²``, ``∇Ω = w`` (``regularizer:l2``, §2.1, D-42): penalty ``λΩ``, gradient
    ``λw``. A penalty written ``ρ‖W‖²`` is ``l2`` with ``λ = 2ρ``. ``decoupled=True`` gives
    the decoupled form (:class:`DecoupledL2`, module docstring). Shapes: any array."""

    name = "l2"

    def __new__(cls, *args, decoupled: bool = False, **kwargs):
        if decoupled and cls is L2:
            cls = DecoupledL2
        return super().__new__(cls)

    def __init__(self, lam: float = 1e-4, include_bias: bool = False, params="weights",
                 decoupled: bool = False):
        super().__init__(lam, include_bias, params)
        self.decoupled = bool(decoupled)

    def penalty_of(self, data):
        return 0.5 * float(np.vdot(data, data))

    def grad_of(self, data):
        return data

    def get_config(self):
        return {**super().get_config(), "decoupled": self.decoupled}

    @classmethod
    def examples(cls):
        """Constructor arguments for the contract tests (:mod:`corenet.testing`)."""
        return _examples()


class DecoupledL2(L2):
    """``l2(decoupled=True)``: ``θ ← θ − lr·λ·θ`` before each optimizer step (D-44);
    no gradient term. Identical to the coupled form for plain SGD without momentum."""

    pure_penalty = False

    def __init__(self, lam: float = 1e-4, include_bias: bool = False, params="weights",
                 decoupled: bool = True):
        super().__init__(lam, include_bias, params, decoupled=True)

    def add_grad(self, params) -> None:
        return None

    def decay(self, optimizer) -> None:
        """Shrink every selected parameter of ``optimizer``: ``θ ← θ − lr·λ·θ``."""
        for group in optimizer.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if self.applies_to(p):
                    lam = self.lam_for(p)
                    if lam:
                        p.data -= (lr * lam) * p.data

    @hookimpl
    def corenet_on_before_step(self, trainer, optimizer):
        self.decay(optimizer)


class L1(PenaltyRegularizer):
    """``Ω = ‖w‖₁`` (``regularizer:l1``, §2.2). ``mode="subgradient"`` (default): gradient
    ``λ sign(w)`` with ``sign(0) = 0`` (D-04). ``mode="proximal"`` (:class:`ProximalL1`): no
    gradient term; after each step ``w ← sign(w)·max(|w| − lr·λ, 0)`` (intended for SGD)."""

    name = "l1"

    def __new__(cls, *args, mode: str = "subgradient", **kwargs):
        if mode == "proximal" and cls is L1:
            cls = ProximalL1
        return super().__new__(cls)

    def __init__(self, lam: float = 1e-4, include_bias: bool = False, params="weights",
                 mode: str = "subgradient"):
        super().__init__(lam, include_bias, params)
        self.mode = check_choice(mode, "regularizer 'l1'", "mode", ("subgradient", "proximal"))

    def penalty_of(self, data):
        return float(np.abs(data).sum())

    def grad_of(self, data):
        return np.sign(data)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}

    @classmethod
    def examples(cls):
        """Constructor arguments for the contract tests (:mod:`corenet.testing`)."""
        return _examples()


def soft_threshold(w: np.ndarray, threshold: float) -> np.ndarray:
    """``sign(w)·max(|w| − t, 0)`` (the proximal operator of ``t‖·‖₁``; TV-REG-03)."""
    return np.sign(w) * np.maximum(np.abs(w) - threshold, 0.0)


class ProximalL1(L1):
    """``l1(mode="proximal")``: soft threshold after each optimizer step (§2.2)."""

    pure_penalty = False

    def __init__(self, lam: float = 1e-4, include_bias: bool = False, params="weights",
                 mode: str = "proximal"):
        super().__init__(lam, include_bias, params, mode="proximal")

    def add_grad(self, params) -> None:
        return None

    def prox(self, optimizer) -> None:
        """Apply the soft threshold ``lr·λ`` to every selected parameter of ``optimizer``."""
        for group in optimizer.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if self.applies_to(p):
                    lam = self.lam_for(p)
                    if lam:
                        p.data[...] = soft_threshold(p.data, lr * lam)

    @hookimpl
    def corenet_on_after_step(self, trainer, optimizer):
        self.prox(optimizer)


class LogPenalty(PenaltyRegularizer):
    """Log (Cauchy-prior) penalty (``regularizer:log_penalty``, §2.3, D-56).

    ``form="elementwise"`` (default): ``Ω = Σ_i log(1 + w_i²/s²)``,
    ``∂Ω/∂w_i = 2w_i/(s² + w_i²)``. ``form="vector"``: ``Ω = log(1 + ‖w‖²/s²)``,
    ``∇Ω = 2w/(s² + ‖w‖²)``, where the vector ``w`` is each selected parameter array
    (e.g. a whole weight matrix). ``scale s = 1.0``."""

    name = "log_penalty"

    def __init__(self, lam: float = 1e-4, form: str = "elementwise", scale: float = 1.0,
                 include_bias: bool = False, params="weights"):
        super().__init__(lam, include_bias, params)
        self.form = check_choice(form, "regularizer 'log_penalty'", "form",
                                 ("elementwise", "vector"))
        self.scale = check_positive(scale, "regularizer 'log_penalty'", "scale")

    def penalty_of(self, data):
        s2 = self.scale ** 2
        if self.form == "vector":
            return float(np.log1p(float(np.vdot(data, data)) / s2))
        return float(np.log1p(data * data / s2).sum())

    def grad_of(self, data):
        s2 = self.scale ** 2
        if self.form == "vector":
            return 2.0 * data / (s2 + float(np.vdot(data, data)))
        return 2.0 * data / (s2 + data * data)

    def get_config(self):
        return {**super().get_config(), "form": self.form, "scale": self.scale}

    @classmethod
    def examples(cls):
        return [{"lam": 0.1}, {"lam": 0.2, "form": "vector", "scale": 0.5},
                {"lam": 0.3, "scale": 2.0, "include_bias": True}]


class WeightElimination(PenaltyRegularizer):
    """Weight elimination (``regularizer:weight_elimination``, §2.4; Weigend et al. 1991):
    ``Ω = Σ_i r_i/(1 + r_i)``, ``r_i = w_i²/w₀²``, ``∂Ω/∂w_i = (2w_i/w₀²)/(1 + r_i)²``,
    ``∂²Ω/∂w_i² = (2/w₀²)(1 − 3r_i)/(1 + r_i)³`` (:meth:`hess_diag_of`). ``w0 = 0.2``."""

    name = "weight_elimination"

    def __init__(self, lam: float = 1e-4, w0: float = 0.2, include_bias: bool = False,
                 params="weights"):
        super().__init__(lam, include_bias, params)
        self.w0 = check_positive(w0, "regularizer 'weight_elimination'", "w0")

    def _r(self, data):
        return data * data / (self.w0 * self.w0)

    def penalty_of(self, data):
        r = self._r(data)
        return float((r / (1.0 + r)).sum())

    def grad_of(self, data):
        r = self._r(data)
        return (2.0 * data / self.w0 ** 2) / (1.0 + r) ** 2

    def hess_diag_of(self, data):
        r = self._r(data)
        return (2.0 / self.w0 ** 2) * (1.0 - 3.0 * r) / (1.0 + r) ** 3

    def get_config(self):
        return {**super().get_config(), "w0": self.w0}

    @classmethod
    def examples(cls):
        return [{"lam": 0.1}, {"lam": 0.5, "w0": 1.0, "include_bias": True}]


class GradientNormalized(PenaltyRegularizer):
    """Gradient-normalised penalty (``regularizer:gradient_normalized``, §2.5): wraps a
    pure penalty ``Ω`` (``regularizer``, default ``"l2"``; its own ``lam`` is ignored) and
    adds ``λ‖∇L‖·∇Ω/‖∇Ω‖`` to the gradient, the norms taken over the whole selected group
    (all selected arrays concatenated); nothing when ``‖∇Ω‖ = 0``.

    ``∇L`` is read from ``p.grad`` when :meth:`add_grad` runs (right after backward): list
    this regularizer before the others so that it sees the data gradient alone.
    :meth:`penalty` reports ``c·Ω`` with ``c = λ‖∇L‖/‖∇Ω‖`` of the last :meth:`add_grad`
    (0 before the first): the penalty whose gradient was added last.
    """

    name = "gradient_normalized"

    def __init__(self, regularizer="l2", lam: float = 1e-4, include_bias: bool = False,
                 params="weights"):
        super().__init__(lam, include_bias, params)
        if isinstance(self.lam, dict):
            raise HyperparameterError("regularizer 'gradient_normalized': lam must be one "
                                      "float (the norms are taken over the whole group)")
        inner = registry.create("regularizer", regularizer)
        if not getattr(inner, "pure_penalty", False) or not hasattr(inner, "grad_of"):
            raise HyperparameterError(f"regularizer 'gradient_normalized': the wrapped "
                                      f"regularizer must be a pure penalty (l2, l1, "
                                      f"log_penalty, weight_elimination), got {inner!r}")
        self.inner = inner
        self.scale = 0.0

    def penalty(self, params) -> float:
        return self.scale * sum(float(self.inner.penalty_of(p.data))
                                for p in params if self.applies_to(p))

    def add_grad(self, params) -> None:
        sel = self.selected(params)
        self.scale = 0.0
        if not sel or self.lam == 0.0:
            return
        grads = [self.inner.grad_of(p.data) for p in sel]
        n_omega = np.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        if n_omega == 0.0:
            return
        n_loss = np.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in sel))
        self.scale = self.lam * n_loss / n_omega
        for p, g in zip(sel, grads):
            p.grad += (self.scale * g).astype(p.dtype, copy=False)

    def get_config(self):
        inner = {"name": self.inner.name, **self.inner.get_config()}
        return {"regularizer": inner, **super().get_config()}

    @classmethod
    def examples(cls):
        return [{"lam": 0.1}, {"regularizer": "weight_elimination", "lam": 0.5,
                               "include_bias": True}]
