"""Case builders and oracles of pooling, unpooling and upsampling (family ``pooling``)."""
from __future__ import annotations

import numpy as np

from corenet import kernels as K

from .common import HUGE, arr, form, ints, need, opt_out, res, rnd, shape_arg, spec


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
