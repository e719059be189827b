"""Regularizers that act on the parameters through event hooks instead of a penalty
gradient: the max-norm constraint (regularization.md §2.6) and Gaussian weight noise
(§3.2). Their ``penalty`` is 0 and ``add_grad`` adds nothing; the trainer registers them
with the plugin manager for the run (pass them in ``regularizers=[...]``; with a trainer
that registers only callbacks, pass the same object in ``callbacks=[...]`` too).
"""
from __future__ import annotations

import numpy as np

from ..errors import HyperparameterError, check_positive
from ..plugins import hookimpl
from ..regularizer import Regularizer
from ._base import GroupSelection, check_choice


class _HookRegularizer(GroupSelection, Regularizer):
    pure_penalty = False

    def penalty(self, params) -> float:
        return 0.0

    def add_grad(self, params) -> None:
        return None

    def penalty_of(self, data):
        return 0.0

    def grad_of(self, data):
        return np.zeros_like(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class MaxNorm(_HookRegularizer):
    """Max-norm constraint (``regularizer:max_norm``, §2.6): after every optimizer step
    (``corenet_on_after_step``) each incoming weight vector whose Euclidean norm exceeds
    ``c`` (``max_value``, default 3.0) is rescaled to norm ``c``.

    An incoming weight vector is one slice along axis 0 of a parameter: a row of a dense
    ``W (D_out, D_in)``, the ``(C_in, k_h, k_w)`` block of a conv ``W (C_out, C_in, k_h,
    k_w)``; entries of 1-D parameters (biases, with ``include_bias``) are clipped to
    ``|b_i| <= c``. Masked entries stay zero. :meth:`apply` runs it on a parameter list.
    """

    name = "max_norm"

    def __init__(self, max_value: float = 3.0, include_bias: bool = False, params="weights"):
        self.max_value = check_positive(max_value, "regularizer 'max_norm'", "max_value")
        self._init_selection(include_bias, params)
        self.lam = 0.0

    def apply(self, params) -> None:
        c = self.max_value
        for p in params:
            if not self.applies_to(p) or p.data.ndim == 0:
                continue
            rows = p.data.reshape(p.data.shape[0], -1)
            norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
            over = norms > c
            if over.any():
                rows[over] *= (c / norms[over])[:, None].astype(p.dtype)

    @hookimpl
    def corenet_on_after_step(self, trainer, optimizer):
        self.apply(optimizer.parameters())

    def get_config(self):
        return {"max_value": self.max_value, **self._selection_config()}

    @classmethod
    def examples(cls):
        return [{}, {"max_value": 0.5, "include_bias": True}]


class WeightNoise(_HookRegularizer):
    """Gaussian weight noise (``regularizer:weight_noise``, §3.2).

    At every training forward pass each selected weight array is replaced by
    ``w̃ = w + σε`` (``mode="additive"``, default) or ``w̃ = w ⊙ (1 + σε)``
    (``"multiplicative"``), ``ε ~ 𝒩(0, 1)`` element-wise and fresh per batch; forward and
    backward of that batch use ``w̃`` and the resulting gradient is applied to ``w``. Eval
    (validation, ``predict``) uses ``w``. ``stddev σ = 0.01``.

    Implementation through the event hooks: ``corenet_on_batch_begin`` saves ``w`` and
    writes ``w̃`` into ``p.data`` (masked entries stay zero); ``corenet_on_after_backward``
    (all gradients exist, coupled penalties included, taken at ``w̃``) writes ``w`` back,
    so the optimizer updates the clean weights. The noise generator is
    ``default_rng(random_state)`` created at train begin, or a child of the trainer's
    generator when ``random_state`` is None (bit-reproducible runs). Data solvers
    (``needs_data`` optimizers) have no backward event and are refused.
    """

    name = "weight_noise"

    def __init__(self, stddev: float = 0.01, mode: str = "additive", include_bias: bool = False,
                 params="weights", random_state=None):
        self.stddev = check_positive(stddev, "regularizer 'weight_noise'", "stddev",
                                     allow_zero=True)
        self.mode = check_choice(mode, "regularizer 'weight_noise'", "mode",
                                 ("additive", "multiplicative"))
        self._init_selection(include_bias, params)
        if random_state is not None and not isinstance(random_state, (int, np.integer)):
            raise HyperparameterError(f"regularizer 'weight_noise': random_state must be an "
                                      f"int or None, got {random_state!r}")
        self.random_state = random_state
        self.lam = 0.0
        self.rng = None
        self._saved = []

    def perturb(self, params, rng) -> None:
        """Replace every selected ``p.data`` by its noisy version, saving the clean one."""
        self.restore()
        for p in params:
            if not self.applies_to(p):
                continue
            eps = rng.standard_normal(p.shape).astype(p.dtype, copy=False)
            eps *= self.stddev
            if p.masked:
                eps *= p._mask
            self._saved.append((p, p.data.copy()))
            if self.mode == "additive":
                p.data += eps
            else:
                p.data += p.data * eps

    def restore(self) -> None:
        """Write the clean weights back (no-op when nothing is perturbed)."""
        for p, clean in self._saved:
            p.data[...] = clean
        self._saved = []

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        if getattr(trainer.optimizer, "needs_data", False):
            raise HyperparameterError(f"regularizer 'weight_noise': optimizer "
                                      f"{trainer.optimizer.name!r} is a data solver without a "
                                      f"backward pass; use a gradient optimizer")
        self.rng = (np.random.default_rng(self.random_state) if self.random_state is not None
                    else trainer.rng.spawn(1)[0])

    @hookimpl
    def corenet_on_batch_begin(self, trainer):
        if self.stddev > 0.0:
            if self.rng is None:
                self.rng = np.random.default_rng(self.random_state)
            self.perturb(trainer.model.parameters(), self.rng)

    @hookimpl
    def corenet_on_after_backward(self, trainer, parameters):
        self.restore()

    @hookimpl
    def corenet_on_train_end(self, trainer):
        self.restore()

    def get_config(self):
        return {"stddev": self.stddev, "mode": self.mode, "random_state": self.random_state,
                **self._selection_config()}

    @classmethod
    def examples(cls):
        return [{}, {"stddev": 0.1, "mode": "multiplicative", "include_bias": True}]
