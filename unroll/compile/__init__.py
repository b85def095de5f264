"""Compilation: passes over a Graph that never change its meaning, then lowering to a Program.

``compile_graph(g, results)`` runs dead-code elimination, common-subexpression elimination and
loop-invariant hoisting, re-rolls the unrolled steps into loops, and emits a
:class:`~unroll.compile.program.Program`. The reference interpreter
(:func:`unroll.runtime.interpret`) computes the same values; the tests hold them to it.
"""
from __future__ import annotations

from .lower import Lowering
from ..core import no_gc
from .passes import PASSES, ParamsKeys, dce, hoist
from .program import Program
from .target import get as get_target

__all__ = ["compile_graph", "Program", "PASSES"]


def compile_graph(g, items, name: str | None = None, time_batching: bool = True,
                  target: str = "compiled", remat: int | None = None,
                  chunk: int | None = None) -> Program:
    """Compile the equations of ``g`` that ``items`` need, for code target ``target`` (see
    :mod:`unroll.compile.target`; the default emits Python over ``xp``).

    Each item is a Value, or a tuple of per-step Values returned stacked as one array.
    ``time_batching=False`` keeps every step's work inside its loop (see
    :mod:`unroll.compile.timebatch`); the result is the same either way. ``remat=k`` chunks
    every loop k steps at a time and recomputes, chunk by chunk, what the backward pass reads
    of a forward loop instead of keeping it for every step (gradient checkpointing, with the
    program's own code); ``chunk=k`` chunks the same way and recomputes nothing: the program
    whose gradients ``remat=k`` gives bit for bit.
    """
    with no_gc():
        return _compile(g, list(items), name, time_batching, get_target(target), remat,
                        chunk)


def _compile(g, items: list, name, time_batching: bool, target, remat=None,
             chunk=None) -> Program:
    wanted = [v for it in items for v in (it if isinstance(it, tuple) else (it,))]
    eqns = dce(g.eqns, wanted)
    n0 = len(eqns)
    merged = wanted
    for rewrite in PASSES:                   # each keeps the meaning of what is asked for
        eqns, merged = rewrite(eqns, merged)
        eqns = dce(eqns, merged)
    subst = {id(a): b for a, b in zip(wanted, merged)}
    items = [tuple(subst[id(v)] for v in it) if isinstance(it, tuple) else subst[id(it)]
             for it in items]
    pro, rest = hoist(eqns, g.inputs())
    low = Lowering(g, pro, rest, items, time_batching, ParamsKeys(), target, remat, chunk)
    fname = name or "program"
    src = low.source(fname)
    stats = {"equations": n0, "after_passes": len(eqns), "hoisted": len(pro),
             "loops": sum(b.kind == "loop" for b in low.blocks),
             "stacked": sum(b.kind == "stacked" for b in low.blocks),
             "reductions": sum(len(b.reductions) for b in low.blocks if b.kind == "reduce"),
             "blocks": len(low.blocks), "stored": low.stored_elements(),
             "recomputed": sum(len(fs) for fs in low.recompute.values())}
    return Program(fname, src, low.namespace, stats)
