"""Pruning benchmark: magnitude vs OBD vs OBS on XOR and the MONK's problems (20 seeds),
layer-wise OBS on LeNet-300-100 (and LeNet-5); writes the results section of
docs/pruning.md and the plots docs/img/pruning_monks.png, docs/img/pruning_lenet.png.

Usage (from the repository root)::

    python benchmarks/bench_pruning.py                 # about 5-6 minutes on 2 cores
    python benchmarks/bench_pruning.py --seeds 5       # quicker
    python benchmarks/bench_pruning.py --lenet5        # adds LeNet-5 (about 10 s more)
    python benchmarks/bench_pruning.py --no-write      # print only
    python benchmarks/bench_pruning.py --monk-only     # only the MONK's problems, print only
    python benchmarks/bench_pruning.py --lenet-only    # only LeNet-300-100 (2 min), print only

Parts (float64 unless said otherwise; ``random_state`` = seed):

* ``diag`` — the Gauss-Newton diagonal (LeCun's second-order backward pass, the OBD
  default) against the exact Hessian diagonal on small networks: relative error and
  the rank correlation of the OBD saliencies.
* ``xor`` — 2-2-1 sigmoid networks trained on XOR (sse, Adam lr 0.1, 2000 full-batch
  epochs) until 20 seeds classify all four patterns; each method deletes one of the
  nine parameters (biases included, as in Hassibi & Stork's nine-weight network) with
  no retraining; "kept" = the four patterns are still classified correctly.
* ``monks`` — ``benchmarks/pruning_monks.py`` (see its docstring): MONK-1 17-3-1 and
  MONK-2/3 17-2-1 networks like Thrun et al.'s, trained with weight decay and polished
  to the minimum by Levenberg-Marquardt; magnitude, OBD and OBS delete one parameter at
  a time, protocol A without retraining, protocol B (the reproduction of Hassibi &
  Stork's OBS result) with 3 Levenberg-Marquardt iterations after every deletion and the
  smallest network on the pruning path that keeps the training accuracy.
* ``units`` — half of LeNet-300-100's hidden units removed (OBD-sum relevance), one
  epoch of retraining, ``compact``: parameters, accuracy and prediction time.
* ``lenet`` — LeNet-300-100 (784-300-100-10, relu, 266,610 parameters) trained from
  seeds 0, 1, 2 (``--lenet-seeds``) for 20 epochs on the bundled 8000-image split (SGD
  lr 0.1 with a cosine schedule, Nesterov momentum 0.9, batch 64). (1) One-shot, no
  retraining: weights pruned to 80/90/95/97 % sparsity by global magnitude, OBD (GN
  diagonal on 2000 training images) and layer-wise OBS (Hessians from the 8000 training
  images, the per-layer counts of global magnitude, ``allocation="global_magnitude"``,
  default ``algorithm="auto"``: stepwise for the first layer, greedy for the others).
  (2) The gradual protocol, the same for magnitude and layer-wise OBS: 50 → 70 → 80 →
  90 %, each round followed by one epoch of masked retraining (SGD lr 0.01, Nesterov
  momentum 0.9). Test accuracy on the 2000 held-out images, mean over the seeds, and a
  per-seed table at 90 %. With ``--lenet5`` the one-shot part for LeNet-5 (28×28
  variant, relu, 61,706 parameters, 3 epochs, seed 0) at 80/90 %.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corenet import Sequential, curvature  # noqa: E402
from corenet.datasets import mnist_split, xor  # noqa: E402
from corenet.layers.core import Dense  # noqa: E402
from corenet.pruners import (LayerwiseOBSPruner, MagnitudePruner, OBDPruner,  # noqa: E402
                             OBSPruner, UnitPruner, compact, sparsity_summary, unprune)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pruning_monks import fmt_monks, monk_net, part_monks, plot_monks  # noqa: E402

SSE = {"name": "sse", "half": True}
BEGIN, END = "<!-- bench_pruning:begin -->", "<!-- bench_pruning:end -->"


def quiet():
    warnings.simplefilter("ignore")


# ----------------------------------------------------------------------------- diag
def part_diag():
    from scipy.stats import spearmanr

    rows = []
    rng = np.random.default_rng(0)
    m = Sequential([Dense(2, 2, activation="tanh"), Dense(1, 2)], input_shape=(2,))
    m.set_flat_parameters(np.array([0.1, -0.2, 0.4, 0.3, 0.05, -0.1, 0.7, -0.5, 0.2]))
    cases = [("TV-HESS 2-2-1 tanh, sse", m, SSE, np.array([[0.5, -1.0], [-1.5, 2.0]]),
              np.array([[0.3], [-0.4]]))]
    net, X, y = xor_net(0)
    cases.append(("XOR 2-2-1 sigmoid (trained), sse", net, SSE, X, y))
    mk, Xk, yk = monk_net(1, 0)[:3]
    cases.append(("MONK-1 17-3-1 sigmoid (trained), sse", mk, SSE, Xk, yk))
    Xs = rng.normal(size=(40, 5))
    ys = rng.integers(0, 3, 40)
    ms = Sequential([Dense(8, activation="tanh"), Dense(3), "softmax"], random_state=0,
                    input_shape=(5,))
    cases.append(("5-8-3 tanh/softmax (random init), cross-entropy", ms, "cross_entropy",
                  Xs, ys))
    for title, model, loss, X, y in cases:
        exact = curvature.hessian_diag(model, loss, X, y, method="exact")
        gn = curvature.hessian_diag(model, loss, X, y)
        theta = model.get_flat_parameters()
        rel = np.linalg.norm(gn - exact) / np.linalg.norm(exact)
        rho = spearmanr(0.5 * gn * theta ** 2, 0.5 * exact * theta ** 2).statistic
        negative = int((exact < 0).sum())
        rows.append((title, theta.size, rel, rho, negative))
    return rows


# ----------------------------------------------------------------------------- xor
def xor_net(seed):
    X, y = xor()
    y = y.astype(float)
    m = Sequential([Dense(2, activation="sigmoid"), Dense(1, activation="sigmoid")],
                   random_state=seed)
    m.compile(loss=SSE, optimizer={"name": "adam", "lr": 0.1}, metrics=["accuracy"])
    m.fit(X, y, epochs=2000, batch_size=4)
    return m, X, y


def part_xor(n_seeds):
    methods = {"magnitude": lambda: MagnitudePruner(n_prune=1, prune_biases=True),
               "OBD (GN diagonal)": lambda: OBDPruner(n_prune=1, prune_biases=True),
               "OBD (exact diagonal)": lambda: OBDPruner(n_prune=1, prune_biases=True,
                                                         hessian_method="exact"),
               "OBS (spec defaults)": lambda: OBSPruner(n_prune=1, prune_biases=True)}
    kept = {k: 0 for k in methods}
    seed, trained = 0, 0
    while trained < n_seeds:
        m, X, y = xor_net(seed)
        seed += 1
        if m.evaluate(X, y)["accuracy"] < 1.0:
            continue
        trained += 1
        theta = m.get_flat_parameters()
        for name, make in methods.items():
            unprune(m)
            m.set_flat_parameters(theta)
            make().prune(m, X, y)
            kept[name] += m.evaluate(X, y)["accuracy"] == 1.0
    return kept, trained, seed


# ----------------------------------------------------------------------------- lenet
def lenet300(seed=0):
    epochs = 20
    m = Sequential([Dense(300, activation="relu"), Dense(100, activation="relu"), Dense(10),
                    "softmax"], random_state=seed)
    m.compile(loss="cross_entropy",
              optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
              metrics=["accuracy"], scheduler={"name": "cosine", "T": epochs})
    return m, epochs, True


def lenet5(seed=0):
    from corenet import models

    m = models.lenet5(activation="relu", input_size=28, random_state=seed)
    m.compile(loss="cross_entropy",
              optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
              metrics=["accuracy"])
    return m, 3, False


#: the gradual protocol: these sparsities in turn, each followed by RETRAIN_EPOCHS of
#: masked retraining (SGD lr 0.01, Nesterov momentum 0.9, batch 64)
GRADUAL, RETRAIN_EPOCHS = (0.5, 0.7, 0.8, 0.9), 1


def _pruners(s):
    """The three methods at sparsity ``s`` (layer-wise OBS with the per-layer counts of
    global magnitude, so that both prune the same number of weights in every layer)."""
    return (("magnitude", MagnitudePruner(target_sparsity=s)),
            ("OBD", OBDPruner(target_sparsity=s)),
            ("layer-wise OBS", LayerwiseOBSPruner(target_sparsity=s,
                                                  allocation="global_magnitude")))


def _weights_left(model):
    total = sparsity_summary(model)[-1]
    return total["prunable"] - total["pruned"]


def part_lenet(build, sparsities, seeds=(0,), gradual=False, hessian_images=2000):
    """One-shot pruning without retraining at ``sparsities`` for networks trained from
    each seed (mean test accuracy over the seeds) and, with ``gradual``, the gradual
    protocol for magnitude and layer-wise OBS. OBD's diagonal uses 2000 training images,
    the layer-wise Hessians ``hessian_images``."""
    rows, per_seed, grad, train_s = {}, [], {}, []
    for seed in seeds:
        model, epochs, flat = build(seed)
        X, y, Xt, yt = mnist_split(flatten=flat)
        t0 = time.perf_counter()
        model.fit(X, y, epochs=epochs, batch_size=64, random_state=seed)
        train_s.append(time.perf_counter() - t0)
        base = model.evaluate(Xt, yt)["accuracy"]
        theta = model.get_flat_parameters()
        if seed == seeds[0]:
            first = (model, theta, base)
        Xp, yp = X[:2000], y[:2000]
        mine = {"seed": seed, "base": base}
        for s in sparsities:
            for name, pruner in _pruners(s):
                unprune(model)
                model.set_flat_parameters(theta)
                data = (X[:hessian_images], y[:hessian_images]) if name == "layer-wise OBS" \
                    else (Xp, yp)
                t = time.perf_counter()
                pruner.prune(model, *data, validation_data=(Xp[:200], yp[:200]))
                seconds = time.perf_counter() - t
                acc = model.evaluate(Xt, yt)["accuracy"]
                rows.setdefault(name, {}).setdefault(s, []).append(
                    (_weights_left(model), acc, seconds))
                mine[(name, s)] = acc
        if gradual:
            for name in ("magnitude", "layer-wise OBS"):
                mine[name] = trace = _gradual(model, theta, name, X, y, Xt, yt, seed,
                                              hessian_images)
                for s, a0, a1, sec in trace:
                    grad.setdefault(name, {}).setdefault(s, []).append((a0, a1, sec))
        per_seed.append(mine)
    model, theta, base = first
    unprune(model)
    model.set_flat_parameters(theta)
    table = {name: [(s, v[0][0], float(np.mean([a for _, a, _ in v])),
                     float(np.mean([t for _, _, t in v]))) for s, v in by_s.items()]
             for name, by_s in rows.items()}
    gtable = {name: [(s, float(np.mean([a0 for a0, _, _ in v])),
                      float(np.mean([a1 for _, a1, _ in v])),
                      float(np.mean([t for _, _, t in v]))) for s, v in by_s.items()]
              for name, by_s in grad.items()}
    return {"parameters": int(theta.size), "base": float(np.mean([p["base"] for p in
                                                                  per_seed])),
            "train_seconds": float(np.mean(train_s)), "epochs": epochs, "rows": table,
            "gradual": gtable, "per_seed": per_seed, "seeds": list(seeds),
            "hessian_images": hessian_images, "model": model,
            "data": mnist_split(flatten=flat)}


def _gradual(model, theta, name, X, y, Xt, yt, seed, hessian_images):
    """The gradual protocol from the trained ``theta``: prune to each sparsity of
    GRADUAL (no retraining inside the pruner), test accuracy, RETRAIN_EPOCHS of masked
    retraining, test accuracy. Returns ``[(sparsity, acc pruned, acc retrained,
    seconds of pruning)]``."""
    unprune(model)
    model.set_flat_parameters(theta)
    model.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.01,
                                                   "momentum": 0.9, "nesterov": True},
                  metrics=["accuracy"])
    out = []
    for i, s in enumerate(GRADUAL):
        pruner = dict(_pruners(s))[name]
        t = time.perf_counter()
        pruner.prune(model, X[:hessian_images], y[:hessian_images])
        seconds = time.perf_counter() - t
        a0 = model.evaluate(Xt, yt)["accuracy"]
        model.fit(X, y, epochs=RETRAIN_EPOCHS, batch_size=64, random_state=1000 * seed + i)
        out.append((s, a0, model.evaluate(Xt, yt)["accuracy"], seconds))
    return out


def _predict_seconds(models, X, repeats=30):
    """Best wall time of ``predict`` for each model, measured interleaved (the machine is
    shared: alternating keeps the load the same for all)."""
    best = [np.inf] * len(models)
    for _ in range(repeats):
        for i, model in enumerate(models):
            t = time.perf_counter()
            model.predict(X, batch_size=len(X))
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def _multiply_adds(model):
    """Multiply-adds per sample of the dense layers (masked entries still computed)."""
    return sum(layer.W.size for layer in model.layers if getattr(layer, "W", None) is not None)


def part_units(res):
    """Unit pruning + compact on the trained LeNet-300-100: half of the 400 hidden units
    (OBD-sum relevance on 2000 training images), one epoch of retraining, then
    ``compact``."""
    model, (X, y, Xt, yt) = res["model"], res["data"]
    model.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.02,
                                                   "momentum": 0.9}, metrics=["accuracy"])
    t = time.perf_counter()
    UnitPruner(fraction=0.5, score="obd_sum", retrain_epochs=1, retrain_batch_size=64,
               random_state=0).prune(model, X[:2000], y[:2000])
    prune_s = time.perf_counter() - t
    masked_acc = model.evaluate(Xt, yt)["accuracy"]
    small = compact(model)
    return {"units_before": 400, "units_after": sum(small.layers[i].out_features
                                                      for i in (0, 1)),
            "params_before": model.n_parameters(), "params_after": small.n_parameters(),
            "acc_before": res["per_seed"][0]["base"], "acc_masked": masked_acc,
            "acc_compact": small.evaluate(Xt, yt)["accuracy"],
            "max_diff": float(np.abs(small.predict(Xt) - model.predict(Xt)).max()),
            "madds_masked": _multiply_adds(model), "madds_compact": _multiply_adds(small),
            **dict(zip(("t_masked", "t_compact"), _predict_seconds([model, small], Xt))),
            "prune_seconds": prune_s}


# ----------------------------------------------------------------------------- output
def plot_lenet(lenets, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(lenets), figsize=(5.5 * len(lenets), 4), squeeze=False)
    for ax, (title, res) in zip(axes[0], lenets.items()):
        for name, rows in res["rows"].items():
            v = np.array(rows, dtype=float)
            ax.plot(100 * v[:, 0], 100 * v[:, 2], marker="o", label=name)
        for name, rows in res.get("gradual", {}).items():
            v = np.array(rows, dtype=float)
            ax.plot(100 * v[:, 0], 100 * v[:, 2], ls="--", marker="s", ms=4,
                    label=f"{name}, gradual + retraining")
        ax.axhline(100 * res["base"], color="k", ls=":", lw=1, label="unpruned")
        ax.set_title(f"{title}: one-shot" + (" (solid), gradual (dashed)"
                                             if res.get("gradual") else ", no retraining"))
        ax.set_xlabel("sparsity of the weights (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_lenet(title, res):
    """The markdown of one LeNet part: the no-retraining table and, when run, the gradual
    protocol and the per-seed check at 90 %."""
    n = len(res["seeds"])
    over = f"mean over {n} seeds" if n > 1 else f"seed {res['seeds'][0]}"
    out = [f"### {title} on the MNIST split ({res['parameters']:,} parameters, "
           f"{res['epochs']} epochs, {res['train_seconds']:.0f} s; test accuracy "
           f"{100 * res['base']:.2f} %, {over}), no retraining", "",
           f"Layer-wise OBS Hessians from {res['hessian_images']} training images, OBD's "
           f"diagonal from 2000; test accuracy on the 2000 held-out images ({over}).", "",
           "| sparsity | weights left | magnitude | OBD | layer-wise OBS | "
           "seconds (mag / OBD / L-OBS) |", "|---|---|---|---|---|---|"]
    r = res["rows"]
    for i, row in enumerate(r["magnitude"]):
        out.append(f"| {100 * row[0]:.0f} % | {row[1]:,} | {100 * row[2]:.2f} % | "
                   f"{100 * r['OBD'][i][2]:.2f} % | {100 * r['layer-wise OBS'][i][2]:.2f} % "
                   f"| {row[3]:.1f} / {r['OBD'][i][3]:.1f} / "
                   f"{r['layer-wise OBS'][i][3]:.1f} |")
    out.append("")
    g = res["gradual"]
    if not g:
        return out
    steps = " → ".join(f"{100 * s:.0f}" for s in GRADUAL)
    out += [f"**Gradual protocol** ({over}): {steps} % in turn, each round pruning from "
            f"the previous one and followed by {RETRAIN_EPOCHS} epoch of masked retraining "
            f"(SGD lr 0.01, Nesterov momentum 0.9, batch 64, all 8000 training images); "
            f"the same protocol for both methods, with the same per-layer counts. Test "
            f"accuracy right after pruning → after the retraining:", "",
            "| sparsity | magnitude | layer-wise OBS | seconds of pruning (mag / L-OBS) |",
            "|---|---|---|---|"]
    for (s, m0, m1, ms), (_, o0, o1, os_) in zip(g["magnitude"], g["layer-wise OBS"]):
        out.append(f"| {100 * s:.0f} % | {100 * m0:.2f} → {100 * m1:.2f} % | "
                   f"{100 * o0:.2f} → {100 * o1:.2f} % | {ms:.1f} / {os_:.1f} |")
    out += ["", "**At 90 % (26,620 of 266,200 weights left), per seed** — drop = unpruned "
            "minus pruned, in points:", "",
            "| seed | unpruned | L-OBS one-shot (drop) | magnitude one-shot (drop) | "
            "L-OBS gradual (drop) | magnitude gradual (drop) |", "|---|---|---|---|---|---|"]
    cols = []
    for p in res["per_seed"]:
        vals = [p["base"], p[("layer-wise OBS", 0.9)], p[("magnitude", 0.9)],
                dict((s, a1) for s, _, a1, _ in p["layer-wise OBS"])[0.9],
                dict((s, a1) for s, _, a1, _ in p["magnitude"])[0.9]]
        cols.append(vals)
        out.append(f"| {p['seed']} | {100 * vals[0]:.2f} % | " + " | ".join(
            f"{100 * v:.2f} % ({100 * (vals[0] - v):+.2f})" for v in vals[1:]) + " |")
    mean = np.mean(cols, axis=0)
    out.append("| mean | " + f"{100 * mean[0]:.2f} % | " + " | ".join(
        f"{100 * v:.2f} % ({100 * (mean[0] - v):+.2f})" for v in mean[1:]) + " |")
    out.append("")
    return out


def write_docs(text, path):
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path} lacks the markers {BEGIN} / {END}")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + text + "\n" + END + tail)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--lenet5", action="store_true", help="add LeNet-5 (about 30 s)")
    ap.add_argument("--lenet-seeds", type=int, default=3,
                    help="LeNet-300-100 networks (seeds 0, 1, …; default 3)")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/")
    ap.add_argument("--lenet-only", action="store_true",
                    help="run only the LeNet parts and print (implies --no-write)")
    ap.add_argument("--monk-only", action="store_true",
                    help="run only the MONK's problems and print (implies --no-write)")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "pruning.md"))
    args = ap.parse_args(argv)
    quiet()
    t_all = time.perf_counter()
    cmd = "python benchmarks/bench_pruning.py" + ("".join(" " + a for a in (argv or
                                                                           sys.argv[1:])))
    out = [f"Generated by `{cmd}` ({time.strftime('%Y-%m-%d')}).", ""]

    if args.monk_only:
        monks, grads = part_monks(args.seeds)
        print("\n".join(fmt_monks(monks, grads, args.seeds)))
        print(f"monks: {time.perf_counter() - t_all:.1f} s")
        return 0
    if args.lenet_only:
        t = time.perf_counter()
        res = part_lenet(lenet300, (0.8, 0.9, 0.95, 0.97), tuple(range(args.lenet_seeds)),
                         gradual=True, hessian_images=8000)
        print("\n".join(fmt_lenet("LeNet-300-100", res)))
        print(f"lenet-300-100: {time.perf_counter() - t:.1f} s")
        if args.lenet5:
            t = time.perf_counter()
            print("\n".join(fmt_lenet("LeNet-5", part_lenet(lenet5, (0.8, 0.9)))))
            print(f"lenet-5: {time.perf_counter() - t:.1f} s")
        return 0
    t = time.perf_counter()
    diag = part_diag()
    out += ["### Gauss-Newton diagonal vs exact diagonal", "",
            "| network | n_θ | ‖d_GN − d_exact‖/‖d_exact‖ | rank corr. of OBD saliencies | "
            "negative exact entries |", "|---|---|---|---|---|"]
    out += [f"| {t_} | {n} | {rel:.3f} | {rho:.3f} | {neg} |" for t_, n, rel, rho, neg in diag]
    out.append("")
    print(f"diag: {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    kept, trained, tried = part_xor(args.seeds)
    out += ["### XOR (2-2-1, nine parameters): delete one, no retraining", "",
            f"{trained} trained networks (seeds 0 … {tried - 1}, those that learned XOR):", "",
            "| method | function kept |", "|---|---|"]
    out += [f"| {k} | {v}/{trained} |" for k, v in kept.items()]
    out.append("")
    print(f"xor: {time.perf_counter() - t:.1f} s", kept)

    t = time.perf_counter()
    monks, grads = part_monks(args.seeds)
    out += ["### MONK's problems", ""] + fmt_monks(monks, grads, args.seeds)
    out += ["![weights remaining vs test accuracy](img/pruning_monks.png)", ""]
    print(f"monks: {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    seeds = tuple(range(args.lenet_seeds))
    lenets = {"LeNet-300-100": part_lenet(lenet300, (0.8, 0.9, 0.95, 0.97), seeds,
                                          gradual=True, hessian_images=8000)}
    print(f"lenet-300-100: {time.perf_counter() - t:.1f} s")
    if args.lenet5:
        t = time.perf_counter()
        lenets["LeNet-5"] = part_lenet(lenet5, (0.8, 0.9))
        print(f"lenet-5: {time.perf_counter() - t:.1f} s")
    for title, res in lenets.items():
        out += fmt_lenet(title, res)
    out += ["![LeNet pruning without retraining](img/pruning_lenet.png)", ""]
    t = time.perf_counter()
    u = part_units(lenets["LeNet-300-100"])
    print(f"units: {time.perf_counter() - t:.1f} s")
    out += ["### Unit pruning and `compact` (LeNet-300-100)", "",
            "Half of the hidden units removed by `UnitPruner(fraction=0.5, score=\"obd_sum\", "
            "retrain_epochs=1)` (relevance on 2000 training images), then `compact(model)`:", "",
            "| | masked model | compacted model |", "|---|---|---|",
            f"| hidden units | {u['units_before']} (half masked) | {u['units_after']} |",
            f"| parameters (arrays) | {u['params_before']:,} | {u['params_after']:,} |",
            f"| test accuracy | {100 * u['acc_masked']:.2f} % (unpruned "
            f"{100 * u['acc_before']:.2f} %) | {100 * u['acc_compact']:.2f} % |",
            f"| multiply-adds per image | {u['madds_masked']:,} | {u['madds_compact']:,} |",
            f"| predict 2000 images (best of 30, interleaved) | {1000 * u['t_masked']:.1f} ms "
            f"| {1000 * u['t_compact']:.1f} ms |", "",
            f"Largest output difference between the two: {u['max_diff']:.1e}; pruning and "
            f"retraining took {u['prune_seconds']:.1f} s.", "",
            f"Total run time {time.perf_counter() - t_all:.0f} s."]
    text = "\n".join(out)
    print(text)
    if not args.no_write:
        img = ROOT / "docs" / "img"
        img.mkdir(exist_ok=True)
        plot_monks(monks, img / "pruning_monks.png")
        plot_lenet(lenets, img / "pruning_lenet.png")
        write_docs(text, Path(args.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
