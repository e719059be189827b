"""corenet-example: a template corenet plugin distribution.

corenet finds this module through the entry point declared in ``pyproject.toml``::

    [project.entry-points.corenet]
    corenet_example = "corenet_example"

and calls the ``@corenet.hookimpl`` functions below once, the first time its registry is
used. Each registration hook returns a list of classes; each class carries its registry
name in the class attribute ``name``. After ``pip install corenet-example``::

    corenet.registry.get("layer", "scale_shift")      # -> ScaleShift
    model.compile(loss="log_cosh", optimizer="sign_sgd")

This package imports only ``corenet`` (never pluggy) and NumPy.
"""
import corenet

from .callback import EpochCounter
from .layer import ScaleShift
from .loss import LogCosh
from .optimizer import SignSGD

__version__ = "0.1.0"
__all__ = ["EpochCounter", "LogCosh", "ScaleShift", "SignSGD"]


@corenet.hookimpl
def corenet_register_layers():
    return [ScaleShift]


@corenet.hookimpl
def corenet_register_losses():
    return [LogCosh]


@corenet.hookimpl
def corenet_register_optimizers():
    return [SignSGD]


@corenet.hookimpl
def corenet_register_callbacks():
    return [EpochCounter]
