"""Merge layers for graph models: residual ``add`` and ``concat`` (convolution.md §8)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..layer import Layer
from ..plugins import hookimpl


class Add(Layer):
    """``y = Σ_i x_i`` of equally shaped inputs (``layer:add``, residual shortcut);
    backward passes ``dy`` to every input. Shapes: k × ``(N, ...)`` → ``(N, ...)``."""

    name = "add"
    n_inputs = None

    def _build(self, input_shape, rng):
        first = input_shape[0]
        for i, shape in enumerate(input_shape[1:], 1):
            if shape != first:
                raise ShapeError(f"{self.label}: all inputs must have the same shape; input 0 "
                                 f"has {first}, input {i} has {shape}")

    def output_shape(self, input_shape):
        return tuple(input_shape[0])

    def _forward(self, *xs):
        out = xs[0].copy()
        for x in xs[1:]:
            out += x
        self._k = len(xs)
        return out

    def _backward(self, dy):
        return tuple(dy for _ in range(self._k))

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {}, "input_shape": [(5,), (5,)]},
                {"config": {}, "input_shape": [(2, 3), (2, 3), (2, 3)]}]

    def _rop_forward(self, x_dots, tangents):
        known = [d for d in x_dots if d is not None]
        if not known:
            return None
        out = known[0].copy()
        for d in known[1:]:
            out += d
        return out

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        return self._backward(dy), self._backward(dy_dot)

    def _diag_gn_backward(self, h, diag):
        return self._backward(h)


class Concat(Layer):
    """Concatenate inputs along ``axis`` of the per-sample shape, counted with the batch
    axis (default 1 = channels for ``(N, C, H, W)``, features for ``(N, D)``)
    (``layer:concat``, DenseNet / U-Net skips); backward splits ``dy``."""

    name = "concat"
    n_inputs = None

    def __init__(self, axis: int = 1, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        if axis == 0:
            raise ShapeError("concat: axis 0 is the batch axis")
        self.axis = int(axis)

    def _norm_axis(self, ndim_with_batch: int) -> int:
        axis = self.axis if self.axis > 0 else ndim_with_batch + self.axis
        if not 1 <= axis < ndim_with_batch:
            raise ShapeError(f"{self.label}: axis {self.axis} out of range for inputs of rank "
                             f"{ndim_with_batch}")
        return axis

    def _build(self, input_shape, rng):
        ax = self._norm_axis(len(input_shape[0]) + 1) - 1
        first = input_shape[0]
        for i, shape in enumerate(input_shape[1:], 1):
            if len(shape) != len(first) or any(a != b for j, (a, b) in
                                                enumerate(zip(shape, first)) if j != ax):
                raise ShapeError(f"{self.label}: inputs must agree except on axis {self.axis}; "
                                 f"input 0 has {first}, input {i} has {shape}")
        self._sizes = [shape[ax] for shape in input_shape]

    def output_shape(self, input_shape):
        ax = self._norm_axis(len(input_shape[0]) + 1) - 1
        out = list(input_shape[0])
        out[ax] = sum(shape[ax] for shape in input_shape)
        return tuple(out)

    def _forward(self, *xs):
        self._batch = xs[0].shape[0]
        return np.concatenate(xs, axis=self._norm_axis(xs[0].ndim))

    def _backward(self, dy):
        axis = self._norm_axis(dy.ndim)
        cuts = np.cumsum(self._sizes)[:-1]
        return tuple(np.ascontiguousarray(part) for part in np.split(dy, cuts, axis=axis))

    def _rop_forward(self, x_dots, tangents):
        if all(d is None for d in x_dots):
            return None
        parts = [np.zeros((self._batch,) + tuple(shape), dtype=self.dtype) if d is None else d
                 for d, shape in zip(x_dots, self.input_shape)]
        return np.concatenate(parts, axis=self._norm_axis(parts[0].ndim))

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        return self._backward(dy), self._backward(dy_dot)

    def _diag_gn_backward(self, h, diag):
        return self._backward(h)

    def get_config(self):
        return {"axis": self.axis, **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {}, "input_shape": [(3,), (4,)]},
                {"config": {"axis": 1}, "input_shape": [(2, 3, 3), (1, 3, 3)]},
                {"config": {"axis": -1}, "input_shape": [(2, 2), (2, 3), (2, 1)]}]


@hookimpl
def corenet_register_layers():
    return [Add, Concat]
