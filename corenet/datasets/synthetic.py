"""Synthetic benchmark data sets: XOR, two spirals, N-bit parity (spec growing.md §6–§7;
D-15, D-61).

Every generator returns ``(X, y)`` as float64 arrays. ``targets`` selects the coding of
the two classes (growing.md §6): ``"pm1"`` (−1/+1), ``"pm_half"`` (−0.5/+0.5), ``"01"``
(0/1) -> ``y`` of shape ``(N,)``; ``"onehot"`` -> ``(N, 2)`` with column 1 = class 1
(the "+1" class). Aliases accepted: ``"pm_one"``/``"bipolar"`` for ``"pm1"``,
``"binary"`` for ``"01"``, ``"one_hot"`` for ``"onehot"``.
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError

_TARGET_ALIASES = {"pm1": "pm1", "pm_one": "pm1", "bipolar": "pm1", "pm_half": "pm_half",
                   "01": "01", "binary": "01", "onehot": "onehot", "one_hot": "onehot"}
_INPUT_ALIASES = {"01": "01", "binary": "01", "pm1": "pm1", "pm_one": "pm1",
                  "bipolar": "pm1"}


def _option(value, table, component, name):
    try:
        return table[value]
    except (KeyError, TypeError):
        raise HyperparameterError(f"dataset {component!r}: {name} must be one of "
                                  f"{sorted(table)}, got {value!r}") from None


def encode_targets(labels, targets="pm1", component="dataset"):
    """Class labels in {0, 1} -> float64 targets in the requested coding."""
    t = _option(targets, _TARGET_ALIASES, component, "targets")
    c = np.asarray(labels, dtype=np.int64)
    if t == "onehot":
        out = np.zeros((c.size, 2))
        out[np.arange(c.size), c] = 1.0
        return out
    low, high = {"pm1": (-1.0, 1.0), "pm_half": (-0.5, 0.5), "01": (0.0, 1.0)}[t]
    return np.where(c == 1, high, low).astype(np.float64)


def xor(inputs="01", targets=None):
    """The four XOR patterns ``(0,0), (1,0), (0,1), (1,1)`` in this order (growing.md §7).

    ``inputs="pm1"`` maps 0 → −1. Class 1 when exactly one input is active: labels
    ``(0, 1, 1, 0)`` (D-15). ``targets=None`` follows the input coding (``"01"`` →
    ``(0, 1, 1, 0)`` as TV-MLP-01; ``"pm1"`` → ``(−1, 1, 1, −1)`` as TV-MLP-02).
    Returns ``X (4, 2)``, ``y (4,)`` (``(4, 2)`` for one-hot).
    """
    code = _option(inputs, _INPUT_ALIASES, "xor", "inputs")
    bits = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
    labels = (bits.sum(axis=1) == 1).astype(np.int64)
    X = bits if code == "01" else 2.0 * bits - 1.0
    return X, encode_targets(labels, code if targets is None else targets, "xor")


def two_spirals(targets="pm1", density=1):
    """Lang & Witbrock's two spirals, exactly as growing.md §6 (D-61).

    For ``i = 0 … 96d``: ``angle = i·π/(16d)``, ``radius = 6.5·(104d − i)/(104d)``,
    ``(x, y) = radius·(sin angle, cos angle)``; emit ``(x, y)`` with class +1 then
    ``(−x, −y)`` with class −1, so sample ``2i`` is on the +1 spiral. ``density=1``
    gives the 194 training points; ``density=d`` the denser test set of ``2(96d + 1)``
    points on the same spirals. Returns ``X (N, 2)``, ``y (N,)`` (``(N, 2)`` one-hot).
    """
    if isinstance(density, bool) or not isinstance(density, (int, np.integer)) or density < 1:
        raise HyperparameterError(f"dataset 'two_spirals': density must be an integer >= 1, "
                                  f"got {density!r}")
    d = int(density)
    i = np.arange(96 * d + 1, dtype=np.float64)
    angle = i * np.pi / (16.0 * d)
    radius = 6.5 * (104.0 * d - i) / (104.0 * d)
    pts = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    X = np.empty((2 * pts.shape[0], 2))
    X[0::2], X[1::2] = pts, -pts
    labels = np.tile(np.array([1, 0], dtype=np.int64), pts.shape[0])
    return X, encode_targets(labels, targets, "two_spirals")


def spiral_grid(n=100, extent=7.0):
    """A regular ``n × n`` grid over ``[−extent, extent]²`` for decision-surface plots of
    the two-spirals problem. Returns ``X (n·n, 2)``; ``X[:, 0].reshape(n, n)`` and
    ``X[:, 1].reshape(n, n)`` are ``numpy.meshgrid(t, t)`` (x varies along columns)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise HyperparameterError(f"spiral_grid: n must be an integer >= 2, got {n!r}")
    if not extent > 0:
        raise HyperparameterError(f"spiral_grid: extent must be > 0, got {extent!r}")
    t = np.linspace(-float(extent), float(extent), int(n))
    xx, yy = np.meshgrid(t, t)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def parity(n_bits=8, inputs="01", targets=None):
    """All ``2^n`` binary vectors in counting order (row r = binary digits of r, most
    significant bit first); class 1 when the number of ones is odd (growing.md §7).
    ``inputs="pm1"`` maps 0 → −1; ``targets=None`` follows the input coding.
    Returns ``X (2^n, n)``, ``y (2^n,)`` (``(2^n, 2)`` one-hot)."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) \
            or not 1 <= n_bits <= 24:
        raise HyperparameterError(f"dataset 'parity': n_bits must be an integer in [1, 24], "
                                  f"got {n_bits!r}")
    code = _option(inputs, _INPUT_ALIASES, "parity", "inputs")
    n = int(n_bits)
    r = np.arange(2 ** n, dtype=np.int64)
    bits = (r[:, None] >> np.arange(n - 1, -1, -1)) & 1
    labels = bits.sum(axis=1) % 2
    X = bits.astype(np.float64)
    if code == "pm1":
        X = 2.0 * X - 1.0
    return X, encode_targets(labels, code if targets is None else targets, "parity")
