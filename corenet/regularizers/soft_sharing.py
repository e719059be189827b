"""Soft weight sharing (regularization.md §4.3, D-54; Nowlan & Hinton 1992)."""
from __future__ import annotations

import numpy as np

from .. import registry
from ..errors import HyperparameterError, ShapeError, check_positive
from ..parameter import Parameter
from ..plugins import hookimpl
from ._base import PenaltyRegularizer, check_int

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def mixture_terms(w, mu, log_sigma, gamma):
    """Value and gradients of the mixture prior of §4.3 for the weights ``w`` (any shape).

    ``α = softmax(γ)``, ``σ_j = exp(s_j)``, ``G_j(w) = exp(−(w − μ_j)²/(2σ_j²))/(√(2π)σ_j)``::

        Ω = −Σ_i log Σ_j α_j G_j(w_i)
        r_ij = α_j G_j(w_i) / Σ_k α_k G_k(w_i)      (responsibility, D-54; log-sum-exp)
        ∂Ω/∂w_i = Σ_j r_ij (w_i − μ_j)/σ_j²         ∂Ω/∂μ_j = −Σ_i r_ij (w_i − μ_j)/σ_j²
        ∂Ω/∂s_j = Σ_i r_ij (1 − (w_i − μ_j)²/σ_j²)  ∂Ω/∂γ_j = Σ_i (α_j − r_ij)

    Returns ``(Ω, r (n, J), ∂Ω/∂w (shape of w), ∂Ω/∂μ, ∂Ω/∂s, ∂Ω/∂γ)`` in float64.
    """
    w = np.asarray(w, dtype=np.float64)
    flat = w.reshape(-1, 1)
    mu = np.asarray(mu, dtype=np.float64)
    s = np.asarray(log_sigma, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64)
    if not (mu.shape == s.shape == g.shape) or mu.ndim != 1:
        raise ShapeError(f"soft_weight_sharing: means, log_sigmas and logits must be 1-D of "
                         f"one length, got {mu.shape}, {s.shape}, {g.shape}")
    log_alpha = g - np.logaddexp.reduce(g)
    inv_var = np.exp(-2.0 * s)
    d = flat - mu                                              # (n, J)
    z2 = d * d * inv_var
    logp = log_alpha - 0.5 * z2 - s - _HALF_LOG_2PI            # log α_j G_j(w_i)
    lse = np.logaddexp.reduce(logp, axis=1, keepdims=True)
    r = np.exp(logp - lse)
    omega = -float(lse.sum())
    rd = r * d * inv_var
    dw = rd.sum(axis=1).reshape(w.shape)
    dmu = -rd.sum(axis=0)
    ds = (r * (1.0 - z2)).sum(axis=0)
    dgamma = flat.shape[0] * np.exp(log_alpha) - r.sum(axis=0)
    return omega, r, dw, dmu, ds, dgamma


class SoftWeightSharing(PenaltyRegularizer):
    """Soft weight sharing (``regularizer:soft_weight_sharing``, §4.3, D-54): ``λΩ`` with
    ``Ω`` the negative log-likelihood of all selected weights (jointly) under a learned
    mixture of ``J = n_components`` Gaussians (:func:`mixture_terms`).

    The mixture (means ``μ``, log standard deviations ``s``, mixing logits ``γ``) is
    initialised at the first call from the current selected weights: ``μ_j`` at the
    quantiles ``(j + ½)/J`` (numpy's linear quantile; ``μ₁ = 0`` with
    ``fix_zero_component``), ``σ_j = max(std(w), 1e-3)``, ``α_j = 1/J`` — or given as
    ``means``/``log_sigmas``/``logits``. With ``learn_mixture=True`` they are the
    :class:`~corenet.Parameter` s :attr:`mixture_parameters` (``decay=False``; ``μ₁`` masked
    when fixed). :meth:`add_grad` (pre-update weights, D-29) adds ``λ∂Ω/∂w`` into the weight
    gradients and stores ``λ∂Ω/∂(μ, s, γ)`` in their ``grad``; ``corenet_on_after_step``
    updates them with an optimizer of the trainer's kind and hyperparameters whose learning
    rate follows the trainer's (first group's) ``lr × mixture_lr_scale`` each step (plain
    ``sgd`` for data solvers and loss-driven rules). ``get_config`` carries the current
    mixture, so a rebuilt regularizer gives the same penalty.
    """

    name = "soft_weight_sharing"

    def __init__(self, n_components: int = 3, lam: float = 1e-3, learn_mixture: bool = True,
                 mixture_lr_scale: float = 1.0, fix_zero_component: bool = True,
                 means=None, log_sigmas=None, logits=None, include_bias: bool = False,
                 params="weights"):
        super().__init__(lam, include_bias, params)
        who = "regularizer 'soft_weight_sharing'"
        self.n_components = check_int(n_components, who, "n_components")
        self.learn_mixture = bool(learn_mixture)
        self.mixture_lr_scale = check_positive(mixture_lr_scale, who, "mixture_lr_scale",
                                               allow_zero=True)
        self.fix_zero_component = bool(fix_zero_component)
        given = [v is not None for v in (means, log_sigmas, logits)]
        self.mu = self.log_sigma = self.gamma = None
        if any(given):
            if not all(given):
                raise HyperparameterError(f"{who}: give all of means, log_sigmas and logits "
                                          f"or none")
            arrays = []
            for key, v in (("means", means), ("log_sigmas", log_sigmas), ("logits", logits)):
                a = np.asarray(v, dtype=np.float64)
                if a.shape != (self.n_components,) or not np.isfinite(a).all():
                    raise HyperparameterError(f"{who}: {key} must be {self.n_components} finite "
                                              f"numbers, got {v!r}")
                arrays.append(a)
            if self.fix_zero_component and arrays[0][0] != 0.0:
                raise HyperparameterError(f"{who}: fix_zero_component needs means[0] == 0, "
                                          f"got {arrays[0][0]}")
            self._make_parameters(*arrays)
        self._optimizer = None
        self._pending = False

    # ------------------------------------------------------------------ the mixture
    def _make_parameters(self, mu, s, g):
        self.mu = Parameter(np.array(mu, dtype=np.float64), "mixture_mean", decay=False)
        self.log_sigma = Parameter(np.array(s, dtype=np.float64), "mixture_log_sigma",
                                   decay=False)
        self.gamma = Parameter(np.array(g, dtype=np.float64), "mixture_logits", decay=False)
        for p in self.mixture_parameters:
            p.name = f"soft_weight_sharing.{p.role}"
        if self.fix_zero_component:
            m = np.ones(self.n_components)
            m[0] = 0.0
            self.mu.mask = m

    @property
    def mixture_parameters(self) -> list:
        """``[μ, s, γ]`` as Parameters (empty before initialisation)."""
        return [] if self.mu is None else [self.mu, self.log_sigma, self.gamma]

    def initialize(self, params) -> None:
        """Initialise the mixture from the selected weights (§4.3)."""
        sel = self.selected(params)
        w = np.concatenate([p.data.ravel() for p in sel]).astype(np.float64) if sel \
            else np.zeros(1)
        J = self.n_components
        mu = np.quantile(w, (np.arange(J) + 0.5) / J)
        if self.fix_zero_component:
            mu[0] = 0.0
        s = np.full(J, np.log(max(float(np.std(w)), 1e-3)))
        self._make_parameters(mu, s, np.zeros(J))

    def _ensure(self, params):
        if self.mu is None:
            self.initialize(params)

    def _terms(self, data):
        return mixture_terms(data, self.mu.data, self.log_sigma.data, self.gamma.data)

    # ------------------------------------------------------------------ penalty
    def penalty_of(self, data):
        return self._terms(data)[0]

    def grad_of(self, data):
        return self._terms(data)[2]

    def penalty(self, params) -> float:
        self._ensure(params)
        return super().penalty(params)

    def add_grad(self, params) -> None:
        self._ensure(params)
        mix = self.mixture_parameters
        for m in mix:
            m.grad.fill(0.0)
        for p in params:
            if not self.applies_to(p):
                continue
            lam = self.lam_for(p)
            if not lam:
                continue
            _, _, dw, dmu, ds, dgamma = self._terms(p.data)
            p.grad += (lam * dw).astype(p.dtype, copy=False)
            for m, g in zip(mix, (dmu, ds, dgamma)):
                m.grad += lam * g
        if self.fix_zero_component:
            self.mu.grad[0] = 0.0
        self._pending = self.learn_mixture

    # ------------------------------------------------------------------ learning the mixture
    def _mixture_optimizer(self, trainer):
        opt = trainer.optimizer
        if self._optimizer is None:
            if getattr(opt, "needs_data", False) or getattr(opt, "uses_loss", False):
                self._optimizer = registry.create("optimizer", "sgd")
            else:
                cfg = {k: v for k, v in opt.get_config().items()
                       if k not in ("weight_decay", "decoupled_weight_decay")}
                self._optimizer = type(opt)(**cfg)
            self._optimizer.bind(self.mixture_parameters)
        lr = opt.lr * self.mixture_lr_scale
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        return self._optimizer

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        self._optimizer = None
        self._pending = False

    @hookimpl
    def corenet_on_after_step(self, trainer, optimizer):
        if self._pending and self.mixture_lr_scale > 0.0:
            self._mixture_optimizer(trainer).step()
        self._pending = False

    def get_config(self):
        cfg = {"n_components": self.n_components, **super().get_config(),
               "learn_mixture": self.learn_mixture, "mixture_lr_scale": self.mixture_lr_scale,
               "fix_zero_component": self.fix_zero_component}
        if self.mu is not None:
            cfg.update(means=self.mu.data.tolist(), log_sigmas=self.log_sigma.data.tolist(),
                       logits=self.gamma.data.tolist())
        return cfg

    @classmethod
    def examples(cls):
        return [{"lam": 0.1}, {"n_components": 2, "lam": 0.5, "fix_zero_component": False,
                               "include_bias": True}]
