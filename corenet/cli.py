"""The ``corenet`` console script (argparse; ``--help`` on every command).

Subcommands
-----------
``corenet train CONFIG``
    Train the model of a TOML run configuration (:mod:`corenet.config_file`) with a
    progress bar; write the model, ``history.json``/``.csv`` and learning-curve plots.
``corenet evaluate MODEL`` / ``corenet predict MODEL INPUT`` / ``corenet summary MODEL``
    Use a saved model (:mod:`corenet.cli_train`).
``corenet prune`` / ``corenet grow``
    Pruning (:mod:`corenet.prune_cli`) and cascade-correlation (:mod:`corenet.grow_cli`).
``corenet plugins [--category C] [--json]``
    Every registered component: category, name, class, providing distribution, version.
``corenet bench``
    A quick built-in throughput check, or ``--script NAME`` for ``benchmarks/bench_NAME.py``
    (:mod:`corenet.cli_bench`).
``corenet demo [--quick]``
    The main job of the README: MLP and LeNet-5 on the bundled MNIST split, pruning,
    cascade-correlation on two-spirals, one report (:mod:`corenet.cli_demo`).

``corenet --version`` prints the installed version. ``main(argv)`` returns the exit
status (0 on success, 1 on an error — a corenet error, a bad value, a missing file:
printed as one ``corenet: error: ...`` line, with the traceback when the environment
variable ``CORENET_TRACEBACK`` is set —, 2 on a usage error) so it can be called from
tests; the console script passes it to ``sys.exit``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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


# ------------------------------------------------------------------------------ parser
def _add_prune(sub) -> None:
    """``corenet prune`` from :mod:`corenet.prune_cli` (owned by the pruning work)."""
    from importlib.util import find_spec

    if find_spec("corenet.prune_cli") is None:  # PLACEHOLDER until corenet/prune_cli.py exists
        p = sub.add_parser("prune", help="prune a trained model (not available in this build)",
                           description="Pruning from the command line needs "
                           "corenet/prune_cli.py, which this build does not have.")
        p.set_defaults(func=_missing("prune", "corenet/prune_cli.py"))
        return
    from .prune_cli import add_prune_parser

    add_prune_parser(sub)


def _missing(command, module):
    def run(args) -> int:
        print(f"corenet: error: 'corenet {command}' is not available in this build "
              f"({module} is missing)", file=sys.stderr)
        return 1
    return run


def build_parser() -> argparse.ArgumentParser:
    from .cli_bench import add_bench_parser
    from .cli_demo import add_demo_parser
    from .cli_train import add_parsers
    from .grow_cli import add_grow_parser

    parser = argparse.ArgumentParser(
        prog="corenet", description="corenet: neural networks with Cython kernels and "
        "pluggy plugins. Run 'corenet COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"corenet {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_parsers(sub)  # train, evaluate, predict, summary
    _add_prune(sub)
    add_grow_parser(sub)

    p = sub.add_parser("plugins", help="list every registered component and its plugin",
                       description="List every registered component: kind (category), "
                       "name, class, providing distribution and version.")
    p.add_argument("--category", "-c", metavar="KIND", choices=sorted(CATEGORIES),
                   help="only this category: " + ", ".join(sorted(CATEGORIES)))
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_plugins)

    add_bench_parser(sub)
    add_demo_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    for option in ("epochs", "lenet_epochs"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    from .errors import CorenetError

    try:
        return args.func(args)
    except (CorenetError, OSError, ValueError) as exc:
        if os.environ.get("CORENET_TRACEBACK"):
            raise
        print(f"corenet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
