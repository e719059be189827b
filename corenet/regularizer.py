"""The base class of penalty regularizers (spec regularization.md, README §8)."""
from __future__ import annotations

from .errors import check_positive


class Regularizer:
    """A penalty ``λ Ω(θ)`` added to the objective, and its gradient added to ``p.grad``
    between backward and the optimizer step (coupled). By default it applies to the
    parameters with ``decay=True`` (weights, not biases or normalisation parameters:
    D-42); ``include_bias=True`` applies it to every trainable parameter.

    Subclasses implement ``penalty_of(data)`` (``Ω`` of one array, without λ) and
    ``grad_of(data)`` (``∇Ω`` of one array). Structural regularizers (pruners, growers)
    instead act through the event hooks of :mod:`corenet.hookspecs`.
    """

    name: str = ""

    def __init__(self, lam: float = 1e-4, include_bias: bool = False):
        self.lam = check_positive(lam, f"regularizer {self.name!r}", "lam", allow_zero=True)
        self.include_bias = include_bias

    def applies_to(self, p) -> bool:
        return p.trainable and (p.decay or self.include_bias)

    def penalty(self, params) -> float:
        """``λ Σ Ω(θ_p)`` over the parameters it applies to."""
        return self.lam * sum(float(self.penalty_of(p.data)) for p in params
                              if self.applies_to(p))

    def add_grad(self, params) -> None:
        """Add ``λ ∇Ω`` into each applicable ``p.grad``."""
        if self.lam == 0.0:
            return
        for p in params:
            if self.applies_to(p):
                p.grad += self.lam * self.grad_of(p.data)

    def penalty_of(self, data):
        raise NotImplementedError

    def grad_of(self, data):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"lam": self.lam, "include_bias": self.include_bias}
