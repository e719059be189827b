"""Arguments of the convolution kernels: ``stride``, ``padding``, ``dilation`` and
``groups`` parsed, validated and normalised to 2-D (:class:`_ConvArgs`), output sizes
(convolution.md §2, §4; D-19, D-69), and the checks of arrays, channels and outputs
with errors naming the kernel."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import HyperparameterError, ShapeError
from ._common import _INT_MAX, _check, _output


def _conv_int(v, kernel, name, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise HyperparameterError(f"{kernel}: {name} must be an integer >= {minimum}, got {v!r}")
    if v > _INT_MAX:
        raise HyperparameterError(f"{kernel}: {name} must be <= {_INT_MAX}, got {v!r}")
    return int(v)


def _conv_tuple(value, nd, kernel, name, minimum=1):
    """An int or a sequence of ``nd`` ints as a tuple of ``nd`` ints >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (_conv_int(value, kernel, name, minimum),) * nd
    if isinstance(value, (tuple, list)) and len(value) == nd:
        return tuple(_conv_int(v, kernel, name, minimum) for v in value)
    raise HyperparameterError(f"{kernel}: {name} must be an int or {nd} ints, got {value!r}")


def conv_padding(padding, kernel_size, stride=1, dilation=1, nd=2, kernel="conv"):
    """Normalise ``padding`` to ``((lo, hi), ...)`` per spatial axis (convolution.md §2).

    ``padding``: int (all sides), ``nd`` ints (symmetric per axis; for ``nd == 1`` a pair
    is ``(lo, hi)``), ``nd`` pairs ``(lo, hi)``, or ``"valid"`` (0), ``"same"`` (total
    ``d(k − 1)``, ``lo = ⌊T/2⌋``, extra zero bottom/right, D-69) or ``"full"``
    (``d(k − 1)`` each side); strings other than "valid" need stride 1.
    """
    k = _conv_tuple(kernel_size, nd, kernel, "kernel_size")
    s = _conv_tuple(stride, nd, kernel, "stride")
    d = _conv_tuple(dilation, nd, kernel, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding not in ("same", "full"):
            raise HyperparameterError(f"{kernel}: padding must be an int, a tuple, 'valid', "
                                      f"'same' or 'full', got {padding!r}")
        if any(v != 1 for v in s):
            raise HyperparameterError(f"{kernel}: padding={padding!r} needs stride 1, "
                                      f"got stride {s}")
        tot = [dd * (kk - 1) for kk, dd in zip(k, d)]
        if padding == "full":
            return tuple((t, t) for t in tot)
        return tuple((t // 2, t - t // 2) for t in tot)
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p = _conv_int(padding, kernel, "padding", 0)
        return ((p, p),) * nd
    if isinstance(padding, (tuple, list)):
        if nd == 1 and len(padding) == 1 and not isinstance(padding[0], (tuple, list)):
            p = _conv_int(padding[0], kernel, "padding", 0)
            return ((p, p),)
        if nd == 1 and len(padding) == 2 and not isinstance(padding[0], (tuple, list)):
            return (tuple(_conv_int(v, kernel, "padding", 0) for v in padding),)
        if len(padding) == nd:
            out = []
            for v in padding:
                if isinstance(v, (tuple, list)) and len(v) == 2:
                    out.append(tuple(_conv_int(u, kernel, "padding", 0) for u in v))
                else:
                    p = _conv_int(v, kernel, "padding", 0)
                    out.append((p, p))
            return tuple(out)
    raise HyperparameterError(f"{kernel}: padding must be an int, {nd} ints, {nd} (lo, hi) "
                              f"pairs, 'valid', 'same' or 'full', got {padding!r}")


def conv_output_size(size, kernel_size, stride=1, padding=(0, 0), dilation=1):
    """``⌊(H + P_lo + P_hi − d(k − 1) − 1)/S⌋ + 1`` for one axis (D-19); may be < 1."""
    lo, hi = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    return (size + lo + hi - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel_size, stride=1, padding=(0, 0), dilation=1,
                               output_padding=0):
    """``(H − 1)S − P_lo − P_hi + d(k − 1) + output_padding + 1`` (convolution.md §4)."""
    lo, hi = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    return (size - 1) * stride - lo - hi + dilation * (kernel_size - 1) + output_padding + 1


class _ConvArgs(NamedTuple):
    stride: tuple
    padding: tuple      # ((lo, hi), (lo, hi))
    dilation: tuple
    groups: int


def _conv_args(kernel, nd, ksize, stride, padding, dilation, groups, transpose=False):
    """Normalised 2-D geometry (1-D problems get a leading axis of size 1)."""
    s = _conv_tuple(stride, nd, kernel, "stride")
    d = _conv_tuple(dilation, nd, kernel, "dilation")
    if transpose and isinstance(padding, str) and padding != "valid":
        raise HyperparameterError(f"{kernel}: padding must be an int, a tuple or 'valid' for "
                                  f"a transposed convolution, got {padding!r}")
    p = conv_padding(padding, ksize[-nd:], s, d, nd, kernel)
    g = _conv_int(groups, kernel, "groups", 1)
    if nd == 1:
        s, p, d = (1,) + s, ((0, 0),) + p, (1,) + d
    return _ConvArgs(s, p, d, g)


def _conv_check(a, kernel, name, ndim, dtype=None):
    _check(a, kernel, name, dtype=dtype)
    if a.ndim != ndim:
        lay = {3: "(N, C, L)", 4: "(N, C, H, W)"}.get(ndim, f"{ndim} dimensions")
        if name in ("w", "weight"):
            lay = f"{ndim} dimensions"
        raise ShapeError(f"{kernel}: {name} must have shape {lay}, got {a.shape}")
    return a


def _conv_out(out, kernel, shape, dtype, *inputs):
    y = _output(out, kernel, shape, dtype, apart=(*inputs,))
    return y


def _conv_bias(b, kernel, n, dtype, name="b"):
    if b is None:
        return np.empty(0, dtype=dtype)
    _check(b, kernel, name, dtype=dtype, shape=(n,))
    return b


def _conv_channels(kernel, c_in, w_in, c_out, groups, what="x"):
    """Check C_in = groups · (weight input channels) and groups | C_out."""
    if min(c_in, w_in, c_out) < 1:
        raise ShapeError(f"{kernel}: channel counts must be >= 1 (input {c_in}, weight "
                         f"{w_in} per group, output {c_out})")
    if c_in != w_in * groups:
        raise ShapeError(f"{kernel}: {what} has {c_in} channels but the weight expects "
                         f"{w_in} × groups={groups} = {w_in * groups}")
    if c_out % groups:
        raise ShapeError(f"{kernel}: {c_out} output channels are not divisible by "
                         f"groups={groups}")


def _conv_out_hw(kernel, hw, ksize, a):
    out = tuple(conv_output_size(hw[i], ksize[i], a.stride[i], a.padding[i], a.dilation[i])
                for i in range(2))
    if min(out) < 1:
        raise ShapeError(f"{kernel}: the kernel (size {tuple(ksize)}, dilation "
                         f"{a.dilation}) is larger than the padded input (size {tuple(hw)}, "
                         f"padding {a.padding}): output size {out} < 1")
    return out
