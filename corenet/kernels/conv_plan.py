"""How a convolution pass runs: the scratch :class:`Workspace`, the method chosen from
the shapes only, never from the thread count (dense matmul for 1×1 outputs, the direct
float32 loops, the shift method, im2col GEMMs tiled by output rows or over blocks of
samples), the thread count and fixed weight-gradient chunks of a pass, and the two
passes every public function of :mod:`corenet.kernels.conv` runs: :func:`_forward_pass`
(y = conv(x, w) + b, dw = corr(x, gy)) and :func:`_backward_pass` (dx = convT(dy, w),
dw = corr(x, dy)). The ``_CONV_*`` / ``_DIRECT_*`` constants below tune the choice and
are read here as module globals (tests patch them on this module)."""
from __future__ import annotations

import numpy as np

from .. import config
from .._kernels import conv as _conv
from .._kernels import conv_direct as _direct
from ..errors import ShapeError
from ._common import _INT_MAX
from .blas import _BLAS, matmul

_CONV_CHUNKS = 16            # fixed sample chunks of weight gradients (thread-independent)
_CONV_PARTIAL_MAX = 1 << 24  # elements of chunk partials we accept before using fewer chunks
_CONV_SERIAL_FLOPS = 2e6     # below this a pass runs on one thread
_CONV_TILE = 1 << 20          # im2col tile: about this many elements per column buffer
_CONV_BLOCK = 1 << 18         # block mode: samples per tile so cols has about this many
_CONV_DIRECT_MIN_HW = 256     # 1×1 convs with at least this many pixels stay per sample
_CONV_SHIFT_MIN = 16          # stride-1 convs with C/G, O/G >= this and
_CONV_SHIFT_WIDEN = 1.15      # (Wo + d(kw - 1))/Wo <= this use the shift method
_CONV_DIRECT = True           # use the direct float32 loops where they apply
_DIRECT_WIDEN = 1.5           # direct float32 loops: (Wo + d(kw - 1))/Wo <= this
_DIRECT_BLOCK = 1 << 19       # weight gradients: padded samples per block, this many floats
_DIRECT_CHUNKS = 8            # weight gradients: fixed sample chunks (partial sums)


class Workspace:
    """Scratch memory reused across calls of the convolution kernels (one per layer).

    ``get(key, size, dtype)`` returns a 1-D buffer of at least ``size`` elements; a buffer
    only grows, so a layer called with one batch shape allocates once.
    """

    def __init__(self):
        self._buffers = {}

    def get(self, key, size, dtype):
        dt = np.dtype(dtype)
        buf = self._buffers.get((key, dt))
        if buf is None or buf.size < size:
            buf = np.empty(max(int(size), 1), dtype=dt)
            self._buffers[(key, dt)] = buf
        return buf

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())

    def clear(self) -> None:
        self._buffers.clear()


def _conv_threads(flops, items):
    nt = config.get_num_threads() if flops >= _CONV_SERIAL_FLOPS else 1
    return max(1, min(nt, items))


def _conv_chunks(n, wsize):
    return max(1, min(n, _CONV_CHUNKS, _CONV_PARTIAL_MAX // max(wsize, 1)))


def _check_workspace(workspace, kernel):
    """Validate ``workspace`` up front: a pass may return before it needs one."""
    if workspace is not None and not isinstance(workspace, Workspace):
        raise TypeError(f"{kernel}: workspace must be a corenet.kernels.Workspace, got "
                        f"{type(workspace).__name__}")


def _conv_ws(workspace, key, size, dtype):
    if workspace is None:
        return np.empty(max(size, 1), dtype=dtype)
    if not isinstance(workspace, Workspace):
        raise TypeError(f"kernels: workspace must be a corenet.kernels.Workspace, got "
                        f"{type(workspace).__name__}")
    return workspace.get(key, size, dtype)


def _conv_limits(kernel, *dims):
    if max(dims) > _INT_MAX:
        raise ShapeError(f"{kernel}: a matrix dimension exceeds the BLAS limit {_INT_MAX}")


def _conv_nonempty(kernel, w_shape, x_shape):
    if min(w_shape) < 1 or min(x_shape) < 1:
        raise ShapeError(f"{kernel}: empty weight {tuple(w_shape)} or input (C, H, W) = "
                         f"{tuple(x_shape)}; every axis but the batch must be >= 1")


def _empty4(dtype):
    return np.empty((0, 0, 0, 0), dtype=dtype)


def _use_shift(a, cg, og, wo, kw):
    """The shift method for stride-1 convs with wide groups whose scratch columns add
    little work; im2col otherwise."""
    wide = wo + a.dilation[1] * (kw - 1)
    return (a.stride == (1, 1) and min(cg, og) >= _CONV_SHIFT_MIN
            and wide <= _CONV_SHIFT_WIDEN * wo)


def _repack(w, workspace):
    """W (O, C/G, kh, kw) as Wt (kh·kw, O, C/G) for the shift method."""
    o, cg, kh, kw = w.shape
    wt = _conv_ws(workspace, "wt", w.size, w.dtype)[:w.size].reshape(kh * kw, o, cg)
    np.copyto(wt.reshape(kh, kw, o, cg), w.transpose(2, 3, 0, 1))
    return wt


def _partials(workspace, items, size, dtype):
    if items == 0:
        return np.empty((0, 0), dtype)
    return _conv_ws(workspace, "partial", items * size, dtype)[:items * size] \
        .reshape(items, size)


def _finish_dw(partial, dw, shift, workspace):
    """dw = Σ_chunks partial (in chunk order); shift partials are in the Wt layout."""
    nt = config.get_num_threads()
    if not shift:
        _conv.sum_rows(partial, dw.reshape(-1), nt)
        return
    o, cg, kh, kw = dw.shape
    dwt = _conv_ws(workspace, "dwt", dw.size, dw.dtype)[:dw.size]
    _conv.sum_rows(partial, dwt, nt)
    np.copyto(dw, dwt.reshape(kh, kw, o, cg).transpose(2, 3, 0, 1))


def _use_direct(dtype, a, out_wo, kw):
    """The direct float32 loops of conv_direct.pyx (AVX-512F / AVX2 present, stride 1,
    one group, scratch columns of the wide grid at most _DIRECT_WIDEN of the output)."""
    return (_CONV_DIRECT and _direct.isa() > 0 and dtype == np.float32 and a.groups == 1
            and a.stride == (1, 1) and out_wo + a.dilation[1] * (kw - 1) <= _DIRECT_WIDEN * out_wo)


def _direct_weight_grad(x, gy, dw, ksize, a, workspace, nt):
    """dw (O, C, kh, kw) = corr(x, gy) by the direct loops, summed per fixed sample chunk
    (in chunk order) so the result does not depend on the thread count."""
    n, c, h, wd = x.shape
    o, (kh, kw) = gy.shape[1], ksize
    ho, wo = gy.shape[2:]
    pad, dil = (a.padding[0][0], a.padding[1][0]), a.dilation
    one = _direct.workspace_size(c, h, wd, o, ho, wo, kh, kw, pad, dil, 1, 1)
    chunks = max(1, min(_DIRECT_CHUNKS, _conv_chunks(n, dw.size)))
    block = max(1, min(-(-n // chunks), _DIRECT_BLOCK // one))
    nt = max(1, min(nt, chunks))
    ws = _conv_ws(workspace, "direct", one * block * nt, x.dtype)
    partial = _partials(workspace, chunks, dw.size, x.dtype)
    _direct.weight_grad_pass(x, gy, partial, ws, (kh, kw), pad, dil, block, nt)
    dwt = _conv_ws(workspace, "dwt", dw.size, dw.dtype)[:dw.size]
    _conv.sum_rows(partial, dwt, nt)
    np.copyto(dw.reshape(o, c, kh, kw), dwt.reshape(c, kh, kw, o).transpose(3, 0, 1, 2))


def _direct_forward(x, wt, b, y, pad, dil, workspace, nt):
    """y = conv(x) + b by the direct loops; wt is the weight repacked as (C, kh, kw, O)."""
    n, c, h, wd = x.shape
    o, ho, wo = y.shape[1:]
    kh, kw = wt.shape[1:3]
    nt = max(1, min(nt, n))
    ws = _conv_ws(workspace, "direct", _direct.workspace_size(
        c, h, wd, o, ho, wo, kh, kw, pad, dil, 1, nt), x.dtype)
    _direct.forward_pass(x, wt, b, y, ws, pad, dil, nt)


def _direct_repack(w, workspace, flip=False):
    """W (O, C, kh, kw) as (C, kh, kw, O); flipped: as (O, kh, kw, C) with the kernel
    rotated by 180° (the weight of the input-gradient correlation)."""
    o, c, kh, kw = w.shape
    if flip:
        wt = _conv_ws(workspace, "wflip", w.size, w.dtype)[:w.size].reshape(o, kh, kw, c)
        np.copyto(wt, w[:, :, ::-1, ::-1].transpose(0, 2, 3, 1))
    else:
        wt = _conv_ws(workspace, "wt", w.size, w.dtype)[:w.size].reshape(c, kh, kw, o)
        np.copyto(wt, w.transpose(1, 2, 3, 0))
    return wt


def _is_dense(a, in_hw, out_hw, kh, kw):
    """The kernel covers the whole unpadded input and the output is 1×1 (LeNet-5's C5):
    the convolution is a matrix product over the batch."""
    return (a.groups == 1 and tuple(out_hw) == (1, 1) and tuple(in_hw) == (kh, kw)
            and a.dilation == (1, 1) and a.padding == ((0, 0), (0, 0)))


def _dense_pass(x, w, b, y, gy, dw, dx, bias_dx):
    """Dense form of a convolution with a 1×1 output (see _is_dense), by NumPy's matmul:
    y = X·Wᵀ + b, dW = Gᵀ·X, dx = G·W (+ bias_dx per input channel), X (N, C·kh·kw)."""
    n, o = (x if x is not None else gy).shape[0], w.shape[0]
    x2, w2 = (None if x is None else x.reshape(n, -1)), w.reshape(o, -1)
    if y is not None:
        y2 = y.reshape(n, o)
        matmul(x2, w2.T, out=y2)
        if b is not None and b.size:
            y2 += b
    if dw is not None:
        matmul(gy.reshape(n, o).T, x2, out=dw.reshape(o, -1))
    if dx is not None:
        dx2 = dx.reshape(n, -1)
        matmul(gy.reshape(n, o), w2, out=dx2)
        if bias_dx is not None and bias_dx.size:
            dx.reshape(n, bias_dx.size, -1)[...] += bias_dx[:, None]


def _conv_tiling(n, c, kh, kw, in_hw, out_hw, stride, pad):
    """(tile, nb) of the im2col passes: ``tile`` output rows per column buffer of one
    sample, or — when a whole sample's columns are small — blocks of ``nb`` > 1 samples
    per buffer (one GEMM over the block). Depends on the shapes only, never on the thread
    count (so results do not either)."""
    ho, wo = out_hw
    per_sample = c * kh * kw * ho * wo
    direct = kh == kw == 1 and stride == (1, 1) and pad == (0, 0) and tuple(in_hw) == out_hw
    tile = _conv.tile_rows(c, kh, kw, ho, wo, _CONV_TILE)
    nb = min(n, _CONV_BLOCK // max(per_sample, 1))
    if tile < ho or nb < 2 or (direct and ho * wo >= _CONV_DIRECT_MIN_HW):
        nb = 1
    return tile, nb


def _gemm_plan(n, c, kh, kw, in_hw, out_hw, a, wsize, want_dw):
    """``(tile, nb, items)`` of the GEMM passes: the tiling of _conv_tiling and the work
    items — weight-gradient chunks (at least one block of samples each), else one item
    per block (or per sample)."""
    tile, nb = _conv_tiling(n, c, kh, kw, in_hw, out_hw, a.stride,
                            (a.padding[0][0], a.padding[1][0]))
    blocks = -(-n // nb)
    return tile, nb, (_conv_chunks(blocks, wsize) if want_dw else blocks)


def _forward_pass(x, w, b, y, gy, out_hw, a, dw, workspace, kernel):
    """The forward-role pass: y = conv(x, w) + b (if y) and dw = corr(x, gy) (if dw)."""
    n, c, h, wd = x.shape
    o, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = out_hw
    _conv_nonempty(kernel, w.shape, (c, h, wd))
    _conv_limits(kernel, (ho + a.dilation[0] * (kh - 1)) * (wo + a.dilation[1] * (kw - 1)),
                 h * wd, c * kh * kw, o)
    want_y, want_dw = y is not None, dw is not None
    if n == 0:
        if want_dw:
            dw.fill(0)
        return
    flops = 2.0 * n * o * ho * wo * (c // a.groups) * kh * kw * (want_y + want_dw)
    if _is_dense(a, (h, wd), (ho, wo), kh, kw):
        _dense_pass(x, w, b, y, gy, dw, None, None)
        return
    if _use_direct(x.dtype, a, wo, kw):
        nt = _conv_threads(flops, n)
        if want_y:
            _direct_forward(x, _direct_repack(w, workspace), b, y,
                            (a.padding[0][0], a.padding[1][0]), a.dilation, workspace, nt)
        if want_dw:
            _direct_weight_grad(x, gy, dw, (kh, kw), a, workspace, nt)
        return
    tile, nb, items = _gemm_plan(n, c, kh, kw, (h, wd), (ho, wo), a, w.size, want_dw)
    nt = _conv_threads(flops, items)
    partial = _partials(workspace, items if want_dw else 0, w.size, x.dtype)
    e4 = _empty4(x.dtype)
    if _use_shift(a, c // a.groups, o // a.groups, wo, kw):
        ws = _conv_ws(workspace, "cols", _conv.shift_workspace_size(
            c, o, ho, wo, kh, kw, a.dilation[0], a.dilation[1], nt), x.dtype)
        with _BLAS.limit(1):
            _conv.shift_pass(x, _repack(w, workspace), b, y if want_y else e4,
                             gy if want_dw else e4, partial, ws, (kh, kw), (ho, wo),
                             (a.padding[0][0], a.padding[1][0]), a.dilation, a.groups,
                             want_y, want_dw, nt)
        if want_dw:
            _finish_dw(partial, dw, True, workspace)
        return
    pad = (a.padding[0][0], a.padding[1][0])
    ws = _conv_ws(workspace, "cols", _conv.workspace_size(
        n, c, h, wd, o, ho, wo, kh, kw, a.stride, pad, tile, nb, 1, nt), x.dtype)
    with _BLAS.limit(1):
        _conv.forward_pass(x, w, b, y if want_y else e4, gy if want_dw else e4, partial, ws,
                           tuple(out_hw), a.stride, pad, a.dilation, a.groups, want_y,
                           want_dw, tile, nb, nt)
    if want_dw:
        _finish_dw(partial, dw, False, workspace)


def _backward_pass(dy, w, bias_dx, dx, x, in_hw, a, dw, workspace, kernel):
    """The backward-role pass: dx = convT(dy, w) + bias_dx (if dx), dw = corr(x, dy)."""
    n, o, ho, wo = dy.shape
    c, kh, kw = w.shape[1] * a.groups, w.shape[2], w.shape[3]
    _conv_nonempty(kernel, w.shape, (c,) + tuple(in_hw))
    _conv_limits(kernel, ho * wo, in_hw[0] * in_hw[1], c * kh * kw, o)
    want_dx, want_dw = dx is not None, dw is not None
    if n == 0:
        if want_dw:
            dw.fill(0)
        return
    flops = 2.0 * n * o * ho * wo * (c // a.groups) * kh * kw * (want_dx + want_dw)
    if _is_dense(a, in_hw, (ho, wo), kh, kw):
        _dense_pass(x, w, None, None, dy, dw, dx, bias_dx)
        return
    pad = (a.padding[0][0], a.padding[1][0])
    fpad = (a.dilation[0] * (kh - 1) - pad[0], a.dilation[1] * (kw - 1) - pad[1])
    if want_dw and _use_direct(dy.dtype, a, wo, kw):
        _direct_weight_grad(x, dy, dw, (kh, kw), a, workspace, _conv_threads(flops, n))
        want_dw = False
    if want_dx and min(fpad) >= 0 and _use_direct(dy.dtype, a, in_hw[1], kw):
        _direct_forward(dy, _direct_repack(w, workspace, flip=True), bias_dx, dx, fpad,
                        a.dilation, workspace, _conv_threads(flops, n))
        want_dx = False
    if not (want_dx or want_dw):
        return
    tile, nb, items = _gemm_plan(n, c, kh, kw, tuple(in_hw), (ho, wo), a, w.size, want_dw)
    nt = _conv_threads(flops, items)
    partial = _partials(workspace, items if want_dw else 0, w.size, dy.dtype)
    e4 = _empty4(dy.dtype)
    ws = _conv_ws(workspace, "cols", _conv.workspace_size(
        n, c, in_hw[0], in_hw[1], o, ho, wo, kh, kw, a.stride, pad, tile, nb, 2, nt),
        dy.dtype)
    with _BLAS.limit(1):
        _conv.backward_pass(dy, w, bias_dx, dx if want_dx else e4, x if want_dw else e4,
                            partial, ws, tuple(in_hw), a.stride, pad, a.dilation, a.groups,
                            want_dx, want_dw, tile, nb, nt)
    if want_dw:
        _finish_dw(partial, dw, False, workspace)
