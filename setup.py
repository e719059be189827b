"""Build the private Cython kernels of corenet.

Global compiler directives: bounds checking and negative indexing off, C division on.
Set ``CORENET_DEBUG_BUILD=1`` to build with bounds checking and wraparound on
(used by one CI step to run the kernel tests under checked indexing).
"""
import os
import platform
import sys
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CORENET_DEBUG_BUILD", "") not in ("", "0")
KERNELS = sorted(p.stem for p in Path("corenet/_kernels").glob("*.pyx"))

openmp = [] if sys.platform == "darwin" else ["-fopenmp"]
compile_args = ["-O3"] + openmp
if DEBUG:
    compile_args = ["-O0", "-g"] + openmp


def _has_libmvec():
    """glibc >= 2.35 on x86-64 Linux: libmvec has the vector expf/tanhf/erff/... entries."""
    if not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")):
        return False
    lib, version = platform.libc_ver()
    try:
        return lib == "glibc" and tuple(int(v) for v in version.split(".")[:2]) >= (2, 35)
    except ValueError:
        return False


# Per-extension extras. activations: the element-wise loops of activation_simd.h.
# -fno-math-errno lets GCC vectorise calls to expf/tanhf/... (errno is never read);
# -fno-trapping-math lets it evaluate both sides of a select (FP exception flags are never
# read); neither changes a result, NaN/inf included (tests/test_kernels_activation.py
# checks NaN, +-inf, +-1000, +-0 at the kinks and subnormals on every instruction set).
# No -ffast-math, no -march: the loops are compiled for SSE2/AVX2/AVX-512F and picked at
# run time. -ffp-contract=off keeps a*b+c as written (no fused multiply-add). With glibc
# >= 2.35 the vector loops call libmvec (CORENET_LIBMVEC, -lmvec); CORENET_NO_LIBMVEC=1
# builds without it (scalar library calls).
LIBMVEC = _has_libmvec() and os.environ.get("CORENET_NO_LIBMVEC", "") in ("", "0")
EXTRA = {
    "activations": dict(
        extra_compile_args=["-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
        define_macros=[("CORENET_LIBMVEC", "1")] if LIBMVEC else [],
        libraries=["mvec", "m"] if LIBMVEC else [],
        depends=["corenet/_kernels/activation_simd.h",
                 "corenet/_kernels/activation_simd_impl.h"],
    ),
    # conv_direct: the float32 loops of conv_simd.h, compiled for AVX-512F and AVX2+FMA
    # through GCC target attributes and picked at run time (GCC's default
    # -ffp-contract=fast fuses their multiply-adds).
    "conv_direct": dict(
        depends=["corenet/_kernels/conv_simd.h", "corenet/_kernels/conv_simd_impl.h"],
    ),
}


def _extension(name):
    extra = EXTRA.get(name, {})
    return Extension(
        f"corenet._kernels.{name}",
        [f"corenet/_kernels/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        extra_compile_args=compile_args + extra.get("extra_compile_args", []),
        extra_link_args=openmp,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + extra.get("define_macros", []),
        libraries=extra.get("libraries", []),
        depends=extra.get("depends", []),
    )


extensions = [_extension(name) for name in KERNELS]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
