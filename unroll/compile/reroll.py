"""Re-rolling: find the loop in an unrolled graph again.

The unrolled graph is τ copies of a step body. Its equations are cut into *chunks* (maximal
runs with the same step); two chunks do the same work when every operand is the same relative
to the chunk's step (``h[t-1]``, ``x[t]``, a local, a once-value); runs of such chunks over
consecutive steps become one :class:`Unit` that lowering emits as a ``for t`` loop.
"""
from __future__ import annotations

from ..core import Lit
from .passes import params_key

__all__ = ["Chunk", "Unit", "chunk", "same_body", "reroll"]


class Chunk:
    """Consecutive equations of one step (``step`` None: work done once)."""
    __slots__ = ("step", "eqns")

    def __init__(self, step, eqns):
        self.step, self.eqns = step, eqns


class Unit:
    """A chunk run for each of ``steps``: a loop if ``looped``, else straight-line code."""
    __slots__ = ("chunk", "steps", "looped", "index")

    def __init__(self, chunk, steps, looped, index):
        self.chunk, self.steps, self.looped, self.index = chunk, steps, looped, index


def chunk(eqns: list) -> list:
    out, cur = [], None
    for e in eqns:
        if cur is None or e.step != cur.step:
            cur = Chunk(e.step, [])
            out.append(cur)
        cur.eqns.append(e)
    return out


def same_body(a: Chunk, b: Chunk, sname, key=params_key) -> bool:
    """Do chunks ``a`` and ``b`` do the same work relative to their steps (equal code)?

    Every operand is compared by what it is relative to its chunk: a value computed earlier
    in the chunk (by position), a value computed once (itself), a constant (its value), or a
    value of some step (its name, its offset from the chunk's step, its batchedness: the code
    chosen for an operation depends on its operands' batchedness too). ``sname`` is None when
    every value's name is its own; ``key`` keys a primitive's params (a
    :class:`~unroll.compile.passes.ParamsKeys` of the compilation memoises it)."""
    if len(a.eqns) != len(b.eqns):
        return False
    sa, sb = a.step, b.step
    la, lb = {}, {}                        # value -> position in its chunk
    k = 0
    for e, f in zip(a.eqns, b.eqns):
        if e.prim is not f.prim or len(e.inputs) != len(f.inputs) or \
                len(e.outs) != len(f.outs) or \
                e.params is not f.params and key(e.params) != key(f.params):
            return False
        for x, y in zip(e.inputs, f.inputs):
            px, py = la.get(x), lb.get(y)
            if px is not None or py is not None:
                if px != py:
                    return False
            elif type(x) is Lit or type(y) is Lit:
                if type(x) is not type(y) or x.key != y.key:
                    return False
            elif x.t is None or y.t is None:
                if x is not y:
                    return False
            elif x.t - sa != y.t - sb or x.aval.batched != y.aval.batched or (
                    x.name != y.name if sname is None else sname(x) != sname(y)):
                return False
        for v, w in zip(e.outs, f.outs):
            la[v] = lb[w] = k
            k += 1
            if (v.name != w.name if sname is None else sname(v) != sname(w)) or (
                    v.t is None) != (w.t is None) or v.t is not None and v.t - sa != w.t - sb:
                return False
    return True


def reroll(chunks: list, sname, key=params_key) -> list:
    """Group runs of chunks over consecutive steps that do the same work into loops."""
    units, i, n = [], 0, len(chunks)
    while i < n:
        j = i + 1
        if isinstance(chunks[i].step, int) and j < n and isinstance(chunks[j].step, int):
            d = chunks[j].step - chunks[i].step
            if d in (1, -1):
                while (j < n and isinstance(chunks[j].step, int)
                       and chunks[j].step - chunks[j - 1].step == d
                       and same_body(chunks[j - 1], chunks[j], sname, key)):
                    j += 1
        run = chunks[i:j]
        units.append(Unit(run[0], [c.step for c in run], len(run) > 1, i))
        i = j
    return units
