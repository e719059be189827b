"""Core layers: dense, activation, softmax, log_softmax, flatten, reshape (networks.md §1-2)."""
from __future__ import annotations

import numpy as np

from .. import registry
from ..kernels import matmul
from ..errors import ShapeError, HyperparameterError
from ..initializer import compute_fans
from ..layer import Layer
from ..plugins import hookimpl


def _activation_spec(spec):
    """Normalise an activation given as a name, a dict with 'name', or an instance."""
    if spec is None or isinstance(spec, (str, dict)):
        return spec
    return {"name": spec.name, **spec.get_config()}


class ActivationLayer(Layer):
    """``a = f(x)`` element-wise (``layer:activation``, networks.md §2).

    ``activation`` is a registered activation name (``"tanh"``), a dict
    ``{"name": "leaky_relu", "alpha": 0.1}`` or an :class:`~corenet.Activation` instance.
    Backward: ``dx = dy ⊙ f′(x)`` (from the cached input and output).
    ``prelu`` owns a learnable ``alpha`` (one per channel, axis 1 of the input, when
    ``per_channel``; ``∂L/∂α = Σ dy·x·1[x ≤ 0]``). Shapes: any ``(N, ...)`` to the same.
    """

    name = "activation"

    def __init__(self, activation="relu", *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.activation = _activation_spec(activation)
        self.fn = registry.create("activation", activation)
        self.output_activation = self.fn.name
        self._alpha = None

    def _build(self, input_shape, rng):
        if self.fn.name == "prelu":
            channels = input_shape[0] if (self.fn.per_channel and input_shape) else 1
            self._alpha = self.add_parameter("alpha", np.full(channels, self.fn.init),
                                             decay=False)

    def _forward(self, x):
        self._x = x
        if self._alpha is not None:
            self._y = self.fn.forward_with(x, self._alpha.data)
        else:
            self._y = self.fn.forward(x)
        return self._y

    def _backward(self, dy):
        if self._alpha is not None:
            dx, dalpha = self.fn.backward_with(self._x, dy, self._alpha.data)
            if self._alpha.trainable:
                self._alpha.grad += dalpha
            return dx
        return self.fn.backward(self._x, self._y, dy)

    def _forward_logits(self, x):
        return x

    def _backward_logits(self, ds):
        return ds

    def _check_second_order(self):
        if self._alpha is not None or not self.fn.differentiable:
            self._no_second_order("second-order passes")

    def _rop_forward(self, x_dot, tangents):
        self._check_second_order()
        self._x_dot = x_dot
        return None if x_dot is None else self.fn.df(self._x) * x_dot

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        self._check_second_order()
        d1 = self.fn.df(self._x)
        dx_dot = dy_dot * d1
        if self._x_dot is not None:
            dx_dot += dy * self.fn.d2f(self._x) * self._x_dot
        return dy * d1, dx_dot

    def _rop_forward_logits(self, x_dot, tangents):
        return x_dot

    def _rop_backward_logits(self, ds, ds_dot, tangents, rgrads):
        return ds, ds_dot

    def _diag_gn_backward(self, h, diag):
        self._check_second_order()
        return h * self.fn.df(self._x) ** 2

    def _diag_gn_backward_logits(self, h, diag):
        return h

    def get_config(self):
        return {"activation": self.activation, **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {"activation": name}, "input_shape": shape} for name, shape in (
            ("relu", (5,)), ("tanh", (5,)), ("sigmoid", (2, 3)), ("elu", (5,)),
            ({"name": "leaky_relu", "alpha": 0.1}, (5,)), ("softplus", (4,)),
            ("prelu", (3, 4)), ({"name": "prelu", "per_channel": False, "init": 0.1}, (5,)))]


class FusedActivation:
    """Mixin for layers ``s = linear(x)`` with an optional fused output activation
    (``dense(activation=...)``, ``sigma_pi``, ``tied_dense``): the layer provides
    ``_linear`` and ``_backward_logits``; the mixin adds the activation on top, identically
    to a separate ``activation`` layer (networks.md §1.1)."""

    def _init_activation(self, activation):
        self.activation = _activation_spec(activation)
        self.act = ActivationLayer(activation) if activation is not None else None
        self.output_activation = self.act.output_activation if self.act else None

    def _build_activation(self, width):
        if self.act is not None:
            self.act.key = self.key
            self.act.build((width,), self.dtype, self.rng)
            self._params.extend(self.act.parameters())

    def _forward(self, x):
        s = self._linear(x)
        return self.act._forward(s) if self.act is not None else s

    def _forward_logits(self, x):
        return self._linear(x)

    def _backward(self, dy):
        if self.act is not None:
            dy = self.act._backward(dy)
        return self._backward_logits(dy)


class Dense(FusedActivation, Layer):
    """Fully connected layer ``S = X Wᵀ + b`` (``layer:dense``, networks.md §1).

    Shapes: X ``(N, in_features)`` → ``(N, out_features)``; W ``(out_features,
    in_features)``, b ``(out_features,)``. Backward (§1.2): ``dX = dS W``,
    ``dW += dSᵀ X``, ``db += Σ_n dS``. ``in_features`` is inferred from the first input
    when omitted. ``activation`` fuses an activation layer after the product (identical to
    ``dense`` followed by ``activation``). ``mask`` is a fixed 0/1 connectivity mask of W's
    shape (pruning.md §1). Weights default to ``glorot_uniform``, biases to ``zeros`` (D-50).
    """

    name = "dense"

    def __init__(self, out_features: int, in_features: int | None = None, *, activation=None,
                 bias: bool = True, weight_init="glorot_uniform", bias_init="zeros",
                 mask=None, trainable: bool = True):
        super().__init__(trainable=trainable)
        if not isinstance(out_features, (int, np.integer)) or out_features < 1:
            raise HyperparameterError(f"dense: out_features must be a positive integer, "
                                      f"got {out_features!r}")
        if in_features is not None and (not isinstance(in_features, (int, np.integer))
                                        or in_features < 1):
            raise HyperparameterError(f"dense: in_features must be a positive integer, "
                                      f"got {in_features!r}")
        self.out_features = int(out_features)
        self.in_features = None if in_features is None else int(in_features)
        self.bias = bool(bias)
        self.weight_init = weight_init
        self.bias_init = bias_init
        self.mask = None if mask is None else np.asarray(mask)
        self._init_activation(activation)
        self.W = self.b = None

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ShapeError(f"{self.label}: expects inputs of shape (N, D_in); got per-sample "
                             f"shape {input_shape} (add a flatten layer first)")
        d_in = input_shape[0]
        if self.in_features is not None and self.in_features != d_in:
            raise ShapeError(f"{self.label}: in_features={self.in_features} but the input has "
                             f"{d_in} features")
        self.in_features = d_in
        shape = (self.out_features, d_in)
        fan_in, fan_out = compute_fans(shape)
        init_w = registry.create("initializer", self.weight_init)
        self.W = self.add_parameter("weight", init_w(shape, fan_in, fan_out, self.dtype, rng),
                                    fan_in=fan_in, fan_out=fan_out)
        if self.bias:
            init_b = registry.create("initializer", self.bias_init)
            self.b = self.add_parameter("bias", init_b((self.out_features,), None, None,
                                                       self.dtype, rng))
        if self.mask is not None:
            self.W.mask = self.mask
        self._build_activation(self.out_features)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def _linear(self, x):
        self._x = x
        s = matmul(x, self.W.data.T)
        if self.b is not None:
            s += self.b.data
        return s

    def _backward_logits(self, ds):
        W = self.W
        if W.trainable:
            W.grad += matmul(ds.T, self._x)
        if self.b is not None and self.b.trainable:
            self.b.grad += ds.sum(axis=0)
        return matmul(ds, W.data) if self.needs_input_grad else None

    def _rop_forward_logits(self, x_dot, tangents):
        s_dot = self._x @ tangents[0].T
        if x_dot is not None:
            s_dot += x_dot @ self.W.data.T
        if self.b is not None:
            s_dot += tangents[1]
        self._x_dot = x_dot
        return s_dot

    def _rop_forward(self, x_dot, tangents):
        s_dot = self._rop_forward_logits(x_dot, tangents)
        if self.act is None:
            return s_dot
        return self.act._rop_forward(s_dot, tangents[self._n_linear:])

    def _rop_backward_logits(self, ds, ds_dot, tangents, rgrads):
        rgrads[0] += ds_dot.T @ self._x
        if self._x_dot is not None:
            rgrads[0] += ds.T @ self._x_dot
        if self.b is not None:
            rgrads[1] += ds_dot.sum(axis=0)
        return ds @ self.W.data, ds_dot @ self.W.data + ds @ tangents[0]

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        if self.act is not None:
            n = self._n_linear
            dy, dy_dot = self.act._rop_backward(dy, dy_dot, tangents[n:], rgrads[n:])
        return self._rop_backward_logits(dy, dy_dot, tangents, rgrads)

    def _diag_gn_backward_logits(self, h, diag):
        diag[0] += h.T @ (self._x * self._x)
        if self.b is not None:
            diag[1] += h.sum(axis=0)
        return h @ (self.W.data * self.W.data)

    def _diag_gn_backward(self, h, diag):
        if self.act is not None:
            h = self.act._diag_gn_backward(h, diag[self._n_linear:])
        return self._diag_gn_backward_logits(h, diag)

    @property
    def _n_linear(self) -> int:
        return 2 if self.b is not None else 1

    def get_config(self):
        cfg = {"out_features": self.out_features, "in_features": self.in_features,
               "activation": self.activation, "bias": self.bias,
               "weight_init": self.weight_init, "bias_init": self.bias_init,
               "mask": None if self.mask is None else self.mask.tolist()}
        return {**cfg, **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {"out_features": 4}, "input_shape": (5,)},
                {"config": {"out_features": 3, "activation": "tanh"}, "input_shape": (5,)},
                {"config": {"out_features": 3, "bias": False}, "input_shape": (4,)},
                {"config": {"out_features": 2, "in_features": 3, "activation": "relu",
                            "bias_init": {"name": "constant", "value": 0.1}},
                 "input_shape": (3,)},
                {"config": {"out_features": 3,
                            "mask": [[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]]},
                 "input_shape": (4,)}]


class Softmax(Layer):
    """``p = softmax(z)`` along ``axis`` (``layer:softmax``, networks.md §2.3).

    ``p_k = exp(z_k − m)/Σ_j exp(z_j − m)`` with ``m = max z``; backward
    ``dz = p ⊙ (dp − ⟨dp, p⟩)``. ``groups=G`` applies it per block of G along the last axis.
    """

    name = "softmax"

    def __init__(self, axis: int = -1, groups: int | None = None, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.axis = int(axis)
        self.groups = None if groups is None else int(groups)
        self.output_activation = "softmax" if (self.axis in (-1, 1) and groups is None) else None

    def _build(self, input_shape, rng):
        if self.groups is not None and input_shape[-1] % self.groups:
            raise ShapeError(f"{self.label}: last axis {input_shape[-1]} is not a multiple of "
                             f"groups={self.groups}")

    def _view(self, z):
        if self.groups is None:
            return z, self.axis
        return z.reshape(z.shape[:-1] + (-1, self.groups)), -1

    def _forward(self, z):
        v, axis = self._view(z)
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        self._p = e.reshape(z.shape)
        return self._p

    def _backward(self, dp):
        p, axis = self._view(self._p)
        d, _ = self._view(dp)
        dz = p * (d - (d * p).sum(axis=axis, keepdims=True))
        return dz.reshape(dp.shape)

    def _forward_logits(self, z):
        return z

    def _backward_logits(self, ds):
        return ds

    def _rop_forward(self, z_dot, tangents):
        """``ṗ = p ⊙ (ż − ⟨p, ż⟩)`` (networks.md §7.2)."""
        self._z_dot = z_dot
        if z_dot is None:
            self._p_dot = None
            return None
        p, axis = self._view(self._p)
        zd, _ = self._view(z_dot)
        self._p_dot = (p * (zd - (p * zd).sum(axis=axis, keepdims=True))).reshape(z_dot.shape)
        return self._p_dot

    def _rop_backward(self, dp, dp_dot, tangents, rgrads):
        p, axis = self._view(self._p)
        d, _ = self._view(dp)
        dd, _ = self._view(dp_dot)
        inner = (d * p).sum(axis=axis, keepdims=True)
        out = p * (dd - (dd * p).sum(axis=axis, keepdims=True))
        if self._p_dot is not None:
            pd, _ = self._view(self._p_dot)
            out += pd * (d - inner) - p * (d * pd).sum(axis=axis, keepdims=True)
        return (p * (d - inner)).reshape(dp.shape), out.reshape(dp.shape)

    def _rop_forward_logits(self, z_dot, tangents):
        return z_dot

    def _rop_backward_logits(self, ds, ds_dot, tangents, rgrads):
        return ds, ds_dot

    def _diag_gn_backward_logits(self, h, diag):
        return h

    def get_config(self):
        return {"axis": self.axis, "groups": self.groups, **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {}, "input_shape": (5,)},
                {"config": {"groups": 3}, "input_shape": (6,)},
                {"config": {"axis": 1}, "input_shape": (3, 2, 2)}]


class LogSoftmax(Layer):
    """``q = z − m − log Σ exp(z − m)`` (``layer:log_softmax``, networks.md §2.3);
    backward ``dz = dq − p Σ_k dq_k`` with ``p = exp(q)``."""

    name = "log_softmax"

    def __init__(self, axis: int = -1, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.axis = int(axis)

    def _forward(self, z):
        shifted = z - z.max(axis=self.axis, keepdims=True)
        q = shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))
        self._q = q
        return q

    def _backward(self, dq):
        return dq - np.exp(self._q) * dq.sum(axis=self.axis, keepdims=True)

    def _rop_forward(self, z_dot, tangents):
        """``q̇ = ż − ⟨p, ż⟩``."""
        self._z_dot = z_dot
        if z_dot is None:
            return None
        p = np.exp(self._q)
        return z_dot - (p * z_dot).sum(axis=self.axis, keepdims=True)

    def _rop_backward(self, dq, dq_dot, tangents, rgrads):
        p, ax = np.exp(self._q), self.axis
        total = dq.sum(axis=ax, keepdims=True)
        out = dq_dot - p * dq_dot.sum(axis=ax, keepdims=True)
        if self._z_dot is not None:
            p_dot = p * (self._z_dot - (p * self._z_dot).sum(axis=ax, keepdims=True))
            out -= p_dot * total
        return dq - p * total, out

    def get_config(self):
        return {"axis": self.axis, **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {}, "input_shape": (5,)},
                {"config": {"axis": 1}, "input_shape": (3, 2, 2)}]


class _Relayout(Layer):
    """A per-sample reshape: ``_forward`` reshapes, backward (and every second-order pass,
    the map being linear) reshapes back to the input shape."""

    def _backward(self, dy):
        return dy.reshape((dy.shape[0],) + self.input_shape)

    def _rop_forward(self, x_dot, tangents):
        return None if x_dot is None else self._forward(x_dot)

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        return self._backward(dy), self._backward(dy_dot)

    def _diag_gn_backward(self, h, diag):
        return self._backward(h)


class Flatten(_Relayout):
    """``(N, C, H, W) → (N, C·H·W)`` in C order, feature index ``c·H·W + i·W + j``
    (``layer:flatten``, D-47)."""

    name = "flatten"

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def _forward(self, x):
        return x.reshape(x.shape[0], -1)

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {}, "input_shape": (2, 3, 4)}, {"config": {}, "input_shape": (5,)}]


class Reshape(_Relayout):
    """Reshape each sample to ``shape`` (one entry may be -1) (``layer:reshape``)."""

    name = "reshape"

    def __init__(self, shape, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        self.shape = tuple(int(s) for s in shape)
        if sum(s == -1 for s in self.shape) > 1 or any(s == 0 or s < -1 for s in self.shape):
            raise HyperparameterError(f"reshape: invalid target shape {self.shape}")

    def output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([s for s in self.shape if s != -1]))
        if -1 in self.shape:
            if size % known:
                raise ShapeError(f"reshape: cannot reshape per-sample shape {tuple(input_shape)} "
                                 f"to {self.shape}")
            return tuple(size // known if s == -1 else s for s in self.shape)
        if known != size:
            raise ShapeError(f"reshape: cannot reshape per-sample shape {tuple(input_shape)} "
                             f"({size} values) to {self.shape} ({known} values)")
        return self.shape

    def _build(self, input_shape, rng):
        self._out = self.output_shape(input_shape)

    def _forward(self, x):
        return x.reshape((x.shape[0],) + self._out)

    def get_config(self):
        return {"shape": list(self.shape), **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {"shape": [4, 6]}, "input_shape": (2, 3, 4)},
                {"config": {"shape": [-1, 2]}, "input_shape": (6,)}]


@hookimpl
def corenet_register_layers():
    return [Dense, ActivationLayer, Softmax, LogSoftmax, Flatten, Reshape]
