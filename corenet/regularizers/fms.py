"""Flat Minimum Search (regularization.md §8, D-52; Hochreiter & Schmidhuber 1997)."""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, ShapeError, check_positive
from ..plugins import hookimpl
from ..regularizer import Regularizer
from ._base import GroupSelection, check_choice


def fms_terms(J, c0: float = 1e-12):
    """``B`` and ``U = ∂B/∂J`` for one sample's Jacobian ``J (K, n_w)`` (§8)::

        S_i = Σ_k J_ki² + c₀        A_k = Σ_i |J_ki|/√S_i        T = Σ_k A_k²
        B = Σ_i log S_i + n_w log T
        U_ki = 2J_ki/S_i + (n_w/T)[2A_k sign(J_ki)/√S_i − 2J_ki(Σ_m A_m|J_mi|)/S_i^{3/2}]
    """
    J = np.asarray(J, dtype=np.float64)
    if J.ndim != 2:
        raise ShapeError(f"flat_minimum_search: J must have shape (K, n_w), got {J.shape}")
    n_w = J.shape[1]
    S = (J * J).sum(axis=0) + c0
    rs = 1.0 / np.sqrt(S)
    absJ = np.abs(J)
    A = absJ @ rs
    T = float(A @ A)
    B = float(np.log(S).sum()) + n_w * np.log(T)
    cross = A @ absJ                                           # Σ_m A_m |J_mi|
    U = 2.0 * J / S + (n_w / T) * (2.0 * np.outer(A, rs) * np.sign(J)
                                   - 2.0 * J * (cross * rs ** 3))
    return B, U


def _split(model, flat):
    """Per-layer tangent lists aligned with ``layer.parameters()`` (zeros when frozen)."""
    out, offset = [], 0
    for layer in model.layers_in_order():
        arrays = []
        for p in layer.parameters():
            if p.trainable:
                arrays.append(np.ascontiguousarray(
                    flat[offset:offset + p.size].reshape(p.shape), dtype=p.dtype))
                offset += p.size
            else:
                arrays.append(np.zeros(p.shape, dtype=p.dtype))
        out.append(arrays)
    return out


def _flatten(model, per_layer):
    parts = [a.ravel() for layer, arrays in zip(model.layers_in_order(), per_layer)
             for p, a in zip(layer.parameters(), arrays) if p.trainable]
    return np.concatenate(parts)


def _output_grad(model, x, k, n_out, shape):
    """``∇_θ a_k(x)`` (one backward pass from the outputs after the output activation)."""
    model.forward(x)
    seed = np.zeros((1, n_out), dtype=model.dtype)
    seed[0, k] = 1.0
    model.zero_grad()
    model.backward(seed.reshape(shape))
    return model.get_flat_gradients()


def _output_hvp(model, x, k, n_out, shape, u, method):
    """``H_k u`` with ``H_k = ∇²_θ a_k(x)``: the R-operator with ``L = a_k`` (so
    ``∂L/∂a = e_k``, ``R{∂L/∂a} = 0``), or central differences of ``∇_θ a_k`` along u."""
    if method == "rop":
        try:
            tangents = _split(model, u)
            model.forward(x)
            model.rop_forward(tangents)
            seed = np.zeros((1, n_out), dtype=model.dtype)
            seed[0, k] = 1.0
            rgrads = [[np.zeros(p.shape, dtype=p.dtype) for p in layer.parameters()]
                      for layer in model.layers_in_order()]
            model.rop_backward(seed.reshape(shape), np.zeros(shape, dtype=model.dtype),
                               tangents, rgrads)
            return _flatten(model, rgrads)
        except NotImplementedError:
            pass
    theta = model.get_flat_parameters()
    umax = np.abs(u).max()
    if umax == 0:
        return np.zeros_like(theta)
    eps = 1e-5 * (1.0 + np.abs(theta).max(initial=0.0)) / umax
    try:
        model.set_flat_parameters(theta + eps * u)
        gp = _output_grad(model, x, k, n_out, shape)
        model.set_flat_parameters(theta - eps * u)
        gm = _output_grad(model, x, k, n_out, shape)
    finally:
        model.set_flat_parameters(theta)
    return (gp - gm) / (2.0 * eps)


def _selection(model, applies_to):
    parts = []
    for p in model.trainable_parameters():
        if applies_to(p):
            parts.append(p.mask.ravel() != 0)
        else:
            parts.append(np.zeros(p.size, dtype=bool))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def fms_value_and_grad(model, X, *, c0: float = 1e-12, applies_to=None, method: str = "rop"):
    """``(Ω_FMS, ∇_θ Ω_FMS)`` with ``Ω_FMS = mean_{x ∈ X} B(θ; x)`` (§8, D-52), θ in
    README §2.3 order (trainable parameters). ``applies_to(p)`` selects the weights that
    count in ``n_w`` (default every trainable parameter; masked entries never count).
    Per sample: K backward passes give the Jacobian rows, then ``∇B = Σ_k H_k U_k`` by K
    R-operator passes (``method="rop"``; layers without R-rules fall back to central
    differences, as does ``method="finite_difference"``). Runs in eval mode; ``p.grad``,
    the parameters and the train/eval flag are restored. Cost O(N·K·n_θ)."""
    X = model.check_input(X, "flat_minimum_search input")
    if not model.built:
        model.build(X.shape[1:])
    sel = _selection(model, applies_to or (lambda p: True))
    if not sel.any():
        raise ValueError("flat_minimum_search: no weight is selected")
    was_training = model.training
    saved = [p.grad.copy() for p in model.parameters()]
    model.eval()
    total, grad = 0.0, np.zeros(sel.size, dtype=np.float64)
    try:
        for i in range(X.shape[0]):
            x = X[i:i + 1]
            out = model.forward(x)
            shape, n_out = out.shape, int(np.prod(out.shape[1:]))
            J = np.stack([_output_grad(model, x, k, n_out, shape) for k in range(n_out)])
            B, U = fms_terms(J[:, sel], c0)
            total += B
            full = np.zeros(J.shape, dtype=model.dtype)
            full[:, sel] = U
            for k in range(n_out):
                grad += _output_hvp(model, x, k, n_out, shape, full[k], method)
    finally:
        for p, g in zip(model.parameters(), saved):
            p.grad[...] = g
        model.train(was_training)
    n = X.shape[0]
    return total / n, grad / n


class FlatMinimumSearch(GroupSelection, Regularizer):
    """Flat Minimum Search (``regularizer:flat_minimum_search``, §8, D-52): adds
    ``λ·Ω_FMS`` with ``Ω_FMS`` the batch mean of ``B(θ; x)`` on the network outputs after
    the output activation (:func:`fms_value_and_grad`); ``c0 = 1e-12``, ``lam = 1e-3``
    (fixed), ``params="all"`` (the weights counted in ``n_w``; masked entries excluded).

    It needs the model and the batch: ``corenet_on_batch_begin`` records them and
    :meth:`add_grad` (right after backward, pre-update θ) adds ``λ∇Ω_FMS`` to every
    trainable ``p.grad``. :meth:`penalty` reports ``λ·Ω_FMS`` of the last batch (0 before
    the first); outside a training run (no recorded batch) it adds nothing. Use
    :meth:`value_and_grad` directly for a given batch. Intended for small networks.
    """

    name = "flat_minimum_search"
    pure_penalty = False

    def __init__(self, lam: float = 1e-3, c0: float = 1e-12, params="all",
                 method: str = "rop", include_bias: bool = True):
        self.lam = check_positive(lam, "regularizer 'flat_minimum_search'", "lam",
                                  allow_zero=True)
        self.c0 = check_positive(c0, "regularizer 'flat_minimum_search'", "c0", allow_zero=True)
        self.method = check_choice(method, "regularizer 'flat_minimum_search'", "method",
                                   ("rop", "finite_difference"))
        if isinstance(params, dict):
            raise HyperparameterError("regularizer 'flat_minimum_search': params must be "
                                      "'all', 'weights', a list of layer names or a predicate")
        self._init_selection(include_bias, params)
        self._model = self._X = None
        self.last_value = None

    def value_and_grad(self, model, X):
        """``(Ω_FMS, ∇_θ Ω_FMS)`` on the batch ``X`` (without λ)."""
        return fms_value_and_grad(model, X, c0=self.c0, applies_to=self.applies_to,
                                  method=self.method)

    def penalty(self, params) -> float:
        return 0.0 if self.last_value is None else self.lam * self.last_value

    def add_grad(self, params) -> None:
        model, X = self._model, self._X
        self._X = None
        if model is None or X is None or self.lam == 0.0:
            return
        value, grad = self.value_and_grad(model, X)
        self.last_value = value
        offset = 0
        for p in model.trainable_parameters():
            p.grad += (self.lam * grad[offset:offset + p.size]).reshape(p.shape).astype(
                p.dtype, copy=False)
            offset += p.size

    @hookimpl
    def corenet_on_batch_begin(self, trainer, X):
        self._model, self._X = trainer.model, X

    @hookimpl
    def corenet_on_train_end(self, trainer):
        self._model = self._X = None

    def get_config(self):
        return {"lam": self.lam, "c0": self.c0, "method": self.method,
                **self._selection_config()}

    def __repr__(self) -> str:
        return f"FlatMinimumSearch({self.get_config()})"

    @classmethod
    def examples(cls):
        return [{}, {"lam": 0.1, "c0": 1e-8, "params": "weights", "include_bias": False}]
