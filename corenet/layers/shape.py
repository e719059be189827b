"""Resizing layers: padding, cropping and upsampling of feature maps (convolution.md §6.2,
§8.3, D-71).

``zero_pad2d``, ``crop2d``, ``center_crop`` (U-Net skip), ``upsample_nearest2d`` (the
"copy to the neighbourhood" unpooling, transpose of sum pooling) and
``upsample_bilinear2d``. Maps are ``(N, C, H, W)``; ``center_crop`` also takes
``(N, C, L)``. All are linear maps and implement the second-order passes (R-operator and
Gauss-Newton diagonal, networks.md §7.2, §7.5). Padding and cropping amounts are an int
(all sides), a pair ``(rows, columns)`` (both sides of each axis) or
``((top, bottom), (left, right))`` — the per-axis ``(lo, hi)`` convention of
convolution.md §2 (not PyTorch's flat ``(left, right, top, bottom)``, which is refused to
avoid the ambiguity).
"""
from __future__ import annotations

import math

import numpy as np

from .. import kernels as K
from ..errors import HyperparameterError, ShapeError, check_array
from ..kernels.pooling import _int_pair, _upsample_args
from ..layer import Layer
from ..plugins import hookimpl


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _sides(value, component, name):
    """((top, bottom), (left, right)) of non-negative ints."""
    if _is_int(value):
        pairs = ((value, value), (value, value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        pairs = ((value[0], value[0]), (value[1], value[1]))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(map(_is_int, p))
                  for p in value)):
        pairs = tuple(tuple(p) for p in value)
    else:
        raise HyperparameterError(f"{component}: {name} must be an int, a pair (rows, columns) "
                                  f"or ((top, bottom), (left, right)), got {value!r}")
    if min(min(p) for p in pairs) < 0:
        raise HyperparameterError(f"{component}: {name} must be >= 0, got {value!r}")
    return tuple((int(a), int(b)) for a, b in pairs)


class _LinearPasses:
    """Second-order passes (networks.md §7.2, §7.5) of a layer that is linear in its
    input, ``y = J x``: R-forward ``ẏ = J ẋ`` (``_lin``, by default the forward map),
    R-backward ``Jᵀ`` (= backward) on dy and R{dy}; the Gauss-Newton diagonal pass maps h
    through the squared entries of J (``_gn``, by default backward: 0/1 entries)."""

    def _lin(self, x_dot):
        return self._forward(x_dot)

    def _gn(self, h):
        return self._backward(h)

    def _rop_forward(self, x_dot, tangents):
        return None if x_dot is None else self._lin(np.ascontiguousarray(x_dot))

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        return self._backward(dy), self._backward(np.ascontiguousarray(dy_dot))

    def _diag_gn_backward(self, h, diag):
        return self._gn(np.ascontiguousarray(h))


def _check4(layer, x, name="input"):
    check_array(x, layer.label, ndim=4, name=name)
    return x


def _need_rank(layer, input_shape, ranks=(3,)):
    if len(input_shape) not in ranks:
        want = " or ".join({3: "(N, C, H, W)", 2: "(N, C, L)"}[r] for r in ranks)
        raise ShapeError(f"{layer.label}: expects inputs of shape {want}, got per-sample shape "
                         f"{tuple(input_shape)}")


class ZeroPad2d(_LinearPasses, Layer):
    """Zero padding (``layer:zero_pad2d``): ``Y = 0`` of shape ``(N, C, H + top + bottom,
    W + left + right)`` with ``Y[:, :, top:top+H, left:left+W] = X``; backward takes that
    window of dY. ``padding``: int, ``(rows, columns)`` or ``((top, bottom), (left, right))``.
    """

    name = "zero_pad2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 3, 4)},
                {"config": {"padding": [[0, 2], [1, 0]]}, "input_shape": (1, 2, 3)}]

    def __init__(self, padding=1, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.padding = _sides(padding, self.name, "padding")

    def _build(self, input_shape, rng):
        _need_rank(self, input_shape)

    def output_shape(self, input_shape):
        (t, b), (l, r) = self.padding
        c, h, w = input_shape
        return (c, h + t + b, w + l + r)

    def _window(self):
        (t, _), (l, _) = self.padding
        _, h, w = self.input_shape
        return (slice(None), slice(None), slice(t, t + h), slice(l, l + w))

    def _forward(self, x):
        _check4(self, x)
        y = np.zeros((x.shape[0],) + self.output_shape(self.input_shape), dtype=x.dtype)
        y[self._window()] = x
        return y

    def _backward(self, dy):
        _check4(self, dy, "dy")
        return np.ascontiguousarray(dy[self._window()])

    def get_config(self):
        return {"padding": [list(p) for p in self.padding], **super().get_config()}


class Crop2d(_LinearPasses, Layer):
    """Cropping (``layer:crop2d``): removes ``cropping`` rows/columns, ``Y = X[:, :,
    top:H−bottom, left:W−right]``; backward writes dY into those positions of a zero
    array. ``cropping``: int, ``(rows, columns)`` or ``((top, bottom), (left, right))``."""

    name = "crop2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 4, 5)},
                {"config": {"cropping": [[0, 2], [1, 0]]}, "input_shape": (1, 4, 3)}]

    def __init__(self, cropping=1, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.cropping = _sides(cropping, self.name, "cropping")

    def output_shape(self, input_shape):
        _need_rank(self, input_shape)
        (t, b), (l, r) = self.cropping
        c, h, w = input_shape
        if h - t - b < 1 or w - l - r < 1:
            raise ShapeError(f"{self.label}: cropping {self.cropping} leaves nothing of a "
                             f"{h}x{w} map")
        return (c, h - t - b, w - l - r)

    def _build(self, input_shape, rng):
        self.output_shape(input_shape)

    def _window(self):
        (t, b), (l, r) = self.cropping
        _, h, w = self.input_shape
        return (slice(None), slice(None), slice(t, h - b), slice(l, w - r))

    def _forward(self, x):
        _check4(self, x)
        return np.ascontiguousarray(x[self._window()])

    def _backward(self, dy):
        _check4(self, dy, "dy")
        dx = np.zeros((dy.shape[0],) + self.input_shape, dtype=dy.dtype)
        dx[self._window()] = dy
        return dx

    def get_config(self):
        return {"cropping": [list(p) for p in self.cropping], **super().get_config()}


class CenterCrop(_LinearPasses, Layer):
    """Centre crop for U-Net skips (``layer:center_crop``, convolution.md §8.3).

    Crops the spatial axes of ``(N, C, H, W)`` (or ``(N, C, L)``) to a target size with
    ``top = ⌊(H − H_t)/2⌋``, ``left = ⌊(W − W_t)/2⌋``. The target is ``size`` (an int for
    every spatial axis or one int per axis), or, with ``size=None``, the spatial size of
    a second input: ``center_crop()`` is then a two-input layer ``(x, reference)`` whose
    output has x's channels and the reference's spatial size (Graph:
    ``add_node("skip", center_crop(), ["enc", "dec"])`` then ``concat`` of
    ``["skip", "dec"]``). Backward writes dY into the cropped positions of a zero array;
    the reference receives a zero gradient.
    """

    name = "center_crop"

    @classmethod
    def examples(cls):
        return [{"config": {"size": [3, 2]}, "input_shape": (2, 6, 5)},
                {"config": {"size": 3}, "input_shape": (2, 6)},
                {"config": {}, "input_shape": [(2, 7, 6), (3, 4, 4)]}]

    def __init__(self, size=None, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        if size is not None:
            sizes = (size,) if _is_int(size) else tuple(size) if isinstance(size, (tuple, list)) \
                else None
            if not sizes or len(sizes) > 2 or not all(map(_is_int, sizes)) or min(sizes) < 1:
                raise HyperparameterError(f"center_crop: size must be a positive int or one "
                                          f"positive int per spatial axis, got {size!r}")
            size = tuple(int(s) for s in sizes)
        self.size = size
        self.n_inputs = 1 if size is not None else 2

    def _target(self, shape):
        spatial = len(shape) - 1
        if self.size is None:
            return None
        if len(self.size) == 1:
            return self.size * spatial
        if len(self.size) != spatial:
            raise ShapeError(f"{self.label}: size {self.size} has {len(self.size)} axes, the "
                             f"input {tuple(shape)} has {spatial} spatial axes")
        return self.size

    def output_shape(self, input_shape):
        if self.size is None:
            shape, ref = (tuple(s) for s in input_shape)
            _need_rank(self, shape, (2, 3))
            if len(ref) != len(shape):
                raise ShapeError(f"{self.label}: the reference {ref} and the input {shape} "
                                 f"must have the same rank")
            target = ref[1:]
        else:
            shape = tuple(input_shape)
            _need_rank(self, shape, (2, 3))
            target = self._target(shape)
        if any(t > s for t, s in zip(target, shape[1:])):
            raise ShapeError(f"{self.label}: cannot crop spatial size {shape[1:]} to the larger "
                             f"{tuple(target)}")
        return (shape[0],) + tuple(target)

    def _build(self, input_shape, rng):
        self._out = self.output_shape(input_shape)
        shape = input_shape[0] if self.size is None else input_shape
        self._x_shape = tuple(shape)
        self._window = (slice(None), slice(None)) + tuple(
            slice((s - t) // 2, (s - t) // 2 + t) for s, t in zip(shape[1:], self._out[1:]))

    def _forward(self, *xs):
        x = xs[0]
        check_array(x, self.label, ndim=len(self._x_shape) + 1)
        if x.shape[1:] != self._x_shape or (len(xs) == 2 and
                                            xs[1].shape[2:] != self._out[1:]):
            got = [a.shape for a in xs]
            raise ShapeError(f"{self.label}: built for input (N, {self._x_shape}) and target "
                             f"{self._out[1:]}, got {got}")
        if len(xs) == 2:
            self._ref_shape = xs[1].shape
        return np.ascontiguousarray(x[self._window])

    def _backward(self, dy):
        dx = np.zeros((dy.shape[0],) + self._x_shape, dtype=dy.dtype)
        dx[self._window] = dy
        if self.size is None:
            return dx, np.zeros(self._ref_shape, dtype=dy.dtype)
        return dx

    def _rop_forward(self, x_dot, tangents):
        if self.size is None:               # two inputs: only x matters
            x_dot = x_dot[0]
        return None if x_dot is None else np.ascontiguousarray(x_dot[self._window])

    def get_config(self):
        return {"size": None if self.size is None else list(self.size), **super().get_config()}


class UpsampleNearest2d(_LinearPasses, Layer):
    """Nearest-neighbour copy (``layer:upsample_nearest2d``, convolution.md §6.2, D-71):
    ``Y[n, c, i, j] = X[n, c, ⌊i/s⌋, ⌊j/s⌋]`` (Kronecker product with an s×s block of
    ones), ``(N, C, H, W) → (N, C, sH, sW)``; backward sums dY over each s×s block (it is
    the transpose of s×s sum pooling). ``mode="avg_transpose"`` also divides by s² (the
    transpose of average pooling). ``scale_factor``: int (default 2) or a pair."""

    name = "upsample_nearest2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 3, 2)},
                {"config": {"scale_factor": [1, 3], "mode": "avg_transpose"},
                 "input_shape": (1, 2, 3)}]

    def __init__(self, scale_factor=2, mode: str = "copy", *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.scale = _upsample_args(scale_factor, mode, self.name)[:2]
        self.scale_factor = scale_factor if _is_int(scale_factor) else list(self.scale)
        self.upsample_mode = mode     # ``mode`` is the train/eval flag of every layer

    def _build(self, input_shape, rng):
        _need_rank(self, input_shape)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, h * self.scale[0], w * self.scale[1])

    def _forward(self, x):
        return K.upsample_nearest2d_forward(_check4(self, x), self.scale, self.upsample_mode)

    def _backward(self, dy):
        check_array(dy, self.label, ndim=4, dtype=self.dtype, name="dy")
        return K.upsample_nearest2d_backward(dy, self.scale, self.upsample_mode)

    def _gn(self, h):
        dx = self._backward(h)                  # entries 1, or 1/s² for avg_transpose
        if self.upsample_mode == "avg_transpose":
            dx *= self.dtype.type(1.0 / (self.scale[0] * self.scale[1]))
        return dx

    def get_config(self):
        return {"scale_factor": self.scale_factor, "mode": self.upsample_mode,
                **super().get_config()}


def bilinear_matrix(n_in: int, n_out: int, scale=None, align_corners: bool = False,
                    dtype=np.float64) -> np.ndarray:
    """The (n_out, n_in) matrix of 1-D linear interpolation, PyTorch conventions.

    ``align_corners=False``: source coordinate ``u = (o + ½)·r − ½`` clamped below at 0,
    with ``r = 1/scale`` when a scale factor is given, else ``n_in/n_out``;
    ``align_corners=True``: ``u = o·(n_in − 1)/(n_out − 1)``. Row o holds ``1 − λ`` at
    ``⌊u⌋`` and ``λ = u − ⌊u⌋`` at ``min(⌊u⌋ + 1, n_in − 1)``."""
    o = np.arange(n_out, dtype=np.float64)
    if align_corners:
        u = o * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        r = 1.0 / scale if scale is not None else n_in / n_out
        u = np.maximum((o + 0.5) * r - 0.5, 0.0)
    i0 = np.minimum(np.floor(u).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = u - i0
    a = np.zeros((n_out, n_in))
    np.add.at(a, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(a, (np.arange(n_out), i1), lam)
    return a.astype(dtype)


class UpsampleBilinear2d(_LinearPasses, Layer):
    """Bilinear upsampling (``layer:upsample_bilinear2d``), PyTorch's
    ``interpolate(mode="bilinear")`` conventions (the spec only names bilinear
    resizing): ``align_corners=False`` by default (half-pixel centres, see
    :func:`bilinear_matrix`). Output ``(N, C, ⌊H·s_h⌋, ⌊W·s_w⌋)`` for ``scale_factor``
    (number or pair, default 2) or ``size=(H_out, W_out)``. The map is separable and
    linear: ``Y = A_h X A_wᵀ`` per plane, backward ``dX = A_hᵀ dY A_w``."""

    name = "upsample_bilinear2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 3, 2)},
                {"config": {"size": [5, 3], "align_corners": True}, "input_shape": (1, 2, 4)}]

    def __init__(self, scale_factor=2, size=None, align_corners: bool = False, *,
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        if size is not None:
            size = _int_pair(size, self.name, "size", 1)
            scale_factor = None
        else:
            pair = (scale_factor,) * 2 if not isinstance(scale_factor, (tuple, list)) \
                else tuple(scale_factor)
            ok = len(pair) == 2 and all(isinstance(s, (int, float, np.number))
                                        and not isinstance(s, bool) and math.isfinite(s)
                                        and s > 0 for s in pair)
            if not ok:
                raise HyperparameterError(f"{self.name}: scale_factor must be a positive number "
                                          f"or a pair of them, got {scale_factor!r}")
        self.scale_factor = scale_factor
        self.size = size
        self.align_corners = bool(align_corners)

    def _scales(self):
        s = self.scale_factor
        return (s, s) if not isinstance(s, (tuple, list)) else tuple(s)

    def output_shape(self, input_shape):
        _need_rank(self, input_shape)
        c, h, w = input_shape
        if self.size is not None:
            return (c,) + self.size
        sh, sw = self._scales()
        out = (int(math.floor(h * sh)), int(math.floor(w * sw)))
        if min(out) < 1:
            raise ShapeError(f"{self.label}: scale_factor {self.scale_factor} maps {h}x{w} to "
                             f"an empty map {out}")
        return (c,) + out

    def _build(self, input_shape, rng):
        _, ho, wo = self.output_shape(input_shape)
        _, h, w = input_shape
        sh, sw = (None, None) if self.size is not None else self._scales()
        self._ah = bilinear_matrix(h, ho, sh, self.align_corners, self.dtype)
        self._aw = bilinear_matrix(w, wo, sw, self.align_corners, self.dtype)

    def _forward(self, x):
        _check4(self, x)
        return np.ascontiguousarray(np.matmul(np.matmul(self._ah, x), self._aw.T))

    def _backward(self, dy):
        _check4(self, dy, "dy")
        return np.ascontiguousarray(np.matmul(np.matmul(self._ah.T, dy), self._aw))

    def _gn(self, h):
        """``h_x = (A_h²)ᵀ h (A_w²)`` (squared Jacobian entries ``A_h[o,i]² A_w[p,j]²``)."""
        _check4(self, h, "h")
        return np.ascontiguousarray(np.matmul(np.matmul((self._ah ** 2).T, h), self._aw ** 2))

    def get_config(self):
        sf = self.scale_factor
        return {"scale_factor": list(sf) if isinstance(sf, tuple) else sf,
                "size": None if self.size is None else list(self.size),
                "align_corners": self.align_corners, **super().get_config()}


@hookimpl
def corenet_register_layers():
    return [ZeroPad2d, Crop2d, CenterCrop, UpsampleNearest2d, UpsampleBilinear2d]
