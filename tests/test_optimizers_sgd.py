"""GD / SGD / momentum / Nesterov against the worked steps of test_vectors.md §8."""
import numpy as np
import pytest

import corenet
from corenet import HyperparameterError, Parameter
from corenet.optimizers import GD, SGD

# Quadratic A: f = w1^2 + 5 w2^2 ; Quadratic B: f = (w1^2 + 10 w2^2)/2
GRAD_A = np.array([2.0, 10.0])
GRAD_B = np.array([1.0, 10.0])


def run(opt_factory, scale, steps, start=(1.0, 1.0)):
    p = Parameter(np.array(start, dtype=np.float64))
    opt = opt_factory([p])
    out = []
    for _ in range(steps):
        p.grad[...] = scale * p.data
        opt.step()
        out.append(p.data.copy())
    return out


def test_tv_opt_01_gd_first_steps_and_50():
    traj = run(lambda ps: GD(ps, lr=0.05), GRAD_A, 50)
    np.testing.assert_allclose(traj[:3], [(0.9, 0.5), (0.81, 0.25), (0.729, 0.125)], rtol=1e-12)
    np.testing.assert_allclose(traj[-1], (0.005153775207320112, 8.881784197001252e-16),
                               rtol=1e-9, atol=1e-10)
    t15 = run(lambda ps: GD(ps, lr=0.15), GRAD_A, 50)[-1]
    np.testing.assert_allclose(t15, (1.7984650426474134e-08, 8.881784197001252e-16),
                               rtol=1e-9, atol=1e-10)
    t21 = run(lambda ps: GD(ps, lr=0.21), GRAD_A, 50)[-1]
    np.testing.assert_allclose(t21, (1.4838830640714318e-12, 117.3908528796951), rtol=1e-9)


def test_tv_opt_02_momentum_forms():
    traj = run(lambda ps: SGD(ps, lr=0.05, momentum=0.9), GRAD_A, 4)
    np.testing.assert_allclose(traj, [(0.9, 0.5), (0.72, -0.2), (0.486, -0.73), (0.2268, -0.842)],
                               rtol=1e-12, atol=1e-14)
    expected_b = [(0.95, 0.5), (0.8575, -0.2), (0.731375, -0.73), (0.58129375, -0.842),
                  (0.4171559375, -0.5218)]
    for form in ("standard", "classical"):
        traj = run(lambda ps: SGD(ps, lr=0.05, momentum=0.9, momentum_form=form), GRAD_B, 5)
        np.testing.assert_allclose(traj, expected_b, rtol=1e-12, atol=1e-14)
    ema = run(lambda ps: SGD(ps, lr=0.05, momentum=0.9, dampening=0.9), GRAD_A, 3)
    np.testing.assert_allclose(ema, [(0.99, 0.95), (0.9711, 0.8575), (0.944379, 0.731375)],
                               rtol=1e-12)


def test_ema_constant_gradient_buffer():
    p = Parameter(np.zeros(1))
    opt = SGD([p], lr=0.0, momentum=0.9, dampening=0.9)
    for _ in range(5):
        p.grad[...] = 1.0
        opt.step()
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [0.40951], rtol=1e-12)


def test_tv_opt_03_nesterov():
    traj = run(lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), GRAD_A, 4)
    np.testing.assert_allclose(traj, [(0.81, 0.05), (0.5751, -0.4025), (0.327321, -0.404875),
                                      (0.09388791, -0.20350625)], rtol=1e-9, atol=1e-12)
    traj = run(lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), GRAD_B, 5)
    np.testing.assert_allclose(traj, [(0.905, 0.05), (0.778525, -0.4025), (0.631462625, -0.404875),
                                      (0.4741511631, -0.20350625), (0.3159423051, -0.0111371875)],
                               rtol=1e-9, atol=1e-12)


def test_coupled_weight_decay_dynamics():
    # zero loss gradient, coupled L2: theta_t = (1 - lr*lam)^t theta_0 (optimizers.md §1)
    p = Parameter(np.array([2.0, -1.0]))
    opt = SGD([p], lr=0.1, weight_decay=0.5)
    for _ in range(10):
        p.grad[...] = 0.0
        opt.step()
    np.testing.assert_allclose(p.data, np.array([2.0, -1.0]) * 0.5987369392383787, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{"lr": -0.1}, {"momentum": -0.5}, {"momentum": 1.5},
                                    {"dampening": 2.0}, {"nesterov": True},
                                    {"nesterov": True, "momentum": 0.9, "dampening": 0.5},
                                    {"lr": float("nan")}, {"momentum_form": "weird"},
                                    {"betas": (0.9, 0.99)}])
def test_bad_hyperparameters_raise_at_construction(kwargs):
    with pytest.raises(HyperparameterError, match="sgd"):
        SGD(**kwargs)


def test_masks_hold_and_groups_have_own_lr():
    w = Parameter(np.ones((3, 3)))
    b = Parameter(np.ones(3), role="bias")
    w.mask = np.eye(3)
    opt = SGD([{"params": [w], "lr": 0.1}, {"params": [b], "lr": 0.0}], momentum=0.9)
    for _ in range(20):
        w.grad[...] = 1.0
        b.grad[...] = 1.0
        opt.step()
    assert np.all(w.data[~np.eye(3, dtype=bool)] == 0.0)
    assert np.all(b.data == 1.0)
    assert np.all(w.data[np.eye(3, dtype=bool)] < 1.0)


def test_state_dict_round_trip_resumes_bit_identically():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(10, 4))

    def make():
        p = Parameter(np.arange(4, dtype=np.float64))
        return p, SGD([p], lr=0.1, momentum=0.9, nesterov=True)

    p1, o1 = make()
    for g in grads:
        p1.grad[...] = g
        o1.step()
    p2, o2 = make()
    for g in grads[:4]:
        p2.grad[...] = g
        o2.step()
    saved_state, saved_data = o2.state_dict(), p2.data.copy()
    p3, o3 = make()
    p3.data[...] = saved_data
    o3.load_state_dict(saved_state)
    for g in grads[4:]:
        p3.grad[...] = g
        o3.step()
    assert np.array_equal(p1.data, p3.data)


def test_registered_by_name():
    assert corenet.registry.get("optimizer", "sgd") is SGD
    assert corenet.registry.get("optimizer", "gd") is GD
