"""Regularizers (regularization.md §1-4, §8; D-42, D-44, D-52, D-54, D-56; TV-REG-01..04, 09):
penalty values and gradients against central differences, spec vectors, registry lookup,
config round trips, hyperparameter errors, and the hook-acting ones inside the trainer."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from corenet import Sequential, curvature, registry
from corenet import testing as ct
from corenet.errors import HyperparameterError
from corenet.layers.core import Dense
from corenet.parameter import Parameter
from corenet.regularizers import (L1, L2, DecoupledL2, FlatMinimumSearch, GradientNormalized,
                                  LogPenalty, MaxNorm, ProximalL1, SoftWeightSharing,
                                  WeightElimination, WeightNoise, fms_terms,
                                  fms_value_and_grad, mixture_terms, soft_threshold)

NAMES = ["l2", "l1", "log_penalty", "weight_elimination", "gradient_normalized", "max_norm",
         "weight_noise", "soft_weight_sharing", "flat_minimum_search"]
TV = dict(rtol=1e-9, atol=1e-10)


def num_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def rel_err(a, n):
    return np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n)))


def params(rng, dtype=np.float64):
    ps = [Parameter((rng.uniform(0.1, 1.0, (3, 4)) * rng.choice([-1, 1], (3, 4))).astype(dtype),
                    "weight"),
          Parameter(rng.uniform(0.1, 1.0, 3).astype(dtype), "bias"),
          Parameter(rng.uniform(-1, 1, (2, 5)).astype(dtype), "weight")]
    for i, p in enumerate(ps):
        p.name = f"{i}.{p.role}"
    return ps


def tv_net():
    m = Sequential([Dense(2, 2, activation="tanh"), Dense(1, 2)], input_shape=(2,))
    m.set_flat_parameters(np.array([0.1, -0.2, 0.4, 0.3, 0.05, -0.1, 0.7, -0.5, 0.2]))
    return m


def fake_trainer(ps, lr):
    opt = registry.create("optimizer", {"name": "sgd", "lr": lr})
    opt.bind(ps)
    return SimpleNamespace(optimizer=opt, model=None), opt


# ----------------------------------------------------------------------------- registry
def test_registry_and_contracts():
    assert set(NAMES) <= set(registry.names("regularizer"))
    for name in NAMES:
        ct.check_registered("regularizer", name)
    assert isinstance(registry.create("regularizer", {"name": "l2", "decoupled": True}),
                      DecoupledL2)
    assert isinstance(registry.create("regularizer", ("l1", {"mode": "proximal"})), ProximalL1)


@pytest.mark.parametrize("reg", [
    L2(0.3), L2(0.2, decoupled=True), L1(0.1, mode="proximal"), L1({"0": 0.5}, params="all"),
    LogPenalty(0.1, form="vector", scale=2.0), WeightElimination(0.4, w0=0.5),
    GradientNormalized("log_penalty", lam=0.2), MaxNorm(2.0, params=["0"]),
    WeightNoise(0.05, "multiplicative", random_state=3), FlatMinimumSearch(0.01, c0=1e-9),
    SoftWeightSharing(2, 0.1, fix_zero_component=False, means=[0.0, 1.0],
                      log_sigmas=[-1.0, -2.0], logits=[0.5, -0.5])])
def test_config_round_trip(reg):
    cfg = json.loads(json.dumps(reg.get_config()))
    again = registry.create("regularizer", {"name": reg.name, **cfg})
    assert type(again) is type(reg)
    assert again.get_config() == reg.get_config()
    ps = params(np.random.default_rng(0))
    assert again.penalty(ps) == pytest.approx(reg.penalty(ps), rel=1e-12, abs=0)


@pytest.mark.parametrize("name, kwargs", [
    ("l2", {"lam": -1}), ("l2", {"lam": float("nan")}), ("l2", {"lam": {"0": -1}}),
    ("l2", {"params": 3}), ("l1", {"mode": "prox"}), ("log_penalty", {"form": "matrix"}),
    ("log_penalty", {"scale": 0}), ("weight_elimination", {"w0": -0.2}),
    ("gradient_normalized", {"regularizer": "max_norm"}),
    ("gradient_normalized", {"lam": {"0": 1.0}}), ("max_norm", {"max_value": 0}),
    ("weight_noise", {"stddev": -0.1}), ("weight_noise", {"mode": "both"}),
    ("weight_noise", {"random_state": "a"}), ("soft_weight_sharing", {"n_components": 0}),
    ("soft_weight_sharing", {"mixture_lr_scale": -1}),
    ("soft_weight_sharing", {"means": [0, 1, 2]}),
    ("soft_weight_sharing", {"n_components": 2, "means": [0.5, 1], "log_sigmas": [0, 0],
                             "logits": [0, 0]}),
    ("flat_minimum_search", {"c0": -1}), ("flat_minimum_search", {"method": "exact"})])
def test_bad_hyperparameters(name, kwargs):
    with pytest.raises(HyperparameterError, match=name):
        registry.create("regularizer", {"name": name, **kwargs})


# ----------------------------------------------------------------------------- penalties
@pytest.mark.parametrize("reg", [
    L2(0.3), L1(0.2), LogPenalty(0.5), LogPenalty(0.5, form="vector", scale=0.7),
    WeightElimination(0.3), WeightElimination(0.3, w0=1.5, include_bias=True),
    L2({"0": 0.5, "1": 2.0}, params="all"), L1(0.4, params=["2"]),
    LogPenalty(0.2, params=lambda layer, role: role == "bias"),
    SoftWeightSharing(3, 0.2, include_bias=True)])
def test_penalty_gradient_central_differences(reg):
    ps = params(np.random.default_rng(1))
    reg.penalty(ps)
    for p in ps:
        p.grad.fill(0.0)
    reg.add_grad(ps)
    for p in ps:
        n = num_grad(lambda: reg.penalty(ps), p.data)
        assert rel_err(p.grad, n) <= 1e-6, (reg, p.name)


def test_selection_and_per_layer_lam():
    ps = params(np.random.default_rng(2))
    assert [L2().applies_to(p) for p in ps] == [True, False, True]         # D-42
    assert [L2(include_bias=True).applies_to(p) for p in ps] == [True, True, True]
    assert [L2(params=["2"]).applies_to(p) for p in ps] == [False, False, True]
    r = L2({"0": 2.0})
    assert r.penalty(ps) == pytest.approx(2.0 * 0.5 * np.sum(ps[0].data ** 2), rel=1e-14)
    ps[2].trainable = False
    assert not L2(params="all").applies_to(ps[2])


def test_tv_reg_01_l2_minimiser_and_pure_decay():
    H, w0 = np.diag([2.0, 0.5]), np.array([1.0, 1.0])
    w = Parameter(np.zeros(2), "weight")
    reg = registry.create("regularizer", {"name": "l2", "lam": 0.5})
    for _ in range(2000):
        w.grad[...] = H @ (w.data - w0)
        reg.add_grad([w])
        w.data -= 0.5 * w.grad
    np.testing.assert_allclose(w.data, [0.8, 0.5], **TV)
    # pure decay, η = 0.1, λ = 0.5, 10 steps: coupled (sgd) and decoupled (hook) agree
    factor = 0.5987369392383787
    for reg in (L2(0.5), L2(0.5, decoupled=True)):
        p = Parameter(np.array([1.0, -2.0]), "weight")
        trainer, opt = fake_trainer([p], 0.1)
        for _ in range(10):
            p.grad.fill(0.0)
            reg.add_grad([p])
            if isinstance(reg, DecoupledL2):
                reg.corenet_on_before_step(trainer=trainer, optimizer=opt)
            opt.step()
        np.testing.assert_allclose(p.data, [factor, -2 * factor], **TV)


def test_tv_reg_02_weight_elimination():
    r = WeightElimination(1.0, w0=0.2)
    w = np.array([0.0, 0.1, 0.2, 1.0])
    np.testing.assert_allclose([r.penalty_of(np.array([v])) for v in w],
                               [0.0, 0.2, 0.5, 0.9615384615], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(r.grad_of(w), [0.0, 3.2, 2.5, 0.0739644970], rtol=1e-9,
                               atol=1e-10)
    x = np.array([0.05, -0.3, 0.7])
    h = np.array([(r.grad_of(x + e) - r.grad_of(x - e))[i] / 2e-6
                  for i, e in enumerate(np.eye(3) * 1e-6)])
    assert rel_err(r.hess_diag_of(x), h) <= 1e-6


def test_tv_reg_03_l1_proximal():
    w = np.array([0.3, -0.05, 0.0, -0.5])
    np.testing.assert_allclose(soft_threshold(w, 0.1), [0.2, 0.0, 0.0, -0.4], **TV)
    p = Parameter(w.copy(), "weight")
    reg = L1(0.5, mode="proximal")
    trainer, opt = fake_trainer([p], 0.2)                   # lr·λ = 0.1, zero gradient
    reg.add_grad([p])
    assert not p.grad.any()
    opt.step()
    reg.corenet_on_after_step(trainer=trainer, optimizer=opt)
    np.testing.assert_allclose(p.data, [0.2, 0.0, 0.0, -0.4], **TV)
    assert reg.penalty([p]) == pytest.approx(0.5 * 0.6, rel=1e-14)
    assert L1(1.0).grad_of(np.array([0.0]))[0] == 0.0        # D-04


def test_log_penalty_forms():
    w = np.array([3.0, 4.0])
    assert LogPenalty(1.0).penalty_of(w) == pytest.approx(np.log(10) + np.log(17), rel=1e-14)
    v = LogPenalty(1.0, form="vector", scale=2.0)
    assert v.penalty_of(w) == pytest.approx(np.log(1 + 25 / 4), rel=1e-14)
    np.testing.assert_allclose(v.grad_of(w), 2 * w / (4 + 25), rtol=1e-14)


def test_gradient_normalized():
    ps = params(np.random.default_rng(3))
    rng = np.random.default_rng(4)
    for p in ps:
        p.grad[...] = rng.normal(size=p.shape)
    data_grad = [p.grad.copy() for p in ps]
    r = GradientNormalized("weight_elimination", lam=0.3)
    r.add_grad(ps)
    sel = [0, 2]
    gl = np.sqrt(sum(np.sum(data_grad[i] ** 2) for i in sel))
    go = [WeightElimination().grad_of(ps[i].data) for i in sel]
    no = np.sqrt(sum(np.sum(g ** 2) for g in go))
    for i, g in zip(sel, go):
        np.testing.assert_allclose(ps[i].grad, data_grad[i] + 0.3 * gl * g / no, rtol=1e-13)
    np.testing.assert_array_equal(ps[1].grad, data_grad[1])
    assert r.penalty(ps) == pytest.approx(
        0.3 * gl / no * sum(WeightElimination().penalty_of(ps[i].data) for i in sel))
    zero = [Parameter(np.zeros((2, 2)), "weight")]
    r.add_grad(zero)                                         # ‖∇Ω‖ = 0: no contribution
    assert not zero[0].grad.any() and r.penalty(zero) == 0.0


def test_float32_matches_float64():
    for reg in (L2(0.3), L1(0.2), LogPenalty(0.5), WeightElimination(0.3),
                SoftWeightSharing(3, 0.2, means=[0, 0.5, -0.5], log_sigmas=[-1, -1, -1],
                                  logits=[0, 0, 0])):
        p64, p32 = params(np.random.default_rng(5)), params(np.random.default_rng(5), np.float32)
        reg.add_grad(p64)
        reg.add_grad(p32)
        for a, b in zip(p32, p64):
            assert a.grad.dtype == np.float32
            np.testing.assert_allclose(a.grad, b.grad, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- constraints
def test_max_norm():
    rng = np.random.default_rng(6)
    W = Parameter(rng.normal(size=(4, 3)) * np.array([[0.1], [5.0], [1.0], [10.0]]), "weight")
    conv = Parameter(rng.normal(size=(2, 3, 2, 2)) * 4, "weight")
    b = Parameter(np.array([5.0, -0.5, -7.0]), "bias")
    W.mask = np.array([[1, 1, 0]] * 4)
    before = W.data.copy()
    MaxNorm(3.0, include_bias=True).apply([W, conv, b])
    norms = np.linalg.norm(W.data, axis=1)
    assert np.all(norms <= 3.0 + 1e-12)
    big = np.linalg.norm(before, axis=1) > 3.0
    np.testing.assert_allclose(norms[big], 3.0, rtol=1e-14)
    np.testing.assert_array_equal(W.data[~big], before[~big])
    np.testing.assert_allclose(W.data[big], before[big] * (3.0 / np.linalg.norm(
        before[big], axis=1))[:, None], rtol=1e-14)
    assert not W.data[:, 2].any()
    assert np.all(np.linalg.norm(conv.data.reshape(2, -1), axis=1) <= 3.0 + 1e-12)
    np.testing.assert_allclose(b.data, [3.0, -0.5, -3.0], rtol=1e-14)
    assert MaxNorm().penalty([W]) == 0.0


def linear_problem(n=16, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(dtype)
    y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1).astype(dtype)
    return X, y


def linear_model(dtype=np.float64, seed=1, **compile_kw):
    m = Sequential([Dense(1, 3)], input_shape=(3,), dtype=dtype, random_state=seed)
    m.compile(**{"loss": "mse", "optimizer": {"name": "sgd", "lr": 0.1}, **compile_kw})
    return m


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_weight_noise_gradient_at_noisy_weights_update_on_clean(mode):
    X, y = linear_problem()
    reg = WeightNoise(0.3, mode=mode, random_state=11)
    m = linear_model(regularizers=[reg])
    W0 = m.layers[0].W.data.copy()
    b0 = m.layers[0].b.data.copy()
    eps = 0.3 * np.random.default_rng(11).standard_normal(W0.shape)
    noisy = W0 + eps if mode == "additive" else W0 * (1 + eps)
    ref = linear_model()
    ref.layers[0].W.data[...] = noisy
    ref.layers[0].b.data[...] = b0
    _, g = curvature.loss_gradient(ref, "mse", X, y)
    m.fit(X, y, epochs=1, batch_size=len(X), callbacks=[reg], shuffle=False)
    np.testing.assert_allclose(m.layers[0].W.data, W0 - 0.1 * g[:3].reshape(1, 3),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m.layers[0].b.data, b0 - 0.1 * g[3:], rtol=1e-12, atol=1e-14)
    assert reg._saved == []                                  # eval sees the clean weights
    np.testing.assert_allclose(m.predict(X), X @ m.layers[0].W.data.T + m.layers[0].b.data,
                               rtol=1e-13)


def test_weight_noise_keeps_masks_and_refuses_data_solvers():
    p = Parameter(np.ones((2, 3)), "weight")
    p.mask = np.array([[1, 0, 1], [1, 1, 0]])
    reg = WeightNoise(0.5)
    reg.perturb([p], np.random.default_rng(0))
    assert np.all(p.data[p.mask == 0] == 0) and np.any(p.data[p.mask == 1] != 1)
    reg.restore()
    np.testing.assert_array_equal(p.data, p.mask)
    trainer = SimpleNamespace(optimizer=SimpleNamespace(needs_data=True, name="irls"))
    with pytest.raises(HyperparameterError, match="weight_noise"):
        reg.corenet_on_train_begin(trainer=trainer)


def test_decoupled_l2_equals_optimizer_decoupled_decay():
    X, y = linear_problem(32)
    reg = L2(0.05, decoupled=True)
    a = linear_model(optimizer={"name": "adam", "lr": 0.01}, regularizers=[reg])
    b = linear_model(optimizer={"name": "adam", "lr": 0.01, "decoupled_weight_decay": 0.05})
    a.fit(X, y, epochs=3, batch_size=8, random_state=0, callbacks=[reg])
    b.fit(X, y, epochs=3, batch_size=8, random_state=0, fast_path=False)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


# ----------------------------------------------------------------------------- soft sharing
def test_tv_reg_04_soft_weight_sharing():
    w = np.array([0.05, 0.9, -0.1])
    mu, s, g = np.array([0.0, 1.0]), np.log([0.1, 0.2]), np.zeros(2)
    omega, r, dw, dmu, ds, dg = mixture_terms(w, mu, s, g)
    assert omega == pytest.approx(-0.6283583225062924, rel=1e-9, abs=1e-10)
    np.testing.assert_allclose(r, [[0.9999928572, 7.1428e-06], [0.0, 1.0],
                                   [0.9999997775, 2.225e-07]], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dw, [4.9997946442, -2.5, -10.0000038945], **TV)
    np.testing.assert_allclose(dmu, [5.0000334886, 2.5001757617], **TV)
    np.testing.assert_allclose(ds, [0.7499946429, 0.7498394738], **TV)
    np.testing.assert_allclose(dg, [-0.4999926346, 0.4999926346], **TV)
    # every gradient against central differences (at a point where all terms matter)
    w, mu, s, g = np.array([0.3, -0.2, 0.8, 0.05]), np.array([0.1, 0.6]), \
        np.array([-1.0, -0.5]), np.array([0.3, -0.2])
    grads = mixture_terms(w, mu, s, g)[2:]
    for arr, analytic in zip((w, mu, s, g), grads):
        n = num_grad(lambda: mixture_terms(w, mu, s, g)[0], arr)
        assert rel_err(analytic, n) <= 1e-6


def test_soft_weight_sharing_initialisation_and_mixture_gradients():
    ps = params(np.random.default_rng(7))
    reg = SoftWeightSharing(3, lam=0.5)
    reg.add_grad(ps)
    w = np.concatenate([ps[0].data.ravel(), ps[2].data.ravel()])
    np.testing.assert_allclose(reg.mu.data, [0.0, *np.quantile(w, [0.5, 5 / 6])], rtol=1e-14)
    np.testing.assert_allclose(np.exp(reg.log_sigma.data), np.std(w), rtol=1e-14)
    np.testing.assert_array_equal(reg.gamma.data, 0.0)
    _, _, _, dmu, ds, dg = mixture_terms(w, reg.mu.data, reg.log_sigma.data, reg.gamma.data)
    np.testing.assert_allclose(reg.mu.grad, 0.5 * dmu * [0, 1, 1], rtol=1e-12)
    np.testing.assert_allclose(reg.log_sigma.grad, 0.5 * ds, rtol=1e-12)
    np.testing.assert_allclose(reg.gamma.grad, 0.5 * dg, rtol=1e-12, atol=1e-14)


def test_soft_weight_sharing_learns_mixture_in_training():
    X, y = linear_problem(32)
    reg = SoftWeightSharing(2, lam=0.01)
    m = linear_model(regularizers=[reg])
    m.fit(X, y, epochs=2, batch_size=8, callbacks=[reg], random_state=0)
    assert reg.mu.data[0] == 0.0
    init = SoftWeightSharing(2, lam=0.01)
    init.initialize(linear_model().parameters())
    assert not np.allclose(reg.log_sigma.data, init.log_sigma.data)
    assert "objective" in m.history.epochs[-1]


# ----------------------------------------------------------------------------- FMS
def test_tv_reg_09_flat_minimum_search():
    B, U = fms_terms(np.array([[0.5, -2.0, 1.0]]), 0.0)
    assert B == pytest.approx(6.591673732008658, rel=1e-12)
    # linear model a = w·x + b: all output Hessians vanish, ∇B = 0
    lin = Sequential([Dense(1, 2)], input_shape=(2,))
    lin.set_flat_parameters(np.array([0.3, -0.7, 0.1]))
    v, g = fms_value_and_grad(lin, np.array([[0.5, -2.0]]), c0=0.0)
    assert v == pytest.approx(3 * np.log(9), rel=1e-12)
    np.testing.assert_allclose(g, 0.0, atol=1e-12)
    m = tv_net()
    x = np.array([[0.5, -1.0]])
    expected = [1.3935501428, -2.7871002874, -3.6848623228, 7.3697246421, 2.7871002874,
                -7.3697246421, 8.5714285731, -12.0, 0.0]
    for method in ("rop", "finite_difference"):
        v, g = fms_value_and_grad(m, x, c0=0.0, method=method)
        assert v == pytest.approx(23.99600181598656, rel=1e-9, abs=1e-10)
        np.testing.assert_allclose(g, expected, rtol=1e-9 if method == "rop" else 1e-6,
                                   atol=1e-9 if method == "rop" else 1e-6)


def test_fms_gradient_central_differences_batch_mean():
    m = Sequential([Dense(3, 2, activation="tanh"), Dense(2, 3, activation="sigmoid")],
                   input_shape=(2,), random_state=4)
    X = np.random.default_rng(8).normal(size=(3, 2))
    theta = m.get_flat_parameters()
    v, g = fms_value_and_grad(m, X)
    assert v == pytest.approx(np.mean([fms_value_and_grad(m, X[i:i + 1])[0] for i in range(3)]))

    def f():
        m.set_flat_parameters(theta)
        return fms_value_and_grad(m, X)[0]
    n = num_grad(f, theta)
    m.set_flat_parameters(theta)
    assert rel_err(g, n) <= 1e-6
    sel = FlatMinimumSearch(params="weights", include_bias=False)
    vw, _ = sel.value_and_grad(m, X)
    assert vw != pytest.approx(v)


def test_fms_in_training_adds_lambda_gradient():
    X, y = linear_problem(8)
    X = X[:, :2].copy()
    reg = FlatMinimumSearch(lam=0.1)
    m = Sequential([Dense(3, 2, activation="tanh"), Dense(1, 3)], input_shape=(2,),
                   random_state=2)
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.05}, regularizers=[reg])
    theta = m.get_flat_parameters()
    _, g_loss = curvature.loss_gradient(m, "mse", X, y)
    _, g_fms = fms_value_and_grad(m, X)
    m.train()
    m.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, callbacks=[reg])
    np.testing.assert_allclose(m.get_flat_parameters(), theta - 0.05 * (g_loss + 0.1 * g_fms),
                               rtol=1e-10, atol=1e-12)
    assert reg.penalty(m.parameters()) == pytest.approx(0.1 * reg.last_value)
    assert FlatMinimumSearch().penalty(m.parameters()) == 0.0


# ----------------------------------------------------------------------------- sharing
def test_tied_weights_regularized_once():
    """§4.1-4.2 (tied_dense, owned by corenet.layers.special): the shared weight appears
    once in the parameter list, so a penalty counts it once and its gradient is the sum."""
    TiedDense = registry.get("layer", "tied_dense")
    enc = Dense(2, 4, activation="tanh")
    m = Sequential([enc, TiedDense(enc)], input_shape=(4,), random_state=0)
    X = np.random.default_rng(9).normal(size=(5, 4))
    m.build((4,))
    reg = L2(0.7)
    W = enc.W
    assert sum(p is W for p in m.parameters()) == 1
    assert reg.penalty(m.parameters()) == pytest.approx(0.35 * np.sum(W.data ** 2))
    _, g = curvature.loss_gradient(m, "mse", X, X)
    theta = m.get_flat_parameters()

    def f():
        m.set_flat_parameters(theta)
        return curvature.loss_gradient(m, "mse", X, X)[0]
    assert rel_err(g, num_grad(f, theta)) <= 1e-6


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rprop"])
def test_all_regularizers_together_in_training(optimizer):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(16, 3))
    y = X[:, :1] * 2.0
    regs = [GradientNormalized("l2", lam=0.01), SoftWeightSharing(2, 0.01),
            L1(0.01, mode="proximal"), MaxNorm(0.5), WeightNoise(0.01),
            L2(0.01, decoupled=True), FlatMinimumSearch(1e-3), LogPenalty(1e-3)]
    m = Sequential([Dense(4, 3, activation="tanh"), Dense(1, 4)], input_shape=(3,),
                   random_state=0)
    m.compile(loss="mse", optimizer=optimizer, regularizers=regs)
    h = m.fit(X, y, epochs=2, batch_size=8, callbacks=regs)
    assert np.isfinite(h["objective"]).all() and len(h) == 2
    for layer in m.layers:
        assert np.linalg.norm(layer.W.data, axis=1).max() <= 0.5 + 1e-12
    assert regs[1].mu.data[0] == 0.0 and regs[6].last_value is not None
