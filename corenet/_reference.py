"""Plain NumPy twins of the compiled kernels: the oracles of the kernel tests.

Each function here has the semantics of the kernel of the same name in
:mod:`corenet.kernels`, written as directly as possible (spec networks.md §2.2, §2.3,
§3.4; README §10 stable forms; D-04 left branch at kinks). Element-wise activation
formulas are evaluated in float64 and rounded once to the input dtype: the exact
reference. The kernels evaluate the same formulas in the array dtype (float32
arithmetic and float library functions for float32, see
``corenet/_kernels/activation_simd.h``) and agree with these twins within the spec's
kernel-vs-reference tolerance (README §3.1: rtol 1e-5 float32, 1e-12 float64). These
functions do not validate their input and are not fast.

``ACTIVATION_PARAMS`` (name -> ((param, default), ...)) is the one table of activation
hyperparameters and spec defaults, shared by the facade and the activation family.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf as _erf, erfc as _erfc

SELU_LAMBDA = 1.0507009873554804934
SELU_ALPHA = 1.6732632423543772848

ACTIVATION_PARAMS = {
    "identity": (), "sigmoid": (), "sigmoid_symmetric": (), "tanh": (),
    "scaled_tanh": (("a", 1.7159), ("b", 2.0 / 3.0)),
    "arctan": (), "softsign": (), "relu": (),
    "leaky_relu": (("alpha", 0.01),),
    "generalized_relu": (("alpha", 0.0),),   # spec gives no default; 0 = relu
    "elu": (("alpha", 1.0),), "selu": (),
    "softplus": (("beta", 1.0),),
    "erf": (), "gaussian": (), "sign": (),
    "gelu": (), "silu": (),
}
# activations whose backward may use the cached output y (twin of the kernel's from_y)
FROM_Y = ("sigmoid", "sigmoid_symmetric", "tanh", "scaled_tanh", "elu", "selu")


def resolve_params(name: str, params: dict) -> dict:
    """Spec defaults of ``name`` updated with ``params`` (unknown keys raise TypeError)."""
    spec = dict(ACTIVATION_PARAMS[name])
    unknown = set(params) - set(spec)
    if unknown:
        raise TypeError(f"activation {name!r}: unknown parameter(s) {sorted(unknown)}; "
                        f"it takes {sorted(spec) or 'none'}")
    spec.update(params)
    return spec


def sigmoid(x):
    """Sign-split logistic function (README §10), float64."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _phi(x):
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _f(name, x, p):
    if name == "identity":
        return x.copy()
    if name == "sigmoid":
        return sigmoid(x)
    if name == "sigmoid_symmetric":
        return sigmoid(x) - 0.5
    if name == "tanh":
        return np.tanh(x)
    if name == "scaled_tanh":
        return p["a"] * np.tanh(p["b"] * x)
    if name == "arctan":
        return np.arctan(x)
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "relu":
        return np.where(x <= 0, 0.0, x)
    if name in ("leaky_relu", "generalized_relu"):
        return np.where(x <= 0, p["alpha"] * x, x)
    if name == "elu":
        return np.where(x <= 0, p["alpha"] * np.expm1(np.minimum(x, 0.0)), x)
    if name == "selu":
        return np.where(x <= 0, SELU_LAMBDA * SELU_ALPHA * np.expm1(np.minimum(x, 0.0)),
                        SELU_LAMBDA * x)
    if name == "softplus":
        bx = p["beta"] * x
        return (np.maximum(bx, 0.0) + np.log1p(np.exp(-np.abs(bx)))) / p["beta"]
    if name == "erf":
        return _erf(x)
    if name == "gaussian":
        return np.exp(-0.5 * x * x)
    if name == "sign":
        return np.where(x >= 0, 1.0, -1.0)
    if name == "gelu":
        return x * 0.5 * _erfc(-x / np.sqrt(2.0))
    if name == "silu":
        return x * sigmoid(x)
    raise KeyError(name)


def _df(name, x, p):
    if name == "identity":
        return np.ones_like(x)
    if name in ("sigmoid", "sigmoid_symmetric"):
        s = sigmoid(x)
        return s * (1.0 - s)
    if name == "tanh":
        t = np.tanh(x)
        return 1.0 - t * t
    if name == "scaled_tanh":
        t = np.tanh(p["b"] * x)
        return p["a"] * p["b"] * (1.0 - t * t)
    if name == "arctan":
        return 1.0 / (1.0 + x * x)
    if name == "softsign":
        return 1.0 / (1.0 + np.abs(x)) ** 2
    if name == "relu":
        return np.where(x <= 0, 0.0, 1.0)
    if name in ("leaky_relu", "generalized_relu"):
        return np.where(x <= 0, p["alpha"], 1.0)
    if name == "elu":
        return np.where(x <= 0, p["alpha"] * np.exp(np.minimum(x, 0.0)), 1.0)
    if name == "selu":
        return np.where(x <= 0, SELU_LAMBDA * SELU_ALPHA * np.exp(np.minimum(x, 0.0)),
                        SELU_LAMBDA)
    if name == "softplus":
        return sigmoid(p["beta"] * x)
    if name == "erf":
        return 2.0 / np.sqrt(np.pi) * np.exp(-x * x)
    if name == "gaussian":
        return -x * np.exp(-0.5 * x * x)
    if name == "gelu":
        return 0.5 * _erfc(-x / np.sqrt(2.0)) + x * _phi(x)
    if name == "silu":
        s = sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
    raise NotImplementedError(f"activation {name!r} is not differentiable")


def _d2f(name, x, p):
    if name in ("identity", "relu", "leaky_relu", "generalized_relu"):
        return np.zeros_like(x)
    if name in ("sigmoid", "sigmoid_symmetric"):
        s = sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if name == "tanh":
        t = np.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    if name == "scaled_tanh":
        t = np.tanh(p["b"] * x)
        return -2.0 * p["a"] * p["b"] ** 2 * t * (1.0 - t * t)
    if name == "arctan":
        return -2.0 * x / (1.0 + x * x) ** 2
    if name == "softsign":
        return -2.0 * np.sign(x) / (1.0 + np.abs(x)) ** 3
    if name == "elu":
        return np.where(x <= 0, p["alpha"] * np.exp(np.minimum(x, 0.0)), 0.0)
    if name == "selu":
        return np.where(x <= 0, SELU_LAMBDA * SELU_ALPHA * np.exp(np.minimum(x, 0.0)), 0.0)
    if name == "softplus":
        s = sigmoid(p["beta"] * x)
        return p["beta"] * s * (1.0 - s)
    if name == "erf":
        return -2.0 * x * (2.0 / np.sqrt(np.pi) * np.exp(-x * x))
    if name == "gaussian":
        return (x * x - 1.0) * np.exp(-0.5 * x * x)
    if name == "gelu":
        return _phi(x) * (2.0 - x * x)
    if name == "silu":
        s = sigmoid(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
    raise NotImplementedError(f"activation {name!r} is not differentiable")


def _as64(x):
    return np.asarray(x, dtype=np.float64)


def _dtype_of(x):
    x = np.asarray(x)
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def activation_f(name: str, x, **params) -> np.ndarray:
    """f(x) in float64 (reference for ``Activation.f``)."""
    return _f(name, _as64(x), resolve_params(name, params))


def activation_df(name: str, x, **params) -> np.ndarray:
    """f′(x) in float64, left branch at kinks (D-04)."""
    return _df(name, _as64(x), resolve_params(name, params))


def activation_d2f(name: str, x, **params) -> np.ndarray:
    """f″(x) in float64, left branch at kinks (D-04)."""
    return _d2f(name, _as64(x), resolve_params(name, params))


def activation_forward(name: str, x, **params) -> np.ndarray:
    """Twin of ``kernels.activation_forward``: f(x) rounded to x's dtype."""
    return activation_f(name, x, **params).astype(_dtype_of(x))


def activation_backward(name: str, x, y, dy, **params) -> np.ndarray:
    """Twin of ``kernels.activation_backward``: ``dy * f'(x)``, from y when given and
    the activation has an output-based route (``FROM_Y``), rounded to dy's dtype."""
    p = resolve_params(name, params)
    dt = _dtype_of(dy)
    dy = _as64(dy)
    if y is not None and name in FROM_Y and (name != "elu" or p["alpha"] > 0) and \
            (name != "scaled_tanh" or p["a"] != 0):
        y = _as64(y)
        if name == "sigmoid":
            d = y * (1.0 - y)
        elif name == "sigmoid_symmetric":
            s = y + 0.5
            d = s * (1.0 - s)
        elif name == "tanh":
            d = 1.0 - y * y
        elif name == "scaled_tanh":
            t = y / p["a"]
            d = p["a"] * p["b"] * (1.0 - t * t)
        elif name == "elu":
            d = np.where(y <= 0, y + p["alpha"], 1.0)
        else:
            d = np.where(y <= 0, y + SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA)
    else:
        d = _df(name, _as64(x), p)
    return (dy * d).astype(dt)


def activation_forward_mask(name: str, x, **params):
    """Twin of ``kernels.activation_forward_mask`` (relu, leaky_relu, generalized_relu):
    ``(f(x), bits)``, bits = ``not x <= 0`` in C order packed 8 per byte, bit order little."""
    x = np.asarray(x)
    bits = np.packbits(~(x.reshape(-1) <= 0), bitorder="little")
    return activation_forward(name, x, **params), bits


def activation_backward_mask(name: str, mask, dy, **params):
    """Twin of ``kernels.activation_backward_mask``: ``dy * (1 if bit else alpha)`` (alpha
    = 0 for relu), in float64 rounded to dy's dtype."""
    p = resolve_params(name, params)
    dt = _dtype_of(dy)
    dy = _as64(dy)
    bit = np.unpackbits(np.asarray(mask, np.uint8), count=dy.size, bitorder="little")
    d = np.where(bit.reshape(dy.shape) != 0, 1.0, p.get("alpha", 0.0))
    return (dy * d).astype(dt)


def _prelu_alpha(x, alpha):
    """alpha broadcast along axis 1 (per channel) or as a scalar (one entry)."""
    alpha = np.asarray(alpha).reshape(-1)
    if alpha.size == 1:
        return alpha[0]
    return alpha.reshape((1, -1) + (1,) * (np.ndim(x) - 2))


def prelu_forward(x, alpha) -> np.ndarray:
    """``x if x > 0 else alpha_c * x`` (channel = axis 1)."""
    x = np.asarray(x)
    return np.where(x <= 0, _prelu_alpha(x, alpha) * x, x).astype(x.dtype)


def prelu_backward(x, dy, alpha):
    """``(dx, dalpha)``: ``dx = dy * (1 if x > 0 else alpha_c)``,
    ``dalpha_c = Σ dy x 1[x <= 0]`` over every axis except 1 (all axes if shared)."""
    x, dy = np.asarray(x), np.asarray(dy)
    alpha = np.asarray(alpha)
    neg = x <= 0
    dx = np.where(neg, _prelu_alpha(x, alpha) * dy, dy).astype(x.dtype)
    terms = np.where(neg, dy * x, 0).astype(x.dtype)
    if alpha.size == 1:
        dalpha = terms.sum().reshape(alpha.shape)
    else:
        dalpha = terms.sum(axis=tuple(a for a in range(x.ndim) if a != 1))
    return dx, dalpha.astype(x.dtype)


def softmax(z, axis: int = -1) -> np.ndarray:
    """``exp(z - max) / Σ exp(z - max)`` along ``axis``."""
    z = np.asarray(z)
    e = np.exp(_as64(z) - _as64(z).max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(z.dtype)


def log_softmax(z, axis: int = -1) -> np.ndarray:
    """``z - max - log Σ exp(z - max)`` along ``axis``."""
    z = np.asarray(z)
    z64 = _as64(z)
    m = z64.max(axis=axis, keepdims=True)
    return (z64 - m - np.log(np.exp(z64 - m).sum(axis=axis, keepdims=True))).astype(z.dtype)


def softmax_cross_entropy(z, y):
    """``(loss (N,), grad (N, K))``: ``loss_n = -Σ_k y_nk log_softmax(z_n)_k``,
    ``grad = softmax(z) - y``; y is float (N, K) or integer labels (N,)."""
    z = np.asarray(z)
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        onehot = np.zeros(z.shape, dtype=np.float64)
        onehot[np.arange(z.shape[0]), y] = 1.0
        y = onehot
    q = log_softmax(_as64(z))
    loss = -(_as64(y) * q).sum(axis=1)
    grad = np.exp(q) - _as64(y)
    return loss.astype(z.dtype), grad.astype(z.dtype)


# ---- pooling ----
# Twins of the pooling / unpooling / upsampling kernels (convolution.md §5-6, D-20, D-70).
# Geometry arguments are already normalised: kernel_size (kh, kw), stride (sh, sw),
# padding ((top, bottom), (left, right)); x is (N, C, H, W). Written with explicit loops
# over output positions and window offsets (vectorised over N and C only).

def _pool_out(size, k, s, lo, hi):
    return (size + lo + hi - k) // s + 1


def max_pool2d_forward(x, kernel_size, stride, padding):
    """``(y, switches)``: window maxima and the flat plane index of the first maximum in
    row-major window order, or of the first NaN (D-20); padding is skipped (−∞)."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), ((pt, pb), (pl, pr)) = kernel_size, stride, padding
    ho, wo = _pool_out(h, kh, sh, pt, pb), _pool_out(w, kw, sw, pl, pr)
    y = np.empty((n, c, ho, wo), dtype=x.dtype)
    sw_ = np.empty((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            best = np.zeros((n, c), dtype=x.dtype)
            arg = np.full((n, c), -1, dtype=np.int64)
            for p in range(kh):
                for q in range(kw):
                    a, b = i * sh - pt + p, j * sw - pl + q
                    if not (0 <= a < h and 0 <= b < w):
                        continue
                    v = x[:, :, a, b]
                    have = arg >= 0
                    take = ~have | (v > best) | (np.isnan(v) & ~np.isnan(best))
                    take &= ~(have & np.isnan(best))
                    best = np.where(take, v, best)
                    arg = np.where(take, a * w + b, arg)
            y[:, :, i, j] = best
            sw_[:, :, i, j] = arg
    return y, sw_


def max_pool2d_backward(dy, switches, input_shape):
    """``dX`` of ``input_shape`` (N, C, H, W): zero, then ``dX.flat_plane[switch] += dY``
    for each output position in row-major order, in dY's dtype."""
    dy = np.asarray(dy)
    n, c, h, w = input_shape
    dx = np.zeros((n * c, h * w), dtype=dy.dtype)
    planes = np.arange(n * c)
    g = dy.reshape(n * c, -1)
    s = np.asarray(switches).reshape(n * c, -1)
    for k in range(g.shape[1]):
        dx[planes, s[:, k]] += g[:, k]
    return dx.reshape(n, c, h, w)


def _avg_divisors(h, w, ho, wo, kernel_size, stride, padding, count_include_pad):
    (kh, kw), (sh, sw), ((pt, _), (pl, _)) = kernel_size, stride, padding
    if count_include_pad:
        return np.full((ho, wo), float(kh * kw))
    rows = [min(i * sh - pt + kh, h) - max(i * sh - pt, 0) for i in range(ho)]
    cols = [min(j * sw - pl + kw, w) - max(j * sw - pl, 0) for j in range(wo)]
    return np.outer(rows, cols).astype(np.float64)


def avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad=True):
    """``Y = (1/m) Σ_window x_pad``; m = kh·kw or the in-bounds count (float64, rounded
    once)."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), ((pt, pb), (pl, pr)) = kernel_size, stride, padding
    ho, wo = _pool_out(h, kh, sh, pt, pb), _pool_out(w, kw, sw, pl, pr)
    m = _avg_divisors(h, w, ho, wo, kernel_size, stride, padding, count_include_pad)
    x64 = x.astype(np.float64)
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            for p in range(kh):
                for q in range(kw):
                    a, b = i * sh - pt + p, j * sw - pl + q
                    if 0 <= a < h and 0 <= b < w:
                        y[:, :, i, j] += x64[:, :, a, b]
    return (y / m).astype(x.dtype)


def avg_pool2d_backward(dy, input_shape, kernel_size, stride, padding,
                        count_include_pad=True):
    """Every in-bounds element of window (i, j) receives ``dY[i, j]/m`` (accumulated in
    row-major output order, float64, rounded once)."""
    dy = np.asarray(dy)
    n, c, h, w = input_shape
    ho, wo = dy.shape[2:]
    (kh, kw), (sh, sw), ((pt, _), (pl, _)) = kernel_size, stride, padding
    m = _avg_divisors(h, w, ho, wo, kernel_size, stride, padding, count_include_pad)
    g = dy.astype(np.float64) / m
    dx = np.zeros((n, c, h, w))
    for i in range(ho):
        for j in range(wo):
            for p in range(kh):
                for q in range(kw):
                    a, b = i * sh - pt + p, j * sw - pl + q
                    if 0 <= a < h and 0 <= b < w:
                        dx[:, :, a, b] += g[:, :, i, j]
    return dx.astype(dy.dtype)


def max_unpool2d_forward(x, switches, output_size):
    """``Y`` (N, C, H_out, W_out) zero except ``Y.flat_plane[switch] = X`` (the last entry
    in row-major order wins)."""
    x = np.asarray(x)
    n, c = x.shape[:2]
    ho, wo = output_size
    y = np.zeros((n * c, ho * wo), dtype=x.dtype)
    planes = np.arange(n * c)
    s = np.asarray(switches).reshape(n * c, -1)
    v = x.reshape(n * c, -1)
    for k in range(s.shape[1]):
        y[planes, s[:, k]] = v[:, k]
    return y.reshape(n, c, ho, wo)


def max_unpool2d_backward(dy, switches):
    """``dX[n, c, i, j] = dY.flat_plane[switch[n, c, i, j]]`` for the last entry (row-major)
    of each repeated switch, 0 for the entries the forward pass overwrote."""
    dy = np.asarray(dy)
    s = np.asarray(switches)
    n, c = s.shape[:2]
    flat, sw = dy.reshape(n * c, -1), s.reshape(n * c, -1)
    dx = np.take_along_axis(flat, sw, axis=1)
    for p in range(n * c):
        last = {}
        for k, v in enumerate(sw[p]):
            last[v] = k
        keep = np.zeros(sw.shape[1], bool)
        keep[list(last.values())] = True
        dx[p, ~keep] = 0
    return dx.reshape(s.shape)


def _scale(scale_factor, mode):
    sh, sw = (scale_factor, scale_factor) if np.isscalar(scale_factor) else scale_factor
    return int(sh), int(sw), (1.0 / (sh * sw) if mode == "avg_transpose" else 1.0)


def upsample_nearest2d_forward(x, scale_factor=2, mode="copy"):
    """``Y[n, c, i, j] = X[n, c, ⌊i/sh⌋, ⌊j/sw⌋]`` (Kronecker product with a block of
    ones), times ``1/(sh·sw)`` for ``mode="avg_transpose"``."""
    x = np.asarray(x)
    sh, sw, scale = _scale(scale_factor, mode)
    y = np.kron(x.astype(np.float64), np.ones((sh, sw)))
    return (y * scale if scale != 1.0 else y).astype(x.dtype)


def upsample_nearest2d_backward(dy, scale_factor=2, mode="copy"):
    """Block sums of dY over each ``sh×sw`` block (sum pooling), times the scale."""
    dy = np.asarray(dy)
    sh, sw, scale = _scale(scale_factor, mode)
    n, c, ho, wo = dy.shape
    s = dy.astype(np.float64).reshape(n, c, ho // sh, sh, wo // sw, sw).sum(axis=(3, 5))
    return (s * scale).astype(dy.dtype)


# ---- convolution ----
# NumPy twins of the convolution kernels (convolution.md §1-4), straight from the spec's
# index formulas: one einsum per kernel tap (p, q) over strided slices of the padded
# input; float64 arithmetic, rounded once to the input dtype. Geometry arguments are
# already normalised: stride (sh, sw), padding ((top, bottom), (left, right)), dilation
# (dh, dw), groups G. 1-D twins add a leading spatial axis of size 1.


def _conv_size(n, k, s, lo, hi, d):
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _tap(a, p, q, out_hw, stride, dilation):
    """Strided window a[..., i·sh + p·dh, j·sw + q·dw] for all output (i, j)."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    return a[..., p * dh: p * dh + (ho - 1) * sh + 1: sh, q * dw: q * dw + (wo - 1) * sw + 1: sw]


def _padded_zeros(n, c, hw, out_hw, k, stride, padding, dilation):
    """Zero array large enough for the padded input and every window index."""
    size = [max(hw[i] + padding[i][0] + padding[i][1],
                (out_hw[i] - 1) * stride[i] + (k[i] - 1) * dilation[i] + 1) for i in range(2)]
    return np.zeros((n, c, size[0], size[1]))


def conv2d_forward(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1),
                   groups=1):
    """``Y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q]·x_pad[n,c,iS_h+pd_h, jS_w+qd_w]`` (§3.2),
    input channels of output o restricted to its group."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    out_hw = tuple(_conv_size((h, wd)[i], (kh, kw)[i], stride[i], *padding[i], dilation[i])
                   for i in range(2))
    xp = _padded_zeros(n, c, (h, wd), out_hw, (kh, kw), stride, padding, dilation)
    xp[:, :, padding[0][0]:padding[0][0] + h, padding[1][0]:padding[1][0] + wd] = x
    w64 = w.astype(np.float64)
    y = np.zeros((n, o) + out_hw)
    og = o // groups
    for g in range(groups):
        xs, ys = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for p in range(kh):
            for q in range(kw):
                y[:, ys] += np.einsum("nchw,oc->nohw",
                                      _tap(xp[:, xs], p, q, out_hw, stride, dilation),
                                      w64[ys, :, p, q])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y.astype(x.dtype)


def conv2d_input_grad(dy, w, input_size, stride=(1, 1), padding=((0, 0), (0, 0)),
                      dilation=(1, 1), groups=1):
    """§3.3: ``dx_pad[n,c,iS+pd, jS+qd] += dY[n,o,i,j]·W[o,c,p,q]``, then the padding is
    removed (D-18)."""
    n, o, ho, wo = dy.shape
    _, cg, kh, kw = w.shape
    h, wd = input_size
    c = cg * groups
    dxp = _padded_zeros(n, c, (h, wd), (ho, wo), (kh, kw), stride, padding, dilation)
    dy64, w64 = dy.astype(np.float64), w.astype(np.float64)
    og = o // groups
    for g in range(groups):
        xs, ys = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for p in range(kh):
            for q in range(kw):
                _tap(dxp[:, xs], p, q, (ho, wo), stride, dilation)[...] += np.einsum(
                    "nohw,oc->nchw", dy64[:, ys], w64[ys, :, p, q])
    dx = dxp[:, :, padding[0][0]:padding[0][0] + h, padding[1][0]:padding[1][0] + wd]
    return dx.astype(dy.dtype)


def conv2d_weight_grad(x, dy, kernel_size, stride=(1, 1), padding=((0, 0), (0, 0)),
                       dilation=(1, 1), groups=1):
    """§3.3: ``dW[o,c,p,q] = Σ_{n,i,j} dY[n,o,i,j]·x_pad[n,c,iS+pd, jS+qd]``."""
    n, c, h, wd = x.shape
    _, o, ho, wo = dy.shape
    kh, kw = kernel_size
    cg, og = c // groups, o // groups
    xp = _padded_zeros(n, c, (h, wd), (ho, wo), (kh, kw), stride, padding, dilation)
    xp[:, :, padding[0][0]:padding[0][0] + h, padding[1][0]:padding[1][0] + wd] = x
    dy64 = dy.astype(np.float64)
    dw = np.zeros((o, cg, kh, kw))
    for g in range(groups):
        xs, ys = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for p in range(kh):
            for q in range(kw):
                dw[ys, :, p, q] = np.einsum("nohw,nchw->oc", dy64[:, ys],
                                            _tap(xp[:, xs], p, q, (ho, wo), stride, dilation))
    return dw.astype(x.dtype)


def conv_bias_grad(dy):
    """``db[o] = Σ_{n, spatial} dY[n, o, ...]``."""
    axes = (0,) + tuple(range(2, dy.ndim))
    return dy.astype(np.float64).sum(axis=axes).astype(dy.dtype)


def _convt_full(x_hw, k, stride, dilation, padding, out_hw):
    return tuple(max((x_hw[i] - 1) * stride[i] + dilation[i] * (k[i] - 1) + 1,
                     padding[i][0] + out_hw[i]) for i in range(2))


def conv_transpose2d_forward(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)),
                             output_padding=(0, 0), dilation=(1, 1), groups=1):
    """§4: ``Y_full[n,o,iS+pd,jS+qd] += X[n,c,i,j]·W[c,o,p,q]``, crop rows
    ``P_lo … P_lo+H_out−1`` (columns likewise), add ``b[o]``; W ``(C_in, C_out/G, kh, kw)``."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    out_hw = tuple((x.shape[2 + i] - 1) * stride[i] - padding[i][0] - padding[i][1]
                   + dilation[i] * ((kh, kw)[i] - 1) + output_padding[i] + 1 for i in range(2))
    full = np.zeros((n, og * groups) + _convt_full((h, wd), (kh, kw), stride, dilation,
                                                   padding, out_hw))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    cg = c // groups
    for g in range(groups):
        xs, ys = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for p in range(kh):
            for q in range(kw):
                _tap(full[:, ys], p, q, (h, wd), stride, dilation)[...] += np.einsum(
                    "nchw,co->nohw", x64[:, xs], w64[xs, :, p, q])
    y = full[:, :, padding[0][0]:padding[0][0] + out_hw[0],
             padding[1][0]:padding[1][0] + out_hw[1]].copy()
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y.astype(x.dtype)


def conv_transpose2d_backward(x, dy, w, stride=(1, 1), padding=((0, 0), (0, 0)),
                              dilation=(1, 1), groups=1):
    """§4: with dY_ext = dY placed at (P_lo, P_left) in zeros,
    ``dX[n,c,i,j] = Σ W[c,o,p,q]·dY_ext[n,o,iS+pd,jS+qd]``,
    ``dW[c,o,p,q] = Σ X[n,c,i,j]·dY_ext[...]``, ``db[o] = Σ dY``. Returns (dx, dw, db)."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    out_hw = dy.shape[2:]
    ext = np.zeros((n, og * groups) + _convt_full((h, wd), (kh, kw), stride, dilation,
                                                  padding, out_hw))
    ext[:, :, padding[0][0]:padding[0][0] + out_hw[0],
        padding[1][0]:padding[1][0] + out_hw[1]] = dy
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    cg = c // groups
    for g in range(groups):
        xs, ys = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        for p in range(kh):
            for q in range(kw):
                t = _tap(ext[:, ys], p, q, (h, wd), stride, dilation)
                dx[:, xs] += np.einsum("nohw,co->nchw", t, w64[xs, :, p, q])
                dw[xs, :, p, q] = np.einsum("nchw,nohw->co", x64[:, xs], t)
    return dx.astype(x.dtype), dw.astype(x.dtype), conv_bias_grad(dy)


def convolve_true(x, h, mode="valid"):
    """True 2-D convolution ``y[u,v] = Σ_{p,q} h[p,q]·x[u−p, v−q]`` (§1, no flip of the
    formula: the "full" output, then the "valid"/"same" part as scipy.signal.convolve2d)."""
    (hh, ww), (kh, kw) = x.shape, h.shape
    full = np.zeros((hh + kh - 1, ww + kw - 1))
    x64, h64 = x.astype(np.float64), h.astype(np.float64)
    for p in range(kh):
        for q in range(kw):
            full[p:p + hh, q:q + ww] += h64[p, q] * x64
    if mode == "full":
        out = full
    elif mode == "valid":
        out = full[kh - 1:hh, kw - 1:ww]
    else:
        out = full[(kh - 1) // 2:(kh - 1) // 2 + hh, (kw - 1) // 2:(kw - 1) // 2 + ww]
    return out.astype(x.dtype)
# ---- end convolution ----


# ---- cascade ----
CASCADE_UNITS = {  # name -> (f(x), f′(x)) in float64, as corenet/_kernels/cascade.pyx
    "identity": (lambda x: x, lambda x: np.ones_like(x)),
    "sigmoid": (lambda x: 0.5 + 0.5 * np.tanh(0.5 * x),
                lambda x: np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2),
    "sigmoid_symmetric": (lambda x: 0.5 * np.tanh(0.5 * x),
                          lambda x: np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2),
    "tanh": (np.tanh, lambda x: 4.0 * np.exp(-2.0 * np.abs(x))
             / (1.0 + np.exp(-2.0 * np.abs(x))) ** 2),
    "gaussian": (lambda x: np.exp(-0.5 * x * x), lambda x: -x * np.exp(-0.5 * x * x)),
    "sin": (np.sin, np.cos),
    "cos": (np.cos, lambda x: -np.sin(x)),
    "arctan": (np.arctan, lambda x: 1.0 / (1.0 + x * x)),
    "softsign": (lambda x: x / (1.0 + np.abs(x)), lambda x: 1.0 / (1.0 + np.abs(x)) ** 2),
}


def cascade_pool_values(S, names, beta):
    """NumPy twin of ``kernels.cascade_pool_values``: column j of ``S`` (N, P) uses unit
    type ``names[j]`` and steepness ``beta[j]``; returns ``(f(βs), β f′(βs))`` in S's
    dtype (evaluated in float64)."""
    S64 = np.asarray(S, dtype=np.float64)
    V, dV = np.empty_like(S64), np.empty_like(S64)
    for j, (name, b) in enumerate(zip(names, beta)):
        f, df = CASCADE_UNITS[name]
        x = b * S64[:, j]
        V[:, j], dV[:, j] = f(x), b * df(x)
    return V.astype(S.dtype), dV.astype(S.dtype)


def cascade_quickprop(w, g, d, p, lr, mu, decay=0.0):
    """NumPy twin of ``kernels.cascade_quickprop`` (optimizers.md §10.1, vectorised with
    masks, evaluated in float64 and rounded once to the arrays' dtype like the kernel);
    updates w, d, p in place and returns the step."""
    w64, d64, p64 = (np.asarray(a, dtype=np.float64) for a in (w, d, p))
    s = np.asarray(g, dtype=np.float64) + decay * w64
    shrink = mu / (1.0 + mu)
    step = -lr * s
    down, up = d64 < 0.0, d64 > 0.0
    step[(down & (s <= 0.0)) | (up & (s >= 0.0))] = 0.0
    limit = shrink * p64
    maximal = (down & (s >= limit)) | (up & (s <= limit))
    rest = (down | up) & ~maximal
    step[maximal] += mu * d64[maximal]
    denom = p64 - s
    sec = rest & (denom != 0.0)
    step[sec] += d64[sec] * s[sec] / denom[sec]
    deg = rest & (denom == 0.0)
    step[deg] = -lr * s[deg]
    w[...] = w64 + step
    d[...] = step
    p[...] = s
    return step
# ---- end cascade ----
