#!/usr/bin/env python3
"""Which new ops deserve a primitive: each measured as a primitive and as a composite.

For every candidate, the same recurrent cell h(t) = op(W h(t-1) + U x(t)) (H = 128, B = 64,
τ = 30) is differentiated with the compiled program, once with the op as a primitive of its
own (``ur.primitive``) and once written with existing operations. It reports the medians of
interleaved runs and their ratio, and whether each form stays finite at |x| = 800, where a
naive formula overflows.

    python benchmarks/ops_decisions.py [--repeats 15]
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import unroll as ur  # noqa: E402

H, B, T = 128, 64, 30

CANDIDATES = {
    # name: (composite, forward on xp, vjp with primitives)
    "softplus": (lambda x: ur.log(1.0 + ur.exp(x)), None, None),          # built-in primitive
    "square": (lambda x: x * x, lambda xp, x: x * x, lambda g, out, x: (2.0 * g * x,)),
    "swish": (ur.swish, lambda xp, x: x / (1.0 + xp.exp(-x)),
              lambda g, out, x: (g * (ur.sigmoid(x) * (1.0 + x * (1.0 - ur.sigmoid(x)))),)),
    "leaky_relu": (lambda x: ur.leaky_relu(x, 0.1), lambda xp, x: xp.maximum(x, 0.1 * x),
                   lambda g, out, x: (g * (0.1 + 0.9 * (x > 0.0)),)),
    "maximum": (lambda x: x + ur.relu(0.2 - x), None, None),               # built-in primitive
    "elu": (ur.elu, lambda xp, x: xp.where(x > 0, x, xp.exp(xp.minimum(x, 0.0)) - 1.0),
            lambda g, out, x: (g * ((x > 0.0) + (1.0 - (x > 0.0)) * (out + 1.0)),)),
    "clip": (lambda x: ur.clip(x, -0.5, 0.7), lambda xp, x: xp.clip(x, -0.5, 0.7),
             lambda g, out, x: (g * (x > -0.5) * (x < 0.7),)),
}


def cell(op, name):
    c = ur.Circuit(name)
    x = c.input("x", (H,))
    h = c.state("h", (H,))
    h.next = op(c.param("W", (H, H)) @ h.prev + c.param("U", (H, H)) @ x)
    c.loss(ur.sum(h * h))
    return c


def timed(g, p, x, repeats):
    g.value_and_grad(p, x=x)                       # compile once
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g.value_and_grad(p, x=x)
        out.append(time.perf_counter() - t0)
    return out


def main(repeats: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)) * 0.5
    print(f"cell h = op(W h + U x), H = {H}, B = {B}, τ = {T}; value_and_grad, compiled; "
          f"medians of {repeats} interleaved runs\n")
    print(f"{'op':11} {'primitive ms':>13} {'composite ms':>13} {'ratio':>6}  "
          f"{'finite at 800 (prim / comp)':>28}")
    for name, (composite, forward, vjp) in CANDIDATES.items():
        if forward is None:                         # already a primitive of unroll's
            prim = {"softplus": ur.softplus,
                    "maximum": lambda x: ur.maximum(x, 0.2)}[name]
            made = None
        else:
            made = prim = ur.primitive(f"{name}_bench", forward, vjp) if vjp else None
            if prim is None:
                continue
        try:
            gp = cell(prim, f"{name}_p").unroll(steps=T)
            gc = cell(composite, f"{name}_c").unroll(steps=T)
            p = cell(prim, "p").init_params(seed=0)
            a, b = [], []
            for _ in range(3):                      # interleaved: both see the same machine
                a += timed(gp, p, x, repeats // 3)
                b += timed(gc, p, x, repeats // 3)
            big = np.full((1, 1, H), 800.0)            # one step where the pre-activation
            q = {"W": np.zeros((H, H)), "U": np.eye(H)}  # is exactly 800
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fp = bool(np.isfinite(cell(prim, "p1").unroll(steps=1).value_and_grad(
                    q, x=big)[1]["U"]).all())
                fc = bool(np.isfinite(cell(composite, "c1").unroll(steps=1).value_and_grad(
                    q, x=big)[1]["U"]).all())
            mp, mc = statistics.median(a) * 1e3, statistics.median(b) * 1e3
            print(f"{name:11} {mp:13.2f} {mc:13.2f} {mc / mp:6.2f}  {str(fp):>13} / {fc}")
        finally:
            if made is not None:
                ur.unregister(made)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    main(ap.parse_args().repeats)
