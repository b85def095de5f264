"""Composing unrolled graphs: one graph that runs another's results into its inputs.

An encoder-decoder (fig. 10.12) reads a sequence of one length and writes one of another: two
circuits, unrolled over their own τ, and :func:`chain` joins them into one Graph in which the
decoder's static input (the context C) is the encoder's last state. Because a Graph is a flat
list of equations, joining is concatenation plus substitution; the result runs, differentiates,
compiles and prints like any other graph.
"""
from __future__ import annotations

from .errors import CircuitError, ShapeError
from .ir import Eqn, Graph, Value
from .ops import add_p, concat_p, reshape_p

__all__ = ["chain"]


def chain(first: Graph, second: Graph, links: dict, name: str | None = None) -> Graph:
    """Run ``first``, then ``second`` with some of its static inputs taken from ``first``.

    Parameters
    ----------
    links : dict
        ``{static input of second: Value of first}``, e.g. ``{"C": enc.states["h"][n]}``;
        or a list of Values of one shape, stacked along a new first axis (every encoder
        state, ``[enc.states["h"][t] for t in 1..n]``, for attention).

    Returns
    -------
    Graph
        Parameters, inputs and outputs of both (their names must not clash); values are
        renamed ``<graph name>.<value name>``; the loss is the sum of both losses.
    """
    g = Graph(name or f"{first.name}+{second.name}", first.steps + second.steps)
    stacks = []
    for k, v in list(links.items()):
        if k not in second.static_inputs:
            raise CircuitError(f"chain: {second.name} has no static input {k!r} to link")
        if isinstance(v, (list, tuple)):
            v, eqns = _stacked(first, k, v)
            links = {**links, k: v}
            stacks += eqns
        if v.aval.shape != second.static_inputs[k].aval.shape:
            raise ShapeError(f"chain: {second.name}'s input {k} has shape "
                             f"{second.static_inputs[k].shape}, but {v!r} of {first.name} has "
                             f"shape {v.shape}")
    maps = [_Renamer(first), _Renamer(second)]
    maps[1].sub = {second.static_inputs[k]: maps[0].value(v) for k, v in links.items()}
    for part, m in zip((first, second), maps):
        for field in ("params", "seq_inputs", "outputs", "bounds"):
            _merge(getattr(g, field), getattr(part, field), field, m)
        for k, v in part.static_inputs.items():
            if v not in m.sub:
                _merge(g.static_inputs, {k: v}, "static inputs", m)
        g.zero_defaults |= {k for k in part.zero_defaults if k in g.static_inputs}
        g.output_at.update(part.output_at)
        g.dropout.update(part.dropout)
        for k, d in part.states.items():
            g.states[f"{part.name}.{k}"] = {t: m.value(v) for t, v in d.items()}
            g.directions[f"{part.name}.{k}"] = part.directions.get(k, "forward")
            g.delays[f"{part.name}.{k}"] = part.delays.get(k, 1)
        g.eqns += [Eqn(e.prim, tuple(m.value(x) for x in e.inputs), e.params,
                       tuple(m.value(v) for v in e.outs), e.step) for e in part.eqns]
        if part is first:                 # the stacked links, once the first part is done
            g.eqns += [Eqn(e.prim, tuple(m.value(x) for x in e.inputs), e.params,
                           tuple(m.value(v) for v in e.outs), e.step) for e in stacks]
    losses = [m.value(p.loss) for p, m in zip((first, second), maps) if p.loss is not None]
    if len(losses) == 2:
        g.loss = Value("L", None, losses[0].aval)
        g.eqns.append(Eqn(add_p, tuple(losses), {}, (g.loss,), None))
    elif losses:
        g.loss = losses[0]
    g.parts = (first, second)
    base = 0
    for part in g.parts:                  # the second circuit's picture above the first's
        for k, r in part.variables.items():
            key = k if r.role in ("input", "static", "target") else f"{part.name}.{k}"
            g.variables[key] = r._replace(row=base + r.row)
        base = 1 + max((r.row for r in g.variables.values()), default=-1)
    return g


def _stacked(first: Graph, k: str, values) -> tuple:
    """Values of ``first`` of one shape, stacked along a new first axis: (Value, equations)."""
    if not values or not all(isinstance(v, Value) for v in values):
        raise CircuitError(f"chain: the link {k!r} must be a Value or a non-empty list of "
                           "Values of the first graph")
    shape = values[0].aval.shape
    if any(v.aval.shape != shape for v in values):
        raise ShapeError(f"chain: the values linked to {k} have different shapes "
                         f"({sorted({v.aval.shape for v in values})}); stacking needs one")
    rank, step, eqns, rows = len(shape), first.steps, [], []
    for i, v in enumerate(values):
        params = {"shape": (1,) + tuple(shape), "old": tuple(shape)}
        r = Value(f"{k}.row{i}", None, reshape_p.shape(v.aval, **params))
        eqns.append(Eqn(reshape_p, (v,), params, (r,), step))
        rows.append(r)
    params = {"axis": -(rank + 1), "rank": rank + 1}
    out = Value(k, None, concat_p.shape(*[r.aval for r in rows], **params))
    eqns.append(Eqn(concat_p, tuple(rows), params, (out,), step))
    return out, eqns


class _Renamer:
    """Copies of one graph's values, named ``<graph>.<name>``; inputs keep their names."""

    def __init__(self, part: Graph):
        self.part, self.new, self.sub = part, {}, {}

    def value(self, x):
        if type(x) is not Value:
            return x
        if x in self.sub:
            return self.sub[x]
        y = self.new.get(x)
        if y is None:
            name = x.name if x.role is not None else f"{self.part.name}.{x.name}"
            y = self.new[x] = Value(name, x.t, x.aval, x.role)
        return y


def _merge(into: dict, src: dict, what: str, m: _Renamer) -> None:
    for k, v in src.items():
        if k in into:
            raise CircuitError(f"chain: both graphs have {what[:-1] if what.endswith('s') else what}"
                               f" {k!r}; give one of them another name")
        if isinstance(v, Value):
            v = m.value(v)
        elif isinstance(v, list):
            v = [m.value(x) for x in v]
        elif isinstance(v, dict):
            v = {t: m.value(x) for t, x in v.items()}
        into[k] = v
