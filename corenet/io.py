"""Saving and loading models and training checkpoints — never with pickle.

File format (a NumPy ``.npz`` archive, read with ``allow_pickle=False``):

``__corenet__``
    uint8 array holding UTF-8 JSON: ``{"format": "corenet-model" | "corenet-checkpoint",
    "format_version": 1, "corenet_version", "model": <model.get_config()>,
    "components": [{"category", "name", "distribution", "version"}, ...],
    "parameters": [{"name", "shape", "dtype", "masked"}, ...], "buffers": [[layer, key], ...],
    ...}`` (checkpoints add ``"epoch"``, ``"optimizer"``, ``"scheduler"``, ``"rng"``,
    ``"history"``).
``param/<i>``, ``mask/<i>``
    the i-th parameter of ``model.parameters()`` and, when it is masked, its mask.
``buffer/<layer index>/<key>``
    non-trainable layer state (``Layer.buffers()``, e.g. batch-norm running statistics).
``opt/<i>/<key>``
    per-parameter optimizer state arrays (checkpoints).

Writes are atomic: a temporary file in the target directory, flushed and fsynced, then
renamed over the target. Loading validates everything (format tag, JSON schema, shapes,
dtypes, mask values) and refuses corrupt, truncated or hostile files with a
:class:`CorruptFileError`; a model that needs a component from a plugin that is not
installed raises :class:`~corenet.errors.PluginError` naming the distribution to install.
"""
from __future__ import annotations

import json
import os
import tempfile
import numpy as np

from . import registry
from .errors import CorenetError, PluginError

FORMAT_VERSION = 1
_META = "__corenet__"


class CorruptFileError(CorenetError, ValueError):
    """A saved model or checkpoint is corrupt, truncated, or not a corenet file."""


# ----------------------------------------------------------------------------- writing
def _atomic_savez(path, arrays: dict) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".corenet-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _encode(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _components(model) -> list[dict]:
    out, seen = [], set()
    for layer in model.layers_in_order():
        key = ("layer", layer.name)
        if key in seen or not layer.name:
            continue
        seen.add(key)
        try:
            entry = registry.entry("layer", layer.name)
            out.append({"category": "layer", "name": layer.name,
                        "distribution": entry.distribution, "version": entry.version})
        except PluginError:
            out.append({"category": "layer", "name": layer.name, "distribution": "(unknown)",
                        "version": ""})
    return out


def model_arrays(model) -> tuple[dict, dict]:
    """``(metadata, arrays)`` describing a built model: its config, components,
    parameters, masks and buffers."""
    from . import __version__

    if not model.built:
        raise ValueError(f"{type(model).__name__}: build or train the model before saving it")
    arrays, params, buffers = {}, [], []
    for i, p in enumerate(model.parameters()):
        arrays[f"param/{i}"] = p.data
        if p.masked:
            arrays[f"mask/{i}"] = p.mask
        params.append({"name": p.name, "shape": list(p.shape), "dtype": str(p.dtype),
                       "masked": bool(p.masked), "trainable": bool(p.trainable)})
    for li, layer in enumerate(model.layers_in_order()):
        for key, value in layer.buffers().items():
            arrays[f"buffer/{li}/{key}"] = value
            buffers.append([li, key])
    meta = {"format": "corenet-model", "format_version": FORMAT_VERSION,
            "corenet_version": __version__, "model": model.get_config(),
            "components": _components(model), "parameters": params, "buffers": buffers}
    return meta, arrays


def save_model(model, path) -> None:
    """Write ``model`` (architecture, parameters, masks, buffers, dtype, versions) to
    ``path`` atomically."""
    meta, arrays = model_arrays(model)
    arrays[_META] = _encode(meta)
    _atomic_savez(path, arrays)


# ----------------------------------------------------------------------------- reading
def _read(path, expected_format: str):
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # BadZipFile, bad headers, unsupported zip features, ...
        raise CorruptFileError(f"corenet.load: {path!r} is not a readable corenet file "
                               f"({type(exc).__name__}: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CorruptFileError(f"corenet.load: {path!r} is not an .npz archive")
    try:
        with archive:
            arrays = {}
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except ValueError as exc:  # object arrays (pickles) are refused here
                    raise CorruptFileError(f"corenet.load: entry {key!r} of {path!r} cannot be "
                                           f"read without pickle ({exc}); refused") from None
    except CorruptFileError:
        raise
    except Exception as exc:  # truncated members, bad CRC, bad headers
        raise CorruptFileError(f"corenet.load: {path!r} is corrupt or truncated "
                               f"({type(exc).__name__}: {exc})") from None
    if _META not in arrays or arrays[_META].dtype != np.uint8 or arrays[_META].ndim != 1:
        raise CorruptFileError(f"corenet.load: {path!r} has no corenet metadata")
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"corenet.load: metadata of {path!r} is not valid JSON "
                               f"({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CorruptFileError(f"corenet.load: {path!r} is a {got!r} file, expected "
                               f"{expected_format!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CorruptFileError(f"corenet.load: {path!r} has format_version "
                               f"{meta.get('format_version')!r}; this corenet reads "
                               f"{FORMAT_VERSION}")
    for key in ("model", "components", "parameters", "buffers"):
        if key not in meta:
            raise CorruptFileError(f"corenet.load: metadata of {path!r} lacks {key!r}")
    return meta, arrays


def _check_components(meta) -> None:
    for comp in meta["components"]:
        if not isinstance(comp, dict) or not {"category", "name"} <= set(comp):
            raise CorruptFileError("corenet.load: malformed component record")
        try:
            registry.entry(comp["category"], comp["name"])
        except PluginError:
            dist = comp.get("distribution", "(unknown)")
            raise PluginError(f"corenet.load: the model needs the {comp['category']} "
                              f"{comp['name']!r} provided by distribution {dist} "
                              f"{comp.get('version', '')}; install it (pip install {dist})"
                              ) from None


def _build_model(config):
    from .graph import Graph
    from .model import Sequential

    if not isinstance(config, dict):
        raise CorruptFileError("corenet.load: model config is not an object")
    kinds = {"sequential": Sequential, "graph": Graph}
    kind = config.get("kind")
    if kind not in kinds:
        raise CorruptFileError(f"corenet.load: unknown model kind {kind!r}; expected one of "
                               f"{sorted(kinds)}")
    try:
        model = kinds[kind].from_config(config)
    except PluginError:
        raise
    except Exception as exc:
        raise CorruptFileError(f"corenet.load: the model config cannot be rebuilt "
                               f"({type(exc).__name__}: {exc})") from None
    if not model.built:
        raise CorruptFileError("corenet.load: the model config has no input shape")
    return model


def restore_arrays(model, meta, arrays) -> None:
    """Copy parameters, masks and buffers from a file into a built model, validating
    every shape, dtype and mask value."""
    params = model.parameters()
    records = meta["parameters"]
    if not isinstance(records, list) or len(records) != len(params):
        raise CorruptFileError(f"corenet.load: the file has {len(records)} parameters, the "
                               f"rebuilt model {len(params)}")
    for i, (p, rec) in enumerate(zip(params, records)):
        data = arrays.get(f"param/{i}")
        if data is None:
            raise CorruptFileError(f"corenet.load: parameter {i} ({p.name}) is missing")
        if data.shape != p.shape or data.dtype != p.dtype:
            raise CorruptFileError(f"corenet.load: parameter {i} ({p.name}) has shape "
                                   f"{data.shape} and dtype {data.dtype}, expected {p.shape} "
                                   f"and {p.dtype}")
        if not np.isfinite(data).all():
            raise CorruptFileError(f"corenet.load: parameter {i} ({p.name}) holds NaN or inf")
        p.data[...] = data
        mask = arrays.get(f"mask/{i}")
        if isinstance(rec, dict) and rec.get("masked"):
            if mask is None or mask.shape != p.shape or not np.isin(mask, (0, 1)).all():
                raise CorruptFileError(f"corenet.load: mask of parameter {i} ({p.name}) is "
                                       f"missing or invalid")
            p.mask = mask
        if isinstance(rec, dict) and "trainable" in rec:
            p.trainable = bool(rec["trainable"])
    layers = model.layers_in_order()
    for li, key in meta["buffers"]:
        if not isinstance(li, int) or not 0 <= li < len(layers) or \
                f"buffer/{li}/{key}" not in arrays:
            raise CorruptFileError(f"corenet.load: buffer {key!r} of layer {li} is invalid")
        try:
            layers[li].load_buffers({key: arrays[f"buffer/{li}/{key}"]})
        except (KeyError, ValueError) as exc:
            raise CorruptFileError(f"corenet.load: {exc}") from None


def load_model(path):
    """Read a model written by :func:`save_model` (or the model inside a checkpoint)."""
    meta, arrays = _read(path, "corenet-model")
    _check_components(meta)
    model = _build_model(meta["model"])
    restore_arrays(model, meta, arrays)
    return model


# ----------------------------------------------------------------------------- checkpoints
def _rng_state(rng):
    return rng.bit_generator.state if rng is not None else None


def _set_rng_state(rng, state):
    if rng is not None and state is not None:
        rng.bit_generator.state = state


def save_checkpoint(path, trainer, epoch: int, extra: dict | None = None) -> None:
    """Write model + optimizer state + schedule + RNG states + history + epoch atomically,
    so a run resumed from it finishes bit-identically to an uninterrupted one."""
    model = trainer.model
    meta, arrays = model_arrays(model)
    meta["format"] = "corenet-checkpoint"
    opt = trainer.optimizer.state_dict()
    opt_json = {"param_groups": opt["param_groups"], "iterations": opt["iterations"],
                "scalars": {}}
    for i, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[f"opt/{i}/{key}"] = value
            else:
                opt_json["scalars"].setdefault(str(i), {})[key] = value
    meta["optimizer"] = {"name": trainer.optimizer.name, **opt_json}
    meta["scheduler"] = trainer.scheduler.state_dict() if trainer.scheduler else None
    meta["rng"] = {"trainer": _rng_state(trainer.rng), "model": _rng_state(model.rng),
                   "layers": [_rng_state(layer.rng) for layer in model.layers_in_order()]}
    meta["history"] = trainer.history.to_dict()
    meta["epoch"] = int(epoch)
    meta["extra"] = extra or {}
    arrays[_META] = _encode(meta)
    _atomic_savez(path, arrays)


def load_checkpoint(path) -> dict:
    """Read a checkpoint: ``{"model", "optimizer_state", "scheduler_state", "rng",
    "history", "epoch", "extra"}`` (the model rebuilt with its parameters)."""
    meta, arrays = _read(path, "corenet-checkpoint")
    _check_components(meta)
    model = _build_model(meta["model"])
    restore_arrays(model, meta, arrays)
    opt = meta.get("optimizer")
    if not isinstance(opt, dict):
        raise CorruptFileError("corenet.load_checkpoint: optimizer state missing")
    state: dict = {}
    for key, value in arrays.items():
        if key.startswith("opt/"):
            _, i, name = key.split("/", 2)
            state.setdefault(int(i), {})[name] = value
    for i, scalars in opt.get("scalars", {}).items():
        state.setdefault(int(i), {}).update(scalars)
    return {"model": model, "optimizer_name": opt.get("name"),
            "optimizer_state": {"state": state, "param_groups": opt["param_groups"],
                                "iterations": opt.get("iterations", 0)},
            "scheduler_state": meta.get("scheduler"), "rng": meta.get("rng") or {},
            "history": meta.get("history") or {}, "epoch": int(meta.get("epoch", -1)),
            "extra": meta.get("extra") or {}}


def restore_trainer(trainer, checkpoint: dict) -> int:
    """Put a checkpoint's parameters, optimizer, schedule, RNG states and history into
    ``trainer`` (whose model has the same architecture); returns the next epoch."""
    model, saved = trainer.model, checkpoint["model"]
    mine, theirs = model.parameters(), saved.parameters()
    if [p.shape for p in mine] != [p.shape for p in theirs]:
        raise CorruptFileError("resume: the checkpoint's model does not match this model")
    for p, q in zip(mine, theirs):
        p.data[...] = q.data
        p.mask = q.mask if q.masked else None
        p.trainable = q.trainable
    for layer, other in zip(model.layers_in_order(), saved.layers_in_order()):
        if other.buffers():
            layer.load_buffers(other.buffers())
    trainer._bind_optimizer()
    trainer.optimizer.load_state_dict(checkpoint["optimizer_state"])
    if trainer.scheduler is not None and checkpoint["scheduler_state"] is not None:
        trainer.scheduler.load_state_dict(checkpoint["scheduler_state"])
    rng = checkpoint["rng"]
    _set_rng_state(trainer.rng, rng.get("trainer"))
    _set_rng_state(model.rng, rng.get("model"))
    for layer, state in zip(model.layers_in_order(), rng.get("layers", [])):
        _set_rng_state(layer.rng, state)
    history = checkpoint["history"]
    trainer.history.batch_losses = list(history.get("batch_losses", []))
    trainer.history.epochs = [dict(e) for e in history.get("epochs", [])]
    return checkpoint["epoch"] + 1
