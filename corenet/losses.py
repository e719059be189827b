"""The loss family (spec networks.md §3, README §6 and §10; decisions D-03, D-14, D-40,
D-41, D-58, D-74, D-80).

Every loss computes the per-sample value ``ℓ_n`` and ``∂ℓ_n/∂ŷ_n`` on targets checked by
``prepare_targets``; :class:`corenet.loss.Loss` applies ``reduction`` ("mean", "sum",
"none") and ``sample_weight`` once. Element-wise losses average over all non-batch axes
of a sample (``K`` = elements per sample; ``(N,)`` predictions have K = 1);
class-distribution losses sum over the class axis (and average over the other axes,
e.g. pixels). ``hess_output(ŷ, y)`` returns the per-sample Hessian ``∇²_ŷ ℓ_n`` as an
``(N, D, D)`` array, ``D`` = elements per sample in C order (networks.md §7.4).

Bad targets: labels out of range and invalid soft targets raise ``ValueError``; wrong
shapes :class:`ShapeError`; NaN/inf targets :class:`NotFiniteError`.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import (DTypeError, HyperparameterError, NotFiniteError, ShapeError,
                     check_positive, check_range)
from .loss import Loss
from .plugins import hookimpl

# --------------------------------------------------------------------------- helpers
_KERNELS = None


def _kernel(name):
    """A function of the compiled ``corenet.kernels`` module, or None if unavailable."""
    global _KERNELS
    if _KERNELS is None:
        try:
            from corenet import kernels
        except ImportError:
            kernels = False
        _KERNELS = kernels
    return getattr(_KERNELS, name, None) if _KERNELS is not False else None


def _eps(dtype) -> float:
    """Probability clip ε_p (README §10): 1e-12 for float64, 1e-7 for float32."""
    return 1e-7 if np.dtype(dtype) == np.float32 else 1e-12


def _sigmoid(x):
    """Stable σ(x) (README §10): 1/(1+e^{-x}) for x ≥ 0, e^x/(1+e^x) for x < 0."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _softplus(x):
    """softplus(x) = max(x, 0) + log1p(e^{-|x|}) (README §10)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _size(a) -> int:
    return math.prod(a.shape[1:])


def _diag_hess(d):
    """(N, D) diagonal entries -> (N, D, D) diagonal matrices."""
    n, k = d.shape
    h = np.zeros((n, k, k), dtype=d.dtype)
    idx = np.arange(k)
    h[:, idx, idx] = d
    return h


def _softmax_xent(z, t):
    """Row-wise softmax cross-entropy of ``z`` (M, K) against int64 labels (M,) or float
    targets (M, K): ``(ℓ (M,), softmax(z) − t)``. Uses ``corenet.kernels`` when present."""
    fn = _kernel("softmax_cross_entropy")
    if fn is not None and z.shape[0] > 0:
        return fn(np.ascontiguousarray(z), np.ascontiguousarray(t))
    s = z - z.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    if t.dtype.kind == "i":
        rows = np.arange(t.shape[0])
        p[rows, t] -= 1
        return -logp[rows, t], p
    return -(t * logp).sum(axis=1), p - t


def _softmax(z):
    """Row-wise softmax of ``z`` (M, K) (kernel when present)."""
    fn = _kernel("softmax")
    if fn is not None and z.shape[0] > 0:
        return fn(np.ascontiguousarray(z))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _one_hot(labels, k, axis, dtype):
    out = np.moveaxis(np.zeros(labels.shape + (k,), dtype=dtype), -1, axis)
    np.put_along_axis(out, np.expand_dims(labels, axis), 1, axis=axis)
    return np.ascontiguousarray(out)


def _values_in(loss, y, allowed: str):
    """Check element-wise binary targets: ``"unit"`` = [0, 1], ``"pm1"`` = {−1, +1}."""
    if allowed == "unit":
        bad = (y < 0) | (y > 1)
        want = "in [0, 1]"
    else:
        bad = (y != 1) & (y != -1)
        want = "in {-1, +1}"
    if bad.any():
        raise ValueError(f"loss {loss.name!r}: targets must be {want}, "
                         f"got value {y[bad].flat[0].item()!r}")


# --------------------------------------------------------------------------- element-wise
class _Elementwise(Loss):
    """``ℓ_n = (1/K) Σ_k e(ŷ_nk, y_nk)`` over the K elements of a sample (README §6).

    Subclasses implement ``elements(ŷ, y) -> (e, ∂e/∂ŷ)`` and ``element_hess`` (∂²e/∂ŷ²);
    ``_average = False`` sums instead of averaging (``sse``).
    """

    _targets: str | None = None
    _average = True

    def prepare_targets(self, y_pred, y):
        y = super().prepare_targets(y_pred, y)
        if self._targets:
            _values_in(self, y, self._targets)
        return y

    def per_sample_and_grad(self, y_pred, y):
        e, de = self.elements(y_pred, y)
        n, k = y_pred.shape[0], _size(y_pred)
        div = k if self._average else 1
        return e.reshape(n, k).sum(axis=1) / div, de / div

    def hess_output(self, y_pred, y):
        y, _ = self._check(y_pred, y, None)
        n, k = y_pred.shape[0], _size(y_pred)
        d2 = np.broadcast_to(self.element_hess(y_pred, y), y_pred.shape).reshape(n, k)
        return _diag_hess(d2 / (k if self._average else 1))


class MSE(_Elementwise):
    """``mse``: ``ℓ = (1/K) Σ (ŷ_k − y_k)²``, ``∂ℓ/∂ŷ_k = 2(ŷ_k − y_k)/K``, Hessian ``(2/K) I``
    (networks.md §3.2, D-41)."""

    name = "mse"

    def elements(self, y_pred, y):
        r = y_pred - y
        return r * r, 2 * r

    def element_hess(self, y_pred, y):
        return np.full_like(y_pred, 2)


class SSE(_Elementwise):
    """``sse(half=True)``: ``ℓ = c Σ_k (ŷ_k − y_k)²`` with ``c = ½`` (``half``) else 1;
    gradient ``2c r``; Hessian ``2c I`` (networks.md §3.2, D-41)."""

    name = "sse"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{"config": {}}, {"config": {"half": False}, "y_pred_shape": (4,)}]
    _average = False

    def __init__(self, half: bool = True, reduction: str = "mean"):
        super().__init__(reduction)
        self.half = bool(half)

    def elements(self, y_pred, y):
        r = y_pred - y
        c = 0.5 if self.half else 1.0
        return c * r * r, (2 * c) * r

    def element_hess(self, y_pred, y):
        return np.full_like(y_pred, 1.0 if self.half else 2.0)

    def get_config(self):
        return {"half": self.half, **super().get_config()}


class MAE(_Elementwise):
    """``mae``: ``ℓ = (1/K) Σ |ŷ_k − y_k|``, gradient ``sign(r)/K`` with sign(0) = 0;
    Hessian 0 (networks.md §3.2)."""

    name = "mae"

    def elements(self, y_pred, y):
        r = y_pred - y
        return np.abs(r), np.sign(r)

    def element_hess(self, y_pred, y):
        return np.zeros_like(y_pred)


class Huber(_Elementwise):
    """``huber(delta=1)`` (element-wise, D-40): ``h(r) = ½r²`` if ``|r| ≤ δ`` else
    ``δ(|r| − ½δ)``; ``ℓ = mean_k h(r_k)``; gradient ``r`` or ``δ sign(r)`` over K;
    Hessian ``1[|r| ≤ δ]/K`` on the diagonal (networks.md §3.2)."""

    name = "huber"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{"config": {"delta": 0.5}}]

    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.delta = check_positive(delta, "loss 'huber'", "delta")

    def elements(self, y_pred, y):
        d = self.delta
        r = y_pred - y
        a = np.abs(r)
        inside = a <= d
        return np.where(inside, 0.5 * r * r, d * (a - 0.5 * d)), np.where(inside, r, d * np.sign(r))

    def element_hess(self, y_pred, y):
        return (np.abs(y_pred - y) <= self.delta).astype(y_pred.dtype)

    def get_config(self):
        return {"delta": self.delta, **super().get_config()}


class BCE(_Elementwise):
    """``bce`` on probabilities p, targets y ∈ [0, 1] (networks.md §3.3):
    ``e = −[y log p̃ + (1−y) log(1−p̃)]``, ``p̃ = clip(p, ε_p, 1−ε_p)`` (ε_p = 1e-12 float64,
    1e-7 float32), ``∂e/∂p = (p̃ − y)/(p̃(1−p̃))`` (the spec's formula, also where p is
    clipped), ``∂²e/∂p² = y/p̃² + (1−y)/(1−p̃)²``; ``ℓ = mean_k e``.

    Canonical pair with a sigmoid output (§3.6): ``fused_per_sample_and_grad(s, y)`` takes
    the pre-activation ``s`` and uses the stable ``bce_with_logits`` formulas, gradient
    ``(σ(s) − y)/K``.
    """

    name = "bce"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [
            {"config": {}, "y_pred": "unit", "targets": "binary"},
            {"config": {"reduction": "sum"}, "y_pred": "unit", "targets": "unit",
             "y_pred_shape": (5, 1)}]
    fused_activation = "sigmoid"
    _targets = "unit"

    def elements(self, y_pred, y):
        eps = _eps(y_pred.dtype)
        p = np.clip(y_pred, eps, 1 - eps)
        e = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        return e, (p - y) / (p * (1 - p))

    def element_hess(self, y_pred, y):
        eps = _eps(y_pred.dtype)
        p = np.clip(y_pred, eps, 1 - eps)
        return y / (p * p) + (1 - y) / ((1 - p) * (1 - p))

    def fused_per_sample_and_grad(self, s_out, y):
        e, de = _logit_elements(s_out, y)
        k = _size(s_out)
        return e.reshape(s_out.shape[0], k).sum(axis=1) / k, de / k

    def fused_hess_output(self, s_out, y):
        """``∇²_s ℓ_n = diag(σ(s)(1 − σ(s)))/K`` w.r.t. the pre-activation (§7.4)."""
        self._check(s_out, y, None)
        n, k = s_out.shape[0], _size(s_out)
        sig = _sigmoid(s_out).reshape(n, k)
        return _diag_hess(sig * (1 - sig) / k)


def _logit_elements(z, y):
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), _sigmoid(z) - y


class BCEWithLogits(_Elementwise):
    """``bce_with_logits``, logits z, y ∈ [0, 1] (networks.md §3.3, README §10):
    ``e = max(z,0) − z y + log1p(e^{−|z|})``, ``∂e/∂z = σ(z) − y``, Hessian
    ``diag(σ(1−σ))/K``; ``ℓ = mean_k e``."""

    name = "bce_with_logits"
    _targets = "unit"

    def elements(self, y_pred, y):
        return _logit_elements(y_pred, y)

    def element_hess(self, y_pred, y):
        s = _sigmoid(y_pred)
        return s * (1 - s)


class _Margin(_Elementwise):
    _targets = "pm1"

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive(margin, f"loss {self.name!r}", "margin", allow_zero=True)

    def get_config(self):
        return {"margin": self.margin, **super().get_config()}


class Hinge(_Margin):
    """``hinge(margin=1)``, scores f, y ∈ {−1,+1}: ``e = max(0, m − y f)``, ``∂e/∂f = −y``
    if ``y f < m`` else 0; Hessian 0 (networks.md §3.3)."""

    name = "hinge"

    def elements(self, f, y):
        t = self.margin - y * f
        return np.maximum(t, 0), np.where(t > 0, -y, 0)

    def element_hess(self, f, y):
        return np.zeros_like(f)


class SquaredHinge(_Margin):
    """``squared_hinge(margin=1)``: ``e = max(0, m − y f)²``, ``∂e/∂f = −2y max(0, m − y f)``,
    ``∂²e/∂f² = 2·1[y f < m]`` (networks.md §3.3)."""

    name = "squared_hinge"

    def elements(self, f, y):
        t = np.maximum(self.margin - y * f, 0)
        return t * t, -2 * y * t

    def element_hess(self, f, y):
        return 2 * (self.margin - y * f > 0).astype(f.dtype)


class Logistic(_Elementwise):
    """``logistic``: ``e = softplus(−y f)``, ``∂e/∂f = −y σ(−y f)``,
    ``∂²e/∂f² = σ(y f) σ(−y f)`` (networks.md §3.3), y ∈ {−1,+1}."""

    name = "logistic"
    _targets = "pm1"

    def elements(self, f, y):
        u = -y * f
        return _softplus(u), -y * _sigmoid(u)

    def element_hess(self, f, y):
        s = _sigmoid(-y * f)
        return s * (1 - s)


class Perceptron(_Elementwise):
    """``perceptron``: ``e = max(0, −y f)``, ``∂e/∂f = −y`` if ``y f ≤ 0`` else 0 — a tie
    counts as a mistake (D-14); Hessian 0 (networks.md §3.3)."""

    name = "perceptron"
    _targets = "pm1"

    def elements(self, f, y):
        u = y * f
        return np.maximum(-u, 0), np.where(u <= 0, -y, 0)

    def element_hess(self, f, y):
        return np.zeros_like(f)


class HuberNorm(Loss):
    """``huber_norm(delta=1)`` (vector-norm Huber, D-40, networks.md §3.2): with
    ``ρ = ‖ŷ_n − y_n‖₂`` over all elements of the sample, ``ℓ = ρ²/(2δ)`` if ``ρ ≤ δ`` else
    ``ρ − δ/2``; gradient ``r/δ`` or ``r/ρ``; Hessian ``I/δ`` or ``(I − r rᵀ/ρ²)/ρ``."""

    name = "huber_norm"

    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.delta = check_positive(delta, "loss 'huber_norm'", "delta")

    def _parts(self, y_pred, y):
        n = y_pred.shape[0]
        r = (y_pred - y).reshape(n, _size(y_pred))
        rho = np.sqrt((r * r).sum(axis=1))
        return r, rho, rho <= self.delta

    def per_sample_and_grad(self, y_pred, y):
        d = self.delta
        r, rho, inside = self._parts(y_pred, y)
        loss = np.where(inside, rho * rho / (2 * d), rho - d / 2).astype(y_pred.dtype)
        scale = np.where(inside, 1 / d, 1 / np.where(inside, 1, rho)).astype(y_pred.dtype)
        return loss, (r * scale[:, None]).reshape(y_pred.shape)

    def hess_output(self, y_pred, y):
        y, _ = self._check(y_pred, y, None)
        r, rho, inside = self._parts(y_pred, y)
        k = r.shape[1]
        eye = np.eye(k, dtype=y_pred.dtype)
        safe = np.where(inside, 1, rho)[:, None, None]
        outer = (eye - r[:, :, None] * r[:, None, :] / (safe * safe)) / safe
        return np.where(inside[:, None, None], eye / self.delta, outer).astype(y_pred.dtype)

    def get_config(self):
        return {"delta": self.delta, **super().get_config()}


# --------------------------------------------------------------------------- class losses
class _ClassLoss(Loss):
    """Targets: integer labels (the predictions' shape without the class axis) or class
    distributions of the predictions' shape whose sums over the class axis are 1 ± 1e-6
    (D-74). ``ℓ_n`` sums over classes and averages over the remaining non-batch axes."""

    _dense_only = False
    _check_sums = True

    def __init__(self, axis: int = -1, reduction: str = "mean"):
        super().__init__(reduction)
        if not isinstance(axis, (int, np.integer)):
            raise HyperparameterError(f"loss {self.name!r}: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def _class_axis(self, z):
        ax = self.axis + z.ndim if self.axis < 0 else self.axis
        if z.ndim < 2 or not 1 <= ax < z.ndim:
            raise ShapeError(f"loss {self.name!r}: predictions need a class axis {self.axis} "
                             f"after the batch axis (e.g. (N, K) or (N, K, H, W)), "
                             f"got shape {z.shape}")
        return ax

    def _class_targets(self, z, y):
        ax = self._class_axis(z)
        k = z.shape[ax]
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise DTypeError(f"loss {self.name!r}: targets must be numeric, got dtype {y.dtype}")
        label_shape = z.shape[:ax] + z.shape[ax + 1:]
        if y.shape == label_shape and not self._dense_only:
            if y.dtype.kind == "f":
                if not np.isfinite(y).all():
                    raise NotFiniteError(f"loss {self.name!r}: labels contain NaN or inf")
                frac = y != np.round(y)
                if frac.any():
                    raise ValueError(f"loss {self.name!r}: class labels must be integers in "
                                     f"[0, {k - 1}], got value {y[frac].flat[0].item()!r}")
            labels = y.astype(np.int64)
            bad = (labels < 0) | (labels >= k)
            if bad.any():
                raise ValueError(f"loss {self.name!r}: class labels must be integers in "
                                 f"[0, {k - 1}], got {labels[bad].flat[0]}")
            return labels
        if y.shape == z.shape:
            if not np.isfinite(y).all():
                raise NotFiniteError(f"loss {self.name!r}: targets contain NaN or inf")
            if self._check_sums:
                sums = y.sum(axis=ax, dtype=np.float64)
                bad = np.abs(sums - 1) > 1e-6
                if bad.any():
                    raise ValueError(f"loss {self.name!r}: target distributions must sum to 1 "
                                     f"(±1e-6) over the class axis, got a sum of "
                                     f"{sums[bad].flat[0].item()!r}")
            return y.astype(z.dtype)
        want = f"{z.shape}" if self._dense_only else f"{label_shape} (labels) or {z.shape}"
        raise ShapeError(f"loss {self.name!r}: targets must have shape {want}, got {y.shape}")

    def prepare_targets(self, y_pred, y):
        return self._class_targets(y_pred, y)

    def _dense(self, z, t):
        ax = self._class_axis(z)
        return t if t.dtype.kind == "f" else _one_hot(t, z.shape[ax], ax, z.dtype)

    def _pixels(self, z):
        return _size(z) // z.shape[self._class_axis(z)] if z.size else 1

    def _sum_classes(self, e, z):
        """Per-sample: sum over classes, mean over the other non-batch axes."""
        return e.reshape(z.shape[0], -1).sum(axis=1) / self._pixels(z) if z.shape[0] \
            else np.zeros(0, z.dtype)

    def get_config(self):
        return {"axis": self.axis, **super().get_config()}


class CrossEntropy(_ClassLoss):
    """``cross_entropy`` (networks.md §3.4, README §10, D-74, D-80) on logits z:
    ``ℓ_n = −Σ_k y_nk log_softmax(z_n)_k``, ``∂ℓ_n/∂z_n = softmax(z_n) − y_n``, Hessian
    ``diag(p) − ppᵀ``. Shapes: z ``(N, K)``, or ``(N, K, H, W)`` with ``axis=1`` where
    ``ℓ_n`` averages over the pixels (gradient and Hessian blocks divided by H·W).

    Options: ``from_probs=True`` takes probabilities p: ``ℓ_n = −Σ y log p̃`` with
    ``p̃ = clip(p, ε_p, 1−ε_p)``, gradient ``−y/p̃``, Hessian ``diag(y/p̃²)``;
    ``label_smoothing=ε``: ``y ← (1−ε) y + ε/K`` (applied in ``prepare_targets``).
    Canonical pair with softmax (§3.6): ``fused_per_sample_and_grad(s, y)`` is the logits
    path on the pre-activation. Uses the kernel ``corenet.kernels.softmax_cross_entropy``.
    """

    name = "cross_entropy"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [
            {"config": {}, "targets": "labels"},
            {"config": {}, "targets": "probabilities"},
            {"config": {"label_smoothing": 0.1}, "targets": "onehot"},
            {"config": {"from_probs": True}, "y_pred": "probabilities", "targets": "labels"},
            {"config": {"axis": 1}, "y_pred_shape": (3, 4, 2, 2), "targets": "labels"}]
    fused_activation = "softmax"

    def __init__(self, from_probs: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1, reduction: str = "mean"):
        super().__init__(axis, reduction)
        self.from_probs = bool(from_probs)
        self.label_smoothing = check_range(label_smoothing, "loss 'cross_entropy'",
                                           "label_smoothing", 0.0, 1.0)

    def prepare_targets(self, y_pred, y):
        t = self._class_targets(y_pred, y)
        eps = self.label_smoothing
        if eps > 0:
            k = y_pred.shape[self._class_axis(y_pred)]
            t = self._dense(y_pred, t) * (1 - eps) + eps / k
        return t

    def _logits(self, z, t):
        ax = self._class_axis(z)
        k, n = z.shape[ax], z.shape[0]
        moved = np.moveaxis(z, ax, -1)
        z2 = np.ascontiguousarray(moved).reshape(-1, k)
        if t.dtype.kind == "i":
            t2 = t.reshape(-1)
        else:
            t2 = np.ascontiguousarray(np.moveaxis(t, ax, -1)).reshape(-1, k)
        loss, grad = _softmax_xent(z2, t2)
        pix = self._pixels(z)
        loss = loss.reshape(n, pix).mean(axis=1) if n else np.zeros(0, z.dtype)
        grad = np.moveaxis(grad.reshape(moved.shape), -1, ax)
        if pix != 1:
            grad = grad / pix
        return loss, np.ascontiguousarray(grad)

    def per_sample_and_grad(self, y_pred, y):
        if not self.from_probs:
            return self._logits(y_pred, y)
        eps = _eps(y_pred.dtype)
        p = np.clip(y_pred, eps, 1 - eps)
        t = self._dense(y_pred, y)
        return self._sum_classes(-t * np.log(p), y_pred), -t / p / self._pixels(y_pred)

    def fused_per_sample_and_grad(self, s_out, y):
        return self._logits(s_out, y)

    def fused_hess_output(self, s_out, y):
        """``diag(p) − ppᵀ`` w.r.t. the logits (§7.4), whatever ``from_probs`` says."""
        if not self.from_probs:
            return self.hess_output(s_out, y)
        return type(self)(**{**self.get_config(), "from_probs": False}).hess_output(s_out, y)

    def hess_output(self, y_pred, y):
        y, _ = self._check(y_pred, y, None)
        n, d, pix = y_pred.shape[0], _size(y_pred), self._pixels(y_pred)
        if self.from_probs:
            p = np.clip(y_pred, _eps(y_pred.dtype), 1 - _eps(y_pred.dtype))
            return _diag_hess((self._dense(y_pred, y) / (p * p)).reshape(n, d) / pix)
        ax = self._class_axis(y_pred)
        k = y_pred.shape[ax]
        z2 = np.ascontiguousarray(np.moveaxis(y_pred, ax, -1)).reshape(n, pix, k)
        p = _softmax(z2.reshape(-1, k)).reshape(n, pix, k)
        blocks = (p[..., :, None] * (np.eye(k) - p[..., None, :])) / pix   # (N, P, K, K)
        # flat index (in the sample's C order) of class c at pixel q
        idx = np.moveaxis(np.arange(d).reshape(y_pred.shape[1:]), ax - 1, -1).reshape(pix, k)
        h = np.zeros((n, d, d), dtype=y_pred.dtype)
        h[:, idx[:, :, None], idx[:, None, :]] = blocks
        return h

    def get_config(self):
        return {"from_probs": self.from_probs, "label_smoothing": self.label_smoothing,
                **super().get_config()}


class NLL(_ClassLoss):
    """``nll`` on log-probabilities q (networks.md §3.4): ``ℓ_n = −Σ_k y_nk q_nk``,
    ``∂ℓ/∂q = −y``, Hessian 0; targets as for ``cross_entropy`` (labels or
    distributions), class axis ``axis``."""

    name = "nll"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{"config": {}, "y_pred": "log_probabilities", "targets": "labels"}]

    def per_sample_and_grad(self, y_pred, y):
        t = self._dense(y_pred, y)
        return self._sum_classes(-t * y_pred, y_pred), -t / self._pixels(y_pred)

    def hess_output(self, y_pred, y):
        self._check(y_pred, y, None)
        d = _size(y_pred)
        return np.zeros((y_pred.shape[0], d, d), dtype=y_pred.dtype)


class KLDiv(_ClassLoss):
    """``kl_div``: target distribution p (same shape, entries ≥ 0), input log-probabilities
    q (networks.md §3.4): ``ℓ_n = Σ_k p_k (log p_k − q_k)`` with ``0 log 0 = 0``,
    ``∂ℓ/∂q = −p``, Hessian 0. Target sums are not checked (PyTorch convention)."""

    name = "kl_div"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{"config": {}, "y_pred": "log_probabilities",
                              "targets": "probabilities"}]
    _dense_only = True
    _check_sums = False

    def prepare_targets(self, y_pred, y):
        p = self._class_targets(y_pred, y)
        if (p < 0).any():
            raise ValueError(f"loss 'kl_div': target probabilities must be >= 0, "
                             f"got {p[p < 0].flat[0].item()!r}")
        return p

    def per_sample_and_grad(self, y_pred, p):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)
        return self._sum_classes(plogp - p * y_pred, y_pred), -p / self._pixels(y_pred)

    hess_output = NLL.hess_output


class MulticlassHinge(_ClassLoss):
    """``multiclass_hinge(margin=1)`` (Weston–Watkins, networks.md §3.4), logits z (N, K),
    class c: ``ℓ_n = Σ_{j≠c} max(0, m − z_c + z_j)``; ``∂ℓ/∂z_j = 1[m − z_c + z_j > 0]``
    (j ≠ c), ``∂ℓ/∂z_c = −Σ_{j≠c} 1[·]``; no division by K; Hessian 0. Targets: labels
    (N,) or one-hot (N, K)."""

    name = "multiclass_hinge"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{"config": {"margin": 0.5}, "targets": "labels"}]

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(-1, reduction)
        self.margin = check_positive(margin, "loss 'multiclass_hinge'", "margin",
                                     allow_zero=True)

    def prepare_targets(self, y_pred, y):
        if y_pred.ndim != 2:
            raise ShapeError(f"loss 'multiclass_hinge': predictions must have shape (N, K), "
                             f"got {y_pred.shape}")
        t = self._class_targets(y_pred, y)
        if t.dtype.kind == "f":
            if ((t != 0) & (t != 1)).any():
                raise ValueError("loss 'multiclass_hinge': (N, K) targets must be one-hot")
            t = t.argmax(axis=1)
        return t

    def per_sample_and_grad(self, z, c):
        rows = np.arange(z.shape[0])
        marg = self.margin - z[rows, c][:, None] + z
        marg[rows, c] = 0
        active = marg > 0
        g = active.astype(z.dtype)
        g[rows, c] = -active.sum(axis=1)
        return np.where(active, marg, 0).sum(axis=1), g

    def hess_output(self, y_pred, y):
        self._check(y_pred, y, None)
        k = y_pred.shape[1]
        return np.zeros((y_pred.shape[0], k, k), dtype=y_pred.dtype)

    def get_config(self):
        return {"margin": self.margin, "reduction": self.reduction}


# --------------------------------------------------------------------------- task losses
class _TaskLoss(Loss):
    """A weighted sum of task losses, each the mean over its *valid* samples (D-58).

    ``_tasks(ŷ, prepared) -> [(α_t, valid_t (N,), ℓ_t (N,), column slice, g_t (N, w))]``.
    With ``v_nt`` valid flags and weights ``w_n``:

    * ``"mean"``: ``L = Σ_t α_t Σ_n w_n v_nt ℓ_nt / Σ_n w_n v_nt`` (tasks without valid
      samples contribute 0);
    * ``"sum"``: ``L = Σ_t α_t Σ_n w_n v_nt ℓ_nt``; ``"none"``: the vector of per-sample
      terms ``w_n Σ_t α_t v_nt ℓ_nt`` (gradient of their sum).

    ``per_sample`` is ``Σ_t α_t v_nt ℓ_nt``; invalid entries get zero gradient.
    """

    missing_targets = True

    def _combine(self, y_pred, tasks, sample_weight, mean):
        n = y_pred.shape[0]
        w = np.ones(n, y_pred.dtype) if sample_weight is None else sample_weight
        values = np.zeros(n, y_pred.dtype)
        grad = np.zeros_like(y_pred)
        for alpha, valid, loss, cols, g in tasks:
            c = alpha * w * valid
            if mean:
                total = c.sum() / alpha if alpha else 0.0
                if total <= 0:
                    continue
                c = c / total
            values += c * np.where(valid, loss, 0)
            grad[:, cols] += c[:, None] * np.where(valid[:, None], g, 0)
        return values, grad

    def per_sample_and_grad(self, y_pred, y):
        return self._combine(y_pred, self._tasks(y_pred, y), None, False)

    def value_and_grad(self, y_pred, y, sample_weight=None):
        y, sample_weight = self._check(y_pred, y, sample_weight)
        values, grad = self._combine(y_pred, self._tasks(y_pred, y), sample_weight,
                                     self.reduction == "mean")
        return (values if self.reduction == "none" else float(values.sum())), grad

    def value(self, y_pred, y, sample_weight=None):
        return self.value_and_grad(y_pred, y, sample_weight)[0]


class GroupedCrossEntropy(_TaskLoss):
    """``grouped_cross_entropy(groups=G, task_weights=None, missing="mask")``
    (networks.md §3.4, regularization.md §6, D-58): logits ``(N, T·G)`` split into T
    consecutive blocks of G classes, each a softmax cross-entropy ``ℓ_{n,t}``.
    Targets: ``(N, T)`` labels with ``−1`` (or NaN) = missing, or ``(N, T, G)`` one-hot /
    soft rows with NaN rows = missing. ``L = Σ_t α_t mean_{n valid for t} ℓ_{n,t}`` (see
    :class:`_TaskLoss` for "sum"/"none" and weights). ``missing="error"`` rejects missing
    labels. Hessian: blocks ``α_t v_nt (diag(p_t) − p_t p_tᵀ)`` of the per-sample loss.
    """

    name = "grouped_cross_entropy"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [
            # missing labels (-1): L_t is the mean over the valid rows only (D-58), so the
            # N·mean and Σwℓ/Σw relations of the other losses do not hold
            {"config": {"groups": 3}, "y_pred_shape": (5, 6), "skip_checks": ["reductions", "weights"],
             "targets": lambda rng, shape: rng.integers(-1, 3, (shape[0], 2))},
            {"config": {"groups": 2, "task_weights": [1.0, 0.5, 2.0]}, "y_pred_shape": (4, 6),
             "targets": lambda rng, shape: rng.integers(0, 2, (shape[0], 3))}]

    def __init__(self, groups: int, task_weights=None, missing: str = "mask",
                 reduction: str = "mean"):
        super().__init__(reduction)
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise HyperparameterError(f"loss 'grouped_cross_entropy': groups must be an int "
                                      f">= 1, got {groups!r}")
        if missing not in ("mask", "error"):
            raise HyperparameterError(f"loss 'grouped_cross_entropy': missing must be 'mask' "
                                      f"or 'error', got {missing!r}")
        self.groups, self.missing = int(groups), missing
        self.task_weights = None if task_weights is None else [
            check_positive(a, "loss 'grouped_cross_entropy'", "task_weights", allow_zero=True)
            for a in task_weights]

    def _n_tasks(self, z):
        g = self.groups
        if z.ndim != 2 or z.shape[1] % g:
            raise ShapeError(f"loss 'grouped_cross_entropy': logits must have shape (N, T*{g}), "
                             f"got {z.shape}")
        t = z.shape[1] // g
        if self.task_weights is not None and len(self.task_weights) != t:
            raise ShapeError(f"loss 'grouped_cross_entropy': {len(self.task_weights)} "
                             f"task_weights for {t} tasks (logits {z.shape})")
        return t

    def prepare_targets(self, y_pred, y):
        n, nt, g = y_pred.shape[0], self._n_tasks(y_pred), self.groups
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise DTypeError(f"loss 'grouped_cross_entropy': targets must be numeric, "
                             f"got dtype {y.dtype}")
        if nt == 1 and y.shape == (n,):
            y = y.reshape(n, 1)
        if y.shape == (n, nt):
            valid = np.isfinite(y) & (y != -1) if y.dtype.kind == "f" else y != -1
            if np.isinf(y).any() or (y[valid] != np.round(y[valid])).any():
                raise ValueError("loss 'grouped_cross_entropy': labels must be integers "
                                 "(−1 or NaN = missing)")
            labels = np.where(valid, y, 0).astype(np.int64)
            bad = valid & ((labels < 0) | (labels >= g))
            if bad.any():
                raise ValueError(f"loss 'grouped_cross_entropy': labels must be in [0, {g - 1}] "
                                 f"(−1 = missing), got {labels[bad].flat[0]}")
            t = labels
        elif y.shape == (n, nt, g):
            y = y.astype(y_pred.dtype)
            valid = np.isfinite(y).all(axis=2)
            sums = np.where(valid, y.sum(axis=2, dtype=np.float64), 1.0)
            if (np.abs(sums - 1) > 1e-6).any():
                raise ValueError(f"loss 'grouped_cross_entropy': target rows must sum to 1 "
                                 f"(±1e-6), got {sums[np.abs(sums - 1) > 1e-6].flat[0].item()!r}")
            t = np.where(valid[:, :, None], y, 0)
        else:
            raise ShapeError(f"loss 'grouped_cross_entropy': targets must have shape "
                             f"{(n, nt)} (labels) or {(n, nt, g)}, got {y.shape}")
        if self.missing == "error" and not valid.all():
            raise ValueError("loss 'grouped_cross_entropy': missing labels with missing='error'")
        return t, valid

    def _alphas(self, nt):
        return self.task_weights or [1.0] * nt

    def _tasks(self, z, prepared):
        t, valid = prepared
        n, g = z.shape[0], self.groups
        nt = z.shape[1] // g
        t2 = t.reshape(-1) if t.dtype.kind == "i" else t.reshape(-1, g)
        loss, grad = _softmax_xent(z.reshape(-1, g), t2)
        loss, grad = loss.reshape(n, nt), grad.reshape(n, nt, g)
        return [(a, valid[:, i], loss[:, i], slice(i * g, (i + 1) * g), grad[:, i])
                for i, a in enumerate(self._alphas(nt))]

    def hess_output(self, y_pred, y):
        valid = self._check(y_pred, y, None)[0][1]
        n, g = y_pred.shape[0], self.groups
        nt = y_pred.shape[1] // g
        p = _softmax(y_pred.reshape(-1, g)).reshape(n, nt, g)
        h = np.zeros((n, nt * g, nt * g), dtype=y_pred.dtype)
        for i, a in enumerate(self._alphas(nt)):
            s = slice(i * g, (i + 1) * g)
            pi = p[:, i]
            blk = pi[:, :, None] * (np.eye(g) - pi[:, None, :])
            h[:, s, s] = (a * valid[:, i])[:, None, None] * blk
        return h

    def get_config(self):
        return {"groups": self.groups, "task_weights": self.task_weights,
                "missing": self.missing, "reduction": self.reduction}


class Multitask(_TaskLoss):
    """``multitask(losses=[...])`` (regularization.md §6, D-58): ``L = Σ_t α_t L_t`` over
    heads that read column slices of one ``(N, C)`` output.

    Each entry of ``losses`` is a dict ``{"name": <registered loss>, "columns": [start, stop],
    "weight": α_t (default 1), "target_columns": [a, b] or j (optional), **loss_kwargs}``.
    Targets ``y``: a list/tuple with one target array per head (in order), or one 2-D
    array from which head t takes ``target_columns`` (default: ``columns``; an int j gives
    the 1-D column ``y[:, j]``, e.g. class labels). Rows whose float targets contain NaN
    are missing for that head: each ``L_t`` is the mean over the valid rows (0 if none),
    missing rows get zero gradient (see :class:`_TaskLoss` for "sum"/"none"/weights).
    ``hess_output`` is block-diagonal with blocks ``α_t v_nt ∇²ℓ_nt``.
    """

    name = "multitask"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [
            {"config": {"losses": [{"name": "mse", "columns": [0, 2]},
                                   {"name": "cross_entropy", "columns": [2, 5],
                                    "target_columns": 2, "weight": 0.5}]},
             "y_pred_shape": (4, 5),
             "targets": lambda rng, shape: np.column_stack(
                 [rng.standard_normal((shape[0], 2)), rng.integers(0, 3, shape[0])])}]

    def __init__(self, losses, reduction: str = "mean"):
        super().__init__(reduction)
        from . import registry

        if not isinstance(losses, (list, tuple)) or not losses:
            raise HyperparameterError(f"loss 'multitask': losses must be a non-empty list of "
                                      f"dicts, got {losses!r}")
        self.losses, self._heads = [], []
        for i, entry in enumerate(losses):
            spec = dict(entry)
            try:
                name, cols = spec.pop("name"), spec.pop("columns")
                start, stop = (int(c) for c in cols)
            except (KeyError, TypeError, ValueError):
                raise HyperparameterError(f"loss 'multitask': entry {i} needs 'name' and "
                                          f"'columns': [start, stop], got {entry!r}") from None
            if not 0 <= start < stop:
                raise HyperparameterError(f"loss 'multitask': entry {i} columns must satisfy "
                                          f"0 <= start < stop, got {cols!r}")
            weight = check_positive(spec.pop("weight", 1.0), "loss 'multitask'", "weight",
                                    allow_zero=True)
            tcols = spec.pop("target_columns", None)
            if "reduction" in spec:
                raise HyperparameterError("loss 'multitask': heads take no 'reduction'")
            sub = registry.create("loss", {"name": name, **spec})
            self._heads.append((sub, slice(start, stop), weight, tcols))
            self.losses.append({"name": name, "columns": [start, stop], "weight": weight,
                                **({} if tcols is None else {"target_columns": tcols}),
                                **spec})

    def _split(self, y_pred, y):
        """Per head: (valid rows, raw targets of the valid rows)."""
        if y_pred.ndim != 2:
            raise ShapeError(f"loss 'multitask': predictions must have shape (N, C), "
                             f"got {y_pred.shape}")
        n, c = y_pred.shape
        if isinstance(y, (list, tuple)):
            if len(y) != len(self._heads):
                raise ShapeError(f"loss 'multitask': {len(self._heads)} heads but "
                                 f"{len(y)} target arrays")
            parts = [np.asarray(t) for t in y]
        else:
            y = np.asarray(y)
            if y.ndim != 2 or y.shape[0] != n:
                raise ShapeError(f"loss 'multitask': targets must be a list of arrays or an "
                                 f"array of shape ({n}, ...), got {y.shape}")
            parts = []
            for _, cols, _, tcols in self._heads:
                if tcols is None:
                    parts.append(y[:, cols])
                elif isinstance(tcols, (int, np.integer)):
                    parts.append(y[:, tcols])
                else:
                    parts.append(y[:, int(tcols[0]):int(tcols[1])])
        out = []
        for (sub, cols, _, _), t in zip(self._heads, parts):
            if cols.stop > c:
                raise ShapeError(f"loss 'multitask': head {sub.name!r} reads columns "
                                 f"[{cols.start}, {cols.stop}) of an output with {c} columns")
            if t.ndim == 0 or t.shape[0] != n:
                raise ShapeError(f"loss 'multitask': targets of head {sub.name!r} must have "
                                 f"{n} rows, got shape {t.shape}")
            valid = np.isfinite(t).reshape(n, -1).all(axis=1) if t.dtype.kind == "f" \
                else np.ones(n, bool)
            out.append((valid, t[valid]))
        return out

    def prepare_targets(self, y_pred, y):
        return [(valid, sub.prepare_targets(np.ascontiguousarray(y_pred[valid, cols]), t))
                for (sub, cols, _, _), (valid, t) in zip(self._heads, self._split(y_pred, y))]

    def _tasks(self, y_pred, prepared):
        n, tasks = y_pred.shape[0], []
        for (sub, cols, weight, _), (valid, t) in zip(self._heads, prepared):
            lv, gv = sub.per_sample_and_grad(np.ascontiguousarray(y_pred[valid, cols]), t)
            loss = np.zeros(n, y_pred.dtype)
            grad = np.zeros((n, cols.stop - cols.start), y_pred.dtype)
            loss[valid], grad[valid] = lv, gv.reshape(grad[valid].shape)
            tasks.append((weight, valid, loss, cols, grad))
        return tasks

    def hess_output(self, y_pred, y):
        self._check(y_pred, y, None)  # validates predictions and every head's targets
        n, c = y_pred.shape
        h = np.zeros((n, c, c), dtype=y_pred.dtype)
        for (sub, cols, weight, _), (valid, t) in zip(self._heads, self._split(y_pred, y)):
            hs = sub.hess_output(np.ascontiguousarray(y_pred[valid, cols]), t)
            h[np.flatnonzero(valid)[:, None, None], np.arange(c)[cols][:, None],
              np.arange(c)[cols][None, :]] += weight * hs
        return h

    def get_config(self):
        return {"losses": [dict(e) for e in self.losses], "reduction": self.reduction}


LOSSES = [MSE, SSE, MAE, Huber, HuberNorm, BCE, BCEWithLogits, CrossEntropy, NLL,
          GroupedCrossEntropy, Hinge, SquaredHinge, MulticlassHinge, Logistic, Perceptron,
          KLDiv, Multitask]


@hookimpl
def corenet_register_losses():
    """The built-in losses (spec README §9)."""
    return list(LOSSES)


# --------------------------------------------------------------------------- pair losses
class Contrastive(_Elementwise):
    """``contrastive(margin=1)`` (Hadsell, Chopra & LeCun 2006) on pair distances
    ``d ≥ 0`` (e.g. the output of ``layer:pair_distance``) with targets ``y ∈ {0, 1}``,
    **1 = similar pair** (the convention of PyTorch's embedding losses, where the
    positive label marks similar pairs; Hadsell et al. write Y = 0 for similar)::

        e = y d²/2 + (1 − y) max(0, m − d)²/2
        ∂e/∂d = y d − (1 − y) max(0, m − d)
        ∂²e/∂d² = y + (1 − y) 1[d < m]

    Similar pairs are pulled together; dissimilar pairs are pushed apart until they are
    at least the margin ``m`` away. Predictions ``(N,)`` or ``(N, K)`` (K distances per
    sample are averaged, README §6). Negative distances raise ``ValueError``.
    """

    name = "contrastive"

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive(margin, "loss 'contrastive'", "margin")

    def prepare_targets(self, y_pred, y):
        y = super().prepare_targets(y_pred, y)
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise ValueError(f"loss 'contrastive': targets must be 0 (dissimilar) or 1 "
                             f"(similar), got value {y[bad].flat[0].item()!r}")
        return y

    def elements(self, d, y):
        if (d < 0).any():
            raise ValueError(f"loss 'contrastive': predictions are distances and must be "
                             f">= 0, got {d[d < 0].flat[0].item()!r}")
        h = np.maximum(self.margin - d, 0)
        return 0.5 * (y * d * d + (1 - y) * h * h), y * d - (1 - y) * h

    def element_hess(self, d, y):
        return y + (1 - y) * (d < self.margin)

    def get_config(self):
        return {"margin": self.margin, **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        def distances(rng, shape):
            return rng.uniform(0.0, 2.0, shape)
        return [{"config": {}, "y_pred_shape": (6, 1), "y_pred": distances,
                 "targets": "binary"},
                {"config": {"margin": 2.0, "reduction": "sum"}, "y_pred_shape": (5,),
                 "y_pred": distances, "targets": "binary"},
                {"config": {"margin": 0.5}, "y_pred_shape": (4, 3), "y_pred": distances,
                 "targets": "binary"}]


LOSSES.append(Contrastive)
