"""Drive FANN 2.2's cascade training (``libdoublefann.so.2``) through ctypes.

Used by ``benchmarks/bench_cascade.py`` to measure FANN in the same run and on the same
data as corenet. Install the library with ``apt-get install -y libfann-dev``; without it
:func:`load_fann` returns ``None`` and the benchmark says so.

What is called (FANN 2.2 C API, double precision build):

* ``fann_create_shortcut(2, n_in, n_out)``: a network with inputs wired to the outputs
  and room for cascade units (every unit connected to all earlier ones);
* ``fann_set_*``: output activation, training algorithm, stop function (bit-fail),
  bit-fail limit, cascade settings (left at FANN's defaults unless given);
* ``fann_create_train_from_callback``: the training set, filled from NumPy arrays;
* ``fann_cascadetrain_on_data(ann, data, max_neurons, 0, desired_error)``;
* ``fann_run`` on every training point to check the classification.

FANN seeds C's ``rand()`` from the clock when a network is created; to make a run
repeatable the driver calls ``srand(seed + 1)`` afterwards (glibc treats seeds 0 and 1
alike) and re-draws the initial weights with ``fann_randomize_weights`` (the candidates
are drawn from the same ``rand()``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import time

import numpy as np

LIBRARY = "libdoublefann.so.2"

# enum values from fann_data.h
FANN_TRAIN = {"incremental": 0, "batch": 1, "rprop": 2, "quickprop": 3, "sarprop": 4}
FANN_ACT = {"linear": 0, "sigmoid": 3, "sigmoid_symmetric": 5, "gaussian": 7,
            "gaussian_symmetric": 8, "elliot": 10, "elliot_symmetric": 11,
            "sin_symmetric": 14, "cos_symmetric": 15, "sin": 16, "cos": 17}
FANN_STOPFUNC_MSE, FANN_STOPFUNC_BIT = 0, 1

_c_double_p = ctypes.POINTER(ctypes.c_double)
_FILL = ctypes.CFUNCTYPE(None, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, _c_double_p,
                         _c_double_p)


def load_fann(path: str = LIBRARY):
    """The ctypes handle of the double-precision FANN library, or ``None`` if missing."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    vp, ui, d, f = ctypes.c_void_p, ctypes.c_uint, ctypes.c_double, ctypes.c_float
    sigs = {
        "fann_create_shortcut": (vp, None),          # variadic: set per call
        "fann_destroy": (None, [vp]),
        "fann_run": (_c_double_p, [vp, _c_double_p]),
        "fann_randomize_weights": (None, [vp, d, d]),
        "fann_get_num_layers": (ui, [vp]),
        "fann_get_total_neurons": (ui, [vp]),
        "fann_get_total_connections": (ui, [vp]),
        "fann_set_training_algorithm": (None, [vp, ui]),
        "fann_set_activation_function_output": (None, [vp, ui]),
        "fann_set_activation_steepness_output": (None, [vp, d]),
        "fann_set_train_stop_function": (None, [vp, ui]),
        "fann_set_bit_fail_limit": (None, [vp, d]),
        "fann_get_bit_fail": (ui, [vp]),
        "fann_get_MSE": (f, [vp]),
        "fann_set_learning_rate": (None, [vp, f]),
        "fann_set_quickprop_mu": (None, [vp, f]),
        "fann_set_quickprop_decay": (None, [vp, f]),
        "fann_set_cascade_output_change_fraction": (None, [vp, f]),
        "fann_set_cascade_output_stagnation_epochs": (None, [vp, ui]),
        "fann_set_cascade_candidate_change_fraction": (None, [vp, f]),
        "fann_set_cascade_candidate_stagnation_epochs": (None, [vp, ui]),
        "fann_set_cascade_weight_multiplier": (None, [vp, d]),
        "fann_set_cascade_max_out_epochs": (None, [vp, ui]),
        "fann_set_cascade_max_cand_epochs": (None, [vp, ui]),
        "fann_set_cascade_num_candidate_groups": (None, [vp, ui]),
        "fann_get_cascade_num_candidates": (ui, [vp]),
        "fann_create_train_from_callback": (vp, [ui, ui, ui, _FILL]),
        "fann_destroy_train": (None, [vp]),
        "fann_cascadetrain_on_data": (None, [vp, vp, ui, ui, f]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        if args is not None:
            fn.argtypes = args
    return lib


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c"))


class FannCascade:
    """FANN cascade training of a shortcut network on ``(X, y)``.

    ``y`` must be in [−1, 1] (``sigmoid_symmetric`` outputs, FANN's tanh-shaped unit).
    ``settings`` maps FANN setter suffixes to values, e.g. ``{"cascade_max_out_epochs":
    150}`` calls ``fann_set_cascade_max_out_epochs``; anything not given keeps FANN's
    default (Cascade2 with RPROP, 2 groups of 10 activation types × 4 steepnesses).
    """

    def __init__(self, lib=None, *, algorithm: str = "rprop",
                 output_activation: str = "sigmoid_symmetric", bit_fail_limit: float = 0.35,
                 max_neurons: int = 100, settings: dict | None = None):
        self.lib = lib if lib is not None else load_fann()
        if self.lib is None:
            raise OSError(f"{LIBRARY} not found; install it with apt-get install libfann-dev")
        self.algorithm = algorithm
        self.output_activation = output_activation
        self.bit_fail_limit = float(bit_fail_limit)
        self.max_neurons = int(max_neurons)
        self.settings = dict(settings or {})

    def fit(self, X, y, seed: int = 0, X_eval=None) -> dict:
        """Cascade-train a fresh network; returns hidden units, fit time, outputs, the
        number of misclassified points (sign of the output vs sign of the target), the
        candidate pool size and, with ``X_eval``, the outputs on those points."""
        lib = self.lib
        X = np.ascontiguousarray(X, dtype=np.float64)
        Y = np.ascontiguousarray(np.asarray(y, dtype=np.float64).reshape(len(X), -1))
        n, d_in = X.shape
        d_out = Y.shape[1]

        def fill(num, num_in, num_out, inp, out):
            for j in range(num_in):
                inp[j] = X[num, j]
            for j in range(num_out):
                out[j] = Y[num, j]

        fill_cb = _FILL(fill)
        lib.fann_create_shortcut.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
        ann = lib.fann_create_shortcut(2, d_in, d_out)
        data = lib.fann_create_train_from_callback(n, d_in, d_out, fill_cb)
        try:
            _libc().srand(int(seed) + 1)      # glibc treats srand(0) as srand(1)
            lib.fann_randomize_weights(ann, -0.1, 0.1)
            lib.fann_set_training_algorithm(ann, FANN_TRAIN[self.algorithm])
            lib.fann_set_activation_function_output(ann, FANN_ACT[self.output_activation])
            lib.fann_set_train_stop_function(ann, FANN_STOPFUNC_BIT)
            lib.fann_set_bit_fail_limit(ann, self.bit_fail_limit)
            for key, value in self.settings.items():
                getattr(lib, "fann_set_" + key)(ann, value)
            t0 = time.perf_counter()
            lib.fann_cascadetrain_on_data(ann, data, self.max_neurons, 0, 0.0)
            seconds = time.perf_counter() - t0
            out = self._run(ann, X, d_out)
            out_eval = None if X_eval is None else \
                self._run(ann, np.ascontiguousarray(X_eval, dtype=np.float64), d_out)
            hidden = int(lib.fann_get_num_layers(ann)) - 2
            pool = int(lib.fann_get_cascade_num_candidates(ann))
        finally:
            lib.fann_destroy_train(data)
            lib.fann_destroy(ann)
        wrong = int(np.count_nonzero(np.sign(out) != np.sign(Y)))
        return {"hidden_units": hidden, "seconds": seconds, "outputs": out,
                "misclassified": wrong, "solved": wrong == 0, "n_candidates": pool,
                "eval_outputs": out_eval}

    def _run(self, ann, X, d_out):
        """``fann_run`` on every row of X."""
        out = np.empty((X.shape[0], d_out))
        buf = (ctypes.c_double * X.shape[1])()
        for i in range(X.shape[0]):
            buf[:] = X[i].tolist()
            res = self.lib.fann_run(ann, buf)
            out[i] = [res[j] for j in range(d_out)]
        return out
