"""The plugin manager: entry-point discovery, environment switches, failure isolation.

Plugins are found in the entry-point group ``corenet``. corenet's own families are
declared there by its ``pyproject.toml`` and load through this same path.

Environment switches
--------------------
``CORENET_DISABLE_PLUGIN_AUTOLOAD=1``
    Load only the entry points of the ``corenet`` distribution itself (third-party
    plugins can still be registered explicitly with :func:`register`).
``CORENET_BLOCK_PLUGINS=name1,name2``
    Skip the entry points with these names (or all entry points of these distributions).
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import warnings

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("corenet")

ENTRY_POINT_GROUP = "corenet"
CORE_DISTRIBUTION = "corenet"

_manager: pluggy.PluginManager | None = None
# plugin name -> (distribution name, version)
_origins: dict[str, tuple[str, str]] = {}


def _blocked() -> set[str]:
    raw = os.environ.get("CORENET_BLOCK_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _autoload_disabled() -> bool:
    return os.environ.get("CORENET_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    blocked = _blocked()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "unknown"
        if ep.name in blocked or dist in blocked:
            continue
        if _autoload_disabled() and dist != CORE_DISTRIBUTION:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # one broken plugin must not stop the others
            warnings.warn(f"corenet: plugin {ep.name!r} (distribution {dist} {version}) "
                          f"failed to import and was skipped: {exc!r}",
                          RuntimeWarning, stacklevel=3)
            continue
        pm.register(plugin, name=ep.name)
        _origins[ep.name] = (dist, version)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created and loaded at first use."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager("corenet")
        pm.add_hookspecs(hookspecs)
        _load_entry_points(pm)
        pm.check_pending()
        _manager = pm
    return _manager


def register(plugin, name: str | None = None, distribution: str = "(runtime)") -> str:
    """Register a plugin object or module at run time; returns its plugin name.

    Registration hooks of a plugin registered this way are picked up by the registry
    at its next lookup.
    """
    pm = get_plugin_manager()
    plugin_name = pm.register(plugin, name=name)
    try:
        pm.check_pending()  # a misspelt hook name is an error, not silence
    except Exception:
        pm.unregister(plugin)
        raise
    _origins[plugin_name] = (distribution, "")
    from . import registry
    registry.invalidate()
    return plugin_name


def unregister(plugin=None, name: str | None = None) -> None:
    """Remove a plugin registered with :func:`register`."""
    pm = get_plugin_manager()
    removed = pm.unregister(plugin=plugin, name=name)
    if removed is not None:
        from . import registry
        registry.invalidate()


def origin(plugin_name: str) -> tuple[str, str]:
    """(distribution, version) that provided the plugin named ``plugin_name``."""
    return _origins.get(plugin_name, ("(runtime)", ""))


def reset() -> None:
    """Forget the plugin manager (tests use it after changing the environment switches)."""
    global _manager
    _manager = None
    _origins.clear()
    from . import registry
    registry.invalidate()


def has_event_hooks(hook_name: str) -> bool:
    """True when at least one implementation of the event hook is registered."""
    return bool(getattr(get_plugin_manager().hook, hook_name).get_hookimpls())
