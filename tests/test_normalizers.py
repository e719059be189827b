"""Tests of corenet.normalizers (spec normalization.md §1, D-67)."""
import numpy as np
import pytest

from corenet import registry
from corenet.errors import HyperparameterError, NotFiniteError, ShapeError
from corenet.normalizers import MinMax, NotFittedError, Standardize

TV = dict(rtol=1e-9, atol=1e-10)


def data(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(3.0, 2.0, size=shape) * rng.uniform(0.5, 4.0, size=shape[1:])


def test_registered():
    assert registry.get("normalizer", "standardize") is Standardize
    assert registry.get("normalizer", "min_max") is MinMax
    for layer_name in ("batch_norm", "layer_norm", "weight_norm"):
        assert layer_name not in registry.names("normalizer")


def test_standardize_2d_against_numpy():
    X = data((200, 5))
    s = Standardize().fit(X)
    mu, sd = X.mean(axis=0), X.std(axis=0)          # ddof = 0
    np.testing.assert_allclose(s.mean_, mu, **TV)
    np.testing.assert_allclose(s.scale_, sd, **TV)
    Z = s.transform(X)
    np.testing.assert_allclose(Z, (X - mu) / sd, **TV)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, **TV)
    np.testing.assert_allclose(s.inverse_transform(Z), X, **TV)
    np.testing.assert_allclose(Standardize().fit_transform(X), Z, **TV)


def test_standardize_small_vector():
    X = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [4.0, 10.0]])
    s = Standardize().fit(X)
    # constant column: std 1 instead of a division by zero -> only centred
    np.testing.assert_allclose(s.scale_, [np.sqrt(1.25), 1.0], **TV)
    np.testing.assert_allclose(s.transform(X)[:, 0],
                               [-1.3416407865, -0.4472135955, 0.4472135955, 1.3416407865],
                               rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(s.transform(X)[:, 1], 0.0)


def test_training_statistics_applied_to_test_data():
    """D-67: validation/test data use the training statistics, never their own."""
    Xtr = data((300, 4), 1)
    Xte = Xtr[:50] + 5.0 * Xtr.std(0)
    s = Standardize().fit(Xtr)
    np.testing.assert_allclose(s.transform(Xte), (Xte - Xtr.mean(0)) / Xtr.std(0), **TV)
    assert np.abs(s.transform(Xte).mean(axis=0)).min() > 4.0   # not re-centred


def test_standardize_images_per_channel():
    """§1: for (N, C, H, W) statistics are per channel over N, H, W."""
    X = np.arange(16.0).reshape(2, 2, 2, 2)
    s = Standardize().fit(X)
    np.testing.assert_allclose(s.mean_, [5.5, 9.5], **TV)
    np.testing.assert_allclose(s.scale_ ** 2, [17.25, 17.25], **TV)
    Z = s.transform(X)
    np.testing.assert_allclose(Z.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.var(axis=(0, 2, 3)), 1.0, **TV)
    np.testing.assert_allclose(s.inverse_transform(Z), X, **TV)


def test_standardize_images_per_feature():
    X = data((40, 3, 4, 5))
    s = Standardize(per_channel=False).fit(X)
    assert s.mean_.shape == (3, 4, 5)
    np.testing.assert_allclose(s.transform(X), (X - X.mean(0)) / X.std(0), **TV)
    s2 = Standardize(per_channel=True).fit(X[:, :, 0, 0])
    np.testing.assert_allclose(s2.mean_, X[:, :, 0, 0].mean(0), **TV)


def test_with_mean_with_std_and_1d():
    X = data((100, 3))
    np.testing.assert_allclose(Standardize(with_mean=False).fit_transform(X), X / X.std(0), **TV)
    np.testing.assert_allclose(Standardize(with_std=False).fit_transform(X), X - X.mean(0), **TV)
    y = np.array([1.0, 3.0, 5.0])
    s = Standardize().fit(y)
    np.testing.assert_allclose(s.transform(y), (y - 3.0) / np.sqrt(8 / 3), **TV)


def test_dtypes():
    X32 = data((50, 3)).astype(np.float32)
    Z = Standardize().fit(X32).transform(X32)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, (X32 - X32.mean(0)) / X32.std(0), rtol=1e-5, atol=1e-6)
    Xi = np.arange(12).reshape(4, 3)
    assert Standardize().fit_transform(Xi).dtype == np.float64


def test_min_max():
    X = data((100, 4))
    m = MinMax().fit(X)
    Z = m.transform(X)
    np.testing.assert_allclose(Z, (X - X.min(0)) / (X.max(0) - X.min(0)), **TV)
    np.testing.assert_allclose(Z.min(0), 0.0, atol=1e-15)
    np.testing.assert_allclose(Z.max(0), 1.0, **TV)
    np.testing.assert_allclose(m.inverse_transform(Z), X, **TV)
    Z = MinMax(feature_range=(-1, 1)).fit_transform(X)
    np.testing.assert_allclose([Z.min(), Z.max()], [-1.0, 1.0], **TV)
    Xc = np.array([[1.0, 2.0], [3.0, 2.0]])           # constant column -> feature_range[0]
    np.testing.assert_allclose(MinMax().fit_transform(Xc), [[0.0, 0.0], [1.0, 0.0]], **TV)
    img = np.arange(16.0).reshape(2, 2, 2, 2)
    np.testing.assert_allclose(MinMax().fit(img).data_min_, [0.0, 4.0], **TV)


@pytest.mark.parametrize("cls", [Standardize, MinMax])
def test_state_roundtrip(cls):
    X = data((30, 2, 3, 3))
    a = cls().fit(X)
    st = a.state()
    assert all(isinstance(v, np.ndarray) for v in st.values())
    b = cls().load_state(st)
    np.testing.assert_array_equal(b.transform(X), a.transform(X))
    with pytest.raises(ShapeError):
        cls().load_state({**st, "center": np.zeros(5)})
    with pytest.raises(ValueError, match="missing"):
        cls().load_state({"center": st["center"]})


@pytest.mark.parametrize("cls", [Standardize, MinMax])
def test_errors(cls):
    X = data((20, 3))
    with pytest.raises(NotFittedError, match="fit"):
        cls().transform(X)
    with pytest.raises(NotFittedError):
        cls().inverse_transform(X)
    s = cls().fit(X)
    with pytest.raises(ShapeError, match=r"\(N, 3\).*\(20, 4\)"):
        s.transform(data((20, 4)))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(NotFiniteError, match=cls.name):
        cls().fit(bad)
    with pytest.raises(NotFiniteError):
        s.transform(bad)
    with pytest.raises(ShapeError):
        cls().fit(np.zeros((0, 3)))
    img = cls().fit(data((10, 3, 4, 4)))
    with pytest.raises(ShapeError):
        img.transform(data((10, 2, 4, 4)))


def test_hyperparameters():
    with pytest.raises(HyperparameterError):
        MinMax(feature_range=(1, 0))
    with pytest.raises(HyperparameterError):
        Standardize(eps=0)
    with pytest.raises(HyperparameterError):
        Standardize(per_channel="yes")
    cfg = Standardize(with_mean=False).get_config()
    assert Standardize(**cfg).get_config() == cfg
    assert MinMax(**MinMax((-2, 2)).get_config()).feature_range == (-2.0, 2.0)
