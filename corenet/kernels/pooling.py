"""Max / average pooling, max-unpooling and nearest-neighbour upsampling (convolution.md
§5-6, D-20, D-70, D-71) on (N, C, H, W) maps; 1-D layers call these with H = 1
(compiled kernels: ``corenet/_kernels/pool.pyx``)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import config
from .._kernels import pool as _pool
from ..errors import DTypeError, HyperparameterError, ShapeError
from ._common import _INT_MAX, _apart, _check, _empty, _output

UPSAMPLE_MODES = ("copy", "avg_transpose")


class PoolGeometry(NamedTuple):
    """Normalised window geometry: ``kernel_size (kh, kw)``, ``stride (sh, sw)``,
    ``padding ((top, bottom), (left, right))`` and ``output_size (H_out, W_out)``."""
    kernel_size: tuple
    stride: tuple
    padding: tuple
    output_size: tuple


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _int_pair(value, component, name, minimum):
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = (value, value) if _is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(map(_is_int, pair))
            and all(v >= minimum for v in pair)):
        raise HyperparameterError(f"{component}: {name} must be an int >= {minimum} or a pair "
                                  f"of them, got {value!r}")
    if max(pair) > _INT_MAX:
        raise HyperparameterError(f"{component}: {name} must be <= {_INT_MAX}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(padding, kernel_size, stride, component):
    """((top, bottom), (left, right)) from an int, (ph, pw), ((t, b), (l, r)), "valid"
    or "same" (stride 1 only: total k − 1, the extra zero at the bottom/right, D-69)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise HyperparameterError(f"{component}: padding='same' needs stride 1, got "
                                          f"stride {stride}")
            return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_size)
        raise HyperparameterError(f"{component}: padding must be 'valid', 'same', an int or "
                                  f"pairs, got {padding!r}")
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        pads = tuple(_int_pair(p, component, "padding (lo, hi)", 0) for p in padding)
    else:
        ph, pw = _int_pair(padding, component, "padding", 0)
        pads = ((ph, ph), (pw, pw))
    return pads


def pool2d_geometry(input_hw, kernel_size=2, stride=None, padding=0, *,
                    component="kernels.pool2d") -> PoolGeometry:
    """Validate a pooling window for an input of spatial size ``input_hw`` (H, W).

    ``kernel_size`` and ``stride`` (default: kernel_size) are ints or pairs; ``padding``
    is an int, a pair, explicit ``((top, bottom), (left, right))``, ``"valid"`` or
    ``"same"``. Each padding must be ≤ kernel/2 (every window then holds a real
    element). Output size (convolution.md §2, d = 1):
    ``H_out = ⌊(H + P_top + P_bottom − kh)/sh⌋ + 1``; ``H_out < 1`` raises ShapeError.
    """
    kh, kw = _int_pair(kernel_size, component, "kernel_size", 1)
    st = (kh, kw) if stride is None else _int_pair(stride, component, "stride", 1)
    pads = _padding(padding, (kh, kw), st, component)
    for (lo, hi), k, axis in zip(pads, (kh, kw), ("rows", "columns")):
        if 2 * lo > k or 2 * hi > k:
            raise HyperparameterError(f"{component}: padding of the {axis} must be <= "
                                      f"kernel_size/2 = {k / 2:g}, got ({lo}, {hi})")
    h, w = (int(s) for s in input_hw)
    if h < 1 or w < 1:
        raise ShapeError(f"{component}: the input has an empty spatial size {(h, w)}")
    out = tuple((size + lo + hi - k) // s + 1 if size + lo + hi >= k else 0
                for size, (lo, hi), k, s in zip((h, w), pads, (kh, kw), st))
    if min(out) < 1:
        raise ShapeError(f"{component}: the {kh}x{kw} window is larger than the padded input "
                         f"({h}+{pads[0][0] + pads[0][1]}) x ({w}+{pads[1][0] + pads[1][1]}); "
                         f"output size would be {out}")
    return PoolGeometry((kh, kw), st, pads, out)


def _check4(x, kernel, name, dtype=None):
    _check(x, kernel, name, dtype=dtype)
    if x.ndim != 4:
        raise ShapeError(f"{kernel}: {name} must have shape (N, C, H, W), got {x.shape}")
    return x


def _switches(s, kernel, shape, name="switches"):
    if not isinstance(s, np.ndarray):
        raise DTypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(s).__name__}")
    if s.dtype != np.int64:
        raise DTypeError(f"{kernel}: {name} must have dtype int64, got {s.dtype}")
    if s.shape != tuple(shape):
        raise ShapeError(f"{kernel}: {name} must have shape {tuple(shape)}, got {s.shape}")
    if not s.flags.c_contiguous:
        raise ValueError(f"{kernel}: {name} must be C-contiguous, got strides {s.strides}")
    return s


def _input_shape(shape, kernel, dy_shape):
    try:
        ints = tuple(shape)
    except TypeError:
        raise ShapeError(f"{kernel}: input_shape must be (N, C, H, W), got {shape!r}") from None
    if not all(_is_int(s) and s >= 0 for s in ints):
        raise ShapeError(f"{kernel}: input_shape must be (N, C, H, W) of ints >= 0, got "
                         f"{shape!r}")
    shape = tuple(int(s) for s in ints)
    if len(shape) != 4 or shape[:2] != tuple(dy_shape[:2]):
        raise ShapeError(f"{kernel}: input_shape must be (N, C, H, W) with N, C = "
                         f"{tuple(dy_shape[:2])} of dy, got {shape}")
    return shape


def _planes(a):
    """(N, C, H, W) -> (N·C, H, W) view."""
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def max_pool2d_forward(x, kernel_size=2, stride=None, padding=0, out=None,
                       switches_out=None):
    """Max pooling (convolution.md §5.1): ``(y, switches)`` for x (N, C, H, W).

    y (N, C, H_out, W_out) holds each window's maximum; switches (int64, same shape) the
    flat index into the H·W plane of the unpadded input of the first maximum in
    row-major window order, or of the first NaN (D-20). Padded positions act as −∞.
    Geometry as in :func:`pool2d_geometry`.
    """
    kernel = "kernels.max_pool2d_forward"
    _check4(x, kernel, "x")
    g = pool2d_geometry(x.shape[2:], kernel_size, stride, padding, component=kernel)
    shape = x.shape[:2] + g.output_size
    y = _output(out, kernel, shape, x.dtype, apart=(x,))
    if switches_out is None:
        sw = _empty(shape, np.int64, kernel, "switches")
    else:
        sw = _switches(switches_out, kernel, shape, "switches_out")
        if not sw.flags.writeable:
            raise ValueError(f"{kernel}: switches_out must be writable")
        _apart(sw, kernel, x, y, name="switches_out")
    (kh, kw), (sth, stw), ((pt, _), (pl, _)) = g.kernel_size, g.stride, g.padding
    _pool.max_pool_forward(_planes(x), _planes(y), _planes(sw), kh, kw, sth, stw, pt, pl,
                           config.get_num_threads())
    return y, sw


def max_pool2d_backward(dy, switches, input_shape, out=None):
    """``dX`` (``input_shape``): zero, then ``dX.flat_plane[switch] += dY`` for every output
    position (overlapping windows accumulate, fixed row-major order; D-20)."""
    kernel = "kernels.max_pool2d_backward"
    _check4(dy, kernel, "dy")
    _switches(switches, kernel, dy.shape)
    shape = _input_shape(input_shape, kernel, dy.shape)
    dx = _output(out, kernel, shape, dy.dtype, apart=(dy, switches))
    bad = _pool.max_pool_backward(_planes(dy), _planes(switches), _planes(dx),
                                  config.get_num_threads())
    if shape[2] * shape[3] == 0:       # the kernel skips empty planes: no switch is inside
        bad = switches.size
    if bad:
        raise ValueError(f"{kernel}: {bad} switch(es) outside 0..{shape[2] * shape[3] - 1} "
                         f"(the H·W plane of input_shape {shape})")
    return dx


def avg_pool2d_forward(x, kernel_size=2, stride=None, padding=0, count_include_pad=True,
                       out=None):
    """Average pooling (convolution.md §5.2): ``Y = (1/m) Σ_window x_pad`` with m = kh·kw
    (``count_include_pad=True``, D-70) or the number of in-bounds elements."""
    kernel = "kernels.avg_pool2d_forward"
    _check4(x, kernel, "x")
    g = pool2d_geometry(x.shape[2:], kernel_size, stride, padding, component=kernel)
    y = _output(out, kernel, x.shape[:2] + g.output_size, x.dtype, apart=(x,))
    (kh, kw), (sth, stw), ((pt, _), (pl, _)) = g.kernel_size, g.stride, g.padding
    _pool.avg_pool_forward(_planes(x), _planes(y), kh, kw, sth, stw, pt, pl,
                           bool(count_include_pad), config.get_num_threads())
    return y


def avg_pool2d_backward(dy, input_shape, kernel_size=2, stride=None, padding=0,
                        count_include_pad=True, out=None):
    """Average-pooling backward: every in-bounds element of a window receives ``dY/m``
    (accumulated over overlapping windows). Returns dX of ``input_shape``."""
    kernel = "kernels.avg_pool2d_backward"
    _check4(dy, kernel, "dy")
    shape = _input_shape(input_shape, kernel, dy.shape)
    g = pool2d_geometry(shape[2:], kernel_size, stride, padding, component=kernel)
    if dy.shape[2:] != g.output_size:
        raise ShapeError(f"{kernel}: dy must have shape {shape[:2] + g.output_size} for "
                         f"input_shape {shape}, got {dy.shape}")
    dx = _output(out, kernel, shape, dy.dtype, apart=(dy,))
    (kh, kw), (sth, stw), ((pt, _), (pl, _)) = g.kernel_size, g.stride, g.padding
    _pool.avg_pool_backward(_planes(dy), _planes(dx), kh, kw, sth, stw, pt, pl,
                            bool(count_include_pad), config.get_num_threads())
    return dx


def max_unpool2d_forward(x, switches, output_size, out=None):
    """Max-unpooling (convolution.md §6.1): Y (N, C, H_out, W_out) is zero except
    ``Y.flat_plane[switch] = X``; when switches repeat the last entry in row-major order
    wins. Every switch must lie in ``0 … H_out·W_out − 1``."""
    kernel = "kernels.max_unpool2d_forward"
    _check4(x, kernel, "x")
    _switches(switches, kernel, x.shape)
    ho, wo = _int_pair(output_size, kernel, "output_size", 1)
    y = _output(out, kernel, x.shape[:2] + (ho, wo), x.dtype, apart=(x, switches))
    bad = _pool.max_unpool_forward(_planes(x), _planes(switches), _planes(y),
                                   config.get_num_threads())
    if bad:
        raise ValueError(f"{kernel}: {bad} switch(es) outside 0..{ho * wo - 1} (the plane of "
                         f"output_size {(ho, wo)})")
    return y


def max_unpool2d_backward(dy, switches, out=None):
    """``dX[n, c, i, j] = dY.flat_plane[switch[n, c, i, j]]`` (dX has switches' shape).

    When switches repeat (overlapping pools), only the entry the forward pass wrote last
    (row-major order) receives the gradient and the overwritten ones get 0: the exact
    gradient of :func:`max_unpool2d_forward` (convolution.md §6.1 states the gather for
    every entry, which is the gradient only when switches are distinct)."""
    kernel = "kernels.max_unpool2d_backward"
    _check4(dy, kernel, "dy")
    if not isinstance(switches, np.ndarray) or switches.ndim != 4 \
            or switches.shape[:2] != dy.shape[:2]:
        raise ShapeError(f"{kernel}: switches must be (N, C, H_p, W_p) with N, C = "
                         f"{dy.shape[:2]} of dy, got {getattr(switches, 'shape', switches)}")
    _switches(switches, kernel, switches.shape)
    dx = _output(out, kernel, switches.shape, dy.dtype, apart=(dy, switches))
    scratch = np.empty((dy.shape[0] * dy.shape[1], dy.shape[2] * dy.shape[3]), np.uint8)
    bad = _pool.max_unpool_backward(_planes(dy), _planes(switches), _planes(dx), scratch,
                                    config.get_num_threads())
    if bad:
        raise ValueError(f"{kernel}: {bad} switch(es) outside 0..{dy.shape[2] * dy.shape[3] - 1}"
                         f" (the plane of dy {dy.shape})")
    return dx


def _upsample_args(scale_factor, mode, kernel):
    sh, sw = _int_pair(scale_factor, kernel, "scale_factor", 1)
    if mode not in UPSAMPLE_MODES:
        raise HyperparameterError(f"{kernel}: mode must be one of {UPSAMPLE_MODES}, got "
                                  f"{mode!r}")
    return sh, sw, (1.0 / (sh * sw) if mode == "avg_transpose" else 1.0)


def upsample_nearest2d_forward(x, scale_factor=2, mode="copy", out=None):
    """Nearest-neighbour copy (convolution.md §6.2): ``Y[n, c, i, j] = X[n, c, ⌊i/sh⌋,
    ⌊j/sw⌋]`` (transpose of sum pooling); ``mode="avg_transpose"`` also multiplies by
    ``1/(sh·sw)`` (transpose of average pooling). Y: (N, C, H·sh, W·sw)."""
    kernel = "kernels.upsample_nearest2d_forward"
    _check4(x, kernel, "x")
    sh, sw, scale = _upsample_args(scale_factor, mode, kernel)
    n, c, h, w = x.shape
    y = _output(out, kernel, (n, c, h * sh, w * sw), x.dtype, apart=(x,))
    _pool.upsample_nearest_forward(_planes(x), _planes(y), sh, sw, scale,
                                   config.get_num_threads())
    return y


def upsample_nearest2d_backward(dy, scale_factor=2, mode="copy", out=None):
    """Transpose of :func:`upsample_nearest2d_forward`: ``dX`` = sums of dY over each
    ``sh×sw`` block (times ``1/(sh·sw)`` for ``avg_transpose``)."""
    kernel = "kernels.upsample_nearest2d_backward"
    _check4(dy, kernel, "dy")
    sh, sw, scale = _upsample_args(scale_factor, mode, kernel)
    n, c, ho, wo = dy.shape
    if ho % sh or wo % sw:
        raise ShapeError(f"{kernel}: dy's spatial size {(ho, wo)} is not a multiple of "
                         f"scale_factor {(sh, sw)}")
    dx = _output(out, kernel, (n, c, ho // sh, wo // sw), dy.dtype, apart=(dy,))
    _pool.upsample_nearest_backward(_planes(dy), _planes(dx), sh, sw, scale,
                                    config.get_num_threads())
    return dx
