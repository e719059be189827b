"""Helpers of the seeded kernel fuzz test (``tests/test_fuzz_kernels.py``).

``common`` holds the settings, oracle helpers and the registry ``SPECS``; one module per
family (``activations``, ``softmax``, ``pooling``, ``conv``, ``blas_cascade``) registers
its case builders and oracles on import; ``mutations`` makes the invalid calls and
``driver`` runs the fuzz loop in a child process (``python tests/kernel_fuzz/driver.py``).
"""
from . import activations, blas_cascade, conv, pooling, softmax  # noqa: F401 - they register
from .common import FAMILIES, SPECS

__all__ = ["FAMILIES", "SPECS"]
