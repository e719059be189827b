"""Multi-task training (regularization.md §6, D-58): a shared trunk, one head per task,
per-task losses and weights, missing labels masked — end to end through the public API."""
import numpy as np

import corenet
from corenet import Graph
from corenet.layers.core import Dense


def make_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    regression = X @ np.array([1.0, -1.0, 0.5, 0.0]) + 0.05 * rng.normal(size=n)
    labels = (X[:, 0] * X[:, 1] > 0).astype(float) + (X[:, 2] > 1.0)
    targets = np.column_stack([regression, labels])
    missing = rng.random(n) < 0.3            # 30 % of the class labels are unknown
    targets[missing, 1] = np.nan
    return X, targets, missing


def build(seed=0):
    g = Graph(inputs="x", outputs="heads", random_state=seed)
    g.add_node("trunk", Dense(16, activation="tanh"), "x")
    g.add_node("reg_head", Dense(1), "trunk")
    g.add_node("cls_head", Dense(3), "trunk")
    g.add_node("heads", "concat", ["reg_head", "cls_head"])
    return g


LOSS = {"name": "multitask", "losses": [
    {"name": "mse", "columns": [0, 1], "target_columns": [0, 1], "weight": 1.0},
    {"name": "cross_entropy", "columns": [1, 4], "target_columns": 1, "weight": 0.5}]}


def test_shared_trunk_learns_both_tasks_with_missing_labels():
    X, targets, missing = make_data()
    model = build()
    model.compile(loss=LOSS, optimizer={"name": "adam", "lr": 0.02})
    history = model.fit(X, targets, epochs=60, batch_size=32, random_state=0)
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    out = model.predict(X)
    known = ~missing
    mse = np.mean((out[:, 0] - targets[:, 0]) ** 2)
    accuracy = np.mean(np.argmax(out[known, 1:], axis=1) == targets[known, 1])
    assert mse < 0.05 and accuracy > 0.85


def test_missing_labels_get_no_gradient_and_task_weights_scale():
    X, targets, missing = make_data(n=20, seed=1)
    model = build(seed=1)
    model.build((4,))
    loss = corenet.registry.create("loss", LOSS)
    out = model.predict(X)
    value, grad = loss.value_and_grad(out, targets)
    assert np.all(grad[missing, 1:] == 0.0)           # no class gradient where unknown
    assert np.any(grad[~missing, 1:] != 0.0)
    doubled = corenet.registry.create("loss", {**LOSS, "losses": [
        LOSS["losses"][0], {**LOSS["losses"][1], "weight": 1.0}]})
    v2, g2 = doubled.value_and_grad(out, targets)
    np.testing.assert_allclose(g2[:, 1:], 2 * grad[:, 1:], rtol=1e-12)
    np.testing.assert_allclose(g2[:, :1], grad[:, :1], rtol=1e-12)
