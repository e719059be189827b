"""Convolution layers: conv1d, conv2d, conv_transpose1d, conv_transpose2d
(spec convolution.md §1-4; D-02, D-18, D-19, D-50, D-66, D-69).

Layouts: inputs ``(N, C, L)`` (1-D) or ``(N, C, H, W)`` (2-D); conv weights
``(C_out, C_in/groups, k…)``; transposed-conv weights ``(C_in, C_out/groups, k…)``.
The layers compute cross-correlation (no kernel flip, D-02); use
:func:`corenet.kernels.convolve_true` for a true (flipped-kernel) convolution. The
arithmetic runs in the compiled kernels of :mod:`corenet.kernels` (im2col + BLAS, threads
over the batch, one reusable workspace per layer).
"""
from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import registry
from ..errors import HyperparameterError, ShapeError
from ..initializer import compute_fans
from ..kernels.conv_args import _conv_tuple
from ..layer import Layer
from ..plugins import hookimpl

convolve_true = K.convolve_true


def _positive_int(value, who, name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HyperparameterError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [_jsonable(u) for u in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


class _Conv(Layer):
    """Shared machinery of the four convolution layers.

    Subclasses set ``nd`` (1 or 2) and ``transpose``. With the bilinear forward
    ``F(X, W)`` and its two backward maps ``B_x(dY, W)`` (input gradient) and
    ``B_w(X, dY)`` (weight gradient), the second-order passes of networks.md §7.2 and §7.5
    are the same for every kind:

    * R-forward ``Ẏ = F(Ẋ, W) + F(X, V) + c``;
    * R-backward ``R{dX} = B_x(R{dY}, W) + B_x(dY, V)``,
      ``R{dW} = B_w(X, R{dY}) + B_w(Ẋ, dY)``, ``R{db} = Σ R{dY}``;
    * Gauss-Newton diagonal ``diag W += B_w(X ⊙ X, h)``, ``diag b += Σ h``,
      ``h_x = B_x(h, W ⊙ W)``.
    """

    nd = 2
    transpose = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, weight_init="glorot_uniform",
                 bias_init="zeros", output_padding=0, *, trainable=True):
        super().__init__(trainable=trainable)
        who = self.name
        self.in_channels = _positive_int(in_channels, who, "in_channels", allow_none=True)
        self.out_channels = _positive_int(out_channels, who, "out_channels")
        nd = self.nd
        self.kernel_size = _conv_tuple(kernel_size, nd, who, "kernel_size")
        self.stride = _conv_tuple(stride, nd, who, "stride")
        self.dilation = _conv_tuple(dilation, nd, who, "dilation")
        self.groups = _positive_int(groups, who, "groups")
        if self.transpose and isinstance(padding, str) and padding != "valid":
            raise HyperparameterError(f"{who}: padding must be an int, a tuple or 'valid', "
                                      f"got {padding!r}")
        self.padding = _jsonable(padding)
        self._pad = K.conv_padding(padding, self.kernel_size, self.stride, self.dilation, nd,
                                   who)
        self.output_padding = _conv_tuple(output_padding, nd, who, "output_padding", 0)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise HyperparameterError(f"{who}: output_padding must be < max(stride, "
                                          f"dilation) = {max(s, d)}, got {op}")
        for label, c in (("in_channels", self.in_channels), ("out_channels", out_channels)):
            if c is not None and c % self.groups:
                raise HyperparameterError(f"{who}: {label}={c} is not divisible by "
                                          f"groups={self.groups}")
        self.bias = bool(bias)
        self.weight_init = weight_init
        self.bias_init = bias_init
        self.W = self.b = None
        self._ws = K.Workspace()

    # ------------------------------------------------------------------ geometry
    @property
    def _geom(self):
        g = dict(stride=self.stride, padding=self._pad, dilation=self.dilation,
                 groups=self.groups)
        if self.transpose:
            g["output_padding"] = self.output_padding
        return g

    def _layout(self):
        return "(N, C, L)" if self.nd == 1 else "(N, C, H, W)"

    def output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.nd + 1:
            raise ShapeError(f"{self.label}: expects inputs of shape {self._layout()}; got "
                             f"per-sample shape {input_shape}")
        c = input_shape[0]
        if self.in_channels is not None and c != self.in_channels:
            raise ShapeError(f"{self.label}: expects {self.in_channels} input channels, got "
                             f"{c} (per-sample input shape {input_shape})")
        if c % self.groups:
            raise ShapeError(f"{self.label}: {c} input channels are not divisible by "
                             f"groups={self.groups}")
        sizes = []
        for i, n in enumerate(input_shape[1:]):
            k, s, d, p = self.kernel_size[i], self.stride[i], self.dilation[i], self._pad[i]
            if self.transpose:
                sizes.append(K.conv_transpose_output_size(n, k, s, p, d,
                                                          self.output_padding[i]))
            else:
                sizes.append(K.conv_output_size(n, k, s, p, d))
        if min(sizes) < 1:
            raise ShapeError(f"{self.label}: the kernel {self.kernel_size} (dilation "
                             f"{self.dilation}) does not fit the padded input {input_shape[1:]} "
                             f"(padding {self._pad}): output size {tuple(sizes)} < 1")
        return (self.out_channels,) + tuple(sizes)

    def _build(self, input_shape, rng):
        self.output_shape(input_shape)             # validates rank, channels, sizes
        c = input_shape[0]
        self.in_channels = c
        g, o, k = self.groups, self.out_channels, self.kernel_size
        if self.transpose:
            shape = (c, o // g) + k
            fan_in, fan_out = compute_fans(shape, "conv_transpose")
        else:
            shape = (o, c // g) + k
            fan_in, fan_out = compute_fans(shape, "conv")
        init_w = registry.create("initializer", self.weight_init)
        self.W = self.add_parameter("weight", init_w(shape, fan_in, fan_out, self.dtype, rng),
                                    fan_in=fan_in, fan_out=fan_out)
        if self.bias:
            init_b = registry.create("initializer", self.bias_init)
            self.b = self.add_parameter("bias", init_b((o,), None, None, self.dtype, rng))

    # ------------------------------------------------------------------ kernels
    def _f(self, x, w, b=None):
        """Forward map F(x, w) + b."""
        fn = {(1, False): K.conv1d_forward, (2, False): K.conv2d_forward,
              (1, True): K.conv_transpose1d_forward,
              (2, True): K.conv_transpose2d_forward}[(self.nd, self.transpose)]
        return fn(x, w, b, workspace=self._ws, **self._geom)

    def _b(self, x, dy, w, need_x=True, need_w=True, need_b=False):
        """``(B_x(dy, w), B_w(x, dy), Σ dy)``, each None when not needed."""
        fn = {(1, False): K.conv1d_backward, (2, False): K.conv2d_backward,
              (1, True): K.conv_transpose1d_backward,
              (2, True): K.conv_transpose2d_backward}[(self.nd, self.transpose)]
        return fn(x, dy, w, need_input_grad=need_x, need_weight_grad=need_w,
                  need_bias_grad=need_b, workspace=self._ws, **self._geom)

    def _check_dy(self, dy, what="dy"):
        want = (self._x.shape[0],) + self.output_shape(self.input_shape)
        if not isinstance(dy, np.ndarray) or dy.shape != want:
            raise ShapeError(f"{self.label}: {what} must have shape {want}, got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        return np.ascontiguousarray(dy, dtype=self.dtype)

    # ------------------------------------------------------------------ passes
    def _forward(self, x):
        self._x = np.ascontiguousarray(x)
        return self._f(self._x, self.W.data, None if self.b is None else self.b.data)

    def _backward(self, dy):
        dy = self._check_dy(dy)
        W, b = self.W, self.b
        need_b = b is not None and b.trainable
        dx, dw, db = self._b(self._x, dy, W.data, self.needs_input_grad, W.trainable, need_b)
        if dw is not None:
            W.grad += dw
        if db is not None:
            b.grad += db
        return dx

    # ------------------------------------------------------------------ second order
    def _rop_forward(self, x_dot, tangents):
        V = tangents[0]
        y_dot = self._f(self._x, np.ascontiguousarray(V, dtype=self.dtype),
                        None if self.b is None else
                        np.ascontiguousarray(tangents[1], dtype=self.dtype))
        self._x_dot = None if x_dot is None else np.ascontiguousarray(x_dot, dtype=self.dtype)
        if self._x_dot is not None:
            y_dot += self._f(self._x_dot, self.W.data)
        return y_dot

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        dy = self._check_dy(dy)
        dy_dot = self._check_dy(dy_dot, "dy_dot")
        V = np.ascontiguousarray(tangents[0], dtype=self.dtype)
        W = self.W.data
        dx = self._b(self._x, dy, W, need_w=False)[0]
        dx_dot, rw, rb = self._b(self._x, dy_dot, W, need_b=self.b is not None)
        dx_dot += self._b(self._x, dy, V, need_w=False)[0]
        if self._x_dot is not None:
            rw += self._b(self._x_dot, dy, W, need_x=False)[1]
        rgrads[0] += rw
        if self.b is not None:
            rgrads[1] += rb
        return dx, dx_dot

    def _diag_gn_backward(self, h, diag):
        h = self._check_dy(h, "h")
        hx, dw, db = self._b(self._x * self._x, h, self.W.data, need_x=False,
                             need_b=self.b is not None)
        diag[0] += dw
        if self.b is not None:
            diag[1] += db
        return self._b(self._x, h, self.W.data * self.W.data, need_w=False)[0]

    # ------------------------------------------------------------------ config
    def get_config(self):
        cfg = {"in_channels": self.in_channels, "out_channels": self.out_channels,
               "kernel_size": list(self.kernel_size), "stride": list(self.stride),
               "padding": self.padding, "dilation": list(self.dilation),
               "groups": self.groups, "bias": self.bias, "weight_init": self.weight_init,
               "bias_init": self.bias_init}
        if self.transpose:
            cfg["output_padding"] = list(self.output_padding)
        return {**cfg, **super().get_config()}


class Conv2d(_Conv):
    """2-D convolution layer (``layer:conv2d``, convolution.md §3): cross-correlation

    ``Y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q]·x_pad[n,c,i·S_h+p·d_h, j·S_w+q·d_w]``

    (c over the input channels of o's group). x ``(N, C_in, H, W)`` → ``(N, C_out, H_out,
    W_out)``, ``H_out = ⌊(H + P_lo + P_hi − d(k−1) − 1)/S⌋ + 1`` (D-19; < 1 raises).
    W ``(C_out, C_in/groups, kh, kw)``, b ``(C_out,)``; parameter count
    ``C_out·(C_in/groups)·kh·kw + C_out``.

    Hyperparameters (§3.1): ``in_channels`` (None: taken from the first input),
    ``out_channels``, ``kernel_size`` (int or pair), ``stride=1``, ``padding=0`` (int,
    pair, ``(lo, hi)`` pairs, ``"valid"``, ``"same"`` (stride 1; extra zero bottom/right,
    D-69) or ``"full"``), ``dilation=1``, ``groups=1`` (as PyTorch: channels split into
    groups convolved separately), ``bias=True``, ``weight_init="glorot_uniform"`` with
    fan_in = (C_in/groups)·kh·kw, fan_out = C_out·kh·kw (initialization.md §2),
    ``bias_init="zeros"`` (D-50). Backward (§3.3): ``dW = corr(x_pad, dY)``,
    ``db = Σ dY``, ``dX = convT(dY, W)`` (D-18). Inputs that are not C-contiguous are
    copied; dtype and shape are checked by the base layer.
    """

    name = "conv2d"
    nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, weight_init="glorot_uniform",
                 bias_init="zeros", *, trainable=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, weight_init, bias_init, trainable=trainable)

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [
            {"config": {"in_channels": 2, "out_channels": 3, "kernel_size": 3},
             "input_shape": (2, 5, 6)},
            {"config": {"in_channels": 1, "out_channels": 2, "kernel_size": [3, 2],
                        "stride": 2, "padding": 1}, "input_shape": (1, 7, 6)},
            {"config": {"in_channels": 4, "out_channels": 2, "kernel_size": 2,
                        "dilation": [2, 1], "groups": 2, "padding": "same"},
             "input_shape": (4, 5, 4)},
            {"config": {"in_channels": 3, "out_channels": 2, "kernel_size": 1,
                        "bias": False}, "input_shape": (3, 3, 4)},
        ]


class Conv1d(_Conv):
    """1-D convolution layer (``layer:conv1d``, convolution.md §3.2):
    ``Y[n,o,i] = b[o] + Σ_{c,p} W[o,c,p]·x_pad[n,c,i·S+p·d]``; x ``(N, C_in, L)`` →
    ``(N, C_out, L_out)``; W ``(C_out, C_in/groups, k)``. Hyperparameters and rules as
    :class:`Conv2d` with one spatial axis (``padding`` may also be one ``(lo, hi)`` pair).
    """

    name = "conv1d"
    nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, weight_init="glorot_uniform",
                 bias_init="zeros", *, trainable=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, weight_init, bias_init, trainable=trainable)

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [
            {"config": {"in_channels": 2, "out_channels": 3, "kernel_size": 3},
             "input_shape": (2, 7)},
            {"config": {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2,
                        "padding": [1, 2], "dilation": 2, "groups": 2},
             "input_shape": (2, 9)},
            {"config": {"in_channels": 1, "out_channels": 2, "kernel_size": 4,
                        "padding": "same"}, "input_shape": (1, 6)},
        ]


class _ConvTranspose(_Conv):
    """Shared constructor of the transposed convolutions (``output_padding`` comes after
    ``padding``, PyTorch's order)."""

    transpose = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, groups=1, bias=True,
                 weight_init="glorot_uniform", bias_init="zeros", *, trainable=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, weight_init, bias_init, output_padding,
                         trainable=trainable)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (``layer:conv_transpose2d``, convolution.md §4): the
    adjoint of :class:`Conv2d` with the same S, P, d, i.e. the input gradient of a conv
    as a layer.

    ``Y_full[n,o,i·S+p·d, j·S+q·d] += X[n,c,i,j]·W[c,o,p,q]``, cropped to rows
    ``P_lo … P_lo+H_out−1`` (columns likewise), plus ``b[o]``;
    ``H_out = (H−1)·S − P_lo − P_hi + d(k−1) + output_padding + 1``
    (``0 ≤ output_padding < max(S, d)``). W ``(C_in, C_out/groups, kh, kw)``;
    ``weight_init`` fans by channel meaning (D-66): fan_in = C_in·kh·kw,
    fan_out = (C_out/groups)·kh·kw. ``padding`` is an int, a pair, ``(lo, hi)`` pairs or
    ``"valid"``. Backward: ``dX = conv2d(dY, W)``, ``dW[c,o,p,q] = Σ X[n,c,i,j]·
    dY_ext[n,o,iS+pd,jS+qd]``, ``db = Σ dY``.
    """

    name = "conv_transpose2d"
    nd = 2

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [
            {"config": {"in_channels": 2, "out_channels": 3, "kernel_size": 3},
             "input_shape": (2, 3, 4)},
            {"config": {"in_channels": 2, "out_channels": 2, "kernel_size": [3, 2],
                        "stride": 2, "padding": 1, "output_padding": [1, 0]},
             "input_shape": (2, 3, 3)},
            {"config": {"in_channels": 4, "out_channels": 2, "kernel_size": 2,
                        "dilation": 3, "output_padding": 2, "groups": 2, "bias": False},
             "input_shape": (4, 3, 2)},
        ]


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (``layer:conv_transpose1d``, convolution.md §4):
    ``Y_full[n,o,i·S+p·d] += X[n,c,i]·W[c,o,p]``, cropped from ``P_lo``, plus ``b[o]``;
    x ``(N, C_in, L)``, W ``(C_in, C_out/groups, k)``. See :class:`ConvTranspose2d`."""

    name = "conv_transpose1d"
    nd = 1

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [
            {"config": {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2,
                        "output_padding": 1}, "input_shape": (2, 4)},
            {"config": {"in_channels": 2, "out_channels": 2, "kernel_size": 2,
                        "padding": [1, 0], "groups": 2}, "input_shape": (2, 5)},
        ]


@hookimpl
def corenet_register_layers():
    return [Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d]
