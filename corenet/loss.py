"""Base classes of losses and metrics (spec networks.md §3, README §6)."""
from __future__ import annotations

import numpy as np

from .errors import HyperparameterError, NotFiniteError, ShapeError, check_array

REDUCTIONS = ("mean", "sum", "none")


class Loss:
    """A loss: per-sample values ``ℓ_n``, their gradient, the reduction, the output Hessian.

    Subclasses implement ``per_sample(y_pred, y)`` -> ``(N,)`` and
    ``per_sample_grad(y_pred, y)`` -> ``∂ℓ_n/∂ŷ_n`` (shape of ``y_pred``), or
    ``per_sample_and_grad`` computing both in one pass, on targets already checked by
    ``prepare_targets``. The base class applies the reduction once:

    * ``"mean"``: ``L = (1/N) Σ ℓ_n`` (with sample weights ``Σ w_n ℓ_n / Σ w_n``);
    * ``"sum"``: ``L = Σ w_n ℓ_n``;
    * ``"none"``: the vector ``(w_n ℓ_n)``; its ``grad`` is that of the sum.

    ``fused_activation`` names the output activation with which the loss forms a canonical
    pair (networks.md §3.6); the trainer then feeds the pre-activation to
    ``fused_per_sample_and_grad`` instead of running the activation.
    """

    name: str = ""
    fused_activation: str | None = None
    #: True for losses that treat NaN targets as missing labels (D-58); the trainer then
    #: lets NaN targets through its input check.
    missing_targets: bool = False

    def __init__(self, reduction: str = "mean"):
        if reduction not in REDUCTIONS:
            raise HyperparameterError(f"loss {self.name!r}: reduction must be one of "
                                      f"{REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    # ---------------------------------------------------------------- per-sample parts
    def prepare_targets(self, y_pred: np.ndarray, y) -> np.ndarray:
        """Validate and convert targets (default: float array of y_pred's shape;
        ``(N,)`` targets are accepted for ``(N, 1)`` predictions)."""
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise ShapeError(f"loss {self.name!r}: targets must be numeric, got dtype {y.dtype}")
        y = y.astype(y_pred.dtype, copy=False)
        if y.shape != y_pred.shape:
            if y.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1 and \
                    y.shape[0] == y_pred.shape[0]:
                y = y.reshape(-1, 1)
            elif y_pred.ndim == 1 and y.ndim == 2 and y.shape == (y_pred.shape[0], 1):
                y = y.reshape(-1)
            else:
                raise ShapeError(f"loss {self.name!r}: targets must have shape {y_pred.shape} "
                                 f"(like the predictions), got {y.shape}")
        if not np.isfinite(y).all():
            raise NotFiniteError(f"loss {self.name!r}: targets contain NaN or inf")
        return y

    def per_sample(self, y_pred, y):
        return self.per_sample_and_grad(y_pred, y)[0]

    def per_sample_grad(self, y_pred, y):
        return self.per_sample_and_grad(y_pred, y)[1]

    def per_sample_and_grad(self, y_pred, y):
        return self.per_sample(y_pred, y), self.per_sample_grad(y_pred, y)

    # ---------------------------------------------------------------- reduced interface
    def _check(self, y_pred, y, sample_weight):
        check_array(y_pred, f"loss {self.name!r}", ndim=(1, 2, 3, 4), name="predictions")
        y = self.prepare_targets(y_pred, y)
        n = y_pred.shape[0]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=y_pred.dtype)
            if sample_weight.shape != (n,):
                raise ShapeError(f"loss {self.name!r}: sample_weight must have shape ({n},), "
                                 f"got {sample_weight.shape}")
            if (sample_weight < 0).any() or not np.isfinite(sample_weight).all():
                raise ValueError(f"loss {self.name!r}: sample_weight must be finite and >= 0")
        return y, sample_weight

    def _weights(self, n, sample_weight, dtype):
        """Per-sample factors ``c_n`` so that L = Σ c_n ℓ_n (None means all equal 1/N or 1)."""
        if self.reduction == "mean":
            if sample_weight is None:
                return 1.0 / max(n, 1)
            total = sample_weight.sum()
            return sample_weight / (total if total > 0 else 1.0)
        return 1.0 if sample_weight is None else sample_weight

    def _reduce(self, values, grad, sample_weight):
        n = values.shape[0]
        c = self._weights(n, sample_weight, values.dtype)
        if self.reduction == "none":
            value = values * c
        elif isinstance(c, float):
            value = float(values.sum() * c)
        else:
            value = float(np.dot(values, c))
        if grad is not None:
            if isinstance(c, float):
                if c != 1.0:
                    grad *= c
            else:
                grad *= c.reshape((-1,) + (1,) * (grad.ndim - 1))
        return value, grad

    def value(self, y_pred, y, sample_weight=None):
        """Reduced loss L (a float; an ``(N,)`` array for ``reduction="none"``)."""
        y, sample_weight = self._check(y_pred, y, sample_weight)
        return self._reduce(self.per_sample(y_pred, y), None, sample_weight)[0]

    def grad(self, y_pred, y, sample_weight=None):
        """``∂L/∂ŷ`` including the reduction factor (1/N for ``"mean"``)."""
        return self.value_and_grad(y_pred, y, sample_weight)[1]

    def value_and_grad(self, y_pred, y, sample_weight=None):
        """``(L, ∂L/∂ŷ)`` in one pass."""
        y, sample_weight = self._check(y_pred, y, sample_weight)
        values, grad = self.per_sample_and_grad(y_pred, y)
        grad = np.array(grad, dtype=y_pred.dtype, copy=True) if not grad.flags.writeable \
            else grad
        return self._reduce(values, grad, sample_weight)

    # ---------------------------------------------------------------- fused pairs
    def fused_per_sample_and_grad(self, s_out, y):
        """Per-sample loss and ``∂ℓ_n/∂s_out`` from the pre-activation of
        ``fused_activation`` (networks.md §3.6)."""
        raise NotImplementedError(f"loss {self.name!r} has no fused output gradient")

    def fused_value_and_grad(self, s_out, y, sample_weight=None):
        y, sample_weight = self._check(s_out, y, sample_weight)
        values, grad = self.fused_per_sample_and_grad(s_out, y)
        return self._reduce(values, grad, sample_weight)

    def fused_output_grad(self, s_out, y, sample_weight=None):
        """``∂L/∂s_out`` for the canonical pair (with the reduction factor)."""
        return self.fused_value_and_grad(s_out, y, sample_weight)[1]

    def fused_hess_output(self, s_out, y):
        """Per-sample Hessian w.r.t. the pre-activation of ``fused_activation``."""
        raise NotImplementedError(f"loss {self.name!r} has no fused output Hessian")

    # ---------------------------------------------------------------- second order
    def hess_output(self, y_pred, y):
        """Per-sample Hessian ``∇²_ŷ ℓ_n``, shape ``(N, K, K)`` (before the reduction)."""
        raise NotImplementedError(f"loss {self.name!r} does not define hess_output")

    def get_config(self) -> dict:
        return {"reduction": self.reduction}

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({cfg})"


class Metric:
    """A (non-differentiable) score of predictions against targets.

    ``__call__(y_pred, y) -> float``; ``greater_is_better`` tells early stopping and
    model selection which way is up.
    """

    name: str = ""
    greater_is_better: bool = False

    def __call__(self, y_pred, y) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}
