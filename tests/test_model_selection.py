"""Hold-out and cross-validation (regularization.md §10, D-17, TV-REG-08)."""
import math

import numpy as np
import pytest

from corenet import Sequential
from corenet.errors import HyperparameterError, ShapeError
from corenet.layers.core import Dense
from corenet.model_selection import (KFold, cross_validate, cv_summary, holdout_estimate,
                                     kfold, leave_one_out, split_indices, stratified_kfold,
                                     train_test_split, train_val_test_split)


def test_tv_reg_08_folds_and_cv_risk():
    assert [f.tolist() for f in kfold(10, 3)] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [f.tolist() for f in kfold(10, 3, shuffle=True, random_state=0)] == \
        [[4, 6, 2, 7], [3, 5, 9], [0, 8, 1]]
    s = cv_summary([1.0, 2.0, 4.0], [4, 3, 3])
    assert s["pooled"] == pytest.approx(2.2, rel=1e-12)
    assert s["mean"] == pytest.approx(2.3333333333, rel=1e-9)
    assert s["std"] == pytest.approx(np.std([1, 2, 4], ddof=1), rel=1e-14)
    assert s["std_error"] == pytest.approx(s["std"] / math.sqrt(3), rel=1e-14)
    eq = cv_summary([1.0, 2.0, 4.0], [3, 3, 3])
    assert eq["pooled"] == pytest.approx(eq["mean"], rel=1e-14)


def test_folds_partition_and_sizes():
    folds = kfold(11, 4)
    assert [len(f) for f in folds] == [3, 3, 3, 2]
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(11))
    assert [f.tolist() for f in leave_one_out(4)] == [[0], [1], [2], [3]]
    y = np.array([0] * 6 + [1] * 3 + [2] * 4)
    sf = stratified_kfold(y, 3)
    assert [f.tolist() for f in sf] == [[0, 1, 6, 9, 10], [2, 3, 7, 11], [4, 5, 8, 12]]
    sf = stratified_kfold(np.eye(3)[y], 3, shuffle=True, random_state=1)
    assert np.array_equal(np.sort(np.concatenate(sf)), np.arange(13))
    for f in sf:
        assert np.bincount(y[f], minlength=3).tolist() in ([2, 1, 2], [2, 1, 1])
    splits = list(KFold(3, shuffle=True, random_state=0).split(np.zeros(10)))
    for (train, val), fold in zip(splits, kfold(10, 3, True, 0)):
        assert np.array_equal(val, fold)
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(10))
    assert len(list(KFold(2, stratified=True).split(np.zeros(13), y))) == 2


@pytest.mark.parametrize("call", [lambda: kfold(5, 1), lambda: kfold(5, 6), lambda: kfold(0),
                                  lambda: kfold(5, 2.0), lambda: KFold(1),
                                  lambda: split_indices(10, 0.0), lambda: split_indices(10, 1),
                                  lambda: split_indices(3, 0.9),
                                  lambda: train_val_test_split(np.zeros(10), None, (0.5, 0.5)),
                                  lambda: train_val_test_split(np.zeros(10), None,
                                                               (0.8, 0.1, 0.2))])
def test_bad_arguments(call):
    with pytest.raises(HyperparameterError):
        call()


def test_train_test_split():
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, shuffle=False)
    assert len(Xte) == 3 and yte.tolist() == [7, 8, 9]                   # ⌈0.25·10⌉
    assert np.array_equal(Xtr[:, 0] / 2, ytr)
    a = train_test_split(X, y, random_state=5)
    b = train_test_split(X, y, random_state=5)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert sorted(a[2].tolist() + a[3].tolist()) == list(range(10))
    assert train_test_split(X, test_size=0.5)[2] is None
    labels = np.array([0] * 8 + [1] * 4)
    tr, te = split_indices(12, 0.25, stratify=labels, random_state=0)
    assert np.bincount(labels[te]).tolist() == [2, 1] and len(tr) == 9
    with pytest.raises(ShapeError):
        train_test_split(X, y[:5])


def test_train_val_test_split():
    X = np.arange(20.0)[:, None]
    out = train_val_test_split(X, X[:, 0], (0.7, 0.15, 0.15), shuffle=False)
    assert [len(a) for a in out[:3]] == [14, 3, 3]
    assert out[5].tolist() == [17.0, 18.0, 19.0]
    out = train_val_test_split(X, None, (0.6, 0.2, 0.2), random_state=1)
    assert sorted(np.concatenate(out[:3])[:, 0].tolist()) == list(range(20))


def data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, X @ np.array([[1.0], [-1.0]]) + 0.1 * rng.normal(size=(n, 1))


def factory(seed):
    m = Sequential([Dense(1, 2)], input_shape=(2,), random_state=seed)
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.1}, metrics=["bit_fail"])
    return m


def test_cross_validate_matches_manual_folds():
    X, y = data()
    res = cross_validate(factory, X, y, k=3, fit_kwargs={"epochs": 5, "batch_size": 4},
                         random_state=7, shuffle=True, metrics=["bit_fail"], keep_models=True)
    assert res.fold_sizes.tolist() == [7, 7, 6]
    folds = kfold(20, 3, True, 7)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(7).spawn(3)]
    for l, fold in enumerate(folds):
        assert np.array_equal(res.folds[l], fold)
        train = np.concatenate([f for m, f in enumerate(folds) if m != l])
        m = factory(seeds[l])
        m.fit(X[train], y[train], epochs=5, batch_size=4)
        ev = m.evaluate(X[fold], y[fold], metrics=["bit_fail"])
        assert res.fold_risks[l] == pytest.approx(ev["loss"], rel=1e-12)
        assert res.metrics["bit_fail"]["folds"][l] == pytest.approx(ev["bit_fail"], rel=1e-12)
        assert res.models[l].evaluate(X[fold], y[fold])["loss"] == pytest.approx(ev["loss"])
    pooled = sum(len(f) * r for f, r in zip(folds, res.fold_risks)) / 20
    assert res.cv_risk == pytest.approx(pooled, rel=1e-14)
    assert res.mean == pytest.approx(res.fold_risks.mean(), rel=1e-14)
    assert res.std_error == pytest.approx(np.std(res.fold_risks, ddof=1) / np.sqrt(3))
    assert set(res.to_dict()) >= {"fold_risks", "cv_risk", "mean", "std", "std_error"}
    again = cross_validate(factory, X, y, k=3, fit_kwargs={"epochs": 5, "batch_size": 4},
                           random_state=7, shuffle=True)
    np.testing.assert_array_equal(again.fold_risks, res.fold_risks)
    loo = cross_validate(lambda: factory(0), X[:6], y[:6], k=6, metric="mae",
                         fit_kwargs={"epochs": 1})
    assert loo.fold_sizes.tolist() == [1] * 6
    with pytest.raises(ValueError, match="partition"):
        cross_validate(factory, X, y, folds=[np.arange(10), np.arange(5, 20)])


def test_holdout_estimate():
    X, y = data(30, 1)
    m = factory(0)
    m.fit(X[:20], y[:20], epochs=5, batch_size=5)
    est = holdout_estimate(m, X[20:], y[20:], metrics=["bit_fail"])
    per_sample = np.mean((m.predict(X[20:]) - y[20:]) ** 2, axis=1)
    assert est["n"] == 10
    assert est["risk"] == pytest.approx(per_sample.mean(), rel=1e-12)
    assert est["risk"] == pytest.approx(m.evaluate(X[20:], y[20:])["loss"], rel=1e-12)
    assert est["std_error"] == pytest.approx(np.std(per_sample, ddof=1) / np.sqrt(10),
                                             rel=1e-10)
    assert "bit_fail" in est
