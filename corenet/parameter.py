"""A trainable array with its gradient and its pruning mask."""
from __future__ import annotations

import numpy as np

from .errors import ShapeError


class Parameter:
    """One trainable array of a layer.

    Attributes
    ----------
    data : ndarray
        The values (C-contiguous, model dtype).
    grad : ndarray
        Accumulated by ``backward`` (``+=``), reset by :meth:`zero_grad`; same shape as data.
    mask : ndarray
        0/1 array of data's shape, ones by default. Pruning owns it; masked entries of
        ``data`` are kept exactly zero (spec pruning.md §1): setting a mask zeroes them,
        optimizers mask the gradient before the step and re-apply the mask after it.
    name : str
        Stable name, ``"<layer key>.<role>"`` (e.g. ``"0.weight"``), set by the model.
    role : str
        The parameter's role inside its layer: ``"weight"``, ``"bias"``, ...
    trainable : bool
        Frozen parameters get no gradient and are skipped by optimizers.
    decay : bool
        Whether weight-decay regularizers apply by default (False for biases and
        normalisation parameters, D-42).
    """

    __slots__ = ("data", "grad", "_mask", "masked", "name", "role", "trainable", "decay",
                 "fan_in", "fan_out")

    def __init__(self, data: np.ndarray, role: str = "weight", *, trainable: bool = True,
                 decay: bool | None = None, fan_in: int | None = None,
                 fan_out: int | None = None):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self._mask = None
        self.masked = False
        self.role = role
        self.name = role
        self.trainable = trainable
        self.decay = (role == "weight") if decay is None else decay
        self.fan_in = fan_in
        self.fan_out = fan_out

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            return np.ones_like(self.data)
        return self._mask

    @mask.setter
    def mask(self, value) -> None:
        if value is None:
            self._mask, self.masked = None, False
            return
        m = np.asarray(value)
        if m.shape != self.data.shape:
            raise ShapeError(f"Parameter {self.name}: mask must have shape {self.data.shape}, "
                             f"got {m.shape}")
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"Parameter {self.name}: mask entries must be 0 or 1")
        self._mask = np.ascontiguousarray(m, dtype=self.data.dtype)
        self.masked = not bool(self._mask.all())
        self.data *= self._mask
        self.grad *= self._mask

    def apply_mask(self) -> None:
        """Zero the masked entries of ``data`` (and of ``grad``)."""
        if self.masked:
            self.data *= self._mask
            self.grad *= self._mask

    def zero_grad(self) -> None:
        self.grad.fill(0.0)

    def count_nonzero_weights(self) -> int:
        """Number of unmasked entries."""
        return int(self.data.size if self._mask is None else np.count_nonzero(self._mask))

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"
