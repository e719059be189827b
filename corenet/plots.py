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
* :func:`filters`, :func:`feature_maps`, :func:`saliency` — the convolution views of
  :mod:`corenet.viz` (which computes and draws them), with defaults: the first
  convolution layer, the predicted class.
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
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# ------------------------------------------------------------------ pruning
def pruning_curve(results, path, y: str = "accuracy", x: str = "weights",
                  title: str | None = None, logx: bool = False) -> str:
    """``y`` against ``x`` (remaining weights) for each method.

    ``results``: a list of dicts (one per pruning step, with keys ``x`` and ``y``) or a
    dict ``{method name: such a list}``. The x axis is reversed so that pruning
    proceeds from left to right; ``logx`` gives it a logarithmic scale."""
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
    if logx:
        ax.set_xscale("log")
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
    list of per-unit records. Records written inside the trainer carry the loss before
    each installation (``loss_before``), plotted against the units present then."""
    units = history.units if hasattr(history, "units") else (
        history["units"] if isinstance(history, dict) else list(history))
    if not units:
        raise ValueError("cascade_growth: the history has no records")
    m = [u.get("hidden_units", i) for i, u in enumerate(units)]
    key = next((k for k in ("error", "loss", "loss_before") if k in units[0]), None)
    if key is None:
        raise ValueError(f"cascade_growth: the records have no error or loss; keys "
                         f"{sorted(units[0])}")
    label = key
    if key == "loss_before":  # inside the trainer: the loss before unit m was installed
        m = [k - 1 for k in m]
        label = "loss"
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    ax.plot(m, [u.get(key) for u in units], marker="o", markersize=3, label=label)
    ax.set_xlabel("hidden units")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    handles = ax.get_lines()
    if "bit_fail" in units[0]:
        ax2 = ax.twinx()
        handles += ax2.plot(m, [u.get("bit_fail") for u in units], color="tab:red",
                            linestyle="--", label="bit fails")
        ax2.set_ylabel("bit fails", color="tab:red")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(handles=list(handles), loc="upper right", fontsize=8)
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
# The computations and drawings live in corenet.viz (convolution.md §11); these wrappers
# give them the signatures of this module and sensible defaults.
def _viz():
    from . import viz

    return viz


def filters(model, path, layer=None, max_filters: int = 64) -> str:
    """The filters of the first convolution layer (or of ``layer``: a key or a Layer)
    as image tiles rescaled to [0, 1] (:func:`corenet.viz.plot_filters`)."""
    _figure()  # the ImportError naming the extra, before any work
    return _viz().plot_filters(model, path, layer=layer, max_filters=max_filters)


def _first_conv_key(model) -> str:
    for i, layer in enumerate(model.layers_in_order()):
        if layer.name.startswith("conv"):
            return getattr(layer, "key", None) or str(i)
    raise ValueError("feature_maps: the model has no convolution layer; pass layer=")


def feature_maps(model, x, path, layer=None, max_maps: int = 32) -> str:
    """The maps layer ``layer`` (a key; default the first convolution) outputs for one
    sample ``x`` (:func:`corenet.viz.plot_feature_maps`)."""
    _figure()
    key = _first_conv_key(model) if layer is None else layer
    return _viz().plot_feature_maps(model, x, key, path, max_maps=max_maps)


def saliency(model, x, path, target=None, score: str = "logit") -> str:
    """One input beside its gradient saliency map for class ``target`` (default: the
    predicted class) (:func:`corenet.viz.plot_saliency`)."""
    _figure()
    x = np.asarray(x)
    if target is None:
        batch = x if model.built and x.ndim > len(model.input_shape) else x[None]
        target = int(np.argmax(model.predict(np.ascontiguousarray(batch))[0]))
    return _viz().plot_saliency(model, x, int(target), path, score=score)
