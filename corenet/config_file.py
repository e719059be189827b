"""TOML run configurations for ``corenet train``: model layers, loss, optimizer,
regularizers, schedule, metrics, callbacks, data, training and output settings.

A configuration (see ``examples/*.toml`` and ``docs/config.md``)::

    description = "XOR with a 2-4-1 tanh network"
    seed = 0                       # model initialisation and shuffling
    dtype = "float64"              # or "float32"

    [data]
    name = "xor"                   # a registered data set (``corenet plugins -c dataset``)
    # path = "train.npz"           # ... or an .npz file (arrays X and y) or a .csv file
    options = { targets = "01" }   # keyword arguments of the data set's loader

    [[model.layers]]
    name = "dense"
    out_features = 4
    activation = "tanh"

    [[model.layers]]
    name = "dense"
    out_features = 1
    activation = "sigmoid"

    [loss]
    name = "bce"

    [optimizer]
    name = "sgd"
    lr = 0.5

    [train]
    epochs = 300
    batch_size = 4

Components (``loss``, ``optimizer``, ``scheduler``, the entries of ``metrics``,
``regularizers``, ``callbacks``, ``pruners``, ``growers`` and ``model.layers``) are a
registered name or a table with a ``name`` key plus the constructor's keyword arguments.
TOML arrays become tuples.

:func:`load` (or :func:`loads`, :func:`from_dict`) validates the whole file before
anything runs: every key is checked against the allowed keys of its table, every value
against its expected type, every component name against the registry and every
component keyword against the hyperparameters of its class (``inspect.signature`` of the
constructor, or the ``defaults`` of an optimizer), and every component is constructed
once. Errors are :class:`ConfigError` naming the file, the key path (``optimizer.name``,
``model.layers[1].units``) and the allowed values.
"""
from __future__ import annotations

import difflib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import registry
from .errors import CorenetError

REQUIRED = inspect.Parameter.empty


class ConfigError(CorenetError, ValueError):
    """A run configuration is malformed: the message names the file, the key and the
    allowed values or the expected type."""


# ------------------------------------------------------------------------- schema
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
               list: "an array", dict: "a table"}

#: top-level key -> expected type (a tuple: any of them); "component" = name or table
TOP_LEVEL = {"description": str, "seed": int, "dtype": str, "data": dict, "model": dict,
             "loss": "component", "optimizer": "component", "scheduler": "component",
             "metrics": list, "regularizers": list, "callbacks": list, "pruners": list,
             "growers": list, "train": dict, "output": dict}
DATA_KEYS = {"name": str, "path": str, "options": dict, "test_split": (int, float),
             "test_path": str, "split_seed": int, "max_train": int, "max_test": int,
             "flatten": bool, "normalize": "component", "target_column": (int, str),
             "header": bool, "delimiter": str, "x_key": str, "y_key": str,
             "target_dtype": str}
MODEL_KEYS = {"layers": list, "input_shape": list}
TRAIN_KEYS = {"epochs": int, "batch_size": int, "validation_split": float,
              "shuffle": bool, "drop_last": bool, "fast_path": bool}
OUTPUT_KEYS = {"directory": str, "model": str, "plots": bool, "history": bool}
DTYPES = ("float32", "float64")
TARGET_DTYPES = ("auto", "int", "float")


def _where(source: str | None, path: str) -> str:
    return f"config {source or '<string>'}: {path}" if path else f"config {source or '<string>'}"


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def _describe(value) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
    return f"{kind} ({value!r})" if not isinstance(value, (dict, list)) else kind


def _check_type(value, types, where: str):
    types = types if isinstance(types, tuple) else (types,)
    ok = False
    for t in types:
        if t is float:
            ok = ok or (isinstance(value, (int, float)) and not isinstance(value, bool))
        elif t is int:
            ok = ok or (isinstance(value, int) and not isinstance(value, bool))
        else:
            ok = ok or isinstance(value, t)
    if not ok:
        raise ConfigError(f"{where}: expected {_type_name(types)}, got {_describe(value)}")
    return value


def _toml_hint(key) -> str:
    if key in TOP_LEVEL:
        return (f". Note: in TOML, a key written after a [table] header belongs to that "
                f"table; move top-level keys such as {key!r} above the first [table]")
    return ""


def _check_keys(table: dict, allowed, where: str, what: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown {what} {key!r}{hint}; allowed keys: "
                              f"{', '.join(sorted(allowed))}"
                              f"{_toml_hint(key) if what != 'top-level key' else ''}")


def _check_table(table: dict, schema: dict, where_of, what: str) -> None:
    _check_keys(table, schema, where_of(""), what)
    for key, types in schema.items():
        if key in table and types != "component":
            _check_type(table[key], types, where_of(key))


# ------------------------------------------------------------------------- components
def _init_signature(klass):
    init = klass.__dict__.get("__init__")
    if init is None:
        return None
    try:
        return inspect.signature(init)
    except (TypeError, ValueError):
        return None


def _walk_hyperparameters(cls):
    """``(parameters, open)``: the keyword parameters of the constructors along the MRO
    (a constructor taking ``**kwargs`` passes them on to the next one), and whether the
    chain ends in an unchecked ``**kwargs``."""
    params, seen = [], set()
    optimizer_like = isinstance(getattr(cls, "defaults", None), dict)
    for klass in cls.__mro__:
        if klass is object:
            return params, False
        sig = _init_signature(klass)
        if sig is None:
            continue
        var_kw = False
        for i, p in enumerate(sig.parameters.values()):
            if i == 0 and p.name == "self":
                continue
            if p.kind is p.VAR_KEYWORD:
                var_kw = True
            elif p.kind is not p.VAR_POSITIONAL and p.name not in seen and not (
                    optimizer_like and p.name == "params"):
                seen.add(p.name)
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                              if p.kind is p.POSITIONAL_ONLY else p)
        if not var_kw:
            return params, False
        if optimizer_like:
            merged = {**cls.defaults, **getattr(cls, "common_defaults", {})}
            for name, default in merged.items():
                if name not in seen:
                    seen.add(name)
                    params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                                    default=default))
            return params, False
    return params, True


def hyperparameters(cls) -> list[inspect.Parameter]:
    """The constructor hyperparameters of a component class, in order: the parameters of
    its ``__init__`` (without ``self`` and ``*args``/``**kwargs``), followed by those of
    the base-class constructors that its ``**kwargs`` are passed on to; for an optimizer
    (``**hyperparameters`` and a ``defaults`` dict) the entries of ``defaults`` and
    ``common_defaults`` with those defaults."""
    return _walk_hyperparameters(cls)[0]


def accepts_any_keyword(cls) -> bool:
    """True when the constructor chain ends in an unchecked ``**kwargs`` (then unknown
    keys cannot be rejected in advance)."""
    return _walk_hyperparameters(cls)[1]


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


@dataclass
class Component:
    """A validated component: ``category``, ``name``, keyword arguments, key path."""
    category: str
    name: str
    kwargs: dict
    where: str

    def create(self, **extra):
        """A fresh instance; constructor errors become :class:`ConfigError` naming the key."""
        cls = registry.get(self.category, self.name)
        try:
            return cls(**{**self.kwargs, **extra})
        except ConfigError:
            raise
        except (CorenetError, ValueError, TypeError) as exc:
            raise ConfigError(f"{self.where}: {self.category} {self.name!r}: {exc}") from exc

    def spec(self) -> dict:
        return {"name": self.name, **self.kwargs}


def parse_component(category: str, spec, where: str) -> Component:
    """Validate a component given as a name or a ``{name = ..., **kwargs}`` table."""
    known = registry.names(category)
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, dict):
        kwargs = dict(spec)
        if "name" not in kwargs:
            raise ConfigError(f"{where}: a {category} table needs a 'name' key; known "
                              f"{category}s: {', '.join(known)}")
        name = kwargs.pop("name")
        if not isinstance(name, str):
            raise ConfigError(f"{where}.name: expected a string, got {_describe(name)}")
    else:
        raise ConfigError(f"{where}: expected a string (a {category} name) or a table with "
                          f"a 'name' key, got {_describe(spec)}")
    key = where if isinstance(spec, str) else f"{where}.name"
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(f"{key}: unknown {category} {name!r}{hint}; known {category}s: "
                          f"{', '.join(known) or '(none registered)'}")
    cls = registry.get(category, name)
    params = {p.name: p for p in hyperparameters(cls)}
    if not accepts_any_keyword(cls):
        for k in kwargs:
            if k not in params:
                close = difflib.get_close_matches(k, list(params), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{where}: unknown key {k!r} for {category} {name!r}{hint}; "
                                  f"allowed keys: {', '.join(['name', *params])}"
                                  f"{_toml_hint(k)}")
    missing = [p for p, param in params.items() if param.default is REQUIRED
               and p not in kwargs]
    if missing:
        raise ConfigError(f"{where}: {category} {name!r} needs the key(s) "
                          f"{', '.join(map(repr, missing))}; allowed keys: "
                          f"{', '.join(['name', *params])}")
    return Component(category, name, _tuples(kwargs), where)


def _component_list(category: str, value, where: str) -> list[Component]:
    _check_type(value, list, where)
    return [parse_component(category, item, f"{where}[{i}]") for i, item in enumerate(value)]


# ------------------------------------------------------------------------- the config
@dataclass
class DataConfig:
    """The ``[data]`` table (see :mod:`corenet.config_data` for loading)."""
    name: str | None = None
    path: str | None = None
    options: dict = field(default_factory=dict)
    test_split: float | int = 0
    test_path: str | None = None
    split_seed: int = 0
    max_train: int | None = None
    max_test: int | None = None
    flatten: bool = False
    normalize: Component | None = None
    target_column: int | str = -1
    header: bool | None = None
    delimiter: str = ","
    x_key: str = "X"
    y_key: str = "y"
    target_dtype: str = "auto"


@dataclass
class RunConfig:
    """A validated run configuration (see the module docstring)."""
    source: str | None
    base_dir: str
    description: str = ""
    seed: int = 0
    dtype: str = "float64"
    data: DataConfig = field(default_factory=DataConfig)
    layers: list[Component] = field(default_factory=list)
    input_shape: tuple | None = None
    loss: Component | None = None
    optimizer: Component | None = None
    scheduler: Component | None = None
    metrics: list[Component] = field(default_factory=list)
    regularizers: list[Component] = field(default_factory=list)
    callbacks: list[Component] = field(default_factory=list)
    pruners: list[Component] = field(default_factory=list)
    growers: list[Component] = field(default_factory=list)
    epochs: int = 10
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    drop_last: bool = False
    fast_path: bool = True
    output_dir: str | None = None
    model_file: str = "model.npz"
    plots: bool = True
    history: bool = True
    raw: dict = field(default_factory=dict)

    # ----------------------------------------------------------------- building
    def resolve(self, path: str) -> str:
        """A path of the config, relative to the config file's directory."""
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def build_model(self, input_shape=None, compile: bool = True):
        """A fresh :class:`~corenet.Sequential` (seeded with ``seed``), compiled with the
        loss, optimizer, metrics, regularizers and scheduler; built when an input shape
        is known (``input_shape`` argument or ``model.input_shape``)."""
        from .model import Sequential

        shape = input_shape if input_shape is not None else self.input_shape
        layers = [c.create() for c in self.layers]
        try:
            model = Sequential(layers, dtype=self.dtype, random_state=self.seed)
            if shape is not None:
                model.build(tuple(shape))
        except ConfigError:
            raise
        except (CorenetError, ValueError, TypeError) as exc:
            raise ConfigError(f"{_where(self.source, 'model.layers')}: {exc}") from exc
        if compile:
            model.compile(loss=self.loss.create(), optimizer=self.optimizer.create(),
                          metrics=[m.create() for m in self.metrics],
                          regularizers=[r.create() for r in self.regularizers],
                          scheduler=self.scheduler.create() if self.scheduler else None)
        return model

    def build_callbacks(self, output_dir: str | None = None) -> list:
        """Fresh callback objects for ``fit``: the ``callbacks``, then the ``pruners``
        and ``growers`` (which act during training as per-run plugins); a ``checkpoint``
        directory is taken relative to the output directory."""
        out = []
        for c in self.callbacks + self.pruners + self.growers:
            extra = {}
            if c.name == "checkpoint" and output_dir is not None:
                directory = c.kwargs.get("directory", "checkpoints")
                if not os.path.isabs(directory):
                    extra["directory"] = os.path.join(output_dir, directory)
            out.append(c.create(**extra))
        return out

    def load_data(self):
        """``(X_train, y_train, X_test, y_test)`` (test arrays None without a test set);
        see :func:`corenet.config_data.load_data`."""
        from .config_data import load_data

        return load_data(self)

    def validate(self) -> "RunConfig":
        """Construct every component once, so value errors surface before a run."""
        for group in (self.layers, self.metrics, self.regularizers, self.callbacks,
                      self.pruners, self.growers):
            for c in group:
                c.create()
        for c in (self.loss, self.optimizer, self.scheduler, self.data.normalize):
            if c is not None:
                c.create()
        return self


def _parse_data(table: dict, source) -> DataConfig:
    def where(key=""):
        return _where(source, f"data.{key}" if key else "data")

    _check_table(table, DATA_KEYS, where, "key in [data]")
    if ("name" in table) == ("path" in table):
        known = registry.names("dataset")
        raise ConfigError(f"{where()}: give exactly one of 'name' (a built-in data set: "
                          f"{', '.join(known)}) or 'path' (an .npz file with arrays X and "
                          f"y, or a .csv file)")
    d = DataConfig(**{k: v for k, v in table.items() if k != "normalize"})
    if d.name is not None and d.name not in registry.names("dataset"):
        close = difflib.get_close_matches(d.name, registry.names("dataset"), n=2)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(f"{where('name')}: unknown dataset {d.name!r}{hint}; known "
                          f"datasets: {', '.join(registry.names('dataset'))} (or give "
                          f"path = an .npz or .csv file)")
    for key in ("path", "test_path"):
        value = getattr(d, key)
        if value is not None and not value.lower().endswith((".npz", ".csv")):
            raise ConfigError(f"{where(key)}: expected an .npz or .csv file, got {value!r}")
    if d.target_dtype not in TARGET_DTYPES:
        raise ConfigError(f"{where('target_dtype')}: expected one of "
                          f"{', '.join(TARGET_DTYPES)}, got {d.target_dtype!r}")
    ts = d.test_split
    if not (ts == 0 or (isinstance(ts, float) and 0 < ts < 1) or
            (isinstance(ts, int) and ts >= 1)):
        raise ConfigError(f"{where('test_split')}: expected a fraction in (0, 1) or a "
                          f"sample count >= 1 (0 = no test set), got {ts!r}")
    if d.test_path is not None and ts:
        raise ConfigError(f"{where()}: give test_split or test_path, not both")
    for key in ("max_train", "max_test"):
        value = getattr(d, key)
        if value is not None and value < 1:
            raise ConfigError(f"{where(key)}: expected an integer >= 1, got {value!r}")
    if "normalize" in table:
        d.normalize = parse_component("normalizer", table["normalize"], where("normalize"))
    return d


def from_dict(raw: dict, source: str | None = None, base_dir: str | None = None) -> RunConfig:
    """Validate a parsed configuration (a dict as read from TOML)."""
    def where(path=""):
        return _where(source, path)

    if not isinstance(raw, dict):
        raise ConfigError(f"{where()}: expected a table at the top level, got {_describe(raw)}")
    _check_table(raw, TOP_LEVEL, lambda k: where(k), "top-level key")
    for key in ("data", "model"):
        if key not in raw:
            raise ConfigError(f"{where()}: missing the required [{key}] table; top-level "
                              f"keys: {', '.join(sorted(TOP_LEVEL))}")
    cfg = RunConfig(source=source, base_dir=base_dir or os.getcwd(), raw=raw)
    cfg.description = raw.get("description", "")
    cfg.seed = raw.get("seed", 0)
    cfg.dtype = raw.get("dtype", "float64")
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"{where('dtype')}: expected one of {', '.join(DTYPES)}, got "
                          f"{cfg.dtype!r}")
    cfg.data = _parse_data(raw["data"], source)

    model = raw["model"]
    _check_table(model, MODEL_KEYS, lambda k: where(f"model.{k}" if k else "model"),
                 "key in [model]")
    if not model.get("layers"):
        raise ConfigError(f"{where('model.layers')}: expected a non-empty array of layer "
                          f"tables ([[model.layers]] with name = ...)")
    cfg.layers = _component_list("layer", model["layers"], where("model.layers"))
    if "input_shape" in model:
        shape = model["input_shape"]
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                                for s in shape):
            raise ConfigError(f"{where('model.input_shape')}: expected an array of positive "
                              f"integers (per-sample shape), got {shape!r}")
        cfg.input_shape = tuple(shape)

    cfg.loss = parse_component("loss", raw.get("loss", "mse"), where("loss"))
    cfg.optimizer = parse_component("optimizer", raw.get("optimizer", "sgd"),
                                    where("optimizer"))
    if "scheduler" in raw:
        cfg.scheduler = parse_component("scheduler", raw["scheduler"], where("scheduler"))
    for key, category in (("metrics", "metric"), ("regularizers", "regularizer"),
                          ("callbacks", "callback"), ("pruners", "pruner"),
                          ("growers", "grower")):
        if key in raw:
            setattr(cfg, key, _component_list(category, raw[key], where(key)))

    train = raw.get("train", {})
    _check_table(train, TRAIN_KEYS, lambda k: where(f"train.{k}" if k else "train"),
                 "key in [train]")
    for key in TRAIN_KEYS:
        if key in train:
            setattr(cfg, key, train[key])
    if cfg.epochs < 1:
        raise ConfigError(f"{where('train.epochs')}: expected an integer >= 1, got "
                          f"{cfg.epochs!r}")
    if cfg.batch_size < 1:
        raise ConfigError(f"{where('train.batch_size')}: expected an integer >= 1, got "
                          f"{cfg.batch_size!r}")
    if not 0.0 <= cfg.validation_split < 1.0:
        raise ConfigError(f"{where('train.validation_split')}: expected a fraction in [0, 1),"
                          f" got {cfg.validation_split!r}")

    output = raw.get("output", {})
    _check_table(output, OUTPUT_KEYS, lambda k: where(f"output.{k}" if k else "output"),
                 "key in [output]")
    cfg.output_dir = output.get("directory")
    cfg.model_file = output.get("model", "model.npz")
    if not cfg.model_file.endswith(".npz"):
        raise ConfigError(f"{where('output.model')}: expected a file name ending in .npz, "
                          f"got {cfg.model_file!r}")
    cfg.plots = output.get("plots", True)
    cfg.history = output.get("history", True)
    return cfg.validate()


def _toml():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ConfigError("reading TOML needs Python >= 3.11 (tomllib) or the 'tomli' "
                              "package on Python 3.10: pip install tomli") from None
    return tomllib


def loads(text: str, source: str | None = None, base_dir: str | None = None) -> RunConfig:
    """Parse and validate TOML text."""
    toml = _toml()
    try:
        raw = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{_where(source, '')}: invalid TOML: {exc}") from None
    return from_dict(raw, source=source, base_dir=base_dir)


def load(path, base_dir=None) -> RunConfig:
    """Read, parse and validate a TOML configuration file; relative data paths are taken
    relative to ``base_dir`` (default: the file's directory)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot be read: {exc}") from None
    return loads(text, source=str(path),
                 base_dir=str(base_dir) if base_dir else str(path.parent.resolve()))
