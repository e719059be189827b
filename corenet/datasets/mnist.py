"""MNIST loading and fixed-seed splits (D-68).

corenet bundles the 10,000-image MNIST *test* set (``t10k-*``; the full data set has
60,000 training and 10,000 test images, D-68). :func:`load_mnist` reads it by default
and reads any user's MNIST-format IDX files through the same code path.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from ..errors import HyperparameterError
from .idx import load_idx

BUNDLED_IMAGES = "t10k-images-idx3-ubyte.gz"
BUNDLED_LABELS = "t10k-labels-idx1-ubyte.gz"
_cache: dict[str, np.ndarray] = {}


def _bundled(name):
    if name not in _cache:
        ref = resources.files("corenet.datasets").joinpath("data").joinpath(name)
        with ref.open("rb") as fh:
            _cache[name] = load_idx(fh)
        _cache[name].flags.writeable = False
    return _cache[name]


def load_mnist(images=None, labels=None, normalize=True, flatten=False):
    """Load MNIST-format images and labels.

    ``images``/``labels``: paths (or file objects) of IDX files, raw or gzip; both None
    (default) loads the bundled 10,000-image test set. Returns ``X`` float64 of shape
    ``(N, 1, H, W)`` (``(N, H·W)`` if ``flatten``), scaled to [0, 1] by ``/255`` when
    ``normalize`` (else raw 0–255 values), and ``y`` int64 of shape ``(N,)``.
    Raises ``ValueError`` for malformed files or mismatched counts.
    """
    if (images is None) != (labels is None):
        raise ValueError("load_mnist: give both images and labels, or neither (bundled set)")
    if images is None:
        img, lab = _bundled(BUNDLED_IMAGES), _bundled(BUNDLED_LABELS)
    else:
        img, lab = load_idx(images), load_idx(labels)
    if img.ndim != 3:
        raise ValueError(f"load_mnist: images must be an IDX array of shape (N, H, W), "
                         f"got {img.shape}")
    if lab.ndim != 1 or lab.shape[0] != img.shape[0]:
        raise ValueError(f"load_mnist: labels must have shape ({img.shape[0]},) to match the "
                         f"images, got {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise ValueError(f"load_mnist: labels must be integers, got {lab.dtype}")
    X = img.astype(np.float64)
    if normalize:
        X /= 255.0
    X = X.reshape(X.shape[0], -1) if flatten else X[:, None, :, :]
    return np.ascontiguousarray(X), lab.astype(np.int64)


def train_test_split_fixed(X, y, test_size=0.2, random_state=0):
    """Deterministic shuffled split: a permutation from
    ``numpy.random.default_rng(random_state)``; the first ``N − n_test`` indices train.
    ``test_size`` is a fraction in (0, 1) or a count in [1, N − 1]. Returns
    ``(X_train, y_train, X_test, y_test)`` (note: not scikit-learn's order)."""
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"train_test_split: X has {n} samples but y has {y.shape[0]}")
    if isinstance(test_size, (float, np.floating)) and 0.0 < test_size < 1.0:
        n_test = int(round(test_size * n))
    elif isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        n_test = int(test_size)
    else:
        raise HyperparameterError(f"train_test_split: test_size must be a fraction in (0, 1) "
                                  f"or a sample count, got {test_size!r}")
    if not 1 <= n_test <= n - 1:
        raise HyperparameterError(f"train_test_split: test_size gives {n_test} test samples "
                                  f"of {n}; need between 1 and {n - 1}")
    perm = np.random.default_rng(random_state).permutation(n)
    tr, te = perm[:n - n_test], perm[n - n_test:]
    return X[tr], y[tr], X[te], y[te]


train_test_split = train_test_split_fixed


def mnist_split(random_state=0, n_train=8000, flatten=False, normalize=True):
    """Fixed-seed split of the bundled 10,000 MNIST test images into ``n_train``
    training and ``10,000 − n_train`` test images (default 8,000/2,000; random, not
    stratified). Returns ``(X_train, y_train, X_test, y_test)``."""
    X, y = load_mnist(normalize=normalize, flatten=flatten)
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)):
        raise HyperparameterError(f"mnist_split: n_train must be an integer, got {n_train!r}")
    return train_test_split_fixed(X, y, test_size=X.shape[0] - int(n_train),
                                  random_state=random_state)
