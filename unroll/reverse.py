"""Reverse mode as a graph transformation: BPTT written out as equations.

:func:`backward_graph` (``ur.grad``, with its checks and cache) returns a new
:class:`~unroll.ir.Graph` holding the forward equations followed by
the backward ones, built by sweeping the forward equations in reverse and applying each
primitive's VJP rule (itself written with primitives). The result can be printed, rendered,
compiled and run like any graph, and differentiated again (:func:`hvp_graph`).

What happens once, here and nowhere else:

- *unbroadcasting*: a cotangent is summed back to its operand's shape and batchedness;
- *accumulation*: a value used several times gets the sum of its contributions (``∂h[t]`` =
  contribution through o(t) + contribution through h(t+1), eq. 10.21);
- *shared parameters*: the gradient of W is the sum over steps of its per-step contributions
  (the book's W(t) copies, eq. 10.26). Those stay visible: ``graph.contributions["W"]`` lists
  ``(t, value)``, and the running sums ``Σ∂W[t]`` are ordinary equations.

Names: ``∂x`` is the total cotangent of ``x``; ``∂o.1``, ``∂o.2``, ... are the pieces computed
by the VJP rule of the equation that defines ``o``; ``∂x.s2``, ... the partial sums of a total.
A name that has a dot already (a piece, a part ``o.1`` of a multi-output operation) is
parenthesised, ``∂(∂o.1)``, so that no two values of one step share a name (:func:`d_name`).
"""
from __future__ import annotations

from typing import NamedTuple

from .core import FLOAT, Aval, Var, bind, no_gc
from .errors import UnrollError
from .ir import Eqn, Graph, GraphBuilder, Value
from .ops import (accumulate_p, add_p, broadcast_like_p, copy_p, ones_like_p, sum_p, sum_to_p,
                  zeros_like_p)


__all__ = ["backward_graph", "hvp_graph", "d_name"]


def d_name(name: str, symbol: str = "∂") -> str:
    """The name of the cotangent of a value named ``name``: ``∂h``, or ``∂(o.1)`` when the
    name has a dot (a piece ``∂o.1`` is then never the total of a value named ``o.1``).
    A second sweep (differentiating a gradient graph) writes ``∂′`` instead of ``∂``."""
    return f"{symbol}({name})" if "." in name else symbol + name


def _sweeps(g: Graph) -> int:
    """How many gradient sweeps ``g`` already holds (0 for a forward graph)."""
    n = 0
    while g is not None:
        n += bool(g.grads)
        g = g.base
    return n



def backward_graph(g: Graph, wrt: tuple) -> Graph:
    """The gradient graph of ``g.loss`` with respect to the names in ``wrt``.

    Parameters
    ----------
    g : Graph
        A graph with a scalar ``loss``.
    wrt : tuple of str
        Parameter names, sequence-input names, static-input names (e.g. ``"h0"``).

    Returns
    -------
    Graph
        Same inputs and outputs as ``g``, plus ``grads`` (name -> Value, or {t: Value} for a
        sequence input) and ``contributions`` (name -> [(t, Value)] per-step pieces).

    Examples
    --------
    >>> import unroll as ur
    >>> c = ur.Circuit("tiny")
    >>> x, w = c.input("x", ()), c.param("w", ())
    >>> h = c.state("h", ())
    >>> h.next = ur.tanh(w * h.prev + x)
    >>> _ = c.loss(h * h)
    >>> gg = ur.grad(c.unroll(steps=2), wrt=("w",))
    >>> gg.grads["w"]
    ∂w
    """
    if g.loss is None:
        raise UnrollError(f"{g.name} has no loss to differentiate")
    with no_gc():
        return _Transform(g, wrt).run()


class _Transform:
    def __init__(self, g: Graph, wrt: tuple):
        self.g = g
        self.gg = gg = g.derive(base=g)
        self.b = GraphBuilder(gg)
        self.targets = {}                    # Value -> (name, t or None)
        for name in wrt:
            if name in g.params:
                self.targets[g.params[name]] = (name, None)
            elif name in g.static_inputs:
                self.targets[g.static_inputs[name]] = (name, None)
            else:
                for x in g.seq_inputs[name]:
                    self.targets[x] = (name, x.t)
        self.wrt = wrt
        self.ct: dict = {}                   # timed Value -> [contributions]
        self.pending: dict = {}              # graph input Value -> [contributions this step]
        self.acc: dict = {}                  # untimed Value -> running sum so far
        self.done: dict = {}                 # graph input Value -> final cotangent
        self.created: set = set()            # ids of temporaries made by VJP rules
        self.replays: dict = {}              # operand signature -> recorded rule output
        self._mark = 0
        symbol = "∂" + "′" * _sweeps(g)       # ∂ for a first sweep, ∂′ for a second
        self.d = lambda name: d_name(name, symbol)

    # --- the sweep ---------------------------------------------------------------------------

    def run(self) -> Graph:
        g, gg = self.g, self.gg
        active = self._active()
        if g.loss in active:
            self.b.t = self.b.step = None
            seed = self._apply_named(ones_like_p, g.loss, name=self.d(g.loss.name))
            self.acc[g.loss] = seed
            step = object()
            backward = self._backward
            for e in reversed(g.eqns):
                if e.step != step:
                    self._flush(step)
                    step = e.step
                if e.prim.vjp is None:
                    continue
                outs = e.outs
                if outs[0] in active if len(outs) == 1 else any(o in active for o in outs):
                    backward(e, active)
            self._flush(step)
        self._finish()
        return gg.prune()

    def _active(self) -> set:
        """Values that depend on a target (only those need cotangents)."""
        active = set(self.targets)
        independent, add = active.isdisjoint, active.update
        for e in self.g.eqns:
            if e.prim.vjp is not None and not independent(e.inputs):
                add(e.outs)
        return active

    def _backward(self, e: Eqn, active: set) -> None:
        total = self._total
        # a cotangent is keyed by its type and, if computed once, by its identity: the rule's
        # once-work on it is shared only with equations that have this very cotangent
        if len(e.outs) == 1:
            g0 = total(e.outs[0])
            if g0 is None:
                return
            gs = (g0,)
            gkey = g0.aval if g0.t is not None else (g0.aval, id(g0))
        else:
            gs = tuple([total(o) for o in e.outs])
            if all(x is None for x in gs):
                return
            gkey = tuple([None if x is None else x.aval if x.t is not None else (x.aval, id(x))
                          for x in gs])
        b = self.b
        b.t = b.step = e.step
        slots = (*gs, *e.outs, *e.inputs)
        # what the rule's equations may depend on: a constant's value, an operand's type and
        # whether it needs a gradient, and the identity of values computed once (their
        # once-work is shared)
        key = [e.prim, id(e.params), gkey]
        for o in e.outs:                        # an output computed once: by identity too
            if o.t is None:
                key.append(id(o))
        for x in e.inputs:
            if type(x) is Value:
                key.append(x.aval)
                key.append(x in active)
                key.append(None if x.t is not None else id(x))
            else:
                key.append(x.key)
        key = tuple(key)
        rec = self.replays.get(key)
        if rec is None:
            cts = self._apply_rule(e, gs, active)
            self.replays[key] = _record(self.gg.eqns[self._mark:], slots, cts)
        else:
            cts = self._replay(rec, slots, e.step)
        contribute = self._contribute
        for x, c in zip(e.inputs, cts):
            if c is not None:
                contribute(x, c, e.step)

    def _apply_rule(self, e: Eqn, gs: list, active: set) -> list:
        """Run ``e``'s VJP rule through the builder; returns one cotangent Value (or None) per
        operand, already unbroadcast to the operand's shape."""
        b = self.b
        b.prefix, b.counter = self.d(e.outs[0].name) + ".", 0
        self._mark = mark = len(self.gg.eqns)
        var = b.var
        single = e.prim.nouts == 1
        gv = var(gs[0]) if single else tuple(None if x is None else var(x) for x in gs)
        outs = var(e.outs[0]) if single else tuple(var(o) for o in e.outs)
        try:
            cts = e.prim.vjp(gv, outs, *[var(x) for x in e.inputs], **e.params)
        except (TypeError, ValueError, AttributeError) as err:
            if isinstance(err, UnrollError):
                raise
            raise UnrollError(f"the VJP rule of primitive {e.prim.name} failed on {e!r}: "
                              f"{type(err).__name__}: {err}; it is called as vjp(g, out, "
                              f"{', '.join(f'x{i}' for i in range(len(e.inputs)))}"
                              f"{', **params' if e.params else ''})") from None
        if not isinstance(cts, (tuple, list)) or len(cts) != len(e.inputs):
            got = (f"{len(cts)} cotangents" if isinstance(cts, (tuple, list))
                   else f"{type(cts).__name__} (not a tuple)")
            raise UnrollError(f"the VJP rule of primitive {e.prim.name} returned {got} for "
                              f"{len(e.inputs)} operand(s); return a tuple with one cotangent "
                              "per operand (None for one without a gradient), e.g. (g * x,)")
        for x, c in zip(e.inputs, cts):
            if c is None or type(x) is not Value or x not in active:
                continue
            if not isinstance(c, Var):
                raise UnrollError(f"the VJP rule of primitive {e.prim.name} returned "
                                  f"{type(c).__name__} {c!r:.40} for operand {x!r}; cotangents "
                                  "are expressions of g, out and the operands (or None)")
            if len(c.shape) < len(x.aval.shape) or any(
                    m != 1 and n != m for n, m in zip(c.shape[::-1], x.aval.shape[::-1])):
                raise UnrollError(f"the VJP rule of primitive {e.prim.name} returned a "
                                  f"cotangent of shape {c.shape} for operand {x!r} of shape "
                                  f"{x.aval.shape}; a cotangent has its operand's shape (or "
                                  "the result's, when the operand was broadcast)")
        cts = [None if c is None or type(x) is not Value or x not in active
               else _unbroadcast(c, x).node for x, c in zip(e.inputs, cts)]
        self.created.update(id(v) for q in self.gg.eqns[mark:] for v in q.outs)
        return cts

    def _replay(self, rec, slots: tuple, step) -> list:
        """Emit the equations a rule made for an earlier step with the same operand types."""
        append, made, add = self.gg.eqns.append, [], self.created.add

        def deref(how, a, b):                   # see Ref
            return slots[a] if how is SLOT else (made[a][b] if how is MADE else a)

        for prim, refs, params, outs in rec.eqns:
            vs = tuple([Value(name, step, aval) for name, aval in outs])
            append(Eqn(prim, tuple([deref(*r) for r in refs]), params, vs, step))
            made.append(vs)
            for v in vs:
                add(id(v))
        return [None if r is None else deref(*r) for r in rec.cts]

    def _contribute(self, x: Value, c: Value, step) -> None:
        if c.aval != x.aval:
            raise UnrollError(f"internal: the cotangent of {x!r} has {c.aval}, expected {x.aval}")
        if x.role is not None:                       # a graph input: parameter, data, h0
            self.pending.setdefault(x, []).append(c)
            if x in self.targets:
                name = self.targets[x][0]
                self.gg.contributions.setdefault(name, []).append((step, c))
        elif x.t is None:                            # computed once: accumulate over steps
            self.pending.setdefault(x, []).append(c)
        else:
            self.ct.setdefault(x, []).append(c)

    def _total(self, o: Value):
        """The total cotangent of ``o`` (None if nothing depends on it)."""
        if o.t is None:
            self._flush_value(o, None)
            return self.acc.get(o)
        cs = self.ct.pop(o, None)
        if not cs:
            return None
        if len(cs) == 1:
            c = cs[0]
            if self._temporary(c):              # a value computed once stays untimed
                c.name, c.t = self.d(o.name), (o.t if c.t is not None else None)
        else:
            c = self._sum(cs, self.d(o.name), o.t)
        self.gg.cotangents[o] = c
        return c

    def _temporary(self, v: Value) -> bool:
        """A piece made by a VJP rule that has not been given a total's name yet."""
        return id(v) in self.created and ("." in v.name or v.name.startswith("Σ∂"))

    def _sum(self, cs, name, t) -> Value:
        """Σ cs, the result named ``name[t]`` (a single term is returned as it is)."""
        if len(cs) == 1:
            return cs[0]
        acc = cs[0]
        for k, c in enumerate(cs[1:], start=2):
            last = k == len(cs)
            acc = self._emit(add_p, (acc, c), name if last else f"{name}.s{k}",
                             t if last else self.b.t, c.aval)
        return acc

    def _emit(self, prim, ins: tuple, name: str, t, aval) -> Value:
        """Record ``name[t] = prim(*ins)`` directly (types known: no shape rule needed)."""
        v = Value(name, t, aval)
        self.gg.eqns.append(Eqn(prim, ins, {}, (v,), self.b.step))
        self.created.add(id(v))
        return v

    # --- accumulation over steps -------------------------------------------------------------

    def _flush(self, step) -> None:
        """Leaving ``step``: fold its contributions into running sums."""
        b = self.b
        b.t = b.step = None if not isinstance(step, int) else step
        for x in list(self.pending):
            self._flush_value(x, step)

    def _flush_value(self, x: Value, step) -> None:
        cs = self.pending.pop(x, None)
        if not cs:
            return
        b = self.b
        b.t = b.step = step if isinstance(step, int) else None
        if x.t is not None and x.role is not None:   # x[t]: all its uses are at one step
            self.done[x] = self._sum(cs, self.d(x.name), x.t)
            return
        prev = self.acc.get(x)
        t = step if isinstance(step, int) else None
        c = self._sum(cs, self.d(x.name) + ".t", t)   # this step's contributions
        if prev is None:                        # the running sum starts as a copy (an alias)
            self.acc[x] = self._emit(copy_p, (c,), "Σ" + self.d(x.name), t, c.aval)
        else:                                   # Σ∂W[t] = Σ∂W[t+1] + ∂W(t)
            self.acc[x] = self._emit(accumulate_p, (prev, c), "Σ" + self.d(x.name), t, c.aval)

    # --- results -----------------------------------------------------------------------------

    def _finish(self) -> None:
        gg, b = self.gg, self.b
        b.t = b.step = None
        for name in self.wrt:
            if name in self.g.seq_inputs:
                gg.grads[name] = {x.t: self._final(x, x.t) for x in self.g.seq_inputs[name]}
            else:
                x = self.g.params.get(name) or self.g.static_inputs[name]
                gg.grads[name] = self._final(x, None)

    def _final(self, x: Value, t) -> Value:
        v = self.done.get(x) if t is not None else self.acc.get(x)
        name = self.d(x.name)
        if v is None:                                  # the loss does not depend on x
            return self._apply_named(zeros_like_p, x, name=name, t=t)
        if self._temporary(v):
            v.name, v.t = name, t
            return v
        if v.name == name and v.t == t:
            return v
        return self._apply_named(copy_p, v, name=name, t=t)

    def _apply_named(self, p, x: Value, name: str, t=None) -> Value:
        out = Value(name, t, Aval(x.aval.shape, FLOAT, x.aval.batched))
        self.gg.eqns.append(Eqn(p, (x,), {}, (out,), self.b.step))
        return out


# --- replaying a rule for the next step ----------------------------------------------------------

class Ref(NamedTuple):
    """An operand of a recorded VJP equation, relative to the forward equation it came from:
    SLOT (``a`` = index of an operand, output or cotangent of it), MADE (output ``b`` of the
    ``a``-th recorded equation), SHARED (``a`` = a literal or a value computed once, shared
    as it is)."""
    how: str
    a: object
    b: int = 0


SLOT, MADE, SHARED = "slot", "made", "shared"


class _Recording:
    __slots__ = ("eqns", "cts")

    def __init__(self, eqns, cts):
        self.eqns = eqns          # [(prim, operand refs, params, [(name, aval)])], step-local
        self.cts = cts            # one ref (or None) per operand of the forward equation


def _record(new_eqns, slots: tuple, cts: list):
    """The equations a VJP rule emitted, with operands as :class:`Ref` s. Once-work reads
    only slots computed once, and those are in the replay key by identity, so it is shared
    only among equations that have them."""
    where = {id(v): Ref(SLOT, i) for i, v in enumerate(slots) if type(v) is Value}
    eqns, k = [], 0

    def ref(x):
        return where.get(id(x), Ref(SHARED, x)) if type(x) is Value else Ref(SHARED, x)

    for e in new_eqns:
        if e.step is None:                          # once-work: reused, not re-emitted
            continue
        eqns.append((e.prim, tuple(ref(x) for x in e.inputs), e.params,
                     [(v.name, v.aval) for v in e.outs]))
        for j, v in enumerate(e.outs):
            where[id(v)] = Ref(MADE, k, j)
        k += 1
    return _Recording(eqns, [None if c is None else ref(c) for c in cts])


def _unbroadcast(c: Var, x: Value) -> Var:
    """Sum (or broadcast) cotangent ``c`` to the shape and batchedness of operand ``x``."""
    ca, xa = c.aval, x.aval
    if ca.shape != xa.shape or (ca.batched and not xa.batched):
        c = bind(sum_to_p, c, shape=xa.shape, drop=ca.batched and not xa.batched,
                 rank=len(ca.shape))
    if xa.batched and not c.aval.batched:
        c = bind(broadcast_like_p, c, c.builder.var(x), mean=False, rank=len(xa.shape))
    return c


# --- second order ------------------------------------------------------------------------------

def hvp_graph(gg: Graph) -> Graph:
    """A graph whose loss is Σ_k <∂L/∂θ_k, v_k> for the gradients of ``gg``; differentiating
    it gives Hessian-vector products H v. The directions are parameters named ``"v:" + k``."""
    h = gg.derive(base=gg, params=dict(gg.params), loss=None)
    b = GraphBuilder(h)
    b.prefix = "⟨∂L,v⟩."
    total = None
    for name, dv in gg.grads.items():
        if name not in gg.params:
            raise UnrollError(f"hvp: {name} is an input; second derivatives are available "
                              "with respect to parameters")
        v = h.params["v:" + name] = Value("v:" + name, None, Aval(dv.shape, FLOAT, False),
                                          "param")
        prod = b.var(dv) * b.var(v)
        if prod.shape:
            prod = bind(sum_p, prod, axes=tuple(range(-len(prod.shape), 0)), keepdims=False)
        total = prod if total is None else total + prod
    total.node.name = "⟨∂L,v⟩"
    h.loss = total.node
    return h
