"""Learning-rate schedules (optimizers.md §13) against TV-SCHED-01, with every optimizer."""
import math

import numpy as np
import pytest

import corenet
from corenet import HyperparameterError, Parameter


def lr_after(schedule, t, base=0.1, optimizer="sgd"):
    p = Parameter(np.zeros(2))
    opt = corenet.create("optimizer", optimizer, lr=base).bind([p])
    sched = corenet.registry.create("scheduler", schedule).bind(opt)
    for _ in range(t):
        sched.step_epoch()
    return opt.param_groups[0]["lr"]


def test_tv_sched_01():
    for t, expected in ((0, 0.1), (149, 0.1), (150, 0.01), (300, 0.001)):
        assert math.isclose(lr_after({"name": "step", "step_size": 150, "gamma": 0.1}, t),
                            expected, rel_tol=1e-12)
    assert math.isclose(lr_after({"name": "cosine", "T": 100}, 50), 0.05, rel_tol=1e-12)
    assert math.isclose(lr_after({"name": "cosine", "T": 100}, 25), 0.08535533905932738,
                        rel_tol=1e-12)
    assert math.isclose(lr_after({"name": "annealing", "t0": 100}, 200), 0.05, rel_tol=1e-12)
    # updates per epoch: ceil(N / B)
    assert math.ceil(50_000 / 32) == 1563 and math.ceil(60_000 / 64) == 938


def test_formulas():
    assert math.isclose(lr_after({"name": "exponential", "gamma": 0.5}, 3), 0.0125)
    assert math.isclose(lr_after({"name": "inverse_time", "decay": 0.5}, 2), 0.05)
    assert math.isclose(lr_after({"name": "multistep", "milestones": [2, 4]}, 4), 0.001)
    warm = [lr_after({"name": "linear_warmup", "warmup": 4}, t) for t in range(6)]
    np.testing.assert_allclose(warm, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert lr_after("constant", 10) == 0.1


def test_reduce_on_plateau():
    p = Parameter(np.zeros(1))
    opt = corenet.create("optimizer", "sgd", lr=1.0).bind([p])
    sched = corenet.create("scheduler", "reduce_on_plateau", factor=0.5, patience=2,
                           min_lr=0.2).bind(opt)
    lrs = []
    for metric in [1.0, 0.9] + [0.9] * 9:
        sched.step_epoch(metric)
        lrs.append(opt.param_groups[0]["lr"])
    # 0.9 improves on 1.0; then every third non-improving epoch (> patience 2) halves
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]
    for _ in range(20):
        sched.step_epoch(0.9)
    assert opt.param_groups[0]["lr"] == 0.2  # never below min_lr


GRADIENT_OPTIMIZERS = [n for n in corenet.registry.names("optimizer")
                       if not getattr(corenet.registry.get("optimizer", n), "needs_data", False)]


@pytest.mark.parametrize("name", GRADIENT_OPTIMIZERS)
def test_every_optimizer_follows_a_schedule_in_fit(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3))
    y = X @ np.array([[1.0], [-1.0], [0.5]])
    model = corenet.Sequential([corenet.create("layer", "dense", out_features=1)],
                               random_state=0)
    cls = corenet.registry.get("optimizer", name)
    kwargs = {"lr": 0.05} if "lr" in cls.defaults else {}
    model.compile(loss="mse", optimizer={"name": name, **kwargs},
                  scheduler={"name": "step", "step_size": 1, "gamma": 0.5})
    model.fit(X, y, epochs=3, batch_size=16)
    assert math.isclose(model.optimizer.param_groups[0]["lr"],
                        model.scheduler.base_lrs[0] * 0.5 ** 3)


def test_per_step_unit_and_state_round_trip():
    p = Parameter(np.zeros(1))
    opt = corenet.create("optimizer", "sgd", lr=1.0).bind([p])
    sched = corenet.create("scheduler", "exponential", gamma=0.5, unit="step").bind(opt)
    sched.step_epoch()
    assert opt.param_groups[0]["lr"] == 1.0
    sched.step_batch()
    sched.step_batch()
    assert opt.param_groups[0]["lr"] == 0.25
    state = sched.state_dict()
    other = corenet.create("scheduler", "exponential", gamma=0.5, unit="step").bind(opt)
    other.load_state_dict(state)
    other.step_batch()
    assert opt.param_groups[0]["lr"] == 0.125


@pytest.mark.parametrize("spec", [{"name": "step", "gamma": -1}, {"name": "step", "step_size": 0},
                                  {"name": "cosine", "T": 0}, {"name": "exponential", "unit": "x"},
                                  {"name": "reduce_on_plateau", "factor": 1.5},
                                  {"name": "linear_warmup", "warmup": 0}])
def test_bad_hyperparameters(spec):
    with pytest.raises(HyperparameterError):
        corenet.registry.create("scheduler", spec)
