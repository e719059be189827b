"""Newton / IRLS for logistic and softmax regression (spec optimizers.md §12.1;
decisions D-16, D-25).

:func:`solve_irls` works on a design matrix; the registered optimizer ``newton_irls``
applies it to a linear model (a Sequential with one ``dense`` layer, see
:func:`._solver.linear_model`), writing ``W`` and ``b`` in place and holding masked or
frozen coefficients. All linear algebra is float64; results are cast to the model dtype.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, ShapeError
from ._base import check_flag, check_interval
from ._solver import (DataSolver, SolverResult, damped_solve, design_matrix, linear_model,
                      sample_factors)


# ----------------------------------------------------------------------------- IRLS core
def _log1pexp(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


@np.errstate(over="ignore", invalid="ignore")     # a diverging start is handled by the caller
def _objective(A, Y, theta, binary, c, l2, pen):
    Z = A @ theta.T
    if binary:
        values = (_log1pexp(Z) - Y * Z)[:, 0]
    else:
        m = Z.max(axis=1, keepdims=True)
        values = (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0] - \
            (Y * Z).sum(axis=1)
    return float(values @ c + 0.5 * l2 * np.sum(pen * theta * theta))


def _gradient_hessian(A, Y, theta, binary, c, l2, pen):
    """``g = Aᵀ(c ⊙ (a − y)) + λ w_pen`` and ``H = Aᵀ diag(c ⊙ R) A + λ I_pen``
    (binary, D-16) or the softmax blocks ``Σ_n c_n (diag(p_n) − p_n p_nᵀ) ⊗ a_n a_nᵀ``
    (D-25), for coefficients flattened class-major (C order of ``theta``)."""
    Z = A @ theta.T
    K, D = theta.shape
    if binary:
        P = _sigmoid(Z)
        G = ((P - Y)[:, 0] * c) @ A
        H = (A * (c * (P * (1.0 - P))[:, 0])[:, None]).T @ A
        G = G[None, :]
    else:
        P = _softmax(Z)
        G = ((P - Y) * c[:, None]).T @ A
        CP = P * c[:, None]
        M = (P[:, :, None] * A[:, None, :]).reshape(A.shape[0], K * D)
        H = -(M.T @ (CP[:, :, None] * A[:, None, :]).reshape(A.shape[0], K * D))
        blocks = np.einsum("nk,ni,nj->kij", CP, A, A)
        k = np.arange(K)
        H.reshape(K, D, K, D)[k, :, k, :] += blocks
    G = G + l2 * pen * theta
    H[np.diag_indices_from(H)] += l2 * pen.ravel()
    return G.ravel(), H


def newton_irls_core(A, Y, theta, *, binary, c, l2=0.0, pen=None, free=None, max_iter=100,
                     tol=1e-10, damping=0.0, lr=1.0, max_halvings=30):
    """Newton iterations ``w ← w − lr·solve(H + damping·I, g)`` on the design matrix
    ``A`` (N, D) with targets ``Y`` (N, K) and coefficients ``theta`` (K, D), updated in
    place on the ``free`` flat positions. Stops when ``‖Δw‖_∞ < tol`` after an undamped
    solve (a step that needed the automatic damping retry never counts as converged:
    H was singular, e.g. saturated outputs on separable data) or at ``max_iter``.

    Safeguard (not in the spec's loop, which starts at w = 0 where full steps always
    descend): a step that would increase the objective is halved until it does not, so
    the iteration also converges from a poor start (pure Newton can diverge there). Steps
    that decrease the objective — every step of TV-OPT-09 — are taken unchanged."""
    if pen is None:
        pen = np.ones_like(theta)
    flat = theta.reshape(-1)
    if free is None:
        free = np.arange(flat.size)
    path, converged, it = [], False, 0
    loss = _objective(A, Y, theta, binary, c, l2, pen)
    for it in range(1, max_iter + 1):
        g, H = _gradient_hessian(A, Y, theta, binary, c, l2, pen)
        H = H[np.ix_(free, free)]
        delta, used = damped_solve(H, g[free], damping)
        delta *= lr
        start = flat[free].copy()
        slack = 1e-12 * max(1.0, abs(loss))
        for _ in range(max_halvings):
            flat[free] = start - delta
            trial = _objective(A, Y, theta, binary, c, l2, pen)
            if np.isfinite(trial) and trial <= loss + slack:
                break
            delta *= 0.5
        else:
            flat[free] = start - delta
            trial = _objective(A, Y, theta, binary, c, l2, pen)
        loss = trial
        path.append(theta.copy())
        if not np.isfinite(flat).all():
            break
        if (delta.size == 0 or np.max(np.abs(delta)) < tol) and used == damping:
            converged = True
            break
    message = (f"converged after {it} iteration(s)" if converged else
               f"not converged after {it} iteration(s) (iteration cap, singular Hessian or "
               f"separable data without l2)")
    return SolverResult(converged, it, float(loss), path, message)


def _targets(y, n_classes, component):
    """(N, K) float targets: K = 1 for binary labels, one-hot for class labels."""
    y = np.asarray(y)
    if n_classes is None:                                   # binary 0/1 labels
        y = y.reshape(y.shape[0], -1)
        if y.shape[1] != 1:
            raise ShapeError(f"{component}: binary targets must have shape (N,) or (N, 1), "
                             f"got {y.shape}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{component}: binary targets must be 0 or 1")
        return y.astype(np.float64)
    if y.ndim == 2 and y.shape[1] == n_classes:
        return y.astype(np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iub" and not np.all(np.mod(y, 1) == 0):
        raise ShapeError(f"{component}: class targets must be integer labels (N,) or "
                         f"one-hot (N, {n_classes}), got shape {y.shape}")
    labels = y.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"{component}: class labels must be in [0, {n_classes}), got "
                         f"range [{labels.min()}, {labels.max()}]")
    return np.eye(n_classes)[labels]


def solve_irls(X, y, *, n_classes=None, l2=0.0, fit_intercept=True, penalize_intercept=True,
               max_iter=100, tol=1e-10, damping=0.0, sample_weight=None, coef_init=None,
               lr=1.0):
    """Logistic (``n_classes=None``: y ∈ {0,1}) or softmax (``n_classes=K``: labels or
    one-hot) regression by Newton/IRLS on ``R(w) = mean_n ℓ_n + (λ/2)‖w_pen‖²``
    (optimizers.md §12.1). The intercept column is appended last when ``fit_intercept``.
    With K classes and λ = 0 the last class's coefficients are held at their initial
    value (the softmax is invariant to a common shift, D-25). Returns
    ``(coef, intercept, result)``: coef (D,) or (K, D); intercept a float, a (K,) array
    or None; ``result.path`` holds the coefficient matrices ``(K, D[+1])`` per iteration.
    """
    A = design_matrix(X, fit_intercept)
    Y = _targets(y, n_classes, "solve_irls")
    K = Y.shape[1]
    theta = np.zeros((K, A.shape[1])) if coef_init is None else \
        np.array(coef_init, dtype=np.float64).reshape(K, A.shape[1])
    pen = np.ones_like(theta)
    if fit_intercept and not penalize_intercept:
        pen[:, -1] = 0.0
    free = np.arange(theta.size)
    if K > 1 and l2 == 0:
        free = free[: (K - 1) * A.shape[1]]
    c = sample_factors(A.shape[0], None if sample_weight is None
                       else np.asarray(sample_weight, dtype=np.float64))
    result = newton_irls_core(A, Y, theta, binary=K == 1, c=c, l2=l2, pen=pen, free=free,
                              max_iter=max_iter, tol=tol, damping=damping, lr=lr)
    coef = theta[:, :-1] if fit_intercept else theta
    intercept = theta[:, -1] if fit_intercept else None
    if K == 1:
        coef = coef[0]
        intercept = None if intercept is None else float(intercept[0])
    return coef, intercept, result


# ----------------------------------------------------------------------------- optimizers
def _model_theta(dense):
    W = dense.W.data.astype(np.float64)
    if dense.b is None:
        return W.copy()
    return np.hstack([W, dense.b.data.astype(np.float64)[:, None]])


def _set_model_theta(dense, theta):
    D = dense.W.shape[1]
    if dense.W.trainable:
        dense.W.data[...] = theta[:, :D]
        dense.W.apply_mask()
    if dense.b is not None and dense.b.trainable:
        dense.b.data[...] = theta[:, D]


def _flat_model_theta(dense, theta):
    """``[W | b]`` as the model's flat parameter vector (trainable parameters only)."""
    D = dense.W.shape[1]
    parts = [theta[:, :D].ravel()] if dense.W.trainable else []
    if dense.b is not None and dense.b.trainable:
        parts.append(theta[:, D])
    return np.concatenate(parts) if parts else np.zeros(0)


def _free_positions(dense, fit_intercept, K, exclude_last_class):
    """Flat positions of ``[W | b]`` the solver may change (trainable, unmasked)."""
    D = dense.W.shape[1]
    free = np.zeros((K, D + (dense.b is not None)), dtype=bool)
    if dense.W.trainable:
        free[:, :D] = dense.W.mask != 0
    if dense.b is not None and dense.b.trainable and fit_intercept:
        free[:, D] = True
    if exclude_last_class:
        free[-1] = False
    return np.flatnonzero(free)


class NewtonIRLS(DataSolver):
    """Newton / IRLS for logistic and softmax regression (``optimizer:newton_irls``,
    optimizers.md §12.1, D-16, D-25).

    Objective ``R(w) = mean_n ℓ_n + (λ/2)‖w_pen‖²`` (BCE for one sigmoid output, or one
    identity output with ``bce_with_logits``; cross-entropy for a softmax output)::

        repeat k = 1..max_iter:
            g = Aᵀ(a − y)/N + λ w_pen;   H = Aᵀ diag(R) A/N + λ I_pen
            w ← w − lr·solve(H + damping·I, g)      (automatic damping retry if singular;
                                                      halved while the objective rises)
            stop when ‖Δw‖_∞ < tol

    ``A = [features, 1]`` (the dense layer's input, its bias as the intercept). The
    dense layer's W and b are updated in place; masked or frozen coefficients are held.
    ``fit_intercept=False`` holds the bias. With K > 1 classes and λ = 0 the last class is
    held (shift invariance). ``result.path`` holds the model's flat parameter vector
    after each iteration. ``converged`` is False at the iteration cap, e.g. on
    separable data without λ. Defaults: l2 0, max_iter 100, tol 1e-10, damping 0,
    fit_intercept True, penalize_intercept True, lr (step factor) 1.
    """

    name = "newton_irls"
    defaults = {"lr": 1.0, "l2": 0.0, "max_iter": 100, "tol": 1e-10, "damping": 0.0,
                "fit_intercept": True, "penalize_intercept": True}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "l2", 0.0)
        check_interval(self, group, "tol", 0.0)
        check_interval(self, group, "damping", 0.0)
        if not isinstance(group["max_iter"], (int, np.integer)) or group["max_iter"] < 1:
            raise HyperparameterError(f"optimizer {self.name!r}: max_iter must be an integer "
                                      f">= 1, got {group['max_iter']!r}")
        check_flag(self, group, "fit_intercept")
        check_flag(self, group, "penalize_intercept")

    def _problem(self, model, X, y, loss, sample_weight):
        component = f"optimizer {self.name!r}"
        features, dense = linear_model(model, component)
        K = dense.out_features
        act = model.output_activation
        loss_name = getattr(loss, "name", None)
        if K == 1 and (act == "sigmoid" or (act in (None, "identity")
                                            and loss_name == "bce_with_logits")):
            Y = _targets(y, None, component)
        elif K > 1 and act == "softmax":
            Y = _targets(y, K, component)
        else:
            raise ValueError(f"{component}: needs logistic regression (1 sigmoid output, or "
                             f"1 identity output with bce_with_logits) or softmax regression "
                             f"(K > 1 softmax outputs); got {K} output(s) with activation "
                             f"{act!r} and loss {loss_name!r}")
        group = self.param_groups[0]
        A = features(X)
        if dense.b is not None:
            A = np.hstack([A, np.ones((A.shape[0], 1))])
        theta = _model_theta(dense)
        pen = np.ones_like(theta)
        if dense.b is not None and not group["penalize_intercept"]:
            pen[:, -1] = 0.0
        free = _free_positions(dense, group["fit_intercept"], K, K > 1 and group["l2"] == 0)
        return dense, A, Y, theta, pen, free, sample_factors(A.shape[0], sample_weight)

    def _run(self, model, X, y, loss, sample_weight, max_iter):
        dense, A, Y, theta, pen, free, c = self._problem(model, X, y, loss, sample_weight)
        group = self.param_groups[0]
        result = newton_irls_core(A, Y, theta, binary=Y.shape[1] == 1, c=c, l2=group["l2"],
                                  pen=pen, free=free, max_iter=max_iter, tol=group["tol"],
                                  damping=group["damping"], lr=group["lr"])
        _set_model_theta(dense, theta)
        result.path = [_flat_model_theta(dense, t) for t in result.path]
        self.iterations += result.n_iter
        return result, (dense, A, Y, c, pen)

    def minimize(self, model, X, y, *, loss=None, sample_weight=None) -> SolverResult:
        X, y, loss, sw = self._prepare(model, X, y, loss, sample_weight, None)
        return self._run(model, X, y, loss, sw, self.param_groups[0]["max_iter"])[0]

    def data_step(self, model, loss, X, y, sample_weight=None) -> float:
        """One Newton iteration; returns the objective before it."""
        X, y, loss, sw = self._prepare(model, X, y, loss, sample_weight, None)
        dense, A, Y, theta, pen, free, c = self._problem(model, X, y, loss, sw)
        before = _objective(A, Y, theta, Y.shape[1] == 1, c, self.param_groups[0]["l2"], pen)
        self._run(model, X, y, loss, sw, 1)
        return before

    @classmethod
    def examples(cls):
        return [{"l2": 0.1, "max_iter": 20}]
