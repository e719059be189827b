"""The ``corenet`` console script.

Subcommands
-----------
``corenet plugins [--category C] [--json]``
    Every registered component: category, name, class, providing distribution, version.
``corenet demo [--epochs E] [--quick] [--seed S]``
    The main job of the README: train on the bundled MNIST split and report the test
    accuracy and the time taken.

``corenet --version`` prints the installed version. ``main(argv)`` returns the exit
status (0 on success, 1 on a corenet error, 2 on a usage error) so it can be called
from tests; the console script passes it to ``sys.exit``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata

from .registry import CATEGORIES


def _version() -> str:
    try:
        return metadata.version("corenet")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


# ------------------------------------------------------------------------------ plugins
def _plugin_rows(category: str | None) -> list[dict]:
    from . import registry

    return [{"category": e.category, "name": e.name,
             "class": f"{e.cls.__module__}.{e.cls.__qualname__}",
             "plugin": e.plugin, "distribution": e.distribution, "version": e.version}
            for e in registry.entries() if category is None or e.category == category]


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Left-aligned text table: ``columns`` lists (key, header) pairs."""
    cells = [[header for _, header in columns]]
    cells += [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_plugins(args) -> int:
    rows = _plugin_rows(args.category)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = [("category", "KIND"), ("name", "NAME"), ("class", "CLASS"),
               ("distribution", "DISTRIBUTION"), ("version", "VERSION")]
    print(format_table(rows, columns))
    dists = sorted({(r["distribution"], r["version"]) for r in rows})
    print(f"\n{len(rows)} components from "
          + ", ".join(f"{d} {v}".rstrip() for d, v in dists))
    return 0


# ------------------------------------------------------------------------------ demo
# The demo is a list of steps; each takes the loaded data (images (N, 1, 28, 28), labels
# (N,)) and the options, and returns a dict of results (with "test_accuracy") printed as
# one line. Later steps (a LeNet-style CNN, OBD/OBS pruning of the MLP,
# cascade-correlation growing) are appended to DEMO_STEPS.

def _load_mnist(args):
    """The fixed 8000/2000 split of the bundled images (the split does not depend on
    ``--seed``, which seeds initialisation and shuffling)."""
    from .datasets import mnist_split

    X_train, y_train, X_test, y_test = mnist_split()
    if args.quick:
        X_train, y_train = X_train[:2000], y_train[:2000]
        X_test, y_test = X_test[:1000], y_test[:1000]
    return X_train, y_train, X_test, y_test


def demo_mlp(data, args) -> dict:
    """MLP 784-256-128-10 (relu), softmax cross-entropy, SGD with Nesterov momentum 0.9,
    lr 0.1 with a cosine schedule over the run, batches of 64.

    Measured (8000/2000 split, 10 epochs; about 2-3 s of training on an idle 2-core
    machine): test accuracy 96.20 / 95.75 / 96.20 / 96.05 % for seeds 0 / 1 / 2 / 3.
    """
    import corenet

    X_train, y_train, X_test, y_test = data
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 10)
    dense = corenet.registry.get("layer", "dense")
    flatten = corenet.registry.get("layer", "flatten")
    model = corenet.Sequential([flatten(),
                                dense(out_features=256, activation="relu"),
                                dense(out_features=128, activation="relu"),
                                dense(out_features=10)], random_state=args.seed)
    model.compile(loss="cross_entropy",
                  optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
                  scheduler={"name": "cosine", "T": epochs},
                  metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=epochs, batch_size=64, random_state=args.seed,
              verbose=args.verbose)
    result = model.evaluate(X_test, y_test)
    return {"test_accuracy": result["accuracy"], "epochs": epochs,
            "parameters": model.n_parameters()}


DEMO_STEPS = [
    ("mlp", "MLP 784-256-128-10", demo_mlp),
    # ("cnn", "LeNet-style CNN", demo_cnn),          # convolution issue
    # ("prune", "OBD pruning of the MLP", demo_prune),  # pruning issue
    # ("grow", "cascade-correlation", demo_grow),      # growing issue
]


def cmd_demo(args) -> int:
    t0 = time.perf_counter()
    data = _load_mnist(args)
    print(f"MNIST (bundled split): {len(data[0])} training, {len(data[2])} test images"
          f"{' (--quick subset)' if args.quick else ''}; seed {args.seed}")
    for key, title, step in DEMO_STEPS:
        if args.steps and key not in args.steps:
            continue
        start = time.perf_counter()
        result = step(data, args)
        seconds = time.perf_counter() - start
        details = ", ".join(f"{k} {v}" for k, v in result.items() if k != "test_accuracy")
        print(f"[{key}] {title}: test accuracy {100 * result['test_accuracy']:.2f}% "
              f"({details}) in {seconds:.1f} s")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    return 0


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corenet", description="corenet: neural networks with Cython kernels and "
        "pluggy plugins.")
    parser.add_argument("--version", action="version", version=f"corenet {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list every registered component and its plugin",
                       description="List every registered component: kind (category), "
                       "name, class, providing distribution and version.")
    p.add_argument("--category", "-c", metavar="KIND", choices=sorted(CATEGORIES),
                   help="only this category: " + ", ".join(sorted(CATEGORIES)))
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_plugins)

    d = sub.add_parser("demo", help="train on the bundled MNIST split and report accuracy",
                       description="Train on the bundled MNIST split (8000 training / 2000 "
                       "test images) and print the test accuracy and the time taken.")
    d.add_argument("--epochs", type=int, metavar="E",
                   help="training epochs (default 10, or 3 with --quick)")
    d.add_argument("--quick", action="store_true",
                   help="a fast smoke run: 2000 training / 1000 test images, 3 epochs")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--step", dest="steps", action="append",
                   choices=[key for key, _, _ in DEMO_STEPS],
                   help="run only this step (repeatable; default: all)")
    d.add_argument("--verbose", "-v", action="store_true",
                   help="show a progress bar over epochs")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "epochs", None) is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    from .errors import CorenetError

    try:
        return args.func(args)
    except CorenetError as exc:
        print(f"corenet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
