"""Unit (neuron / channel / filter) pruning (``pruner:unit``; spec pruning.md §6).

A *unit group* is a producer layer (``dense``, or ``conv1d``/``conv2d`` with
``groups=1``) whose outputs reach a consumer layer (``dense`` or such a conv) through
parameter-free, channel-preserving layers only (activations, dropout, pooling, flatten).
Unit i of the group is row i of the producer's weight (conv: output channel / filter i)
with its bias, and the consumer's input columns fed by it: column i of a dense or conv
consumer, or the block of columns ``[i·S, (i+1)·S)`` of a dense consumer after a
flatten of S spatial positions. With ``include_inputs`` the input features of a first
dense layer (columns of its weight) are units too (input pruning).
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, NotFiniteError
from .base import Lookahead, Pruner, Snapshot, prune_entries, smallest

#: parameter-free layers that keep the unit (channel) axis between producer and consumer
PASS_THROUGH = {"activation", "dropout", "dropout2d", "alpha_dropout", "gaussian_noise",
                "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "global_avg_pool",
                "global_max_pool", "flatten"}


def _kind(layer):
    from ..layers.conv import _Conv
    from ..layers.core import Dense

    if isinstance(layer, Dense):
        return "dense"
    if isinstance(layer, _Conv) and not layer.transpose and layer.groups == 1:
        return "conv"
    return None


class UnitGroup:
    """Producer ``layers[p]`` → pass-through layers → consumer ``layers[c]`` of a
    Sequential; ``span`` consumer columns per unit (S after a flatten, else 1)."""

    def __init__(self, model, p, c, span):
        self.model, self.p, self.c, self.span = model, p, c, span
        self.producer = model.layers[p] if p is not None else None
        self.consumer = model.layers[c]

    @property
    def n_units(self) -> int:
        if self.producer is None:                      # input features of the consumer
            return self.consumer.W.shape[1]
        return self.producer.W.shape[0]

    def columns(self, i):
        """Index expression of unit i's columns in the consumer weight."""
        s = self.span
        if _kind(self.consumer) == "dense":
            return (slice(None), slice(i * s, (i + 1) * s))
        return (slice(None), i)

    def alive(self) -> np.ndarray:
        """Units whose consumer columns are not all masked."""
        m = self.consumer.W.mask
        return np.array([bool(m[self.columns(i)].any()) for i in range(self.n_units)])

    def remove(self, i, optimizer=None) -> None:
        """Mask unit i: producer row (filter) and bias, consumer columns (pruning.md §6)."""
        if self.producer is not None:
            W = self.producer.W
            idx = np.arange(W.size).reshape(W.shape)[i].ravel()
            prune_entries(W, idx, optimizer)
            if self.producer.b is not None and self.producer.b.trainable:
                prune_entries(self.producer.b, [i], optimizer)
        Wc = self.consumer.W
        idx = np.arange(Wc.size).reshape(Wc.shape)[self.columns(i)].ravel()
        prune_entries(Wc, idx, optimizer)

    @property
    def label(self) -> str:
        return "input" if self.producer is None else self.producer.key


def unit_groups(model, include_inputs: bool = False) -> list[UnitGroup]:
    """Every unit group of a Sequential model (module docstring), in model order."""
    from ..model import Sequential

    if not isinstance(model, Sequential):
        raise NotImplementedError("unit pruning and compact() support Sequential models "
                                  f"(got {type(model).__name__})")
    layers = model.layers
    shapes = [tuple(model.input_shape)] + [s for _, _, s in model.describe()]
    groups = []
    if include_inputs:
        for c, layer in enumerate(layers):
            if _kind(layer) == "dense" and all(layers[j].name in PASS_THROUGH and
                                               layers[j].name != "flatten" for j in range(c)):
                groups.append(UnitGroup(model, None, c, 1))
                break
            if layer.parameters() or _kind(layer):
                break
    for p, layer in enumerate(layers):
        if _kind(layer) is None:
            continue
        channels = shapes[p + 1][0]
        c, ok = p + 1, True
        while c < len(layers) and _kind(layers[c]) is None:
            if layers[c].name not in PASS_THROUGH or layers[c].parameters():
                ok = False
                break
            if layers[c].name != "flatten" and shapes[c + 1][0] != channels:
                ok = False
                break
            c += 1
        if not ok or c >= len(layers):
            continue
        consumer = layers[c]
        d_in = shapes[c][0]
        if _kind(consumer) == "dense":
            if d_in % channels:
                continue
            span = d_in // channels
        else:
            if d_in != channels:
                continue
            span = 1
        groups.append(UnitGroup(model, p, c, span))
    return groups


class UnitPruner(Pruner):
    """Remove whole hidden units / channels (pruning.md §6).

    ``score``: ``"ablation"`` (default; ``ρ_i = R(unit i removed) − R`` evaluated by
    zeroing the unit's outgoing weights), ``"attention"`` (Mozer & Smolensky 1989:
    ``ρ̂_i = −Σ_n (∂R/∂a_{n,i}) a_{n,i} = −Σ_j W⁽ˡ⁺¹⁾_{ji} ∂R/∂W⁽ˡ⁺¹⁾_{ji}``, one gradient),
    ``"obd_sum"`` (OBD saliencies of the incoming weights, bias and outgoing weights,
    Gauss-Newton diagonal) or ``"outgoing_l2"`` (``‖W⁽ˡ⁺¹⁾[:, i]‖₂``). Per round the
    ``n_units`` (or ``fraction`` of the live units) of smallest relevance over all groups
    are removed (ties → earlier layer, lower index); every layer keeps ``min_units``.
    ``rounds``, ``retrain_epochs``, ``max_loss_increase``/``max_loss``/
    ``max_accuracy_drop`` as in :class:`~corenet.pruners.Pruner`. Sequential models;
    :func:`~corenet.pruners.compact` then deletes the removed units physically.
    """

    name = "unit"

    def __init__(self, n_units=None, *, fraction=None, score: str = "ablation",
                 min_units: int = 1, include_inputs: bool = False, **kwargs):
        kwargs.setdefault("amount", None)
        super().__init__(**kwargs)
        who = "pruner 'unit'"
        if score not in ("ablation", "attention", "obd_sum", "outgoing_l2"):
            raise HyperparameterError(f"{who}: score must be 'ablation', 'attention', "
                                      f"'obd_sum' or 'outgoing_l2', got {score!r}")
        if n_units is not None and (isinstance(n_units, bool) or int(n_units) != n_units
                                    or n_units < 0):
            raise HyperparameterError(f"{who}: n_units must be an integer >= 0, got "
                                      f"{n_units!r}")
        if fraction is not None and not 0.0 <= float(fraction) <= 1.0:
            raise HyperparameterError(f"{who}: fraction must be in [0, 1], got {fraction!r}")
        if n_units is None and fraction is None:
            n_units = 1
        self.n_units = None if n_units is None else int(n_units)
        self.fraction = None if fraction is None else float(fraction)
        self.score, self.min_units = score, int(min_units)
        self.include_inputs = bool(include_inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_units": self.n_units, "fraction": self.fraction,
                "score": self.score, "min_units": self.min_units,
                "include_inputs": self.include_inputs}

    # ------------------------------------------------------------------ scores
    def candidates(self, model):
        """``[(group, unit index)]`` of the live units that may be removed."""
        out = []
        for g in unit_groups(model, self.include_inputs):
            alive = g.alive()
            if alive.sum() <= self.min_units:
                continue
            out.extend((g, int(i)) for i in np.flatnonzero(alive))
        return out

    def relevance(self, ctx, cands) -> np.ndarray:
        model, loss, X, y = ctx["model"], ctx["loss"], ctx["X"], ctx["y"]
        from .. import curvature
        from ..trainer import evaluate_model

        if self.score == "outgoing_l2":
            return np.array([np.linalg.norm(g.consumer.W.data[g.columns(i)])
                             for g, i in cands])
        if self.score == "ablation":
            base = evaluate_model(model, X, y, loss=loss)["loss"]
            out = []
            for g, i in cands:
                snap = Snapshot(model)
                g.remove(i)
                out.append(evaluate_model(model, X, y, loss=loss)["loss"] - base)
                snap.restore()
            return np.array(out)
        if self.score == "attention":
            curvature.loss_gradient(model, loss, X, y)
            return np.array([-float(np.sum(g.consumer.W.data[g.columns(i)] *
                                           g.consumer.W.grad[g.columns(i)]))
                             for g, i in cands])
        h = curvature.hessian_diag(model, loss, X, y)
        sal = {}
        offset = 0
        for p in model.trainable_parameters():
            sal[id(p)] = (0.5 * h[offset:offset + p.size] * p.data.ravel() ** 2).reshape(p.shape)
            offset += p.size
        out = []
        for g, i in cands:
            s = float(np.sum(sal[id(g.consumer.W)][g.columns(i)]))
            if g.producer is not None:
                s += float(np.sum(sal[id(g.producer.W)][i]))
                b = g.producer.b
                if b is not None and b.trainable:
                    s += float(sal[id(b)][i])
            out.append(s)
        return np.array(out)

    def step(self, ctx, k: int) -> dict:
        model = ctx["model"]
        if ctx["X"] is None:
            raise ValueError("pruner 'unit': no pruning data (pass data=(X, y))")
        cands = self.candidates(model)
        if not cands:
            return {"pruned_units": 0, "units": []}
        rel = self.relevance(ctx, cands)
        if not np.isfinite(rel).all():
            raise NotFiniteError("pruner 'unit': unit relevances hold NaN or inf")
        removed, counts = [], {}
        for j in smallest(rel, len(cands)):
            if len(removed) == k:
                break
            g, i = cands[j]
            left = int(g.alive().sum())
            if left <= self.min_units:
                continue
            g.remove(i, ctx.get("optimizer"))
            removed.append({"layer": g.label, "unit": i, "relevance": float(rel[j])})
            counts[g.label] = counts.get(g.label, 0) + 1
        return {"pruned_units": len(removed), "units": removed}

    def _units_this_round(self, model) -> int:
        if self.n_units is not None:
            return self.n_units
        alive = sum(int(g.alive().sum()) for g in unit_groups(model, self.include_inputs))
        return int(np.floor(self.fraction * alive + 0.5))

    def _run(self, ctx) -> None:
        model = ctx["model"]
        guard = Lookahead(self.lookahead)
        for r in range(self.rounds):
            k = self._units_this_round(model)
            if k <= 0:
                break
            before = Snapshot(model)
            loss_ref = guard.loss_ref if guard.pending else self._evaluate(ctx)[0]
            record = self.step(ctx, k)
            if record["pruned_units"] == 0:
                ctx["stopped"] = "no_candidates"
                break
            record.update(round=r)
            self._retrain(ctx)
            ctx["rounds"] += 1
            if self._judge_round(ctx, guard, record, before, loss_ref):
                return
        else:
            if not guard.finish(ctx):
                ctx["stopped"] = "rounds"
            return
        guard.finish(ctx)

    def event_count(self, model, sparsity) -> int:
        return self._units_this_round(model)
