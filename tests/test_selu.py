"""SELU self-normalisation: constants, moment map, Jacobian, fixed point (normalization.md §5,
TV-SELU-01, D-63, README §10) and the SELU + alpha_dropout recipe (initialization.md §8)."""
import math

import numpy as np
import pytest
from scipy import integrate

from corenet import registry
from corenet.errors import HyperparameterError
from corenet.initializers import gauss_moment
from corenet.model import Sequential
from corenet.selu import (SELU_ALPHA, SELU_LAMBDA, selu_constants_closed_form, selu_fixed_point,
                          selu_moment_jacobian, selu_moment_map, solve_selu_constants)


def selu(x):
    return SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def quad_moments(m, v):
    """Mean and variance of SELU(S), S ~ 𝒩(m, v), by adaptive quadrature split at the kink."""
    s = math.sqrt(v)

    def moment(n):
        def f(z):
            return selu(np.array(m + s * z)) ** n * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        kink = -m / s
        kw = dict(epsabs=1e-14, epsrel=1e-13, limit=400)
        return integrate.quad(f, -np.inf, kink, **kw)[0] + integrate.quad(f, kink, np.inf, **kw)[0]

    mean = moment(1)
    return mean, moment(2) - mean * mean


def test_constants_full_precision_and_closed_forms():
    assert SELU_ALPHA == 1.6732632423543772848 and SELU_LAMBDA == 1.0507009873554804934
    alpha, lam = selu_constants_closed_form()
    assert abs(alpha - SELU_ALPHA) < 1e-15 * 2 and abs(lam - SELU_LAMBDA) < 1e-15
    alpha, lam = solve_selu_constants()          # unique solution of μ̃ = 0, ν̃ = 1
    assert abs(alpha - SELU_ALPHA) < 1e-13 and abs(lam - SELU_LAMBDA) < 1e-13
    np.testing.assert_allclose(SELU_LAMBDA * SELU_ALPHA, 1.7580993408473766, rtol=1e-15)
    np.testing.assert_allclose(selu(np.array([1.0, -1.0])),
                               [1.0507009873554805, -1.1113307378125625], rtol=1e-14)
    act = registry.create("activation", "selu")
    np.testing.assert_allclose(act.f(np.array([1.0, -1.0])), selu(np.array([1.0, -1.0])),
                               rtol=1e-15)


def test_moment_map_fixed_point_tv_selu_01():
    mu, nu = selu_moment_map(0, 1, 0, 1)
    assert abs(mu) < 1e-14 and abs(nu - 1) < 1e-14
    assert isinstance(mu, float) and isinstance(nu, float)
    assert selu_moment_map(0.7, 1.0) == selu_moment_map(0.0, 1.0)      # ω = 0 ignores μ
    mu, nu = selu_fixed_point(0.0, 1.0, mu0=0.4, nu0=2.5)
    assert abs(mu) < 1e-12 and abs(nu - 1) < 1e-12
    assert selu_fixed_point(0.0, 1.0, nu0=0.3)[1] == pytest.approx(1, abs=1e-12)


def test_moment_map_jacobian_tv_selu_01():
    J = selu_moment_jacobian(0.0, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(J, [[0.0, 0.0888347551068901], [0.0, 0.782647883196813]],
                               atol=1e-8)
    assert np.linalg.norm(J, 2) == pytest.approx(0.7876733604657156, abs=1e-8)
    assert np.linalg.norm(J, 2) < 1          # attracting fixed point


@pytest.mark.parametrize("mu,nu,omega,tau", [(0.0, 1.0, 0.0, 1.0), (0.3, 1.2, 0.8, 1.1),
                                             (-0.5, 0.7, 1.5, 0.9), (1.0, 0.05, -2.0, 1.0),
                                             (0.2, 3.0, 1.0, 2.0), (-4.0, 1.0, 3.0, 0.5)])
def test_moment_map_matches_numerical_integration(mu, nu, omega, tau):
    got = selu_moment_map(mu, nu, omega, tau)
    want = quad_moments(mu * omega, nu * tau)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_moment_map_is_stable_where_the_naive_products_overflow():
    """e^{2(m+v)} overflows for v = 400; the erfcx form (README §10) stays finite and exact."""
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(2 * (1.0 + 400.0)))
    got = selu_moment_map(1.0, 400.0, 1.0, 1.0)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, quad_moments(1.0, 400.0), rtol=1e-9)
    # large negative mean (b ≤ 0 branch): the output saturates, mean −λα(1 − e^{m+v/2}),
    # variance ~1e-25 (the subtraction of μ̃² leaves rounding noise of order 1e-16)
    mu, nu = selu_moment_map(-30.0, 1.0, 1.0, 1.0)
    assert mu == pytest.approx(-SELU_LAMBDA * SELU_ALPHA * -math.expm1(-29.5), rel=1e-13)
    assert abs(nu) < 1e-14


def test_moment_map_vectorised_and_bad_arguments():
    mus = np.array([0.0, 0.5, -0.5])
    mean, var = selu_moment_map(mus, 1.2, 1.0, 1.1)
    assert mean.shape == var.shape == (3,)
    for i, m in enumerate(mus):
        np.testing.assert_allclose((mean[i], var[i]), selu_moment_map(m, 1.2, 1.0, 1.1),
                                   rtol=1e-15)
    for args in ((0.0, 0.0), (0.0, -1.0), (0.0, 1.0, 0.0, 0.0), (np.nan, 1.0), (0.0, np.inf)):
        with pytest.raises(HyperparameterError, match="selu_moment_map"):
            selu_moment_map(*args)


def test_selu_moments_of_standard_normal_by_split_quadrature():
    assert abs(gauss_moment("selu", 1.0, 1)) < 1e-12
    assert gauss_moment("selu", 1.0, 2) == pytest.approx(1.0, abs=1e-10)


def selu_stack(depth, width, seed, rate=None):
    layers = []
    for _ in range(depth):
        layers.append({"name": "dense", "out_features": width, "weight_init": "lecun_normal"})
        layers.append({"name": "activation", "activation": "selu"})
        if rate is not None:
            layers.append({"name": "alpha_dropout", "rate": rate})
    return Sequential(layers, random_state=seed, input_shape=(width,))


def test_monte_carlo_16_layers_tv_selu_01():
    """16 SELU layers of width 256, lecun_normal, 2000 standard-normal inputs: every layer
    has |mean| < 0.05 and |var − 1| < 0.1 (initialization.md §8)."""
    model = selu_stack(16, 256, seed=0)
    x = np.random.default_rng(1).standard_normal((2000, 256))
    for layer in model.layers:
        x = layer.forward(x)
        if layer.name == "activation":
            assert abs(x.mean()) < 0.05 and abs(x.var() - 1) < 0.1, (x.mean(), x.var())


def test_selu_with_alpha_dropout_keeps_the_fixed_point():
    if "alpha_dropout" not in registry.names("layer"):
        pytest.skip("alpha_dropout layer not registered yet")
    model = selu_stack(8, 256, seed=2, rate=0.1)
    model.train()
    x = np.random.default_rng(3).standard_normal((2000, 256))
    for layer in model.layers:
        x = layer.forward(x)
        if layer.name == "alpha_dropout":
            assert abs(x.mean()) < 0.05 and abs(x.var() - 1) < 0.1, (x.mean(), x.var())
