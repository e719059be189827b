"""Optimal Brain Surgeon (``pruner:obs``; Hassibi & Stork 1993; pruning.md §5, D-27).

Building blocks (usable alone, e.g. on a quadratic model):

* :func:`obs_saliencies` — ``L_q = ½ θ_q² / [H⁻¹]_qq`` (and ``ΔR_q`` with the linear term);
* :func:`obs_correction` — ``δθ = −(θ_q / [H⁻¹]_qq) H⁻¹ e_q``;
* :func:`cap_corrections` — the γ cap of heuristic 4;
* :func:`corenet.curvature.inverse_downdate` — the downdate of H⁻¹ after a deletion.
"""
from __future__ import annotations

import numpy as np

from .. import curvature
from ..errors import HyperparameterError, NotFiniteError
from .base import (FlatLayout, Lookahead, Pruner, Snapshot, count_pruned, k_from_amount,
                   prune_entries, warn_once)
from .obd import candidate_mask


def obs_saliencies(theta, Hinv, u=None) -> np.ndarray:
    """``L_q = ½ θ_q² / [H⁻¹]_qq`` for every coordinate (pruning.md §5.1); with
    ``u = H⁻¹g`` the predicted increase including the linear term,
    ``ΔR_q = L_q − (θ_q/[H⁻¹]_qq)·u_q`` (§5.5 heuristic 1)."""
    theta = np.asarray(theta, dtype=np.float64)
    d = np.diag(np.asarray(Hinv, dtype=np.float64))
    L = 0.5 * theta ** 2 / d
    if u is None:
        return L
    return L - (theta / d) * np.asarray(u, dtype=np.float64)


def obs_correction(theta, Hinv, q: int) -> np.ndarray:
    """``δθ = −(θ_q / [H⁻¹]_qq) · H⁻¹[:, q]`` (sets θ_q to 0 exactly, §5.1)."""
    Hinv = np.asarray(Hinv, dtype=np.float64)
    return -(float(theta[q]) / Hinv[q, q]) * Hinv[:, q]


def cap_corrections(delta, gamma, exclude=None):
    """Heuristic 4 (pruning.md §5.4): ``m = max_{j≠q} |δθ_j|``; if ``m > γ`` scale every
    ``δθ_j`` (j ≠ q) by ``γ/m``. Returns ``(capped δθ, scale)`` (TV-PR-04: corrections
    ``[0.1, −0.9, 0.3]`` with γ = 0.5 → scale 5/9)."""
    delta = np.array(delta, dtype=np.float64)
    if gamma is None:
        return delta, 1.0
    others = np.ones(delta.size, dtype=bool)
    if exclude is not None:
        others[exclude] = False
    m = np.abs(delta[others]).max(initial=0.0)
    if m <= gamma:
        return delta, 1.0
    scale = gamma / m
    delta[others] *= scale
    return delta, scale


class _State:
    """H⁻¹ over the coordinates P, the candidates C ⊆ P and the gradient data."""

    def __init__(self, P, cand, Hinv, H, g):
        self.P, self.cand, self.Hinv, self.H, self.g = P, cand, Hinv, H, g
        self.u = None if g is None else Hinv @ g
        self.quality = None
        self.exact_quality = None


class OBSPruner(Pruner):
    """Delete weights one at a time by the OBS rule and correct all the others
    (pruning.md §5): ``q* = argmin L_q``, ``θ ← θ + δθ``, ``θ_q* = 0``, H⁻¹ downdated
    without refactorising (§5.4).

    ``hessian``: ``"outer_product"`` (default; Gauss-Newton outer products inverted
    recursively with the Woodbury identity, ``H₀⁻¹ = α⁻¹I``, D-27), ``"gauss_newton"``
    (G + αI by Cholesky) or ``"exact"`` (H + αI, eigenvalues below α raised to α;
    with ``alpha=0`` the exact Hessian must be positive definite). ``alpha`` = 1e-6.
    P = the unpruned trainable parameters of the layers being pruned (biases included:
    they compensate); candidates C = the unpruned prunable weights (biases with
    ``prune_biases``). ``max_parameters`` (5000) bounds |P| — use
    ``pruner:layerwise_obs`` beyond.

    Heuristics (§5.5), all on by default: ``grad_tol`` (1e-3; warn when
    ``‖g‖_∞ > grad_tol`` and, with ``use_linear_term="auto"``, rank by
    ``ΔR_q = L_q − (θ_q/[H⁻¹]_qq)(H⁻¹g)_q``); retraining (``retrain_epochs`` after every
    ``prune_per_round`` deletions, then H⁻¹ is rebuilt); inverse quality
    (``inverse_tol`` β = 1e-6: if ``‖I − H⁻¹H‖_F/√|P| > β`` recompute by eigendecomposition
    with α×10, up to 5 times, then raise :class:`~corenet.curvature.SingularHessianError`;
    ``check_against="exact"`` compares H⁻¹ with the exact Hessian and warns above
    ``check_tol`` = 0.1); ``gamma`` (0.5) caps the corrections. ``None`` disables one.

    Stop: after ``n_prune``/``target_sparsity``/``target_weights`` deletions (default:
    ``amount`` of the unpruned weights), or when ``max_loss_increase`` (relative to the
    loss before pruning), ``max_loss`` or ``max_accuracy_drop`` is exceeded (checked
    after every deletion, or after the retraining that follows it; the deletion — or
    that round — is undone; with ``lookahead`` > 0 up to that many further deletions are
    tried first, and pruning goes on if the criteria hold again: with
    ``lookahead >= n_prune`` the result is the smallest network along the OBS path that
    meets them). ``report["records"]`` holds, per deletion: ``index`` (in θ),
    ``parameter`` and ``local_index``, ``theta`` before, ``saliency`` L_q,
    ``predicted_increase`` (ΔR_q), ``capped`` and, when evaluated, ``loss`` and
    ``actual_increase``; ``report["inverses"]`` one entry per H⁻¹ formed (damping used,
    quality r, retries, |P|, whether the linear term ranked).
    """

    name = "obs"

    def __init__(self, amount=0.2, *, hessian: str = "outer_product", alpha: float = 1e-6,
                 gamma=0.5, grad_tol=1e-3, use_linear_term="auto", prune_per_round: int = 1,
                 inverse_tol=1e-6, check_against=None, check_tol: float = 0.1,
                 max_parameters: int = 5000, evaluate: bool = False, **kwargs):
        super().__init__(amount=amount, **kwargs)
        who = "pruner 'obs'"
        if hessian not in ("outer_product", "gauss_newton", "exact"):
            raise HyperparameterError(f"{who}: hessian must be 'outer_product', "
                                      f"'gauss_newton' or 'exact', got {hessian!r}")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise HyperparameterError(f"{who}: alpha must be >= 0, got {alpha!r}")
        if hessian == "outer_product" and alpha == 0:
            raise HyperparameterError(f"{who}: the recursive outer-product inverse needs "
                                      f"alpha > 0 (H₀⁻¹ = α⁻¹I)")
        if gamma is not None and not gamma > 0:
            raise HyperparameterError(f"{who}: gamma must be > 0 or None, got {gamma!r}")
        if use_linear_term not in ("auto", True, False):
            raise HyperparameterError(f"{who}: use_linear_term must be 'auto', True or "
                                      f"False, got {use_linear_term!r}")
        if int(prune_per_round) < 1:
            raise HyperparameterError(f"{who}: prune_per_round must be >= 1, got "
                                      f"{prune_per_round!r}")
        if check_against not in (None, "exact"):
            raise HyperparameterError(f"{who}: check_against must be None or 'exact', got "
                                      f"{check_against!r}")
        self.hessian, self.alpha, self.gamma = hessian, float(alpha), gamma
        self.grad_tol, self.use_linear_term = grad_tol, use_linear_term
        self.prune_per_round, self.inverse_tol = int(prune_per_round), inverse_tol
        self.check_against, self.check_tol = check_against, float(check_tol)
        self.max_parameters, self.evaluate = int(max_parameters), bool(evaluate)

    def get_config(self) -> dict:
        keys = ("hessian", "alpha", "gamma", "grad_tol", "use_linear_term", "prune_per_round",
                "inverse_tol", "check_against", "check_tol", "max_parameters", "evaluate")
        return {**super().get_config(), **{k: getattr(self, k) for k in keys}}

    # ------------------------------------------------------------------ H⁻¹ over P
    def _coordinates(self, model):
        layout = FlatLayout(model)
        params = self._params(model)
        layers = {p.name.rsplit(".", 1)[0] for p in params}
        in_P = np.zeros(layout.n, dtype=bool)
        for p, a, b in zip(layout.params, layout.offsets[:-1], layout.offsets[1:]):
            if p.name.rsplit(".", 1)[0] in layers:
                in_P[a:b] = p.mask.ravel() != 0
        cand = candidate_mask(model, params)
        P = np.flatnonzero(in_P)
        return layout, P, cand[P]

    def inverse(self, model, loss, X, y, P):
        """``(H⁻¹, H)`` over the coordinates P (§5.3) after the quality check (§5.5 item 3);
        H is the explicit matrix that was inverted."""
        if self.hessian == "exact":
            base = curvature.hessian_block(model, loss, X, y, P).astype(np.float64)
            if self.alpha > 0:
                H, Hinv = curvature.clipped_inverse(base + self.alpha * np.eye(P.size),
                                                    self.alpha)
            else:
                H, Hinv = base, curvature.invert_spd(base, component="pruner 'obs'")
        else:
            V, c = curvature.outer_product_vectors(model, loss, X, y, indices=P)
            base = np.einsum("n,nrp,nrq->pq", c, V, V)
            H = base + self.alpha * np.eye(P.size)
            if self.hessian == "outer_product":
                Hinv = curvature.woodbury_inverse(V, self.alpha, c)
            else:
                Hinv = curvature.invert_spd(H, component="pruner 'obs'")
        if not np.isfinite(Hinv).all():
            raise NotFiniteError("pruner 'obs': the inverse Hessian holds NaN or inf")
        self.last_inverse = {"alpha": self.alpha, "quality": None, "retries": 0}
        if self.inverse_tol is not None:
            a, tries = self.alpha, 0
            while (r := curvature.inverse_quality(Hinv, H)) > self.inverse_tol:
                tries += 1
                if tries > 5:
                    raise curvature.SingularHessianError(
                        f"pruner 'obs': the inverse Hessian fails the quality check "
                        f"‖I − H⁻¹H‖_F/√|P| <= {self.inverse_tol} even with damping {a:.3g}; "
                        f"nothing was pruned")
                a = a * 10 if a > 0 else 1e-8
                H, Hinv = curvature.clipped_inverse(base + a * np.eye(P.size), a)
            self.last_inverse = {"alpha": a, "quality": r, "retries": tries}
        return Hinv, H

    def _setup(self, ctx) -> _State:
        model, loss, X, y = ctx["model"], ctx["loss"], ctx["X"], ctx["y"]
        if X is None:
            raise ValueError("pruner 'obs': no pruning data (pass data=(X, y))")
        layout, P, cand = self._coordinates(model)
        if P.size > self.max_parameters:
            raise HyperparameterError(
                f"pruner 'obs': {P.size} coordinates exceed max_parameters="
                f"{self.max_parameters} for the full inverse Hessian; use "
                f"pruner 'layerwise_obs' (per-layer, per-row Hessians) or raise the limit")
        Hinv, H = self.inverse(model, loss, X, y, P)
        g = None
        if self.grad_tol is not None or self.use_linear_term is True:
            _, grad = curvature.loss_gradient(model, loss, X, y)
            if not np.isfinite(grad).all():
                raise NotFiniteError("pruner 'obs': the gradient holds NaN or inf")
            gP = grad[P].astype(np.float64)
            off = self.grad_tol is not None and np.abs(gP).max(initial=0.0) > self.grad_tol
            if off:
                warn_once(f"pruner 'obs': the model is not at a minimum (‖g‖_∞ = "
                          f"{np.abs(gP).max():.3g} > grad_tol={self.grad_tol})"
                          + ("; ranking with the linear term" if
                             self.use_linear_term == "auto" else ""))
            if self.use_linear_term is True or (self.use_linear_term == "auto" and off):
                g = gP
        st = _State(P, cand, Hinv, H, g)
        st.layout = layout
        st.quality = self.last_inverse
        ctx.setdefault("extra", {}).setdefault("inverses", []).append(
            {**self.last_inverse, "coordinates": int(P.size), "linear_term": g is not None})
        if self.check_against == "exact":
            Hx = curvature.hessian_block(model, loss, X, y, P)
            st.exact_quality = curvature.inverse_quality(Hinv, Hx)
            if st.exact_quality > self.check_tol:
                warn_once(f"pruner 'obs': the {self.hessian} inverse represents the exact "
                          f"Hessian poorly (‖I − H⁻¹H_exact‖_F/√|P| = "
                          f"{st.exact_quality:.3g} > {self.check_tol})")
        return st

    # ------------------------------------------------------------------ one deletion
    def _delete(self, ctx, st: _State):
        cpos = np.flatnonzero(st.cand)
        if cpos.size == 0:
            return None
        model = ctx["model"]
        theta = model.get_flat_parameters().astype(np.float64)
        thP = theta[st.P]
        score_all = obs_saliencies(thP, st.Hinv, st.u)
        L_all = obs_saliencies(thP, st.Hinv)
        j = int(np.argmin(score_all[cpos]))                # first minimum → lower index
        q = int(cpos[j])
        delta, scale = cap_corrections(obs_correction(thP, st.Hinv, q), self.gamma, q)
        flat = int(st.P[q])
        record = {"index": flat, "theta": float(thP[q]), "saliency": float(L_all[q]),
                  "predicted_increase": float(score_all[q]), "capped": scale < 1.0,
                  "scale": float(scale)}
        thP = thP + delta
        thP[q] = 0.0
        theta[st.P] = thP
        model.set_flat_parameters(theta)
        p, local = st.layout.locate(flat)
        prune_entries(p, [local], ctx.get("optimizer"))
        record.update(parameter=p.name, local_index=local)
        st.Hinv = curvature.inverse_downdate(st.Hinv, q)
        keep = np.arange(st.P.size) != q
        st.P, st.cand = st.P[keep], st.cand[keep]
        if st.g is not None:
            st.g = st.g[keep]
            st.u = st.Hinv @ st.g
        return record

    # ------------------------------------------------------------------ procedures
    def step(self, ctx, k: int) -> dict:
        st = self._setup(ctx)
        records = []
        for _ in range(k):
            rec = self._delete(ctx, st)
            if rec is None:
                break
            records.append(rec)
        return {"pruned": len(records), "deletions": records,
                "predicted_increase": float(sum(r["predicted_increase"] for r in records))}

    def _run(self, ctx) -> None:
        model = ctx["model"]
        params = self._params(model)
        n_unpruned, n_total = count_pruned(params)
        total = self.total_to_prune(n_unpruned, n_total)
        if total is None:
            total = k_from_amount(self.amount, n_unpruned)
        check = ctx["eval"] is not None and (
            self.evaluate or self.max_loss_increase is not None or self.max_loss is not None
            or self.max_accuracy_drop is not None)
        st = self._setup(ctx) if total > 0 else None
        ctx["rounds"] = 1 if total > 0 else 0
        guard = Lookahead(self.lookahead)
        round_snap, round_start = Snapshot(model), len(ctx["records"])
        count, prev_loss = 0, ctx["loss0"]
        while count < total:
            snap = Snapshot(model) if check else None
            rec = self._delete(ctx, st)
            if rec is None:
                ctx["stopped"] = "no_candidates"
                break
            count += 1
            retrain_now = self.retrain_epochs > 0 and count % self.prune_per_round == 0
            if retrain_now:
                self._retrain(ctx)
            if not check:
                ctx["records"].append(rec)
            else:
                loss, acc = self._evaluate(ctx)
                rec.update(loss=loss, accuracy=acc, actual_increase=loss - prev_loss)
                prev_loss = loss
                reason = self._stop_reason(ctx, ctx["loss0"], loss, acc)
                if not reason:
                    guard.accept(ctx, rec)
                else:
                    # back to the network before this deletion, or before this round when
                    # the violation shows after its retraining
                    target, earlier = (round_snap, ctx["records"][round_start:]) \
                        if retrain_now else (snap, ())
                    if guard.violated(rec, reason, target, earlier):
                        guard.finish(ctx)
                        return
            if retrain_now and count < total:
                st = self._setup(ctx)
                round_snap = Snapshot(model)
                round_start = len(ctx["records"]) + len(guard.pending)
                ctx["rounds"] += 1
        guard.finish(ctx)
