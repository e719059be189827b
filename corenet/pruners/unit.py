from .base import Pruner
class UnitPruner(Pruner):
    name="unit"
