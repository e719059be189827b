"""``corenet train / evaluate / predict / summary``: working with run configurations
(:mod:`corenet.config_file`) and saved models (:mod:`corenet.io`).

``corenet train CONFIG`` writes into the output directory (``--out``, else
``[output] directory``, else ``runs/<config name>``):

``model.npz``            the trained model (``corenet.load``)
``config.toml``          a copy of the configuration (``evaluate``/``predict`` find it)
``run.json``             where the configuration came from (its data paths), seed, epochs
``history.json``         mini-batch losses, per-epoch logs, test results, timing
``history.csv``          one row per epoch
``learning_curves.png``  loss and metrics per epoch (when matplotlib is installed)
``<grower>_growth.png``  error against hidden units, when a grower installed units
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time

import numpy as np


# ------------------------------------------------------------------------- helpers
def _load_config(path):
    """A configuration; a copy in a run directory reads its data paths relative to the
    original file's directory (recorded in ``run.json`` by ``corenet train``)."""
    from .config_file import load

    base_dir = None
    run = os.path.join(os.path.dirname(os.path.abspath(path)), "run.json")
    if os.path.basename(path) == "config.toml" and os.path.exists(run):
        with open(run, encoding="utf-8") as fh:
            base_dir = json.load(fh).get("config_dir")
    return load(path, base_dir=base_dir)


def _model_and_config(path, config=None):
    """A saved model and the configuration next to it (or given)."""
    from .io import load_model

    if os.path.isdir(path):
        name = "model.npz"
        if os.path.exists(os.path.join(path, "run.json")):
            with open(os.path.join(path, "run.json"), encoding="utf-8") as fh:
                name = json.load(fh).get("model", name)
        path = os.path.join(path, name)
    model = load_model(path)
    cfg_path = config or os.path.join(os.path.dirname(os.path.abspath(path)), "config.toml")
    cfg = _load_config(cfg_path) if (config or os.path.exists(cfg_path)) else None
    return model, cfg


def write_history_csv(history, path) -> None:
    """One row per epoch; columns are the union of the epoch log keys."""
    columns = []
    for log in history.epochs:
        columns += [k for k in log if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for log in history.epochs:
            writer.writerow({k: log.get(k, "") for k in columns})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _fmt(logs: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in logs.items())


# ------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from . import plots
    from .config_data import describe

    cfg = _load_config(args.config)
    epochs = args.epochs or cfg.epochs
    stem = os.path.splitext(os.path.basename(args.config))[0]
    out = args.out or cfg.output_dir or os.path.join("runs", stem)
    seed = cfg.seed if args.seed is None else args.seed
    if args.seed is not None:
        cfg.seed = seed
    X, y, X_test, y_test = cfg.load_data()
    model = cfg.build_model(X.shape[1:])
    print(f"{cfg.description or stem}: {describe(cfg)}; {X.shape[0]} training"
          + (f", {X_test.shape[0]} test" if X_test is not None else "")
          + f" samples; {model.n_parameters():,} parameters; {_plural(epochs, 'epoch')}; "
          f"seed {seed}")
    if args.dry_run:
        print(model.summary())
        return 0
    os.makedirs(out, exist_ok=True)
    callbacks = cfg.build_callbacks(out)
    t0 = time.perf_counter()
    history = model.fit(X, y, epochs=epochs, batch_size=cfg.batch_size,
                        validation_split=cfg.validation_split, shuffle=cfg.shuffle,
                        drop_last=cfg.drop_last, callbacks=callbacks,
                        random_state=seed, verbose=not args.quiet, fast_path=cfg.fast_path)
    seconds = time.perf_counter() - t0
    model_path = os.path.join(out, cfg.model_file)
    model.save(model_path)
    if os.path.abspath(args.config) != os.path.abspath(os.path.join(out, "config.toml")):
        shutil.copyfile(args.config, os.path.join(out, "config.toml"))
        with open(os.path.join(out, "run.json"), "w", encoding="utf-8") as fh:
            json.dump({"config": os.path.abspath(args.config), "config_dir": cfg.base_dir,
                       "seed": seed, "epochs": epochs, "model": cfg.model_file}, fh,
                      indent=1)
    last = {k: v for k, v in history.epochs[-1].items() if k != "epoch"}
    print(f"trained {_plural(len(history), 'epoch')} in {seconds:.2f} s: {_fmt(last)}")
    train = model.evaluate(X, y)
    print(f"training set: {_fmt(train)}")
    test = model.evaluate(X_test, y_test) if X_test is not None else None
    if test is not None:
        print(f"test set: {_fmt(test)}")
    written = [model_path]
    if cfg.history:
        record = {**history.to_dict(), "train": train, "test": test, "fit_seconds": seconds,
                  "epochs_requested": epochs, "seed": seed, "config": os.path.abspath(
                      args.config)}
        with open(os.path.join(out, "history.json"), "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
        write_history_csv(history, os.path.join(out, "history.csv"))
        written += [os.path.join(out, "history.json"), os.path.join(out, "history.csv")]
    if cfg.plots and not args.no_plots:
        try:
            written.append(plots.learning_curves(history, os.path.join(
                out, "learning_curves.png"), title=cfg.description or stem))
            for cb in callbacks:  # a grower's record of the units it installed
                units = getattr(getattr(cb, "history", None), "units", None)
                if units:
                    written.append(plots.cascade_growth(cb.history, os.path.join(
                        out, f"{cb.name}_growth.png"), title=cfg.description or stem))
        except ImportError as exc:
            print(f"plots skipped: {exc}", file=sys.stderr)
    print("wrote " + ", ".join(written))
    return 0


# ------------------------------------------------------------------------- evaluate
def _data_from_option(spec, cfg):
    """``--data NAME|PATH`` -> (X, y) without normalisation."""
    from .config_data import load_source
    from .config_file import from_dict

    key = "path" if spec.lower().endswith((".npz", ".csv")) else "name"
    base = {"data": {key: spec}, "model": {"layers": ["flatten"]}}
    tmp = from_dict(base, source="--data", base_dir=os.getcwd())
    if cfg is not None:  # keep the reading options of the configuration
        d = cfg.data
        tmp.data.x_key, tmp.data.y_key = d.x_key, d.y_key
        tmp.data.target_column, tmp.data.header = d.target_column, d.header
        tmp.data.delimiter, tmp.data.target_dtype = d.delimiter, d.target_dtype
        tmp.data.flatten = d.flatten
    X, y = load_source(tmp, name=tmp.data.name, path=tmp.data.path, where="--data")
    if tmp.data.flatten:
        X = X.reshape(X.shape[0], -1)
    return _normalize(X, cfg), y


def _normalize(X, cfg):
    """Apply the configuration's normalizer (fitted on its training inputs) to ``X``."""
    if cfg is None or cfg.data.normalize is None:
        return X
    from .config_data import load_data

    norm = load_data(cfg, return_normalizer=True)[-1]
    return np.ascontiguousarray(norm.transform(X))


def cmd_evaluate(args) -> int:
    from .config_file import ConfigError, parse_component

    model, cfg = _model_and_config(args.model, args.config)
    if args.data:
        X, y = _data_from_option(args.data, cfg)
        split = args.data
    elif cfg is not None:
        X_tr, y_tr, X_te, y_te = cfg.load_data()
        split = args.split if args.split != "auto" else ("test" if X_te is not None
                                                         else "train")
        if split == "test" and X_te is None:
            raise ConfigError(f"config {cfg.source}: has no test set (set data.test_split "
                              f"or data.test_path), use --split train")
        X, y = (X_te, y_te) if split == "test" else (X_tr, y_tr)
    else:
        raise ConfigError("corenet evaluate: no data: give --data NAME|PATH or --config "
                          "CONFIG (or keep config.toml next to the model)")
    loss = args.loss or (cfg.loss.spec() if cfg is not None else None)
    if args.metrics:
        metrics = args.metrics
    elif cfg is not None and cfg.metrics:
        metrics = [m.spec() for m in cfg.metrics]
    else:
        metrics = ["accuracy"] if np.asarray(y).dtype.kind in "iu" else []
    if isinstance(loss, str):
        loss = parse_component("loss", loss, "--loss").create()
    metrics = [parse_component("metric", m, "--metric").create() if isinstance(m, str)
               else m for m in metrics]
    if loss is None and not metrics:
        raise ConfigError("corenet evaluate: nothing to compute: give --loss or --metric")
    from .trainer import evaluate_model

    result = evaluate_model(model, X, y, loss=loss, metrics=metrics)
    if args.json:
        print(json.dumps({"data": split, "samples": int(X.shape[0]), **result}, indent=2))
    else:
        print(f"{split}: {X.shape[0]} samples: {_fmt(result)}")
    return 0


# ------------------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    from .config_data import read_inputs

    model, cfg = _model_and_config(args.model, args.config)
    X = read_inputs(args.input, key=args.key)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if cfg is not None and cfg.data.flatten:
        X = X.reshape(X.shape[0], -1)
    X = _normalize(X, cfg)
    if model.input_shape is not None and X.shape[1:] != tuple(model.input_shape) and \
            int(np.prod(X.shape[1:])) == int(np.prod(model.input_shape)):
        X = X.reshape((X.shape[0],) + tuple(model.input_shape))
    out = model.predict_classes(X) if args.classes else model.predict(X)
    if args.output:
        low = args.output.lower()
        if low.endswith(".npy"):
            np.save(args.output, out, allow_pickle=False)
        elif low.endswith(".npz"):
            np.savez(args.output, y=out)
        elif low.endswith(".csv"):
            np.savetxt(args.output, out.reshape(out.shape[0], -1), delimiter=",",
                       fmt="%d" if args.classes else "%.9g")
        else:
            from .config_file import ConfigError

            raise ConfigError(f"corenet predict: --output must end in .npy, .npz or .csv, "
                              f"got {args.output!r}")
        print(f"wrote {out.shape[0]} predictions of shape {out.shape[1:]} to {args.output}")
    else:
        for row in out.reshape(out.shape[0], -1):
            print(",".join(str(int(v)) if args.classes else f"{v:.6g}" for v in row))
    return 0


# ------------------------------------------------------------------------- summary
def cmd_summary(args) -> int:
    path = args.model
    if path.lower().endswith(".toml"):
        cfg = _load_config(path)
        shape = cfg.input_shape
        if shape is None:
            X = cfg.load_data()[0]
            shape = X.shape[1:]
        model = cfg.build_model(shape, compile=False)
    else:
        model = _model_and_config(path)[0]
    print(model.summary())
    return 0


# ------------------------------------------------------------------------- parsers
def add_parsers(sub) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``summary`` to a sub-parser set."""
    t = sub.add_parser("train", help="train a model described by a TOML config file",
                       description="Train the model of a TOML configuration (see "
                       "examples/ and docs/config.md) with a progress bar; write the model, "
                       "history.json/.csv and learning_curves.png to the output directory.")
    t.add_argument("config", metavar="CONFIG", help="a TOML run configuration")
    t.add_argument("--out", "-o", metavar="DIR",
                   help="output directory (default: [output] directory, else runs/<name>)")
    t.add_argument("--epochs", type=int, metavar="E", help="override train.epochs")
    t.add_argument("--seed", type=int, metavar="S", help="override the seed")
    t.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    t.add_argument("--dry-run", action="store_true",
                   help="validate the config, load the data, print the model and stop")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="loss and metrics of a saved model on data",
                       description="Evaluate a saved model (.npz, or a run directory) on "
                       "the test (or training) set of its configuration or on --data (a "
                       "built-in data set or a file, read and normalized as the "
                       "configuration says).")
    e.add_argument("model", metavar="MODEL", help="model .npz file or run directory")
    e.add_argument("--config", "-c", metavar="CONFIG",
                   help="run configuration (default: config.toml next to the model)")
    e.add_argument("--data", "-d", metavar="SOURCE",
                   help="a built-in data set name or an .npz/.csv file instead")
    e.add_argument("--split", choices=("auto", "test", "train"), default="auto",
                   help="which part of the configured data (default: test if any)")
    e.add_argument("--loss", metavar="NAME", help="loss (default: the config's)")
    e.add_argument("--metric", dest="metrics", action="append", metavar="NAME",
                   help="metric, repeatable (default: the config's, else accuracy for "
                   "integer labels)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="outputs of a saved model for new inputs",
                       description="Run a saved model on inputs from an .npz (array X), "
                       ".npy or .csv file; print CSV rows or write --output.")
    p.add_argument("model", metavar="MODEL", help="model .npz file or run directory")
    p.add_argument("input", metavar="INPUT", help="inputs: .npz, .npy or .csv")
    p.add_argument("--output", "-o", metavar="FILE", help="write .npy, .npz (y) or .csv")
    p.add_argument("--classes", action="store_true", help="predicted labels, not outputs")
    p.add_argument("--key", default="X", help="array name inside an .npz input (default X)")
    p.add_argument("--config", "-c", metavar="CONFIG",
                   help="run configuration whose normalizer/flatten settings apply to the "
                   "inputs (default: config.toml next to the model)")
    p.set_defaults(func=cmd_predict)

    s = sub.add_parser("summary", help="layers, shapes and parameter counts of a model",
                       description="Print the layer table of a saved model (.npz or run "
                       "directory) or of the model a TOML configuration describes.")
    s.add_argument("model", metavar="MODEL", help="model .npz, run directory or config .toml")
    s.set_defaults(func=cmd_summary)

