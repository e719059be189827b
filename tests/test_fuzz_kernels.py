"""Seeded fuzz test of the input validation of the kernel facade (:mod:`corenet.kernels`).

Every public function that takes arrays gets random *valid* calls (batch 1-3, channels
1-4, spatial 1-9, kernel 1-4, stride 1-3, padding 0-2, dilation 1-2, float32/float64),
each followed by one random *mutation*: a wrong rank, one wrong dimension, a zero-size
dimension, another dtype, non-contiguous memory, a list / scalar / None instead of an
array, a read-only, wrong or overlapping ``out=``, a hyperparameter out of range, labels
or switches out of range, NaN / inf values.

An oracle written from the docstrings decides whether a call is valid and, if so, the
shape and dtype of its results. A call must then either succeed with those results
(valid input) or raise ``ValueError`` / ``TypeError`` / ``NotImplementedError`` (the
errors of :mod:`corenet.errors` derive from them; ``MemoryError`` for outputs too large
to allocate) with a message naming the kernel (invalid input). Anything else fails: an
unnamed or foreign exception (IndexError, OverflowError, a Cython buffer error), a
rejected valid call, an accepted invalid one (a silent broadcast or cast), wrong result
shapes, a crash or a hang.

The loop runs in a child process, so a segfault or a hang fails the test of its family
with the seed and the last case; ``faulthandler`` ends a call that takes over
``CALL_TIMEOUT`` seconds. A case is reproduced in-process with a traceback by::

    python tests/test_fuzz_kernels.py --case FUNCTION INDEX
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import math
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from corenet import kernels as K
from corenet._reference import ACTIVATION_PARAMS

SEED = 20_240_611          # base seed of every case: rng = default_rng([SEED, crc32(fn), i])
CASES = 80                 # cases (one valid call + one mutated call) per function
CALL_TIMEOUT = 10.0        # seconds one call may take in the child before it is a hang
RUN_TIMEOUT = 300.0        # seconds the child may take for all families
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
MAX_ELEMENTS = 1 << 31     # a larger output cannot be allocated here: the call must raise
HUGE = 2 ** 40


# ----------------------------------------------------------------------------- oracle helpers
class Invalid(Exception):
    """The documented contract rejects the call (it must raise)."""


def need(ok, why):
    if not ok:
        raise Invalid(why)


def arr(kw, name, *, dtype=None, shape=None, ndim=None, kinds=FLOATS, writable=False,
        contiguous=True):
    """kw[name] as a valid array of the contract, else Invalid."""
    a = kw.get(name)
    need(isinstance(a, np.ndarray), f"{name} is not an ndarray")
    need(a.dtype in kinds, f"{name} has dtype {a.dtype}")
    need(dtype is None or a.dtype == dtype, f"{name} has dtype {a.dtype}, not {dtype}")
    need(ndim is None or a.ndim in np.atleast_1d(ndim), f"{name} has {a.ndim} dimensions")
    need(shape is None or a.shape == tuple(shape), f"{name} has shape {a.shape} != {shape}")
    need(not contiguous or a.flags.c_contiguous, f"{name} is not C-contiguous")
    need(not writable or a.flags.writeable, f"{name} is read-only")
    return a


def opt_out(kw, name, shape, dtype, *, avoid=(), kinds=FLOATS):
    """An optional output: None, or a writable C-contiguous array of the shape and dtype
    that does not overlap the arrays named in ``avoid``."""
    if kw.get(name) is None:
        return
    out = arr(kw, name, dtype=dtype, shape=shape, writable=True, kinds=kinds)
    for other in avoid:
        a = kw.get(other)
        need(not (isinstance(a, np.ndarray) and np.may_share_memory(out, a)),
             f"{name} overlaps {other}")


def same_or_apart(kw, out_name, *names):
    """Element-wise kernels: out may be an input itself, but must not partially overlap."""
    out = kw.get(out_name)
    for name in names:
        a = kw.get(name)
        if isinstance(out, np.ndarray) and isinstance(a, np.ndarray) \
                and np.may_share_memory(out, a):
            need(out.__array_interface__["data"][0] == a.__array_interface__["data"][0]
                 and out.strides == a.strides, f"{out_name} partially overlaps {name}")


def res(shape, dtype):
    shape = tuple(int(s) for s in shape)
    need(math.prod(shape) <= MAX_ELEMENTS, f"output {shape} is too large to allocate")
    return shape, np.dtype(dtype)


def integer(v, minimum, name):
    need(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)),
         f"{name} {v!r} is not an int")
    need(v >= minimum, f"{name} {v!r} < {minimum}")
    need(v < 2 ** 31, f"{name} {v!r} does not fit a C int")
    return int(v)


def ints(v, n, minimum, name):
    """An int or n ints (tuple or list) as a tuple of n ints."""
    if isinstance(v, (tuple, list)):
        need(len(v) == n, f"{name} {v!r} does not have {n} entries")
        return tuple(integer(u, minimum, name) for u in v)
    return (integer(v, minimum, name),) * n


def shape_arg(v, n, name):
    """A shape argument (any sequence of n ints >= 0) as a tuple."""
    need(isinstance(v, (tuple, list, np.ndarray)), f"{name} {v!r} is not a sequence")
    need(len(v) == n, f"{name} {v!r} does not have {n} entries")
    need(all(isinstance(u, (int, np.integer)) and not isinstance(u, (bool, np.bool_))
             and u >= 0 for u in v), f"{name} {v!r} has entries that are not ints >= 0")
    return tuple(int(u) for u in v)


def real(v, name):
    need(isinstance(v, (int, float, np.integer, np.floating)), f"{name} {v!r} not a number")
    need(math.isfinite(v), f"{name} {v!r} is not finite")
    return float(v)


# ----------------------------------------------------------------------------- case builders
SPECS: dict = {}


def register(name, family, build, oracle, *, outs=(), hypers=None, special=None,
             inplace=()):
    """Register a public function: ``build(rng, dtype) -> kwargs`` makes a valid call,
    ``oracle(kwargs) -> [(shape, dtype) | None, ...]`` gives its documented results (or
    raises Invalid); ``outs`` maps output arguments to their index in those results,
    ``hypers`` hyperparameter names to a kind of bad values, ``special(rng, kw)`` is a
    function-specific mutation; ``inplace`` arguments are updated by the call (every
    other input must be left unchanged)."""
    SPECS[name] = dict(family=family, build=build, oracle=oracle, outs=dict(outs),
                       hypers=dict(hypers or {}), special=special, inplace=set(inplace))


def spec(family, oracle, **options):
    """Decorator of a builder ``b_<name>``: register(name, family, builder, oracle, ...)."""
    def decorate(build):
        register(build.__name__.removeprefix("b_"), family, build, oracle, **options)
        return build
    return decorate


def rnd(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def dims(rng, lo, hi, size=9):
    return tuple(int(v) for v in rng.integers(1, size + 1, int(rng.integers(lo, hi + 1))))


def form(rng, values, pairs=False):
    """An int (all equal, sometimes), a tuple or a list of ``values``."""
    values = [tuple(int(u) for u in v) if pairs else int(v) for v in values]
    r = rng.random()
    if not pairs and len(set(values)) == 1 and r < 0.5:
        return values[0]
    return list(values) if r > 0.85 else tuple(values)


# activations ------------------------------------------------------------------
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


# softmax and cross-entropy -----------------------------------------------------------
def o_rowwise(kw):
    z = arr(kw, "z", ndim=(1, 2, 3, 4, 5, 6))
    axis = kw.get("axis", -1)
    need(isinstance(axis, (int, np.integer)), f"axis {axis!r} is not an int")
    need(-z.ndim <= axis < z.ndim, "axis out of range")
    opt_out(kw, "out", z.shape, z.dtype)
    same_or_apart(kw, "out", "z")
    return [res(z.shape, z.dtype)]


def b_rowwise(rng, dt):
    z = rnd(rng, dims(rng, 1, 4, 5), dt)
    kw = {"z": z, "axis": int(rng.integers(-z.ndim, z.ndim))}
    if rng.random() < 0.3:
        kw["out"] = z if rng.random() < 0.5 else np.empty_like(z)
    return kw


for _name in ("softmax", "log_softmax"):
    register(_name, "softmax_ce", b_rowwise, o_rowwise, outs={"out": 0},
             hypers={"axis": "axis"})


def labels_special(rng, kw):
    """Integer labels out of range, negative, huge, of another int dtype or as floats."""
    z = kw["z"]
    n, k = z.shape
    y = kw["y"] if kw["y"].dtype.kind in "iu" else np.argmax(kw["y"], axis=1)
    y = y.copy()
    what = rng.choice(["k", "negative", "huge", "float", "int32", "uint8", "column"])
    if what == "k":
        y[rng.integers(n)] = k
    elif what == "negative":
        y[rng.integers(n)] = -1
    elif what == "huge":
        y[rng.integers(n)] = HUGE
    elif what == "float":
        y = y.astype(z.dtype)
    elif what == "int32":
        y = y.astype(np.int32)
    elif what == "uint8":
        y = y.astype(np.uint8)
    else:
        y = y[:, None]
    return f"labels:{what}", {**kw, "y": y}


def o_softmax_cross_entropy(kw):
    z = arr(kw, "z", ndim=2)
    n, k = z.shape
    need(k > 0 or n == 0, "no classes")
    y = kw.get("y")
    need(isinstance(y, np.ndarray), "y is not an ndarray")
    if y.dtype.kind in "iu":
        need(y.shape == (n,), "labels shape")
        need(n == 0 or (y.min() >= 0 and y.max() < k), "labels out of range")
    else:
        arr(kw, "y", dtype=z.dtype, shape=z.shape)
    opt_out(kw, "loss_out", (n,), z.dtype)
    opt_out(kw, "grad_out", (n, k), z.dtype, avoid=("z", "y", "loss_out"))
    return [res((n,), z.dtype), res((n, k), z.dtype)]


@spec("softmax_ce", o_softmax_cross_entropy, outs={"loss_out": 0, "grad_out": 1},
      special=labels_special)
def b_softmax_cross_entropy(rng, dt):
    n, k = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    labels = rng.integers(0, k, n)
    y = labels if rng.random() < 0.5 else np.eye(k, dtype=dt)[labels]
    return {"z": rnd(rng, (n, k), dt), "y": y}


# pooling ------------------------------------------------------------------------------
POOL_HYPERS = {"kernel_size": "int", "stride": "int", "padding": "int"}


def pool_geometry(kw, hw):
    """Output (H_out, W_out) of a pooling window per pool2d_geometry's docstring."""
    k = ints(kw.get("kernel_size", 2), 2, 1, "kernel_size")
    s = k if kw.get("stride") is None else ints(kw["stride"], 2, 1, "stride")
    p = kw.get("padding", 0)
    if isinstance(p, str):
        need(p in ("valid", "same"), f"padding {p!r}")
        need(p == "valid" or s == (1, 1), "'same' needs stride 1")
        pads = ((0, 0),) * 2 if p == "valid" else \
            tuple(((kk - 1) // 2, kk - 1 - (kk - 1) // 2) for kk in k)
    elif isinstance(p, (tuple, list)) and len(p) == 2 \
            and all(isinstance(q, (tuple, list)) for q in p):
        pads = tuple(ints(q, 2, 0, "padding") for q in p)
    else:
        pads = tuple((q, q) for q in ints(p, 2, 0, "padding"))
    need(all(2 * v <= kk for pad, kk in zip(pads, k) for v in pad), "padding > kernel/2")
    need(min(hw) >= 1, "empty input plane")
    out = tuple((h + lo + hi - kk) // ss + 1 for h, (lo, hi), kk, ss in zip(hw, pads, k, s))
    need(all(h + lo + hi >= kk for h, (lo, hi), kk in zip(hw, pads, k)), "window > input")
    return out


def b_pool_window(rng):
    """kernel_size, stride, padding and an input plane they fit."""
    k = rng.integers(1, 5, 2)
    p = [int(rng.integers(0, kk // 2 + 1)) for kk in k] if rng.random() < 0.8 else [0, 0]
    hw = tuple(int(rng.integers(max(1, kk - 2 * pp), 10)) for kk, pp in zip(k, p))
    kw = {"kernel_size": form(rng, k)}
    if rng.random() < 0.7:
        kw["stride"] = form(rng, rng.integers(1, 4, 2))
    if any(p) or rng.random() < 0.5:
        kw["padding"] = form(rng, p)
    return kw, hw


def shape_form(rng, shape):
    return list(shape) if rng.random() < 0.2 else tuple(shape)


def switches_special(rng, kw):
    """Switches out of their plane, negative or huge (the kernels skip and count them,
    the facade raises)."""
    name = "switches"
    s = kw[name].copy()
    if s.size == 0:
        return "switches:empty", kw
    what = rng.choice(["plane", "negative", "huge"])
    s.flat[rng.integers(s.size)] = {"plane": 10 ** 4, "negative": -1, "huge": HUGE}[what]
    return f"switches:{what}", {**kw, name: s}


def switches(kw, shape, plane):
    s = arr(kw, "switches", shape=shape, kinds=(np.dtype(np.int64),))
    need(s.size == 0 or (s.min() >= 0 and s.max() < plane), "switch out of range")
    return s


def o_max_pool2d_forward(kw):
    x = arr(kw, "x", ndim=4)
    shape = x.shape[:2] + pool_geometry(kw, x.shape[2:])
    opt_out(kw, "out", shape, x.dtype, avoid=("x",))
    opt_out(kw, "switches_out", shape, np.int64, kinds=(np.dtype(np.int64),),
            avoid=("x", "out"))
    return [res(shape, x.dtype), res(shape, np.int64)]


@spec("pooling", o_max_pool2d_forward, outs={"out": 0, "switches_out": 1},
      hypers=POOL_HYPERS)
def b_max_pool2d_forward(rng, dt):
    kw, hw = b_pool_window(rng)
    return {"x": rnd(rng, (int(rng.integers(1, 4)), int(rng.integers(1, 5))) + hw, dt), **kw}


def o_max_pool2d_backward(kw):
    dy = arr(kw, "dy", ndim=4)
    shape = shape_arg(kw.get("input_shape"), 4, "input_shape")
    need(shape[:2] == dy.shape[:2], "input_shape N, C")
    switches(kw, dy.shape, shape[2] * shape[3])
    opt_out(kw, "out", shape, dy.dtype, avoid=("dy", "switches"))
    return [res(shape, dy.dtype)]


@spec("pooling", o_max_pool2d_backward, outs={"out": 0}, hypers={"input_shape": "shape"},
      special=switches_special)
def b_max_pool2d_backward(rng, dt):
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    h, w = (int(v) for v in rng.integers(1, 10, 2))
    dy = rnd(rng, (n, c) + tuple(int(v) for v in rng.integers(1, 5, 2)), dt)
    return {"dy": dy, "switches": rng.integers(0, h * w, dy.shape),
            "input_shape": shape_form(rng, (n, c, h, w))}


def o_avg_pool2d_forward(kw):
    x = arr(kw, "x", ndim=4)
    shape = x.shape[:2] + pool_geometry(kw, x.shape[2:])
    opt_out(kw, "out", shape, x.dtype, avoid=("x",))
    return [res(shape, x.dtype)]


@spec("pooling", o_avg_pool2d_forward, outs={"out": 0}, hypers=POOL_HYPERS)
def b_avg_pool2d_forward(rng, dt):
    kw = b_max_pool2d_forward(rng, dt)
    kw["count_include_pad"] = bool(rng.random() < 0.5)
    return kw


def o_avg_pool2d_backward(kw):
    dy = arr(kw, "dy", ndim=4)
    shape = shape_arg(kw.get("input_shape"), 4, "input_shape")
    need(shape[:2] == dy.shape[:2], "input_shape N, C")
    need(dy.shape[2:] == pool_geometry(kw, shape[2:]), "dy is not the pooled size")
    opt_out(kw, "out", shape, dy.dtype, avoid=("dy",))
    return [res(shape, dy.dtype)]


@spec("pooling", o_avg_pool2d_backward, outs={"out": 0},
      hypers={**POOL_HYPERS, "input_shape": "shape"})
def b_avg_pool2d_backward(rng, dt):
    kw, hw = b_pool_window(rng)
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    kw["input_shape"] = shape_form(rng, (n, c) + hw)
    kw["count_include_pad"] = bool(rng.random() < 0.5)
    kw["dy"] = rnd(rng, (n, c) + pool_geometry(kw, hw), dt)
    return kw


def o_max_unpool2d_forward(kw):
    x = arr(kw, "x", ndim=4)
    ho, wo = ints(kw.get("output_size"), 2, 1, "output_size")
    switches(kw, x.shape, ho * wo)
    shape = x.shape[:2] + (ho, wo)
    opt_out(kw, "out", shape, x.dtype, avoid=("x", "switches"))
    return [res(shape, x.dtype)]


@spec("pooling", o_max_unpool2d_forward, outs={"out": 0}, hypers={"output_size": "shape"},
      special=switches_special)
def b_max_unpool2d_forward(rng, dt):
    x = rnd(rng, (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
            + tuple(int(v) for v in rng.integers(1, 5, 2)), dt)
    size = tuple(int(v) for v in rng.integers(1, 10, 2))
    return {"x": x, "switches": rng.integers(0, size[0] * size[1], x.shape),
            "output_size": form(rng, size)}


def o_max_unpool2d_backward(kw):
    dy = arr(kw, "dy", ndim=4)
    s = kw.get("switches")
    need(isinstance(s, np.ndarray) and s.ndim == 4 and s.shape[:2] == dy.shape[:2],
         "switches N, C")
    switches(kw, s.shape, dy.shape[2] * dy.shape[3])
    opt_out(kw, "out", s.shape, dy.dtype, avoid=("dy", "switches"))
    return [res(s.shape, dy.dtype)]


@spec("pooling", o_max_unpool2d_backward, outs={"out": 0}, special=switches_special)
def b_max_unpool2d_backward(rng, dt):
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    dy = rnd(rng, (n, c) + tuple(int(v) for v in rng.integers(1, 10, 2)), dt)
    sw = rng.integers(0, dy.shape[2] * dy.shape[3],
                      (n, c) + tuple(int(v) for v in rng.integers(1, 5, 2)))
    return {"dy": dy, "switches": sw}


def upsample_args(kw):
    sh, sw = ints(kw.get("scale_factor", 2), 2, 1, "scale_factor")
    need(kw.get("mode", "copy") in K.UPSAMPLE_MODES, "mode")
    return sh, sw


UPSAMPLE_HYPERS = {"scale_factor": "int", "mode": "str"}


def o_upsample_nearest2d_forward(kw):
    x = arr(kw, "x", ndim=4)
    sh, sw = upsample_args(kw)
    shape = x.shape[:2] + (x.shape[2] * sh, x.shape[3] * sw)
    opt_out(kw, "out", shape, x.dtype, avoid=("x",))
    return [res(shape, x.dtype)]


@spec("pooling", o_upsample_nearest2d_forward, outs={"out": 0}, hypers=UPSAMPLE_HYPERS)
def b_upsample_nearest2d_forward(rng, dt):
    return {"x": rnd(rng, (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
                     + tuple(int(v) for v in rng.integers(1, 6, 2)), dt),
            "scale_factor": form(rng, rng.integers(1, 4, 2)),
            "mode": str(rng.choice(K.UPSAMPLE_MODES))}


def o_upsample_nearest2d_backward(kw):
    dy = arr(kw, "dy", ndim=4)
    sh, sw = upsample_args(kw)
    need(dy.shape[2] % sh == 0 and dy.shape[3] % sw == 0, "not a multiple of the scale")
    shape = dy.shape[:2] + (dy.shape[2] // sh, dy.shape[3] // sw)
    opt_out(kw, "out", shape, dy.dtype, avoid=("dy",))
    return [res(shape, dy.dtype)]


@spec("pooling", o_upsample_nearest2d_backward, outs={"out": 0}, hypers=UPSAMPLE_HYPERS)
def b_upsample_nearest2d_backward(rng, dt):
    kw = b_upsample_nearest2d_forward(rng, dt)
    sh, sw = upsample_args(kw)
    x = kw.pop("x")
    kw["dy"] = rnd(rng, x.shape[:2] + (x.shape[2] * sh, x.shape[3] * sw), dt)
    return kw


# convolutions ---------------------------------------------------------------------------
CONV_HYPERS = {"stride": "int", "padding": "int", "dilation": "int", "groups": "int",
               "workspace": "workspace"}


def conv_args(kw, nd, ksize, transpose=False):
    """(stride, ((lo, hi), ...), dilation, groups) per the docstrings of kernels.conv."""
    s = ints(kw.get("stride", 1), nd, 1, "stride")
    d = ints(kw.get("dilation", 1), nd, 1, "dilation")
    g = integer(kw.get("groups", 1), 1, "groups")
    p = kw.get("padding", 0)
    if isinstance(p, str):
        need(p == "valid" or (p in ("same", "full") and not transpose and set(s) == {1}),
             f"padding {p!r}")
        tot = [dd * (kk - 1) for kk, dd in zip(ksize, d)]
        pads = {"valid": [(0, 0)] * nd, "full": [(t, t) for t in tot],
                "same": [(t // 2, t - t // 2) for t in tot]}[p]
    elif nd == 1 and isinstance(p, (tuple, list)) and len(p) == 2 \
            and not isinstance(p[0], (tuple, list)):
        pads = [ints(p, 2, 0, "padding")]
    elif isinstance(p, (tuple, list)):
        need(len(p) == nd, "padding entries")
        pads = [ints(q, 2, 0, "padding") if isinstance(q, (tuple, list))
                else (integer(q, 0, "padding"),) * 2 for q in p]
    else:
        pads = [(integer(p, 0, "padding"),) * 2] * nd
    return s, pads, d, g


def conv_out_size(hw, ksize, a):
    s, pads, d, _ = a
    return tuple((h + lo + hi - dd * (kk - 1) - 1) // ss + 1
                 for h, kk, ss, (lo, hi), dd in zip(hw, ksize, s, pads, d))


def convt_out_size(kw, hw, ksize, a):
    s, pads, d, _ = a
    op = ints(kw.get("output_padding", 0), len(hw), 0, "output_padding")
    need(all(o < max(ss, dd) for o, ss, dd in zip(op, s, d)), "output_padding too large")
    out = tuple((h - 1) * ss - lo - hi + dd * (kk - 1) + o + 1
                for h, kk, ss, (lo, hi), dd, o in zip(hw, ksize, s, pads, d, op))
    need(min(out) >= 1, "output size < 1")
    return out


def workspace_ok(kw):
    need(kw.get("workspace") is None or isinstance(kw["workspace"], K.Workspace), "workspace")


def conv_geometry(kw, nd):
    """(x, w, conv_args) of a conv with x (N, C, *in) and w (O, C/groups, *k)."""
    x = arr(kw, "x", ndim=nd + 2)
    w = arr(kw, "w", ndim=nd + 2, dtype=x.dtype)
    a = conv_args(kw, nd, w.shape[2:])
    need(min(w.shape) >= 1 and min(x.shape[1:]) >= 1, "empty weight or input")
    need(x.shape[1] == w.shape[1] * a[3] and w.shape[0] % a[3] == 0, "channels / groups")
    workspace_ok(kw)
    return x, w, a


def conv_out_hw(hw, ksize, a):
    out = conv_out_size(hw, ksize, a)
    need(min(out) >= 1, "kernel larger than the padded input")
    return out


def conv_oracles(nd):
    def o_forward(kw):
        x, w, a = conv_geometry(kw, nd)
        if kw.get("b") is not None:
            arr(kw, "b", dtype=x.dtype, shape=(w.shape[0],))
        shape = (x.shape[0], w.shape[0]) + conv_out_hw(x.shape[2:], w.shape[2:], a)
        opt_out(kw, "out", shape, x.dtype, avoid=("x", "w", "b"))
        return [res(shape, x.dtype)]

    def o_backward(kw):
        x, w, a = conv_geometry(kw, nd)
        arr(kw, "dy", dtype=x.dtype, shape=(x.shape[0], w.shape[0])
            + conv_out_hw(x.shape[2:], w.shape[2:], a))
        return [res(x.shape, x.dtype) if kw.get("need_input_grad", True) else None,
                res(w.shape, x.dtype) if kw.get("need_weight_grad", True) else None,
                res((w.shape[0],), x.dtype) if kw.get("need_bias_grad", True) else None]

    def o_input_grad(kw):
        dy = arr(kw, "dy", ndim=nd + 2)
        w = arr(kw, "w", ndim=nd + 2, dtype=dy.dtype)
        a = conv_args(kw, nd, w.shape[2:])
        size = ints(kw.get("input_size"), nd, 1, "input_size")
        need(min(w.shape) >= 1 and dy.shape[1] == w.shape[0] and w.shape[0] % a[3] == 0,
             "channels / groups")
        need(dy.shape[2:] == conv_out_hw(size, w.shape[2:], a), "dy spatial size")
        workspace_ok(kw)
        shape = (dy.shape[0], w.shape[1] * a[3]) + size
        opt_out(kw, "out", shape, dy.dtype, avoid=("dy", "w"))
        return [res(shape, dy.dtype)]

    def o_weight_grad(kw):
        x = arr(kw, "x", ndim=nd + 2)
        dy = arr(kw, "dy", ndim=nd + 2, dtype=x.dtype)
        ks = ints(kw.get("kernel_size"), nd, 1, "kernel_size")
        a = conv_args(kw, nd, ks)
        need(min(x.shape[1:]) >= 1 and dy.shape[1] >= 1, "empty input or dy")
        need(x.shape[1] % a[3] == 0 and dy.shape[1] % a[3] == 0, "groups")
        need(dy.shape == x.shape[:1] + dy.shape[1:2] + conv_out_hw(x.shape[2:], ks, a),
             "dy shape")
        workspace_ok(kw)
        shape = (dy.shape[1], x.shape[1] // a[3]) + ks
        opt_out(kw, "out", shape, x.dtype, avoid=("x", "dy"))
        return [res(shape, x.dtype)]

    def o_transpose_forward(kw):
        x, w, a = convt_geometry(kw, nd)
        c_out = w.shape[1] * a[3]
        if kw.get("b") is not None:
            arr(kw, "b", dtype=x.dtype, shape=(c_out,))
        shape = (x.shape[0], c_out) + convt_out_size(kw, x.shape[2:], w.shape[2:], a)
        opt_out(kw, "out", shape, x.dtype, avoid=("x", "w", "b"))
        return [res(shape, x.dtype)]

    def o_transpose_backward(kw):
        x, w, a = convt_geometry(kw, nd)
        arr(kw, "dy", dtype=x.dtype, shape=(x.shape[0], w.shape[1] * a[3])
            + convt_out_size(kw, x.shape[2:], w.shape[2:], a))
        return [res(x.shape, x.dtype) if kw.get("need_input_grad", True) else None,
                res(w.shape, x.dtype) if kw.get("need_weight_grad", True) else None,
                res((w.shape[1] * a[3],), x.dtype) if kw.get("need_bias_grad", True)
                else None]

    return o_forward, o_backward, o_input_grad, o_weight_grad, o_transpose_forward, \
        o_transpose_backward


def convt_geometry(kw, nd):
    """(x, w, conv_args) of a transposed conv with x (N, C_in, *in), w (C_in, C_out/g, *k)."""
    x = arr(kw, "x", ndim=nd + 2)
    w = arr(kw, "w", ndim=nd + 2, dtype=x.dtype)
    a = conv_args(kw, nd, w.shape[2:], transpose=True)
    need(min(w.shape) >= 1 and min(x.shape[1:]) >= 1, "empty weight or input")
    need(x.shape[1] == w.shape[0] and w.shape[0] % a[3] == 0, "channels / groups")
    workspace_ok(kw)
    return x, w, a


def b_conv_geometry(rng, nd, transpose=False):
    """Random (kw of hyperparameters, N, C, O, groups, k, in, out) of a valid conv."""
    while True:
        g = int(rng.choice([1, 1, 1, 2, 3, 4]))
        c, o = g * int(rng.integers(1, 4 // g + 1)), g * int(rng.integers(1, 4 // g + 1))
        k, s = rng.integers(1, 5, nd), rng.integers(1, 4, nd)
        d, pads = rng.integers(1, 3, nd), rng.integers(0, 3, (nd, 2))
        if rng.random() < 0.6:
            pads[:, 1] = pads[:, 0]
        hw = rng.integers(1, 10, nd)
        kw = {"stride": form(rng, s), "dilation": form(rng, d), "groups": g}
        if (pads[:, 0] == pads[:, 1]).all():
            kw["padding"] = form(rng, pads[:, 0])
        else:
            kw["padding"] = form(rng, pads, pairs=True)
        if nd == 1 and rng.random() < 0.3:
            kw["padding"] = tuple(int(v) for v in pads[0])
        a = conv_args(kw, nd, k)
        if transpose:
            kw["output_padding"] = form(rng, [int(rng.integers(0, max(ss, dd)))
                                              for ss, dd in zip(s, d)])
            try:
                out = convt_out_size(kw, hw, k, a)
            except Invalid:
                continue
        else:
            out = conv_out_size(hw, k, a)
        if min(out) >= 1:
            n = int(rng.integers(1, 4))
            return kw, n, c, o, g, tuple(int(v) for v in k), tuple(int(v) for v in hw), out


def conv_builders(nd):
    def forward(rng, dt):
        kw, n, c, o, g, k, hw, _ = b_conv_geometry(rng, nd)
        kw.update(x=rnd(rng, (n, c) + hw, dt), w=rnd(rng, (o, c // g) + k, dt))
        if rng.random() < 0.6:
            kw["b"] = rnd(rng, (o,), dt)
        return kw

    def backward(rng, dt):
        kw, n, c, o, g, k, hw, out = b_conv_geometry(rng, nd)
        kw.update(x=rnd(rng, (n, c) + hw, dt), w=rnd(rng, (o, c // g) + k, dt),
                  dy=rnd(rng, (n, o) + out, dt))
        for key in ("need_input_grad", "need_weight_grad", "need_bias_grad"):
            kw[key] = bool(rng.random() < 0.8)
        return kw

    def input_grad(rng, dt):
        kw, n, c, o, g, k, hw, out = b_conv_geometry(rng, nd)
        kw.update(dy=rnd(rng, (n, o) + out, dt), w=rnd(rng, (o, c // g) + k, dt),
                  input_size=form(rng, hw))
        return kw

    def weight_grad(rng, dt):
        kw, n, c, o, g, k, hw, out = b_conv_geometry(rng, nd)
        kw.update(x=rnd(rng, (n, c) + hw, dt), dy=rnd(rng, (n, o) + out, dt),
                  kernel_size=form(rng, k))
        return kw

    def transpose_forward(rng, dt):
        kw, n, c, o, g, k, hw, _ = b_conv_geometry(rng, nd, transpose=True)
        kw.update(x=rnd(rng, (n, c) + hw, dt), w=rnd(rng, (c, o // g) + k, dt))
        if rng.random() < 0.6:
            kw["b"] = rnd(rng, (o,), dt)
        return kw

    def transpose_backward(rng, dt):
        kw, n, c, o, g, k, hw, out = b_conv_geometry(rng, nd, transpose=True)
        kw.update(x=rnd(rng, (n, c) + hw, dt), w=rnd(rng, (c, o // g) + k, dt),
                  dy=rnd(rng, (n, o) + out, dt))
        for key in ("need_input_grad", "need_weight_grad", "need_bias_grad"):
            kw[key] = bool(rng.random() < 0.8)
        return kw

    return forward, backward, input_grad, weight_grad, transpose_forward, transpose_backward


CONVT_HYPERS = {**CONV_HYPERS, "output_padding": "int"}
for _nd in (1, 2):
    _names = (f"conv{_nd}d_forward", f"conv{_nd}d_backward", f"conv{_nd}d_input_grad",
              f"conv{_nd}d_weight_grad", f"conv_transpose{_nd}d_forward",
              f"conv_transpose{_nd}d_backward")
    _hypers = (CONV_HYPERS, CONV_HYPERS, {**CONV_HYPERS, "input_size": "shape"},
               {**CONV_HYPERS, "kernel_size": "shape"}, CONVT_HYPERS, CONVT_HYPERS)
    for _name, _oracle, _build, _hyp in zip(_names, conv_oracles(_nd), conv_builders(_nd),
                                            _hypers):
        _family = "conv_transpose" if "transpose" in _name else "conv"
        _outs = {"out": 0} if _name.endswith(("forward", "grad")) else {}
        register(_name, _family, _build, _oracle, outs=_outs, hypers=_hyp)


def o_conv_bias_grad(kw):
    dy = arr(kw, "dy", ndim=range(2, 7))
    opt_out(kw, "out", (dy.shape[1],), dy.dtype, avoid=("dy",))
    return [res((dy.shape[1],), dy.dtype)]


@spec("conv", o_conv_bias_grad, outs={"out": 0})
def b_conv_bias_grad(rng, dt):
    return {"dy": rnd(rng, dims(rng, 2, 4, 5), dt)}


def o_convolve_true(kw):
    x = arr(kw, "x", ndim=2)
    h = arr(kw, "h", ndim=2, dtype=x.dtype)
    need(min(x.shape + h.shape) >= 1, "empty x or h")
    mode = kw.get("mode", "valid")
    need(mode in ("valid", "same", "full"), f"mode {mode!r}")
    shape = {"valid": tuple(a - b + 1 for a, b in zip(x.shape, h.shape)), "same": x.shape,
             "full": tuple(a + b - 1 for a, b in zip(x.shape, h.shape))}[mode]
    need(min(shape) >= 1, "h larger than x")
    return [res(shape, x.dtype)]


@spec("conv", o_convolve_true, hypers={"mode": "str"})
def b_convolve_true(rng, dt):
    x = rnd(rng, tuple(int(v) for v in rng.integers(1, 10, 2)), dt)
    h = rnd(rng, tuple(int(rng.integers(1, min(s, 4) + 1)) for s in x.shape), dt)
    return {"x": x, "h": h, "mode": str(rng.choice(["valid", "same", "full"]))}


# blas and cascade -----------------------------------------------------------------------
def o_matmul(kw):
    a = arr(kw, "a", contiguous=False)
    b = arr(kw, "b", contiguous=False, dtype=a.dtype)
    need(a.ndim >= 1 and b.ndim >= 1, "0-d operand")
    try:   # the shape rules of numpy.matmul (the documented semantics)
        shape = np.matmul(np.empty(a.shape, np.int8), np.empty(b.shape, np.int8)).shape
    except ValueError:
        raise Invalid("numpy.matmul rejects the shapes") from None
    if kw.get("out") is not None:     # any strides, may overlap a or b (NumPy copies)
        arr(kw, "out", dtype=a.dtype, shape=shape, writable=True, contiguous=False)
    return [res(shape, a.dtype)]


@spec("blas_cascade", o_matmul, outs={"out": 0})
def b_matmul(rng, dt):
    m, k, n = (int(v) for v in rng.integers(1, 10, 3))
    batch = dims(rng, 0, 1, 3)
    kw = {"a": rnd(rng, batch + (m, k), dt), "b": rnd(rng, (k, n), dt)}
    if rng.random() < 0.3:
        kw["b"] = np.ascontiguousarray(kw["b"].T).T     # a transposed view, as Dense uses
    return kw


def codes_special(rng, kw):
    """Unit codes out of range, negative, huge, as floats; beta NaN."""
    codes = np.array(kw["codes"], copy=True)
    if codes.size == 0:
        return "codes:empty", kw
    what = rng.choice(["ncodes", "negative", "huge", "float", "beta_nan"])
    if what == "beta_nan":
        beta = np.array(kw["beta"], dtype=np.float64)
        beta[rng.integers(beta.size)] = np.nan
        return "beta:nan", {**kw, "beta": beta}
    if what == "float":
        return "codes:float", {**kw, "codes": codes + 0.5}
    codes[rng.integers(codes.size)] = {"ncodes": len(K.CASCADE_UNIT_CODES), "negative": -1,
                                       "huge": HUGE}[what]
    return f"codes:{what}", {**kw, "codes": codes}


def o_cascade_pool_values(kw):
    S = arr(kw, "S", ndim=2)
    p = S.shape[1]
    codes, beta = np.asarray(kw.get("codes")), np.asarray(kw.get("beta"))
    need(codes.shape == (p,) and beta.shape == (p,), "codes / beta shape")
    need(codes.dtype.kind in "iu" or p == 0, f"codes of dtype {codes.dtype}")
    need(((codes >= 0) & (codes < len(K.CASCADE_UNIT_CODES))).all(), "unit codes")
    need(beta.dtype.kind in "biuf" and np.isfinite(beta).all(), "beta not finite reals")
    opt_out(kw, "V", S.shape, S.dtype, avoid=("S",))
    opt_out(kw, "dV", S.shape, S.dtype, avoid=("S", "V"))
    return [res(S.shape, S.dtype), res(S.shape, S.dtype)]


@spec("blas_cascade", o_cascade_pool_values, outs={"V": 0, "dV": 1},
      special=codes_special)
def b_cascade_pool_values(rng, dt):
    n, p = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    codes = rng.integers(0, len(K.CASCADE_UNIT_CODES), p)
    beta = rng.uniform(0.5, 2.0, p)
    return {"S": rnd(rng, (n, p), dt), "codes": codes.tolist() if rng.random() < 0.3 else codes,
            "beta": beta.astype(dt)}


def o_cascade_quickprop(kw):
    w = arr(kw, "w", writable=True)
    for name in ("g", "d", "p"):
        arr(kw, name, dtype=w.dtype, shape=w.shape, writable=name != "g")
    for name in ("lr", "mu", "decay"):
        if name in kw:
            real(kw[name], name)
    return [None]


@spec("blas_cascade", o_cascade_quickprop, inplace=("w", "d", "p"),
      hypers={"lr": "float", "mu": "float", "decay": "float"})
def b_cascade_quickprop(rng, dt):
    shape = dims(rng, 1, 3, 6)
    kw = {k: rnd(rng, shape, dt) for k in "wgdp"}
    kw.update(lr=float(rng.uniform(0.1, 1.0)), mu=1.75)
    if rng.random() < 0.5:
        kw["decay"] = 1e-4
    return kw


FAMILIES = ("activations", "softmax_ce", "pooling", "conv", "conv_transpose", "blas_cascade")


# ----------------------------------------------------------------------------- mutations
BAD_DTYPES = ("int32", "int64", "float16", "complex64", "bool", "object", "uint8")
BAD_INTS = (0, -1, 1.5, 2.0, HUGE, 2 ** 31, -HUGE, True, False, None, "x", (), (1,), (1, 2, 3),
            (HUGE, 1), (1, HUGE), [1, 1], np.int64(1), np.float64(2.0), (1, -1),
            ((1, 1), (1, 1)), ((0, 1), (-1, 0)), "same", "valid", "full", 3)
BAD_FLOATS = (float("nan"), float("inf"), -float("inf"), None, "x", "0.5", (1.0,), 1j, True,
              1e300, -1.0, 0.0, np.float32(0.5))
BAD_STRS = ("bilinear", None, 1, "", "COPY", "same", "full", ("copy",))
BAD_ACTS = ("nope", 999, -1, 1.5, None, True, [1], "RELU", np.int64(7), ("relu",))
BAD_WORKSPACES = ("x", {}, 1, np.zeros(4), None, K.Workspace())
BAD_AXES = (1.5, None, True, "0", np.int64(0), HUGE, -HUGE, (0,), 0, -1)


def array_names(kw):
    return [k for k, v in kw.items() if isinstance(v, np.ndarray)]


def copy_kw(kw):
    """kw with its arrays copied; an array passed twice (out=x) stays one array."""
    copies = {}
    return {k: copies.setdefault(id(v), v.copy(order="K")) if isinstance(v, np.ndarray) else v
            for k, v in kw.items()}


def resized(a, shape):
    if a.size == 0 or math.prod(shape) == 0:
        return np.zeros(shape, a.dtype)
    return np.resize(a, shape)


def noncontiguous(rng, a):
    axes = [i for i, s in enumerate(a.shape) if s >= 2]
    how = str(rng.choice(["strided", "fortran", "reversed"]))
    if how == "fortran" or not axes:
        return "fortran", np.asfortranarray(a)
    ax = int(rng.choice(axes))
    if how == "reversed":
        return "reversed", np.flip(a, ax)
    big = np.zeros(a.shape[:ax] + (2 * a.shape[ax],) + a.shape[ax + 1:], a.dtype)
    view = big[(slice(None),) * ax + (slice(None, None, 2),)]
    view[...] = a
    return "strided", view


def mutate_array(rng, a):
    """(description, new value) of one random mutation of array ``a``."""
    ops = ["drop_dim", "add_dim", "resize_dim", "zero_dim", "dtype", "dtype", "noncontig",
           "noncontig", "readonly", "list", "scalar", "none", "nonfinite"]
    op = str(rng.choice(ops))
    if op in ("drop_dim", "resize_dim", "zero_dim") and a.ndim == 0:
        op = "add_dim"
    if op == "drop_dim":
        return op, np.ascontiguousarray(np.take(a, 0, axis=int(rng.integers(a.ndim)))) \
            if a.shape[0] else a.reshape(a.shape[1:])
    if op == "add_dim":
        ax = int(rng.integers(a.ndim + 1))
        return op, np.ascontiguousarray(np.expand_dims(a, ax))
    if op in ("resize_dim", "zero_dim"):
        ax = int(rng.integers(a.ndim))
        size = 0 if op == "zero_dim" else int(rng.choice([a.shape[ax] + 1, a.shape[ax] + 2,
                                                           max(a.shape[ax] - 1, 0),
                                                           2 * a.shape[ax] + 1]))
        return f"{op}[{ax}]={size}", resized(a, a.shape[:ax] + (size,) + a.shape[ax + 1:])
    if op == "dtype":
        alt = {"float32": "float64", "float64": "float32"}.get(a.dtype.name, "float64")
        dt = str(rng.choice(BAD_DTYPES + (alt, alt)))
        with np.errstate(all="ignore"):
            return f"dtype:{dt}", (a != 0) if dt == "bool" else a.astype(dt)
    if op == "noncontig":
        how, b = noncontiguous(rng, a)
        return f"noncontig:{how}", b
    if op == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return op, b
    if op == "list":
        return op, a.tolist()
    if op == "scalar":
        return op, 1.0
    if op == "none":
        return op, None
    if a.dtype.kind != "f" or a.size == 0:
        return "nonfinite:skipped", a
    b = a.copy()
    idx = rng.integers(0, b.size, max(1, b.size // 4))
    b.flat[idx] = rng.choice([np.nan, np.inf, -np.inf], idx.size)
    return "nonfinite", b


def bad_value(rng, kind, current):
    """A bad (or unusual but valid) value of a hyperparameter of ``kind``."""
    if kind == "shape":
        cur = tuple(current) if isinstance(current, (tuple, list)) else (current,)
        i = int(rng.integers(len(cur)))
        variants = [cur[:-1], cur + (1,), cur[:i] + (0,) + cur[i + 1:],
                    cur[:i] + (-1,) + cur[i + 1:], cur[:i] + (HUGE,) + cur[i + 1:],
                    cur[:i] + (cur[i] + 0.5,) + cur[i + 1:], cur[:i] + (cur[i] + 1,)
                    + cur[i + 1:], cur[:i] + (True,) + cur[i + 1:], np.array(cur)]
        pool = variants + list(BAD_INTS[:12])
    else:
        pool = {"int": BAD_INTS, "float": BAD_FLOATS, "str": BAD_STRS, "act": BAD_ACTS,
                "axis": BAD_AXES, "workspace": BAD_WORKSPACES}[kind]
    return pool[int(rng.integers(len(pool)))]


def alias(rng, kw, name, shape, dtype):
    """An output that is (part of) an input's memory: the same buffer, or shifted by one
    element (a partial overlap)."""
    inputs = [k for k in array_names(kw) if k != name and kw[k].dtype == dtype
              and kw[k].flags.c_contiguous]
    n = math.prod(shape)
    if not inputs:
        return "alias:none", np.empty(shape, dtype)
    src = str(rng.choice(inputs))
    a = kw[src]
    if rng.random() < 0.5 and a.size >= n:
        return f"alias:{src}", a.reshape(-1)[:n].reshape(shape)
    buf = np.empty(max(a.size, n) + 1, dtype)
    buf[:a.size] = a.reshape(-1)
    kw[src] = buf[:a.size].reshape(a.shape)
    return f"alias:{src}+1", buf[1:n + 1].reshape(shape)


def mutate(rng, fn, kw, valid):
    """(description, kwargs) of one random mutation of a valid call."""
    s = SPECS[fn]
    kw = copy_kw(kw)
    kinds = ["array"] * 5 + ["out"] * 2 * bool(s["outs"]) + ["hyper"] * 3 * bool(s["hypers"]) \
        + ["special"] * 3 * bool(s["special"])
    kind = str(rng.choice(kinds))
    if kind == "special":
        return s["special"](rng, kw)
    if kind == "hyper":
        name = str(rng.choice(sorted(s["hypers"])))
        value = bad_value(rng, s["hypers"][name], kw.get(name, 1))
        kw[name] = value
        return f"{name}={value!r}", kw
    if kind == "out":
        name = str(rng.choice(sorted(s["outs"])))
        shape, dtype = valid[s["outs"][name]]
        if rng.random() < 0.2:
            what, kw[name] = alias(rng, kw, name, shape, dtype)
            return f"{name}:{what}", kw
        base = kw.get(name)
        if not isinstance(base, np.ndarray):
            base = np.empty(shape, dtype)
        what, kw[name] = mutate_array(rng, base)
        return f"{name}:{what}", kw
    name = str(rng.choice(array_names(kw)))
    what, kw[name] = mutate_array(rng, kw[name])
    return f"{name}:{what}", kw


# ----------------------------------------------------------------------------- running
def case(fn, i):
    """(valid kwargs, valid results, mutation, mutated kwargs) of case i of fn."""
    rng = np.random.default_rng([SEED, zlib.crc32(fn.encode()), i])
    dt = np.dtype(rng.choice([np.float32, np.float64]))
    kw = SPECS[fn]["build"](rng, dt)
    valid = SPECS[fn]["oracle"](kw)
    what, bad = mutate(rng, fn, kw, valid)
    return kw, valid, what, bad


def describe(kw):
    parts = []
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            flags = "" if v.flags.c_contiguous else " non-contiguous"
            flags += "" if v.flags.writeable else " read-only"
            parts.append(f"{k}=ndarray{v.shape} {v.dtype}{flags}")
        else:
            r = repr(v)
            parts.append(f"{k}={r if len(r) < 60 else r[:57] + '...'}")
    return ", ".join(parts)


def names_kernel(exc, fn):
    msg = str(exc)
    return "kernels." in msg or "kernels:" in msg or "kernels[" in msg or fn in msg


def flatten(result):
    return list(result) if isinstance(result, tuple) else [result]


def judge(fn, kw):
    """None if the call behaved as the contract says, else what went wrong."""
    try:
        expected = SPECS[fn]["oracle"](kw)
        why = None
    except Invalid as e:
        expected, why = None, str(e)
    except Exception as e:      # noqa: BLE001 - a bug of this test's oracle
        return f"the oracle failed (a bug of this test): {type(e).__name__}: {e}"
    outs = [kw[k] for k in SPECS[fn]["outs"] if isinstance(kw.get(k), np.ndarray)]
    before = {k: v.tobytes() for k, v in kw.items() if isinstance(v, np.ndarray)
              and k not in SPECS[fn]["outs"] and k not in SPECS[fn]["inplace"]
              and not any(np.may_share_memory(v, o) for o in outs)}
    try:
        result = getattr(K, fn)(**kw)
    except (ValueError, TypeError, NotImplementedError, MemoryError) as e:
        if not names_kernel(e, fn):
            return f"raised {type(e).__name__} without naming the kernel: {e}"
        if expected is not None:
            return f"rejected a valid call: {type(e).__name__}: {e}"
        return None
    except Exception as e:      # noqa: BLE001 - every other exception is a validation hole
        return f"raised {type(e).__name__}: {e}"
    if expected is None:
        return f"accepted an invalid call ({why})"
    changed = [k for k, v in before.items() if kw[k].tobytes() != v]
    if changed:
        return f"changed its input(s) {changed}"
    got = flatten(result)
    if len(got) != len(expected):
        return f"returned {len(got)} results, expected {len(expected)}"
    for j, (g, e) in enumerate(zip(got, expected)):
        if e is None:
            if g is not None:
                return f"result {j} is {type(g).__name__}, expected None"
        elif isinstance(g, np.generic) and e[0] == ():   # NumPy's 0-d results are scalars
            if g.dtype != e[1]:
                return f"result {j} is a {g.dtype} scalar, expected {e[1]}"
        elif not isinstance(g, np.ndarray) or (g.shape, g.dtype) != e:
            return f"result {j} is {describe({'r': g})[2:]}, expected shape {e[0]} {e[1]}"
    return None


def emit(tag, **fields):
    print(tag, json.dumps(fields, default=str), flush=True)


def run_families(families):
    """The fuzz loop of the child: one CALL line before each call (a crash leaves it
    last), one FAIL line per failure, one DONE line per family."""
    for family in families:
        calls = 0
        for fn in sorted(f for f, s in SPECS.items() if s["family"] == family):
            for i in range(CASES):
                emit("CALL", family=family, fn=fn, i=i, call="building the case")
                try:
                    kw, valid, what, bad = case(fn, i)
                except Exception as e:  # noqa: BLE001 - a bug of this test's builders
                    emit("FAIL", family=family, fn=fn, i=i, call="building the case",
                         problem=f"{type(e).__name__}: {e}", args="")
                    calls += 2
                    continue
                for label, args in (("valid call", kw), (f"mutation {what}", bad)):
                    emit("CALL", family=family, fn=fn, i=i, call=label)
                    faulthandler.dump_traceback_later(CALL_TIMEOUT, exit=True)
                    problem = judge(fn, args)
                    faulthandler.cancel_dump_traceback_later()
                    calls += 1
                    if problem:
                        emit("FAIL", family=family, fn=fn, i=i, call=label, problem=problem,
                             args=describe(args))
        emit("DONE", family=family, calls=calls)


def run_child(families):
    """Run the fuzz loop in a child process; returns {family: report} where a report
    holds calls, failures and a crash (or hang) description."""
    reports = {f: {"calls": 0, "failures": [], "crash": None} for f in families}
    todo = list(families)
    while todo:
        cmd = [sys.executable, "-X", "faulthandler", __file__, "--families", *todo]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
            stdout, stderr, rc = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr, rc = f"timed out after {RUN_TIMEOUT} s", "timeout"
        last = None
        for line in stdout.splitlines():
            tag, _, body = line.partition(" ")
            if tag not in ("CALL", "FAIL", "DONE"):
                continue
            rec = json.loads(body)
            if tag == "CALL":
                last = rec
            elif tag == "FAIL":
                reports[rec["family"]]["failures"].append(rec)
            else:
                reports[rec["family"]]["calls"] = rec["calls"]
                todo.remove(rec["family"])
                last = None
        if todo and last is None:
            raise RuntimeError(f"the fuzz child failed before its first case (rc {rc}):\n"
                               f"{stderr[-3000:]}")
        if todo:                                # crashed or hung in case `last`
            kw, _, what, bad = case(last["fn"], last["i"])
            reports[last["family"]]["crash"] = (
                f"child died (rc {rc}) in {last['fn']} case {last['i']}, {last['call']} "
                f"(seed {SEED}): valid call {describe(kw)}; mutation {what}: {describe(bad)}\n"
                f"stderr: {stderr[-2000:]}\n"
                f"reproduce: python tests/test_fuzz_kernels.py --case {last['fn']} {last['i']}")
            todo.remove(last["family"])
    return reports


@pytest.fixture(scope="module")
def fuzz_reports():
    return run_child(FAMILIES)


def test_every_array_function_is_fuzzed():
    skip = {"conv_padding", "conv_output_size", "conv_transpose_output_size", "Workspace",
            "pool2d_geometry", "activation_params", "PoolGeometry"}
    public = {n for n in K.__all__ if callable(getattr(K, n)) and n not in skip}
    assert public == set(SPECS)


@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_kernel_validation(fuzz_reports, family):
    report = fuzz_reports[family]
    assert report["crash"] is None, report["crash"]
    lines = [f"{f['fn']} case {f['i']} ({f['call']}): {f['problem']}\n    args: {f['args']}\n"
             f"    reproduce: python tests/test_fuzz_kernels.py --case {f['fn']} {f['i']}"
             for f in report["failures"]]
    assert not lines, f"seed {SEED}: {len(lines)} failure(s) in {family}:\n" + \
        "\n".join(lines[:20])
    n_fns = sum(s["family"] == family for s in SPECS.values())
    assert report["calls"] == 2 * CASES * n_fns


# ----------------------------------------------------------------------------- command line
def reproduce(fn, i):
    """Run case i of fn in this process, with tracebacks."""
    kw, valid, what, bad = case(fn, i)
    print(f"seed {SEED}, {fn} case {i}\nvalid call: {describe(kw)}\n  expected: {valid}")
    print(f"  verdict: {judge(fn, kw) or 'ok'}")
    print(f"mutation {what}: {describe(bad)}")
    try:
        print(f"  oracle: {SPECS[fn]['oracle'](bad)}")
    except Invalid as e:
        print(f"  oracle: invalid ({e})")
    print(f"  verdict: {judge(fn, bad) or 'ok'}")
    getattr(K, fn)(**bad)
    print("  (the mutated call returned)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES)
    parser.add_argument("--case", nargs=2, metavar=("FUNCTION", "INDEX"))
    args = parser.parse_args()
    if args.case:
        reproduce(args.case[0], int(args.case[1]))
    else:
        t0 = time.perf_counter()
        run_families(args.families or FAMILIES)
        print(f"TIME {time.perf_counter() - t0:.2f}", file=sys.stderr)
