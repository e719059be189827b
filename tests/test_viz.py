"""Visualisation (convolution.md §11; TV-VIZ-01, TV-VIZ-02)."""
import sys

import numpy as np
import pytest

import corenet
from corenet import Sequential, models, registry, viz
from corenet.errors import HyperparameterError, ShapeError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = corenet.get_num_threads()
    corenet.set_num_threads(1)
    yield
    corenet.set_num_threads(old)


def L(name, **kw):
    return registry.create("layer", {"name": name, **kw})


A = np.array([[[1.0, 0.0], [2.0, 1.0]], [[0.0, 3.0], [1.0, 1.0]]])


def cam_net(dtype="float64", identity=True):
    layers = ([L("activation", activation="identity")] if identity else []) + \
        [L("global_avg_pool"), L("dense", out_features=2)]
    m = Sequential(layers, dtype=dtype, input_shape=(2, 2, 2))
    m.layers[-1].W.data[...] = [[0.5, -1.0], [1.0, 1.0]]
    m.layers[-1].b.data[...] = [0.25, -0.5]
    return m


@pytest.fixture(scope="module")
def resnet():
    return models.small_resnet(input_size=12, channels=(3, 4), random_state=0)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((3, 1, 12, 12))


def tol(dtype):
    return dict(rtol=1e-9, atol=1e-10) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- TV-VIZ-01/02
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("identity", [True, False])
def test_tv_viz_01_cam_and_grad_cam(dtype, identity):
    m = cam_net(dtype, identity)
    np.testing.assert_allclose(viz.cam(m, A, 0), [[0.5, -3.0], [0.0, -0.5]], **tol(dtype))
    np.testing.assert_allclose(viz.grad_cam(m, A, 0), [[0.125, 0.0], [0.0, 0.0]], **tol(dtype))
    # z_c = mean CAM_c + b_c
    z = m.predict(A[None].astype(dtype))[0, 0]
    np.testing.assert_allclose(z, viz.cam(m, A, 0).mean() + 0.25, **tol(dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tv_viz_02_saliency_of_linear_scorer(dtype):
    w = np.array([[[1.0, -2.0], [0.0, 3.0]], [[-4.0, 1.0], [2.0, -1.0]]])
    m = Sequential([L("flatten"), L("dense", out_features=1, bias=False)], dtype=dtype,
                   input_shape=(2, 2, 2))
    m.layers[1].W.data[...] = w.reshape(1, -1)
    x = np.random.default_rng(0).normal(size=(2, 2, 2))
    np.testing.assert_allclose(viz.saliency(m, x, 0), [[4, 2], [2, 3]], **tol(dtype))
    np.testing.assert_allclose(viz.saliency(m, x, 0, reduce="l2"),
                               [[4.1231056256, 2.2360679775], [2.0, 3.1622776602]],
                               rtol=1e-9 if dtype == "float64" else 1e-5, atol=1e-6)
    batch = viz.saliency(m, np.stack([x, -x]), 0)
    assert batch.shape == (2, 2, 2) and np.allclose(batch[0], batch[1])


# --------------------------------------------------------------------------- gradients
def numeric_score_grad(model, x, c, score, idx, eps=1e-6):
    def s(v):
        z = model.forward(v[None], logits=True)[0]
        if score == "logit":
            return z[c]
        lp = z - z.max() - np.log(np.exp(z - z.max()).sum())
        return np.exp(lp[c]) if score == "prob" else lp[c]
    out = []
    for i in idx:
        a, b = x.copy(), x.copy()
        a.flat[i] += eps
        b.flat[i] -= eps
        out.append((s(a) - s(b)) / (2 * eps))
    return np.array(out)


@pytest.mark.parametrize("score", ["logit", "prob", "log_prob"])
def test_input_gradient_matches_central_differences(score, resnet, images):
    resnet.eval()
    x = images[0]
    g = viz.input_gradient(resnet, x, 2, score=score)
    idx = np.random.default_rng(0).choice(x.size, 15, replace=False)
    num = numeric_score_grad(resnet, x, 2, score, idx)
    resnet.train()
    np.testing.assert_allclose(g.flat[idx], num, rtol=1e-6, atol=1e-9)


def test_inspection_leaves_model_state_alone(resnet, images):
    theta = resnet.get_flat_parameters().copy()
    for p in resnet.parameters():
        p.grad[...] = 0.5
    resnet.train()
    viz.saliency(resnet, images, [0, 1, 2])
    viz.grad_cam(resnet, images, 1)
    viz.class_model(resnet, 1, steps=2)
    viz.deep_dream(resnet, images[0], "layer1.0.out", steps=2)
    assert resnet.training
    assert np.array_equal(resnet.get_flat_parameters(), theta)
    assert all(np.all(p.grad == 0.5) for p in resnet.parameters())
    for p in resnet.parameters():
        p.grad[...] = 0.0


def test_cam_and_grad_cam_on_a_resnet(resnet, images):
    c = viz.cam(resnet, images, [0, 1, 2])
    assert c.shape == (3, 6, 6)
    resnet.eval()
    z = resnet.forward(images)
    resnet.train()
    b = resnet.nodes["fc"][0].b.data
    np.testing.assert_allclose(c.mean(axis=(1, 2)) + b[[0, 1, 2]], z[[0, 1, 2], [0, 1, 2]],
                               rtol=1e-9, atol=1e-12)
    g = viz.grad_cam(resnet, images, [0, 1, 2])
    np.testing.assert_allclose(g, np.maximum(c / 36, 0), rtol=1e-9, atol=1e-12)
    assert viz.cam(resnet, images[0], 1, upsample="bilinear").shape == (12, 12)
    assert viz.grad_cam(resnet, images[0], 1, upsample="nearest").shape == (12, 12)
    g1 = viz.grad_cam(resnet, images, 1, layer="layer1.0.out")
    assert g1.shape == (3, 12, 12) and (g1 >= 0).all()


def test_cam_requires_gap_and_dense():
    m = models.lenet5(input_size=28, random_state=0)
    with pytest.raises(ValueError, match="global_avg_pool"):
        viz.cam(m, np.zeros((1, 28, 28)), 0)
    g = viz.grad_cam(m, np.random.default_rng(0).random((2, 1, 28, 28)), 3)
    assert g.shape == (2, 5, 5)                    # last map with h·w > 1 (S4)


# --------------------------------------------------------------------------- maps and filters
def test_feature_maps_and_filter_images():
    m = models.lenet5(input_size=28, random_state=0)
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    assert viz.feature_maps(m, x, 0).shape == (2, 6, 28, 28)
    assert viz.feature_maps(m, x[0], "5").shape == (16, 5, 5)
    assert viz.feature_maps(m, x, m.layers[6]).shape == (2, 120, 1, 1)
    f = viz.filter_images(m)
    assert f.shape == (6, 1, 5, 5)
    flat = f.reshape(6, -1)
    np.testing.assert_allclose(flat.min(axis=1), 0.0)
    np.testing.assert_allclose(flat.max(axis=1), 1.0)
    m.layers[0].W.data[2] = 0.7
    assert np.all(viz.filter_images(m.layers[0])[2] == 0.5)
    with pytest.raises(KeyError):
        viz.feature_maps(m, x, "nope")


# --------------------------------------------------------------------------- input optimisation
def test_class_model_is_gradient_ascent_with_l2(resnet):
    lenet = models.lenet5(input_size=28, random_state=0)
    g0 = viz.input_gradient(lenet, np.zeros((1, 28, 28)), 3)
    x1 = viz.class_model(lenet, 3, steps=1, lr=0.5, l2=0.1)
    np.testing.assert_allclose(x1, 0.5 * g0, rtol=1e-12, atol=1e-14)   # x0 = 0
    assert np.abs(x1).max() > 0
    # (a bias-free ReLU net has ∇S = 0 at x = 0: start elsewhere)
    x0 = np.random.default_rng(2).normal(size=(1, 12, 12))
    g0 = viz.input_gradient(resnet, x0, 3)
    x1 = viz.class_model(resnet, 3, steps=1, lr=0.5, l2=0.1, x0=x0)
    np.testing.assert_allclose(x1, x0 + 0.5 * (g0 - 0.2 * x0), rtol=1e-12, atol=1e-14)
    x2 = viz.class_model(resnet, 3, steps=2, lr=0.5, l2=0.1, x0=x0)
    g1 = viz.input_gradient(resnet, x1, 3)
    np.testing.assert_allclose(x2, x1 + 0.5 * (g1 - 0.2 * x1), rtol=1e-12, atol=1e-14)
    before = resnet.predict(x0[None])[0, 3]
    after = resnet.predict(viz.class_model(resnet, 3, steps=20, lr=5.0, x0=x0)[None])[0, 3]
    assert after > before + 0.05
    x = viz.class_model(lenet, 3, steps=30)
    assert lenet.predict(x[None])[0, 3] > lenet.predict(np.zeros((1, 1, 28, 28)))[0, 3] + 0.5
    xc = viz.class_model(resnet, 3, steps=5, clip=(-0.1, 0.1), jitter=2, blur_every=2,
                         random_state=0)
    assert xc.shape == (1, 12, 12) and np.abs(xc).max() <= 0.1 + 1e-12


def test_class_model_of_a_channel(resnet):
    key = "layer1.0.out"
    resnet.eval()
    x = viz.class_model(resnet, 1, steps=10, lr=0.5, layer=key, x0=np.full((1, 12, 12), 0.5))
    a0 = viz.feature_maps(resnet, np.full((1, 12, 12), 0.5), key)[1].mean()
    a1 = viz.feature_maps(resnet, x, key)[1].mean()
    resnet.train()
    assert a1 > a0


def test_deep_dream_normalised_step(resnet, images):
    key = "layer1.0.out"
    x = images[0]
    a = viz.feature_maps(resnet, x, key)
    d1 = viz.deep_dream(resnet, x, key, steps=1, lr=0.01)
    # g = J^T a: the input gradient of ½‖a‖²
    run = viz._Runner(resnet)
    resnet.eval()
    run.forward(x[None], upto=key)
    g = run.backward({key: a[None].copy()})[0]
    resnet.zero_grad()
    resnet.train()
    np.testing.assert_allclose(d1, x + 0.01 * g / (np.abs(g).mean() + 1e-8), rtol=1e-10)
    energy = lambda v: 0.5 * (viz.feature_maps(resnet, v, key) ** 2).sum()
    d = viz.deep_dream(resnet, x, key, steps=10, lr=0.05)
    assert energy(d) > energy(x)
    d2 = viz.deep_dream(resnet, x, key, steps=3, lr=0.05, octaves=2, jitter=1, random_state=0)
    assert d2.shape == x.shape and np.isfinite(d2).all()
    lenet = models.lenet5(input_size=28, random_state=0)
    with pytest.raises(ShapeError, match="octaves"):
        viz.deep_dream(lenet, np.zeros((1, 28, 28)), "9", steps=1, octaves=2)


def test_resize():
    x = np.arange(4.0).reshape(1, 2, 2)
    np.testing.assert_array_equal(viz.resize(x, (4, 4), "nearest")[0],
                                  np.kron(x[0], np.ones((2, 2))))
    b = viz.resize(x, (4, 4))
    assert b.shape == (1, 4, 4) and b[0, 0, 0] == 0.0 and b[0, -1, -1] == 3.0
    with pytest.raises(HyperparameterError):
        viz.resize(x, 3, "cubic")


def test_bad_arguments(resnet, images):
    with pytest.raises(HyperparameterError):
        viz.saliency(resnet, images, 0, score="energy")
    with pytest.raises(HyperparameterError):
        viz.saliency(resnet, images, 0, reduce="mean")
    with pytest.raises(ValueError, match="class indices"):
        viz.saliency(resnet, images, 10)
    with pytest.raises(ShapeError):
        viz.saliency(resnet, images, [0, 1])
    with pytest.raises(ShapeError):
        viz.cam(resnet, np.zeros((2, 1, 5, 5)), 0)
    with pytest.raises(HyperparameterError):
        viz.cam(resnet, images, 0, upsample="cubic")


# --------------------------------------------------------------------------- plots
def assert_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_plots_write_pngs(tmp_path, resnet, images):
    pytest.importorskip("matplotlib")
    lenet = models.lenet5(input_size=28, random_state=0)
    x = np.random.default_rng(0).random((1, 28, 28))
    assert_png(viz.plot_filters(lenet, tmp_path / "filters.png"))
    assert_png(viz.plot_filters(lenet, tmp_path / "c3.png", layer=3))
    assert_png(viz.plot_feature_maps(lenet, x, 1, tmp_path / "maps.png"))
    assert_png(viz.plot_saliency(lenet, x, 3, tmp_path / "sal.png"))
    assert_png(viz.plot_cam(resnet, images[0], 1, tmp_path / "cam.png"))
    assert_png(viz.plot_cam(lenet, x, 1, tmp_path / "gcam.png", method="grad_cam"))
    assert_png(viz.plot_images([x, x[0]], tmp_path / "imgs.png", titles=["a", "b"]))
    with pytest.raises(ShapeError):
        viz.plot_feature_maps(lenet, x, 9, tmp_path / "dense.png")


def test_plots_without_matplotlib_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"corenet\[plot\]"):
        viz.plot_filters(models.lenet5(random_state=0), tmp_path / "f.png")
