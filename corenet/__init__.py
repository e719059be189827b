"""corenet: neural networks with compiled Cython kernels and pluggy plugins.

The engine (this package's top-level modules) is small: parameters, layers, models,
the trainer, the registry of plugin components and the hook specifications. Every
component (layer, activation, loss, metric, optimizer, initializer, normalizer,
regularizer, pruner, grower, callback, dataset) is a plugin found through the
entry-point group ``corenet``.
"""
import os as _os

# OpenMP workers of the kernels spin for a short while (2,000 rounds, about 0.1 ms)
# after a parallel region, then sleep (libgomp reads this when corenet's first kernel
# module loads it). Its default — spinning up to 300,000 rounds, or without end under
# OMP_WAIT_POLICY=ACTIVE — made 2-thread training steps 3-10x slower whenever another
# process used a core, and sleeping at once (PASSIVE) left the second core idle: the
# woken worker arrived after the region's work was gone (benchmarks/RESULTS_lenet.md).
# Values the user set are kept.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "ACTIVE"    # with GOMP_SPINCOUNT: spin that long
    _os.environ["GOMP_SPINCOUNT"] = "2000"

from importlib.metadata import PackageNotFoundError, version as _version  # noqa: E402

from . import registry
from .activation import Activation
from .callback import Callback
from .config import get_default_dtype, get_num_threads, set_default_dtype, set_num_threads
from .errors import (CorenetError, DTypeError, HyperparameterError, NotFiniteError,
                     PluginError, ShapeError)
from .graph import Graph
from .initializer import Initializer
from .io import CorruptFileError, load_checkpoint, load_model, save_checkpoint, save_model
from .layer import Layer
from .loss import Loss, Metric
from .model import Model, Sequential
from .normalizer import Normalizer
from .optimizer import Optimizer, Scheduler
from .parameter import Parameter
from .plugins import hookimpl
from .regularizer import Regularizer
from .trainer import History, Trainer

try:
    __version__ = _version("corenet")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"


load = load_model


def create(category: str, spec, **kwargs):
    """Instantiate a registered component: ``corenet.create("layer", "dense", out_features=3)``."""
    if isinstance(spec, str):
        return registry.get(category, spec)(**kwargs)
    return registry.create(category, spec, **kwargs)


__all__ = [
    "Activation", "Callback", "CorenetError", "CorruptFileError", "load", "load_model",
    "load_checkpoint", "save_checkpoint", "save_model", "DTypeError", "Graph", "History",
    "HyperparameterError", "Initializer", "Layer", "Loss", "Metric", "Model",
    "NotFiniteError", "Normalizer", "Optimizer", "Parameter", "PluginError", "Regularizer",
    "Scheduler", "Sequential", "ShapeError", "Trainer", "create", "get_default_dtype",
    "get_num_threads", "hookimpl", "registry", "set_default_dtype", "set_num_threads",
]
