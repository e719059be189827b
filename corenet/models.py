"""Architecture builders, parameter counting and receptive fields (spec convolution.md
§8-10; TV-ARCH-01, TV-RF-01).

Every builder returns an ordinary :class:`~corenet.Sequential` or :class:`~corenet.Graph`
made of registered layers (``registry.create("layer", ...)``), so models save, load,
train and summarise like any other. Classification heads output **logits** (train them
with ``loss="cross_entropy"``, which applies the softmax, networks.md §3.6); the U-Net
outputs per-pixel logits ``(N, K, H, W)`` for ``cross_entropy(axis=1)``.

Small models (``lenet5``, ``small_vgg``, ``small_alexnet``, ``small_resnet``,
``small_densenet``, ``small_inception``, ``unet``) are built at once. The big presets
(``alexnet``, ``vgg16``, ``vgg19``, ``resnet18``) are returned *unbuilt* (no parameter
array exists until ``build``/the first forward; VGG-16 in float64 needs 1.1 GB) and
remember their input shape, so :func:`count_params` counts them analytically from the
layer configurations and shapes.

==========================  ==================================================  ===========
builder                     structure                                           parameters
==========================  ==================================================  ===========
``lenet5()`` (32×32)        C1-S2-C3-S4-C5-F6-output (§10.1)                         61,706
``lenet5(input_size=28)``   the same with C1 ``padding=2`` (MNIST)                   61,706
``alexnet()``               5 conv + 3 dense, single tower (§10.2)               61,100,840
``vgg16()``                 13 conv + 3 dense (§10.3)                           138,357,544
``vgg19()``                 16 conv + 3 dense (§10.3)                           143,667,240
``resnet18()``              7×7 stem, 4×2 basic blocks, GAP, dense (§10.4)       11,689,512
==========================  ==================================================  ===========
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import registry
from .errors import HyperparameterError, ShapeError
from .graph import Graph
from .layer import Layer
from .model import Model, Sequential

__all__ = ["lenet5", "alexnet", "small_alexnet", "vgg", "vgg16", "vgg19", "small_vgg",
           "resnet", "resnet18", "small_resnet", "basic_block", "small_densenet",
           "dense_block", "small_inception", "inception_module", "unet", "count_params",
           "count_parameters", "receptive_field", "train_lenet5_mnist", "VGG16_CONFIG",
           "VGG19_CONFIG"]

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512,
                "M", 512, 512, 512, 512, "M")


def _L(name, **kwargs) -> Layer:
    """A registered layer by name (so a plugin overriding a layer is used here too)."""
    return registry.create("layer", {"name": name, **kwargs})


def _finish(model: Model, input_shape, build: bool) -> Model:
    model.spec_input_shape = tuple(int(s) for s in input_shape)
    if build:
        model.build(model.spec_input_shape)
    return model


def _choice(value, options, who, what):
    if value not in options:
        raise HyperparameterError(f"{who}: {what} must be one of {list(options)}, got {value!r}")
    return value


# =============================================================================== LeNet-5
def lenet5(activation="tanh", pool="max", num_classes: int = 10, input_size: int = 32,
           in_channels: int = 1, *, dtype=None, random_state=None, build: bool = True):
    """LeNet-5, corenet variant (convolution.md §10.1): a ``Sequential`` of

    ``C1 conv 5×5 (in→6) → act → S2 pool 2×2/2 → C3 conv 5×5 (6→16) → act → S4 pool →
    C5 conv 5×5 (16→120) → act → flatten → F6 dense 120→84 + act → dense 84→num_classes``

    on ``(N, in_channels, 32, 32)``: spatial chain 32 → 28 → 14 → 10 → 5 → 1,
    156 + 2,416 + 48,120 + 10,164 + 850 = **61,706** parameters (TV-ARCH-01) for one input
    channel and 10 classes. ``input_size=28`` (MNIST) gives C1 ``padding=2`` instead of
    padding the images: same shapes after C1, same **61,706** parameters (padding has no
    parameters). ``activation`` is any registered activation (``"tanh"`` as in the
    spec, ``"relu"`` trains faster); ``pool`` is ``"max"`` or ``"avg"``. The output is
    the 10 logits (softmax in the ``cross_entropy`` loss).
    """
    _choice(pool, ("max", "avg"), "lenet5", "pool")
    _choice(input_size, (28, 32), "lenet5", "input_size")
    pad = (32 - input_size) // 2
    p = "max_pool2d" if pool == "max" else "avg_pool2d"
    layers = [_L("conv2d", in_channels=in_channels, out_channels=6, kernel_size=5, padding=pad),
              _L("activation", activation=activation), _L(p, kernel_size=2),
              _L("conv2d", in_channels=6, out_channels=16, kernel_size=5),
              _L("activation", activation=activation), _L(p, kernel_size=2),
              _L("conv2d", in_channels=16, out_channels=120, kernel_size=5),
              _L("activation", activation=activation), _L("flatten"),
              _L("dense", out_features=84, activation=activation),
              _L("dense", out_features=num_classes)]
    return _finish(Sequential(layers, dtype=dtype, random_state=random_state),
                   (in_channels, input_size, input_size), build)


# =============================================================================== AlexNet
def alexnet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, *,
            lrn: bool = False, dropout: float = 0.5, dtype=None, random_state=None,
            build: bool = False):
    """AlexNet, single tower (convolution.md §10.2), unbuilt by default:

    conv 11×11/4 pad 2 (3→64) → ReLU → [LRN] → maxpool 3/2 → conv 5×5 pad 2 (64→192) →
    ReLU → [LRN] → maxpool 3/2 → conv 3×3 pad 1 (192→384, 384→256, 256→256) each + ReLU →
    maxpool 3/2 → flatten (256·6·6 = 9,216) → dropout → dense 4096 + ReLU → dropout →
    dense 4096 + ReLU → dense num_classes. Spatial 224 → 55 → 27 → 13 → 6;
    **61,100,840** parameters. ``lrn=True`` inserts ``local_response_norm(size=5,
    alpha=1e-4, beta=0.75, k=2)`` after the first two ReLUs (Krizhevsky et al. 2012;
    no parameters, the count is unchanged).
    """
    def block(c_in, c_out, k, stride, pad, norm):
        out = [_L("conv2d", in_channels=c_in, out_channels=c_out, kernel_size=k,
                  stride=stride, padding=pad), _L("activation", activation="relu")]
        if norm:
            out.append(_L("local_response_norm", size=5, alpha=1e-4, beta=0.75, k=2.0))
        return out

    layers = (block(in_channels, 64, 11, 4, 2, lrn) + [_L("max_pool2d", kernel_size=3, stride=2)]
              + block(64, 192, 5, 1, 2, lrn) + [_L("max_pool2d", kernel_size=3, stride=2)]
              + block(192, 384, 3, 1, 1, False) + block(384, 256, 3, 1, 1, False)
              + block(256, 256, 3, 1, 1, False) + [_L("max_pool2d", kernel_size=3, stride=2),
                                                   _L("flatten")])
    for _ in range(2):
        if dropout:
            layers.append(_L("dropout", rate=dropout))
        layers.append(_L("dense", out_features=4096, activation="relu"))
    layers.append(_L("dense", out_features=num_classes))
    return _finish(Sequential(layers, dtype=dtype, random_state=random_state),
                   (in_channels, input_size, input_size), build)


def small_alexnet(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, *,
                  dropout: float = 0.25, dtype=None, random_state=None, build: bool = True):
    """A small AlexNet-style net with local response normalisation as a layer:
    conv 5×5 pad 2 (→16) → ReLU → LRN(5) → maxpool 3/2 → conv 3×3 pad 1 (→32) → ReLU →
    LRN(5) → maxpool 3/2 → conv 3×3 pad 1 (→48) → ReLU → conv 3×3 pad 1 (→32) → ReLU →
    maxpool 3/2 → flatten → dropout → dense 64 + ReLU → dense num_classes. For 28×28
    inputs: 28 → 13 → 6 → 2, 416 + 4,640 + 13,872 + 13,856 + 8,256 + 650 = 41,690
    parameters."""
    relu = {"name": "activation", "activation": "relu"}
    lrn = {"name": "local_response_norm", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
    pool = {"name": "max_pool2d", "kernel_size": 3, "stride": 2}
    specs = [dict(name="conv2d", in_channels=in_channels, out_channels=16, kernel_size=5,
                  padding=2), relu, lrn, pool,
             dict(name="conv2d", in_channels=16, out_channels=32, kernel_size=3, padding=1),
             relu, lrn, pool,
             dict(name="conv2d", in_channels=32, out_channels=48, kernel_size=3, padding=1),
             relu,
             dict(name="conv2d", in_channels=48, out_channels=32, kernel_size=3, padding=1),
             relu, pool, {"name": "flatten"}]
    if dropout:
        specs.append({"name": "dropout", "rate": dropout})
    specs += [{"name": "dense", "out_features": 64, "activation": "relu"},
              {"name": "dense", "out_features": num_classes}]
    layers = [registry.create("layer", dict(s)) for s in specs]
    return _finish(Sequential(layers, dtype=dtype, random_state=random_state),
                   (in_channels, input_size, input_size), build)


# =============================================================================== VGG
def vgg(config, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224, *,
        hidden: int = 4096, dropout: float = 0.5, batch_norm: bool = False, dtype=None,
        random_state=None, build: bool = False):
    """A VGG net (convolution.md §10.3) from a config list: an int ``c`` is a 3×3 conv
    (stride 1, pad 1) to ``c`` channels + [batch norm] + ReLU; ``"M"`` is a 2×2 max-pool
    with stride 2. Classifier: flatten → dense ``hidden`` + ReLU → dropout → dense
    ``hidden`` + ReLU → dropout → dense ``num_classes`` (logits)."""
    layers, c = [], in_channels
    for item in config:
        if item == "M":
            layers.append(_L("max_pool2d", kernel_size=2, stride=2))
            continue
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 1:
            raise HyperparameterError(f"vgg: config entries must be positive ints or 'M', "
                                      f"got {item!r}")
        layers.append(_L("conv2d", in_channels=c, out_channels=int(item), kernel_size=3,
                         padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(_L("batch_norm", num_features=int(item)))
        layers.append(_L("activation", activation="relu"))
        c = int(item)
    layers.append(_L("flatten"))
    for _ in range(2):
        layers.append(_L("dense", out_features=hidden, activation="relu"))
        if dropout:
            layers.append(_L("dropout", rate=dropout))
    layers.append(_L("dense", out_features=num_classes))
    return _finish(Sequential(layers, dtype=dtype, random_state=random_state),
                   (in_channels, input_size, input_size), build)


def vgg16(num_classes: int = 1000, **kwargs):
    """VGG-16 (§10.3): 13 conv layers (14,714,688 parameters) + 123,642,856 dense =
    **138,357,544** on 3×224×224; unbuilt by default (see :func:`vgg`)."""
    return vgg(VGG16_CONFIG, num_classes, **kwargs)


def vgg19(num_classes: int = 1000, **kwargs):
    """VGG-19 (§10.3): 16 conv layers (20,024,384) + dense = **143,667,240**."""
    return vgg(VGG19_CONFIG, num_classes, **kwargs)


def small_vgg(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, *,
              config=(8, 8, "M", 16, 16, "M"), hidden: int = 64, dropout: float = 0.0,
              batch_norm: bool = True, dtype=None, random_state=None, build: bool = True):
    """A small VGG-style net (:func:`vgg` with small defaults: 3×3 convs with batch norm
    and no conv bias). For 1×28×28: convs 72 + 576 + 1,152 + 2,304, BN 16 + 16 + 32 + 32,
    dense 784→64 (50,240), 64→64 (4,160), 64→10 (650): 59,250 parameters."""
    return vgg(config, num_classes, in_channels, input_size, hidden=hidden, dropout=dropout,
               batch_norm=batch_norm, dtype=dtype, random_state=random_state, build=build)


# =============================================================================== ResNet
def basic_block(g: Graph, name: str, x: str, in_channels: int, out_channels: int,
                stride: int = 1) -> str:
    """Add a ResNet basic block (convolution.md §8.1) to ``g`` reading node ``x``:
    ``conv3×3(stride s, pad 1, no bias) → BN → ReLU → conv3×3(pad 1, no bias) → BN``, plus
    the shortcut (identity, or ``conv1×1(stride s, no bias) → BN`` when the channels or
    the size change), ``add``, ReLU. Returns the block's output node name.
    Parameters: ``9·C_in·C_out + 9·C_out² + 4·C_out`` (+ ``C_in·C_out + 2·C_out`` with
    the projection)."""
    g.add_node(f"{name}.conv1", _L("conv2d", in_channels=in_channels, out_channels=out_channels,
                                   kernel_size=3, stride=stride, padding=1, bias=False), x)
    g.add_node(f"{name}.bn1", _L("batch_norm", num_features=out_channels), f"{name}.conv1")
    g.add_node(f"{name}.relu1", _L("activation", activation="relu"), f"{name}.bn1")
    g.add_node(f"{name}.conv2", _L("conv2d", in_channels=out_channels,
                                   out_channels=out_channels, kernel_size=3, padding=1,
                                   bias=False), f"{name}.relu1")
    g.add_node(f"{name}.bn2", _L("batch_norm", num_features=out_channels), f"{name}.conv2")
    short = x
    if stride != 1 or in_channels != out_channels:
        g.add_node(f"{name}.proj", _L("conv2d", in_channels=in_channels,
                                      out_channels=out_channels, kernel_size=1, stride=stride,
                                      bias=False), x)
        g.add_node(f"{name}.proj_bn", _L("batch_norm", num_features=out_channels),
                   f"{name}.proj")
        short = f"{name}.proj_bn"
    g.add_node(f"{name}.add", _L("add"), [f"{name}.bn2", short])
    g.add_node(f"{name}.out", _L("activation", activation="relu"), f"{name}.add")
    return f"{name}.out"


def resnet(channels=(64, 128, 256, 512), blocks=(2, 2, 2, 2), num_classes: int = 1000,
           in_channels: int = 3, input_size: int = 224, *, stem: str = "imagenet",
           dtype=None, random_state=None, build: bool = False):
    """A ResNet of basic blocks (convolution.md §10.4) as a ``Graph``. ``stem="imagenet"``:
    conv 7×7/2 pad 3 no bias → BN → ReLU → maxpool 3/2 pad 1; ``stem="small"``: conv 3×3
    pad 1 no bias → BN → ReLU. Stage i has ``blocks[i]`` blocks of ``channels[i]``
    channels; the first block of every stage after the first has stride 2 and a
    projection shortcut. Head: ``global_avg_pool`` → dense ``num_classes``."""
    _choice(stem, ("imagenet", "small"), "resnet", "stem")
    if len(channels) != len(blocks) or not channels:
        raise HyperparameterError(f"resnet: channels {channels} and blocks {blocks} must be "
                                  f"non-empty and of equal length")
    g = Graph(inputs="input", outputs="fc", dtype=dtype, random_state=random_state)
    c0 = channels[0]
    if stem == "imagenet":
        g.add_node("stem.conv", _L("conv2d", in_channels=in_channels, out_channels=c0,
                                   kernel_size=7, stride=2, padding=3, bias=False), "input")
    else:
        g.add_node("stem.conv", _L("conv2d", in_channels=in_channels, out_channels=c0,
                                   kernel_size=3, padding=1, bias=False), "input")
    g.add_node("stem.bn", _L("batch_norm", num_features=c0), "stem.conv")
    g.add_node("stem.relu", _L("activation", activation="relu"), "stem.bn")
    x = "stem.relu"
    if stem == "imagenet":
        g.add_node("stem.pool", _L("max_pool2d", kernel_size=3, stride=2, padding=1), x)
        x = "stem.pool"
    c = c0
    for i, (c_out, n) in enumerate(zip(channels, blocks)):
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            x = basic_block(g, f"layer{i + 1}.{j}", x, c, c_out, stride)
            c = c_out
    g.add_node("gap", _L("global_avg_pool"), x)
    g.add_node("fc", _L("dense", out_features=num_classes), "gap")
    return _finish(g, (in_channels, input_size, input_size), build)


def resnet18(num_classes: int = 1000, **kwargs):
    """ResNet-18 (§10.4): **11,689,512** parameters on 3×224×224; unbuilt by default."""
    return resnet((64, 128, 256, 512), (2, 2, 2, 2), num_classes, **kwargs)


def small_resnet(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, *,
                 channels=(8, 16), blocks=(1, 1), dtype=None, random_state=None,
                 build: bool = True):
    """A small ResNet (``stem="small"``): stage 1 uses identity shortcuts, stage 2 starts
    with a stride-2 block with a 1×1 projection shortcut, then GAP → dense. Defaults:
    stem 72 + 16, block 1 (8→8) 1,184, block 2 (8→16, projection) 3,680, dense 170 =
    5,122 parameters."""
    return resnet(channels, blocks, num_classes, in_channels, input_size, stem="small",
                  dtype=dtype, random_state=random_state, build=build)


# =============================================================================== DenseNet
def dense_block(g: Graph, name: str, x: str, in_channels: int, n_layers: int,
                growth_rate: int) -> tuple[str, int]:
    """Add a DenseNet block (convolution.md §8.2): layer l computes
    ``x_l = H_l(concat([x_0, …, x_{l−1}]))`` with ``H_l = BN → ReLU → conv3×3 (pad 1)``
    to ``growth_rate`` channels; the block outputs ``concat([x_0, …, x_m])`` with
    ``C_0 + m·growth_rate`` channels. Returns ``(output node, channels)``."""
    feats, c = [x], in_channels
    for l in range(n_layers):
        src = feats[0]
        if len(feats) > 1:
            src = f"{name}.cat{l}"
            g.add_node(src, _L("concat"), list(feats))
        g.add_node(f"{name}.{l}.bn", _L("batch_norm", num_features=c), src)
        g.add_node(f"{name}.{l}.relu", _L("activation", activation="relu"), f"{name}.{l}.bn")
        g.add_node(f"{name}.{l}.conv", _L("conv2d", in_channels=c, out_channels=growth_rate,
                                          kernel_size=3, padding=1), f"{name}.{l}.relu")
        feats.append(f"{name}.{l}.conv")
        c += growth_rate
    g.add_node(f"{name}.out", _L("concat"), feats)
    return f"{name}.out", c


def small_densenet(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, *,
                   stem_channels: int = 8, growth_rate: int = 4, block_layers=(3, 3),
                   dtype=None, random_state=None, build: bool = True):
    """A small DenseNet: conv 3×3 pad 1 (→``stem_channels``) → dense blocks separated by
    transitions (BN → ReLU → conv 1×1 to half the channels → avg-pool 2×2) → BN → ReLU →
    global_avg_pool → dense. Defaults: blocks 8 → 20 channels, transition → 10, block
    10 → 22 channels."""
    g = Graph(inputs="input", outputs="fc", dtype=dtype, random_state=random_state)
    g.add_node("stem", _L("conv2d", in_channels=in_channels, out_channels=stem_channels,
                          kernel_size=3, padding=1), "input")
    x, c = "stem", stem_channels
    for b, m in enumerate(block_layers):
        if b > 0:
            half = max(1, c // 2)
            g.add_node(f"trans{b}.bn", _L("batch_norm", num_features=c), x)
            g.add_node(f"trans{b}.relu", _L("activation", activation="relu"), f"trans{b}.bn")
            g.add_node(f"trans{b}.conv", _L("conv2d", in_channels=c, out_channels=half,
                                            kernel_size=1), f"trans{b}.relu")
            g.add_node(f"trans{b}.pool", _L("avg_pool2d", kernel_size=2), f"trans{b}.conv")
            x, c = f"trans{b}.pool", half
        x, c = dense_block(g, f"block{b + 1}", x, c, m, growth_rate)
    g.add_node("final.bn", _L("batch_norm", num_features=c), x)
    g.add_node("final.relu", _L("activation", activation="relu"), "final.bn")
    g.add_node("gap", _L("global_avg_pool"), "final.relu")
    g.add_node("fc", _L("dense", out_features=num_classes), "gap")
    return _finish(g, (in_channels, input_size, input_size), build)


# =============================================================================== Inception
def inception_module(g: Graph, name: str, x: str, in_channels: int, c1: int, c3_reduce: int,
                     c3: int, c5_reduce: int, c5: int, pool_proj: int) -> tuple[str, int]:
    """Add an Inception module (convolution.md §8.2): four branches on ``x``, each conv
    followed by ReLU and "same" padding — 1×1 (``c1``); 1×1 (``c3_reduce``) → 3×3
    (``c3``); 1×1 (``c5_reduce``) → 5×5 (``c5``); 3×3 max-pool (stride 1, pad 1) → 1×1
    (``pool_proj``) — concatenated on channels. Returns ``(node, c1 + c3 + c5 +
    pool_proj)``."""
    def conv(node, src, c_in, c_out, k):
        g.add_node(node, _L("conv2d", in_channels=c_in, out_channels=c_out, kernel_size=k,
                            padding=k // 2), src)
        g.add_node(node + ".relu", _L("activation", activation="relu"), node)
        return node + ".relu"

    b1 = conv(f"{name}.1x1", x, in_channels, c1, 1)
    b3 = conv(f"{name}.3x3", conv(f"{name}.3x3_reduce", x, in_channels, c3_reduce, 1),
              c3_reduce, c3, 3)
    b5 = conv(f"{name}.5x5", conv(f"{name}.5x5_reduce", x, in_channels, c5_reduce, 1),
              c5_reduce, c5, 5)
    g.add_node(f"{name}.pool", _L("max_pool2d", kernel_size=3, stride=1, padding=1), x)
    bp = conv(f"{name}.pool_proj", f"{name}.pool", in_channels, pool_proj, 1)
    g.add_node(f"{name}.out", _L("concat"), [b1, b3, b5, bp])
    return f"{name}.out", c1 + c3 + c5 + pool_proj


def small_inception(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, *,
                    stem_channels: int = 8, dtype=None, random_state=None, build: bool = True):
    """A small Inception net: conv 3×3 pad 1 (→``stem_channels``) → ReLU → maxpool 2 →
    inception(8, 6→8, 2→4, 4) → maxpool 2 → inception(12, 8→12, 2→4, 4) →
    global_avg_pool → dense."""
    g = Graph(inputs="input", outputs="fc", dtype=dtype, random_state=random_state)
    g.add_node("stem", _L("conv2d", in_channels=in_channels, out_channels=stem_channels,
                          kernel_size=3, padding=1), "input")
    g.add_node("stem.relu", _L("activation", activation="relu"), "stem")
    g.add_node("pool1", _L("max_pool2d", kernel_size=2), "stem.relu")
    x, c = inception_module(g, "inc1", "pool1", stem_channels, 8, 6, 8, 2, 4, 4)
    g.add_node("pool2", _L("max_pool2d", kernel_size=2), x)
    x, c = inception_module(g, "inc2", "pool2", c, 12, 8, 12, 2, 4, 4)
    g.add_node("gap", _L("global_avg_pool"), x)
    g.add_node("fc", _L("dense", out_features=num_classes), "gap")
    return _finish(g, (in_channels, input_size, input_size), build)


# =============================================================================== U-Net
def unet(num_classes: int = 2, in_channels: int = 1, input_size: int = 32, *,
         base_channels: int = 8, depth: int = 2, upsample: str = "transpose",
         padding: int = 1, dtype=None, random_state=None, build: bool = True):
    """A small U-Net (convolution.md §8.3) as a ``Graph`` of per-pixel logits
    ``(N, num_classes, H_out, W_out)`` for ``cross_entropy(axis=1)``.

    Encoder level i (``base_channels·2^i`` channels): ``[conv3×3 → BN → ReLU] × 2`` then
    2×2 max-pool; the bottom level (i = ``depth``) has no pool. Decoder level i: up ×2
    (``upsample="transpose"``: ``conv_transpose2d`` k = 2, S = 2 halving the channels;
    ``"nearest"``: ``upsample_nearest2d``), ``center_crop`` of the encoder map to the
    decoder map's size, ``concat([crop, up])``, ``[conv3×3 → BN → ReLU] × 2``. Head: 1×1
    conv to ``num_classes``. ``padding=1`` keeps sizes (H_out = H; H divisible by
    2^depth; the crops are identities); ``padding=0`` is the original "valid" U-Net where
    every conv shrinks the map by 2, the crops cut the encoder maps and the output is
    smaller than the input (e.g. 60 → 20 for depth 2).
    """
    _choice(upsample, ("transpose", "nearest"), "unet", "upsample")
    _choice(padding, (0, 1), "unet", "padding")
    g = Graph(inputs="input", outputs="head", dtype=dtype, random_state=random_state)

    def double(name, src, c_in, c_out):
        for k in (1, 2):
            g.add_node(f"{name}.conv{k}", _L("conv2d", in_channels=c_in, out_channels=c_out,
                                             kernel_size=3, padding=padding, bias=False), src)
            g.add_node(f"{name}.bn{k}", _L("batch_norm", num_features=c_out), f"{name}.conv{k}")
            g.add_node(f"{name}.relu{k}", _L("activation", activation="relu"), f"{name}.bn{k}")
            src, c_in = f"{name}.relu{k}", c_out
        return src

    x, c, skips = "input", in_channels, []
    for i in range(depth + 1):
        c_out = base_channels * 2 ** i
        x = double(f"enc{i}", x, c, c_out)
        c = c_out
        if i < depth:
            skips.append((x, c))
            g.add_node(f"pool{i}", _L("max_pool2d", kernel_size=2), x)
            x = f"pool{i}"
    for i in range(depth - 1, -1, -1):
        skip, c_skip = skips[i]
        if upsample == "transpose":
            g.add_node(f"up{i}", _L("conv_transpose2d", in_channels=c, out_channels=c // 2,
                                    kernel_size=2, stride=2), x)
            c_up = c // 2
        else:
            g.add_node(f"up{i}", _L("upsample_nearest2d", scale_factor=2), x)
            c_up = c
        g.add_node(f"crop{i}", _L("center_crop"), [skip, f"up{i}"])
        g.add_node(f"cat{i}", _L("concat"), [f"crop{i}", f"up{i}"])
        x = double(f"dec{i}", f"cat{i}", c_skip + c_up, c_skip)
        c = c_skip
    g.add_node("head", _L("conv2d", in_channels=c, out_channels=num_classes, kernel_size=1), x)
    return _finish(g, (in_channels, input_size, input_size), build)


# =============================================================================== counting
_PASS = {"activation", "max_pool2d", "max_pool1d", "avg_pool2d", "avg_pool1d",
         "global_avg_pool", "global_max_pool", "flatten", "reshape", "dropout", "dropout2d",
         "alpha_dropout", "gaussian_noise", "add", "concat", "zero_pad2d", "crop2d",
         "center_crop", "upsample_nearest2d", "upsample_bilinear2d", "max_unpool2d",
         "softmax", "log_softmax", "local_response_norm"}


def _analytic_count(layer: Layer, shape) -> int | None:
    """Parameters of an unbuilt layer from its config and input shape, or None."""
    name = layer.name
    if name == "activation":
        return None if getattr(layer.fn, "name", "") == "prelu" else 0
    if name in _PASS:
        return 0
    if name in ("conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"):
        c_in, k = shape[0], math.prod(layer.kernel_size)
        w = (c_in * (layer.out_channels // layer.groups) if layer.transpose
             else layer.out_channels * (c_in // layer.groups)) * k
        return w + (layer.out_channels if layer.bias else 0)
    if name == "dense":
        if layer.act is not None and layer.act.fn.name == "prelu":
            return None
        return layer.out_features * shape[0] + (layer.out_features if layer.bias else 0)
    if name == "batch_norm":
        return 2 * layer.num_features if layer.affine else 0
    return None


def _walk_nodes(model):
    """``(key, layer, sources)`` in order and the input names, for both model kinds."""
    if isinstance(model, Graph):
        return [(k, layer, srcs) for k, (layer, srcs) in model.nodes.items()], \
            list(model.input_names)
    layers = model.layers if isinstance(model, Sequential) else list(model)
    nodes, prev = [], "input"
    for i, layer in enumerate(layers):
        layer = registry.create("layer", layer) if not isinstance(layer, Layer) else layer
        key = layer.key or str(i)
        nodes.append((key, layer, [prev]))
        prev = key
    return nodes, ["input"]


def count_params(model, trainable_only: bool = True, *, input_shape=None) -> int:
    """Number of parameters of ``model`` (convolution.md §10.5): weights, biases and
    batch-norm γ, β — not buffers such as running statistics; frozen parameters only
    with ``trainable_only=False``. Same as :func:`count_parameters` with the spec's
    argument order.

    ``model`` is a built or unbuilt ``Sequential``/``Graph``, a list of layers or layer
    specs (a chain), or a model config dict (``model.get_config()``). A built model sums
    its parameter arrays. Otherwise the per-sample ``input_shape`` (default: the model's
    own, or the one a preset of this module remembers) is walked through
    ``layer.output_shape`` and each layer is counted from its configuration without
    allocating anything (conv: ``C_out·(C_in/groups)·Πk + C_out``; dense:
    ``D_out·D_in + D_out``; batch norm ``2C``); any other layer with parameters is built
    alone, as a copy, to count it.
    """
    if not isinstance(trainable_only, bool):
        raise TypeError(f"count_params: trainable_only must be a bool, got "
                        f"{trainable_only!r} (pass the shape as input_shape=...)")
    return count_parameters(model, input_shape, trainable_only)


def count_parameters(model, input_shape=None, trainable_only: bool = True) -> int:
    """``count_params`` with the input shape as second argument:
    ``count_parameters(model_or_spec, (3, 224, 224))``. See :func:`count_params`."""
    if isinstance(model, dict):
        kind, config = model.get("kind"), model
        if input_shape is None and config.get("input_shape") is not None:
            input_shape = config["input_shape"]
        if kind == "sequential":
            model = Sequential([registry.get("layer", s["name"]).from_config(s["config"])
                                for s in config["layers"]])
        elif kind == "graph":
            model = Graph(inputs=config["inputs"], outputs=config["outputs"], nodes=[
                (n["node"], registry.get("layer", n["name"]).from_config(n["config"]),
                 n["inputs"]) for n in config["nodes"]])
        else:
            raise ValueError(f"count_params: a config dict needs kind 'sequential' or "
                             f"'graph', got {kind!r}")
    if isinstance(model, Model) and model.built and input_shape is None:
        return model.n_parameters(trainable_only=trainable_only)
    if input_shape is None:
        input_shape = (model.input_shape if isinstance(model, Model) and model.built
                       else getattr(model, "spec_input_shape", None))
    if input_shape is None:
        raise ShapeError("count_params: the model is not built; pass input_shape (the "
                         "per-sample input shape, e.g. (3, 224, 224))")
    nodes, inputs = _walk_nodes(model)
    multi = len(inputs) > 1
    shapes = dict(zip(inputs, input_shape if multi else [tuple(input_shape)]))
    total = 0
    for key, layer, srcs in nodes:
        in_shapes = [tuple(shapes[s]) for s in srcs]
        arg = in_shapes[0] if layer.n_inputs == 1 else in_shapes
        if layer.built:
            n = sum(p.size for p in layer.parameters() if p.trainable or not trainable_only)
        else:
            n = _analytic_count(layer, arg)
            if n is None:
                clone = type(layer).from_config(layer.get_config())
                clone.build(arg, np.float32, np.random.default_rng(0))
                n = sum(p.size for p in clone.parameters() if p.trainable or not trainable_only)
            elif trainable_only and not layer.trainable:
                n = 0
        total += n
        shapes[key] = tuple(layer.output_shape(arg))
    return int(total)



# =============================================================================== receptive field
_POINTWISE = {"activation", "batch_norm", "dropout", "dropout2d", "alpha_dropout",
              "gaussian_noise", "local_response_norm", "zero_pad2d", "crop2d", "center_crop"}
_STOP = {"flatten", "reshape", "dense", "global_avg_pool", "global_max_pool", "softmax",
         "log_softmax"}


def _pairs(value, nd):
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * nd


def _rf_triplet(item, nd):
    """``(k, S, d)`` per axis of a layer or tuple; None at the end of the feature
    extractor; raises for layers the formula does not cover."""
    if isinstance(item, (tuple, list)):
        if len(item) not in (2, 3):
            raise ValueError(f"receptive_field: a tuple entry is (k, S) or (k, S, d), got "
                             f"{item!r}")
        k, s = _pairs(item[0], nd), _pairs(item[1], nd)
        d = _pairs(item[2], nd) if len(item) == 3 else (1,) * nd
        return k, s, d
    name = getattr(item, "name", None)
    if name in ("conv1d", "conv2d"):
        return (_pairs(item.kernel_size, nd), _pairs(item.stride, nd), _pairs(item.dilation, nd))
    if name in ("max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"):
        k = _pairs(item.kernel_size, nd)
        s = k if item.stride is None else _pairs(item.stride, nd)
        return k, s, (1,) * nd
    if name in _POINTWISE:
        return (1,) * nd, (1,) * nd, (1,) * nd
    if name in _STOP:
        return None
    raise ValueError(f"receptive_field: no (k, S, d) rule for layer {name or item!r} "
                     f"(supported: conv, pooling, element-wise layers; it stops at "
                     f"{sorted(_STOP)})")


def receptive_field(layers, ndim: int = 2):
    """Receptive field of a chain of layers (convolution.md §9): with ``r = 1``, ``j = 1``
    and for each layer its kernel k, stride S and dilation d (per axis)::

        r ← r + (k − 1)·d·j;     j ← j·S

    ``layers`` is a ``Sequential`` or a list of layers and/or ``(k, S)`` / ``(k, S, d)``
    tuples. Element-wise layers (activations, batch norm, dropout, LRN, padding, crops)
    contribute ``(1, 1, 1)``; the walk ends at the first flatten/dense/global-pool layer
    (the end of the feature extractor). Returns an int, or a tuple per axis when the axes
    differ. Examples (TV-RF-01): 3×3 stacks → 3, 5, 7, …; (3×3 conv, 2×2/2 pool) × n →
    4, 10, 22, 46, 94; LeNet-5 C1-C5 → 32; 3×3 with dilations 1, 2, 4 → 15.
    """
    if isinstance(layers, Graph):
        raise TypeError("receptive_field: pass the list of layers along one path of the "
                        "graph (the formula is defined for chains)")
    items = layers.layers if isinstance(layers, Sequential) else list(layers)
    r, j = [1] * ndim, [1] * ndim
    for item in items:
        t = _rf_triplet(item, ndim)
        if t is None:
            break
        for a, (k, s, d) in enumerate(zip(*t)):
            r[a] += (k - 1) * d * j[a]
            j[a] *= s
    return r[0] if len(set(r)) == 1 else tuple(r)


# =============================================================================== LeNet-5 on MNIST
def train_lenet5_mnist(epochs: int = 15, seed: int = 0, verbose: bool = False, *,
                       batch_size: int = 64, lr: float = 2e-3, activation: str = "relu",
                       dtype="float32", max_train: int | None = None):
    """Train LeNet-5 (28×28 variant, ReLU, max-pool) on the bundled 8,000/2,000 MNIST
    split with Adam (lr 2e-3, cosine decay to 0 over ``epochs``), batch 64, float32.
    Returns ``(model, test_accuracy, seconds)`` (training time; data loading excluded).
    The defaults reach ≥ 98 % test accuracy in well under the 3-minute budget on 2 cores
    (benchmarks/RESULTS_lenet.md). ``max_train`` keeps only the first training images
    (smoke tests); the 2,000 test images are always used."""
    from .datasets import mnist_split

    X_tr, y_tr, X_te, y_te = mnist_split()
    if max_train is not None:
        X_tr, y_tr = X_tr[:int(max_train)], y_tr[:int(max_train)]
    X_tr, X_te = X_tr.astype(dtype), X_te.astype(dtype)
    model = lenet5(activation=activation, pool="max", input_size=28, dtype=dtype,
                   random_state=seed)
    model.compile(loss="cross_entropy", optimizer={"name": "adam", "lr": lr},
                  metrics=["accuracy"], scheduler={"name": "cosine", "T": epochs})
    start = time.perf_counter()
    model.fit(X_tr, y_tr, epochs=epochs, batch_size=batch_size, random_state=seed,
              verbose=verbose)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict_classes(X_te) == y_te))
    if verbose:
        print(f"LeNet-5: test accuracy {accuracy:.4f} after {epochs} epochs, {seconds:.1f} s")
    return model, accuracy, seconds
