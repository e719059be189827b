"""The base class of every layer (spec README §9, minimum layer contract)."""
from __future__ import annotations

import contextlib

import numpy as np

from .errors import DTypeError, ShapeError
from .parameter import Parameter


@contextlib.contextmanager
def skip_input_grad(layer, skip: bool = True):
    """Within the block, ``layer.needs_input_grad`` is False when ``skip`` (see
    :attr:`Layer.needs_input_grad`); restored afterwards, also on error."""
    if not skip:
        yield
        return
    old = layer.__dict__.get("needs_input_grad")
    layer.needs_input_grad = False
    try:
        yield
    finally:
        if old is None:
            del layer.needs_input_grad
        else:
            layer.needs_input_grad = old


class Layer:
    """A differentiable map with parameters, built lazily from its first input shape.

    Contract (spec README §9):

    * ``forward(x) -> y`` caches what ``backward`` needs (train or eval mode);
    * ``backward(dy) -> dx`` returns ``∂L/∂x`` and *adds* ``∂L/∂θ`` into each
      ``Parameter.grad``;
    * ``parameters()`` lists the parameters in declaration order (weight, bias, ...);
    * ``output_shape(input_shape)`` maps a per-sample shape (no batch axis) to the output's;
    * ``training`` / ``mode`` is the train/eval flag of spec README §7;
    * ``get_config()`` returns the constructor arguments; ``from_config`` inverts it.

    Subclasses implement ``_build`` (create parameters with :meth:`add_parameter`),
    ``_forward``, ``_backward`` and ``output_shape``. Layers with several inputs
    (merges) set ``n_inputs`` to the count (or ``None`` for any count >= 2); their
    ``forward`` takes the inputs as separate arguments and ``backward`` returns a tuple.

    Fused output activations: a layer whose last operation is an activation
    (``activation``, ``softmax``, ``dense(activation=...)``) names it in
    ``output_activation`` and implements ``_forward_logits`` / ``_backward_logits``
    that stop before it, so a loss can consume the pre-activation (networks.md §3.6).
    """

    name: str = ""
    n_inputs: int | None = 1

    def __init__(self, *, trainable: bool = True):
        self.trainable = trainable
        self.training = True
        self.built = False
        self.input_shape = None
        self.dtype = None
        self.rng = None
        self.key = ""
        self._params: list[Parameter] = []

    # ------------------------------------------------------------------ building
    def build(self, input_shape, dtype=np.float64, rng=None) -> None:
        """Create the parameters for per-sample ``input_shape`` (no batch axis)."""
        from .config import check_dtype

        self.dtype = check_dtype(dtype, self.name or type(self).__name__)
        if self.n_inputs == 1:
            self.input_shape = tuple(int(s) for s in input_shape)
        else:
            self.input_shape = tuple(tuple(int(s) for s in shape) for shape in input_shape)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._params = []
        self._build(self.input_shape, self.rng)
        for p in self._params:
            p.trainable = p.trainable and self.trainable
        self.built = True

    def _build(self, input_shape, rng) -> None:
        """Create parameters; the default layer has none."""

    def add_parameter(self, role: str, data: np.ndarray, **kwargs) -> Parameter:
        """Create a :class:`Parameter` of the layer's dtype and append it to the layer."""
        p = Parameter(np.asarray(data, dtype=self.dtype), role, **kwargs)
        p.name = f"{self.key}.{role}" if self.key else role
        self._params.append(p)
        return p

    def parameters(self) -> list[Parameter]:
        return list(self._params)

    def output_shape(self, input_shape):
        """Per-sample output shape; the default layer preserves the shape."""
        return tuple(input_shape)

    # ------------------------------------------------------------------ passes
    def _prepare(self, xs) -> None:
        """Validate the inputs of a forward pass, building the layer on first use."""
        if len(xs) != (self.n_inputs or len(xs)) or (self.n_inputs is None and len(xs) < 2):
            want = self.n_inputs if self.n_inputs else "at least 2"
            raise ShapeError(f"{self.label}: expected {want} input(s), got {len(xs)}")
        for x in xs:
            if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
                raise DTypeError(f"{self.label}: input must be a float32/float64 ndarray, "
                                 f"got {getattr(x, 'dtype', type(x).__name__)}")
        if not self.built:
            shapes = xs[0].shape[1:] if self.n_inputs == 1 else [x.shape[1:] for x in xs]
            self.build(shapes, xs[0].dtype)
        if self.n_inputs == 1:
            x = xs[0]
            if x.shape[1:] != self.input_shape:
                raise ShapeError(f"{self.label}: expected input of shape (N, "
                                 f"{', '.join(map(str, self.input_shape))}), got {x.shape}")
        else:
            if len(xs) != len(self.input_shape):
                raise ShapeError(f"{self.label}: built for {len(self.input_shape)} inputs, got "
                                 f"{len(xs)}")
            for i, (x, shape) in enumerate(zip(xs, self.input_shape)):
                if x.shape[1:] != shape:
                    raise ShapeError(f"{self.label}: input {i} must have shape (N, "
                                     f"{', '.join(map(str, shape))}), got {x.shape}")
            if len({x.shape[0] for x in xs}) != 1:
                raise ShapeError(f"{self.label}: inputs have different batch sizes "
                                 f"{[x.shape[0] for x in xs]}")
        for i, x in enumerate(xs):
            if x.dtype != self.dtype:
                raise DTypeError(f"{self.label}: layer dtype is {self.dtype}, input {i} has "
                                 f"{x.dtype}")

    def forward(self, *xs):
        """Validate the inputs (building on first use) and run ``_forward``."""
        self._prepare(xs)
        return self._forward(*xs)

    def backward(self, dy):
        """Return ``∂L/∂x`` (a tuple for multi-input layers), accumulating parameter grads."""
        return self._backward(dy)

    def _forward(self, *xs):
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward")

    # fused output activation (networks.md §3.6); layers ending in an activation override
    output_activation: str | None = None

    # Set to False by a model, for the duration of one backward call, on a layer whose
    # input gradient nobody reads (a first layer during training: Model.backward(...,
    # input_grad=False)). A layer may then skip computing ∂L/∂x and return None; layers
    # that ignore the flag stay correct (their result is dropped).
    needs_input_grad: bool = True

    def forward_logits(self, x):
        """Forward pass stopping before ``output_activation`` (pre-activation output)."""
        self._prepare((x,))
        return self._forward_logits(x)

    def backward_logits(self, ds):
        """Backward pass starting from the gradient w.r.t. the pre-activation output."""
        return self._backward_logits(ds)

    def _forward_logits(self, x):
        return self._forward(x)

    def _backward_logits(self, ds):
        return self._backward(ds)

    # ------------------------------------------------------------------ second order
    # R-operator passes (networks.md §7.2, Pearlmutter 1994) and the Gauss-Newton diagonal
    # pass (§7.5). ``tangents`` and ``rgrads`` are lists aligned with ``parameters()``:
    # the parameter tangents V and the buffers that receive R{∂L/∂θ}. Call them after a
    # ``forward`` on the same input (they use its caches). Layers that do not implement
    # them raise NotImplementedError and curvature falls back to finite differences.

    def rop_forward(self, x_dot, tangents):
        """R{y}: the directional derivative of the output along (x_dot, tangents);
        ``x_dot`` is None when the input does not depend on θ."""
        return self._rop_forward(x_dot, tangents)

    def rop_backward(self, dy, dy_dot, tangents, rgrads):
        """Given ``dy = ∂L/∂y`` and its R-value, return ``(dx, R{dx})`` and add
        ``R{∂L/∂θ}`` into ``rgrads``."""
        return self._rop_backward(dy, dy_dot, tangents, rgrads)

    def rop_forward_logits(self, x_dot, tangents):
        return self._rop_forward_logits(x_dot, tangents)

    def rop_backward_logits(self, ds, ds_dot, tangents, rgrads):
        return self._rop_backward_logits(ds, ds_dot, tangents, rgrads)

    def diag_gn_backward(self, h, diag):
        """Gauss-Newton diagonal pass (networks.md §7.5): ``h`` holds, per sample, the
        diagonal second derivatives of the loss w.r.t. this layer's output; add the
        parameters' diagonal entries (summed over samples) into ``diag`` and return
        those of the input."""
        return self._diag_gn_backward(h, diag)

    def diag_gn_backward_logits(self, h, diag):
        return self._diag_gn_backward_logits(h, diag)

    def _no_second_order(self, what):
        raise NotImplementedError(f"{self.label} does not implement {what}; use "
                                  f"method='finite_difference' (or 'exact'/'fisher' for "
                                  f"diagonals)")

    def _rop_forward(self, x_dot, tangents):
        self._no_second_order("the R-operator")

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        self._no_second_order("the R-operator")

    def _rop_forward_logits(self, x_dot, tangents):
        return self._rop_forward(x_dot, tangents)

    def _rop_backward_logits(self, ds, ds_dot, tangents, rgrads):
        return self._rop_backward(ds, ds_dot, tangents, rgrads)

    def _diag_gn_backward(self, h, diag):
        self._no_second_order("the Gauss-Newton diagonal pass")

    def _diag_gn_backward_logits(self, h, diag):
        return self._diag_gn_backward(h, diag)

    # ------------------------------------------------------------------ modes
    @property
    def mode(self) -> str:
        return "train" if self.training else "eval"

    def train(self, mode: bool = True) -> "Layer":
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        """Constructor arguments (JSON-serialisable) that rebuild an equivalent layer."""
        return {"trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    @property
    def label(self) -> str:
        """``name`` (registry name) plus the key in its model, for messages."""
        base = self.name or type(self).__name__
        return f"{base} layer {self.key!r}" if self.key else f"{base} layer"

    def buffers(self) -> dict:
        """Non-trainable state saved with the model (e.g. batch-norm running statistics):
        name -> ndarray. Layers with such state override this and :meth:`load_buffers`."""
        return {}

    def load_buffers(self, buffers: dict) -> None:
        """Restore the arrays returned by :meth:`buffers` (same names, shapes and dtypes)."""
        own = self.buffers()
        for key, value in buffers.items():
            if key not in own:
                raise KeyError(f"{self.label}: unknown buffer {key!r}; it has {sorted(own)}")
            if own[key].shape != value.shape:
                raise ShapeError(f"{self.label}: buffer {key!r} must have shape "
                                 f"{own[key].shape}, got {value.shape}")
            own[key][...] = value

    def n_parameters(self) -> int:
        return sum(p.size for p in self._params)

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({cfg})"
