"""Layer-wise OBS (``pruner:layerwise_obs``) for networks too large for the full Hessian.

For a linear map ``S = W x̃`` (dense: ``x̃ = [x, 1]``; convolution: ``x̃`` = an input patch,
C_in·k_h·k_w values, plus 1) the layer-wise objective
``E(Ŵ) = (1/M) Σ_m ‖(Ŵ − W) x̃_m‖²`` over the M inputs the layer sees on the pruning data
(M = samples × output positions for a convolution) has the Hessian ``H = (2/M) Σ x̃ x̃ᵀ``
per output row, the same for every row (Dong, Chen & Pan 2017, "layer-wise OBS";
Frantar & Alistarh 2022, "Optimal Brain Compression"): the full Hessian of the layer is
block-diagonal with identical d×d blocks. OBS on it (pruning.md §5.1, §5.4) then costs
O(d²) per deletion instead of O(n_θ²). Layers are pruned in model order; each one's
inputs come from the model with the earlier layers already pruned.

Algorithms (``algorithm=``):

* ``"greedy"`` — exact OBS on the block-diagonal Hessian: at every step the weight of
  smallest saliency ``w²/(2[H_r⁻¹]_qq)`` over all rows r of the layer is deleted, the
  other weights of its row corrected by ``δw = −(w_q/[H_r⁻¹]_qq) H_r⁻¹ e_q`` and that row's
  inverse downdated (each row keeps its own H_r⁻¹). Memory rows·d², time deletions·d².
  On a layer with one output row this is exactly OBS (TV-PR-03).
* ``"sequential"`` — OBS with a fixed elimination order (Frantar & Alistarh 2023,
  "SparseGPT"): columns are visited left to right in blocks of ``block_size``; the
  saliencies ``w²/[U_jj]²`` (U the upper Cholesky factor of H⁻¹, whose rows are the OBS
  corrections of the sequence of inverses H_{j:,j:}⁻¹) choose the weights to delete in
  the block, and each deleted weight's error is propagated to the columns after it.
  O(d³ + rows·d²) per layer — LeNet-300-100 or LeNet-5 in seconds.
* ``"auto"`` (default) — greedy when rows·d² ≤ 2·10⁷ and deletions·d² ≤ 2·10⁹, else
  sequential.

Damping: ``H + λI`` with ``λ = damping · mean(diag H)`` (default 0.01). Inputs that are
always zero on the pruning data have ``H_jj = 0``: their weights then have near-zero
saliency and go first, which costs nothing on those data. Biases take part as
compensators (last column) and are never deleted.

Targets: ``target_sparsity``/``n_prune``/``target_weights``/``amount``, spread over the
layers uniformly (``allocation="uniform"``: the same fraction of each layer's unpruned
weights) or as a global magnitude ranking would (``allocation="global_magnitude"``: the
per-layer counts of the smallest ``|w|`` over the whole network; the layer-wise OBS
then chooses *which* weights and corrects the others), or ``layer_sparsity={key: s}``. Supported layers: ``dense`` and ``conv1d``/``conv2d`` with ``groups=1``; other
prunable parameters are skipped with a warning.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, NotFiniteError
from .base import Pruner, warn_once


def _layer_kind(layer):
    from ..layers.conv import _Conv
    from ..layers.core import Dense

    if isinstance(layer, Dense):
        return "dense"
    if isinstance(layer, _Conv) and not layer.transpose and layer.groups == 1:
        return "conv"
    return None


def conv_patches(layer, x) -> np.ndarray:
    """im2col: the input patches of a conv1d/conv2d layer, shape
    ``(N·positions, C_in·Πk)`` in the order of ``W.reshape(C_out, -1)``."""
    nd = layer.nd
    pads = [(0, 0), (0, 0)] + [tuple(p) for p in layer._pad]
    xp = np.pad(x, pads)
    k, s, d = layer.kernel_size, layer.stride, layer.dilation
    eff = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
    win = np.lib.stride_tricks.sliding_window_view(xp, eff, axis=tuple(range(2, 2 + nd)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, ss) for ss in s) + \
        tuple(slice(None, None, dd) for dd in d)
    win = win[sl]
    out = layer.output_shape(layer.input_shape)[1:]
    win = win[(slice(None), slice(None)) + tuple(slice(0, o) for o in out)]
    axes = (0,) + tuple(range(2, 2 + nd)) + (1,) + tuple(range(2 + nd, 2 + 2 * nd))
    return np.ascontiguousarray(win.transpose(axes)).reshape(-1, x.shape[1] * int(np.prod(k)))


def _layer_rows(layer, x):
    """The rows x̃ (without the 1) that the layer's weight rows see."""
    return x if _layer_kind(layer) == "dense" else conv_patches(layer, x)


def layer_hessian(model, layer, X, *, bias: bool = True, batch_size: int = 256):
    """``H = (2/M) Σ x̃ x̃ᵀ`` of ``layer`` on the data ``X`` (x̃ with a trailing 1 when
    ``bias``), float64, shape (d, d) with d = inputs per row (+1). Eval mode; the inputs
    are those the layer receives inside ``model``."""
    X = model.check_input(np.ascontiguousarray(X), "layer_hessian input")
    model.eval()
    A, s, M = None, None, 0
    for i in range(0, X.shape[0], batch_size):
        model.forward(X[i:i + batch_size])
        rows = _layer_rows(layer, layer._x).astype(np.float64)
        A = rows.T @ rows if A is None else A + rows.T @ rows
        s = rows.sum(axis=0) if s is None else s + rows.sum(axis=0)
        M += rows.shape[0]
    if not np.isfinite(A).all():
        raise NotFiniteError(f"layer_hessian: the inputs of {layer.label} hold NaN or inf")
    if bias:
        d = A.shape[0]
        H = np.empty((d + 1, d + 1))
        H[:d, :d], H[:d, d], H[d, :d], H[d, d] = A, s, s, M
    else:
        H = A
    return 2.0 * H / max(M, 1)


def _damped(H, damping):
    diag = np.diag(H)
    pos = diag[diag > 0]
    lam = damping * (pos.mean() if pos.size else 1.0)
    if lam <= 0:
        return H
    return H + lam * np.eye(H.shape[0])


def _invert(H, label):
    from .. import curvature

    return curvature.invert_spd(H, component=f"pruner 'layerwise_obs' ({label})")


def greedy_rows(W, cand, Hinv, k):
    """Exact OBS on a block-diagonal Hessian: ``k`` deletions among ``cand`` (rows × d),
    each time the smallest ``w²/(2[H_r⁻¹]_qq)`` over all rows (ties → lower row-major
    index); the deleted weight's row is corrected by ``−(w_q/[H_r⁻¹]_qq) H_r⁻¹ e_q`` and
    its inverse downdated. ``Hinv``: one (d, d) inverse shared by all rows, or one per row
    (R, d, d). Returns ``(W, deleted mask, saliencies of the deletions)``."""
    R, d = W.shape
    W = np.array(W, dtype=np.float64)
    Hs = np.repeat(Hinv[None], R, axis=0) if Hinv.ndim == 2 else np.array(Hinv)
    deleted = np.zeros((R, d), dtype=bool)
    sal = np.full((R, d), np.inf)

    def refresh(r):
        dg = np.diagonal(Hs[r])
        ok = cand[r] & ~deleted[r] & (dg > 0)
        sal[r] = np.where(ok, W[r] ** 2 / (2.0 * np.where(ok, dg, 1.0)), np.inf)

    for r in range(R):
        refresh(r)
    losses = []
    for _ in range(k):
        flat = int(np.argmin(sal))
        r, q = divmod(flat, d)
        if not np.isfinite(sal[r, q]):
            break
        losses.append(float(sal[r, q]))
        h = Hs[r, :, q].copy()
        W[r] -= (W[r, q] / h[q]) * h
        W[r, q] = 0.0
        Hs[r] -= np.outer(h, h) / h[q]
        deleted[r, q] = True
        refresh(r)
    return W, deleted, losses


def sequential_rows(W, cand, fixed, Hinv, n_target, block_size=128):
    """OBS with a fixed column order (SparseGPT): prune to ``n_target`` entries of
    ``cand ∪ fixed`` zero (``fixed`` = already pruned entries, always counted), blocks of
    ``block_size`` columns. Returns ``(W, deleted mask)``."""
    import scipy.linalg

    R, d = W.shape
    W = W.copy()
    U = scipy.linalg.cholesky(Hinv, lower=False)            # Hinv = Uᵀ U
    deleted = np.zeros((R, d), dtype=bool)
    total_c = np.cumsum(np.concatenate([[0], (cand | fixed).sum(axis=0)]))
    grand = total_c[-1]
    frac = n_target / grand if grand else 0.0
    selected = 0
    for i1 in range(0, d, block_size):
        i2 = min(i1 + block_size, d)
        W1 = W[:, i1:i2].copy()
        U1 = U[i1:i2, i1:i2]
        c1, f1 = cand[:, i1:i2], fixed[:, i1:i2]
        want = int(round(frac * total_c[i2])) - selected
        n_fixed = int(f1.sum())
        want = min(max(want, n_fixed), int((c1 | f1).sum()))
        score = W1 ** 2 / np.diag(U1)[None, :] ** 2
        score = np.where(f1, -np.inf, np.where(c1, score, np.inf))
        order = np.argsort(score, axis=None, kind="stable")[:want]
        mask1 = np.zeros(W1.shape, dtype=bool)
        mask1.flat[order] = True
        Err1 = np.zeros_like(W1)
        for i in range(i2 - i1):
            w = W1[:, i]
            q = np.where(mask1[:, i], 0.0, w)
            err = (w - q) / U1[i, i]
            W1[:, i:] -= np.outer(err, U1[i, i:])
            W1[:, i] = q
            Err1[:, i] = err
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
        deleted[:, i1:i2] = mask1
        selected += want
    return W, deleted


class LayerwiseOBSPruner(Pruner):
    """OBS with per-layer, per-row Hessians ``H = (2/M) Σ x̃ x̃ᵀ`` (module docstring).

    Options: ``algorithm`` (``"auto"``, ``"greedy"``, ``"sequential"``), ``damping``
    (0.01, relative to the mean diagonal), ``block_size`` (128), ``allocation``
    (``"uniform"`` or ``"global_magnitude"``), ``layer_sparsity``
    (``{layer key: fraction}``), ``max_samples`` (pruning data used for the Hessians,
    default all), ``batch_size`` (256, forward passes); targets, rounds, retraining and
    stop criteria of :class:`~corenet.pruners.Pruner` (default ``target_sparsity`` or
    ``amount``). Records per layer: ``layer``, ``pruned``, ``algorithm``,
    ``relative_error`` = ``tr(ΔW H ΔWᵀ)/tr(W H Wᵀ)`` (the layer-output error).
    """

    name = "layerwise_obs"
    needs_loss = False

    def __init__(self, amount=0.2, *, algorithm: str = "auto", damping: float = 0.01,
                 block_size: int = 128, layer_sparsity=None, allocation: str = "uniform",
                 max_samples=None, batch_size: int = 256, **kwargs):
        super().__init__(amount=amount, **kwargs)
        who = "pruner 'layerwise_obs'"
        if algorithm not in ("auto", "greedy", "sequential"):
            raise HyperparameterError(f"{who}: algorithm must be 'auto', 'greedy' or "
                                      f"'sequential', got {algorithm!r}")
        if not (np.isfinite(damping) and damping >= 0):
            raise HyperparameterError(f"{who}: damping must be >= 0, got {damping!r}")
        if int(block_size) < 1:
            raise HyperparameterError(f"{who}: block_size must be >= 1, got {block_size!r}")
        if layer_sparsity is not None:
            for key, s in dict(layer_sparsity).items():
                if not 0.0 <= float(s) <= 1.0:
                    raise HyperparameterError(f"{who}: layer_sparsity[{key!r}] must be in "
                                              f"[0, 1], got {s!r}")
        self.algorithm, self.damping, self.block_size = algorithm, float(damping), \
            int(block_size)
        if allocation not in ("uniform", "global_magnitude"):
            raise HyperparameterError(f"{who}: allocation must be 'uniform' or "
                                      f"'global_magnitude', got {allocation!r}")
        self.allocation = allocation
        self.layer_sparsity = None if layer_sparsity is None else dict(layer_sparsity)
        self.max_samples, self.batch_size = max_samples, int(batch_size)

    def get_config(self) -> dict:
        return {**super().get_config(), "algorithm": self.algorithm, "damping": self.damping,
                "block_size": self.block_size, "layer_sparsity": self.layer_sparsity,
                "allocation": self.allocation,
                "max_samples": self.max_samples, "batch_size": self.batch_size}

    def _layers(self, model):
        params = {id(p) for p in self._params(model)}
        out = []
        for layer in model.layers_in_order():
            mine = [p for p in layer.parameters() if id(p) in params]
            if not mine:
                continue
            if _layer_kind(layer) is None or mine != [layer.W]:
                warn_once(f"pruner 'layerwise_obs': {layer.label} is not a dense or "
                          f"conv1d/conv2d (groups=1) weight; skipped")
                continue
            out.append(layer)
        return out

    def _allocation(self, layers, k):
        counts = [(layer.W.size, layer.W.count_nonzero_weights()) for layer in layers]
        if self.layer_sparsity is not None:
            out = []
            for layer, (n, u) in zip(layers, counts):
                s = self.layer_sparsity.get(layer.key)
                out.append(0 if s is None else max(int(round(s * n)) - (n - u), 0))
            return out
        unpruned = sum(u for _, u in counts)
        if unpruned == 0:
            return [0] * len(layers)
        if self.allocation == "global_magnitude":
            # the per-layer counts a global magnitude ranking would prune
            scores = np.concatenate([np.where(layer.W.mask.ravel() != 0,
                                              np.abs(layer.W.data.ravel()), np.inf)
                                     for layer in layers])
            owner = np.concatenate([np.full(layer.W.size, i) for i, layer in
                                    enumerate(layers)])
            pick = np.argsort(scores, kind="stable")[:k]
            return np.bincount(owner[pick], minlength=len(layers)).tolist()
        f = k / unpruned
        cum, out, done = 0, [], 0
        for _, u in counts:                  # cumulative rounding: the counts sum to k
            cum += u
            target = int(round(f * cum))
            out.append(min(target - done, u))
            done += out[-1]
        return out

    def step(self, ctx, k: int) -> dict:
        model, X = ctx["model"], ctx["X"]
        if X is None:
            raise ValueError("pruner 'layerwise_obs': no pruning data (pass data=(X, y))")
        if self.max_samples is not None:
            X = X[:int(self.max_samples)]
        layers = self._layers(model)
        plan = self._allocation(layers, k)
        records, total = [], 0
        for layer, k_l in zip(layers, plan):
            if k_l <= 0:
                continue
            rec = self._prune_layer(model, layer, X, k_l, ctx.get("optimizer"))
            records.append(rec)
            total += rec["pruned"]
        return {"pruned": total, "layers": records}

    def _run(self, ctx) -> None:
        if self.layer_sparsity is not None and self.n_prune is None and \
                self.target_sparsity is None and self.target_weights is None:
            ctx["records"].append(self.step(ctx, 0))
            ctx["rounds"] = 1
            self._retrain(ctx)
            return
        super()._run(ctx)

    def _prune_layer(self, model, layer, X, k, optimizer):
        W = layer.W
        bias = layer.b is not None and layer.b.trainable
        H = layer_hessian(model, layer, X, bias=bias, batch_size=self.batch_size)
        rows = W.shape[0]
        Wm = W.data.reshape(rows, -1).astype(np.float64)
        mask = W.mask.reshape(rows, -1) != 0
        d_w = Wm.shape[1]
        if bias:
            Wm = np.concatenate([Wm, layer.b.data.astype(np.float64)[:, None]], axis=1)
        d = Wm.shape[1]
        cand = np.zeros((rows, d), dtype=bool)
        cand[:, :d_w] = mask
        fixed = np.zeros((rows, d), dtype=bool)
        fixed[:, :d_w] = ~mask
        Hd = _damped(H, self.damping)
        Hinv = _invert(Hd, layer.label)
        algorithm = self.algorithm
        if algorithm == "auto":
            algorithm = "greedy" if rows * d * d <= 2e7 and k * d * d <= 2e9 else "sequential"
        if algorithm == "greedy":
            # earlier deletions: downdate each row's inverse (their weights are already 0)
            Wn, deleted = self._greedy(Wm, cand, fixed, Hinv, k)
        else:
            n_target = int(fixed.sum()) + k
            Wn, deleted = sequential_rows(Wm, cand, fixed, Hinv, n_target, self.block_size)
            deleted &= cand
        if not np.isfinite(Wn).all():
            raise NotFiniteError(f"pruner 'layerwise_obs': {layer.label}: the corrected "
                                 f"weights hold NaN or inf")
        dW = Wn - Wm
        denom = float(np.einsum("ij,jk,ik->", Wm, H, Wm))
        rel = float(np.einsum("ij,jk,ik->", dW, H, dW)) / denom if denom > 0 else 0.0
        new_mask = (mask & ~deleted[:, :d_w]).astype(W.dtype)
        W.data[...] = Wn[:, :d_w].reshape(W.shape)
        W.mask = new_mask.reshape(W.shape)
        if optimizer is not None and hasattr(optimizer, "zero_state"):
            optimizer.zero_state(W, W.mask)
        if bias:
            layer.b.data[...] = Wn[:, d_w]
        return {"layer": layer.key, "pruned": int(deleted[:, :d_w].sum()),
                "algorithm": algorithm, "relative_error": rel,
                "sparsity": 1.0 - W.count_nonzero_weights() / W.size}

    @staticmethod
    def _greedy(Wm, cand, fixed, Hinv, k):
        if not fixed.any():
            return greedy_rows(Wm, cand, Hinv, k)[:2]
        Hs = np.repeat(Hinv[None], Wm.shape[0], axis=0)
        for r in range(Wm.shape[0]):        # earlier deletions: downdate that row's inverse
            for q in np.flatnonzero(fixed[r]):
                h = Hs[r, :, q].copy()
                if h[q] > 0:
                    Hs[r] -= np.outer(h, h) / h[q]
        return greedy_rows(Wm, cand, Hs, k)[:2]
