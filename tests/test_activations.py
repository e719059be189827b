"""The activation family: registry, spec vectors TV-ACT-01/02, derivatives by central
differences, forward/backward through the kernels, sign and prelu."""
import numpy as np
import pytest

from corenet import registry
from corenet.activation import Activation
from corenet.errors import HyperparameterError, PluginError

TV = dict(rtol=1e-9, atol=1e-10)
SPEC_NAMES = ["identity", "sigmoid", "sigmoid_symmetric", "tanh", "scaled_tanh", "arctan",
              "softsign", "relu", "leaky_relu", "prelu", "generalized_relu", "elu", "selu",
              "softplus", "erf", "gaussian", "sign"]
ALL = SPEC_NAMES + ["gelu", "silu"]
SMOOTH = [n for n in ALL if n != "sign"]
CONFIGS = {"scaled_tanh": {"a": 1.7159, "b": 2 / 3}, "leaky_relu": {"alpha": 0.01},
           "generalized_relu": {"alpha": 0.0}, "elu": {"alpha": 1.0},
           "softplus": {"beta": 1.0}, "prelu": {"init": 0.25, "per_channel": True}}


def act(name, **kw):
    return registry.create("activation", name, **kw)


def rel_err(a, n):
    return np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))


def test_registry_lookup_and_configs():
    assert set(ALL) <= set(registry.names("activation"))
    cls = registry.get("activation", "tanh")
    assert issubclass(cls, Activation) and cls.name == "tanh"
    for name in ALL:
        a = act(name)
        assert a.name == name
        assert a.get_config() == CONFIGS.get(name, {})
        again = registry.create("activation", {"name": name, **a.get_config()})
        assert again.get_config() == a.get_config()
    assert act("leaky_relu", alpha=0.2).get_config() == {"alpha": 0.2}
    with pytest.raises(PluginError, match="tanh"):
        registry.get("activation", "tahn")
    with pytest.raises(HyperparameterError):
        act("softplus", beta=-1.0)
    with pytest.raises(HyperparameterError):
        act("elu", alpha="x")


X5 = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
SIG_F = [0.119202922, 0.3775406688, 0.5, 0.6224593312, 0.880797078]
SIG_D = [0.1049935854, 0.2350037122, 0.25, 0.2350037122, 0.1049935854]
SIG_D2 = [0.07996250106, 0.05755679485, 0, -0.05755679485, -0.07996250106]
TV_ACT_01 = {
    "sigmoid": (SIG_F, SIG_D, SIG_D2),
    "tanh": ([-0.9640275801, -0.4621171573, 0, 0.4621171573, 0.9640275801],
             [0.07065082485, 0.786447733, 1, 0.786447733, 0.07065082485],
             [0.1362186874, 0.7268619814, 0, -0.7268619814, -0.1362186874]),
    "relu": ([0, 0, 0, 0.5, 2], [0, 0, 0, 1, 1], [0] * 5),
    "leaky_relu": ([-0.02, -0.005, 0, 0.5, 2], [0.01, 0.01, 0.01, 1, 1], [0] * 5),
    "elu": ([-0.8646647168, -0.3934693403, 0, 0.5, 2],
            [0.1353352832, 0.6065306597, 1, 1, 1], [0.1353352832, 0.6065306597, 1, 0, 0]),
    "selu": ([-1.520166469, -0.6917581878, 0, 0.5253504937, 2.101401975],
             [0.2379328723, 1.066341153, 1.758099341, 1.050700987, 1.050700987],
             [0.2379328723, 1.066341153, 1.758099341, 0, 0]),
    "softplus": ([0.126928011, 0.4740769842, 0.6931471806, 0.9740769842, 2.126928011],
                 SIG_F, SIG_D),
    "scaled_tanh": ([-1.492938805, -0.5516837063, 0, 0.5516837063, 1.492938805],
                    [0.2779674547, 1.025684441, 1.143933333, 1.025684441, 0.2779674547],
                    [0.3224651008, 0.4396941499, 0, -0.4396941499, -0.3224651008]),
    "arctan": ([-1.107148718, -0.463647609, 0, 0.463647609, 1.107148718],
               [0.2, 0.8, 1, 0.8, 0.2], [0.16, 0.64, 0, -0.64, -0.16]),
    "softsign": ([-0.6666666667, -0.3333333333, 0, 0.3333333333, 0.6666666667],
                 [0.1111111111, 0.4444444444, 1, 0.4444444444, 0.1111111111],
                 [0.07407407407, 0.5925925926, 0, -0.5925925926, -0.07407407407]),
    "erf": ([-0.995322265, -0.5204998778, 0, 0.5204998778, 0.995322265],
            [0.02066698535, 0.8787825789, 1.128379167, 0.8787825789, 0.02066698535],
            [0.08266794142, 0.8787825789, 0, -0.8787825789, -0.08266794142]),
    "gaussian": ([0.1353352832, 0.8824969026, 1, 0.8824969026, 0.1353352832],
                 [0.2706705665, 0.4412484513, 0, -0.4412484513, -0.2706705665],
                 [0.4060058497, -0.6618726769, -1, -0.6618726769, 0.4060058497]),
    "sigmoid_symmetric": ([-0.380797078, -0.1224593312, 0, 0.1224593312, 0.380797078],
                          SIG_D, SIG_D2),
}


@pytest.mark.parametrize("name", sorted(TV_ACT_01))
def test_tv_act_01(name):
    f, d, d2 = TV_ACT_01[name]
    a = act(name)
    np.testing.assert_allclose(a.f(X5), f, **TV)
    np.testing.assert_allclose(a.df(X5), d, **TV)
    np.testing.assert_allclose(a.d2f(X5), d2, **TV)
    np.testing.assert_allclose(a.forward(X5), f, **TV)
    np.testing.assert_allclose(a.backward(X5, a.forward(X5), np.ones(5)), d, **TV)
    np.testing.assert_allclose(a.backward(X5, None, np.ones(5)), d, **TV)
    x32 = X5.astype(np.float32)
    np.testing.assert_allclose(a.forward(x32), f, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.backward(x32, a.forward(x32), np.ones(5, np.float32)), d,
                               rtol=1e-5, atol=1e-6)


def test_tv_act_02_identities():
    sig, tanh = act("sigmoid"), act("tanh")
    np.testing.assert_allclose(sig.forward(np.array([0.3])), 0.574442516811659, **TV)
    np.testing.assert_allclose(0.5 * (tanh.forward(np.array([0.15])) + 1), 0.574442516811659,
                               **TV)
    t = np.arange(-3.0, 4.0)
    np.testing.assert_allclose(tanh.forward(t), 2 * sig.forward(2 * t) - 1, **TV)
    np.testing.assert_allclose(1 / np.tanh(2 / 3), 1.7159047085755392, **TV)
    np.testing.assert_allclose(act("scaled_tanh").forward(np.array([1.0])),
                               0.9999972559224789, **TV)
    np.testing.assert_allclose(act("scaled_tanh", a=1.7159047085755392).forward(
        np.array([-1.0, 1.0])), [-1, 1], **TV)
    np.testing.assert_allclose(act("selu").forward(np.array([1.0, -1.0, -10.0, -1000.0])),
                               [1.0507009873554805, -1.1113307378125625, -1.7580195232607867,
                                -1.7580993408473766], **TV)
    np.testing.assert_allclose(act("elu").forward(np.array([-1.0])), -0.6321205588285577, **TV)
    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(act("elu").forward(z), act("elu").f(z), **TV)
    np.testing.assert_allclose(act("softplus").df(z), sig.f(z), **TV)
    for name in ("relu", "leaky_relu", "generalized_relu", "identity"):
        a = act(name)
        for x in (np.array([0.7, -0.7]), z[z != 0]):
            np.testing.assert_allclose(a.forward(x), a.df(x) * x, **TV)
    x = np.array([0.7, -0.7])
    assert not np.allclose(sig.f(x), sig.df(x) * x)
    assert not np.allclose(tanh.f(x), tanh.df(x) * x)
    np.testing.assert_allclose(act("generalized_relu", alpha=-1.0).forward(z), np.abs(z), **TV)
    np.testing.assert_allclose(act("generalized_relu", alpha=-1.0).df(np.array([0.0])), [-1])


def test_gelu_silu_match_pytorch_definitions():
    from scipy.special import erf
    x = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(act("gelu").forward(x), 0.5 * x * (1 + erf(x / np.sqrt(2))),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act("silu").forward(x), x / (1 + np.exp(-x)), rtol=1e-12)


@pytest.mark.parametrize("name", SMOOTH)
def test_derivatives_by_central_differences(name):
    params = {"scaled_tanh": {"a": 1.3, "b": 0.8}, "leaky_relu": {"alpha": 0.1},
              "generalized_relu": {"alpha": -0.5}, "elu": {"alpha": 0.7},
              "softplus": {"beta": 1.7}, "prelu": {"init": 0.3}}.get(name, {})
    a = act(name, **params)
    x = np.random.default_rng(0).uniform(-2.5, 2.5, 200)
    x = x[np.abs(x) > 1e-2]                       # away from kinks
    h = 1e-6
    num_d = (a.f(x + h) - a.f(x - h)) / (2 * h)
    num_d2 = (a.df(x + h) - a.df(x - h)) / (2 * h)
    assert rel_err(a.df(x), num_d).max() <= 1e-6
    assert rel_err(a.d2f(x), num_d2).max() <= 1e-6


@pytest.mark.parametrize("name", SMOOTH)
def test_backward_from_y_equals_from_x(name):
    a = act(name)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, (4, 6, 5))
    x[0, 0] = 0.0
    dy = rng.normal(size=x.shape)
    y = a.forward(x)
    np.testing.assert_allclose(a.backward(x, y, dy), a.backward(x, None, dy),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.backward(x, y, dy), dy * a.df(x), rtol=1e-12, atol=1e-14)
    xt = np.asfortranarray(x)                        # non-contiguous input is accepted
    np.testing.assert_allclose(a.forward(xt), y, rtol=1e-15)


@pytest.mark.parametrize("name,params", [("relu", {}), ("leaky_relu", {"alpha": 0.1}),
                                         ("generalized_relu", {"alpha": -1.0})])
def test_relu_family_backward_from_the_forward_mask(name, params, monkeypatch):
    """backward(x, y, dy) with the arrays of the last forward reads the bit mask (the x
    route is not called); any other arrays take the x route; same values either way."""
    from corenet import kernels
    a = act(name, **params)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3, 5)).astype(np.float32)
    x[0, 0] = 0.0
    dy = rng.normal(size=x.shape).astype(np.float32)
    ref = dy * a.df(x)
    y = a.forward(x)
    with monkeypatch.context() as m:
        m.setattr(kernels, "activation_backward", None)        # must not be used
        np.testing.assert_array_equal(a.backward(x, y, dy), ref)
        np.testing.assert_array_equal(a.backward(None, y, dy), ref)
    x2 = x.copy()
    y2 = a.forward(x2)                                          # a second layer's call
    np.testing.assert_array_equal(a.backward(x, y, dy), ref)    # x route: y is not y2
    np.testing.assert_array_equal(a.backward(x2, y2, dy), ref)  # mask route
    np.testing.assert_array_equal(a.backward(x, None, dy), ref)
    with pytest.raises(Exception, match="shape"):
        a.backward(x2, y2, dy[:2])
    with pytest.raises(Exception, match="dtype"):
        a.backward(x2, y2, dy.astype(np.float64))
    xt = np.asfortranarray(x)
    yt = a.forward(xt)                                          # copied to C order
    np.testing.assert_array_equal(a.backward(xt, yt, dy), ref)


def test_identity_passes_arrays_through():
    a = act("identity")
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    dy = np.ones_like(x)
    assert a.forward(x) is x
    assert a.backward(x, x, dy) is dy and a.backward(None, None, dy) is dy
    out = np.empty_like(x)
    assert a.forward(x, out=out) is out and np.array_equal(out, x)
    assert a.backward(x, x, dy, out=out) is out and np.array_equal(out, dy)
    xt = np.asfortranarray(x)
    y = a.forward(xt)
    assert y.flags.c_contiguous and np.array_equal(y, x)
    from corenet.errors import DTypeError, ShapeError
    with pytest.raises(DTypeError):
        a.forward(np.arange(3))
    with pytest.raises(ShapeError):
        a.backward(x, None, dy[:2])
    with pytest.raises(DTypeError):
        a.backward(x.astype(np.float32), None, dy)


def test_dtype_preserved():
    for name in ALL:
        a = act(name)
        for dt in (np.float32, np.float64):
            x = np.linspace(-1, 1, 6).astype(dt)
            assert a.forward(x).dtype == dt and a.f(x).dtype == dt
            if name != "sign":
                assert a.backward(x, a.forward(x), np.ones_like(x)).dtype == dt
                assert a.df(x).dtype == dt and a.d2f(x).dtype == dt


def test_sign_forward_only():
    s = act("sign")
    assert s.differentiable is False
    np.testing.assert_array_equal(s.forward(np.array([-2.0, -0.0, 0.0, 3.0])), [-1, 1, 1, 1])
    with pytest.raises(NotImplementedError, match="sign"):
        s.backward(X5, s.forward(X5), np.ones(5))
    with pytest.raises(NotImplementedError):
        s.df(X5)


def test_prelu_parameter_protocol():
    p = act("prelu", init=0.2)
    assert p.parameter_specs == (("alpha", 0.2),)
    assert p.per_channel and p.init == 0.2
    assert p.parameter_shape((3, 4, 4)) == (3,) and p.parameter_shape(()) == (1,)
    assert act("prelu", per_channel=False).parameter_shape((3, 4)) == (1,)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 3, 4, 4))
    x[0, 0, 0, 0] = 0.0
    dy = rng.normal(size=x.shape)
    alpha = np.array([0.1, 0.2, 0.3])
    y = p.forward_with(x, alpha)
    np.testing.assert_allclose(y, p.f(x, alpha), rtol=1e-15)
    dx, dalpha = p.backward_with(x, dy, alpha)
    np.testing.assert_allclose(dx, dy * p.df(x, alpha), rtol=1e-15)
    # dalpha by central differences of L = Σ dy ⊙ f(x; α)
    h = 1e-6
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        num = ((dy * p.f(x, alpha + e)).sum() - (dy * p.f(x, alpha - e)).sum()) / (2 * h)
        assert rel_err(dalpha[c], num) <= 1e-6
    _, da1 = p.backward_with(x, dy, np.array([0.25]))
    np.testing.assert_allclose(da1, [np.where(x <= 0, dy * x, 0).sum()], rtol=1e-12)
    # without an alpha array the slope is init (a fixed leaky ReLU)
    np.testing.assert_allclose(p.forward(x), act("leaky_relu", alpha=0.2).forward(x))
    np.testing.assert_allclose(p.backward(x, None, dy),
                               act("leaky_relu", alpha=0.2).backward(x, None, dy))
