"""The MONK's problems generator (corenet.datasets.monks)."""
import numpy as np
import pytest

from corenet import HyperparameterError, registry
from corenet.datasets import monks, monks_split
from corenet.datasets.monks import (ATTRIBUTE_VALUES, monks_attributes, monks_encode,
                                    monks_rule)


def test_attribute_space_and_encoding():
    A = monks_attributes()
    assert A.shape == (432, 6) and ATTRIBUTE_VALUES == (3, 3, 2, 3, 4, 2)
    assert len({tuple(a) for a in A}) == 432
    assert tuple(A[0]) == (1, 1, 1, 1, 1, 1) and tuple(A[-1]) == (3, 3, 2, 3, 4, 2)
    X = monks_encode(A)
    assert X.shape == (432, 17) and X.dtype == np.float64
    np.testing.assert_array_equal(X.sum(axis=1), 6)
    # one-hot blocks of sizes 3, 3, 2, 3, 4, 2
    np.testing.assert_array_equal(monks_encode([[2, 3, 1, 1, 4, 2]])[0],
                                  [0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1])


def test_target_rules():
    ex = np.array([[1, 1, 1, 1, 2, 1],     # a1 = a2                     -> M1 yes
                   [1, 2, 1, 1, 1, 1],     # a5 = 1                      -> M1 yes
                   [1, 2, 1, 1, 2, 1],     # neither                     -> M1 no
                   [1, 1, 2, 2, 2, 2],     # exactly two "first values"  -> M2 yes
                   [1, 1, 1, 2, 2, 2],     # three first values          -> M2 no
                   [2, 3, 1, 1, 3, 1],     # a5 = 3 and a4 = 1           -> M3 yes
                   [2, 3, 1, 2, 3, 1],     # a2 = 3, a4 ≠ 1              -> M3 no
                   [2, 2, 1, 2, 4, 1],     # a5 = 4                      -> M3 no
                   [2, 2, 1, 2, 2, 1]])    # a5 ≠ 4 and a2 ≠ 3           -> M3 yes
    np.testing.assert_array_equal(monks_rule(1, ex), [1, 1, 0, 1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(monks_rule(2, ex), [0, 0, 0, 1, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(monks_rule(3, ex), [1, 1, 1, 1, 1, 1, 0, 0, 1])


@pytest.mark.parametrize("problem, n_train, positives", [(1, 124, 216), (2, 169, 142),
                                                         (3, 122, 228)])
def test_split_sizes_and_test_set(problem, n_train, positives):
    X_train, y_train, X_test, y_test = monks_split(problem, seed=0)
    assert X_train.shape == (n_train, 17) and y_train.shape == (n_train,)
    assert X_test.shape == (432, 17) and int(y_test.sum()) == positives
    np.testing.assert_array_equal(X_test, monks_encode(monks_attributes()))
    # every training input is one of the 432 robots, drawn without replacement
    rows = {tuple(r) for r in X_test}
    assert all(tuple(r) in rows for r in X_train)
    assert len({tuple(r) for r in X_train}) == n_train


def test_noise_only_in_monk3_and_seed_determinism():
    lookup = {tuple(x): t for x, t in zip(*monks(3, "test"))}
    for problem, flips in ((1, 0), (2, 0), (3, 6)):
        X, y = monks(problem, "train", seed=4)
        truth = np.array([{tuple(x): t for x, t in zip(*monks(problem, "test"))}[tuple(r)]
                          for r in X])
        assert int((truth != y).sum()) == flips            # 5% of 122 = 6 in MONK-3
    X1, y1 = monks(3, seed=7)
    X2, y2 = monks(3, seed=7)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = monks(3, seed=8)
    assert not np.array_equal(X1, X3)
    assert lookup                                           # the test set is noise-free
    _, y_clean = monks(3, "train", seed=7, noise=0.0)
    assert int((y_clean != y1).sum()) == 6


def test_targets_registry_and_errors():
    X, y = monks(2, targets="pm1")
    assert set(np.unique(y)) == {-1.0, 1.0}
    _, y = monks(2, targets="onehot")
    assert y.shape == (169, 2)
    X, y = registry.get("dataset", "monks").load(problem=1, split="test")
    assert X.shape == (432, 17)
    with pytest.raises(HyperparameterError, match="problem"):
        monks(4)
    with pytest.raises(HyperparameterError, match="split"):
        monks(1, split="valid")
    with pytest.raises(HyperparameterError, match="n_train"):
        monks(1, n_train=500)
