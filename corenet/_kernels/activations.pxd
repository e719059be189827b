# Shared element loops of the activation kernels (see activations.pyx), cimported by the
# compiled dense training step.
from cython cimport floating

cdef void _fwd(int code, const floating* x, floating* y, Py_ssize_t lo, Py_ssize_t hi,
               double p1, double p2) noexcept nogil
cdef void _bwd(int code, const floating* x, const floating* dy, floating* dx, Py_ssize_t lo,
               Py_ssize_t hi, double p1, double p2, bint from_y) noexcept nogil
