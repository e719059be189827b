"""PNG plots for the command line and the documentation (optional: needs matplotlib).

matplotlib is imported lazily, only when a plot is drawn, and without pyplot (figures are
drawn on an Agg canvas, so no window opens and no global backend is changed). When it is
missing, every function raises ``ImportError`` naming the ``plot`` extra::

    pip install 'corenet[plot]'

Every function writes one PNG to ``path`` and returns the path:

* :func:`learning_curves` — loss and metrics per epoch (training and ``val_*``) of a
  :class:`~corenet.History` (or its ``to_dict()``, or a ``history.json`` written by
  ``corenet train``), the mini-batch losses faintly behind;
* :func:`pruning_curve` — accuracy (or any key) against the number of remaining weights,
  one line per method;
* :func:`cascade_growth` — training error and bit-fails against the number of hidden
  units of a cascade-correlation run (:class:`~corenet.growers.CascadeHistory`);
* :func:`decision_surface` — a two-input model's output over a grid with the data;
* :func:`filters` — the kernels of a ``conv2d`` layer as image tiles;
* :func:`feature_maps` — the channels a layer of a :class:`~corenet.Sequential` outputs
  for one sample;
* :func:`saliency` — ``|∂ score / ∂ input|`` for one image (computed by
  :mod:`corenet.viz` when it provides ``saliency``, else by one backward pass here).
"""
from __future__ import annotations

import json
import os

import numpy as np

EXTRA_HINT = "pip install 'corenet[plot]'"


def _figure(width=6.4, height=4.0):
    """A matplotlib Figure on an Agg canvas (no pyplot)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"corenet.plots needs matplotlib, which is not installed: "
                          f"{EXTRA_HINT} (the 'plot' extra)") from exc
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def available() -> bool:
    """True when matplotlib can be imported."""
    try:
        _figure()
    except ImportError:
        return False
    return True


def _save(fig, path) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


# ------------------------------------------------------------------ learning curves
def _history_dict(history) -> dict:
    if isinstance(history, (str, os.PathLike)):
        with open(history, encoding="utf-8") as fh:
            history = json.load(fh)
    if hasattr(history, "to_dict"):
        history = history.to_dict()
    if isinstance(history, list):
        history = {"epochs": history, "batch_losses": []}
    if not isinstance(history, dict) or "epochs" not in history:
        raise TypeError(f"learning_curves: expected a History, its to_dict(), a list of "
                        f"epoch logs or a history.json path, got {type(history).__name__}")
    return history


def learning_curves(history, path, title: str | None = None) -> str:
    """Loss (and every metric) per epoch, training and validation, as one PNG."""
    h = _history_dict(history)
    epochs = h["epochs"]
    if not epochs:
        raise ValueError("learning_curves: the history has no epochs")
    keys = []
    for log in epochs:
        for k in log:
            base = k[4:] if k.startswith("val_") else k
            if base not in keys and base not in ("epoch", "objective"):
                keys.append(base)
    keys.sort(key=lambda k: (k != "loss", k))
    fig = _figure(4.2 * len(keys) + 0.6, 3.6)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    x = np.arange(1, len(epochs) + 1)
    for ax, key in zip(axes, keys):
        batch = h.get("batch_losses") or []
        if key == "loss" and batch:
            bx = np.linspace(0.0, len(epochs), len(batch) + 1)[1:]
            ax.plot(bx, batch, color="0.8", linewidth=0.6, label="mini-batch")
        for prefix, style in (("", "-"), ("val_", "--")):
            ys = [log.get(prefix + key) for log in epochs]
            if any(v is not None for v in ys):
                ys = np.array([np.nan if v is None else v for v in ys], dtype=float)
                ax.plot(x, ys, style, marker="o" if len(x) < 30 else None, markersize=3,
                        label=("validation " if prefix else "training ") + key)
        if key == "loss" and "objective" in epochs[0]:
            ax.plot(x, [log.get("objective") for log in epochs], ":",
                    label="training objective")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# ------------------------------------------------------------------ pruning
def pruning_curve(results, path, y: str = "accuracy", x: str = "weights",
                  title: str | None = None) -> str:
    """``y`` against ``x`` (remaining weights) for each method.

    ``results``: a list of dicts (one per pruning step, with keys ``x`` and ``y``) or a
    dict ``{method name: such a list}``. The x axis is reversed so that pruning
    proceeds from left to right."""
    if isinstance(results, (list, tuple)):
        results = {"": list(results)}
    if not results or not any(results.values()):
        raise ValueError("pruning_curve: no results to plot")
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for method, rows in results.items():
        xs = [r[x] for r in rows]
        ys = [r[y] for r in rows]
        ax.plot(xs, ys, marker="o", markersize=3, label=method or None)
    ax.invert_xaxis()
    ax.set_xlabel(f"remaining {x}")
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if any(results):
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


# ------------------------------------------------------------------ growing
def cascade_growth(history, path, title: str | None = None) -> str:
    """Training error (E = Σ(ŷ − t)²) and bit-fails after each output phase against the
    number of hidden units; ``history`` is a ``CascadeHistory``, its ``to_dict()`` or its
    list of per-unit records."""
    units = history.units if hasattr(history, "units") else (
        history["units"] if isinstance(history, dict) else list(history))
    if not units:
        raise ValueError("cascade_growth: the history has no records")
    m = [u.get("hidden_units", i) for i, u in enumerate(units)]
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    key = "error" if "error" in units[0] else "loss"
    ax.plot(m, [u.get(key) for u in units], marker="o", markersize=3, label=key)
    ax.set_xlabel("hidden units")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    if "bit_fail" in units[0]:
        ax2 = ax.twinx()
        ax2.plot(m, [u.get("bit_fail") for u in units], color="tab:red", linestyle="--",
                 label="bit fails")
        ax2.set_ylabel("bit fails", color="tab:red")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def decision_surface(model, X, y, path, resolution: int = 150, margin: float = 0.5,
                     title: str | None = None) -> str:
    """The model output over a grid covering ``X`` (two inputs), with the points coloured
    by class (sign or > 0.5 for one output; the first column's class otherwise)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_surface: expected inputs of shape (N, 2), got {X.shape}")
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution),
                         np.linspace(lo[1], hi[1], resolution))
    grid = np.ascontiguousarray(np.stack([gx.ravel(), gy.ravel()], axis=1))
    out = model.predict(grid)
    out = out.reshape(grid.shape[0], -1)
    z = out[:, 0] if out.shape[1] == 1 else np.argmax(out, axis=1)
    fig = _figure(5.0, 4.6)
    ax = fig.subplots()
    cs = ax.contourf(gx, gy, z.reshape(gx.shape), levels=20, cmap="coolwarm", alpha=0.8)
    fig.colorbar(cs, ax=ax, shrink=0.8)
    yv = np.asarray(y).reshape(X.shape[0], -1)
    cls = yv[:, 0] if yv.shape[1] == 1 else np.argmax(yv, axis=1)
    ax.scatter(X[:, 0], X[:, 1], c=cls, cmap="coolwarm", edgecolors="k", s=14)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return _save(fig, path)


# ------------------------------------------------------------------ CNN views
def _grid(images, path, title, cmap="gray", cols=None):
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = _figure(1.3 * cols + 0.4, 1.3 * rows + (0.5 if title else 0.2))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _first_layer(model, name):
    for layer in model.layers_in_order():
        if layer.name == name:
            return layer
    raise ValueError(f"the model has no {name} layer")


def filters(source, path, title: str | None = "filters") -> str:
    """Kernels as tiles: ``source`` is a weight array ``(C_out, C_in, kh, kw)``, a
    ``conv2d`` layer, or a model (its first ``conv2d`` layer). Input channels are
    averaged."""
    if hasattr(source, "layers_in_order"):
        source = _first_layer(source, "conv2d")
    if hasattr(source, "parameters") and not isinstance(source, np.ndarray):
        source = next(p.data for p in source.parameters() if p.role == "weight")
    w = np.asarray(source, dtype=float)
    if w.ndim != 4:
        raise ValueError(f"filters: expected weights of shape (C_out, C_in, kh, kw), got "
                         f"{w.shape}")
    return _grid(list(w.mean(axis=1)), path, title, cmap="bwr")


def _layer_index(model, layer):
    layers = model.layers_in_order()
    if isinstance(layer, int):
        return layer % len(layers)
    if isinstance(layer, str):
        for i, lay in enumerate(layers):
            if lay.name == layer or getattr(lay, "key", None) == layer:
                return i
        raise ValueError(f"feature_maps: no layer named {layer!r}")
    for i, lay in enumerate(layers):
        if lay.name.startswith("conv"):
            return i
    raise ValueError("feature_maps: the model has no convolution layer; pass layer=")


def feature_maps(model, x, path, layer=None, title: str | None = None,
                 max_maps: int = 32) -> str:
    """The channels that layer ``layer`` (index, name or key; default the first
    convolution) of a Sequential model outputs for one sample ``x`` (shape ``(C, H, W)``
    or ``(1, C, H, W)``), in eval mode."""
    x = np.asarray(x, dtype=model.dtype)
    if x.ndim == len(model.input_shape or x.shape[1:]) and model.built:
        x = x[None]
    x = np.ascontiguousarray(x[:1])
    if not model.built:
        model.build(x.shape[1:])
    stop = _layer_index(model, layer)
    layers = model.layers_in_order()
    was = model.training
    model.eval()
    try:
        for lay in layers[:stop + 1]:
            x = lay.forward(x)
    finally:
        model.train(was)
    maps = x[0]
    if maps.ndim != 3:
        raise ValueError(f"feature_maps: layer {stop} ({layers[stop].name}) outputs shape "
                         f"{maps.shape[0:]} per sample, not (channels, H, W)")
    name = title or f"feature maps of layer {stop} ({layers[stop].name})"
    return _grid(list(maps[:max_maps]), path, name, cmap="viridis")


def saliency_map(model, x, target=None) -> np.ndarray:
    """``|∂ ŷ_target / ∂ x|`` for one sample (shape of ``x`` without the batch axis);
    ``target`` defaults to the predicted class. Uses ``corenet.viz.saliency`` when that
    module provides it."""
    try:
        from . import viz
    except ImportError:
        viz = None
    if viz is not None and hasattr(viz, "saliency"):
        return np.asarray(viz.saliency(model, x, target=target))
    x = np.asarray(x, dtype=model.dtype)
    if model.built and x.shape == tuple(model.input_shape):
        x = x[None]
    x = np.ascontiguousarray(x[:1])
    was = model.training
    model.eval()
    try:
        out = model.forward(x)
        cls = int(np.argmax(out[0])) if target is None else int(target)
        dy = np.zeros_like(out)
        dy.reshape(1, -1)[0, cls] = 1.0
        dx = model.backward(dy)
    finally:
        model.zero_grad()
        model.train(was)
    return np.abs(dx[0])


def saliency(model, x, path, target=None, title: str | None = "saliency") -> str:
    """The input image and its saliency map side by side."""
    s = saliency_map(model, x, target)
    img = np.asarray(x, dtype=float).reshape(s.shape)
    if s.ndim == 3:
        s, img = s.max(axis=0), img.mean(axis=0)
    if s.ndim != 2:
        raise ValueError(f"saliency: expected an image input, got per-sample shape {s.shape}")
    return _grid([img, s], path, title, cols=2, cmap="gray")
