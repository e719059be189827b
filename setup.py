"""Build the private Cython kernels of corenet.

Global compiler directives: bounds checking and negative indexing off, C division on.
Set ``CORENET_DEBUG_BUILD=1`` to build with bounds checking and wraparound on
(used by one CI step to run the kernel tests under checked indexing).
"""
import os
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

extensions = [
    Extension(
        f"corenet._kernels.{name}",
        [f"corenet/_kernels/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        extra_compile_args=compile_args,
        extra_link_args=openmp,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in KERNELS
]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
