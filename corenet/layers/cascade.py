"""The growable cascade layer (``layer:cascade``; spec networks.md §4.2, growing.md §1).

A DAG in one layer: a bias node (value 1), the D inputs, hidden units ``h_1 … h_m`` each
fed by the bias, all inputs and all earlier hidden units, and K output units fed by the
bias, all inputs and all hidden units::

    a = [1, x_1 … x_D]
    s_j = v_j · [a, h_1 … h_{j−1}],   h_j = f_j(β_j s_j)       v_j ∈ ℝ^{1+D+j−1}
    z_k = u_k · [a, h_1 … h_m],       ŷ_k = g(z_k)              u_k ∈ ℝ^{1+D+m}

Parameters (README §2.3): one 1-D weight vector per node, ordered ``[bias, x_1 … x_D,
h_1 … h_{j−1}]``, hidden units first in installation order (roles ``hidden_1 …
hidden_m``), then the output units (``output_1 … output_K``). Hidden units are frozen
(``trainable=False``) unless ``train_hidden``; a frozen unit still passes δ to its
inputs (networks.md §4.2). Parameter masks are respected (masked weights are zero in
``data``). ``add_unit`` grows the layer in place: the output parameters stay the same
objects (their arrays gain one entry, masks and optimizer state can be extended), so a
trainer keeps its optimizer across growth.

Shapes: input (N, D) → output (N, K). ``output_activation``: any differentiable
element-wise activation (``sigmoid_symmetric`` default, ``identity`` for regression,
``sigmoid``, ``tanh``, …) or ``softmax``; it is the layer's fusable output activation
(networks.md §3.6), so ``forward_logits`` returns z.
"""
from __future__ import annotations

import numpy as np

from ..cascor import unit_functions
from ..errors import HyperparameterError, ShapeError
from ..layer import Layer
from ..parameter import Parameter
from ..plugins import hookimpl


def _unit_spec(spec, component):
    if isinstance(spec, str):
        spec = {"activation": spec}
    if not isinstance(spec, dict) or "activation" not in spec:
        raise HyperparameterError(f"{component}: a hidden unit must be an activation name or "
                                  f"a dict with 'activation' (and 'steepness'), got {spec!r}")
    unknown = set(spec) - {"activation", "steepness"}
    if unknown:
        raise HyperparameterError(f"{component}: unknown hidden-unit key(s) {sorted(unknown)}")
    beta = float(spec.get("steepness", 1.0))
    if not np.isfinite(beta) or beta <= 0:
        raise HyperparameterError(f"{component}: steepness must be a number > 0, got "
                                  f"{spec.get('steepness')!r}")
    unit_functions(str(spec["activation"]))          # unknown names fail here
    return {"activation": str(spec["activation"]), "steepness": beta}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Cascade(Layer):
    """Cascade-correlation network as one layer (see the module docstring).

    Parameters
    ----------
    outputs : int
        Number of output units K (>= 1).
    output_activation : str
        ``g``: a differentiable element-wise activation name or ``"softmax"``.
    hidden_units : list
        Installed hidden units, each ``{"activation": name, "steepness": β}`` (or a name,
        β = 1). Restored from a config; the weights are loaded through the parameters.
    weight_range : float
        Initial weights of a fresh build are ``𝒰(−weight_range, weight_range)``
        (growing.md §3).
    train_hidden : bool
        False (default): hidden weights are frozen once installed (growing.md §1).
    """

    name = "cascade"

    def __init__(self, outputs: int = 1, output_activation: str = "sigmoid_symmetric",
                 hidden_units=(), weight_range: float = 1.0, train_hidden: bool = False,
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        if isinstance(outputs, bool) or not isinstance(outputs, (int, np.integer)) \
                or outputs < 1:
            raise HyperparameterError(f"cascade layer: outputs must be an integer >= 1, got "
                                      f"{outputs!r}")
        self.outputs = int(outputs)
        if output_activation != "softmax":
            unit_functions(output_activation)
        self.output_activation = output_activation
        self.hidden_units = [_unit_spec(u, "cascade layer") for u in hidden_units]
        self.weight_range = float(weight_range)
        if not np.isfinite(self.weight_range) or self.weight_range < 0:
            raise HyperparameterError(f"cascade layer: weight_range must be >= 0, got "
                                      f"{weight_range!r}")
        self.train_hidden = bool(train_hidden)
        self._cache = None

    # ------------------------------------------------------------------ structure
    @property
    def n_hidden(self) -> int:
        return len(self.hidden_units)

    @property
    def n_inputs_total(self) -> int:
        """1 + D + m: the length of an output unit's weight vector."""
        return 1 + self.input_shape[0] + self.n_hidden

    def hidden_parameters(self) -> list[Parameter]:
        return self._params[:self.n_hidden]

    def output_parameters(self) -> list[Parameter]:
        return self._params[self.n_hidden:]

    def _new_parameter(self, role, data, trainable):
        p = Parameter(np.asarray(data, dtype=self.dtype), role, decay=True,
                      fan_in=int(np.size(data)), fan_out=1, trainable=trainable)
        p.name = f"{self.key}.{role}" if self.key else role
        return p

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ShapeError(f"{self.label}: expected input of shape (N, D), got per-sample "
                             f"shape {input_shape}; flatten first")
        D, wr = input_shape[0], self.weight_range
        for j in range(self.n_hidden):
            self._params.append(self._new_parameter(
                f"hidden_{j + 1}", rng.uniform(-wr, wr, 1 + D + j), self.train_hidden))
        n = 1 + D + self.n_hidden
        for k in range(self.outputs):
            self._params.append(self._new_parameter(f"output_{k + 1}",
                                                    rng.uniform(-wr, wr, n), True))

    def output_shape(self, input_shape):
        return (self.outputs,)

    def add_unit(self, weights, activation: str = "sigmoid_symmetric",
                 steepness: float = 1.0, output_weights=None) -> list[Parameter]:
        """Install hidden unit ``h_{m+1}`` with input weights ``weights`` (length 1+D+m)
        and connect it to every output with ``output_weights`` (K,) (zeros if None).
        Returns the output parameters (same objects, one entry longer) so that an
        optimizer can extend their state (``optimizer.state_resize``)."""
        if not self.built:
            raise RuntimeError(f"{self.label}: build the layer before adding units")
        spec = _unit_spec({"activation": activation, "steepness": steepness}, self.label)
        n = self.n_inputs_total
        w = np.asarray(weights, dtype=self.dtype)
        if w.shape != (n,):
            raise ShapeError(f"{self.label}: unit {self.n_hidden + 1} needs {n} input weights "
                             f"[bias, {self.input_shape[0]} inputs, {self.n_hidden} hidden], "
                             f"got shape {w.shape}")
        u = np.zeros(self.outputs, self.dtype) if output_weights is None else \
            np.asarray(output_weights, dtype=self.dtype).reshape(-1)
        if u.shape != (self.outputs,):
            raise ShapeError(f"{self.label}: output_weights must have shape ({self.outputs},), "
                             f"got {np.shape(output_weights)}")
        p = self._new_parameter(f"hidden_{self.n_hidden + 1}", w,
                                self.train_hidden and self.trainable)
        self._params.insert(self.n_hidden, p)
        self.hidden_units.append(spec)
        outs = self.output_parameters()
        for k, q in enumerate(outs):
            mask = q._mask
            q.data = np.append(q.data, u[k]).astype(self.dtype)
            q.grad = np.zeros_like(q.data)
            q.fan_in = q.data.size
            if mask is not None:
                q._mask = None
                q.mask = np.append(mask, 1.0)
        self._cache = None
        return outs

    # ------------------------------------------------------------------ matrices
    def output_weights(self) -> np.ndarray:
        """U (K × (1+D+m)), row k = output unit k's weights (a copy)."""
        return np.stack([q.data for q in self.output_parameters()])

    def set_output_weights(self, U) -> None:
        U = np.asarray(U, dtype=self.dtype)
        if U.shape != (self.outputs, self.n_inputs_total):
            raise ShapeError(f"{self.label}: output weights must have shape "
                             f"({self.outputs}, {self.n_inputs_total}), got {U.shape}")
        for k, q in enumerate(self.output_parameters()):
            q.data[...] = U[k]
            q.apply_mask()

    def hidden_activations(self, x) -> np.ndarray:
        """Φ = [1, x, h_1 … h_m] (N × (1+D+m)) for inputs x (N, D)."""
        return self._phi(x)[0]

    def _phi(self, x):
        N, D = x.shape
        A = np.empty((N, 1 + D + self.n_hidden), dtype=self.dtype)
        A[:, 0] = 1.0
        A[:, 1:1 + D] = x
        pre = []
        for j, (spec, p) in enumerate(zip(self.hidden_units, self.hidden_parameters())):
            n = 1 + D + j
            f, _ = unit_functions(spec["activation"])
            s = A[:, :n] @ p.data
            if spec["steepness"] != 1.0:
                s *= spec["steepness"]
            A[:, n] = f(s)
            pre.append(s)
        return A, pre

    # ------------------------------------------------------------------ passes
    def _forward_logits(self, x):
        A, pre = self._phi(x)
        U = self.output_weights()
        Z = A @ U.T
        self._cache = (A, pre, U, Z, None)
        return Z

    def _forward(self, x):
        Z = self._forward_logits(x)
        if self.output_activation == "softmax":
            Y = _softmax(Z)
        else:
            Y = unit_functions(self.output_activation)[0](Z)
        self._cache = self._cache[:4] + (Y,)
        return Y

    def _backward(self, dy):
        if self._cache is None or self._cache[4] is None:
            raise RuntimeError(f"{self.label}: backward called before forward")
        Z, Y = self._cache[3], self._cache[4]
        if self.output_activation == "softmax":
            dz = Y * (dy - (Y * dy).sum(axis=1, keepdims=True))
        else:
            dz = dy * unit_functions(self.output_activation)[1](Z, Y)
        return self._backward_logits(dz)

    def _backward_logits(self, dz):
        if self._cache is None:
            raise RuntimeError(f"{self.label}: backward called before forward")
        A, pre, U, _, _ = self._cache
        D = self.input_shape[0]
        G = dz.T @ A
        for k, q in enumerate(self.output_parameters()):
            if q.trainable:
                q.grad += G[k]
        dA = dz @ U
        hidden = self.hidden_parameters()
        for j in range(self.n_hidden - 1, -1, -1):
            n = 1 + D + j
            spec, p = self.hidden_units[j], hidden[j]
            _, df = unit_functions(spec["activation"])
            ds = dA[:, n] * df(pre[j], A[:, n])
            if spec["steepness"] != 1.0:
                ds *= spec["steepness"]
            if p.trainable:
                p.grad += ds @ A[:, :n]
            dA[:, :n] += np.outer(ds, p.data)
        return np.ascontiguousarray(dA[:, 1:1 + D])

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        return {**super().get_config(), "outputs": self.outputs,
                "output_activation": self.output_activation,
                "hidden_units": [dict(u) for u in self.hidden_units],
                "weight_range": self.weight_range, "train_hidden": self.train_hidden}

    @classmethod
    def examples(cls):
        """Contract-test cases (corenet.testing)."""
        return [{"config": {"outputs": 2, "hidden_units": ["sigmoid_symmetric", "tanh"]},
                 "input_shape": (3,)},
                {"config": {"outputs": 1, "output_activation": "identity",
                            "hidden_units": [{"activation": "gaussian", "steepness": 0.5},
                                             "sin"], "train_hidden": True},
                 "input_shape": (4,)},
                {"config": {"outputs": 3, "output_activation": "softmax",
                            "hidden_units": ["sigmoid"]}, "input_shape": (2,)},
                {"config": {"outputs": 2}, "input_shape": (5,)}]


@hookimpl
def corenet_register_layers():
    return [Cascade]
