"""Where corenet's training step spends its time (both benchmark networks, 1 thread).

    python benchmarks/profile_step.py [--dtype float32] [--batch 1] [--cprofile] [--sgd-loop]

For each network it prints µs per step of:

A. ``Trainer.train_step`` as the benchmark calls it (corenet's default path);
B. when that is the compiled dense step (``corenet.fastpath``): its Python side (the
   trainer's checks and hooks, ``_fast_step``/``sync``, the target checks of
   ``DenseStep.__call__``) against the compiled ``plan.step``; per layer, the BLAS calls
   the compiled step makes, with the same shapes and transposes, called through
   ``scipy.linalg.blas`` (the same OpenBLAS); and the share of the momentum update: the
   default step timed with momentum 0.9 and with momentum 0 (same model and batch);
C. the layer-by-layer step (``fast_path=False``): its parts timed in their real order
   (``model.forward``, ``loss.value_and_grad``, zeroing, ``model.backward``,
   ``optimizer.step``; the rest is trainer overhead), then per layer the input checks, the
   product, the activation through the ``corenet.kernels`` facade and as the raw compiled
   call, the backward pieces, the loss and one parameter's SGD update;
D. ``--cprofile``: the 15 functions with the largest own time over 3000 default steps;
E. ``--sgd-loop``: the momentum-SGD loop over one 300x784 weight, compiled in a temporary
   directory in the two forms of ``corenet/_kernels/dense.pyx``: the general loop (double
   arithmetic, per-element branches; used with masks, weight decay or dampening) and the
   branch-free loop in the array's dtype (plain momentum; before commit fd68af6 the general
   loop ran in every case).

Medians over many repetitions (timer cost ~0.05 µs). Uses private attributes of corenet
(``trainer._fast``, ``layer._prepare``...) because it is a diagnostic; sections whose
attributes are missing are skipped.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp_impls import NETS, corenet_model, corenet_trainer, make_data  # noqa: E402

pc = time.perf_counter


def med_us(fn, n=2000):
    """Median µs of ``fn()`` (blocks of 10 calls)."""
    times = []
    for _ in range(max(1, n // 10)):
        t0 = pc()
        for _ in range(10):
            fn()
        times.append((pc() - t0) / 10)
    return statistics.median(times) * 1e6


def stepper(trainer, xs, ys):
    state = [0]

    def step():
        i = state[0] = state[0] + 1
        trainer.train_step(xs[i % len(xs)], ys[i % len(ys)])
    return step


# ----------------------------------------------------------------------------- B
def fast_split(trainer, xs, ys, total):
    fast = getattr(trainer, "_fast", None)
    if fast is None or not hasattr(fast, "_plan"):
        return {}
    xb, yb = xs[0], ys[0]
    rows = {"B fast path: DenseStep(xb, yb) call": med_us(lambda: fast(xb, yb))}
    if np.asarray(yb).dtype.kind in "iu":
        labels = np.ascontiguousarray(yb, dtype=np.int64)
        fast._plan.set_loss(3)
        raw = med_us(lambda: fast._plan.step(xb, None, labels))
    else:
        fast._plan.set_loss(0)
        raw = med_us(lambda: fast._plan.step(xb, np.ascontiguousarray(yb), None))
    rows["B   compiled plan.step (nogil)"] = raw
    rows["B   target checks + bookkeeping in DenseStep"] = \
        rows["B fast path: DenseStep(xb, yb) call"] - raw
    lookup = rows["B trainer._fast_step (lookup + sync)"] = med_us(
        lambda: trainer._fast_step(xb, None))
    rows["B trainer rest (hooks, isfinite, history)"] = \
        total - rows["B fast path: DenseStep(xb, yb) call"] - lookup
    rows.update(blas_split(trainer.model, xb.shape[0]))
    rows.update(momentum_cost(trainer, xs, ys))
    return rows


def momentum_cost(trainer, xs, ys):
    """Default step with momentum 0.9 vs 0 on copies of the model (alternating blocks)."""
    import corenet

    model = trainer.model
    net = next(k for k, v in NETS.items() if v[0][0] == model.input_shape[0])
    out = {}
    for mu in (0.9, 0.0):
        m = corenet_model(net, model.dtype)
        t = corenet.Trainer(m, loss=NETS[net][2],
                            optimizer={"name": "sgd", "lr": 0.01, "momentum": mu})
        t.fit(xs[0], ys[0], epochs=0)
        for i in range(100):
            t.train_step(xs[i % len(xs)], ys[i % len(ys)])
        out[mu] = t
    times = {0.9: [], 0.0: []}
    for _ in range(10):
        for mu, t in out.items():
            times[mu].append(med_us(stepper(t, xs, ys), 50))
    m9, m0 = statistics.median(times[0.9]), statistics.median(times[0.0])
    return {"B   default step, momentum 0.9": m9, "B   default step, momentum 0": m0,
            "B   => cost of the momentum update": m9 - m0}


def blas_split(model, batch):
    """The BLAS calls of the compiled step (dense.pyx: ``?gemv`` for the forward product
    and the input gradient when the batch is 1, ``?gemm`` otherwise and for the weight
    gradient), made with the same shapes and transposes through ``scipy.linalg.blas`` (the
    same OpenBLAS library), plus ``fill(0)`` + ``?ger`` as the batch-1 alternative for the
    weight gradient."""
    from scipy.linalg import blas

    rows = {}
    for layer in model.layers:
        W, gW = layer.W.data, layer.W.grad
        p = "s" if W.dtype == np.float32 else "d"
        gemm, gemv, ger = (getattr(blas, p + n) for n in ("gemm", "gemv", "ger"))
        dout, din = W.shape
        X = np.random.rand(batch, din).astype(W.dtype)
        D = np.random.rand(batch, dout).astype(W.dtype)
        S = np.zeros((batch, dout), W.dtype)
        dX = np.zeros((batch, din), W.dtype)
        key = f"B   layer {layer.key} {din}->{dout}"
        if batch == 1:
            x, d = X[0], D[0]
            rows[f"{key}: forward gemv s=Wx"] = med_us(lambda: gemv(1.0, W.T, x, trans=1), 500)
        else:
            rows[f"{key}: forward gemm(T,N) S=XWᵀ"] = med_us(
                lambda: gemm(1.0, W.T, X.T, beta=1.0, c=S.T, trans_a=1, overwrite_c=1), 500)
        rows[f"{key}: weight grad gemm(N,T) gW=DᵀX"] = med_us(
            lambda: gemm(1.0, X.T, D.T, beta=0.0, c=gW.T, trans_b=1, overwrite_c=1), 500)
        if batch == 1:
            rows[f"{key}:   alternative fill(0) + ger"] = med_us(
                lambda: (gW.fill(0), ger(1.0, x, d, a=gW.T, overwrite_a=1)), 500)
        if layer.key != "0":
            if batch == 1:
                rows[f"{key}: input grad gemv dx=Wᵀd"] = med_us(lambda: gemv(1.0, W.T, d), 500)
            else:
                rows[f"{key}: input grad gemm(N,N) dX=DW"] = med_us(
                    lambda: gemm(1.0, W.T, D.T, beta=0.0, c=dX.T, overwrite_c=1), 500)
    return rows


# ----------------------------------------------------------------------------- C
def sequence_split(trainer, xs, ys, n=2000):
    """Median µs of each part of the layer-by-layer step, timed in their real order, and
    the trainer's own overhead: the per-iteration difference between ``train_step`` and
    the re-enacted parts (alternating, so load changes hit both alike)."""
    model, loss, opt = trainer.model, trainer.loss, trainer.optimizer
    params = model.parameters()
    fuse = loss.fused_activation is not None and loss.fused_activation == model.output_activation
    names = ("C layer path: model.forward", "C   loss.value_and_grad", "C   zero the gradients",
             "C   model.backward", "C   optimizer.step")
    parts = {k: [] for k in names}
    totals, overheads = [], []
    for i in range(n):
        xb, yb = xs[i % len(xs)], ys[i % len(ys)]
        t0 = pc()
        out = model.forward(xb, logits=fuse)
        t1 = pc()
        value, grad = (loss.fused_value_and_grad(out, yb) if fuse
                       else loss.value_and_grad(out, yb))
        t2 = pc()
        for p in params:
            p.grad.fill(0.0)
        t3 = pc()
        model.backward(grad, logits=fuse)
        t4 = pc()
        opt.step()
        t5 = pc()
        trainer.train_step(xb, yb)
        t6 = pc()
        for k, a, b in zip(names, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
            parts[k].append(b - a)
        totals.append(t6 - t5)
        overheads.append((t6 - t5) - (t5 - t0))
    split = {k: statistics.median(v) * 1e6 for k, v in parts.items()}
    split["C   trainer overhead (train_step - parts)"] = statistics.median(overheads) * 1e6
    split["C layer path: train_step total"] = statistics.median(totals) * 1e6
    return split


def layer_split(model, xb):
    from corenet import kernels
    from corenet._kernels import activations as raw

    rows, x = {}, xb
    for layer in model.layers:
        key = f"C   layer {layer.key} {layer.in_features}->{layer.out_features}"
        rows[f"{key}: forward"] = med_us(lambda: layer.forward(x))
        rows[f"{key}:   input checks (_prepare)"] = med_us(lambda: layer._prepare((x,)))
        rows[f"{key}:   x @ W.T + b"] = med_us(lambda: layer._linear(x))
        s = layer._linear(x)
        y = layer.forward(x)
        dy = np.ones_like(y)
        if layer.act is not None:
            code = kernels.ACTIVATION_CODES[layer.act.fn.name]
            out = np.empty_like(s)
            rows[f"{key}:   activation, kernels facade"] = med_us(lambda: layer.act.fn.forward(s))
            rows[f"{key}:   activation, raw kernel"] = med_us(
                lambda: raw.activation_forward(code, s.reshape(-1), out.reshape(-1), 0.0, 0.0, 1))
        layer.forward(x)
        rows[f"{key}: backward"] = med_us(lambda: layer.backward(dy))
        if layer.act is not None:
            rows[f"{key}:   activation backward, facade"] = med_us(lambda: layer.act._backward(dy))
        W, b = layer.W, layer.b
        rows[f"{key}:   W.grad += dy.T @ x"] = med_us(lambda: W.grad.__iadd__(dy.T @ x))
        rows[f"{key}:   b.grad += dy.sum(0)"] = med_us(lambda: b.grad.__iadd__(dy.sum(axis=0)))
        if layer.key != "0":
            rows[f"{key}:   dx = dy @ W"] = med_us(lambda: dy @ W.data)
        rows[f"{key}:   W.grad.fill(0)"] = med_us(lambda: W.grad.fill(0.0))
        x = y
    return rows


def loss_opt_split(trainer, out, yb):
    loss, opt = trainer.loss, trainer.optimizer
    rows = {"C   loss.value_and_grad": med_us(lambda: loss.value_and_grad(out, yb)),
            "C     _check (array + targets)": med_us(lambda: loss._check(out, yb, None))}
    t, _ = loss._check(out, yb, None)
    rows["C     per_sample_and_grad"] = med_us(lambda: loss.per_sample_and_grad(out, t))
    rows["C   optimizer.step (all parameters)"] = med_us(opt.step)
    p = opt.parameters()[0]
    state, group = opt.state[p], opt.param_groups[0]
    rows[f"C     update() of {p.name} {p.shape}"] = med_us(lambda: opt.update(p, p.grad, state,
                                                                              group))
    v, g, w = state["momentum_buffer"], p.grad, p.data
    rows[f"C     v*=μ; v+=g; w-=η·v in NumPy {p.shape}"] = med_us(
        lambda: (v.__imul__(0.9), v.__iadd__(g), w.__isub__(0.01 * v)))
    rows["C   one inactive hook check"] = med_us(lambda: trainer._hook("corenet_on_after_step"))
    rows["C   np.isfinite(python float)"] = med_us(lambda: np.isfinite(0.5))
    return rows


# ----------------------------------------------------------------------------- E
SGD_PYX = r'''
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
from cython cimport floating
cdef void as_written(floating* w, floating* g, floating* mask, floating* v, Py_ssize_t n,
                     double lr, double mu, double tau, bint nesterov, double wd) noexcept nogil:
    cdef Py_ssize_t i
    cdef double gi
    for i in range(n):
        gi = g[i]
        if mask != NULL:
            gi = gi * mask[i]
        if wd != 0.0:
            gi = gi + wd * w[i]
        if v == NULL:
            w[i] = <floating>(w[i] - lr * gi)
        else:
            v[i] = <floating>(mu * v[i] + (1.0 - tau) * gi if tau != 0.0 else mu * v[i] + gi)
            if nesterov:
                w[i] = <floating>(w[i] - lr * (gi + mu * v[i]))
            else:
                w[i] = <floating>(w[i] - lr * v[i])
        if mask != NULL:
            w[i] = w[i] * mask[i]
cdef void typed(floating* w, floating* g, floating* v, Py_ssize_t n, floating lr,
                floating mu) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating vi
    for i in range(n):
        vi = mu * v[i] + g[i]
        v[i] = vi
        w[i] = w[i] - lr * vi
def run(floating[::1] w, floating[::1] g, floating[::1] v, int reps, bint simple):
    cdef int r
    with nogil:
        for r in range(reps):
            if simple:
                typed(&w[0], &g[0], &v[0], w.shape[0], <floating>0.01, <floating>0.9)
            else:
                as_written(&w[0], &g[0], <floating*>NULL, &v[0], w.shape[0], 0.01, 0.9, 0.0,
                           False, 0.0)
'''


def sgd_loop_bench(dtype):
    import importlib
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "sgdloop.pyx"), "w") as f:
            f.write(SGD_PYX)
        with open(os.path.join(tmp, "setup.py"), "w") as f:
            f.write("from setuptools import setup, Extension\nfrom Cython.Build import "
                    "cythonize\nsetup(ext_modules=cythonize([Extension('sgdloop', "
                    "['sgdloop.pyx'], extra_compile_args=['-O3'])], quiet=True))\n")
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=tmp,
                       check=True, capture_output=True)
        sys.path.insert(0, tmp)
        mod = importlib.import_module("sgdloop")
        n = 300 * 784
        w, g, v = (np.random.rand(n).astype(dtype) for _ in range(3))
        rows = {}
        for simple, label in ((False, "general loop"), (True, "typed, branch-free")):
            mod.run(w, g, v, 20, simple)
            t0 = pc()
            mod.run(w, g, v, 300, simple)
            rows[f"E SGD loop over 300x784 {np.dtype(dtype).name}, {label}"] = \
                (pc() - t0) / 300 * 1e6
        sys.path.remove(tmp)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--sgd-loop", action="store_true")
    args = ap.parse_args(argv)
    import corenet
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1, user_api="blas")
    except ImportError:
        print("threadpoolctl missing: set OPENBLAS_NUM_THREADS=1 yourself")
    corenet.set_num_threads(1)
    dtype = np.dtype(args.dtype)
    print(f"load {os.getloadavg()[0]:.2f}; {dtype}; batch {args.batch}; 1 thread; µs per call")
    for net in NETS:
        X, y, xs, ys = make_data(net, args.batch, dtype, 16)
        model = corenet_model(net, dtype)
        trainer = corenet_trainer(model, net, X, y)
        for i in range(300):
            trainer.train_step(xs[i % 16], ys[i % 16])
        fast = getattr(trainer, "_fast", None) is not None
        total = med_us(stepper(trainer, xs, ys))
        rows = {f"A train_step ({'compiled dense step' if fast else 'layer path'})": total}
        rows.update(fast_split(trainer, xs, ys, total))
        lmodel = corenet_model(net, dtype)
        ltrainer = corenet_trainer(lmodel, net, X, y, fast_path=False)
        for i in range(300):
            ltrainer.train_step(xs[i % 16], ys[i % 16])
        rows.update(sequence_split(ltrainer, xs, ys))
        rows.update(layer_split(lmodel, xs[0]))
        rows.update(loss_opt_split(ltrainer, lmodel.forward(xs[0]), ys[0]))
        print(f"\n== {net}, batch {args.batch} ==")
        width = max(map(len, rows))
        for k, v in rows.items():
            print(f"  {k:<{width}s} {v:9.2f}")
        if args.cprofile:
            prof = cProfile.Profile()
            prof.enable()
            for i in range(3000):
                trainer.train_step(xs[i % 16], ys[i % 16])
            prof.disable()
            print("\n  cProfile of the default step, 3000 steps (profiler overhead included):")
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    if args.sgd_loop:
        print()
        for k, v in sgd_loop_bench(dtype).items():
            print(f"  {k:<60s} {v:9.2f}")


if __name__ == "__main__":
    main()
