"""Rematerialisation (gradient checkpointing): run a gradient graph keeping only every k-th
step's forward values, recomputing the others segment by segment when the backward sweep
needs them.

The equations executed are exactly those of the gradient graph, in the same order and on the
same operands, so the results are bitwise those of the reference interpreter
(``executor="interpret"``); only what is kept in memory changes. For τ steps and segments of
k steps, the forward values held at once are τ/k checkpoints plus one or two segments: with
k ≈ √τ, O(√τ) instead of O(τ) (Chen et al., 2016; Griewank, 1992), for one extra forward
pass.
"""
from __future__ import annotations

import math

from ..errors import UnrollError
from ..ir import Graph, Value

__all__ = ["segment_length", "run_checkpointed", "Plan"]


def segment_length(every, steps: int) -> int:
    """``every``: an int k, or "sqrt" for ⌈√τ⌉."""
    if every == "sqrt":
        return max(1, math.isqrt(steps - 1) + 1 if steps > 1 else 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise UnrollError(f"checkpoint must be a number of steps k >= 1 or 'sqrt', "
                          f"not {every!r}")
    return every


class Plan:
    """Where each forward equation's step falls, what is kept, and what is read when."""

    def __init__(self, gg: Graph, k: int):
        base = gg.base
        if base is None:
            raise UnrollError("checkpointing runs a gradient graph (ur.grad(g))")
        if base.parts:
            raise UnrollError("checkpointing works on the graph of one circuit; run each part "
                              "of a composed graph (an encoder-decoder) without it")
        self.k, self.T = k, base.steps
        self.forward = gg.eqns[:len(base.eqns)]
        self.backward = gg.eqns[len(base.eqns):]
        self.produced = {v for e in self.forward for v in e.outs}
        self.inputs = set(gg.inputs())                # the forward graph's, shared
        known = self.produced | self.inputs
        # how far back a forward equation reads: d steps (h.delayed(d)); never forward in time
        d = 1
        for e in self.forward:
            if e.step is None:
                continue
            for x in e.inputs:
                if type(x) is Value and x.t is not None and x in known:
                    if x.t > e.step:
                        raise UnrollError(
                            f"checkpointing needs states that run forward in time; {e!r} at "
                            f"step {e.step} reads step {x.t} (a backward-running state). "
                            "Differentiate this graph without checkpoint=...")
                    d = max(d, e.step - x.t)
        self.depth = d
        if k < d:
            raise UnrollError(f"checkpoint={k}: segments must be at least {d} steps long, "
                              f"the longest delay this graph reads")
        self.segments: dict = {}
        for e in self.forward:
            if e.step is not None and e.step >= 1:
                self.segments.setdefault(self.segment(e.step), []).append(e)

    def segment(self, t: int) -> int:
        return (t - 1) // self.k

    def kept(self, t) -> bool:
        """Values kept from the first forward sweep: untimed ones, the initial steps (t <= 0),
        and the last ``depth`` steps before each segment boundary (the checkpoints)."""
        if t is None or t <= 0:
            return True
        r = t % self.k
        return r == 0 or r > self.k - self.depth


def run_checkpointed(gg: Graph, env: dict, k: int, results: list, apply) -> dict:
    """Execute ``gg`` (a gradient graph) from ``env`` (its inputs bound) with checkpoints every
    ``k`` steps; return {Value: array} for ``results`` (Values). ``apply(e, env)`` executes
    one equation (the interpreter's step)."""
    plan = Plan(gg, k)
    keep_results = set(results)
    by_step: dict = {}                                # step -> forward Values alive

    def drop_before(t):
        s = t - plan.depth - 1                       # the step that just left the window
        if s in by_step and not plan.kept(s):
            for v in by_step.pop(s):
                env.pop(v, None)

    # 1. the forward sweep, keeping the checkpoints only
    current = None
    for e in plan.forward:
        apply(e, env)
        if e.step is not None:
            if e.step != current:
                current = e.step
                drop_before(current)
            by_step.setdefault(e.step, []).extend(e.outs)
    # 2. the backward sweep, recomputing a segment when it needs one of its values
    last = {}
    for i, e in enumerate(plan.backward):
        for x in e.inputs:
            if type(x) is Value:
                last[x] = i
    live_segments: set = set()

    def materialise(j):
        for s in [s for s in live_segments if s > j + 1]:       # the sweep has left them
            live_segments.discard(s)
            for t in range(s * plan.k + 1, min((s + 1) * plan.k, plan.T) + 1):
                if not plan.kept(t):
                    for v in by_step.pop(t, ()):
                        env.pop(v, None)
        for e in plan.segments.get(j, ()):
            apply(e, env)
            by_step.setdefault(e.step, []).extend(e.outs)
        live_segments.add(j)

    for i, e in enumerate(plan.backward):
        for x in e.inputs:
            if type(x) is Value and x not in env:
                if x not in plan.produced or x.t is None or x.t < 1:
                    raise UnrollError(f"internal: checkpointing lost {x!r}")
                materialise(plan.segment(x.t))
        apply(e, env)
        for x in e.inputs:
            if type(x) is Value and last.get(x) == i and x not in plan.produced and \
                    x not in keep_results and x not in plan.inputs and x.t is not None:
                env.pop(x, None)                          # a per-step cotangent, used up
    return {v: env[v] for v in results}
