"""Checkpointing's memory/time trade-off on W3 (the long LSTM: T = 1000, B = 16, H = 64) of
../shared/bench: peak memory of one forward+backward pass and its time, with every activation
stored (compiled program, reference interpreter) and with checkpoints every k steps.

    .venv-bench/bin/python benchmarks/memory.py      # or: make bench

Peak memory is tracemalloc's peak during the call (NumPy reports its allocations to it), above
what was allocated before (parameters and data); times are medians of separate untraced runs.
"""
import gc
import os
import statistics
import sys
import time
import tracemalloc

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import impl_unroll  # noqa: E402
import unroll as ur  # noqa: E402
from unroll.compile.program import Program  # noqa: E402
import workloads  # noqa: E402


def measure(g, params, data, repeat, **kw):
    g.value_and_grad(params, **data, **kw)                  # compile / warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        g.value_and_grad(params, **data, **kw)
        times.append(time.perf_counter() - t0)
    # the arrays over steps a program keeps from one call to the next (its Workspace) are
    # dropped first: the traced call allocates them again, so its peak counts them
    for prog in [o for o in gc.get_objects() if isinstance(o, Program)]:
        if prog.workspace is not None:
            prog.workspace.clear()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    out = g.value_and_grad(params, **data, **kw)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return statistics.median(times), peak, out


def main(repeat: int = 3) -> None:
    w = workloads.get("W3")
    rng = np.random.default_rng(0)
    params = {k: (0.1 * rng.standard_normal(s)).astype(np.float32)
              for k, s in w.param_shapes().items()}
    data = {"x": rng.standard_normal((w.T, w.B, w.D)).astype(np.float32),
            "y": rng.standard_normal((w.T, w.B, w.K)).astype(np.float32)}
    g = impl_unroll.circuit(w).unroll(steps=w.T)
    rows = [("stored, interpreter", {"executor": "interpret"}), ("stored, compiled", {})]
    rows += [(f"checkpoint every {k}, compiled", {"checkpoint": k}) for k in (250, 100)]
    rows += [("checkpoint sqrt (k = 32), compiled", {"checkpoint": "sqrt"}),
             ("checkpoint every 10, compiled", {"checkpoint": 10})]
    rows += [(f"checkpoint {k}, interpreter", {"checkpoint": k, "executor": "interpret"})
             for k in ("sqrt", 100)]
    print(f"{w.describe()}, float32, fwd+bwd; median of {repeat}")
    print("| executor | time (ms) | peak memory (MiB) | max \\|Δgrad\\| vs interpreter | "
          "bitwise its stored program's |")
    print("|---|---|---|---|---|")
    ref = None
    for name, kw in rows:
        t, peak, (loss, grads) = measure(g, params, data, repeat, **kw)
        if kw.get("executor") == "interpret" and "checkpoint" not in kw:
            ref = grads
        diff = "—" if ref is None else \
            f"{max(float(np.abs(grads[k] - ref[k]).max()) for k in ref):.1e}"
        print(f"| {name} | {t * 1e3:.0f} | {peak / 2 ** 20:.1f} | {diff} | "
              f"{_bitwise(g, params, data, kw, grads)} |")


def _bitwise(g, params, data, kw, grads) -> str:
    """For a checkpointed run: are its gradients bitwise those of the same program stored
    (the compiled program with the same chunks, or the interpreter)?"""
    if "checkpoint" not in kw:
        return "—"
    if kw.get("executor") == "interpret":
        want = g.value_and_grad(params, **data, executor="interpret")[1]
    else:
        from unroll.checkpoint import segment_length
        from unroll.compile import compile_graph
        from unroll.ir import _grad_items
        from unroll.runtime import bind_arguments
        k = segment_length(kw["checkpoint"], g.steps)
        gg = ur.grad(g)
        prog = compile_graph(gg, _grad_items(gg), chunk=k)     # the same program, stored
        b = bind_arguments(gg, params, data)
        out = prog(b.xp, b.params, b.arrays)
        want = dict(zip(gg.grads, out[1:]))
    return "yes" if all(np.array_equal(grads[k], want[k]) for k in grads) else "no"


if __name__ == "__main__":
    main()
