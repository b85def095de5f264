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
    """In a sum of three terms, ``(x + y) + z``, of which one depends on the recurrence and
    the other two do not, those two are added first: ``b + W h + U x`` (the book's eq. 10.8)
    becomes ``(b + U x) + W h``, and so does ``U x + W h + b``. ``b`` is the same at every step
    and ``U x`` is work done for all steps at once (time-batching), so ``b + U x`` joins it,
    added once to the stacked input projection, and the loop makes one call fewer per step;
    PyTorch's two biases, ``U x + b_ih + W h + b_hh``, are summed once, before everything
    (``U x + (b_ih + b_hh)``). A reassociation of a float sum: the same value up to
    round-off (the interpreter, the reference, keeps the order written).

    "Depends on the recurrence": reads, directly or through other values of its step, a
    value another step computed (a state, ``h[t-1]``), or one made once (an initial state
    ``h[0] = h0``: so that the first step is regrouped as the others are, and stays in the
    loop)."""
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

    def inner_sum(y, step):
        """The equation of ``y`` if it is a sum of this step that only the sum at hand reads."""
        m = made.get(y) if type(y) is Value else None
        return m if m is not None and m.prim is add_p and m.step == step and \
            readers.get(y) == 1 else None

    out, sums = [], {}

    def once(c1, c2):
        """c1 + c2 of two values the same at every step: one value, made once."""
        bb = sums.get((c1, c2))
        if bb is None:
            bb = sums[c1, c2] = Value(f"{c1.name}+{c2.name}", None,
                                      add_p.shape(c1.aval, c2.aval))
            out.append(Eqn(add_p, (c1, c2), {}, (bb,), None))
        return bb
    for e in eqns:
        if e.prim is not add_p or e.step is None:
            out.append(e)
            continue
        z, (u, v) = e.outs[0], e.inputs
        y, q = (u, v) if inner_sum(u, e.step) is not None else (v, u)
        m = inner_sum(y, e.step)
        terms = [] if m is None else [*m.inputs, q]
        rec = [x for x in terms if type(x) is Value and x in recurrent]
        if len(rec) != 1 or terms[-1] is rec[0] or any(type(x) is not Value for x in terms):
            out.append(e)
            continue
        s1, s2 = [x for x in terms if x is not rec[0]]
        if add_p.shape(add_p.shape(s1.aval, s2.aval), rec[0].aval) != z.aval:
            out.append(e)
            continue

        b1 = inner_sum(s1, e.step)
        if s1.t is None and s2.t is None:      # b1 + W h + b2: (b1 + b2) + W h
            ps = once(s1, s2)
        else:
            if s2.t is None and b1 is not None and type(b1.inputs[1]) is Value and \
                    b1.inputs[1].t is None and type(b1.inputs[0]) is Value and \
                    b1.inputs[0] not in recurrent and \
                    add_p.shape(b1.inputs[1].aval, s2.aval).shape == s2.shape:
                s1, s2 = b1.inputs[0], once(b1.inputs[1], s2)   # (U x + b1) + b2
            ps = Value(y.name, y.t, add_p.shape(s1.aval, s2.aval))
            first = Eqn(add_p, (s1, s2), {}, (ps,), e.step)
            out.append(first)
            made[ps] = first
            readers[ps] = 1
        last = Eqn(add_p, (ps, rec[0]), {}, e.outs, e.step)
        out.append(last)                       # here, where all three are known; the inner
        made[z] = last                         # sum's own equation is left dead
    return out, results


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
        slots = e.prim.shape_only
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
