"""The engine: parameters, Sequential and Graph models, the trainer loop and its hooks."""
import numpy as np
import pytest

import corenet
from corenet import (DTypeError, Graph, NotFiniteError, Parameter, PluginError, Sequential,
                     ShapeError, hookimpl)
from corenet.layers.core import Dense


def numeric_input_grad(model, x, w, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (np.sum(w * model.forward(xp)) - np.sum(w * model.forward(xm))) / (2 * eps)
    return g


def numeric_param_grad(model, x, w, eps=1e-6):
    theta = model.get_flat_parameters()
    g = np.zeros_like(theta)
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        model.set_flat_parameters(tp)
        fp = np.sum(w * model.forward(x))
        model.set_flat_parameters(tm)
        fm = np.sum(w * model.forward(x))
        g[i] = (fp - fm) / (2 * eps)
    model.set_flat_parameters(theta)
    return g


def residual_graph():
    g = Graph(inputs=["x"], outputs=["out"], random_state=1)
    g.add_node("h1", Dense(4, activation="tanh"), "x")
    g.add_node("h2", Dense(4, activation="sigmoid"), "h1")
    g.add_node("res", "add", ["h1", "h2"])
    g.add_node("cat", "concat", ["res", "x"])
    g.add_node("out", Dense(2), "cat")
    return g


def test_parameter_mask_zeroes_data_and_validates_shape():
    p = Parameter(np.ones((2, 2)))
    p.mask = np.array([[1, 0], [0, 1]])
    assert p.masked and p.data[0, 1] == 0 and p.count_nonzero_weights() == 2
    with pytest.raises(ShapeError, match="mask must have shape"):
        p.mask = np.ones(3)
    with pytest.raises(ValueError, match="0 or 1"):
        p.mask = np.full((2, 2), 0.5)


def test_sequential_builds_lazily_and_names_parameters():
    model = Sequential([Dense(3, activation="relu"), Dense(2)], random_state=0)
    out = model.predict(np.zeros((5, 4)))
    assert out.shape == (5, 2)
    assert [p.name for p in model.parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert model.n_parameters() == 4 * 3 + 3 + 3 * 2 + 2
    text = model.summary()
    assert "dense" in text and "total parameters: 23" in text


def test_sequential_and_graph_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5))
    for model in (Sequential([Dense(4, activation="tanh"), Dense(3, activation="sigmoid"),
                              Dense(2)], random_state=0), residual_graph()):
        w = rng.normal(size=(3, 2))
        model.forward(x)
        model.zero_grad()
        dx = model.backward(w)
        np.testing.assert_allclose(dx, numeric_input_grad(model, x, w), rtol=1e-6, atol=1e-9)
        model.forward(x)
        model.zero_grad()
        model.backward(w)
        np.testing.assert_allclose(model.get_flat_gradients(), numeric_param_grad(model, x, w),
                                   rtol=1e-6, atol=1e-9)


def test_backward_without_input_grad_skips_only_the_input_product():
    """input_grad=False (the trainer's call): the same parameter gradients, None returned,
    the first layers told they may skip ∂L/∂x, and the flag restored afterwards."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5))
    seen = []

    class Spy(Dense):
        def _backward(self, dy):
            seen.append(self.needs_input_grad)
            return super()._backward(dy)

    conv = Sequential([corenet.registry.create("layer", {"name": "conv2d", "in_channels": 1, "out_channels": 2,
                                                          "kernel_size": 3}),
                       corenet.registry.create("layer", "flatten"), Dense(2)], random_state=0)
    xc = rng.normal(size=(2, 1, 5, 5))
    for model, inp in ((Sequential([Spy(4, activation="tanh"), Spy(2)], random_state=0), x),
                       (residual_graph(), x), (conv, xc)):
        w = rng.normal(size=(inp.shape[0], 2))
        model.forward(inp)
        model.zero_grad()
        assert model.backward(w) is not None
        full = model.get_flat_gradients()
        seen.clear()
        model.forward(inp)
        model.zero_grad()
        assert model.backward(w, input_grad=False) is None
        np.testing.assert_array_equal(model.get_flat_gradients(), full)
        layers = model.layers_in_order()
        assert all(layer.needs_input_grad for layer in layers)
        assert all("needs_input_grad" not in vars(layer) for layer in layers)
        if isinstance(layers[0], Spy):
            assert seen == [True, False]     # last layer first; only the first may skip
    first = conv.layers[0]
    with corenet.layer.skip_input_grad(first):
        assert first.backward(rng.normal(size=(2, 2, 3, 3))) is None
    assert first.needs_input_grad


def test_graph_fan_out_accumulates_gradients():
    g = Graph(inputs="x", outputs="sum")
    g.add_node("a", "flatten", "x")
    g.add_node("sum", "add", ["a", "a", "a"])
    x = np.ones((2, 3))
    y = g.forward(x)
    np.testing.assert_array_equal(y, 3 * x)
    np.testing.assert_array_equal(g.backward(np.ones((2, 3))), 3 * np.ones((2, 3)))


def test_graph_rejects_unknown_sources_and_config_round_trip():
    g = Graph(inputs="x")
    with pytest.raises(ValueError, match="neither"):
        g.add_node("h", Dense(2), "nope")
    g = residual_graph()
    x = np.random.default_rng(1).normal(size=(2, 5))
    y = g.predict(x)
    clone = Graph.from_config(g.get_config())
    clone.set_flat_parameters(g.get_flat_parameters())
    np.testing.assert_array_equal(clone.predict(x), y)


def test_sequential_config_round_trip():
    model = Sequential([Dense(3, activation="tanh"), Dense(2), "softmax"], random_state=2,
                       input_shape=(4,))
    clone = Sequential.from_config(model.get_config())
    clone.set_flat_parameters(model.get_flat_parameters())
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_bad_inputs_raise_clear_errors():
    model = Sequential([Dense(2)], input_shape=(3,))
    model.compile(loss="mse", optimizer="sgd")
    X, y = np.zeros((4, 3)), np.zeros((4, 2))
    with pytest.raises(DTypeError, match="floating"):
        model.fit(X.astype(np.int64), y)
    with pytest.raises(DTypeError, match="floating"):
        model.predict(np.zeros((2, 3), dtype=object))
    with pytest.raises(ValueError, match="C-contiguous"):
        model.predict(np.zeros((3, 6))[:, ::2])
    with pytest.raises(ShapeError, match=r"expected input of shape \(N, 3\)"):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="batch"):
        model.predict(np.zeros(3))
    with pytest.raises(NotFiniteError, match="NaN"):
        model.fit(np.full((4, 3), np.nan), y)
    with pytest.raises(NotFiniteError, match="targets"):
        model.fit(X, np.full((4, 2), np.inf))
    with pytest.raises(ShapeError, match="4 samples but y has 3"):
        model.fit(X, y[:3])
    with pytest.raises(ShapeError, match="empty"):
        model.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, y, batch_size=0)
    with pytest.raises(PluginError, match="did you mean 'sgd'"):
        Sequential([Dense(2)]).compile(loss="mse", optimizer="sdg")
    with pytest.raises(corenet.HyperparameterError, match="lr"):
        Sequential([Dense(2)]).compile(loss="mse", optimizer={"name": "sgd", "lr": -1})
    with pytest.raises(corenet.HyperparameterError, match="out_features"):
        Dense(0)


def test_labels_out_of_range_raise():
    model = Sequential([Dense(3), "softmax"], input_shape=(2,))
    model.compile(loss="cross_entropy", optimizer="sgd")
    with pytest.raises(ValueError, match="cross_entropy"):
        model.fit(np.zeros((2, 2)), np.array([0, 3]))


def test_divergence_is_reported_not_propagated():
    model = Sequential([Dense(1)], input_shape=(1,), random_state=0)
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 1e6})
    X = np.linspace(-100, 100, 50).reshape(-1, 1)
    with pytest.raises(NotFiniteError, match="learning rate"):
        model.fit(X, 3 * X, epochs=50, batch_size=50)


def test_training_is_bit_reproducible_under_one_random_state():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)

    def run():
        m = Sequential([Dense(8, activation="tanh"), Dense(3), "softmax"], random_state=42)
        m.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9})
        m.fit(X, y, epochs=3, batch_size=8)
        return m.get_flat_parameters()

    assert np.array_equal(run(), run())


def test_float32_model_end_to_end():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 2, 32)
    m = Sequential([Dense(8, activation="relu"), Dense(2), "softmax"], dtype="float32",
                   random_state=0)
    m.compile(loss="cross_entropy", optimizer="sgd", metrics=["accuracy"])
    m.fit(X, y, epochs=2, batch_size=8)
    assert all(p.data.dtype == np.float32 for p in m.parameters())
    assert m.predict(X).dtype == np.float32
    assert 0.0 <= m.evaluate(X, y)["accuracy"] <= 1.0


def test_event_hooks_fire_in_spec_order_and_stop_decision():
    calls = []

    class Recorder(corenet.Callback):
        @hookimpl
        def corenet_on_train_begin(self):
            calls.append("train_begin")

        @hookimpl
        def corenet_on_epoch_begin(self, epoch):
            calls.append(f"epoch_begin{epoch}")

        @hookimpl
        def corenet_on_batch_begin(self, batch):
            calls.append("batch_begin")

        @hookimpl
        def corenet_on_after_backward(self, parameters):
            assert any(np.any(p.grad != 0) for p in parameters)
            calls.append("after_backward")

        @hookimpl
        def corenet_on_before_step(self):
            calls.append("before_step")

        @hookimpl
        def corenet_on_after_step(self):
            calls.append("after_step")

        @hookimpl
        def corenet_on_batch_end(self, loss):
            calls.append("batch_end")

        @hookimpl
        def corenet_on_epoch_end(self, epoch, logs):
            assert "val_loss" in logs
            calls.append(f"epoch_end{epoch}")

        @hookimpl
        def corenet_should_stop(self, epoch):
            return True if epoch == 1 else None

        @hookimpl
        def corenet_on_train_end(self, history):
            calls.append(f"train_end{len(history)}")

    model = Sequential([Dense(1)], input_shape=(2,))
    model.compile(loss="mse", optimizer="sgd")
    X, y = np.ones((4, 2)), np.ones((4, 1))
    model.fit(X, y, epochs=5, batch_size=4, callbacks=[Recorder()], validation_data=(X, y))
    batch = ["batch_begin", "after_backward", "before_step", "after_step", "batch_end"]
    assert calls == (["train_begin", "epoch_begin0", *batch, "epoch_end0", "epoch_begin1",
                      *batch, "epoch_end1", "train_end2"])
    # the callback was unregistered after the run
    pm = corenet.plugins.get_plugin_manager()
    assert not pm.hook.corenet_should_stop.get_hookimpls()


def test_masks_survive_training():
    model = Sequential([Dense(4, activation="tanh"), Dense(1)], input_shape=(3,), random_state=0)
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    model.layers[0].W.mask = mask
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9})
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 3)), rng.normal(size=(32, 1)), epochs=3, batch_size=4)
    assert np.all(model.layers[0].W.data[mask == 0] == 0.0)


def test_validation_split_and_history():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    model = Sequential([Dense(1)], random_state=0)
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.1}, metrics=[])
    h = model.fit(X, y, epochs=30, batch_size=8, validation_split=0.25)
    assert len(h) == 30 and len(h.batch_losses) == 30 * 4
    assert h["val_loss"][-1] < 1e-3 < h["val_loss"][0]


def test_train_step_before_fit_binds_the_optimizer_on_both_paths():
    for fast in (True, False):
        model = Sequential([Dense(3, activation="tanh"), Dense(1)], random_state=0)
        trainer = corenet.Trainer(model, loss="mse", optimizer="sgd")
        trainer.fast_path = fast
        value = trainer.train_step(np.ones((2, 4)), np.zeros((2, 1)))
        assert np.isfinite(value) and trainer.optimizer.bound
