"""Conv2d throughput: corenet vs PyTorch CPU vs the machine's single-precision GEMM rate.

Usage (from the repository root)::

    python benchmarks/bench_conv.py                     # all shapes, all cores, float32
    python benchmarks/bench_conv.py --quick             # fewer repeats (about 1 minute)
    python benchmarks/bench_conv.py --wait-load 0.8 --json run1.json   # waits for a quiet machine
    python benchmarks/bench_conv.py --merge run*.json --markdown benchmarks/RESULTS_conv.md

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
``sgemm`` of ``scipy.linalg.blas`` (the OpenBLAS the corenet kernels call), same threads,
measured before and after the shapes (the better of the two medians is kept).

A second corenet worker runs the same build with ``OPENBLAS_CORETYPE=SkylakeX`` when the
CPU has AVX-512 (``--no-avx512-blas`` skips it): it shows how much of the gap to PyTorch
is the BLAS kernel set (see RESULTS_conv.md). ``--merge`` builds one table from several
``--json`` runs, taking per shape the run at the lowest load average.

Targets (corenet/PyTorch, fwd+bwd): ≥ 1.5× on the LeNet shape (``lenet_c1``), ≥ 0.8× on
the three larger ones; ``lenet_c3`` is informational.
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
def avx512_cpu():
    """True when the CPU has the AVX-512 subsets OpenBLAS's SkylakeX kernels use."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln.split(":", 1)[1].split() for ln in fh
                          if ln.startswith("flags")), [])
    except OSError:
        return False
    return {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags)


class Worker:
    def __init__(self, impl, threads, env_extra=None):
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "CORENET_NUM_THREADS"):
            env[var] = str(threads)
        env.update(env_extra or {})
        self.impl = impl
        kind = "torch" if impl == "torch" else "corenet"
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker",
                                      kind, str(threads)], env=env, text=True,
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


def wait_quiet(max_load, max_wait):
    """Wait (up to max_wait seconds) until the 1-minute load average is below max_load."""
    t0 = time.time()
    while max_load and os.getloadavg()[0] > max_load and time.time() - t0 < max_wait:
        time.sleep(5)


def run(args):
    impls = {"corenet": None}
    if args.avx512_blas:
        impls["corenet_avx512"] = {"OPENBLAS_CORETYPE": "SkylakeX"}
    if not args.no_torch:
        impls["torch"] = None
    workers = {name: Worker(name, args.threads, env) for name, env in impls.items()}
    out = {"threads": args.threads, "load_start": os.getloadavg(), "rows": [],
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        out["hello"] = {name: w.ask(op="hello") for name, w in workers.items()}
        wait_quiet(args.wait_load, args.wait_max)
        out["gemm"] = workers["corenet"].ask(op="gemm")
        if "corenet_avx512" in workers:
            out["gemm_avx512"] = workers["corenet_avx512"].ask(op="gemm")
        print(f"threads {args.threads}; load {out['load_start'][0]:.2f}; sgemm numpy "
              f"{out['gemm']['numpy_matmul']:.0f} GF/s, scipy {out['gemm']['scipy_sgemm']:.0f}"
              f" GF/s; {out['hello']['corenet']['blas']}", flush=True)
        if "gemm_avx512" in out:
            print(f"  with OPENBLAS_CORETYPE=SkylakeX: sgemm numpy "
                  f"{out['gemm_avx512']['numpy_matmul']:.0f} GF/s, scipy "
                  f"{out['gemm_avx512']['scipy_sgemm']:.0f} GF/s; "
                  f"{out['hello']['corenet_avx512']['blas']}", flush=True)
        for shape in SHAPES:
            if args.only and shape[0] not in args.only:
                continue
            wait_quiet(args.wait_load, args.wait_max)
            checks = {name: w.ask(op="setup", shape=list(shape))
                      for name, w in workers.items()}
            ref_name = "torch" if "torch" in checks else "corenet"
            for name in checks:
                for key, v in checks[name].items():
                    ref = checks[ref_name][key]
                    if abs(v - ref) > 1e-3 * max(1.0, abs(ref)):
                        raise RuntimeError(f"{shape[0]}: {name} and {ref_name} disagree on "
                                           f"{key}: {v} vs {ref}")
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
        wait_quiet(args.wait_load, args.wait_max)
        for key, name in (("gemm", "corenet"), ("gemm_avx512", "corenet_avx512")):
            if key in out:
                again = workers[name].ask(op="gemm")
                out[key] = {k: max(v, again[k]) for k, v in out[key].items()}
    finally:
        for w in workers.values():
            w.close()
    return out


def format_row(row, gemm):
    f = flops(tuple([row["shape"]] + list(row["config"]) + [None]))
    parts = [f"{row['shape']:<11}"]
    for mode, mult in (("fwd", 1), ("fwdbwd", 3)):
        s = row["seconds"][mode]
        bits = [f"{mode}"]
        for name, t in s.items():
            bits.append(f"{name} {t * 1e3:.2f} ms {mult * f / t / 1e9:.0f} GF/s")
        if "torch" in s:
            bits += [f"{name}/torch {s['torch'] / t:.2f}x" for name, t in s.items()
                     if name != "torch"]
        parts.append(" | ".join(bits))
    parts.append(f"load {row['load_before']:.2f}->{row['load_after']:.2f}")
    return "\n  ".join(parts)


def markdown(out):
    g = out["gemm"]
    names = list(out["rows"][0]["seconds"]["fwd"]) if out["rows"] else ["corenet"]
    cols = [n for n in names if n != "torch"]
    label = {"corenet": "corenet", "corenet_avx512": "corenet, AVX-512 BLAS¹"}
    lines = [
        "# Conv2d benchmark (float32): corenet vs PyTorch CPU",
        "",
        f"Generated by `python benchmarks/bench_conv.py` on {out['time']}; "
        f"{out['threads']} threads for every implementation; load average at start "
        f"{out['load_start'][0]:.2f} (shared machine: interleaved blocks, medians"
        + (f"; merged from {out['merged']} runs with `--merge`, per shape the run at the "
           f"lowest load" if out.get("merged") else "") + ").",
        f"corenet {out['hello']['corenet']['version']} with BLAS "
        f"`{out['hello']['corenet']['blas']}`"
        + (f"; PyTorch {out['hello']['torch']['version']}" if "torch" in out["hello"] else "")
        + ".",
        f"Machine sgemm rate (2048², same threads): numpy matmul "
        f"{g['numpy_matmul']:.0f} GFLOP/s, scipy `sgemm` (the BLAS corenet calls) "
        f"{g['scipy_sgemm']:.0f} GFLOP/s"
        + (f"; with `OPENBLAS_CORETYPE=SkylakeX` {out['gemm_avx512']['numpy_matmul']:.0f} "
           f"and {out['gemm_avx512']['scipy_sgemm']:.0f} GFLOP/s" if "gemm_avx512" in out
           else "") + ".",
        "",
        "| shape: N, C_in×H×W → C_out, k, pad | pass | "
        + " | ".join(f"{label.get(c, c)} ms | GFLOP/s | × PyTorch | of sgemm" for c in cols)
        + " | PyTorch ms | PyTorch GFLOP/s | target (× PyTorch) | load |",
        "|---|---|" + "---|---|---|---|" * len(cols) + "---|---|---|---|",
    ]
    for row in out["rows"]:
        n, c, h, o, k, p = row["config"]
        f = flops(tuple([row["shape"]] + list(row["config"]) + [None]))
        name = f"{row['shape']}: {n}, {c}×{h}×{h} → {o}, {k}×{k}, {p}"
        for mode, mult in (("fwd", 1), ("fwdbwd", 3)):
            s = row["seconds"][mode]
            t = s.get("torch")
            cells = []
            for col in cols:
                rate = mult * f / s[col] / 1e9
                ref = (out.get("gemm_avx512") if col == "corenet_avx512" else g)["scipy_sgemm"]
                ratio = f"{t / s[col]:.2f}" if t else "–"
                cells.append(f"{s[col] * 1e3:.2f} | {rate:.1f} | {ratio} | {rate / ref:.2f}")
            target = row["target"] if mode == "fwdbwd" else None
            verdict = "–"
            if target is not None and t:
                verdict = f"≥ {target}: " + ", ".join(
                    f"{label.get(col, col).split(',')[0] if col == 'corenet' else 'AVX-512'} "
                    f"{'met' if t / s[col] >= target else 'missed'}" for col in cols)
            lines.append(
                f"| {name} | {'fwd+bwd' if mode == 'fwdbwd' else 'fwd'} | "
                + " | ".join(cells) + " | "
                + (f"{t * 1e3:.2f} | {mult * f / t / 1e9:.1f}" if t else "– | –")
                + f" | {verdict} | {row['load_before']:.1f}→{row['load_after']:.1f} |")
    if "corenet_avx512" in cols:
        lines += ["", "¹ Same corenet build, run with `OPENBLAS_CORETYPE=SkylakeX`: the "
                  "OpenBLAS in scipy's wheel does not recognise this CPU and falls back to its "
                  "AVX2 (Haswell) kernels; the variable selects its AVX-512 kernels (the CPU "
                  "has AVX-512F/BW/DQ/VL)."]
    return "\n".join(lines) + "\n"


def merge(paths):
    """One result from several runs: per shape the row with the lowest load (the larger of
    the load averages before and after it); GEMM rates are the best seen."""
    runs = []
    for path in paths:
        with open(path) as fh:
            runs.append(json.load(fh))
    out = dict(runs[0])
    out["rows"] = []
    for key in ("gemm", "gemm_avx512"):
        if all(key in r for r in runs):
            out[key] = {k: max(r[key][k] for r in runs) for k in runs[0][key]}
    out["load_start"] = min(r["load_start"] for r in runs)
    out["time"] = " / ".join(r["time"] for r in runs)
    for shape in SHAPES:
        rows = [row for r in runs for row in r["rows"] if row["shape"] == shape[0]]
        if rows:
            out["rows"].append(min(rows, key=lambda row: max(row["load_before"],
                                                             row["load_after"])))
    out["merged"] = len(runs)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--only", nargs="*", help="shape names to run")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-avx512-blas", dest="avx512_blas", action="store_false",
                    help="skip the extra corenet worker run with OPENBLAS_CORETYPE=SkylakeX")
    ap.add_argument("--wait-load", type=float, default=0.0,
                    help="before each shape wait until the load average is below this")
    ap.add_argument("--wait-max", type=float, default=300.0,
                    help="longest wait per shape in seconds (default 300)")
    ap.add_argument("--markdown", help="write the table to this file")
    ap.add_argument("--json", help="write the raw results to this file")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="no run: build the table from earlier --json files, taking for each "
                         "shape the row measured at the lowest load")
    args = ap.parse_args(argv)
    if args.merge:
        out = merge(args.merge)
        text = markdown(out)
        print(text)
        if args.markdown:
            with open(args.markdown, "w") as fh:
                fh.write(text)
        return
    if args.quick:
        args.repeats = 3
    args.avx512_blas = args.avx512_blas and avx512_cpu()
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
