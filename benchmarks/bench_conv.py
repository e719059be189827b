"""Conv2d throughput: corenet vs PyTorch CPU vs the machine's single-precision GEMM rate.

Usage (from the repository root)::

    python benchmarks/bench_conv.py                     # all shapes, 2 threads, float32
    python benchmarks/bench_conv.py --quick             # fewer repeats (about 1 minute)
    python benchmarks/bench_conv.py --markdown benchmarks/RESULTS_conv.md --json out.json

Shapes (float32, NCHW, stride 1): batch 64 1×28×28 → 20 ch 5×5 (LeNet C1 on MNIST);
batch 64 6×14×14 → 16 ch 5×5 (LeNet C3, extra row); batch 64 3×32×32 → 32 ch 3×3 pad 1;
batch 64 64×16×16 → 64 ch 3×3 pad 1; batch 32 64×56×56 → 64 ch 3×3 pad 1. Two passes:
``fwd`` (forward with bias, eval mode) and ``fwd+bwd`` (forward, then backward giving the
input, weight and bias gradients). FLOPs: forward ``2·N·C_out·H_out·W_out·C_in·k²``,
forward+backward three times that; GFLOP/s = FLOPs / median time.

corenet runs ``layers.Conv2d`` (validation, output allocation and gradient accumulation
included); PyTorch runs ``torch.nn.Conv2d`` (``no_grad`` for fwd; for fwd+bwd the input
requires grad and ``y.backward(dy)``). Each implementation lives in its own worker process
with the same thread count (``CORENET_NUM_THREADS``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``torch.set_num_threads``), so the two
OpenMP runtimes never spin against each other. Blocks of iterations (≈ 0.2 s each) are
interleaved round-robin across the workers, so a load change on the shared machine hits
both alike; the median block is reported, with the load average before and after.
The GEMM reference is numpy ``float32`` matmul of 2048×2048 (numpy's OpenBLAS) and the
``sgemm`` of ``scipy.linalg.blas`` (the OpenBLAS the corenet kernels call), same threads.

Targets (corenet/PyTorch, fwd+bwd): ≥ 1.5× on the LeNet shape, ≥ 0.8× on the larger ones.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = [  # name, N, C_in, H, C_out, k, padding, target (fwd+bwd ratio)
    ("lenet_c1", 64, 1, 28, 20, 5, 0, 1.5),
    ("lenet_c3", 64, 6, 14, 16, 5, 0, None),
    ("cifar_3x32", 64, 3, 32, 32, 3, 1, 0.8),
    ("mid_64x16", 64, 64, 16, 64, 3, 1, 0.8),
    ("big_64x56", 32, 64, 56, 64, 3, 1, 0.8),
]
BLOCK_SECONDS = 0.2


# ============================================================================ workers
def _data(shape):
    import numpy as np

    _, n, c, h, o, k, p, _ = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    ho = h + 2 * p - k + 1
    dy = rng.standard_normal((n, o, ho, ho)).astype(np.float32)
    return x, w, b, dy


class CorenetImpl:
    def __init__(self, threads):
        import corenet
        from corenet import config

        config.set_num_threads(threads)
        self.version = getattr(corenet, "__version__", "?")

    def setup(self, shape):
        from corenet.layers.conv import Conv2d

        x, w, b, dy = _data(shape)
        _, n, c, h, o, k, p, _ = shape
        self.layer = Conv2d(c, o, k, padding=p)
        self.layer.build(x.shape[1:], x.dtype)
        self.layer.W.data[...] = w
        self.layer.b.data[...] = b
        self.x, self.dy = x, dy

    def fwd(self):
        self.layer.eval()
        return self.layer.forward(self.x)

    def fwdbwd(self):
        self.layer.train()
        self.layer.forward(self.x)
        return self.layer.backward(self.dy)

    def check(self):
        y = self.layer.forward(self.x)
        for p in self.layer.parameters():
            p.zero_grad()
        dx = self.layer.backward(self.dy)
        return {"y": float(abs(y).sum()), "dx": float(abs(dx).sum()),
                "dw": float(abs(self.layer.W.grad).sum()), "db": float(abs(self.layer.b.grad).sum())}


class TorchImpl:
    def __init__(self, threads):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.version = torch.__version__

    def setup(self, shape):
        torch = self.torch
        x, w, b, dy = _data(shape)
        _, n, c, h, o, k, p, _ = shape
        self.conv = torch.nn.Conv2d(c, o, k, padding=p)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(w))
            self.conv.bias.copy_(torch.from_numpy(b))
        self.x = torch.from_numpy(x).requires_grad_(True)
        self.dy = torch.from_numpy(dy)

    def fwd(self):
        with self.torch.no_grad():
            return self.conv(self.x)

    def fwdbwd(self):
        self.x.grad = None
        self.conv.weight.grad = None
        self.conv.bias.grad = None
        self.conv(self.x).backward(self.dy)

    def check(self):
        self.fwdbwd()
        y = self.fwd()
        return {"y": float(y.abs().sum()), "dx": float(self.x.grad.abs().sum()),
                "dw": float(self.conv.weight.grad.abs().sum()),
                "db": float(self.conv.bias.grad.abs().sum())}


def _gemm_rates():
    import numpy as np
    from scipy.linalg import blas

    def rate(fn, n):
        fn()
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return 2.0 * n ** 3 / statistics.median(ts) / 1e9

    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    af = np.asfortranarray(a)
    return {"numpy_matmul": rate(lambda: a @ a, n),
            "scipy_sgemm": rate(lambda: blas.sgemm(1.0, af, af), n)}


def _openblas_core():
    import ctypes

    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's OpenBLAS)
        with open("/proc/self/maps") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower()})
        for path in paths:
            lib = ctypes.CDLL(path)
            for fn in ("scipy_openblas_get_corename", "openblas_get_corename"):
                f = getattr(lib, fn, None)
                if f is not None:
                    f.restype = ctypes.c_char_p
                    return f"{os.path.basename(path)}: {f().decode()}"
    except (OSError, ImportError):
        pass
    return "unknown"


def worker(impl_name, threads):
    impl = (CorenetImpl if impl_name == "corenet" else TorchImpl)(threads)
    reply = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["op"]
            if op == "quit":
                break
            if op == "hello":
                reply = {"version": impl.version, "blas": _openblas_core()}
            elif op == "gemm":
                reply = _gemm_rates()
            elif op == "setup":
                impl.setup(tuple(cmd["shape"]))
                reply = impl.check()
                fns = {"fwd": impl.fwd, "fwdbwd": impl.fwdbwd}
                impl.iters = {}
                for mode, fn in fns.items():
                    fn()
                    t = time.perf_counter()
                    fn()
                    one = time.perf_counter() - t
                    impl.iters[mode] = max(1, int(BLOCK_SECONDS / max(one, 1e-6)))
            elif op == "run":
                fn = impl.fwd if cmd["mode"] == "fwd" else impl.fwdbwd
                k = impl.iters[cmd["mode"]]
                t = time.perf_counter()
                for _ in range(k):
                    fn()
                reply = {"seconds": (time.perf_counter() - t) / k}
        except Exception as exc:  # reported to the driver
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


# ============================================================================ driver
class Worker:
    def __init__(self, impl, threads):
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "CORENET_NUM_THREADS"):
            env[var] = str(threads)
        self.impl = impl
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker",
                                      impl, str(threads)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.impl} worker died (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.impl} worker: {reply['error']}")
        return reply

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def flops(shape):
    _, n, c, h, o, k, p, _ = shape
    ho = h + 2 * p - k + 1
    return 2.0 * n * o * ho * ho * c * k * k


def run(args):
    impls = ["corenet"] + (["torch"] if not args.no_torch else [])
    workers = {name: Worker(name, args.threads) for name in impls}
    out = {"threads": args.threads, "load_start": os.getloadavg(), "rows": [],
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        out["hello"] = {name: w.ask(op="hello") for name, w in workers.items()}
        out["gemm"] = workers["corenet"].ask(op="gemm")
        print(f"threads {args.threads}; load {out['load_start'][0]:.2f}; sgemm numpy "
              f"{out['gemm']['numpy_matmul']:.0f} GF/s, scipy {out['gemm']['scipy_sgemm']:.0f}"
              f" GF/s; {out['hello']['corenet']['blas']}", flush=True)
        for shape in SHAPES:
            if args.only and shape[0] not in args.only:
                continue
            checks = {name: w.ask(op="setup", shape=list(shape))
                      for name, w in workers.items()}
            if "torch" in checks:
                for key, v in checks["corenet"].items():
                    ref = checks["torch"][key]
                    if abs(v - ref) > 1e-3 * max(1.0, abs(ref)):
                        raise RuntimeError(f"{shape[0]}: corenet and torch disagree on {key}: "
                                           f"{v} vs {ref}")
            row = {"shape": shape[0], "config": shape[1:7], "target": shape[7],
                   "load_before": os.getloadavg()[0], "seconds": {}}
            for mode in ("fwd", "fwdbwd"):
                times = {name: [] for name in workers}
                order = list(workers)
                for r in range(args.repeats):
                    for name in order[r % len(order):] + order[:r % len(order)]:
                        times[name].append(workers[name].ask(op="run", mode=mode)["seconds"])
                row["seconds"][mode] = {n: statistics.median(t) for n, t in times.items()}
                row.setdefault("spread", {})[mode] = {
                    n: (max(t) - min(t)) / statistics.median(t) for n, t in times.items()}
            row["load_after"] = os.getloadavg()[0]
            out["rows"].append(row)
            print(format_row(row, out["gemm"]), flush=True)
    finally:
        for w in workers.values():
            w.close()
    return out


def format_row(row, gemm):
    f = flops(tuple([row["shape"]] + list(row["config"]) + [None]))
    parts = [f"{row['shape']:<11}"]
    for mode, mult in (("fwd", 1), ("fwdbwd", 3)):
        s = row["seconds"][mode]
        c = mult * f / s["corenet"] / 1e9
        text = f"{mode} corenet {s['corenet'] * 1e3:7.2f} ms {c:6.1f} GF/s"
        if "torch" in s:
            t = mult * f / s["torch"] / 1e9
            text += f" | torch {s['torch'] * 1e3:7.2f} ms {t:6.1f} GF/s | ratio " \
                    f"{s['torch'] / s['corenet']:.2f}"
        text += f" | {c / gemm['scipy_sgemm']:.2f} of sgemm"
        parts.append(text)
    parts.append(f"load {row['load_before']:.2f}->{row['load_after']:.2f}")
    return "  ".join(parts)


def markdown(out):
    g = out["gemm"]
    lines = [
        "# Conv2d benchmark (float32): corenet vs PyTorch CPU",
        "",
        f"Generated by `python benchmarks/bench_conv.py` on {out['time']}; "
        f"{out['threads']} threads for both libraries; load average at start "
        f"{out['load_start'][0]:.2f} (the machine is shared: medians of interleaved blocks).",
        f"corenet {out['hello']['corenet']['version']}, BLAS "
        f"`{out['hello']['corenet']['blas']}`"
        + (f"; PyTorch {out['hello']['torch']['version']}" if "torch" in out["hello"] else "")
        + ".",
        f"Machine sgemm rate (2048², same threads): numpy matmul "
        f"{g['numpy_matmul']:.0f} GFLOP/s, scipy `sgemm` (the BLAS corenet calls) "
        f"{g['scipy_sgemm']:.0f} GFLOP/s.",
        "",
        "| shape (N, C_in×H×W → C_out, k, pad) | pass | corenet ms | corenet GFLOP/s | "
        "PyTorch ms | PyTorch GFLOP/s | corenet/PyTorch speed | corenet / sgemm | target | "
        "load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in out["rows"]:
        n, c, h, o, k, p = row["config"]
        f = flops(tuple([row["shape"]] + list(row["config"]) + [None]))
        label = f"{row['shape']}: {n}, {c}×{h}×{h} → {o}, {k}×{k}, {p}"
        for mode, mult in (("fwd", 1), ("fwdbwd", 3)):
            s = row["seconds"][mode]
            c_rate = mult * f / s["corenet"] / 1e9
            t = s.get("torch")
            ratio = s["torch"] / s["corenet"] if t else None
            target = row["target"] if mode == "fwdbwd" else None
            verdict = "" if target is None or ratio is None else \
                (f"≥ {target} {'met' if ratio >= target else 'missed'}")
            lines.append(
                f"| {label} | {'fwd+bwd' if mode == 'fwdbwd' else 'fwd'} | "
                f"{s['corenet'] * 1e3:.2f} | {c_rate:.1f} | "
                + (f"{t * 1e3:.2f} | {mult * f / t / 1e9:.1f} | {ratio:.2f}× | " if t else
                   "– | – | – | ")
                + f"{c_rate / g['scipy_sgemm']:.2f} | {verdict} | "
                f"{row['load_before']:.1f}→{row['load_after']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--only", nargs="*", help="shape names to run")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--markdown", help="write the table to this file")
    ap.add_argument("--json", help="write the raw results to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 3
    if not args.no_torch:
        try:
            import importlib.util
            if importlib.util.find_spec("torch") is None:
                raise ImportError
        except ImportError:
            print("PyTorch not installed: corenet only (pip install torch==2.13.0)")
            args.no_torch = True
    out = run(args)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(out))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]))
    else:
        main()
