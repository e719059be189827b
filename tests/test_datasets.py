"""Tests of corenet.datasets (growing.md §6–§7, TV-CC-02, D-15, D-61, D-68)."""
import gzip

import numpy as np
import pytest

from corenet import registry
from corenet.datasets import (load_idx, load_mnist, mnist_split, parity, save_idx,
                              spiral_grid, train_test_split, train_test_split_fixed,
                              two_spirals, xor)
from corenet.errors import HyperparameterError

TV = dict(rtol=1e-9, atol=1e-10)


def test_registered():
    assert {"mnist", "parity", "two_spirals", "xor"} <= set(registry.names("dataset"))
    X, y = registry.get("dataset", "xor").load(inputs="pm1")
    np.testing.assert_array_equal(y, [-1, 1, 1, -1])
    X, y = registry.get("dataset", "two_spirals").load(targets="pm_half")
    assert X.shape == (194, 2) and set(y) == {-0.5, 0.5}


# ------------------------------------------------------------------ XOR (D-15, TV-MLP-01/02)
def test_xor():
    X, y = xor()
    assert X.dtype == np.float64 and X.shape == (4, 2)
    np.testing.assert_array_equal(X, [[0, 0], [1, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    X, y = xor("pm1")
    np.testing.assert_array_equal(X, [[-1, -1], [1, -1], [-1, 1], [1, 1]])
    np.testing.assert_array_equal(y, [-1, 1, 1, -1])
    # TV-MLP-02 network reproduces the ±1 targets on these inputs
    h = np.maximum(X @ np.array([[-0.5, -0.5], [-0.5, -0.5]]).T + [1, 0], 0)
    np.testing.assert_allclose(h @ [2, -4] - 1, y, **TV)
    assert xor("bipolar")[1].tolist() == [-1, 1, 1, -1]
    assert xor("binary", targets="pm_half")[1].tolist() == [-0.5, 0.5, 0.5, -0.5]
    np.testing.assert_array_equal(xor(targets="onehot")[1], [[1, 0], [0, 1], [0, 1], [1, 0]])
    with pytest.raises(HyperparameterError, match="inputs"):
        xor("ternary")


# ------------------------------------------------------------------ two spirals (TV-CC-02)
def test_two_spirals_tv_cc_02():
    X, y = two_spirals()
    assert X.shape == (194, 2) and y.shape == (194,)
    expect = {0: (0, 6.5, 1), 1: (-0.0, -6.5, -1), 2: (1.255893948, 6.3138052426, 1),
              3: (-1.255893948, -6.3138052426, -1), 4: (2.4396068813, 5.8897320198, 1),
              190: (-0.1097383061, 0.5516917202, 1), 192: (0, 0.5, 1), 193: (0, -0.5, -1)}
    for i, (a, b, t) in expect.items():
        np.testing.assert_allclose(X[i], [a, b], rtol=1e-9, atol=1e-10)
        assert y[i] == t
    np.testing.assert_array_equal(y, np.tile([1.0, -1.0], 97))          # pairs, +1 first
    np.testing.assert_allclose(X[1::2], -X[0::2], rtol=0, atol=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose([r.min(), r.max()], [0.5, 6.5], **TV)
    assert np.all(np.diff(r[0::2]) < 0)
    assert np.abs(X.sum(axis=0)).max() < 1e-12


def test_two_spirals_options():
    assert set(two_spirals(targets="pm_half")[1]) == {-0.5, 0.5}
    assert set(two_spirals(targets="01")[1]) == {0.0, 1.0}
    assert two_spirals(targets="pm_one")[1][0] == 1.0
    oh = two_spirals(targets="onehot")[1]
    assert oh.shape == (194, 2) and oh[0].tolist() == [0, 1] and oh[1].tolist() == [1, 0]
    X4, y4 = two_spirals(density=4)
    assert X4.shape == (2 * (96 * 4 + 1), 2)
    X1, _ = two_spirals()
    np.testing.assert_allclose(X4[0::8], X1[0::2], **TV)     # same spirals, 4x denser
    np.testing.assert_allclose(np.hypot(*X4[-2]), 0.5, **TV)
    with pytest.raises(HyperparameterError):
        two_spirals(density=0)
    with pytest.raises(HyperparameterError, match="targets"):
        two_spirals(targets="pm2")
    G = spiral_grid(n=5, extent=7.0)
    assert G.shape == (25, 2) and G[0].tolist() == [-7, -7] and G[1].tolist() == [-3.5, -7]


# ------------------------------------------------------------------ parity
def test_parity():
    X, y = parity(8)
    assert X.shape == (256, 8) and y.shape == (256,)
    np.testing.assert_array_equal(X[5], [0, 0, 0, 0, 0, 1, 0, 1])         # MSB first
    np.testing.assert_array_equal(X @ (2 ** np.arange(7, -1, -1)), np.arange(256))
    np.testing.assert_array_equal(y, X.sum(axis=1) % 2)
    assert y.sum() == 128
    X3, y3 = parity(3, targets="pm1")
    np.testing.assert_array_equal(y3, [-1, 1, 1, -1, 1, -1, -1, 1])
    Xb, _ = parity(2, inputs="pm1")
    np.testing.assert_array_equal(Xb, [[-1, -1], [-1, 1], [1, -1], [1, 1]])
    with pytest.raises(HyperparameterError):
        parity(0)


# ------------------------------------------------------------------ IDX
def test_idx_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (3, 4, 5)).astype(np.uint8),
              rng.integers(-100, 100, (7,)).astype(np.int8),
              rng.integers(-3000, 3000, (2, 3)).astype(np.int16),
              rng.integers(-10 ** 9, 10 ** 9, (4, 2)).astype(np.int32),
              rng.normal(size=(3, 3)).astype(np.float32), rng.normal(size=(2, 2, 2))]
    for k, a in enumerate(arrays):
        for suffix in ("", ".gz"):
            p = tmp_path / f"a{k}.idx{suffix}"
            save_idx(p, a)
            b = load_idx(p)
            assert b.dtype == a.dtype and b.dtype.isnative
            np.testing.assert_array_equal(b, a)
    # header layout: magic 0x00000803 and big-endian dims
    raw = (tmp_path / "a0.idx").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:8] == (3).to_bytes(4, "big")
    with open(tmp_path / "a0.idx", "rb") as fh:
        np.testing.assert_array_equal(load_idx(fh), arrays[0])
    np.testing.assert_array_equal(load_idx(raw), arrays[0])


def test_idx_corrupt(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    save_idx(tmp_path / "ok.idx", a)
    raw = (tmp_path / "ok.idx").read_bytes()
    cases = {"truncated": raw[:-1], "trailing": raw + b"\x00",
             "magic": b"\x01\x02" + raw[2:], "type code": raw[:2] + b"\x07" + raw[3:],
             "header": raw[:10], "short": raw[:3], "empty": b"",
             "gzip": gzip.compress(raw)[:-8]}
    for label, data in cases.items():
        p = tmp_path / f"{label.replace(' ', '_')}.idx"
        p.write_bytes(data)
        with pytest.raises(ValueError, match="load_idx"):
            load_idx(p)
    with pytest.raises(ValueError, match="magic"):
        load_idx(b"\x08\x03\x00\x00" + raw[4:])
    with pytest.raises(ValueError, match="truncated"):
        load_idx(raw[:-5])


# ------------------------------------------------------------------ MNIST (D-68)
def test_mnist_bundled():
    X, y = load_mnist()
    assert X.shape == (10000, 1, 28, 28) and X.dtype == np.float64
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y, minlength=10)
    assert counts.size == 10 and counts.sum() == 10000 and counts.min() > 800
    assert 0 <= y[0] <= 9 and y[0] == 7          # first label of the t10k set
    Xf, yf = load_mnist(flatten=True, normalize=False)
    assert Xf.shape == (10000, 784) and Xf.max() == 255.0
    np.testing.assert_array_equal(Xf[3] / 255.0, X[3].ravel())
    X[0, 0, 0, 0] = 5.0                           # callers get copies, not the cache
    assert load_mnist()[0][0, 0, 0, 0] == 0.0
    assert registry.get("dataset", "mnist").load(flatten=True)[0].shape == (10000, 784)


def test_mnist_user_files(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, (6, 5, 4)).astype(np.uint8)
    labs = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    save_idx(tmp_path / "i.gz", imgs)
    save_idx(tmp_path / "l", labs)
    X, y = load_mnist(tmp_path / "i.gz", tmp_path / "l")
    assert X.shape == (6, 1, 5, 4) and y.tolist() == [3, 1, 4, 1, 5, 9]
    np.testing.assert_allclose(X[:, 0] * 255.0, imgs, **TV)
    save_idx(tmp_path / "l5", labs[:5])
    with pytest.raises(ValueError, match="labels"):
        load_mnist(tmp_path / "i.gz", tmp_path / "l5")
    with pytest.raises(ValueError, match="both"):
        load_mnist(images=tmp_path / "i.gz")


def test_mnist_split():
    Xtr, ytr, Xte, yte = mnist_split(random_state=0)
    assert Xtr.shape == (8000, 1, 28, 28) and Xte.shape == (2000, 1, 28, 28)
    assert ytr.shape == (8000,) and yte.shape == (2000,)
    X, y = load_mnist()
    np.testing.assert_array_equal(np.sort(np.concatenate([ytr, yte])), np.sort(y))
    again = mnist_split(random_state=0)
    np.testing.assert_array_equal(again[1], ytr)
    np.testing.assert_array_equal(again[2], Xte)
    other = mnist_split(random_state=1)
    assert not np.array_equal(other[1], ytr)
    assert mnist_split(n_train=9000, flatten=True)[0].shape == (9000, 784)
    with pytest.raises(HyperparameterError):
        mnist_split(n_train=10000)


def test_train_test_split():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    a = train_test_split(X, y, test_size=0.3, random_state=5)
    assert [p.shape[0] for p in a] == [7, 7, 3, 3]
    np.testing.assert_array_equal(a[0][:, 0] / 2, a[1])
    assert sorted(np.concatenate([a[1], a[3]]).tolist()) == list(range(10))
    b = train_test_split_fixed(X, y, test_size=3, random_state=5)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError):
        train_test_split(X, y[:9], 0.3)
    with pytest.raises(HyperparameterError):
        train_test_split(X, y, test_size=1.5)
