"""Lowering: equations -> a :class:`Program`, readable Python over the step body, looped over t.

The step bodies come from :mod:`~unroll.compile.reroll` (runs of chunks doing the same work
become one ``for t in range(...)`` loop; the rest stays straight-line code) and the
state-independent work of a loop from :mod:`~unroll.compile.timebatch` (one stacked operation
for all its steps).

Storage follows from where values are used: a value used only inside its own chunk is a local
variable; one used by another step or another loop is kept in a per-step list ``h_[t]``;
values computed once are plain variables. Primitives with an inline ``code`` template are
emitted as expressions (``xp.tanh(a)``); the others as calls to their forward rule.
"""
from __future__ import annotations

import functools
import keyword
import math
import re
from typing import NamedTuple

from ..core import Lit
from ..ir import Value
from ..ops import concat_p, matvec_p
from .passes import ParamsKeys
from .reroll import Chunk, chunk, reroll
from .target import Target
from .timebatch import Block, split_loop

__all__ = ["Lowering"]


class Storage(NamedTuple):
    """Where a value lives in the generated program."""
    how: str        # VAR: a variable; LIST: a per-step list; STACK: an array over steps;
    #                 SEQ: a sequence input's array
    name: str       # the variable's name in the source
    base: int = 0   # LIST, STACK, SEQ: the step stored at index 0
    local: bool = False     # STACK over the steps of one chunk only (index 0: step _lo)
    ring: int = 0           # LIST or STACK of this many slots: step t in slot (t - 1) % ring


VAR, LIST, STACK, SEQ = "var", "list", "stack", "seq"


class _Users(dict):
    """The readers of each watched value (``None`` for a result); asking about any other
    value is a bug, not an empty answer."""

    def __init__(self, users: dict, watch: set):
        super().__init__(users)
        self.watch = watch

    def get(self, v, default=None):
        if v not in self.watch:
            raise KeyError(f"internal: readers of {v!r} were not collected")
        return super().get(v, default)


# --- names -------------------------------------------------------------------------------------

_TRANS = str.maketrans({"∂": "d_", "Σ": "S", "⟨": "mean_", "⟩": "", ".": "_", "ᵀ": "T",
                        "~": "_", "[": "_", "]": "", ":": "_", " ": "", "@": "at", "-": "m"})
_RESERVED = {"xp", "P", "A", "B", "t", "range", "None"}


class _Names:
    def __init__(self):
        self.used = set(_RESERVED)

    def new(self, base: str) -> str:
        name = base.translate(_TRANS)
        name = "".join(ch if ch.isalnum() and ch.isascii() or ch == "_" else "_" for ch in name)
        if not name or name[0].isdigit() or name.startswith("_"):
            name = "v" + name.lstrip("_")
        if keyword.iskeyword(name):
            name += "_"
        cand, k = name, 1
        while cand in self.used:
            k += 1
            cand = f"{name}_{k}"
        self.used.add(cand)
        return cand


# --- lowering ----------------------------------------------------------------------------------

class Lowering:
    """Builds the source of a Program from a graph's equations (after the passes)."""

    def __init__(self, graph, prologue: list, rest: list, results: list,
                 time_batching: bool = True, keys=None, target=None, remat: int | None = None,
                 chunk_steps: int | None = None):
        self.g = graph
        self.target = target or Target()           # what the code is emitted for
        # chunk_steps=k: every time-batched loop in chunks of k steps; remat=k: the same, and
        # what the backward pass reads of a forward loop recomputed chunk by chunk (_rings)
        self.remat = remat
        self.every = bool(remat or chunk_steps)
        self.K = remat or chunk_steps or self.target.chunk_steps
        self.key = keys or ParamsKeys()            # params dict -> hashable key
        self.prologue = prologue
        self.chunks = chunk(rest)
        self.order = prologue + rest               # every equation, in execution order
        self.items = results                       # Values, or tuples of per-step Values
        self.results = [v for it in results for v in (it if isinstance(it, tuple) else (it,))]
        self.names = _Names()
        self.namespace: dict = dict(self.target.namespace())   # globals of the program
        self.fns: dict = {}                        # (primitive, params) -> bound forward name
        self.lists: list = []                      # (variable, length) of per-step lists
        self.list_layouts: dict = {}               # per-step list -> (length, batched, shape)
        self.layouts: dict = {}                    # stacked array -> (length, batched, shape)
        self.allocated: set = set()                # stacked arrays the program allocates
        self.recyclable: set = set()               # stacked arrays no other value shares
        self.consts: list = []                     # array constants
        self.contig: dict = {}                     # matrix -> its contiguous Wᵀ (in a loop)
        self._dedupe_names()
        self.units = reroll(self.chunks, self.sname if self.alias else None, self.key)
        self._uses()
        self.blocks = self._blocks(time_batching)
        self.local = self._chunk_locals()
        self.rings, self.recompute = self._rings()
        self._chunk = None                         # the chunked loop being emitted
        self._classify()

    def _blocks(self, time_batching: bool) -> list:
        blocks = []
        self.groups = []                  # chunked loops: (first block, last block + 1, unit)
        # (a target that takes over whole loops, Target.loop, gets them whole)
        K = self.K if type(self.target).loop is Target.loop else None
        wide = 0 if self.every else self.target.chunk_min
        for u in self.units:
            if u.looped and time_batching and self.target.time_batches(u.chunk):
                bs = split_loop(u, self.chunks, self.sname, self._users,
                                self.target.fuses_elementwise)
                # (chunk by chunk, a running sum adds each chunk's sum to its variable: the
                # sum before the loop and after it must be one, as they are in a template)
                if K and (self.every or any(b.kind != "loop" for b in bs)) and any(
                        math.prod(v.shape) >= wide
                        for e in u.chunk.eqns for v in e.outs) and all(
                        self._same_template(r.first.inputs[0], r.last.outs[0])
                        for b in bs if b.kind == "reduce" for r in b.reductions):
                    self.groups.append((len(blocks), len(blocks) + len(bs), u))
                blocks += bs
            else:
                blocks.append(Block("loop" if u.looped else "straight", u.chunk, u.steps))
        return blocks

    def _unit_eqns(self, u) -> list:
        """The equations of every step of unit ``u``, in order."""
        return [e for c in self.chunks[u.index:u.index + len(u.steps)] for e in c.eqns]

    def _same_template(self, a, b) -> bool:
        return (self.sname(a), a.t is None, a.aval.batched, a.aval.shape) == \
            (self.sname(b), b.t is None, b.aval.batched, b.aval.shape)

    def _chunk_locals(self) -> dict:
        """Value -> the chunked loop (its index in ``groups``) whose own step alone reads it:
        stored over the steps of one chunk, not over all steps. A template is local in a
        loop only if each of its values there is (its values outside the loop, in a step
        peeled off its end, are stored apart)."""
        local: dict = {}
        if not self.groups:
            return local
        results = set(self.results)
        for gid, (_, _, u) in enumerate(self.groups):
            eqns = self._unit_eqns(u)
            mine = {id(e) for e in eqns}
            cand = {v for e in eqns
                    for v in e.outs if v.t is not None and v.t == e.step and
                    v.aval.dtype == "float" and v not in results}
            bad = set()
            for e in self.order:
                for x in e.inputs:
                    if type(x) is Value and x in cand and (id(e) not in mine or e.step != x.t):
                        bad.add(x)
            bad_t = {(self.sname(v), v.aval.batched, v.aval.shape) for v in bad}
            for v in cand:
                if v not in bad and (self.sname(v), v.aval.batched, v.aval.shape) not in bad_t:
                    local[v] = gid
        return local

    def _rings(self) -> tuple:
        """With ``remat``: the values of a forward loop's own steps (its loop body's, not its
        stacked work's) that are read only at their step, by the loop, by one later chunked
        loop (the backward pass) and by straight-line steps where the slot still holds them.
        They are kept in ``remat`` slots, step t in slot (t - 1) % remat, instead of one per
        step, and the later loop recomputes the forward chunk (its stacked work and its loop,
        the same code on the same chunk of steps: the same values, bit for bit) at the head
        of each of its chunks (chunks are aligned: chunk j is steps jK+1..jK+K in every loop).

        Returns ({Value: slots}, {later group: [forward groups it recomputes]})."""
        rings, recompute = {}, {}
        self.per_step = set()       # templates kept per step (the states a chunk starts from)
        if not self.remat or not self.groups:
            return rings, recompute
        K = self.K
        pos = {id(e): i for i, e in enumerate(self.order)}
        spans = []
        for first, last, u in self.groups:
            chunks = self.chunks[u.index:u.index + len(u.steps)]
            loop = {id(e) for b in self.blocks[first:last] if b.kind == "loop"
                    for e in b.chunk.eqns}
            idx = {i for i, e in enumerate(u.chunk.eqns) if id(e) in loop}
            member = {id(e): i in idx for c in chunks for i, e in enumerate(c.eqns)}
            spans.append((pos[id(chunks[0].eqns[0])], pos[id(chunks[-1].eqns[-1])] + 1,
                          member, u))

        def group_at(p):
            for g, (a, z, _, _) in enumerate(spans):
                if a <= p < z:
                    return g
            return None
        reads: dict = {}
        for i, e in enumerate(self.order):
            for x in e.inputs:
                if type(x) is Value:
                    reads.setdefault(x, []).append((i, e))
        results = set(self.results)
        last_use = self._last_use
        # a forward loop is one of the forward pass: it ends before the first cotangent (∂)
        # is made (a backward loop's chunk cannot be run again: it adds to running sums)
        backward = min((p for v, p in self._defined.items() if v.name.startswith("∂") and
                        p >= len(self.prologue)), default=len(self.order))   # (hoisted: once)
        for F, (fa, fz, fmem, fu) in enumerate(spans):
            if fz > backward:
                continue
            cands, later, straight = [], set(), []
            body = [e for e in self._unit_eqns(fu) if fmem[id(e)]]      # F's loop, every step
            for e in body:
                for v in e.outs:
                    if v.t is None or v.t != e.step or v.aval.dtype != "float" or \
                            v in results:
                        continue
                    ok, mine, outside = True, [], False
                    for p, r in reads.get(v, ()):
                        g = group_at(p)
                        if r.step != v.t or (g is not None and (
                                not spans[g][2].get(id(r)) or g < F)):
                            ok = False              # another step's, or stacked work's
                            break
                        if g is None:
                            mine.append(p)
                            outside = True
                        elif g != F:
                            later.add(g)
                            outside = True
                    if ok and outside:              # (what only its own step reads is a
                        cands.append(v)             # local of the loop already)
                        straight += [(p, v) for p in mine]
            if not cands or len(later) > 1:
                continue
            # recomputing chunk j starts from the values of earlier steps F's loop reads (its
            # states): each must be kept per step, not in one variable the loop overwrites
            carried = {x for e in body for x in e.inputs
                       if type(x) is Value and x.t is not None and x.t != e.step}
            states = {(self.sname(x), x.aval.batched, x.aval.shape) for x in carried
                      if self._single(self._instances(x))}
            # where the slots stand: after F, F's last chunk; after the later loop, the
            # chunk it recomputed last
            j_f = (fu.steps[-1] - 1) // K
            B = next(iter(later)) if later else None
            if B is not None:
                ba, _, _, bu = spans[B]
                j_b = (bu.steps[-1] - 1) // K
                # a value of F's loop in one variable (not kept per step) must not be read
                # once the later loop has begun: recomputing overwrites it
                by_name: dict = {}
                for e in body:
                    for v in e.outs:
                        by_name.setdefault(self.sname(v), []).append(v)
                if any(last_use.get(v, -1) >= ba for vs in by_name.values() for v in vs
                       if v not in cands and self._single(vs)):
                    continue
            bad = set()
            for p, v in straight:
                j = (v.t - 1) // K
                if B is None or p < spans[B][0]:
                    if p < fz or j != j_f:
                        bad.add(v)
                elif p >= spans[B][1] and j == j_b:
                    continue
                else:
                    bad.add(v)
            bad_t = {self.sname(v) for v in bad}
            # a template is in slots or not, every value of it
            names = {}
            for v in cands:
                names.setdefault(self.sname(v), []).append(v)
            made_here: dict = {}
            for e in self._unit_eqns(fu):
                for w in e.outs:
                    made_here.setdefault(self.sname(w), []).append(w)
            cset = set(cands)
            for name, vs in names.items():
                if name in bad_t or any(w not in cset for w in made_here.get(name, ())):
                    continue
                for v in vs:
                    rings[v] = K
            if B is not None and any(v in rings for v in cands):
                recompute.setdefault(B, []).append(F)
                self.per_step |= states         # (else one variable would hold them all)
        return rings, recompute

    def _instances(self, x) -> list:
        """The values of ``x``'s template (its name, batchedness and shape), in order."""
        key = (self.sname(x), x.aval.batched, x.aval.shape)
        if not hasattr(self, "_by_template"):
            by = self._by_template = {}
            for v, p in sorted(self._defined.items(), key=lambda kv: kv[1]):
                if v.t is not None:
                    by.setdefault((self.sname(v), v.aval.batched, v.aval.shape), []).append(v)
        return self._by_template.get(key, [])

    def _single(self, vs: list) -> bool:
        """Does each of these values (one template, in execution order) die before the next
        is made (so that they share one variable)?"""
        d, lu = self._defined, self._last_use
        return all(lu.get(v, d[v]) <= d[w] for v, w in zip(vs, vs[1:]))

    def _tkey(self, v) -> tuple:
        """The storage template of ``v``: its name, batchedness and shape, and the chunked
        loop it is local to (or None)."""
        return (self.sname(v), v.aval.batched, v.aval.shape, self.local.get(v))

    def _uses(self) -> None:
        """One sweep: where each value is defined and last read (as positions in execution
        order), and the readers of the running sums' values (what time-batching asks)."""
        defined, last_use = {}, {}
        watch = set()                              # running sums and their addends
        shared = set()                             # may share memory with another value
        eqns = self.order
        for e in eqns:
            if e.prim.accumulates:
                watch.update(e.outs)
                watch.update(e.inputs)
            if e.prim.views:
                shared.update(e.outs)
                shared.update(e.inputs)
        users: dict = {}
        for i, e in enumerate(eqns):
            for x in e.inputs:
                if type(x) is Value:
                    last_use[x] = i
                    if x in watch:
                        users.setdefault(x, []).append(e)
            for v in e.outs:
                defined[v] = i
        end = len(eqns)
        for v in self.results:
            last_use[v] = end
            if v in watch:
                users.setdefault(v, []).append(None)
        self._defined, self._last_use, self._end = defined, last_use, end
        self._shared = shared
        self._users = _Users(users, watch)

    # --- storage -------------------------------------------------------------------------------

    def _dedupe_names(self) -> None:
        """Storage templates are keyed by name; give clashing (name, t) pairs their own name."""
        seen, self.alias = set(), {}
        for e in self.order:
            for v in e.outs:
                key = (v.name, v.t)
                if key in seen:
                    k = 2
                    while (f"{v.name}~{k}", v.t) in seen:
                        k += 1
                    self.alias[v] = f"{v.name}~{k}"
                    key = (self.alias[v], v.t)
                seen.add(key)

    def sname(self, v: Value) -> str:
        return self.alias.get(v, v.name) if self.alias else v.name

    def _classify(self) -> None:
        """Decide, per storage template, between one variable and a per-step list.

        Positions are equation indices in execution order, the prologue first. A template
        lives in one variable when no instance is overwritten by the next one before its last
        read (a read by the very equation that defines the next one is fine): locals, and
        running sums carried from one step to the next. Otherwise it gets a list.
        """
        self.kind: dict = {}                       # Value -> its Storage
        g, names = self.g, self.names
        for k, v in g.params.items():
            self.kind[v] = Storage(VAR, names.new(k))
        for k, v in g.static_inputs.items():
            self.kind[v] = Storage(VAR, names.new(k))
        for k, xs in g.seq_inputs.items():
            arr = names.new(k + "_")
            for x in xs:
                self.kind[x] = Storage(SEQ, arr, 1)
        defined, last_use, end = self._defined, self._last_use, self._end
        shared = self._shared
        # a template is a name, a batchedness and a shape: an unbatched h[0] = h0 (a
        # parameter) is stored apart from the batched h[1], h[2], ..., and a rule's piece
        # whose number means another operand at another step (∂′o.3) apart from it
        templates: dict = {}   # (name, once?, batched, shape, group) -> [(position, Value)]
        kind, alias, local = self.kind, self.alias, self.local
        stacked, owned = self._stacked_templates()
        for v, pos in defined.items():          # in execution order: each list is sorted
            if v not in kind:
                name = alias.get(v, v.name) if alias else v.name
                gid = local.get(v)
                if gid is not None and (name, v.aval.batched, v.aval.shape, gid) not in stacked:
                    gid = None                  # (a variable of the step: one template)
                key = (name, v.t is None, v.aval.batched, v.aval.shape, gid)
                insts = templates.get(key)
                if insts is None:
                    templates[key] = [(pos, v)]
                else:
                    insts.append((pos, v))
        for (name, once, batched, shape, gid), insts in templates.items():
            key = (name, batched, shape, gid)
            tname = name + "u" if not batched and (name, once, True, shape, gid) in templates \
                else name
            if not once and key in stacked:        # arrays over steps, sliced by stacked work
                lo = min(v.t for _, v in insts)
                hi = max(v.t for _, v in insts)
                var = names.new(tname + "_")
                n = hi - lo + 1 if gid is None else self.K
                self.layouts[var] = (n, batched, insts[0][1].shape)
                if owned.get(key) != {v.t for _, v in insts}:
                    self.allocated.add(var)
                # (an array one equation makes for each chunk may be shorter than a chunk)
                if not any(v in shared for _, v in insts) and \
                        (gid is None or var in self.allocated):
                    self.recyclable.add(var)
                for _, v in insts:
                    self.kind[v] = Storage(STACK, var, lo, gid is not None)
                continue
            if insts[0][1] in self.rings and all(v in self.rings for _, v in insts):
                var = names.new(tname + "_")
                K = self.rings[insts[0][1]]
                if self.target.stack_lists:
                    self.layouts[var] = (K, batched, insts[0][1].shape)
                    self.allocated.add(var)
                    st = STACK
                else:
                    self.lists.append((var, K))
                    self.list_layouts[var] = (K, batched, insts[0][1].shape)
                    st = LIST
                for _, v in insts:
                    self.kind[v] = Storage(st, var, 1, False, K)
                continue
            nxt = [p for p, _ in insts[1:]] + [end + 1]
            single = all(last_use.get(v, p) <= n for (p, v), n in zip(insts, nxt))
            if once or single and (name, batched, shape) not in self.per_step:
                var = names.new(tname)
                for _, v in insts:
                    self.kind[v] = Storage(VAR, var)
            elif self.target.stack_lists and insts[0][1].aval.dtype == "float":
                lo = min(v.t for _, v in insts)        # an array over steps, not a list
                hi = max(v.t for _, v in insts)
                var = names.new(tname + "_")
                self.layouts[var] = (hi - lo + 1, batched, insts[0][1].shape)
                self.allocated.add(var)
                if not any(v in shared for _, v in insts):
                    self.recyclable.add(var)
                for _, v in insts:
                    self.kind[v] = Storage(STACK, var, lo)
            else:
                lo = min(v.t for _, v in insts)
                hi = max(v.t for _, v in insts)
                var = names.new(tname + "_")
                self.lists.append((var, hi - lo + 1))
                v0 = insts[0][1]
                self.list_layouts[var] = (hi - lo + 1, batched, v0.shape)
                for _, v in insts:
                    self.kind[v] = Storage(LIST, var, lo)

    def _stacked_templates(self) -> tuple:
        """Templates that stacked work reads or writes, and those one stacked equation writes
        in full ({name: steps it writes}): those need no allocation."""
        names, owned, writers = set(), {}, {}
        chunked = {i for first, last, _ in self.groups for i in range(first, last)}
        for i, b in enumerate(self.blocks):
            if b.kind == "stacked":
                for e in b.eqns:
                    for x in e.inputs:
                        if type(x) is Value and x.t is not None and x.role is None:
                            names.add(self._tkey(x))
                    for v in e.outs:
                        n = self._tkey(v)
                        names.add(n)
                        # written chunk by chunk, an array over all steps is allocated first
                        writers[n] = writers.get(n, 0) + (1 if n[3] is not None or
                                                          i not in chunked else 2)
                        owned[n] = {st + v.t - b.chunk.step for st in b.steps}
            elif b.kind == "reduce":
                for _, _, chain, fused in b.reductions:
                    src = fused.inputs if fused is not None else chain.inputs[1:]
                    for x in src:
                        if type(x) is Value and x.t is not None and x.role is None:
                            names.add(self._tkey(x))
        return names, {n: ts for n, ts in owned.items() if writers[n] == 1}

    # --- source ----------------------------------------------------------------------------------

    def ref(self, x, step, symbolic: bool) -> str:
        if type(x) is Lit:
            return self._lit(x)
        k = self.kind[x]
        if k.how is VAR:
            return k.name
        if k.ring:                      # step t in slot (t - 1) % ring
            i = f"({_index(x.t - k.base, step, symbolic)}) % {k.ring}"
            return f"{k.name}[{i}]" if k.how is LIST else f"{k.name}[{i}, ...]"
        if k.how is LIST:
            return f"{k.name}[{_index(x.t - k.base, step, symbolic)}]"
        if k.local:                     # over the chunk's steps: the value of step t at t - _lo
            return f"{k.name}[{_plus('t - _lo', x.t - step)}, ...]"
        # an array (a sequence input, or stacked over steps): index every axis (array API)
        return f"{k.name}[{_index(x.t - k.base, step, symbolic)}, ...]"

    def span(self, x, step: int, steps: list) -> str:
        """Operand ``x`` of a stacked equation: the slice of its template over ``steps`` (in
        a chunked loop: over the chunk's steps, _lo.._hi)."""
        if type(x) is Lit or x.t is None:
            return self.ref(x, None, False)
        k = self.kind[x]
        if self._chunk is not None:
            if k.local:
                return f"{k.name}[0:_hi - _lo + 1, ...]"
            d = x.t - step - k.base
            return f"{k.name}[{_plus('_lo', d)}:{_plus('_hi', d + 1)}, ...]"
        lo, hi = min(steps) + x.t - step - k.base, max(steps) + x.t - step - k.base
        return f"{k.name}[{lo}:{hi + 1}, ...]"

    def _fn(self, e) -> str:
        """The name of ``e``'s forward rule with its params bound (a global of the program)."""
        key = (e.prim.name, self.key(e.params))
        name = self.fns.get(key)
        if name is None:
            name = self.fns[key] = self.names.new(f"{e.prim.name}_fn")
            self.namespace[name] = functools.partial(e.prim.forward, **e.params)
        return name

    def _lit(self, x: Lit) -> str:
        if not hasattr(x.val, "shape"):
            return repr(float(x.val))
        name = self.names.new("const")
        self.namespace["_" + name] = x.val
        self.consts.append(name)
        return name

    def _into(self, e) -> bool:
        """Does ``e`` write its result straight into its slot of a stacked array? A concat
        of pieces of one rank and batchedness (nothing to broadcast), on the default target:
        no temporary, no copy (the backward pass's ∂ of an LSTM's gate block)."""
        if e.prim is not concat_p or self.target.template(e.prim) is not e.prim.code or \
                self.kind[e.outs[0]].how is not STACK:
            return False
        xs = [x for x in e.inputs if type(x) is Value]
        out = e.outs[0].aval
        return len(xs) == len(e.inputs) and all(
            x.aval.batched == out.batched and len(x.shape) == len(out.shape) for x in xs)

    def rhs(self, e, args) -> str:
        if e.prim is matvec_p and args[0] in self.contig:
            return f"({args[1]} @ {self.contig[args[0]]})"     # v Wᵀ on a contiguous Wᵀ
        code = self.target.template(e.prim)
        if callable(code):
            code = code(tuple(x.aval for x in e.inputs), **e.params)
        if code is not None:        # parameters enter the source as literals only
            return code.format(*args, **{k: _literal(e, k, v) for k, v in e.params.items()})
        return f"{self._fn(e)}(xp, {', '.join(args)})"

    def _stacked_lines(self, b: Block) -> list:
        a, z = min(b.steps), max(b.steps)
        lines = [f"# t = {a}..{z}, all steps at once" if self._chunk is None else
                 "# the chunk's steps at once"]
        for e in b.eqns:
            args = [self.span(x, b.chunk.step, b.steps) for x in e.inputs]
            outs = []
            for v in e.outs:
                k = self.kind[v]
                whole = k.name not in self.allocated   # one equation writes all of it
                outs.append(k.name if whole else self.span(v, b.chunk.step, b.steps))
            lhs = ", ".join(outs) + ("," if e.prim.nouts != 1 and len(outs) == 1 else "")
            lines.append(f"{lhs} = {self._fn(e)}(xp, {', '.join(args)})  "
                         f"# {_comment(_symbolic(e, b.chunk.step))}")
        return lines

    def _reduce_lines(self, b: Block) -> list:
        lines = []
        for first, last, chain, fused in b.reductions:
            s0 = b.chunk.step
            if fused is not None:       # sums over the batch, stacked: over steps as well
                args = [self.span(x, s0, b.steps) for x in fused.inputs]
                total = f"{self._fn(fused)}(xp, {', '.join(args)})"
                what = _symbolic(fused, s0).split(" = ", 1)[1]
            else:
                total = f"xp.sum({self.span(chain.inputs[1], s0, b.steps)}, axis=0)"
                what = _symbolic(chain, s0).split(" + ", 1)[1]
            lhs, rhs = self.ref(last.outs[0], None, False), self.ref(first.inputs[0], None, False)
            lines.append(f"{lhs} = {rhs} + {total}  # " + _comment(
                f"{last.outs[0]!r} = {first.inputs[0]!r} + Σ_t {what}"))
        return lines

    def _eqn_lines(self, c: Chunk, symbolic: bool, indent: str) -> list:
        lines = []
        for e in c.eqns:
            args = [self.ref(x, c.step, symbolic) for x in e.inputs]
            lhs = ", ".join(self.ref(v, c.step, symbolic) for v in e.outs)
            if self._into(e):                   # written straight into its stored slot
                lines.append(f"{indent}xp.concat_into({lhs}, ({', '.join(args)},), "
                             f"{e.params['axis']})  # {_comment(_symbolic(e, c.step) if symbolic else repr(e))}")
                continue
            if e.prim.nouts != 1 and len(e.outs) == 1:
                lhs += ","                      # a tuple of one result
            text = _symbolic(e, c.step) if symbolic else repr(e)
            lines.append(f"{indent}{lhs} = {self.rhs(e, args)}  # {_comment(text)}")
        return lines

    def source(self, fname: str) -> str:
        head = [f"def {fname}(xp, P, A):"]
        body = []
        for k, v in self.g.params.items():
            if v in self.kind:
                body.append(f"{self.kind[v].name} = P[{k!r}]")
        for k, v in self.g.static_inputs.items():
            body.append(f"{self.kind[v].name} = A[{k!r}]")
        for k, xs in self.g.seq_inputs.items():
            body.append(f"{self.kind[xs[0]].name} = A[{k!r}]")
        allocs = {var: f"{var} = [None] * {n}" for var, n in self.lists}
        res = ", ".join(self._item(it) for it in self.items)
        returned = set(_words(res))
        if any(self.layouts[var][1] for var in self.allocated):
            body.append(f"B = {self._batch_size()}")
        for var in self.allocated:
            n, batched, shape = self.layouts[var]
            full = f"({n}, B{', ' if shape else ''}{', '.join(map(str, shape))})" if batched \
                else repr((n,) + tuple(shape))
            if var in returned:                    # the caller's: fresh every call
                allocs[var] = f"{var} = xp.empty({full}, dtype=xp.float_dtype)"
            else:                                  # kept for the next call (Workspace)
                allocs[var] = f"{var} = _ws.empty(xp, {len(allocs)}, {full})"
        code = []
        if self.prologue:
            code.append("# once")
            code += self._eqn_lines(Chunk(None, self.prologue), False, "")
        starts = {first: last for first, last, _ in self.groups}
        skip = 0
        for i, b in enumerate(self.blocks):
            if i < skip:
                continue
            if i in starts:
                code += self._chunk_lines(i, starts[i])
                skip = starts[i]
                continue
            if b.kind == "loop":
                lines = self.target.loop(self, b)
                code += self.loop_lines(b) if lines is None else lines
            elif b.kind == "stacked":
                code += self._stacked_lines(b)
            elif b.kind == "reduce":
                code += self._reduce_lines(b)
            else:
                lines = None if b.chunk.step is None else self.target.straight(self, b)
                code += self.straight_lines(b) if lines is None else lines
        for name in self.consts:
            body.append(f"{name} = xp.asarray(_{name}, dtype=xp.float_dtype)")
        code = _lifetimes(code, allocs, self._stored(), returned,
                          self.layouts, self.recyclable)
        lines = head + ["    " + ln for ln in body + code + [f"return ({res},)"]]
        return "\n".join(lines) + "\n"

    def loop_header(self, b: Block, var: str = "t") -> str:
        """``for t in range(...):`` over the steps of loop block ``b``, in its direction (in a
        chunked loop: over the chunk's steps, _a to _b)."""
        a, z = b.steps[0], b.steps[-1]
        d = 1 if z > a else -1
        if self._chunk is not None:
            return f"for {var} in range(_a, {_plus('_b', d)}, {d}):  # t = _a.._b"
        return f"for {var} in range({a}, {z + d}, {d}):  # t = {a}..{z}"

    def _chunk_lines(self, first: int, last: int) -> list:
        """Blocks ``first``..``last - 1`` of one loop (its stacked work, the loop, its sums),
        chunk by chunk: chunk j is steps jK+1..jK+K (in every loop: aligned), ``_lo``..``_hi``
        its steps within the loop, ``_a``..``_b`` the same in the loop's order; values local
        to the chunk are arrays over its steps. With ``remat``, a loop that reads what a
        forward loop kept in slots first recomputes that loop's chunk j."""
        bs = self.blocks[first:last]
        lines = self._chunk_range(bs, head=True)
        self._chunk = bs
        try:
            body = []
            gid = next(g for g, (f, _, _) in enumerate(self.groups) if f == first)
            for F in self.recompute.get(gid, ()):
                f0, f1, _ = self.groups[F]
                fbs = self.blocks[f0:f1]
                upto = next(i for i, b in enumerate(fbs) if b.kind == "loop") + 1
                body += [f"# recomputed: the forward chunk j (the same code on the same steps)"]
                body += self._chunk_range(fbs)
                self._chunk = fbs
                for b in fbs[:upto]:
                    if b.kind == "loop":
                        got = self.target.loop(self, b)
                        body += self.loop_lines(b) if got is None else got
                    elif b.kind == "stacked":
                        body += self._stacked_lines(b)
                self._chunk = bs
                body += self._chunk_range(bs)
            for b in bs:
                if b.kind == "loop":
                    got = self.target.loop(self, b)
                    body += self.loop_lines(b) if got is None else got
                elif b.kind == "stacked":
                    body += self._stacked_lines(b)
                else:
                    body += self._reduce_lines(b)
        finally:
            self._chunk = None
        return lines + ["    " + ln for ln in body]

    def _chunk_range(self, bs: list, head: bool = False) -> list:
        """The chunk loop's header (``head``), or the lines that set ``_lo, _hi, _a, _b`` for
        chunk ``_j`` of the loop of blocks ``bs``."""
        steps = bs[0].steps
        a, z, K = steps[0], steps[-1], self.K
        d = 1 if z >= a else -1
        lo, hi = min(a, z), max(a, z)
        out, indent = [], "    " if head else ""
        if head:
            rng = f"({lo} - 1) // {K}, ({hi} - 1) // {K} + 1" if d > 0 else \
                f"({hi} - 1) // {K}, ({lo} - 1) // {K} - 1, -1"
            out += [f"# t = {a}..{z}, in chunks of {K} steps",
                    f"for _j in range({rng}):"]
        out += [f"{indent}_lo, _hi = max(_j * {K} + 1, {lo}), min(_j * {K} + {K}, {hi})",
                 f"{indent}_a, _b = {'_lo, _hi' if d > 0 else '_hi, _lo'}"]
        return out

    def body_lines(self, b: Block, indent: str = "    ") -> list:
        """The body of loop block ``b`` as Python lines, for a step ``t`` (symbolic)."""
        return self._eqn_lines(b.chunk, True, indent)

    def straight_lines(self, b: Block) -> list:
        """The default code of straight-line block ``b`` (one step's work, or work done once)."""
        s = b.chunk.step
        return ["# once" if s is None else f"# t = {s}"] + self._eqn_lines(b.chunk, False, "")

    def loop_lines(self, b: Block) -> list:
        """The default code of loop block ``b``: a ``for t`` loop over its body, after a
        C-contiguous copy of each shared matrix the loop multiplies by (``v @ W.T`` on the
        transposed view runs at about half the speed in BLAS; the copy is made once)."""
        pre = []
        for e in b.chunk.eqns:
            A = e.inputs[0]
            if e.prim is matvec_p and type(A) is Value and A.t is None and \
                    not A.aval.batched and self.target.template(e.prim) is e.prim.code:
                name = self.ref(A, None, False)
                if name not in self.contig:
                    self.contig[name] = self.names.new(name + "T_c")
                    pre.append(f"{self.contig[name]} = xp.transposed({name})  "
                               f"# {_comment(repr(A))}ᵀ, contiguous")
        try:
            return pre + [self.loop_header(b)] + self.body_lines(b)
        finally:
            self.contig = {}

    def stored_elements(self) -> tuple:
        """(entries per sequence of the batch, entries that do not depend on it) the program
        keeps in per-step lists and stacked arrays at most: the memory its run needs."""
        per, fixed = 0, 0
        for n, batched, shape in list(self.layouts.values()) + list(self.list_layouts.values()):
            size = n * math.prod(shape)
            per, fixed = (per + size, fixed) if batched else (per, fixed + size)
        return per, fixed

    def _stored(self) -> set:
        """Names of the per-step lists and stacked arrays (the memory that lifetimes free)."""
        return {k.name for k in self.kind.values() if k.how is LIST or k.how is STACK}


    def _item(self, it) -> str:
        """A result: a Value, or per-step Values stacked (a slice when they already are)."""
        if not isinstance(it, tuple):
            return self.ref(it, None, False)
        kinds = [self.kind[v] for v in it]
        k = kinds[0]
        if (k.how is STACK or k.how is SEQ) and \
                all(q.how is k.how and q.name == k.name for q in kinds) and \
                [v.t for v in it] == list(range(it[0].t, it[0].t + len(it))):
            return f"{k.name}[{it[0].t - k.base}:{it[-1].t - k.base + 1}, ...]"
        return f"xp.stack([{', '.join(self.ref(v, None, False) for v in it)}])"

    def _batch_size(self) -> str:
        for k, xs in self.g.seq_inputs.items():
            return f"{self.kind[xs[0]].name}.shape[1]"
        for k, v in self.g.static_inputs.items():
            return f"{self.kind[v].name}.shape[0]"
        return "1"


def _comment(text: str) -> str:
    """Text for a ``# ...`` comment of the generated source: on one line, whatever names or
    parameters it shows (a line break would end the comment and start code)."""
    return " ".join(str(text).splitlines()).replace("\r", " ")


_LITERALS = (bool, int, str, type(None))


def _literal(e, name: str, value) -> str:
    """A primitive's parameter as a Python literal in the source (numbers, booleans, strings,
    None, tuples of them: ``repr`` quotes them); anything else is refused, never pasted."""
    def ok(v):
        return type(v) in _LITERALS or type(v) is float and math.isfinite(v) or \
            type(v) is tuple and all(ok(x) for x in v)
    if not ok(value):
        from ..errors import UnrollError
        raise UnrollError(f"primitive {e.prim.name}: parameter {name}={value!r} is not a "
                          "finite number, a boolean, a string or a tuple of them, so it cannot "
                          "enter the compiled program; pass it as one")
    return repr(value)


def _words(code: str) -> list:
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code.split("  # ", 1)[0])


def _lifetimes(code: list, allocs: dict, stored: set, keep: set, layouts: dict,
               recyclable: set) -> list:
    """Allocate each per-step array just before the statement that first uses it, and free it
    (``del``) right after the one that last does, unless it is returned: what the backward
    pass no longer needs does not stay alive until the end (liveness).

    An array of the same layout that died earlier is recycled instead of allocating
    (``∂a_ = U_x_``: the forward pass's input projection becomes the backward pass's stacked
    ``∂a``), so the first call touches less fresh memory. Only arrays that no value shares
    memory with are recycled (``recyclable``: stacks whose values no ``views`` primitive reads
    or writes), and never a returned one.

    A statement is a top-level line with its indented continuation (a loop and its body)."""
    stmts = []
    for ln in code:
        if ln.startswith(" ") and stmts:
            stmts[-1].append(ln)
        else:
            stmts.append([ln])
    first, last = {}, {}
    for i, st in enumerate(stmts):
        for ln in st:
            for w in _words(ln):
                if w in stored:
                    first.setdefault(w, i)
                    last[w] = i
    born: dict = {}
    for v in sorted(allocs):
        if v in first:
            born.setdefault(first[v], []).append(v)
    died: dict = {}
    for v in sorted(last):
        if v not in keep:
            died.setdefault(last[v], []).append(v)
    lent, free = {}, {}                     # recipient -> donor; layout -> dead donors
    for i in range(len(stmts)):
        for v in born.get(i, ()):
            pool = free.get(layouts.get(v))
            if pool and v not in keep:           # (a returned array is a fresh one)
                lent[v] = pool.pop()
        for v in died.get(i, ()):
            if v in recyclable:
                free.setdefault(layouts[v], []).append(v)
    donors = set(lent.values())
    out = []
    for i, st in enumerate(stmts):
        for v in born.get(i, ()):
            out += [f"{v} = {lent[v]}", f"del {lent[v]}"] if v in lent else [allocs[v]]
        out += st
        dead = [v for v in died.get(i, ()) if v not in donors]
        if dead:
            out.append(f"del {', '.join(dead)}")
    return out


def _plus(name: str, d: int) -> str:
    return name if d == 0 else (f"{name} + {d}" if d > 0 else f"{name} - {-d}")


def _index(k: int, step, symbolic: bool) -> str:
    if not symbolic:
        return str(k)
    d = k - step
    return "t" if d == 0 else (f"t + {d}" if d > 0 else f"t - {-d}")


def _symbolic(e, step) -> str:
    """``h[t] = tanh(a[t])``: an equation of the loop body, steps relative to t."""
    def r(x):
        if type(x) is not Value or x.t is None:
            return repr(x)
        d = x.t - step
        return f"{x.name}[{'t' if d == 0 else (f't+{d}' if d > 0 else f't-{-d}')}]"
    from ..core import format_op
    lhs = ", ".join(r(v) for v in e.outs)
    return f"{lhs} = {format_op(e.prim, [r(x) for x in e.inputs], e.params)}"
