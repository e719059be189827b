"""Draw the figures of docs/plots.md into docs/img/ (needs the ``plot`` extra).

    python docs/make_figures.py            # about a minute on 2 cores

* ``img/learning_curves.png``: ``corenet train`` on ``examples/mnist_mlp.toml`` with the
  full 8,000/2,000 MNIST split and 10 epochs;
* ``img/pruning_curve.png``: the demo's MLP (784-256-128-10, 10 epochs) pruned by
  magnitude and by OBD to 50 ... 98 % sparsity from the same trained weights, one
  retraining epoch each, test accuracy against remaining weights.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def learning_curves(out: Path) -> None:
    from corenet import cli

    config = (HERE.parent / "examples" / "mnist_mlp.toml").read_text()
    config = config.replace("max_train = 600", "# max_train").replace("max_test = 500",
                                                                      "# max_test")
    config = config.replace("epochs = 3", "epochs = 10").replace("T = 3", "T = 10")
    config = config.replace("patience = 2", "patience = 5")
    config = config.replace("(small subset)", "(8,000 / 2,000 split)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mnist_mlp.toml")
        Path(path).write_text(config)
        assert cli.main(["train", path, "-o", tmp, "-q"]) == 0
        os.replace(os.path.join(tmp, "learning_curves.png"), out)


def pruning_curve(out: Path) -> None:
    import argparse

    from corenet import plots, registry
    from corenet.cli_demo import Context, _copy, _train_mlp, unmasked_parameters

    ctx = Context(argparse.Namespace(quick=False, seed=0, epochs=None, verbose=False))
    _train_mlp(ctx)
    X, y, X_test, y_test = ctx.mnist()
    base = ctx.mlp.evaluate(X_test, y_test)["accuracy"]
    results = {}
    for name, title in (("magnitude", "magnitude"), ("obd", "OBD")):
        rows = [{"weights": unmasked_parameters(ctx.mlp), "accuracy": base}]
        for sparsity in (0.5, 0.75, 0.9, 0.95, 0.98):
            model = _copy(ctx.mlp)
            model.compile(loss="cross_entropy",
                          optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9},
                          metrics=["accuracy"])
            pruner = registry.get("pruner", name)(target_sparsity=sparsity, retrain_epochs=1,
                                                  retrain_batch_size=64, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pruner.prune(model, X, y)
            acc = model.evaluate(X_test, y_test)["accuracy"]
            rows.append({"weights": unmasked_parameters(model), "accuracy": acc})
            print(f"{title} {sparsity:.2f}: {rows[-1]}")
        results[title] = rows
    plots.pruning_curve(results, out, logx=True, title="MNIST MLP: test accuracy after "
                        "pruning and 1 epoch")


def main() -> int:
    (HERE / "img").mkdir(exist_ok=True)
    learning_curves(HERE / "img" / "learning_curves.png")
    pruning_curve(HERE / "img" / "pruning_curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
