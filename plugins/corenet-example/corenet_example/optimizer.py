"""The ``sign_sgd`` optimizer (signSGD, and Signum with momentum)."""
import numpy as np

import corenet
from corenet.errors import check_range


class SignSGD(corenet.Optimizer):
    """Sign gradient descent (category ``optimizer``, name ``sign_sgd``).

    Without momentum (``momentum = 0``, signSGD)::

        θ ← θ − lr · sign(g)

    With momentum ``β ∈ (0, 1)`` (Signum: sign of an exponential moving average)::

        m ← β m + (1 − β) g          (m starts at 0; state key "momentum_buffer")
        θ ← θ − lr · sign(m)

    ``sign(0) = 0``: a zero gradient leaves its weight in place (spec optimizers.md,
    Rprop convention). Every weight moves by exactly ``lr`` or not at all, whatever the
    gradient's scale. Masks are respected by the :class:`corenet.Optimizer` base class
    (the masked gradient is zero, and masks are re-applied after the step).

    Hyperparameters: ``lr = 0.01`` (>= 0), ``momentum = 0.0`` (in [0, 1)).
    """

    name = "sign_sgd"
    defaults = {"lr": 0.01, "momentum": 0.0}

    @classmethod
    def examples(cls) -> list:
        """Constructor arguments run by the contract kit (``corenet.testing``)."""
        return [{}, {"lr": 0.005, "momentum": 0.9}]

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        check_range(group["momentum"], f"optimizer {self.name!r}", "momentum", 0.0, 1.0,
                    high_open=True)

    def update(self, p, g, state, group) -> None:
        beta = group["momentum"]
        direction = g
        if beta > 0.0:
            m = state.get("momentum_buffer")
            if m is None:
                m = state["momentum_buffer"] = np.zeros_like(p.data)
            m *= beta
            m += (1.0 - beta) * g
            direction = m
        p.data -= group["lr"] * np.sign(direction)
