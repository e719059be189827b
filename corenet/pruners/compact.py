"""Physical removal of pruned units (``compact``, pruning.md §6 MAY).

A unit (hidden neuron, conv channel) is *dead* when every consumer column it feeds is
masked: its output reaches nothing. A unit whose incoming weights are all masked
outputs a constant ``c = f(b)``; between dense layers (only activations or dropout in
between) it is folded into the consumer's bias (``b' += W'[:, i]·c``) and removed too.
``compact`` rebuilds a smaller :class:`~corenet.Sequential` with the dead units
deleted from the producer (rows/filters, bias) and from the consumer (columns /
input channels / flattened blocks), masks and the compiled loss, metrics, regularizers
and a fresh optimizer of the same settings carried over. It computes the same function
(up to rounding) with fewer parameters and less arithmetic.
"""
from __future__ import annotations

import numpy as np

from .. import registry
from ..model import Sequential
from .unit import _kind, unit_groups

_FOLD_THROUGH = {"activation", "dropout", "alpha_dropout", "gaussian_noise"}


def _constant_output(model, g, i):
    """``f(b_i)`` through the producer's fused activation and the layers up to the
    consumer, or None when it cannot be folded exactly."""
    prod = g.producer
    if _kind(prod) != "dense" or _kind(g.consumer) != "dense" or g.span != 1:
        return None
    if prod.W.mask[i].any() and np.any(prod.W.data[i]):
        return None
    between = model.layers[g.p + 1:g.c]
    if any(layer.name not in _FOLD_THROUGH for layer in between):
        return None
    if g.consumer.b is None:
        return None
    v = np.array([[0.0 if prod.b is None else prod.b.data[i]]], dtype=model.dtype)
    if prod.act is not None:
        if prod.act.parameters():
            return None
        v = prod.act.fn.forward(v)
    for layer in between:
        if layer.name == "activation":
            v = layer.fn.forward(v)
    return float(v[0, 0])


def _slice_param(layer, role, data, rows, cols, span_cols):
    kind = _kind(layer)
    if role == "weight":
        out = data
        if rows is not None:
            out = out[rows]
        if cols is not None:
            out = out[:, span_cols if kind == "dense" else cols]
        return np.ascontiguousarray(out)
    if role == "bias" and rows is not None:
        return np.ascontiguousarray(data[rows])
    return data


def compact(model, *, fold_constants: bool = True):
    """A new, smaller Sequential without the dead units of ``model`` (module docstring);
    ``model`` itself is unchanged. Returns ``model`` unchanged when nothing is dead."""
    groups = unit_groups(model)
    keep_rows, keep_cols, bias_add = {}, {}, {}
    for g in groups:
        dead = ~g.alive()
        if fold_constants:
            for i in np.flatnonzero(~dead):
                prod = g.producer
                row_masked = not prod.W.mask[i].any()
                if not row_masked:
                    continue
                c = _constant_output(model, g, i)
                if c is None:
                    continue
                cols = g.consumer.W.data[g.columns(i)]
                bias_add[g.c] = bias_add.get(g.c, 0.0) + (cols * c).sum(axis=1)
                dead[i] = True
        keep = np.flatnonzero(~dead)
        if keep.size == 0:
            keep = np.array([0])
        if keep.size == g.n_units:
            continue
        keep_rows[g.p] = keep
        keep_cols[g.c] = (keep, g.span)
    if not keep_rows:
        return model
    new_layers = []
    for idx, layer in enumerate(model.layers):
        cfg = dict(layer.get_config())
        kind = _kind(layer)
        if idx in keep_rows:
            cfg["out_features" if kind == "dense" else "out_channels"] = int(keep_rows[idx].size)
        if idx in keep_cols:
            keep, span = keep_cols[idx]
            if kind == "dense":
                cfg["in_features"] = int(keep.size * span)
            else:
                cfg["in_channels"] = int(keep.size)
        if kind == "dense" and cfg.get("mask") is not None:
            m = np.asarray(cfg["mask"])
            rows, span_cols = _index(idx, keep_rows, keep_cols)
            cfg["mask"] = _slice_param(layer, "weight", m, rows, span_cols, span_cols).tolist()
        new_layers.append(type(layer).from_config(cfg))
    new = Sequential(new_layers, dtype=model.dtype, random_state=model.random_state,
                     input_shape=model.input_shape)
    for idx, (old, fresh) in enumerate(zip(model.layers, new.layers)):
        rows, span_cols = _index(idx, keep_rows, keep_cols)
        for p, q in zip(old.parameters(), fresh.parameters()):
            data = _slice_param(old, p.role, p.data, rows, span_cols, span_cols)
            if p.role == "bias" and idx in bias_add:
                data = data + bias_add[idx]
            mask = None if not p.masked else _slice_param(old, p.role, p.mask, rows,
                                                          span_cols, span_cols)
            if data.shape != q.shape:
                raise NotImplementedError(f"compact: cannot resize parameter {p.name} of "
                                          f"{old.label} ({p.shape} → {q.shape})")
            q.mask = None
            q.data[...] = data
            q.mask = None if mask is None or mask.all() else mask
            q.trainable = p.trainable
        if not (idx in keep_rows or idx in keep_cols) and old.buffers():
            fresh.load_buffers(old.buffers())
    _carry_compile(model, new)
    return new


def _index(idx, keep_rows, keep_cols):
    rows = keep_rows.get(idx)
    if idx not in keep_cols:
        return rows, None
    keep, span = keep_cols[idx]
    cols = (keep[:, None] * span + np.arange(span)[None, :]).ravel() if span > 1 else keep
    return rows, cols


def _carry_compile(model, new) -> None:
    if model.loss is None:
        return
    opt = None
    if model.optimizer is not None:
        opt = registry.create("optimizer", {"name": model.optimizer.name,
                                            **model.optimizer.get_config()})
    sched = getattr(model, "scheduler", None)
    new.compile(loss=model.loss, optimizer=opt or "sgd", metrics=model.metrics,
                regularizers=model.regularizers,
                scheduler=None if sched is None else {"name": sched.name,
                                                      **sched.get_config()})
