"""Levenberg-Marquardt for small networks (spec optimizers.md §12.3, damped Gauss-Newton),
with the per-sample Jacobian of the network outputs w.r.t. the parameter vector."""
from __future__ import annotations

import numpy as np

from ._base import check_interval
from ._solver import DataSolver, SolverResult, damped_solve
from ..errors import HyperparameterError


def jacobian(model, X, *, return_outputs=False):
    """``J[n·K + k, j] = ∂ŷ_{n,k}/∂θ_j``, shape ``(N·K, P)``.

    ``ŷ_n`` is sample n's output flattened in C order (K entries), θ the flat vector of
    the trainable parameters (README §2.3, ``model.get_flat_parameters()``). Computed by
    one forward pass per sample and one ``model.backward`` per output column with a
    one-hot ``dy`` (works for ``Sequential`` and ``Graph``); the model runs in eval mode
    (a deterministic function) and its parameter gradients are left unchanged. Columns of
    masked entries hold the raw derivative (callers restrict to unmasked positions).
    With ``return_outputs`` also returns the outputs ``(N, ...)``.
    """
    params = model.trainable_parameters()
    saved = [p.grad.copy() for p in params]
    offsets = np.cumsum([0] + [p.size for p in params])
    was = model.training
    model.eval()
    try:
        outputs = None
        J = None
        for n in range(X.shape[0]):
            out = model.forward(X[n:n + 1])
            if J is None:
                K = out[0].size
                J = np.empty((X.shape[0] * K, int(offsets[-1])), dtype=out.dtype)
                outputs = np.empty((X.shape[0],) + out.shape[1:], dtype=out.dtype)
            outputs[n] = out[0]
            dy = np.zeros_like(out)
            for k in range(K):
                for p in params:
                    p.grad.fill(0.0)
                dy.flat[k] = 1.0
                model.backward(dy)
                dy.flat[k] = 0.0
                row = J[n * K + k]
                for p, start, stop in zip(params, offsets[:-1], offsets[1:]):
                    row[start:stop] = p.grad.ravel()
    finally:
        for p, g in zip(params, saved):
            p.grad[...] = g
        model.train(was)
    return (J, outputs) if return_outputs else J


class LevenbergMarquardt(DataSolver):
    """Levenberg-Marquardt (``optimizer:levenberg_marquardt``; optimizers.md §12.3).

    Minimises ``F(θ) = L(f(X; θ), y) + (λ/2)‖θ_decay‖²`` (λ = ``weight_decay``, on
    parameters with ``decay=True``) with damped Gauss-Newton steps::

        J = ∂ŷ/∂θ (per sample, :func:`jacobian`);   g = Jᵀ ∂L/∂ŷ + λ θ_decay
        A = Σ_n c_n J_nᵀ ∇²ℓ_n J_n + λ I_decay        (∇²ℓ_n = loss.hess_output; 2/K·I for mse)
        δ = −solve(A + μ I, g);  θ' = θ + lr·δ
        F(θ') < F(θ): accept, μ ← max(μ/factor, mu_min);  else μ ← μ·factor and retry

    (μ init ``mu`` = 1e-3, factor 10). For a sum-of-squares loss this is the classical
    ``(JᵀJ + μI)δ = −Jᵀr``. Only unmasked trainable entries move. Stops when
    ``‖lr·δ‖_∞ < tol``, ``‖g‖_∞ < gtol`` (converged), at ``max_iter`` or when μ exceeds
    ``mu_max`` without a decrease (not converged). Cost: N·K backward passes and a P×P
    solve per iteration — for small networks. The current μ is saved in the state
    (``lm_damping``) so ``data_step`` calls continue where they stopped.
    Defaults: lr 1, mu 1e-3, mu_factor 10, mu_min 1e-12, mu_max 1e10, max_iter 100,
    tol 1e-12, gtol 1e-10.
    """

    name = "levenberg_marquardt"
    accepts_weight_decay = True
    defaults = {"lr": 1.0, "mu": 1e-3, "mu_factor": 10.0, "mu_min": 1e-12, "mu_max": 1e10,
                "max_iter": 100, "tol": 1e-12, "gtol": 1e-10}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "mu", 0.0, low_open=True)
        check_interval(self, group, "mu_factor", 1.0, low_open=True)
        check_interval(self, group, "mu_min", 0.0)
        check_interval(self, group, "mu_max", group["mu"])
        check_interval(self, group, "tol", 0.0)
        check_interval(self, group, "gtol", 0.0)
        if not isinstance(group["max_iter"], (int, np.integer)) or group["max_iter"] < 1:
            raise HyperparameterError(f"optimizer {self.name!r}: max_iter must be an integer "
                                      f">= 1, got {group['max_iter']!r}")

    # ------------------------------------------------------------------ pieces
    def _setup(self, model, loss):
        if loss.reduction == "none":
            raise ValueError(f"optimizer {self.name!r}: the loss must be reduced "
                             f"('mean' or 'sum'), got reduction 'none'")
        params = model.trainable_parameters()
        group = self.param_groups[0]
        decay = np.concatenate([np.full(p.size, float(p.decay)) for p in params])
        free = np.flatnonzero(model.get_flat_mask() != 0)
        return params, group, decay * group["weight_decay"], free

    def _objective(self, model, loss, X, y, sw, theta, decay):
        out = model.predict(X)
        return float(loss.value(out, y, sw)) + 0.5 * float(np.sum(decay * theta * theta))

    def _damping(self, params, group):
        state = self.state.get(params[0]) if params else None
        return state["lm_damping"] if state and "lm_damping" in state else group["mu"]

    def _save_damping(self, params, mu):
        for p in params:
            self.state.setdefault(p, {})["lm_damping"] = float(mu)

    def _iterate(self, model, loss, X, y, sw, setup, mu, F):
        """One accepted LM step (or none); returns ``(F, mu, step_norm, grad_norm, ok)``."""
        params, group, decay, free = setup
        theta = model.get_flat_parameters().astype(np.float64)
        J, out = jacobian(model, X, return_outputs=True)
        N = X.shape[0]
        J = J.astype(np.float64).reshape(N, -1, J.shape[1])[:, :, free]
        dL = np.asarray(loss.grad(out, y, sw), dtype=np.float64).reshape(N, -1)
        try:
            hess = np.asarray(loss.hess_output(out, y), dtype=np.float64)
        except NotImplementedError:
            raise ValueError(f"optimizer {self.name!r}: loss {loss.name!r} has no output "
                             f"Hessian (use mse or sse)") from None
        c = loss._weights(N, sw, np.float64)
        hess = hess.reshape(N, J.shape[1], J.shape[1]) * np.reshape(c, (-1, 1, 1))
        g = np.einsum("nkp,nk->p", J, dL) + decay[free] * theta[free]
        HJ = np.matmul(hess, J)
        A = J.reshape(-1, J.shape[2]).T @ HJ.reshape(-1, J.shape[2])
        A[np.diag_indices_from(A)] += decay[free]
        grad_norm = float(np.max(np.abs(g))) if g.size else 0.0
        if grad_norm < group["gtol"]:
            return F, mu, 0.0, grad_norm, True
        while mu <= group["mu_max"]:
            delta, _ = damped_solve(A, -g, mu)
            delta *= group["lr"]
            trial = theta.copy()
            trial[free] += delta
            model.set_flat_parameters(trial.astype(model.dtype))
            for p in params:
                p.apply_mask()
            F_new = self._objective(model, loss, X, y, sw, trial, decay)
            if np.isfinite(F_new) and F_new < F:
                return F_new, max(mu / group["mu_factor"], group["mu_min"]), \
                    float(np.max(np.abs(delta))) if delta.size else 0.0, grad_norm, True
            mu *= group["mu_factor"]
        model.set_flat_parameters(theta.astype(model.dtype))
        return F, mu, 0.0, grad_norm, False

    # ------------------------------------------------------------------ entry points
    def minimize(self, model, X, y, *, loss=None, sample_weight=None) -> SolverResult:
        X, y, loss, sw = self._prepare(model, X, y, loss, sample_weight, "mse")
        setup = self._setup(model, loss)
        params, group, decay = setup[:3]
        mu = self._damping(params, group)
        F = self._objective(model, loss, X, y, sw, model.get_flat_parameters(), decay)
        path, converged, message, it = [], False, "", 0
        for it in range(1, group["max_iter"] + 1):
            F, mu, step, gnorm, ok = self._iterate(model, loss, X, y, sw, setup, mu, F)
            self.iterations += 1
            path.append(model.get_flat_parameters().copy())
            if not ok:
                message = f"no decrease with damping up to mu_max={group['mu_max']:g}"
                break
            if gnorm < group["gtol"] or step < group["tol"]:
                converged = True
                message = f"converged after {it} iteration(s)"
                break
        else:
            message = f"iteration cap max_iter={group['max_iter']} reached"
        self._save_damping(params, min(mu, group["mu_max"]))
        return SolverResult(converged, it, F, path, message)

    def data_step(self, model, loss, X, y, sample_weight=None) -> float:
        """One LM iteration on ``(X, y)``; returns the objective before it."""
        X, y, loss, sw = self._prepare(model, X, y, loss, sample_weight, "mse")
        setup = self._setup(model, loss)
        params, group, decay = setup[:3]
        mu = self._damping(params, group)
        F = self._objective(model, loss, X, y, sw, model.get_flat_parameters(), decay)
        _, mu, _, _, _ = self._iterate(model, loss, X, y, sw, setup, mu, F)
        self.iterations += 1
        self._save_damping(params, min(mu, group["mu_max"]))
        return F

    @classmethod
    def examples(cls):
        return [{"max_iter": 20}]
