"""Cascade-correlation: the candidate objective (TV-CC-01, D-28), the pool and Quickprop
kernels, the ``cascade`` layer (networks.md §4.2), the grower (growing.md §3-§5) and its
model round trips. Runs in a few seconds."""
import numpy as np
import pytest

from corenet import _reference as ref
from corenet import kernels, registry
from corenet.cascor import (OutputPhase, Patience, candidate_objective, pool_kinds,
                            quickprop_step, train_candidates, unit_functions)
from corenet.datasets import parity, two_spirals, xor
from corenet.errors import DTypeError, HyperparameterError, PluginError, ShapeError
from corenet.growers import CascadeCorrelation
from corenet.layers.cascade import Cascade
from corenet.model import Sequential

TV_I = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=float)
TV_E = np.array([[0.2, -0.1], [-0.3, 0.4], [0.5, 0.0], [-0.1, -0.2]])
TV_V = np.array([0.1, -0.4, 0.7])
R64 = dict(rtol=1e-9, atol=1e-10)


def central(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def rel_err(a, n):
    return np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n)))


# ------------------------------------------------------------------ TV-CC-01, D-28
def test_tv_cc_01_objective_and_gradient():
    S, g, C, V = candidate_objective(TV_I, TV_E, TV_V, "sigmoid_symmetric", normalize=False)
    np.testing.assert_allclose(V, [0.0249791875, -0.0744425168, 0.1899744811, 0.0986876601],
                               rtol=1e-9)
    np.testing.assert_allclose(C, [0.0945071562, -0.0579924278], rtol=1e-9)
    np.testing.assert_allclose(S, 0.15249958399152747, **R64)
    np.testing.assert_allclose(g, [-0.012727323, -0.1713306965, 0.1082724007], rtol=1e-8)
    num = central(lambda v: candidate_objective(TV_I, TV_E, v, "sigmoid_symmetric",
                                                normalize=False)[0], TV_V)
    assert rel_err(g, num) <= 1e-6
    Sn, gn, _, _ = candidate_objective(TV_I, TV_E, TV_V, "sigmoid_symmetric")
    np.testing.assert_allclose(Sn, 0.2541659733192125, **R64)
    np.testing.assert_allclose(gn, [-0.021212205, -0.2855511608, 0.1804540012], rtol=1e-8)


def test_tv_cc_01_first_quickprop_step():
    """Previous step 0 -> gradient step on −S/Z with lr = 1/(N·n_in) = 1/12."""
    _, gn, _, _ = candidate_objective(TV_I, TV_E, TV_V, "sigmoid_symmetric")
    w = TV_V[None].copy()
    state = [np.zeros_like(w), np.zeros_like(w)]
    quickprop_step(w, -gn[None], state, 1.0 / 12, 2.0, 0.0)
    np.testing.assert_allclose(state[0][0], [-0.00176768374981, -0.0237959300668,
                                             0.0150378334335], rtol=1e-9)
    np.testing.assert_allclose(w[0], [0.09823231625019, -0.4237959300668, 0.7150378334335],
                               **R64)


def test_pool_gradient_matches_central_differences_d28():
    """Sign σ_o inside the sum over outputs, f′ per pattern, mixed types/steepnesses."""
    rng = np.random.default_rng(0)
    I = np.column_stack([np.ones(12), rng.standard_normal((12, 4))])
    E = rng.standard_normal((12, 3))
    kinds = pool_kinds(6, ["sigmoid_symmetric", "gaussian", "sin"], [1.0, 2.0])
    W = rng.uniform(-1, 1, (6, 5))
    S, G, C, _ = candidate_objective(I, E, W, kinds)
    assert np.all(np.abs(C) > 1e-6)
    num = central(lambda w: candidate_objective(I, E, w, kinds)[0].sum(), W)
    assert rel_err(G, num) <= 1e-6
    # D-28: one overall sign in front of the sum over outputs is wrong
    Ec = E - E.mean(axis=0)
    _, dV = kernels.cascade_pool_values(
        np.ascontiguousarray(I @ W.T), [kernels.CASCADE_UNIT_CODES[n] for n, _ in kinds],
        [b for _, b in kinds])
    overall = np.sign(C.sum(axis=1))[:, None] * ((Ec.sum(axis=1)[:, None] * dV).T @ I)
    assert rel_err(overall / (E * E).sum(), num) > 1e-2


def test_unit_functions_match_registered_activations():
    x = np.linspace(-4, 4, 41)
    for name in ("sigmoid", "sigmoid_symmetric", "tanh", "gaussian", "arctan", "softsign",
                 "identity", "sin", "cos", "erf"):
        act = registry.create("activation", name)
        f, df = unit_functions(name)
        y = f(x)
        np.testing.assert_allclose(y, act.f(x), **R64)
        np.testing.assert_allclose(df(x, y), act.df(x), **R64)


# ------------------------------------------------------------------ kernels vs reference
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pool_kernel_matches_reference(dtype):
    rng = np.random.default_rng(1)
    names = list(kernels.CASCADE_UNIT_CODES)
    S = (rng.standard_normal((40, 2 * len(names))) * 6).astype(dtype)
    names = names * 2
    beta = rng.uniform(0.3, 4.0, len(names))
    V, dV = kernels.cascade_pool_values(S, [kernels.CASCADE_UNIT_CODES[n] for n in names],
                                        beta)
    V2, dV2 = ref.cascade_pool_values(S, names, beta)
    tol = R64 if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(V, V2, **tol)
    np.testing.assert_allclose(dV, dV2, **tol)
    big = np.array([[1e5 + 0.3, -1e6, 7.0e4, 1e-9]], dtype=dtype).T.copy()
    for n in ("sin", "cos"):
        V, dV = kernels.cascade_pool_values(big, [kernels.CASCADE_UNIT_CODES[n]], [1.0])
        V2, dV2 = ref.cascade_pool_values(big, [n], [1.0])
        np.testing.assert_allclose(V, V2, **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_quickprop_kernel_matches_reference_all_branches(dtype):
    rng = np.random.default_rng(2)
    n = 400
    w = rng.standard_normal(n).astype(dtype)
    d = (rng.standard_normal(n) * (rng.random(n) < 0.8)).astype(dtype)
    p = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    g[:20] = p[:20]                     # degenerate secants
    args = [a.copy() for a in (w, g, d, p)]
    kernels.cascade_quickprop(*args, lr=0.3, mu=2.0, decay=1e-3)
    w2, d2, p2 = w.copy(), d.copy(), p.copy()
    ref.cascade_quickprop(w2, g, d2, p2, 0.3, 2.0, 1e-3)
    tol = R64 if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in ((args[0], w2), (args[2], d2), (args[3], p2)):
        np.testing.assert_allclose(a, b, **tol)


def test_quickprop_matches_registered_optimizer():
    try:
        opt_cls = registry.get("optimizer", "quickprop")
    except PluginError:
        pytest.skip("optimizer:quickprop is not registered")
    from corenet.parameter import Parameter

    rng = np.random.default_rng(3)
    p = Parameter(rng.standard_normal((3, 4)), "weight", decay=True)
    opt = opt_cls([p], lr=0.2, mu=2.0, decay=1e-3)
    w = p.data.copy()
    state = [np.zeros_like(w), np.zeros_like(w)]
    for _ in range(6):
        g = np.sin(3 * w) + 0.1 * rng.standard_normal(w.shape)
        p.grad[...] = np.sin(3 * p.data) + (g - np.sin(3 * w))
        opt.step()
        quickprop_step(w, g, state, 0.2, 2.0, 1e-3)
        np.testing.assert_allclose(p.data, w, **R64)


def test_kernel_errors():
    S = np.zeros((3, 2))
    with pytest.raises(ShapeError):
        kernels.cascade_pool_values(S, [0], [1.0, 1.0])
    with pytest.raises(ValueError):
        kernels.cascade_pool_values(S, [0, 99], [1.0, 1.0])
    with pytest.raises(DTypeError):
        kernels.cascade_pool_values(S.astype(np.int64), [0, 0], [1.0, 1.0])
    with pytest.raises((ShapeError, DTypeError)):
        kernels.cascade_quickprop(np.zeros(3), np.zeros(4), np.zeros(3), np.zeros(3), 0.1, 2.0)


def test_patience_rule():
    stop = Patience(2, 0.1, 2)
    seq = [10.0, 5.0, 4.9, 4.8, 4.7]     # change at e=1 (quit=3), none after
    assert [stop.update(x, e) for e, x in enumerate(seq)] == [False, False, False, True, True]
    assert not any(Patience(0, 0.1, 0).update(1.0, e) for e in range(5))


# ------------------------------------------------------------------ the layer
def _layer(D=3, K=2, units=("sigmoid_symmetric", {"activation": "sin", "steepness": 2.0},
                            "gaussian"), out="tanh", train_hidden=True, dtype="float64"):
    layer = Cascade(outputs=K, output_activation=out, hidden_units=list(units),
                    train_hidden=train_hidden)
    layer.build((D,), np.dtype(dtype), np.random.default_rng(0))
    return layer


def test_layer_weight_layout_and_order():
    layer = _layer()
    roles = [p.role for p in layer.parameters()]
    assert roles == ["hidden_1", "hidden_2", "hidden_3", "output_1", "output_2"]
    assert [p.size for p in layer.parameters()] == [4, 5, 6, 7, 7]
    x = np.random.default_rng(1).standard_normal((5, 3))
    h = []
    for j, (p, (name, beta)) in enumerate(zip(layer.hidden_parameters(),
                                              [("sigmoid_symmetric", 1), ("sin", 2),
                                               ("gaussian", 1)])):
        inp = np.column_stack([np.ones(5), x] + h)
        h.append(unit_functions(name)[0](beta * (inp @ p.data)))
    phi = np.column_stack([np.ones(5), x] + h)
    U = np.stack([p.data for p in layer.output_parameters()])
    np.testing.assert_allclose(layer.hidden_activations(x), phi, **R64)
    np.testing.assert_allclose(layer.forward(x), np.tanh(phi @ U.T), **R64)


@pytest.mark.parametrize("out", ["tanh", "identity", "softmax", "sigmoid_symmetric"])
def test_layer_gradient_check(out):
    layer = _layer(out=out)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((4, 2))
    for p in layer.parameters():
        p.grad[...] = 0
    layer.forward(x)
    dx = layer.backward(w)
    assert rel_err(dx, central(lambda z: float((layer.forward(z) * w).sum()), x)) <= 1e-6
    for p in layer.parameters():
        def loss(v, p=p):
            old = p.data.copy()
            p.data[...] = v
            val = float((layer.forward(x) * w).sum())
            p.data[...] = old
            return val
        assert rel_err(p.grad, central(loss, p.data.copy())) <= 1e-6, p.role


def test_frozen_hidden_units_get_no_gradient_but_pass_delta():
    layer = _layer(train_hidden=False)
    x = np.random.default_rng(3).standard_normal((4, 3))
    assert [p.trainable for p in layer.parameters()] == [False] * 3 + [True] * 2
    layer.forward(x)
    dx = layer.backward(np.ones((4, 2)))
    assert all(not p.grad.any() for p in layer.hidden_parameters())
    num = central(lambda z: float(layer.forward(z).sum()), x)
    assert rel_err(dx, num) <= 1e-6


def test_add_unit_keeps_output_parameters_and_masks():
    layer = _layer(units=("tanh",), train_hidden=False)
    outs = layer.output_parameters()
    mask = np.ones(5)
    mask[2] = 0
    outs[0].mask = mask
    grown = layer.add_unit(np.arange(5.0), "gaussian", 0.5, output_weights=[0.1, -0.2])
    assert grown[0] is outs[0] and grown[1] is outs[1]
    assert layer.n_hidden == 2 and layer.parameters()[1].role == "hidden_2"
    np.testing.assert_array_equal(outs[0].mask, [1, 1, 0, 1, 1, 1])
    assert outs[0].data[2] == 0 and outs[1].data[-1] == -0.2
    with pytest.raises(ShapeError):
        layer.add_unit(np.zeros(5))
    with pytest.raises(ShapeError):
        Cascade().build((2, 2), np.float64)


def test_masks_respected_in_forward():
    layer = _layer(units=(), out="identity")
    p = layer.output_parameters()[0]
    p.mask = np.array([1, 0, 1, 1.0])
    x = np.random.default_rng(4).standard_normal((3, 3))
    y = layer.forward(x)
    manual = p.data[0] + x[:, 1:] @ p.data[2:]
    np.testing.assert_allclose(y[:, 0], manual, **R64)


# ------------------------------------------------------------------ the algorithm
def test_output_training_alone_solves_separable_task():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((80, 3))
    margin = X @ [1.0, -2.0, 0.5] + 0.3
    X = X[np.abs(margin) > 0.5]
    y = np.where(margin[np.abs(margin) > 0.5] > 0, 0.5, -0.5)
    cc = CascadeCorrelation(max_hidden_units=0, random_state=0, max_output_epochs=2000)
    model = cc.fit(X, y)
    assert cc.history.status == "victory" and cc.history.hidden_units == 0
    assert np.all(np.sign(model.predict(X).ravel()) == np.sign(y))


def test_least_squares_outputs_reach_optimum_in_one_epoch():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((30, 2))
    y = X @ [0.7, -1.2] + 0.4 + 0.05 * rng.standard_normal(30)
    cc = CascadeCorrelation(output_activation="identity", output_optimizer="least_squares",
                            max_hidden_units=0, random_state=0)
    model = cc.fit(X, y)
    A = np.column_stack([np.ones(30), X])
    best = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(model.layers[0].output_weights()[0], best, **R64)
    assert cc.history["output_epochs"] == [1]


def test_xor_grows_and_solves():
    X, y = xor(targets="pm_half")
    units = []
    for seed in range(6):
        cc = CascadeCorrelation(random_state=seed)
        model = cc.fit(X, y)
        assert cc.history.status == "victory"
        assert np.all(np.abs(model.predict(X).ravel() - y) <= 0.35)
        units.append(cc.history.hidden_units)
    assert max(units) <= 3 and np.median(units) <= 1


def test_parity3_history_and_new_output_weights():
    X, y = parity(3, targets="pm_half")
    cc = CascadeCorrelation(random_state=0)
    model = cc.fit(X, y)
    h = cc.history
    assert h.status == "victory" and 1 <= h.hidden_units <= 3
    assert h.epochs == sum(h["output_epochs"]) + sum(e or 0 for e in h["candidate_epochs"])
    for rec in h.units[1:]:
        assert rec["candidate_epochs"] >= 1 and rec["correlation"] > 0 and "error" in rec
    layer = model.layers[0]
    assert [p.size for p in layer.hidden_parameters()] == [4 + j for j in
                                                           range(layer.n_hidden)]
    # D-62: the unit's new output weights are −C_k/Z
    rng = np.random.default_rng(0)
    A = np.column_stack([np.ones(8), X])
    E = rng.standard_normal((8, 1))
    cand = train_candidates(A, E, rng, kinds=pool_kinds(4, ["tanh"], [1.0]), max_epochs=5)
    np.testing.assert_allclose(cc._new_output_weights(cand), -cand["C"] / (E * E).sum())


def test_registered_optimizers_for_both_phases():
    X, y = parity(3, targets="pm_half")
    cc = CascadeCorrelation(output_optimizer="rprop", candidate_optimizer="rprop",
                            random_state=0, max_hidden_units=6)
    model = cc.fit(X, y)
    assert cc.history.status == "victory"
    assert np.all(np.abs(model.predict(X).ravel() - y) <= 0.35)


def test_regression_and_softmax_outputs():
    x = np.linspace(-3, 3, 40)[:, None]
    y = np.sin(x).ravel()
    cc = CascadeCorrelation(output_activation="identity", output_optimizer="least_squares",
                            candidate_activations=["tanh", "gaussian"], score_threshold=None,
                            target_loss=1e-3, max_hidden_units=12, random_state=0)
    model = cc.fit(x, y)
    assert cc.history.status == "victory"
    assert 0.5 * np.mean((model.predict(x).ravel() - y) ** 2) <= 1e-3
    rng = np.random.default_rng(7)
    X = rng.standard_normal((45, 2))
    labels = (np.arctan2(X[:, 1], X[:, 0]) // (2 * np.pi / 3)).astype(int) % 3
    cc = CascadeCorrelation(output_activation="softmax", loss="cross_entropy",
                            max_hidden_units=8, random_state=0, max_output_epochs=300)
    model = cc.fit(X, labels)
    assert model.predict(X).shape == (45, 3)
    assert np.mean(model.predict_classes(X) == labels) >= 0.9


def test_determinism_under_seed():
    X, y = parity(3, targets="pm_half")
    kw = dict(candidate_activations=["sigmoid_symmetric", "gaussian"], n_candidates=6)
    a = CascadeCorrelation(random_state=3, **kw)
    b = CascadeCorrelation(random_state=3, **kw)
    ma, mb = a.fit(X, y), b.fit(X, y)
    np.testing.assert_array_equal(ma.get_flat_parameters(), mb.get_flat_parameters())
    assert a.history["error"] == b.history["error"]
    c = CascadeCorrelation(random_state=4, **kw)
    c.fit(X, y)
    assert c.history["error"] != a.history["error"]


def test_float32_run():
    X, y = parity(3, targets="pm_half")
    cc = CascadeCorrelation.from_preset("fast", random_state=0, dtype="float32")
    model = cc.fit(X, y)
    assert model.dtype == np.float32 and model.predict(X).dtype == np.float32
    assert cc.history.status == "victory"
    assert np.all(np.abs(model.predict(X).ravel() - y) <= 0.35 + 1e-6)


def test_two_spirals_wiring_tv_cc_02():
    X, y = two_spirals(targets="pm_half")
    assert X.shape == (194, 2)
    np.testing.assert_allclose(X[2], [1.255893948, 6.3138052426], rtol=1e-9)
    assert y[0] == 0.5 and y[1] == -0.5
    cc = CascadeCorrelation(max_hidden_units=2, random_state=0, max_candidate_epochs=20,
                            max_output_epochs=20)
    model = cc.fit(X, y)
    layer = model.layers[0]
    assert layer.n_hidden == 2 and layer.hidden_activations(X).shape == (194, 5)
    assert cc.history.status == "max_units" and len(cc.history) == 3


def test_validation_restores_best_and_callback_stops():
    X, y = parity(4, targets="pm_half")
    cc = CascadeCorrelation(random_state=0, validation_patience=1, max_hidden_units=6,
                            score_threshold=None)
    model = cc.fit(X, y, validation_data=(X[::-1].copy(), -y[::-1]))
    vals = cc.history["val_loss"]
    best = int(np.argmin(vals))
    assert cc.history.status in ("validation", "max_units")
    assert model.layers[0].n_hidden == cc.history["hidden_units"][best]
    cc = CascadeCorrelation(random_state=0, score_threshold=None, max_hidden_units=10)
    cc.fit(X, y, callback=lambda rec: rec["hidden_units"] >= 2)
    assert cc.history.status == "stopped" and cc.history.hidden_units == 2


def test_config_and_file_round_trip(tmp_path):
    X, y = parity(3, targets="pm_half")
    model = CascadeCorrelation(random_state=1, candidate_activations=["tanh", "sin"],
                               candidate_steepnesses=[1.0, 2.0]).fit(X, y)
    clone = Sequential.from_config(model.get_config())
    for p, q in zip(model.parameters(), clone.parameters()):
        assert p.name == q.name and p.shape == q.shape and p.trainable == q.trainable
        q.data[...] = p.data
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    from corenet import io

    io.save_model(model, tmp_path / "cc.npz")
    loaded = io.load_model(tmp_path / "cc.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert "cascade" in loaded.summary()


def test_trainer_driven_growth_keeps_hidden_weights_frozen():
    X, y = parity(3, targets="pm_half")
    model = Sequential([Cascade(outputs=1)], random_state=0)
    model.compile(loss="sse", optimizer={"name": "sgd", "lr": 0.5})
    grower = registry.create("grower", {"name": "cascade_correlation", "random_state": 0,
                                        "max_hidden_units": 4, "output_patience": 20})
    snapshots = []

    class Watch:
        from corenet.plugins import hookimpl

        @hookimpl
        def corenet_on_epoch_end(self, trainer, epoch, logs):
            snapshots.append([p.data.copy() for p in
                              trainer.model.layers[0].hidden_parameters()])

    model.fit(X, y, epochs=3000, batch_size=8, shuffle=False, callbacks=[grower, Watch()])
    layer = model.layers[0]
    assert grower.history.status == "victory" and layer.n_hidden >= 1
    assert np.all(np.abs(model.predict(X).ravel() - y) <= 0.35)
    final = [p.data for p in layer.hidden_parameters()]
    for snap in snapshots:
        for a, b in zip(snap, final):
            np.testing.assert_array_equal(a, b)


def test_bad_input_errors():
    X, y = xor(targets="pm_half")
    cc = CascadeCorrelation(random_state=0)
    with pytest.raises(ShapeError, match=r"y must have shape \(4,\)"):
        cc.fit(X, y[:3])
    with pytest.raises(ShapeError):
        cc.fit(X, y.reshape(2, 2, 1))
    with pytest.raises(DTypeError):
        cc.fit(X.astype(int), y)
    with pytest.raises(HyperparameterError, match="pool size"):
        CascadeCorrelation(n_candidates=0)
    with pytest.raises(HyperparameterError, match="epoch limit"):
        CascadeCorrelation(candidate_patience=0, max_candidate_epochs=None)
    with pytest.raises(HyperparameterError):
        CascadeCorrelation(output_change_threshold=-0.1)
    with pytest.raises(HyperparameterError, match="least_squares"):
        CascadeCorrelation(output_optimizer="least_squares")
    with pytest.raises(PluginError):
        CascadeCorrelation(candidate_activations=["no_such_unit"])
    with pytest.raises(HyperparameterError):
        Cascade(outputs=0)
    with pytest.raises(HyperparameterError):
        OutputPhase("identity", optimizer="least_squares", loss="cross_entropy")


def test_grow_cli(tmp_path, capsys):
    import argparse
    import json

    from corenet.grow_cli import add_grow_parser

    parser = argparse.ArgumentParser()
    add_grow_parser(parser.add_subparsers())
    path = tmp_path / "xor.npz"
    args = parser.parse_args(["grow", "--dataset", "xor", "--json", "--save", str(path)])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "victory" and out["correct"] == 4 and path.exists()
    args = parser.parse_args(["grow", "--dataset", "parity", "--bits", "3", "--preset",
                              "spec", "--candidates", "4", "--activations", "tanh,gaussian"])
    assert args.func(args) == 0
    assert "8/8 training points" in capsys.readouterr().out
    with pytest.raises(HyperparameterError, match="preset"):
        CascadeCorrelation.from_preset("nope")
