"""Optimizers that need the data, not just a gradient: Newton/IRLS, closed-form least
squares, Levenberg-Marquardt (spec optimizers.md §12).

They are registered optimizers (hyperparameters, checks, ``state_dict``) with three entry
points instead of the gradient ``step()``:

* ``opt.minimize(model, X, y, loss=None, sample_weight=None)`` runs the solver to
  convergence (or its iteration cap) and returns a :class:`SolverResult`;
* ``opt.data_step(model, loss, X, y, sample_weight=None)`` performs one outer iteration on
  ``(X, y)`` and returns the loss before it; a trainer delegates to it when
  ``optimizer.needs_data`` is true (one iteration per batch; use ``batch_size=len(X)``);
* :func:`minimize` (module level): ``minimize(model, loss, X, y, optimizer=..., **hp)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import registry
from ..errors import HyperparameterError, ShapeError
from ._base import StatefulOptimizer


@dataclass
class SolverResult:
    """Outcome of a data solver: ``converged`` (False when the iteration cap was hit or
    the problem has no finite minimiser), ``n_iter``, final objective ``loss``, the
    iterates ``path`` (coefficients or flat parameter vectors) and a ``message``."""
    converged: bool
    n_iter: int
    loss: float
    path: list = field(default_factory=list)
    message: str = ""


def damped_solve(H, g, damping=0.0, max_retries=40):
    """Solve ``(H + damping·I) x = g``; when that fails (singular or not positive definite
    H, non-finite result) retry with ``damping = 1e-8·trace(H)/n``, then ×10 until it
    succeeds (optimizers.md §12.1). Returns ``(x, damping_used)``."""
    n = H.shape[0]
    if n == 0:
        return np.zeros(0), damping
    trace = float(np.trace(H))
    base = 1e-8 * trace / n if trace > 0 and np.isfinite(trace) else 1e-8
    mu = float(damping)
    eye = np.eye(n)
    for _ in range(max_retries):
        try:
            L = np.linalg.cholesky(H + mu * eye if mu else H)
            x = np.linalg.solve(L.T, np.linalg.solve(L, g))
            if np.isfinite(x).all():
                return x, mu
        except np.linalg.LinAlgError:
            pass
        mu = base if mu < base else mu * 10.0
    raise np.linalg.LinAlgError(f"damped_solve: the system stayed singular up to damping "
                                f"{mu:.3g}")


class DataSolver(StatefulOptimizer):
    """Base of the data solvers (see the module docstring)."""

    needs_data = True
    #: solvers whose objective has its own ridge term refuse the generic weight decays
    accepts_weight_decay = False

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        if group.get("decoupled_weight_decay") or (group.get("weight_decay")
                                                   and not self.accepts_weight_decay):
            which = "weight_decay" if group.get("weight_decay") else "decoupled_weight_decay"
            raise HyperparameterError(f"optimizer {self.name!r}: {which} is not supported by "
                                      f"this solver (use its 'l2' ridge term), got "
                                      f"{group[which]!r}")

    def step(self, loss=None):
        raise RuntimeError(f"optimizer {self.name!r} solves from the data, not from a "
                           f"gradient: call optimizer.minimize(model, X, y), "
                           f"corenet.optimizers.minimize(model, loss, X, y, "
                           f"optimizer={self.name!r}) or let the trainer call data_step")

    def update(self, p, g, state, group):  # pragma: no cover - step() refuses first
        raise RuntimeError(f"optimizer {self.name!r} has no gradient update")

    # ------------------------------------------------------------------ helpers
    def _prepare(self, model, X, y, loss, sample_weight, default_loss):
        component = f"optimizer {self.name!r}"
        X = model.check_input(np.ascontiguousarray(X), "fit input")
        if not model.built:
            model.build(X.shape[1:])
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ShapeError(f"{component}: X has {X.shape[0]} samples but y has shape "
                             f"{y.shape}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (X.shape[0],):
                raise ShapeError(f"{component}: sample_weight must have shape "
                                 f"({X.shape[0]},), got {sample_weight.shape}")
            if (sample_weight < 0).any() or not np.isfinite(sample_weight).all():
                raise ValueError(f"{component}: sample_weight must be finite and >= 0")
        if loss is None:
            loss = getattr(model, "loss", None) or default_loss
        loss = registry.create("loss", loss) if loss is not None else None
        params = model.trainable_parameters()
        if not self.bound or {id(p) for p in self.parameters()} != {id(p) for p in params}:
            self.bind(params)
        return X, y, loss, sample_weight

    def minimize(self, model, X, y, *, loss=None, sample_weight=None) -> SolverResult:
        raise NotImplementedError

    def data_step(self, model, loss, X, y, sample_weight=None) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(self.defaults)


def sample_factors(n, sample_weight):
    """``c_n`` of a weighted mean: ``w_n/Σw`` (or ``1/N``)."""
    if sample_weight is None:
        return np.full(n, 1.0 / n)
    total = sample_weight.sum()
    return sample_weight / (total if total > 0 else 1.0)


def design_matrix(X, fit_intercept):
    """``A = [X, 1]`` (intercept column last) or X, as float64 (N, D)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ShapeError(f"design matrix X must have shape (N, D), got {X.shape}")
    return np.hstack([X, np.ones((X.shape[0], 1))]) if fit_intercept else X


def linear_model(model, component):
    """Split a Sequential of parameter-free layers, one ``dense`` layer and
    parameter-free output layers: returns ``(features, dense)`` where ``features(X)``
    runs the layers before the dense layer (in eval mode)."""
    layers = getattr(model, "layers", None)
    with_params = [i for i, layer in enumerate(layers or []) if layer.parameters()]
    if layers is None or len(with_params) != 1 or layers[with_params[0]].name != "dense":
        raise ValueError(f"{component}: needs a linear model: a Sequential with exactly one "
                         f"'dense' layer and parameter-free layers around it, got "
                         f"{type(model).__name__} with parameterised layers "
                         f"{[layers[i].name for i in with_params] if layers else '?'}")
    i = with_params[0]
    dense = layers[i]
    for layer in layers[i + 1:]:
        if layer.name not in ("activation", "softmax"):
            raise ValueError(f"{component}: only an output activation may follow the dense "
                             f"layer, got layer {layer.name!r}")

    def features(X):
        was = model.training
        model.eval()
        try:
            for layer in layers[:i]:
                X = layer.forward(X)
        finally:
            model.train(was)
        return np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)

    return features, dense


def minimize(model, loss, X, y, *, optimizer="levenberg_marquardt", sample_weight=None,
             **hyperparameters) -> SolverResult:
    """Fit ``model`` to ``(X, y)`` with a data solver (``"newton_irls"``,
    ``"least_squares"`` or ``"levenberg_marquardt"``, or an instance) and return its
    :class:`SolverResult`. ``loss`` may be None (the solver's natural loss)."""
    opt = registry.create("optimizer", optimizer, **hyperparameters) \
        if isinstance(optimizer, str) else optimizer
    if not getattr(opt, "needs_data", False):
        raise ValueError(f"minimize: optimizer {getattr(opt, 'name', opt)!r} is a gradient "
                         f"method; use model.fit (data solvers: newton_irls, least_squares, "
                         f"levenberg_marquardt)")
    return opt.minimize(model, X, y, loss=loss, sample_weight=sample_weight)
