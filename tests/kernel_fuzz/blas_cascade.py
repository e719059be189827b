"""Case builders and oracles of matmul and the cascade kernels (family ``blas_cascade``)."""
from __future__ import annotations

import numpy as np

from corenet import kernels as K

from .common import HUGE, Invalid, arr, dims, need, opt_out, real, res, rnd, spec


# blas and cascade -----------------------------------------------------------------------
def o_matmul(kw):
    a = arr(kw, "a", contiguous=False)
    b = arr(kw, "b", contiguous=False, dtype=a.dtype)
    need(a.ndim >= 1 and b.ndim >= 1, "0-d operand")
    try:   # the shape rules of numpy.matmul (the documented semantics)
        shape = np.matmul(np.empty(a.shape, np.int8), np.empty(b.shape, np.int8)).shape
    except ValueError:
        raise Invalid("numpy.matmul rejects the shapes") from None
    if kw.get("out") is not None:     # any strides, may overlap a or b (NumPy copies)
        arr(kw, "out", dtype=a.dtype, shape=shape, writable=True, contiguous=False)
    return [res(shape, a.dtype)]


@spec("blas_cascade", o_matmul, outs={"out": 0})
def b_matmul(rng, dt):
    m, k, n = (int(v) for v in rng.integers(1, 10, 3))
    batch = dims(rng, 0, 1, 3)
    kw = {"a": rnd(rng, batch + (m, k), dt), "b": rnd(rng, (k, n), dt)}
    if rng.random() < 0.3:
        kw["b"] = np.ascontiguousarray(kw["b"].T).T     # a transposed view, as Dense uses
    return kw


def codes_special(rng, kw):
    """Unit codes out of range, negative, huge, as floats; beta NaN."""
    codes = np.array(kw["codes"], copy=True)
    if codes.size == 0:
        return "codes:empty", kw
    what = rng.choice(["ncodes", "negative", "huge", "float", "beta_nan"])
    if what == "beta_nan":
        beta = np.array(kw["beta"], dtype=np.float64)
        beta[rng.integers(beta.size)] = np.nan
        return "beta:nan", {**kw, "beta": beta}
    if what == "float":
        return "codes:float", {**kw, "codes": codes + 0.5}
    codes[rng.integers(codes.size)] = {"ncodes": len(K.CASCADE_UNIT_CODES), "negative": -1,
                                       "huge": HUGE}[what]
    return f"codes:{what}", {**kw, "codes": codes}


def o_cascade_pool_values(kw):
    S = arr(kw, "S", ndim=2)
    p = S.shape[1]
    codes, beta = np.asarray(kw.get("codes")), np.asarray(kw.get("beta"))
    need(codes.shape == (p,) and beta.shape == (p,), "codes / beta shape")
    need(codes.dtype.kind in "iu" or p == 0, f"codes of dtype {codes.dtype}")
    need(((codes >= 0) & (codes < len(K.CASCADE_UNIT_CODES))).all(), "unit codes")
    need(beta.dtype.kind in "biuf" and np.isfinite(beta).all(), "beta not finite reals")
    opt_out(kw, "V", S.shape, S.dtype, avoid=("S",))
    opt_out(kw, "dV", S.shape, S.dtype, avoid=("S", "V"))
    return [res(S.shape, S.dtype), res(S.shape, S.dtype)]


@spec("blas_cascade", o_cascade_pool_values, outs={"V": 0, "dV": 1},
      special=codes_special)
def b_cascade_pool_values(rng, dt):
    n, p = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    codes = rng.integers(0, len(K.CASCADE_UNIT_CODES), p)
    beta = rng.uniform(0.5, 2.0, p)
    return {"S": rnd(rng, (n, p), dt), "codes": codes.tolist() if rng.random() < 0.3 else codes,
            "beta": beta.astype(dt)}


def o_cascade_quickprop(kw):
    w = arr(kw, "w", writable=True)
    for name in ("g", "d", "p"):
        arr(kw, name, dtype=w.dtype, shape=w.shape, writable=name != "g")
    for name in ("lr", "mu", "decay"):
        if name in kw:
            real(kw[name], name)
    return [None]


@spec("blas_cascade", o_cascade_quickprop, inplace=("w", "d", "p"),
      hypers={"lr": "float", "mu": "float", "decay": "float"})
def b_cascade_quickprop(rng, dt):
    shape = dims(rng, 1, 3, 6)
    kw = {k: rnd(rng, shape, dt) for k in "wgdp"}
    kw.update(lr=float(rng.uniform(0.1, 1.0)), mu=1.75)
    if rng.random() < 0.5:
        kw["decay"] = 1e-4
    return kw
