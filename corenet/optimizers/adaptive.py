"""Adaptive per-weight step sizes: AdaGrad, RMSprop, Adadelta, Adam, AdamW
(spec optimizers.md §6-9, decisions D-05, D-10, D-11, D-57, D-75).

All updates are element-wise on arrays of the parameter's shape and dtype, done in place
with NumPy ufuncs (one scratch array per step). ε is added outside the square root unless
``eps_inside_sqrt=True`` (D-05).
"""
from __future__ import annotations

import numpy as np

from ._base import StatefulOptimizer, check_flag, check_interval, check_pair
from ..errors import HyperparameterError


def _denominator(v, eps, inside, out):
    """``out = √v + ε`` (or ``√(v + ε)`` with ``inside``)."""
    if inside:
        np.add(v, eps, out=out)
        np.sqrt(out, out=out)
    else:
        np.sqrt(v, out=out)
        out += eps
    return out


def _get(state, key, like):
    """State array ``key``, created as zeros when a group switches an option on later."""
    value = state.get(key)
    if value is None:
        value = state[key] = np.zeros_like(like)
    return value


class AdaGrad(StatefulOptimizer):
    """AdaGrad (``optimizer:adagrad``, optimizers.md §6; Duchi et al. 2011).

    ``G_t = G_{t−1} + g_t²``, ``θ ← θ − η g_t / (√G_t + ε)``
    (``eps_inside_sqrt=True``: ``η g_t / √(G_t + ε)``). State ``sum`` G, initialised to
    ``initial_accumulator`` (also for entries added by growth).
    Defaults: lr 0.01, eps 1e-10, initial_accumulator 0 (D-75).
    """

    name = "adagrad"
    defaults = {"lr": 0.01, "eps": 1e-10, "initial_accumulator": 0.0,
                "eps_inside_sqrt": False}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "eps", 0.0, low_open=True)
        check_interval(self, group, "initial_accumulator", 0.0)
        check_flag(self, group, "eps_inside_sqrt")

    def fresh_state(self, group):
        return {"sum": group["initial_accumulator"]}

    def update(self, p, g, state, group):
        self.init_state(p, state, group, ("sum",))
        G = state["sum"]
        tmp = np.multiply(g, g)
        G += tmp
        _denominator(G, group["eps"], group["eps_inside_sqrt"], tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= group["lr"]
        p.data -= tmp

    @classmethod
    def examples(cls):
        return [{"lr": 0.1}, {"lr": 0.1, "eps_inside_sqrt": True}]


class RMSprop(StatefulOptimizer):
    """RMSprop (``optimizer:rmsprop``, optimizers.md §7; Tieleman & Hinton 2012).

    ``v_t = ρ v_{t−1} + (1 − ρ) g_t²``; the step is ``θ ← θ − η g_t / (√v_t + ε)``.
    ``centered``: ``m_t = ρ m_{t−1} + (1 − ρ) g_t`` and the denominator is
    ``√(v_t − m_t²) + ε``. ``momentum`` μ > 0: ``b_t = μ b_{t−1} + g_t / (denominator)``,
    ``θ ← θ − η b_t``. ρ = 0 gives sign-like steps, not AdaGrad (D-11).
    State: ``square_avg`` v, ``grad_avg`` m (centered), ``momentum_buffer`` b (μ > 0).
    Defaults: lr 1e-3, rho 0.9, eps 1e-8 (D-75).
    """

    name = "rmsprop"
    defaults = {"lr": 1e-3, "rho": 0.9, "eps": 1e-8, "eps_inside_sqrt": False,
                "centered": False, "momentum": 0.0}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "rho", 0.0, 1.0, high_open=True)
        check_interval(self, group, "eps", 0.0, low_open=True)
        check_interval(self, group, "momentum", 0.0, 1.0, high_open=True)
        check_flag(self, group, "eps_inside_sqrt")
        check_flag(self, group, "centered")

    def update(self, p, g, state, group):
        rho, mu = group["rho"], group["momentum"]
        keys = ("square_avg",) + (("grad_avg",) if group["centered"] else ()) + \
            (("momentum_buffer",) if mu > 0.0 else ())
        self.init_state(p, state, group, keys)
        v = state["square_avg"]
        tmp = np.multiply(g, g)
        tmp *= 1.0 - rho
        v *= rho
        v += tmp
        if group["centered"]:
            m = _get(state, "grad_avg", v)
            m *= rho
            m += (1.0 - rho) * g
            np.multiply(m, m, out=tmp)
            np.subtract(v, tmp, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)      # rounding can make v − m² slightly negative
            _denominator(tmp, group["eps"], group["eps_inside_sqrt"], tmp)
        else:
            _denominator(v, group["eps"], group["eps_inside_sqrt"], tmp)
        np.divide(g, tmp, out=tmp)
        if mu > 0.0:
            b = _get(state, "momentum_buffer", v)
            b *= mu
            b += tmp
            np.multiply(b, group["lr"], out=tmp)
        else:
            tmp *= group["lr"]
        p.data -= tmp

    @classmethod
    def examples(cls):
        return [{"lr": 0.01}, {"lr": 0.01, "centered": True, "momentum": 0.5}]


class Adadelta(StatefulOptimizer):
    """Adadelta (``optimizer:adadelta``, optimizers.md §8; Zeiler 2012).

    ``v_t = ρ v_{t−1} + (1 − ρ) g_t²``;
    ``Δ_t = −(√(u_{t−1} + ε) / √(v_t + ε)) · g_t`` (minus sign, D-10);
    ``u_t = ρ u_{t−1} + (1 − ρ) Δ_t²``; ``θ ← θ + lr · Δ_t``.
    State: ``square_avg`` v, ``acc_delta`` u. Defaults: lr 1.0, rho 0.9, eps 1e-6.
    """

    name = "adadelta"
    defaults = {"lr": 1.0, "rho": 0.9, "eps": 1e-6}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        check_interval(self, group, "rho", 0.0, 1.0, high_open=True)
        check_interval(self, group, "eps", 0.0, low_open=True)

    def update(self, p, g, state, group):
        self.init_state(p, state, group, ("square_avg", "acc_delta"))
        rho, eps = group["rho"], group["eps"]
        v, u = state["square_avg"], state["acc_delta"]
        tmp = np.multiply(g, g)
        tmp *= 1.0 - rho
        v *= rho
        v += tmp
        den = np.add(v, eps)
        np.sqrt(den, out=den)
        np.add(u, eps, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp /= den
        tmp *= g
        np.negative(tmp, out=tmp)                  # Δ_t
        u *= rho
        np.multiply(tmp, tmp, out=den)
        den *= 1.0 - rho
        u += den
        tmp *= group["lr"]
        p.data += tmp

    @classmethod
    def examples(cls):
        return [{}]


class Adam(StatefulOptimizer):
    """Adam (``optimizer:adam``, optimizers.md §9; Kingma & Ba 2015).

    ``m_t = β₁ m_{t−1} + (1 − β₁) g_t``, ``v_t = β₂ v_{t−1} + (1 − β₂) g_t²``,
    ``m̂_t = m_t/(1 − β₁ᵗ)``, ``v̂_t = v_t/(1 − β₂ᵗ)`` (``bias_correction``, default on,
    t = 1 at the first update, D-05, D-57), ``θ ← θ − η m̂_t/(√v̂_t + ε)``
    (``eps_inside_sqrt``: ``√(v̂_t + ε)``). ``amsgrad``: ``v̂max_t = max(v̂max_{t−1}, v̂_t)``
    replaces v̂_t (the maximum of the *corrected* v̂, as the spec writes it).
    State: ``exp_avg`` m, ``exp_avg_sq`` v, ``max_exp_avg_sq`` (amsgrad), ``step`` t
    (per parameter; entries added by growth start from m = v = 0 at the current t).
    Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8 (D-75).
    """

    name = "adam"
    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "bias_correction": True,
                "amsgrad": False, "eps_inside_sqrt": False}

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        b1, b2 = check_pair(self, group, "betas")
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise HyperparameterError(f"optimizer {self.name!r}: betas[{i}] must be in "
                                          f"[0, 1), got {group['betas']!r}")
        check_interval(self, group, "eps", 0.0, low_open=True)
        check_flag(self, group, "bias_correction")
        check_flag(self, group, "amsgrad")
        check_flag(self, group, "eps_inside_sqrt")

    def update(self, p, g, state, group):
        keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        self.init_state(p, state, group, keys)
        b1, b2 = group["betas"]
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1.0 - b1) * g
        tmp = np.multiply(g, g)
        tmp *= 1.0 - b2
        v *= b2
        v += tmp
        if group["bias_correction"]:
            c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        else:
            c1 = c2 = 1.0
        np.divide(v, c2, out=tmp)                 # v̂_t
        if group["amsgrad"]:
            vmax = _get(state, "max_exp_avg_sq", v)
            np.maximum(vmax, tmp, out=vmax)
            tmp[...] = vmax
        _denominator(tmp, group["eps"], group["eps_inside_sqrt"], tmp)
        np.divide(m, tmp, out=tmp)
        tmp *= group["lr"] / c1
        p.data -= tmp

    @classmethod
    def examples(cls):
        return [{"lr": 0.01}, {"lr": 0.01, "amsgrad": True},
                {"lr": 0.01, "bias_correction": False, "eps_inside_sqrt": True}]


class AdamW(Adam):
    """AdamW (``optimizer:adamw``, optimizers.md §9; Loshchilov & Hutter 2019): Adam with
    decoupled weight decay ``θ ← θ(1 − ηλ)`` before the Adam update, applied to parameters
    with ``decay=True`` (weights, not biases, D-42). Default ``decoupled_weight_decay``
    0.01; otherwise the hyperparameters of ``adam``."""

    name = "adamw"
    defaults = {**Adam.defaults, "decoupled_weight_decay": 0.01}

    @classmethod
    def examples(cls):
        return [{"lr": 0.01}]
