"""``corenet grow``: grow a cascade-correlation network on a built-in data set.

Wired into :mod:`corenet.cli` with :func:`add_grow_parser` (adds the subcommand and sets
``func=run_grow``). Examples::

    corenet grow                                  # two-spirals, the "fast" preset
    corenet grow --preset spec --seed 3 -v        # Fahlman's reference settings
    corenet grow --dataset parity --bits 6 --preset spec
    corenet grow --candidates 16 --activations sin,cos,gaussian --save spirals.npz

Prints the outcome (status, hidden units, epochs, training points classified correctly,
time); ``--json`` prints the whole history instead; ``--save`` writes the model with
:func:`corenet.io.save_model`.
"""
from __future__ import annotations

import json
import time

import numpy as np

DATASETS = ("two_spirals", "xor", "parity")


def _floats(text):
    return [float(t) for t in text.split(",") if t.strip()]


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def add_grow_parser(subparsers):
    """Add the ``grow`` subcommand to an ``argparse`` sub-parser collection."""
    from .growers import PRESETS

    g = subparsers.add_parser(
        "grow", help="grow a cascade-correlation network on a built-in data set",
        description="Grow a cascade-correlation network (growing.md) on two-spirals, XOR "
        "or N-bit parity (±0.5 targets) and report hidden units, epochs and time.")
    g.add_argument("--dataset", choices=DATASETS, default="two_spirals",
                   help="training set (default two_spirals)")
    g.add_argument("--bits", type=int, default=4, metavar="N",
                   help="number of bits for --dataset parity (default 4)")
    g.add_argument("--preset", choices=sorted(PRESETS), default="fast",
                   help="settings: 'spec' = the spec's defaults (Fahlman's reference), "
                   "'fast' = the two-spirals benchmark settings (default)")
    g.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    g.add_argument("--max-units", type=int, metavar="M", help="max_hidden_units")
    g.add_argument("--candidates", type=int, metavar="P", help="candidate pool size")
    g.add_argument("--activations", type=_names, metavar="A,B",
                   help="candidate unit types, comma separated (e.g. sin,cos,tanh)")
    g.add_argument("--steepnesses", type=_floats, metavar="B1,B2",
                   help="candidate steepnesses, comma separated")
    g.add_argument("--save", metavar="PATH", help="save the grown model (.npz)")
    g.add_argument("--json", action="store_true", help="print the history as JSON")
    g.add_argument("--verbose", "-v", action="store_true",
                   help="print one line per output phase")
    g.set_defaults(func=run_grow)
    return g


def _data(args):
    from .datasets import parity, two_spirals, xor

    if args.dataset == "two_spirals":
        return two_spirals(targets="pm_half")
    if args.dataset == "xor":
        return xor(targets="pm_half")
    return parity(args.bits, targets="pm_half")


def run_grow(args) -> int:
    """Run ``corenet grow`` with parsed ``args``; returns the exit status."""
    from .growers import CascadeCorrelation

    overrides = {"random_state": args.seed, "verbose": bool(args.verbose and not args.json)}
    for key, value in (("max_hidden_units", args.max_units),
                       ("n_candidates", args.candidates),
                       ("candidate_activations", args.activations),
                       ("candidate_steepnesses", args.steepnesses)):
        if value is not None:
            overrides[key] = value
    X, y = _data(args)
    grower = CascadeCorrelation.from_preset(args.preset, **overrides)
    t0 = time.perf_counter()
    model = grower.fit(X, y)
    seconds = time.perf_counter() - t0
    correct = int(np.count_nonzero(np.sign(model.predict(X).ravel()) == np.sign(y)))
    hist = grower.history
    if args.save:
        from .io import save_model

        save_model(model, args.save)
    if args.json:
        print(json.dumps({**hist.to_dict(), "dataset": args.dataset, "preset": args.preset,
                          "seed": args.seed, "correct": correct, "patterns": len(y),
                          "fit_seconds": seconds}, indent=2))
        return 0
    name = args.dataset + (f" ({args.bits} bits)" if args.dataset == "parity" else "")
    print(f"cascade-correlation on {name}, preset {args.preset!r}, seed {args.seed}: "
          f"{hist.status}")
    print(f"hidden units {hist.hidden_units}, epochs {hist.epochs} (output + candidate), "
          f"{correct}/{len(y)} training points classified correctly, {seconds:.3f} s")
    if args.save:
        print(f"model saved to {args.save}")
    return 0
