#!/usr/bin/env python3
"""How long it takes to get the first gradient, and how unrolling scales with τ.

1. unroll + first gradient per workload (W1-W4 of ../shared/bench): each in a fresh process,
   after ``import unroll``: declare the circuit, unroll over T steps, build the backward graph,
   compile, run once. Also ``import unroll`` itself, and JAX's first call (trace + compile +
   run) in a fresh process of its own, when JAX is installed, alternating with unroll's runs
   so that both see the same machine. Medians, and the best run (the cost on a quiet machine).
2. Unroll + first gradient of W3's cell over τ = 100, 1,000, 10,000 steps, each in a fresh
   process, against JAX's first call at the same τ (programs written from small unrollings:
   unroll/compile/template.py).
3. Unrolling an LSTM-sized circuit (W3's cell, H = 64) over τ = 1,000 ... 10,000 steps.

    python benchmarks/construction.py [--repeats 5] [--workloads W2] [--no-scaling]
                                      [--bench-dir ../shared/bench]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FIRST = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
sys.path[:0] = [{bench!r}, {here!r}, {root!r}]
import unroll
t1 = time.perf_counter()
import dataclasses, workloads as W, impl_unroll
w = W.get({key!r})
w = dataclasses.replace(w, T={steps!r} or w.T)
p, d = W.init_params(w, np.float32), W.make_data(w, np.float32)
a = time.perf_counter()
g = impl_unroll.circuit(w).unroll(steps=w.T)
b = time.perf_counter()
g.value_and_grad(p, **d)
c = time.perf_counter()
g.value_and_grad(p, **d)
e = time.perf_counter()
print({{"import": t1 - t0, "unroll": b - a, "first": c - a, "steady": e - c}})
"""

JAX = r"""
import sys, time, dataclasses
sys.path[:0] = [{bench!r}]
import numpy as np, workloads as W, impl_jax_scan as J
w = W.get({key!r})
w = dataclasses.replace(w, T={steps!r} or w.T)
p, d = W.init_params(w, np.float32), W.make_data(w, np.float32)
a = time.perf_counter(); f = J.make(w, p, d); f(); b = time.perf_counter()
print({{"first": b - a}})
"""


def fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"})
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return eval(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-dir", default=os.environ.get(
        "UNROLL_BENCH_DIR", os.path.join(ROOT, "..", "shared", "bench")))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workloads", nargs="+", default=["W1", "W2", "W3", "W4"])
    ap.add_argument("--no-scaling", action="store_true", help="skip the τ-scaling part")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "construction.json"))
    args = ap.parse_args(argv)
    bench = os.path.abspath(args.bench_dir)
    sys.path[:0] = [bench, HERE, ROOT]
    try:
        import jax  # noqa: F401
        has_jax = True
    except ImportError:
        has_jax = False
    res = {"first_gradient": {}, "unroll_scaling": []}
    print("unroll + first gradient (fresh process each; median of "
          f"{args.repeats}; ms)\n")
    print(f"{'wl':3} {'import unroll':>13} {'unroll':>8} {'unroll+1st grad':>16} "
          f"{'(best)':>8} {'steady fwd+bwd':>15} {'jax 1st call':>13} {'(best)':>8}")
    for key in args.workloads:
        runs = []
        jruns = []
        for _ in range(args.repeats):        # alternate, so both see the same machine
            runs.append(fresh(FIRST.format(bench=bench, here=HERE, root=ROOT, key=key,
                                           steps=None)))
            if has_jax:
                jruns.append(fresh(JAX.format(bench=bench, key=key, steps=None)))
        med = {k: statistics.median(r[k] for r in runs) * 1e3 for k in runs[0]}
        med["first_best"] = min(r["first"] for r in runs) * 1e3
        if jruns:
            med["jax_first"] = statistics.median(r["first"] for r in jruns) * 1e3
            med["jax_first_best"] = min(r["first"] for r in jruns) * 1e3
        res["first_gradient"][key] = med
        jx = (f"{med['jax_first']:13.0f} {med['jax_first_best']:8.0f}" if jruns
              else f"{'-':>13} {'-':>8}")
        print(f"{key:3} {med['import']:13.0f} {med['unroll']:8.1f} {med['first']:16.1f} "
              f"{med['first_best']:8.1f} {med['steady']:15.1f} {jx}", flush=True)

    if args.no_scaling:
        _save(res, args.out)
        return 0
    print("\nunroll + first gradient of W3's cell over τ steps (fresh process each; median of "
          f"{args.repeats}; ms)\n")
    print(f"{'τ':>6} {'unroll':>8} {'unroll+1st grad':>16} {'(best)':>8} {'steady':>8} "
          f"{'jax 1st call':>13} {'(best)':>8} {'unroll/jax':>10}")
    res["first_gradient_over_tau"] = []
    for T in (100, 1000, 10000):
        runs, jruns = [], []
        for _ in range(args.repeats):
            runs.append(fresh(FIRST.format(bench=bench, here=HERE, root=ROOT, key="W3",
                                           steps=T)))
            if has_jax:
                jruns.append(fresh(JAX.format(bench=bench, key="W3", steps=T)))
        row = {"steps": T, **{k: statistics.median(r[k] for r in runs) * 1e3 for k in runs[0]},
               "first_best": min(r["first"] for r in runs) * 1e3}
        if jruns:
            row["jax_first"] = statistics.median(r["first"] for r in jruns) * 1e3
            row["jax_first_best"] = min(r["first"] for r in jruns) * 1e3
        res["first_gradient_over_tau"].append(row)
        jx = (f"{row['jax_first']:13.0f} {row['jax_first_best']:8.0f} "
              f"{row['first'] / row['jax_first']:10.2f}" if jruns else f"{'-':>13}")
        print(f"{T:6d} {row['unroll']:8.1f} {row['first']:16.1f} {row['first_best']:8.1f} "
              f"{row['steady']:8.1f} {jx}", flush=True)
    import workloads as W
    import impl_unroll
    from unroll.unrolling import unroll          # not Circuit.unroll: it keeps its graphs
    c = impl_unroll.circuit(W.get("W3"))
    unroll(c, 10)
    print("\nunrolling W3's LSTM cell (H = 64) over τ steps (best of 3)\n")
    for T in (1000, 2500, 5000, 10000):
        best = min(_time(lambda: unroll(c, T)) for _ in range(3))
        res["unroll_scaling"].append({"steps": T, "seconds": best})
        print(f"τ = {T:6d}: {best:6.3f} s   {best / T * 1e6:6.1f} µs per step", flush=True)
    _save(res, args.out)
    return 0


def _save(res: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(res, f, indent=1)


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
