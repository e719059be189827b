"""MLP training throughput: corenet vs a hand-written NumPy twin vs PyTorch CPU, in one run.

Usage (from the repository root)::

    python benchmarks/bench_mlp.py                  # threads 1 and 2, float32 and float64
    python benchmarks/bench_mlp.py --quick          # shorter repeats (about 1 min)
    python benchmarks/bench_mlp.py --markdown out.md --json out.json

Networks and batches: 784-300-100-10 (relu, softmax cross-entropy on integer labels) at
batch 1, 32, 128, 1024; 2-5-1 (tanh, MSE) at batch 1. One step = forward + loss +
backward + SGD(lr 0.01, momentum 0.9); see ``mlp_impls.py`` for the three
implementations and ``python benchmarks/mlp_impls.py check`` for the proof that they
compute the same numbers.

Method: one worker process per implementation and thread count (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``CORENET_NUM_THREADS`` set to n in its
environment, plus ``threadpoolctl.threadpool_limits(n)`` and ``corenet.set_num_threads(n)``
or ``torch.set_num_threads(n)`` inside). Per configuration every worker builds its model
and pre-sliced batches and warms up; then, with 1 thread, the repeats are interleaved
round-robin across the workers (a load change hits every implementation alike), with more
threads each worker runs its repeats in one block after ``--settle`` seconds of quiet
(idle BLAS/OpenMP threads spin-wait for a while). The median steps/s is reported.
Memory: the peak RSS of the worker while training that configuration (Linux ``VmHWM``,
reset before each configuration) and its increase over the worker's RSS before the model
and data were built; for NumPy-based code also the tracemalloc peak of 3 steps.
Noise: *foreign tasks*, the mean number of runnable tasks besides the benchmark while a
configuration is measured (``/proc/loadavg``); rows above 0.5 per core or with a spread
above 50 % are marked "(noisy)". ``--wait-quiet`` waits for a quiet machine.

Targets (float32, same thread count, corenet/PyTorch): 784 net ≥ 2x at batch 1, ≥ 1.2x at
32 and 128, ≥ 0.9x at 1024; 2-5-1 ≥ 10x at batch 1. Float64 is reported without a verdict.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [("2-5-1", 1), ("784-300-100-10", 1), ("784-300-100-10", 32),
           ("784-300-100-10", 128), ("784-300-100-10", 1024)]
TARGETS = {("2-5-1", 1): 10.0, ("784-300-100-10", 1): 2.0, ("784-300-100-10", 32): 1.2,
           ("784-300-100-10", 128): 1.2, ("784-300-100-10", 1024): 0.9}
IMPLS = ("corenet", "layers", "fit", "twin", "torch")


class WorkerProcess:
    def __init__(self, impl: str, threads: int, extra_env=()):
        env = dict(os.environ)
        env.update(dict(extra_env))
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "CORENET_NUM_THREADS"):
            env[var] = str(threads)
        self.impl = impl
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "mlp_impls.py"),
                                      "worker", impl, str(threads)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1)

    def ask(self, **cmd) -> dict:
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


def machine_facts() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def load() -> float:
    return os.getloadavg()[0]


class RunQueueSampler(threading.Thread):
    """Samples the number of runnable tasks (4th field of /proc/loadavg) every 50 ms while
    a configuration is measured; ``others(threads)`` is the mean count minus this sampler
    and the measuring worker's threads: how many foreign tasks wanted the CPU meanwhile."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop = [], threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            try:
                with open("/proc/loadavg") as f:
                    self.samples.append(int(f.read().split()[3].split("/")[0]))
            except (OSError, ValueError, IndexError):
                return

    def others(self, threads: int):
        self.stop.set()
        self.join()
        if not self.samples:
            return None
        return max(0.0, statistics.mean(self.samples) - 1 - threads)


def foreign_now(seconds: float = 1.0) -> float:
    """Mean number of runnable tasks other than this sampler over ``seconds``."""
    samples = []
    for _ in range(int(seconds / 0.05)):
        with open("/proc/loadavg") as f:
            samples.append(int(f.read().split()[3].split("/")[0]))
        time.sleep(0.05)
    return max(0.0, statistics.mean(samples) - 1)


class QuietWaiter:
    """Before each configuration, wait (within a total budget of ``budget`` seconds) until
    fewer than ``max_foreign`` foreign tasks are runnable, sampled over one second."""

    def __init__(self, budget: float, max_foreign: float):
        self.left, self.max_foreign = budget, max_foreign

    def wait(self) -> None:
        while self.left > 0:
            t0 = time.time()
            busy = foreign_now()
            if busy < self.max_foreign:
                return
            print(f"  {busy:.1f} foreign runnable tasks: waiting "
                  f"({self.left:.0f} s of --wait-quiet left)", flush=True)
            time.sleep(4.0)
            self.left -= time.time() - t0


def measure(workers, threads, args) -> dict:
    """Median-of-repeats steps/s per worker for the configuration they are set up for.

    One thread: repeats interleaved round-robin across workers (a load change hits all
    alike). More threads: each worker runs its repeats in one block after ``--settle``
    seconds of quiet, so the previous worker's BLAS/OpenMP threads have stopped
    spin-waiting before the next one starts (otherwise they steal the cores)."""
    rates = {impl: [] for impl in workers}
    order = list(workers)
    if threads == 1:
        for r in range(args.repeats):
            for impl in order[r % len(order):] + order[:r % len(order)]:
                rates[impl].append(workers[impl].ask(op="run")["rate"])
    else:
        for impl in order:
            time.sleep(args.settle)
            for _ in range(args.repeats):
                rates[impl].append(workers[impl].ask(op="run")["rate"])
    return rates


def run_threads(threads, impls, dtypes, args, log) -> tuple[list, dict]:
    extra = [kv.split("=", 1) for kv in args.env]
    if threads > 1 and 1 in args.threads:     # the loop overhead does not depend on threads
        impls = [i for i in impls if i != "fit"]
    workers = {impl: WorkerProcess(impl, threads, extra) for impl in impls}
    rows, info = [], {}
    try:
        for impl, w in workers.items():
            info[impl] = w.ask(op="hello")
        for dtype in dtypes:
            for net, batch in args.configs:
                args.waiter.wait()
                row = {"threads": threads, "dtype": dtype, "net": net, "batch": batch,
                       "load_before": load(), "rates": {}, "memory": {}}
                setup = {}
                for impl, w in workers.items():
                    if threads > 1:
                        time.sleep(args.settle)
                    setup[impl] = w.ask(op="setup", net=net, batch=batch, dtype=dtype,
                                        warmup=args.warmup, repeat=args.repeat_time)
                row["corenet_path"] = setup.get("corenet", {}).get("path")
                sampler = RunQueueSampler()
                sampler.start()
                rates = measure(workers, threads, args)
                row["foreign_tasks"] = sampler.others(threads)
                for impl, w in workers.items():
                    mem = w.ask(op="memory")
                    mem["delta_mib"] = mem["peak_mib"] - setup[impl]["baseline_mib"]
                    row["memory"][impl] = mem
                    vals = rates[impl]
                    row["rates"][impl] = {"median": statistics.median(vals), "all": vals,
                                          "spread": (max(vals) - min(vals))
                                          / statistics.median(vals)}
                row["load_after"] = load()
                rows.append(row)
                log(format_row(row))
    finally:
        for w in workers.values():
            w.close()
    return rows, info


def ratio(row, a, b):
    ra, rb = row["rates"].get(a), row["rates"].get(b)
    return ra["median"] / rb["median"] if ra and rb else None


def noisy(row) -> bool:
    """Foreign tasks above 0.5 per core or a spread above 50%: do not trust the row."""
    foreign = row.get("foreign_tasks") or 0.0
    spread = max(v["spread"] for v in row["rates"].values())
    return foreign > 0.5 * (os.cpu_count() or 1) or spread > 0.5


def verdict(row):
    target = TARGETS[(row["net"], row["batch"])]
    r = ratio(row, "corenet", "torch")
    if row["dtype"] != "float32":
        word = "(info)"
    elif r is None:
        word = "n/a"
    else:
        word = "PASS" if r >= target else "FAIL"
    return target, word + (" (noisy)" if noisy(row) else "")


def _fmt(v, spec="{:,.0f}"):
    return "—" if v is None else spec.format(v)


def format_row(row) -> str:
    med = {k: v["median"] for k, v in row["rates"].items()}
    target, ok = verdict(row)
    return (f"  t={row['threads']} {row['dtype']:7s} {row['net']:>14s} b{row['batch']:<5d} "
            f"corenet {_fmt(med.get('corenet')):>8s}  twin {_fmt(med.get('twin')):>8s}  "
            f"torch {_fmt(med.get('torch')):>8s}  c/torch "
            f"{_fmt(ratio(row, 'corenet', 'torch'), '{:.2f}'):>5s} (≥{target}) {ok:14s} "
            f"c/twin {_fmt(ratio(row, 'corenet', 'twin'), '{:.2f}')}  "
            f"layers {_fmt(med.get('layers'))}  fit {_fmt(med.get('fit'))}  "
            f"[{row.get('corenet_path')}; foreign tasks "
            f"{_fmt(row.get('foreign_tasks'), '{:.1f}')}]")


def markdown(rows, header=None) -> str:
    """The result tables (throughput per thread count, then peak memory), preceded by the
    command, machine, versions and load when ``header`` is given."""
    out = []
    if header:
        m, v = header["machine"], header["versions"]
        lb, la = header["load_before"], header["load_after"]
        out += [f"Command: `{header['command']}` ({header['elapsed_s']:.0f} s, "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(header['finished']))})", "",
                f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python "
                f"{m['python']}; numpy {v.get('numpy')}, corenet {v.get('corenet')}, torch "
                f"{v.get('torch', 'not installed')}; threads in effect (every loaded BLAS "
                f"library for corenet and the twin, torch.get_num_threads for PyTorch): "
                + "; ".join(f"{t}: " + ", ".join(
                    f"{impl} {'/'.join(map(str, val)) if isinstance(val, list) else val}"
                    for impl, val in d.items())
                    for t, d in header["threads_in_effect"].items()), "",
                f"Load average (1/5/15 min) before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, after "
                f"{la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}.", ""]
        if header.get("check"):
            worst = max(max(d.values()) for d in header["check"].values())
            out += [f"Same-math check (float64, 3 steps from equal weights, corenet default "
                    f"step vs layer path, twin, PyTorch): max |Δ| = {worst:.1e}.", ""]
    for threads in sorted({r["threads"] for r in rows}):
        sel = [r for r in rows if r["threads"] == threads]
        out += [f"### Throughput, threads = {threads} (steps/s, median of repeats)", "",
                "| net | batch | dtype | corenet | NumPy twin | PyTorch | corenet/PyTorch "
                "| target | verdict | corenet/twin | corenet layer path | `model.fit` (fit/step) "
                "| spread | foreign tasks | load |",
                "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for row in sel:
            med = {k: v["median"] for k, v in row["rates"].items()}
            target, ok = verdict(row)
            fit = med.get("fit")
            fit_s = "—" if fit is None else f"{fit:,.0f} ({fit / med['corenet']:.2f})"
            spread = max(v["spread"] for v in row["rates"].values())
            torch_s = _fmt(med.get("torch")) if "torch" in med else "not installed"
            out.append(
                f"| {row['net']} | {row['batch']} | {row['dtype']} | {_fmt(med.get('corenet'))} "
                f"| {_fmt(med.get('twin'))} | {torch_s} "
                f"| {_fmt(ratio(row, 'corenet', 'torch'), '{:.2f}')} | ≥ {target} | {ok} "
                f"| {_fmt(ratio(row, 'corenet', 'twin'), '{:.2f}')} | {_fmt(med.get('layers'))} "
                f"| {fit_s} | {spread:.0%} | {_fmt(row.get('foreign_tasks'), '{:.1f}')} "
                f"| {row['load_before']:.1f}→{row['load_after']:.1f} |")
        out += ["", f"### Peak memory, threads = {threads}", "",
                "Peak RSS of each worker process while training the configuration, MiB (in "
                "brackets: increase over the worker's RSS before the model and data were "
                "built); *allocs*: tracemalloc peak of the NumPy/Python allocations of 3 "
                "steps, KiB.", "",
                "| net | batch | dtype | corenet RSS | layer path RSS | twin RSS | PyTorch RSS "
                "| corenet allocs | layer path allocs | twin allocs |",
                "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in sel:
            m = row["memory"]

            def rss(impl):
                if impl not in m:
                    return "—"
                return f"{m[impl]['peak_mib']:.0f} (+{m[impl]['delta_mib']:.1f})"

            def heap(impl):
                v = m.get(impl, {}).get("heap_peak_kib")
                return "—" if v is None else f"{v:,.1f}"

            out.append(f"| {row['net']} | {row['batch']} | {row['dtype']} | {rss('corenet')} "
                       f"| {rss('layers')} | {rss('twin')} | {rss('torch')} "
                       f"| {heap('corenet')} | {heap('layers')} | {heap('twin')} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short warm-up and repeats")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5, quick 3)")
    p.add_argument("--repeat-time", type=float, default=None, help="seconds per repeat")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds")
    p.add_argument("--configs", nargs="+", metavar="NET:BATCH",
                   help="subset of the configurations, e.g. 784-300-100-10:128 (default: all)")
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS,
                   help="implementations to run (default: all)")
    p.add_argument("--no-fit", action="store_true", help="skip the model.fit timing")
    p.add_argument("--no-layers", action="store_true",
                   help="skip corenet's layer-by-layer step (fast_path=False)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="seconds of quiet before each worker's block when threads > 1")
    p.add_argument("--no-check", action="store_true", help="skip the same-math check")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each configuration wait for fewer than --max-foreign "
                        "foreign runnable tasks (sampled over 1 s), SECONDS in total at most")
    p.add_argument("--max-foreign", type=float, default=0.3)
    p.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                   help="extra environment variable for the workers (repeatable), e.g. "
                        "OMP_WAIT_POLICY=PASSIVE")
    p.add_argument("--markdown", help="write the result tables (Markdown) to this file")
    p.add_argument("--json", help="write the raw results (JSON) to this file")
    args = p.parse_args(argv)
    if args.configs:
        wanted = [tuple(c.rsplit(":", 1)) for c in args.configs]
        args.configs = [(n, int(b)) for n, b in wanted]
        unknown = [c for c in args.configs if c not in TARGETS]
        if unknown:
            p.error(f"unknown configuration(s) {unknown}; known: {sorted(TARGETS)}")
    else:
        args.configs = CONFIGS
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.repeat_time = args.repeat_time or (0.06 if args.quick else 0.15)
    args.warmup = args.warmup or (0.05 if args.quick else 0.15)

    has_torch = importlib.util.find_spec("torch") is not None
    skip = {"torch"} if not has_torch else set()
    skip |= {"fit"} if args.no_fit else set()
    skip |= {"layers"} if args.no_layers else set()
    impls = [i for i in args.impls if i not in skip]
    facts = machine_facts()
    print(f"machine: {facts['cpu']}, {facts['cores']} cores, Python {facts['python']}")
    print("PyTorch:", "installed" if has_torch else "not installed (column skipped)")
    args.waiter = QuietWaiter(args.wait_quiet, args.max_foreign)
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
          + ("  (busy machine: numbers are noisy)" if load0[0] > 0.5 * facts["cores"] else ""))
    t0 = time.time()
    check = None
    if not args.no_check:
        res = subprocess.run([sys.executable, os.path.join(HERE, "mlp_impls.py"), "check"],
                             capture_output=True, text=True, check=True)
        check = json.loads(res.stdout.strip().splitlines()[-1])
        worst = max(max(v.values()) for v in check.values())
        print(f"same-math check (float64, 3 steps from equal weights): max |Δ| = {worst:.1e}")
    rows, infos = [], {}
    for threads in args.threads:
        print(f"threads = {threads}")
        r, infos[threads] = run_threads(threads, impls, args.dtypes, args, print)
        rows += r
    load1 = os.getloadavg()
    elapsed = time.time() - t0
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; "
          f"total {elapsed:.0f} s")
    versions = {k: v for info in infos.values() for i in info.values()
                for k, v in i.items() if k in ("numpy", "corenet", "torch")}
    blas = {t: {impl: i.get("blas_threads", i.get("torch_threads"))
                for impl, i in info.items()} for t, info in infos.items()}
    print("versions:", versions, "| threads in effect:", blas)
    header = {"command": " ".join([os.path.basename(sys.executable), "benchmarks/bench_mlp.py"]
                                  + (argv if argv is not None else sys.argv[1:])),
              "machine": facts, "load_before": load0, "load_after": load1,
              "elapsed_s": elapsed, "versions": versions, "threads_in_effect": blas,
              "check": check, "finished": time.time()}
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(rows, header))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
