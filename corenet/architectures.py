"""Model builders and transfer-learning helpers (regularization.md §3.1, §4.1-4.2).

* :func:`freeze` / :func:`unfreeze` — freeze layers or parameters for transfer learning;
* :func:`autoencoder` — dense autoencoders, optionally with tied weights (``tied_dense``)
  and input noise (denoising, ``gaussian_noise``); :func:`encode` runs the encoder half;
* :func:`siamese` — a Siamese network (one shared branch inside a ``pair_distance``
  layer) compiled with the ``contrastive`` loss; :func:`make_pairs` draws training pairs.

Design of the Siamese network: a ``Graph`` cannot use one layer at two nodes, and two
branch copies would need aliased parameters (listed twice by ``Model.parameters()``).
Instead the model is ``Sequential([pair_distance(branch)])`` on pairs ``(N, 2, *S)``:
the one branch runs on both halves stacked as a batch of ``2N``, so the weights are
shared exactly, each parameter appears once (one optimizer state, one entry of θ), and
its gradient is the sum over both uses (§4.1); gradient checks are exact, and ``fit``,
``predict``, ``save``/``load`` work as for any single-input model.
"""
from __future__ import annotations

import numpy as np

from . import registry
from .errors import HyperparameterError, ShapeError
from .layer import Layer
from .model import Model, Sequential
from .parameter import Parameter


# ----------------------------------------------------------------------------- freezing
def _targets(obj, names):
    """``(layers, parameters)`` selected in a model or layer by ``names``."""
    if isinstance(obj, Layer):
        layers = [obj]
    elif isinstance(obj, Model):
        layers = obj.layers_in_order()
    else:
        raise TypeError(f"freeze: expected a corenet Model or Layer, got {type(obj).__name__}")
    if names is None:
        return layers, []
    if isinstance(names, (str, Layer, Parameter)):
        names = [names]
    by_key = {layer.key: layer for layer in layers}
    params = [p for layer in layers for p in layer.parameters()]
    by_name = {p.name: p for p in params}
    by_role = {p.role: p for p in params} if isinstance(obj, Layer) else {}
    chosen_layers, chosen_params = [], []
    for item in names:
        if isinstance(item, Layer):
            if not any(item is layer for layer in layers):
                raise ValueError(f"freeze: layer {item.label} is not part of {type(obj).__name__}")
            chosen_layers.append(item)
        elif isinstance(item, Parameter):
            if not any(item is p for p in params):
                raise ValueError(f"freeze: parameter {item.name!r} is not part of "
                                 f"{type(obj).__name__}")
            chosen_params.append(item)
        elif isinstance(item, str) and item in by_key and not isinstance(obj, Layer):
            chosen_layers.append(by_key[item])
        elif isinstance(item, str) and (item in by_name or item in by_role):
            chosen_params.append(by_name.get(item) or by_role[item])
        else:
            raise KeyError(f"freeze: {item!r} is neither a layer key {sorted(by_key)} nor a "
                           f"parameter name {sorted(by_name)}")
    return chosen_layers, chosen_params


def _set_trainable(obj, names, flag):
    layers, params = _targets(obj, names)
    for layer in layers:
        layer.trainable = flag
        for sub in getattr(layer, "branch", ()):          # pair_distance branches
            sub.trainable = flag
        params = params + layer.parameters()
    for p in params:
        p.trainable = flag
    return obj


def freeze(model_or_layer, names=None):
    """Freeze layers or parameters for transfer learning: ``trainable = False``.

    ``names``: None (everything), or layer keys (``"0"``, graph node names), parameter
    names (``"0.weight"``; roles such as ``"bias"`` for a single layer), Layer or
    Parameter objects. Frozen parameters get no gradient contribution (layers skip
    ``p.grad`` for them) and no update: the trainer binds only trainable parameters, every
    optimizer skips frozen ones and the compiled dense step honours the flags. Input
    gradients still flow through frozen layers to earlier trainable ones. The flags are
    saved with the model. Freezing the layer of a ``tied_dense`` pair that owns the shared
    weight freezes it for both uses. Call before ``fit``: an optimizer bound to a
    different set of parameters is re-bound (its state restarts). Returns the argument.
    """
    return _set_trainable(model_or_layer, names, False)


def unfreeze(model_or_layer, names=None):
    """Undo :func:`freeze` (same selection rules): ``trainable = True``."""
    return _set_trainable(model_or_layer, names, True)


# ----------------------------------------------------------------------------- autoencoders
def _special(name):
    """The special layers (imported directly: the builders work even before the plugin
    module ``corenet.layers.special`` is registered; saving/loading needs it registered)."""
    from .layers import special

    return {"tied_dense": special.TiedDense, "pair_distance": special.PairDistance}[name]


def autoencoder(input_dim, hidden, *, tied=False, denoising_std=0.0, activation="tanh",
                output_activation=None, noise_mode="additive", dtype=None, random_state=None,
                weight_init="glorot_uniform"):
    """A dense autoencoder ``x → h₁ → … → h_k → … → x̂`` as a ``Sequential``.

    ``hidden``: the code size or a list of encoder sizes (the decoder mirrors them).
    Encoder layers ``dense(h_i, activation)``; decoder layers ``dense`` or, with
    ``tied=True``, ``tied_dense(tied_to=<mirror encoder layer>)`` (``W_dec = W_encᵀ``, one
    shared parameter and its own bias, regularization.md §4.2). Decoder activations are
    ``activation`` except the last (``output_activation``, default identity). With
    ``denoising_std = σ > 0`` the first layer is ``gaussian_noise(σ, noise_mode)``: the
    network sees corrupted inputs in training and clean ones in eval/predict, and is
    trained to reproduce the clean input (``fit(X, X)``, loss ``mse``).

    Returns the built model (compiled with ``mse``); ``model.encoder_layers`` is the
    number of layers up to the code (see :func:`encode`). Note: a tied autoencoder
    rebuilt by ``corenet.load`` needs ``corenet.layers.special.tie(model)``.
    """
    d = _positive(input_dim, "input_dim")
    sizes = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    if not sizes:
        raise HyperparameterError("autoencoder: hidden must be a size or a non-empty list")
    sizes = [_positive(h, "hidden size") for h in sizes]
    sigma = float(denoising_std)
    if not np.isfinite(sigma) or sigma < 0:
        raise HyperparameterError(f"autoencoder: denoising_std must be >= 0, got "
                                  f"{denoising_std!r}")
    layers = []
    if sigma > 0:
        layers.append(registry.create("layer", {"name": "gaussian_noise", "stddev": sigma,
                                                "mode": noise_mode}))
    encoders = []
    for h in sizes:
        enc = registry.create("layer", {"name": "dense", "out_features": h,
                                        "activation": activation, "weight_init": weight_init})
        encoders.append(enc)
        layers.append(enc)
    n_encoder = len(layers)
    outs = sizes[-2::-1] + [d]
    for i, (enc, width) in enumerate(zip(reversed(encoders), outs)):
        act = activation if i < len(outs) - 1 else output_activation
        if tied:
            layers.append(_special("tied_dense")(tied_to=enc, activation=act))
        else:
            layers.append(registry.create("layer", {"name": "dense", "out_features": width,
                                                    "activation": act,
                                                    "weight_init": weight_init}))
    model = Sequential(layers, dtype=dtype, random_state=random_state, input_shape=(d,))
    model.encoder_layers = n_encoder
    model.compile(loss="mse")
    return model


def encode(model, X, n_layers=None):
    """The code of ``X``: the output of the first ``n_layers`` layers (default
    ``model.encoder_layers`` of :func:`autoencoder`) in eval mode."""
    n = getattr(model, "encoder_layers", None) if n_layers is None else n_layers
    if n is None:
        raise ValueError("encode: pass n_layers (the model does not record encoder_layers)")
    X = model.check_input(X, "encode input")
    was = model.training
    model.eval()
    try:
        for layer in model.layers_in_order()[:n]:
            X = layer.forward(X)
    finally:
        model.train(was)
    return X


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise HyperparameterError(f"autoencoder: {name} must be a positive integer, got "
                                  f"{value!r}")
    return int(value)


# ----------------------------------------------------------------------------- Siamese
def siamese(branch_layers, *, margin=1.0, optimizer="adam", input_shape=None, dtype=None,
            random_state=None):
    """A Siamese network: ``Sequential([pair_distance(branch_layers)])`` on pairs
    ``(N, 2, *S)`` → distances ``(N, 1)``, compiled with ``contrastive(margin)`` (targets
    1 = similar, 0 = dissimilar) and ``optimizer``. See the module docstring for the
    weight-sharing design; ``model.layers[0].embed(X)`` gives the embeddings of single
    items ``(N, *S)``. ``input_shape``: the per-item shape ``S`` (builds the model)."""
    pair = _special("pair_distance")(list(branch_layers))
    shape = None if input_shape is None else (2,) + tuple(int(s) for s in input_shape)
    model = Sequential([pair], dtype=dtype, random_state=random_state, input_shape=shape)
    model.compile(loss={"name": "contrastive", "margin": margin}, optimizer=optimizer)
    return model


def make_pairs(X, labels, n_pairs, rng=None, *, similar_fraction=0.5):
    """Random training pairs: ``(P, y)`` with ``P (n_pairs, 2, *S)`` and ``y`` 1 for pairs
    of the same label, 0 otherwise (a fraction ``similar_fraction`` of similar pairs)."""
    X = np.asarray(X)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != X.shape[0]:
        raise ShapeError(f"make_pairs: X has {X.shape[0]} samples, labels {labels.shape[0]}")
    rng = np.random.default_rng(rng)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("make_pairs: need at least two classes")
    groups = {c: np.flatnonzero(labels == c) for c in classes}
    n_sim = int(round(n_pairs * similar_fraction))
    first, second = np.empty(n_pairs, dtype=np.int64), np.empty(n_pairs, dtype=np.int64)
    for k in range(n_pairs):
        a = rng.integers(X.shape[0])
        if k < n_sim:
            b = rng.choice(groups[labels[a]])
        else:
            b = rng.choice(np.flatnonzero(labels != labels[a]))
        first[k], second[k] = a, b
    order = rng.permutation(n_pairs)
    first, second = first[order], second[order]
    P = np.ascontiguousarray(np.stack([X[first], X[second]], axis=1))
    return P, (labels[first] == labels[second]).astype(np.float64)


__all__ = ["autoencoder", "encode", "freeze", "make_pairs", "siamese", "unfreeze"]
