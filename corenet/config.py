"""Global settings: the default floating dtype (spec README §3) and the kernel thread count."""
from __future__ import annotations

import os

import numpy as np

_SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))
_state = {
    "dtype": np.dtype(np.float64),
    # One thread unless asked: on a shared or small machine OpenMP workers spin-waiting
    # beside OpenBLAS's own threads made kernels 7-20x slower (benchmarks/RESULTS.md).
    "num_threads": max(1, int(os.environ.get("CORENET_NUM_THREADS", "1"))),
}


def check_dtype(dtype, component: str = "corenet") -> np.dtype:
    """Return ``dtype`` as a NumPy dtype if it is float32 or float64, else raise TypeError."""
    dt = np.dtype(dtype)
    if dt not in _SUPPORTED:
        raise TypeError(f"{component}: dtype must be float32 or float64, got {dt}")
    return dt


def get_default_dtype() -> np.dtype:
    """The dtype new models use when none is given (float64 unless changed)."""
    return _state["dtype"]


def set_default_dtype(dtype) -> None:
    """Set the dtype new models use (float32 or float64)."""
    _state["dtype"] = check_dtype(dtype, "set_default_dtype")


def get_num_threads() -> int:
    """Threads the Cython kernels may use (one setting for every kernel; default 1, or
    ``CORENET_NUM_THREADS``)."""
    return _state["num_threads"]


def set_num_threads(n: int) -> None:
    """Set the kernel thread count (default: ``CORENET_NUM_THREADS``, else 1). Kernels
    parallelise over the batch (or channel planes) with OpenMP; BLAS threads are set with
    the BLAS library's own controls (e.g. ``OPENBLAS_NUM_THREADS`` or threadpoolctl)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    _state["num_threads"] = int(n)
