"""The plugin machinery: entry-point loading, env switches, registry errors, check_pending.

Every test leaves the process-wide plugin manager as it found it (``plugins.reset()``).
Third-party entry points are simulated by wrapping ``importlib.metadata.entry_points``
as seen by ``corenet.plugins``.
"""
import types
import warnings

import pluggy
import pytest

import corenet

from corenet import plugins, registry
from corenet.errors import PluginError
from corenet.plugins import hookimpl


@pytest.fixture(autouse=True)
def clean_plugins():
    plugins.reset()
    yield
    plugins.reset()


# ------------------------------------------------------------------------------ helpers
def make_class(name, base=object):
    return type(f"Fake_{name}", (base,), {"name": name, "__module__": __name__})


class Provider:
    """A plugin object registering ``classes`` under one category."""

    def __init__(self, *classes):
        self.classes = list(classes)

    @hookimpl
    def corenet_register_layers(self):
        return self.classes


class FakeEntryPoint:
    """Quacks like importlib.metadata.EntryPoint for corenet.plugins."""

    def __init__(self, name, load, dist="fake-dist", version="9.9"):
        self.name = name
        self._load = load
        self.dist = types.SimpleNamespace(metadata={"Name": dist}, version=version)

    def load(self):
        return self._load()


def module_plugin(modname, **hooks):
    mod = types.ModuleType(modname)
    for hook_name, func in hooks.items():
        setattr(mod, hook_name, hookimpl(func))
    return mod


def broken_loader():
    raise ImportError("No module named 'corenet_broken_dependency'")


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Add fake entry points to the real ones; returns the list to append to."""
    extra = []
    real = plugins.metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        return found + extra if kwargs.get("group") == plugins.ENTRY_POINT_GROUP else found

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    return extra


def good_plugin_ep(layer_name="ep_test_layer", ep_name="good_plugin", dist="good-dist"):
    cls = make_class(layer_name)
    mod = module_plugin(f"fake_{ep_name}", corenet_register_layers=lambda: [cls])
    return cls, FakeEntryPoint(ep_name, lambda: mod, dist=dist, version="1.2.3")


# ------------------------------------------------------------------------------ registry errors
def test_unknown_name_lists_known_names_and_close_matches():
    plugins.register(Provider(make_class("wobble_layer"), make_class("zigzag")),
                     name="provider_a")
    with pytest.raises(PluginError) as info:
        registry.get("layer", "wobble_layr")
    message = str(info.value)
    assert "unknown layer 'wobble_layr'" in message
    assert "did you mean 'wobble_layer'" in message
    assert "Known layers:" in message and "zigzag" in message


def test_unknown_category_lists_categories():
    with pytest.raises(PluginError, match="unknown category 'layers'.*'layer'"):
        registry.names("layers")


def test_duplicate_name_names_both_distributions():
    plugins.register(Provider(make_class("twin")), name="first", distribution="dist-alpha")
    plugins.register(Provider(make_class("twin")), name="second", distribution="dist-beta")
    with pytest.raises(PluginError, match="registered twice") as info:
        registry.get("layer", "twin")
    assert "dist-alpha" in str(info.value) and "dist-beta" in str(info.value)
    assert "'first'" in str(info.value) and "'second'" in str(info.value)


def test_class_without_name_is_rejected():
    nameless = type("Nameless", (), {})
    plugins.register(Provider(nameless), name="nameless_provider", distribution="dist-n")
    with pytest.raises(PluginError, match="no string class attribute 'name'") as info:
        registry.names("layer")
    assert "Nameless" in str(info.value) and "dist-n" in str(info.value)


def test_runtime_register_unregister_and_entry_fields():
    cls = make_class("runtime_layer")
    provider = Provider(cls)
    plugins.register(provider, name="rt", distribution="my-dist")
    entry = registry.entry("layer", "runtime_layer")
    assert (entry.category, entry.name, entry.cls, entry.plugin, entry.distribution) == \
        ("layer", "runtime_layer", cls, "rt", "my-dist")
    assert "runtime_layer" in registry.names("layer")
    assert entry in registry.entries()
    plugins.unregister(provider)
    assert "runtime_layer" not in registry.names("layer")


def test_create_from_name_dict_tuple_class_and_instance():
    class Configurable:
        name = "configurable"

        def __init__(self, size=1, scale=1.0):
            self.size, self.scale = size, scale

    plugins.register(Provider(Configurable), name="cfg")
    assert registry.create("layer", "configurable", size=3).size == 3
    made = registry.create("layer", {"name": "configurable", "scale": 2.0}, size=4)
    assert (made.size, made.scale) == (4, 2.0)
    made = registry.create("layer", ("configurable", {"size": 5}))
    assert made.size == 5
    assert registry.create("layer", Configurable).size == 1
    instance = Configurable()
    assert registry.create("layer", instance) is instance
    with pytest.raises(PluginError, match="needs a 'name' key"):
        registry.create("layer", {"size": 2})


# ------------------------------------------------------------------------------ entry points
def test_entry_point_plugin_is_loaded_with_its_distribution(fake_entry_points):
    cls, ep = good_plugin_ep()
    fake_entry_points.append(ep)
    entry = registry.entry("layer", "ep_test_layer")
    assert entry.cls is cls
    assert (entry.plugin, entry.distribution, entry.version) == \
        ("good_plugin", "good-dist", "1.2.3")


def test_broken_entry_point_warns_and_others_load(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("broken_plugin", broken_loader, dist="bad-dist"))
    cls, ep = good_plugin_ep()
    fake_entry_points.append(ep)
    with pytest.warns(RuntimeWarning, match="broken_plugin.*bad-dist.*skipped"):
        assert registry.get("layer", "ep_test_layer") is cls
    assert plugins.get_plugin_manager().get_plugin("broken_plugin") is None


@pytest.mark.parametrize("blocked", ["good_plugin", "good-dist", " other , good_plugin "])
def test_block_plugins_by_entry_point_or_distribution(fake_entry_points, monkeypatch, blocked):
    _, ep = good_plugin_ep()
    fake_entry_points.append(ep)
    monkeypatch.setenv("CORENET_BLOCK_PLUGINS", blocked)
    plugins.reset()
    assert "ep_test_layer" not in registry.names("layer")


def test_block_plugins_skips_a_broken_plugin_silently(fake_entry_points, monkeypatch):
    fake_entry_points.append(FakeEntryPoint("broken_plugin", broken_loader))
    monkeypatch.setenv("CORENET_BLOCK_PLUGINS", "broken_plugin")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*broken_plugin.*")
        plugins.get_plugin_manager()


def test_disable_autoload_keeps_only_corenet_distribution(fake_entry_points, monkeypatch):
    third_party_cls, third_party = good_plugin_ep("third_party_layer", "third", "third-dist")
    core_cls, core = good_plugin_ep("core_like_layer", "core_like", plugins.CORE_DISTRIBUTION)
    fake_entry_points.extend([third_party, core])
    monkeypatch.setenv("CORENET_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins.reset()
    names = registry.names("layer")
    assert "core_like_layer" in names and "third_party_layer" not in names
    assert {e.distribution for e in registry.entries()} <= {plugins.CORE_DISTRIBUTION}
    # explicit registration still works with autoload disabled
    plugins.register(Provider(make_class("explicit_layer")), name="explicit")
    assert "explicit_layer" in registry.names("layer")
    monkeypatch.setenv("CORENET_DISABLE_PLUGIN_AUTOLOAD", "0")
    plugins.reset()
    assert "third_party_layer" in registry.names("layer")


# ------------------------------------------------------------------------------ hook validation
def test_misspelt_hook_in_runtime_plugin_is_an_error():
    class Typo:
        @hookimpl
        def corenet_on_epoch_ned(self, epoch):
            pass

    with pytest.raises(pluggy.PluginValidationError, match="corenet_on_epoch_ned"):
        plugins.register(Typo(), name="typo")


def test_misspelt_hook_in_entry_point_plugin_is_an_error(fake_entry_points):
    mod = module_plugin("typo_mod", corenet_register_layer=lambda: [])
    fake_entry_points.append(FakeEntryPoint("typo_plugin", lambda: mod))
    with pytest.raises(pluggy.PluginValidationError, match="corenet_register_layer"):
        plugins.get_plugin_manager()


def test_unknown_hook_argument_is_an_error():
    class WrongArgument:
        @hookimpl
        def corenet_on_epoch_end(self, epoch, metrics):  # the argument is called logs
            pass

    with pytest.raises(pluggy.PluginValidationError, match="metrics"):
        plugins.register(WrongArgument(), name="wrong_argument")


def test_event_hooks_receive_only_the_arguments_they_name():
    seen = []

    class Listener:
        @hookimpl
        def corenet_on_epoch_end(self, logs):
            seen.append(dict(logs))

        @hookimpl
        def corenet_should_stop(self, epoch):
            return True if epoch >= 2 else None

    listener = Listener()
    plugins.register(listener, name="listener")
    assert plugins.has_event_hooks("corenet_on_epoch_end")
    hook = plugins.get_plugin_manager().hook
    hook.corenet_on_epoch_end(trainer=None, epoch=0, logs={"loss": 1.5})
    assert seen == [{"loss": 1.5}]
    assert hook.corenet_should_stop(trainer=None, epoch=0, logs={}) is None
    assert hook.corenet_should_stop(trainer=None, epoch=2, logs={}) is True
    plugins.unregister(listener)
    hook.corenet_on_epoch_end(trainer=None, epoch=1, logs={"loss": 1.0})
    assert len(seen) == 1


def test_every_registration_hook_has_a_category():
    pm = plugins.get_plugin_manager()
    register_hooks = {name for name in dir(pm.hook) if name.startswith("corenet_register_")}
    assert register_hooks == set(registry.CATEGORIES.values())


def test_registration_hook_that_raises_warns_and_others_still_load():
    class Broken:
        @corenet.hookimpl
        def corenet_register_losses(self):
            raise RuntimeError("boom")

    broken = Broken()
    corenet.plugins.register(broken, name="broken_losses")
    try:
        with pytest.warns(RuntimeWarning, match="broken_losses.*boom"):
            names = corenet.registry.names("loss")
        assert "mse" in names
    finally:
        corenet.plugins.unregister(broken)


def test_misspelt_hook_is_an_error_and_leaves_nothing_registered():
    class Misspelt:
        @corenet.hookimpl
        def corenet_register_layerz(self):
            return []

    obj = Misspelt()
    with pytest.raises(Exception, match="corenet_register_layerz"):
        corenet.plugins.register(obj, name="misspelt")
    assert not corenet.plugins.get_plugin_manager().is_registered(obj)
