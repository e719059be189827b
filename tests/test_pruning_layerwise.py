"""Layer-wise OBS (pruning.md §5.1, §5.4): the row algorithms of corenet.pruners.rowobs
(stepwise = greedy OBS when it deletes one weight per step, exact least-squares refits),
upstream compensation and the layer moments it uses, the automatic algorithm choice."""
import numpy as np
import pytest

from corenet import HyperparameterError, Sequential
from corenet.layers.core import Dense
from corenet.pruners import LayerwiseOBSPruner, sparsity_summary
from corenet.pruners.layerwise import _choose, layer_hessian, layer_moments
from corenet.pruners.rowobs import greedy_rows, refit_rows, stepwise_rows


def row_problem(R=4, d=7, M=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(M, d)) @ rng.normal(size=(d, d))       # correlated inputs
    H = 2.0 * X.T @ X / M
    W = rng.normal(size=(R, d))
    return X, H, W


def net(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 6))
    m = Sequential([Dense(7, activation="tanh"), Dense(5, activation="tanh"), Dense(3)],
                   random_state=seed, input_shape=(6,))
    return m, X


@pytest.mark.parametrize("fixed_first", [False, True])
def test_stepwise_one_per_step_is_greedy_obs(fixed_first):
    X, H, W = row_problem()
    cand = np.ones(W.shape, dtype=bool)
    fixed = np.zeros(W.shape, dtype=bool)
    Hinv = np.linalg.inv(H)
    if fixed_first:                  # earlier deletions: rows refitted without them
        fixed[0, 2] = fixed[3, 5] = True
        cand &= ~fixed
        W = refit_rows(H, W @ H, ~fixed)[0]
        Hs = np.repeat(Hinv[None], W.shape[0], axis=0)
        for r, q in ((0, 2), (3, 5)):
            Hs[r] -= np.outer(Hs[r, :, q], Hs[r, :, q]) / Hs[r, q, q]
        Hinv = Hs
    k = 11
    Wg, dg, _ = greedy_rows(W, cand, Hinv, k)
    Ws, ds = stepwise_rows(W @ H, cand, fixed, H, k, steps=k)
    np.testing.assert_array_equal(ds, dg)
    np.testing.assert_allclose(Ws, Wg, rtol=1e-9, atol=1e-10)
    assert ds.sum() == k and not (ds & fixed).any() and (Ws[fixed] == 0).all()


def test_refit_rows_is_the_least_squares_fit_on_the_kept_inputs():
    X, H, W = row_problem(R=3, d=6, seed=1)
    keep = np.array([[1, 0, 1, 1, 0, 1], [0, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], dtype=bool)
    Wn, D = refit_rows(H, W @ H, keep)
    for r in range(3):
        K = np.flatnonzero(keep[r])
        ls = np.linalg.lstsq(X[:, K], X @ W[r], rcond=None)[0]
        np.testing.assert_allclose(Wn[r, K], ls, rtol=1e-9, atol=1e-10)
        assert (Wn[r, ~keep[r]] == 0).all()
        np.testing.assert_allclose(D[r, K], np.diag(np.linalg.inv(H[np.ix_(K, K)])),
                                   rtol=1e-9)
    # the error of the refit never exceeds that of the same mask without correction
    for r in range(3):
        dw_fit, dw_mask = Wn[r] - W[r], W[r] * keep[r] - W[r]
        assert dw_fit @ H @ dw_fit <= dw_mask @ H @ dw_mask + 1e-12


def test_stepwise_fewer_steps_and_exact_counts():
    X, H, W = row_problem(R=5, d=9, seed=2)
    cand = np.ones(W.shape, dtype=bool)
    cand[:, -1] = False                                   # the bias column
    fixed = np.zeros(W.shape, dtype=bool)
    for steps, fraction in ((1, 0.3), (3, 0.3), (8, 0.3), (None, 0.3), (None, 0.05)):
        Ws, ds = stepwise_rows(W @ H, cand, fixed, H, 30, steps=steps, step_fraction=fraction)
        assert ds.sum() == 30 and not ds[:, -1].any() and (Ws[ds] == 0).all()
        # the result is the exact refit on its own mask
        np.testing.assert_allclose(Ws, refit_rows(H, W @ H, ~ds)[0], rtol=1e-9, atol=1e-12)
    Ws, ds = stepwise_rows(W @ H, cand, fixed, H, 0)
    np.testing.assert_allclose(Ws, W, rtol=1e-9, atol=1e-10)
    assert not ds.any()


def test_stepwise_pruner_beats_the_masked_layer_and_keeps_masks():
    m, X = net()
    W, b = m.layers[0].W.data.copy(), m.layers[0].b.data.copy()
    r = LayerwiseOBSPruner(layer_sparsity={"0": 0.5}, algorithm="stepwise", steps=3,
                           damping=1e-8).prune(m, X)
    assert r.records[0]["layers"][0]["algorithm"] == "stepwise"
    mask = m.layers[0].W.mask
    assert mask.sum() == 21 and (m.layers[0].W.data[mask == 0] == 0).all()
    ref = X @ W.T + b
    err = np.square(X @ m.layers[0].W.data.T + m.layers[0].b.data - ref).sum()
    assert err < np.square(X @ (W * mask).T + b - ref).sum()
    np.testing.assert_allclose(r.records[0]["layers"][0]["relative_error"],
                               err / np.square(ref).sum(), rtol=1e-6)
    # a second call prunes further from the first mask (earlier deletions stay)
    LayerwiseOBSPruner(layer_sparsity={"0": 0.8}, algorithm="stepwise").prune(m, X)
    assert m.layers[0].W.mask.sum() == round(0.2 * 42) and (m.layers[0].W.mask <= mask).all()


def test_layer_moments_with_a_reference_network():
    m, X = net(1)
    before = [(p, p.data.copy()) for p in m.parameters()]
    A0 = layer_hessian(m, m.layers[1], X)
    m.layers[0].W.data[:, :3] = 0.0                       # perturb the layer before
    now = [p.data.copy() for p in m.parameters()]
    A, C, D = layer_moments(m, m.layers[1], X, reference=before, batch_size=16)
    for p, data in zip(m.parameters(), now):              # the model is left as it was
        np.testing.assert_array_equal(p.data, data)
    h = np.tanh(X @ m.layers[0].W.data.T + m.layers[0].b.data)
    h0 = np.tanh(X @ before[0][1].T + before[1][1])
    h, h0 = (np.hstack([v, np.ones((len(X), 1))]) for v in (h, h0))
    np.testing.assert_allclose(A, 2 * h.T @ h / len(X), rtol=1e-12)
    np.testing.assert_allclose(C, 2 * h0.T @ h / len(X), rtol=1e-12)
    np.testing.assert_allclose(D, A0, rtol=1e-12)
    assert layer_moments(m, m.layers[1], X)[1:] == (None, None)


@pytest.mark.parametrize("algorithm", ["greedy", "stepwise", "sequential"])
def test_compensate_upstream(algorithm):
    m, X = net(2)
    theta = m.get_flat_parameters()
    ref = m.predict(X)

    def pruned(**kw):
        m.set_flat_parameters(theta)
        for p in m.parameters():
            p.mask = None
        r = LayerwiseOBSPruner(target_sparsity=0.5, algorithm=algorithm, damping=1e-6,
                               **kw).prune(m, X)
        return m.get_flat_parameters(), r.records[0]["layers"]

    t0, rec0 = pruned()
    t1, rec1 = pruned(compensate_upstream=True)
    # the first layer has no upstream error: identical; later layers differ
    n0 = m.layers[0].W.size + m.layers[0].b.size
    np.testing.assert_allclose(t1[:n0], t0[:n0], rtol=1e-12, atol=1e-14)
    assert rec1[0]["relative_error"] == pytest.approx(rec0[0]["relative_error"])
    m.set_flat_parameters(t0)
    err0 = np.square(m.predict(X) - ref).sum()
    m.set_flat_parameters(t1)
    err1 = np.square(m.predict(X) - ref).sum()
    assert err1 < err0
    # the record is the last layer's output error against the unpruned network
    np.testing.assert_allclose(rec1[-1]["relative_error"], err1 / np.square(ref).sum(),
                               rtol=1e-6)


def test_auto_choice_and_options():
    assert _choose("auto", 10, 101, 256) == "greedy"
    assert _choose("auto", 300, 785, 200_000) == "stepwise"
    assert _choose("auto", 4096, 4097, 10) == "sequential"
    assert _choose("sequential", 1, 2, 1) == "sequential"
    for bad in ({"steps": 0}, {"steps": 1.5}, {"algorithm": "obc"}, {"step_fraction": 1.0},
                {"step_fraction": 0.0}):
        with pytest.raises(HyperparameterError, match="layerwise_obs"):
            LayerwiseOBSPruner(**bad)
    cfg = LayerwiseOBSPruner(steps=4, compensate_upstream=True).get_config()
    assert cfg["steps"] == 4 and cfg["compensate_upstream"] is True
    assert cfg["step_fraction"] == 0.3 and LayerwiseOBSPruner().steps is None


def test_uniform_target_through_stepwise():
    m, X = net(3)
    LayerwiseOBSPruner(target_sparsity=0.7, algorithm="stepwise").prune(m, X)
    assert sparsity_summary(m)[-1]["fraction"] == pytest.approx(0.7, abs=0.01)
    assert np.isfinite(m.get_flat_parameters()).all()


def test_step_fraction_sets_the_number_of_groups(monkeypatch):
    from corenet.pruners import rowobs

    X, H, W = row_problem(R=5, d=8, seed=4)
    cand, fixed = np.ones(W.shape, dtype=bool), np.zeros(W.shape, dtype=bool)
    calls = []
    real = rowobs.refit_rows
    monkeypatch.setattr(rowobs, "refit_rows",
                        lambda *a: calls.append(int(a[2].sum())) or real(*a))
    stepwise_rows(W @ H, cand, fixed, H, 30, step_fraction=0.3)   # 40 → 10 kept
    # ⌈log(10/40)/log(0.7)⌉ = 4 groups (+ the final refit); geometric kept counts
    assert calls == [40, 28, 20, 14, 10]
