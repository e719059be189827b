"""``corenet prune``: prune a saved model and report before/after.

Wired into :mod:`corenet.cli` with :func:`add_prune_parser` (adds the subcommand and sets
``func=run_prune``). Examples::

    corenet prune model.npz --data mnist --method layerwise_obs --target-sparsity 0.9
    corenet prune net.npz --data monks --data-arg problem=3 --method obs --n-prune 39 \\
        --loss '{"name": "sse", "half": true}' --option gamma=null --max-accuracy-drop 0
    corenet prune net.npz --data data.npz --method magnitude --amount 0.3 --rounds 3 \\
        --retrain-epochs 5 -o pruned.npz
    corenet prune net.npz --data xor --method unit --n-units 1 --compact

``--data`` is a built-in data set (``mnist``: the bundled 8000/2000 split, pruning on
the 8000; ``monks``: MONK-``problem`` training set, test on the 432 robots; any other
registered ``dataset`` name: its ``load(**--data-arg)``) or an ``.npz`` file with
arrays ``X`` and ``y`` (and optionally ``X_test``/``y_test``). Inputs are reshaped to
the model's input shape when the sizes agree. The loss defaults to ``cross_entropy``
for a model ending in softmax and ``mse`` otherwise. The pruned model (masks included)
is saved to ``--output`` (default ``<model>-pruned.npz``).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def _value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pair(text):
    if "=" not in text:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), _value(value)


def add_prune_parser(subparsers):
    """Add the ``prune`` subcommand to an ``argparse`` sub-parser collection."""
    from . import registry

    p = subparsers.add_parser(
        "prune", help="prune a saved model (magnitude, OBD, OBS, layer-wise OBS, units)",
        description="Load a model saved with model.save, prune it with a registered pruner "
        "(pruning.md), optionally retrain, save it and print a before/after report.")
    p.add_argument("model", help="saved model (.npz written by model.save)")
    p.add_argument("--data", required=True, metavar="NAME|FILE.npz",
                   help="built-in data set (mnist, monks, xor, ...) or an .npz with X, y "
                   "(optionally X_test, y_test)")
    p.add_argument("--data-arg", action="append", type=_pair, default=[], metavar="K=V",
                   help="keyword argument of the data set's load (repeatable), e.g. "
                   "problem=2")
    p.add_argument("--method", default="obd", choices=registry.names("pruner"),
                   help="pruner (default obd)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--amount", type=float, help="fraction of unpruned weights per round")
    target.add_argument("--n-prune", type=int, help="weights to prune in total")
    target.add_argument("--target-sparsity", type=float,
                        help="fraction of prunable weights pruned at the end")
    target.add_argument("--target-weights", type=int, help="prunable weights left at the end")
    p.add_argument("--n-units", type=int, help="units per round (method unit)")
    p.add_argument("--rounds", type=int, default=1, help="prune/retrain rounds (default 1)")
    p.add_argument("--retrain-epochs", type=int, default=0,
                   help="epochs of retraining after each round (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="retraining batch size")
    p.add_argument("--optimizer", default="sgd", type=_value,
                   help="retraining optimizer: a name or a JSON object (default sgd)")
    p.add_argument("--lr", type=float, help="retraining learning rate")
    p.add_argument("--loss", type=_value,
                   help="loss: a name or a JSON object such as '{\"name\": \"sse\", "
                   "\"half\": true}' (default: cross_entropy after softmax, else mse)")
    p.add_argument("--max-loss-increase", type=float, metavar="R",
                   help="stop (and undo the round) when the loss rises by more than R "
                   "(relative)")
    p.add_argument("--max-accuracy-drop", type=float, metavar="D",
                   help="stop (and undo) when the accuracy drops by more than D")
    p.add_argument("--prune-biases", action="store_true", help="biases are candidates too")
    p.add_argument("--option", action="append", type=_pair, default=[], metavar="K=V",
                   help="any other pruner option, JSON values (repeatable), e.g. "
                   "hessian=exact, gamma=null, algorithm=sequential")
    p.add_argument("--compact", action="store_true",
                   help="physically remove dead units before saving (Sequential models)")
    p.add_argument("--output", "-o", help="where to save (default <model>-pruned.npz)")
    p.add_argument("--seed", type=int, default=0, help="retraining seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_prune)
    return p


def _fit_shape(X, model):
    shape = tuple(model.input_shape)
    X = np.asarray(X, dtype=model.dtype)
    if X.shape[1:] != shape and int(np.prod(X.shape[1:])) == int(np.prod(shape)):
        X = X.reshape((X.shape[0],) + shape)
    return np.ascontiguousarray(X)


def load_data(name, kwargs, model):
    """``(X, y, test)`` for ``--data`` (``test`` = ``(X_test, y_test)`` or None)."""
    from . import registry

    test = None
    if name.endswith(".npz") or os.path.exists(name):
        with np.load(name, allow_pickle=False) as f:
            missing = {"X", "y"} - set(f.files)
            if missing:
                raise KeyError(f"corenet prune: {name} lacks array(s) {sorted(missing)}; it "
                               f"has {sorted(f.files)}")
            X, y = f["X"], f["y"]
            if "X_test" in f.files and "y_test" in f.files:
                test = (f["X_test"], f["y_test"])
    elif name == "mnist":
        from .datasets import mnist_split

        X, y, Xt, yt = mnist_split(**kwargs)
        test = (Xt, yt)
    elif name == "monks":
        from .datasets import monks_split

        X, y, Xt, yt = monks_split(**kwargs)
        test = (Xt, yt.astype(float))
        y = y.astype(float)
    else:
        X, y = registry.get("dataset", name).load(**kwargs)
    X = _fit_shape(X, model)
    if test is not None:
        test = (_fit_shape(test[0], model), test[1])
    return X, y, test


def _report_extras(model, loss, test):
    if test is None:
        return None
    from .trainer import evaluate_model

    return evaluate_model(model, test[0], test[1], loss=loss, metrics=["accuracy"])


def run_prune(args) -> int:
    """Run ``corenet prune`` with parsed ``args``; returns the exit status."""
    from . import registry
    from .io import load_model
    from .pruners import compact, sparsity_summary

    if not os.path.exists(args.model):
        print(f"corenet prune: error: no such model file {args.model!r}", file=sys.stderr)
        return 1
    model = load_model(args.model)
    X, y, test = load_data(args.data, dict(args.data_arg), model)
    loss = args.loss or ("cross_entropy" if model.output_activation == "softmax" else "mse")
    optimizer = args.optimizer if isinstance(args.optimizer, dict) else {"name": args.optimizer}
    if args.lr is not None:
        optimizer = {**optimizer, "lr": args.lr}
    model.compile(loss=loss, optimizer=optimizer, metrics=["accuracy"])
    options = {"rounds": args.rounds, "retrain_epochs": args.retrain_epochs,
               "retrain_batch_size": args.batch_size, "random_state": args.seed,
               "max_loss_increase": args.max_loss_increase,
               "max_accuracy_drop": args.max_accuracy_drop, "prune_biases": args.prune_biases}
    for key in ("amount", "n_prune", "target_sparsity", "target_weights", "n_units"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    options.update(dict(args.option))
    pruner = registry.get("pruner", args.method)(**options)
    params_before = model.n_parameters()
    test_before = _report_extras(model, model.loss, test)
    t0 = time.perf_counter()
    report = pruner.prune(model, X, y)
    if args.compact:
        model = compact(model)
    seconds = time.perf_counter() - t0
    test_after = _report_extras(model, model.loss, test)
    if test_before is not None:
        report["test_accuracy_before"] = test_before["accuracy"]
        report["test_accuracy_after"] = test_after["accuracy"]
        report["test_loss_before"], report["test_loss_after"] = test_before["loss"], \
            test_after["loss"]
    report["parameters_before"], report["parameters_after"] = params_before, \
        model.n_parameters()
    report["seconds"] = seconds
    output = args.output or os.path.splitext(args.model)[0] + "-pruned.npz"
    model.save(output)
    report["output"] = output
    if args.json:
        out = {k: v for k, v in report.items() if k != "records"}
        out["sparsity"] = sparsity_summary(model, args.prune_biases)
        print(json.dumps(out, indent=2, default=float))
        return 0
    print(report.summary())
    print(f"  {'parameters':<14}{params_before:>14,}{model.n_parameters():>14,}")
    print(f"saved to {output}")
    return 0
