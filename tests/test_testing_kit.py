"""The contract-testing kit itself (:mod:`corenet.testing`): it passes correct components
and catches deliberately broken layers, activations, losses, optimizers and regularizers."""
import subprocess
import sys

import numpy as np
import pytest

import corenet
from corenet import Graph, Sequential, registry
from corenet import testing as ct
from corenet.layers.core import Dense
from corenet.losses import MSE
from corenet.regularizers import L2


# ------------------------------------------------------------------------------ a good layer
class Affine(corenet.Layer):
    """y = x ⊙ w + b per feature; w, b of shape (D,)."""

    name = "affine_test"

    def __init__(self, scale: float = 1.0, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.scale = float(scale)

    def _build(self, input_shape, rng):
        self.w = self.add_parameter("weight", self.scale * rng.uniform(0.5, 1.5, input_shape))
        self.b = self.add_parameter("bias", rng.uniform(-1, 1, input_shape))

    def _forward(self, x):
        self._x = x
        return x * self.w.data + self.b.data

    def _backward(self, dy):
        self.w.grad += (dy * self._x).sum(axis=0)
        self.b.grad += dy.sum(axis=0)
        return dy * self.w.data

    def get_config(self):
        return {"scale": self.scale, **super().get_config()}


class WrongSign(Affine):
    def _backward(self, dy):
        return -super()._backward(dy)


class NotAccumulated(Affine):
    def _backward(self, dy):
        self.w.grad[...] = (dy * self._x).sum(axis=0)
        self.b.grad[...] = dy.sum(axis=0)
        return dy * self.w.data


class ConfigMissing(Affine):
    def get_config(self):
        return {"trainable": self.trainable}   # forgets "scale"


class IgnoresMask(Affine):
    """Recomputes its weight from a private copy in every forward (stale weight tying)."""

    def _build(self, input_shape, rng):
        super()._build(input_shape, rng)
        self._master = self.w.data.copy()

    def _forward(self, x):
        self.w.data[...] = self._master
        return super()._forward(x)

    def _backward(self, dy):
        dx = super()._backward(dy)
        self._master -= 0.0 * self.w.grad
        return dx


class Upcasts(Affine):
    def _forward(self, x):
        return super()._forward(x).astype(np.float64)


class MutatesInput(Affine):
    def _forward(self, x):
        y = super()._forward(x)
        x *= 1.0 + 1e-3
        return y


class NoValidation(Affine):
    def forward(self, *xs):
        if not self.built:
            self.build(xs[0].shape[1:], xs[0].dtype)
        return self._forward(*xs)


class _NeedsArgs(Affine):
    name = "needs_args"

    def __init__(self, units, *, trainable=True):
        super().__init__(trainable=trainable)
        self.units = units


def test_good_layer_passes_every_check():
    report = ct.check_layer(lambda: Affine(scale=2.0), (4,))
    assert report["max_rel_error"] <= 1e-6
    ct.check_layer(Affine(scale=0.5), (2, 3))      # an instance: rebuilt from its config


@pytest.mark.parametrize("cls, check", [
    (WrongSign, "gradients"), (NotAccumulated, "accumulate"), (ConfigMissing, "config"),
    (IgnoresMask, "mask"), (Upcasts, "float32"), (MutatesInput, "forward"),
    (NoValidation, "errors")])
def test_broken_layer_is_caught(cls, check):
    with pytest.raises(AssertionError, match=check):
        ct.check_layer(lambda: cls(scale=2.0), (4,), checks=(check,))
    with pytest.raises(AssertionError):
        ct.check_layer(lambda: cls(scale=2.0), (4,))


def test_layer_examples_convention_and_defaults():
    class WithExamples(Affine):
        @classmethod
        def examples(cls):
            return [{"config": {"scale": 3.0}, "input_shape": [2, 2]}, ({"scale": 1.0}, (3,))]

    cases = ct.examples(WithExamples)
    assert cases[0]["input_shape"] == [2, 2] and cases[1] == {"config": {"scale": 1.0},
                                                             "input_shape": (3,)}
    assert ct.examples(Affine) == [{"config": {}, "input_shape": (5,), "default": True}]
    assert len(ct.check_component(WithExamples)) == 2
    with pytest.raises(AssertionError, match="examples()"):
        ct.check_component(_NeedsArgs)


# ------------------------------------------------------------------------------ activations
class BadDerivative(corenet.Activation):
    name = "bad_derivative"

    def f(self, x):
        return np.tanh(x)

    def df(self, x):
        return 1 - np.tanh(x) ** 2 + 1e-3

    def d2f(self, x):
        t = np.tanh(x)
        return -2 * t * (1 - t * t)


class BadBackward(BadDerivative):
    def df(self, x):
        return 1 - np.tanh(x) ** 2

    def backward(self, x, y, dy):
        return dy * (1 - y)


def test_activation_checks():
    for name in ("tanh", "relu", "prelu", "sign"):
        ct.check_activation(name)
    with pytest.raises(AssertionError, match="df"):
        ct.check_activation(BadDerivative())
    with pytest.raises(AssertionError, match="backward"):
        ct.check_activation(BadBackward())
    assert ct.activation_kinks(registry.create("activation", "relu")) == (0.0,)
    assert ct.activation_kinks(registry.create("activation", "tanh")) == ()


# ------------------------------------------------------------------------------ losses
class MSENoMean(MSE):
    """Forgets the 1/N of reduction='mean' in the gradient."""

    def value_and_grad(self, y_pred, y, sample_weight=None):
        v, g = super().value_and_grad(y_pred, y, sample_weight)
        return v, g * y_pred.shape[0] if self.reduction == "mean" else g


class MSEIgnoresWeights(MSE):
    def _check(self, y_pred, y, sample_weight):
        return super()._check(y_pred, y, None)


class MSEBadHessian(MSE):
    def hess_output(self, y_pred, y):
        return 2 * super().hess_output(y_pred, y)


class MSEConfigMissing(MSE):
    def __init__(self, scale=1.0, reduction="mean"):
        super().__init__(reduction)
        self.scale = scale

    def per_sample_and_grad(self, y_pred, y):
        v, g = super().per_sample_and_grad(y_pred, y)
        return self.scale * v, self.scale * g


@pytest.mark.parametrize("loss, check", [
    (MSENoMean(), "gradient"), (MSEIgnoresWeights(), "weights"),
    (MSEBadHessian(), "hessian"), (MSEConfigMissing(scale=2.0), "config")])
def test_broken_loss_is_caught(loss, check):
    rng = np.random.default_rng(0)
    yp, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    with pytest.raises(AssertionError, match=check):
        ct.check_loss(loss, yp, y, checks=(check,))


def test_good_losses_and_target_kinds():
    rng = np.random.default_rng(1)
    ct.check_loss("mse", rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    z = rng.standard_normal((5, 4))
    ct.check_loss("cross_entropy", z, ct.make_targets("labels", z.shape, rng),
                  sample_weight=rng.uniform(0.5, 1.5, 5))
    assert ct.make_targets("onehot", (3, 4), rng).sum(axis=1).tolist() == [1.0] * 3
    assert set(np.unique(ct.make_targets("pm_one", (6, 2), rng))) <= {-1.0, 1.0}
    p = ct.make_predictions("probabilities", (2, 3, 4), rng, axis=1)
    assert np.allclose(p.sum(axis=1), 1.0)
    with pytest.raises(AssertionError, match="errors"):   # accepts any target shape
        ct.check_loss(_Lenient(), rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


class _Lenient(MSE):
    name = "lenient"

    def _check(self, y_pred, y, sample_weight):
        y = np.resize(np.asarray(y, dtype=y_pred.dtype), y_pred.shape)
        return y, sample_weight


# ------------------------------------------------------------------------------ optimizers
SGD = registry.get("optimizer", "sgd")


class IgnoresMaskOpt(SGD):
    def step(self, loss=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.trainable:
                    p.data -= group["lr"] * p.grad


class LosesState(SGD):
    """Keeps momentum in an attribute that state_dict() does not save."""

    def update(self, p, g, state, group):
        buf = self.__dict__.setdefault("_bufs", {}).setdefault(id(p), np.zeros_like(p.data))
        buf *= group["momentum"]
        buf += g
        p.data -= group["lr"] * buf


class IgnoresGroupLr(SGD):
    def update(self, p, g, state, group):
        p.data -= self.defaults["lr"] * g


class NoLrCheck(SGD):
    def check_hyperparameters(self, group):
        pass


class MovesFrozen(SGD):
    def step(self, loss=None):
        super().step(loss)
        for p in self.parameters():
            if not p.trainable:
                p.data -= 0.01 * p.grad


@pytest.mark.parametrize("cls, check", [
    (IgnoresMaskOpt, "mask"), (LosesState, "resume"), (IgnoresGroupLr, "groups"),
    (NoLrCheck, "lr"), (MovesFrozen, "frozen")])
def test_broken_optimizer_is_caught(cls, check):
    with pytest.raises(AssertionError, match=check):
        ct.check_optimizer(lambda: cls(lr=0.05, momentum=0.5), checks=(check,))


def test_good_optimizers():
    ct.check_optimizer(lambda: SGD(lr=0.05, momentum=0.9, nesterov=True))
    ct.check_optimizer("gd")
    report = ct.check_optimizer({"name": "least_squares"})
    assert "decrease" in report["not_applicable"]


# ------------------------------------------------------------------------------ regularizers
class L2WrongGrad(L2):
    def grad_of(self, data):
        return 2 * data


def test_regularizer_checks():
    ct.check_regularizer({"name": "l1", "lam": 0.3})
    ct.check_regularizer(L2(lam=0.2, include_bias=True))
    with pytest.raises(AssertionError, match="gradients"):
        ct.check_regularizer(L2WrongGrad(lam=0.2))


# ------------------------------------------------------------------------------ check_gradients
def test_rel_error_and_numerical_gradient():
    assert ct.rel_error(1.0, 1.0) == 0.0
    assert ct.rel_error(0.0, 1e-9) == pytest.approx(1e-9 / 1e-8)
    x = np.array([0.3, -1.2, 2.0])
    g = ct.numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    assert np.allclose(g, np.cos(x), rtol=1e-9) and x.tolist() == [0.3, -1.2, 2.0]


def test_check_gradients_sequential_graph_and_float32():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 4))
    model = Sequential([Dense(5, activation="tanh"), Dense(4, activation="relu"), Dense(3),
                        "softmax"], random_state=0)
    res = ct.check_gradients(model, "cross_entropy", X, rng.integers(0, 3, 6))
    assert res.max_rel_error <= 1e-6 and float(res) == res.max_rel_error
    assert set(res.errors) == {"0.weight", "0.bias", "1.weight", "1.bias", "2.weight",
                               "2.bias", "input"}
    res.assert_ok()
    only = ct.check_gradients(model, MSE(), X, rng.standard_normal((6, 3)),
                              params=["2.weight"], check_input=False)
    assert set(only.errors) == {"2.weight"}

    g = Graph(inputs=["x"], outputs=["out"], random_state=1)
    g.add_node("h", Dense(4, activation="sigmoid"), "x")
    g.add_node("r", "add", ["h", "x"])
    g.add_node("c", "concat", ["r", "x"])
    g.add_node("out", Dense(2), "c")
    ct.check_gradients(g, "mse", X, rng.standard_normal((6, 2)),
                       regularizers=[L2(lam=0.1)]).assert_ok()

    two = Graph(inputs=["a", "b"], outputs=["out"], random_state=3)
    two.add_node("c", "concat", ["a", "b"])
    two.add_node("out", Dense(2, activation="tanh"), "c")
    res = ct.check_gradients(two, "mse", [X[:, :2], X[:, 2:]], rng.standard_normal((6, 2)))
    assert {"input0", "input1"} <= set(res.errors) and res.max_rel_error <= 1e-6

    m32 = Sequential([Dense(3, activation="elu"), Dense(2)], dtype="float32", random_state=2)
    ct.check_gradients(m32, "mse", X.astype(np.float32), rng.standard_normal((6, 2))).assert_ok()
    assert m32.parameters()[0].dtype == np.float32


def test_check_gradients_skips_kinks_and_masks_and_catches_bugs():
    X = np.array([[1.0, -1.0], [0.5, 2.0]])
    model = Sequential([Dense(2, activation="relu", bias=False), Dense(1)], random_state=0)
    model.build((2,))
    W = model.parameters()[0]
    W.data[...] = [[1.0, 1.0], [0.3, -0.2]]        # unit 0 of sample 0 sits at the kink
    W.mask = np.array([[1, 1], [1, 0]])
    res = ct.check_gradients(model, "mse", X, np.ones((2, 1)))
    reasons = {r for _, _, r in res.skipped}
    assert "masked" in reasons and any("kink of relu" in r for r in reasons)
    assert res.max_rel_error <= 1e-6

    bad = Sequential([WrongSign(), Dense(2)], random_state=0)
    res = ct.check_gradients(bad, "mse", np.ones((3, 2)) * 0.7, np.zeros((3, 2)))
    assert res.max_rel_error > 0.5
    with pytest.raises(AssertionError, match="max relative error"):
        res.assert_ok()


# ------------------------------------------------------------------------------ helpers
def test_parametrize_registered_and_lazy_pytest_import():
    params = ct.parametrize_registered("optimizer")
    assert [p.id for p in params] == registry.names("optimizer")
    assert params[0].values == (registry.names("optimizer")[0],)
    code = "import sys, corenet.testing; assert 'pytest' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
