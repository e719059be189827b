# Row kernels of softmax_ce.pyx, cimported by the compiled dense training step.
from cython cimport floating
from libc.stdint cimport int64_t

cdef floating _ce_row(const floating* z, const floating* y, int64_t label, floating* g,
                      Py_ssize_t K) noexcept nogil
