"""Masks and the helpers every pruner shares (spec pruning.md §1-§2): which parameters
are prunable, mask validation and setting, sparsity summaries, snapshots, the parameter
vector layout, and the ranking rules (``k = ⌊amount·n + ½⌋``, ties → lower index).

A pruner acts on ``Parameter.mask`` only (0/1 arrays; masked entries of ``data`` are
kept exactly zero by the engine: the trainer masks gradients, every optimizer masks its
update and re-applies the mask, :mod:`corenet.io` saves masks). Pruning is monotone: a
pruner only turns 1s into 0s; :func:`unprune` is the explicit way back.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, ShapeError

# ----------------------------------------------------------------------------- selection


def is_prunable(p, prune_biases: bool = False) -> bool:
    """Weights (``decay=True``: dense/conv ``weight``, weight-norm ``v``) of trainable
    parameters; biases only with ``prune_biases`` (pruning.md §1)."""
    if not p.trainable:
        return False
    return bool(p.decay) or (prune_biases and p.role == "bias")


def prunable_parameters(model, prune_biases: bool = False, parameters=None) -> list:
    """The prunable parameters of ``model`` in model order. ``parameters`` restricts them
    to the given parameter names (``"0.weight"``) or layer keys (``"0"``)."""
    ps = [p for p in model.parameters() if is_prunable(p, prune_biases)]
    if parameters is None:
        return ps
    wanted = {parameters} if isinstance(parameters, str) else set(parameters)
    known = {p.name for p in ps} | {p.name.rsplit(".", 1)[0] for p in ps}
    unknown = wanted - known
    if unknown:
        raise HyperparameterError(f"pruner: unknown parameter(s) or layer(s) {sorted(unknown)}; "
                                  f"prunable: {[p.name for p in ps]}")
    return [p for p in ps if p.name in wanted or p.name.rsplit(".", 1)[0] in wanted]


def check_masks(model) -> None:
    """Raise :class:`ShapeError` if a parameter's mask does not match its data (shape) or
    is not 0/1 — the state a pruner refuses to work on."""
    for p in model.parameters():
        m = p._mask
        if m is None:
            continue
        if not isinstance(m, np.ndarray) or m.shape != p.data.shape:
            raise ShapeError(f"pruner: the mask of parameter {p.name} has shape "
                             f"{getattr(m, 'shape', None)}, expected {p.data.shape}")
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"pruner: the mask of parameter {p.name} holds values other "
                             f"than 0 and 1")


def set_masks(model, masks: dict) -> None:
    """Set several masks at once (``{parameter name: 0/1 array}``): every mask is
    validated first (shape, values, monotone unless already unmasked), then all are set —
    a bad one changes nothing."""
    by_name = {p.name: p for p in model.parameters()}
    checked = []
    for name, m in masks.items():
        if name not in by_name:
            raise KeyError(f"set_masks: the model has no parameter {name!r}; it has "
                           f"{sorted(by_name)}")
        p = by_name[name]
        m = np.asarray(m)
        if m.shape != p.shape:
            raise ShapeError(f"set_masks: mask for {name} must have shape {p.shape}, got "
                             f"{m.shape}")
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"set_masks: mask for {name} must hold only 0 and 1")
        checked.append((p, m.astype(p.dtype)))
    for p, m in checked:
        p.mask = m.copy()


def unprune(model, parameters=None) -> None:
    """Remove the masks (all, or of the named parameters); pruned weights stay 0 until
    retrained."""
    for p in model.parameters():
        if parameters is None or p.name in parameters:
            p.mask = None


def count_pruned(params) -> tuple[int, int]:
    """``(unpruned, total)`` entries of ``params``."""
    total = sum(p.size for p in params)
    return sum(p.count_nonzero_weights() for p in params), total


def sparsity_summary(model, prune_biases: bool = False) -> list[dict]:
    """Per prunable parameter (pruning.md §1): ``{"layer", "parameter", "prunable",
    "pruned", "fraction"}``, plus a final ``"total"`` row."""
    rows, total, pruned = [], 0, 0
    for p in prunable_parameters(model, prune_biases):
        n, k = p.size, p.size - p.count_nonzero_weights()
        rows.append({"layer": p.name.rsplit(".", 1)[0], "parameter": p.name, "prunable": n,
                     "pruned": k, "fraction": k / n if n else 0.0})
        total, pruned = total + n, pruned + k
    rows.append({"layer": "total", "parameter": "", "prunable": total, "pruned": pruned,
                 "fraction": pruned / total if total else 0.0})
    return rows


def format_sparsity(rows) -> str:
    """A text table of :func:`sparsity_summary` rows."""
    lines = [f"{'parameter':<16}{'prunable':>10}{'pruned':>10}{'fraction':>10}"]
    for r in rows:
        lines.append(f"{r['parameter'] or r['layer']:<16}{r['prunable']:>10,}{r['pruned']:>10,}"
                     f"{r['fraction']:>10.1%}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- state


class Snapshot:
    """Parameters and masks of a model, restorable in place (array identities kept, so
    optimizer state and compiled plans stay bound)."""

    def __init__(self, model):
        self.items = [(p, p.data.copy(), None if p._mask is None else p._mask.copy())
                      for p in model.parameters()]

    def restore(self) -> None:
        for p, data, mask in self.items:
            p.mask = None if mask is None else mask.copy()
            p.data[...] = data
            p.grad.fill(0.0)


class FlatLayout:
    """Positions of the trainable parameters in θ (README §2.3): ``offsets[i]`` of
    ``params[i]``; maps flat indices to ``(parameter, local index)`` and back."""

    def __init__(self, model):
        self.params = model.trainable_parameters()
        self.offsets = np.cumsum([0] + [p.size for p in self.params])
        self.n = int(self.offsets[-1])

    def indices_of(self, p) -> np.ndarray:
        i = next(j for j, q in enumerate(self.params) if q is p)
        return np.arange(self.offsets[i], self.offsets[i + 1])

    def locate(self, flat: int):
        i = int(np.searchsorted(self.offsets, flat, side="right") - 1)
        return self.params[i], int(flat - self.offsets[i])

    def mask(self) -> np.ndarray:
        return np.concatenate([p.mask.ravel() for p in self.params]) if self.params else \
            np.zeros(0)


def prune_entries(p, local_indices, optimizer=None) -> None:
    """Mask (and zero) the entries ``local_indices`` (flat, C order) of ``p``; zero the
    optimizer state there (pruning.md §1 item 3). A fresh mask array is assigned so
    compiled training plans notice the change."""
    mask = p.mask.copy()
    mask.reshape(-1)[np.asarray(local_indices, dtype=np.int64)] = 0
    p.mask = mask
    if optimizer is not None and hasattr(optimizer, "zero_state"):
        optimizer.zero_state(p, p.mask)


def apply_flat_mask(model, keep, optimizer=None) -> None:
    """Set the masks of the trainable parameters from a 0/1 vector over θ (only ever
    removing entries)."""
    layout = FlatLayout(model)
    for p, a, b in zip(layout.params, layout.offsets[:-1], layout.offsets[1:]):
        drop = np.flatnonzero((keep[a:b] == 0) & (p.mask.ravel() != 0))
        if drop.size:
            prune_entries(p, drop, optimizer)


def k_from_amount(amount, n_unpruned: int) -> int:
    """``k = ⌊amount·n_unpruned + ½⌋`` (pruning.md §2)."""
    return int(np.floor(float(amount) * n_unpruned + 0.5))


def smallest(scores, k: int) -> np.ndarray:
    """Positions of the k smallest scores; ties → the lower index first (pruning.md §2)."""
    order = np.argsort(scores, kind="stable")
    return order[:k]
