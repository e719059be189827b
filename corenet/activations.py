"""The activation family (plugin): every element-wise activation of spec networks.md §2.2,
plus ``gelu`` and ``silu`` (PyTorch definitions; the spec does not list them).

Each class has the canonical name of spec README §9 and its hyperparameters, with the
spec defaults, as constructor keywords (returned by ``get_config()``).

* ``f``, ``df``, ``d2f``: vectorised NumPy (:mod:`corenet._reference`), evaluated in
  float64 and returned in the input's floating dtype; kinks use the left branch (D-04).
* ``forward(x, out=None)`` / ``backward(x, y, dy, out=None)``: the compiled kernels via
  :mod:`corenet.kernels` (``backward`` uses the cached output ``y`` where cheaper; both
  routes agree). Non-contiguous input is copied to C order first. ``identity`` returns
  its input itself (no copy); relu, leaky_relu and generalized_relu keep a bit mask of f′
  from ``forward`` for the matching ``backward`` (:class:`_MaskRoute`).

``prelu`` has a learnable slope. It declares ``parameter_specs = (("alpha", init),)`` and
the attributes ``init`` and ``per_channel``; the ``activation`` layer owns the ``alpha``
parameter: shape ``(C,)`` with C = the size of axis 1 of the input (the first per-sample
axis) when ``per_channel``, else ``(1,)`` (see :meth:`PReLU.parameter_shape`), filled with
``init``, and calls ``forward_with(x, alpha)`` and ``backward_with(x, dy, alpha) -> (dx,
dalpha)``, adding ``dalpha`` to the parameter's gradient.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from . import _reference as _ref
from . import kernels
from .activation import Activation
from .errors import HyperparameterError, check_positive
from .kernels._common import _check as _kernel_check
from .plugins import hookimpl


def _finite(value, component, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(f"{component}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise HyperparameterError(f"{component}: {name} must be finite, got {value!r}")
    return v


def _c(x):
    """C-contiguous view (copy only when needed) of an ndarray; other input is left to
    the kernel facade's checks."""
    if isinstance(x, np.ndarray) and not x.flags.c_contiguous:
        return np.ascontiguousarray(x)
    return x


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _same(a, ref):
    """a is None, or an ndarray of ref's shape and dtype."""
    return a is None or a is ref or (type(a) is np.ndarray and a.shape == ref.shape
                                     and a.dtype == ref.dtype)


def _like(values, x):
    dt = np.asarray(x).dtype
    return values.astype(dt if dt.kind == "f" else np.float64, copy=False)


class KernelActivation(Activation):
    """Shared implementation: NumPy ``f``/``df``/``d2f`` and kernel ``forward``/``backward``.
    Subclasses set ``name`` and store their hyperparameters as attributes named as in
    ``corenet._reference.ACTIVATION_PARAMS``."""

    def get_config(self) -> dict:
        return {key: getattr(self, key) for key, _ in _ref.ACTIVATION_PARAMS[self.name]}

    def f(self, x):
        return _like(_ref.activation_f(self.name, x, **self.get_config()), x)

    def df(self, x):
        self._require_differentiable()
        return _like(_ref.activation_df(self.name, x, **self.get_config()), x)

    def d2f(self, x):
        self._require_differentiable()
        return _like(_ref.activation_d2f(self.name, x, **self.get_config()), x)

    def forward(self, x, out=None):
        return kernels.activation_forward(self.name, _c(x), out=out, **self.get_config())

    def backward(self, x, y, dy, out=None):
        self._require_differentiable()
        return kernels.activation_backward(self.name, _c(x) if x is not None else None,
                                           _c(y) if y is not None else None, _c(dy),
                                           out=out, **self.get_config())

    def _require_differentiable(self):
        if not self.differentiable:
            raise NotImplementedError(f"activation {self.name!r} is not differentiable; "
                                      f"it has no derivative or backward pass")


def _simple(cls_name, act_name, doc):
    return type(cls_name, (KernelActivation,), {"name": act_name, "__doc__": doc})


class Identity(KernelActivation):
    """f(x) = x; f′ = 1; f″ = 0 (networks.md §2.2).

    ``forward(x)`` returns x itself and ``backward(x, y, dy)`` returns dy itself (no copy,
    as PyTorch's ``nn.Identity`` and corenet's flatten / inference dropout do; C-contiguous
    input is passed through, other input is copied to C order); the arrays are checked as
    the kernels check them. With ``out=`` the value is copied into ``out``. Like every
    layer output, the result must not be modified in place by the caller.
    """

    name = "identity"
    _label = "activation 'identity'"

    def forward(self, x, out=None):
        if out is None and type(x) is np.ndarray and x.dtype in _FLOATS \
                and x.flags.c_contiguous:
            return x                                    # the common case, checked inline
        if out is not None:
            return super().forward(x, out=out)
        return _kernel_check(_c(x), self._label, "x")

    def backward(self, x, y, dy, out=None):
        if out is None and type(dy) is np.ndarray and dy.dtype in _FLOATS \
                and dy.flags.c_contiguous and _same(x, dy) and _same(y, dy):
            return dy                                   # the common case, checked inline
        if out is not None:
            return super().backward(x, y, dy, out=out)
        dy = _kernel_check(_c(dy), self._label, "dy")
        for arr, label in ((x, "x"), (y, "y")):
            if arr is not None:
                _kernel_check(arr, self._label, label, dtype=dy.dtype, shape=dy.shape)
        return dy


class _MaskRoute(KernelActivation):
    """relu / leaky_relu / generalized_relu: ``forward`` also keeps a bit mask of f′
    (:func:`corenet.kernels.activation_forward_mask`, one bit per element), and
    ``backward(x, y, dy)`` called with the very arrays that the last ``forward`` took and
    returned (as the ``activation`` layer does) computes dx from it
    (:func:`~corenet.kernels.activation_backward_mask`): it reads x.size/8 bytes instead
    of x, with the same values bit for bit. Any other call takes the x route. Like every
    layer cache, x and y must not be modified in place between the two calls."""

    _last = None        # (weakref to x, weakref to y, mask) of the last forward

    def forward(self, x, out=None):
        # the mask buffer of the previous forward is reused (a new forward invalidates it
        # anyway): no per-call allocation that could split the heap's freed big blocks
        mask = self._last[2] if self._last is not None else None
        if mask is not None and mask.size != (getattr(x, "size", -8) + 7) // 8:
            mask = None
        y, mask = kernels.activation_forward_mask(self.name, _c(x), out=out, mask=mask,
                                                  **self.get_config())
        self._last = (weakref.ref(x), weakref.ref(y), mask)
        return y

    def backward(self, x, y, dy, out=None):
        last = self._last
        if (last is not None and y is not None and last[1]() is y
                and (x is None or last[0]() is x) and isinstance(dy, np.ndarray)
                and dy.shape == y.shape and dy.dtype == y.dtype):
            return kernels.activation_backward_mask(self.name, last[2], _c(dy), out=out,
                                                    **self.get_config())
        return super().backward(x, y, dy, out=out)


Sigmoid = _simple("Sigmoid", "sigmoid",
                  "f = σ(x) = 1/(1+e^{−x}) (sign-split, README §10); f′ = σ(1−σ); "
                  "f″ = σ(1−σ)(1−2σ) (networks.md §2.2).")
SigmoidSymmetric = _simple("SigmoidSymmetric", "sigmoid_symmetric",
                           "f = σ(x) − ½, range (−½, ½); f′ = σ(1−σ); f″ = σ(1−σ)(1−2σ) "
                           "(networks.md §2.2; cascade-correlation default).")
Tanh = _simple("Tanh", "tanh", "f = tanh x; f′ = 1 − tanh²x; f″ = −2 tanh x (1 − tanh²x) "
                               "(networks.md §2.2).")
Arctan = _simple("Arctan", "arctan", "f = arctan x; f′ = 1/(1+x²); f″ = −2x/(1+x²)² "
                                     "(networks.md §2.2).")
Softsign = _simple("Softsign", "softsign", "f = x/(1+|x|); f′ = 1/(1+|x|)²; "
                                           "f″ = −2 sign(x)/(1+|x|)³ (networks.md §2.2).")


class ReLU(_MaskRoute):
    """f = max(x, 0); f′ = 1[x > 0] (ReLU′(0) = 0, D-04); f″ = 0 (networks.md §2.2).
    Backward from a bit mask (:class:`_MaskRoute`)."""

    name = "relu"


SELU = _simple("SELU", "selu",
               "f = λx (x > 0) else λα(eˣ − 1) via expm1(min(x,0)); f′ = λ else λαeˣ "
               "(SELU′(0) = λα, D-04); f″ = 0 else λαeˣ; λ = 1.0507009873554804934, "
               "α = 1.6732632423543772848 (networks.md §2.2).")
Erf = _simple("Erf", "erf", "f = erf x; f′ = (2/√π)e^{−x²}; f″ = −2x f′ (networks.md §2.2).")
Gaussian = _simple("Gaussian", "gaussian", "f = e^{−x²/2}; f′ = −x e^{−x²/2}; "
                                           "f″ = (x²−1)e^{−x²/2} (networks.md §2.2).")
GELU = _simple("GELU", "gelu",
               "Exact GELU (PyTorch default; not in the spec): f = x Φ(x) = x·erfc(−x/√2)/2; "
               "f′ = Φ(x) + x φ(x); f″ = φ(x)(2 − x²), φ the standard normal density.")
SiLU = _simple("SiLU", "silu", "SiLU / swish (PyTorch; not in the spec): f = x σ(x); "
                               "f′ = σ(1 + x(1−σ)); f″ = σ(1−σ)(2 + x(1−2σ)).")


class Sign(KernelActivation):
    """f = +1 if x ≥ 0 else −1 (networks.md §2.2; perceptron output). Not differentiable:
    ``df``, ``d2f`` and ``backward`` raise NotImplementedError."""

    name = "sign"
    differentiable = False


class ScaledTanh(KernelActivation):
    """f = a tanh(bx); f′ = ab(1 − tanh²(bx)); f″ = −2ab² tanh(bx)(1 − tanh²(bx))
    (networks.md §2.2; LeCun 1998). Defaults a = 1.7159, b = 2/3."""

    name = "scaled_tanh"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{}, {"a": 1.0, "b": 1.5}]

    def __init__(self, a: float = 1.7159, b: float = 2.0 / 3.0):
        self.a = _finite(a, "activation 'scaled_tanh'", "a")
        self.b = _finite(b, "activation 'scaled_tanh'", "b")


class _Slope(KernelActivation):
    _default_alpha = 0.0

    def __init__(self, alpha: float | None = None):
        alpha = self._default_alpha if alpha is None else alpha
        self.alpha = _finite(alpha, f"activation {self.name!r}", "alpha")


class LeakyReLU(_MaskRoute, _Slope):
    """f = x if x > 0 else αx; f′ = 1 else α (LeakyReLU′(0) = α, D-04); f″ = 0
    (networks.md §2.2). Default α = 0.01. Backward from a bit mask (:class:`_MaskRoute`)."""

    name = "leaky_relu"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{}, {"alpha": 0.2}]
    _default_alpha = 0.01

    def __init__(self, alpha: float = 0.01):
        super().__init__(alpha)


class GeneralizedReLU(_MaskRoute, _Slope):
    """f = max(0, x) + α min(0, x); f′ = 1 if x > 0 else α (α at 0, D-04); f″ = 0
    (networks.md §2.2). α = −1 gives |x|. The spec gives no default; α = 0 (ReLU).
    Backward from a bit mask (:class:`_MaskRoute`)."""

    name = "generalized_relu"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{}, {"alpha": -1.0}, {"alpha": 0.3}]

    def __init__(self, alpha: float = 0.0):
        super().__init__(alpha)


class ELU(_Slope):
    """f = x if x > 0 else α(eˣ − 1) (expm1(min(x, 0)), README §10); f′ = 1 else αeˣ
    (= f + α; ELU′(0) = α, D-04); f″ = 0 else αeˣ (networks.md §2.2). Default α = 1."""

    name = "elu"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{}, {"alpha": 0.5}]

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha)


class Softplus(KernelActivation):
    """f = (1/β) log(1 + e^{βx}) = (max(βx, 0) + log1p(e^{−|βx|}))/β; f′ = σ(βx);
    f″ = βσ(βx)(1 − σ(βx)) (networks.md §2.2). Default β = 1 (must be > 0)."""

    name = "softplus"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{}, {"beta": 2.0}]

    def __init__(self, beta: float = 1.0):
        self.beta = check_positive(beta, "activation 'softplus'", "beta")


class PReLU(Activation):
    """Parametric ReLU (networks.md §2.2): f = x if x > 0 else α_c x with learnable α,
    one per channel (axis 1 of the input) when ``per_channel`` else one shared value,
    initialised to ``init`` (default 0.25). f′ = 1 else α (α at 0, D-04); f″ = 0;
    ``∂L/∂α_c = Σ dy·x·1[x ≤ 0]`` over all positions of channel c.

    The ``activation`` layer owns ``alpha`` (see the module docstring) and calls
    :meth:`forward_with` / :meth:`backward_with`. Without an alpha array (``f``, ``df``,
    ``forward``, ``backward``) the slope is the fixed initial value ``init``.
    """

    name = "prelu"

    @classmethod
    def examples(cls):
        """Contract-kit cases (corenet.testing)."""
        return [{}, {"init": 0.1, "per_channel": False}]

    def __init__(self, init: float = 0.25, per_channel: bool = True):
        self.init = _finite(init, "activation 'prelu'", "init")
        self.per_channel = bool(per_channel)
        self.parameter_specs = (("alpha", self.init),)

    def get_config(self) -> dict:
        return {"init": self.init, "per_channel": self.per_channel}

    def parameter_shape(self, sample_shape) -> tuple:
        """Shape of alpha for per-sample input shape ``sample_shape`` (no batch axis)."""
        return (int(sample_shape[0]),) if (self.per_channel and len(sample_shape)) else (1,)

    def _alpha(self, x, alpha):
        if alpha is None:
            return self.init
        return _ref._prelu_alpha(x, alpha)

    def f(self, x, alpha=None):
        x = np.asarray(x)
        return _like(np.where(x <= 0, self._alpha(x, alpha) * x.astype(np.float64), x), x)

    def df(self, x, alpha=None):
        x = np.asarray(x)
        return _like(np.where(x <= 0, self._alpha(x, alpha), 1.0), x)

    def d2f(self, x, alpha=None):
        return _like(np.zeros(np.shape(x)), x)

    def forward_with(self, x, alpha, out=None):
        """``f(x)`` with the slope array ``alpha`` ((C,) or (1,), x's dtype)."""
        return kernels.prelu_forward(_c(x), _c(alpha), out=out)

    def backward_with(self, x, dy, alpha, out=None):
        """``(dx, dalpha)``; dalpha has alpha's shape."""
        return kernels.prelu_backward(_c(x), _c(dy), _c(alpha), out=out)

    def _fixed(self, x):
        dt = getattr(x, "dtype", np.float64)
        return np.full(1, self.init, dtype=dt if np.dtype(dt).kind == "f" else np.float64)

    def forward(self, x, out=None):
        return self.forward_with(x, self._fixed(x), out=out)

    def backward(self, x, y, dy, out=None):
        return self.backward_with(x, dy, self._fixed(x), out=out)[0]


ACTIVATIONS = [Identity, Sigmoid, SigmoidSymmetric, Tanh, ScaledTanh, Arctan, Softsign, ReLU,
               LeakyReLU, PReLU, GeneralizedReLU, ELU, SELU, Softplus, Erf, Gaussian, Sign,
               GELU, SiLU]


@hookimpl
def corenet_register_activations():
    return list(ACTIVATIONS)
