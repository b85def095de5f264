"""The unrolled graph (figs. 10.3-10.12, right): one column per step, inputs below, losses above.

Drawn from a :class:`~unroll.Graph`, so it shows what was actually unrolled (and works for
composed graphs such as an encoder-decoder). Variables are the circuit's inputs, states,
outputs, losses, targets and values named with ``show=True``; everything else is folded into
the edges, which carry the weights they apply (on every copy, or drawn once as parameter
nodes). Long unrolls are elided as the book does: the first steps, "⋯", the last ones.

Teaching options: the backward (BPTT) graph, or the gradient flow overlaid on the forward one
(edges reversed, dashed); a heat map of per-step gradient norms with a colour legend; the
cut edges of truncated BPTT (dashed); checkpointed values (double border).
"""
from __future__ import annotations

import math
import graphviz

from ..ir import Graph, Value
from ..errors import RenderError, flag, integer, number, suggest
from . import richtext
from .backend import FONT, Picture
from .circuit import STYLE, heading

__all__ = ["unrolled_dot", "roles"]

_GRAD = "#b03a2e"


def roles(g: Graph) -> dict:
    """{value name: Role} for every variable a picture of ``g`` draws: what the graph
    recorded when it was unrolled (:func:`unroll.structure.variables`), never the circuit."""
    return g.variables


def unrolled_dot(g: Graph, *, mode: str = "forward", params: str = "edges",
                 max_steps: int = 8, keep: int | None = None, relative: bool = False,
                 heat: dict | None = None, heat_range: tuple | None = None,
                 truncate: int | None = None, checkpoints=(),
                 title: bool | str | None = None) -> graphviz.Digraph:
    """The unrolled graph of ``g`` as a ``graphviz.Digraph``.

    Parameters
    ----------
    mode : "forward", "backward" (the BPTT graph: nodes ∂L/∂v, edges reversed and dashed) or
        "overlay" (the forward graph with the gradient flow drawn over it)
    params : "edges" (every copy of an edge carries its weight), "nodes" (each parameter
        once, with edges to every use: sharing made visible) or "none" (no weights)
    max_steps, keep : a graph of more than ``max_steps`` steps shows the first and last
        ``keep`` (default: 3, or max_steps // 2 when that is smaller) and "⋯" between them
    relative : label steps t-1, t, t+1 around the middle one, with h⁽…⁾ at both ends of each
        state chain (the book's drawing of an arbitrary stretch of time)
    heat : {state name: per-step values (index t-1)}: colour those nodes (e.g. ‖∂L/∂h(t)‖ from
        :func:`unroll.diagnostics.gradient_norms`), log scale, with a legend
    heat_range : (low, high) of the colour scale (default: the values' own range); give two
        pictures the same one to compare them
    truncate : draw the state edges cut by truncated BPTT every ``truncate`` steps dashed
    checkpoints : steps whose states are checkpoints (double border)
    title : the graph's name (True), a text of its own, or none
    """
    if not isinstance(g, Graph):
        raise RenderError(f"unrolled_dot draws an unrolled Graph, not {type(g).__name__} "
                          f"{g!r:.60}; unroll a circuit first: circuit.unroll(steps=...)")
    if mode not in ("forward", "backward", "overlay"):
        raise RenderError(f"mode must be 'forward', 'backward' or 'overlay', not {mode!r}")
    if params not in ("edges", "nodes", "none"):
        raise RenderError(f"params must be 'edges', 'nodes' or 'none', not {params!r}")
    if mode != "forward" and g.loss is None:
        raise RenderError(f"mode={mode!r} draws the gradient of the loss, but {g.name} has no "
                          "loss; declare one with c.loss(...) or draw mode='forward'")
    max_steps = integer(max_steps, "max_steps (the most steps drawn in full)", 1,
                        err=RenderError)
    keep = max(1, min(3, max_steps // 2)) if keep is None else integer(keep, "keep (the steps drawn at each end of a long graph)", 1,
                   err=RenderError)
    relative = flag(relative, "relative", err=RenderError)
    text = heading(title, g.name)
    if truncate is not None:
        truncate = integer(truncate, "truncate (a number of steps k)", 1, err=RenderError)
        if truncate >= g.steps:
            raise RenderError(f"truncate={truncate} cuts no edge of a graph of τ = {g.steps} "
                              f"steps (windows of k steps cut after steps k, 2k, ...); pass "
                              f"a k between 1 and {g.steps - 1}")
    u = _Unrolled(g, max_steps, keep, relative, params)
    ckpt = _checkpoints(checkpoints, u)
    if heat is not None:
        _check_heat(heat, u)
    if heat_range is not None:
        if heat is None:
            raise RenderError("heat_range sets the colour scale of a heat map; give heat=... "
                              "too (e.g. ur.diagnostics.gradient_norms(g, params, **inputs))")
        lo_hi = _check_range(heat_range)
    else:
        lo_hi = _range(heat) if heat else None
    colors = _heat_colors(heat, u, lo_hi) if heat else {}
    d = Picture(name=graphviz.escape(f"unrolled_{g.name.replace('+', '_')}"))
    # the backward graph's ∂L/∂h⁽ᵗ⁾ ovals leave its Wᵀ labels less room: more between columns
    d.attr(rankdir="BT", nodesep="0.8" if mode == "backward" else "0.35", ranksep="0.45",
           fontname=FONT, newrank="true")
    if u.straight:
        # a bidirectional graph (fig. 10.11): x(t) -> g(t) passes h's row, and as curves the
        # h chain would dip around those edges' bend points; straight, h runs in one line
        # and each x -> g edge crosses it once, as in the book
        d.attr(splines="line")
    if text:
        d.attr(label=graphviz.escape(text), labelloc="b", fontsize="13")   # not HTML
    d.attr("node", shape="circle", fontname=FONT, fontsize="14", width="0.62", height="0.62",
           fixedsize="true", penwidth="1.1", style="filled", fillcolor="white")
    d.attr("edge", fontname=FONT, fontsize="12", arrowsize="0.6", penwidth="1.0")
    if mode == "backward":    # gradients flow back to what the model computed, not into data
        u.drop(lambda v: u.role[v].role in ("target", "input", "static"))
    for v in u.nodes:
        role, shown, _ = u.role[v]
        back = mode == "backward" and role not in ("input", "static", "target")
        runs = richtext.var(shown, u.step_label(v), vector=role != "loss")
        if back:
            runs = (richtext.Run("∂"), richtext.Run("L", italic=True), richtext.Run("/∂"),
                    *runs)
        attrs = dict(fillcolor=colors.get(v, STYLE[role if role != "bstate" else "state"][0]))
        if back:
            attrs.update(shape="ellipse", width="1.05", fontsize="12")
        if role in ("state", "bstate") and v.t in ckpt:
            attrs.update(peripheries="2", color="#1f5fbf")
        if v.t is not None:                 # a column: straight x -> h -> o -> L <- y
            attrs["group"] = f"col{_order(u, v)}"
        d.node(u.id(v), richtext.to_html(runs), **attrs)
    for e in u.ellipses:                     # the ends sit in a column of their own
        col = {"left": u.steps[0] - 1, "right": u.steps[-1] + 1}.get(e.col)
        d.node(e.ident, e.label, **e.attrs, **({"group": f"col{col}"} if col is not None
                                               else {}))
    _anchor_ends(d, u)
    _rows(d, u)
    for (src, dst), labels in u.edges.items():
        _edge(d, u, src, dst, labels, mode, params, truncate)
    if params == "nodes":
        for p in sorted({p for labels in u.edges.values() for p in labels}):
            d.node(f"param_{p}", richtext.to_html(richtext.var(p)), shape="box",
                   fillcolor=STYLE["param"][0], width="0.4", height="0.3")
    if heat:
        _legend(d, heat, u, lo_hi)
    return d


# --- what is drawn ----------------------------------------------------------------------------

class _Ellipsis:
    def __init__(self, ident, label, attrs, row, col):
        self.ident, self.label, self.attrs, self.row, self.col = ident, label, attrs, row, col


class _Unrolled:
    """The drawn variables of a graph, the columns they sit in, and the edges between them."""

    def __init__(self, g: Graph, max_steps: int, keep: int, relative: bool, params: str):
        self.g, self.relative, self.params = g, relative, params
        names = roles(g)
        T = g.steps if not g.parts else max(p.steps for p in g.parts)
        self.steps = list(range(1, T + 1))
        self.gap = None
        if T > max_steps and 2 * keep < T:      # (else there is nothing between the ends)
            self.steps = list(range(1, keep + 1)) + list(range(T - keep + 1, T + 1))
            self.gap = (keep, T - keep + 1)
        self.mid = self.steps[len(self.steps) // 2]
        self.producer = {v: e for e in g.eqns for v in e.outs}
        self.read = {x for e in g.eqns for x in e.inputs if type(x) is Value}
        self.role, self.nodes = {}, []
        for v in list(g.inputs()) + [v for e in g.eqns for v in e.outs]:
            r = names.get(v.name)
            if r is None or v in self.role or v.name in g.zero_defaults:
                continue
            if v.role == "param" or not self._shown_step(v, r[0]):
                continue
            self.role[v] = r
            self.nodes.append(v)
        self.names = names
        self.ellipses: list = []            # "⋯" and h⁽…⁾ nodes
        self.gap_nodes: dict = {}           # variable name -> its "⋯" node
        self.gap_edges: list = []           # (last drawn value before the gap, its "⋯")
        self.anchors: list = []             # invisible bottom-row nodes holding the ends
        self.edges = self._edges()
        # a backward state (fig. 10.11): the picture is drawn with straight edges
        self.straight = any(r.role == "bstate" for r in self.role.values())
        if relative:
            self._relative_ends()
        self.forward_pairs = _forward_pairs(self)

    def _shown_step(self, v: Value, role: str) -> bool:
        if v.t is None:
            return role in ("static", "input", "target")
        if v.t in self.steps:
            return True
        # the initial values a step reads: h(0), or a(−1) and a(0) for a state read two
        # steps back, g(τ+1) of a backward state (one nothing reads is not drawn)
        return role in ("state", "bstate") and not self.relative and \
            (v.t <= 0 or v.t > self.g.steps) and v in self.read

    def id(self, v: Value) -> str:
        t = "c" if v.t is None else ("m" + str(-v.t) if v.t < 0 else str(v.t))
        name = "".join(ch if ch.isalnum() else "_" for ch in v.name)
        return f"v_{name}_{t}"

    def step_label(self, v: Value):
        if v.t is None:
            return None
        if not self.relative:
            return v.t
        d = v.t - self.mid
        return "t" if d == 0 else (f"t+{d}" if d > 0 else f"t-{-d}")

    def drop(self, which) -> None:
        """Leave out the values ``which(v)`` selects, and their edges."""
        gone = {v for v in self.nodes if which(v)}
        self.nodes = [v for v in self.nodes if v not in gone]
        self.edges = {k: l for k, l in self.edges.items() if k[0] not in gone
                      and k[1] not in gone}

    def part(self, v) -> int:
        """Which part of a composed graph (encoder 0, decoder 1) a value belongs to."""
        if not self.g.parts or isinstance(v, _Ellipsis):
            return 0
        return 1 if v.name.startswith(self.g.parts[1].name + ".") or \
            v.name in self.g.parts[1].seq_inputs else 0

    # edges: walk back from each drawn value through the hidden ones
    def _edges(self) -> dict:
        out = {}
        for v in self.nodes:
            e = self.producer.get(v)
            if e is None:
                continue
            for src, labels in self._sources(e, frozenset()):
                out.setdefault((src, v), set()).update(labels)
        return out

    def _sources(self, e, labels):
        params = {x.name for x in e.inputs if type(x) is Value and x.role == "param"}
        lab = labels | (params if e.prim.weights else set())
        for x in e.inputs:
            if type(x) is not Value or x.role == "param" or x.name in self.g.zero_defaults:
                continue
            if x in self.role:
                yield x, lab
            elif x.name in self.names and x.t is not None:
                if self.gap and self.gap[0] < x.t < self.gap[1]:
                    yield self._gap(x), lab               # a variable at an elided step
                # else: an initial state the relative view replaces by h⁽…⁾
            elif x in self.producer:
                yield from self._sources(self.producer[x], lab)

    def _gap(self, x: Value):
        """The "⋯" node standing for the elided steps of x's row."""
        if x.name not in self.gap_nodes:
            e = _Ellipsis(f"gap_{len(self.gap_nodes)}", "⋯",
                          dict(shape="plaintext", fontsize="22", fillcolor="none", style=""),
                          self.names[x.name].row, "gap")
            self.ellipses.append(e)
            self.gap_nodes[x.name] = e
            # the chain goes on: the last drawn value before the gap feeds the ellipsis
            self.gap_edges += [(v, e) for v in self.nodes
                               if v.name == x.name and v.t == self.gap[0]]
        return self.gap_nodes[x.name]

    def _relative_ends(self) -> None:
        """The book's ⁽…⁾ nodes: what feeds the first drawn step from before it (o⁽…⁾ -> h),
        and what the last drawn step feeds after it (h -> h⁽…⁾)."""
        first, last = self.steps[0], self.steps[-1]
        ends = {}
        for (src, dst), labels in list(self.edges.items()):
            if not (isinstance(src, Value) and isinstance(dst, Value)) or src.t is None or \
                    dst.t is None or abs(src.t - dst.t) != 1:
                continue
            forward = dst.t == src.t + 1
            if (dst.t == first + 1) if forward else (dst.t == last - 1):
                ends[src.name, dst.name, forward] = labels
        made = {}                              # (side, name) -> its end: one per chain
        for (sname, dname, forward), labels in ends.items():
            entry = next(v for v in self.nodes if v.name == dname
                         and v.t == (first if forward else last))
            leave = next(v for v in self.nodes if v.name == sname
                         and v.t == (last if forward else first))
            for side, edge, name in (("left" if forward else "right",
                                      lambda e: (e, entry), sname),
                                     ("right" if forward else "left",
                                      lambda e: (leave, e), dname)):
                _, shown, row = self.names[name]
                e = made.get((side, name))
                if e is None:
                    e = made[side, name] = _Ellipsis(
                        f"dots_{side}_{len(self.ellipses)}",
                        richtext.to_html(richtext.var(shown, "…")),
                        dict(fillcolor="white", style="filled,dashed"), row, side)
                    self.ellipses.append(e)
                self.edges.setdefault(edge(e), set()).update(labels)


# --- layout -----------------------------------------------------------------------------------

def _rows(d, u: _Unrolled) -> None:
    """Each role's row side by side and in step order; rows stacked bottom to top."""
    rows = {}
    for v in list(u.nodes) + u.ellipses + u.anchors:
        rows.setdefault(_row_of(u, v), []).append((_key(u, v), _ident(u, v)))
    prev = None
    for r in sorted(rows):
        ids = [i for _, i in sorted(rows[r])]
        with d.subgraph() as s:
            s.attr(rank="same")
            s.node(f"row{r}", label="", style="invis", width="0", height="0")
            for i in ids:
                s.node(i)
        for a, b in zip(ids, ids[1:]):
            if (a, b) not in u.forward_pairs:   # (a parallel invisible edge hides the real one)
                d.edge(a, b, style="invis", weight="5")
        if prev is not None:
            d.edge(prev, f"row{r}", style="invis")
        prev = f"row{r}"
    for src, e in u.gap_edges:               # into "⋯" with the weight it goes on with
        labels = set().union(*[l for (a, _), l in u.edges.items() if a is e]) \
            if u.params == "edges" else set()
        d.edge(u.id(src), e.ident,
               **({"xlabel": richtext.to_html(richtext.names(labels))} if labels else {}))


def _anchor_ends(d, u: _Unrolled) -> None:
    """Hold each ⁽…⁾ end in its column from below (an invisible node in the bottom row):
    without it, edges crossing the end's row can push it out of place."""
    bottom = min((_row_of(u, v) for v in u.nodes), default=0)
    for e in u.ellipses:
        if e.col in ("left", "right") and e.row != bottom:
            anchor = f"anchor_{e.ident}"
            col = u.steps[0] - 1 if e.col == "left" else u.steps[-1] + 1
            d.node(anchor, "", style="invis", width="0.1", height="0.1", group=f"col{col}")
            d.edge(anchor, e.ident, style="invis", weight="10")
            u.anchors.append(_Ellipsis(anchor, "", {}, bottom, e.col))
    # the same for the initial states h(0) (and g(τ+1) of a backward chain): one anchor a side
    sides = {}
    for v in u.nodes:
        if v.t is None or v.t in u.steps or _row_of(u, v) == bottom:
            continue
        side = "first" if v.t < u.steps[0] else "last"
        if side not in sides:
            sides[side] = anchor = f"anchor_{side}"
            d.node(anchor, "", style="invis", width="0.1", height="0.1",
                   group=f"col{_order(u, v)}")
            u.anchors.append(_Ellipsis(anchor, "", {}, bottom, side))
        d.edge(sides[side], u.id(v), style="invis", weight="10")


def _forward_pairs(u: _Unrolled) -> set:
    """Edges along a row, left to right, between neighbours (they keep the row in order)."""
    pairs = set()
    for src, dst in u.edges:
        if _row_of(u, src) == _row_of(u, dst) and _key(u, src) < _key(u, dst):
            pairs.add((_ident(u, src), _ident(u, dst)))
    for src, e in u.gap_edges:                      # h(keep) -> "⋯"
        pairs.add((u.id(src), e.ident))
    return pairs


def _ident(u, v) -> str:
    return v.ident if isinstance(v, _Ellipsis) else u.id(v)


def _key(u, v):
    if isinstance(v, _Ellipsis):
        return {"left": -1e9, "right": 1e9, "first": -1e7, "last": 1e7,
                "gap": (u.gap[0] + 0.5) if u.gap else 0}[v.col]
    return _order(u, v)


def _row_of(u: _Unrolled, v) -> int:
    if isinstance(v, _Ellipsis):
        return v.row
    return u.role[v].row


def _order(u: _Unrolled, v: Value):
    if v.t is None:
        return -1e8
    return v.t + (u.g.parts[0].steps + 1 if u.part(v) else 0)   # and to its right


def _edge(d, u, src, dst, labels, mode, params, truncate) -> None:
    s = src.ident if isinstance(src, _Ellipsis) else u.id(src)
    t = dst.ident if isinstance(dst, _Ellipsis) else u.id(dst)
    same = isinstance(src, Value) and isinstance(dst, Value) and src.name == dst.name
    cut = bool(truncate and same and src.t is not None and dst.t is not None and
               min(src.t, dst.t) > 0 and min(src.t, dst.t) % truncate == 0)
    attrs = {}
    if labels and params == "edges":      # the backward pass multiplies by Wᵀ (eq. 10.21)
        attrs["label"] = richtext.to_html(richtext.names(labels,
                                                         transposed=mode == "backward"))
    if params == "nodes":
        for p in labels:
            d.edge(f"param_{p}", t, style="dashed", color="#8a7a3a", arrowsize="0.6",
                   constraint="false")
    if u.straight and "label" in attrs and isinstance(dst, Value) and \
            u.role[dst].role == "bstate" and _row_of(u, dst) - _row_of(u, src) > 1:
        # x(t) -> g(t) past h's row: its label at the middle would sit on the h chain; by
        # g(t) instead, below it and to the right
        attrs.update(headlabel=attrs.pop("label"), labeldistance="2.4", labelangle="-35")
    if u.straight and "label" in attrs and isinstance(src, Value) and \
            u.role[src].role == "state" and _row_of(u, src) == _row_of(u, dst):
        # h(t) -> h(t+1) crossed by x(t) -> g(t): its label by the head, clear of the crossing
        attrs.update(headlabel=attrs.pop("label"), labeldistance="2.2", labelangle="-40")
    if _row_of(u, src) == _row_of(u, dst) and "label" in attrs:
        # a label on an edge along a row is laid out as a node in the row above, which
        # unsettles that row's order: place it after layout instead
        attrs["xlabel"] = attrs.pop("label")
    if (s, t) not in u.forward_pairs and _row_of(u, src) >= _row_of(u, dst):
        # against the order of a row (g(t+1) -> g(t)) or down a row (y(t-1) -> h(t)): the
        # rows and their order are fixed already, the edge only has to be drawn
        attrs["constraint"] = "false"
    if cut:                                  # truncated BPTT: no gradient crosses this edge
        attrs.update(style="dashed", color="#777777", headlabel="✂", labelfontsize="16",
                     labelfontname="DejaVu Sans", labelangle="-60", labeldistance="2.5")
    down = _row_of(u, src) > _row_of(u, dst)        # y(t-1) -> h(t): against the rows
    if down:
        attrs.pop("constraint", None)
    # the layout is the forward one; gradients flow against the edges: arrowheads reversed
    a, b = (t, s) if down else (s, t)   # y(t-1) -> h(t) is laid out upwards, h -> y
    grad = dict(style="dashed", color=_GRAD, fontcolor=_GRAD,
                dir="forward" if down else "back")
    if mode == "backward" and cut:          # the chain is drawn, no gradient along it
        d.edge(a, b, style="dotted", color="#777777", dir="none",
               **{k: v for k, v in attrs.items() if "label" in k})
        return
    if mode == "backward":
        d.edge(a, b, **grad, **{k: v for k, v in attrs.items() if k in ("label", "xlabel")})
        return
    d.edge(a, b, **(dict(dir="back") if down else {}), **attrs)
    target = any(isinstance(v, Value) and u.role[v].role == "target" for v in (src, dst))
    if mode == "overlay" and not target and not cut:   # none into a target, none across a cut
        d.edge(a, b, **grad, arrowsize="0.5")


# --- heat map -----------------------------------------------------------------------------------

_MAP = ["#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"]


def _heat_colors(heat: dict, u: _Unrolled, lo_hi: tuple) -> dict:
    lo, hi = lo_hi
    out = {}
    for v in u.nodes:
        vals = heat.get(u.role[v].shown)
        if vals is None or v.t is None or not 1 <= v.t <= len(vals):
            continue
        out[v] = _color(float(vals[v.t - 1]), lo, hi)
    return out


def _check_heat(heat, u: _Unrolled) -> None:
    """A dict {state: per-step values}, each a finite number >= 0 (a norm)."""
    if not isinstance(heat, dict) or not heat:
        raise RenderError(f"heat must be a dict {{state name: per-step values}} with at least "
                          f"one state, not {heat!r:.60}; e.g. "
                          "ur.diagnostics.gradient_norms(g, params, **inputs)")
    states = {r.shown for r in u.names.values() if r.role in ("state", "bstate")}
    for name, vals in heat.items():
        if name not in states:
            raise RenderError(f"heat: {u.g.name} has no state {name!r} to colour"
                              f"{suggest(name, states)}; its states are "
                              f"{', '.join(sorted(states)) or 'none'}")
        try:
            vals = [float(x) for x in vals]
        except (TypeError, ValueError):
            raise RenderError(f"heat[{name!r}] must be a sequence of numbers, one per step "
                              f"(got {type(vals).__name__})") from None
        if len(vals) != u.g.steps:
            raise RenderError(f"heat[{name!r}] has {len(vals)} values, but {u.g.name} has "
                              f"τ = {u.g.steps} steps; give one value per step t = 1.."
                              f"{u.g.steps}")
        for t, x in enumerate(vals, 1):
            if not (math.isfinite(x) and x >= 0):
                raise RenderError(f"heat[{name!r}] at step t = {t} is {x}: the colours are "
                                  "norms, finite and >= 0 (a NaN here means the backward pass "
                                  "produced one: value_and_grad(..., check_finite=True) "
                                  "finds where)")


def _checkpoints(checkpoints, u: _Unrolled) -> set:
    """Steps 1..T, each drawn with a double border."""
    T = u.steps[-1]
    if isinstance(checkpoints, (str, bytes)) or not hasattr(checkpoints, "__iter__"):
        raise RenderError(f"checkpoints must be a list of steps t in 1..{T}, not "
                          f"{type(checkpoints).__name__} {checkpoints!r:.60}")
    out = set()
    for t in checkpoints:
        out.add(integer(t, f"checkpoints: step {t!r}", 1, T, err=RenderError))
    return out


def _check_range(heat_range) -> tuple:
    """(low, high) of the log colour scale: 0 < low < high."""
    try:
        lo, hi = heat_range
    except (TypeError, ValueError):
        raise RenderError(f"heat_range must be two numbers (low, high), not "
                          f"{heat_range!r:.60}") from None
    lo = number(lo, "heat_range: low (the colour scale is logarithmic)", above=0,
                err=RenderError)
    hi = number(hi, "heat_range: high", above=lo, err=RenderError)
    return lo, hi


def _range(heat: dict) -> tuple:
    vals = [float(x) for vs in heat.values() for x in vs if float(x) > 0]
    if not vals:
        return 1e-12, 1.0
    return min(vals), max(vals)


def _color(x: float, lo: float, hi: float) -> str:
    if x <= 0:
        return _MAP[0]
    f = 0.0 if hi <= lo else (math.log10(x) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return _MAP[min(len(_MAP) - 1, max(0, int(round(f * (len(_MAP) - 1)))))]


def _legend(d, heat: dict, u: _Unrolled, lo_hi: tuple) -> None:
    """A colour bar under the inputs: low to high, with the values at each colour."""
    lo, hi = lo_hi
    names = ", ".join(heat)
    bottom = min(_row_of(u, v) for v in u.nodes)
    with d.subgraph(name="cluster_legend") as s:
        s.attr(label=f"‖∂L/∂{names}⁽ᵗ⁾‖, log scale", fontsize="12", style="rounded",
               color="#999999", labelloc="b")
        with s.subgraph() as r:                # one row, low to high, left to right
            r.attr(rank="same")
            prev = None
            for i, col in enumerate(_MAP):
                value = 10 ** (math.log10(lo) + (math.log10(hi) - math.log10(lo)) * i /
                               (len(_MAP) - 1)) if hi > lo else hi
                ident = f"legend{i}"
                r.node(ident, f"{value:.1e}", shape="box", style="filled", fillcolor=col,
                       width="0.75", height="0.3", fontsize="10", fixedsize="true",
                       fontcolor="white" if i >= len(_MAP) - 2 else "black")
                if prev:
                    r.edge(prev, ident, style="invis", minlen="0")
                prev = ident
    under = sorted((_key(u, v), u.id(v)) for v in u.nodes if _row_of(u, v) == bottom
                   and v.t is not None)
    if not under:
        d.edge("legend0", f"row{bottom}", style="invis")
        return
    mid = (len(_MAP) - 1) // 2                  # under the bottom row, centred on the steps
    d.edge(f"legend{mid}", under[(len(under) - 1) // 2][1], style="invis", weight="10")
    d.edge(f"legend{mid + 1}", under[len(under) // 2][1], style="invis", weight="10")
