"""The runtime: check and bind the user's arrays to a Graph's inputs, and interpret it.

Inputs come as (T, B, ...) or, without a batch axis, (T, ...); static inputs as (B, ...) or
(...). Internally every batched value carries exactly one batch axis (B = 1 when the user gave
none), which :mod:`unroll.api` removes again from the results. Every problem with the arrays is
reported here, before any arithmetic, as an :mod:`unroll.errors` exception naming the input,
the step and the batch entry.

:func:`interpret`, an eight-line loop over the equations, is the reference executor the
compiled :class:`~unroll.compile.Program` must agree with, and the one that localises the first
NaN/Inf when ``check_finite=True``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from . import backends
from .core import INT, Lit
from .errors import DTypeError, InputError, NonFiniteError, ParamError, suggest
from .ir import Graph, Value

__all__ = ["interpret", "apply_eqn", "bind_arguments", "check_input_names", "Bound"]


@dataclass
class Bound:
    """The user's arrays, checked, with one batch axis everywhere."""
    xp: object                 # the backend Namespace
    params: dict               # name -> array
    graph: Graph               # what they are bound to
    batched: bool              # did the user give a batch axis?
    batch: int                 # B (1 if not batched)
    arrays: dict               # name -> array (sequence inputs stacked (T, B, ...))

    @property
    def env(self) -> dict:
        """Graph input Value -> array, each step of a sequence a view (what the interpreter
        reads; built on demand: a compiled program reads ``params`` and ``arrays``)."""
        env = self.__dict__.get("_env")
        if env is None:
            g, env = self.graph, {}
            for k, v in g.params.items():
                env[v] = self.params[k]
            for k, xs in g.seq_inputs.items():
                a = self.arrays[k]
                for t, x in enumerate(xs):
                    env[x] = a[t, ...]
            for k, v in g.static_inputs.items():
                env[v] = self.arrays[k]
            self.__dict__["_env"] = env
        return env


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
            raise ParamError(f"unknown parameter {k!r}{suggest(str(k), g.params)} (the "
                             f"graph's parameters: {', '.join(g.params)}; one declared after "
                             "the circuit was unrolled needs a new c.unroll(...))")
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
            a = inputs[have]
            if v.aval.dtype == INT and a.shape[-1] == g.bounds.get(have):   # one-hot rows
                hint = (f"; if {have} of shape {tuple(a.shape)} holds one-hot rows, "
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


def check_input_names(g: Graph, inputs: dict, options=()) -> None:
    """Refuse an input ``g`` does not have. ``options`` are the keyword options of the
    caller, whose ``**inputs`` took every other keyword: a name close to one of them is
    named as a misspelt option."""
    known = set(g.seq_inputs) | set(g.static_inputs)
    for k in inputs:
        if k not in known:
            hint = suggest(k, known)
            close = difflib.get_close_matches(k, list(options), n=1, cutoff=0.6)
            if k in g.params:
                hint = " (it is a parameter: put it in params)"
            elif close and not hint:
                hint = f" (did you mean the option {close[0]!r}?)"
            raise InputError(f"unknown input {k!r}{hint}; the graph's inputs are "
                             f"{', '.join(sorted(known)) or 'none'}")


def bind_arguments(g: Graph, params: dict, inputs: dict, check_values: bool = True,
                   options=(), unread=()) -> Bound:
    """Check ``params`` and ``inputs`` against ``g`` and bind them to its input Values
    (``options``: see :func:`check_input_names`). Inputs named in ``unread`` (which the
    results asked for do not read) may be left out: they are bound to zeros.

    Raises
    ------
    ParamError, InputError, DTypeError, NonFiniteError
        Naming the parameter or input, the step and the batch entry, and the fix.
    """
    # the checks of names, types, shapes and dtypes depend on those alone: a call like the
    # last one that passed them (a training loop) checks only the values again
    key = _bind_key(params, inputs, unread)
    last = g._cache.get("bind")
    if key is not None and last is not None and last[0] == key:
        return _bind_values(g, params, inputs, last[1], check_values)
    bound = _bind_checked(g, params, inputs, check_values, options, unread)
    if key is not None:
        g._cache["bind"] = (key, (bound.xp, bound.batched, bound.batch))
    return bound


def _bind_key(params, inputs, unread):
    """What the structural checks of a binding depend on (None if it cannot be keyed)."""
    try:
        key = (tuple((k, type(v), v.shape, v.dtype) for k, v in params.items()),
               tuple((k, type(a), a.shape, a.dtype) for k, a in inputs.items()),
               tuple(unread))
        hash(key)
        return key
    except (AttributeError, TypeError):
        return None


def _bind_values(g, params, inputs, plan, check_values) -> Bound:
    """Bind arguments whose names, types, shapes and dtypes passed every check before."""
    xp, batched, batch = plan
    arrays = {}
    for k, xs in g.seq_inputs.items():
        arrays[k] = _input_values(g, k, inputs[k], xs[0], xp, batched, check_values) \
            if k in inputs else _zeros(xp, (len(xs), batch), xs[0])
    for k, v in g.static_inputs.items():
        arrays[k] = _input_values(g, k, inputs[k], v, xp, batched, check_values, True) \
            if k in inputs else _zeros(xp, (batch,), v)
    if check_values:
        for k in g.params:
            _check_finite_array(xp, params[k], f"parameter {k}", k)
    return Bound(xp, params, g, batched, batch, arrays)


def _zeros(xp, lead: tuple, v: Value):
    """Zeros standing in for an input the results asked for do not read."""
    return xp.zeros(lead + v.shape, dtype=xp.int64 if v.aval.dtype == INT else xp.float_dtype)


def _bind_checked(g: Graph, params: dict, inputs: dict, check_values: bool, options,
                  unread) -> Bound:
    _check_params(g, params)
    check_input_names(g, inputs, options)
    for k in list(g.seq_inputs) + list(g.static_inputs):
        if k not in inputs and k not in g.zero_defaults and k not in unread:
            v = g.seq_inputs[k][0] if k in g.seq_inputs else g.static_inputs[k]
            lead = [f"T={len(g.seq_inputs[k])}"] if k in g.seq_inputs else []
            shape = ", ".join(lead + ["B"] + [str(n) for n in v.shape])
            hint = ("; to compute outputs without it, ask for them: run(..., outputs=[...])"
                    if "outputs" in options and g.loss is not None else "")
            raise InputError(f"missing input {k}: expected an array of shape ({shape}) of "
                             f"{v.aval.dtype}s{hint}")
    fdt = _float_dtype(g, params)
    for k, a in inputs.items():
        if type(a).__module__.startswith("numpy.ma"):
            raise InputError(f"input {k} is a masked array; unroll computes on every entry: "
                             f"fill the masked ones ({k}.filled(0)) or weight the loss "
                             "instead")
        if not backends.is_array(a):
            raise InputError(f"input {k} is a {type(a).__name__}, not an array; convert it "
                             "with np.asarray(...)")
    xp = backends.namespace_of({**params, **inputs}, fdt)
    if fdt is None:
        fdt = next((a.dtype for a in inputs.values()
                    if backends.dtype_name(a.dtype).startswith("float")), None) or xp.float64
        xp = backends.get(xp.module, fdt)
    batched, batch = _layout(g, inputs)
    arrays = {}
    for k, xs in g.seq_inputs.items():
        if k not in inputs:            # unread by what was asked for: zeros stand in
            arrays[k] = _zeros(xp, (len(xs), batch), xs[0])
            continue
        a = _check_input(g, k, inputs[k], xs[0], fdt, batched, xp, check_values)
        if a.shape[0] != len(xs):
            hint = (f" (inputs are time-major, (T, B, ...): if {k} of shape "
                    f"{tuple(inputs[k].shape)} is batch-first, (B, T, ...), pass "
                    f"np.swapaxes({k}, 0, 1))" if batched and a.shape[1] == len(xs) else "")
            raise InputError(f"input {k} has {a.shape[0]} steps, but the graph was unrolled "
                             f"for τ = {len(xs)}; unroll again with steps={a.shape[0]} or pass "
                             f"{len(xs)} steps{hint}")
        arrays[k] = a
    for k, v in g.static_inputs.items():
        if k in inputs:
            a = _check_input(g, k, inputs[k], v, fdt, batched, xp, check_values, static=True)
        else:
            a = _zeros(xp, (batch,), v)
        arrays[k] = a
    if check_values:
        for k, v in g.params.items():
            _check_finite_array(xp, params[k], f"parameter {k}", k)
    return Bound(xp, params, g, batched, batch, arrays)


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
    return _input_values(g, name, a, v, xp, batched, check_values, static)


def _input_values(g, name, a, v: Value, xp, batched, check_values, static=False):
    """An input with one batch axis, its values checked (finite floats, class indices)."""
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
    if xp.all_finite(a):
        return
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
