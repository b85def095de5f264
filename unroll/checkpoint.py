"""Rematerialisation (gradient checkpointing): run a gradient graph keeping only the forward
values near every k-th step, recomputing the others segment by segment when the backward sweep
needs them.

The equations executed are exactly those of the gradient graph, in the same order and on the
same operands, so the results are bitwise those of the reference interpreter
(``executor="interpret"``); only what is kept in memory changes. For τ steps and segments of
k steps, the forward values held at once are τ/k checkpoints plus one or two segments: with
k ≈ √τ, O(√τ) instead of O(τ) (Chen et al., 2016; Griewank, 1992), for one extra forward
pass.

A segment is recomputed from the values just outside it: the last ``before`` steps of the
previous segment (a state read d steps back: ``h.delayed(d)``) and, for states that run
backward in time, the first ``after`` steps of the next one. Those are the checkpoints.
"""
from __future__ import annotations

import numbers
import math

from .errors import UnrollError
from .ir import Graph, Value

__all__ = ["segment_length", "run_checkpointed", "Plan"]


def segment_length(every, steps: int, depth: int = 1) -> int:
    """``every``: an int k >= ``depth`` (the longest delay the graph reads), or "sqrt" for
    max(⌈√τ⌉, depth)."""
    if every == "sqrt":
        return max(depth, math.isqrt(steps - 1) + 1 if steps > 1 else 1)
    if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
        raise UnrollError(f"checkpoint must be a number of steps k >= 1 or 'sqrt', "
                          f"not {every!r}")
    every = int(every)
    if every < depth:
        raise UnrollError(f"checkpoint={every}: segments must be at least {depth} steps long, "
                          f"the longest delay this graph reads; pass checkpoint={depth} or "
                          "more, or 'sqrt'")
    return every


def reach(gg: Graph) -> tuple:
    """(before, after): how many steps back, and ahead, the forward equations of ``gg``
    read (after > 0 only for states that run backward in time)."""
    base = _base(gg)
    known = {v for e in gg.eqns[:len(base.eqns)] for v in e.outs} | set(gg.inputs())
    before = after = 0
    for e in gg.eqns[:len(base.eqns)]:
        if e.step is None:
            continue
        for x in e.inputs:
            if type(x) is Value and x.t is not None and x in known:
                before = max(before, e.step - x.t)
                after = max(after, x.t - e.step)
    return max(before, 1), after


def _base(gg: Graph) -> Graph:
    base = gg.base
    if base is None:
        raise UnrollError("checkpointing runs a gradient graph (ur.grad(g))")
    if base.parts:
        raise UnrollError("checkpointing works on the graph of one circuit; run each part "
                          "of a composed graph (an encoder-decoder) without it")
    return base


class Plan:
    """Where each forward equation's step falls, what is kept, and what is read when."""

    def __init__(self, gg: Graph, k: int):
        base = _base(gg)
        self.k, self.T = k, base.steps
        self.forward = gg.eqns[:len(base.eqns)]
        self.backward = gg.eqns[len(base.eqns):]
        self.produced = {v for e in self.forward for v in e.outs}
        # work done once (t = None, or an initial value such as ΣL[τ+1] = 0) is never
        # recomputed, so it is kept whatever its t
        self.once = {v for e in self.forward if e.step is None for v in e.outs}
        self.inputs = set(gg.inputs())                # the forward graph's, shared
        self.before, self.after = reach(gg)
        self.depth = max(self.before, self.after)
        segment_length(k, self.T, self.depth)         # k >= the longest delay
        self.segments: dict = {}
        for e in self.forward:
            if e.step is not None and 1 <= e.step <= self.T:
                self.segments.setdefault(self.segment(e.step), []).append(e)

    def segment(self, t: int) -> int:
        return (t - 1) // self.k

    def kept(self, t) -> bool:
        """Values kept from the first forward sweep: untimed ones, the initial values (t <= 0
        or t > τ), and the checkpoints: the last ``before`` steps of each segment and, with
        backward-running states, its first ``after`` steps."""
        if t is None or t <= 0 or t > self.T:
            return True
        p = (t - 1) % self.k
        return p >= self.k - self.before or p < self.after


def run_checkpointed(gg: Graph, env: dict, k: int, results: list, apply) -> dict:
    """Execute ``gg`` (a gradient graph) from ``env`` (its inputs bound) with checkpoints every
    ``k`` steps; return {Value: array} for ``results`` (Values). ``apply(e, env)`` executes
    one equation (the interpreter's step)."""
    plan = Plan(gg, k)
    keep = set(results)

    def droppable(v) -> bool:
        return v in plan.produced and v not in keep and v not in plan.once and \
            not plan.kept(v.t)

    # 1. the forward sweep; a value is dropped after its last forward use unless kept
    last_fwd = {}
    for i, e in enumerate(plan.forward):
        for x in e.inputs:
            if type(x) is Value:
                last_fwd[x] = i
    for i, e in enumerate(plan.forward):
        apply(e, env)
        for v in e.outs:
            if v not in last_fwd and droppable(v):
                env.pop(v, None)
        for x in e.inputs:
            if type(x) is Value and last_fwd.get(x) == i and droppable(x):
                env.pop(x, None)
    # 2. the backward sweep, recomputing a segment when it needs one of its values
    last = {}
    for i, e in enumerate(plan.backward):
        for x in e.inputs:
            if type(x) is Value:
                last[x] = i
    live: set = set()

    def materialise(j):
        for s in [s for s in live if abs(s - j) > 1]:     # the sweep has left them
            live.discard(s)
            for e in plan.segments.get(s, ()):
                for v in e.outs:
                    if droppable(v):
                        env.pop(v, None)
        for e in plan.segments.get(j, ()):
            apply(e, env)
        live.add(j)

    for i, e in enumerate(plan.backward):
        for x in e.inputs:
            if type(x) is Value and x not in env:
                if x not in plan.produced or x.t is None or not 1 <= x.t <= plan.T:
                    raise UnrollError(f"internal: checkpointing lost {x!r}")
                materialise(plan.segment(x.t))
        apply(e, env)
        for x in e.inputs:
            if type(x) is Value and last.get(x) == i and x not in plan.produced and \
                    x not in keep and x not in plan.inputs and x.t is not None:
                env.pop(x, None)                          # a per-step cotangent, used up
    return {v: env[v] for v in results}
