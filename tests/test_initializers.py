"""Tests of corenet.initializers (spec initialization.md, TV-INIT-01 in test_vectors.md §12)."""
import math

import numpy as np
import pytest

from corenet import registry
from corenet.errors import HyperparameterError
from corenet.initializer import compute_fans
from corenet.initializers import (TRUNC2_STD_FACTOR, TRUNC2_VAR_FACTOR, Constant, GlorotNormal,
                                  GlorotUniform, HeNormal, HeUniform, LecunNormal,
                                  LecunUniform, Normal, Ones, Orthogonal, TargetMean,
                                  TruncatedNormal, Uniform, VarianceScaling, Zeros,
                                  empirical_gain, gain, gauss_moment, get_initializer,
                                  propagate_variance, recommended_initializer)

TV = dict(rtol=1e-9, atol=1e-10)
SHAPE = (1000, 1000)          # §10: statistical tests on a (1000, 1000) draw
FI, FO = 300, 100


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    from scipy.special import expit
    return expit(x)


SELU_A, SELU_L = 1.6732632423543772848, 1.0507009873554804934


def selu(x):
    return SELU_L * np.where(x > 0, x, SELU_A * np.expm1(np.minimum(x, 0.0)))


def check_moments(w, mean, var):
    """§10: sample variance within 2% of the target, mean within 4σ/1000 (n = 1e6)."""
    assert abs(w.var() / var - 1.0) < 0.02
    assert abs(w.mean() - mean) < 4.0 * math.sqrt(var) / 1000.0


# ------------------------------------------------------------------ TV-INIT-01
@pytest.mark.parametrize("cls, kind, value", [
    (GlorotUniform, "bound", 0.1224744871391589),
    (GlorotNormal, "std", 0.07071067811865475),
    (HeUniform, "bound", 0.1414213562373095),
    (HeNormal, "std", 0.08164965809277261),
    (LecunUniform, "bound", 0.1),
    (LecunNormal, "std", 0.05773502691896258),
])
def test_tv_init_01_named(cls, kind, value):
    init = cls()
    std = math.sqrt(init.variance(FI, FO))
    got = std * math.sqrt(3.0) if kind == "bound" else std
    np.testing.assert_allclose(got, value, **TV)
    w = init((2000, 500), FI, FO, rng=np.random.default_rng(1))
    if kind == "bound":
        assert np.abs(w).max() <= value and np.abs(w).max() > 0.99 * value
    check_moments(w, 0.0, std ** 2)


def test_tv_init_01_conv_fans():
    fan_in, fan_out = compute_fans((32, 64, 3, 3), "conv")
    assert (fan_in, fan_out) == (576, 288)
    np.testing.assert_allclose(math.sqrt(HeNormal().variance(fan_in, fan_out)),
                               0.05892556509887896, **TV)


def test_tv_init_01_truncation_factors():
    from scipy import stats
    np.testing.assert_allclose(stats.truncnorm(-2, 2).var(), TRUNC2_VAR_FACTOR, **TV)
    np.testing.assert_allclose(TRUNC2_STD_FACTOR ** 2, TRUNC2_VAR_FACTOR, **TV)
    np.testing.assert_allclose(1.0 / TRUNC2_STD_FACTOR, 1.1368472343385565, **TV)


def gh_moment(f, q, n=2, nodes=400):
    """Independent reference for smooth f: probabilists' Gauss-Hermite with many nodes."""
    from scipy.special import roots_hermitenorm
    z, w = roots_hermitenorm(nodes)
    return float(np.sum(w * f(math.sqrt(q) * z) ** n) / math.sqrt(2.0 * math.pi))


# NOTE on the tanh numbers of TV-INIT-01: the printed 0.3942944930534 (and the tanh
# propagation sequence / empirical gain 2.5361754161) equal 64-node Gauss-Hermite
# quadrature, which is off by 2.66e-9 for tanh. The converged value is
# 0.39429449039784 (adaptive split quadrature, Gauss-Hermite with 128/200/400 nodes and
# a fine trapezoid rule all agree to 1e-15), as §6.3's 1e-10 accuracy requirement
# demands. We test the accurate value at 1e-10 and the printed one at 5e-9.
TANH_E2 = 0.39429449039784


@pytest.mark.parametrize("f, value", [(relu, 0.5), (np.tanh, TANH_E2),
                                      (sigmoid, 0.293379035858093), (selu, 1.0),
                                      (lambda x: x, 1.0)])
def test_tv_init_01_gauss_moments(f, value):
    np.testing.assert_allclose(gauss_moment(f, 1.0, 2), value, rtol=0, atol=1e-10)


def test_tanh_moment_against_reference_and_printed_value():
    got = gauss_moment(np.tanh, 1.0, 2)
    assert abs(got - gh_moment(np.tanh, 1.0)) < 1e-12
    assert abs(got - 0.3942944930534) < 5e-9          # printed (GH-64) value


def test_selu_first_moment_zero():
    assert abs(gauss_moment(selu, 1.0, 1)) < 1e-12


def test_tv_init_01_tanh_propagation():
    q = propagate_variance(np.tanh, 1.0, 1.0, 5)
    ref, r = [], 1.0
    for _ in range(5):
        r = gh_moment(np.tanh, r)
        ref.append(r)
    np.testing.assert_allclose(q, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(q, [0.3942944930534, 0.2364504115151, 0.1666563543236,
                                   0.1279047356131, 0.1034406082604], rtol=0, atol=5e-9)
    # relu with He scaling keeps q constant
    np.testing.assert_allclose(propagate_variance(relu, 1.7, 2.0, 3), [1.7] * 3, rtol=1e-9)


def test_gains():
    np.testing.assert_allclose(empirical_gain(np.tanh), 1.0 / TANH_E2, rtol=1e-10)
    np.testing.assert_allclose(empirical_gain(np.tanh), 2.5361754161, rtol=0, atol=2e-8)
    np.testing.assert_allclose(empirical_gain(sigmoid), 3.4085598416, rtol=0, atol=1e-9)
    np.testing.assert_allclose(empirical_gain(relu), 2.0, **TV)
    assert gain("relu") == 2.0 and gain("tanh") == 1.0 and gain("selu") == 1.0
    assert gain("leaky_relu", 0.2) == pytest.approx(2.0 / 1.04, rel=1e-15)
    with pytest.raises(ValueError, match="gain"):
        gain("no_such")
    assert recommended_initializer("selu") == "lecun_normal"
    assert recommended_initializer("relu").startswith("he_")


def test_uniform_variance_formula():
    w = LecunUniform()(SHAPE, 400, 10, rng=np.random.default_rng(0))
    check_moments(w, 0.0, 1.0 / 400)
    w = Uniform(-0.2, 0.6)(SHAPE, rng=np.random.default_rng(0))
    check_moments(w, 0.2, 0.8 ** 2 / 12)
    assert w.min() >= -0.2 and w.max() < 0.6


# ------------------------------------------------------------------ moments of every initializer
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("dist", ["normal", "truncated_normal", "uniform"])
def test_variance_scaling_moments(mode, dist):
    init = VarianceScaling(scale=1.5, mode=mode, distribution=dist, gain=2.0)
    n = {"fan_in": FI, "fan_out": FO, "fan_avg": (FI + FO) / 2}[mode]
    var = 2.0 * 1.5 / n
    assert init.variance(FI, FO) == pytest.approx(var, rel=1e-15)
    w = init(SHAPE, FI, FO, rng=np.random.default_rng(3))
    check_moments(w, 0.0, var)
    sigma = math.sqrt(var)
    if dist == "uniform":
        assert np.abs(w).max() <= math.sqrt(3.0) * sigma
    if dist == "truncated_normal":
        assert np.abs(w).max() <= 2.0 * sigma / TRUNC2_STD_FACTOR


@pytest.mark.parametrize("cls, var_fn", [
    (LecunNormal, lambda fi, fo: 1 / fi), (LecunUniform, lambda fi, fo: 1 / fi),
    (GlorotNormal, lambda fi, fo: 2 / (fi + fo)), (GlorotUniform, lambda fi, fo: 2 / (fi + fo)),
    (HeNormal, lambda fi, fo: 2 / fi), (HeUniform, lambda fi, fo: 2 / fi)])
def test_named_moments_with_gain(cls, var_fn):
    w = cls(gain=16.0)(SHAPE, FI, FO, rng=np.random.default_rng(5))
    check_moments(w, 0.0, 16.0 * var_fn(FI, FO))


def test_basic_moments():
    rng = np.random.default_rng(7)
    check_moments(Normal(0.3, 0.2)(SHAPE, rng=rng), 0.3, 0.04)
    check_moments(Uniform()(SHAPE, rng=rng), 0.0, 0.1 ** 2 / 12)
    w = TruncatedNormal(mean=1.0, std=0.5, cut=2.0)(SHAPE, rng=rng)
    check_moments(w, 1.0, TRUNC2_VAR_FACTOR * 0.25)
    assert np.abs(w - 1.0).max() <= 1.0
    w = TruncatedNormal(std=1.0, cut=0.5)(SHAPE, rng=rng)
    assert np.abs(w).max() <= 0.5
    assert np.all(Zeros()((3, 4)) == 0) and np.all(Ones()((5,)) == 1)
    assert np.all(Constant(0.25)((2, 2, 3)) == 0.25)


def test_defaults_and_dtype():
    assert Uniform().get_config() == {"low": -0.05, "high": 0.05}
    assert Normal().get_config() == {"mean": 0.0, "std": 0.05}
    assert TruncatedNormal().get_config() == {"mean": 0.0, "std": 0.05, "cut": 2.0}
    w = GlorotUniform()((4, 3), 3, 4, dtype=np.float32, rng=np.random.default_rng(0))
    assert w.dtype == np.float32 and w.shape == (4, 3) and w.flags.c_contiguous


# ------------------------------------------------------------------ determinism, errors, configs
ALL = [Zeros(), Ones(), Constant(2.0), Uniform(), Normal(), TruncatedNormal(),
       VarianceScaling(), LecunUniform(), LecunNormal(), GlorotUniform(), GlorotNormal(),
       HeUniform(), HeNormal(), Orthogonal()]


@pytest.mark.parametrize("init", ALL, ids=lambda i: i.name)
def test_determinism_and_config(init):
    a = init((20, 30), 30, 20, rng=np.random.default_rng(42))
    b = init((20, 30), 30, 20, rng=42)
    np.testing.assert_array_equal(a, b)
    if init.name not in ("zeros", "ones", "constant"):
        assert not np.array_equal(a, init((20, 30), 30, 20, rng=np.random.default_rng(43)))
    clone = type(init)(**init.get_config())
    assert clone.get_config() == init.get_config()
    assert registry.get("initializer", init.name) is type(init)


@pytest.mark.parametrize("cls", [VarianceScaling, LecunUniform, LecunNormal, GlorotUniform,
                                 GlorotNormal, HeUniform, HeNormal])
def test_missing_fans_raise(cls):
    with pytest.raises(ValueError, match=cls.name):
        cls()((10,), None, None, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="fan_out"):
        cls()((10, 3), 3, None, rng=np.random.default_rng(0))


@pytest.mark.parametrize("make", [
    lambda: Normal(std=0), lambda: Normal(std=-1), lambda: TruncatedNormal(cut=0),
    lambda: Uniform(0.1, 0.1), lambda: Uniform(1, -1), lambda: Constant("x"),
    lambda: VarianceScaling(mode="fan_sum"), lambda: VarianceScaling(distribution="cauchy"),
    lambda: VarianceScaling(scale=0), lambda: HeNormal(gain=-1), lambda: Orthogonal(gain=0)])
def test_hyperparameter_validation(make):
    with pytest.raises(HyperparameterError):
        make()


def test_orthogonal():
    rng = np.random.default_rng(0)
    w = Orthogonal(gain=4.0)((20, 50), rng=rng)
    np.testing.assert_allclose(w @ w.T, 4.0 * np.eye(20), atol=1e-12)
    w = Orthogonal()((50, 20), rng=rng)
    np.testing.assert_allclose(w.T @ w, np.eye(20), atol=1e-12)
    w = Orthogonal()((8, 2, 3, 3), rng=rng).reshape(8, -1)
    np.testing.assert_allclose(w @ w.T, np.eye(8), atol=1e-12)
    with pytest.raises(ValueError, match="orthogonal"):
        Orthogonal()((5,), rng=rng)


def test_target_mean():
    y = np.array([[1.0, 2.0], [3.0, -2.0], [5.0, 3.0]])
    np.testing.assert_allclose(TargetMean(targets=y)((2,)), [3.0, 1.0], **TV)
    assert TargetMean().set_targets(np.array([1.0, 2.0]))((1,))[0] == 1.5
    cfg = TargetMean(y).get_config()
    np.testing.assert_allclose(TargetMean(**cfg)((2,)), [3.0, 1.0], **TV)
    with pytest.raises(ValueError, match="target_mean"):
        TargetMean()((2,))
    with pytest.raises(ValueError, match="shape"):
        TargetMean(y)((3,))


def test_get_initializer():
    assert isinstance(get_initializer("he_normal"), HeNormal)
    init = get_initializer({"name": "uniform", "low": -1, "high": 2})
    assert init.get_config() == {"low": -1.0, "high": 2.0}
    assert get_initializer(("glorot_normal", {"gain": 2.0})).gain == 2.0
    inst = Normal()
    assert get_initializer(inst) is inst


def test_selu_lecun_normal_self_normalising():
    """§8 Monte Carlo: 16 SELU layers, width 256, lecun_normal, zero biases, N(0,1) inputs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 256))
    init = LecunNormal()
    for _ in range(16):
        x = selu(x @ init((256, 256), 256, 256, rng=rng).T)
        assert abs(x.mean()) < 0.05 and abs(x.var() - 1.0) < 0.1
