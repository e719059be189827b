"""Closed-form least squares and ridge regression for linear models (spec optimizers.md
§12.2); used by cascade-correlation for linear output units (growing.md §3)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ._base import check_flag, check_interval
from ._solver import DataSolver, SolverResult, design_matrix, linear_model, sample_factors


def solve_least_squares(X, Y, *, l2=0.0, fit_intercept=True, penalize_intercept=True,
                        sample_weight=None, mask=None):
    """``W = argmin ‖A Wᵀ − Y‖²_F`` (optimizers.md §12.2), ``A = [X, 1]`` with an
    intercept. λ = 0: SVD solver (``numpy.linalg.lstsq``, ``rcond=None``; minimum-norm
    solution for rank-deficient A). λ > 0: ``solve(AᵀA + λ I_pen, AᵀY)`` (intercept not
    penalised when ``penalize_intercept=False``). ``sample_weight`` scales rows by
    ``√w_n``; ``mask`` (K, D) keeps masked coefficients at 0 (each output solved on its
    free columns). Returns ``(coef, intercept)``: coef (D,) for 1-D Y else (K, D)."""
    A = design_matrix(X, fit_intercept)
    Y = np.asarray(Y, dtype=np.float64)
    one = Y.ndim == 1
    Y = Y.reshape(Y.shape[0], -1)
    if Y.shape[0] != A.shape[0]:
        raise ShapeError(f"solve_least_squares: X has {A.shape[0]} rows, Y has {Y.shape[0]}")
    if sample_weight is not None:
        s = np.sqrt(np.asarray(sample_weight, dtype=np.float64))[:, None]
        A, Y = A * s, Y * s
    D, K = A.shape[1], Y.shape[1]
    pen = np.ones(D)
    if fit_intercept and not penalize_intercept:
        pen[-1] = 0.0
    free = np.ones((K, D), dtype=bool)
    if mask is not None:
        free[:, :D - fit_intercept] = np.asarray(mask).reshape(K, -1) != 0

    def solve(cols, targets):
        Ac = A[:, cols]
        if l2 > 0:
            return np.linalg.solve(Ac.T @ Ac + l2 * np.diag(pen[cols]), Ac.T @ targets)
        return np.linalg.lstsq(Ac, targets, rcond=None)[0]

    theta = np.zeros((K, D))
    if free.all():
        theta[...] = solve(slice(None), Y).T
    else:
        for k in range(K):                       # one system per output with its columns
            theta[k, free[k]] = solve(free[k], Y[:, k])
    coef = theta[:, :-1] if fit_intercept else theta
    intercept = theta[:, -1] if fit_intercept else None
    if one:
        return coef[0], (None if intercept is None else float(intercept[0]))
    return coef, intercept



class LeastSquares(DataSolver):
    """Closed-form least squares for linear models (``optimizer:least_squares``,
    optimizers.md §12.2): one dense layer with identity output, loss ``mse``/``sse``.

    ``W, b = argmin ‖A [W | b]ᵀ − Y‖²_F`` with ``A = [features, 1]``, by the SVD solver
    (minimum-norm for rank-deficient A); ``l2 = λ > 0``: ``solve(AᵀA + λ I_pen, AᵀY)``
    (λ on the sum of squares, not the mean; bias not penalised with
    ``penalize_intercept=False``). Masked weights stay 0; ``fit_intercept=False`` or a
    frozen bias holds b (the targets are taken relative to it). ``lr`` is ignored.
    Used by cascade-correlation for linear output units (growing.md §3).
    """

    name = "least_squares"
    defaults = {"lr": 1.0, "l2": 0.0, "fit_intercept": True, "penalize_intercept": True}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "l2", 0.0)
        check_flag(self, group, "fit_intercept")
        check_flag(self, group, "penalize_intercept")

    def minimize(self, model, X, y, *, loss=None, sample_weight=None) -> SolverResult:
        X, y, loss, sw = self._prepare(model, X, y, loss, sample_weight, "mse")
        component = f"optimizer {self.name!r}"
        features, dense = linear_model(model, component)
        if model.output_activation not in (None, "identity"):
            raise ValueError(f"{component}: needs an identity output, got activation "
                             f"{model.output_activation!r}")
        if loss.name not in ("mse", "sse"):
            raise ValueError(f"{component}: needs a sum-of-squares loss (mse or sse), got "
                             f"{loss.name!r}")
        group = self.param_groups[0]
        F = features(X)
        K = dense.out_features
        Y = np.asarray(y, dtype=np.float64).reshape(F.shape[0], -1)
        if Y.shape[1] != K:
            raise ShapeError(f"{component}: targets must have {K} column(s), got {Y.shape}")
        fit_b = dense.b is not None and dense.b.trainable and group["fit_intercept"]
        if dense.b is not None and not fit_b:
            Y = Y - dense.b.data.astype(np.float64)
        if dense.W.trainable:
            coef, intercept = solve_least_squares(
                F, Y, l2=group["l2"], fit_intercept=fit_b,
                penalize_intercept=group["penalize_intercept"], sample_weight=sw,
                mask=dense.W.mask if dense.W.masked else None)
            dense.W.data[...] = coef
            dense.W.apply_mask()
        elif fit_b:                       # frozen weights: the bias is the mean residual
            R = Y - F @ dense.W.data.T.astype(np.float64)
            c = sample_factors(F.shape[0], sw)
            intercept = c @ R
        if fit_b:
            dense.b.data[...] = intercept
        self.iterations += 1
        value = float(loss.value(model.predict(X), y, sw))
        theta = model.get_flat_parameters().copy()
        return SolverResult(True, 1, value, [theta], "closed-form solution")

    def data_step(self, model, loss, X, y, sample_weight=None) -> float:
        """Solve on the batch; returns the loss before the solve."""
        X2, y2, loss, sw = self._prepare(model, X, y, loss, sample_weight, "mse")
        before = float(loss.value(model.predict(X2), y2, sw))
        self.minimize(model, X2, y2, loss=loss, sample_weight=sw)
        return before

    @classmethod
    def examples(cls):
        return [{}, {"l2": 0.5}]
