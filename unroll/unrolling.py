"""Unrolling: copy the circuit's step body τ times into one explicit Graph.

Each delay edge is wired to the value k steps earlier (later, for a backward state) or to an
initial value; every copy reads the same parameter Value. Work that depends only on parameters
and static inputs is written once (``t = None``). The phases of :meth:`Circuit.schedule` are
unrolled one after the other, each over t in its direction, so the equations come out in an
order that can be executed as written. The per-step losses are averaged over the batch and
chained into the total ``L`` as they appear.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

from .circuit import Circuit, Node, init_shape
from .core import FLOAT, Aval, Lit, no_gc
from .errors import (CircuitError, ResourceError, ShapeError, available_memory, gib,
                     suggest)
from .ir import Eqn, Graph, Value
from .structure import variables
from .ops import (accumulate_p, batch_zeros_p, copy_p, index_p, mean_batch_p, part_p,
                  zeros_p)

__all__ = ["unroll", "resolve_steps"]


def resolve_steps(at, steps: int, what: str) -> list:
    """``None`` -> 1..τ; ``"last"`` -> [τ]; a list of steps (1-based, negatives from the end)."""
    if at is None:
        return list(range(1, steps + 1))
    if at == "last":
        return [steps]
    if at == "first":
        return [1]
    if isinstance(at, str) or not hasattr(at, "__iter__") or any(
            isinstance(t, bool) or not isinstance(t, numbers.Integral) for t in at):
        raise CircuitError(f"{what}: at must be None, 'last', 'first' or a list of whole "
                           f"steps (1-based, negative from the end), not {at!r}")
    ts = sorted({int(t) + (steps + 1 if int(t) < 0 else 0) for t in at})
    bad = [t for t in ts if not 1 <= t <= steps]
    if bad:
        raise CircuitError(f"{what} is placed at step(s) {bad}, but the graph has steps "
                           f"1..{steps}; use steps between 1 and τ = {steps} (or 'last')")
    return ts


def _within(at, steps: int) -> list:
    """The steps of ``at`` that fall in 1..steps (an output of a window)."""
    if at is None or isinstance(at, str):
        return resolve_steps(at, steps, "output")
    return [t for t in at if 1 <= t <= steps]


#: from this many steps on, Circuit.unroll defers building the graph to its first use (see
#: Graph.deferred): a gradient may never need it (api._steady writes the program from small
#: unrollings)
DEFER_FROM = 48


def unroll(c: Circuit, steps: int, loss_steps=None, defer: bool = False) -> Graph:
    """Unfold ``c`` over ``steps`` steps. See :meth:`Circuit.unroll`. With ``defer``, a long
    graph whose outputs and losses sit at every step, the first or the last is built on
    first use (everything is checked now)."""
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
        raise CircuitError(f"unroll(steps={steps!r}): τ must be an integer >= 1")
    steps = int(steps)
    if not c.states and not c.outputs and not c.losses:
        raise CircuitError(f"circuit {c.name} has no state, output or loss: there is nothing "
                           "to unroll; declare c.output(name, expr) or c.loss(expr)")
    phases = c.schedule()
    _check_size(c, steps, phases)
    # what api._steady needs to unroll the same circuit the same way at other τ (losses at
    # every step or the last: a place that is not the same relative to τ is recorded as such)
    relative = loss_steps is None or isinstance(loss_steps, str) and loss_steps == "last"
    how = loss_steps if relative else "placed"
    if defer and steps >= DEFER_FROM and relative and all(
            at is None or isinstance(at, str) for _, at in [*c.outputs.values(), *c.losses]):
        g = Graph.deferred(c.name, steps, lambda: _build(c, steps, phases, loss_steps, how),
                           circuit=c, recipe=(c._version, how, None),
                           dropout=dict(c.dropout))
        c._deferred.add(g)
        return g
    return _build(c, steps, phases, loss_steps, how)


def _build(c: Circuit, steps: int, phases, loss_steps, how) -> Graph:
    version = c._version
    with no_gc():
        g = _unroll(c, steps, phases, loss_steps)
    if c._version != version:
        raise CircuitError(f"internal: circuit {c.name} changed while it was unrolled")
    g.recipe = (version, how, len(g.eqns))
    return g


#: the memory one equation of a Graph takes, with its Values (measured: ~0.5 KiB)
BYTES_PER_EQUATION = 700


def _check_size(c: Circuit, steps: int, phases) -> None:
    """Refuse, before building anything, a graph that would not fit in memory."""
    body = sum(len(ph.nodes) for ph in phases)
    rows = {name: s.max_delay for name, s in c.states.items()}
    n = steps * body + sum(rows.values())
    need = n * BYTES_PER_EQUATION
    if need < 64 * 2 ** 20:            # no machine lacks that; spare the look-up per unroll
        return
    have = available_memory()
    if have is None or need <= have:
        return
    worst = max(rows, key=rows.get, default=None)
    why = (f"state {worst} is read {rows[worst]:,} steps back, and each step back is one "
           f"more initial value; read it at a shorter delay" if worst is not None and
           rows[worst] > steps * body else
           f"{steps:,} steps of {body} operations; unroll fewer steps and train on windows "
           "(ur.training.TruncatedBPTT), carrying the state from one to the next")
    raise ResourceError(f"unrolling circuit {c.name} over τ = {steps:,} would build about "
                        f"{n:,} equations ({gib(need)}), more than the {gib(have)} of memory "
                        f"available: {why}")


def _unroll(c: Circuit, steps: int, phases, loss_steps=None) -> Graph:
    u = _Unroller(c, steps, loss_steps)
    u.declare_inputs()
    u.static_nodes()
    u.initial_values()
    for ph in phases:
        ts = range(1, steps + 1) if ph.direction > 0 else range(steps, 0, -1)
        nodes = [n for n in ph.nodes if n not in u.once]
        for t in ts:
            for n in nodes:
                u.emit(n, t, ph.direction)
    u.finish()
    return u.g.prune()


class Operand(NamedTuple):
    """Where an operand of a step-body node is found at step t."""
    how: str              # CONSTANT: ``src`` itself; AT_STEP: ``src[t]``; DELAYED: see below
    src: object           # a value, a per-step list, or (per-step list, initial values)
    k: int = 0            # DELAYED: entry t + k of the list, or the initial value outside 1..τ


CONSTANT, AT_STEP, DELAYED = "constant", "at step", "delayed"


class _Unroller:
    def __init__(self, c: Circuit, steps: int, loss_steps=None):
        self.c, self.T = c, steps
        self.g = g = Graph(c.name, steps)
        g.circuit = c
        g.variables = variables(c)
        g.dropout = dict(c.dropout)
        self.vals: dict = {}                 # node -> [Value or tuple per t] (or Value if once)
        self.once: dict = {}                 # static op node -> Value (computed once)
        self.init: dict = {}                 # state name -> {t: Value} for t outside 1..τ
        self.cache: dict = {}                # node -> (input avals, output avals)
        self.parts: dict = {}                # multi-output node -> its part_p nodes
        self.plans: dict = {}                # node -> where its operands come from
        self.names = _names(c)
        window = isinstance(loss_steps, dict)           # loss name -> its steps here
        if window:
            unknown = set(loss_steps) - {n.name for n, _ in c.losses}
            if unknown:
                raise CircuitError(f"unroll(loss_steps=...): circuit {c.name} has no loss "
                                   f"{sorted(unknown)[0]!r}; its losses are "
                                   f"{', '.join(n.name for n, _ in c.losses) or 'none'}")
            self.loss_steps = {n: set(resolve_steps(loss_steps.get(n.name, ()), steps,
                                                    f"loss {n.name}")) for n, _ in c.losses}
        else:
            self.loss_steps = {n: set(resolve_steps(at, steps, f"loss {n.name}"))
                               for n, at in c.losses}
        if loss_steps is not None and not window:
            keep = set(resolve_steps(loss_steps, steps, "unroll(loss_steps=...)"))
            self.loss_steps = {n: ts & keep for n, ts in self.loss_steps.items()}
        # a window of a longer sequence keeps the outputs placed at its own steps
        self.out_steps = {name: _within(at, steps) if window else
                          resolve_steps(at, steps, f"output {name}")
                          for name, (n, at) in c.outputs.items()}
        self.acc = None                      # running total of the loss

    # --- leaves --------------------------------------------------------------------------------

    def declare_inputs(self) -> None:
        g, c = self.g, self.c
        for name, p in c.params.items():
            g.params[name] = Value(name, None, p.node.aval, "param")
        for name, n in c.inputs.items():
            aval = n.aval._replace(batched=True)
            g.seq_inputs[name] = [Value(name, t, aval, "input") for t in range(1, self.T + 1)]
        for name, n in c.statics.items():
            g.static_inputs[name] = Value(name, None, n.aval._replace(batched=True), "static")

    def static_nodes(self) -> None:
        """Op nodes that read only parameters and static inputs: computed once."""
        for n in self.c.nodes:
            if n.kind == "op" and all(not isinstance(x, Node) or x.kind in ("param", "static")
                                      or x in self.once for x in n.inputs):
                self.once[n] = None
        for n in self.once:
            self.once[n] = self._eqn(n, None)

    def initial_values(self) -> None:
        g, T = self.g, self.T
        for name, s in self.c.states.items():
            shape, k = init_shape(s), s.max_delay
            src = self._init_source(name, s, shape)
            g.directions[name], g.delays[name] = s.direction, k
            ts = range(1 - k, 1) if s.direction == "forward" else range(T + 1, T + k + 1)
            aval = Aval(s.node.aval.shape, FLOAT, src.aval.batched)
            vals = {}
            for j, t in enumerate(ts):                   # h[0] = h0, or h[1-k+j] = h0[j]
                v = vals[t] = Value(name, t, aval)
                if k == 1:
                    g.eqns.append(Eqn(copy_p, (src,), {}, (v,), None))
                else:
                    g.eqns.append(Eqn(index_p, (src,), {"idx": (j,),
                                      "rank": len(shape)}, (v,), None))
            self.init[name] = vals
            g.states[name] = dict(vals)

    def _init_source(self, name, s, shape) -> Value:
        g, init = self.g, s.init
        key = s.init_name
        if init in ("zeros", "param"):
            if key in self.c.named:
                raise CircuitError(f"state {name}: its initial value is called {key}, but the "
                                   f"circuit already has a variable {key}; rename that one")
            if init == "param":
                v = g.params[key] = Value(key, None, Aval(shape, FLOAT, False), "param")
            else:
                v = g.static_inputs[key] = Value(key, None, Aval(shape, FLOAT, True), "static")
                g.zero_defaults.add(key)
            return v
        if isinstance(init, str):
            if init not in self.c.statics:
                where = " (it is a sequence input)" if init in self.c.inputs else \
                    suggest(init, ["zeros", "param", *self.c.statics])
                raise CircuitError(f"state {name}: init={init!r} must be 'zeros', 'param' or "
                                   f"name a static input declared with per_step=False{where}")
            v = g.static_inputs[init]
        else:
            if init.builder is not self.c:
                raise CircuitError(f"state {name}: its init expression belongs to another "
                                   "circuit")
            if init.node not in self.once and init.node.kind not in ("param", "static"):
                raise CircuitError(f"state {name}: its init expression "
                                   f"{self.c.describe(init.node)} reads per-step values; an "
                                   "initial value may use only parameters and static inputs")
            v = self._resolve(init.node, None)
        if v.shape != shape:
            raise ShapeError(f"state {name}: its initial value {v!r} has shape {v.shape}, but "
                             f"it needs shape {shape}"
                             + (f" (delay {s.max_delay}: one row per initial step, oldest "
                                "first)" if s.max_delay > 1 else ""))
        return v

    # --- body ----------------------------------------------------------------------------------

    def _resolve(self, x, t):
        if isinstance(x, Lit):
            return x
        kind = x.kind
        if kind == "op":
            if x in self.once:
                return self.once[x]
            v = self.vals[x][t]
            return v
        if kind == "input":
            return self.g.seq_inputs[x.name][t - 1]
        if kind == "param":
            return self.g.params[x.name]
        if kind == "static":
            return self.g.static_inputs[x.name]
        s = self.c.states[x.ref]
        if kind == "state":
            return self.vals[s.next][t]
        tt = t - x.k if s.direction == "forward" else t + x.k
        if 1 <= tt <= self.T:
            return self.vals[s.next][tt]
        return self.init[x.ref][tt]

    def _plan(self, n: Node) -> list:
        """How to find each operand of ``n`` at any step t, worked out once per node: an
        :class:`Operand` (a constant, a per-step list's entry t, or a delayed read)."""
        plan = []
        for x in n.inputs:
            if isinstance(x, Lit) or x.kind in ("param", "static") or x in self.once:
                plan.append(Operand(CONSTANT, self._resolve(x, None)))
            elif x.kind == "op":
                plan.append(Operand(AT_STEP, self._vals(x)))
            elif x.kind == "input":
                plan.append(Operand(AT_STEP, [None] + self.g.seq_inputs[x.name]))
            else:
                s = self.c.states[x.ref]
                if x.kind == "state":
                    plan.append(Operand(AT_STEP, self._vals(s.next)))
                else:
                    k = -x.k if s.direction == "forward" else x.k
                    plan.append(Operand(DELAYED, (self._vals(s.next), self.init[x.ref]), k))
        self.plans[n] = plan
        return plan

    def _vals(self, n: Node) -> list:
        vals = self.vals.get(n)
        if vals is None:
            vals = self.vals[n] = [None] * (self.T + 1)
        return vals

    def _eqn(self, n: Node, t):
        if t is None:
            ins = tuple(self._resolve(x, None) for x in n.inputs)
        else:
            T, ins = self.T, []
            for how, src, k in self.plans.get(n) or self._plan(n):
                if how is AT_STEP:
                    ins.append(src[t])
                elif how is CONSTANT:
                    ins.append(src)
                else:
                    tt = t + k
                    ins.append(src[0][tt] if 1 <= tt <= T else src[1][tt])
            ins = tuple(ins)
        if n.prim is part_p:
            return ins[0][n.params["i"]]
        avals = tuple([x.aval for x in ins])
        hit = self.cache.get(n)
        if hit is not None and hit[0] == avals:
            outs_avals = hit[1]
        else:
            outs_avals = n.prim.shape(*avals, **n.params)
            if isinstance(outs_avals, Aval):
                outs_avals = (outs_avals,)
            self.cache[n] = (avals, outs_avals)
            if n.prim.bounds is not None:
                self._record_bounds(n, ins, avals)
        name = self.names[n]
        if len(outs_avals) == 1:
            out = Value(name, t, outs_avals[0])
            self.g.eqns.append(Eqn(n.prim, ins, n.params, (out,), t))
            return out
        outs = tuple(Value(self.names.get(p, f"{name}.{i}"), t, a)
                     for i, (p, a) in enumerate(zip(self._parts(n), outs_avals)))
        self.g.eqns.append(Eqn(n.prim, ins, n.params, outs, t))
        return outs

    def _parts(self, whole: Node) -> list:
        if whole not in self.parts:
            parts = [None] * len(whole.aval)
            for n in self.c.nodes:
                if n.prim is part_p and n.inputs[0] is whole:
                    parts[n.params["i"]] = n
            self.parts[whole] = parts
        return self.parts[whole]

    def _record_bounds(self, n, ins, avals) -> None:
        for i, k in n.prim.bounds(*avals, **n.params).items():
            x = ins[i]
            if isinstance(x, Value) and x.role in ("input", "static"):
                self.g.bounds[x.name] = min(k, self.g.bounds.get(x.name, k))

    def emit(self, n: Node, t: int, direction: int) -> None:
        self._vals(n)[t] = v = self._eqn(n, t)
        if n in self.loss_steps and t in self.loss_steps[n]:
            self._add_loss(n, v, t, direction)

    def _add_loss(self, n: Node, v: Value, t: int, direction: int) -> None:
        """ΣL[t] = ΣL[t-1] + L[t]: each sequence's loss, summed over the steps as they come."""
        g = self.g
        g.step_losses.setdefault(t, []).append(v)
        if self.acc is None:        # from ΣL[t0] = 0 (one per sequence), the step before
            ref = next(iter([xs[0] for xs in g.seq_inputs.values()] +
                            list(g.static_inputs.values())), None)
            batched = ref is not None and ref.aval.batched
            self.acc = Value("ΣL", t - direction, Aval((), FLOAT, batched))
            if batched:
                g.eqns.append(Eqn(batch_zeros_p, (ref,),
                                  {"shape": (), "rank": len(ref.shape)}, (self.acc,), None))
            else:
                g.eqns.append(Eqn(zeros_p, (), {"shape": ()}, (self.acc,), None))
        total = Value("ΣL", t, Aval((), FLOAT, v.aval.batched or self.acc.aval.batched))
        g.eqns.append(Eqn(accumulate_p, (self.acc, v), {}, (total,), t))
        self.acc = total

    def finish(self) -> None:
        g, c = self.g, self.c
        for n, ts in self.loss_steps.items():      # a loss that reads no per-step value
            if n in self.once:                      # counts at each of its steps all the same
                for t in sorted(ts):
                    self._add_loss(n, self.once[n], t, 1)
        for name, ts in self.out_steps.items():
            if not ts:                               # a window without this output's steps
                continue
            node, at = c.outputs[name]
            g.outputs[name] = {t: self._resolve(node, t) for t in ts}
            g.output_at[name] = at
        for name, s in c.states.items():
            for t in range(1, self.T + 1):
                g.states[name][t] = self._resolve(s.next, t)
        if self.acc is not None:
            clash = "L" in c.named and c.named["L"].kind in ("param", "static")
            g.loss = Value("ΣL" if clash else "L", None, Aval((), FLOAT, False))   # mean over B
            g.eqns.append(Eqn(mean_batch_p, (self.acc,), {"rank": 0}, (g.loss,),
                              None))


def _names(c: Circuit) -> dict:
    """Every op node's name in the graph: its own, or _1, _2, ... in creation order."""
    names, k = {}, 0
    for n in c.nodes:
        if n.kind == "op" and n.prim is not part_p:
            if n.name is None:
                k += 1
                names[n] = f"_{k}"
            else:
                names[n] = n.name
        elif n.kind == "op" and n.name is not None:
            names[n] = n.name
    return names
