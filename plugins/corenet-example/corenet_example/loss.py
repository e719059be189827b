"""The ``log_cosh`` regression loss."""
import math

import numpy as np

import corenet

# above this |r|, log cosh r = |r| - log 2 + log1p(e^{-2|r|}) and the last term is < 1e-17
_LARGE = 20.0


class LogCosh(corenet.Loss):
    """``ℓ_n = (1/K) Σ_k log cosh(ŷ_nk − y_nk)`` (category ``loss``, name ``log_cosh``).

    Behaves like ``½ r²`` for small residuals ``r`` and like ``|r| − log 2`` for large
    ones (a smooth Huber loss). Normalised per output like ``mse`` (spec networks.md §3:
    ``K`` = number of outputs per sample), reduction by the :class:`corenet.Loss` base.

    * gradient: ``∂ℓ_n/∂ŷ_nk = tanh(r_nk) / K``
    * output Hessian: ``∇²ℓ_n = diag(sech²(r_nk)) / K = diag(1 − tanh²(r_nk)) / K``

    Stable evaluation: ``log cosh r = log1p(2 sinh²(r/2))`` (exact for small ``r``)
    for ``|r| <= 20``, ``|r| − log 2`` beyond (no overflow of ``cosh``).

    Shapes: predictions and targets ``(N,)`` or ``(N, K...)``; per-sample values ``(N,)``.
    """

    name = "log_cosh"

    @classmethod
    def examples(cls) -> list:
        """Cases run by the contract kit (``corenet.testing.check_component``)."""
        return [{"config": {}, "y_pred_shape": (4, 3), "targets": "real"},
                {"config": {"reduction": "sum"}, "y_pred_shape": (6,), "targets": "real"},
                {"config": {}, "y_pred_shape": (2, 2, 3, 3), "targets": "real"}]

    @staticmethod
    def _log_cosh(r: np.ndarray) -> np.ndarray:
        a = np.abs(r)
        small = np.log1p(2.0 * np.sinh(0.5 * np.minimum(a, _LARGE)) ** 2)
        return np.where(a <= _LARGE, small, a - math.log(2.0))

    def per_sample_and_grad(self, y_pred, y):
        n = y_pred.shape[0]
        r = y_pred - y
        k = r[0].size if r.ndim > 1 else 1
        values = self._log_cosh(r).reshape(n, -1).sum(axis=1) / k
        grad = np.tanh(r) / k
        return values.astype(y_pred.dtype, copy=False), grad.astype(y_pred.dtype, copy=False)

    def hess_output(self, y_pred, y):
        y = self.prepare_targets(y_pred, y)
        n = y_pred.shape[0]
        r = (y_pred - y).reshape(n, -1)
        k = r.shape[1]
        diag = (1.0 - np.tanh(r) ** 2) / k
        hess = np.zeros((n, k, k), dtype=y_pred.dtype)
        idx = np.arange(k)
        hess[:, idx, idx] = diag
        return hess
