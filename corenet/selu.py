"""Self-normalising networks: SELU constants, moment map and its fixed point.

Spec: normalization.md §5 (Klambauer et al. 2017), D-63, README §10 (stable ``e^a·erfc(b)``),
initialization.md §8 (recipe: SELU + ``lecun_normal`` + zero biases + standardised inputs +
``alpha_dropout``). A helper module, not a plugin.

Public API
----------
``SELU_ALPHA``, ``SELU_LAMBDA``          full-precision constants α₀₁, λ₀₁ (D-63)
``selu_constants_closed_form()``       (α₀₁, λ₀₁) from the closed forms of §5.1
``solve_selu_constants()``             (α, λ) solving μ̃ = 0, ν̃ = 1 at (μ, ν, ω, τ) = (0, 1, 0, 1)
``selu_moment_map(mu, nu, omega, tau)`` (μ̃, ν̃) of §5.2
``selu_moment_jacobian(mu, nu, ...)``  2×2 Jacobian of (μ, ν) ↦ (μ̃, ν̃) (central differences)
``selu_fixed_point(omega, tau, ...)``  iterate the map to its fixed point (0, 1 for ω=0, τ=1)
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from .errors import HyperparameterError, check_positive

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def selu_constants_closed_form() -> tuple[float, float]:
    """``(α₀₁, λ₀₁)`` by the closed forms of normalization.md §5.1::

        α₀₁ = −√(2/π) / (erfc(1/√2)·e^{1/2} − 1)
        λ₀₁ = (1 − √e·erfc(1/√2))·√(2π)·(2 erfc(√2) e² + π erfc(1/√2)² e
              − 2(2 + π) erfc(1/√2) √e + π + 2)^{−1/2}
    """
    e1 = special.erfc(1.0 / math.sqrt(2.0))
    e2 = special.erfc(math.sqrt(2.0))
    alpha = -_SQRT_2_OVER_PI / (e1 * math.exp(0.5) - 1.0)
    denom = (2.0 * e2 * math.e ** 2 + math.pi * e1 * e1 * math.e
             - 2.0 * (2.0 + math.pi) * e1 * math.sqrt(math.e) + math.pi + 2.0)
    lam = (1.0 - math.sqrt(math.e) * e1) * math.sqrt(2.0 * math.pi) / math.sqrt(denom)
    return float(alpha), float(lam)


def _exp_erfc(a, b):
    """``e^{a}·erfc(b)``, as ``erfcx(b)·e^{a − b²}`` where ``b > 0`` (README §10)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pos = b > 0
    out_pos = special.erfcx(np.where(pos, b, 0.0)) * np.exp(np.where(pos, a - b * b, 0.0))
    out_neg = np.exp(np.where(pos, 0.0, a)) * special.erfc(np.where(pos, 0.0, b))
    return np.where(pos, out_pos, out_neg)


def selu_moment_map(mu, nu, omega=0.0, tau=1.0, *, alpha=SELU_ALPHA, lam=SELU_LAMBDA):
    """Mean and variance ``(μ̃, ν̃)`` of a SELU unit's output (normalization.md §5.2).

    The unit's inputs have mean ``mu`` and variance ``nu``; its weights have sum ``omega``
    and squared sum ``tau``; its net input is taken as ``𝒩(m, v)`` with ``m = μω``,
    ``v = ντ`` (a variance, D-63)::

        μ̃ = ½λ [ m·erf(m/√(2v)) + α e^{m+v/2} erfc((m+v)/√(2v)) − α erfc(m/√(2v))
                 + √(2/π)·√v·e^{−m²/(2v)} + m ]
        ν̃ = ½λ² [ (m² + v)(2 − erfc(m/√(2v))) + α²( −2 e^{m+v/2} erfc((m+v)/√(2v))
                 + e^{2(m+v)} erfc((m+2v)/√(2v)) + erfc(m/√(2v)) )
                 + √(2/π)·m·√v·e^{−m²/(2v)} ] − μ̃²

    The ``e^{a}·erfc(b)`` products use ``erfcx`` for ``b > 0`` (README §10). Arguments may be
    scalars or broadcastable arrays (float64); scalars give Python floats.
    ``selu_moment_map(0, 1, 0, 1) = (≈0, 1)`` (TV-SELU-01).
    """
    scalar = all(np.ndim(a) == 0 for a in (mu, nu, omega, tau))
    mu, nu, omega, tau = (np.asarray(a, dtype=np.float64) for a in (mu, nu, omega, tau))
    if np.any(~np.isfinite(mu)) or np.any(~np.isfinite(omega)):
        raise HyperparameterError(f"selu_moment_map: mu and omega must be finite, got "
                                  f"mu={mu!r}, omega={omega!r}")
    if np.any(~(nu > 0)) or np.any(~(tau > 0)) or np.any(~np.isfinite(nu * tau)):
        raise HyperparameterError(f"selu_moment_map: nu (a variance) and tau must be finite "
                                  f"and > 0, got nu={nu!r}, tau={tau!r}")
    m, v = mu * omega, nu * tau
    r = np.sqrt(2.0 * v)
    sv = np.sqrt(v)
    erfc_m = special.erfc(m / r)
    gauss = np.exp(-m * m / (2.0 * v))
    e1 = _exp_erfc(m + v / 2.0, (m + v) / r)
    e2 = _exp_erfc(2.0 * (m + v), (m + 2.0 * v) / r)
    mean = 0.5 * lam * (m * special.erf(m / r) + alpha * e1 - alpha * erfc_m
                        + _SQRT_2_OVER_PI * sv * gauss + m)
    second = 0.5 * lam * lam * ((m * m + v) * (2.0 - erfc_m)
                                + alpha * alpha * (-2.0 * e1 + e2 + erfc_m)
                                + _SQRT_2_OVER_PI * m * sv * gauss)
    var = second - mean * mean
    if scalar:
        return float(mean), float(var)
    return mean, var


def selu_moment_jacobian(mu=0.0, nu=1.0, omega=0.0, tau=1.0, *, step=1e-6,
                         alpha=SELU_ALPHA, lam=SELU_LAMBDA) -> np.ndarray:
    """``[[∂μ̃/∂μ, ∂μ̃/∂ν], [∂ν̃/∂μ, ∂ν̃/∂ν]]`` of the moment map by central differences
    with ``step`` (TV-SELU-01: at (0, 1), ω = 0, τ = 1 it is
    ``[[0, 0.0888347551068901], [0, 0.782647883196813]]``, spectral norm 0.78767 < 1)."""
    step = check_positive(step, "selu_moment_jacobian", "step")
    J = np.empty((2, 2))
    for col, (dm, dn) in enumerate(((step, 0.0), (0.0, step))):
        plus = selu_moment_map(mu + dm, nu + dn, omega, tau, alpha=alpha, lam=lam)
        minus = selu_moment_map(mu - dm, nu - dn, omega, tau, alpha=alpha, lam=lam)
        J[:, col] = (np.array(plus) - np.array(minus)) / (2.0 * step)
    return J


def selu_fixed_point(omega=0.0, tau=1.0, mu0=0.0, nu0=1.0, *, tol=1e-13, max_iter=1000,
                     alpha=SELU_ALPHA, lam=SELU_LAMBDA) -> tuple[float, float]:
    """Iterate ``(μ, ν) ← selu_moment_map(μ, ν, ω, τ)`` from ``(mu0, nu0)`` until both change
    by less than ``tol``; returns the fixed point (``(0, 1)`` for ω = 0, τ = 1, which attracts
    since the Jacobian's spectral norm is < 1). Raises ``RuntimeError`` without convergence."""
    mu, nu = float(mu0), check_positive(nu0, "selu_fixed_point", "nu0")
    for _ in range(int(max_iter)):
        new_mu, new_nu = selu_moment_map(mu, nu, omega, tau, alpha=alpha, lam=lam)
        if abs(new_mu - mu) < tol and abs(new_nu - nu) < tol:
            return new_mu, new_nu
        mu, nu = new_mu, new_nu
    raise RuntimeError(f"selu_fixed_point: no convergence in {max_iter} iterations from "
                       f"({mu0}, {nu0}) with omega={omega}, tau={tau}; last ({mu}, {nu})")


def solve_selu_constants() -> tuple[float, float]:
    """The unique ``(α, λ)`` with ``μ̃ = 0``, ``ν̃ = 1`` at ``(μ, ν, ω, τ) = (0, 1, 0, 1)``.

    ``μ̃ = 0`` does not involve λ (it is a factor), so α is the root of the bracket in
    ``[1, 2]`` (Brent); then ``ν̃ = λ²·ν̃(λ=1) = 1`` gives ``λ = ν̃(λ=1)^{−1/2}``."""
    from scipy.optimize import brentq

    alpha = brentq(lambda a: selu_moment_map(0.0, 1.0, 0.0, 1.0, alpha=a, lam=1.0)[0],
                   1.0, 2.0, xtol=1e-16, rtol=4 * np.finfo(float).eps, maxiter=200)
    var1 = selu_moment_map(0.0, 1.0, 0.0, 1.0, alpha=alpha, lam=1.0)[1]
    return float(alpha), float(1.0 / math.sqrt(var1))


__all__ = ["SELU_ALPHA", "SELU_LAMBDA", "selu_constants_closed_form", "selu_moment_map",
           "selu_moment_jacobian", "selu_fixed_point", "solve_selu_constants"]
