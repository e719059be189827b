"""Callbacks (regularization.md §7, D-55; TV-REG-07): early stopping, pocket,
tolerance_stop, history; registry lookup, configs and hyperparameter errors."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from corenet import Sequential, registry
from corenet.callbacks import EarlyStopping, HistoryCallback, Pocket, ToleranceStop
from corenet.errors import HyperparameterError
from corenet.layers.core import Dense

TV07 = [1.0, 0.8, 0.7, 0.72, 0.69, 0.71, 0.73, 0.74, 0.6]


def small_model(seed=0, **layers_kw):
    m = Sequential([Dense(1, 3)], input_shape=(3,), random_state=seed)
    m.build((3,))
    return m


def drive(cb, model, values, key="val_loss"):
    """Feed per-epoch values to a stop/pocket callback; parameters = epoch index."""
    trainer = SimpleNamespace(model=model)
    cb.corenet_on_train_begin(trainer=trainer)
    stopped = None
    for e, v in enumerate(values):
        for p in model.parameters():
            p.data[...] = e
        if cb.corenet_should_stop(trainer=trainer, epoch=e, logs={key: v}):
            stopped = e
            break
    cb.corenet_on_train_end(trainer=trainer)
    return stopped


def test_registry_names_and_configs():
    assert {"history", "early_stopping", "pocket", "tolerance_stop", "checkpoint"} <= \
        set(registry.names("callback"))
    for cb in (EarlyStopping("val_acc", 3, 0.1, baseline=0.5, start_from_epoch=2),
               Pocket("loss", "min", 0.01), ToleranceStop(1e-3, None, 50, "loss")):
        cfg = json.loads(json.dumps(cb.get_config()))
        again = registry.create("callback", {"name": cb.name, **cfg})
        assert again.get_config() == cb.get_config()
    assert EarlyStopping("val_accuracy").mode == "max"


@pytest.mark.parametrize("kind, kwargs", [
    ("early_stopping", {"patience": -1}), ("early_stopping", {"patience": 1.5}),
    ("early_stopping", {"min_delta": -0.1}), ("early_stopping", {"mode": "up"}),
    ("early_stopping", {"start_from_epoch": -2}), ("early_stopping", {"baseline": np.nan}),
    ("pocket", {"mode": "best"}), ("tolerance_stop", {}),
    ("tolerance_stop", {"tol_loss": -1}), ("tolerance_stop", {"tol_step": np.inf}),
    ("tolerance_stop", {"max_epochs": 0})])
def test_bad_hyperparameters(kind, kwargs):
    with pytest.raises(HyperparameterError, match=kind):
        registry.create("callback", {"name": kind, **kwargs})


@pytest.mark.parametrize("min_delta, stop, best", [(0.0, 6, 4), (0.02, 4, 2)])
def test_tv_reg_07_early_stopping(min_delta, stop, best):
    m = small_model()
    cb = EarlyStopping(patience=2, min_delta=min_delta)
    assert drive(cb, m, TV07) == stop
    assert cb.best_epoch == best and cb.stopped_epoch == stop
    assert cb.best == TV07[best]
    for p in m.parameters():                                # best epoch's weights restored
        np.testing.assert_array_equal(p.data, best)


def test_early_stopping_baseline_start_and_no_restore():
    m = small_model()
    cb = EarlyStopping(patience=2, baseline=0.75)           # 1.0, 0.8 do not beat 0.75
    assert drive(cb, m, TV07) == 1 and cb.best_epoch is None
    cb = EarlyStopping(patience=3, baseline=0.75)
    assert drive(cb, m, TV07) == 7 and cb.best_epoch == 4
    cb = EarlyStopping(patience=1, start_from_epoch=3)
    assert drive(cb, m, TV07) == 5 and cb.best_epoch == 4
    cb = EarlyStopping(patience=2, restore_best_weights=False)
    drive(cb, m, TV07)
    assert all(np.all(p.data == 6) for p in m.parameters())
    with pytest.raises(KeyError, match="val_loss"):
        drive(EarlyStopping(), m, [1.0], key="loss")


def test_early_stopping_snapshot_includes_masks_and_buffers():
    BN = registry.get("layer", "batch_norm")
    bn = BN(3)
    m = Sequential([Dense(3, 3), bn], input_shape=(3,), random_state=0)
    X = np.random.default_rng(0).normal(size=(8, 3))
    m.forward(X)                                           # training pass: running stats
    W = m.layers[0].W
    W.mask = np.array([[1, 0, 1]] * 3)
    cb = EarlyStopping(patience=1)
    trainer = SimpleNamespace(model=m)
    cb.corenet_on_train_begin(trainer=trainer)
    cb.corenet_should_stop(trainer=trainer, epoch=0, logs={"val_loss": 1.0})
    saved = {k: v.copy() for k, v in bn.buffers().items()}
    data = W.data.copy()
    m.forward(X * 3 + 1)
    W.mask = None
    W.data[...] = 5.0
    assert cb.corenet_should_stop(trainer=trainer, epoch=1, logs={"val_loss": 2.0})
    cb.corenet_on_train_end(trainer=trainer)
    np.testing.assert_array_equal(W.data, data)
    assert W.masked and not W.data[:, 1].any()
    for k, v in bn.buffers().items():
        np.testing.assert_array_equal(v, saved[k])


def test_early_stopping_in_training_restores_best():
    rng = np.random.default_rng(1)
    X, Xv = rng.normal(size=(32, 3)), rng.normal(size=(16, 3))
    w = np.array([[1.0], [-1.0], [0.5]])
    y, yv = X @ w + rng.normal(size=(32, 1)), Xv @ w
    m = small_model()
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.3})
    cb = EarlyStopping(patience=3)
    snaps = []

    class Recorder:
        @__import__("corenet").hookimpl
        def corenet_on_epoch_end(self, trainer, epoch, logs):
            snaps.append([p.data.copy() for p in trainer.model.parameters()])

    h = m.fit(X, y, epochs=200, batch_size=4, validation_data=(Xv, yv),
              callbacks=[cb, Recorder()], random_state=0)
    assert len(h) < 200 and cb.stopped_epoch == len(h) - 1
    best = int(np.argmin(h["val_loss"]))
    assert cb.best_epoch == best
    for p, s in zip(m.parameters(), snaps[best]):
        np.testing.assert_array_equal(p.data, s)


def test_pocket_never_stops_and_restores_best():
    m = small_model()
    cb = Pocket()
    assert drive(cb, m, TV07) is None
    assert cb.best_epoch == 8 and cb.best == 0.6
    vals = [0.5, 0.9, 0.7, 0.6]
    cb = Pocket(monitor="val_accuracy")
    assert drive(cb, m, vals, key="val_accuracy") is None
    assert cb.best_epoch == 1
    for p in m.parameters():
        np.testing.assert_array_equal(p.data, 1)


def test_pocket_in_training_with_training_loss():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    y = (X @ np.array([[1.0], [2.0], [-1.0]]) > 0).astype(float)
    m = small_model()
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.8})
    cb = Pocket(monitor="loss")
    h = m.fit(X, y, epochs=15, batch_size=40, callbacks=[cb], shuffle=False)
    assert len(h) == 15
    assert cb.best == min(h["loss"]) and cb.best_epoch == int(np.argmin(h["loss"]))


def test_tolerance_stop_rules():
    m = small_model()
    trainer = SimpleNamespace(model=m)
    cb = ToleranceStop(tol_loss=0.05)
    cb.corenet_on_train_begin(trainer=trainer)
    stops = [cb.corenet_should_stop(trainer=trainer, epoch=e, logs={"loss": v})
             for e, v in enumerate([1.0, 0.8, 0.7, 0.66])]
    assert stops == [None, None, None, True] and cb.reason == "tol_loss"
    cb = ToleranceStop(tol_loss=0.05)                       # the objective wins over loss
    cb.corenet_on_train_begin(trainer=trainer)
    assert cb.update(m, 0, {"loss": 1.0, "objective": 2.0}) is None
    assert cb.update(m, 1, {"loss": 1.0, "objective": 1.5}) is None
    cb = ToleranceStop(max_epochs=3)
    cb.corenet_on_train_begin(trainer=trainer)
    assert [cb.update(m, e, {"loss": 1.0}) for e in range(3)] == [None, None, True]
    assert cb.reason == "max_epochs"
    cb = ToleranceStop(tol_step=0.1)
    cb.corenet_on_train_begin(trainer=trainer)
    W = m.layers[0].W
    W.data += 0.5
    assert cb.update(m, 0, {"loss": 1.0}) is None
    W.data[0, 0] += 0.05
    assert cb.update(m, 1, {"loss": 1.0}) is True and cb.reason == "tol_step"


def test_tolerance_stop_in_training():
    X = np.random.default_rng(3).normal(size=(16, 3))
    y = X.sum(axis=1, keepdims=True)
    m = small_model()
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.0})
    cb = ToleranceStop(tol_step=0.0)
    h = m.fit(X, y, epochs=10, batch_size=4, callbacks=[cb])
    assert len(h) == 1 and cb.stopped_epoch == 0 and cb.reason == "tol_step"
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.05})
    cb = ToleranceStop(tol_loss=1e-4, max_epochs=40)
    h = m.fit(X, y, epochs=100, batch_size=16, callbacks=[cb], shuffle=False)
    assert len(h) <= 40 and cb.stopped_epoch == len(h) - 1
    if cb.reason == "tol_loss":
        assert abs(h["loss"][-1] - h["loss"][-2]) <= 1e-4


def test_history_callback():
    X = np.random.default_rng(4).normal(size=(12, 3))
    y = X[:, :1]
    m = small_model()
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.1})
    cb = HistoryCallback()
    h = m.fit(X, y, epochs=3, batch_size=4, callbacks=[cb])
    assert len(cb.batch_losses) == 9 and [e["loss"] for e in cb.epochs] == h["loss"]
