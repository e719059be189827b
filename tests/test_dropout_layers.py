"""Dropout family and noise layers (regularization.md §3.1, §5; D-36, D-64): contracts,
TV-REG-05/06, mask statistics, train/eval behaviour, Monte-Carlo dropout.

Monte-Carlo tolerances: a Bernoulli(p) rate estimated from n draws has standard error
sqrt(p(1-p)/n); the tests allow 5 standard errors (fixed seeds, so they are
deterministic; 5σ makes them robust to a change of seed)."""
import numpy as np
import pytest

from corenet.testing import check_linear_second_order
import corenet.testing as ct
from corenet import Sequential
from corenet.errors import HyperparameterError, ShapeError
from corenet.layers.core import Dense
from corenet.layers.dropout import (ALPHA_PRIME, AlphaDropout, Dropout, Dropout2d,
                                    GaussianNoise, predict_mc)

NAMES = ["dropout", "dropout2d", "alpha_dropout", "gaussian_noise"]


class FixedUniform:
    """A stand-in generator whose ``random`` always returns the same values (a fixed mask)."""

    def __init__(self, u):
        self.u = np.asarray(u, dtype=np.float64)

    def random(self, shape):
        return np.broadcast_to(self.u, shape).copy()


def built(layer, shape, dtype=np.float64, seed=0):
    layer.build(shape, dtype, np.random.default_rng(seed))
    return layer


@pytest.mark.parametrize("name", NAMES)
def test_layer_contract(name):
    ct.check_registered("layer", name)


# ----------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tv_reg_05(dtype):
    x = np.array([[1.0, 2, 3, 4]], dtype)
    layer = built(Dropout(0.25), (4,), dtype)
    layer.rng = FixedUniform([0.5, 0.1, 0.9, 0.3])         # keep iff u >= rate: [1, 0, 1, 1]
    y = layer.forward(x)
    tol = dict(rtol=1e-9, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, [[1.3333333333, 0, 4, 5.3333333333]], **tol)
    np.testing.assert_array_equal(layer.mask, [[1, 0, 1, 1]])
    np.testing.assert_allclose(layer.backward(np.ones_like(x)),
                               [[1.3333333333, 0, 1.3333333333, 1.3333333333]], **tol)
    ws = built(Dropout(0.25, mode="weight_scaling"), (4,), dtype).eval()
    np.testing.assert_allclose(ws.forward(x), 0.75 * x, **tol)
    np.testing.assert_allclose(ws.backward(np.ones_like(x)), np.full_like(x, 0.75), **tol)
    # Monte Carlo: the mean of inverted-dropout outputs over 10^5 masks is within 0.02 of x
    mc = built(Dropout(0.25), (4,), seed=5)
    mean = mc.forward(np.repeat(np.array([[1.0, 2, 3, 4]]), 100_000, axis=0)).mean(axis=0)
    np.testing.assert_allclose(mean, [1, 2, 3, 4], atol=0.02)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_mask_rate_and_fresh_per_sample_masks(rate):
    layer = built(Dropout(rate), (1000,), seed=1)
    x = np.ones((1000, 1000))
    layer.forward(x)
    m1 = layer.mask.copy()
    n = m1.size
    assert abs((m1 == 0).mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    assert not np.array_equal(m1[0], m1[1])                 # per-sample masks
    layer.forward(x)
    assert not np.array_equal(layer.mask, m1)               # fresh every forward pass
    shared = built(Dropout(rate, shared_mask=True), (1000,), seed=1)
    y = shared.forward(x)
    assert shared.mask.shape == (1, 1000)
    assert np.array_equal(y[0], y[-1])                      # one mask for the batch


def test_dropout_edge_rates_modes_and_eval_identity():
    x = np.array([[1.0, -np.inf, np.inf, 2.0]])
    zero = built(Dropout(1.0), (4,))
    np.testing.assert_array_equal(zero.forward(x), 0)       # no 0·inf NaN, no division
    np.testing.assert_array_equal(zero.backward(np.full((1, 4), np.inf)), 0)
    ident = built(Dropout(0.0), (4,))
    assert ident.forward(x) is x and ident.mask is None
    layer = built(Dropout(0.5), (4,)).eval()
    x = np.arange(4.0)[None]
    assert layer.forward(x) is x and layer.backward(x) is x
    ws = built(Dropout(0.4, mode="weight_scaling"), (4,))
    ws.rng = FixedUniform([0.5, 0.1, 0.9, 0.3])
    np.testing.assert_array_equal(ws.forward(x), [[0, 0, 2, 0]])   # no 1/q scaling
    np.testing.assert_array_equal(ws.backward(np.ones((1, 4))), [[1, 0, 1, 0]])


def test_train_mode_gradient_with_a_fixed_mask():
    rng = np.random.default_rng(3)
    for layer, shape in ((Dropout(0.3), (3, 4)), (Dropout2d(0.5), (2, 3, 5)),
                         (AlphaDropout(0.2), (6,))):
        layer = built(layer, shape)
        x = rng.standard_normal((2,) + shape)
        u = np.random.default_rng(4).random(layer._mask_shape(x.shape)
                                            if hasattr(layer, "_mask_shape") else x.shape)
        layer.rng = FixedUniform(u)
        w = rng.standard_normal(x.shape)
        layer.forward(x)
        dx = layer.backward(w)
        num = ct.numerical_gradient(lambda a: np.sum(w * layer.forward(a)), x.copy())
        assert ct.rel_error(dx, num).max() <= 1e-6


def test_dropped_units_get_zero_weight_gradients():
    """D-36: the incoming and outgoing weights of a dropped unit get no data gradient."""
    d1, d2 = Dense(6), Dense(2)
    drop = Dropout(0.5, shared_mask=True)
    model = Sequential([d1, drop, d2], random_state=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    model.forward(x)
    model.zero_grad()
    model.backward(np.ones((4, 2)))
    dropped = drop.mask[0] == 0
    assert dropped.any() and (~dropped).any()
    assert np.all(d1.W.grad[dropped] == 0) and np.all(d1.b.grad[dropped] == 0)
    assert np.all(d2.W.grad[:, dropped] == 0)
    assert np.all(d2.W.grad[:, ~dropped] != 0)


def test_masks_come_from_the_model_random_state():
    def run():
        model = Sequential([Dense(5), Dropout(0.5), GaussianNoise(0.3)], random_state=7)
        x = np.ones((3, 2))
        return model.forward(x), model.forward(x)

    (a1, a2), (b1, b2) = run(), run()
    assert np.array_equal(a1, b1) and np.array_equal(a2, b2) and not np.array_equal(a1, a2)


def test_dropout2d_drops_whole_channels():
    layer = built(Dropout2d(0.3), (400, 3, 4), seed=2)
    x = np.ones((50, 400, 3, 4))
    y = layer.forward(x)
    assert layer.mask.shape == (50, 400, 1, 1)
    assert np.all(y.min(axis=(2, 3)) == y.max(axis=(2, 3)))     # constant per (n, c)
    n = layer.mask.size
    assert abs((layer.mask == 0).mean() - 0.3) < 5 * np.sqrt(0.21 / n)
    np.testing.assert_allclose(np.unique(y), [0, 1 / 0.7])
    assert built(Dropout2d(0.5, shared_mask=True), (4, 7)).forward(np.ones((2, 4, 7))) \
        .std(axis=0).max() == 0
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        Dropout2d().forward(np.ones((2, 5)))


# ----------------------------------------------------------------------------- alpha-dropout
@pytest.mark.parametrize("rate,a,b", [(0.05, 0.9548444760050309, 0.08393557219381025),
                                      (0.10, 0.9212845161497115, 0.16197097005757016),
                                      (0.50, 0.886404894665932, 0.7791939305180317)])
def test_tv_reg_06_constants(rate, a, b):
    layer = AlphaDropout(rate)
    assert np.isclose(layer.a, a, rtol=1e-12) and np.isclose(layer.b, b, rtol=1e-12)


def test_tv_reg_06_values_and_statistics():
    assert AlphaDropout().rate == 0.05                                     # D-64
    assert np.isclose(ALPHA_PRIME, -1.7580993408473766, rtol=1e-15)
    layer = built(AlphaDropout(0.1), (3,))
    layer.rng = FixedUniform([0.5, 0.05, 0.7])                             # mask [1, 0, 1]
    x = np.array([[0.5, -1.0, 2.0]])
    np.testing.assert_allclose(layer.forward(x), [[0.6226132281, -1.4577387305, 2.0045400024]],
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)),
                               [[0.9212845161, 0, 0.9212845161]], rtol=1e-9)
    # 2·10^6 standard-normal inputs keep mean 0 and variance 1 within 5e-3
    big = built(AlphaDropout(0.1), (1000,), seed=3)
    y = big.forward(np.random.default_rng(4).standard_normal((2000, 1000)))
    assert abs(y.mean()) < 5e-3 and abs(y.var() - 1) < 5e-3
    x_eval = np.ones((1, 1000))
    assert big.eval().forward(x_eval) is x_eval                             # eval: identity


# ----------------------------------------------------------------------------- gaussian noise
def test_gaussian_noise_train_eval_and_gradients():
    x = np.full((1000, 1000), 2.0)
    add = built(GaussianNoise(0.1), (1000,), seed=1)
    y = add.forward(x)
    n = x.size
    assert abs((y - x).mean()) < 5 * 0.1 / np.sqrt(n)
    assert abs((y - x).std() / 0.1 - 1) < 5 * np.sqrt(0.5 / n)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    assert add.backward(dy) is dy                                           # dx = dy
    assert not np.array_equal(add.forward(x), y)                            # fresh noise
    mul = built(GaussianNoise(0.5, mode="multiplicative"), (1000,), seed=2)
    ym = mul.forward(x)
    factor = ym / x
    np.testing.assert_allclose(factor, 1 + 0.5 * mul.noise, rtol=1e-14)
    np.testing.assert_allclose(mul.backward(dy), dy * factor, rtol=1e-14)   # same ε
    for layer in (add, mul):
        layer.eval()
        assert layer.forward(x) is x and layer.backward(dy) is dy
    f32 = built(GaussianNoise(0.1), (5,), np.float32)
    assert f32.forward(np.ones((2, 5), np.float32)).dtype == np.float32


def test_hyperparameter_errors():
    for bad in (-0.1, 1.5, "half", float("nan")):
        with pytest.raises(HyperparameterError, match="rate"):
            Dropout(bad)
    with pytest.raises(HyperparameterError, match="mode"):
        Dropout(0.5, mode="keep")
    with pytest.raises(HyperparameterError, match="rate"):
        AlphaDropout(1.0)
    with pytest.raises(HyperparameterError, match="stddev"):
        GaussianNoise(-1.0)
    with pytest.raises(HyperparameterError, match="mode"):
        GaussianNoise(0.1, mode="salt")
    cfg = Dropout(0.2, mode="weight_scaling", shared_mask=True).get_config()
    assert cfg == {"rate": 0.2, "mode": "weight_scaling", "shared_mask": True,
                   "trainable": True}


# ----------------------------------------------------------------------------- predict_mc
def test_predict_mc():
    model = Sequential([Dense(8, activation="tanh"), Dropout(0.3), Dense(1),
                        GaussianNoise(1.0)], random_state=0)
    X = np.random.default_rng(1).standard_normal((5, 3))
    model.build((3,))
    drop = model.layers[1]
    state = drop.rng.bit_generator.state
    mean, var = predict_mc(model, X, T=4000, rng=0)
    assert mean.shape == (5, 1) and var.shape == (5, 1) and np.all(var > 0)
    assert model.training and drop.training and drop.rng.bit_generator.state == state
    mean2, var2 = predict_mc(model, X, T=4000, rng=0)                      # reproducible
    assert np.array_equal(mean, mean2) and np.array_equal(var, var2)
    # reference: the same passes done by hand (noise layer off, dropout on)
    ref_model = Sequential.from_config(model.get_config())
    ref_model.build((3,))
    ref_model.set_flat_parameters(model.get_flat_parameters())
    ref_model.eval()
    ref_drop = ref_model.layers[1].train(True)
    ref_drop.rng = np.random.default_rng(0).spawn(1)[0]
    outs = np.stack([ref_model.forward(X) for _ in range(4000)])
    np.testing.assert_allclose(mean, outs.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(var, outs.var(axis=0), rtol=1e-8, atol=1e-12)
    # without dropout layers the passes are identical (noise stays off in eval mode)
    plain = Sequential([Dense(2), GaussianNoise(1.0)], random_state=0)
    m, v = predict_mc(plain, X, T=5)
    np.testing.assert_allclose(m, plain.predict(X), rtol=1e-12)
    np.testing.assert_array_equal(v, 0)
    with pytest.raises(HyperparameterError, match="T"):
        predict_mc(model, X, T=0)


# ----------------------------------------------------------------------------- second order
class FixedNormal(FixedUniform):
    """Also a fixed ``standard_normal`` draw (for gaussian_noise)."""

    def standard_normal(self, shape, dtype=np.float64):
        return np.broadcast_to(self.u, shape).astype(dtype)


@pytest.mark.parametrize("make,shape,train", [
    (lambda: Dropout(0.4), (3, 2), True),
    (lambda: Dropout(0.4, mode="weight_scaling"), (4,), False),
    (lambda: Dropout2d(0.5), (3, 2), True), (lambda: AlphaDropout(0.2), (5,), True),
    (lambda: GaussianNoise(0.3, mode="multiplicative"), (4,), True),
    (lambda: GaussianNoise(0.3), (4,), True), (lambda: Dropout(0.5), (4,), False)])
def test_second_order_passes_with_a_fixed_mask(make, shape, train):
    layer = built(make(), shape)
    x = np.random.default_rng(7).standard_normal((2,) + shape)
    u = np.random.default_rng(8).random(getattr(layer, "_mask_shape", lambda s: s)(x.shape))
    layer.rng = FixedNormal(u)
    check_linear_second_order(layer.train(train), [x])
