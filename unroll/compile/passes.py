"""Passes over a list of equations that never change what they compute.

Each pass is a loop over the equations with an environment, as in an interpreter; each returns
new lists and never mutates the Graph it reads.
"""
from __future__ import annotations

from ..core import Lit
from ..ir import Eqn, Value

__all__ = ["dce", "cse", "hoist", "params_key", "forget_keys"]


_KEYS: dict = {}


def params_key(params: dict) -> tuple:
    """A hashable key of a params dict (memoised: the copies of one equation share it)."""
    k = _KEYS.get(id(params))
    if k is None or k[0] is not params:
        k = _KEYS[id(params)] = (params, tuple(sorted(params.items())))
    return k[1]


def forget_keys() -> None:
    """Drop the memo of :func:`params_key` (it keeps the dicts it saw alive)."""
    _KEYS.clear()


def dce(eqns: list, results) -> list:
    """Keep only the equations that ``results`` depend on."""
    need = {id(v) for v in results}
    kept = []
    for e in reversed(eqns):
        if any(id(v) in need for v in e.outs):
            kept.append(e)
            need.update(id(x) for x in e.inputs if type(x) is Value)
    kept.reverse()
    return kept


def _operand_key(x):
    if type(x) is Lit:
        return ("lit", x.val) if not hasattr(x.val, "shape") else ("arr", id(x.val))
    return id(x)


def cse(eqns: list, results: list) -> tuple:
    """Merge equations that apply the same primitive to the same operands.

    Returns the new equations and ``results`` with merged values replaced.
    """
    seen, subst, out = {}, {}, []
    for e in eqns:
        ins = tuple(subst.get(id(x), x) if type(x) is Value else x for x in e.inputs)
        key = (e.prim.name, tuple(_operand_key(x) for x in ins), params_key(e.params))
        hit = seen.get(key)
        if hit is not None:
            for v, w in zip(e.outs, hit.outs):
                subst[id(v)] = w
            continue
        if ins != e.inputs:
            e = Eqn(e.prim, ins, e.params, e.outs, e.step)
        seen[key] = e
        out.append(e)
    return out, [subst.get(id(v), v) for v in results]


def hoist(eqns: list, inputs: list) -> tuple:
    """Split off the equations that can run once, before the time loops: per-step work that
    reads only parameters, static inputs, constants and other such work (loop-invariant code
    motion), and work done once anyway whose operands are all available at the start.

    Returns ``(prologue, rest)``.
    """
    invariant = {id(v) for v in inputs if v.t is None}
    available = {id(v) for v in inputs}
    pro, rest = [], []
    for e in eqns:
        vals = [x for x in e.inputs if type(x) is Value]
        if all(id(x) in invariant for x in vals) or \
                e.step is None and all(id(x) in available for x in vals):
            pro.append(e)
            for v in e.outs:
                available.add(id(v))
                if v.t is None:                  # h[0] = h0 stays a step's value
                    invariant.add(id(v))
        else:
            rest.append(e)
    return pro, rest
