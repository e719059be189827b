"""``corenet bench``: a quick built-in throughput check, or one of the benchmark scripts.

Without ``--script``, a built-in check that needs nothing but corenet: it times the
training step (forward, loss, backward, SGD with momentum; ``Trainer.train_step`` on
pre-made batches of random MNIST-shaped data) of

* the MLP 784-256-128-10 (relu, cross-entropy) at batch 64, float32 and float64;
* LeNet-5 (28×28 variant) at batch 64, float32, when ``corenet.models.lenet5`` exists;

each for about ``--seconds`` seconds after one warm-up step, and prints steps/s and
samples/s with the thread count (``corenet.get_num_threads()``).

``--script NAME`` runs ``benchmarks/bench_NAME.py`` from a source checkout (the scripts
are not installed with the package; ``--list`` shows them) with the arguments after
``--``, e.g. ``corenet bench --script mlp -- --quick``. Their results are the tables in
``benchmarks/RESULTS*.md`` (docs: Benchmarks).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np


def benchmarks_dir() -> str | None:
    """``benchmarks/`` of the source checkout this corenet is imported from, if any."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(here, "benchmarks")
    return path if os.path.isdir(path) else None


def scripts() -> list[str]:
    path = benchmarks_dir()
    if path is None:
        return []
    return sorted(f[len("bench_"):-3] for f in os.listdir(path)
                  if f.startswith("bench_") and f.endswith(".py"))


def _time_steps(model, loss, X, y, seconds: float) -> float:
    from .trainer import Trainer

    model.build(X.shape[1:])
    trainer = Trainer(model, loss=loss,
                      optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9})
    trainer._bind_optimizer()
    trainer.rng = np.random.default_rng(0)
    trainer.train_step(X, y)  # warm-up (compiles the fast path, allocates)
    n, start = 0, time.perf_counter()
    while True:
        trainer.train_step(X, y)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            return n / elapsed


def builtin(seconds: float = 1.0, batch: int = 64) -> list[dict]:
    """The built-in throughput rows (see the module docstring)."""
    import corenet
    from .config import get_num_threads

    rng = np.random.default_rng(0)
    rows = []
    cases = []
    for dtype in ("float32", "float64"):
        cases.append(("MLP 784-256-128-10", dtype, lambda d=dtype: corenet.Sequential(
            [{"name": "dense", "out_features": 256, "activation": "relu"},
             {"name": "dense", "out_features": 128, "activation": "relu"},
             {"name": "dense", "out_features": 10}], dtype=d, random_state=0), (784,)))
    try:
        from .models import lenet5
    except ImportError:
        lenet5 = None
    if lenet5 is not None:
        cases.append(("LeNet-5 28x28", "float32", lambda: lenet5(
            input_size=28, activation="relu", dtype="float32", random_state=0), (1, 28, 28)))
    for title, dtype, make, shape in cases:
        X = rng.random((batch,) + shape).astype(dtype)
        y = rng.integers(0, 10, batch)
        rate = _time_steps(make(), "cross_entropy", X, y, seconds)
        rows.append({"model": title, "dtype": dtype, "batch": batch,
                     "threads": get_num_threads(), "steps_per_s": rate,
                     "samples_per_s": rate * batch})
    return rows


def cmd_bench(args) -> int:
    if args.list:
        found = scripts()
        print("\n".join(found) if found else "no benchmarks/ directory next to this corenet "
              "(the scripts are in the source repository, not in the installed package)")
        return 0
    if args.script:
        path = benchmarks_dir()
        script = os.path.join(path, f"bench_{args.script}.py") if path else None
        if script is None or not os.path.exists(script):
            from .errors import CorenetError

            found = ", ".join(scripts()) or "(none: run from a source checkout)"
            raise CorenetError(f"corenet bench: no benchmark script {args.script!r}; "
                               f"available: {found}")
        extra = [a for a in args.args if a != "--"]
        return subprocess.call([sys.executable, script, *extra])
    from .cli import format_table

    rows = builtin(args.seconds, args.batch)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [{**r, "steps_per_s": f"{r['steps_per_s']:,.1f}",
              "samples_per_s": f"{r['samples_per_s']:,.0f}"} for r in rows]
    print(format_table(table, [("model", "MODEL"), ("dtype", "DTYPE"), ("batch", "BATCH"),
                               ("threads", "THREADS"), ("steps_per_s", "STEPS/S"),
                               ("samples_per_s", "SAMPLES/S")]))
    print("\none step = forward + cross-entropy + backward + SGD (momentum 0.9) on random "
          "MNIST-shaped data; see benchmarks/ (corenet bench --list) for comparisons")
    return 0


def add_bench_parser(sub):
    b = sub.add_parser("bench", help="quick built-in throughput check, or a benchmark script",
                       description="Without --script: time the training step of an MLP "
                       "(float32, float64) and LeNet-5 (float32) at batch 64 on random data "
                       "(built in, about 1 s per model). With --script NAME: run "
                       "benchmarks/bench_NAME.py of a source checkout with the arguments "
                       "after --.")
    b.add_argument("--script", metavar="NAME", help="run benchmarks/bench_NAME.py")
    b.add_argument("--list", action="store_true", help="list the benchmark scripts")
    b.add_argument("--seconds", type=float, default=1.0, metavar="T",
                   help="timing budget per model for the built-in check (default 1)")
    b.add_argument("--batch", type=int, default=64, metavar="B",
                   help="batch size for the built-in check (default 64)")
    b.add_argument("--json", action="store_true", help="print JSON rows")
    b.add_argument("args", nargs="*", metavar="-- ARGS",
                   help="arguments passed to the script (after --)")
    b.set_defaults(func=cmd_bench)
    return b
