"""The base class of element-wise activations (spec networks.md §2)."""
from __future__ import annotations

import numpy as np


class Activation:
    """An element-wise function with its first and second derivatives.

    Subclasses set ``name`` and implement ``f``, ``df`` and ``d2f`` (vectorised NumPy,
    the reference), and may override ``forward`` / ``backward`` with a compiled kernel.
    ``backward(x, y, dy)`` returns ``dy ⊙ f′(x)`` and may use the cached output ``y``
    where that is cheaper; both routes agree (networks.md §2.2). Derivatives at kinks
    use the left branch (D-04). Activations with learnable parameters (``prelu``) list
    them in ``parameter_specs`` and are given them by the ``activation`` layer.
    """

    name: str = ""
    differentiable: bool = True
    parameter_specs: tuple = ()

    def f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def df(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def d2f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``f(x)``; kernels override this for speed."""
        return self.f(x)

    def backward(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``dy ⊙ f′(x)``; ``y`` is the cached ``f(x)``."""
        if not self.differentiable:
            raise NotImplementedError(f"activation {self.name!r} is not differentiable; "
                                      f"it has no backward pass")
        return dy * self.df(x)

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({cfg})"
