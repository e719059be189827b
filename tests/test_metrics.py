"""Tests of corenet.metrics (spec networks.md §2.4 decision rules, §3.5 metrics)."""
import numpy as np
import pytest

import corenet.metrics as M
from corenet import registry
from corenet.errors import DTypeError, HyperparameterError, ShapeError


def make(name, **kw):
    return registry.create("metric", {"name": name, **kw})


SCORES = np.array([[0.1, 0.7, 0.2],
                   [0.5, 0.5, 0.0],     # tie between 0 and 1 -> 0
                   [0.3, 0.3, 0.3],     # all tied -> 0
                   [0.0, 0.2, 0.9]])


def test_argmax_rule_ties_go_to_lowest_index():
    labels = np.array([1, 0, 0, 1])
    assert make("zero_one")(SCORES, labels) == 0.25
    assert make("accuracy")(SCORES, labels) == 0.75
    assert make("zero_one")(SCORES, np.eye(3)[labels]) == 0.25
    assert make("zero_one")(SCORES, np.array([1, 1, 2, 2])) == 0.5
    assert make("zero_one", decision="argmax")(SCORES, labels.astype(float)) == 0.25


def test_threshold_rules_sigmoid_and_sign():
    p = np.array([0.2, 0.5, 0.49, 0.9])
    assert make("zero_one")(p, np.array([0, 1, 0, 1])) == 0.0          # ŷ ≥ 0.5 is 1
    assert make("zero_one")(p[:, None], np.array([0, 0, 0, 1])) == 0.25
    f = np.array([-0.3, 0.0, 0.2, -1.0])
    assert make("zero_one")(f, np.array([-1, 1, 1, -1])) == 0.0        # ŷ ≥ 0 is +1 (auto)
    assert make("accuracy")(f[:, None], np.array([[1], [1], [1], [1]])) == 0.0  # sigmoid rule
    assert make("accuracy", decision="sign")(f, np.array([1, 1, 1, 1])) == 0.5
    assert make("zero_one", decision="sigmoid")(np.array([0.4]), np.array([-1])) == 0.0


def test_multi_label_decides_each_output():
    p = np.array([[0.9, 0.1], [0.6, 0.7], [0.2, 0.4]])
    y = np.array([[1, 0], [1, 0], [0, 0]])
    assert make("zero_one", decision="sigmoid")(p, y) == pytest.approx(1 / 3)


def test_top_k_error_strictly_greater_rule():
    scores = np.array([[0.5, 0.5, 0.5, 0.1],   # ties: nobody strictly greater -> correct
                       [0.9, 0.8, 0.7, 0.1],
                       [0.1, 0.2, 0.3, 0.4]])
    labels = np.array([2, 2, 0])
    assert make("top_k_error", k=1)(scores, labels) == pytest.approx(2 / 3)
    assert make("top_k_error", k=2)(scores, labels) == pytest.approx(2 / 3)
    assert make("top_k_error", k=3)(scores, labels) == pytest.approx(1 / 3)
    assert make("top_k_error", k=4)(scores, labels) == 0.0
    assert make("top_k_error")(scores, np.eye(4)[labels]) == 0.0    # k = 5 > K
    assert make("top_k_error", k=1)(SCORES, np.array([1, 0, 2, 2])) == 0.0


def test_bit_fail_counts_elements_beyond_limit():
    yp = np.array([[0.9, 0.2], [0.5, 0.64], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert make("bit_fail")(yp, y) == 2.0        # 0.5 and 0.64 exceed 0.35
    assert make("bit_fail", limit=0.1)(yp, y) == 3.0
    assert make("bit_fail")(yp, np.array([0, 0, 1])) == 2.0   # labels -> one-hot
    assert make("bit_fail")(np.array([[0.1], [0.8]]), np.array([0.0, 0.0])) == 1.0


def test_greater_is_better_and_configs():
    assert make("accuracy").greater_is_better
    for name in ("zero_one", "top_k_error", "bit_fail"):
        assert not registry.get("metric", name).greater_is_better
    for name, kw in [("zero_one", {"decision": "sign"}), ("accuracy", {}),
                     ("top_k_error", {"k": 3}), ("bit_fail", {"limit": 0.2})]:
        m = make(name, **kw)
        assert type(m)(**m.get_config()).get_config() == m.get_config()
        assert registry.get("metric", name) is type(m) and type(m).__module__ == "corenet.metrics"
        assert type(m) in M.corenet_register_metrics()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[0, 2\].*got 3"):
        make("zero_one")(SCORES, np.array([0, 1, 2, 3]))
    with pytest.raises(ShapeError):
        make("zero_one")(SCORES, np.array([0, 1]))
    with pytest.raises(ValueError, match="binary targets"):
        make("zero_one")(np.array([0.1, 0.9]), np.array([0, 2]))
    with pytest.raises(ValueError, match="mix"):
        make("zero_one")(np.array([0.1, 0.9, 0.3]), np.array([0, 1, -1]))
    with pytest.raises(ShapeError):
        make("top_k_error")(np.array([0.1, 0.2]), np.array([0, 1]))
    with pytest.raises(ShapeError):
        make("bit_fail")(SCORES, np.zeros((4, 2)))
    with pytest.raises(DTypeError):
        make("accuracy")(np.array(["a", "b"]), np.array([0, 1]))
    for name, kw in [("zero_one", {"decision": "max"}), ("top_k_error", {"k": 0}),
                     ("bit_fail", {"limit": -1})]:
        with pytest.raises(HyperparameterError):
            make(name, **kw)
