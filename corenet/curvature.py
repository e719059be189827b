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
    loss, fuse, out, targets, tangents, g_dot = _tangent_pass(model, loss, X, y, v,
                                                              sample_weight)
    if fuse:
        _, g = loss.fused_value_and_grad(out, targets, sample_weight)
    else:
        _, g = loss.value_and_grad(out, targets, sample_weight)
    rgrads = _per_layer(model)
    model.rop_backward(g, g_dot, tangents, rgrads, logits=fuse)
    return _flatten(model, rgrads)


def _tangent_pass(model, loss, X, y, v, sample_weight):
    """Forward and R-forward along ``v``, then ``Λ_n ż`` scaled by the reduction weights
    (the R-value of ∂L/∂output, networks.md §7.2 loss rule)."""
    loss, X, y, fuse = _prepare(model, loss, X, y)
    v = _check_vector(model, v)
    tangents = _per_layer(model, v)
    out = model.forward(X, logits=fuse)
    out_dot = model.rop_forward(tangents, logits=fuse)
    targets = loss.prepare_targets(out, y)
    n = out.shape[0]
    H = _output_hessian(loss, out, targets, fuse)
    c = _weights(loss, n, sample_weight, out.dtype)
    g_dot = np.einsum("nij,nj->ni", H, out_dot.reshape(n, -1)) * c[:, None]
    return loss, fuse, out, targets, tangents, np.ascontiguousarray(g_dot.reshape(out.shape))


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
    loss, fuse, out, targets, tangents, seed = _tangent_pass(model, loss, X, y, v,
                                                             sample_weight)
    model.zero_grad()
    model.backward(seed, logits=fuse)
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


# ---- inverse Hessians ----
# The outer-product (Gauss-Newton / Fisher) approximation of networks.md §7.4 and its
# inverse built recursively, sample by sample, with the Woodbury identity (pruning.md
# §5.3, D-27); the inverse of the exact Hessian where it is positive definite; the OBS
# downdate after a deletion (§5.4) and the inverse-quality measure (§5.5). Everything is
# float64 (README §3: second-order utilities run in float64).

from .errors import CorenetError as _CorenetError  # noqa: E402
from .errors import NotFiniteError as _NotFiniteError  # noqa: E402


class SingularHessianError(_CorenetError, np.linalg.LinAlgError):
    """A Hessian (or its approximation) is singular or indefinite where an inverse is
    needed. Subclass of ``numpy.linalg.LinAlgError`` (and so of ``ValueError``)."""


def _indices(model, indices):
    """``indices`` (None = all of θ, a boolean mask of θ, or integer positions) as a
    sorted-as-given int64 array of unique positions in θ (README §2.3)."""
    n = _n_theta(model)
    if indices is None:
        return np.arange(n)
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ShapeError(f"curvature: a boolean index must have shape ({n},) (the number "
                             f"of trainable parameters), got {idx.shape}")
        return np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ShapeError(f"curvature: indices must be a 1-D integer array, got shape "
                         f"{idx.shape} and dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ShapeError(f"curvature: indices must lie in [0, {n - 1}], got values in "
                         f"[{idx.min()}, {idx.max()}]")
    if np.unique(idx).size != idx.size:
        raise ShapeError("curvature: indices must be unique")
    return idx


def output_jacobians(model, X, *, logits: bool = False, indices=None,
                     mode: str = "auto") -> np.ndarray:
    """Per-sample Jacobians ``J_n = ∂z_n/∂θ_P`` of the model output (or, with ``logits``,
    of the pre-activation the fused losses consume, networks.md §7.4): shape
    ``(N, K, |P|)`` with K the flattened output size and P = ``indices`` (default: all of
    θ). ``mode="forward"`` runs one R-forward pass over the whole batch per column
    (|P| passes, §7.2), ``"reverse"`` one backward pass per sample and output (N·K
    passes, §6.3); ``"auto"`` takes the cheaper (forward only when every layer has
    R-rules). Eval mode."""
    X = model.check_input(X, "output_jacobians")
    if not model.built:
        model.build(X.shape[1:])
    model.eval()
    idx = _indices(model, indices)
    out = model.forward(X, logits=logits)
    n, k = out.shape[0], int(np.prod(out.shape[1:]))
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"output_jacobians: mode must be 'auto', 'forward' or 'reverse', "
                         f"got {mode!r}")
    J = np.empty((n, k, idx.size), dtype=model.dtype)
    if mode == "auto":
        mode = "forward" if idx.size <= n * k else "reverse"
    if mode == "forward":
        e = np.zeros(_n_theta(model), dtype=model.dtype)
        try:
            for col, i in enumerate(idx):
                e[i] = 1.0
                J[:, :, col] = model.rop_forward(_per_layer(model, e),
                                                 logits=logits).reshape(n, k)
                e[i] = 0.0
            return J
        except NotImplementedError:
            pass                       # a layer without R-rules: fall back to reverse mode
    for s in range(n):
        xs = X[s:s + 1]
        for j in range(k):
            seed = np.zeros((1, k), dtype=model.dtype)
            seed[0, j] = 1.0
            o = model.forward(xs, logits=logits)
            model.zero_grad()
            model.backward(seed.reshape(o.shape), logits=logits)
            J[s, j] = model.get_flat_gradients()[idx]
    return J


def output_factors(loss, out, targets, fuse: bool) -> np.ndarray:
    """``U_n`` (shape ``(N, K, R)``) with ``Λ_n = ∇²_z ℓ_n = U_n U_nᵀ`` (networks.md §7.4):
    ``√λ e_r`` for a diagonal Λ (``sse(half=True)``: ``e_r``; ``mse``: ``√(2/K) e_r``;
    ``bce_with_logits``), ``√p_r (e_r − p)`` for softmax cross-entropy on logits, and a
    clipped eigen-factor (negative eigenvalues set to 0, the Gauss-Newton convention)
    for any other loss."""
    H = _output_hessian(loss, out, targets, fuse)
    n, k = H.shape[0], H.shape[1]
    d = np.einsum("nii->ni", H)
    if not np.any(H - d[:, :, None] * np.eye(k, dtype=H.dtype)):
        U = np.zeros_like(H)
        U[:, np.arange(k), np.arange(k)] = np.sqrt(np.maximum(d, 0.0))
        return U
    if fuse and loss.name == "cross_entropy" and out.ndim == 2:
        z = out - out.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        U = (np.eye(k, dtype=out.dtype)[None] - p[:, :, None]) * np.sqrt(p)[:, None, :]
        return U                         # column r = √p_r (e_r − p)
    w, Q = np.linalg.eigh(0.5 * (H + np.swapaxes(H, 1, 2)))
    return Q * np.sqrt(np.maximum(w, 0.0))[:, None, :]


def outer_product_vectors(model, loss, X, y, *, indices=None, sample_weight=None):
    """``(V, c)``: the outer-product vectors ``V[n, r] = X_{n,r} = J_nᵀ u_{n,r}`` (shape
    ``(N, R, |P|)``) and the per-sample factors ``c_n`` of the reduction (``1/N`` for the
    mean), so that ``G = Σ_n c_n Σ_r X_{n,r} X_{n,r}ᵀ`` (networks.md §7.4)."""
    loss, X, y, fuse = _prepare(model, loss, X, y)
    out = model.forward(X, logits=fuse)
    targets = loss.prepare_targets(out, y)
    U = output_factors(loss, out, targets, fuse)                 # (N, K, R)
    J = output_jacobians(model, X, logits=fuse, indices=indices)  # (N, K, P)
    V = np.einsum("nkr,nkp->nrp", U, J)
    c = _weights(loss, X.shape[0], None if sample_weight is None else
                 np.asarray(sample_weight, dtype=model.dtype), model.dtype)
    if not (np.isfinite(V).all() and np.isfinite(c).all()):
        raise _NotFiniteError("outer_product_vectors: the Jacobians or the loss curvature "
                              "hold NaN or inf")
    return V, c


def gauss_newton_matrix(model, loss, X, y, *, indices=None, sample_weight=None):
    """The Gauss-Newton matrix ``G = Σ_n c_n J_nᵀ Λ_n J_n`` over the coordinates P
    (networks.md §7.4), explicitly (``|P| × |P|``, PSD)."""
    V, c = outer_product_vectors(model, loss, X, y, indices=indices,
                                 sample_weight=sample_weight)
    return np.einsum("n,nrp,nrq->pq", c, V, V)


def woodbury_inverse(vectors, alpha: float = 1e-6, weights=None) -> np.ndarray:
    """``(αI + Σ_n c_n Σ_r X_{n,r} X_{n,r}ᵀ)⁻¹`` built recursively (pruning.md §5.3,
    D-27): ``H₀⁻¹ = α⁻¹I``, then for n = 1..N, r = 1..R
    ``H⁻¹ ← H⁻¹ − (H⁻¹X)(H⁻¹X)ᵀ / (1/c_n + XᵀH⁻¹X)`` (``1/c_n = N`` for the mean).

    ``vectors``: ``(N, R, P)`` or ``(N, P)``; ``weights``: ``c_n`` (default ``1/N``).
    Float64; the result is symmetrised."""
    V = np.asarray(vectors, dtype=np.float64)
    if V.ndim == 2:
        V = V[:, None, :]
    if V.ndim != 3:
        raise ShapeError(f"woodbury_inverse: vectors must have shape (N, R, P) or (N, P), "
                         f"got {V.shape}")
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise SingularHessianError(f"woodbury_inverse: the damping alpha must be > 0 "
                                   f"(H₀⁻¹ = α⁻¹I), got {alpha!r}")
    n = V.shape[0]
    c = np.full(n, 1.0 / max(n, 1)) if weights is None else \
        np.broadcast_to(np.asarray(weights, dtype=np.float64), (n,))
    if not (np.isfinite(V).all() and np.isfinite(c).all()):
        raise _NotFiniteError("woodbury_inverse: the vectors hold NaN or inf")
    Hinv = np.eye(V.shape[2]) / alpha
    for s in range(n):
        if c[s] <= 0:
            continue
        inv_c = 1.0 / c[s]
        for x in V[s]:
            hx = Hinv @ x
            Hinv -= np.outer(hx, hx) / (inv_c + x @ hx)
    return 0.5 * (Hinv + Hinv.T)


def outer_product_inverse(model, loss, X, y, *, alpha: float = 1e-6, indices=None,
                          sample_weight=None) -> np.ndarray:
    """The OBS default inverse Hessian (pruning.md §5.3 item 1, D-27): the outer-product
    approximation over the coordinates P, damped by α, inverted recursively."""
    V, c = outer_product_vectors(model, loss, X, y, indices=indices,
                                 sample_weight=sample_weight)
    return woodbury_inverse(V, alpha, c)


def hessian_block(model, loss, X, y, indices, *, method: str = "rop",
                  sample_weight=None) -> np.ndarray:
    """``H[P, P]``: the rows and columns of the exact Hessian for the coordinates P, in
    that order (networks.md §7.3 ``params=``), from |P| HVPs, symmetrised."""
    if not model.built:
        _prepare(model, loss, X, y)
    idx = _indices(model, indices)
    e = np.zeros(_n_theta(model), dtype=model.dtype)
    H = np.empty((idx.size, idx.size), dtype=np.float64)
    for col, i in enumerate(idx):
        e[i] = 1.0
        H[:, col] = hvp(model, loss, X, y, e, method=method, sample_weight=sample_weight)[idx]
        e[i] = 0.0
    return 0.5 * (H + H.T)


def invert_spd(H, *, component: str = "invert_spd") -> np.ndarray:
    """The inverse of a symmetric positive-definite matrix by Cholesky; raises
    :class:`SingularHessianError` (with the smallest eigenvalue) when it is not PD and
    :class:`~corenet.NotFiniteError` when it holds NaN or inf."""
    import scipy.linalg

    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ShapeError(f"{component}: expected a square matrix, got shape {H.shape}")
    if not np.isfinite(H).all():
        raise _NotFiniteError(f"{component}: the Hessian holds NaN or inf")
    if H.shape[0] == 0:
        return H.copy()
    H = 0.5 * (H + H.T)
    try:
        factor = scipy.linalg.cho_factor(H, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        low = float(np.linalg.eigvalsh(H)[0])
        raise SingularHessianError(
            f"{component}: the Hessian ({H.shape[0]}×{H.shape[0]}) is not positive definite "
            f"(smallest eigenvalue {low:.3g}); add damping alpha > {max(-low, 0.0):.3g} or use "
            f"the damped outer-product approximation") from None
    pivots = np.diag(factor[0]) ** 2
    scale = max(float(np.abs(np.diag(H)).max()), np.finfo(np.float64).tiny)
    if pivots.min() <= H.shape[0] * np.finfo(np.float64).eps * scale:
        raise SingularHessianError(
            f"{component}: the Hessian ({H.shape[0]}×{H.shape[0]}) is numerically singular "
            f"(smallest Cholesky pivot {pivots.min():.3g}, largest diagonal {scale:.3g}); add "
            f"damping alpha > 0")
    inv = scipy.linalg.cho_solve(factor, np.eye(H.shape[0]), check_finite=False)
    if not np.isfinite(inv).all():
        raise SingularHessianError(f"{component}: the Hessian is numerically singular")
    return 0.5 * (inv + inv.T)


def inverse_hessian(model, loss, X, y, *, alpha: float = 0.0, indices=None,
                    method: str = "rop", sample_weight=None) -> np.ndarray:
    """``(H[P, P] + αI)⁻¹`` for the exact Hessian where it is positive definite; raises
    :class:`SingularHessianError` otherwise (away from a minimum the exact Hessian is
    often indefinite, TV-HESS-01)."""
    H = hessian_block(model, loss, X, y, _indices(model, indices), method=method,
                      sample_weight=sample_weight).astype(np.float64)
    return invert_spd(H + float(alpha) * np.eye(H.shape[0]), component="inverse_hessian")


def clipped_inverse(H, alpha: float):
    """``(Q max(Λ, α) Qᵀ)⁻¹``: eigenvalues below α raised to α, then inverted
    (pruning.md §5.3 item 3: forced positive definiteness). Returns ``(H_pd, H_pd⁻¹)``."""
    H = np.asarray(H, dtype=np.float64)
    if not np.isfinite(H).all():
        raise _NotFiniteError("clipped_inverse: the Hessian holds NaN or inf")
    alpha = float(alpha)
    if not alpha > 0:
        raise SingularHessianError(f"clipped_inverse: alpha must be > 0, got {alpha!r}")
    w, Q = np.linalg.eigh(0.5 * (H + H.T))
    w = np.maximum(w, alpha)
    return (Q * w) @ Q.T, (Q / w) @ Q.T


def inverse_downdate(Hinv, q: int) -> np.ndarray:
    """The OBS downdate (pruning.md §5.4, D-27):
    ``H⁻¹ ← H⁻¹ − H⁻¹[:, q] H⁻¹[q, :] / [H⁻¹]_qq``, then row and column q removed. The
    result equals the inverse of H without row and column q (Schur complement)."""
    Hinv = np.asarray(Hinv, dtype=np.float64)
    m = Hinv.shape[0]
    if Hinv.ndim != 2 or Hinv.shape[1] != m:
        raise ShapeError(f"inverse_downdate: expected a square matrix, got {Hinv.shape}")
    if not 0 <= int(q) < m:
        raise ShapeError(f"inverse_downdate: q must be in [0, {m - 1}], got {q}")
    col = Hinv[:, q]
    if not col[q] > 0:
        raise SingularHessianError(f"inverse_downdate: [H⁻¹]_qq = {col[q]!r} is not positive")
    out = Hinv - np.outer(col, col) / col[q]
    keep = np.arange(m) != q
    return np.ascontiguousarray(out[np.ix_(keep, keep)])


def inverse_quality(Hinv, H) -> float:
    """``r = ‖I − H⁻¹H‖_F / √|P|`` (pruning.md §5.5 heuristic 3)."""
    Hinv, H = np.asarray(Hinv, dtype=np.float64), np.asarray(H, dtype=np.float64)
    if Hinv.shape != H.shape:
        raise ShapeError(f"inverse_quality: shapes differ: {Hinv.shape} and {H.shape}")
    m = H.shape[0]
    if m == 0:
        return 0.0
    return float(np.linalg.norm(np.eye(m) - Hinv @ H) / np.sqrt(m))
