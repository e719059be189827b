"""Convolution and transposed convolution (spec convolution.md §1-4, D-02, D-18, D-19, D-66,
D-69). Layouts: x (N, C, H, W) / (N, C, L); conv weight (C_out, C_in/groups, kh, kw);
transposed-conv weight (C_in, C_out/groups, kh, kw). Geometry arguments: ``stride`` and
``dilation`` an int or one int per spatial axis; ``padding`` an int, one int per axis,
explicit (lo, hi) per axis, or "valid" / "same" / "full" (strings: stride 1 only; "same"
puts the extra zero bottom/right, D-69). All results are deterministic and independent
of the thread count. ``workspace`` (a :class:`~corenet.kernels.Workspace`) keeps the
im2col buffers between calls; without it they are allocated per call."""
from __future__ import annotations

import numpy as np

from .. import config
from .._kernels import conv as _conv
from ..errors import HyperparameterError, ShapeError
from ._common import _check, _output
from .conv_args import (_conv_args, _conv_bias, _conv_channels, _conv_check, _conv_out,
                        _conv_out_hw, _conv_tuple, conv_transpose_output_size)
from .conv_plan import _backward_pass, _check_workspace, _conv_nonempty, _forward_pass


def _as4(a, nd):
    return a if nd == 2 else a.reshape(a.shape[:2] + (1,) + a.shape[2:])


def _conv_forward_nd(nd, x, w, b, stride, padding, dilation, groups, out, workspace):
    kernel = f"kernels.conv{nd}d_forward"
    _check_workspace(workspace, kernel)
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=x.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups)
    x4, w4 = _as4(x, nd), _as4(w, nd)
    _conv_channels(kernel, x.shape[1], w.shape[1], w.shape[0], a.groups)
    bias = _conv_bias(b, kernel, w.shape[0], x.dtype)
    ho, wo = _conv_out_hw(kernel, x4.shape[2:], w4.shape[2:], a)
    shape = (x.shape[0], w.shape[0]) + ((ho, wo) if nd == 2 else (wo,))
    y = _conv_out(out, kernel, shape, x.dtype, x, w, b)
    _forward_pass(x4, w4, bias, _as4(y, nd), None, (ho, wo), a, None, workspace, kernel)
    return y


def _conv_backward_nd(nd, x, dy, w, stride, padding, dilation, groups, need_input_grad,
                      need_weight_grad, need_bias_grad, workspace):
    kernel = f"kernels.conv{nd}d_backward"
    _check_workspace(workspace, kernel)
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=x.dtype)
    _conv_check(dy, kernel, "dy", nd + 2, dtype=x.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups)
    x4, w4, dy4 = _as4(x, nd), _as4(w, nd), _as4(dy, nd)
    _conv_channels(kernel, x.shape[1], w.shape[1], w.shape[0], a.groups)
    out_hw = _conv_out_hw(kernel, x4.shape[2:], w4.shape[2:], a)
    want = (x.shape[0], w.shape[0]) + out_hw[2 - nd:]
    if dy.shape != want:
        raise ShapeError(f"{kernel}: dy must have shape {want} (the conv output), got "
                         f"{dy.shape}")
    dx = np.empty_like(x) if need_input_grad else None
    dw = np.empty_like(w) if need_weight_grad else None
    if dx is not None or dw is not None:
        _backward_pass(dy4, w4, np.empty(0, x.dtype), None if dx is None else _as4(dx, nd),
                       x4, x4.shape[2:], a, dw, workspace, kernel)
    db = conv_bias_grad(dy) if need_bias_grad else None
    return dx, dw, db


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, out=None,
                   workspace=None):
    """2-D cross-correlation (convolution.md §3.2; D-02: no kernel flip).

    ``Y[n,o,i,j] = b[o] + Σ_{c∈group(o),p,q} W[o,c,p,q]·x_pad[n,c,i·S_h+p·d_h, j·S_w+q·d_w]``.
    x ``(N, C, H, W)``, w ``(O, C/groups, kh, kw)``, b ``(O,)`` or None → y
    ``(N, O, H_out, W_out)`` (§2 sizes; a size < 1 raises ShapeError, a ValueError).
    """
    return _conv_forward_nd(2, x, w, b, stride, padding, dilation, groups, out, workspace)


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, out=None,
                   workspace=None):
    """1-D cross-correlation ``Y[n,o,i] = b[o] + Σ_{c,p} W[o,c,p]·x_pad[n,c,i·S+p·d]``
    (convolution.md §3.2); x ``(N, C, L)``, w ``(O, C/groups, k)`` → ``(N, O, L_out)``."""
    return _conv_forward_nd(1, x, w, b, stride, padding, dilation, groups, out, workspace)


def conv2d_backward(x, dy, w, *, stride=1, padding=0, dilation=1, groups=1,
                    need_input_grad=True, need_weight_grad=True, need_bias_grad=True,
                    workspace=None):
    """Gradients of :func:`conv2d_forward` (convolution.md §3.3) in one im2col pass:
    ``(dx, dw, db)`` (None where not needed) with ``db[o] = Σ dY[n,o,i,j]``,
    ``dW[o,c,p,q] = Σ dY[n,o,i,j]·x_pad[n,c,iS+pd,jS+qd]``, dx the scatter-add of
    ``dY·W`` with the padding removed (D-18; uncovered inputs get 0, D-19)."""
    return _conv_backward_nd(2, x, dy, w, stride, padding, dilation, groups, need_input_grad,
                             need_weight_grad, need_bias_grad, workspace)


def conv1d_backward(x, dy, w, *, stride=1, padding=0, dilation=1, groups=1,
                    need_input_grad=True, need_weight_grad=True, need_bias_grad=True,
                    workspace=None):
    """Gradients ``(dx, dw, db)`` of :func:`conv1d_forward` (convolution.md §3.3)."""
    return _conv_backward_nd(1, x, dy, w, stride, padding, dilation, groups, need_input_grad,
                             need_weight_grad, need_bias_grad, workspace)


def _input_grad_nd(nd, dy, w, input_size, stride, padding, dilation, groups, out, workspace):
    kernel = f"kernels.conv{nd}d_input_grad"
    _check_workspace(workspace, kernel)
    _conv_check(dy, kernel, "dy", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=dy.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups)
    size = _conv_tuple(input_size, nd, kernel, "input_size")
    in_hw = size if nd == 2 else (1,) + size
    if dy.shape[1] != w.shape[0] or w.shape[0] % a.groups:
        raise ShapeError(f"{kernel}: dy has {dy.shape[1]} channels, the weight {w.shape[0]} "
                         f"output channels (groups={a.groups})")
    out_hw = _conv_out_hw(kernel, in_hw, _as4(w, nd).shape[2:], a)
    if dy.shape[2:] != out_hw[2 - nd:]:
        raise ShapeError(f"{kernel}: dy spatial shape must be {out_hw[2 - nd:]} for input "
                         f"size {size}, got {dy.shape[2:]}")
    shape = (dy.shape[0], w.shape[1] * a.groups) + size
    dx = _conv_out(out, kernel, shape, dy.dtype, dy, w)
    _backward_pass(_as4(dy, nd), _as4(w, nd), np.empty(0, dy.dtype), _as4(dx, nd), None,
                   in_hw, a, None, workspace, kernel)
    return dx


def conv2d_input_grad(dy, w, input_size, *, stride=1, padding=0, dilation=1, groups=1,
                      out=None, workspace=None):
    """``∂L/∂x`` of a conv2d with input spatial size ``input_size`` = (H, W): the
    transposed convolution of dy (convolution.md §3.3-4; D-18). dy ``(N, O, H_out, W_out)``,
    w ``(O, C/groups, kh, kw)`` → ``(N, C, H, W)``. Also the curvature map
    ``h_x = convT(h, W ⊙ W)`` of networks.md §7.5 (pass ``w*w``)."""
    return _input_grad_nd(2, dy, w, input_size, stride, padding, dilation, groups, out,
                          workspace)


def conv1d_input_grad(dy, w, input_size, *, stride=1, padding=0, dilation=1, groups=1,
                      out=None, workspace=None):
    """``∂L/∂x`` of a conv1d with input length ``input_size`` (see conv2d_input_grad)."""
    return _input_grad_nd(1, dy, w, input_size, stride, padding, dilation, groups, out,
                          workspace)


def _weight_grad_nd(nd, x, dy, kernel_size, stride, padding, dilation, groups, out,
                    workspace):
    kernel = f"kernels.conv{nd}d_weight_grad"
    _check_workspace(workspace, kernel)
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(dy, kernel, "dy", nd + 2, dtype=x.dtype)
    ks = _conv_tuple(kernel_size, nd, kernel, "kernel_size")
    a = _conv_args(kernel, nd, ks, stride, padding, dilation, groups)
    x4, dy4 = _as4(x, nd), _as4(dy, nd)
    if x.shape[1] % a.groups or dy.shape[1] % a.groups:
        raise ShapeError(f"{kernel}: channels ({x.shape[1]} in, {dy.shape[1]} out) are not "
                         f"divisible by groups={a.groups}")
    k2 = ks if nd == 2 else (1,) + ks
    out_hw = _conv_out_hw(kernel, x4.shape[2:], k2, a)
    if dy.shape[0] != x.shape[0] or dy4.shape[2:] != out_hw:
        raise ShapeError(f"{kernel}: dy must have shape "
                         f"{(x.shape[0], dy.shape[1]) + out_hw[2 - nd:]}, got {dy.shape}")
    shape = (dy.shape[1], x.shape[1] // a.groups) + ks
    dw = _conv_out(out, kernel, shape, x.dtype, x, dy)
    _forward_pass(x4, _as4(dw, nd), np.empty(0, x.dtype), None, dy4, out_hw, a, _as4(dw, nd),
                  workspace, kernel)
    return dw


def conv2d_weight_grad(x, dy, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
                       out=None, workspace=None):
    """``dW[o,c,p,q] = Σ_{n,i,j} dY[n,o,i,j]·x_pad[n,c,iS+pd,jS+qd]`` (convolution.md §3.3):
    the correlation of the padded input with the output gradient. x ``(N, C, H, W)``, dy
    ``(N, O, H_out, W_out)`` → ``(O, C/groups, kh, kw)``. With ``x*x`` and a curvature map
    h it gives the Gauss-Newton diagonal ``Σ h·x_pad²`` of networks.md §7.5; with an
    R-value it gives the R-backward terms of §7.2."""
    return _weight_grad_nd(2, x, dy, kernel_size, stride, padding, dilation, groups, out,
                           workspace)


def conv1d_weight_grad(x, dy, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
                       out=None, workspace=None):
    """Weight gradient of a conv1d (see conv2d_weight_grad) → ``(O, C/groups, k)``."""
    return _weight_grad_nd(1, x, dy, kernel_size, stride, padding, dilation, groups, out,
                           workspace)


def conv_bias_grad(dy, out=None):
    """``db[o] = Σ_{n, spatial} dY[n, o, ...]`` for dy ``(N, O, ...)`` (convolution.md §3.3);
    accumulated in double precision, per channel in a fixed order."""
    kernel = "kernels.conv_bias_grad"
    _check(dy, kernel, "dy")
    if dy.ndim < 2:
        raise ShapeError(f"{kernel}: dy must have shape (N, C, ...), got {dy.shape}")
    db = _output(out, kernel, (dy.shape[1],), dy.dtype, apart=(dy,))
    s = int(np.prod(dy.shape[2:], dtype=np.int64))
    _conv.channel_sums(dy.reshape(dy.shape[0], dy.shape[1], s), db, config.get_num_threads())
    return db


def _convt_setup(kernel, nd, x, w, stride, padding, output_padding, dilation, groups):
    _conv_check(x, kernel, "x", nd + 2)
    _conv_check(w, kernel, "w", nd + 2, dtype=x.dtype)
    a = _conv_args(kernel, nd, w.shape[2:], stride, padding, dilation, groups, transpose=True)
    op = _conv_tuple(output_padding, nd, kernel, "output_padding", 0)
    op = op if nd == 2 else (0,) + op
    for i in range(2):
        if op[i] >= max(a.stride[i], a.dilation[i]):
            raise HyperparameterError(f"{kernel}: output_padding must be < max(stride, "
                                      f"dilation) = {max(a.stride[i], a.dilation[i])}, got "
                                      f"{op[i]}")
    if x.shape[1] != w.shape[0]:
        raise ShapeError(f"{kernel}: x has {x.shape[1]} channels but the weight "
                         f"(C_in, C_out/groups, ...) has C_in = {w.shape[0]}")
    if w.shape[0] % a.groups:
        raise ShapeError(f"{kernel}: {w.shape[0]} input channels are not divisible by "
                         f"groups={a.groups}")
    x4, w4 = _as4(x, nd), _as4(w, nd)
    _conv_nonempty(kernel, w4.shape, x4.shape[1:])     # the passes divide by these sizes
    out_hw = tuple(conv_transpose_output_size(x4.shape[2 + i], w4.shape[2 + i], a.stride[i],
                                              a.padding[i], a.dilation[i], op[i])
                   for i in range(2))
    if min(out_hw) < 1:
        raise ShapeError(f"{kernel}: output size {out_hw[2 - nd:]} < 1 (input "
                         f"{x.shape[2:]}, padding {a.padding[2 - nd:]})")
    return a, x4, w4, out_hw


def _convt_forward_nd(nd, x, w, b, stride, padding, output_padding, dilation, groups, out,
                      workspace):
    kernel = f"kernels.conv_transpose{nd}d_forward"
    _check_workspace(workspace, kernel)
    a, x4, w4, out_hw = _convt_setup(kernel, nd, x, w, stride, padding, output_padding,
                                     dilation, groups)
    c_out = w.shape[1] * a.groups
    bias = _conv_bias(b, kernel, c_out, x.dtype)
    y = _conv_out(out, kernel, (x.shape[0], c_out) + out_hw[2 - nd:], x.dtype, x, w, b)
    _backward_pass(x4, w4, bias, _as4(y, nd), None, out_hw, a, None, workspace, kernel)
    return y


def _convt_backward_nd(nd, x, dy, w, stride, padding, output_padding, dilation, groups,
                       need_input_grad, need_weight_grad, need_bias_grad, workspace):
    kernel = f"kernels.conv_transpose{nd}d_backward"
    _check_workspace(workspace, kernel)
    a, x4, w4, out_hw = _convt_setup(kernel, nd, x, w, stride, padding, output_padding,
                                     dilation, groups)
    _conv_check(dy, kernel, "dy", nd + 2, dtype=x.dtype)
    want = (x.shape[0], w.shape[1] * a.groups) + out_hw[2 - nd:]
    if dy.shape != want:
        raise ShapeError(f"{kernel}: dy must have shape {want} (the output), got {dy.shape}")
    dx = np.empty_like(x) if need_input_grad else None
    dw = np.empty_like(w) if need_weight_grad else None
    if dx is not None or dw is not None:
        _forward_pass(_as4(dy, nd), w4, np.empty(0, x.dtype),
                      None if dx is None else _as4(dx, nd), x4, x4.shape[2:], a,
                      None if dw is None else _as4(dw, nd), workspace, kernel)
    db = conv_bias_grad(dy) if need_bias_grad else None
    return dx, dw, db


def conv_transpose2d_forward(x, w, b=None, *, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, out=None, workspace=None):
    """Transposed convolution (convolution.md §4): the adjoint of conv2d with the same
    S, P, d. ``Y_full[n,o,iS+pd,jS+qd] += X[n,c,i,j]·W[c,o,p,q]``, cropped to rows
    ``P_lo … P_lo+H_out−1`` (likewise columns), plus ``b[o]``. x ``(N, C_in, H, W)``, w
    ``(C_in, C_out/groups, kh, kw)`` → ``(N, C_out, H_out, W_out)`` with
    ``H_out = (H−1)S − P_lo − P_hi + d(k−1) + output_padding + 1``,
    ``0 ≤ output_padding < max(S, d)``."""
    return _convt_forward_nd(2, x, w, b, stride, padding, output_padding, dilation, groups,
                             out, workspace)


def conv_transpose1d_forward(x, w, b=None, *, stride=1, padding=0, output_padding=0,
                             dilation=1, groups=1, out=None, workspace=None):
    """1-D transposed convolution (see conv_transpose2d_forward); x ``(N, C_in, L)``,
    w ``(C_in, C_out/groups, k)``."""
    return _convt_forward_nd(1, x, w, b, stride, padding, output_padding, dilation, groups,
                             out, workspace)


def conv_transpose2d_backward(x, dy, w, *, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, need_input_grad=True,
                              need_weight_grad=True, need_bias_grad=True, workspace=None):
    """Gradients ``(dx, dw, db)`` of :func:`conv_transpose2d_forward` (convolution.md §4):
    ``dX[n,c,i,j] = Σ W[c,o,p,q]·dY_ext[n,o,iS+pd,jS+qd]`` (a conv2d of dY),
    ``dW[c,o,p,q] = Σ X[n,c,i,j]·dY_ext[n,o,iS+pd,jS+qd]``, ``db[o] = Σ dY[n,o,i,j]``."""
    return _convt_backward_nd(2, x, dy, w, stride, padding, output_padding, dilation, groups,
                              need_input_grad, need_weight_grad, need_bias_grad, workspace)


def conv_transpose1d_backward(x, dy, w, *, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, need_input_grad=True,
                              need_weight_grad=True, need_bias_grad=True, workspace=None):
    """Gradients ``(dx, dw, db)`` of :func:`conv_transpose1d_forward`."""
    return _convt_backward_nd(1, x, dy, w, stride, padding, output_padding, dilation, groups,
                              need_input_grad, need_weight_grad, need_bias_grad, workspace)


def convolve_true(x, h, mode="valid"):
    """True (flipped-kernel) 2-D convolution ``(x ∗ h)[i,j] = Σ_{p,q} h[p,q]·x[i−p, j−q]``
    of one channel (convolution.md §1, D-02): the cross-correlation with ``h[::-1, ::-1]``.

    x ``(H, W)``, h ``(kh, kw)`` (same float dtype). ``mode``: ``"valid"`` (no padding),
    ``"full"`` (``k − 1`` zeros each side) or ``"same"`` (output ``(H, W)``, ``r`` zeros
    each side for odd k = 2r + 1; for even k one more zero top/left, as
    ``scipy.signal.convolve2d``).
    """
    kernel = "kernels.convolve_true"
    _conv_check(x, kernel, "x", 2)
    _conv_check(h, kernel, "h", 2, dtype=x.dtype)
    kh, kw = h.shape
    if mode == "valid":
        pad = 0
    elif mode == "full":
        pad = ((kh - 1, kh - 1), (kw - 1, kw - 1))
    elif mode == "same":
        pad = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in (kh, kw))
    else:
        raise HyperparameterError(f"{kernel}: mode must be 'valid', 'same' or 'full', "
                                  f"got {mode!r}")
    w = np.ascontiguousarray(h[::-1, ::-1])
    return conv2d_forward(x[None, None], w[None, None], padding=pad)[0, 0]
