"""Layer family module (filled in by its owner)."""
from ..plugins import hookimpl


@hookimpl
def corenet_register_layers():
    return []
