"""scikit-learn estimators backed by corenet models (scikit-learn is an optional extra).

``CorenetClassifier`` and ``CorenetRegressor`` follow scikit-learn's conventions (``fit``,
``predict``, ``predict_proba``, ``score``, ``get_params``/``set_params``, fitted attributes
ending in ``_``) and pass ``sklearn.utils.estimator_checks.check_estimator``, so they work
inside ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. Their defaults mirror
``MLPClassifier``/``MLPRegressor`` (one hidden layer of 100 ReLU units, Adam with learning
rate 1e-3, batches of ``min(200, n)``, 200 epochs, L2 penalty 1e-4, stop when the training
loss has not improved by ``tol`` for ``n_iter_no_change`` epochs).

The fitted corenet model is ``model_`` (a :class:`corenet.Sequential`), so everything corenet
offers — ``summary()``, ``save``, pruning, curvature — applies to it.
"""
from __future__ import annotations

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("corenet.sklearn needs scikit-learn: pip install 'corenet[sklearn]'"
                      ) from exc

from . import registry
from .callbacks import EarlyStopping
from .model import Sequential


class _CorenetEstimator(BaseEstimator):
    """Shared fitting logic (the subclasses choose the output layer and the loss)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", optimizer="adam",
                 learning_rate=1e-3, alpha=1e-4, batch_size="auto", max_epochs=200,
                 tol=1e-4, n_iter_no_change=10, shuffle=True, random_state=None,
                 dtype="float64", verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    # subclasses provide: _targets(y) -> (encoded y, n_outputs), _output_layers(n), _loss
    def _build(self, n_features, n_outputs):
        layers = [registry.get("layer", "dense")(int(h), activation=self.activation)
                  for h in np.atleast_1d(self.hidden_layer_sizes)]
        layers += self._output_layers(n_outputs)
        seed = (self.random_state if isinstance(self.random_state, (int, np.integer))
                else (None if self.random_state is None
                      else int(self.random_state.integers(2 ** 31))))
        model = Sequential(layers, dtype=self.dtype, random_state=seed,
                           input_shape=(n_features,))
        # the L2 penalty alpha·½‖W‖² enters as coupled weight decay on the weights (D-42,
        # D-44: the same gradient as the l2 regularizer; biases are not decayed)
        optimizer = {"name": self.optimizer, "lr": float(self.learning_rate),
                     "weight_decay": float(self.alpha)}
        model.compile(loss=self._loss, optimizer=optimizer)
        return model, seed

    def _fit(self, X, y):
        X = np.ascontiguousarray(X, dtype=self.dtype)
        targets, n_outputs = self._targets(y)
        model, seed = self._build(X.shape[1], n_outputs)
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else int(self.batch_size)
        stop = EarlyStopping(monitor="loss", patience=max(1, int(self.n_iter_no_change)),
                             min_delta=float(self.tol), mode="min",
                             restore_best_weights=False)
        history = model.fit(X, targets, epochs=int(self.max_epochs), batch_size=batch,
                            shuffle=self.shuffle, callbacks=[stop], random_state=seed,
                            verbose=bool(self.verbose))
        self.model_ = model
        self.loss_curve_ = [float(v) for v in history["loss"]]
        self.n_iter_ = len(self.loss_curve_)
        return self

    def _raw_predict(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.model_.predict(np.ascontiguousarray(X, dtype=self.dtype))


class CorenetClassifier(ClassifierMixin, _CorenetEstimator):
    """A multi-layer perceptron classifier trained by corenet (softmax + cross-entropy).

    Fitted attributes: ``classes_``, ``n_features_in_``, ``model_``, ``loss_curve_``,
    ``n_iter_``."""

    _loss = "cross_entropy"

    def _output_layers(self, n):
        return [registry.get("layer", "dense")(n), registry.get("layer", "softmax")()]

    def _targets(self, y):
        return self._encoded, len(self.classes_)

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, self._encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"CorenetClassifier needs samples of at least 2 classes; got 1 "
                             f"class ({self.classes_[0]!r})")
        return self._fit(X, y)

    def predict_proba(self, X):
        return self._raw_predict(X)

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class CorenetRegressor(RegressorMixin, _CorenetEstimator):
    """A multi-layer perceptron regressor trained by corenet (identity output + MSE).

    Fitted attributes: ``n_features_in_``, ``model_``, ``loss_curve_``, ``n_iter_``."""

    _loss = "mse"

    def _output_layers(self, n):
        return [registry.get("layer", "dense")(n)]

    def _targets(self, y):
        y = np.asarray(y, dtype=self.dtype)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        return np.ascontiguousarray(y2), y2.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True,
                             multi_output=True)
        return self._fit(X, y)

    def predict(self, X):
        out = self._raw_predict(X)
        return out.ravel() if self._y_1d else out
