"""The random mutations that turn a valid call into a (usually) invalid one."""
from __future__ import annotations

import math

import numpy as np

from corenet import kernels as K

from .common import HUGE, SPECS


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
