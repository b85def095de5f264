"""Running a Graph: check and bind the user's arrays, execute, hand back named results.

Inputs come as (T, B, ...) or, without a batch axis, (T, ...); static inputs as (B, ...) or
(...). Internally every batched value carries exactly one batch axis (B = 1 when the user gave
none), which is removed again from the results. Every problem with the arrays is reported here,
before any arithmetic, as an :mod:`unroll.errors` exception naming the input, the step and the
batch entry.

The compiled :class:`~unroll.compile.Program` is the default executor; :func:`interpret`, an
eight-line loop over the equations, is the reference both must agree with, and the one that
localises the first NaN/Inf when ``check_finite=True``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import backends
from .core import INT, Lit
from .errors import (DTypeError, InputError, NonFiniteError, ParamError, ResourceError,
                     UnrollError, available_memory, flag, gib, suggest)
from .ir import Graph, Value, _forward_items, _grad_items

__all__ = ["run", "value_and_grad", "evaluate", "interpret", "bind_arguments", "Bound",
           "grad_graph"]


@dataclass
class Bound:
    """The user's arrays, checked, with one batch axis everywhere."""
    xp: object                 # the backend Namespace
    params: dict               # name -> array
    env: dict                  # graph input Value -> array
    batched: bool              # did the user give a batch axis?
    batch: int                 # B (1 if not batched)
    arrays: dict               # name -> array (sequence inputs stacked (T, B, ...))


# --- binding ---------------------------------------------------------------------------------

def _float_dtype(g: Graph, params: dict):
    dtypes = {}
    for k, v in params.items():
        dt = getattr(v, "dtype", None)
        if dt is None:
            raise ParamError(f"parameter {k} is a {type(v).__name__}, not an array; pass "
                             "arrays such as those from c.init_params()")
        dtypes.setdefault(backends.dtype_name(dt), k)
    bad = [d for d in dtypes if not d.startswith("float")]
    if bad:
        raise DTypeError(f"parameter {dtypes[bad[0]]} has dtype {bad[0]}; parameters must be "
                         "float32 or float64 (use .astype('float64'))")
    if len(dtypes) > 1:
        desc = ", ".join(f"{k} is {d}" for d, k in dtypes.items())
        raise DTypeError(f"parameters mix precisions ({desc}); cast them all to one dtype")
    return next(iter(params.values())).dtype if params else None


def _check_params(g: Graph, params: dict) -> None:
    if not isinstance(params, dict):
        raise ParamError(f"params must be a dict name -> array, got {type(params).__name__}")
    for k in g.params:
        if k not in params:
            raise ParamError(f"missing parameter {k} of shape {g.params[k].shape}; "
                             "c.init_params(seed=...) creates every parameter")
    for k, v in params.items():
        if k not in g.params:
            raise ParamError(f"unknown parameter {k!r}{suggest(k, g.params)} (the graph's "
                             f"parameters: {', '.join(g.params)})")
        want = g.params[k].shape
        if not hasattr(v, "shape"):
            raise ParamError(f"parameter {k} is a {type(v).__name__}, not an array of shape "
                             f"{want}; convert it with np.asarray(...)")
        if tuple(getattr(v, "shape", ())) != want:
            raise ParamError(f"parameter {k} has shape {tuple(getattr(v, 'shape', ()))}, but "
                             f"the circuit declares {want}")


def _layout(g: Graph, inputs: dict):
    """Decide whether the user's inputs carry a batch axis, and B."""
    seen = []                                   # (name, has batch axis, B)
    for name, a in inputs.items():
        seq = name in g.seq_inputs
        v = g.seq_inputs[name][0] if seq else g.static_inputs[name]
        extra = a.ndim - len(v.shape) - seq
        if v.aval.dtype == INT and extra == 2 and not \
                backends.dtype_name(a.dtype).startswith(("int", "uint")):
            raise DTypeError(f"input {name} holds class indices: an integer array of shape "
                             f"{'(T, B)' if seq else '(B,)'} (or without B), not "
                             f"{backends.dtype_name(a.dtype)} of shape {tuple(a.shape)}; for "
                             f"one-hot targets pass {name}.argmax(-1)")
        if extra not in (0, 1):
            what = "(T, B, ...) or (T, ...)" if seq else "(B, ...) or (...)"
            raise InputError(f"input {name} has shape {tuple(a.shape)}, but it should be {what}"
                             f" with per-step shape {v.shape}")
        seen.append((name, bool(extra), a.shape[seq] if extra else 1))
    if not seen:
        return False, 1
    name0, batched, batch = seen[0]
    for name, b, n in seen[1:]:
        if b != batched:
            have, lack = (name, name0) if b else (name0, name)
            v = g.seq_inputs[have][0] if have in g.seq_inputs else g.static_inputs[have]
            hint = ""
            if v.aval.dtype == INT:      # one-hot rows read as a batch axis
                hint = (f"; if {have} of shape {tuple(inputs[have].shape)} holds one-hot rows, "
                        f"pass the class indices {have}.argmax(-1)")
            raise InputError(f"input {have} has a batch axis but input {lack} does not; give "
                             f"every input a batch axis, or none{hint}")
        if n != batch:
            raise InputError(f"input {name} has batch size {n}, but input {name0} has {batch}; "
                             "every input needs the same batch size")
    if batch == 0:               # the batch mean of nothing would be a silent NaN
        raise InputError(f"input {name0} has an empty batch (B = 0, shape "
                         f"{tuple(inputs[name0].shape)}); pass at least one sequence")
    return batched, batch


def bind_arguments(g: Graph, params: dict, inputs: dict, check_values: bool = True) -> Bound:
    """Check ``params`` and ``inputs`` against ``g`` and bind them to its input Values.

    Raises
    ------
    ParamError, InputError, DTypeError, NonFiniteError
        Naming the parameter or input, the step and the batch entry, and the fix.
    """
    _check_params(g, params)
    known = set(g.seq_inputs) | set(g.static_inputs)
    for k in inputs:
        if k not in known:
            hint = suggest(k, known)
            if k in g.params:
                hint = " (it is a parameter: put it in params)"
            raise InputError(f"unknown input {k!r}{hint}; the graph's inputs are "
                             f"{', '.join(sorted(known)) or 'none'}")
    for k in list(g.seq_inputs) + list(g.static_inputs):
        if k not in inputs and k not in g.zero_defaults:
            v = g.seq_inputs[k][0] if k in g.seq_inputs else g.static_inputs[k]
            lead = [f"T={len(g.seq_inputs[k])}"] if k in g.seq_inputs else []
            shape = ", ".join(lead + ["B"] + [str(n) for n in v.shape])
            raise InputError(f"missing input {k}: expected an array of shape ({shape}) of "
                             f"{v.aval.dtype}s")
    fdt = _float_dtype(g, params)
    for k, a in inputs.items():
        if not backends.is_array(a):
            raise InputError(f"input {k} is a {type(a).__name__}, not an array; convert it "
                             "with np.asarray(...)")
    xp = backends.namespace_of({**params, **inputs}, fdt)
    if fdt is None:
        fdt = next((a.dtype for a in inputs.values()
                    if backends.dtype_name(a.dtype).startswith("float")), None) or xp.float64
        xp = backends.get(xp.module, fdt)
    batched, batch = _layout(g, inputs)
    env, arrays = {}, {}
    for k, v in g.params.items():
        env[v] = params[k]
    for k, xs in g.seq_inputs.items():
        a = _check_input(g, k, inputs[k], xs[0], fdt, batched, xp, check_values)
        if a.shape[0] != len(xs):
            hint = (f" (inputs are time-major, (T, B, ...): if {k} of shape "
                    f"{tuple(inputs[k].shape)} is batch-first, (B, T, ...), pass "
                    f"np.swapaxes({k}, 0, 1))" if batched and a.shape[1] == len(xs) else "")
            raise InputError(f"input {k} has {a.shape[0]} steps, but the graph was unrolled "
                             f"for τ = {len(xs)}; unroll again with steps={a.shape[0]} or pass "
                             f"{len(xs)} steps{hint}")
        arrays[k] = a
        for t, x in enumerate(xs):
            env[x] = a[t, ...]
    for k, v in g.static_inputs.items():
        if k in inputs:
            a = _check_input(g, k, inputs[k], v, fdt, batched, xp, check_values, static=True)
        else:
            a = xp.zeros((batch,) + v.shape, dtype=fdt)
        arrays[k] = env[v] = a
    if check_values:
        for k, v in g.params.items():
            _check_finite_array(xp, params[k], f"parameter {k}", k)
    return Bound(xp, params, env, batched, batch, arrays)


def _check_input(g, name, a, v: Value, fdt, batched, xp, check_values, static=False):
    want = v.shape
    got = tuple(a.shape[(1 if static else 2) if batched else (0 if static else 1):])
    if got != want:
        raise InputError(f"input {name} has per-step shape {got}, but the circuit declares "
                         f"{want}" + ("" if static else f" (full shape {tuple(a.shape)})"))
    kind, fname = backends.dtype_name(a.dtype), backends.dtype_name(fdt)
    if v.aval.dtype == INT:
        if not kind.startswith(("int", "uint")):
            raise DTypeError(f"input {name} holds class indices and must be an integer array, "
                             f"not {kind}; use .astype(int) (or .argmax(-1) of one-hot rows)")
    elif not kind.startswith("float"):
        raise DTypeError(f"input {name} must be a float array, not {kind}; use "
                         f".astype({fname!r})")
    elif kind != fname:
        raise DTypeError(f"input {name} is {kind} but the parameters are {fname}; cast one to "
                         f"the other (e.g. x.astype({fname!r}))")
    if not batched:
        a = a[None, ...] if static else a[:, None, ...]
    if check_values:
        if v.aval.dtype == INT and name in g.bounds:
            _check_classes(xp, a, name, g.bounds[name], static)
        elif v.aval.dtype != INT:
            _check_finite_array(xp, a, f"input {name}", name, static=static, seq=not static)
    return a




def _where(idx, static, seq) -> str:
    if seq:
        return f" at step t = {idx[0] + 1}, batch entry {idx[1]}" + (
            f", entry {idx[2:]}" if len(idx) > 2 else "")
    if static:
        return f" at batch entry {idx[0]}" + (f", entry {idx[1:]}" if len(idx) > 1 else "")
    return f" at entry {idx}"


def _check_finite_array(xp, a, what, name, static=False, seq=False) -> None:
    ok = xp.isfinite(a)
    if not bool(xp.all(ok)):
        idx = backends.first_true(~ok)
        raise NonFiniteError(f"{what} contains a NaN or Inf{_where(idx, static, seq)}; clean "
                             "the data (np.nan_to_num) or find where it came from")


def _check_classes(xp, a, name, k, static) -> None:
    bad = (a < 0) | (a >= k)
    if bool(xp.any(bad)):
        idx = backends.first_true(bad)
        val = int(backends.to_numpy(a[idx]))
        raise InputError(f"input {name} = {val}{_where(idx, static, not static)} is not a "
                         f"class index: the logits it indexes have {k} classes (0..{k - 1})")


# --- executing ---------------------------------------------------------------------------------

def interpret(g: Graph, env: dict, xp, check_finite: bool = False) -> dict:
    """Execute ``g``'s equations in order; ``env`` maps its input Values to arrays."""
    for e in g.eqns:
        apply_eqn(xp, e, env, check_finite)
    return env


def apply_eqn(xp, e, env: dict, check_finite: bool = False) -> None:
    """Execute one equation: its operands from ``env``, its results into it."""
    args = [env[x] if type(x) is Value else _lit(xp, x) for x in e.inputs]
    out = e.prim.forward(xp, *args, **e.params)
    if e.prim.nouts == 1:
        env[e.outs[0]] = out
    else:
        env.update(zip(e.outs, out))
    if check_finite:
        _check_eqn(xp, e, env)


def _lit(xp, x: Lit):
    return xp.asarray(x.val, dtype=xp.float_dtype) if hasattr(x.val, "shape") else x.val


def _check_eqn(xp, e, env) -> None:
    for v in e.outs:
        a = env[v]
        if not bool(xp.all(xp.isfinite(a))):
            fin = [f"{x!r} is {'finite' if bool(xp.all(xp.isfinite(env[x]))) else 'NOT finite'}"
                   for x in e.inputs if type(x) is Value]
            step = "computed once" if e.step is None else f"at step t = {e.step}"
            raise NonFiniteError(
                f"first NaN/Inf: {v!r} ({e!r}), {step}; its operands: {'; '.join(fin) or 'none'}."
                " Lower the learning rate, clip gradients (ur.optim.clip_grad_norm), or check "
                "the inputs and initial parameters")


def _unbatch(bound: Bound, a, lead: int = 0):
    """Drop the internal batch axis at position ``lead`` when the user gave none."""
    if bound.batched or a is None:
        return a
    return a[(slice(None),) * lead + (0, Ellipsis)]


def _stack(xp, vals):
    return xp.stack(vals) if len(vals) > 1 else vals[0][None, ...]


def _fresh_all(bound: Bound, arrays: list) -> list:
    """``arrays``, each copied if it may share memory with an array the user passed (an
    output that is an input, a gradient that is a broadcast parameter): results are the
    caller's to change. An array that owns its memory (no ``base``) shares none."""
    xp = bound.xp
    may = getattr(xp.module, "may_share_memory", None)
    users = list(bound.params.values()) + list(bound.arrays.values())
    ids = {id(u) for u in users}
    out = []
    for a in arrays:
        if may is not None and getattr(a, "base", 0) is None and id(a) not in ids:
            out.append(a)
        elif may is None or id(a) in ids or any(may(a, u) for u in users):
            out.append(a.copy() if hasattr(a, "copy") else xp.asarray(a, copy=True))
        else:
            out.append(a)
    return out


def _collect(g: Graph, bound: Bound, arrays: list) -> dict:
    """Name the forward program's results; drop the batch axis the user did not give."""
    arrays = _fresh_all(bound, arrays)
    res = {}
    for (name, d), a in zip(g.outputs.items(), arrays):
        if g.output_at.get(name) in ("last", "first"):
            res[name] = _unbatch(bound, a[0, ...])
        else:
            res[name] = _unbatch(bound, a, 1)
    if g.loss is not None:
        res["loss"] = arrays[-1]
    return res


def run(g: Graph, params: dict, return_state: bool = False, **inputs) -> dict:
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

    Returns
    -------
    dict
        Every output (shape (T, B, ...), or (T, ...) without a batch axis; (B, ...) for an
        output declared ``at="last"``) and ``"loss"`` if the circuit has a loss.
    """
    return_state = flag(return_state, "run(return_state=...)")
    bound = bind_arguments(g, params, inputs)
    items = _forward_items(g)
    if not items and not return_state:
        raise UnrollError(f"{g.name} has no output and no loss, so run has nothing to return; "
                          "declare c.output(name, expr) or c.loss(expr), or pass "
                          "return_state=True for the states")
    finals = _final_state_items(g) if return_state else {}
    arrays = _execute(g, items + _flat(finals), bound,
                      "forward+state" if return_state else "forward")
    res = _collect(g, bound, arrays[:len(items)])
    if return_state:
        res["state"] = _collect_state(bound, finals, arrays[len(items):])
    return res


def _final_state_items(g: Graph) -> dict:
    """name -> the Values a next chunk starts from, in time order (the k nearest the end a
    state runs towards: initial values too, when τ < k)."""
    out = {}
    c = g.circuit
    for name, vals in g.states.items():
        spec = c.states[name] if c is not None else None
        k = spec.max_delay if spec is not None else 1
        forward = spec is None or spec.direction == "forward"
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
    bound = bind_arguments(g, params, inputs)
    env = interpret(g, dict(bound.env), bound.xp)
    return {v: _unbatch(bound, env[v]) if v.aval.batched else env[v] for v in values}


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
    if executor != "compiled":
        raise UnrollError(f"executor must be 'compiled' or 'interpret', not {executor!r}")
    prog = program(g, items, kind)
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


def program(g: Graph, items, kind: str):
    """The compiled Program of ``g`` for ``items`` (cached on the graph under ``kind``)."""
    from .compile import compile_graph
    key = ("program", kind)
    prog = g._cache.get(key)
    if prog is None:
        prog = g._cache[key] = compile_graph(g, items, name=_ident(f"{g.name}_{kind}"))
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
    if not isinstance(g, Graph):
        raise UnrollError(f"expected a Graph, not {type(g).__name__}: unroll the circuit "
                          "first, g = c.unroll(steps=...)")
    wrt = resolve_wrt(g, wrt)
    key = ("grad", wrt)
    if key not in g._cache:
        if g.loss is None:
            raise UnrollError(f"{g.name} has no loss to differentiate; add c.loss(...) to the "
                              "circuit before unrolling")
        from .grad import grad
        g._cache[key] = grad(g, wrt)
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
    executor : "compiled" or "interpret"
    checkpoint : int k or "sqrt", optional
        Gradient checkpointing (rematerialisation): keep the forward values of every k-th
        step only and recompute the others, segment by segment, as the backward sweep reaches
        them; "sqrt" takes k = ⌈√τ⌉ (O(√τ) memory for one more forward pass). Runs the
        reference interpreter's equations, so the results are bitwise those of
        ``executor="interpret"``.
    return_state : bool
        Also return each state's last value(s), as :func:`run` does: the initial state of
        the next chunk in truncated BPTT.

    Returns
    -------
    loss : 0-d array
    grads : dict name -> array
    state : dict, only with ``return_state``
    """
    if executor not in ("compiled", "interpret"):
        raise UnrollError(f"executor must be 'compiled' or 'interpret', not {executor!r}")
    check_finite = flag(check_finite, "value_and_grad(check_finite=...)")
    return_state = flag(return_state, "value_and_grad(return_state=...)")
    gg = grad_graph(g, wrt)
    bound = bind_arguments(g, params, inputs)
    items = _grad_items(gg)
    finals = _final_state_items(g) if return_state else {}
    every = list(items) + _flat(finals)
    if checkpoint is not None:
        arrays = _checkpointed(gg, every, bound, checkpoint, check_finite)
    else:
        arrays = _execute(gg, every, bound, "grad+state" if return_state else "grad",
                          executor)
    arrays = _fresh_all(bound, arrays)
    loss, grads = arrays[0], {}
    for (name, v), a in zip(gg.grads.items(), arrays[1:len(items)]):
        if isinstance(v, dict):
            grads[name] = _unbatch(bound, a, 1)
        elif name in g.static_inputs:
            grads[name] = _unbatch(bound, a)
        else:
            grads[name] = a
    if check_finite:
        xp = bound.xp
        if not all(bool(xp.all(xp.isfinite(a))) for a in [loss, *grads.values()]):
            interpret(gg, dict(bound.env), xp, check_finite=True)
    if not return_state:
        return loss, grads
    return loss, grads, _collect_state(bound, finals, arrays[len(items):])


def _checkpointed(gg: Graph, items: list, bound: Bound, every, check_finite: bool) -> list:
    from .compile.remat import reach, run_checkpointed, segment_length
    xp = bound.xp
    flat = [v for it in items for v in (it if isinstance(it, tuple) else (it,))]
    k = segment_length(every, gg.steps, max(reach(gg)))
    got = run_checkpointed(gg, dict(bound.env), k, flat,
                           lambda e, env: apply_eqn(xp, e, env, check_finite))
    return _gather(xp, got, items)


def _gather(xp, env: dict, items: list) -> list:
    """The arrays of ``items`` from ``env``: a tuple of per-step Values stacked over time."""
    return [_stack(xp, [env[v] for v in it]) if isinstance(it, tuple) else env[it]
            for it in items]
