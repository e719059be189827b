# cython: language_level=3
"""Zero padding of one sample into planes, shared by the shift method of conv.pyx and the
direct loops of conv_direct.pyx (included into both modules: an inline .pxd function)."""
from cython cimport floating
from libc.string cimport memset


cdef inline void pad_planes(const floating* x, floating* xp, Py_ssize_t C, Py_ssize_t H,
                            Py_ssize_t W, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t P,
                            Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """xp[c·P + r·Wp + s] = x[c, r − ph, s − pw] (0 outside x) for r < Hp, s < Wp."""
    cdef Py_ssize_t c, r, xr, s
    cdef Py_ssize_t s0 = pw if pw < Wp else Wp            # first column holding x
    cdef Py_ssize_t s1 = pw + W if pw + W < Wp else Wp    # end of x's columns
    cdef floating* d
    cdef const floating* src
    for c in range(C):
        for r in range(Hp):
            d = xp + c * P + r * Wp
            xr = r - ph
            if xr < 0 or xr >= H:
                memset(d, 0, Wp * sizeof(floating))
                continue
            src = x + (c * H + xr) * W - pw
            for s in range(s0):
                d[s] = 0
            for s in range(s0, s1):
                d[s] = src[s]
            for s in range(s1, Wp):
                d[s] = 0
