"""corenet.sklearn estimators pass scikit-learn's estimator checks and work in its tools."""
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from corenet.sklearn import CorenetClassifier, CorenetRegressor  # noqa: E402


@pytest.mark.parametrize("estimator", [CorenetClassifier(max_epochs=60),
                                       CorenetRegressor(max_epochs=60)],
                         ids=["classifier", "regressor"])
def test_check_estimator(estimator):
    check_estimator(estimator)


def test_pipeline_grid_search_and_cross_val_score():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    pipe = make_pipeline(StandardScaler(), CorenetClassifier(max_epochs=40, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.75
    grid = GridSearchCV(pipe, {"corenetclassifier__hidden_layer_sizes": [(16,), (32,)]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["corenetclassifier__hidden_layer_sizes"] in [(16,), (32,)]


def test_digits_accuracy_and_model_access():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    clf = CorenetClassifier(random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.95
    assert clf.n_iter_ == len(clf.loss_curve_) > 1
    assert "dense" in clf.model_.summary()
    reg = CorenetRegressor(random_state=0, max_epochs=100).fit(Xtr, ytr.astype(float))
    assert reg.predict(Xte).shape == (len(Xte),)
