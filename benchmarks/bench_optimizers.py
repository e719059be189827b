"""Epochs-to-target of every corenet optimizer on four problems; writes docs/optimizers.md
and the plot docs/img/optimizers.png.

Usage (from the repository root)::

    python benchmarks/bench_optimizers.py            # about 2-3 minutes on 2 cores
    python benchmarks/bench_optimizers.py --quick    # smaller budgets, a smoke run

Problems (float64, fixed seeds):

* ``quadratic`` — linear regression, 256×8 inputs with column scales 10^[-1, 0]
  (condition number of the Hessian ≈ 100), noise-free targets, ``mse``; full batch;
  target loss ≤ 1e-6 (initial ≈ 1); budget 3000 epochs.
* ``logistic`` — logistic regression (1 sigmoid unit, ``bce``) on 256 non-separable
  samples in 5 dimensions; full batch; target objective ≤ optimum + 1e-4 (the optimum
  from ``solve_irls``); budget 3000 epochs.
* ``xor`` — 2-2-1 (tanh, sigmoid), ``mse``, the 4 patterns, full batch; target loss
  ≤ 0.01; seeds 0-4; median epochs over the seeds that reach it; budget 2000 epochs.
* ``mnist`` — flatten-784-64(relu)-10(softmax), cross-entropy, the bundled 8,000/2,000
  split; target 90 % test accuracy. Mini-batch rules: batch 64, budget 3 epochs;
  full-batch rules (gd, delta rules, quickprop, rprop): full batch, budget 30 epochs.

Each gradient rule runs with three learning rates (its default times the row's
multipliers) on the first three problems; the table shows the best. One epoch is one pass
over the data (one update for full-batch problems); for ``newton_irls``,
``least_squares`` and ``levenberg_marquardt`` it is one solver iteration (IRLS: one
Newton solve; LM: a Jacobian by N·K backward passes plus damped solves). BLAS runs
single-threaded (``OPENBLAS_NUM_THREADS=1``), which is much faster than oversubscribed
threads for these small matrices.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import corenet  # noqa: E402
from corenet import Sequential  # noqa: E402
from corenet.datasets import mnist_split, xor  # noqa: E402
from corenet.optimizers import minimize, solve_irls  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# label, optimizer name, fixed hyperparameters, lr multipliers, MNIST (lr, "batch"|"full")
ROWS = [
    ("gd", "gd", {}, (1, 10, 100), (0.5, "full")),
    ("sgd + momentum 0.9", "sgd", {"momentum": 0.9}, (1, 10, 100), (0.05, "batch")),
    ("sgd + nesterov 0.9", "sgd", {"momentum": 0.9, "nesterov": True}, (1, 10, 100),
     (0.05, "batch")),
    ("delta_delta", "delta_delta", {}, (1, 10, 100), (0.5, "full")),
    ("delta_bar_delta", "delta_bar_delta", {}, (1, 10, 100), (0.5, "full")),
    ("adagrad", "adagrad", {}, (1, 10, 100), (0.05, "batch")),
    ("rmsprop", "rmsprop", {}, (1, 10, 100), (1e-3, "batch")),
    ("adadelta", "adadelta", {}, (0.1, 1, 10), (1.0, "batch")),
    ("adam", "adam", {}, (1, 10, 100), (1e-3, "batch")),
    ("adam + amsgrad", "adam", {"amsgrad": True}, (1, 10, 100), (1e-3, "batch")),
    ("adamw", "adamw", {}, (1, 10, 100), (1e-3, "batch")),
    ("quickprop", "quickprop", {}, (0.1, 1, 10), (0.01, "full")),
    ("rprop (irprop-)", "rprop", {"variant": "irprop-"}, (0.1, 1, 10), (0.001, "full")),
    ("rprop (irprop+)", "rprop", {"variant": "irprop+"}, (0.1, 1, 10), (0.001, "full")),
    ("rprop (rprop-)", "rprop", {"variant": "rprop-"}, (0.1, 1, 10), (0.001, "full")),
    ("rprop (rprop+)", "rprop", {"variant": "rprop+"}, (0.1, 1, 10), (0.001, "full")),
]
SOLVERS = ["newton_irls", "least_squares", "levenberg_marquardt"]
PROBLEMS = ["quadratic", "logistic", "xor", "mnist"]


# ----------------------------------------------------------------------------- problems
def quadratic_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8)) * np.logspace(-1, 0, 8)
    y = X @ rng.normal(size=8) + 0.5
    return X, y.reshape(-1, 1)


def logistic_problem():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(256, 5))
    z = X @ np.array([1.5, -2.0, 0.5, 1.0, 0.0]) + 0.3
    y = (rng.random(256) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return X, y.reshape(-1, 1)


def linear_model(seed=0):
    return Sequential([{"name": "dense", "out_features": 1}], random_state=seed,
                      input_shape=(8,))


def logistic_model(seed=0):
    return Sequential([{"name": "dense", "out_features": 1, "activation": "sigmoid"}],
                      random_state=seed, input_shape=(5,))


def xor_model(seed):
    return Sequential([{"name": "dense", "out_features": 2, "activation": "tanh"},
                       {"name": "dense", "out_features": 1, "activation": "sigmoid"}],
                      random_state=seed, input_shape=(2,))


def mnist_model():
    return Sequential(["flatten", {"name": "dense", "out_features": 64, "activation": "relu"},
                       {"name": "dense", "out_features": 10}, "softmax"], random_state=0,
                      input_shape=(1, 28, 28))


# ----------------------------------------------------------------------------- training
def _step(model, loss, opt, xb, yb, params):
    """forward → loss → backward → step (the trainer's order, without its hooks)."""
    fuse = loss.fused_activation is not None and loss.fused_activation == model.output_activation
    out = model.forward(xb, logits=fuse)
    value, grad = (loss.fused_value_and_grad(out, yb) if fuse
                   else loss.value_and_grad(out, yb))
    for p in params:
        p.grad.fill(0.0)
    model.backward(grad, logits=fuse)
    return value, grad


def full_batch_epochs(model, loss, opt, X, y, target, budget):
    """Updates until the full-batch loss is <= target (None if not within budget)."""
    params = model.trainable_parameters()
    opt.bind(params)
    for epoch in range(budget + 1):
        value, _ = _step(model, loss, opt, X, y, params)
        if not np.isfinite(value):
            return None
        if value <= target:
            return epoch
        if epoch < budget:
            opt.step(loss=value)
    return None


def mnist_epochs(opt, data, mode, budget, target=0.90):
    Xtr, ytr, Xte, yte = data
    model = mnist_model()
    loss = corenet.create("loss", "cross_entropy")
    params = model.trainable_parameters()
    opt.bind(params)
    rng = np.random.default_rng(0)
    best = 0.0
    for epoch in range(1, budget + 1):
        model.train()
        if mode == "full":
            value, _ = _step(model, loss, opt, Xtr, ytr, params)
            opt.step(loss=value)
        else:
            order = rng.permutation(len(Xtr))
            for start in range(0, len(Xtr), 64):
                idx = order[start:start + 64]
                value, _ = _step(model, loss, opt, Xtr[idx], ytr[idx], params)
                opt.step(loss=value)
        if not all(np.isfinite(p.data).all() for p in params):
            return None, best
        acc = float(np.mean(model.predict(Xte).argmax(axis=1) == yte))
        best = max(best, acc)
        if acc >= target:
            return epoch, best
    return None, best


def first_hit(model, loss, X, y, path, target):
    """First solver iteration whose iterate has loss <= target."""
    for i, theta in enumerate(path, start=1):
        model.set_flat_parameters(theta)
        if float(loss.value(model.predict(X), y)) <= target:
            return i
    return None


# ----------------------------------------------------------------------------- runs
def run_gradient_rules(budgets, seeds, data_mnist, rows):
    Xq, yq = quadratic_problem()
    Xl, yl = logistic_problem()
    _, _, irls = solve_irls(Xl, yl.ravel(), max_iter=100)
    targets = {"quadratic": 1e-6, "logistic": irls.loss + 1e-4, "xor": 0.01}
    Xx, yx = xor()
    yx = yx.reshape(-1, 1)
    mse, bce = corenet.create("loss", "mse"), corenet.create("loss", "bce")
    results = {}
    for label, name, fixed, mults, (mnist_lr, mnist_mode) in rows:
        cls = corenet.registry.get("optimizer", name)
        base = cls.defaults["lr"]
        row = {}
        t0 = time.perf_counter()
        for problem in ("quadratic", "logistic", "xor"):
            best = None
            for m in mults:
                lr = base * m
                if problem == "xor":
                    hits = [full_batch_epochs(xor_model(s), mse, cls(lr=lr, **fixed), Xx, yx,
                                              targets["xor"], budgets["xor"]) for s in seeds]
                    ok = [h for h in hits if h is not None]
                    cand = (len(ok), -(np.median(ok) if ok else np.inf), lr, ok)
                    if best is None or cand[:2] > best[:2]:
                        best = cand
                else:
                    model = linear_model() if problem == "quadratic" else logistic_model()
                    X, y, loss = (Xq, yq, mse) if problem == "quadratic" else (Xl, yl, bce)
                    hit = full_batch_epochs(model, loss, cls(lr=lr, **fixed), X, y,
                                            targets[problem], budgets[problem])
                    if hit is not None and (best is None or hit < best[0]):
                        best = (hit, lr)
            if problem == "xor":
                n_ok, _, lr, ok = best
                row["xor"] = {"epochs": float(np.median(ok)) if ok else None, "lr": lr,
                              "success": n_ok, "seeds": len(seeds)}
            else:
                row[problem] = {"epochs": best[0] if best else None,
                                "lr": best[1] if best else None}
        opt = cls(lr=mnist_lr, **fixed)
        budget = budgets["mnist_full"] if mnist_mode == "full" else budgets["mnist_batch"]
        if data_mnist is not None:
            hit, acc = mnist_epochs(opt, data_mnist, mnist_mode, budget)
            row["mnist"] = {"epochs": hit, "lr": mnist_lr, "best_acc": acc, "mode": mnist_mode,
                            "budget": budget}
        row["seconds"] = time.perf_counter() - t0
        results[label] = row
        print(f"{label:22s} " + "  ".join(f"{k}={v.get('epochs')}" for k, v in row.items()
                                            if isinstance(v, dict))
              + f"  ({row['seconds']:.1f} s)", flush=True)
    return results, targets


def run_solvers(targets, seeds):
    Xq, yq = quadratic_problem()
    Xl, yl = logistic_problem()
    Xx, yx = xor()
    yx = yx.reshape(-1, 1)
    mse, bce = corenet.create("loss", "mse"), corenet.create("loss", "bce")
    results = {}
    t0 = time.perf_counter()
    m = linear_model()
    res = minimize(m, "mse", Xq, yq, optimizer="least_squares")
    results["least_squares"] = {
        "quadratic": {"epochs": first_hit(m, mse, Xq, yq, res.path, targets["quadratic"])},
        "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    m = logistic_model()
    res = minimize(m, "bce", Xl, yl, optimizer="newton_irls")
    results["newton_irls"] = {
        "logistic": {"epochs": first_hit(m, bce, Xl, yl, res.path, targets["logistic"])},
        "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    lm = {}
    for problem, model, loss, X, y in (("quadratic", linear_model(), mse, Xq, yq),
                                       ("logistic", logistic_model(), bce, Xl, yl)):
        res = minimize(model, loss.name, X, y, optimizer="levenberg_marquardt", max_iter=200)
        lm[problem] = {"epochs": first_hit(model, loss, X, y, res.path, targets[problem])}
    hits = []
    for s in seeds:
        model = xor_model(s)
        res = minimize(model, "mse", Xx, yx, optimizer="levenberg_marquardt", max_iter=500)
        hits.append(first_hit(model, mse, Xx, yx, res.path, targets["xor"]))
    ok = [h for h in hits if h is not None]
    lm["xor"] = {"epochs": float(np.median(ok)) if ok else None, "success": len(ok),
                 "seeds": len(seeds)}
    lm["seconds"] = time.perf_counter() - t0
    results["levenberg_marquardt"] = lm
    for name, row in results.items():
        print(f"{name:22s} " + "  ".join(f"{k}={v.get('epochs')}" for k, v in row.items()
                                          if isinstance(v, dict)), flush=True)
    return results


# ----------------------------------------------------------------------------- report
DOC_HEAD = """# Optimizers

corenet's optimizers implement spec `optimizers.md` and are registered under the
canonical names of README §9 (`corenet.registry.names("optimizer")`). Every rule is
checked against the worked steps of `test_vectors.md` §8 (TV-OPT-01..10) in
`tests/test_optimizers_sgd.py` and `tests/test_optimizers.py`.

| name | rule (optimizers.md) | defaults (D-75) | per-weight state |
|---|---|---|---|
| `gd`, `sgd` | θ ← θ − η g; momentum `v ← μv + (1−τ)g` (standard, D-08) or classical `V ← μV − ηg`; Nesterov `θ ← θ − η(g + μv)` (§1-3) | lr 0.01, momentum 0, dampening 0 | `momentum_buffer` / `velocity` |
| `delta_delta` | η_i ← clip(η_i + γ g_i g_i^prev, lr_min, lr_max); θ_i ← θ_i − η_i g_i (§4, D-53) | lr 0.01, meta_lr 1e-3, lr_min 0 | `lrs`, `prev_grad` |
| `delta_bar_delta` | η_i += κ if ḡ_i g_i > 0, η_i ×= 1−φ if < 0, with the *previous* ḡ (§5, D-09) | lr 0.01, kappa 1e-3, phi 0.1, theta 0.7 | `lrs`, `grad_avg`, `velocity` |
| `adagrad` | G += g²; θ ← θ − η g/(√G + ε) (§6) | lr 0.01, eps 1e-10 | `sum` |
| `rmsprop` | v ← ρv + (1−ρ)g²; θ ← θ − η g/(√v + ε); `centered`, `momentum` (§7) | lr 1e-3, rho 0.9, eps 1e-8 | `square_avg`, `grad_avg`, `momentum_buffer` |
| `adadelta` | Δ = −√(u+ε)/√(v+ε)·g; θ ← θ + lr·Δ (§8, D-10) | lr 1.0, rho 0.9, eps 1e-6 | `square_avg`, `acc_delta` |
| `adam`, `adamw` | bias-corrected m̂/(√v̂ + ε), `amsgrad`, `eps_inside_sqrt` (§9, D-05); `adamw`: decoupled decay θ ← θ(1 − ηλ) first | lr 1e-3, betas (0.9, 0.999), eps 1e-8; adamw decoupled_weight_decay 0.01 | `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` |
| `quickprop` | per-weight parabola jump with Fahlman's safeguards (`mode="fahlman"`) or the bare secant (`"secant"`) (§10, D-12, D-73) | lr 0.35, mu 1.75, decay 1e-4 | `prev_step`, `prev_slope` |
| `rprop` | sign-based steps Δ_i, variants `irprop-` (default), `irprop+`, `rprop-`, `rprop+` (§11, D-13, D-51) | lr Δ₀ 0.1, etas (0.5, 1.2), step_sizes (1e-6, 50) | `step_size`, `prev_grad`, `prev_update`, `loss_prev` |
| `newton_irls` | Newton/IRLS for logistic and softmax regression, ridge `l2`, damping retry, `max_iter`, convergence flag (§12.1, D-16, D-25) | l2 0, max_iter 100, tol 1e-10 | — |
| `least_squares` | closed-form (SVD, minimum norm) or ridge solution for a linear layer (§12.2) | l2 0 | — |
| `levenberg_marquardt` | damped Gauss-Newton `(JᵀHJ + μI)δ = −Jᵀ∂L/∂ŷ`, μ ×10 / ÷10 (§12.3) | mu 1e-3, max_iter 100 | `lm_damping` |

Every optimizer accepts `weight_decay` (coupled, g ← g + λθ) and
`decoupled_weight_decay` (θ ← θ − lr·λ·θ), applied to parameters with `decay=True`
(weights, not biases, D-42); bad values (negative rates, η⁻ ≥ 1, β outside [0, 1),
ε ≤ 0, …) raise `HyperparameterError` at construction, naming the optimizer, the
hyperparameter, the allowed range and the value.

## Using them

```python
model.compile(loss="mse", optimizer={"name": "adam", "lr": 1e-3})
model.fit(X, y, epochs=50, batch_size=32)

opt = corenet.create("optimizer", "rprop", variant="irprop+")     # per-group settings:
opt.bind([{"params": [w], "lr": 0.05}, {"params": [b], "weight_decay": 0.0}])
opt.step(loss=E_t)        # after backward; E_t = objective at the current parameters
```

* **Step counter and state.** State is created lazily with the parameter's shape and
  dtype at the first update; `state["step"]` counts updates (t = 1 at the first,
  D-57). `state_dict()`/`load_state_dict()` resume bit-identically (scalars are plain
  Python numbers, so a JSON checkpoint round-trips).
* **Masks** (pruning.md §1): gradients and every state array are zeroed at pruned
  positions before the update, and the mask is re-applied after it.
* **Growth**: `state_resize(param, new_shape, slices)` keeps old entries; new entries get
  fresh state (zeros; Rprop step sizes and delta-rule rates = `lr`; AdaGrad's
  accumulator = `initial_accumulator`).
* **The loss in `step(loss=...)`.** Only `rprop` with `variant="irprop+"` needs it
  (`opt.uses_loss` is then true; it raises without it); the others ignore it. It must be
  the objective at the parameters the gradient was computed at (before the update).
* **Full-batch rules.** `rprop` (`full_batch = True`) relies on gradient signs; use
  `batch_size=len(X)`. `gd` is `sgd` with full-batch gradients.

### Data solvers: `newton_irls`, `least_squares`, `levenberg_marquardt`

These need the data, not a gradient (`opt.needs_data` is true; `opt.step()` raises):

```python
from corenet.optimizers import minimize, solve_irls, solve_least_squares, jacobian

result = minimize(model, "mse", X, y, optimizer="levenberg_marquardt", max_iter=200)
result.converged, result.n_iter, result.loss, result.path     # SolverResult

opt = corenet.create("optimizer", "newton_irls", l2=0.1)
opt.minimize(model, X, y)                   # to convergence / max_iter
value = opt.data_step(model, "bce", X, y)   # one iteration (what a trainer would call)

coef, intercept, result = solve_irls(X, y, l2=0.1)       # array level
coef, intercept = solve_least_squares(X, Y, l2=1.0)
J = jacobian(model, X)                      # (N·K, P) per-sample output Jacobian
```

* `newton_irls` and `least_squares` act on a linear model: a `Sequential` with one
  `dense` layer (parameter-free layers before it, only an output activation after it).
  IRLS needs one sigmoid output (or an identity output with `bce_with_logits`) or a
  softmax over K > 1 outputs; least squares an identity output and `mse`/`sse`. Masked
  or frozen coefficients are held. With softmax and `l2 = 0` the last class is held
  (the softmax is invariant to a common shift, D-25). On separable data without `l2`,
  IRLS stops at `max_iter` with `converged=False`.
* `levenberg_marquardt` works on any small `Sequential`/`Graph` and any loss with an
  output Hessian (`mse`, `sse`, …); it evaluates the network in eval mode and costs N·K
  backward passes plus a P×P solve per iteration.
"""


def _cell(cell):
    if cell is None:
        return "n/a"
    if "success" in cell:
        if not cell["success"]:
            return f"— [0/{cell['seeds']}]"
        text = f"{cell['epochs']:g} [{cell['success']}/{cell['seeds']}]"
    elif cell.get("epochs") is None:
        if "best_acc" in cell:
            return f"— (best {100 * cell['best_acc']:.1f} %, {cell['mode']})"
        return "—"
    else:
        text = f"{cell['epochs']:g}"
        if "mode" in cell:
            text += f" ({cell['mode']})"
    if cell.get("lr") is not None and "best_acc" not in cell:
        text += f" @ {cell['lr']:g}"
    return text


def render_markdown(results, targets, budgets, seeds, command, seconds, img, machine):
    lines = [DOC_HEAD, "## Comparison: epochs to target\n",
             f"Produced by `{command}` (total {seconds:.0f} s on {machine}); the script "
             "rewrites this whole file.\n",
             f"* **quadratic** — linear regression, Hessian condition ≈ 100, `mse`, full "
             f"batch; target loss ≤ {targets['quadratic']:g}; budget {budgets['quadratic']}.",
             f"* **logistic** — logistic regression (`bce`), 256 non-separable samples; "
             f"target objective ≤ optimum + 1e-4 = {targets['logistic']:.6f}; budget "
             f"{budgets['logistic']}.",
             f"* **xor** — 2-2-1 tanh/sigmoid, `mse`, full batch; target loss ≤ "
             f"{targets['xor']:g}; median over the seeds {seeds} that reach it "
             f"[successes/seeds]; budget {budgets['xor']}.",
             f"* **mnist** — 784-64-10 relu/softmax, cross-entropy, 8,000/2,000 split; target "
             f"90 % test accuracy; mini-batch rules batch 64 for ≤ {budgets['mnist_batch']} "
             f"epochs, full-batch rules (`full`) ≤ {budgets['mnist_full']} epochs (= updates).",
             "",
             "Cells: epochs to target `@ lr` (the best of three learning rates: the default "
             "times the row's multipliers); `—` not reached within the budget; `n/a` not "
             "applicable. For the solvers an epoch is one solver iteration.\n",
             "| optimizer | " + " | ".join(PROBLEMS) + " | time (s) |",
             "|---|" + "---|" * (len(PROBLEMS) + 1)]
    for label, row in results.items():
        lines.append(f"| {label} | " + " | ".join(_cell(row.get(p)) for p in PROBLEMS)
                     + f" | {row.get('seconds', 0):.1f} |")
    if img:
        lines += ["", f"![epochs to target per optimizer]({img})", ""]
    lines += [
        "Reading the table: on the convex problems the second-order solvers need a handful "
        "of iterations (least squares one), each far more expensive than an epoch of a "
        "first-order rule. On the ill-conditioned quadratic plain `gd` needs by far the most "
        "epochs; momentum, the per-weight adaptive rules and the sign/secant rules "
        "(`quickprop`, `rprop`) need 10-100 times fewer. XOR with 2 hidden units has local "
        "minima, hence the failed seeds; there the lr giving the most successes (then the "
        "smallest median) is shown. The MNIST column compares one fixed learning rate per "
        "rule within a tiny budget (listed in `ROWS` of the script), so "
        "it shows which rules get to 90 % quickly, not their final accuracy.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plot
def plot(results, budgets, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return False
    labels = list(results)
    fig, axes = plt.subplots(1, 4, figsize=(16, 0.32 * len(labels) + 1.5), sharey=True)
    for ax, problem in zip(axes, PROBLEMS):
        budget = budgets["mnist_full"] if problem == "mnist" else budgets[problem]
        values, colors = [], []
        for label in labels:
            cell = results[label].get(problem)
            if cell is None:
                values.append(0)
                colors.append("white")
            elif cell.get("epochs") is None:
                values.append(cell.get("budget", budget))
                colors.append("#d9d9d9")
            else:
                values.append(max(cell["epochs"], 0.8))
                colors.append("#4c72b0")
        y = np.arange(len(labels))
        ax.barh(y, values, color=colors, edgecolor="#555555", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_title(problem)
        ax.set_xlabel("epochs to target (grey: not reached)")
    axes[0].set_yticks(np.arange(len(labels)), labels)
    axes[0].invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke run)")
    parser.add_argument("--no-mnist", action="store_true", help="skip the MNIST problem")
    parser.add_argument("--out", default=str(ROOT / "docs" / "optimizers.md"))
    parser.add_argument("--img", default=str(ROOT / "docs" / "img" / "optimizers.png"))
    args = parser.parse_args(argv)
    budgets = {"quadratic": 3000, "logistic": 3000, "xor": 2000, "mnist_batch": 3,
               "mnist_full": 30}
    seeds = list(range(5))
    if args.quick:
        budgets = {"quadratic": 300, "logistic": 300, "xor": 300, "mnist_batch": 1,
                   "mnist_full": 3}
        seeds = [0, 1]
    t0 = time.perf_counter()
    data = None if args.no_mnist else mnist_split()
    with np.errstate(over="ignore", invalid="ignore"):     # diverging lrs are detected
        results, targets = run_gradient_rules(budgets, seeds, data, ROWS)
        results.update(run_solvers(targets, seeds))
    total = time.perf_counter() - t0
    img = Path(args.img)
    has_plot = plot(results, budgets, img)
    command = "python benchmarks/bench_optimizers.py" + (" --quick" if args.quick else "") + \
        (" --no-mnist" if args.no_mnist else "")
    text = render_markdown(results, targets, budgets, seeds, command, total,
                           os.path.relpath(img, Path(args.out).parent) if has_plot else None,
                           f"{platform.machine()}, {os.cpu_count()} cores, Python "
                           f"{platform.python_version()}, NumPy {np.__version__}")
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({total:.0f} s)")


if __name__ == "__main__":
    main()
