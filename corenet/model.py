"""Models: the shared interface and the layer stack (spec networks.md §4.1, README §2.3, §8)."""
from __future__ import annotations

import numpy as np

from .config import check_dtype, get_default_dtype
from .errors import DTypeError, NotFiniteError, ShapeError
from .layer import Layer, skip_input_grad
from .parameter import Parameter


def _as_layer(spec) -> Layer:
    from . import registry

    if isinstance(spec, Layer):
        return spec
    layer = registry.create("layer", spec)
    if not isinstance(layer, Layer):
        raise TypeError(f"expected a corenet.Layer or a layer spec, got {spec!r}")
    return layer


class Model:
    """What every model offers: build, forward/backward, parameters, the parameter vector,
    modes, predict/evaluate/fit, summary, config.

    ``dtype`` (float64 default, or the global default) is shared by all parameters and
    activations (README §3). ``random_state`` seeds one generator; layers get child
    generators with ``rng.spawn`` in model order (README §4).
    """

    kind = ""

    def __init__(self, *, dtype=None, random_state=None):
        self.dtype = check_dtype(dtype if dtype is not None else get_default_dtype(),
                                 type(self).__name__)
        self.random_state = random_state
        self.rng = np.random.default_rng(random_state)
        self.training = True
        self.built = False
        self.input_shape = None
        self.loss = None
        self.optimizer = None
        self.metrics: list = []
        self.regularizers: list = []
        self.history = None

    # ----------------------------------------------------------------- subclasses provide
    def layers_in_order(self) -> list[Layer]:
        raise NotImplementedError

    def _attach_layers(self) -> None:
        """Let layers that refer to other layers of the model (``tied_dense``) resolve
        those references before the model is built."""
        by_key = None
        for layer in self.layers_in_order():
            attach = getattr(layer, "attach", None)
            if callable(attach):
                attach(self)
            resolve = getattr(layer, "resolve_references", None)
            if callable(resolve):
                if by_key is None:
                    by_key = {other.key: other for other in self.layers_in_order()}
                resolve(by_key)

    def build(self, input_shape) -> "Model":
        raise NotImplementedError

    def forward(self, x, *, logits: bool = False):
        raise NotImplementedError

    def backward(self, dy, *, logits: bool = False, input_grad: bool = True):
        raise NotImplementedError

    @property
    def output_activation(self) -> str | None:
        raise NotImplementedError

    # ----------------------------------------------------------------- parameters
    def parameters(self) -> list[Parameter]:
        """Every parameter in model order (layer by layer; weight, bias, others)."""
        return [p for layer in self.layers_in_order() for p in layer.parameters()]

    def trainable_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters() if p.trainable]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0.0)

    def n_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.trainable or not trainable_only)

    def get_flat_parameters(self) -> np.ndarray:
        """θ: all trainable parameters raveled in C order and concatenated (README §2.3)."""
        ps = self.trainable_parameters()
        return np.concatenate([p.data.ravel() for p in ps]) if ps else np.zeros(0, self.dtype)

    def set_flat_parameters(self, theta) -> None:
        theta = np.asarray(theta)
        ps = self.trainable_parameters()
        total = sum(p.size for p in ps)
        if theta.shape != (total,):
            raise ShapeError(f"{type(self).__name__}.set_flat_parameters: expected shape "
                             f"({total},), got {theta.shape}")
        offset = 0
        for p in ps:
            p.data[...] = theta[offset:offset + p.size].reshape(p.shape)
            offset += p.size

    def get_flat_gradients(self) -> np.ndarray:
        ps = self.trainable_parameters()
        return np.concatenate([p.grad.ravel() for p in ps]) if ps else np.zeros(0, self.dtype)

    def get_flat_mask(self) -> np.ndarray:
        ps = self.trainable_parameters()
        return np.concatenate([p.mask.ravel() for p in ps]) if ps else np.zeros(0, self.dtype)

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Model":
        self.training = bool(mode)
        for layer in self.layers_in_order():
            layer.train(mode)
        return self

    def eval(self) -> "Model":
        return self.train(False)

    @property
    def mode(self) -> str:
        return "train" if self.training else "eval"

    # ----------------------------------------------------------------- input checks
    def check_input(self, X, component: str = "model input", *, finite: bool = True) -> np.ndarray:
        """Validate a batch of inputs and cast float arrays to the model dtype."""
        name = f"{type(self).__name__}.{component}"
        if not isinstance(X, np.ndarray):
            raise DTypeError(f"{name}: expected a numpy.ndarray, got {type(X).__name__}")
        if X.dtype.kind != "f":
            raise DTypeError(f"{name}: expected a floating array (float32/float64), got dtype "
                             f"{X.dtype}; convert with X.astype(numpy.{self.dtype})")
        if not X.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous array, got strides {X.strides}; "
                             f"use numpy.ascontiguousarray(X)")
        if X.ndim < 2:
            raise ShapeError(f"{name}: expected a batch (N, features...), got shape {X.shape}; "
                             f"pass a single sample as X[None]")
        if self.built and X.shape[1:] != self.input_shape:
            raise ShapeError(f"{name}: expected input of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got {X.shape}")
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        if finite and not np.isfinite(X).all():
            bad = int(np.count_nonzero(~np.isfinite(X)))
            raise NotFiniteError(f"{name}: contains {bad} NaN or inf value(s)")
        return X

    # ----------------------------------------------------------------- training API
    def compile(self, loss="mse", optimizer="sgd", metrics=(), regularizers=(),
                scheduler=None) -> "Model":
        """Choose the loss, optimizer, metrics, regularizers and schedule used by ``fit``.

        Each may be a registered name, a ``{"name": ..., **kwargs}`` dict, a
        ``(name, kwargs)`` pair or an instance.
        """
        from . import registry

        self.loss = registry.create("loss", loss)
        self.optimizer = registry.create("optimizer", optimizer)
        self.metrics = [registry.create("metric", m) for m in metrics]
        self.regularizers = [registry.create("regularizer", r) for r in regularizers]
        self.scheduler = registry.create("scheduler", scheduler) if scheduler else None
        return self

    def fit(self, X, y, **kwargs):
        """Train with the compiled settings; see :meth:`corenet.Trainer.fit` for arguments."""
        from .trainer import Trainer

        if self.loss is None:
            self.compile()
        trainer = Trainer(self, loss=self.loss, optimizer=self.optimizer, metrics=self.metrics,
                          regularizers=self.regularizers,
                          scheduler=getattr(self, "scheduler", None))
        self.history = trainer.fit(X, y, **kwargs)
        return self.history

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Outputs for ``X`` in eval mode, computed in batches."""
        X = self.check_input(X, "predict input")
        if not self.built:
            self.build(X.shape[1:])
        was_training = self.training
        self.eval()
        try:
            outs = [self.forward(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)]
        finally:
            self.train(was_training)
        if not outs:
            return np.zeros((0,) + tuple(self.output_shape()), dtype=self.dtype)
        return np.concatenate(outs, axis=0)

    def predict_classes(self, X, batch_size: int = 1024) -> np.ndarray:
        """Predicted labels by the decision rules of networks.md §2.4."""
        out = self.predict(X, batch_size)
        if out.ndim == 2 and out.shape[1] > 1:
            return np.argmax(out, axis=1)
        out = out.reshape(-1)
        if self.output_activation in ("sigmoid",):
            return (out >= 0.5).astype(np.int64)
        return np.where(out >= 0, 1, -1).astype(np.int64)

    def evaluate(self, X, y, batch_size: int = 1024, loss=None, metrics=None) -> dict:
        """``{"loss": mean loss, <metric name>: value, ...}`` in eval mode."""
        from .trainer import evaluate_model

        return evaluate_model(self, X, y, loss=loss or self.loss,
                              metrics=self.metrics if metrics is None else metrics,
                              batch_size=batch_size)

    def save(self, path) -> None:
        """Write the model (architecture, parameters, masks, buffers, versions) to ``path``
        atomically, as ``.npz`` + JSON (see :mod:`corenet.io`); load with ``corenet.load``."""
        from .io import save_model

        save_model(self, path)

    # ----------------------------------------------------------------- description
    def output_shape(self):
        raise NotImplementedError

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts."""
        if not self.built:
            return f"{type(self).__name__} (not built: call build(input_shape) or fit first)"
        rows = [("key", "layer", "output shape", "params")]
        for key, layer, shape in self.describe():
            rows.append((key, layer.name or type(layer).__name__,
                         "(N, " + ", ".join(map(str, shape)) + ")", f"{layer.n_parameters():,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = "-" * (sum(widths) + 6)
        out = [f"{type(self).__name__} (dtype {self.dtype}, input (N, "
               f"{', '.join(map(str, self.input_shape))}))", line]
        for i, r in enumerate(rows):
            out.append("  ".join(c.ljust(w) if j < 3 else c.rjust(w)
                                 for j, (c, w) in enumerate(zip(r, widths))))
            if i == 0:
                out.append(line)
        total = self.n_parameters()
        trainable = self.n_parameters(trainable_only=True)
        nonzero = sum(p.count_nonzero_weights() for p in self.parameters())
        out += [line, f"total parameters: {total:,} (trainable {trainable:,}, unmasked "
                      f"{nonzero:,})"]
        return "\n".join(out)

    def describe(self):
        """``(key, layer, output shape)`` for each layer, in model order."""
        raise NotImplementedError


class Sequential(Model):
    """A stack of layers, each consuming the previous one's output (networks.md §4.1).

    ``layers`` are :class:`Layer` instances or layer specs (a registered name, a
    ``{"name": ..., **kwargs}`` dict, or a ``(name, kwargs)`` pair). Layer ``i`` has key
    ``str(i)``; its parameters are named ``"<i>.<role>"``.
    """

    kind = "sequential"

    def __init__(self, layers=(), *, dtype=None, random_state=None, input_shape=None):
        super().__init__(dtype=dtype, random_state=random_state)
        self.layers: list[Layer] = []
        for spec in layers:
            self.add(spec)
        if input_shape is not None:
            self.build(input_shape)

    def add(self, layer) -> "Sequential":
        if self.built:
            raise RuntimeError("Sequential.add: the model is already built")
        layer = _as_layer(layer)
        layer.key = str(len(self.layers))
        self.layers.append(layer)
        return self

    def layers_in_order(self) -> list[Layer]:
        return self.layers

    def build(self, input_shape) -> "Sequential":
        if not self.layers:
            raise ValueError("Sequential.build: the model has no layers")
        shape = tuple(int(s) for s in input_shape)
        self.input_shape = shape
        self._attach_layers()
        rngs = self.rng.spawn(len(self.layers))
        for layer, rng in zip(self.layers, rngs):
            if not layer.built:
                layer.build(shape, self.dtype, rng)
            elif layer.dtype != self.dtype:
                raise DTypeError(f"{layer.label}: built with dtype {layer.dtype}, model dtype "
                                 f"is {self.dtype}")
            for p in layer.parameters():
                p.name = f"{layer.key}.{p.role}"
            shape = tuple(layer.output_shape(shape))
        self._output_shape = shape
        self.built = True
        return self

    def output_shape(self):
        return self._output_shape

    def describe(self):
        shape = self.input_shape
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
            yield layer.key, layer, shape

    @property
    def output_activation(self) -> str | None:
        return self.layers[-1].output_activation if self.layers else None

    def forward(self, x, *, logits: bool = False):
        """Run every layer; with ``logits`` the last layer stops before its output
        activation (for fused losses)."""
        if not self.built:
            self.build(self.check_input(x).shape[1:])
        if x.dtype != self.dtype:
            raise DTypeError(f"Sequential.forward: model dtype is {self.dtype}, input has "
                             f"{x.dtype}")
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer.forward_logits(x) if (logits and i == last) else layer.forward(x)
        return x

    def backward(self, dy, *, logits: bool = False, input_grad: bool = True):
        """Backpropagate ``dy = ∂L/∂output`` (or ``∂L/∂pre-activation`` with ``logits``)
        through every layer, filling parameter gradients; returns ``∂L/∂input``, or None
        with ``input_grad=False`` (the first layer may then skip that product: the
        trainer's setting)."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            with skip_input_grad(layer, not input_grad and i == 0):
                dy = (layer.backward_logits(dy) if (logits and i == last)
                      else layer.backward(dy))
        return dy if input_grad else None

    def rop_forward(self, tangents, *, logits: bool = False):
        """R-forward through every layer (after ``forward`` on the same input); ``tangents``
        is one list per layer, aligned with ``layer.parameters()``."""
        x_dot, last = None, len(self.layers) - 1
        for i, (layer, t) in enumerate(zip(self.layers, tangents)):
            x_dot = (layer.rop_forward_logits(x_dot, t) if (logits and i == last)
                     else layer.rop_forward(x_dot, t))
        return x_dot

    def rop_backward(self, dy, dy_dot, tangents, rgrads, *, logits: bool = False):
        """R-backward; adds ``R{∂L/∂θ}`` into ``rgrads`` (one list per layer)."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            if logits and i == last:
                dy, dy_dot = layer.rop_backward_logits(dy, dy_dot, tangents[i], rgrads[i])
            else:
                dy, dy_dot = layer.rop_backward(dy, dy_dot, tangents[i], rgrads[i])
        return dy, dy_dot

    def diag_gn_backward(self, h, diag, *, logits: bool = False):
        """Gauss-Newton diagonal pass; ``diag`` is one list per layer."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            h = (layer.diag_gn_backward_logits(h, diag[i]) if (logits and i == last)
                 else layer.diag_gn_backward(h, diag[i]))
        return h

    def get_config(self) -> dict:
        return {"kind": self.kind, "dtype": str(self.dtype), "random_state": self.random_state,
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "layers": [{"name": layer.name, "config": layer.get_config()}
                           for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        from . import registry

        layers = [registry.get("layer", spec["name"]).from_config(spec["config"])
                  for spec in config["layers"]]
        return cls(layers, dtype=config.get("dtype"), random_state=config.get("random_state"),
                   input_shape=config.get("input_shape"))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"
