"""The MONK's problems (Thrun et al. 1991): three binary concepts over six
attributes with 3, 3, 2, 3, 4, 2 values (432 robots).

* MONK-1: ``(a1 = a2) or (a5 = 1)``;
* MONK-2: exactly two of the six attributes take their first value;
* MONK-3: ``(a5 = 3 and a4 = 1) or (a5 ≠ 4 and a2 ≠ 3)``; its training set has 5 %
  misclassifications (label noise).

The test set is the full space of 432 examples (in lexicographic order of
``(a1, …, a6)``, values counted from 1). The original training sets are fixed draws of
124, 169 and 122 examples; here they are drawn without replacement from the 432 with a
seed, deterministically (``numpy.random.default_rng(seed)``), and for MONK-3
``round(0.05 · 122) = 6`` of the drawn labels are flipped. Inputs are one-hot encoded
attribute by attribute (3 + 3 + 2 + 3 + 4 + 2 = 17 features, float64); targets are
0/1 labels (``targets="01"``, shape (N,)), ±1 (``"pm1"``) or one-hot ``(N, 2)``.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import HyperparameterError
from .synthetic import encode_targets

ATTRIBUTE_VALUES = (3, 3, 2, 3, 4, 2)
TRAIN_SIZES = {1: 124, 2: 169, 3: 122}
NOISE = {1: 0.0, 2: 0.0, 3: 0.05}


def _problem(problem) -> int:
    if isinstance(problem, bool) or problem not in (1, 2, 3):
        raise HyperparameterError(f"dataset 'monks': problem must be 1, 2 or 3, got "
                                  f"{problem!r}")
    return int(problem)


def monks_attributes() -> np.ndarray:
    """All 432 attribute vectors ``(a1, …, a6)`` (values from 1), lexicographic order."""
    return np.array(list(itertools.product(*[range(1, v + 1) for v in ATTRIBUTE_VALUES])),
                    dtype=np.int64)


def monks_rule(problem, attributes) -> np.ndarray:
    """The target concept of MONK-``problem`` (labels 0/1, no noise)."""
    problem = _problem(problem)
    a = np.asarray(attributes, dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 6:
        raise HyperparameterError(f"dataset 'monks': attributes must have shape (N, 6), got "
                                  f"{a.shape}")
    a1, a2, a3, a4, a5, a6 = a.T
    if problem == 1:
        y = (a1 == a2) | (a5 == 1)
    elif problem == 2:
        y = (a == 1).sum(axis=1) == 2
    else:
        y = ((a5 == 3) & (a4 == 1)) | ((a5 != 4) & (a2 != 3))
    return y.astype(np.int64)


def monks_encode(attributes) -> np.ndarray:
    """One-hot encoding, attribute by attribute: shape (N, 17)."""
    a = np.asarray(attributes, dtype=np.int64)
    cols = []
    for j, v in enumerate(ATTRIBUTE_VALUES):
        cols.append(np.eye(v)[a[:, j] - 1])
    return np.concatenate(cols, axis=1)


def monks(problem=1, split="train", seed=0, targets="01", n_train=None, noise=None):
    """``(X, y)`` of MONK-``problem`` (module docstring).

    ``split``: ``"train"`` (the seeded draw of ``n_train`` examples, default 124 / 169 /
    122, with ``noise`` (default 0 / 0 / 0.05) of the labels flipped) or ``"test"`` (all
    432, noise-free; ``seed`` is ignored).
    """
    problem = _problem(problem)
    if split not in ("train", "test"):
        raise HyperparameterError(f"dataset 'monks': split must be 'train' or 'test', got "
                                  f"{split!r}")
    A = monks_attributes()
    labels = monks_rule(problem, A)
    if split == "train":
        n = TRAIN_SIZES[problem] if n_train is None else n_train
        if isinstance(n, bool) or int(n) != n or not 1 <= n <= A.shape[0]:
            raise HyperparameterError(f"dataset 'monks': n_train must be in [1, 432], got "
                                      f"{n_train!r}")
        rate = NOISE[problem] if noise is None else float(noise)
        if not 0.0 <= rate <= 1.0:
            raise HyperparameterError(f"dataset 'monks': noise must be in [0, 1], got "
                                      f"{noise!r}")
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(A.shape[0], size=int(n), replace=False))
        A, labels = A[idx], labels[idx].copy()
        flips = int(round(rate * labels.size))
        if flips:
            which = rng.choice(labels.size, size=flips, replace=False)
            labels[which] = 1 - labels[which]
    return monks_encode(A), encode_targets(labels, targets, "monks")


def monks_split(problem=1, seed=0, targets="01"):
    """``X_train, y_train, X_test, y_test`` of MONK-``problem``."""
    X_train, y_train = monks(problem, "train", seed, targets)
    X_test, y_test = monks(problem, "test", seed, targets)
    return X_train, y_train, X_test, y_test


class MONKs:
    """``dataset:monks`` — see :func:`corenet.datasets.monks.monks`
    (``load(problem=1, split="train", seed=0, targets="01")``)."""

    name = "monks"

    @staticmethod
    def load(**kwargs):
        return monks(**kwargs)
