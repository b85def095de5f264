"""Compilation: passes over a Graph that never change its meaning, then lowering to a Program.

``compile_graph(g, results)`` runs dead-code elimination, common-subexpression elimination and
loop-invariant hoisting, re-rolls the unrolled steps into loops, and emits a
:class:`~unroll.compile.program.Program`. The reference interpreter
(:func:`unroll.runtime.interpret`) computes the same values; the tests hold them to it.
"""
from __future__ import annotations

from .lower import Lowering
from ..core import no_gc
from .passes import cse, dce, forget_keys, hoist
from .program import Program

__all__ = ["compile_graph", "Program"]


def compile_graph(g, results, name: str | None = None) -> Program:
    """Compile the equations of ``g`` that ``results`` (a list of Values) need."""
    with no_gc():
        try:
            return _compile(g, list(results), name)
        finally:
            forget_keys()


def _compile(g, wanted: list, name) -> Program:
    eqns = dce(g.eqns, wanted)
    n0 = len(eqns)
    eqns, merged = cse(eqns, wanted)
    pro, rest = hoist(eqns, g.inputs())
    low = Lowering(g, pro, rest, merged)
    fname = name or "program"
    src = low.source(fname)
    stats = {"equations": n0, "after_cse": len(eqns), "hoisted": len(pro),
             "loops": sum(u.looped for u in low.units),
             "units": len(low.units)}
    return Program(fname, src, low.namespace, wanted, stats)
