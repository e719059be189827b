"""Shared parts of the kernel fuzz test: settings, the oracle helpers (``Invalid``,
``need``, ``arr``, ...), the registry of fuzzed functions (``SPECS``, ``register``,
``spec``) and the random helpers of the case builders."""
from __future__ import annotations

import math

import numpy as np

SEED = 20_240_611          # base seed of every case: rng = default_rng([SEED, crc32(fn), i])
CASES = 80                 # cases (one valid call + one mutated call) per function
CALL_TIMEOUT = 10.0        # seconds one call may take in the child before it is a hang
RUN_TIMEOUT = 300.0        # seconds the child may take for all families
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
MAX_ELEMENTS = 1 << 31     # a larger output cannot be allocated here: the call must raise
HUGE = 2 ** 40

FAMILIES = ("activations", "softmax_ce", "pooling", "conv", "conv_transpose", "blas_cascade")


# ----------------------------------------------------------------------------- oracle helpers
class Invalid(Exception):
    """The documented contract rejects the call (it must raise)."""


def need(ok, why):
    if not ok:
        raise Invalid(why)


def arr(kw, name, *, dtype=None, shape=None, ndim=None, kinds=FLOATS, writable=False,
        contiguous=True):
    """kw[name] as a valid array of the contract, else Invalid."""
    a = kw.get(name)
    need(isinstance(a, np.ndarray), f"{name} is not an ndarray")
    need(a.dtype in kinds, f"{name} has dtype {a.dtype}")
    need(dtype is None or a.dtype == dtype, f"{name} has dtype {a.dtype}, not {dtype}")
    need(ndim is None or a.ndim in np.atleast_1d(ndim), f"{name} has {a.ndim} dimensions")
    need(shape is None or a.shape == tuple(shape), f"{name} has shape {a.shape} != {shape}")
    need(not contiguous or a.flags.c_contiguous, f"{name} is not C-contiguous")
    need(not writable or a.flags.writeable, f"{name} is read-only")
    return a


def opt_out(kw, name, shape, dtype, *, avoid=(), kinds=FLOATS):
    """An optional output: None, or a writable C-contiguous array of the shape and dtype
    that does not overlap the arrays named in ``avoid``."""
    if kw.get(name) is None:
        return
    out = arr(kw, name, dtype=dtype, shape=shape, writable=True, kinds=kinds)
    for other in avoid:
        a = kw.get(other)
        need(not (isinstance(a, np.ndarray) and np.may_share_memory(out, a)),
             f"{name} overlaps {other}")


def same_or_apart(kw, out_name, *names):
    """Element-wise kernels: out may be an input itself, but must not partially overlap."""
    out = kw.get(out_name)
    for name in names:
        a = kw.get(name)
        if isinstance(out, np.ndarray) and isinstance(a, np.ndarray) \
                and np.may_share_memory(out, a):
            need(out.__array_interface__["data"][0] == a.__array_interface__["data"][0]
                 and out.strides == a.strides, f"{out_name} partially overlaps {name}")


def res(shape, dtype):
    shape = tuple(int(s) for s in shape)
    need(math.prod(shape) <= MAX_ELEMENTS, f"output {shape} is too large to allocate")
    return shape, np.dtype(dtype)


def integer(v, minimum, name):
    need(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)),
         f"{name} {v!r} is not an int")
    need(v >= minimum, f"{name} {v!r} < {minimum}")
    need(v < 2 ** 31, f"{name} {v!r} does not fit a C int")
    return int(v)


def ints(v, n, minimum, name):
    """An int or n ints (tuple or list) as a tuple of n ints."""
    if isinstance(v, (tuple, list)):
        need(len(v) == n, f"{name} {v!r} does not have {n} entries")
        return tuple(integer(u, minimum, name) for u in v)
    return (integer(v, minimum, name),) * n


def shape_arg(v, n, name):
    """A shape argument (any sequence of n ints >= 0) as a tuple."""
    need(isinstance(v, (tuple, list, np.ndarray)), f"{name} {v!r} is not a sequence")
    need(len(v) == n, f"{name} {v!r} does not have {n} entries")
    need(all(isinstance(u, (int, np.integer)) and not isinstance(u, (bool, np.bool_))
             and u >= 0 for u in v), f"{name} {v!r} has entries that are not ints >= 0")
    return tuple(int(u) for u in v)


def real(v, name):
    need(isinstance(v, (int, float, np.integer, np.floating)), f"{name} {v!r} not a number")
    need(math.isfinite(v), f"{name} {v!r} is not finite")
    return float(v)


# ----------------------------------------------------------------------------- case builders
SPECS: dict = {}


def register(name, family, build, oracle, *, outs=(), hypers=None, special=None,
             inplace=()):
    """Register a public function: ``build(rng, dtype) -> kwargs`` makes a valid call,
    ``oracle(kwargs) -> [(shape, dtype) | None, ...]`` gives its documented results (or
    raises Invalid); ``outs`` maps output arguments to their index in those results,
    ``hypers`` hyperparameter names to a kind of bad values, ``special(rng, kw)`` is a
    function-specific mutation; ``inplace`` arguments are updated by the call (every
    other input must be left unchanged)."""
    SPECS[name] = dict(family=family, build=build, oracle=oracle, outs=dict(outs),
                       hypers=dict(hypers or {}), special=special, inplace=set(inplace))


def spec(family, oracle, **options):
    """Decorator of a builder ``b_<name>``: register(name, family, builder, oracle, ...)."""
    def decorate(build):
        register(build.__name__.removeprefix("b_"), family, build, oracle, **options)
        return build
    return decorate


def rnd(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def dims(rng, lo, hi, size=9):
    return tuple(int(v) for v in rng.integers(1, size + 1, int(rng.integers(lo, hi + 1))))


def form(rng, values, pairs=False):
    """An int (all equal, sometimes), a tuple or a list of ``values``."""
    values = [tuple(int(u) for u in v) if pairs else int(v) for v in values]
    r = rng.random()
    if not pairs and len(set(values)) == 1 and r < 0.5:
        return values[0]
    return list(values) if r > 0.85 else tuple(values)
