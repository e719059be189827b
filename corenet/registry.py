"""Category -> name -> class, built from the registration hooks of every plugin.

``get("layer", "dense")`` returns a class; ``names("optimizer")`` lists the names.
An unknown name raises :class:`~corenet.errors.PluginError` listing the known names
and the close matches; a name registered twice raises naming both providers.
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass

from .errors import PluginError

# singular category -> registration hook
CATEGORIES = {
    "layer": "corenet_register_layers",
    "activation": "corenet_register_activations",
    "loss": "corenet_register_losses",
    "metric": "corenet_register_metrics",
    "optimizer": "corenet_register_optimizers",
    "scheduler": "corenet_register_schedulers",
    "initializer": "corenet_register_initializers",
    "normalizer": "corenet_register_normalizers",
    "regularizer": "corenet_register_regularizers",
    "pruner": "corenet_register_pruners",
    "grower": "corenet_register_growers",
    "callback": "corenet_register_callbacks",
    "augmentation": "corenet_register_augmentations",
    "dataset": "corenet_register_datasets",
}


@dataclass(frozen=True)
class Entry:
    """One registered component and where it came from."""
    category: str
    name: str
    cls: type
    plugin: str
    distribution: str
    version: str


_table: dict[str, dict[str, Entry]] | None = None


def invalidate() -> None:
    """Drop the cached table; the next lookup rebuilds it from the plugins."""
    global _table
    _table = None


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise PluginError(f"corenet.registry: unknown category {category!r}; "
                          f"categories are {sorted(CATEGORIES)}")


def _build() -> dict[str, dict[str, Entry]]:
    from .plugins import get_plugin_manager, origin

    pm = get_plugin_manager()
    table: dict[str, dict[str, Entry]] = {c: {} for c in CATEGORIES}
    for category, hook_name in CATEGORIES.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            dist, version = origin(impl.plugin_name)
            try:
                classes = list(impl.function() or [])
            except Exception as exc:  # one broken plugin must not stop the others
                warnings.warn(f"corenet: plugin {impl.plugin_name!r} (distribution {dist} "
                              f"{version}) raised in {hook_name} and was skipped: {exc!r}",
                              RuntimeWarning, stacklevel=3)
                continue
            for cls in classes:
                name = getattr(cls, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"corenet.registry: {cls!r} from plugin "
                                      f"{impl.plugin_name!r} ({dist}) has no string "
                                      f"class attribute 'name'")
                if name in table[category]:
                    other = table[category][name]
                    raise PluginError(
                        f"corenet.registry: {category} {name!r} is registered twice: by "
                        f"plugin {other.plugin!r} of distribution {other.distribution} "
                        f"({other.cls.__module__}.{other.cls.__qualname__}) and by plugin "
                        f"{impl.plugin_name!r} of distribution {dist} "
                        f"({cls.__module__}.{cls.__qualname__})")
                table[category][name] = Entry(category, name, cls, impl.plugin_name,
                                              dist, version)
    return table


def _entries(category: str) -> dict[str, Entry]:
    global _table
    _check_category(category)
    if _table is None:
        _table = _build()
    return _table[category]


def get(category: str, name: str) -> type:
    """The class registered as ``category:name``."""
    return entry(category, name).cls


def entry(category: str, name: str) -> Entry:
    """The full registry entry (class, plugin, distribution, version)."""
    entries = _entries(category)
    try:
        return entries[name]
    except (KeyError, TypeError):
        known = sorted(entries)
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise PluginError(f"corenet.registry: unknown {category} {name!r}{hint} "
                          f"Known {category}s: {', '.join(known) or '(none)'}") from None


def names(category: str) -> list[str]:
    """Sorted names registered in ``category``."""
    return sorted(_entries(category))


def entries() -> list[Entry]:
    """Every registered component, by category then name."""
    out = []
    for category in CATEGORIES:
        out.extend(_entries(category)[n] for n in sorted(_entries(category)))
    return out


def create(category: str, spec, **defaults):
    """Build a component from a name, a ``{"name": ..., **kwargs}`` dict, a
    ``(name, kwargs)`` pair, or return an existing instance unchanged."""
    if isinstance(spec, str):
        return get(category, spec)(**defaults)
    if isinstance(spec, dict):
        kwargs = dict(spec)
        try:
            name = kwargs.pop("name")
        except KeyError:
            raise PluginError(f"corenet.registry: a {category} given as a dict needs a "
                              f"'name' key, got keys {sorted(spec)}") from None
        return get(category, name)(**{**defaults, **kwargs})
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return get(category, spec[0])(**{**defaults, **dict(spec[1])})
    if isinstance(spec, type):
        return spec(**defaults)
    return spec
