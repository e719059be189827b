"""Special layers: second-order (sigma-pi) units, tied-transpose dense layers, Siamese pair
distances, and a sparse-connectivity helper (networks.md §1.5, regularization.md §4.1-4.2).

* ``sigma_pi`` — ``s_i = ãᵀ W_i ã`` with ``ã = [1; x]`` (networks.md §1.5);
* ``tied_dense`` — ``W_dec = W_encᵀ``, ``y = x W_decᵀ + b = x W_enc + b``: the weight is the
  transpose of another layer's weight, one shared :class:`~corenet.Parameter` (regularization.md
  §4.2);
* ``pair_distance`` — the Euclidean distance between the embeddings of the two halves of a
  pair ``(N, 2, ...)`` computed by ONE branch (Siamese networks, hard sharing §4.1);
* :func:`random_sparse_mask` — a fixed random connectivity pattern for ``dense(mask=...)``.

Parameter sharing without duplicates: a layer that *uses* a parameter owned by another
layer (``tied_dense``) does not list it in its ``parameters()``, so a model lists every
parameter once (one optimizer state, one entry of θ) while backward adds the gradients of
every use into the one ``grad`` (§4.1: the gradient of a shared parameter is the sum).
"""
from __future__ import annotations

import numpy as np

from .. import registry
from ..errors import HyperparameterError, ShapeError
from ..initializer import compute_fans
from ..layer import Layer
from .core import FusedActivation
from ..plugins import hookimpl


# ----------------------------------------------------------------------------- helpers
def _positive_int(value, component, name, *, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HyperparameterError(f"{component}: {name} must be a positive integer, got "
                                  f"{value!r}")
    return int(value)


def random_sparse_mask(shape, density, rng=None, *, min_per_row=1):
    """A fixed sparse connectivity pattern for ``dense(mask=...)`` (networks.md §1.3).

    Every output unit (row, axis 0 of ``shape = (D_out, D_in, ...)``) gets exactly
    ``max(min_per_row, round(density · fan_in))`` incoming connections chosen uniformly
    without replacement (``fan_in`` = product of the other axes), so all units have the same
    fan-in. Returns a float64 0/1 array of ``shape``. ``rng``: seed or Generator.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ShapeError(f"random_sparse_mask: shape must be (D_out, D_in, ...) with positive "
                         f"sizes, got {shape}")
    try:
        density = float(density)
    except (TypeError, ValueError):
        raise HyperparameterError(f"random_sparse_mask: density must be a number in (0, 1], "
                                  f"got {density!r}") from None
    if not 0.0 < density <= 1.0:
        raise HyperparameterError(f"random_sparse_mask: density must be in (0, 1], got "
                                  f"{density!r}")
    fan_in = int(np.prod(shape[1:]))
    if not isinstance(min_per_row, (int, np.integer)) or not 1 <= min_per_row <= fan_in:
        raise HyperparameterError(f"random_sparse_mask: min_per_row must be an integer in "
                                  f"[1, {fan_in}], got {min_per_row!r}")
    k = min(fan_in, max(int(min_per_row), int(round(density * fan_in))))
    rng = np.random.default_rng(rng)
    mask = np.zeros((shape[0], fan_in))
    for row in mask:
        row[rng.choice(fan_in, size=k, replace=False)] = 1.0
    return mask.reshape(shape)


# ----------------------------------------------------------------------------- sigma-pi
class SigmaPi(FusedActivation, Layer):
    """Second-order (sigma-pi) units (``layer:sigma_pi``, networks.md §1.5).

    With ``ã = [1; x]`` (length ``D_in + 1``) and ``W`` of shape
    ``(D_out, D_in+1, D_in+1)``: ``s_i = ãᵀ W_i ã = Σ_jk W_ijk ã_j ã_k``, so the units
    hold quadratic, linear (``W_i0k``, ``W_ij0``) and constant (``W_i00``) terms — there is
    no separate bias. Backward: ``∂L/∂W_ijk = Σ_n δ_ni ã_nj ã_nk``;
    ``∂L/∂ã_n = Σ_i δ_ni (W_i + W_iᵀ) ã_n``, the first entry dropped for ``∂L/∂x``.
    Only the symmetric part ``(W_i + W_iᵀ)/2`` affects the output (the tensor is kept
    whole, as in the spec). ``activation`` fuses an activation as in ``dense``.

    Shapes: x ``(N, D_in)`` → ``(N, D_out)``. ``weight_init`` (default
    ``glorot_uniform``) uses ``fan_in = (D_in+1)²``, ``fan_out = D_out·(D_in+1)``.
    Cost ``O(N · D_out · (D_in+1)²)``.
    """

    name = "sigma_pi"

    def __init__(self, out_features: int, in_features: int | None = None, *, activation=None,
                 weight_init="glorot_uniform", trainable: bool = True):
        super().__init__(trainable=trainable)
        self.out_features = _positive_int(out_features, "sigma_pi", "out_features")
        self.in_features = _positive_int(in_features, "sigma_pi", "in_features", optional=True)
        self.weight_init = weight_init
        self._init_activation(activation)
        self.W = None

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ShapeError(f"{self.label}: expects inputs of shape (N, D_in); got per-sample "
                             f"shape {input_shape} (add a flatten layer first)")
        d_in = input_shape[0]
        if self.in_features is not None and self.in_features != d_in:
            raise ShapeError(f"{self.label}: in_features={self.in_features} but the input has "
                             f"{d_in} features")
        self.in_features = d_in
        shape = (self.out_features, d_in + 1, d_in + 1)
        fan_in, fan_out = compute_fans(shape)
        init = registry.create("initializer", self.weight_init)
        self.W = self.add_parameter("weight", init(shape, fan_in, fan_out, self.dtype, rng),
                                    fan_in=fan_in, fan_out=fan_out)
        self._build_activation(self.out_features)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def _linear(self, x):
        n, d1 = x.shape[0], x.shape[1] + 1
        A = np.empty((n, d1), dtype=x.dtype)
        A[:, 0] = 1
        A[:, 1:] = x
        self._A = A
        W = self.W.data
        # T[n, i, k] = Σ_j ã_nj W_ijk, then s_ni = Σ_k T[n, i, k] ã_nk
        T = (A @ W.transpose(1, 0, 2).reshape(d1, -1)).reshape(n, self.out_features, d1)
        return np.ascontiguousarray((T @ A[:, :, None])[:, :, 0])

    def _backward_logits(self, ds):
        A, W = self._A, self.W
        n, d1 = A.shape
        if W.trainable:
            outer = (A[:, :, None] * A[:, None, :]).reshape(n, d1 * d1)
            W.grad += (ds.T @ outer).reshape(W.shape)
        sym = (W.data + W.data.transpose(0, 2, 1)).reshape(self.out_features, d1 * d1)
        M = (ds @ sym).reshape(n, d1, d1)           # Σ_i δ_ni (W_i + W_iᵀ)
        dA = (M @ A[:, :, None])[:, :, 0]
        return np.ascontiguousarray(dA[:, 1:])

    # second order (networks.md §7.2, §7.5): ṡ_i = ãᵀV_iã + ȧᵀ(W_i + W_iᵀ)ã, ȧ = [0; ẋ]
    def _sym(self, W):
        return (W + W.transpose(0, 2, 1)).reshape(self.out_features, -1)

    def _per_unit_grad(self):
        """G[n, i, :] = (W_i + W_iᵀ) ã_n = ∂s_ni/∂ã_n."""
        A = self._A
        n, d1 = A.shape
        sym = self._sym(self.W.data).reshape(self.out_features, d1, d1)
        return (A @ sym.transpose(1, 0, 2).reshape(d1, -1)).reshape(n, self.out_features, d1)

    def _rop_forward_logits(self, x_dot, tangents):
        A, V = self._A, tangents[0]
        n, d1 = A.shape
        VT = (A @ V.transpose(1, 0, 2).reshape(d1, -1)).reshape(n, self.out_features, d1)
        s_dot = (VT @ A[:, :, None])[:, :, 0]
        self._A_dot = None
        if x_dot is not None:
            A_dot = np.zeros_like(A)
            A_dot[:, 1:] = x_dot
            self._A_dot = A_dot
            s_dot += (self._per_unit_grad() @ A_dot[:, :, None])[:, :, 0]
        return s_dot

    def _rop_forward(self, x_dot, tangents):
        s_dot = self._rop_forward_logits(x_dot, tangents)
        return s_dot if self.act is None else self.act._rop_forward(s_dot, tangents[1:])

    def _rop_backward_logits(self, ds, ds_dot, tangents, rgrads):
        A, A_dot = self._A, self._A_dot
        n, d1 = A.shape
        shape = self.W.shape
        rgrads[0] += (ds_dot.T @ (A[:, :, None] * A[:, None, :]).reshape(n, -1)).reshape(shape)
        if A_dot is not None:
            cross = A_dot[:, :, None] * A[:, None, :]
            cross = cross + cross.transpose(0, 2, 1)
            rgrads[0] += (ds.T @ cross.reshape(n, -1)).reshape(shape)
        sym = self._sym(self.W.data)
        M = (ds @ sym).reshape(n, d1, d1)
        M_dot = (ds_dot @ sym + ds @ self._sym(tangents[0])).reshape(n, d1, d1)
        dA = (M @ A[:, :, None])[:, :, 0]
        dA_dot = (M_dot @ A[:, :, None])[:, :, 0]
        if A_dot is not None:
            dA_dot += (M @ A_dot[:, :, None])[:, :, 0]
        return np.ascontiguousarray(dA[:, 1:]), np.ascontiguousarray(dA_dot[:, 1:])

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        if self.act is not None:
            dy, dy_dot = self.act._rop_backward(dy, dy_dot, tangents[1:], rgrads[1:])
        return self._rop_backward_logits(dy, dy_dot, tangents, rgrads)

    def _diag_gn_backward_logits(self, h, diag):
        A = self._A
        sq = (A[:, :, None] * A[:, None, :]) ** 2
        diag[0] += (h.T @ sq.reshape(A.shape[0], -1)).reshape(self.W.shape)
        G = self._per_unit_grad()
        return np.ascontiguousarray((h[:, :, None] * G * G).sum(axis=1)[:, 1:])

    def _diag_gn_backward(self, h, diag):
        if self.act is not None:
            h = self.act._diag_gn_backward(h, diag[1:])
        return self._diag_gn_backward_logits(h, diag)

    def get_config(self):
        return {"out_features": self.out_features, "in_features": self.in_features,
                "activation": self.activation, "weight_init": self.weight_init,
                **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {"out_features": 3}, "input_shape": (4,)},
                {"config": {"out_features": 2, "activation": "tanh"}, "input_shape": (3,)},
                {"config": {"out_features": 1, "in_features": 2,
                            "weight_init": {"name": "normal", "std": 0.3}},
                 "input_shape": (2,)}]


# ----------------------------------------------------------------------------- tied dense
class TiedDense(FusedActivation, Layer):
    """A dense layer whose weight is the transpose of another layer's weight
    (``layer:tied_dense``, regularization.md §4.2): ``W_dec = W_encᵀ``,
    ``y = x W_decᵀ + b = x W_enc + b``.

    ``tied_to`` is the layer (with a 2-D ``W`` parameter, e.g. ``dense``) whose
    ``W_enc (H, D)`` is used: this layer maps ``(N, H)`` → ``(N, D)`` with its own bias
    ``b (D,)``. The two layers share ONE :class:`~corenet.Parameter`: this layer does not
    list it in ``parameters()`` (the owner does, so θ, the optimizer state and saved
    files hold it once) and its backward adds ``dW_enc += (dW_dec)ᵀ = xᵀ δ`` into the
    shared ``grad``, after which the owner adds its own term (the sum of §4.1). Masks
    and ``trainable`` of the shared weight are the owner's. The owner must come earlier
    in the model (it is built first).

    ``tied_to`` may be a layer instance or the owner's key in its model (``"0"`` in a
    ``Sequential``, a node name in a ``Graph``); ``get_config`` stores the key. A model
    rebuilt from its config (``corenet.load``) must re-bind the key with
    :func:`tie` ``(model)`` before use. ``tied_to=None`` makes a standalone layer that
    owns a weight of shape ``(D_in, out_features)`` stored in the same (transposed)
    orientation (initialised as a ``(out_features, D_in)`` dense weight, transposed).
    ``activation`` fuses an output activation as in ``dense``.
    """

    name = "tied_dense"

    def __init__(self, tied_to=None, out_features: int | None = None, *, activation=None,
                 bias: bool = True, weight_init="glorot_uniform", bias_init="zeros",
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        self._partner = None
        self._ref = None
        if isinstance(tied_to, Layer):
            self._partner = tied_to
        elif isinstance(tied_to, str):
            self._ref = tied_to
        elif tied_to is not None:
            raise HyperparameterError(f"tied_dense: tied_to must be a layer, a layer key or "
                                      f"None, got {type(tied_to).__name__}")
        self.out_features = _positive_int(out_features, "tied_dense", "out_features",
                                          optional=True)
        if tied_to is None and self.out_features is None:
            raise HyperparameterError("tied_dense: a standalone layer (tied_to=None) needs "
                                      "out_features")
        self.bias = bool(bias)
        self.weight_init = weight_init
        self.bias_init = bias_init
        self._init_activation(activation)
        self._own = self.b = None

    # ------------------------------------------------------------------ the shared weight
    @property
    def tied_to(self):
        """The owner layer (once bound), its key (unbound), or None (standalone)."""
        return self._partner if self._partner is not None else self._ref

    @property
    def W(self):
        """The weight parameter in use, shape ``(D_in, D_out)`` (the owner's ``W``)."""
        if self._partner is not None:
            return self._partner.W
        if self._ref is not None:
            raise RuntimeError(f"{self.label}: tied_to={self._ref!r} is not bound to its layer; "
                               f"call corenet.layers.special.tie(model) after rebuilding a "
                               f"model from its config (e.g. corenet.load)")
        return self._own

    def _check_partner(self, partner, d_in):
        W = getattr(partner, "W", None)
        if not getattr(partner, "built", False) or W is None:
            raise ShapeError(f"{self.label}: the layer it is tied to "
                             f"({getattr(partner, 'label', partner)!r}) is not built; it must "
                             f"come earlier in the model")
        if W.data.ndim != 2 or (d_in is not None and W.shape[0] != d_in):
            raise ShapeError(f"{self.label}: tied to a weight of shape {W.shape}, which needs "
                             f"inputs of shape (N, {W.shape[0]}), but the input has shape "
                             f"(N, {d_in})")
        if self.out_features is not None and self.out_features != W.shape[1]:
            raise ShapeError(f"{self.label}: out_features={self.out_features} but the tied "
                             f"weight {W.shape} gives {W.shape[1]} outputs")
        return W.shape[1]

    def attach(self, model) -> None:
        """Bind a ``tied_to`` key to the layer of ``model`` with that key."""
        if self._partner is not None or self._ref is None:
            return
        layers = {layer.key: layer for layer in model.layers_in_order()}
        if self._ref not in layers:
            raise ValueError(f"{self.label}: tied_to={self._ref!r} is not a layer of the model; "
                             f"layer keys are {sorted(layers)}")
        partner = layers[self._ref]
        if self.built:
            self._check_partner(partner, self.input_shape[0])
        self._partner, self._ref = partner, None

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ShapeError(f"{self.label}: expects inputs of shape (N, D_in); got per-sample "
                             f"shape {input_shape}")
        d_in = input_shape[0]
        if self._partner is not None:
            self.out_features = self._check_partner(self._partner, d_in)
        elif self._ref is not None and self.out_features is None:
            raise ShapeError(f"{self.label}: tied_to={self._ref!r} is unbound and out_features "
                             f"is unknown; pass the owner layer itself or out_features")
        elif self._ref is None:
            shape = (self.out_features, d_in)
            fan_in, fan_out = compute_fans(shape)
            init = registry.create("initializer", self.weight_init)
            w = init(shape, fan_in, fan_out, self.dtype, rng)
            self._own = self.add_parameter("weight", np.ascontiguousarray(w.T),
                                           fan_in=fan_in, fan_out=fan_out)
        if self.bias:
            init_b = registry.create("initializer", self.bias_init)
            self.b = self.add_parameter("bias", init_b((self.out_features,), None, None,
                                                       self.dtype, rng))
        self._build_activation(self.out_features)

    def output_shape(self, input_shape):
        if self.out_features is None and self._partner is not None:
            return (self._partner.W.shape[1],)
        return (self.out_features,)

    def _linear(self, x):
        self._x = x
        s = x @ self.W.data
        if self.b is not None:
            s += self.b.data
        return s

    def _backward_logits(self, ds):
        W = self.W
        if W.trainable:
            W.grad += self._x.T @ ds                 # (dW_dec)ᵀ = xᵀ δ, shape of W_enc
        if self.b is not None and self.b.trainable:
            self.b.grad += ds.sum(axis=0)
        return ds @ W.data.T

    def get_config(self):
        ref = self._partner.key if self._partner is not None else self._ref
        return {"tied_to": ref, "out_features": self.out_features,
                "activation": self.activation, "bias": self.bias,
                "weight_init": self.weight_init, "bias_init": self.bias_init,
                **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases (standalone mode; the tied mode is tested on models)."""
        return [{"config": {"out_features": 4}, "input_shape": (3,)},
                {"config": {"out_features": 3, "activation": "tanh", "bias": False},
                 "input_shape": (5,)}]


def tie(model):
    """Bind every ``tied_dense`` layer of ``model`` given by key to its owner layer (needed
    after rebuilding a model from its config, e.g. ``corenet.load``); returns ``model``."""
    for layer in model.layers_in_order():
        attach = getattr(layer, "attach", None)
        if callable(attach):
            attach(model)
    return model


# ----------------------------------------------------------------------------- Siamese
def _make_layer(spec):
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, dict) and set(spec) == {"name", "config"}:
        return registry.get("layer", spec["name"]).from_config(dict(spec["config"]))
    return registry.create("layer", spec)


class PairDistance(Layer):
    """Siamese distance (``layer:pair_distance``; hard weight sharing, regularization.md
    §4.1): ``d_n = ‖f(x_n,0) − f(x_n,1)‖₂`` where ``f`` is ONE branch (a list of layers).

    Input: pairs ``(N, 2, *S)`` (the two items stacked on axis 1); output ``(N, 1)``.
    Both halves run through the same branch layers as one batch of ``2N`` samples
    (``[x_·0; x_·1]``), so the weights are shared by construction, each parameter is
    listed once, and backward (one pass over the stacked ``[δ; −δ]``) adds the
    gradients of both uses — exact, with no parameter aliasing. Batch-statistics layers
    in the branch (batch norm) see the ``2N`` samples together.

    Backward: ``∂d/∂f₁ = (f₁ − f₂)/d = −∂d/∂f₂``; at ``d = 0`` the subgradient 0 is used
    (``d`` is not differentiable there; PyTorch's ``pairwise_distance`` instead adds
    ``eps`` to the difference). Pair with the ``contrastive`` loss.

    ``branch``: layer specs (a name, a ``{"name": ..., **kwargs}`` dict, a
    ``{"name", "config"}`` dict as stored by ``get_config``, or unbuilt layer instances).
    Inner parameters are named ``"<key>.<i>.<role>"``. :meth:`embed` runs the branch
    alone on ``(N, *S)``.
    """

    name = "pair_distance"

    def __init__(self, branch, *, trainable: bool = True):
        super().__init__(trainable=trainable)
        if isinstance(branch, (str, dict, Layer)) or not branch:
            raise HyperparameterError("pair_distance: branch must be a non-empty list of layer "
                                      "specs")
        self.branch = [_make_layer(spec) for spec in branch]
        for layer in self.branch:
            if layer.n_inputs != 1:
                raise HyperparameterError(f"pair_distance: branch layers take one input; "
                                          f"{layer.name!r} takes {layer.n_inputs or 'several'}")
            if layer.built:
                raise HyperparameterError(f"pair_distance: branch layer {layer.name!r} is "
                                          f"already built; pass unbuilt layers or specs")

    def _build(self, input_shape, rng):
        if len(input_shape) < 2 or input_shape[0] != 2:
            raise ShapeError(f"{self.label}: expects pairs of shape (N, 2, ...), got per-sample "
                             f"shape {input_shape}")
        shape = tuple(input_shape[1:])
        for i, layer in enumerate(self.branch):       # one generator, drawn in layer order
            layer.key = f"{self.key}.{i}" if self.key else str(i)
            layer.build(shape, self.dtype, rng)
            layer.train(self.training)
            shape = tuple(layer.output_shape(shape))
            for p in layer.parameters():
                p.role = f"{i}.{p.role}"
                p.name = f"{self.key}.{p.role}" if self.key else p.role
                self._params.append(p)
        self.embedding_shape = shape

    def output_shape(self, input_shape):
        return (1,)

    def train(self, mode: bool = True):
        super().train(mode)
        for layer in self.branch:
            layer.train(mode)
        return self

    def _run_branch(self, x):
        for layer in self.branch:
            x = layer.forward(x)
        return x

    def embed(self, X):
        """The branch output ``f(X)`` for single items ``X`` of shape ``(N, *S)`` (uses the
        current train/eval mode; call it in eval mode for deterministic results)."""
        if not self.built:
            raise RuntimeError(f"{self.label}: build the layer (or its model) first")
        return self._run_branch(X)

    def _forward(self, x):
        n = x.shape[0]
        F = self._run_branch(np.concatenate([x[:, 0], x[:, 1]], axis=0)).reshape(2 * n, -1)
        diff = F[:n] - F[n:]
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        self._diff, self._d, self._n = diff, d, n
        return d[:, None]

    def _backward(self, dd):
        d, n = self._d, self._n
        safe = np.where(d > 0, d, 1)
        g = self._diff * np.where(d > 0, dd[:, 0] / safe, 0)[:, None]
        dF = np.concatenate([g, -g], axis=0).reshape((2 * n,) + self.embedding_shape)
        for layer in reversed(self.branch):
            dF = layer.backward(dF)
        return np.ascontiguousarray(np.stack([dF[:n], dF[n:]], axis=1))

    def buffers(self) -> dict:
        return {f"{i}.{k}": v for i, layer in enumerate(self.branch)
                for k, v in layer.buffers().items()}

    def load_buffers(self, buffers: dict) -> None:
        for key, value in buffers.items():
            i, _, inner = key.partition(".")
            if not i.isdigit() or int(i) >= len(self.branch):
                raise KeyError(f"{self.label}: unknown buffer {key!r}; it has "
                               f"{sorted(self.buffers())}")
            self.branch[int(i)].load_buffers({inner: value})

    def get_config(self):
        return {"branch": [{"name": layer.name, "config": layer.get_config()}
                           for layer in self.branch], **super().get_config()}

    @classmethod
    def examples(cls):
        """Example cases for the contract tests (:mod:`corenet.testing`)."""
        return [{"config": {"branch": [{"name": "dense", "out_features": 3,
                                        "activation": "tanh"},
                                       {"name": "dense", "out_features": 2}]},
                 "input_shape": (2, 4)},
                {"config": {"branch": ["flatten", {"name": "dense", "out_features": 3}]},
                 "input_shape": (2, 2, 3)}]


@hookimpl
def corenet_register_layers():
    return [SigmaPi, TiedDense, PairDistance]


__all__ = ["PairDistance", "SigmaPi", "TiedDense", "random_sparse_mask", "tie"]
