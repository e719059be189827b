"""Case builders and oracles of softmax and cross-entropy (family ``softmax_ce``)."""
from __future__ import annotations

import numpy as np

from .common import HUGE, arr, dims, need, opt_out, register, res, rnd, same_or_apart, spec


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
