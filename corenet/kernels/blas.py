"""BLAS threads: :class:`_BlasThreads` sets the thread count of an OpenBLAS per call
(``_BLAS``: the one behind ``scipy.linalg.cython_blas``, which the conv passes call;
``_NUMPY_BLAS``: the one inside NumPy), and :func:`matmul` runs NumPy's matmul with one
BLAS thread for mid-sized products."""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from ..errors import DTypeError, ShapeError
from ._common import _FLOATS


class _BlasThreads:
    """Thread count of the OpenBLAS behind ``scipy.linalg.cython_blas``, set per call.

    The conv passes call BLAS from inside their own ``prange`` threads; a multi-threaded
    OpenBLAS would then start its own threads on top (oversubscription: measured 10-100×
    slower on 2 cores), and a threaded OpenBLAS may also split a GEMM's inner dimension,
    which would make weight gradients depend on the thread count. ``limit(1)`` sets
    OpenBLAS to one thread for the duration of a pass and restores the previous count;
    the passes get their parallelism from the batch alone. The library is found among the
    loaded shared objects (``/proc/self/maps``) by its exported
    ``scipy_openblas_set_num_threads`` (scipy wheels) or ``openblas_set_num_threads``;
    without one (other BLAS, other OS) nothing is changed.
    """

    def __init__(self, suffix=""):
        self._suffix = suffix    # "64_": the ILP64 OpenBLAS inside NumPy's wheel
        self._lib = False        # False: not searched yet; None: not found
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None

    def _find(self):
        import ctypes
        self._lib = None
        try:
            with open("/proc/self/maps") as fh:
                paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower()}
        except OSError:
            return
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas", "openblas"):
                fs = getattr(lib, prefix + "_set_num_threads" + self._suffix, None)
                fg = getattr(lib, prefix + "_get_num_threads" + self._suffix, None)
                if fs is not None and fg is not None:
                    fs.argtypes, fs.restype, fg.restype = [ctypes.c_int], None, ctypes.c_int
                    self._lib = (fg, fs)
                    return

    @contextlib.contextmanager
    def limit(self, n):
        if self._lib is False:
            self._find()
        if self._lib is None:
            yield
            return
        get, set_ = self._lib
        with self._lock:
            if self._depth == 0:
                self._saved = get()
            self._depth += 1
            if get() != n:
                set_(n)
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and get() != self._saved:
                    set_(self._saved)


_BLAS = _BlasThreads()
_NUMPY_BLAS = _BlasThreads("64_")
_SMALL_GEMM = (1 << 18, 1 << 23)    # m·n·k window of matmul's single-threaded BLAS


def matmul(a, b, out=None):
    """``a @ b`` (NumPy's matmul) for the products of corenet's layers. Products of
    m·n·k in ``_SMALL_GEMM`` run with one BLAS thread: OpenBLAS would split them over its
    threads (its threshold is m·n·k > 2¹⁸), whose workers then spin for a while after the
    call, competing with the kernels' OpenMP threads for the cores (the 2-thread LeNet-5
    step ran 3-10× slower on a loaded 2-core machine). Smaller products are single-threaded
    inside OpenBLAS anyway; larger ones keep the BLAS threads.

    a and b: float32 or float64 arrays of one dtype (any strides), at least 1-D, with
    NumPy's matmul shapes; ``out`` (optional): a writable array of the result's shape and
    dtype."""
    _matmul_check(a, b, out)
    mnk = a.shape[-2] * a.shape[-1] * b.shape[-1] if a.ndim >= 2 and b.ndim >= 2 else 0
    if _SMALL_GEMM[0] < mnk < _SMALL_GEMM[1]:
        with _NUMPY_BLAS.limit(1):
            return np.matmul(a, b, out=out)
    return np.matmul(a, b, out=out)


def _matmul_check(a, b, out):
    kernel = "kernels.matmul"
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, np.ndarray):
            raise DTypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(m).__name__}")
        if m.dtype not in _FLOATS:
            raise DTypeError(f"{kernel}: {name} must be float32 or float64, got dtype {m.dtype}")
        if m.ndim == 0:
            raise ShapeError(f"{kernel}: {name} must have at least 1 dimension, got shape ()")
    if b.dtype != a.dtype:
        raise DTypeError(f"{kernel}: b must have dtype {a.dtype} (that of a), got {b.dtype}")
    k = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if a.shape[-1] != k:
        raise ShapeError(f"{kernel}: a {a.shape} has {a.shape[-1]} columns but b {b.shape} "
                         f"has {k} rows")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"{kernel}: the batch dimensions of a {a.shape} and b {b.shape} do "
                         f"not broadcast") from None
    if out is None:
        return
    shape = batch + a.shape[-2:-1] + (b.shape[-1:] if b.ndim >= 2 else ())
    if not isinstance(out, np.ndarray) or out.dtype != a.dtype:
        raise DTypeError(f"{kernel}: out must be a numpy.ndarray of dtype {a.dtype}, got "
                         f"{getattr(out, 'dtype', type(out).__name__)}")
    if out.shape != shape:
        raise ShapeError(f"{kernel}: out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{kernel}: out must be writable")
