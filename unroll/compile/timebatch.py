"""Time-batching: take every piece of work that does not need the recurrence out of the loop.

A re-rolled loop's body is split into

- **pre**: work that depends on no value of the loop (``U @ x[t]``, ``Vᵀ @ ∂o[t]`` in the
  backward pass): done before the loop, for all steps at once, on arrays stacked over time
  (time is one more leading axis, which every "map" primitive treats as a batch axis: one
  large matrix product instead of τ small ones). Elementwise work that only the loop reads
  (``1 - h[t]²`` of a stored activation) stays in the loop: stacking it would only add an
  array over all steps;
- **core**: what the recurrence needs (reads a value of another iteration, or sits between
  such work), or what cannot be stacked; it stays in the loop;
- **post**: work that depends on the core but that the core does not need (the readout and
  loss of the forward pass, the weight-gradient terms of the backward pass): done after the
  loop, stacked;
- **reductions**: running sums over steps (``Σ∂W[t] = Σ∂W[t+1] + ∂W(t)``, ``ΣL``) whose
  intermediate values nobody reads: one sum after the loop. An addend that itself sums over
  the batch (``outer`` with ``reduce``, ``sum_to`` dropping the batch) is computed on the stacked
  arrays, where it sums over steps and batch in one go: ``Σ_t ∂a[t] h[t-1]ᵀ`` is a single GEMM
  over all T·B rows.

The split never changes what is computed, only when: the reference interpreter and the tests
hold the result to that.
"""
from __future__ import annotations

from typing import NamedTuple

from ..ir import Value
from .reroll import Chunk

__all__ = ["Block", "split_loop"]


class Reduction(NamedTuple):
    """A running sum over the steps of a loop, done as one sum after it."""
    first: object         # the chain's equation at the loop's first step (reads the start)
    last: object          # ... at its last step (defines the total)
    chain: object         # the body's equation: Σ[t] = Σ[t∓1] + x[t]
    fused: object         # the equation making x[t], when it is summed over steps too, or None


class Block:
    """A piece of the program: straight-line code, a loop, stacked work, or reductions."""
    __slots__ = ("kind", "chunk", "steps", "eqns", "reductions")

    def __init__(self, kind, chunk=None, steps=(), eqns=(), reductions=()):
        self.kind = kind              # "straight" | "loop" | "stacked" | "reduce"
        self.chunk = chunk            # the template chunk (its step is the template's step)
        self.steps = list(steps)      # the steps it covers, in execution order
        self.eqns = list(eqns)        # stacked: the template equations done for all steps
        self.reductions = list(reductions)  # reduce: [(first chain eqn, last chain eqn,
        #                         template chain eqn, fused addend eqn or None)]


def split_loop(unit, chunks: list, sname, users: dict, fuses: bool = False) -> list:
    """Blocks replacing the loop ``unit`` (over ``chunks[unit.index : ...]``). ``fuses``:
    the code target fuses the loop's elementwise work (a compiled kernel), so elementwise
    work that only the loop reads is never worth an array over the steps."""
    c, steps = unit.chunk, unit.steps
    iters = chunks[unit.index:unit.index + len(steps)]
    d = steps[1] - steps[0]
    s0 = c.step
    produced = {}
    for i, e in enumerate(c.eqns):
        for v in e.outs:
            key = sname(v)
            if key in produced or v.t is None:
                return [Block("loop", c, steps)]          # not a plain template: keep as is
            produced[key] = (i, v.t - s0)

    def producer(x):
        """(eqn index, same iteration?) of an operand produced by this loop, else None."""
        if type(x) is not Value or x.t is None:
            return None
        hit = produced.get(sname(x))
        return None if hit is None else (hit[0], x.t - s0 == hit[1])

    chains = _chains(c, iters, d, producer, users)
    fused = {a for _, a in chains.values() if a is not None}
    rest = [i for i in range(len(c.eqns)) if i not in chains]
    prods = {i: [producer(x) for x in c.eqns[i].inputs] for i in rest}
    consumers = {i: [] for i in range(len(c.eqns))}
    for i in rest:
        for p in prods[i]:
            if p is not None:
                consumers[p[0]].append(i)

    def stackable(i):
        e = c.eqns[i]
        mode = e.prim.leading_axes(e.params)
        if mode == "other" or (mode == "sum" and i not in fused):
            return False
        # stacked, a per-step operand gains a leading time axis: (T, B, ...) if batched,
        # (T, ...) if not (an initial value h[0] = h0 read by a delay); a value computed once
        # has none: (B, ...) or (...). Aligned from the right, (T, ...) would meet B in any
        # batched operand; such an equation stays in the loop, one step at a time
        vals = [x for x in e.inputs if type(x) is Value]
        if any(x.t is not None and not x.aval.batched for x in vals) and \
                any(x.aval.batched for x in vals):
            return False
        return all(v.aval.dtype == "float" for v in e.outs)

    core = {i for i in rest if not stackable(i) or any(p is not None and not p[1]
                                                       for p in prods[i])}
    while True:                                       # close over "sandwiched" work
        after = _closure(core, lambda i: consumers[i])
        before = _closure(core, lambda i: [p[0] for p in prods.get(i, []) if p is not None])
        grown = core | (after & before)
        if grown == core:
            break
        core = grown
    fused -= core                  # an addend the loop needs anyway is summed from its stack
    post = [i for i in rest if i in after and i not in core]
    pre = [i for i in rest if i not in after]
    # elementwise pre-work that only the loop reads (tanh' and σ' of stored activations in
    # the backward pass) stays in the loop: stacked, it would be one more array over all
    # steps, written and read back through memory; in the loop it is computed from values
    # still in cache and allocates nothing new
    # -- except a step-invariant operand joined to one stacked product (``U x[t] + b``: the
    # bias added once to the stacked input projection instead of once per step)
    # (or a chain of them: ``U x[t] + b_ih + b_hh``)
    joined = {i for i in pre if not c.eqns[i].prim.elementwise}
    for i in pre:
        ps = [p for p in prods[i] if p is not None]
        if c.eqns[i].prim.elementwise and len(ps) == 1 and ps[0][0] in joined and all(
                type(x) is not Value or x.t is None
                for x, p in zip(c.eqns[i].inputs, prods[i]) if p is None):
            joined.add(i)

    def joins_product(i):
        return c.eqns[i].prim.elementwise and i in joined
    for i in reversed(pre):
        if c.eqns[i].prim.elementwise and consumers[i] and \
                all(j in core for j in consumers[i]) and (fuses or not joins_product(i)):
            core.add(i)
    pre = [i for i in pre if i not in core]
    blocks = []
    if pre:
        blocks.append(Block("stacked", c, steps, [c.eqns[i] for i in pre if i not in fused]))
    if core:
        body = Chunk(s0, [c.eqns[i] for i in sorted(core)])
        blocks.append(Block("loop", body, steps))
    if post:
        blocks.append(Block("stacked", c, steps, [c.eqns[i] for i in post if i not in fused]))
    if chains:
        reds = [Reduction(iters[0].eqns[i], iters[-1].eqns[i], c.eqns[i],
                          c.eqns[a] if a in fused else None)
                for i, (_, a) in sorted(chains.items())]
        blocks.append(Block("reduce", c, steps, reductions=reds))
    return [b for b in blocks if b.kind != "stacked" or b.eqns]


def _chains(c, iters, d, producer, users) -> dict:
    """Running sums of this loop that can become one sum after it:
    {chain eqn index: (addend eqn index or None, fused addend index or None)}."""
    out = {}
    for i, e in enumerate(c.eqns):
        if not e.prim.accumulates or len(e.inputs) != 2:
            continue
        acc, add = e.inputs
        p = producer(acc)
        if p is None or p[0] != i or p[1] or acc.t - e.outs[0].t != -d:
            continue
        # every intermediate sum is read only by the next step's sum
        ok = all(users.get(it.eqns[i].outs[0], []) == [nxt.eqns[i]]
                 for it, nxt in zip(iters, iters[1:]))
        if not ok or type(add) is not Value:
            continue
        pa = producer(add)
        fused = None
        if pa is not None and pa[1]:
            a = c.eqns[pa[0]]
            if a.prim.leading_axes(a.params) == "sum" and all(
                    users.get(it.eqns[pa[0]].outs[0], []) == [it.eqns[i]] for it in iters):
                fused = pa[0]
        if add.t is None:
            continue                                      # a constant addend: leave it
        out[i] = (None if pa is None else pa[0], fused)
    return out


def _closure(start: set, step) -> set:
    seen, todo = set(start), list(start)
    while todo:
        for j in step(todo.pop()):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return seen
