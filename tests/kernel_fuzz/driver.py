"""Seeded fuzz test of the input validation of the kernel facade (:mod:`corenet.kernels`).

The driver: judging one call, the fuzz loop of the child process, starting that child from
pytest, and the command line. The child runs::

    python tests/kernel_fuzz/driver.py --families FAMILY ...

and a case is reproduced in-process with a traceback by::

    python tests/kernel_fuzz/driver.py --case FUNCTION INDEX
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

if __name__ == "__main__" and not __package__:   # run as a script: the package's parent
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corenet import kernels as K  # noqa: E402

from kernel_fuzz import FAMILIES, SPECS  # noqa: E402 - importing it registers every family
from kernel_fuzz.common import CALL_TIMEOUT, CASES, RUN_TIMEOUT, SEED, Invalid  # noqa: E402
from kernel_fuzz.mutations import mutate  # noqa: E402


def case(fn, i):
    """(valid kwargs, valid results, mutation, mutated kwargs) of case i of fn."""
    rng = np.random.default_rng([SEED, zlib.crc32(fn.encode()), i])
    dt = np.dtype(rng.choice([np.float32, np.float64]))
    kw = SPECS[fn]["build"](rng, dt)
    valid = SPECS[fn]["oracle"](kw)
    what, bad = mutate(rng, fn, kw, valid)
    return kw, valid, what, bad


def describe(kw):
    parts = []
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            flags = "" if v.flags.c_contiguous else " non-contiguous"
            flags += "" if v.flags.writeable else " read-only"
            parts.append(f"{k}=ndarray{v.shape} {v.dtype}{flags}")
        else:
            r = repr(v)
            parts.append(f"{k}={r if len(r) < 60 else r[:57] + '...'}")
    return ", ".join(parts)


def names_kernel(exc, fn):
    msg = str(exc)
    return "kernels." in msg or "kernels:" in msg or "kernels[" in msg or fn in msg


def flatten(result):
    return list(result) if isinstance(result, tuple) else [result]


def judge(fn, kw):
    """None if the call behaved as the contract says, else what went wrong."""
    try:
        expected = SPECS[fn]["oracle"](kw)
        why = None
    except Invalid as e:
        expected, why = None, str(e)
    except Exception as e:      # noqa: BLE001 - a bug of this test's oracle
        return f"the oracle failed (a bug of this test): {type(e).__name__}: {e}"
    outs = [kw[k] for k in SPECS[fn]["outs"] if isinstance(kw.get(k), np.ndarray)]
    before = {k: v.tobytes() for k, v in kw.items() if isinstance(v, np.ndarray)
              and k not in SPECS[fn]["outs"] and k not in SPECS[fn]["inplace"]
              and not any(np.may_share_memory(v, o) for o in outs)}
    try:
        result = getattr(K, fn)(**kw)
    except (ValueError, TypeError, NotImplementedError, MemoryError) as e:
        if not names_kernel(e, fn):
            return f"raised {type(e).__name__} without naming the kernel: {e}"
        if expected is not None:
            return f"rejected a valid call: {type(e).__name__}: {e}"
        return None
    except Exception as e:      # noqa: BLE001 - every other exception is a validation hole
        return f"raised {type(e).__name__}: {e}"
    if expected is None:
        return f"accepted an invalid call ({why})"
    changed = [k for k, v in before.items() if kw[k].tobytes() != v]
    if changed:
        return f"changed its input(s) {changed}"
    got = flatten(result)
    if len(got) != len(expected):
        return f"returned {len(got)} results, expected {len(expected)}"
    for j, (g, e) in enumerate(zip(got, expected)):
        if e is None:
            if g is not None:
                return f"result {j} is {type(g).__name__}, expected None"
        elif isinstance(g, np.generic) and e[0] == ():   # NumPy's 0-d results are scalars
            if g.dtype != e[1]:
                return f"result {j} is a {g.dtype} scalar, expected {e[1]}"
        elif not isinstance(g, np.ndarray) or (g.shape, g.dtype) != e:
            return f"result {j} is {describe({'r': g})[2:]}, expected shape {e[0]} {e[1]}"
    return None


def emit(tag, **fields):
    print(tag, json.dumps(fields, default=str), flush=True)


def run_families(families):
    """The fuzz loop of the child: one CALL line before each call (a crash leaves it
    last), one FAIL line per failure, one DONE line per family."""
    for family in families:
        calls = 0
        for fn in sorted(f for f, s in SPECS.items() if s["family"] == family):
            for i in range(CASES):
                emit("CALL", family=family, fn=fn, i=i, call="building the case")
                try:
                    kw, valid, what, bad = case(fn, i)
                except Exception as e:  # noqa: BLE001 - a bug of this test's builders
                    emit("FAIL", family=family, fn=fn, i=i, call="building the case",
                         problem=f"{type(e).__name__}: {e}", args="")
                    calls += 2
                    continue
                for label, args in (("valid call", kw), (f"mutation {what}", bad)):
                    emit("CALL", family=family, fn=fn, i=i, call=label)
                    faulthandler.dump_traceback_later(CALL_TIMEOUT, exit=True)
                    problem = judge(fn, args)
                    faulthandler.cancel_dump_traceback_later()
                    calls += 1
                    if problem:
                        emit("FAIL", family=family, fn=fn, i=i, call=label, problem=problem,
                             args=describe(args))
        emit("DONE", family=family, calls=calls)


def run_child(families):
    """Run the fuzz loop in a child process; returns {family: report} where a report
    holds calls, failures and a crash (or hang) description."""
    reports = {f: {"calls": 0, "failures": [], "crash": None} for f in families}
    todo = list(families)
    while todo:
        cmd = [sys.executable, "-X", "faulthandler", __file__, "--families", *todo]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
            stdout, stderr, rc = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr, rc = f"timed out after {RUN_TIMEOUT} s", "timeout"
        last = None
        for line in stdout.splitlines():
            tag, _, body = line.partition(" ")
            if tag not in ("CALL", "FAIL", "DONE"):
                continue
            rec = json.loads(body)
            if tag == "CALL":
                last = rec
            elif tag == "FAIL":
                reports[rec["family"]]["failures"].append(rec)
            else:
                reports[rec["family"]]["calls"] = rec["calls"]
                todo.remove(rec["family"])
                last = None
        if todo and last is None:
            raise RuntimeError(f"the fuzz child failed before its first case (rc {rc}):\n"
                               f"{stderr[-3000:]}")
        if todo:                                # crashed or hung in case `last`
            kw, _, what, bad = case(last["fn"], last["i"])
            reports[last["family"]]["crash"] = (
                f"child died (rc {rc}) in {last['fn']} case {last['i']}, {last['call']} "
                f"(seed {SEED}): valid call {describe(kw)}; mutation {what}: {describe(bad)}\n"
                f"stderr: {stderr[-2000:]}\n"
                f"reproduce: python tests/kernel_fuzz/driver.py --case {last['fn']} {last['i']}")
            todo.remove(last["family"])
    return reports


# ----------------------------------------------------------------------------- command line
def reproduce(fn, i):
    """Run case i of fn in this process, with tracebacks."""
    kw, valid, what, bad = case(fn, i)
    print(f"seed {SEED}, {fn} case {i}\nvalid call: {describe(kw)}\n  expected: {valid}")
    print(f"  verdict: {judge(fn, kw) or 'ok'}")
    print(f"mutation {what}: {describe(bad)}")
    try:
        print(f"  oracle: {SPECS[fn]['oracle'](bad)}")
    except Invalid as e:
        print(f"  oracle: invalid ({e})")
    print(f"  verdict: {judge(fn, bad) or 'ok'}")
    getattr(K, fn)(**bad)
    print("  (the mutated call returned)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES)
    parser.add_argument("--case", nargs=2, metavar=("FUNCTION", "INDEX"))
    args = parser.parse_args()
    if args.case:
        reproduce(args.case[0], int(args.case[1]))
    else:
        t0 = time.perf_counter()
        run_families(args.families or FAMILIES)
        print(f"TIME {time.perf_counter() - t0:.2f}", file=sys.stderr)
