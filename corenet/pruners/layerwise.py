from .base import Pruner
class LayerwiseOBSPruner(Pruner):
    name="layerwise_obs"
def layer_hessian():
    pass
