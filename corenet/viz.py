"""Visualising convolutional networks (spec convolution.md §11; TV-VIZ-01, TV-VIZ-02).

Computations (NumPy only): :func:`feature_maps`, :func:`filter_images`,
:func:`input_gradient`, :func:`saliency`, :func:`class_model`, :func:`deep_dream`,
:func:`cam`, :func:`grad_cam`. Every function runs the model in ``eval`` mode, takes
input gradients from the model's own backward pass (networks.md §4.1: ``backward``
returns ``∂/∂x``), and leaves the parameters, their gradients and the train/eval mode as
it found them.

Plots (PNG files; matplotlib is the optional ``plot`` extra, imported only when a plot is
drawn): :func:`plot_filters`, :func:`plot_feature_maps`, :func:`plot_images`,
:func:`plot_saliency`, :func:`plot_cam`.

Layers are named by their key: the node name in a ``Graph``, the index (int or str) in a
``Sequential``; a :class:`~corenet.Layer` object of the model works too. ``X`` is a batch
``(N, C, H, W)`` or one sample ``(C, H, W)`` (the result then has no batch axis).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .errors import HyperparameterError, ShapeError
from .graph import Graph
from .layer import Layer
from .model import Sequential

__all__ = ["feature_maps", "filter_images", "input_gradient", "saliency", "class_model",
           "deep_dream", "cam", "grad_cam", "resize", "plot_filters", "plot_feature_maps",
           "plot_images", "plot_saliency", "plot_cam"]

_PASS_THROUGH = {"flatten", "reshape", "dropout", "dropout2d", "alpha_dropout",
                 "gaussian_noise"}


# =============================================================================== model walking
class _Runner:
    """One-input, one-output view of a Sequential or Graph as named nodes, with partial
    forward (up to a node) and partial backward (from/to a node) passes."""

    def __init__(self, model, X=None):
        if isinstance(model, Graph):
            if len(model.input_names) != 1 or len(model.output_names) != 1:
                raise ShapeError("corenet.viz: the graph must have one input and one output")
            self.nodes = [(k, layer, list(srcs)) for k, (layer, srcs) in model.nodes.items()]
            self.input = model.input_names[0]
            self.output = model.output_names[0]
        elif isinstance(model, Sequential):
            self.nodes, prev = [], "input"
            for i, layer in enumerate(model.layers):
                self.nodes.append((str(i), layer, [prev]))
                prev = str(i)
            self.input, self.output = "input", prev
        else:
            raise TypeError(f"corenet.viz: expected a Sequential or Graph, got "
                            f"{type(model).__name__}")
        self.model = model
        self.index = {k: i for i, (k, _, _) in enumerate(self.nodes)}

    def key(self, layer) -> str:
        if layer is None:
            return self.output
        if isinstance(layer, Layer):
            for k, lay, _ in self.nodes:
                if lay is layer:
                    return k
            raise ValueError("corenet.viz: the layer object is not part of the model")
        key = str(layer)
        if key not in self.index and key != self.input:
            raise KeyError(f"corenet.viz: no layer {layer!r}; keys: "
                           f"{[k for k, _, _ in self.nodes]}")
        return key

    def layer(self, key) -> Layer:
        return self.nodes[self.index[key]][1]

    def forward(self, x, upto=None, logits=False):
        """Run the nodes (in eval mode) up to ``upto`` (default: the output); returns the
        dict of node values. ``logits`` stops the output node before its activation."""
        values = {self.input: x}
        self.values = values
        if upto == self.input:
            return values
        for k, layer, srcs in self.nodes:
            args = [values[s] for s in srcs]
            values[k] = (layer.forward_logits(args[0]) if (logits and k == self.output)
                         else layer.forward(*args))
            if k == upto:
                break
        return values

    def backward(self, seeds: dict, stop=None, logits=False):
        """Backpropagate ``seeds`` (node -> ∂S/∂value) after :meth:`forward`; return the
        gradient at node ``stop`` (default: the model input)."""
        stop = self.input if stop is None else stop
        grads = dict(seeds)
        start = max(self.index[k] for k in seeds if k != self.input) if \
            any(k != self.input for k in seeds) else -1
        for i in range(start, -1, -1):
            k, layer, srcs = self.nodes[i]
            if k == stop:
                break
            g = grads.pop(k, None)
            if g is None:
                continue
            dx = (layer.backward_logits(g) if (logits and k == self.output)
                  else layer.backward(g))
            for src, d in zip(srcs, (dx,) if layer.n_inputs == 1 else dx):
                grads[src] = d if src not in grads else grads[src] + d
        g = grads.get(stop)
        return np.zeros_like(self.values[stop]) if g is None else g


@contextlib.contextmanager
def _inspecting(model):
    """Eval mode; parameter gradients and the mode restored afterwards."""
    params = model.parameters()
    saved = [p.grad.copy() for p in params]
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        for p, g in zip(params, saved):
            p.grad[...] = g
        model.train(was_training)


def _batch(model, X, who):
    """``(X as a batch in the model dtype, single-sample flag)``; builds the model."""
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    shape = model.input_shape if model.built else getattr(model, "spec_input_shape", None)
    single = shape is not None and X.ndim == len(shape)
    if shape is None and X.ndim in (1, 3):
        single = True
    if single:
        X = X[None]
    if not model.built:
        model.build(X.shape[1:])
    if X.shape[1:] != tuple(model.input_shape):
        raise ShapeError(f"{who}: expected input (N, {', '.join(map(str, model.input_shape))}) "
                         f"or one sample {tuple(model.input_shape)}, got {X.shape}")
    return np.ascontiguousarray(X, dtype=model.dtype), single


def _targets(target, n, k, who):
    t = np.broadcast_to(np.asarray(target), (n,)).astype(np.int64) if np.ndim(target) == 0 \
        else np.asarray(target)
    if t.shape != (n,) or t.dtype.kind not in "iu":
        raise ShapeError(f"{who}: target must be an int or {n} ints, got {target!r}")
    if t.min() < 0 or t.max() >= k:
        raise ValueError(f"{who}: class indices must be in [0, {k}), got {target!r}")
    return t


def _score_grad(model, z, t, score, who):
    """∂S/∂z for S = logit z_c, p_c or log p_c (softmax, or sigmoid outputs)."""
    n, k = z.shape
    onehot = np.zeros_like(z)
    onehot[np.arange(n), t] = 1.0
    if score == "logit":
        return onehot
    if model.output_activation == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-z))
        d = p * (1.0 - p) if score == "prob" else (1.0 - p)
        return onehot * d
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    d = onehot - p
    if score == "prob":
        d *= p[np.arange(n), t][:, None]
    return d


# =============================================================================== maps
def feature_maps(model, X, layer):
    """Activations of ``layer`` for input ``X`` (eval mode; §11.1): ``(N, …)`` or the
    per-sample shape for one sample."""
    run = _Runner(model)
    X, single = _batch(model, X, "feature_maps")
    key = run.key(layer)
    with _inspecting(model):
        a = run.forward(X, upto=key)[key]
    return a[0] if single else a


def _first_conv(model_or_layer):
    if isinstance(model_or_layer, Layer):
        return model_or_layer
    for layer in model_or_layer.layers_in_order():
        if layer.name in ("conv1d", "conv2d"):
            return layer
    raise ValueError("filter_images: the model has no conv1d/conv2d layer")


def filter_images(conv_layer):
    """Each filter of a convolution layer rescaled to [0, 1] (§11.1):
    ``(w − min w)/(max w − min w)`` over the filter's ``(C_in, k_h, k_w)`` entries;
    a constant filter gives 0.5. A model instead of a layer uses its first conv layer.
    Returns an array of the weight's shape ``(C_out, C_in, k_h, k_w)``."""
    layer = _first_conv(conv_layer)
    if not layer.built or layer.name not in ("conv1d", "conv2d"):
        raise ValueError(f"filter_images: expected a built conv layer, got {layer!r}")
    w = layer.W.data.astype(np.float64)
    flat = w.reshape(w.shape[0], -1)
    lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    span = hi - lo
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1.0), 0.5)
    return out.reshape(w.shape)


def input_gradient(model, X, target, score: str = "logit"):
    """``G = ∂S/∂x`` for the class score ``S`` of class ``target`` (an int, or one per
    sample): ``score="logit"`` (``z_c``, the output before the output activation),
    ``"prob"`` (``p_c``) or ``"log_prob"`` (``log p_c``). Returns X's shape."""
    if score not in ("logit", "prob", "log_prob"):
        raise HyperparameterError(f"input_gradient: score must be 'logit', 'prob' or "
                                  f"'log_prob', got {score!r}")
    run = _Runner(model)
    X, single = _batch(model, X, "input_gradient")
    with _inspecting(model):
        z = run.forward(X, logits=True)[run.output]
        if z.ndim != 2:
            raise ShapeError(f"input_gradient: the model must output class scores (N, K), "
                             f"got {z.shape}")
        t = _targets(target, z.shape[0], z.shape[1], "input_gradient")
        dz = _score_grad(model, z, t, score, "input_gradient")
        g = run.backward({run.output: dz}, logits=True)
    return g[0] if single else g


def saliency(model, X, target, score: str = "logit", reduce: str = "max_abs"):
    """Gradient saliency map (Simonyan et al. 2014; §11.2): ``G = ∂S/∂x`` (see
    :func:`input_gradient`), then per pixel ``M[i, j] = max_c′ |G[c′, i, j]|``
    (``reduce="max_abs"``) or ``sqrt(Σ_c′ G[c′, i, j]²)`` (``"l2"``). Shapes: ``(N, H, W)``
    for ``(N, C, H, W)`` inputs, ``(H, W)`` for one sample; inputs without a channel axis
    ``(N, D)`` give ``|G|``. For a linear scorer ``S = Σ w ⊙ x`` the map is
    ``max_c′ |w[c′, i, j]|`` (TV-VIZ-02)."""
    if reduce not in ("max_abs", "l2"):
        raise HyperparameterError(f"saliency: reduce must be 'max_abs' or 'l2', got {reduce!r}")
    g = input_gradient(model, X, target, score)
    single = g.ndim == len(model.input_shape)
    g = g[None] if single else g
    if g.ndim <= 2:
        m = np.abs(g)
    elif reduce == "max_abs":
        m = np.abs(g).max(axis=1)
    else:
        m = np.sqrt((g * g).sum(axis=1))
    return m[0] if single else m


# =============================================================================== input optimisation
def _objective_grad(run, x, layer_key, index, logits_out):
    """∇_x of the class logit (``layer_key`` None) or of the mean activation of unit /
    channel ``index`` of ``layer_key``."""
    key = run.output if layer_key is None else layer_key
    a = run.forward(x, upto=key, logits=logits_out and key == run.output)[key]
    d = np.zeros_like(a)
    if a.ndim == 2:
        d[:, index] = 1.0
    else:
        d[:, index] = 1.0 / np.prod(a.shape[2:])
    return run.backward({key: d}, logits=logits_out and key == run.output), a


def _blur(x, sigma):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(0,) * (x.ndim - 2) + (sigma, sigma))


def class_model(model, class_index: int, steps: int = 200, lr: float = 1.0, l2: float = 1e-3,
                *, layer=None, x0=None, clip=None, jitter: int = 0, blur_every: int = 0,
                blur_sigma: float = 0.5, random_state=None):
    """Class-model visualisation / activation maximisation (Simonyan et al. 2014; §11.3).

    Gradient ascent on ``J(x) = S(x) − λ‖x‖²`` from ``x₀`` (zeros by default)::

        x ← x + η (∇_x S(x) − 2λ x);   then optional clip to [lo, hi]

    ``S`` is the logit of class ``class_index`` or, with ``layer``, the mean activation of
    unit/channel ``class_index`` of that layer. Defaults ``steps=200``, ``lr η=1``,
    ``l2 λ=1e-3``, ``clip=None``. Optional regularisers: ``jitter`` (roll the image by up to
    that many pixels before each step and back after), Gaussian blur of width
    ``blur_sigma`` every ``blur_every`` steps. Returns the image (the per-sample input
    shape)."""
    run = _Runner(model)
    shape = tuple(model.input_shape) if model.built else getattr(model, "spec_input_shape", None)
    if shape is None:
        raise ShapeError("class_model: build the model first (its input shape is unknown)")
    x = np.zeros((1,) + shape) if x0 is None else np.array(x0, dtype=np.float64).reshape(
        (1,) + shape)
    x, _ = _batch(model, x, "class_model")
    x = x.copy()
    rng = np.random.default_rng(random_state)
    key = None if layer is None else run.key(layer)
    with _inspecting(model):
        for step in range(int(steps)):
            shift = tuple(rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
            if jitter:
                x = np.roll(x, shift, axis=(-2, -1))
            g, _ = _objective_grad(run, x, key, class_index, True)
            x += lr * (g - 2.0 * l2 * x)
            if jitter:
                x = np.ascontiguousarray(np.roll(x, (-shift[0], -shift[1]), axis=(-2, -1)))
            if clip is not None:
                np.clip(x, clip[0], clip[1], out=x)
            if blur_every and (step + 1) % blur_every == 0:
                x = np.ascontiguousarray(_blur(x, blur_sigma), dtype=x.dtype)
    return x[0]


def resize(x, size, mode: str = "bilinear"):
    """Resize the last two axes of ``x`` to ``size = (h, w)``: ``"bilinear"`` (PyTorch
    ``align_corners=False``) or ``"nearest"`` (source index ``⌊i·H/h⌋``)."""
    x = np.asarray(x)
    h, w = (int(size), int(size)) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    H, W = x.shape[-2:]
    if mode == "nearest":
        ri = (np.arange(h) * H) // h
        ci = (np.arange(w) * W) // w
        return x[..., ri[:, None], ci[None, :]]
    if mode != "bilinear":
        raise HyperparameterError(f"resize: mode must be 'bilinear' or 'nearest', got {mode!r}")
    from .layers.shape import bilinear_matrix

    ah = bilinear_matrix(H, h, dtype=np.float64)
    aw = bilinear_matrix(W, w, dtype=np.float64)
    return (ah @ x @ aw.T).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def _prefix_at_size(run, key, shape, dtype):
    """Copies of the nodes up to ``key`` built for input ``shape`` and sharing the
    original parameter arrays and buffers (for octaves at other image sizes)."""
    nodes, shapes = [], {run.input: tuple(shape)}
    for k, layer, srcs in run.nodes:
        arg = shapes[srcs[0]] if layer.n_inputs == 1 else [shapes[s] for s in srcs]
        clone = type(layer).from_config(layer.get_config())
        clone.key = k
        try:
            clone.build(arg, dtype, np.random.default_rng(0))
        except (ShapeError, ValueError) as exc:
            raise ShapeError(f"deep_dream: layer {k!r} cannot run at input size {shape} for "
                             f"octaves ({exc}); use octaves=1") from exc
        for pc, po in zip(clone.parameters(), layer.parameters()):
            pc.data = po.data
        if layer.buffers():
            clone.load_buffers(layer.buffers())
        clone.eval()
        nodes.append((k, clone, srcs))
        shapes[k] = tuple(clone.output_shape(arg))
        if k == key:
            break
    sub = object.__new__(_Runner)
    sub.nodes, sub.input, sub.output, sub.model = nodes, run.input, key, run.model
    sub.index = {k: i for i, (k, _, _) in enumerate(nodes)}
    return sub


def deep_dream(model, x, layer, steps: int = 20, lr: float = 0.01, *, jitter: int = 0,
               octaves: int = 1, octave_scale: float = 1.4, random_state=None):
    """Deep-dream style input optimisation (§11.4): gradient ascent on ``½‖a_l(x)‖²`` (the
    activations of ``layer``) with normalised steps::

        g = ∇_x ½‖a_l(x)‖² = J_lᵀ a_l;     x ← x + η · g / (mean(|g|) + 1e-8)

    Defaults ``steps=20``, ``lr η=0.01``, ``jitter=0``, ``octaves=1``,
    ``octave_scale=1.4``. With ``octaves > 1`` the image is processed from the smallest
    scale ``size/octave_scale^(octaves−1)`` upward; after each scale the accumulated
    change is upsampled (bilinear) and added to the next scale's image (the layers up to
    ``layer`` must then accept other sizes: a convolutional prefix). ``x`` is one image
    (the per-sample input shape); returns the optimised image."""
    run = _Runner(model)
    xb, single = _batch(model, x, "deep_dream")
    if not single or xb.shape[0] != 1:
        raise ShapeError(f"deep_dream: expected one image {tuple(model.input_shape)}, got "
                         f"{np.shape(x)}")
    key = run.key(layer)
    rng = np.random.default_rng(random_state)
    base = xb.astype(np.float64)
    H, W = base.shape[-2:]
    sizes = [(max(1, round(H / octave_scale ** o)), max(1, round(W / octave_scale ** o)))
             for o in range(int(octaves) - 1, -1, -1)]
    detail = None
    with _inspecting(model):
        for size in sizes:
            img0 = resize(base, size) if size != (H, W) else base
            r = run if size == (H, W) else _prefix_at_size(run, key, img0.shape[1:],
                                                           model.dtype)
            img = img0 + (resize(detail, size) if detail is not None else 0.0)
            img = np.ascontiguousarray(img, dtype=model.dtype)
            for _ in range(int(steps)):
                shift = tuple(rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
                if jitter:
                    img = np.ascontiguousarray(np.roll(img, shift, axis=(-2, -1)))
                a = r.forward(img, upto=key)[key]
                g = r.backward({key: a.copy()})
                img = img + lr * g / (np.mean(np.abs(g)) + 1e-8)
                if jitter:
                    img = np.roll(img, (-shift[0], -shift[1]), axis=(-2, -1))
                img = np.ascontiguousarray(img, dtype=model.dtype)
            detail = img.astype(np.float64) - img0
    return (base + detail).astype(model.dtype)[0]


# =============================================================================== CAM
def _cam_parts(run):
    """(feature node, dense layer) of ``… → A → global_avg_pool → [flatten/dropout] →
    dense``."""
    consumers = {}
    for k, _, srcs in run.nodes:
        for s in srcs:
            consumers.setdefault(s, []).append(k)
    for k, layer, srcs in reversed(run.nodes):
        if layer.name != "global_avg_pool":
            continue
        node = k
        while True:
            nxt = consumers.get(node, [])
            if len(nxt) != 1:
                break
            node = nxt[0]
            lay = run.layer(node)
            if lay.name == "dense":
                return srcs[0], lay
            if lay.name not in _PASS_THROUGH:
                break
    raise ValueError("cam: the model must contain '… → conv features → global_avg_pool → "
                     "dense (→ classes)' (only flatten/dropout between the pool and the "
                     "dense layer); use grad_cam for other networks")


def _upsampled(m, model, upsample, who):
    if upsample is None:
        return m
    if upsample not in ("nearest", "bilinear"):
        raise HyperparameterError(f"{who}: upsample must be None, 'nearest' or 'bilinear', "
                                  f"got {upsample!r}")
    return resize(m, tuple(model.input_shape[-2:]), upsample)


def cam(model, X, class_index, upsample=None):
    """Class activation map (Zhou et al. 2016; §11.5) for a network ending in
    ``conv features A (K, h, w) → global_avg_pool → dense (K → classes)``::

        CAM_c[i, j] = Σ_k w^c_k · A_k[i, j]        (so z_c = mean_{i,j} CAM_c + b_c)

    with ``w^c`` row c of the dense weight. ``class_index``: an int or one per sample.
    ``upsample="nearest" | "bilinear" | None`` resizes the map to the input's spatial
    size. Returns ``(N, h, w)`` (or ``(h, w)`` for one sample)."""
    run = _Runner(model)
    X, single = _batch(model, X, "cam")
    feat, dense = _cam_parts(run)
    with _inspecting(model):
        A = run.forward(X, upto=feat)[feat]
    if A.ndim != 4:
        raise ShapeError(f"cam: the features before global_avg_pool must be (N, K, h, w), "
                         f"got {A.shape}")
    W = dense.W.data
    t = _targets(class_index, X.shape[0], W.shape[0], "cam")
    m = np.einsum("nk,nkhw->nhw", W[t], A)
    m = _upsampled(m, model, upsample, "cam")
    return m[0] if single else m


def _default_gradcam_layer(run):
    try:
        return _cam_parts(run)[0]
    except ValueError:
        pass
    shape = {run.input: tuple(run.model.input_shape)}
    best = last = None
    for k, layer, srcs in run.nodes:
        arg = shape[srcs[0]] if layer.n_inputs == 1 else [shape[s] for s in srcs]
        shape[k] = tuple(layer.output_shape(arg))
        if len(shape[k]) == 3:
            last = k
            if shape[k][1] * shape[k][2] > 1:
                best = k
    best = best or last
    if best is None:
        raise ValueError("grad_cam: no layer with (K, h, w) activations; pass layer=")
    return best


def grad_cam(model, X, class_index, layer=None, upsample=None):
    """Grad-CAM (Selvaraju et al. 2017; §11.6) at a layer with activations ``A (K, h, w)``
    (default: the features before ``global_avg_pool`` if any, else the last layer whose
    per-sample output is ``(K, h, w)`` with ``h·w > 1``) for the class logit ``S_c``::

        α_k = (1/(h·w)) Σ_{i,j} ∂S_c/∂A_k[i, j];     GradCAM_c = ReLU(Σ_k α_k A_k)

    For a CAM-compatible network ``GradCAM_c = ReLU(CAM_c/(h·w))`` (TV-VIZ-01).
    Returns ``(N, h, w)`` (or ``(h, w)``), resized to the input with ``upsample``."""
    run = _Runner(model)
    X, single = _batch(model, X, "grad_cam")
    key = _default_gradcam_layer(run) if layer is None else run.key(layer)
    with _inspecting(model):
        values = run.forward(X, logits=True)
        z = values[run.output]
        if z.ndim != 2:
            raise ShapeError(f"grad_cam: the model must output class scores (N, K), got "
                             f"{z.shape}")
        t = _targets(class_index, z.shape[0], z.shape[1], "grad_cam")
        dz = np.zeros_like(z)
        dz[np.arange(z.shape[0]), t] = 1.0
        dA = run.backward({run.output: dz}, stop=key, logits=True)
    A = values[key]
    if A.ndim != 4:
        raise ShapeError(f"grad_cam: layer {key!r} has activations {A.shape}, expected "
                         f"(N, K, h, w)")
    alpha = dA.mean(axis=(2, 3))
    m = np.maximum(np.einsum("nk,nkhw->nhw", alpha, A), 0.0)
    m = _upsampled(m, model, upsample, "grad_cam")
    return m[0] if single else m


# =============================================================================== plots
def _figure(figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("corenet.viz plots need matplotlib, the optional 'plot' extra: "
                          "pip install 'corenet[plot]' (or pip install matplotlib)") from exc
    return Figure(figsize=figsize, dpi=100)


def _save(fig, path):
    fig.savefig(str(path), format="png", bbox_inches="tight")
    return str(path)


def _as_image(a):
    """(C, H, W) / (H, W) -> something imshow draws (RGB for 3 channels)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 3:
        a = np.moveaxis(a, 0, -1)
        lo, hi = a.min(), a.max()
        return (a - lo) / (hi - lo) if hi > lo else np.full_like(a, 0.5)
    if a.ndim == 3:
        a = a[0]
    return a


def plot_images(images, path, titles=None, cols: int | None = None, cmap: str = "gray",
                size: float = 1.4, suptitle: str | None = None):
    """Draw a grid of images (each ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)``) into a PNG
    file; returns the path."""
    images = list(images)
    if not images:
        raise ValueError("plot_images: no images")
    cols = cols or min(len(images), 8)
    rows = (len(images) + cols - 1) // cols
    fig = _figure((size * cols, size * rows + (0.4 if suptitle else 0)))
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(_as_image(img), cmap=cmap, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return _save(fig, path)


def plot_filters(model, path, layer=None, max_filters: int = 64, cmap: str = "gray"):
    """First-layer filters (or those of conv ``layer``) as images rescaled by
    :func:`filter_images`; one tile per filter for 1 or 3 input channels, else one tile
    per (filter, input channel) for the first 8 channels. Returns the path."""
    conv = _first_conv(model) if layer is None else (
        layer if isinstance(layer, Layer) else _Runner(model).layer(str(layer)))
    imgs = filter_images(conv)[:max_filters]
    if imgs.ndim == 3:                                  # conv1d: (C_out, C_in, k)
        imgs = imgs[:, :, None, :]
    if imgs.shape[1] in (1, 3):
        tiles = list(imgs)
        titles = [str(i) for i in range(len(tiles))]
        cols = None
    else:
        c = min(imgs.shape[1], 8)
        tiles = [imgs[o, i] for o in range(imgs.shape[0]) for i in range(c)]
        titles = [f"{o}/{i}" for o in range(imgs.shape[0]) for i in range(c)]
        cols = c
    return plot_images(tiles, path, titles, cols=cols, cmap=cmap,
                       suptitle=f"filters of {conv.label}")


def plot_feature_maps(model, x, layer_key, path, max_maps: int = 32, cmap: str = "viridis"):
    """The activation maps of layer ``layer_key`` for one input ``x`` (one tile per
    channel, at most ``max_maps``) into a PNG file; returns the path."""
    a = feature_maps(model, x, layer_key)
    if a.ndim == 4:
        a = a[0]
    if a.ndim != 3:
        raise ShapeError(f"plot_feature_maps: layer {layer_key!r} has activations of shape "
                         f"{a.shape}; expected (C, h, w) maps")
    return plot_images(list(a[:max_maps]), path, [str(i) for i in range(min(len(a), max_maps))],
                       cmap=cmap, suptitle=f"feature maps of layer {layer_key}")


def _overlay(fig, ax, img, heat, title):
    ax.imshow(_as_image(img), cmap="gray", interpolation="nearest")
    im = ax.imshow(heat, cmap="jet", alpha=0.5, interpolation="bilinear")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_saliency(model, x, target, path, score: str = "logit", reduce: str = "max_abs"):
    """One input ``x`` beside its saliency map for class ``target``; returns the path."""
    m = saliency(model, x, target, score, reduce)
    fig = _figure((6, 3))
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(_as_image(x), cmap="gray")
    ax.set_title("input", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax = fig.add_subplot(1, 2, 2)
    im = ax.imshow(m, cmap="hot")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(f"saliency, class {target}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def plot_cam(model, x, class_index, path, method: str = "cam", layer=None):
    """One input ``x`` with its CAM (``method="cam"``) or Grad-CAM (``"grad_cam"``) for
    ``class_index`` overlaid (bilinear upsampling); returns the path."""
    if method == "cam":
        m = cam(model, x, class_index, upsample="bilinear")
    elif method == "grad_cam":
        m = grad_cam(model, x, class_index, layer=layer, upsample="bilinear")
    else:
        raise HyperparameterError(f"plot_cam: method must be 'cam' or 'grad_cam', got "
                                  f"{method!r}")
    fig = _figure((6, 3))
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(_as_image(x), cmap="gray")
    ax.set_title("input", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    _overlay(fig, fig.add_subplot(1, 2, 2), x, m,
             f"{'CAM' if method == 'cam' else 'Grad-CAM'}, class {class_index}")
    return _save(fig, path)
