"""The rolled equations of a circuit, forward and BPTT, read off its gradient graph.

The gradient graph (:mod:`unroll.reverse`) is τ copies of a step body followed by τ copies
of a backward body; every copy does the same work relative to its step but for a few at the
ends. :func:`derive` writes each named value and each gradient once, as a *term* of
``t`` (``h(t-1)``, ``∇_{h(t+1)} L``), by inlining the anonymous values and the VJP's pieces
(``∂_1.2`` becomes ``Wᵀ ∂a(t+1)``), and groups the steps whose terms agree into pieces (the
interior ``1 ≤ t < τ`` and the boundary ``t = τ``), exactly as the re-roller groups the
chunks of a loop. Gradients are per example, seeded with ∂L/∂L(t) = 1 (the engine averages
them over the batch).

A :class:`Derivation` is data: :mod:`unroll.render.equations` prints it in the book's notation,
and :meth:`Derivation.evaluate` runs the derived equations themselves (not the graph) with
NumPy, so that they can be compared with ``value_and_grad``.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .core import Lit
from .errors import InputError, UnrollError
from .ir import Graph, Value
from .ops import accumulate_p, add_p, broadcast_like_p, copy_p, mul_p, neg_p, one_hot_p, reshape_p, sub_p, sum_p
from .reverse import backward_graph
from .runtime import bind_arguments

__all__ = ["Ref", "Const", "App", "Sum", "Step", "Piece", "Equation", "Derivation", "derive"]

#: inlining stops at a term of this many nodes: a larger one is kept as its own equation
MAX_INLINE = 60
#: a value the backward pass computes and reads twice or more is inlined up to this many
#: nodes (the -1_y of a cross-entropy, read twice, stays inlined); one the forward pass
#: computes and the backward pass reads again, up to this many (tanh(s) stays, an
#: activation of a whole affine map gets a name)
SHARED_INLINE = 12
SHARED_FORWARD = 5


class Ref:
    """A value the equations read: a parameter ``W``, an input ``x(t+shift)``, a static
    input ``h0``, a named value ``h(t+shift)`` or a gradient ``∇_{h(t+shift)} L``
    (``kind`` "param", "input", "static", "value", "grad"; ``shift`` None if untimed)."""
    __slots__ = ("kind", "name", "shift", "shape", "batched")

    def __init__(self, kind: str, name: str, shift: int | None, shape=None,
                 batched: bool = False):
        self.kind, self.name, self.shift = kind, name, shift
        self.shape = shape                       # per-example shape
        self.batched = batched                   # one per example (else shared by all)

    def key(self):
        return ("ref", self.kind, self.name, self.shift)

    def __repr__(self):
        t = "" if self.shift is None else "(t%+d)" % self.shift if self.shift else "(t)"
        return ("∇" if self.kind == "grad" else "") + self.name + t


class Const:
    """A constant: a scalar, or an array (``array``: passed to a primitive as one). The seed
    ∂L/∂L(t) = 1 is one per example (``batched``, of per-example ``shape``): summed over
    the batch it counts B times, as the engine's does."""
    __slots__ = ("value", "array", "batched", "shape")

    def __init__(self, value, array: bool = False, batched: bool = False, shape=()):
        self.value = value
        self.array = array or batched or np.ndim(value) > 0
        self.batched, self.shape = batched, tuple(shape)

    def key(self):
        v = self.value
        if np.ndim(v) == 0:                      # 2 is 2, passed as an array or not
            return ("const", float(v)) if not self.batched else \
                ("const", float(v), self.shape)
        return ("const", tuple(np.ravel(v).tolist()), np.shape(v))

    def __repr__(self):
        return repr(self.value) if np.ndim(self.value) == 0 else f"const{np.shape(self.value)}"


class App:
    """A primitive applied to terms (``index``: which result of a multi-result one)."""
    __slots__ = ("prim", "args", "params", "index", "shape", "batched", "_key")

    def __init__(self, prim, args: tuple, params: dict, index=None, shape=None,
                 batched: bool = True):
        self.prim, self.args, self.params, self.index = prim, args, params, index
        self.shape = shape                       # per-example shape of the result
        self.batched = batched                   # one per example
        self._key = None

    def key(self):
        if self._key is None:                    # terms share subterms: computed once
            self._key = ("app", self.prim.name, tuple(a.key() for a in self.args),
                         repr(sorted(self.params.items())), self.index)
        return self._key

    def __repr__(self):
        return f"{self.prim.name}({', '.join(map(repr, self.args))})" + (
            "" if self.index is None else f"[{self.index}]")


class Sum:
    """Σ over the steps of its pieces, each term relative to its own step: the gradient of a
    value computed once and read at every step (work hoisted out of the loop)."""
    __slots__ = ("pieces",)

    def __init__(self, pieces: list):
        self.pieces = pieces

    def key(self):
        return ("sum", tuple((p.first, p.last, p.term.key()) for p in self.pieces))

    def __repr__(self):
        return "Σ[" + " + ".join(f"{p.term!r} for {p.first}..{p.last}"
                                 for p in self.pieces) + "]"


class Step(NamedTuple):
    """A step counted from the start (``k``) or from the end (``τ - k``, ``end`` True)."""
    end: bool
    k: int

    def at(self, steps: int) -> int:
        return steps - self.k if self.end else self.k


class Piece(NamedTuple):
    """``term`` holds for ``first ≤ t ≤ last`` (both None: a term without t)."""
    first: Step | None
    last: Step | None
    term: object


class Equation:
    """``target`` = its pieces: one per run of steps whose terms agree. A parameter's
    gradient (``summed``) is the sum of every piece over its steps."""

    def __init__(self, target: Ref, pieces: list, summed: bool = False):
        self.target, self.pieces, self.summed = target, pieces, summed

    def __repr__(self):
        return f"{self.target!r} = " + " | ".join(
            f"{p.term!r}" + ("" if p.first is None else f" for {p.first}..{p.last}")
            for p in self.pieces)


class Derivation:
    """The derived equations of one graph (see :func:`derive`)."""

    def __init__(self, name, steps, general, forward, backward, gradients, loss,
                 directions, graph, version=None):
        self.name = name
        self.steps = steps              # τ of the graph they were read from
        self.general = general          # do they hold for every τ (read from a circuit)?
        self.forward = forward          # [Equation]: the named values, initial values too
        self.backward = backward        # [Equation]: the gradients of states, outputs, ...
        self.gradients = gradients      # [Equation]: the parameters' gradients (summed)
        self.loss = loss                # Equation (summed): L = Σ_t L(t); None: no loss
        self.directions = directions    # state -> "forward" | "backward"
        self.graph = graph              # the forward graph (for binding arguments)
        self.version = version          # its circuit's version when they were read

    def __repr__(self):
        return "\n".join(map(repr, self.forward + self.backward + self.gradients))

    # --- running the equations themselves ------------------------------------------------

    def evaluate(self, params: dict, *, steps: int | None = None, **inputs) -> tuple:
        """Evaluate the derived equations step by step with the arrays given (one batch at
        once; each example seeded with 1, the sums over t and the batch divided by B as the
        engine's mean loss is). Returns ``(loss, grads)`` like ``value_and_grad``.

        A derivation read from a circuit holds for any τ: the inputs may have another
        number of steps than the graph it was read from, down to the shortest τ at which its
        boundary pieces do not overlap. ``steps`` is τ where no input is a sequence (else
        the sequences' length is)."""
        given = steps
        if given is not None and (isinstance(given, bool) or
                                  not isinstance(given, numbers.Integral) or given < 1):
            raise InputError(f"evaluate: steps must be a whole number ≥ 1, not {given!r}")
        steps = self.steps if given is None else int(given)
        for name in self.graph.seq_inputs:
            a = inputs.get(name)
            if getattr(a, "ndim", 0) >= 1:
                if given is not None and a.shape[0] != given:
                    raise InputError(f"evaluate: steps={given}, but input {name} has "
                                     f"{a.shape[0]} steps; leave steps out")
                steps = int(a.shape[0])
                break
        else:
            if given is None and self.general:       # they hold for every τ: which one?
                seq = ", ".join(self.graph.seq_inputs)
                raise InputError("evaluate: these equations hold for every τ; pass "
                                 + (f"the sequence input(s) {seq}, (T, B, ...)"
                                    if seq else "steps=T (no input is a sequence)"))
        if self.loss is None:
            raise InputError(f"{self.name} has no loss: its equations compute none to "
                             "evaluate; add c.loss(...) and derive them again")
        g = self.graph
        if steps != self.steps:
            c = g.circuit
            if not self.general:
                raise InputError(f"these equations were read from a graph of τ = "
                                 f"{self.steps} steps, and hold for that τ only, not "
                                 f"{steps}; derive them from the circuit (ur.latex(c)) or "
                                 f"pass {self.steps} steps")
            if c is None or c._version != self.version:
                raise InputError(f"circuit {self.name} has changed since these equations "
                                 "were derived; derive them again (ur.latex(c))")
            g = c.unroll(steps=steps)
        bound = bind_arguments(g, params, inputs)
        return _Evaluator(self, bound, steps).run()


def _resolve(pieces: list, steps: int, what: str, tiled: bool = True) -> list:
    """[(first, last, term)] at τ = ``steps``; refused where a piece has no step left or
    (``tiled``: the pieces of one value) two overlap: τ is then shorter than the boundary
    steps at both ends and one step between them."""
    out = []
    for p in pieces:
        if p.first is None:
            out.append((None, None, p.term))
            continue
        a, b = p.first.at(steps), p.last.at(steps)
        if a > b or tiled and out and out[-1][0] is not None and a <= out[-1][1]:
            raise InputError(f"τ = {steps} is too short for the derived equations of {what}: "
                             "their boundary steps overlap; pass a longer sequence")
        out.append((a, b, p.term))
    return out


class _Evaluator:
    """Runs the equations at τ = ``steps`` on bound arguments. A value is computed once its
    operands are (an explicit stack, not recursion: τ may be long)."""

    def __init__(self, d: Derivation, bound, steps: int):
        self.d, self.b, self.steps, self.xp = d, bound, steps, bound.xp
        self.eqs = {}
        for e in d.forward + d.backward:
            self.eqs[(e.target.kind, e.target.name)] = _resolve(e.pieces, steps,
                                                                repr(e.target))
        self.memo = {}
        self.deps = {}                               # id(term) -> the values it reads

    def _term_at(self, kind, name, t):
        for a, b, term in self.eqs.get((kind, name), ()):
            if a <= t <= b:
                return term
        raise UnrollError(f"the derived equations define no {'∇' if kind == 'grad' else ''}"
                          f"{name} at t = {t} for τ = {self.steps}")

    def _reads(self, term) -> list:
        """(kind, name, shift) of every value or gradient ``term`` reads at its own t."""
        got = self.deps.get(id(term))
        if got is None:
            got = self.deps[id(term)] = sorted(_values_read(term), key=repr)
        return got

    def value(self, kind: str, name: str, t: int):
        key = (kind, name, t)
        if key in self.memo:
            return self.memo[key]
        stack = [key]
        while stack:
            k = stack[-1]
            if k in self.memo:
                stack.pop()
                continue
            term = self._term_at(*k)
            missing = [(kd, n, k[2] + (sh or 0)) for kd, n, sh in self._reads(term)
                       if (kd, n, k[2] + (sh or 0)) not in self.memo]
            if missing:
                stack.extend(missing)
                if len(stack) > 100 * (self.steps + 10) * (len(self.eqs) + 1):
                    raise UnrollError("the derived equations read each other in a cycle")
                continue
            self.memo[k] = self.ev(term, k[2])
            stack.pop()
        return self.memo[key]

    def ev(self, term, t):
        xp = self.xp
        if type(term) is Const:
            if term.batched:
                return xp.full((self.b.batch,) + term.shape, term.value,
                               dtype=xp.float_dtype)
            return xp.asarray(term.value, dtype=xp.float_dtype) if term.array else term.value
        if type(term) is Sum:                        # the same at every t: computed once
            got = self.memo.get(id(term))
            if got is None:
                got = self.memo[id(term)] = self.summed(Equation(term, term.pieces))
            return got
        if type(term) is Ref:
            k = term.kind
            if k == "param":
                return self.b.params[term.name]
            if k == "static":
                return self.b.arrays[term.name]
            if k == "input":
                return self.b.arrays[term.name][t + term.shift - 1]
            return self.value(k, term.name, t if term.shift is None else t + term.shift)
        key = (id(term), t)
        got = self.memo.get(key)
        if got is None:
            args = [self.ev(a, t) for a in term.args]
            out = term.prim.forward(xp, *args, **term.params)
            got = self.memo[key] = out if term.index is None else out[term.index]
        return got

    def summed(self, e: Equation):
        """Σ over every piece and its steps (None if it has none)."""
        acc = None
        for a, b, term in _resolve(e.pieces, self.steps, repr(e.target), tiled=False):
            for t in ([None] if a is None else range(a, b + 1)):
                v = self.ev(term, t)
                acc = v if acc is None else acc + v
        return acc

    def run(self) -> tuple:
        d, xp, B = self.d, self.xp, self.b.batch
        total = self.summed(d.loss)
        loss = xp.sum(xp.zeros(B, dtype=xp.float_dtype) + total) / B   # per example, averaged
        grads = {}
        for e in d.gradients:
            acc = self.summed(e)
            grads[e.target.name] = xp.zeros_like(self.b.params[e.target.name]) \
                if acc is None else acc / B                 # a parameter nothing reads
        return loss, grads


# --- reading the equations off the gradient graph -------------------------------------------

def _reads(eqns) -> dict:
    """Value -> how many times ``eqns`` read it."""
    reads = {}
    for e in eqns:
        for x in e.inputs:
            if type(x) is Value:
                reads[x] = reads.get(x, 0) + 1
    return reads


def _running(v) -> bool:
    """Is ``v`` a running sum of the reverse pass, Σ∂u[t] (Σ∂′u[t] in a second one)?"""
    return v.name.startswith("Σ∂")


def _anonymous(name: str) -> bool:
    """A name unroll made up: ``_3``, a part ``_7.1`` of a split, a running sum, a
    gradient piece. (``decoder.s``, a chained graph's name, is the user's.)"""
    return name.startswith(("_", "Σ", "∂")) or name.rpartition(".")[2].isdigit()


def shape_key(d: Derivation) -> tuple:
    """Every equation's pieces, anchored, with their terms: two derivations with the same
    key say the same thing (read at two lengths, they hold for every τ)."""
    eqs = d.forward + d.backward + d.gradients + ([d.loss] if d.loss else [])
    return tuple((e.target.kind, e.target.name, tuple((p.first, p.last, p.term.key())
                                                      for p in e.pieces)) for e in eqs)


def derive(g: Graph, grad: bool = True, general: bool = False) -> Derivation:
    """The rolled equations of ``g`` (``grad``: its BPTT equations too)."""
    if g.parts:
        raise InputError(f"ur.latex: {g.name} joins several graphs (unroll.compose.chain, "
                         "an encoder-decoder); derive the equations of each circuit: "
                         "ur.latex(c, grad=True)")
    if not g.step_losses and grad:
        raise UnrollError(f"{g.name} has no per-step loss to differentiate; add c.loss(...) "
                          "to the circuit")
    gg = backward_graph(g, tuple(g.params)) if grad else g
    return _Reader(g, gg, grad, general).run()


class _Reader:
    def __init__(self, g: Graph, gg: Graph, grad: bool, general: bool):
        self.g, self.gg, self.grad, self.general = g, gg, grad, general
        self.defs = {}                               # Value -> (Eqn, index of the result)
        for e in gg.eqns:
            for i, v in enumerate(e.outs):
                self.defs[v] = (e, None if len(e.outs) == 1 else i)
        self.states = set(g.states)
        self.outputs = set(g.outputs)
        self.seeds = self._seeds() if grad else set()
        self.names = {}                              # kept Value -> (kind, name, step)
        self.aliases = {}                            # gradient Value -> [steps] it is at
        self.memo = {}                               # (Value, step) -> term
        self.sums = {}                               # running sum Value -> Sum
        self.taken = {v.name for e in gg.eqns for v in e.outs} | set(g.params) | \
            set(g.seq_inputs) | set(g.static_inputs)
        self.fresh = {}                              # base name -> generated name
        self._keep_forward()

    def _seeds(self) -> set:
        """The cotangents ∂L/∂L(t) that stand for 1: those of the running loss total
        ΣL[t] = ΣL[t∓1] + L(t) (per example; the engine's 1/B is put in at the end), and of
        each step's loss where that is the same value."""
        g, gg, seeds = self.g, self.gg, set()
        e = self.defs.get(g.loss)
        x = e[0].inputs[0] if e is not None and e[0].inputs else None
        while type(x) is Value and x in self.defs and self.defs[x][0].prim is accumulate_p:
            c = gg.cotangents.get(x)
            if c is not None:
                seeds.add(c)
            x = self.defs[x][0].inputs[0]
        for vs in g.step_losses.values():
            for v in vs:
                c = gg.cotangents.get(v)
                if c is not None and not _running(c):   # an untimed loss: a sum of seeds
                    seeds.add(c)
        return seeds

    # -- which values get an equation of their own --

    def _keep_forward(self):
        g = self.g
        reads = _reads(g.eqns)
        fresh = self._fresh
        for e in g.eqns:
            multi = len(e.outs) > 1 and sum(reads.get(v, 0) for v in e.outs) > 1
            for v in e.outs:
                if v.t is None or v.role is not None:
                    continue
                if not _anonymous(v.name):
                    self.names[v] = ("value", v.name, v.t)
                elif reads.get(v, 0) > 1 and len(e.outs) == 1:
                    self.names[v] = ("value", fresh(v.name), v.t)
            if multi:      # the operand of a split read several times: kept once
                for x in e.inputs:
                    if type(x) is Value and x.t is not None and x.role is None and \
                            x not in self.names:
                        self.names[x] = ("value", fresh(x.name), x.t)

    def _forget(self):
        """Drop the terms built so far (which values are kept has changed)."""
        self.memo.clear()
        self.sums.clear()

    def _fresh(self, base: str, letter: str = "ζ") -> str:
        """A generated name (ζ1, ζ2, ...; ξ1, ... in the backward pass) for an anonymous
        value that gets an equation of its own: one per base name, none a name in use."""
        if base not in self.fresh:
            k = 1 + sum(n.startswith(letter) for n in self.fresh.values())
            while f"{letter}{k}" in self.taken:
                k += 1
            self.fresh[base] = f"{letter}{k}"
        return self.fresh[base]

    def _keep_shared(self):
        """An anonymous value of the backward pass read more than once whose term is not
        small gets an equation of its own (ξ1(t) = ...), so that no term repeats it; the
        small ones (the -1_y of a cross-entropy, read twice) stay inlined."""
        reads = _reads(self.gg.eqns)
        base = {}
        forward = len(self.g.eqns)
        for i, e in enumerate(self.gg.eqns):
            for v in e.outs:
                if v.t is None or v in self.names or v in self.seeds or reads.get(v, 0) < 2 \
                        or not _anonymous(v.name) or v.name.startswith("Σ"):
                    continue
                kind = "value" if i < forward else "aux"      # ζ1(t) = ..., or ξ1(t) = ...
                if v.name in base:
                    if base[v.name]:
                        self.names[v] = (kind, base[v.name], v.t)
                    continue
                keep = _size(self.term(v, v.t)) > (SHARED_FORWARD if kind == "value"
                                                    else SHARED_INLINE)
                base[v.name] = self._fresh(v.name, "ζ" if kind == "value" else "ξ") \
                    if keep else None
                if keep:
                    self.names[v] = (kind, base[v.name], v.t)
                    self._forget()

    def _keep_backward(self):
        """The gradient of each kept forward value; those of values that are neither states
        nor outputs are inlined where they are one term (∇a = diag(1 - h²) ∇h, as the book
        writes eq. 10.23-10.28)."""
        gg = self.gg
        order = []
        for v, (kind, name, t) in list(self.names.items()):
            c = gg.cotangents.get(v)
            if c is None or c.t is None or c in self.seeds or c not in self.defs:
                continue
            if c in self.names:
                # h(t) = h(t-1) + ...: an add passes the gradient on, so ∇h(t-1) is the very
                # value ∇h(t) is: one value at several steps, each written ∇h(t) = ∇h(t+1)
                if self.names[c][:2] == ("grad", name):
                    self.aliases.setdefault(c, [self.names[c][2]]).append(t)
                continue
            # ∂h[t-1] may be the very value ∂_2[t] of step t (an add passes its gradient
            # on): it is ∇h at h's step t - 1, whatever step computed it
            self.names[c] = ("grad", name, t)
            order.append((c, name, t))
        for c, at in self.aliases.items():            # computed at its own step, c.t
            if c.t in at:
                self.names[c] = self.names[c][:2] + (c.t,)
        family = {}
        for c, name, t in order:
            if name not in self.states and name not in self.outputs:
                family.setdefault(name, []).append((c, t))
        for name, cs in family.items():
            self._forget()
            for c, _ in cs:
                del self.names[c]
            if any(_count_grads(u) > 1 or _size(u) > MAX_INLINE
                   for u in (self.term(c, t) for c, t in cs)):
                for c, t in cs:
                    self.names[c] = ("grad", name, t)
        self._forget()
        self._keep_shared()

    # -- terms --

    def term(self, v, s):
        """The term of value ``v`` relative to step ``s`` (anonymous values inlined; one
        term object per value and step, so that terms share their subterms)."""
        if type(v) is Lit:
            return self._term(v, s)
        key = (v, s)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = self._term(v, s)
        return got

    def _term(self, v, s):
        if type(v) is Lit:
            if hasattr(v.val, "shape"):
                return Const(np.asarray(v.val, dtype=float), array=True)
            return Const(float(v.val))
        if v in self.seeds:
            return Const(1.0, batched=True, shape=v.shape)
        if v.role == "param":
            return Ref("param", v.name, None, v.shape)
        b = v.aval.batched
        if v.role == "input":
            return Ref("input", v.name, v.t - s, v.shape, b)
        if v.role == "static":
            return Ref("static", v.name, None, v.shape, b)
        kept = self.names.get(v)
        if kept is not None:
            at = kept[2]
            if v in self.aliases:                     # the one of its steps nearest s
                at = min(self.aliases[v], key=lambda u: (abs(u - s), -u))
            return Ref(kept[0], kept[1], None if at is None else at - s, v.shape, b)
        e, index = self.defs[v]
        if e.prim.nouts != 1 and index is None:      # the only result of a split
            index = 0
        if _running(v) and (e.prim is accumulate_p or e.prim is copy_p):
            got = self.sums.get(v)                   # the same at every step
            if got is None:
                got = self.sums[v] = self._running_sum(v)
            return got
        if e.prim is copy_p:
            return self.term(e.inputs[0], s)
        return _simplify(App(e.prim, tuple(self.term(x, s) for x in e.inputs), e.params,
                             index, v.shape, b))

    def _once(self, v) -> Piece:
        """The term of work done once. One that reads a step (an initial value's gradient
        reads ∇h(0), or ∇h(τ+1) of a state running backward) is written at that step."""
        at = _steps_read(self.term(v, 0))
        if not at:
            return Piece(None, None, self.term(v, 0))
        r = min(at)
        return self._pieces({r: self.term(v, r)})[0]

    def _running_sum(self, v):
        """Σ∂u[t] = Σ∂u[t±1] + ∂u.t[t] (the reverse pass's running sum of the gradient of a
        value u computed once) as Σ over the steps of one term each."""
        by_step, once = {}, []
        while True:
            e, _ = self.defs[v]
            last = e.prim is copy_p
            piece = e.inputs[0] if last else e.inputs[1]
            if isinstance(e.step, int):
                by_step[e.step] = self.term(piece, e.step)
            else:                                    # what work done once adds
                once.append(self._once(piece))
            if last:
                break
            v = e.inputs[0]
            if type(v) is not Value or not _running(v) or \
                    self.defs[v][0].prim not in (accumulate_p, copy_p):
                once.append(self._once(v))           # the sum started from another value
                break
        return Sum(self._pieces(by_step) + once)

    def run(self) -> Derivation:
        g, gg = self.g, self.gg
        if self.grad:
            self._keep_backward()
        fam = {}                                     # (kind, name) -> {t: Value}
        for v, (kind, name, t) in self.names.items():
            for u in self.aliases.get(v, [t]):
                if u is not None:
                    fam.setdefault((kind, name), {})[u] = v
        # the body's order: forward values as computed at a middle step; gradients as the
        # backward sweep first computes them (∇o(τ) before ∇h(τ) = Vᵀ ∇o(τ))
        mid = max(1, (g.steps + 1) // 2)
        rank = {}
        for late in (False, True):
            for i, e in enumerate(gg.eqns):
                for v in e.outs:
                    k = self.names.get(v)
                    if k is not None and (late or k[2] == mid or k[0] != "value"):
                        rank.setdefault(k[:2], (late, i))
        forward, backward = [], []
        for key in sorted(fam, key=lambda k: rank.get(k, (True, 0))):
            steps = fam[key]
            eq = Equation(Ref(key[0], key[1], 0), self._pieces(
                {t: self.term_of_def(v, t) for t, v in steps.items()}))
            (forward if key[0] == "value" else backward).append(eq)
        gradients = []
        if self.grad:
            for p in g.params:
                pieces = []
                timed = {}
                for t, v in gg.contributions.get(p, []):
                    if t is not None:
                        timed[t] = self.term(v, t)
                    else:
                        pieces.append(self._once(v))
                gradients.append(Equation(Ref("grad", p, None),
                                          self._pieces(timed) + pieces, summed=True))
        loss = None
        if g.step_losses:                           # L = Σ_t L(t), where the losses count
            by_step = {}
            for t, vs in g.step_losses.items():
                terms = [self.term(v, t) for v in vs]
                term = terms[0]
                for u in terms[1:]:
                    term = App(add_p, (term, u), {}, None, ())
                by_step[t] = term
            loss = Equation(Ref("value", "L", None, ()), self._pieces(by_step), summed=True)
        return Derivation(g.name, g.steps, self.general, forward, backward, gradients,
                          loss, dict(g.directions), g,
                          g.recipe[0] if g.recipe else None)

    def term_of_def(self, v, t):
        """The right-hand side of kept value ``v`` at step ``t``, relative to t: a value at
        several steps is computed at its own and passed on at the others (∇h(t+1))."""
        at = self.aliases.get(v)
        if at is not None and t != self.names[v][2]:
            home = self.names[v][2]
            others = [u for u in at if u != t and (u - t) * (home - t) > 0]
            near = min(others, key=lambda u: abs(u - t))
            return Ref(self.names[v][0], self.names[v][1], near - t, v.shape,
                       v.aval.batched)
        kept = self.names.pop(v)
        try:
            return self._term(v, kept[2])
        finally:
            self.names[v] = kept

    def _pieces(self, by_step: dict) -> list:
        """Runs of consecutive steps with equal terms, each end anchored to the nearer end
        of the sequence (so that the pieces hold for any τ)."""
        steps = self.g.steps
        runs = []
        for t in sorted(by_step):
            k = by_step[t].key()
            if runs and runs[-1][1] == t - 1 and runs[-1][2] == k:
                runs[-1][1] = t
            else:
                runs.append([t, t, k, by_step[t]])
        half = (steps + 1) / 2

        def anchor(t):
            return Step(False, t) if t < half else Step(True, steps - t)
        return [Piece(anchor(a), anchor(b), term) for a, b, _, term in runs]


def _fold(term, leaf, combine, into_sums: bool = True, memo=None):
    """A term's value computed bottom-up, each shared subterm once (terms are DAGs):
    ``leaf(t)`` for a Ref or Const (and a Sum when not ``into_sums``), ``combine(t, values
    of its children)`` for an App (and a Sum's pieces)."""
    memo = {} if memo is None else memo
    got = memo.get(id(term))
    if got is None:
        kids = term.args if type(term) is App else \
            [p.term for p in term.pieces] if type(term) is Sum and into_sums else None
        got = leaf(term) if kids is None else \
            combine(term, [_fold(k, leaf, combine, into_sums, memo) for k in kids])
        memo[id(term)] = got
    return got


def _steps_read(term) -> frozenset:
    """The shifts of the timed values a term reads (a Sum reads its own steps only)."""
    return _fold(term, lambda t: frozenset({t.shift}) if type(t) is Ref and t.shift is not None
                 and t.kind not in ("param", "static") else frozenset(),
                 lambda t, kids: frozenset().union(*kids), into_sums=False)


def _values_read(term) -> frozenset:
    """(kind, name, shift) of every value, gradient or ξ a term reads at its own t."""
    return _fold(term, lambda t: frozenset({(t.kind, t.name, t.shift)})
                 if type(t) is Ref and t.kind in ("value", "grad", "aux") else frozenset(),
                 lambda t, kids: frozenset().union(*kids), into_sums=False)


def _count_grads(term) -> int:
    """How many gradients a term reads (counted as a tree)."""
    return _fold(term, lambda t: int(type(t) is Ref and t.kind == "grad"),
                 lambda t, kids: sum(kids))


def _size(term) -> int:
    """The number of nodes of a term written out as a tree."""
    return _fold(term, lambda t: 1, lambda t, kids: 1 + sum(kids))


# --- simplification: rewrites that keep the value (checked by evaluate) ------------------------

def _c(term, value=None) -> bool:
    """Is ``term`` a constant scalar (equal to ``value``)?"""
    return type(term) is Const and np.ndim(term.value) == 0 and (
        value is None or term.value == value)


def _batched(term) -> bool:
    return bool(getattr(term, "batched", False))


def _const(value, t, *like) -> Const:
    """A folded constant where ``t`` was: one per example if an operand was."""
    batched = any(_batched(c) for c in like)
    return Const(value, array=any(c.array for c in like), batched=batched,
                 shape=(t.shape or ()) if batched else ())


def _neg(term):
    if _c(term):
        return Const(-term.value, term.array, term.batched, term.shape)
    if type(term) is App and term.prim is neg_p:
        return term.args[0]
    return App(neg_p, (term,), {}, None, getattr(term, "shape", None), _batched(term))


def _simplify(t: App):
    p, a = t.prim, t.args
    if p is reshape_p and _c(a[0]) or p is broadcast_like_p and _c(a[0]) and \
            not t.params.get("mean"):
        return _const(a[0].value, t, a[0])       # the same constant, in its new shape
    if p is neg_p:
        return _neg(a[0])
    if p is mul_p:
        x, y = a
        if _c(x) and _c(y):
            return _const(x.value * y.value, t, x, y)
        if _c(y) and not _c(x):                            # the constant first: 2 x
            return _simplify(App(mul_p, (y, x), t.params, None, t.shape, t.batched))
        for u, w in ((x, y), (y, x)):
            if _c(w) and w.batched and not _batched(u):   # one per example: summed over
                continue                                  # the batch, it counts B times
            if _c(w, 1.0):
                return u
            if _c(w, -1.0):
                return _neg(u)
        if type(x) is App and x.prim is neg_p:
            return _neg(_simplify(App(mul_p, (x.args[0], y), t.params, None, t.shape, t.batched)))
        if type(y) is App and y.prim is neg_p:
            return _neg(_simplify(App(mul_p, (x, y.args[0]), t.params, None, t.shape, t.batched)))
    if p is sum_p and type(a[0]) is App:
        inner = a[0]
        if inner.prim is neg_p:
            return _neg(_simplify(App(sum_p, inner.args, t.params, None, t.shape, t.batched)))
        if inner.prim is one_hot_p and tuple(t.params.get("axes", ())) in ((-1,),):
            return Const(1.0, array=True)            # a one-hot row sums to one
    if p in (add_p, accumulate_p, sub_p):
        x, y = a
        if _c(y, 0.0):
            return x
        if p is not sub_p and x.key() == y.key():          # x + x = 2 x
            return _simplify(App(mul_p, (Const(2.0), x), {}, None, t.shape, t.batched))
        xn = type(x) is App and x.prim is neg_p
        yn = type(y) is App and y.prim is neg_p
        if p is sub_p:
            if xn and yn:                # -u - (-w) = w - u
                return App(sub_p, (y.args[0], x.args[0]), {}, None, t.shape, t.batched)
            if yn:
                return App(add_p, (x, y.args[0]), {}, None, t.shape, t.batched)
        elif yn:
            return App(sub_p, (x, y.args[0]), {}, None, t.shape, t.batched)
        elif xn:
            return App(sub_p, (y, x.args[0]), {}, None, t.shape, t.batched)
    return t
