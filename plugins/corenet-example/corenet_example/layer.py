"""The ``scale_shift`` layer: a learnable per-feature affine map."""
import numpy as np

import corenet
from corenet.errors import ShapeError


class ScaleShift(corenet.Layer):
    """``y[n, c, ...] = x[n, c, ...] · γ_c + β_c`` (category ``layer``, name ``scale_shift``).

    One scale ``γ`` and one shift ``β`` per feature, the feature axis being axis 1 of the
    input (the channel axis of images, as for the affine part of batch norm, spec
    normalization.md; for ``(N, F)`` inputs, every feature).

    Shapes: input ``(N, C, *spatial)`` with any number (>= 0) of spatial axes, output the
    same; parameters ``gamma`` and ``beta`` of shape ``(C,)``, excluded from weight decay.

    Backward (``dy = ∂L/∂y``, sums over the batch and spatial axes)::

        ∂L/∂γ_c = Σ dy[n, c, ...] · x[n, c, ...]
        ∂L/∂β_c = Σ dy[n, c, ...]
        ∂L/∂x   = dy · γ_c

    Second order (networks.md §7.2, §7.5), for ``corenet.curvature`` and OBD pruning:
    with tangents ``(γ̇, β̇)`` and the input's R-value ``ẋ``::

        R{y}       = ẋ · γ_c + x · γ̇_c + β̇_c
        R{∂L/∂x}   = R{dy} · γ_c + dy · γ̇_c
        R{∂L/∂γ_c} = Σ (R{dy} · x + dy · ẋ),   R{∂L/∂β_c} = Σ R{dy}

    and the Gauss-Newton diagonal pass maps the output diagonal ``h`` to
    ``diag_γ += Σ h x²``, ``diag_β += Σ h`` and ``h_x = h γ²``. A plugin layer may leave
    these out: curvature then falls back to finite differences.

    Parameters
    ----------
    gamma_init, beta_init : float
        Initial values of every ``γ_c`` (default 1) and ``β_c`` (default 0): the layer
        starts as the identity.
    trainable : bool
        ``False`` freezes both parameters.
    """

    name = "scale_shift"

    def __init__(self, gamma_init: float = 1.0, beta_init: float = 0.0, *,
                 trainable: bool = True):
        super().__init__(trainable=trainable)
        self.gamma_init = float(gamma_init)
        self.beta_init = float(beta_init)
        self._x = None
        self._x_dot = None

    @classmethod
    def examples(cls) -> list:
        """Cases run by the contract kit (``corenet.testing.check_component``)."""
        return [{"config": {}, "input_shape": (5,)},
                {"config": {"gamma_init": 0.5, "beta_init": -1.0}, "input_shape": (3, 4, 4)}]

    def _build(self, input_shape, rng) -> None:
        if len(input_shape) < 1:
            raise ShapeError(f"{self.label}: expected input of shape (N, C, ...), got "
                             f"per-sample shape {input_shape} (no feature axis)")
        channels = input_shape[0]
        self.gamma = self.add_parameter("gamma", np.full(channels, self.gamma_init),
                                        decay=False)
        self.beta = self.add_parameter("beta", np.full(channels, self.beta_init), decay=False)

    def _per_feature(self, v: np.ndarray, ndim: int) -> np.ndarray:
        """View a ``(C,)`` vector so that it broadcasts along axis 1 of an ndim array."""
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def _forward(self, x):
        self._x = x
        return x * self._per_feature(self.gamma.data, x.ndim) + \
            self._per_feature(self.beta.data, x.ndim)

    def _backward(self, dy):
        x = self._x
        if x is None:
            raise RuntimeError(f"{self.label}: backward called before forward")
        if not isinstance(dy, np.ndarray) or dy.shape != x.shape:
            raise ShapeError(f"{self.label}: expected an output gradient of shape {x.shape}, "
                             f"got {getattr(dy, 'shape', type(dy).__name__)}")
        axes = (0,) + tuple(range(2, dy.ndim))
        if self.gamma.trainable:
            self.gamma.grad += (dy * x).sum(axis=axes)
        if self.beta.trainable:
            self.beta.grad += dy.sum(axis=axes)
        return dy * self._per_feature(self.gamma.data, dy.ndim)

    # ------------------------------------------------------------------ second order
    def _rop_forward(self, x_dot, tangents):
        gamma_dot, beta_dot = tangents
        x = self._x
        self._x_dot = x_dot
        y_dot = x * self._per_feature(gamma_dot, x.ndim) + self._per_feature(beta_dot, x.ndim)
        if x_dot is not None:
            y_dot += x_dot * self._per_feature(self.gamma.data, x.ndim)
        return y_dot

    def _rop_backward(self, dy, dy_dot, tangents, rgrads):
        x, x_dot = self._x, self._x_dot
        axes = (0,) + tuple(range(2, dy.ndim))
        r_gamma = dy_dot * x if x_dot is None else dy_dot * x + dy * x_dot
        rgrads[0] += r_gamma.sum(axis=axes)
        rgrads[1] += dy_dot.sum(axis=axes)
        gamma = self._per_feature(self.gamma.data, dy.ndim)
        dx_dot = dy_dot * gamma + dy * self._per_feature(tangents[0], dy.ndim)
        return dy * gamma, dx_dot

    def _diag_gn_backward(self, h, diag):
        x = self._x
        axes = (0,) + tuple(range(2, h.ndim))
        diag[0] += (h * x * x).sum(axis=axes)
        diag[1] += h.sum(axis=axes)
        return h * self._per_feature(self.gamma.data ** 2, h.ndim)

    def get_config(self) -> dict:
        return {"gamma_init": self.gamma_init, "beta_init": self.beta_init,
                "trainable": self.trainable}
