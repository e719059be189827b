"""The base class of initializers and the fan computation (spec initialization.md §2)."""
from __future__ import annotations

import numpy as np


def compute_fans(shape, kind: str = "dense") -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight array (initialization.md §2).

    ``kind`` is ``"dense"`` (``(D_out, D_in)``), ``"conv"`` (``(C_out, C_in, k...)``) or
    ``"conv_transpose"`` (``(C_in, C_out, k...)``, fans by channel meaning, D-66).
    1-D arrays have no fans (fan-based initializers raise for them).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"compute_fans: an array of shape {shape} has no fan_in/fan_out")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    if kind == "conv_transpose":
        return shape[0] * receptive, shape[1] * receptive
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    """``init(shape, fan_in, fan_out, dtype, rng) -> array`` (initialization.md).

    Hyperparameters go to ``__init__``; every draw uses the generator passed in
    (spec README §4). ``fan_in``/``fan_out`` may be None for initializers that do not
    use them; fan-based initializers raise ``ValueError`` then.
    """

    name: str = ""

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=np.float64, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        out = self.sample(tuple(shape), fan_in, fan_out, rng)
        return np.ascontiguousarray(out, dtype=dtype)

    def sample(self, shape, fan_in, fan_out, rng) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({cfg})"
