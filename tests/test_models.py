"""Architecture builders, parameter counts and receptive fields (convolution.md §8-10;
TV-ARCH-01, TV-RF-01)."""
import numpy as np
import pytest

import corenet
from corenet import Graph, Sequential, models, registry
from corenet.datasets import synthetic_segmentation
from corenet.errors import HyperparameterError, ShapeError
from corenet.testing import check_gradients


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One kernel thread: these are correctness tests, and on a loaded shared machine
    2-thread kernels can wait on each other (see benchmarks for throughput)."""
    old = corenet.get_num_threads()
    corenet.set_num_threads(1)
    yield
    corenet.set_num_threads(old)


def L(name, **kw):
    return registry.create("layer", {"name": name, **kw})


def conv_count(c_in, c_out, k, bias=True):
    return c_out * c_in * k * k + (c_out if bias else 0)


def dense_count(d_in, d_out):
    return d_in * d_out + d_out


def spatial_chain(model):
    return [shape[-1] for _, layer, shape in model.describe()
            if layer.name in ("conv2d", "max_pool2d", "avg_pool2d")]


def fit_steps(model, X, y, loss="cross_entropy", steps=20, lr=3e-3):
    """Train ``steps`` full-batch Adam steps; return the first and last batch losses."""
    model.compile(loss=loss, optimizer={"name": "adam", "lr": lr})
    h = model.fit(X, y, epochs=steps, batch_size=X.shape[0], shuffle=False)
    return h.batch_losses[0], h.batch_losses[-1]


# --------------------------------------------------------------------------- TV-ARCH-01
def test_lenet5_classic_count_and_chain():
    m = models.lenet5(activation="tanh", pool="max", num_classes=10)
    assert m.input_shape == (1, 32, 32)
    per_layer = [layer.n_parameters() for layer in m.layers if layer.n_parameters()]
    assert per_layer == [156, 2416, 48120, 10164, 850]
    assert models.count_params(m) == 61706 == m.n_parameters()
    assert spatial_chain(m) == [28, 14, 10, 5, 1]
    assert m.output_shape() == (10,)


def test_lenet5_28x28_variant_same_count():
    m = models.lenet5(input_size=28, activation="relu", pool="avg")
    assert m.input_shape == (1, 28, 28)
    assert spatial_chain(m) == [28, 14, 10, 5, 1]
    assert models.count_params(m) == 61706
    assert m.layers[2].name == "avg_pool2d"
    with pytest.raises(HyperparameterError):
        models.lenet5(input_size=30)
    with pytest.raises(HyperparameterError):
        models.lenet5(pool="min")


def test_big_presets_counted_without_allocation():
    for builder, total in ((models.alexnet, 61_100_840), (models.vgg16, 138_357_544),
                           (models.vgg19, 143_667_240), (models.resnet18, 11_689_512)):
        m = builder()
        assert not m.built and not any(layer.built for layer in m.layers_in_order())
        assert models.count_params(m) == total
        assert models.count_parameters(m, (3, 224, 224)) == total
        assert not any(layer.built for layer in m.layers_in_order())
    # AlexNet with LRN layers: no extra parameters
    m = models.alexnet(lrn=True)
    assert sum(layer.name == "local_response_norm" for layer in m.layers) == 2
    assert models.count_params(m) == 61_100_840


def test_vgg16_conv_and_dense_parts():
    m = models.vgg16()
    convs = [layer for layer in m.layers if layer.name == "conv2d"]
    assert len(convs) == 13 and sum(c.out_channels for c in convs) == 4224
    assert sum(c.out_channels * c.in_channels for c in convs) == 1_634_496   # 2-D kernels
    per = [conv_count(c.in_channels, c.out_channels, 3) for c in convs]
    assert per[:8] == [1792, 36928, 73856, 147584, 295168, 590080, 590080, 1180160]
    assert per[8:] == [2359808] * 5
    assert sum(per) == 14_714_688
    assert dense_count(25088, 4096) + dense_count(4096, 4096) + dense_count(4096, 1000) \
        == 123_642_856
    assert len([c for c in models.vgg19().layers if c.name == "conv2d"]) == 16


def test_alexnet_chain_and_resnet18_blocks():
    m = models.alexnet()
    shapes, shape = [], m.spec_input_shape
    for layer in m.layers:
        shape = layer.output_shape(shape)
        if layer.name in ("conv2d", "max_pool2d"):
            shapes.append(shape[-1])
    assert shapes == [55, 27, 27, 13, 13, 13, 13, 6]
    g = models.resnet18()
    counts = []
    for stage in range(1, 5):
        for block in range(2):
            prefix = f"layer{stage}.{block}."
            counts.append(sum(models.count_parameters([layer], shape)
                              for layer, shape in _block_layers(g, prefix)))
    assert counts == [73984, 73984, 230144, 295424, 919040, 1180672, 3673088, 4720640]


def _block_layers(g, prefix):
    """(layer, input shape) of the nodes whose name starts with prefix (single-input)."""
    shapes = {"input": (3, 224, 224)}
    out = []
    for name, (layer, srcs) in g.nodes.items():
        arg = shapes[srcs[0]] if layer.n_inputs == 1 else [shapes[s] for s in srcs]
        shapes[name] = layer.output_shape(arg)
        if name.startswith(prefix) and layer.n_inputs == 1:
            out.append((layer, arg))
    return out


def test_conv_and_dense_counts_of_the_vectors():
    def one(layer, shape):
        return models.count_parameters([layer], shape)

    assert one(L("conv2d", in_channels=3, out_channels=6, kernel_size=5), (3, 32, 32)) == 456
    assert one(L("conv2d", in_channels=6, out_channels=10, kernel_size=5), (6, 14, 14)) == 1510
    assert one(L("conv2d", in_channels=64, out_channels=32, kernel_size=1), (64, 8, 8)) == 2080
    assert one(L("conv2d", in_channels=1, out_channels=20, kernel_size=5), (1, 28, 28)) == 520
    assert one(L("dense", out_features=30), (784,)) == 23550


def test_count_params_inputs_and_options():
    m = models.small_resnet(build=False)
    assert models.count_parameters(m.get_config(), (1, 28, 28)) == 5122
    built = models.small_resnet()
    assert models.count_params(built.get_config()) == 5122       # config carries the shape
    # a layer the analytic table does not know is built alone (prelu activation)
    seq = [L("conv2d", in_channels=2, out_channels=3, kernel_size=3),
           L("activation", activation="prelu"), L("flatten"), L("dense", out_features=4)]
    assert models.count_params(seq, input_shape=(2, 5, 5)) == 57 + 3 + (27 * 4 + 4)
    frozen = Sequential([L("dense", out_features=3, trainable=False), L("dense", out_features=2)])
    assert models.count_params(frozen, input_shape=(4,)) == 8
    assert models.count_params(frozen, False, input_shape=(4,)) == 23
    assert models.count_parameters(frozen, (4,), trainable_only=False) == 23
    with pytest.raises(TypeError, match="input_shape"):
        models.count_params(frozen, (4,))
    with pytest.raises(ShapeError, match="input_shape"):
        models.count_params(Sequential([L("dense", out_features=2)]))


# --------------------------------------------------------------------------- TV-RF-01
def test_receptive_field_vectors():
    conv3 = (3, 1)
    assert [models.receptive_field([conv3] * n) for n in range(1, 6)] == [3, 5, 7, 9, 11]
    pairs = [[L("conv2d", in_channels=1, out_channels=1, kernel_size=3),
              L("max_pool2d", kernel_size=2)] * n for n in range(1, 6)]
    assert [models.receptive_field(p) for p in pairs] == [4, 10, 22, 46, 94]
    assert models.receptive_field(models.lenet5()) == 32          # stops at flatten
    dil = [L("conv2d", in_channels=1, out_channels=1, kernel_size=3, dilation=d)
           for d in (1, 2, 4)]
    assert models.receptive_field(dil) == 15
    assert models.receptive_field([(3, 1), (3, 1)]) == 5
    assert models.receptive_field([((3, 5), 1)]) == (3, 5)
    with pytest.raises(ValueError, match="upsample_nearest2d"):
        models.receptive_field([L("upsample_nearest2d")])
    with pytest.raises(TypeError):
        models.receptive_field(models.small_resnet())


# --------------------------------------------------------------------------- small nets
@pytest.fixture(scope="module")
def digits():
    from corenet.datasets import mnist_split

    X, y = mnist_split()[:2]
    return X[:48].astype(np.float32), y[:48]


def test_small_vgg(digits):
    m = models.small_vgg(dtype="float32", random_state=0)
    convs = sum(conv_count(a, b, 3, bias=False) for a, b in ((1, 8), (8, 8), (8, 16), (16, 16)))
    bn = 2 * (8 + 8 + 16 + 16)
    assert models.count_params(m) == convs + bn + dense_count(784, 64) + dense_count(64, 64) \
        + dense_count(64, 10) == 59250
    first, last = fit_steps(m, *digits)
    assert last < 0.7 * first


def test_small_alexnet_has_lrn_and_trains(digits):
    m = models.small_alexnet(dtype="float32", random_state=0)
    assert sum(layer.name == "local_response_norm" for layer in m.layers) == 2
    expected = (conv_count(1, 16, 5) + conv_count(16, 32, 3) + conv_count(32, 48, 3)
                + conv_count(48, 32, 3) + dense_count(128, 64) + dense_count(64, 10))
    assert models.count_params(m) == expected == 41690
    first, last = fit_steps(m, *digits)
    assert last < 0.8 * first


def test_small_resnet_identity_and_projection(digits):
    m = models.small_resnet(dtype="float32", random_state=0)
    assert isinstance(m, Graph)
    assert "layer1.0.proj" not in m.nodes and "layer2.0.proj" in m.nodes   # identity / projection
    assert m.nodes["layer2.0.add"][1] == ["layer2.0.bn2", "layer2.0.proj_bn"]
    assert m.nodes["layer1.0.add"][1] == ["layer1.0.bn2", "stem.relu"]
    block = lambda ci, co, proj: 9 * ci * co + 9 * co * co + 4 * co + (ci * co + 2 * co) * proj
    expected = 9 * 8 + 16 + block(8, 8, 0) + block(8, 16, 1) + dense_count(16, 10)
    assert models.count_params(m) == expected == 5122
    first, last = fit_steps(m, *digits, lr=3e-2)
    assert last < 0.8 * first


def test_small_densenet_concat(digits):
    m = models.small_densenet(dtype="float32", random_state=0)
    assert m.output_shape() == (10,)
    assert m._shapes["block1.out"] == (8 + 3 * 4, 28, 28)
    assert m._shapes["block2.out"][0] == 10 + 3 * 4

    def block(c0, n, k):
        total, c = 0, c0
        for _ in range(n):
            total += 2 * c + conv_count(c, k, 3)
            c += k
        return total, c

    b1, c = block(8, 3, 4)
    b2, c2 = block(c // 2, 3, 4)
    expected = conv_count(1, 8, 3) + b1 + 2 * c + conv_count(c, c // 2, 1) + b2 + 2 * c2 \
        + dense_count(c2, 10)
    assert models.count_params(m) == expected == 3592
    first, last = fit_steps(m, *digits, lr=3e-2)
    assert last < 0.8 * first


def test_small_inception(digits):
    m = models.small_inception(dtype="float32", random_state=0)

    def module(c, c1, r3, c3, r5, c5, pp):
        return (conv_count(c, c1, 1) + conv_count(c, r3, 1) + conv_count(r3, c3, 3)
                + conv_count(c, r5, 1) + conv_count(r5, c5, 5) + conv_count(c, pp, 1))

    expected = conv_count(1, 8, 3) + module(8, 8, 6, 8, 2, 4, 4) + \
        module(24, 12, 8, 12, 2, 4, 4) + dense_count(32, 10)
    assert models.count_params(m) == expected == 2964
    assert m._shapes["inc1.out"] == (24, 14, 14) and m._shapes["inc2.out"] == (32, 7, 7)
    first, last = fit_steps(m, *digits, lr=1e-2)
    assert last < 0.85 * first


def test_unet_trains_on_synthetic_segmentation():
    X, y = synthetic_segmentation(32, size=16, n_classes=3, random_state=0, dtype=np.float32)
    m = models.unet(num_classes=3, input_size=16, base_channels=4, dtype="float32",
                    random_state=0)
    assert m.output_shape() == (3, 16, 16)
    enc = lambda ci, co: 9 * ci * co + 9 * co * co + 4 * co
    expected = (enc(1, 4) + enc(4, 8) + enc(8, 16) + (16 * 8 * 4 + 8) + enc(16, 8)
                + (8 * 4 * 4 + 4) + enc(8, 4) + conv_count(4, 3, 1))
    assert models.count_params(m) == expected
    first, last = fit_steps(m, X, y, loss={"name": "cross_entropy", "axis": 1}, steps=12,
                            lr=1e-2)
    assert last < 0.6 * first


def test_unet_valid_padding_crops_and_nearest():
    m = models.unet(padding=0, input_size=60, random_state=0)
    assert m.output_shape() == (2, 20, 20)
    assert m._shapes["enc1.relu2"] == (16, 24, 24) and m._shapes["crop1"] == (16, 16, 16)
    assert m._shapes["enc0.relu2"] == (8, 56, 56) and m._shapes["crop0"] == (8, 24, 24)
    n = models.unet(upsample="nearest", random_state=0)
    assert n.nodes["up0"][0].name == "upsample_nearest2d" and n.output_shape() == (2, 32, 32)


def test_graph_models_gradients():
    """Whole-model gradient checks of the skip structures (add, concat, center_crop)."""
    rng = np.random.default_rng(1)
    cases = [(models.small_resnet(input_size=8, channels=(2, 3), random_state=0), (1, 8, 8), 3),
             (models.small_densenet(input_size=8, stem_channels=2, growth_rate=2,
                                    block_layers=(2,), random_state=0), (1, 8, 8), 3),
             (models.unet(padding=0, input_size=28, base_channels=2, depth=1,
                          random_state=0), (1, 28, 28), None)]
    for model, shape, k in cases:
        X = rng.normal(size=(2,) + shape)
        if k is None:
            out = model.output_shape()
            y = rng.integers(0, out[0], size=(2,) + out[1:])
            loss = {"name": "cross_entropy", "axis": 1}
        else:
            y = rng.integers(0, 10, size=2)
            loss = "cross_entropy"
        check_gradients(model, loss, X, y, max_entries=12).assert_ok()


def test_models_save_and_load_roundtrip(tmp_path):
    m = models.small_inception(random_state=0)
    X = np.random.default_rng(0).random((3, 1, 28, 28))
    m.save(tmp_path / "inc.npz")
    back = corenet.load(tmp_path / "inc.npz")
    np.testing.assert_allclose(back.predict(X), m.predict(X), rtol=1e-12)
