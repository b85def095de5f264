"""Passes over a list of equations that never change what they compute.

Each pass is a loop over the equations with an environment, as in an interpreter; each returns
new lists and never mutates the Graph it reads.
"""
from __future__ import annotations

from ..core import Lit
from ..ir import Eqn, Value, live_eqns
from ..ops import add_p

__all__ = ["dce", "cse", "fold_invariant_addends", "shape_donors", "hoist", "params_key", "ParamsKeys", "PASSES"]


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


def fold_invariant_addends(eqns: list, results: list) -> tuple:
    """``(p + r) + b`` -> ``(p + b) + r``, where ``b`` is the same at every step (a bias),
    ``r`` depends on the recurrence and ``p`` does not (``U x[t]``): the bias then joins the
    work done for all steps at once (time-batching adds it to the stacked input projection,
    once), and the loop makes one call fewer per step. A reassociation of a float sum: the
    same value up to round-off (the interpreter, the reference, keeps the order written).

    "Depends on the recurrence": reads, directly or through other values of its step, a
    value another step computed (a state, ``h[t-1]``)."""
    made = {v: e for e in eqns for v in e.outs}
    readers: dict = {}
    for e in eqns:
        for x in e.inputs:
            if type(x) is Value:
                readers[x] = readers.get(x, 0) + 1
    for v in results:
        readers[v] = readers.get(v, 0) + 1
    recurrent = set()
    for e in eqns:
        if e.step is not None and any(
                type(x) is Value and (x in recurrent or x in made and made[x].step != e.step)
                for x in e.inputs):
            recurrent.update(e.outs)
    out, sums = [], {}
    for e in eqns:
        if e.prim is add_p and e.step is not None:
            y, b = e.inputs
            if type(y) is Value and type(b) is Value and y.t is None and b in made:
                y, b = b, y                                  # b + (p + r)
            m = made.get(y) if type(y) is Value else None
            if type(b) is Value and b.t is None and m is not None and m.prim is add_p and \
                    m.step == e.step and readers.get(y) == 1:
                p, r = m.inputs
                if type(p) is Value and p in recurrent:
                    p, r = r, p
                if type(p) is Value and type(r) is Value and r in recurrent and \
                        p not in recurrent:
                    pb = Value(y.name, y.t, add_p.shape(p.aval, b.aval))
                    if pb.aval.shape == y.aval.shape and pb.aval.batched == y.aval.batched:
                        # here, where b is known; y's own equation is left dead
                        q = made.get(p)
                        if q is not None and q.prim is add_p and q.step == e.step and \
                                readers.get(p) == 1 and type(q.inputs[1]) is Value and \
                                q.inputs[1].t is None and \
                                add_p.shape(q.inputs[1].aval, b.aval).shape == b.shape:
                            # (q + b1) + b: one sum of the two biases, made once
                            b1 = q.inputs[1]
                            bb = sums.get((b1, b))
                            if bb is None:
                                bb = sums[b1, b] = Value(f"{b1.name}+{b.name}", None,
                                                         add_p.shape(b1.aval, b.aval))
                                out.append(Eqn(add_p, (b1, b), {}, (bb,), None))
                            p, b = q.inputs[0], bb
                        out.append(Eqn(add_p, (p, b), {}, (pb,), e.step))
                        out.append(Eqn(add_p, (pb, r), {}, e.outs, e.step))
                        continue
        out.append(e)
    return out, results


#: operands a primitive reads for their shape alone (the kernel writer's READS, turned round)
SHAPE_ONLY = {"broadcast_like": (1,), "ones_like": (0,), "zeros_like": (0,)}


def shape_donors(eqns: list, results: list) -> tuple:
    """An operand read for its shape alone (``broadcast(∂, like (o - y)²)``) is replaced by
    the operand it was computed from elementwise where that has the same shape and batch
    (``o - y``): the value itself is then needed by nothing later (the backward pass no longer
    keeps ``(o - y)²`` of every step alive just to read its shape)."""
    made = {v: e for e in eqns for v in e.outs}

    def donor(x):
        """The one operand of a one-operand elementwise ``x`` (``(o - y)²``: ``o - y``), if it
        has the same shape and batch; else ``x``. (One step only: further back, the donor
        would be a value nothing else keeps, an input projection, an early running sum.)"""
        e = made.get(x) if type(x) is Value else None
        if e is None or not e.prim.elementwise or len(e.outs) != 1 or len(e.inputs) != 1:
            return x
        y = e.inputs[0]
        return y if type(y) is Value and y.aval == x.aval else x
    out = []
    for e in eqns:
        slots = SHAPE_ONLY.get(e.prim.name)
        if slots:
            ins = tuple(donor(x) if i in slots else x for i, x in enumerate(e.inputs))
            if ins != e.inputs:
                e = Eqn(e.prim, ins, e.params, e.outs, e.step)
        out.append(e)
    return out, results


#: the rewrites compile_graph runs, in order, between dead-code elimination and hoisting:
#: each is ``rewrite(eqns, results) -> (eqns, results)`` (the results with any value it
#: replaced swapped for its replacement); dead code is dropped again after each
PASSES: list = [cse, fold_invariant_addends, shape_donors]


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
