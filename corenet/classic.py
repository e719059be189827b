"""Classical single-layer learners (spec networks.md §5; optimizers.md §12; D-14, D-16,
D-25): the perceptron learning rule (:func:`perceptron_fit`, with the pocket variant) and
four corenet models built from one ``dense`` layer (+ output activation):

=====================  ==========================  ================  ==========================
model                  layers                      loss              solvers (default first)
=====================  ==========================  ================  ==========================
``LinearRegression``   dense(K)                    ``sse`` (½, mean) closed_form, gd, sgd
``LogisticRegression`` dense(1, sigmoid)           ``bce`` (fused)   irls (= newton), gd, sgd
``SoftmaxRegression``  dense(K), softmax           ``cross_entropy`` newton (= irls), gd, sgd
``Perceptron``         dense(1) (sign rule)        ``perceptron``    perceptron, pocket, gd, sgd
=====================  ==========================  ================  ==========================

They ARE :class:`~corenet.Sequential` models, so ``predict``, ``predict_classes``,
``evaluate``, ``summary``, ``save`` and the curvature tools work unchanged; ``fit`` only
adds the choice of solver: ``closed_form`` → optimizer ``least_squares``, ``irls`` /
``newton`` → ``newton_irls`` (both through ``optimizer.minimize``, returning a
:class:`~corenet.optimizers.SolverResult`), ``gd`` (full batch) / ``sgd`` (mini-batches,
shuffled) → optimizer ``sgd`` through the trainer (returning a :class:`~corenet.History`),
``perceptron`` / ``pocket`` → :func:`perceptron_fit` (returning a
:class:`PerceptronResult`). The result is also kept in ``model.result_``. Weights start
at zero. ``corenet.load`` of a saved classic model rebuilds a plain ``Sequential`` with
the same layers and parameters (``from_config`` on the class itself keeps the class).

Ridge ``l2 = λ``: ``LinearRegression`` minimises ``½‖Xw + b − y‖² + (λ/2)‖w_pen‖²``
(λ on the sum of squares, optimizers.md §12.2; gradient solvers use the same minimiser
via ``weight_decay = λ/N`` on the mean loss); logistic and softmax regression minimise
``mean ℓ + (λ/2)‖w_pen‖²`` (§12.1; gradient solvers use ``weight_decay = λ``).
``penalize_intercept`` (default True, as in the test vectors) includes the bias in
``w_pen`` (the gradient solvers then set the bias parameter's ``decay`` flag).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import registry
from .errors import DTypeError, HyperparameterError, ShapeError
from .model import Sequential


# ----------------------------------------------------------------------------- perceptron
@dataclass
class PerceptronResult:
    """Outcome of :func:`perceptron_fit`. Unpacks as ``w, converged = result``.

    ``w``: the weights ``[w_1, …, w_D, bias]`` (bias last when ``fit_intercept``) — the
    pocket weights with ``pocket=True``, else the final ones; ``converged``: an epoch
    without mistakes occurred; ``n_epochs``; ``weights``/``mistakes``: the weights after
    and the criterion mistakes in each epoch; ``errors``: training errors of ``w`` under
    the prediction rule (``+1`` for ``f ≥ 0``); ``w_last``: the final weights."""
    w: np.ndarray
    converged: bool
    n_epochs: int
    weights: list = field(default_factory=list)
    mistakes: list = field(default_factory=list)
    errors: int = 0
    w_last: np.ndarray | None = None

    def __iter__(self):
        yield self.w
        yield self.converged


def _real_matrix(X, component):
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise DTypeError(f"{component}: X must be a real numeric array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ShapeError(f"{component}: X must have shape (N, D), got {X.shape}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{component}: X contains NaN or inf")
    return X


def _pm_one_labels(y, n, component):
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise DTypeError(f"{component}: labels must be numeric, got dtype {y.dtype}")
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.shape != (n,):
        raise ShapeError(f"{component}: X has {n} samples, labels must have shape ({n},), got "
                         f"{y.shape}")
    if not np.isin(y, (-1, 1)).all():
        bad = y[~np.isin(y, (-1, 1))].flat[0]
        raise ValueError(f"{component}: labels must be -1 or +1, got {bad!r}")
    return y.astype(np.float64)


def perceptron_fit(X, y, lr=1.0, max_epochs=1000, shuffle=False, rng=None, mode="online",
                   fit_intercept=True, pocket=False) -> PerceptronResult:
    """The perceptron learning rule (networks.md §5.1, D-14; TV-MLP-06).

    Labels ``y ∈ {−1, +1}``; inputs augmented with a constant 1 (last) unless
    ``fit_intercept=False``; weights start at zero::

        for epoch in 1..max_epochs:
            for n in order (fixed, or a fresh permutation of rng if shuffle):
                if y_n · wᵀx_n ≤ 0:                  # a tie is a mistake (D-14)
                    w ← w + lr · y_n x_n
            stop (converged) after an epoch without mistakes

    ``mode="batch"``: per epoch ``w ← w + lr Σ_{n: y_n wᵀx_n ≤ 0} y_n x_n``.
    ``pocket=True`` (Gallant's pocket algorithm with ratchet): after every update the
    training errors of the new weights (prediction ``+1`` for ``f ≥ 0``) are counted and
    the weights with the fewest errors seen so far are kept and returned (ties broken
    by fewer criterion mistakes ``y·f ≤ 0``, then by the earlier weights; so on
    separable data the pocket holds the converged weights). On separable
    data the rule converges; on XOR it never does (``converged=False`` at the cap).
    Shapes: X ``(N, D)``, y ``(N,)``; ``result.w`` ``(D + fit_intercept,)``.
    """
    component = "perceptron_fit"
    X = _real_matrix(X, component)
    y = _pm_one_labels(y, X.shape[0], component)
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: lr must be a number > 0, got {lr!r}") from None
    if not np.isfinite(lr) or lr <= 0:
        raise HyperparameterError(f"{component}: lr must be a number > 0, got {lr!r}")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, np.integer)) \
            or max_epochs < 1:
        raise HyperparameterError(f"{component}: max_epochs must be an integer >= 1, got "
                                  f"{max_epochs!r}")
    if mode not in ("online", "batch"):
        raise HyperparameterError(f"{component}: mode must be 'online' or 'batch', got "
                                  f"{mode!r}")
    A = np.hstack([X, np.ones((X.shape[0], 1))]) if fit_intercept else X
    n = A.shape[0]
    gen = np.random.default_rng(rng) if shuffle else None
    w = np.zeros(A.shape[1])

    def errors(v):
        return int(np.count_nonzero(np.where(A @ v >= 0, 1.0, -1.0) != y))

    def score(v):          # training errors, then criterion mistakes (y·f ≤ 0) on ties
        f = A @ v
        return (int(np.count_nonzero(np.where(f >= 0, 1.0, -1.0) != y)),
                int(np.count_nonzero(y * f <= 0)))

    best_w, best = w.copy(), score(w)

    def consider():
        nonlocal best_w, best
        if pocket:
            s = score(w)
            if s < best:
                best_w, best = w.copy(), s

    weights, mistakes, converged = [], [], False
    for _ in range(int(max_epochs)):
        count = 0
        if mode == "online":
            order = gen.permutation(n) if shuffle else range(n)
            for i in order:
                if y[i] * (A[i] @ w) <= 0:
                    w += lr * y[i] * A[i]
                    count += 1
                    consider()
        else:
            wrong = y * (A @ w) <= 0
            count = int(np.count_nonzero(wrong))
            if count:
                w += lr * (y[wrong] @ A[wrong])
                consider()
        weights.append(w.copy())
        mistakes.append(count)
        if count == 0:
            converged = True
            break
    final = best_w if pocket else w
    return PerceptronResult(w=final.copy(), converged=converged, n_epochs=len(weights),
                            weights=weights, mistakes=mistakes, errors=errors(final),
                            w_last=w.copy())


# ----------------------------------------------------------------------------- models
class _LinearModel(Sequential):
    """Shared machinery of the classic models (see the module docstring)."""

    solvers: tuple = ()
    loss_spec = "mse"

    def _setup(self, hyperparameters, layers, *, dtype, random_state, input_shape):
        for key, value in hyperparameters.items():
            setattr(self, key, value)
        self._hyperparameters = dict(hyperparameters)
        Sequential.__init__(self, self._make_layers() if layers is None else layers,
                            dtype=dtype, random_state=random_state, input_shape=input_shape)
        self.compile(loss=self.loss_spec)
        self.result_ = None

    def _make_layers(self) -> list:
        raise NotImplementedError

    @staticmethod
    def _input_shape(input_dim):
        if input_dim is None:
            return None
        return (_count(input_dim, "input_dim"),)

    @property
    def dense(self):
        """The model's dense layer."""
        return self.layers[0]

    @property
    def coef_(self) -> np.ndarray:
        """The weights: ``(D,)`` for one output, else ``(K, D)`` (a copy)."""
        self._require_built()
        W = self.dense.W.data
        return W[0].copy() if W.shape[0] == 1 else W.copy()

    @property
    def intercept_(self):
        """The bias: a float for one output, else ``(K,)``; None without intercept."""
        self._require_built()
        b = self.dense.b
        if b is None:
            return None
        return float(b.data[0]) if b.shape == (1,) else b.data.copy()

    def _require_built(self):
        if not self.built:
            raise RuntimeError(f"{type(self).__name__}: fit (or build) the model first")

    # ----------------------------------------------------------------- fitting
    def fit(self, X, y, solver=None, *, lr=None, epochs=None, batch_size=None, momentum=0.0,
            optimizer=None, **kwargs):
        """Fit with ``solver`` (one of ``self.solvers``, default the first).

        Gradient solvers (``gd``: full batch, fixed order; ``sgd``: ``batch_size``
        (default 32), shuffled) take ``lr`` (default 0.1; 1 for the perceptron),
        ``epochs`` (default 1000), ``momentum``, an optional ``optimizer`` spec replacing
        ``sgd`` and the keyword arguments of :meth:`corenet.Trainer.fit`. The other
        solvers take the options named in the class docstring. Returns the solver's
        result (also kept in ``result_``).
        """
        solver = self.solvers[0] if solver is None else solver
        if solver not in self.solvers:
            raise HyperparameterError(f"{type(self).__name__}.fit: unknown solver {solver!r}; "
                                      f"choose one of {list(self.solvers)}")
        if solver in ("gd", "sgd"):
            result = self._fit_gradient(X, y, solver, lr, 1000 if epochs is None else epochs,
                                        batch_size, momentum, optimizer, kwargs)
        else:
            given = [k for k, v in (("optimizer", optimizer), ("batch_size", batch_size),
                                    ("epochs", epochs)) if v is not None]
            if momentum:
                given.append("momentum")
            if given:
                raise HyperparameterError(f"{type(self).__name__}.fit: {given} apply to the "
                                          f"gd/sgd solvers, not to {solver!r}")
            result = self._fit_solver(X, y, solver, lr=lr, **kwargs)
        self.result_ = result
        return result

    def _weight_decay(self, n_samples: int) -> float:
        return float(self.l2)

    def _fit_gradient(self, X, y, solver, lr, epochs, batch_size, momentum, optimizer, kw):
        X = self.check_input(X, "fit input")
        if not self.built:
            self.build(X.shape[1:])
        if self.dense.b is not None:
            self.dense.b.decay = bool(self.penalize_intercept)
        if optimizer is None:
            optimizer = {"name": "sgd", "lr": 0.1 if lr is None else lr, "momentum": momentum,
                         "weight_decay": self._weight_decay(X.shape[0])}
        elif lr is not None:
            raise HyperparameterError(f"{type(self).__name__}.fit: pass lr inside the "
                                      f"optimizer spec when giving optimizer=")
        self.compile(loss=self.loss_spec, optimizer=optimizer, metrics=self.metrics)
        n = X.shape[0]
        batch = n if solver == "gd" else (32 if batch_size is None else batch_size)
        return Sequential.fit(self, X, y, epochs=epochs, batch_size=batch,
                              shuffle=kw.pop("shuffle", solver == "sgd"), **kw)

    def _fit_solver(self, X, y, solver, lr=None, **kwargs):
        raise NotImplementedError

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        return {**super().get_config(),
                "classic": {"class": type(self).__name__,
                            "hyperparameters": dict(self._hyperparameters)}}

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild this class (``corenet.load`` gives a plain ``Sequential`` instead)."""
        layers = [registry.get("layer", spec["name"]).from_config(spec["config"])
                  for spec in config["layers"]]
        model = cls.__new__(cls)
        model._setup(config.get("classic", {}).get("hyperparameters", {}), layers,
                     dtype=config.get("dtype"), random_state=config.get("random_state"),
                     input_shape=config.get("input_shape"))
        return model


def _count(value, name, component="classic model"):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HyperparameterError(f"{component}: {name} must be a positive integer, got "
                                  f"{value!r}")
    return int(value)


def _nonneg(value, name, component):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: {name} must be a number >= 0, got "
                                  f"{value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise HyperparameterError(f"{component}: {name} must be a number >= 0, got {value!r}")
    return v


class LinearRegression(_LinearModel):
    """Linear regression ``Ŷ = X Wᵀ + b`` (networks.md §5.2) with ``K = n_outputs``.

    Solvers: ``closed_form`` (``least_squares``: SVD, minimum-norm for rank-deficient X;
    ridge ``solve(AᵀA + λI_pen, AᵀY)`` when ``l2 = λ > 0``, optimizers.md §12.2), ``gd``
    and ``sgd`` on ``L = (1/(2N))‖XWᵀ + b − Y‖²`` (``sse(half=True)``, mean reduction;
    gradient ``Xᵀ(Xw − y)/N``) with ``weight_decay = λ/N``. Targets ``(N,)`` or
    ``(N, K)``.
    """

    solvers = ("closed_form", "gd", "sgd")
    loss_spec = {"name": "sse", "half": True}

    def __init__(self, n_outputs: int = 1, *, fit_intercept: bool = True, l2: float = 0.0,
                 penalize_intercept: bool = True, input_dim=None, dtype=None,
                 random_state=None):
        hp = {"n_outputs": _count(n_outputs, "n_outputs", "LinearRegression"),
              "fit_intercept": bool(fit_intercept),
              "l2": _nonneg(l2, "l2", "LinearRegression"),
              "penalize_intercept": bool(penalize_intercept)}
        self._setup(hp, None, dtype=dtype, random_state=random_state,
                    input_shape=self._input_shape(input_dim))

    def _make_layers(self):
        return [registry.create("layer", {"name": "dense", "out_features": self.n_outputs,
                                          "bias": self.fit_intercept, "weight_init": "zeros"})]

    def _weight_decay(self, n_samples):
        return float(self.l2) / n_samples

    def _fit_solver(self, X, y, solver, lr=None, **kwargs):
        if kwargs or lr is not None:
            raise HyperparameterError(f"LinearRegression.fit: the closed_form solver takes no "
                                      f"options, got {sorted(kwargs) + (['lr'] if lr else [])}")
        opt = registry.create("optimizer", {"name": "least_squares", "l2": self.l2,
                                            "penalize_intercept": self.penalize_intercept})
        return opt.minimize(self, X, y, loss=self.loss)


class _NewtonModel(_LinearModel):
    """Logistic / softmax regression: the ``newton_irls`` solver."""

    def _fit_solver(self, X, y, solver, lr=None, *, max_iter=None, tol=None, damping=0.0):
        spec = {"name": "newton_irls", "l2": self.l2, "penalize_intercept":
                self.penalize_intercept, "max_iter": self.max_iter if max_iter is None
                else max_iter, "tol": self.tol if tol is None else tol, "damping": damping}
        if lr is not None:
            spec["lr"] = lr
        opt = registry.create("optimizer", spec)
        return opt.minimize(self, X, y, loss=self.loss)


class LogisticRegression(_NewtonModel):
    """Logistic regression ``a = σ(Xw + b)`` (networks.md §5.3), labels {0, 1}.

    Loss ``bce`` (fused with the sigmoid: the trainer uses the stable logit form,
    §3.6); objective ``mean BCE + (λ/2)‖w_pen‖²``. Solvers: ``irls`` / ``newton``
    (``newton_irls``: Hessian ``XᵀRX/N + λI_pen``, PSD, D-16; options ``max_iter``,
    ``tol``, ``damping``; ``result.converged`` is False on separable data without λ),
    ``gd``, ``sgd`` (gradient ``Xᵀ(a − y)/N``). ``predict`` gives probabilities,
    ``predict_classes`` labels ``1[a ≥ 0.5]``.
    """

    solvers = ("irls", "newton", "gd", "sgd")
    loss_spec = "bce"

    def __init__(self, *, fit_intercept: bool = True, l2: float = 0.0,
                 penalize_intercept: bool = True, max_iter: int = 100, tol: float = 1e-10,
                 input_dim=None, dtype=None, random_state=None):
        c = "LogisticRegression"
        hp = {"fit_intercept": bool(fit_intercept), "l2": _nonneg(l2, "l2", c),
              "penalize_intercept": bool(penalize_intercept),
              "max_iter": _count(max_iter, "max_iter", c), "tol": _nonneg(tol, "tol", c)}
        self._setup(hp, None, dtype=dtype, random_state=random_state,
                    input_shape=self._input_shape(input_dim))

    def _make_layers(self):
        return [registry.create("layer", {"name": "dense", "out_features": 1,
                                          "activation": "sigmoid", "bias": self.fit_intercept,
                                          "weight_init": "zeros"})]


class SoftmaxRegression(_NewtonModel):
    """Softmax regression ``P = softmax(X Wᵀ + b)`` with ``K = n_classes`` (networks.md
    §5.4), labels ``0..K−1`` or one-hot.

    Loss ``cross_entropy`` (fused with the softmax); objective
    ``mean CE + (λ/2)‖w_pen‖²``. Solvers: ``newton`` / ``irls`` (``newton_irls``; Hessian
    blocks ``(1/N)Σ_n (diag(p_n) − p_n p_nᵀ) ⊗ x̃_n x̃_nᵀ``, D-25; singular without λ
    because adding one vector to every class leaves P unchanged, so with ``l2 = 0`` the
    last class's coefficients are held at 0), ``gd``, ``sgd`` (gradient
    ``(P − Y)ᵀX/N``).
    """

    solvers = ("newton", "irls", "gd", "sgd")
    loss_spec = "cross_entropy"

    def __init__(self, n_classes: int, *, fit_intercept: bool = True, l2: float = 0.0,
                 penalize_intercept: bool = True, max_iter: int = 100, tol: float = 1e-10,
                 input_dim=None, dtype=None, random_state=None):
        c = "SoftmaxRegression"
        k = _count(n_classes, "n_classes", c)
        if k < 2:
            raise HyperparameterError(f"{c}: n_classes must be >= 2, got {n_classes!r} (use "
                                      f"LogisticRegression for two classes with one output)")
        hp = {"n_classes": k, "fit_intercept": bool(fit_intercept),
              "l2": _nonneg(l2, "l2", c), "penalize_intercept": bool(penalize_intercept),
              "max_iter": _count(max_iter, "max_iter", c), "tol": _nonneg(tol, "tol", c)}
        self._setup(hp, None, dtype=dtype, random_state=random_state,
                    input_shape=self._input_shape(input_dim))

    def _make_layers(self):
        return [registry.create("layer", {"name": "dense", "out_features": self.n_classes,
                                          "bias": self.fit_intercept, "weight_init": "zeros"}),
                registry.create("layer", "softmax")]


class Perceptron(_LinearModel):
    """Rosenblatt's perceptron as a model: ``f = Xw + b``, predicted label ``+1`` for
    ``f ≥ 0`` else ``−1`` (``predict_classes``; D-14), labels ``y ∈ {−1, +1}``.

    Solvers: ``perceptron`` (the learning rule of networks.md §5.1 via
    :func:`perceptron_fit`; options ``lr`` (1), ``max_epochs`` (1000), ``shuffle``,
    ``mode`` ("online"/"batch"), ``random_state``), ``pocket`` (the same with the pocket
    variant), ``gd`` / ``sgd`` on the ``perceptron`` criterion ``max(0, −y f)`` (with
    ``batch_size=1``, ``lr=1`` and no shuffling ``sgd`` reproduces the online rule).
    The rule always restarts from zero weights.
    """

    solvers = ("perceptron", "pocket", "gd", "sgd")
    loss_spec = "perceptron"

    def __init__(self, *, fit_intercept: bool = True, input_dim=None, dtype=None,
                 random_state=None):
        hp = {"fit_intercept": bool(fit_intercept), "l2": 0.0, "penalize_intercept": False}
        self._setup(hp, None, dtype=dtype, random_state=random_state,
                    input_shape=self._input_shape(input_dim))

    def _make_layers(self):
        return [registry.create("layer", {"name": "dense", "out_features": 1,
                                          "bias": self.fit_intercept, "weight_init": "zeros"})]

    def _fit_gradient(self, X, y, solver, lr, epochs, batch_size, momentum, optimizer, kw):
        return super()._fit_gradient(X, y, solver, 1.0 if lr is None and optimizer is None
                                     else lr, epochs, batch_size, momentum, optimizer, kw)

    def _fit_solver(self, X, y, solver, lr=None, *, max_epochs=1000, shuffle=False,
                    mode="online", random_state=None):
        X = self.check_input(X, "fit input")
        if not self.built:
            self.build(X.shape[1:])
        if X.ndim != 2:
            raise ShapeError(f"Perceptron.fit: X must have shape (N, D), got {X.shape}")
        rng = random_state if random_state is not None else self.rng.spawn(1)[0]
        result = perceptron_fit(X, y, lr=1.0 if lr is None else lr, max_epochs=max_epochs,
                                shuffle=shuffle, rng=rng, mode=mode,
                                fit_intercept=self.fit_intercept, pocket=solver == "pocket")
        d = X.shape[1]
        self.dense.W.data[...] = result.w[:d]
        self.dense.W.apply_mask()
        if self.fit_intercept:
            self.dense.b.data[...] = result.w[d]
        return result


__all__ = ["LinearRegression", "LogisticRegression", "Perceptron", "PerceptronResult",
           "SoftmaxRegression", "perceptron_fit"]
