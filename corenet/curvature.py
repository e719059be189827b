"""Second-order tools: gradients, Hessian-vector products, Hessians, diagonals, Jacobians.

Everything is w.r.t. the parameter vector θ of spec README §2.3 (trainable parameters in
model order, each raveled in C order) and the reduced training loss ``R`` (the loss's own
reduction, ``mean`` by default) on a given batch, in ``eval`` mode (networks.md §6-7).
Computations run in the model's dtype; pass a float64 model for the spec's tolerances
(README §3: second-order utilities SHOULD run in float64).

* :func:`loss_gradient` — ``∇_θ R``.
* :func:`hvp` — exact ``H v`` by the R-operator (Pearlmutter 1994, networks.md §7.2), or
  central differences of gradients (``method="finite_difference"``, the fallback for
  layers without R-rules).
* :func:`hessian` — ``[Hv(e_1) … Hv(e_n)]`` symmetrised (§7.3), for n_θ up to a few
  thousand.
* :func:`gauss_newton_vector` — ``G v`` (§7.4, no activation-curvature terms).
* :func:`hessian_diag` — ``"exact"``, ``"gauss_newton_diag"`` (LeCun's O(n_θ) pass,
  the OBD default) or ``"fisher"`` (§7.5).
* :func:`jacobian_input`, :func:`jacobian_params` — §6.1, §6.3.
"""
from __future__ import annotations

import numpy as np

from . import registry
from .errors import ShapeError


def _prepare(model, loss, X, y, sample_weight=None):
    loss = registry.create("loss", loss)
    X = model.check_input(X, "curvature input")
    if not model.built:
        model.build(X.shape[1:])
    model.eval()
    fuse = loss.fused_activation is not None and loss.fused_activation == model.output_activation
    return loss, X, y, fuse


def _per_layer(model, flat=None):
    """Split a flat vector over the trainable parameters into per-layer lists of arrays
    aligned with ``layer.parameters()`` (zeros for frozen parameters)."""
    out, offset = [], 0
    for layer in model.layers_in_order():
        arrays = []
        for p in layer.parameters():
            if p.trainable and flat is not None:
                arrays.append(np.ascontiguousarray(
                    flat[offset:offset + p.size].reshape(p.shape), dtype=p.dtype))
                offset += p.size
            else:
                arrays.append(np.zeros(p.shape, dtype=p.dtype))
        out.append(arrays)
    return out


def _flatten(model, per_layer) -> np.ndarray:
    parts = [a.ravel() for layer, arrays in zip(model.layers_in_order(), per_layer)
             for p, a in zip(layer.parameters(), arrays) if p.trainable]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=model.dtype)


def _n_theta(model) -> int:
    return sum(p.size for p in model.trainable_parameters())


def _check_vector(model, v, name="v"):
    v = np.asarray(v, dtype=model.dtype)
    n = _n_theta(model)
    if v.shape != (n,):
        raise ShapeError(f"curvature: {name} must have shape ({n},) (the number of trainable "
                         f"parameters), got {v.shape}")
    return v


def _output_hessian(loss, out, y, fuse):
    """Per-sample ``∇²ℓ_n`` w.r.t. what the loss consumes, flattened to (N, K, K)."""
    if fuse:
        return loss.fused_hess_output(out, y)
    return loss.hess_output(out, y)


def _weights(loss, n, sample_weight, dtype):
    c = loss._weights(n, sample_weight, dtype)
    return np.full(n, c, dtype=dtype) if isinstance(c, float) else np.asarray(c, dtype=dtype)


def loss_gradient(model, loss, X, y, sample_weight=None) -> np.ndarray:
    """``(R, ∇_θ R)`` on the batch, θ in README §2.3 order."""
    loss, X, y, fuse = _prepare(model, loss, X, y)
    out = model.forward(X, logits=fuse)
    if fuse:
        value, g = loss.fused_value_and_grad(out, y, sample_weight)
    else:
        value, g = loss.value_and_grad(out, y, sample_weight)
    model.zero_grad()
    model.backward(g, logits=fuse)
    return float(np.sum(value)), model.get_flat_gradients()


def hvp(model, loss, X, y, v, *, method: str = "rop", sample_weight=None) -> np.ndarray:
    """Exact Hessian-vector product ``H v`` of the reduced loss (networks.md §7.2)."""
    if method == "finite_difference":
        return _hvp_fd(model, loss, X, y, v, sample_weight)
    if method != "rop":
        raise ValueError(f"hvp: method must be 'rop' or 'finite_difference', got {method!r}")
    loss, X, y, fuse = _prepare(model, loss, X, y)
    v = _check_vector(model, v)
    tangents = _per_layer(model, v)
    out = model.forward(X, logits=fuse)
    out_dot = model.rop_forward(tangents, logits=fuse)
    targets = loss.prepare_targets(out, y)
    if fuse:
        _, g = loss.fused_value_and_grad(out, targets, sample_weight)
    else:
        _, g = loss.value_and_grad(out, targets, sample_weight)
    n = out.shape[0]
    H = _output_hessian(loss, out, targets, fuse)
    c = _weights(loss, n, sample_weight, out.dtype)
    g_dot = np.einsum("nij,nj->ni", H, out_dot.reshape(n, -1)) * c[:, None]
    rgrads = _per_layer(model)
    model.rop_backward(g, g_dot.reshape(out.shape), tangents, rgrads, logits=fuse)
    return _flatten(model, rgrads)


def _hvp_fd(model, loss, X, y, v, sample_weight):
    v = _check_vector(model, v)
    theta = model.get_flat_parameters()
    vmax = np.abs(v).max()
    if vmax == 0:
        return np.zeros_like(theta)
    eps = 1e-5 * (1.0 + np.abs(theta).max(initial=0.0)) / vmax
    try:
        model.set_flat_parameters(theta + eps * v)
        _, gp = loss_gradient(model, loss, X, y, sample_weight)
        model.set_flat_parameters(theta - eps * v)
        _, gm = loss_gradient(model, loss, X, y, sample_weight)
    finally:
        model.set_flat_parameters(theta)
    return (gp - gm) / (2.0 * eps)


def hessian(model, loss, X, y, *, method: str = "rop", sample_weight=None,
            max_parameters: int = 20000) -> np.ndarray:
    """The full Hessian ``H = ∇²_θ R``, assembled from n_θ HVPs and symmetrised (§7.3)."""
    n = _n_theta(model) if model.built else None
    if n is None:
        _prepare(model, loss, X, y)
        n = _n_theta(model)
    if n > max_parameters:
        raise ValueError(f"hessian: {n} parameters exceed max_parameters={max_parameters}; "
                         f"use hvp or a layer-wise method")
    H = np.empty((n, n), dtype=model.dtype)
    e = np.zeros(n, dtype=model.dtype)
    for i in range(n):
        e[i] = 1.0
        H[:, i] = hvp(model, loss, X, y, e, method=method, sample_weight=sample_weight)
        e[i] = 0.0
    return 0.5 * (H + H.T)


def gauss_newton_vector(model, loss, X, y, v, sample_weight=None) -> np.ndarray:
    """``G v = (1/N) Σ J_nᵀ Λ_n J_n v`` (§7.4): an R-forward pass, ``Λ_n``, then an
    ordinary backward pass (no activation second derivatives)."""
    loss, X, y, fuse = _prepare(model, loss, X, y)
    v = _check_vector(model, v)
    tangents = _per_layer(model, v)
    out = model.forward(X, logits=fuse)
    out_dot = model.rop_forward(tangents, logits=fuse)
    targets = loss.prepare_targets(out, y)
    n = out.shape[0]
    H = _output_hessian(loss, out, targets, fuse)
    c = _weights(loss, n, sample_weight, out.dtype)
    seed = (np.einsum("nij,nj->ni", H, out_dot.reshape(n, -1)) * c[:, None]).reshape(out.shape)
    model.zero_grad()
    model.backward(np.ascontiguousarray(seed), logits=fuse)
    return model.get_flat_gradients()


def hessian_diag(model, loss, X, y, *, method: str = "gauss_newton_diag",
                 sample_weight=None) -> np.ndarray:
    """Diagonal of the Hessian (§7.5): ``"exact"`` (n_θ HVPs), ``"gauss_newton_diag"``
    (LeCun, Denker & Solla's second-order backward pass: activation second derivatives
    and cross terms between units dropped; O(n_θ) per sample; the OBD default) or
    ``"fisher"`` (mean of squared per-sample gradients)."""
    if method == "exact":
        loss_obj, X, y, _ = _prepare(model, loss, X, y)
        n = _n_theta(model)
        out = np.empty(n, dtype=model.dtype)
        e = np.zeros(n, dtype=model.dtype)
        for i in range(n):
            e[i] = 1.0
            out[i] = hvp(model, loss_obj, X, y, e, sample_weight=sample_weight)[i]
            e[i] = 0.0
        return out
    if method == "fisher":
        loss_obj, X, y, _ = _prepare(model, loss, X, y)
        y = np.asarray(y)
        w = (np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight))
        total, acc = w.sum(), None
        for i in range(X.shape[0]):
            _, g = loss_gradient(model, _single(loss_obj), X[i:i + 1], y[i:i + 1])
            acc = w[i] * g * g if acc is None else acc + w[i] * g * g
        return acc / total
    if method != "gauss_newton_diag":
        raise ValueError(f"hessian_diag: method must be 'exact', 'gauss_newton_diag' or "
                         f"'fisher', got {method!r}")
    loss, X, y, fuse = _prepare(model, loss, X, y)
    out = model.forward(X, logits=fuse)
    targets = loss.prepare_targets(out, y)
    n = out.shape[0]
    H = _output_hessian(loss, out, targets, fuse)
    c = _weights(loss, n, sample_weight, out.dtype)
    h = (np.einsum("nii->ni", H) * c[:, None]).reshape(out.shape)
    diag = _per_layer(model)
    model.diag_gn_backward(np.ascontiguousarray(h), diag, logits=fuse)
    return _flatten(model, diag)


def _single(loss):
    """The same loss with ``reduction="sum"`` (per-sample gradients)."""
    cfg = loss.get_config()
    cfg["reduction"] = "sum"
    return type(loss)(**cfg)


def jacobian_input(model, X) -> np.ndarray:
    """``J_n[k, d] = ∂ŷ_nk/∂x_nd`` for every sample: shape ``(N, K, D)`` with D the
    flattened input size (networks.md §6.1; reverse mode, K backward passes)."""
    X = model.check_input(X, "jacobian_input")
    if not model.built:
        model.build(X.shape[1:])
    model.eval()
    out = model.forward(X)
    n = X.shape[0]
    k = int(np.prod(out.shape[1:]))
    J = np.empty((n, k, int(np.prod(X.shape[1:]))), dtype=model.dtype)
    for j in range(k):
        seed = np.zeros((n, k), dtype=model.dtype)
        seed[:, j] = 1.0
        model.forward(X)
        J[:, j, :] = model.backward(seed.reshape(out.shape)).reshape(n, -1)
    return J


def jacobian_params(model, X) -> np.ndarray:
    """Per-sample parameter Jacobians ``∂ŷ_nk/∂θ``: shape ``(N, K, n_θ)`` (§6.3; one
    backward pass per sample and output)."""
    X = model.check_input(X, "jacobian_params")
    if not model.built:
        model.build(X.shape[1:])
    model.eval()
    n = X.shape[0]
    out = model.forward(X[:1])
    k = int(np.prod(out.shape[1:]))
    J = np.empty((n, k, _n_theta(model)), dtype=model.dtype)
    for i in range(n):
        xi = X[i:i + 1]
        for j in range(k):
            seed = np.zeros((1, k), dtype=model.dtype)
            seed[0, j] = 1.0
            model.forward(xi)
            model.zero_grad()
            model.backward(seed.reshape((1,) + out.shape[1:]))
            J[i, j] = model.get_flat_gradients()
    return J
