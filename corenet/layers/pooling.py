"""Pooling layers and max-unpooling (convolution.md §5-6, D-20, D-70, D-71).

All of them are linear in their input for the switches of their last forward pass, so
they implement the second-order passes (R-operator and Gauss-Newton diagonal,
networks.md §7.2 and §7.5; max pool ``Ẏ = Ẋ[switch]``).

``max_pool1d``, ``max_pool2d``, ``avg_pool1d``, ``avg_pool2d``, ``global_avg_pool``,
``global_max_pool`` and ``max_unpool2d``. Layouts: ``(N, C, H, W)`` for 2-D layers and
``(N, C, L)`` for 1-D layers (run as 2-D with H = 1). The compiled kernels of
:mod:`corenet.kernels` do the work; every pooling acts on each (n, c) plane separately.

Max-unpooling needs the switches of a max-pool layer. It names that layer with
``switches_from``: either the :class:`MaxPool2d` object itself (works in ``Sequential``
and ``Graph``)::

    pool = MaxPool2d(2)
    model = Sequential([conv, pool, conv2, MaxUnpool2d(switches_from=pool)])

or the key of the pool in its model (``"3"`` in a Sequential, the node name in a Graph),
which is what ``get_config`` records::

    g.add_node("pool1", MaxPool2d(2), "x")
    ...
    g.add_node("up1", MaxUnpool2d(switches_from="pool1"), "dec1")
    link_layers(g)

A key is bound to the layer object by ``resolve_references(layers_by_key)``;
:func:`link_layers` does that for every layer of a model (call it after building a
model from keys or from ``from_config``; until then a forward pass raises a message
saying so). At each forward the unpool layer reads the switches of the pool's latest
forward pass, so the pool must run earlier in the same pass, on the same batch.
"""
from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..errors import HyperparameterError, ShapeError, check_array
from ..kernels.pooling import _int_pair
from ..layer import Layer
from ..plugins import hookimpl

_BIG = 1 << 30   # a dummy input size used to validate window hyperparameters early


def _jsonable(v):
    """Tuples -> lists (recursively) for get_config."""
    if isinstance(v, (tuple, list)):
        return [_jsonable(a) for a in v]
    return int(v) if isinstance(v, np.integer) else v


class _LinearPasses:
    """Second-order passes (networks.md §7.2, §7.5) of a layer that is linear in its input
    for the switches cached by its last forward: ``y = J x``. R-forward ``ẏ = J ẋ``;
    R-backward applies ``Jᵀ`` (= backward) to dy and R{dy} (J does not depend on θ);
    the Gauss-Newton diagonal pass maps h through the squared entries of J (``_gn``)."""

    def _rop_forward(self, x_dot, tangents):
        return None if x_dot is None else self._lin(np.ascontiguousarray(x_dot))

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        return self._backward(dy), self._backward(np.ascontiguousarray(dy_dot))

    def _diag_gn_backward(self, h, diag):
        return self._gn(np.ascontiguousarray(h))


class _Pool(_LinearPasses, Layer):
    """Shared window handling of the 1-D and 2-D pooling layers."""

    spatial = 2

    def __init__(self, kernel_size=2, stride=None, padding=0, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self._geometry((1,) + (_BIG,) * self.spatial, component=self.name)   # validate now

    # 1-D layers run as 2-D with H = 1
    def _args2d(self):
        if self.spatial == 2:
            return self.kernel_size, self.stride, self.padding
        k = self.kernel_size
        if isinstance(k, (tuple, list)) and len(k) == 1:
            k = k[0]
        s = self.stride[0] if isinstance(self.stride, (tuple, list)) and \
            len(self.stride) == 1 else self.stride
        p = self.padding
        if not isinstance(p, str):
            p = ((0, 0), tuple(p)) if isinstance(p, (tuple, list)) else ((0, 0), (p, p))
        return (1, k), None if s is None else (1, s), p

    def _geometry(self, input_shape, component=None):
        if len(input_shape) != self.spatial + 1:
            want = "(N, C, H, W)" if self.spatial == 2 else "(N, C, L)"
            raise ShapeError(f"{component or self.label}: expects inputs of shape {want}, got "
                             f"per-sample shape {tuple(input_shape)}")
        hw = tuple(input_shape[1:]) if self.spatial == 2 else (1, input_shape[1])
        k, s, p = self._args2d()
        return K.pool2d_geometry(hw, k, s, p, component=component or self.label)

    def _build(self, input_shape, rng):
        self._geom = self._geometry(input_shape)

    def output_shape(self, input_shape):
        out = self._geometry(input_shape).output_size
        return (input_shape[0],) + (out if self.spatial == 2 else out[1:])

    def _as4(self, x):
        check_array(x, self.label, ndim=self.spatial + 2)
        return x if self.spatial == 2 else x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])

    def _back_shape(self, dy):
        check_array(dy, self.label, ndim=self.spatial + 2, dtype=self.dtype, name="dy")
        return dy if self.spatial == 2 else dy.reshape(dy.shape[0], dy.shape[1], 1, -1)

    def _out(self, y4):
        return y4 if self.spatial == 2 else y4.reshape(y4.shape[0], y4.shape[1], -1)

    def get_config(self):
        return {"kernel_size": _jsonable(self.kernel_size), "stride": _jsonable(self.stride),
                "padding": _jsonable(self.padding), **super().get_config()}


class MaxPool2d(_Pool):
    """Max pooling (``layer:max_pool2d``, convolution.md §5.1): ``(N, C, H, W) →
    (N, C, H_out, W_out)``, ``H_out = ⌊(H + P_top + P_bottom − k_h)/S_h⌋ + 1``.

    ``Y[n, c, i, j] = max`` over the window; padded positions act as −∞ and each padding
    must be ≤ kernel_size/2. ``kernel_size`` (default 2), ``stride`` (default
    kernel_size) and ``padding`` are ints, pairs, ``((top, bottom), (left, right))`` or
    ``"valid"``/``"same"``. Switches (``self.switches``, int64, output shape) are flat
    indices into the H·W plane of the input; ties go to the first maximum in row-major
    window order and a window holding NaN outputs NaN with the first NaN as switch
    (D-20). Backward: ``dX[switch] += dY`` (overlapping windows accumulate).
    ``return_indices=True`` makes ``forward`` return ``(Y, switches)`` (stand-alone use;
    inside a model keep it False and use ``max_unpool2d(switches_from=...)``).
    """

    name = "max_pool2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 6, 5)},
                {"config": {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1]},
                 "input_shape": (1, 7, 6)}]
    spatial = 2

    def __init__(self, kernel_size=2, stride=None, padding=0, return_indices: bool = False, *,
                 trainable: bool = True):
        super().__init__(kernel_size, stride, padding, trainable=trainable)
        self.return_indices = bool(return_indices)
        self.switches = None

    def _forward(self, x):
        x4 = self._as4(x)
        g = self._geom
        y, sw = K.max_pool2d_forward(x4, g.kernel_size, g.stride, g.padding)
        self._x_shape4 = x4.shape
        self.switches = self._out(sw)
        y = self._out(y)
        return (y, self.switches) if self.return_indices else y

    def _backward(self, dy):
        if self.switches is None:
            raise RuntimeError(f"{self.label}: backward called before forward")
        if getattr(dy, "shape", None) != self.switches.shape:
            raise ShapeError(f"{self.label}: dy must have shape {self.switches.shape}, got "
                             f"{getattr(dy, 'shape', type(dy).__name__)}")
        dy4 = self._back_shape(dy)
        dx = K.max_pool2d_backward(dy4, self.switches.reshape(dy4.shape), self._x_shape4)
        return dx.reshape((dx.shape[0],) + self.input_shape)

    def _lin(self, x_dot):
        """``Ẏ = Ẋ[switch]`` (same switches)."""
        n, c = self._x_shape4[:2]
        planes = self._as4(x_dot).reshape(n * c, -1)
        return np.take_along_axis(planes, self.switches.reshape(n * c, -1), axis=1) \
            .reshape(self.switches.shape)

    def _gn(self, h):
        return self._backward(h)                 # the entries of J are 0 or 1

    def get_config(self):
        return {**super().get_config(), "return_indices": self.return_indices}


class MaxPool1d(MaxPool2d):
    """Max pooling over the length axis (``layer:max_pool1d``): ``(N, C, L) →
    (N, C, L_out)``; ``kernel_size``, ``stride`` ints, ``padding`` an int, ``(lo, hi)``,
    ``"valid"`` or ``"same"``. Same rules as :class:`MaxPool2d` (switches index L)."""

    name = "max_pool1d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 7)},
                {"config": {"kernel_size": 3, "stride": 2, "padding": 1},
                 "input_shape": (3, 8)}]
    spatial = 1


class AvgPool2d(_Pool):
    """Average pooling (``layer:avg_pool2d``, convolution.md §5.2):
    ``Y = (1/m) Σ_window x_pad`` with ``m = k_h·k_w`` when ``count_include_pad=True``
    (default, D-70) or the number of in-bounds elements. Backward: every in-bounds
    element of a window receives ``dY/m`` (accumulated). Geometry as :class:`MaxPool2d`."""

    name = "avg_pool2d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 6, 5)},
                {"config": {"kernel_size": 3, "stride": 2, "padding": 1,
                            "count_include_pad": False}, "input_shape": (1, 7, 6)}]
    spatial = 2

    def __init__(self, kernel_size=2, stride=None, padding=0, count_include_pad: bool = True,
                 *, trainable: bool = True):
        super().__init__(kernel_size, stride, padding, trainable=trainable)
        self.count_include_pad = bool(count_include_pad)

    def _forward(self, x):
        g = self._geom
        x4 = self._as4(x)
        self._x_shape4 = x4.shape
        return self._out(K.avg_pool2d_forward(x4, g.kernel_size, g.stride, g.padding,
                                              self.count_include_pad))

    def _backward(self, dy):
        g = self._geom
        dy4 = self._back_shape(dy)
        dx = K.avg_pool2d_backward(dy4, self._x_shape4, g.kernel_size, g.stride, g.padding,
                                   self.count_include_pad)
        return dx.reshape((dx.shape[0],) + self.input_shape)

    def _lin(self, x_dot):
        g = self._geom
        return self._out(K.avg_pool2d_forward(self._as4(x_dot), g.kernel_size, g.stride,
                                              g.padding, self.count_include_pad))

    def _gn(self, h):
        """``h_x = Σ_windows h_y / m²``: the backward pass of ``h / m``."""
        g = self._geom
        k = g.kernel_size[0] * g.kernel_size[1]
        if self.count_include_pad:
            return self._backward(h) * self.dtype.type(1.0 / k)
        ones = np.ones((1, 1) + self._x_shape4[2:], dtype=self.dtype)
        m = K.avg_pool2d_forward(ones, g.kernel_size, g.stride, g.padding, True) * k
        return self._backward(np.ascontiguousarray(h / self._out(m)))

    def get_config(self):
        return {**super().get_config(), "count_include_pad": self.count_include_pad}


class AvgPool1d(AvgPool2d):
    """Average pooling over the length axis (``layer:avg_pool1d``): ``(N, C, L) →
    (N, C, L_out)``; rules of :class:`AvgPool2d`."""

    name = "avg_pool1d"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (2, 7)},
                {"config": {"kernel_size": 3, "stride": 1, "padding": "same"},
                 "input_shape": (3, 8)}]
    spatial = 1


class _GlobalPool(_LinearPasses, Layer):
    """Pooling over all spatial positions of ``(N, C, H, W)`` or ``(N, C, L)``."""

    def __init__(self, keepdims: bool = False, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.keepdims = bool(keepdims)

    def _build(self, input_shape, rng):
        if len(input_shape) not in (2, 3):
            raise ShapeError(f"{self.label}: expects inputs of shape (N, C, H, W) or (N, C, L), "
                             f"got per-sample shape {tuple(input_shape)}")
        if int(np.prod(input_shape[1:])) < 1:
            raise ShapeError(f"{self.label}: the input has no spatial positions "
                             f"(per-sample shape {tuple(input_shape)})")

    def output_shape(self, input_shape):
        c = input_shape[0]
        return (c,) + (1,) * (len(input_shape) - 1) if self.keepdims else (c,)

    def _as4(self, x):
        check_array(x, self.label, ndim=(3, 4))
        return x.reshape(x.shape[0], x.shape[1], 1, -1)

    def _dy4(self, dy):
        n, c = dy.shape[:2]
        if dy.shape != (n,) + self.output_shape(self.input_shape):
            raise ShapeError(f"{self.label}: dy must have shape "
                             f"(N, {', '.join(map(str, self.output_shape(self.input_shape)))}), "
                             f"got {dy.shape}")
        return np.ascontiguousarray(dy).reshape(n, c, 1, 1)

    def _finish(self, y4):
        return y4.reshape((y4.shape[0],) + self.output_shape(self.input_shape))

    def get_config(self):
        return {"keepdims": self.keepdims, **super().get_config()}


class GlobalAvgPool(_GlobalPool):
    """Global average pooling (``layer:global_avg_pool``, convolution.md §5.3):
    ``Y[n, c] = mean_{i,j} X[n, c, i, j]``; ``(N, C, H, W) → (N, C)`` (``(N, C, 1, 1)``
    with ``keepdims=True``; 1-D inputs likewise). Backward: ``dY[n, c]/(H·W)`` to every
    position."""

    name = "global_avg_pool"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (3, 4, 5)},
                {"config": {"keepdims": True}, "input_shape": (2, 6)}]

    def _forward(self, x):
        x4 = self._as4(x)
        self._x_shape4 = x4.shape
        return self._finish(K.avg_pool2d_forward(x4, (1, x4.shape[3])))

    def _backward(self, dy):
        dx = K.avg_pool2d_backward(self._dy4(dy), self._x_shape4, (1, self._x_shape4[3]))
        return dx.reshape((dx.shape[0],) + self.input_shape)

    def _lin(self, x_dot):
        x4 = self._as4(x_dot)
        return self._finish(K.avg_pool2d_forward(x4, (1, x4.shape[3])))

    def _gn(self, h):
        return self._backward(h) * self.dtype.type(1.0 / self._x_shape4[3])


class GlobalMaxPool(_GlobalPool):
    """Global max pooling (``layer:global_max_pool``, convolution.md §5.3):
    ``Y[n, c] = max_{i,j} X[n, c, i, j]`` with one switch per channel (first maximum in
    row-major order, D-20; ``self.switches`` (N, C) flat plane indices). Backward: the
    whole ``dY[n, c]`` goes to the switch."""

    name = "global_max_pool"

    @classmethod
    def examples(cls):
        return [{"config": {}, "input_shape": (3, 4, 5)},
                {"config": {"keepdims": True}, "input_shape": (2, 6)}]

    def _forward(self, x):
        x4 = self._as4(x)
        self._x_shape4 = x4.shape
        y, sw = K.max_pool2d_forward(x4, (1, x4.shape[3]))
        self._sw4 = sw
        self.switches = sw.reshape(sw.shape[:2])
        return self._finish(y)

    def _backward(self, dy):
        dx = K.max_pool2d_backward(self._dy4(dy), self._sw4, self._x_shape4)
        return dx.reshape((dx.shape[0],) + self.input_shape)

    def _lin(self, x_dot):
        n, c = self._x_shape4[:2]
        y = np.take_along_axis(self._as4(x_dot).reshape(n * c, -1), self._sw4.reshape(n * c, 1),
                               axis=1)
        return self._finish(y.reshape(n, c, 1, 1))

    def _gn(self, h):
        return self._backward(h)


class MaxUnpool2d(_LinearPasses, Layer):
    """Max-unpooling with switches (``layer:max_unpool2d``, convolution.md §6.1, D-71).

    ``Y = zeros(N, C, H_out, W_out); Y.flat_plane[switch] = X`` with the switches of the
    max-pool layer named by ``switches_from`` (a :class:`MaxPool2d` object or its key in
    the model, see the module doc); when switches repeat (overlapping windows) the last
    entry in row-major order is written. Backward: ``dX = dY.flat_plane[switch]``, except
    that entries overwritten in the forward pass (repeated switches) get 0 — the exact
    gradient; the spec's plain gather equals it whenever switches are distinct.
    X must have the pool's output shape. ``output_size`` (H_out, W_out) defaults to the
    pool's input size, which equals the spec default ``((H_p−1)S + k − 2P, …)`` whenever
    the pool's windows cover its input; when the floor of the output-size formula drops
    trailing rows the spec formula would place the flat switches in a plane of the wrong
    width, so corenet uses the pool's input size (as PyTorch does when given
    ``output_size=x.shape[2:]``). An explicit ``output_size`` is used as given.
    """

    name = "max_unpool2d"

    @classmethod
    def examples(cls):
        # The layer only works next to the max-pool whose switches it reads, so the
        # stand-alone contract checks that need a forward pass do not apply; the pair is
        # tested in tests/test_pooling_layers.py.
        return [{"config": {"switches_from": "pool", "output_size": [4, 4]},
                 "input_shape": (2, 2, 2),
                 "skip_checks": ["forward", "backward", "accumulate", "gradients", "float32",
                                 "config", "errors", "mask", "batch1"]}]

    def __init__(self, switches_from, output_size=None, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        if not (isinstance(switches_from, MaxPool2d) and type(switches_from) is not MaxPool1d
                or (isinstance(switches_from, str) and switches_from)):
            raise HyperparameterError(f"max_unpool2d: switches_from must be a max_pool2d layer "
                                      f"or the key of one in the model, got {switches_from!r}")
        self.switches_from = switches_from
        if output_size is not None:
            output_size = _int_pair(output_size, "max_unpool2d", "output_size", 1)
        self.output_size = output_size

    @property
    def source(self) -> MaxPool2d:
        """The max-pool layer whose switches are used (after resolution)."""
        if isinstance(self.switches_from, str):
            raise RuntimeError(f"{self.label}: switches_from={self.switches_from!r} is not "
                               f"linked to a layer yet; call "
                               f"corenet.layers.pooling.link_layers(model) (needed after "
                               f"from_config)")
        return self.switches_from

    def resolve_references(self, layers_by_key: dict) -> None:
        """Bind a ``switches_from`` key to the layer of that key."""
        if not isinstance(self.switches_from, str):
            return
        layer = layers_by_key.get(self.switches_from)
        if layer is None or not isinstance(layer, MaxPool2d) or isinstance(layer, MaxPool1d):
            what = "no layer" if layer is None else f"a {layer.name} layer"
            raise HyperparameterError(f"{self.label}: switches_from={self.switches_from!r} "
                                      f"names {what}; it must name a max_pool2d layer of the "
                                      f"same model")
        self.switches_from = layer

    def _out_hw(self, input_shape):
        if self.output_size is not None:
            return self.output_size
        src = self.source
        if src.built:
            return tuple(src.input_shape[1:])
        g = src._geometry(src.input_shape or (1, _BIG, _BIG), component=self.label)
        (kh, kw), (sh, sw), ((pt, pb), (pl, pr)) = g.kernel_size, g.stride, g.padding
        return ((input_shape[1] - 1) * sh + kh - pt - pb, (input_shape[2] - 1) * sw + kw - pl - pr)

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.label}: expects inputs of shape (N, C, H_p, W_p), got "
                             f"per-sample shape {tuple(input_shape)}")
        src = self.switches_from
        if isinstance(src, MaxPool2d) and src.built:
            expected = tuple(src.output_shape(src.input_shape))
            if tuple(input_shape) != expected:
                raise ShapeError(f"{self.label}: input per-sample shape {tuple(input_shape)} "
                                 f"differs from the output {expected} of its max_pool2d "
                                 f"{src.key!r}")

    def output_shape(self, input_shape):
        return (input_shape[0],) + tuple(self._out_hw(input_shape))

    def _forward(self, x):
        check_array(x, self.label, ndim=4)
        sw = self.source.switches
        if sw is None or sw.shape != x.shape:
            got = "no forward pass yet" if sw is None else f"switches of shape {sw.shape}"
            raise ShapeError(f"{self.label}: input of shape {x.shape} needs switches of the same "
                             f"shape from max_pool2d {self.source.key!r}; it has {got}")
        self._sw = sw
        return K.max_unpool2d_forward(x, sw, self._out_hw(x.shape[1:]))

    def _backward(self, dy):
        check_array(dy, self.label, ndim=4, dtype=self.dtype, name="dy")
        return K.max_unpool2d_backward(dy, self._sw)

    def _lin(self, x_dot):
        return K.max_unpool2d_forward(x_dot, self._sw, self._out_hw(x_dot.shape[1:]))

    def _gn(self, h):
        return self._backward(h)

    def get_config(self):
        src = self.switches_from
        key = src if isinstance(src, str) else src.key
        size = self.output_size
        if size is None and self.built:
            size = self._out_hw(self.input_shape)
        return {"switches_from": key, "output_size": _jsonable(size), **super().get_config()}


def link_layers(model) -> None:
    """Resolve layer references given by key (``max_unpool2d(switches_from="pool1")``)
    for every layer of ``model`` that has ``resolve_references``."""
    layers = model.layers_in_order()
    by_key = {layer.key: layer for layer in layers if layer.key}
    for layer in layers:
        if hasattr(layer, "resolve_references"):
            layer.resolve_references(by_key)


@hookimpl
def corenet_register_layers():
    return [MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, GlobalAvgPool, GlobalMaxPool,
            MaxUnpool2d]
