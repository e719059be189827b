"""OBS on the rows of one linear map with a shared row Hessian (the algorithms of
:class:`~corenet.pruners.LayerwiseOBSPruner`, spec pruning.md §5.1, §5.4).

Every row r of a layer's weight matrix (bias last) minimises the same quadratic
``E_r(w) = ½ (w − w*_r) H (w − w*_r)ᵀ`` with ``H = 2X̃X̃ᵀ/M + λI`` (the damped row Hessian of
layer-wise OBS) and ``w*_r`` the row's unconstrained optimum. Deleting a set P of entries
and refitting the kept set K exactly gives ``w_K = b_K H_KK⁻¹`` with ``b = w* H``; deleting
one more entry q of K then costs ``w_q² / (2[H_KK⁻¹]_qq)`` (the OBS saliency) and the
refit is the OBS correction ``−(w_q/[H_KK⁻¹]_qq) H_KK⁻¹e_q``.

* :func:`greedy_rows` — exact OBS, one deletion at a time over the whole layer, each row
  keeping its own downdated inverse (memory rows·d²).
* :func:`stepwise_rows` — the same saliencies and exact refits, but the deletions are
  made in layer-wide groups (the number of kept weights shrinking geometrically, by at
  most ``step_fraction`` per group) and each row's inverse is recomputed from ``H_KK``
  after a group: memory d², time about rows·Σ_t |K_t|³/1.5; one deletion per group is
  greedy OBS again.
* :func:`sequential_rows` — OBS with a fixed column order (SparseGPT): O(d³ + rows·d²),
  for layers too large for the others.
"""
from __future__ import annotations

import numpy as np

from ..errors import NotFiniteError


def _inverse_factor(A, component):
    """``U⁻¹`` for the upper Cholesky factor ``A = UᵀU`` of a symmetric positive-definite
    ``A`` (LAPACK potrf/trtri), so ``A⁻¹ = U⁻¹U⁻ᵀ``; on failure the checked
    :func:`corenet.curvature.invert_spd` raises its error (not PD, NaN/inf)."""
    import scipy.linalg.lapack as lapack

    c, info = lapack.dpotrf(A, lower=0, clean=1)
    if info == 0:
        inv, info = lapack.dtrtri(c, lower=0)
        if info == 0 and np.isfinite(inv).all():
            return inv
    from .. import curvature

    curvature.invert_spd(A, component=component)
    raise NotFiniteError(f"{component}: the Cholesky factor of the row Hessian is not "
                         f"finite")


def refit_rows(H, B, keep, component="refit_rows"):
    """The exact optimum of every row on its kept entries: ``W[r, K] = B[r, K] H_KK⁻¹``
    (K = ``keep[r]``, zero elsewhere) and ``D[r, K] = diag(H_KK⁻¹)`` (inf elsewhere).
    ``H`` (d, d) symmetric positive definite, ``B``/``keep`` (R, d). Rows with the same
    kept set share one factorization."""
    R, d = B.shape
    W = np.zeros((R, d))
    D = np.full((R, d), np.inf)
    groups: dict[bytes, list[int]] = {}
    for r in range(R):
        groups.setdefault(np.packbits(keep[r]).tobytes(), []).append(r)
    for rows in groups.values():
        K = np.flatnonzero(keep[rows[0]])
        if K.size == 0:
            continue
        Ui = _inverse_factor(H[np.ix_(K, K)], component)     # H_KK⁻¹ = Ui Uiᵀ
        idx = np.ix_(rows, K)
        W[idx] = (B[idx] @ Ui) @ Ui.T
        D[idx] = np.einsum("ij,ij->i", Ui, Ui)[None, :]
    return W, D


def stepwise_rows(B, cand, fixed, H, k, steps=None, step_fraction=0.3,
                  component="stepwise_rows"):
    """Delete ``k`` entries of ``cand`` (R, d) in groups: before each group every row is
    refitted exactly on its kept set (:func:`refit_rows`) and the group is the
    candidates of smallest OBS saliency ``w_q²/(2[H_KK⁻¹]_qq)`` over the whole layer
    (ties → lower row-major index). The kept candidates shrink geometrically from n to
    n − k, in ``steps`` groups, or (``steps=None``) in the fewest groups that delete at
    most ``step_fraction`` of the kept candidates each. ``B = w* H`` (R, d) holds the
    rows' unconstrained optima, ``fixed`` the entries already deleted (kept at zero).
    Returns ``(W, deleted mask)``; with ``steps ≥ k`` the deletions are those of greedy
    OBS (:func:`greedy_rows`)."""
    keep = ~fixed
    n0 = int((cand & keep).sum())
    k = min(int(k), n0)
    n_end = n0 - k
    if k == 0:
        steps = 0
    elif steps is None:
        steps = 1 if n_end == 0 else \
            int(np.ceil(np.log(n_end / n0) / np.log(1.0 - step_fraction) - 1e-9))
    steps = max(1, min(int(steps), k)) if k else 0
    for t in range(1, steps + 1):
        W, D = refit_rows(H, B, keep, component)
        now = int((keep & cand).sum())
        if t == steps:
            want = n_end
        elif n_end > 0:
            want = int(round(n0 * (n_end / n0) ** (t / steps)))
        else:
            want = int(round(n0 * (1.0 - t / steps)))
        m = now - max(want, n_end)
        if m <= 0:
            continue
        ok = keep & cand
        sal = np.where(ok, W ** 2 / (2.0 * np.where(ok, D, 1.0)), np.inf)
        pick = np.argsort(sal, axis=None, kind="stable")[:m]
        keep.flat[pick] = False
    W, _ = refit_rows(H, B, keep, component)
    if not np.isfinite(W).all():
        raise NotFiniteError(f"{component}: the refitted weights hold NaN or inf")
    return W, ~keep & cand


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
