"""The compiled dense step (corenet.fastpath) computes what the layer-by-layer path does."""
import numpy as np
import pytest

import corenet
from corenet import Sequential, hookimpl
from corenet.fastpath import build_dense_step
from corenet.layers.core import ActivationLayer, Dense


def make(layers, dtype, seed=0):
    return Sequential(layers(), dtype=dtype, random_state=seed)


CONFIGS = {
    "tanh_mse_momentum": (lambda: [Dense(5, activation="tanh"), Dense(2)], "mse",
                          {"name": "sgd", "lr": 0.05, "momentum": 0.9}),
    "relu_ce_labels_nesterov": (lambda: [Dense(7, activation="relu"), Dense(3), "softmax"],
                                "cross_entropy",
                                {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "sigmoid_sse_wd_dampening": (lambda: [Dense(4, activation="sigmoid"),
                                          Dense(3, bias=False, activation="elu"), Dense(2)],
                                 {"name": "sse", "half": False},
                                 {"name": "sgd", "lr": 0.02, "momentum": 0.5,
                                  "dampening": 0.3, "weight_decay": 0.01}),
    "adam_relu_ce": (lambda: [Dense(7, activation="relu"), Dense(3), "softmax"],
                     "cross_entropy", {"name": "adam", "lr": 0.01, "weight_decay": 1e-3}),
    "adamw_tanh_mse_uncorrected": (lambda: [Dense(5, activation="tanh"), Dense(2)], "mse",
                                   {"name": "adamw", "lr": 0.01, "bias_correction": False,
                                    "decoupled_weight_decay": 0.05}),
    "flatten_first": (lambda: ["flatten", Dense(4, activation="relu"), Dense(3), "softmax"],
                      "cross_entropy", {"name": "sgd", "lr": 0.1, "momentum": 0.9}),
    "separate_activation_ce_onehot_plain": (lambda: [Dense(6), ActivationLayer("softplus"),
                                                     Dense(3)],
                                            "cross_entropy", {"name": "gd", "lr": 0.3}),
}


def targets(loss, rng, n, k):
    if loss == "cross_entropy":
        return rng.integers(0, k, n)
    return rng.normal(size=(n, k))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_path_matches_layer_path(name, dtype):
    layers, loss, opt = CONFIGS[name]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 3, 1, 1) if name == "flatten_first" else (48, 3))
    k = 3 if loss == "cross_entropy" else 2
    y = targets(loss, rng, 48, k)
    if name.endswith("onehot_plain"):
        y = np.eye(3)[y]
    results = []
    for fast in (True, False):
        m = make(layers, dtype)
        m.compile(loss=loss, optimizer=opt)
        m.fit(X, y, epochs=3, batch_size=8, fast_path=fast, random_state=1)
        results.append((m.get_flat_parameters(), m.history.batch_losses))
    (p_fast, l_fast), (p_slow, l_slow) = results
    tol = 1e-11 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(p_fast, p_slow, rtol=tol, atol=tol)
    np.testing.assert_allclose(l_fast, l_slow, rtol=tol, atol=tol)


def test_fast_path_is_used_and_respects_masks_and_schedules():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    m = Sequential([Dense(6, activation="tanh"), Dense(2), "softmax"], random_state=0)
    m.build((4,))
    mask = (rng.random((6, 4)) > 0.4).astype(float)
    m.layers[0].W.mask = mask
    m.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9},
              scheduler={"name": "exponential", "gamma": 0.5, "unit": "step"})
    trainer = corenet.Trainer(m, loss=m.loss, optimizer=m.optimizer, scheduler=m.scheduler)
    trainer.fit(X, y, epochs=2, batch_size=8)
    assert trainer._fast is not None          # the compiled step ran
    assert np.all(m.layers[0].W.data[mask == 0] == 0.0)
    reference = Sequential([Dense(6, activation="tanh"), Dense(2), "softmax"], random_state=0)
    reference.build((4,))
    reference.layers[0].W.mask = mask
    reference.compile(loss="cross_entropy",
                      optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9},
                      scheduler={"name": "exponential", "gamma": 0.5, "unit": "step"})
    corenet.Trainer(reference, loss=reference.loss, optimizer=reference.optimizer,
                    scheduler=reference.scheduler).fit(X, y, epochs=2, batch_size=8,
                                                       fast_path=False)
    np.testing.assert_allclose(m.get_flat_parameters(), reference.get_flat_parameters(),
                               rtol=1e-11, atol=1e-12)


def test_mask_set_mid_training_is_honoured():
    class PruneAfterFirstBatch(corenet.Callback):
        @hookimpl
        def corenet_on_batch_end(self, trainer, batch):
            if batch == 0 and trainer.epoch == 0:
                W = trainer.model.layers[0].W
                W.mask = np.arange(W.size).reshape(W.shape) % 2

    rng = np.random.default_rng(3)
    m = Sequential([Dense(4, activation="relu"), Dense(1)], random_state=0)
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9})
    m.fit(rng.normal(size=(32, 3)), rng.normal(size=(32, 1)), epochs=2, batch_size=4,
          callbacks=[PruneAfterFirstBatch()])
    W = m.layers[0].W
    assert np.all(W.data[W.mask == 0] == 0.0)


def test_configurations_that_do_not_qualify():
    m = Sequential([Dense(3, activation="prelu"), Dense(1)], random_state=0, input_shape=(2,))
    sgd = corenet.create("optimizer", "sgd").bind(m.parameters())
    assert build_dense_step(m, corenet.create("loss", "mse"), sgd, 4) is None
    m = Sequential([Dense(3), Dense(1)], random_state=0, input_shape=(2,))
    sgd = corenet.create("optimizer", "sgd").bind(m.parameters())
    assert build_dense_step(m, corenet.create("loss", "mae"), sgd, 4) is None
    assert build_dense_step(m, corenet.create("loss", "mse"), sgd, 4,
                            regularizers=[corenet.create("regularizer", "l2")]) is None
    assert build_dense_step(m, corenet.create("loss", "mse", reduction="sum"), sgd, 4) is None
    assert build_dense_step(m, corenet.create("loss", "mse"), sgd, 4) is not None


def test_after_backward_hook_forces_the_layer_path():
    seen = []

    class Watch(corenet.Callback):
        @hookimpl
        def corenet_on_after_backward(self, parameters):
            seen.append(float(np.abs(parameters[0].grad).sum()))

    rng = np.random.default_rng(0)
    m = Sequential([Dense(3, activation="tanh"), Dense(1)], random_state=0)
    m.compile(loss="mse", optimizer="sgd")
    m.fit(rng.normal(size=(8, 2)), rng.normal(size=(8, 1)), epochs=1, batch_size=4,
          callbacks=[Watch()])
    assert len(seen) == 2 and all(v > 0 for v in seen)


def test_bad_labels_are_refused_on_the_fast_path():
    m = Sequential([Dense(3), "softmax"], random_state=0)
    m.compile(loss="cross_entropy", optimizer="sgd")
    with pytest.raises(ValueError, match="cross_entropy"):
        m.fit(np.zeros((4, 2)), np.array([0, 1, 2, 7]), epochs=1, batch_size=4)
