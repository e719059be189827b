"""Seeded fuzz test of the input validation of the kernel facade (:mod:`corenet.kernels`).

Every public function that takes arrays gets random *valid* calls (batch 1-3, channels
1-4, spatial 1-9, kernel 1-4, stride 1-3, padding 0-2, dilation 1-2, float32/float64),
each followed by one random *mutation*: a wrong rank, one wrong dimension, a zero-size
dimension, another dtype, non-contiguous memory, a list / scalar / None instead of an
array, a read-only, wrong or overlapping ``out=``, a hyperparameter out of range, labels
or switches out of range, NaN / inf values.

An oracle written from the docstrings decides whether a call is valid and, if so, the
shape and dtype of its results. A call must then either succeed with those results
(valid input) or raise ``ValueError`` / ``TypeError`` / ``NotImplementedError`` (the
errors of :mod:`corenet.errors` derive from them; ``MemoryError`` for outputs too large
to allocate) with a message naming the kernel (invalid input). Anything else fails: an
unnamed or foreign exception (IndexError, OverflowError, a Cython buffer error), a
rejected valid call, an accepted invalid one (a silent broadcast or cast), wrong result
shapes, a crash or a hang.

The loop runs in a child process, so a segfault or a hang fails the test of its family
with the seed and the last case; ``faulthandler`` ends a call that takes over
``CALL_TIMEOUT`` seconds. A case is reproduced in-process with a traceback by::

    python tests/kernel_fuzz/driver.py --case FUNCTION INDEX

Only the pytest tests live here; the parts live in the helper package ``tests/kernel_fuzz``
(imported from ``tests/``, which pytest puts on ``sys.path``): ``common.py`` (settings,
oracle helpers, the registry ``SPECS``), one module per family with its case builders and
oracles (``activations.py``, ``softmax.py``, ``pooling.py``, ``conv.py``,
``blas_cascade.py``), ``mutations.py`` (the invalid calls) and ``driver.py`` (the child
process loop and its command line).
"""
from __future__ import annotations

import pytest

from corenet import kernels as K
from kernel_fuzz.common import CASES, FAMILIES, SEED, SPECS
from kernel_fuzz.driver import run_child


@pytest.fixture(scope="module")
def fuzz_reports():
    return run_child(FAMILIES)


def test_every_array_function_is_fuzzed():
    skip = {"conv_padding", "conv_output_size", "conv_transpose_output_size", "Workspace",
            "pool2d_geometry", "activation_params", "PoolGeometry"}
    public = {n for n in K.__all__ if callable(getattr(K, n)) and n not in skip}
    assert public == set(SPECS)


@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_kernel_validation(fuzz_reports, family):
    report = fuzz_reports[family]
    assert report["crash"] is None, report["crash"]
    lines = [f"{f['fn']} case {f['i']} ({f['call']}): {f['problem']}\n    args: {f['args']}\n"
             f"    reproduce: python tests/kernel_fuzz/driver.py --case {f['fn']} {f['i']}"
             for f in report["failures"]]
    assert not lines, f"seed {SEED}: {len(lines)} failure(s) in {family}:\n" + \
        "\n".join(lines[:20])
    n_fns = sum(s["family"] == family for s in SPECS.values())
    assert report["calls"] == 2 * CASES * n_fns
