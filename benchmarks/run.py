#!/usr/bin/env python3
"""Run the shared RNN benchmark (../shared/bench) with unroll as one more implementation.

Everything is measured in the same run, side by side: numpy-handwritten (the reference: its
agreement check and the /numpy-hw ratios), numpy-handwritten-batched, torch-eager-cell,
torch-fused, jax-scan-jit, hips-autograd (those that import in this Python) and unroll
(benchmarks/impl_unroll.py). Results go to benchmarks/results/.

    python benchmarks/run.py                  # all workloads, the harness's full protocol
    python benchmarks/run.py --quick          # smaller time budgets
    python benchmarks/run.py --workloads W2 --impls numpy-handwritten unroll

Any other option is passed on to the harness (see its README). The harness lives outside this
repository; point --bench-dir (or UNROLL_BENCH_DIR) at it if it is not at ../shared/bench.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-dir", default=os.environ.get(
        "UNROLL_BENCH_DIR", os.path.join(ROOT, "..", "shared", "bench")))
    args, rest = ap.parse_known_args(argv)
    bench = os.path.abspath(args.bench_dir)
    if not os.path.exists(os.path.join(bench, "run.py")):
        print(f"no benchmark harness at {bench}; pass --bench-dir", file=sys.stderr)
        return 2
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    cmd = [sys.executable, os.path.join(bench, "run.py"),
           "--impl-file", os.path.join(HERE, "impl_unroll.py"),
           "--impl-file", os.path.join(HERE, "impl_unroll_numba.py"),
           "--out", os.path.join(out, "results.json"),
           "--md", os.path.join(out, "results.md")] + rest
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
