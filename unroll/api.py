"""Orchestration: run, differentiate and compile a Graph, with the caches that make a training
loop cheap. It sits above the stages it drives (binding and the interpreter in
:mod:`unroll.runtime`, reverse mode in :mod:`unroll.reverse`, :mod:`unroll.compile`,
checkpointing in :mod:`unroll.checkpoint`) and imports each of them; the methods of
:class:`~unroll.Circuit` and :class:`~unroll.Graph` are one-line facades into it.

Results have the user's layout: the internal batch axis is dropped when the inputs had none,
and no result shares memory with an array the user passed.
"""
from __future__ import annotations

import math

from .checkpoint import reach, run_checkpointed, segment_length
from .compile import compile_graph
from .compile.program import Program
from .compile.target import get as get_target
from .compile.template import fit, same_namespace, sample_steps
from .core import INT
from .errors import InputError, ResourceError, UnrollError, available_memory, flag, gib, suggest
from .reverse import backward_graph
from .ir import Graph, Value, _grad_items, expect_graph, live_eqns
from .runtime import Bound, apply_eqn, bind_arguments, check_input_names, interpret
from .unrolling import unroll

__all__ = ["run", "value_and_grad", "evaluate", "program", "grad_graph", "resolve_wrt"]

#: the options of value_and_grad (a misspelt one would otherwise read as an unknown input)
VALUE_AND_GRAD_OPTIONS = ("wrt", "check_finite", "executor", "checkpoint", "return_state")


def _unbatch(bound: Bound, a, lead: int = 0):
    """Drop the internal batch axis at position ``lead`` when the user gave none."""
    if bound.batched or a is None:
        return a
    return a[(slice(None),) * lead + (0, Ellipsis)]


def _stack(xp, vals):
    return xp.stack(vals) if len(vals) > 1 else vals[0][None, ...]


def _fresh_all(bound: Bound, arrays: list) -> list:
    """``arrays``, each copied if it may share memory with an array the user passed (an
    output that is an input, a gradient that is a broadcast parameter) or with a result
    before it (two gradients the program computed as one array, such as an RNN's two biases):
    results are the caller's to change, one at a time (clipping scales each in place). An
    array that owns its memory (no ``base``) shares none but with itself and its views."""
    xp = bound.xp
    may = getattr(xp.module, "may_share_memory", None)
    users = list(bound.params.values()) + list(bound.arrays.values())
    ids = {id(u) for u in users}
    out, given, bases = [], set(), set()

    def copy(a):
        return a.copy() if hasattr(a, "copy") else xp.asarray(a, copy=True)
    for a in arrays:
        if id(a) in given or id(a) in bases:
            a = copy(a)                       # returned already, or a view of it was
        elif may is not None and getattr(a, "base", 0) is None and id(a) not in ids:
            pass
        elif may is None or id(a) in ids or any(may(a, u) for u in users) or \
                any(may(a, b) for b in out):
            a = copy(a)
        given.add(id(a))
        if getattr(a, "base", None) is not None:
            bases.add(id(a.base))             # an owner returned later must be copied
        out.append(a)
    return out


def _collect(g: Graph, bound: Bound, arrays: list, names: list) -> dict:
    """Name the forward program's results (``names``: outputs, then maybe "loss"); drop the
    batch axis the user did not give."""
    arrays = _fresh_all(bound, arrays)
    res = {}
    for name, a in zip(names, arrays):
        if name == "loss":
            res["loss"] = a
        elif g.output_at.get(name) in ("last", "first"):
            res[name] = _unbatch(bound, a[0, ...])
        else:
            res[name] = _unbatch(bound, a, 1)
    return res


def _selected(g: Graph, outputs) -> list:
    """The names ``run(outputs=...)`` asks for: outputs of ``g`` and maybe "loss"."""
    if outputs is None:
        return list(g.outputs) + (["loss"] if g.loss is not None else [])
    if isinstance(outputs, str):
        outputs = [outputs]
    known = list(g.outputs) + (["loss"] if g.loss is not None else [])
    if not isinstance(outputs, (list, tuple)) or not outputs or \
            not all(isinstance(k, str) for k in outputs):
        raise InputError(f"run: outputs must be a non-empty list of the names of {g.name}'s "
                         f"outputs ({', '.join(known) or 'none'}), not {outputs!r:.60}")
    for k in outputs:
        if k not in known:
            raise InputError(f"run: {g.name} has no output {k!r}{suggest(k, known)}; its "
                             f"outputs are {', '.join(known) or 'none'}")
    return list(dict.fromkeys(outputs))


def run(g: Graph, params: dict, return_state: bool = False, outputs=None,
        executor: str = "compiled", **inputs) -> dict:
    """Forward pass of ``g``.

    Parameters
    ----------
    return_state : bool
        Also return ``"state"``: for each state, its last value(s) in the direction it runs,
        what to pass as the initial value of the chunk that continues it: h(τ) of a forward
        state, h(1) of a backward one, shape (B, ...); with delays up to k, the k values
        nearest that end in time order, shape (B, k, ...): h(τ-k+1), ..., h(τ) forward and
        h(1), ..., h(k) backward (as a state's initial value is read: its rows are h(1-k), ...,
        h(0) forward and h(τ+1), ..., h(τ+k) backward).
    outputs : list of str, optional
        Only these outputs (and ``"loss"`` if named); inputs none of them reads may be left
        out, so a model predicts without its targets.
    executor : "compiled", "interpret" or a registered code target

    Returns
    -------
    dict
        Every output (or those asked for) (shape (T, B, ...), or (T, ...) without a batch axis; (B, ...) for an
        output declared ``at="last"``) and ``"loss"`` if the circuit has a loss.
    """
    return_state = flag(return_state, "run(return_state=...)")
    names = _selected(g, outputs)
    items = [tuple(g.outputs[k][t] for t in sorted(g.outputs[k])) if k != "loss" else g.loss
             for k in names]
    finals = _final_state_items(g) if return_state else {}
    unread = ()
    if outputs is not None:            # inputs the asked-for results do not read may be left out
        read = {x for e in live_eqns(g.eqns, [v for it in items + _flat(finals)
                                                for v in (it if isinstance(it, tuple) else (it,))])
                for x in e.inputs}
        unread = {k for k, xs in g.seq_inputs.items() if xs[0] not in read}
        unread |= {k for k, v in g.static_inputs.items() if v not in read}
    if executor != "interpret":
        get_target(executor)                   # an unknown one is named before any work
    bound = bind_arguments(g, params, inputs, options=("return_state", "outputs", "executor"),
                           unread=unread)
    if not items and not return_state:
        raise UnrollError(f"{g.name} has no output and no loss, so run has nothing to return; "
                          "declare c.output(name, expr) or c.loss(expr), or pass "
                          "return_state=True for the states")
    kind = "forward+state" if return_state else "forward"
    if outputs is not None:
        kind += ":" + ",".join(names)
    arrays = _execute(g, items + _flat(finals), bound, kind, executor)
    res = _collect(g, bound, arrays[:len(items)], names)
    if return_state:
        res["state"] = _collect_state(bound, finals, arrays[len(items):])
    return res


def _final_state_items(g: Graph) -> dict:
    """name -> the Values a next chunk starts from, in time order (the k nearest the end a
    state runs towards: initial values too, when τ < k)."""
    out = {}
    for name, vals in g.states.items():
        k = g.delays.get(name, 1)
        forward = g.directions.get(name, "forward") == "forward"
        ts = sorted(vals)
        out[name] = tuple(vals[t] for t in (ts[-k:] if forward else ts[:k]))
    return out


def _flat(finals: dict) -> list:
    return [v for vals in finals.values() for v in vals]


def _collect_state(bound: Bound, finals: dict, arrays: list) -> dict:
    """Name the final-state arrays: (B, ...) for one value, (B, k, ...) for k (an initial
    value's layout), new memory in either case; values that do not depend on the batch (a
    parameter h0 read at a delay longer than τ) are repeated for every sequence."""
    xp, state, i = bound.xp, {}, 0
    for name, vals in finals.items():
        rows = []
        for v in vals:
            a = arrays[i]
            i += 1
            rows.append(a if v.aval.batched else
                        xp.broadcast_to(a, (bound.batch,) + tuple(v.aval.shape)))
        a = xp.stack(rows, axis=1)
        state[name] = _unbatch(bound, a if len(vals) > 1 else a[:, 0, ...])
    return state


def evaluate(g: Graph, params: dict, values=(), **inputs) -> dict:
    """Reference interpreter; returns Value -> array for each of ``values`` (batch axis kept
    only if the inputs have one)."""
    if isinstance(values, (str, bytes, Value)) or not hasattr(values, "__iter__"):
        raise InputError(f"evaluate: values must be a list of Values of {g.name} (e.g. "
                         f"g.states['h'][2]), not {type(values).__name__} {values!r:.60}")
    values = list(values)
    if values:
        mine = set(g.inputs()) | {v for e in g.eqns for v in e.outs}
        for v in values:
            if not isinstance(v, Value):
                hint = (f"; for a name, pick the Value: g.states[{v!r}][t]"
                        if isinstance(v, str) and v in g.states else "")
                raise InputError(f"evaluate: values must be Values of {g.name}, not "
                                 f"{type(v).__name__} {v!r:.40}{hint}")
            if v not in mine:
                raise InputError(f"evaluate: {v!r} is not a value of {g.name} (it belongs to "
                                 "another graph; unrolling again makes new Values)")
    bound = bind_arguments(g, params, inputs, options=("values",))
    env = interpret(g, dict(bound.env), bound.xp)
    arrays = _fresh_all(bound, [env[v] for v in values])     # never the caller's own arrays
    return {v: _unbatch(bound, a) if v.aval.batched else a for v, a in zip(values, arrays)}


def _execute(g: Graph, items: list, bound: Bound, kind: str, executor: str = "compiled"):
    """The arrays of ``items`` (Values, or tuples of per-step Values returned stacked)."""
    if executor == "interpret":
        per = fixed = 0
        for e in g.eqns:                         # the interpreter keeps every value
            for v in e.outs:
                size = math.prod(v.aval.shape)
                per, fixed = (per + size, fixed) if v.aval.batched else (per, fixed + size)
        _check_memory(g, bound, per, fixed, kind)
        return _gather(bound.xp, interpret(g, dict(bound.env), bound.xp), items)
    prog = program(g, items, kind, get_target(executor).name)
    _check_memory(g, bound, *prog.stats.get("stored", (0, 0)), kind)
    return prog(bound.xp, bound.params, bound.arrays)


_SMALL = 64 * 2 ** 20


def _check_memory(g: Graph, bound: Bound, per: int, fixed: int, kind: str) -> None:
    """Refuse, before allocating, a run whose stored values would not fit in memory."""
    if bound.xp.name != "numpy":       # host memory says nothing of a device's
        return
    itemsize = bound.xp.zeros((), dtype=bound.xp.float_dtype).dtype.itemsize
    need = (per * bound.batch + fixed) * itemsize
    if need < _SMALL:                  # no machine lacks that; spare the look-up per call
        return
    have = available_memory()
    if have is None or need <= have:
        return
    outs = ["a shorter τ", f"a smaller batch than B = {bound.batch}"]
    if kind.startswith("grad"):
        outs = ["value_and_grad(..., checkpoint='sqrt') (recomputes instead of storing)",
                "truncated BPTT (ur.training.TruncatedBPTT)"] + outs
    raise ResourceError(f"running {g.name} over τ = {g.steps:,} would keep about {gib(need)} "
                        f"of arrays, more than the {gib(have)} of memory available; use "
                        + ", or ".join(outs))


def program(g: Graph, items, kind: str, target: str = "python"):
    """The compiled Program of ``g`` for ``items`` and code target ``target`` (cached on the
    graph under ``kind`` and the target)."""
    key = ("program", kind) if target == "python" else ("program", kind, target)
    prog = g._cache.get(key)
    if prog is None:
        prog = g._cache[key] = compile_graph(g, items, name=_ident(f"{g.name}_{kind}"),
                                             target=target)
    return prog


def _ident(name: str) -> str:
    s = "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in name)
    return s if s and not s[0].isdigit() else "g_" + s


# --- gradients -------------------------------------------------------------------------------

def resolve_wrt(g: Graph, wrt) -> tuple:
    """Names to differentiate with respect to: parameters by default."""
    if wrt is None:
        return tuple(g.params)
    if isinstance(wrt, str):
        wrt = (wrt,)
    if not isinstance(wrt, (list, tuple)) or not all(isinstance(k, str) for k in wrt):
        raise InputError(f"wrt must be a name or a list of names of parameters and inputs, "
                         f"not {wrt!r}")
    if not wrt:
        raise InputError("wrt is empty: name at least one parameter or input (or leave wrt "
                         "out for every parameter)")
    known = list(g.params) + list(g.seq_inputs) + list(g.static_inputs)
    for k in wrt:
        if k not in known:
            raise InputError(f"wrt: {k!r} is neither a parameter nor an input"
                             f"{suggest(k, known)}; choose from {', '.join(known)}")
        if k in g.seq_inputs and g.seq_inputs[k][0].aval.dtype == INT or \
                k in g.static_inputs and g.static_inputs[k].aval.dtype == INT:
            raise InputError(f"wrt: {k} is an integer input and has no gradient")
    return tuple(wrt)


def grad_graph(g: Graph, wrt=None) -> Graph:
    """The (cached) gradient graph of ``g`` with respect to ``wrt``."""
    expect_graph(g, "grad")
    wrt = resolve_wrt(g, wrt)
    key = ("grad", wrt)
    if key not in g._cache:
        if g.loss is None:
            raise UnrollError(f"{g.name} has no loss to differentiate; add c.loss(...) to the "
                              "circuit before unrolling")
        g._cache[key] = backward_graph(g, wrt)
    return g._cache[key]


def value_and_grad(g: Graph, params: dict, *, wrt=None, check_finite: bool = False,
                   executor: str = "compiled", checkpoint=None, return_state: bool = False,
                   **inputs):
    """The loss and its gradients, by reverse mode through the unrolled graph (BPTT).

    Parameters
    ----------
    wrt : list of str, optional
        Parameter names (default: all), input names (a sequence input's gradient has its
        shape (T, B, ...)) and initial-state names such as ``"h0"``.
    check_finite : bool
        If a NaN/Inf appears, raise :class:`NonFiniteError` naming the first equation and
        step where it did (found by re-running the reference interpreter).
    executor : "compiled", "interpret" or the name of a registered code target
        "compiled" runs the program the compiler emits as Python over ``xp``; "interpret"
        the reference interpreter; another code target (:mod:`unroll.compile.target`) the
        program it emits.
    checkpoint : int k or "sqrt", optional
        Gradient checkpointing (rematerialisation): keep the forward values of every k-th
        step only and recompute the others, segment by segment, as the backward sweep reaches
        them; "sqrt" takes k = ⌈√τ⌉. On the compiled program (the default executor), the
        backward pass recomputes the forward loop chunk by chunk, k steps each, with the
        program's own code: what it reads of the forward loop (an LSTM's gates) is kept for
        k steps, not τ, for about one more forward loop of time; the gradients are bitwise
        those of the same program run without checkpointing (chunks of k steps), equal to
        the default program's to round-off. Where the program has nothing to recompute so
        (no forward loop whose per-step values only the backward loop reads at their own
        step), and with ``executor="interpret"``, the reference interpreter's equations
        run segment by segment (O(√τ) memory with "sqrt"; results bitwise those of
        ``executor="interpret"``).
    return_state : bool
        Also return each state's last value(s), as :func:`run` does: the initial state of
        the next chunk in truncated BPTT.

    Returns
    -------
    loss : 0-d array
    grads : dict name -> array
    state : dict, only with ``return_state``
    """
    if executor != "interpret":
        get_target(executor)                   # an unknown one is named before any work
    check_finite = flag(check_finite, "value_and_grad(check_finite=...)")
    return_state = flag(return_state, "value_and_grad(return_state=...)")
    expect_graph(g, "grad")
    view = _stand_in(g)                        # g, or a stand-in while g is not built
    names = resolve_wrt(view, wrt)
    if view.loss is None:
        grad_graph(g, wrt)                     # says what is missing
    check_input_names(view, inputs, VALUE_AND_GRAD_OPTIONS)
    kind = "grad+state" if return_state else "grad"
    steady = None
    if checkpoint is None and executor != "interpret":
        steady = _steady(g, names, kind, get_target(executor).name)
    if steady is None:
        gg = grad_graph(g, wrt)
        layout = [(name, isinstance(v, dict)) for name, v in gg.grads.items()]
        view = g
    else:
        layout = steady[1]
    bound = bind_arguments(view, params, inputs)
    finals = _final_state_items(view) if return_state else {}
    if steady is not None:
        _check_memory(g, bound, *steady[0].stats.get("stored", (0, 0)), kind)
        arrays = steady[0](bound.xp, bound.params, bound.arrays)
    else:
        items = _grad_items(gg)
        every = list(items) + _flat(finals)
        if checkpoint is not None:
            arrays = _checkpointed(gg, every, bound, checkpoint, check_finite, kind, executor)
        else:
            arrays = _execute(gg, every, bound, kind, executor)
    arrays = _fresh_all(bound, arrays)
    n = 1 + len(layout)
    loss, grads = arrays[0], {}
    for (name, per_step), a in zip(layout, arrays[1:n]):
        if per_step:
            grads[name] = _unbatch(bound, a, 1)
        elif name in view.static_inputs:
            grads[name] = _unbatch(bound, a)
        else:
            grads[name] = a
    if check_finite:
        xp = bound.xp
        if not all(bool(xp.all(xp.isfinite(a))) for a in [loss, *grads.values()]):
            env = bind_arguments(g, params, inputs).env
            interpret(grad_graph(g, wrt), dict(env), xp, check_finite=True)
    if not return_state:
        return loss, grads
    return loss, grads, _collect_state(bound, finals, arrays[n:])


# --- programs that do not grow with τ -------------------------------------------------------

#: from this many steps on, a circuit's gradient program is written from a template fitted to
#: the programs of three small unrollings (:mod:`unroll.compile.template`) instead of being
#: built, differentiated and compiled from all τ steps
STEADY_FROM = 48


def _steady(g: Graph, wrt: tuple, kind: str, target: str):
    """(Program, [(gradient name, per step?)]) for ``g``, written from small unrollings of its
    circuit, or None where that does not hold (cached on ``g`` either way)."""
    key = ("steady", wrt, kind, target)
    if key not in g._cache:
        g._cache[key] = _fit_steady(g, wrt, kind, target)
    return g._cache[key]


def _fit_steady(g: Graph, wrt: tuple, kind: str, target: str):
    c, recipe, view = g.circuit, g.recipe, _stand_in(g)
    if c is None or recipe is None or view.base is not None or view.parts or \
            g.steps < STEADY_FROM:
        return None
    version, loss_steps, size = recipe
    if c._version != version or loss_steps == "placed" or view.loss is None:
        return None
    if g.built and (len(g.eqns) != size or _placement(g) is None):
        return None                            # (a deferred graph's places are relative)
    steps = sample_steps(g.steps, max(view.delays.values(), default=1))
    if steps is None:
        return None
    samples = []
    for t in steps:
        s = unroll(c, t, loss_steps=loss_steps)
        if _placement(s) is None or samples and _placement(s) != _placement(samples[0][2]):
            return None
        gs = grad_graph(s, list(wrt))
        items = _grad_items(gs) + (_flat(_final_state_items(s)) if kind == "grad+state" else [])
        samples.append((t, compile_graph(gs, items, name=_ident(f"{g.name}_{kind}"),
                                         target=target), s, gs))
    if g.built and _placement(g) != _placement(samples[0][2]):
        return None
    tpl = fit([(t, p.source, p.stats) for t, p, _, _ in samples])
    if tpl is None or not same_namespace(samples[0][1].namespace, samples[2][1].namespace):
        return None
    last = samples[-1]
    prog = Program(last[1].name, tpl.source(g.steps), last[1].namespace,
                   tpl.statistics(g.steps))
    return prog, [(name, isinstance(v, dict)) for name, v in last[3].grads.items()]


def _stand_in(g: Graph) -> Graph:
    """``g``, or while ``g`` is deferred and not built (``Graph.deferred``), a graph that
    stands in for it wherever only its names, shapes and τ are read (checking and binding
    arguments, naming results): a short unrolling of the same circuit, its sequence inputs
    τ long. It is one step longer than the longest delay, so that its last values of each
    state (the state a call returns) are steps, not initial values, as in ``g``."""
    if g.built:
        return g
    got = g._cache.get("stand-in")
    if got is None:
        depth = max((s.max_delay for s in g.circuit.states.values()), default=0)
        short = unroll(g.circuit, depth + 1, loss_steps=g.recipe[1])
        got = g._cache["stand-in"] = short.derive(
            steps=g.steps, seq_inputs={k: [xs[0]] * g.steps
                                       for k, xs in short.seq_inputs.items()})
    return got


def _placement(g: Graph):
    """Where each output and the losses sit, relative to τ ("all", "last", "first"), or None
    when some sit elsewhere."""
    def where(ts):
        ts = sorted(ts)
        if ts == list(range(1, g.steps + 1)):
            return "all"
        if ts == [g.steps]:
            return "last"
        if ts == [1]:
            return "first"
        return None
    got = {name: where(vals) for name, vals in g.outputs.items()}
    got["loss"] = where(g.step_losses) if g.step_losses else "none"
    return None if None in got.values() else got


def _checkpointed(gg: Graph, items: list, bound: Bound, every, check_finite: bool,
                  kind: str = "grad", executor: str = "compiled") -> list:
    """Checkpointing: on the compiled program where it can recompute what the backward pass
    reads of its forward loops chunk by chunk (``remat``: its own code, so bitwise its own
    stored gradients for chunks of k steps), else (and with ``executor="interpret"``) on the
    reference interpreter's equations, segment by segment (bitwise the interpreter's)."""
    xp = bound.xp
    flat = [v for it in items for v in (it if isinstance(it, tuple) else (it,))]
    depth = gg._cache.get("reach")
    if depth is None:                           # (a sweep over every equation: once)
        depth = gg._cache["reach"] = max(reach(gg))
    k = segment_length(every, gg.steps, depth)
    if executor != "interpret" and get_target(executor).name == "python":
        key = ("program", kind, "remat", k)
        prog = gg._cache.get(key)
        if prog is None:
            prog = gg._cache[key] = compile_graph(gg, items, name=_ident(f"{gg.name}_{kind}"),
                                                  remat=k)
        if prog.stats["recomputed"]:
            _check_memory(gg, bound, *prog.stats.get("stored", (0, 0)), kind)
            return prog(bound.xp, bound.params, bound.arrays)
    got = run_checkpointed(gg, dict(bound.env), k, flat,
                           lambda e, env: apply_eqn(xp, e, env, check_finite))
    return _gather(xp, got, items)


def _gather(xp, env: dict, items: list) -> list:
    """The arrays of ``items`` from ``env``: a tuple of per-step Values stacked over time."""
    return [_stack(xp, [env[v] for v in it]) if isinstance(it, tuple) else env[it]
            for it in items]
