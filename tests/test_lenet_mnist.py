"""LeNet-5 on the bundled MNIST split: a fast smoke run of the public API (the full ≥ 98 %
run is benchmarks/bench_lenet.py)."""
import numpy as np
import pytest

import corenet
from corenet import models
from corenet.datasets import mnist_split


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = corenet.get_num_threads()
    corenet.set_num_threads(1)
    yield
    corenet.set_num_threads(old)


def test_lenet5_learns_a_few_hundred_digits():
    X_tr, y_tr, X_te, y_te = mnist_split()
    X_tr, y_tr = X_tr[:600].astype(np.float32), y_tr[:600]
    X_te, y_te = X_te[:500].astype(np.float32), y_te[:500]
    model = models.lenet5(activation="relu", pool="max", input_size=28, dtype="float32",
                          random_state=0)
    assert models.count_params(model) == 61706
    model.compile(loss="cross_entropy", optimizer={"name": "adam", "lr": 2e-3},
                  metrics=["accuracy"])
    history = model.fit(X_tr, y_tr, epochs=3, batch_size=32, random_state=0,
                        validation_data=(X_te, y_te))
    losses = history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(history.batch_losses[:5]) > 2.0          # starts near log(10)
    accuracy = float(np.mean(model.predict_classes(X_te) == y_te))
    assert accuracy > 0.75                                   # chance is 0.1
    assert history["val_accuracy"][-1] == pytest.approx(accuracy)


def test_train_lenet5_mnist_entry_point():
    model, accuracy, seconds = models.train_lenet5_mnist(epochs=3, seed=1, max_train=600)
    assert model.input_shape == (1, 28, 28) and model.dtype == np.float32
    assert 0.5 < accuracy <= 1.0 and seconds > 0              # chance is 0.1
    assert model.history.batch_losses[-1] < model.history.batch_losses[0]
