"""Hold-out and cross-validation (spec regularization.md §10, D-17).

* :func:`train_test_split`, :func:`train_val_test_split` — hold-out splits
  (``n_test = ⌈test_size·N⌉``); :func:`holdout_estimate` — the hold-out risk
  ``(1/M)Σ_m ℓ_m`` on M unseen samples (§10.1) with its standard error.
* :func:`kfold`, :func:`leave_one_out`, :func:`stratified_kfold`, :class:`KFold` — folds
  (§10.2: ``numpy.array_split`` of ``arange(N)`` or of ``default_rng(random_state)
  .permutation(N)``).
* :func:`cross_validate` — per-fold risks ``R_l``, the pooled ``R_cv = Σ_l (N_l/N) R_l``,
  their mean, standard deviation and standard error (§10.3, D-17); :func:`cv_summary`.

Standard deviations use ``ddof=1`` (PyTorch's ``std`` default; the spec does not fix it);
the standard error is ``std/√k`` (folds) or ``std(ℓ)/√M`` (hold-out).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np

from . import registry
from .errors import HyperparameterError, PluginError, ShapeError


# ----------------------------------------------------------------------------- checks
def _check_n(n, who: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise HyperparameterError(f"{who}: N must be an integer >= 1, got {n!r}")
    return int(n)


def _check_k(k, n: int, who: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= n:
        raise HyperparameterError(f"{who}: k must be an integer in [2, N={n}], got {k!r}")
    return int(k)


def _order(n: int, shuffle: bool, random_state):
    return np.random.default_rng(random_state).permutation(n) if shuffle else np.arange(n)


def _labels(y, who: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    if y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1:
        raise ShapeError(f"{who}: class labels must have shape (N,), (N, 1) or one-hot (N, K), "
                         f"got {y.shape}")
    return y


def _take(arrays, idx):
    return [None if a is None else np.ascontiguousarray(np.asarray(a)[idx]) for a in arrays]


def _check_xy(X, y, who: str) -> int:
    n = len(X)
    if y is not None and len(y) != n:
        raise ShapeError(f"{who}: X has {n} samples but y has {len(y)}")
    if n < 2:
        raise ShapeError(f"{who}: needs at least 2 samples, got {n}")
    return n


# ----------------------------------------------------------------------------- hold-out
def _largest_remainder(total: int, sizes: np.ndarray) -> np.ndarray:
    quota = total * sizes / sizes.sum()
    out = np.floor(quota).astype(int)
    for c in np.argsort(-(quota - out), kind="stable")[:total - out.sum()]:
        out[c] += 1
    return np.minimum(out, sizes)


def split_indices(n: int, test_size: float = 0.25, shuffle: bool = True, stratify=None,
                  random_state=None):
    """``(train_idx, test_idx)`` with ``n_test = ⌈test_size·N⌉``: the test set is the last
    ``n_test`` entries of ``arange(N)`` or of ``default_rng(random_state).permutation(N)``
    (like the trainer's ``validation_split``). With ``stratify`` (labels ``(N,)`` or one-hot)
    each class (ascending label order) gives ``n_test`` × its share (largest remainder), taken
    the same way from its (shuffled) indices."""
    n = _check_n(n, "train_test_split")
    ts = float(test_size)
    if not 0.0 < ts < 1.0:
        raise HyperparameterError(f"train_test_split: test_size must be in (0, 1), got "
                                  f"{test_size!r}")
    n_test = math.ceil(ts * n)
    if n_test >= n:
        raise HyperparameterError(f"train_test_split: test_size={test_size} leaves no training "
                                  f"sample of {n}")
    rng = np.random.default_rng(random_state)
    if stratify is None:
        order = rng.permutation(n) if shuffle else np.arange(n)
        return order[:n - n_test], order[n - n_test:]
    labels = _labels(stratify, "train_test_split")
    if len(labels) != n:
        raise ShapeError(f"train_test_split: stratify has {len(labels)} labels for {n} samples")
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    counts = _largest_remainder(n_test, np.array([len(m) for m in members]))
    train, test = [], []
    for m, c in zip(members, counts):
        if shuffle:
            m = m[rng.permutation(len(m))]
        train.append(m[:len(m) - c])
        test.append(m[len(m) - c:])
    train, test = np.concatenate(train), np.concatenate(test)
    if shuffle:
        return train[rng.permutation(len(train))], test[rng.permutation(len(test))]
    return np.sort(train), np.sort(test)


def train_test_split(X, y=None, test_size: float = 0.25, shuffle: bool = True, stratify=None,
                     random_state=None):
    """Hold-out split (§10.1): ``X_train, X_test, y_train, y_test`` (``y`` None gives Nones);
    indices from :func:`split_indices`."""
    n = _check_xy(X, y, "train_test_split")
    tr, te = split_indices(n, test_size, shuffle, stratify, random_state)
    X_tr, y_tr = _take([X, y], tr)
    X_te, y_te = _take([X, y], te)
    return X_tr, X_te, y_tr, y_te


def train_val_test_split(X, y=None, fractions=(0.7, 0.15, 0.15), shuffle: bool = True,
                         random_state=None):
    """Three-way hold-out split: ``X_train, X_val, X_test, y_train, y_val, y_test``.
    ``fractions = (f_train, f_val, f_test)`` are positive and sum to 1; ``n_test =
    ⌈f_test·N⌉``, ``n_val = ⌈f_val·N⌉``, the rest trains. The index order is ``arange(N)`` or
    ``default_rng(random_state).permutation(N)``, split train | val | test."""
    n = _check_xy(X, y, "train_val_test_split")
    try:
        f = [float(v) for v in fractions]
    except (TypeError, ValueError):
        raise HyperparameterError(f"train_val_test_split: fractions must be three numbers, got "
                                  f"{fractions!r}") from None
    if len(f) != 3 or min(f) <= 0 or abs(sum(f) - 1.0) > 1e-9:
        raise HyperparameterError(f"train_val_test_split: fractions must be three positive "
                                  f"numbers summing to 1, got {fractions!r}")
    n_test, n_val = math.ceil(f[2] * n), math.ceil(f[1] * n)
    n_train = n - n_test - n_val
    if n_train < 1:
        raise HyperparameterError(f"train_val_test_split: fractions {fractions} leave no "
                                  f"training sample of {n}")
    order = _order(n, shuffle, random_state)
    parts = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    return (*(_take([X], p)[0] for p in parts), *(_take([y], p)[0] for p in parts))


# ----------------------------------------------------------------------------- folds
def kfold(n, k: int = 5, shuffle: bool = False, random_state=None) -> list:
    """The k folds of §10.2: ``numpy.array_split(order, k)`` with ``order = arange(N)`` or
    ``default_rng(random_state).permutation(N)`` (the first ``N mod k`` folds have
    ``⌊N/k⌋ + 1`` elements). Fold l is the validation set of round l."""
    n = _check_n(n, "kfold")
    k = _check_k(k, n, "kfold")
    return np.array_split(_order(n, shuffle, random_state), k)


def leave_one_out(n) -> list:
    """``kfold(N, k=N)``."""
    n = _check_n(n, "leave_one_out")
    return kfold(n, n)


def stratified_kfold(y, k: int = 5, shuffle: bool = False, random_state=None) -> list:
    """Stratified folds (§10.2): for each class in ascending label order, its indices
    (shuffled by one ``default_rng(random_state)`` if requested) are split with
    ``array_split`` into k parts and part l goes to fold l (folds list the classes in
    order). ``y``: labels ``(N,)`` or one-hot ``(N, K)``."""
    labels = _labels(y, "stratified_kfold")
    n = _check_n(len(labels), "stratified_kfold")
    k = _check_k(k, n, "stratified_kfold")
    rng = np.random.default_rng(random_state)
    folds = [[] for _ in range(k)]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if shuffle:
            members = members[rng.permutation(len(members))]
        for fold, part in zip(folds, np.array_split(members, k)):
            fold.append(part)
    return [np.concatenate(f) for f in folds]


class KFold:
    """k-fold splitter: ``split(X, y=None)`` yields ``(train_idx, val_idx)`` for each round
    (:func:`kfold`, or :func:`stratified_kfold` on ``y`` when ``stratified``)."""

    def __init__(self, k: int = 5, shuffle: bool = False, random_state=None,
                 stratified: bool = False):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise HyperparameterError(f"KFold: k must be an integer >= 2, got {k!r}")
        self.k, self.shuffle, self.random_state = int(k), bool(shuffle), random_state
        self.stratified = bool(stratified)

    def folds(self, n: int, y=None) -> list:
        if self.stratified:
            if y is None:
                raise ValueError("KFold(stratified=True): split needs the labels y")
            return stratified_kfold(y, self.k, self.shuffle, self.random_state)
        return kfold(n, self.k, self.shuffle, self.random_state)

    def split(self, X, y=None):
        n = len(X)
        folds = self.folds(n, y)
        for l, val in enumerate(folds):
            train = np.concatenate([f for m, f in enumerate(folds) if m != l])
            yield train, val

    def get_n_splits(self) -> int:
        return self.k

    def __repr__(self) -> str:
        return (f"KFold(k={self.k}, shuffle={self.shuffle}, random_state={self.random_state}, "
                f"stratified={self.stratified})")


# ----------------------------------------------------------------------------- estimates
def cv_summary(fold_values, fold_sizes) -> dict:
    """``{"folds", "sizes", "pooled", "mean", "std", "std_error"}`` for per-fold means
    ``R_l`` over ``N_l`` samples: pooled ``Σ_l (N_l/N) R_l`` (D-17), mean ``(1/k)Σ R_l``,
    sample standard deviation (ddof=1) and ``std/√k``."""
    r = np.asarray(fold_values, dtype=np.float64)
    sizes = np.asarray(fold_sizes, dtype=np.float64)
    if r.shape != sizes.shape or r.ndim != 1 or r.size == 0:
        raise ShapeError(f"cv_summary: fold values {r.shape} and sizes {sizes.shape} must be "
                         f"1-D of one length")
    k = r.size
    std = float(np.std(r, ddof=1)) if k > 1 else 0.0
    return {"folds": r, "sizes": sizes.astype(int), "pooled": float(sizes @ r / sizes.sum()),
            "mean": float(r.mean()), "std": std, "std_error": std / math.sqrt(k)}


def _resolve(metric, model):
    """("loss", spec) or ("metric", spec) for a name/instance; default the model's loss."""
    if metric is None:
        return "loss", (model.loss or "mse")
    if isinstance(metric, str):
        try:
            registry.get("loss", metric)
            return "loss", metric
        except PluginError:
            registry.get("metric", metric)
            return "metric", metric
    return ("loss", metric) if hasattr(metric, "per_sample") else ("metric", metric)


def _evaluate(model, X, y, metric, metrics):
    from .trainer import evaluate_model

    kind, spec = _resolve(metric, model)
    if kind == "loss":
        logs = evaluate_model(model, X, y, loss=spec, metrics=metrics)
        return logs.pop("loss"), logs
    m = registry.create("metric", spec)
    logs = evaluate_model(model, X, y, loss=None, metrics=[m, *metrics])
    return logs.pop(m.name), logs


def holdout_estimate(model, X, y, loss=None, metrics=()) -> dict:
    """Hold-out risk (§10.1) of a trained ``model`` on M unseen samples:
    ``{"risk": (1/M)Σ_m ℓ_m, "std_error": std(ℓ, ddof=1)/√M, "n": M, <metric>: value}``.
    ``loss`` defaults to the model's compiled loss (per-sample values in eval mode)."""
    from .trainer import sample_losses, _check_targets

    X = model.check_input(X, "holdout_estimate input")
    y = _check_targets(y, X.shape[0], "holdout_estimate")
    if X.shape[0] == 0:
        raise ShapeError("holdout_estimate: the test set is empty")
    loss_obj = registry.create("loss", loss if loss is not None else (model.loss or "mse"))
    was_training = model.training
    model.eval()
    try:
        values = np.concatenate([sample_losses(model, loss_obj, X[i:i + 1024],
                                                y[i:i + 1024])[0]
                                 for i in range(0, X.shape[0], 1024)]).astype(np.float64)
    finally:
        model.train(was_training)
    m = values.size
    out = {"risk": float(values.mean()), "n": int(m),
           "std_error": float(np.std(values, ddof=1) / math.sqrt(m)) if m > 1 else 0.0}
    if metrics:
        from .trainer import evaluate_model

        out.update(evaluate_model(model, X, y, loss=None, metrics=metrics))
    return out


@dataclass
class CVResult:
    """Result of :func:`cross_validate`: per-fold risks and their summaries (``cv_risk`` is
    the pooled risk), per-fold values of extra ``metrics`` (each summarised by
    :func:`cv_summary`), the folds, and the trained models when ``keep_models``."""

    fold_risks: np.ndarray
    fold_sizes: np.ndarray
    cv_risk: float
    mean: float
    std: float
    std_error: float
    metrics: dict = field(default_factory=dict)
    folds: list = field(default_factory=list)
    models: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"fold_risks": self.fold_risks.tolist(), "fold_sizes": self.fold_sizes.tolist(),
                "cv_risk": self.cv_risk, "mean": self.mean, "std": self.std,
                "std_error": self.std_error,
                "metrics": {k: {kk: (vv.tolist() if isinstance(vv, np.ndarray) else vv)
                                for kk, vv in v.items()} for k, v in self.metrics.items()}}


def _call_factory(factory, seed):
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return factory(seed)
    takes = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                for p in params)
    return factory(seed) if takes else factory()


def cross_validate(model_factory, X, y, k: int = 5, metric=None, fit_kwargs=None,
                   random_state=None, *, metrics=(), shuffle: bool = False,
                   stratified: bool = False, folds=None, keep_models: bool = False) -> CVResult:
    """k-fold cross-validated risk (§10.3, D-17).

    For each round l a fresh model ``model_factory(seed_l)`` (or ``model_factory()`` if it
    takes no argument; it must return a compiled model) is trained with
    ``model.fit(X[train], y[train], **fit_kwargs)`` and evaluated in eval mode on fold l:
    ``R_l`` = mean of the per-sample values of ``metric`` (a loss name/instance, default the
    model's compiled loss; or a metric such as ``"zero_one"``). Returned
    (:class:`CVResult`): ``R_l``, the pooled ``R_cv = Σ_l (N_l/N) R_l``, ``R_mean``, the
    sample std of the ``R_l`` and ``std/√k``; extra ``metrics`` summarised likewise.
    Folds: ``folds`` (a list of index arrays), else :func:`kfold` /
    :func:`stratified_kfold` with ``shuffle`` and ``random_state``. Per-fold seeds are the
    ``SeedSequence(random_state).spawn(k)`` children (reproducible for an int)."""
    n = _check_xy(X, y, "cross_validate")
    if folds is None:
        folds = KFold(k, shuffle, random_state, stratified).folds(n, y)
    else:
        folds = [np.asarray(f, dtype=np.intp) for f in folds]
        seen = np.concatenate(folds)
        if len(folds) < 2 or np.sort(seen).tolist() != list(range(n)):
            raise ValueError(f"cross_validate: folds must partition range({n}) into >= 2 "
                             f"parts")
    k = len(folds)
    seeds = [int(s.generate_state(1)[0])
             for s in np.random.SeedSequence(random_state).spawn(k)]
    fit_kwargs = dict(fit_kwargs or {})
    risks, extra, models = [], {}, []
    for l, val in enumerate(folds):
        train = np.concatenate([f for m, f in enumerate(folds) if m != l])
        model = _call_factory(model_factory, seeds[l])
        Xtr, ytr, Xv, yv = (*_take([X, y], train), *_take([X, y], val))
        model.fit(Xtr, ytr, **fit_kwargs)
        risk, logs = _evaluate(model, Xv, yv, metric, metrics)
        risks.append(risk)
        for name, value in logs.items():
            extra.setdefault(name, []).append(value)
        if keep_models:
            models.append(model)
    sizes = [len(f) for f in folds]
    s = cv_summary(risks, sizes)
    return CVResult(fold_risks=s["folds"], fold_sizes=s["sizes"], cv_risk=s["pooled"],
                    mean=s["mean"], std=s["std"], std_error=s["std_error"],
                    metrics={name: cv_summary(v, sizes) for name, v in extra.items()},
                    folds=list(folds), models=models)


__all__ = ["CVResult", "KFold", "cross_validate", "cv_summary", "holdout_estimate", "kfold",
           "leave_one_out", "split_indices", "stratified_kfold", "train_test_split",
           "train_val_test_split"]
