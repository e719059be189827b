"""The three MLP implementations timed by ``bench_mlp.py`` and the worker that runs one.

Run as a script by the runner, never by hand (except ``python mlp_impls.py check``)::

    python benchmarks/mlp_impls.py worker IMPL THREADS   # corenet, layers, fit, twin, torch
    python benchmarks/mlp_impls.py check                 # same-math check, float64

A worker is one process per implementation (so each has its own peak memory and PyTorch's
OpenMP/MKL never shares a process with corenet's OpenBLAS). It reads one JSON command per
line on stdin and answers one JSON line on stdout:

* ``{"op": "setup", "net", "batch", "dtype", "warmup", "repeat"}``: build the model and
  the pre-sliced batches, run the warm-up for ``warmup`` seconds and choose the number of
  steps of one repeat (about ``repeat`` seconds, at least 2);
* ``{"op": "run"}``: one timed repeat, answers ``{"rate": steps per second}``;
* ``{"op": "memory"}``: peak RSS since setup (``VmHWM`` of /proc/self/status, reset
  through /proc/self/clear_refs at setup; ``ru_maxrss`` if that is not allowed) and, for
  NumPy-based implementations, the tracemalloc peak of NumPy/Python allocations over 3
  steps (the temporaries of one step);
* ``{"op": "quit"}``.

A training step is forward + loss + backward + SGD(lr 0.01, momentum 0.9) update, and
returns the batch loss as a Python float, in all three implementations:

* ``corenet``: ``corenet.Sequential`` of ``dense`` layers (fused hidden activation) and
  ``corenet.Trainer.train_step(xb, yb)``; the trainer is bound with ``fit(..., epochs=0)``
  (corenet picks its compiled dense step when the model qualifies, as these do);
* ``layers``: the same with ``fit(..., fast_path=False)``: the layer-by-layer step every
  model that does not qualify for the compiled step gets;
* ``fit``: the same model trained with ``model.fit(X, y, epochs=1, batch_size=b)``
  (shuffling, batch gathering, per-epoch logs: the whole-loop overhead);
* ``twin``: :class:`numpy_twin.NumpyMLP`;
* ``torch``: ``torch.nn.Sequential`` of ``Linear``/``ReLU``/``Tanh`` with
  ``CrossEntropyLoss``/``MSELoss`` and ``torch.optim.SGD``, ``torch.set_num_threads(n)``.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import tracemalloc

import numpy as np

# name -> (layer sizes, hidden activation, loss)
NETS = {
    "2-5-1": ((2, 5, 1), "tanh", "mse"),
    "784-300-100-10": ((784, 300, 100, 10), "relu", "cross_entropy"),
}
LR, MOMENTUM = 0.01, 0.9


def make_data(net: str, batch: int, dtype, n_batches: int, seed: int = 1234):
    """Pre-sliced batches (lists of C-contiguous views of X, y) of MNIST-shaped random
    data: inputs uniform in [0, 1), labels uniform in 0..K-1 (regression targets uniform)."""
    sizes, _, loss = NETS[net]
    rng = np.random.default_rng(seed)
    X = rng.random((n_batches * batch, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], n_batches * batch).astype(np.int64)
    else:
        y = rng.random((n_batches * batch, sizes[-1])).astype(dtype)
    xs = [np.ascontiguousarray(X[i * batch:(i + 1) * batch]) for i in range(n_batches)]
    ys = [np.ascontiguousarray(y[i * batch:(i + 1) * batch]) for i in range(n_batches)]
    return X, y, xs, ys


def n_batches_for(batch: int) -> int:
    return max(4, min(64, 4096 // batch))


# ----------------------------------------------------------------------------- builders
def corenet_model(net: str, dtype, seed: int = 0):
    import corenet

    sizes, hidden, _ = NETS[net]
    layers = [corenet.create("layer", "dense", out_features=h, activation=hidden)
              for h in sizes[1:-1]]
    layers.append(corenet.create("layer", "dense", out_features=sizes[-1]))
    return corenet.Sequential(layers, dtype=dtype, random_state=seed, input_shape=(sizes[0],))


def corenet_trainer(model, net: str, X, y, fast_path=None):
    """A bound ``corenet.Trainer``; ``fast_path=False`` forces the layer-by-layer step
    (None: corenet's default)."""
    import corenet

    trainer = corenet.Trainer(model, loss=NETS[net][2],
                              optimizer={"name": "sgd", "lr": LR, "momentum": MOMENTUM})
    kwargs = {} if fast_path is None else {"fast_path": fast_path}
    trainer.fit(X[:1], y[:1], epochs=0, **kwargs)   # binds the optimizer; no step is taken
    return trainer


def torch_model(net: str, dtype):
    import torch

    sizes, hidden, loss = NETS[net]
    act = torch.nn.ReLU if hidden == "relu" else torch.nn.Tanh
    mods = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(d_in, d_out))
        if i < len(sizes) - 2:
            mods.append(act())
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    model = torch.nn.Sequential(*mods).to(tdt)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    lossf = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.MSELoss()

    def step(x, y):
        opt.zero_grad()
        value = lossf(model(x), y)
        value.backward()
        opt.step()
        return value.item()

    return model, step


# ----------------------------------------------------------------------------- memory
def _status_kib(key: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``),
    so a configuration's RSS does not start from the previous one's high-water mark."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib(resettable: bool) -> float:
    hwm = _status_kib("VmHWM") if resettable else None
    kib = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0


# ----------------------------------------------------------------------------- worker
class Worker:
    def __init__(self, impl: str, threads: int):
        self.impl, self.threads = impl, threads
        self.limiter = None
        info = {"impl": impl, "threads": threads, "numpy": np.__version__}
        if impl in ("corenet", "layers", "fit"):
            import corenet
            import scipy.linalg  # noqa: F401  (its OpenBLAS serves corenet's compiled step)

            corenet.set_num_threads(threads)
            info["corenet"] = corenet.__version__
            info["corenet_threads"] = corenet.get_num_threads()
        if impl == "torch":
            import torch

            torch.set_num_threads(threads)
            info["torch"] = torch.__version__
            info["torch_threads"] = torch.get_num_threads()
        else:
            try:   # after the imports: every BLAS library loaded by now gets the limit
                from threadpoolctl import threadpool_info, threadpool_limits

                self.limiter = threadpool_limits(limits=threads, user_api="blas")
                info["blas_threads"] = [d["num_threads"] for d in threadpool_info()
                                        if d["user_api"] == "blas"]
            except ImportError:
                info["blas_threads"] = "threadpoolctl missing; OPENBLAS_NUM_THREADS only"
        self.info = info
        self.run_k = None
        # import everything the first configuration would import lazily (plugins, torch
        # modules), so that the per-configuration memory increase is the model and data
        self.setup("2-5-1", 1, "float64", 0.01, 0.01)
        self.run_k = self.step = self.xs = self.ys = None

    def setup(self, net, batch, dtype, warmup, repeat):
        self.run_k = self.step = self.xs = self.ys = None
        release_freed_memory()
        dtype = np.dtype(dtype)
        base = (_status_kib("VmRSS") or 0) / 1024.0
        nb = n_batches_for(batch)
        X, y, xs, ys = make_data(net, batch, dtype, nb)
        if self.impl in ("corenet", "layers", "fit"):
            model = corenet_model(net, dtype)
            trainer = corenet_trainer(model, net, X, y,
                                      fast_path=False if self.impl == "layers" else None)
            step = trainer.train_step
        elif self.impl == "twin":
            from numpy_twin import NumpyMLP

            sizes, hidden, loss = NETS[net]
            step = NumpyMLP(sizes, hidden=hidden, loss=loss, dtype=dtype, lr=LR,
                            momentum=MOMENTUM).step
        else:
            import torch

            _, step = torch_model(net, dtype)
            xs = [torch.from_numpy(a) for a in xs]
            ys = [torch.from_numpy(a) for a in ys]
        release_freed_memory()                   # temporaries of building the model
        self.resettable = reset_peak_rss()

        def run_steps(k):
            t0 = time.perf_counter()
            for i in range(k):
                step(xs[i % nb], ys[i % nb])
            return time.perf_counter() - t0

        self.step, self.xs, self.ys = step, xs, ys
        path = None
        k, spent = 1, 0.0
        while spent < warmup:                        # warm-up, doubling the step count
            spent += run_steps(k)
            k *= 2
        rate = (k - 1) / spent
        steps = max(2, int(rate * repeat))
        if self.impl in ("corenet", "layers", "fit"):   # which step corenet actually ran
            path = "compiled" if getattr(trainer, "_fast", None) is not None else "layers"
        self.run_k = lambda: steps / run_steps(steps)
        if self.impl == "fit":
            # one epoch over `steps` batches of the same data, shuffled by fit
            reps = -(-steps // nb)
            Xf, yf = np.concatenate([X] * reps), np.concatenate([y] * reps)
            Xf, yf = Xf[:steps * batch], yf[:steps * batch]
            model.compile(loss=NETS[net][2],
                          optimizer={"name": "sgd", "lr": LR, "momentum": MOMENTUM})
            model.fit(Xf[:batch * 2], yf[:batch * 2], epochs=1, batch_size=batch)  # warm

            def run_fit():
                t0 = time.perf_counter()
                model.fit(Xf, yf, epochs=1, batch_size=batch, random_state=0)
                return steps / (time.perf_counter() - t0)

            self.run_k = run_fit
        return {"baseline_mib": base, "steps": steps, "resettable_hwm": self.resettable,
                "path": path}

    def memory(self):
        out = {"peak_mib": peak_rss_mib(self.resettable),
               "method": "VmHWM" if self.resettable else "ru_maxrss"}
        if self.impl in ("corenet", "layers", "twin"):
            tracemalloc.start()
            tracemalloc.reset_peak()
            for i in range(3):
                self.step(self.xs[i % len(self.xs)], self.ys[i % len(self.ys)])
            out["heap_peak_kib"] = tracemalloc.get_traced_memory()[1] / 1024.0
            tracemalloc.stop()
        return out

    def handle(self, cmd):
        op = cmd["op"]
        if op == "hello":
            return self.info
        if op == "setup":
            return self.setup(cmd["net"], cmd["batch"], cmd["dtype"], cmd["warmup"],
                              cmd["repeat"])
        if op == "run":
            return {"rate": self.run_k()}
        if op == "memory":
            return self.memory()
        raise ValueError(f"unknown op {op!r}")


def worker_main(impl: str, threads: int) -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr                          # stray prints must not break the protocol
    worker = Worker(impl, threads)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            reply = worker.handle(cmd)
        except Exception as exc:                     # report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply) + "\n")


# ----------------------------------------------------------------------------- check
def check_same_math(steps: int = 3, use_torch: bool = True) -> dict:
    """Start every implementation from corenet's initial weights and compare the losses
    and parameters after ``steps`` float64 steps with corenet's default step: max |Δ|."""
    from numpy_twin import NumpyMLP

    torch = None
    if use_torch:
        try:
            import torch
        except ImportError:
            pass
    report = {}
    for net, batch in (("784-300-100-10", 4), ("2-5-1", 1), ("2-5-1", 3)):
        sizes, hidden, loss = NETS[net]
        X, y, xs, ys = make_data(net, batch, np.float64, steps, seed=7)
        model = corenet_model(net, np.float64)
        init = [p.data.copy() for p in model.parameters()]
        trainer = corenet_trainer(model, net, X, y)
        layers_model = corenet_model(net, np.float64)
        layers_model.set_flat_parameters(model.get_flat_parameters())
        layers = corenet_trainer(layers_model, net, X, y, fast_path=False)
        twin = NumpyMLP(sizes, hidden=hidden, loss=loss, dtype=np.float64)
        twin.set_parameters(init[0::2], init[1::2])
        steppers = {"layers": layers.train_step, "twin": twin.step}
        if torch is not None:
            tmodel, tstep = torch_model(net, np.float64)
            with torch.no_grad():
                for p, v in zip(tmodel.parameters(), init):
                    p.copy_(torch.from_numpy(v))
            steppers["torch"] = lambda a, b: tstep(torch.from_numpy(a), torch.from_numpy(b))
        losses = {name: [] for name in ["corenet", *steppers]}
        for xb, yb in zip(xs, ys):
            losses["corenet"].append(trainer.train_step(xb, yb))
            for name, fn in steppers.items():
                losses[name].append(fn(xb, yb))
        params = {"layers": [p.data for p in layers_model.parameters()],
                  "twin": [a for pair in zip(twin.W, twin.b) for a in pair]}
        if torch is not None:
            params["torch"] = [p.detach().numpy() for p in tmodel.parameters()]
        ref = [p.data for p in model.parameters()]
        for name, ps in params.items():
            dp = max(float(np.abs(a - b).max()) for a, b in zip(ref, ps))
            dl = max(abs(a - b) for a, b in zip(losses["corenet"], losses[name]))
            report[f"{net} b{batch} corenet vs {name}"] = {"max_dparam": dp, "max_dloss": dl}
    return report


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if sys.argv[1] == "worker":
        worker_main(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "check":
        print(json.dumps(check_same_math()))
