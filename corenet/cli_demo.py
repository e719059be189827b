"""``corenet demo``: the README's main job in one command, one report.

Steps (``--step`` selects some; the report lists every step that ran):

``mlp``     MLP 784-256-128-10 (relu) on the bundled MNIST split (8,000 / 2,000).
``lenet5``  LeNet-5 on the same split via :func:`corenet.models.train_lenet5_mnist`.
``prune``   the trained MLP pruned to 10 % of its weights by magnitude and by Optimal
            Brain Damage (one retraining epoch each), and a 4-bit-parity 4-8-1 network
            pruned by Optimal Brain Surgeon for as long as it stays 100 % correct
            (:mod:`corenet.pruners`).
``grow``    cascade-correlation on two-spirals (:mod:`corenet.growers`, the ``fast``
            preset): hidden units grown until every training point is correct.

The report gives, per model, the unmasked parameters (weights and biases that are not
pruned), the hidden units (dense units and convolution channels of every layer but the
output one; alive units after pruning; installed units of a cascade), the accuracy
(on the 2,000 MNIST test images, else on the training patterns) and the time.
``--quick`` (used by the tests) trains on 2,000 images for fewer epochs.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Row:
    step: str
    model: str
    weights: int
    units: int | None
    accuracy: float
    on: str
    seconds: float
    note: str = ""


@dataclass
class Context:
    args: object
    data: tuple | None = None
    mlp: object = None
    rows: list = field(default_factory=list)

    def mnist(self):
        """The fixed 8000/2000 split (2000/1000 with --quick); independent of --seed."""
        if self.data is None:
            from .datasets import mnist_split

            X_train, y_train, X_test, y_test = mnist_split()
            if self.args.quick:
                X_train, y_train = X_train[:2000], y_train[:2000]
                X_test, y_test = X_test[:1000], y_test[:1000]
            self.data = (X_train, y_train, X_test, y_test)
        return self.data


# ------------------------------------------------------------------------- counting
def unmasked_parameters(model) -> int:
    return sum(p.count_nonzero_weights() for p in model.parameters())


def hidden_units(model) -> int:
    """Dense units and convolution channels of every parametric layer but the last
    (units of a dense layer count only while some unmasked weight leaves them), plus the
    installed units of a cascade layer."""
    layers = [lay for lay in model.layers_in_order() if lay.parameters()]
    total = 0
    for i, layer in enumerate(layers):
        if hasattr(layer, "n_hidden"):
            total += int(layer.n_hidden)
            continue
        if i == len(layers) - 1:
            continue
        config = layer.get_config()
        size = config.get("out_features", config.get("out_channels"))
        if size is None:
            continue
        nxt = layers[i + 1]
        w = [p for p in nxt.parameters() if p.role == "weight"]
        if layer.name == "dense" and nxt.name == "dense" and w and w[0].masked:
            total += int(np.count_nonzero(w[0].mask.any(axis=0)))
        else:
            total += int(size)
    return total


# ------------------------------------------------------------------------- steps
def _train_mlp(ctx: Context):
    import corenet

    args = ctx.args
    X_train, y_train, X_test, y_test = ctx.mnist()
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 10)
    model = corenet.Sequential([{"name": "flatten"},
                                {"name": "dense", "out_features": 256, "activation": "relu"},
                                {"name": "dense", "out_features": 128, "activation": "relu"},
                                {"name": "dense", "out_features": 10}],
                               random_state=args.seed)
    model.compile(loss="cross_entropy",
                  optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
                  scheduler={"name": "cosine", "T": epochs}, metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=epochs, batch_size=64, random_state=args.seed,
              verbose=args.verbose)
    ctx.mlp = model
    return model, epochs


def step_mlp(ctx: Context) -> str:
    """MLP 784-256-128-10 (relu), softmax cross-entropy, SGD with Nesterov momentum 0.9,
    lr 0.1 with a cosine schedule over the run, batches of 64.

    Measured (8000/2000 split, 10 epochs; about 2-3 s of training on an idle 2-core
    machine): test accuracy 96.20 / 95.75 / 96.20 / 96.05 % for seeds 0 / 1 / 2 / 3.
    """
    t0 = time.perf_counter()
    model, epochs = _train_mlp(ctx)
    acc = model.evaluate(*ctx.mnist()[2:])["accuracy"]
    ctx.rows.append(Row("mlp", "MLP 784-256-128-10", unmasked_parameters(model),
                        hidden_units(model), acc, "test", time.perf_counter() - t0,
                        f"{epochs} epoch{'' if epochs == 1 else 's'}"))
    return (f"test accuracy {100 * acc:.2f}% ({epochs} epoch{'' if epochs == 1 else 's'}, "
            f"{model.n_parameters():,} parameters)")


def step_lenet5(ctx: Context) -> str:
    """LeNet-5 (28×28 variant) via ``corenet.models.train_lenet5_mnist`` (Adam, cosine,
    float32, always the full 8,000-image training split) for its default number of
    epochs; 1 epoch with ``--quick``."""
    try:
        from .models import train_lenet5_mnist
    except ImportError:
        return "skipped: corenet.models.train_lenet5_mnist is not available"
    import inspect

    args = ctx.args
    default = inspect.signature(train_lenet5_mnist).parameters["epochs"].default
    epochs = args.lenet_epochs if args.lenet_epochs is not None else (1 if args.quick
                                                                      else default)
    t0 = time.perf_counter()
    model, acc, _ = train_lenet5_mnist(epochs=epochs, seed=args.seed, verbose=args.verbose)
    ctx.rows.append(Row("lenet5", "LeNet-5 (conv, 28x28 MNIST)", unmasked_parameters(model),
                        hidden_units(model), float(acc), "test", time.perf_counter() - t0,
                        f"{epochs} epoch{'' if epochs == 1 else 's'}"))
    return (f"test accuracy {100 * acc:.2f}% ({epochs} epoch{'' if epochs == 1 else 's'}, "
            f"{model.n_parameters():,} parameters)")


def _copy(model):
    import corenet

    clone = corenet.Sequential.from_config(model.get_config())
    clone.set_flat_parameters(model.get_flat_parameters())
    for p, q in zip(model.parameters(), clone.parameters()):
        if p.masked:
            q.mask = p.mask.copy()
    return clone


def _parity_obs(ctx: Context) -> Row:
    import corenet
    from .datasets import parity

    t0 = time.perf_counter()
    X, y = parity(4, inputs="pm1")
    net = corenet.Sequential([{"name": "dense", "out_features": 8, "activation": "tanh"},
                              {"name": "dense", "out_features": 1, "activation": "tanh"}],
                             random_state=ctx.args.seed)
    net.compile(loss="mse", optimizer="levenberg_marquardt", metrics=["accuracy"])
    net.fit(X, y, epochs=100, batch_size=16, random_state=ctx.args.seed)
    before = unmasked_parameters(net)
    pruner = corenet.registry.get("pruner", "obs")(target_sparsity=0.95, max_accuracy_drop=0.0,
                                                   retrain_epochs=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner.prune(net, X, y)
    acc = net.evaluate(X, y)["accuracy"]
    return Row("prune", "parity-4 net 4-8-1, OBS", unmasked_parameters(net),
               hidden_units(net), acc, "train", time.perf_counter() - t0,
               f"from {before} parameters; stopped: {pruner.report['stopped']}")


def step_prune(ctx: Context) -> str:
    """Magnitude pruning and OBD of the trained MLP to 10 % of its prunable weights
    (one retraining epoch each), and OBS of a small parity network."""
    from . import registry

    if not {"magnitude", "obd", "obs"} <= set(registry.names("pruner")):
        return "skipped: the pruners magnitude/obd/obs are not registered"
    if ctx.mlp is None:
        _train_mlp(ctx)
    X_train, y_train, X_test, y_test = ctx.mnist()
    out = []
    for name, title in (("magnitude", "magnitude"), ("obd", "OBD")):
        t0 = time.perf_counter()
        model = _copy(ctx.mlp)
        model.compile(loss="cross_entropy",
                      optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9},
                      metrics=["accuracy"])
        pruner = registry.get("pruner", name)(target_sparsity=0.9, retrain_epochs=1,
                                              retrain_batch_size=64,
                                              random_state=ctx.args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner.prune(model, X_train, y_train)
        acc = model.evaluate(X_test, y_test)["accuracy"]
        ctx.rows.append(Row("prune", f"MLP, {title} to 10% of weights",
                            unmasked_parameters(model), hidden_units(model), acc, "test",
                            time.perf_counter() - t0, "1 retraining epoch"))
        out.append(f"{title} {100 * acc:.2f}%")
    row = _parity_obs(ctx)
    ctx.rows.append(row)
    out.append(f"OBS parity-4: {row.weights} parameters left")
    return "test accuracy after pruning: " + ", ".join(out)


def step_grow(ctx: Context) -> str:
    """Cascade-correlation on two-spirals (194 points, ±0.5 targets), ``fast`` preset;
    accuracy on the training points and on the 4×-denser test spirals."""
    from .datasets import two_spirals
    from .growers import CascadeCorrelation

    t0 = time.perf_counter()
    X, y = two_spirals(targets="pm_half")
    grower = CascadeCorrelation.from_preset("fast", random_state=ctx.args.seed)
    model = grower.fit(X, y)
    acc = float(np.mean(np.sign(model.predict(X).ravel()) == np.sign(y)))
    Xd, yd = two_spirals(targets="pm_half", density=4)
    dense_acc = float(np.mean(np.sign(model.predict(Xd).ravel()) == np.sign(yd)))
    ctx.rows.append(Row("grow", "cascade-correlation, two spirals",
                        unmasked_parameters(model), grower.history.hidden_units, acc,
                        "train", time.perf_counter() - t0,
                        f"{grower.history.status}; {100 * dense_acc:.1f}% on dense spirals"))
    return (f"{grower.history.hidden_units} hidden units, training accuracy "
            f"{100 * acc:.2f}% ({grower.history.status})")


DEMO_STEPS = [
    ("mlp", "MLP 784-256-128-10", step_mlp),
    ("lenet5", "LeNet-5 CNN", step_lenet5),
    ("prune", "magnitude / OBD / OBS pruning", step_prune),
    ("grow", "cascade-correlation on two-spirals", step_grow),
]


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s:.2f} s"


def report(rows, total: float) -> str:
    """The one report: a table of every model the demo produced."""
    from .cli import format_table

    table = [{"step": r.step, "model": r.model, "weights": f"{r.weights:,}",
              "units": "-" if r.units is None else str(r.units),
              "accuracy": f"{100 * r.accuracy:.2f}% ({r.on})", "time": _seconds(r.seconds),
              "note": r.note} for r in rows]
    columns = [("step", "STEP"), ("model", "MODEL"), ("weights", "PARAMETERS"),
               ("units", "UNITS"), ("accuracy", "ACCURACY"), ("time", "TIME"),
               ("note", "NOTE")]
    return format_table(table, columns) + f"\n\ntotal time {total:.1f} s"


def cmd_demo(args) -> int:
    t0 = time.perf_counter()
    ctx = Context(args)
    X_train, _, X_test, _ = ctx.mnist()
    print(f"MNIST (bundled split): {len(X_train)} training, {len(X_test)} test images"
          f"{' (--quick subset)' if args.quick else ''}; seed {args.seed}")
    for key, title, step in DEMO_STEPS:
        if args.steps and key not in args.steps:
            continue
        start = time.perf_counter()
        message = step(ctx)
        print(f"[{key}] {title}: {message} in {_seconds(time.perf_counter() - start)}",
              flush=True)
    print()
    print("corenet demo report")
    print(report(ctx.rows, time.perf_counter() - t0))
    return 0


def add_demo_parser(sub):
    d = sub.add_parser("demo", help="MLP, LeNet-5, pruning and cascade-correlation: one "
                       "report", description="Train an MLP and LeNet-5 on the bundled "
                       "MNIST split (8000 training / 2000 test images), prune the MLP "
                       "(magnitude, OBD) and a parity net (OBS), grow a cascade-correlation "
                       "net on two-spirals, and print one report of accuracies, parameter "
                       "and unit counts and times.")
    d.add_argument("--epochs", type=int, metavar="E",
                   help="MLP training epochs (default 10, or 3 with --quick)")
    d.add_argument("--lenet-epochs", type=int, metavar="E",
                   help="LeNet-5 training epochs (default: train_lenet5_mnist's, 15; 1 with "
                   "--quick)")
    d.add_argument("--quick", action="store_true",
                   help="a fast smoke run: 2000 training / 1000 test images for the MLP, "
                   "fewer epochs")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--step", dest="steps", action="append",
                   choices=[key for key, _, _ in DEMO_STEPS],
                   help="run only this step (repeatable; default: all)")
    d.add_argument("--verbose", "-v", action="store_true",
                   help="show progress bars over epochs")
    d.set_defaults(func=cmd_demo)
    return d
