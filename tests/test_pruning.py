"""Pruners (pruning.md): masks, magnitude, OBD, OBS (full and layer-wise), unit pruning,
compaction — against TV-PR-01..04, TV-HESS-01, least-squares refits and error cases."""
import warnings

import numpy as np
import pytest

import corenet
from corenet import HyperparameterError, NotFiniteError, Sequential, ShapeError, registry
from corenet.curvature import SingularHessianError
from corenet.layers.core import Dense
from corenet.pruners import (LayerwiseOBSPruner, MagnitudePruner, OBDPruner, OBSPruner,
                             UnitPruner, cap_corrections, compact, obs_correction,
                             obs_saliencies, set_masks, sparsity_summary, unprune)
from corenet.pruners.layerwise import conv_patches, layer_hessian

SSE = {"name": "sse", "half": True}


def state(model):
    return [(p.data.copy(), p.mask.copy(), p.masked) for p in model.parameters()]


def assert_unchanged(model, before):
    for p, (data, mask, masked) in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, data)
        np.testing.assert_array_equal(p.mask, mask)
        assert p.masked == masked


def linear_model(w, bias=False):
    m = Sequential([Dense(1, bias=bias)], input_shape=(len(w),))
    m.set_flat_parameters(np.asarray(w, dtype=float))
    return m


def small_classifier(seed=0, epochs=60):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
    m = Sequential([Dense(8, activation="tanh"), Dense(6, activation="tanh"), Dense(2),
                    "softmax"], random_state=seed)
    m.compile(loss="cross_entropy", optimizer={"name": "adam", "lr": 0.02},
              metrics=["accuracy"])
    m.fit(X, y, epochs=epochs, batch_size=20)
    return m, X, y


# ----------------------------------------------------------------------------- registry
def test_every_pruner_is_registered():
    assert {"magnitude", "obd", "obs", "unit", "layerwise_obs"} <= set(registry.names("pruner"))
    p = corenet.create("pruner", "obs", n_prune=2)
    assert isinstance(p, OBSPruner) and p.get_config()["n_prune"] == 2


# ----------------------------------------------------------------------------- TV-PR-01
def test_tv_pr_01_obs_versus_obd_on_a_quadratic():
    H = np.array([[2.0, 1.0], [1.0, 2.0]])
    theta = np.array([1.0, 0.5])
    Hinv = np.linalg.inv(H)
    np.testing.assert_allclose(np.diag(Hinv), [2 / 3, 2 / 3])
    L = obs_saliencies(theta, Hinv)
    np.testing.assert_allclose(L, [0.75, 0.1875], rtol=1e-12)
    q = int(np.argmin(L))
    delta = obs_correction(theta, Hinv, q)
    np.testing.assert_allclose(delta, [0.25, -0.5], rtol=1e-12)
    np.testing.assert_allclose(theta + delta, [1.25, 0.0], atol=1e-15)
    assert 0.5 * delta @ H @ delta == pytest.approx(0.1875, rel=1e-12)
    obd = 0.5 * np.diag(H) * theta ** 2
    np.testing.assert_allclose(obd, [1.0, 0.25])
    d_obd = np.array([0.0, -0.5])
    assert 0.5 * d_obd @ H @ d_obd == pytest.approx(0.25)


def test_tv_pr_01_end_to_end_on_a_linear_model():
    # sse(half) on X with XᵀX/N = H and targets X θ*: the loss is ½(θ−θ*)ᵀH(θ−θ*)
    X = np.array([[2.0, 1.0], [0.0, np.sqrt(3.0)]])
    y = X @ [1.0, 0.5]
    m = linear_model([1.0, 0.5])
    r = OBSPruner(n_prune=1, hessian="gauss_newton", alpha=0.0, loss=SSE).prune(m, X, y)
    np.testing.assert_allclose(m.get_flat_parameters(), [1.25, 0.0], atol=1e-12)
    assert r.loss_after == pytest.approx(0.1875, rel=1e-12)          # constrained minimum
    assert r.records[0]["saliency"] == pytest.approx(0.1875, rel=1e-12)
    m = linear_model([1.0, 0.5])
    r = OBDPruner(n_prune=1, hessian_method="exact", loss=SSE).prune(m, X, y)
    np.testing.assert_allclose(m.get_flat_parameters(), [1.0, 0.0])
    assert r.loss_after == pytest.approx(0.25, rel=1e-12)
    assert r.records[0]["predicted_increase"] == pytest.approx(0.25, rel=1e-12)


# ----------------------------------------------------------------------------- TV-PR-02
def test_tv_pr_02_obs_step():
    from corenet import curvature

    V = np.array([[1, 0, 2], [0, 1, 1], [1, 1, 0], [2, -1, 1]], dtype=float)
    Hinv = curvature.woodbury_inverse(V, alpha=1e-4)
    theta = np.array([0.5, -0.2, 1.0])
    L = obs_saliencies(theta, Hinv)
    np.testing.assert_allclose(L, [0.0937694439, 0.0135022599, 0.3971365027], rtol=1e-9,
                               atol=1e-10)
    q = int(np.argmin(L))
    assert q == 1
    delta = obs_correction(theta, Hinv, q)
    np.testing.assert_allclose(delta, [0.059989602, 0.2, -0.039990402], rtol=1e-8)
    np.testing.assert_allclose(theta + delta, [0.559989602, 0, 0.960009598], rtol=1e-8,
                               atol=1e-15)
    assert L[q] == pytest.approx(0.013502259949610015, rel=1e-12)
    H = 1e-4 * np.eye(3) + V.T @ V / 4
    np.testing.assert_allclose(0.5 * np.diag(H) * theta ** 2, [0.1875125, 0.015002, 0.75005],
                               rtol=1e-12)


# ----------------------------------------------------------------------------- TV-PR-03
@pytest.mark.parametrize("hessian, alpha", [("gauss_newton", 0.0), ("exact", 0.0),
                                            ("outer_product", 1e-12)])
def test_tv_pr_03_obs_equals_least_squares_refit(hessian, alpha):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    y = X @ [1.0, 0.05, -2.0] + 0.1 * rng.normal(size=20)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    m = linear_model(w)
    r = OBSPruner(n_prune=1, hessian=hessian, alpha=alpha, loss=SSE,
                  inverse_tol=None if alpha else 1e-6).prune(m, X, y)
    rtol = 1e-9 if hessian != "outer_product" else 1e-7     # recursion with α = 1e-12
    np.testing.assert_allclose(m.get_flat_parameters(), [1.0364967272, 0, -1.9920477205],
                               rtol=rtol, atol=1e-12)
    refit = np.linalg.lstsq(X[:, [0, 2]], y, rcond=None)[0]
    np.testing.assert_allclose(m.get_flat_parameters()[[0, 2]], refit, rtol=rtol)
    assert r.records[0]["index"] == 1 and r.records[0]["parameter"] == "0.weight"
    assert r.records[0]["saliency"] == pytest.approx(0.0014505253145439, rel=1e-7)
    assert r.loss_after - r.loss_before == pytest.approx(0.0014505253145439, rel=1e-7)
    np.testing.assert_array_equal(m.get_flat_mask(), [1, 0, 1])


def test_tv_pr_03_layerwise_greedy_is_exact_obs():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    y = X @ [1.0, 0.05, -2.0] + 0.1 * rng.normal(size=20)
    m = linear_model(np.linalg.lstsq(X, y, rcond=None)[0])
    LayerwiseOBSPruner(n_prune=1, damping=0.0, algorithm="greedy").prune(m, X, y)
    np.testing.assert_allclose(m.get_flat_parameters(), [1.0364967272, 0, -1.9920477205],
                               rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- TV-PR-04
def test_tv_pr_04_magnitude_and_gamma_cap():
    m = Sequential([Dense(5, bias=False)], input_shape=(1,))
    m.set_flat_parameters(np.array([0.5, -0.05, 0.2, -0.8, 0.01]))
    r = MagnitudePruner(amount=0.4).prune(m)
    np.testing.assert_array_equal(m.get_flat_mask(), [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(m.get_flat_parameters(), [0.5, 0, 0.2, -0.8, 0])
    assert r.pruned == 2
    capped, scale = cap_corrections([0.1, -0.9, 0.3], 0.5)
    assert scale == pytest.approx(0.5555555556)
    np.testing.assert_allclose(capped, [0.0555555556, -0.5, 0.1666666667], rtol=1e-9)
    capped, scale = cap_corrections([0.1, -3.0, -0.9, 0.3], 0.5, exclude=1)
    np.testing.assert_allclose(capped, [0.0555555556, -3.0, -0.5, 0.1666666667], rtol=1e-9)


def test_magnitude_ties_scope_threshold():
    m = Sequential([Dense(2, bias=False), Dense(2, bias=False)], input_shape=(2,))
    m.set_flat_parameters(np.array([0.3, -0.1, 0.1, 2.0, 0.1, 5.0, 4.0, 3.0]))
    MagnitudePruner(n_prune=2).prune(m)            # three ties at 0.1: lower indices first
    np.testing.assert_array_equal(m.get_flat_mask(), [1, 0, 0, 1, 1, 1, 1, 1])
    unprune(m)
    m.set_flat_parameters(np.array([0.3, -0.1, 0.1, 2.0, 0.1, 5.0, 4.0, 3.0]))
    MagnitudePruner(amount=0.5, scope="layer").prune(m)
    np.testing.assert_array_equal(m.get_flat_mask(), [1, 0, 0, 1, 0, 1, 1, 0])
    unprune(m)
    m.set_flat_parameters(np.array([0.3, -0.1, 0.1, 2.0, 0.1, 5.0, 4.0, 3.0]))
    MagnitudePruner(threshold=0.35).prune(m)
    np.testing.assert_array_equal(m.get_flat_mask(), [0, 0, 0, 1, 0, 1, 1, 1])
    rows = sparsity_summary(m)
    assert rows[-1]["pruned"] == 4 and rows[-1]["fraction"] == 0.5


def test_iterative_magnitude_with_retraining_and_loss_stop():
    m, X, y = small_classifier()
    n = sum(p.size for p in m.parameters() if p.decay)
    r = MagnitudePruner(amount=0.3, rounds=3, retrain_epochs=5).prune(m, X, y)
    assert r.rounds == 3 and len(r.records) == 3
    assert r.weights_after == n - sum(rec["k"] for rec in r.records)
    # a tiny allowed loss increase stops at the first round and undoes it
    m, X, y = small_classifier()
    before = state(m)
    r = MagnitudePruner(amount=0.8, rounds=3, max_loss_increase=1e-9).prune(m, X, y)
    assert r.stopped == "max_loss_increase" and r.pruned == 0 and r.records[0]["undone"]
    assert_unchanged(m, before)


# ----------------------------------------------------------------------------- OBD
def tv_hess_net():
    m = Sequential([Dense(2, 2, activation="tanh"), Dense(1, 2)], input_shape=(2,))
    m.set_flat_parameters(np.array([0.1, -0.2, 0.4, 0.3, 0.05, -0.1, 0.7, -0.5, 0.2]))
    return m


TVX, TVT = np.array([[0.5, -1.0], [-1.5, 2.0]]), np.array([[0.3], [-0.4]])


@pytest.mark.parametrize("method", ["gauss_newton_diag", "exact"])
def test_obd_on_tv_hess_01(method):
    # ascending saliencies (TV-HESS-01): indices 4, 5, 0, 7, ...
    m = tv_hess_net()
    r = OBDPruner(n_prune=3, prune_biases=True, hessian_method=method, loss=SSE).prune(
        m, TVX, TVT)
    assert sorted(r.records[0]["indices"]) == [0, 4, 5]
    s = {"gauss_newton_diag": [0.0019612176, 0.0004458926, 0.0011898968],
         "exact": [0.0028479818, 0.0005024118, 0.0010133083]}[method]
    assert r.records[0]["predicted_increase"] == pytest.approx(sum(s), rel=1e-8)
    # weights only: 0 then 7
    m = tv_hess_net()
    r = OBDPruner(n_prune=2, loss=SSE).prune(m, TVX, TVT)
    assert sorted(r.records[0]["indices"]) == [0, 7]
    assert m.get_flat_parameters()[[0, 7]].tolist() == [0.0, 0.0]


def test_obd_rounds_with_retraining_and_fisher():
    m, X, y = small_classifier()
    r = OBDPruner(amount=0.25, rounds=2, retrain_epochs=3).prune(m, X, y)
    assert r.rounds == 2 and r.pruned > 0
    m, X, y = small_classifier()
    r = OBDPruner(n_prune=10, hessian_method="fisher").prune(m, X, y)
    assert r.pruned == 10


# ----------------------------------------------------------------------------- OBS
def xor_net(seed=0):
    X, y = corenet.datasets.xor()
    m = Sequential([Dense(2, activation="sigmoid"), Dense(1, activation="sigmoid")],
                   random_state=seed)
    m.compile(loss=SSE, optimizer={"name": "adam", "lr": 0.1}, metrics=["accuracy"])
    m.fit(X, y.astype(float), epochs=2000, batch_size=4)
    assert m.evaluate(X, y.astype(float))["accuracy"] == 1.0
    return m, X, y.astype(float)


def test_xor_obs_keeps_the_function_where_magnitude_and_obd_do_not():
    m, X, y = xor_net(0)
    theta = m.get_flat_parameters()
    kept = {}
    for name, pruner in (("magnitude", MagnitudePruner(n_prune=1, prune_biases=True)),
                         ("obd", OBDPruner(n_prune=1, prune_biases=True,
                                           hessian_method="exact")),
                         ("obs", OBSPruner(n_prune=1, prune_biases=True, grad_tol=None))):
        unprune(m)
        m.set_flat_parameters(theta)
        pruner.prune(m, X, y)
        kept[name] = m.evaluate(X, y)["accuracy"] == 1.0
    assert kept == {"magnitude": False, "obd": False, "obs": True}


def test_obs_heuristics_gradient_warning_linear_term_and_cap():
    m, X, y = small_classifier(epochs=5)              # far from a minimum
    with pytest.warns(RuntimeWarning, match="not at a minimum"):
        r = OBSPruner(n_prune=3, gamma=0.01).prune(m, X, y)
    rec = r.records[0]
    assert rec["predicted_increase"] != rec["saliency"]       # linear term in the ranking
    assert any(x["capped"] for x in r.records)
    m, X, y = small_classifier(epochs=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = OBSPruner(n_prune=3, grad_tol=None, gamma=None).prune(m, X, y)
    assert all(x["predicted_increase"] == x["saliency"] and not x["capped"]
               for x in r.records)


def test_obs_inverse_quality_retries_then_raises_and_check_against_exact():
    m, X, y = small_classifier()
    before = state(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SingularHessianError, match="quality check"):
            OBSPruner(n_prune=2, inverse_tol=0.0).prune(m, X, y)
    assert_unchanged(m, before)
    with pytest.warns(RuntimeWarning, match="exact"):
        OBSPruner(n_prune=1, check_against="exact", check_tol=1e-12, grad_tol=None).prune(
            m, X, y)


def test_obs_stop_criteria_and_records():
    m, X, y = small_classifier()
    n = sum(p.size for p in m.parameters() if p.decay)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = OBSPruner(target_weights=n - 5, evaluate=True).prune(m, X, y)
    assert r.weights_after == n - 5 and len(r.records) == 5
    for rec in r.records:
        assert {"index", "parameter", "local_index", "theta", "saliency", "loss",
                "actual_increase"} <= set(rec)
    m, X, y = small_classifier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = OBSPruner(n_prune=n, max_accuracy_drop=0.0).prune(m, X, y)
    assert r.stopped == "max_accuracy_drop" and r.records[-1]["undone"]
    assert r.accuracy_after == r.accuracy_before
    assert r.weights_after == n - (len(r.records) - 1)
    m, X, y = small_classifier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = OBSPruner(n_prune=n, max_loss_increase=0.5, prune_per_round=4,
                      retrain_epochs=2).prune(m, X, y)
    assert r.stopped == "max_loss_increase" and r.loss_after <= 1.5 * r.loss_before + 1e-12


def test_obs_refuses_large_models():
    m = Sequential([Dense(80, activation="relu"), Dense(70)], input_shape=(60,))
    X = np.random.default_rng(0).normal(size=(4, 60))
    with pytest.raises(HyperparameterError, match="layerwise_obs"):
        OBSPruner(n_prune=1, loss="mse").prune(m, X, np.zeros((4, 70)))


# ----------------------------------------------------------------------------- errors
def test_errors_leave_parameters_and_masks_unchanged():
    m, X, y = small_classifier()
    MagnitudePruner(n_prune=5).prune(m)
    before = state(m)
    n = sum(p.count_nonzero_weights() for p in m.parameters() if p.decay)
    # impossible target
    for pruner in (MagnitudePruner(n_prune=n + 1), OBSPruner(n_prune=n + 1),
                   OBDPruner(n_prune=n + 1)):
        with pytest.raises(HyperparameterError, match="cannot prune"):
            pruner.prune(m, X, y)
        assert_unchanged(m, before)
    # NaN in the data
    Xbad = X.copy()
    Xbad[3, 1] = np.nan
    with pytest.raises(NotFiniteError):
        OBDPruner(n_prune=2).prune(m, Xbad, y)
    assert_unchanged(m, before)
    # NaN / inf in the parameters
    m.parameters()[2].data[0, 0] = np.inf
    with pytest.raises(NotFiniteError, match="NaN or inf"):
        OBSPruner(n_prune=2).prune(m, X, y)
    m.parameters()[2].data[0, 0] = before[2][0][0, 0]
    assert_unchanged(m, before)
    # a mask of the wrong shape (corrupted state) and set_masks with one bad mask
    good = m.parameters()[0]._mask
    m.parameters()[0]._mask = np.ones((3, 3))
    with pytest.raises(ShapeError, match="mask"):
        MagnitudePruner(n_prune=1).prune(m)
    m.parameters()[0]._mask = good
    assert_unchanged(m, before)
    with pytest.raises(ShapeError):
        set_masks(m, {"0.weight": np.zeros_like(good), "1.weight": np.ones((2, 2))})
    assert_unchanged(m, before)


def test_singular_hessian_raises_and_changes_nothing():
    m, X, y = small_classifier()
    before = state(m)
    Xs, ys = X[:3], y[:3]                   # G of rank ≤ N·K = 6 < n_θ: singular
    with pytest.raises(SingularHessianError):
        OBSPruner(n_prune=2, hessian="gauss_newton", alpha=0.0, grad_tol=None).prune(m, Xs, ys)
    assert_unchanged(m, before)
    m2 = tv_hess_net()                      # indefinite exact Hessian, no damping
    before = state(m2)
    with pytest.raises(SingularHessianError, match="not positive definite"):
        OBSPruner(n_prune=1, hessian="exact", alpha=0.0, loss=SSE, grad_tol=None).prune(
            m2, TVX, TVT)
    assert_unchanged(m2, before)


def test_nan_hessian_raises_and_changes_nothing(monkeypatch):
    from corenet import curvature

    m, X, y = small_classifier()
    before = state(m)

    def bad(*args, **kwargs):
        return np.full(m.n_parameters(), np.nan)

    monkeypatch.setattr(curvature, "hessian_diag", bad)
    with pytest.raises(NotFiniteError, match="Hessian"):
        OBDPruner(n_prune=3, rounds=1).prune(m, X, y)
    assert_unchanged(m, before)


def test_failure_in_a_later_round_restores_the_start(monkeypatch):
    from corenet import curvature

    m, X, y = small_classifier()
    before = state(m)
    real, calls = curvature.hessian_diag, []

    def flaky(*args, **kwargs):
        calls.append(1)
        h = real(*args, **kwargs)
        return h if len(calls) == 1 else h * np.nan

    monkeypatch.setattr(curvature, "hessian_diag", flaky)
    with pytest.raises(NotFiniteError):
        OBDPruner(amount=0.2, rounds=2, retrain_epochs=2).prune(m, X, y)
    assert_unchanged(m, before)


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("optimizer", [{"name": "sgd", "lr": 0.05, "momentum": 0.9},
                                       {"name": "adam", "lr": 0.01}, {"name": "rprop"}])
def test_scheduled_pruning_masks_hold_through_optimizers_and_save_load(optimizer, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 6))
    y = (X[:, 0] - X[:, 3] > 0).astype(np.int64)
    m = Sequential([Dense(10, activation="tanh"), Dense(2), "softmax"], random_state=0)
    m.compile(loss="cross_entropy", optimizer=optimizer, metrics=["accuracy"])
    pruner = MagnitudePruner(target_sparsity=0.6, start_epoch=1, end_epoch=5, frequency=2)
    history = m.fit(X, y, epochs=8, batch_size=16, callbacks=[pruner])
    assert [e["epoch"] for e in pruner.events] == [3, 5]     # s(1) = initial_sparsity = 0
    assert pruner.events[-1]["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert "sparsity" in history.epochs[1]
    masks = [p.mask.copy() for p in m.parameters()]
    for p in m.parameters():
        assert np.all(p.data[p.mask == 0] == 0)
        if p.masked:                                    # optimizer state zeroed there
            for v in m.optimizer.state.get(p, {}).values():
                if isinstance(v, np.ndarray) and v.shape == p.shape:
                    assert np.all(v[p.mask == 0] == 0)
    m.fit(X, y, epochs=3, batch_size=16)               # training never changes masks
    for p, mask in zip(m.parameters(), masks):
        np.testing.assert_array_equal(p.mask, mask)
        assert np.all(p.data[mask == 0] == 0)
    path = tmp_path / "pruned.npz"
    m.save(path)
    loaded = corenet.load(path)
    for p, q in zip(m.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(p.mask, q.mask)
        np.testing.assert_array_equal(p.data, q.data)
    np.testing.assert_allclose(loaded.predict(X), m.predict(X))


def test_polynomial_schedule_values():
    p = MagnitudePruner(target_sparsity=0.8, start_epoch=0, end_epoch=4, frequency=2)
    assert p.sparsity_at(1) is None and p.sparsity_at(6) is None
    assert p.sparsity_at(0) == pytest.approx(0.0)
    assert p.sparsity_at(2) == pytest.approx(0.8 - 0.8 * 0.5 ** 3)
    assert p.sparsity_at(4) == pytest.approx(0.8)
    lin = MagnitudePruner(target_sparsity=0.8, end_epoch=4, schedule="linear")
    assert lin.sparsity_at(1) == pytest.approx(0.2)


@pytest.mark.parametrize("cls", [OBDPruner, OBSPruner, LayerwiseOBSPruner])
def test_curvature_pruners_as_callbacks(cls):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(48, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    m = Sequential([Dense(6, activation="tanh"), Dense(2), "softmax"], random_state=1)
    m.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.5})
    kwargs = {"data": (X, y)} if cls is not LayerwiseOBSPruner else {}
    pruner = cls(amount=0.2, start_epoch=1, frequency=2, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y, epochs=5, batch_size=16, callbacks=[pruner])
    assert len(pruner.events) == 2
    assert sparsity_summary(m)[-1]["fraction"] > 0.3


# ----------------------------------------------------------------------------- unit pruning
@pytest.mark.parametrize("score", ["ablation", "attention", "obd_sum", "outgoing_l2"])
def test_unit_pruning_and_compact(score):
    m, X, y = small_classifier()
    r = UnitPruner(n_units=2, rounds=2, score=score).prune(m, X, y)
    removed = sum(rec["pruned_units"] for rec in r.records if not rec.get("undone"))
    assert removed == 4
    for rec in r.records:
        for u in rec["units"]:
            layer = m.layers[int(u["layer"])]
            assert not layer.W.mask[u["unit"]].any()
            assert layer.b.mask[u["unit"]] == 0
    small = compact(m)
    assert small.n_parameters() < m.n_parameters()
    assert small.layers[0].out_features + small.layers[1].out_features == 14 - 4
    np.testing.assert_allclose(small.predict(X), m.predict(X), rtol=1e-12, atol=1e-14)
    assert small.loss is not None and small.optimizer.name == "adam"
    small.fit(X, y, epochs=1, batch_size=20)


def test_compact_folds_constant_units_and_keeps_masks():
    m, X, y = small_classifier()
    W0 = m.layers[0].W
    mask = W0.mask.copy()
    mask[3] = 0                                   # unit 3: no input, constant tanh(b_3)
    mask[5, :2] = 0
    W0.mask = mask
    m.layers[0].b.data[3] = 0.7
    small = compact(m)
    assert small.layers[0].out_features == 7
    np.testing.assert_allclose(small.predict(X), m.predict(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(small.layers[0].W.mask[4, :2], [0, 0])   # old unit 5


def test_conv_channel_pruning_and_compact():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 1, 8, 8))
    y = rng.integers(0, 3, 12)
    m = Sequential([{"name": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3,
                     "padding": 1}, ("activation", {"activation": "relu"}),
                    ("max_pool2d", {}),
                    {"name": "conv2d", "in_channels": 4, "out_channels": 5, "kernel_size": 3},
                    ("activation", {"activation": "tanh"}), ("flatten", {}),
                    {"name": "dense", "out_features": 3}, "softmax"], random_state=0)
    m.compile(loss="cross_entropy", optimizer="sgd")
    m.build((1, 8, 8))
    theta = m.get_flat_parameters()
    for pruner in (OBDPruner(n_prune=20), OBSPruner(n_prune=20, grad_tol=None),
                   LayerwiseOBSPruner(n_prune=20)):         # curvature through conv + pool
        assert pruner.prune(m, X, y).pruned == 20
        unprune(m)
        m.set_flat_parameters(theta)
    UnitPruner(n_units=3, score="outgoing_l2").prune(m, X, y)
    small = compact(m)
    n_channels = small.layers[0].out_channels + small.layers[3].out_channels
    assert n_channels == 9 - 3
    assert small.layers[6].in_features == small.layers[3].out_channels * 4
    np.testing.assert_allclose(small.predict(X), m.predict(X), rtol=1e-10, atol=1e-12)


def test_input_pruning():
    m, X, y = small_classifier()
    UnitPruner(n_units=2, include_inputs=True, score="outgoing_l2").prune(m, X, y)
    dead_inputs = [(m.layers[0].W.mask[:, j] == 0).all() for j in range(5)]
    assert sum(dead_inputs) + sum(not m.layers[0].W.mask[i].any() for i in range(8)) + \
        sum(not m.layers[1].W.mask[i].any() for i in range(6)) == 2


# ----------------------------------------------------------------------------- layer-wise OBS
def test_conv_patches_reproduce_the_convolution():
    from corenet import registry as reg

    rng = np.random.default_rng(2)
    for cfg, shape in (({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2,
                         "padding": 1, "dilation": 1}, (2, 7, 6)),
                       ({"in_channels": 2, "out_channels": 2, "kernel_size": [2, 3],
                         "dilation": 2}, (2, 6, 7))):
        layer = reg.create("layer", {"name": "conv2d", **cfg})
        layer.build(shape, np.float64, rng)
        x = rng.normal(size=(3,) + shape)
        out = layer.forward(x)
        P = conv_patches(layer, x)
        rows = P @ layer.W.data.reshape(layer.out_channels, -1).T + layer.b.data
        np.testing.assert_allclose(rows, np.moveaxis(out, 1, -1).reshape(-1, out.shape[1]),
                                   atol=1e-12)
    layer = reg.create("layer", {"name": "conv1d", "in_channels": 2, "out_channels": 2,
                                 "kernel_size": 3, "padding": 1})
    layer.build((2, 9), np.float64, rng)
    x = rng.normal(size=(2, 2, 9))
    out = layer.forward(x)
    rows = conv_patches(layer, x) @ layer.W.data.reshape(2, -1).T + layer.b.data
    np.testing.assert_allclose(rows, np.moveaxis(out, 1, -1).reshape(-1, 2), atol=1e-12)


def test_layer_hessian_and_algorithms():
    m, X, y = small_classifier()
    H = layer_hessian(m, m.layers[1], X)
    m.predict(X)
    A = np.tanh(X @ m.layers[0].W.data.T + m.layers[0].b.data)
    At = np.hstack([A, np.ones((len(A), 1))])
    np.testing.assert_allclose(H, 2 * At.T @ At / len(A), rtol=1e-12)
    for algorithm in ("greedy", "sequential"):
        mm, _, _ = small_classifier()
        r = LayerwiseOBSPruner(n_prune=30, algorithm=algorithm).prune(mm, X, y)
        assert r.pruned == 30
        assert all(rec["algorithm"] == algorithm for rec in r.records[0]["layers"])
    # at the same mask, the OBS-corrected layer has the smaller layer-output error
    mm, _, _ = small_classifier()
    W = mm.layers[0].W.data.copy()
    b = mm.layers[0].b.data.copy()
    LayerwiseOBSPruner(layer_sparsity={"0": 0.6}, damping=1e-6).prune(mm, X, y)
    mask = mm.layers[0].W.mask
    assert mask.mean() == pytest.approx(0.4)
    s_ref = X @ W.T + b
    err_obs = np.square(X @ mm.layers[0].W.data.T + mm.layers[0].b.data - s_ref).sum()
    err_mask = np.square(X @ (W * mask).T + b - s_ref).sum()
    assert err_obs < err_mask


def test_layerwise_obs_scales_to_lenet_300_100():
    rng = np.random.default_rng(0)
    m = Sequential([Dense(300, activation="relu"), Dense(100, activation="relu"), Dense(10),
                    "softmax"], random_state=0, input_shape=(784,))
    assert m.n_parameters() == 266_610
    X = np.clip(rng.normal(size=(256, 784)), 0, None)
    X[:, :100] = 0.0                                   # dead pixels: singular XXᵀ
    r = LayerwiseOBSPruner(target_sparsity=0.9, allocation="global_magnitude",
                           algorithm="sequential").prune(m, X, None)
    assert sparsity_summary(m)[-1]["fraction"] == pytest.approx(0.9, abs=1e-4)
    assert np.isfinite(m.get_flat_parameters()).all()
    assert r.records[0]["layers"][0]["algorithm"] == "sequential"


# ----------------------------------------------------------------------------- CLI
def test_prune_command(tmp_path, capsys):
    import argparse
    import json

    from corenet.prune_cli import add_prune_parser, run_prune

    parser = argparse.ArgumentParser()
    add_prune_parser(parser.add_subparsers())
    m, X, y = small_classifier()
    path = tmp_path / "net.npz"
    m.save(path)
    np.savez(tmp_path / "data.npz", X=X, y=y, X_test=X[:20], y_test=y[:20])
    args = parser.parse_args(["prune", str(path), "--data", str(tmp_path / "data.npz"),
                              "--method", "obs", "--n-prune", "10", "--option", "gamma=null",
                              "--option", "grad_tol=null", "-o", str(tmp_path / "out.npz")])
    assert run_prune(args) == 0
    text = capsys.readouterr().out
    assert "obs: pruned 10 weights" in text and "test accuracy" in text
    pruned = corenet.load(tmp_path / "out.npz")
    assert sparsity_summary(pruned)[-1]["pruned"] == 10
    args = parser.parse_args(["prune", str(path), "--data", str(tmp_path / "data.npz"),
                              "--method", "unit", "--n-units", "3", "--compact",
                              "--retrain-epochs", "2", "--json",
                              "-o", str(tmp_path / "small.npz")])
    assert run_prune(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters_after"] < out["parameters_before"]
    assert corenet.load(tmp_path / "small.npz").n_parameters() == out["parameters_after"]
    args = parser.parse_args(["prune", str(path), "--data", "xor", "--method", "magnitude"])
    with pytest.raises(ShapeError):                  # 2 inputs for a 5-input model
        run_prune(args)
    args = parser.parse_args(["prune", str(tmp_path / "missing.npz"), "--data", "xor"])
    assert run_prune(args) == 1


def test_float32_model_and_inverse_report():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = (X @ np.array([1.0, 0.0, -1.0], dtype=np.float32))[:, None]
    m = Sequential([Dense(4, activation="tanh"), Dense(1)], dtype="float32", random_state=0)
    m.compile(loss="mse", optimizer={"name": "adam", "lr": 0.05})
    m.fit(X, y, epochs=100, batch_size=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = OBSPruner(n_prune=4).prune(m, X, y)
    assert r.pruned == 4 and m.get_flat_parameters().dtype == np.float32
    info = r.inverses[0]
    assert info["quality"] <= 1e-6 and info["coordinates"] == m.n_parameters()
    assert all(p.data.dtype == np.float32 and p.mask.dtype == np.float32
               for p in m.parameters())
