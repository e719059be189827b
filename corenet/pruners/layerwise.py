"""Layer-wise OBS (``pruner:layerwise_obs``) for networks too large for the full Hessian.

For a linear map ``S = W x̃`` (dense: ``x̃ = [x, 1]``; convolution: ``x̃`` = an input patch,
C_in·k_h·k_w values, plus 1) the layer-wise objective
``E(Ŵ) = (1/M) Σ_m ‖(Ŵ − W) x̃_m‖²`` over the M inputs the layer sees on the pruning data
(M = samples × output positions for a convolution) has the Hessian ``H = (2/M) Σ x̃ x̃ᵀ``
per output row, the same for every row (Dong, Chen & Pan 2017, "layer-wise OBS";
Frantar & Alistarh 2022, "Optimal Brain Compression"): the full Hessian of the layer is
block-diagonal with identical d×d blocks. OBS on it (pruning.md §5.1, §5.4) then costs
O(d²) per deletion instead of O(n_θ²). Layers are pruned in model order; each one's
inputs come from the model with the earlier layers already pruned. With
``compensate_upstream=True`` the target of a layer is instead its output in the network
*before* this pruning step, ``W x̃_ref``: ``E(Ŵ) = (1/M) Σ ‖Ŵx̃ − W x̃_ref‖²`` has the same
Hessian, and its unconstrained optimum ``w* = W C H⁻¹`` (``C = (2/M) Σ x̃_ref x̃ᵀ``)
already corrects the error passed on by the pruned layers before it; pruning then works
around ``w*`` (the damping acts as a proximal term towards W: ``w*(H + λI) = W(C + λI)``).
It brings the pruned network closer to the unpruned one *on the pruning data*; on
LeNet-300-100 at 90-95 % the test accuracy did not change beyond noise and the test loss
rose slightly (the correction also copies what the network memorised of those data),
so it is off by default.

Algorithms (``algorithm=``; :mod:`corenet.pruners.rowobs`):

* ``"greedy"`` — exact OBS on the block-diagonal Hessian: at every step the weight of
  smallest saliency ``w²/(2[H_r⁻¹]_qq)`` over all rows r of the layer is deleted, the
  other weights of its row corrected by ``δw = −(w_q/[H_r⁻¹]_qq) H_r⁻¹ e_q`` and that row's
  inverse downdated (each row keeps its own H_r⁻¹). Memory rows·d², time deletions·d².
  On a layer with one output row this is exactly OBS (TV-PR-03).
* ``"stepwise"`` — the same saliencies and exact corrections in groups: each group is
  the layer-wide smallest saliencies, computed with every row's exact
  inverse ``H_KK⁻¹`` of its kept set K, then every row is refitted exactly on its kept
  set (``w_K = b_K H_KK⁻¹``, the least-squares optimum of the layer objective for that
  mask) and the inverses recomputed; the kept weights shrink geometrically, by at most
  ``step_fraction`` (0.3) per group (or in exactly ``steps`` groups). One deletion per
  group is greedy OBS; time about rows·Σ_t |K_t|³ (90 % of LeNet-300-100's first
  layer: 8 groups, a few seconds).
* ``"sequential"`` — OBS with a fixed elimination order (Frantar & Alistarh 2023,
  "SparseGPT"): columns are visited left to right in blocks of ``block_size``; the
  saliencies ``w²/[U_jj]²`` (U the upper Cholesky factor of H⁻¹, whose rows are the OBS
  corrections of the sequence of inverses H_{j:,j:}⁻¹) choose the weights to delete in
  the block, and each deleted weight's error is propagated to the columns after it.
  O(d³ + rows·d²) per layer. Fast, but at high sparsity far from OBS: every block of
  columns gets the same share of the deletions, a column's deletions are chosen before
  those of the columns after it, and earlier columns are never corrected — on the
  first layer of LeNet-300-100 at 92.5 % its layer-output error is about 4× that of
  ``"stepwise"`` (and above that of the magnitude mask refitted by least squares).
* ``"auto"`` (default) — greedy when rows·d² ≤ 2·10⁷ and deletions·d² ≤ 2·10⁹,
  stepwise when rows·d³ ≤ 2·10¹¹, else sequential.

Damping: ``H + λI`` with ``λ = damping · mean(diag H)`` (default 0.01). Inputs that are
always zero on the pruning data have ``H_jj = 0``: their weights then have near-zero
saliency and go first, which costs nothing on those data. Biases take part as
compensators (last column) and are never deleted.

Targets: ``target_sparsity``/``n_prune``/``target_weights``/``amount``, spread over the
layers uniformly (``allocation="uniform"``: the same fraction of each layer's unpruned
weights) or as a global magnitude ranking would (``allocation="global_magnitude"``: the
per-layer counts of the smallest ``|w|`` over the whole network; the layer-wise OBS
then chooses *which* weights and corrects the others), or ``layer_sparsity={key: s}``.
Supported layers: ``dense`` and ``conv1d``/``conv2d`` with ``groups=1``; other prunable
parameters are skipped with a warning.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, NotFiniteError
from .base import Pruner, warn_once
from .rowobs import (greedy_rows, refit_rows, sequential_rows,  # noqa: F401
                     stepwise_rows)


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
    return layer_moments(model, layer, X, bias=bias, batch_size=batch_size)[0]


def layer_moments(model, layer, X, *, reference=None, bias: bool = True,
                  batch_size: int = 256):
    """``(A, C, D)``: ``A = (2/M) Σ x̃ x̃ᵀ`` over the inputs x̃ ``layer`` receives inside
    ``model`` (the row Hessian, :func:`layer_hessian`) and, when ``reference`` — a list of
    ``(parameter, data)`` pairs, the parameters of a reference network such as the model
    before pruning — is given, ``C = (2/M) Σ x̃_ref x̃ᵀ`` and ``D = (2/M) Σ x̃_ref x̃_refᵀ``
    with x̃_ref the inputs of the same samples in the reference network (else ``C = D =
    None``). float64, (d, d); eval mode; the model's parameters are left as they were."""
    X = model.check_input(np.ascontiguousarray(X), "layer_moments input")
    model.eval()

    def rows_now(xb):
        model.forward(xb)
        r = _layer_rows(layer, layer._x).astype(np.float64)
        return np.hstack([r, np.ones((r.shape[0], 1))]) if bias else r

    current = None if reference is None else [(p, p.data.copy()) for p, _ in reference]
    A = C = D = None
    M = 0
    try:
        for i in range(0, X.shape[0], batch_size):
            xb = X[i:i + batch_size]
            rows = rows_now(xb)
            A = rows.T @ rows if A is None else A + rows.T @ rows
            M += rows.shape[0]
            if reference is not None:
                for p, data in reference:
                    p.data[...] = data
                ref = rows_now(xb)
                for p, data in current:
                    p.data[...] = data
                C = ref.T @ rows if C is None else C + ref.T @ rows
                D = ref.T @ ref if D is None else D + ref.T @ ref
    finally:
        if current is not None:
            for p, data in current:
                p.data[...] = data
    out = [None if m is None else 2.0 * m / max(M, 1) for m in (A, C, D)]
    if not all(m is None or np.isfinite(m).all() for m in out):
        raise NotFiniteError(f"layer_moments: the inputs of {layer.label} hold NaN or inf")
    return tuple(out)


def _damping(H, damping) -> float:
    """``λ = damping · mean(diag H)`` over the positive diagonal entries (1 if none)."""
    diag = np.diag(H)
    pos = diag[diag > 0]
    return float(damping * (pos.mean() if pos.size else 1.0))


def _damped(H, damping):
    lam = _damping(H, damping)
    return H + lam * np.eye(H.shape[0]) if lam > 0 else H


def _invert(H, label):
    from .. import curvature

    return curvature.invert_spd(H, component=f"pruner 'layerwise_obs' ({label})")


def _choose(algorithm, rows, d, k):
    """``"auto"``: greedy when rows·d² ≤ 2·10⁷ and k·d² ≤ 2·10⁹, stepwise when
    rows·d³ ≤ 2·10¹¹, else sequential."""
    if algorithm != "auto":
        return algorithm
    if rows * d * d <= 2e7 and k * d * d <= 2e9:
        return "greedy"
    return "stepwise" if rows * float(d) ** 3 <= 2e11 else "sequential"


class LayerwiseOBSPruner(Pruner):
    """OBS with per-layer, per-row Hessians ``H = (2/M) Σ x̃ x̃ᵀ`` (module docstring).

    Options: ``algorithm`` (``"auto"``, ``"greedy"``, ``"stepwise"``, ``"sequential"``),
    ``step_fraction`` (0.3, the largest fraction of a layer's kept weights one group of
    ``"stepwise"`` deletes) or ``steps`` (None; an exact number of groups), ``damping``
    (0.01, relative to the mean diagonal), ``compensate_upstream`` (False: each layer's
    target is its own output on the already pruned inputs; True: its output in the
    network before this pruning step, so that it also compensates the error of the
    pruned layers before it),
    ``block_size`` (128, ``"sequential"``), ``allocation`` (``"uniform"`` or
    ``"global_magnitude"``), ``layer_sparsity`` (``{layer key: fraction}``),
    ``max_samples`` (pruning data used for the Hessians, default all), ``batch_size``
    (256, forward passes); targets, rounds, retraining and stop criteria of
    :class:`~corenet.pruners.Pruner` (default ``target_sparsity`` or ``amount``).
    Records per layer: ``layer``, ``pruned``, ``algorithm``, ``relative_error`` =
    ``‖Ŵx̃ − W x̃_ref‖²/‖W x̃_ref‖²`` summed over the pruning data (the layer-output error
    against its target; ``tr(ΔW H ΔWᵀ)/tr(W H Wᵀ)`` without upstream compensation).
    """

    name = "layerwise_obs"
    needs_loss = False

    def __init__(self, amount=0.2, *, algorithm: str = "auto", damping: float = 0.01,
                 step_fraction: float = 0.3, steps=None, compensate_upstream: bool = False,
                 block_size: int = 128, layer_sparsity=None, allocation: str = "uniform",
                 max_samples=None, batch_size: int = 256, **kwargs):
        super().__init__(amount=amount, **kwargs)
        who = "pruner 'layerwise_obs'"
        if algorithm not in ("auto", "greedy", "stepwise", "sequential"):
            raise HyperparameterError(f"{who}: algorithm must be 'auto', 'greedy', "
                                      f"'stepwise' or 'sequential', got {algorithm!r}")
        if not (np.isfinite(damping) and damping >= 0):
            raise HyperparameterError(f"{who}: damping must be >= 0, got {damping!r}")
        for key, v in (("block_size", block_size), ("steps", steps)):
            if v is not None and (isinstance(v, bool) or int(v) != v or int(v) < 1):
                raise HyperparameterError(f"{who}: {key} must be an integer >= 1, got {v!r}")
        if not 0.0 < float(step_fraction) < 1.0:
            raise HyperparameterError(f"{who}: step_fraction must be in (0, 1), got "
                                      f"{step_fraction!r}")
        if layer_sparsity is not None:
            for key, s in dict(layer_sparsity).items():
                if not 0.0 <= float(s) <= 1.0:
                    raise HyperparameterError(f"{who}: layer_sparsity[{key!r}] must be in "
                                              f"[0, 1], got {s!r}")
        if allocation not in ("uniform", "global_magnitude"):
            raise HyperparameterError(f"{who}: allocation must be 'uniform' or "
                                      f"'global_magnitude', got {allocation!r}")
        self.algorithm, self.damping, self.block_size = algorithm, float(damping), \
            int(block_size)
        self.steps = None if steps is None else int(steps)
        self.step_fraction = float(step_fraction)
        self.compensate_upstream = bool(compensate_upstream)
        self.allocation = allocation
        self.layer_sparsity = None if layer_sparsity is None else dict(layer_sparsity)
        self.max_samples, self.batch_size = max_samples, int(batch_size)

    def get_config(self) -> dict:
        return {**super().get_config(), "algorithm": self.algorithm, "damping": self.damping,
                "steps": self.steps, "step_fraction": self.step_fraction,
                "compensate_upstream": self.compensate_upstream,
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
        # the network before this step: each layer's reference outputs
        before = [(p, p.data.copy()) for p in model.parameters()] \
            if self.compensate_upstream else None
        records, total, changed = [], 0, False
        for layer, k_l in zip(layers, plan):
            if k_l <= 0:
                continue
            rec = self._prune_layer(model, layer, X, k_l, ctx.get("optimizer"),
                                    before if changed else None)
            records.append(rec)
            total += rec["pruned"]
            changed = True
        return {"pruned": total, "layers": records}

    def _run(self, ctx) -> None:
        if self.layer_sparsity is not None and self.n_prune is None and \
                self.target_sparsity is None and self.target_weights is None:
            ctx["records"].append(self.step(ctx, 0))
            ctx["rounds"] = 1
            self._retrain(ctx)
            return
        super()._run(ctx)

    def _prune_layer(self, model, layer, X, k, optimizer, reference=None):
        """OBS on ``layer``'s rows: delete ``k`` of its unpruned weights. ``reference``:
        the parameters of the network before the step (upstream compensation) or None."""
        W = layer.W
        bias = layer.b is not None and layer.b.trainable
        who = f"pruner 'layerwise_obs' ({layer.label})"
        A, C, D = layer_moments(model, layer, X, reference=reference, bias=bias,
                                batch_size=self.batch_size)
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
        lam = _damping(A, self.damping)
        Hd = A + lam * np.eye(d) if lam > 0 else A
        # rows of b = w* H: the target W x̃_ref (or W x̃) in the quadratic of rowobs
        B = Wm @ (C + lam * np.eye(d) if lam > 0 else C) if C is not None else Wm @ Hd
        algorithm = _choose(self.algorithm, rows, d, k)
        if algorithm == "stepwise":
            Wn, deleted = stepwise_rows(B, cand, fixed, Hd, k, self.steps,
                                        self.step_fraction, who)
        else:
            # the optimum on the current mask first (it moves only with a reference)
            W0 = Wm if C is None else refit_rows(Hd, B, ~fixed, who)[0]
            Hinv = _invert(Hd, layer.label)
            if algorithm == "greedy":
                Wn, deleted = self._greedy(W0, cand, fixed, Hinv, k)
            else:
                n_target = int(fixed.sum()) + k
                Wn, deleted = sequential_rows(W0, cand, fixed, Hinv, n_target,
                                              self.block_size)
                deleted &= cand
        if not np.isfinite(Wn).all():
            raise NotFiniteError(f"pruner 'layerwise_obs': {layer.label}: the corrected "
                                 f"weights hold NaN or inf")
        if C is None:
            dW = Wn - Wm
            denom = float(np.einsum("ij,jk,ik->", Wm, A, Wm))
            num = float(np.einsum("ij,jk,ik->", dW, A, dW))
        else:
            denom = float(np.einsum("ij,jk,ik->", Wm, D, Wm))
            num = float(np.einsum("ij,jk,ik->", Wn, A, Wn)
                        - 2.0 * np.einsum("ij,jk,ik->", Wm, C, Wn)) + denom
        rel = max(num, 0.0) / denom if denom > 0 else 0.0
        new_mask = (mask & ~deleted[:, :d_w]).astype(W.dtype)
        W.data[...] = (Wn[:, :d_w] * new_mask).reshape(W.shape)
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
