"""Case builders and oracles of the convolutions (families ``conv`` and
``conv_transpose``)."""
from __future__ import annotations

from corenet import kernels as K

from .common import (Invalid, arr, dims, form, integer, ints, need, opt_out, register, res,
                     rnd, spec)


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
