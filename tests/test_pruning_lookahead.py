"""Pruner options ``lookahead`` (stop criteria that may be violated for a few rounds) and
``reset_optimizer`` (fresh optimizer state before every retraining)."""
import warnings

import numpy as np
import pytest

from corenet import HyperparameterError, Sequential
from corenet.layers.core import Dense
from corenet.pruners import MagnitudePruner, OBDPruner, OBSPruner, UnitPruner


def staircase():
    """``ŷ_i = w_i`` (X = I, no bias), 0/1 targets, accuracy threshold 0.5. Deleting the
    weights in the order of |w| (magnitude; OBD and OBS too, H being diagonal) gives the
    training accuracies 3/4 → 2/4 → 3/4 → 2/4 → 1/4: the first deletion breaks a correct
    sample, the second repairs a wrong one."""
    w = np.array([0.55, 0.6, 0.9, 1.0])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    m = Sequential([Dense(1, bias=False)], input_shape=(4,))
    m.set_flat_parameters(w)
    return m, np.eye(4), y, w


PRUNERS = {"magnitude": lambda **kw: MagnitudePruner(n_prune=4, rounds=4, **kw),
           "obd": lambda **kw: OBDPruner(n_prune=4, rounds=4, hessian_method="exact", **kw),
           "obs": lambda **kw: OBSPruner(n_prune=4, gamma=None, use_linear_term=False,
                                         hessian="gauss_newton", grad_tol=None, **kw)}


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_lookahead_keeps_the_smallest_network_that_meets_the_criteria(method):
    m, X, y, w = staircase()
    r = PRUNERS[method](loss="mse", max_accuracy_drop=0.0).prune(m, X, y)
    assert r.stopped == "max_accuracy_drop" and r.weights_after == 4   # lookahead 0
    np.testing.assert_array_equal(m.get_flat_parameters(), w)
    assert len(r.records) == 1 and r.records[0]["undone"]

    for lookahead in (1, 2):
        m, X, y, w = staircase()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = PRUNERS[method](loss="mse", max_accuracy_drop=0.0,
                                lookahead=lookahead).prune(m, X, y)
        # deletions 1-2 are kept (the second repairs the first), 3-4 are undone
        assert r.stopped == "max_accuracy_drop" and r.weights_after == 2
        np.testing.assert_allclose(m.get_flat_parameters(), [0.0, 0.0, 0.9, 1.0])
        np.testing.assert_array_equal(m.layers[0].W.mask.ravel(), [0, 0, 1, 1])
        assert r.accuracy_after == r.accuracy_before == 0.75
        assert len(r.records) == 4
        assert r.records[0]["violated"] == "max_accuracy_drop"
        assert not r.records[0].get("undone") and not r.records[1].get("undone")
        assert r.records[2]["undone"] and r.records[3]["undone"]


def test_lookahead_without_violation_changes_nothing():
    m, X, y, w = staircase()
    y = np.ones(4)                     # accuracy 1 → 0.75 after one deletion: allowed
    r0 = MagnitudePruner(n_prune=1, loss="mse", max_accuracy_drop=0.5).prune(m, X, y)
    m2 = staircase()[0]
    r1 = MagnitudePruner(n_prune=1, loss="mse", max_accuracy_drop=0.5,
                         lookahead=3).prune(m2, X, y)
    assert r0.weights_after == r1.weights_after == 3 and r1.stopped == "target"
    np.testing.assert_array_equal(m.get_flat_parameters(), m2.get_flat_parameters())


def test_unit_pruner_lookahead_restores_when_nothing_recovers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(float)
    m = Sequential([Dense(4, activation="tanh"), Dense(1, activation="sigmoid")],
                   random_state=0, input_shape=(3,))
    m.compile(loss="mse", optimizer={"name": "adam", "lr": 0.05}, metrics=["accuracy"])
    m.fit(X, y, epochs=200, batch_size=40)
    theta = m.get_flat_parameters()
    r = UnitPruner(n_units=1, rounds=4, max_loss=0.0, lookahead=2).prune(m, X, y)
    assert r.stopped == "max_loss" and r.weights_after == r.weights_before
    np.testing.assert_array_equal(m.get_flat_parameters(), theta)
    assert len(r.records) == 3 and all(rec["undone"] for rec in r.records)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_lookahead_is_validated(bad):
    with pytest.raises(HyperparameterError, match="lookahead"):
        MagnitudePruner(lookahead=bad)
    with pytest.raises(HyperparameterError, match="lookahead"):
        OBSPruner(lookahead=bad)


def _trained(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(32, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    m = Sequential([Dense(1)], input_shape=(4,))
    m.set_flat_parameters(np.array([0.3, -0.2, 0.1, 0.05, 0.0]))
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9})
    m.fit(X, y, epochs=3, batch_size=32)          # leaves momentum buffers
    return m, X, y


def test_reset_optimizer_retrains_from_a_fresh_optimizer_state():
    m_reset, X, y = _trained()
    MagnitudePruner(n_prune=1, retrain_epochs=2, retrain_batch_size=32,
                    reset_optimizer=True).prune(m_reset, X, y)
    m_manual = _trained()[0]
    MagnitudePruner(n_prune=1).prune(m_manual, X, y)
    m_manual.optimizer.state = {}
    m_manual.fit(X, y, epochs=2, batch_size=32)
    m_kept = _trained()[0]
    MagnitudePruner(n_prune=1, retrain_epochs=2, retrain_batch_size=32).prune(m_kept, X, y)
    np.testing.assert_allclose(m_reset.get_flat_parameters(),
                               m_manual.get_flat_parameters(), rtol=1e-12, atol=1e-14)
    assert np.abs(m_reset.get_flat_parameters() - m_kept.get_flat_parameters()).max() > 1e-4
    assert m_reset.layers[0].W.data.ravel()[3] == 0.0               # the mask still holds
    assert MagnitudePruner(reset_optimizer=True).get_config()["reset_optimizer"] is True


@pytest.mark.parametrize("per_round", [1, 3])
def test_obs_lookahead_with_retraining_ends_on_a_network_meeting_the_criteria(per_round):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(48, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(float)
    m = Sequential([Dense(3, activation="tanh"), Dense(1, activation="sigmoid")],
                   random_state=1, input_shape=(4,))
    m.compile(loss={"name": "sse", "half": True},
              optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.5}, metrics=["accuracy"])
    m.fit(X, y, epochs=150, batch_size=48)
    n = m.n_parameters()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = OBSPruner(n_prune=n - 1, prune_biases=True, max_accuracy_drop=0.0, lookahead=n,
                      prune_per_round=per_round, retrain_epochs=2, retrain_batch_size=48,
                      reset_optimizer=True, gamma=None).prune(m, X, y)
    assert r.accuracy_after >= r.accuracy_before
    assert m.evaluate(X, y)["accuracy"] == r.accuracy_after
    kept = [rec for rec in r.records if not rec.get("undone")]
    assert len(kept) == r.pruned == n - r.weights_after
    masked = {(p.name, i) for p in m.parameters() for i in np.flatnonzero(p.mask.ravel() == 0)}
    assert masked == {(rec["parameter"], rec["local_index"]) for rec in kept}
