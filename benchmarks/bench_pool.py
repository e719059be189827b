"""Pooling and activation kernels vs PyTorch CPU: forward + backward on a 64x32x32x32
float32 map (N, C, H, W), same thread count for both (``torch.set_num_threads``).

Usage::

    /work/venv/bin/python benchmarks/bench_pool.py [--threads 1 2] [--reps 25]
        [--rounds 5] [--block 5] [--wait-quiet 60] [--out benchmarks/RESULTS_pool.md]

Timing: each case runs ``forward`` then ``backward`` once per repetition; corenet and
PyTorch alternate in blocks of ``--block`` timed back-to-back repetitions, each block
after one untimed repetition (so machine noise hits both alike, and each library is
timed in its own steady state, as a program using only that library runs it), after
warm-up; the median wall time over ``--reps`` timed repetitions is reported.
Why blocks: the arrays here are 8 MB each; a forward + backward pair touches 32-40 MB
and the L3 holds 32 MB, so alternating the libraries call by call (``--block 0``)
times every call in the cache state the other library left (its inputs and recycled
output buffers mostly evicted), a state no single-library program is in; the
memory-bound rows then measure LRU luck, see the notes in RESULTS_pool.md. The whole table is measured ``--rounds`` times,
the cases in a new (seeded) order each round, since the memory malloc hands back and
what is still cached depend on the case before; the speed-up column is the median over
rounds of the per-round ratio, with its range.
``--wait-quiet S`` waits (up to S seconds) before each case until the machine is not
busy (other processes under 3 % of a core for 0.5 s) and measures a case again (at most 4
times in all) while other processes used more than 2 % of a core during it (/proc/stat
minus this process); rows still disturbed say so in their note. Warm-up: at least 3
pairs and 50 ms of them. Outputs are allocated by each call, as the layers do.

What runs:

* pooling: ``corenet.kernels`` ``max_pool2d_*`` / ``avg_pool2d_*`` (what the pooling
  layers call) vs the aten kernels ``max_pool2d_with_indices`` (+ ``_backward``),
  ``avg_pool2d`` (+ ``_backward``).
* activations: the activation objects that corenet's ``activation`` layer calls
  (``registry.create("activation", name)``: ``y = a.forward(x)``, then
  ``a.backward(x, y, dy)``; relu, leaky_relu and generalized_relu keep a bit mask of f'
  for that backward) vs PyTorch's aten kernels: the forward op and the fused
  ``*_backward`` op autograd runs, from the saved input/output (no autograd overhead), or
  a composite of torch ops where PyTorch has no fused backward (marked "composite").
  ``identity``: both libraries' identity returns its input and passes the gradient
  through (corenet ``Identity``, PyTorch ``nn.Identity``): no copy on either side; the
  row "identity copy" times the out-of-place copy kernel
  (``kernels.activation_forward/backward("identity", x)``) against ``clone()`` for
  reference (not a target row).

GB/s = logical bytes of the arrays each pass reads and writes / median time:
max pool fwd reads x, writes y and the int64 switches, bwd reads dy and the switches and
writes dx; avg pool the same without switches; activation fwd reads x, writes y, bwd
reads x (or y), dy and writes dx. The same byte count is used for PyTorch, so the ratio
of GB/s is the inverse ratio of times ("speed-up" > 1: corenet faster); the mask route
of the relu family moves fewer bytes than this count (its bwd reads x.size/8 bytes of
mask instead of x).

PyTorch: ``pip install torch==2.13.0`` (CPU wheel).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np

# the OpenMP settings the user gave (corenet sets defaults for unset ones at import)
_USER_OMP = {v: os.environ[v] for v in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if v in os.environ}

from corenet import config, kernels as K, registry  # noqa: E402

SHAPE = (64, 32, 32, 32)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848, 1.0507009873554804934


def _torch_activations(torch):
    F, A = torch.nn.functional, torch.ops.aten
    c = 2.0 / math.sqrt(math.pi)
    # name -> (forward(x) -> y, backward(x, y, dy) -> dx, composite?)
    return {
        "identity": (torch.nn.Identity(), lambda x, y, g: g, False),
        "identity copy": (lambda x: x.clone(), lambda x, y, g: g.clone(), True),
        "sigmoid": (torch.sigmoid, lambda x, y, g: A.sigmoid_backward(g, y), False),
        "sigmoid_symmetric": (lambda x: torch.sigmoid(x) - 0.5,
                              lambda x, y, g: A.sigmoid_backward(g, y + 0.5), True),
        "tanh": (torch.tanh, lambda x, y, g: A.tanh_backward(g, y), False),
        "scaled_tanh": (lambda x: 1.7159 * torch.tanh(x * (2 / 3)),
                        lambda x, y, g: A.tanh_backward(g, y / 1.7159) * (1.7159 * 2 / 3), True),
        "arctan": (torch.atan, lambda x, y, g: g / (1 + x * x), True),
        "softsign": (F.softsign, lambda x, y, g: g / (1 + x.abs()).square(), True),
        "relu": (torch.relu, lambda x, y, g: A.threshold_backward(g, y, 0), False),
        "leaky_relu": (lambda x: F.leaky_relu(x, 0.01),
                       lambda x, y, g: A.leaky_relu_backward(g, x, 0.01, False), False),
        "generalized_relu": (lambda x: F.leaky_relu(x, 0.0),
                             lambda x, y, g: A.leaky_relu_backward(g, x, 0.0, False), False),
        "elu": (F.elu, lambda x, y, g: A.elu_backward(g, 1.0, 1, 1, False, x), False),
        "selu": (F.selu, lambda x, y, g: A.elu_backward(g, SELU_ALPHA, SELU_SCALE, 1, False, x),
                 False),
        "softplus": (F.softplus, lambda x, y, g: A.softplus_backward(g, x, 1.0, 20.0), False),
        "erf": (torch.erf, lambda x, y, g: g * c * torch.exp(-x * x), True),
        "gaussian": (lambda x: torch.exp(-0.5 * x * x),
                     lambda x, y, g: -g * x * torch.exp(-0.5 * x * x), True),
        "sign": (torch.sign, None, False),
        "gelu": (F.gelu, lambda x, y, g: A.gelu_backward(g, x), False),
        "silu": (F.silu, lambda x, y, g: A.silu_backward(g, x), False),
    }


def _median_pair(fa, fb, reps, block=5, warmup=3, warm_seconds=0.05):
    """Median times of fa and fb over ``reps`` timed calls each, after at least ``warmup``
    pairs and ``warm_seconds`` of them (back-to-back calls: on the 2-core VM, after a
    pause the sleeping OpenMP worker is woken on the caller's core and the threads run one
    after the other until the scheduler spreads them again).

    ``block`` > 0: the libraries alternate in blocks of ``block`` + 1 back-to-back calls
    whose first call is not timed (it starts from the cache state the other library
    left), so each is timed in its own steady state, as in a program that uses only one
    of them, while machine noise still hits both alike. ``block`` = 0: the calls
    alternate one by one, so every call starts from the other library's cache state."""
    t0 = time.perf_counter()
    k = 0
    while k < warmup or time.perf_counter() - t0 < warm_seconds:
        fa()
        fb()
        k += 1
    ta, tb = [], []
    while len(ta) < reps:
        for f, acc in ((fa, ta), (fb, tb)):
            if block:
                f()
            for _ in range(max(1, block)):
                t = time.perf_counter()
                f()
                acc.append(time.perf_counter() - t)
    return float(np.median(ta[:reps])), float(np.median(tb[:reps]))


def _cpu_seconds():
    """(busy CPU seconds of the whole machine from /proc/stat, of this process)."""
    own = sum(os.times()[:2])
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK"), own
    except (OSError, ValueError, IndexError):
        return own, own


def _wait_quiet(limit):
    """Wait up to ``limit`` seconds for 0.5 s in which other processes used < 3 % of a
    core (/proc/stat, 10 ms ticks; this process's own threads do not count)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        (m0, o0), w0 = _cpu_seconds(), time.perf_counter()
        time.sleep(0.5)
        (m1, o1), w1 = _cpu_seconds(), time.perf_counter()
        if max(0.0, (m1 - m0) - (o1 - o0)) / (w1 - w0) < 0.03:
            return True
    return False


def _timed_pair(fa, fb, reps, wait_quiet, block=5):
    """Median pair; with ``wait_quiet`` repeated (up to 4 times) while other processes
    used more than 2 % of a core during the measurement. Returns (ta, tb, foreign share
    of one core during the kept measurement)."""
    for _ in range(4 if wait_quiet else 1):
        if wait_quiet:
            _wait_quiet(wait_quiet)
        (m0, o0), w0 = _cpu_seconds(), time.perf_counter()
        ta, tb = _median_pair(fa, fb, reps, block)
        (m1, o1), w1 = _cpu_seconds(), time.perf_counter()
        foreign = max(0.0, (m1 - m0) - (o1 - o0)) / (w1 - w0)
        if foreign <= 0.02:
            break
    return ta, tb, foreign


def cases(torch, rng):
    """[(label, bytes, corenet fn, torch fn, note)] for one thread count."""
    x = rng.standard_normal(SHAPE).astype(np.float32)
    n = x.size
    tx = torch.from_numpy(x)
    A = torch.ops.aten
    out = []

    # --- max pooling 2x2 / 2
    y, sw = K.max_pool2d_forward(x, 2)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    tdy = torch.from_numpy(dy)

    def cn_max():
        yy, ss = K.max_pool2d_forward(x, 2)
        K.max_pool2d_backward(dy, ss, x.shape)

    def th_max():
        yy, ii = A.max_pool2d_with_indices(tx, [2, 2], [2, 2])
        A.max_pool2d_with_indices_backward(tdy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, ii)

    ty, ti = A.max_pool2d_with_indices(tx, [2, 2], [2, 2])
    assert np.array_equal(ty.numpy(), y) and np.array_equal(ti.numpy(), sw)
    nb = 4 * n + 4 * n // 4 + 8 * n // 4 + (4 * n // 4 + 8 * n // 4 + 4 * n)
    out.append(("max_pool2d 2x2", nb, cn_max, th_max, ""))

    # --- average pooling 2x2 / 2
    def cn_avg():
        K.avg_pool2d_forward(x, 2)
        K.avg_pool2d_backward(dy, x.shape, 2)

    def th_avg():
        A.avg_pool2d(tx, [2, 2], [2, 2])
        A.avg_pool2d_backward(tdy, tx, [2, 2], [2, 2], [0, 0], False, True, None)

    assert np.allclose(A.avg_pool2d(tx, [2, 2], [2, 2]).numpy(), K.avg_pool2d_forward(x, 2),
                       rtol=1e-6, atol=1e-7)
    nb = 4 * n + 4 * n // 4 + (4 * n // 4 + 4 * n)
    out.append(("avg_pool2d 2x2", nb, cn_avg, th_avg, ""))

    # --- activations
    g = rng.standard_normal(SHAPE).astype(np.float32)
    tg = torch.from_numpy(g)
    for name, (tf, tb, composite) in _torch_activations(torch).items():
        note = "composite" if composite else ""
        if name == "identity copy":
            def cn():
                yy = K.activation_forward("identity", x)
                K.activation_backward("identity", x, yy, g)
            note = "reference (not a target): copies"
        elif name == "sign":
            a = registry.create("activation", name)

            def cn(a=a):
                a.forward(x)
        else:
            a = registry.create("activation", name)
            ya, ta = a.forward(x), tf(tx)
            np.testing.assert_allclose(ya, ta.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(a.backward(x, ya, g), tb(tx, ta, tg).numpy(),
                                       rtol=1e-4, atol=1e-5)

            def cn(a=a):
                yy = a.forward(x)
                a.backward(x, yy, g)
        if name == "sign":
            def th(tf=tf):
                tf(tx)
        else:
            def th(tf=tf, tb=tb):
                yy = tf(tx)
                tb(tx, yy, tg)
        nb = 8 * n if name == "sign" else 0 if name == "identity" else 8 * n + 12 * n
        if name == "identity":
            note = "no copy on either side"
        label = name + (" (fwd only)" if name == "sign" else "")
        out.append((label, nb, cn, th, note))
    return out


def run(threads, reps, rounds=1, wait_quiet=0.0, block=5):
    """{label: (bytes, [(corenet s, torch s, foreign core share) per round], note)}."""
    import torch

    config.set_num_threads(threads)
    torch.set_num_threads(threads)
    table = cases(torch, np.random.default_rng(0))
    res = {label: (nb, [], note) for label, nb, _, _, note in table}
    order = np.random.default_rng(threads)
    for r in range(rounds):
        # the cases in a new order each round (the first in the given one): the memory
        # the allocator hands back and what is still cached depend on the case before
        for i in (range(len(table)) if r == 0 else order.permutation(len(table))):
            label, nb, cn, th, note = table[i]
            res[label][1].append(_timed_pair(cn, th, reps, wait_quiet, block))
    return res


def activation_split(reps):
    """corenet only, 1 thread, preallocated outputs: forward and backward times apart
    (the activation objects, as in the table; relu family: backward from the mask)."""
    config.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    g = rng.standard_normal(SHAPE).astype(np.float32)
    o = np.empty_like(x)

    def med(f):
        f()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts)) * 1e3

    rows = []
    for name in sorted(K.ACTIVATION_CODES):
        a = registry.create("activation", name)
        tf = med(lambda: a.forward(x, out=o))
        tb = None
        if name != "sign":
            y = a.forward(x)
            tb = med(lambda: a.backward(x, y, g, out=o))
        rows.append((name, tf, tb))
    return rows


NOTES = """## Notes

* Memory-bound rows (the relu family, sign, the identity copy): both libraries run at
  the speed of the memory level the arrays sit in, so these ratios stay near 1 (1.1-1.4x
  in the library's own steady state, the `--block` measurement of the tables above).
  corenet's relu, leaky_relu and generalized_relu keep a 1-bit mask of f' from the
  forward for the backward, which then reads x.size/8 bytes instead of x (34 instead of
  40 MB per float32 forward+backward pair here): that is their margin.
* Cache state decides these rows, which is why the libraries alternate in blocks. With
  `--block 0` (the libraries alternating call by call, every call starting from the
  cache state the other one left: a forward+backward pair touches 32-40 MB, the L3
  holds 32 MB) the memory-bound rows measured 0.78-0.98x at 2 threads (relu 0.78x,
  generalized_relu 0.87x, sigmoid 0.92x, sign 0.88x; 1 thread: relu 0.98x, the rest
  >= 1.0x) in the previous record of this file. With the L3 flushed before every call
  (both libraries streaming from DRAM) the relu pair and sign measured 0.92-1.11x: the
  same bytes at the same DRAM bandwidth.
* identity: neither library copies (corenet's `Identity` activation and PyTorch's
  `nn.Identity` return their input, the backward passes the gradient on), so the row
  compares Python call overheads (about 1 us); "identity copy" shows the copy kernels.
* 2 threads: corenet's default OpenMP wait policy (`OMP_WAIT_POLICY=ACTIVE`,
  `GOMP_SPINCOUNT=2000`, set in `corenet/__init__.py`) lets the worker spin ~0.1 ms after
  a region, so back-to-back regions start in a few us; after a longer pause it sleeps
  and waking it costs 30-150 us on this VM (with `PASSIVE` ~10 us, but the woken worker
  is then often put on the caller's core and the two threads run one after the other).
  Each case is therefore warmed up for >= 50 ms of back-to-back calls. The second thread
  adds little to memory-bound loops while the arrays stay cached (one core already
  reaches the L3 bandwidth); their 2-thread rows vary more from run to run than the
  1-thread ones. Element-wise loops go parallel above 64 Ki elements (256 Ki for the
  memory-bound ones; 256 Ki / 1 Mi under PASSIVE), pooling above 32 Ki (1 Mi under
  PASSIVE), in dynamically scheduled chunks.
* Tried and dropped: non-temporal (streaming) stores for large outputs (5-10 % faster
  when the destination is not cached, 20-35 % slower when malloc hands back a buffer
  that still is, which in this loop depends on PyTorch's allocations); 64-byte-aligned
  outputs (no measurable effect).
"""


def _row(label, nb, pairs, note):
    tc = float(np.median([p[0] for p in pairs]))
    tt = float(np.median([p[1] for p in pairs]))
    ratios = [p[1] / p[0] for p in pairs]
    busy = max(p[2] for p in pairs)
    if busy > 0.02:
        note = (note + "; " if note else "") + f"other processes used {busy:.0%} of a core"
    s = float(np.median(ratios))
    rng = f"{min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else ""
    gbs = (lambda t: f"{nb / t / 1e9:.2f}") if nb else (lambda t: "-")
    ms = (lambda t: f"{t * 1e3:.2f}") if nb else (lambda t: f"{t * 1e3:.4f}")
    line = (f"| {label} | {ms(tc)} | {gbs(tc)} | {ms(tt)} | {gbs(tt)} | {s:.2f}x | {rng} "
            f"| {note} |")
    return line, s


def report(results, reps, rounds, loads, command, split=None, block=5):
    import torch

    lines = ["# Pooling and activation kernels vs PyTorch CPU", "",
             f"Input float32 {SHAPE} (N, C, H, W), forward + backward per repetition, median "
             f"of {reps} timed repetitions after warm-up, the libraries alternating in "
             f"blocks of {block} (each after one untimed call; 0 = call by call), "
             f"{rounds} round(s) of the whole table; outputs allocated per call.",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
             f"(shared; 1/5/15-min load averages are given per section).",
             f"numpy {np.__version__}, torch {torch.__version__}; OMP_WAIT_POLICY="
             f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}, GOMP_SPINCOUNT="
             f"{os.environ.get('GOMP_SPINCOUNT', '(unset)')} (as set by corenet unless "
             f"given; one libgomp runs both libraries' threads in this process).",
             f"Command: `{command}`.",
             "GB/s = logical bytes read + written by the fwd and bwd kernels / time (see "
             "benchmarks/bench_pool.py); speed-up = PyTorch time / corenet time (median over "
             "rounds; range = min-max over rounds). What each row runs: see the docstring "
             "of benchmarks/bench_pool.py.", ""]
    for threads, res in results.items():
        lines += [f"## {threads} thread{'s' if threads > 1 else ''}", "",
                  f"Load average before {loads[threads][0]}, after {loads[threads][1]}.", "",
                  "| kernel | corenet ms | corenet GB/s | PyTorch ms | PyTorch GB/s | "
                  "speed-up | range | note |", "|---|---:|---:|---:|---:|---:|---|---|"]
        pools, acts = [], []
        for label, (nb, pairs, note) in res.items():
            line, s = _row(label, nb, pairs, note)
            lines.append(line)
            if "pool" in label:
                pools.append((label, s))
            elif not note.startswith("reference"):
                acts.append((label, s))
        lines.append("")
        lines.append("Targets: pooling >= 3x PyTorch: " + ", ".join(
            f"{n} {s:.1f}x {'met' if s >= 3 else 'MISSED'}" for n, s in pools) + ".")
        missed = [(n, s) for n, s in acts if s < 1.0]
        lines.append(f"Activations >= 1.0x: {len(acts) - len(missed)} of {len(acts)} met; "
                     f"missed: " + (", ".join(f"{n} {s:.2f}x (PyTorch {1 / s:.2f}x faster)"
                                             for n, s in missed) or "none") + ".")
        lines.append("")
    if split:
        rows, load = split
        lines += ["## corenet activation forward / backward split (1 thread, out= buffers)", "",
                  f"Load average before {load}.", "", "| activation | fwd ms | bwd ms |",
                  "|---|---:|---:|"]
        lines += [f"| {n} | {f:.2f} | {'-' if b is None else f'{b:.2f}'} |" for n, f, b in rows]
        lines += ["", NOTES]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=5,
                    help="measure the whole table this many times, the cases in a new "
                         "order each round (default 5)")
    ap.add_argument("--block", type=int, default=5,
                    help="time each library in blocks of BLOCK back-to-back calls after one "
                         "untimed call (default 5); 0: alternate the libraries call by call")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="before each case wait up to SECONDS for no other runnable task")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS_pool.md"))
    args = ap.parse_args()
    command = " ".join(["/work/venv/bin/python", "benchmarks/bench_pool.py"] + sys.argv[1:])
    for var, value in _USER_OMP.items():
        command = f"{var}={value} " + command
    results, loads = {}, {}
    for t in args.threads:
        before = tuple(round(v, 2) for v in os.getloadavg())
        results[t] = run(t, args.reps, args.rounds, args.wait_quiet, args.block)
        loads[t] = (before, tuple(round(v, 2) for v in os.getloadavg()))
    before = tuple(round(v, 2) for v in os.getloadavg())
    split = (activation_split(max(5, args.reps // 3)), before)
    text = report(results, args.reps, args.rounds, loads, command, split, args.block)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
