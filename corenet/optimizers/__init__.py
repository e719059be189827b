"""corenet's optimizers (spec optimizers.md), registered under the canonical names of
README §9 by :func:`corenet_register_optimizers`.

Gradient rules (``opt.step(loss=None)`` after ``backward``): ``gd``, ``sgd`` (momentum,
Nesterov), ``delta_delta``, ``delta_bar_delta``, ``adagrad``, ``rmsprop``, ``adadelta``,
``adam``, ``adamw``, ``quickprop``, ``rprop`` (rprop+, rprop-, irprop+, irprop-).

Data solvers (``opt.minimize(model, X, y)``, ``opt.data_step(...)`` or
:func:`minimize`): ``newton_irls``, ``least_squares``, ``levenberg_marquardt``; the
array-level :func:`solve_irls`, :func:`solve_least_squares` and the network
:func:`jacobian` are public too.
"""
from __future__ import annotations

from ..plugins import hookimpl
from ._base import StatefulOptimizer
from ._solver import DataSolver, SolverResult, damped_solve, minimize
from .adaptive import Adadelta, AdaGrad, Adam, AdamW, RMSprop
from .delta import DeltaBarDelta, DeltaDelta
from .irls import NewtonIRLS, solve_irls
from .least_squares import LeastSquares, solve_least_squares
from .levenberg_marquardt import LevenbergMarquardt, jacobian
from .quickprop import Quickprop
from .rprop import Rprop
from .sgd import GD, SGD

OPTIMIZERS = [GD, SGD, DeltaDelta, DeltaBarDelta, AdaGrad, RMSprop, Adadelta, Adam, AdamW,
              Quickprop, Rprop, NewtonIRLS, LeastSquares, LevenbergMarquardt]


@hookimpl
def corenet_register_optimizers():
    return list(OPTIMIZERS)


__all__ = ["AdaGrad", "Adadelta", "Adam", "AdamW", "DataSolver", "DeltaBarDelta",
           "DeltaDelta", "GD", "LeastSquares", "LevenbergMarquardt", "NewtonIRLS", "OPTIMIZERS",
           "Quickprop", "RMSprop", "Rprop", "SGD", "SolverResult", "StatefulOptimizer",
           "damped_solve", "jacobian", "minimize", "solve_irls", "solve_least_squares"]
