"""Data augmentation (regularization.md §9, D-65, TV-AUG-01) and the ``augment`` callback."""
import json

import numpy as np
import pytest

from corenet import Sequential, hookimpl, registry
from corenet.augmentations import (Augment, Compose, RandomRotation, grey, rotate, sample,
                                   shear, translate)
from corenet.errors import DTypeError, HyperparameterError, ShapeError
from corenet.layers.core import Dense

NAMES = ["random_flip", "random_translate", "random_crop", "random_rotation", "random_shear",
         "brightness", "contrast", "saturation", "channel_noise", "gaussian_input_noise",
         "compose"]


def images(n=5, c=3, h=6, w=7, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(dtype)


def naive_bilinear(img, u, v, fill=0.0):
    """Per-pixel reference for one channel: inverse mapping, fill outside."""
    h, w = img.shape
    out = np.zeros(u.shape)
    for (i, j), uu in np.ndenumerate(u):
        vv = v[i, j]
        i0, j0 = int(np.floor(uu)), int(np.floor(vv))
        total = 0.0
        for a in (0, 1):
            for b in (0, 1):
                wt = (uu - i0 if a else 1 - (uu - i0)) * (vv - j0 if b else 1 - (vv - j0))
                ii, jj = i0 + a, j0 + b
                total += wt * (img[ii, jj] if 0 <= ii < h and 0 <= jj < w else fill)
        out[i, j] = total
    return out


def test_tv_aug_01_rotation_convention():
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(rotate(x, 90), [[6, 3, 0], [7, 4, 1], [8, 5, 2]])
    np.testing.assert_array_equal(rotate(x, 90), np.rot90(x, k=-1))
    y = images(2, 3, 4, 5)
    np.testing.assert_array_equal(rotate(y, 180), np.rot90(y, 2, axes=(2, 3)))
    sq = images(2, 2, 5, 5)
    np.testing.assert_array_equal(rotate(sq, -90), np.rot90(sq, 1, axes=(2, 3)))
    np.testing.assert_array_equal(rotate(sq, 0), sq)


def test_rotation_and_shear_match_naive_bilinear():
    img = images(1, 1, 5, 6)[0, 0]
    h, w = img.shape
    ci, cj = (h - 1) / 2, (w - 1) / 2
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    phi = np.deg2rad(33.0)
    u = ci + (i - ci) * np.cos(phi) - (j - cj) * np.sin(phi)
    v = cj + (i - ci) * np.sin(phi) + (j - cj) * np.cos(phi)
    np.testing.assert_allclose(rotate(img, 33.0), naive_bilinear(img, u, v), rtol=1e-12,
                               atol=1e-14)
    psi = np.deg2rad(-20.0)
    np.testing.assert_allclose(shear(img, -20.0),
                               naive_bilinear(img, i.astype(float), j + np.tan(psi) * (i - ci)),
                               rtol=1e-12, atol=1e-14)
    # nearest and fill
    out = sample(img[None, None], u[None], v[None], "nearest", fill=-1.0)[0, 0]
    ui, vi = np.floor(u + 0.5).astype(int), np.floor(v + 0.5).astype(int)
    inside = (ui >= 0) & (ui < h) & (vi >= 0) & (vi < w)
    np.testing.assert_array_equal(out[inside], img[ui[inside], vi[inside]])
    assert np.all(out[~inside] == -1.0)


def test_translate_definition():
    x = images(1, 2, 4, 5)
    y = translate(x, (1, -2))
    ref = np.zeros_like(x)
    ref[..., 1:, :3] = x[..., :3, 2:]
    np.testing.assert_array_equal(y, ref)


def test_registry_configs_dtypes_and_determinism():
    assert set(NAMES) <= set(registry.names("augmentation"))
    for name in NAMES:
        t = registry.create("augmentation", name)
        cfg = json.loads(json.dumps(t.get_config()))
        again = registry.create("augmentation", {"name": name, **cfg})
        assert again.get_config() == t.get_config()
        for dtype in (np.float32, np.float64):
            x = images(dtype=dtype)
            y = t(x, np.random.default_rng(3))
            assert y.dtype == dtype and y.shape == x.shape and y.flags.c_contiguous
            np.testing.assert_array_equal(y, again(x, np.random.default_rng(3)))
            np.testing.assert_array_equal(t(x[0], 5), again(x[:1], 5)[0])
        np.testing.assert_array_equal(x, images())             # input untouched


def test_parameters_drawn_per_sample():
    x = np.repeat(images(1), 6, axis=0)
    for name in ("random_translate", "random_crop", "random_rotation", "random_shear",
                 "brightness", "contrast", "saturation", "channel_noise",
                 "gaussian_input_noise"):
        y = registry.create("augmentation", name)(x, np.random.default_rng(1))
        assert len({y[i].tobytes() for i in range(6)}) > 1, name


def test_flip_probability_and_p():
    x = images(200, 1, 3, 4)
    t = registry.create("augmentation", {"name": "random_flip", "p": 1.0})
    np.testing.assert_array_equal(t(x, 0), x[..., ::-1])
    t = registry.create("augmentation", {"name": "random_flip", "horizontal": False,
                                         "vertical": True, "p": 1.0})
    np.testing.assert_array_equal(t(x, 0), x[..., ::-1, :])
    y = registry.create("augmentation", "random_flip")(x, 0)
    flipped = np.array([np.array_equal(a, b[..., ::-1]) for a, b in zip(y, x)])
    assert 0.35 < flipped.mean() < 0.65
    for name in NAMES[1:-1]:
        t = registry.create("augmentation", {"name": name, "p": 0.0})
        np.testing.assert_array_equal(t(x[:, :1].repeat(3, axis=1), 0),
                                      x[:, :1].repeat(3, axis=1))


def test_crop_definition():
    x = images(3, 2, 4, 4)
    same = registry.create("augmentation", {"name": "random_crop", "padding": 0})
    np.testing.assert_array_equal(same(x, 0), x)
    t = registry.create("augmentation", {"name": "random_crop", "size": (3, 3), "padding": 1})
    y = t(x, np.random.default_rng(2))
    assert y.shape == (3, 2, 3, 3)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for n in range(3):
        windows = [padded[n, :, a:a + 3, b:b + 3] for a in range(4) for b in range(4)]
        assert any(np.array_equal(y[n], wdw) for wdw in windows)
    with pytest.raises(HyperparameterError, match="p = 1"):
        registry.create("augmentation", {"name": "random_crop", "size": 3, "p": 0.5})(x, 0)
    with pytest.raises(HyperparameterError, match="exceeds"):
        registry.create("augmentation", {"name": "random_crop", "size": 9, "padding": 1})(x, 0)


def test_translate_range():
    x = np.zeros((400, 1, 9, 9))
    x[:, 0, 4, 4] = 1.0
    y = registry.create("augmentation", {"name": "random_translate", "max_shift": (1, 2)})(x, 0)
    pos = np.argwhere(y[:, 0] == 1.0)[:, 1:] - 4
    assert set(pos[:, 0]) == {-1, 0, 1} and set(pos[:, 1]) == {-2, -1, 0, 1, 2}


def test_photometric_definitions():
    x = images(300, 3, 4, 4)
    b = registry.create("augmentation", {"name": "brightness", "delta": 0.3})(x, 0)
    ratio = (b / x).reshape(300, -1)
    assert np.allclose(ratio, ratio[:, :1]) and ratio.min() >= 0.7 and ratio.max() <= 1.3
    a = registry.create("augmentation", {"name": "brightness", "mode": "additive"})(x, 0)
    diff = (a - x).reshape(300, -1)
    assert np.allclose(diff, diff[:, :1]) and np.abs(diff).max() <= 0.2
    c = registry.create("augmentation", "contrast")(x, 0)
    np.testing.assert_allclose(grey(c).mean(axis=(1, 2, 3)), grey(x).mean(axis=(1, 2, 3)),
                               rtol=1e-12)
    s = registry.create("augmentation", "saturation")(x, 0)
    np.testing.assert_allclose(grey(s), grey(x), rtol=1e-12)       # luma weights sum to 1
    np.testing.assert_allclose(grey(x)[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1]
                               + 0.114 * x[:, 2], rtol=1e-14)
    with pytest.raises(ShapeError, match="saturation"):
        registry.create("augmentation", "saturation")(images(2, 1), 0)
    cn = registry.create("augmentation", {"name": "channel_noise", "stddev": 0.5})(x, 0)
    d = (cn - x).reshape(300, 3, -1)
    assert np.allclose(d, d[..., :1]) and 0.4 < d[..., 0].std() < 0.6
    g = registry.create("augmentation", {"name": "gaussian_input_noise", "stddev": 0.2})(x, 0)
    assert 0.19 < (g - x).std() < 0.21
    clipped = registry.create("augmentation", {"name": "gaussian_input_noise", "stddev": 1.0,
                                               "clip": (0, 1)})(x, 0)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_compose_order():
    x = images(4)
    t = Compose([{"name": "random_flip", "p": 1.0},
                 ("brightness", {"delta": 0.0, "mode": "additive"}),
                 registry.create("augmentation", {"name": "gaussian_input_noise",
                                                  "stddev": 0.0})])
    np.testing.assert_array_equal(t(x, 0), x[..., ::-1])
    both = Compose([{"name": "random_rotation", "degrees": 20}, "contrast"])
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    manual = registry.create("augmentation", "contrast")(
        RandomRotation(20)(x, rng_b), rng_b)
    np.testing.assert_array_equal(both(x, rng_a), manual)


@pytest.mark.parametrize("name, kwargs", [
    ("random_flip", {"p": 1.5}), ("random_translate", {"max_shift": -1}),
    ("random_translate", {"max_shift": 1.5}), ("random_crop", {"padding": -1}),
    ("random_crop", {"size": (0, 3)}), ("random_rotation", {"degrees": -5}),
    ("random_rotation", {"interpolation": "cubic"}), ("random_rotation", {"fill": np.nan}),
    ("random_shear", {"degrees": 90}), ("brightness", {"mode": "gamma"}),
    ("contrast", {"delta": -0.1}), ("channel_noise", {"stddev": -1}),
    ("gaussian_input_noise", {"clip": (1, 0)})])
def test_bad_hyperparameters(name, kwargs):
    with pytest.raises(HyperparameterError, match=name):
        registry.create("augmentation", {"name": name, **kwargs})


def test_bad_inputs():
    t = registry.create("augmentation", "random_rotation")
    with pytest.raises(DTypeError, match="random_rotation"):
        t(np.zeros((2, 1, 3, 3), dtype=np.int64))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        t(np.zeros((3, 3)))
    with pytest.raises(DTypeError):
        t([[1.0]])


# ----------------------------------------------------------------------------- the callback
def image_model(seed=0):
    Flatten = registry.get("layer", "flatten")
    m = Sequential([Flatten(), Dense(2, 3 * 4 * 4)], input_shape=(3, 4, 4), random_state=seed)
    m.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.01})
    return m


def test_augment_callback_replaces_each_batch():
    X = images(12, 3, 4, 4)
    y = np.random.default_rng(1).normal(size=(12, 2))
    X_copy = X.copy()
    seen = []

    class Spy:
        @hookimpl(trylast=True)
        def corenet_on_batch_begin(self, X):
            seen.append(X.copy())

    aug = Augment({"name": "random_flip", "p": 1.0})
    m = image_model()
    m.fit(X, y, epochs=2, batch_size=4, callbacks=[aug, Spy()], random_state=0)
    np.testing.assert_array_equal(X, X_copy)                 # the data set is untouched
    flipped = X[..., ::-1]
    for batch in seen:
        for sample in batch:
            assert any(np.array_equal(sample, f) for f in flipped)
    a, b = image_model(), image_model()
    a.fit(X, y, epochs=2, batch_size=4, random_state=0,
          callbacks=[Augment("random_rotation", random_state=3)])
    b.fit(X, y, epochs=2, batch_size=4, random_state=0,
          callbacks=[Augment("random_rotation", random_state=3)])
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert json.dumps(aug.get_config())


def test_augment_callback_refuses_views_and_bad_transforms():
    X = images(8, 3, 4, 4)
    y = np.zeros((8, 2))
    aug = Augment("random_flip")
    with pytest.raises(RuntimeError, match="shuffle"):          # a view of the data set
        aug.corenet_on_batch_begin(trainer=None, X=X[0:4])
    X_copy = X.copy()
    try:                       # refused, or (trainer gathering a private copy) harmless
        image_model().fit(X, y, epochs=1, batch_size=4, shuffle=False, callbacks=[aug])
    except RuntimeError as e:
        assert "shuffle" in str(e)
    np.testing.assert_array_equal(X, X_copy)
    with pytest.raises(HyperparameterError, match="size"):
        Augment({"name": "random_crop", "size": 2})
    with pytest.raises(HyperparameterError, match="augment"):
        Augment("random_flip", random_state="x")
    with pytest.raises(ShapeError, match="augment"):
        flat = Sequential([Dense(1, 3)], input_shape=(3,))
        flat.fit(np.zeros((4, 3)), np.zeros((4, 1)), epochs=1, callbacks=[Augment()])
