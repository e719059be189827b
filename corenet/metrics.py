"""The metric family (spec networks.md §2.4 and §3.5): ``zero_one``, ``accuracy``,
``top_k_error``, ``bit_fail``.

Predicted labels follow the decision rules of networks.md §2.4:

* ``(N, K)`` scores with K > 1: ``argmax``, ties resolved to the lowest index;
* ``(N,)`` or ``(N, 1)`` outputs: a threshold — labels {0, 1} (sigmoid): positive iff
  ``ŷ ≥ 0.5``; labels {−1, +1} (tanh/linear): positive iff ``ŷ ≥ 0``.

``decision="auto"`` picks argmax for K > 1 and, for one output, the sign rule when a
target equals −1, else the sigmoid rule (all-positive targets are ambiguous: pass
``decision="sign"`` for ±1 problems). ``decision="sigmoid"``/``"sign"`` on ``(N, K > 1)``
outputs decides each output independently (multi-label); a sample is correct only if
all its outputs are. Targets: integer labels ``(N,)`` or one-hot/score rows ``(N, K)``
(their argmax), or binary values for threshold rules.
"""
from __future__ import annotations

import numpy as np

from .errors import DTypeError, HyperparameterError, ShapeError, check_positive
from .loss import Metric
from .plugins import hookimpl

DECISIONS = ("auto", "sigmoid", "sign", "argmax")


def _array(x, metric, what):
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise DTypeError(f"metric {metric!r}: {what} must be numeric, got dtype {a.dtype}")
    return a


def _predictions(y_pred, metric):
    yp = _array(y_pred, metric, "predictions")
    if yp.ndim not in (1, 2):
        raise ShapeError(f"metric {metric!r}: predictions must have shape (N,) or (N, K), "
                         f"got {yp.shape}")
    return yp


def _labels(y, n, k, metric):
    """True class labels (N,) from integer labels (N,) or rows (N, K) (their argmax)."""
    y = _array(y, metric, "targets")
    if y.shape == (n, k):
        return y.argmax(axis=1)
    if y.shape == (n,):
        if y.dtype.kind == "f" and (~np.isfinite(y) | (y != np.round(y))).any():
            raise ValueError(f"metric {metric!r}: class labels must be integers")
        labels = y.astype(np.int64)
        bad = (labels < 0) | (labels >= k)
        if bad.any():
            raise ValueError(f"metric {metric!r}: class labels must be in [0, {k - 1}], "
                             f"got {labels[bad][0]}")
        return labels
    raise ShapeError(f"metric {metric!r}: targets must have shape ({n},) (labels) or "
                     f"({n}, {k}), got {y.shape}")


def _binary_correct(yp, y, decision, metric):
    """Element-wise correctness of a threshold rule; yp and y have the same shape."""
    bad = (y != 0) & (y != 1) & (y != -1)
    if bad.any():
        raise ValueError(f"metric {metric!r}: binary targets must be in {{0, 1}} or "
                         f"{{-1, +1}}, got value {y[bad].flat[0].item()!r}")
    if (y == 0).any() and (y == -1).any():
        raise ValueError(f"metric {metric!r}: binary targets mix 0 and -1; use either "
                         f"{{0, 1}} or {{-1, +1}}")
    if decision == "auto":
        decision = "sign" if (y == -1).any() else "sigmoid"
    threshold = 0.0 if decision == "sign" else 0.5
    return (yp >= threshold) == (y == 1)


class ZeroOne(Metric):
    """``zero_one``: fraction of samples whose predicted label (networks.md §2.4) differs
    from the target (§3.5). ``decision`` ∈ {"auto", "sigmoid", "sign", "argmax"}."""

    name = "zero_one"
    greater_is_better = False

    def __init__(self, decision: str = "auto"):
        if decision not in DECISIONS:
            raise HyperparameterError(f"metric {self.name!r}: decision must be one of "
                                      f"{DECISIONS}, got {decision!r}")
        self.decision = decision

    def correct(self, y_pred, y) -> np.ndarray:
        """Boolean (N,): whether each sample's predicted label equals its target."""
        yp = _predictions(y_pred, self.name)
        n = yp.shape[0]
        single = yp.ndim == 1 or yp.shape[1] == 1
        if (single and self.decision != "argmax") or self.decision in ("sigmoid", "sign"):
            y = _array(y, self.name, "targets")
            if single:
                if y.shape not in ((n,), (n, 1)):
                    raise ShapeError(f"metric {self.name!r}: targets must have shape ({n},), "
                                     f"got {y.shape}")
                return _binary_correct(yp.reshape(n), y.reshape(n), self.decision, self.name)
            if y.shape != yp.shape:
                raise ShapeError(f"metric {self.name!r}: multi-label targets must have shape "
                                 f"{yp.shape}, got {y.shape}")
            return _binary_correct(yp, y, self.decision, self.name).all(axis=1)
        yp = yp.reshape(n, -1)
        return yp.argmax(axis=1) == _labels(y, n, yp.shape[1], self.name)

    def __call__(self, y_pred, y) -> float:
        ok = self.correct(y_pred, y)
        return float(1.0 - ok.mean()) if ok.size else float("nan")

    def get_config(self):
        return {"decision": self.decision}


class Accuracy(ZeroOne):
    """``accuracy = 1 − zero_one`` (networks.md §3.5); greater is better."""

    name = "accuracy"
    greater_is_better = True

    def __call__(self, y_pred, y) -> float:
        return 1.0 - super().__call__(y_pred, y)


class TopKError(Metric):
    """``top_k_error(k=5)`` (networks.md §3.5): fraction of samples for which at least k
    classes have a score strictly greater than the true class's score. Scores (N, K);
    targets labels (N,) or one-hot (N, K)."""

    name = "top_k_error"
    greater_is_better = False

    def __init__(self, k: int = 5):
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise HyperparameterError(f"metric 'top_k_error': k must be an int >= 1, got {k!r}")
        self.k = int(k)

    def __call__(self, y_pred, y) -> float:
        yp = _predictions(y_pred, self.name)
        if yp.ndim != 2:
            raise ShapeError(f"metric 'top_k_error': scores must have shape (N, K), "
                             f"got {yp.shape}")
        n, k = yp.shape
        if n == 0:
            return float("nan")
        labels = _labels(y, n, k, self.name)
        true = yp[np.arange(n), labels]
        greater = (yp > true[:, None]).sum(axis=1)
        return float(np.mean(greater >= self.k))

    def get_config(self):
        return {"k": self.k}


class BitFail(Metric):
    """``bit_fail(limit=0.35)`` (networks.md §3.5): the number of output elements with
    ``|ŷ − y| > limit`` over the batch (a float). Targets of ŷ's shape, ``(N,)`` for
    ``(N, 1)`` outputs, or integer labels ``(N,)`` for ``(N, K > 1)`` outputs (one-hot)."""

    name = "bit_fail"
    greater_is_better = False

    def __init__(self, limit: float = 0.35):
        self.limit = check_positive(limit, "metric 'bit_fail'", "limit", allow_zero=True)

    def __call__(self, y_pred, y) -> float:
        yp = _array(y_pred, self.name, "predictions")
        y = _array(y, self.name, "targets")
        if y.shape != yp.shape:
            n = yp.shape[0] if yp.ndim else 0
            if yp.ndim == 2 and yp.shape[1] > 1 and y.shape == (n,):
                labels = _labels(y, n, yp.shape[1], self.name)
                y = np.zeros(yp.shape)
                y[np.arange(n), labels] = 1
            elif y.size == yp.size and y.ndim >= 1 and y.shape[0] == n:
                y = y.reshape(yp.shape)
            else:
                raise ShapeError(f"metric 'bit_fail': targets must have shape {yp.shape}, "
                                 f"got {y.shape}")
        return float(np.count_nonzero(np.abs(yp - y) > self.limit))

    def get_config(self):
        return {"limit": self.limit}


METRICS = [ZeroOne, Accuracy, TopKError, BitFail]


@hookimpl
def corenet_register_metrics():
    """The built-in metrics (spec README §9)."""
    return list(METRICS)
