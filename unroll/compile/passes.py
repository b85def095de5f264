"""Passes over a list of equations that never change what they compute.

Each pass is a loop over the equations with an environment, as in an interpreter; each returns
new lists and never mutates the Graph it reads.
"""
from __future__ import annotations

from ..core import Lit
from ..ir import Eqn, Value, live_eqns

__all__ = ["dce", "cse", "hoist", "params_key", "ParamsKeys", "PASSES"]


def params_key(params: dict) -> tuple:
    """A hashable key of a primitive's params dict."""
    return tuple(sorted(params.items())) if params else ()


class ParamsKeys:
    """:func:`params_key` memoised for one compilation: the τ copies of an equation share
    one params dict, so each dict is keyed once. It lives as long as the compilation that
    made it (and the dicts it holds alive with it)."""

    def __init__(self):
        self._memo: dict = {}

    def __call__(self, params: dict) -> tuple:
        if not params:
            return ()
        k = self._memo.get(id(params))
        if k is None or k[0] is not params:
            k = self._memo[id(params)] = (params, params_key(params))
        return k[1]


def dce(eqns: list, results) -> list:
    """Keep only the equations that ``results`` depend on."""
    return live_eqns(eqns, results)


def cse(eqns: list, results: list) -> tuple:
    """Merge equations that apply the same primitive to the same operands.

    Returns the new equations and ``results`` with merged values replaced.
    """
    seen, subst, out = {}, {}, []
    get = subst.get
    for e in eqns:
        ins = e.inputs
        if subst:
            new = tuple([get(x, x) for x in ins])
            if new != ins:
                e = Eqn(e.prim, new, e.params, e.outs, e.step)
                ins = new
        if Lit in map(type, ins):              # a constant is the same by value
            key = (e.prim, params_key(e.params),
                   *[x if type(x) is Value else x.key for x in ins])
        else:
            key = (e.prim, params_key(e.params), *ins)
        hit = seen.get(key)
        if hit is not None:
            for v, w in zip(e.outs, hit.outs):
                subst[v] = w
            continue
        seen[key] = e
        out.append(e)
    return out, [subst.get(v, v) for v in results]


#: the rewrites compile_graph runs, in order, between dead-code elimination and hoisting:
#: each is ``rewrite(eqns, results) -> (eqns, results)`` (the results with any value it
#: replaced swapped for its replacement); dead code is dropped again after each
PASSES: list = [cse]


def hoist(eqns: list, inputs: list) -> tuple:
    """Split off the equations that can run once, before the time loops: per-step work that
    reads only parameters, static inputs, constants and other such work (loop-invariant code
    motion), and work done once anyway whose operands are all available at the start.

    Returns ``(prologue, rest)``.
    """
    invariant = {v for v in inputs if v.t is None}
    available = set(inputs)
    pro, rest = [], []
    for e in eqns:
        inv = avail = True
        for x in e.inputs:
            if type(x) is Value:
                if x not in invariant:
                    inv = False
                    if x not in available:
                        avail = False
                        break
        if inv or e.step is None and avail:
            pro.append(e)
            for v in e.outs:
                available.add(v)
                if v.t is None:                  # h[0] = h0 stays a step's value
                    invariant.add(v)
        else:
            rest.append(e)
    return pro, rest
