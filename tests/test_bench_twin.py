"""The benchmark's NumPy twin and corenet's layer-by-layer step compute exactly corenet's
default training step (benchmarks/numpy_twin.py, benchmarks/mlp_impls.py; float64, three
SGD-momentum steps from equal weights; PyTorch is not used here)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))

from mlp_impls import check_same_math  # noqa: E402


def test_twin_and_layer_path_match_the_default_step():
    report = check_same_math(use_torch=False)
    assert len(report) == 6
    for key, diff in report.items():
        assert diff["max_dparam"] <= 1e-12, (key, diff)
        assert diff["max_dloss"] <= 1e-12, (key, diff)
