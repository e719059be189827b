"""Case builders and oracles of the activation kernels (family ``activations``)."""
from __future__ import annotations

import numpy as np

from corenet import kernels as K
from corenet._reference import ACTIVATION_PARAMS

from .common import arr, dims, need, opt_out, real, res, rnd, same_or_apart, spec


ACT_NAMES = sorted(K.ACTIVATION_CODES)
ACT_HYPERS = {"activation": "act", "alpha": "float", "beta": "float", "a": "float",
              "b": "float", "gamma": "float"}


def act_kw(rng, names):
    name = str(rng.choice(names))
    kw = {"activation": name if rng.random() < 0.8 else K.ACTIVATION_CODES[name]}
    for key, default in ACTIVATION_PARAMS[name]:
        if rng.random() < 0.5:
            kw[key] = float(default or 0.5) * float(rng.uniform(0.5, 2.0))
    return kw


def act_name(kw, allowed=None):
    a = kw.get("activation")
    if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
        names = [n for n, c in K.ACTIVATION_CODES.items() if c == a]
        need(names, f"unknown code {a!r}")
        name = names[0]
    else:
        need(isinstance(a, str) and a in K.ACTIVATION_CODES, f"unknown activation {a!r}")
        name = a
    need(allowed is None or name in allowed, f"{name} not allowed here")
    params = {k: v for k, v in kw.items() if k in ACT_HYPERS and k != "activation"}
    known = dict(ACTIVATION_PARAMS[name])
    for key, value in params.items():
        need(key in known, f"{name} takes no {key}")
        real(value, key)
        need(not (name == "softplus" and key == "beta" and value <= 0), "beta <= 0")
    return name, {**known, **params}


def o_activation_forward(kw):
    act_name(kw)
    x = arr(kw, "x")
    opt_out(kw, "out", x.shape, x.dtype)
    same_or_apart(kw, "out", "x")
    return [res(x.shape, x.dtype)]


@spec("activations", o_activation_forward, outs={"out": 0}, hypers=ACT_HYPERS)
def b_activation_forward(rng, dt):
    kw = act_kw(rng, ACT_NAMES)
    kw["x"] = rnd(rng, dims(rng, 0, 4, 5), dt)
    if rng.random() < 0.3:
        kw["out"] = kw["x"] if rng.random() < 0.5 else np.empty_like(kw["x"])
    return kw


DIFFERENTIABLE = [n for n in ACT_NAMES if n != "sign"]


def o_activation_backward(kw):
    name, params = act_name(kw)
    need(name != "sign", "sign has no backward")
    dy = arr(kw, "dy")
    for key in ("x", "y"):
        if kw.get(key) is not None:
            arr(kw, key, dtype=dy.dtype, shape=dy.shape)
    if kw.get("x") is None:
        from_y = K.activation_params(name, {k: v for k, v in params.items()
                                            if k in dict(ACTIVATION_PARAMS[name])})[2]
        need(kw.get("y") is not None and from_y, "x is required")
    opt_out(kw, "out", dy.shape, dy.dtype)
    same_or_apart(kw, "out", "dy", "x", "y")
    return [res(dy.shape, dy.dtype)]


@spec("activations", o_activation_backward, outs={"out": 0}, hypers=ACT_HYPERS)
def b_activation_backward(rng, dt):
    kw = act_kw(rng, DIFFERENTIABLE)
    shape = dims(rng, 0, 4, 5)
    kw.update(x=rnd(rng, shape, dt), dy=rnd(rng, shape, dt))
    kw["y"] = np.tanh(kw["x"], out=np.empty_like(kw["x"])) if rng.random() < 0.5 else None
    if rng.random() < 0.3:
        kw["out"] = kw["dy"] if rng.random() < 0.5 else np.empty_like(kw["dy"])
    return kw


def mask_shape(n):
    return ((n + 7) // 8,)


def o_activation_forward_mask(kw):
    act_name(kw, K.MASK_ACTIVATIONS)
    x = arr(kw, "x")
    opt_out(kw, "out", x.shape, x.dtype)
    same_or_apart(kw, "out", "x")
    opt_out(kw, "mask", mask_shape(x.size), np.uint8, kinds=(np.dtype(np.uint8),),
            avoid=("x", "out"))
    return [res(x.shape, x.dtype), res(mask_shape(x.size), np.uint8)]


@spec("activations", o_activation_forward_mask, outs={"out": 0, "mask": 1},
      hypers=ACT_HYPERS)
def b_activation_forward_mask(rng, dt):
    kw = act_kw(rng, list(K.MASK_ACTIVATIONS))
    kw["x"] = rnd(rng, dims(rng, 0, 4, 5), dt)
    if rng.random() < 0.3:
        kw["mask"] = np.empty(mask_shape(kw["x"].size), np.uint8)
    return kw


def o_activation_backward_mask(kw):
    act_name(kw, K.MASK_ACTIVATIONS)
    dy = arr(kw, "dy")
    arr(kw, "mask", shape=mask_shape(dy.size), kinds=(np.dtype(np.uint8),))
    opt_out(kw, "out", dy.shape, dy.dtype, avoid=("mask",))
    same_or_apart(kw, "out", "dy")
    return [res(dy.shape, dy.dtype)]


@spec("activations", o_activation_backward_mask, outs={"out": 0}, hypers=ACT_HYPERS)
def b_activation_backward_mask(rng, dt):
    kw = act_kw(rng, list(K.MASK_ACTIVATIONS))
    kw["dy"] = rnd(rng, dims(rng, 0, 4, 5), dt)
    kw["mask"] = rng.integers(0, 256, mask_shape(kw["dy"].size), dtype=np.uint8)
    return kw


def prelu_alpha(kw, x):
    alpha = arr(kw, "alpha", dtype=x.dtype, ndim=(0, 1))
    need(alpha.size in (1, x.shape[1] if x.ndim >= 2 else 1), "alpha size")
    return alpha


def b_prelu(rng, dt, with_dy):
    x = rnd(rng, dims(rng, 1, 4, 5), dt)
    c = x.shape[1] if x.ndim >= 2 else 1
    kw = {"x": x, "alpha": rnd(rng, (1,) if rng.random() < 0.3 else (c,), dt)}
    if with_dy:
        kw["dy"] = rnd(rng, x.shape, dt)
    return kw


def o_prelu_forward(kw):
    x = arr(kw, "x")
    prelu_alpha(kw, x)
    opt_out(kw, "out", x.shape, x.dtype, avoid=("alpha",))
    same_or_apart(kw, "out", "x")
    return [res(x.shape, x.dtype)]


@spec("activations", o_prelu_forward, outs={"out": 0})
def b_prelu_forward(rng, dt):
    return b_prelu(rng, dt, False)


def o_prelu_backward(kw):
    x = arr(kw, "x")
    arr(kw, "dy", dtype=x.dtype, shape=x.shape)
    alpha = prelu_alpha(kw, x)
    opt_out(kw, "out", x.shape, x.dtype, avoid=("alpha",))
    same_or_apart(kw, "out", "x", "dy")
    return [res(x.shape, x.dtype), res(alpha.shape, x.dtype)]


@spec("activations", o_prelu_backward, outs={"out": 0})
def b_prelu_backward(rng, dt):
    return b_prelu(rng, dt, True)
