"""The base class of input/target scalers (spec normalization.md §1)."""
from __future__ import annotations

import numpy as np


class Normalizer:
    """``fit(X)`` learns statistics from training data; ``transform`` applies them,
    ``inverse_transform`` undoes them. Validation and test data are transformed with the
    training statistics (D-67). ``state()`` / ``load_state`` expose the fitted arrays for
    saving (plain arrays, no pickle)."""

    name: str = ""

    def fit(self, X) -> "Normalizer":
        raise NotImplementedError

    def transform(self, X) -> np.ndarray:
        raise NotImplementedError

    def inverse_transform(self, X) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> "Normalizer":
        return self

    def get_config(self) -> dict:
        return {}
