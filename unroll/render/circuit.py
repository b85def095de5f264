"""The circuit diagram (Goodfellow et al., fig. 10.3 left): variables as circles, weights on the
edges, every delay drawn through the book's black square.

Roles are visible by place (inputs at the bottom, states above them, outputs, then losses, with
targets beside the outputs) and by a light fill; a static input has a double border. ``detail``
chooses the level: "variables" (the textbook view), "named" (plus every value you named, e.g. the
gates of an LSTM cell) or "ops" (every primitive operation).
"""
from __future__ import annotations

import graphviz

from ..circuit import PART, Circuit, Node
from . import richtext
from .backend import FONT

__all__ = ["circuit_dot", "STYLE"]

#: node style per role: (fill, border peripheries)
STYLE = {
    "input": ("white", 1), "static": ("white", 2), "target": ("white", 1),
    "state": ("#dfe9fb", 1), "output": ("white", 1), "loss": ("#fbe3e3", 1),
    "named": ("#f4f4f4", 1), "param": ("#fff7d6", 1), "hidden": ("white", 1),
}


def circuit_dot(c: Circuit, detail: str = "variables", params: str = "edges",
                title: bool = False) -> graphviz.Digraph:
    """The circuit diagram of ``c`` as a ``graphviz.Digraph``.

    Parameters
    ----------
    detail : "variables", "named" or "ops"
    params : "edges" (weights label the edges, as in the book) or "nodes" (each parameter a
        node of its own, with edges to where it is used)
    title : bool
        Write the circuit's name under the picture.
    """
    if detail not in ("variables", "named", "ops"):
        raise ValueError(f"detail must be 'variables', 'named' or 'ops', not {detail!r}")
    if params not in ("edges", "nodes"):
        raise ValueError(f"params must be 'edges' or 'nodes', not {params!r}")
    c.check()
    d = _new(c.name, title)
    v = _Visible(c, detail)
    for n in v.nodes:
        _node(d, n, v, c)
    _rows(d, {n: v.rank(n) for n in v.nodes})
    squares = 0
    for (src, dst, delay), labels in v.edges().items():
        if params == "nodes":
            for p in sorted(labels):
                d.node(f"param_{p}", richtext.to_html(richtext.var(p, vector=_rank(c, p) > 1)),
                       shape="box", style="filled", fillcolor=STYLE["param"][0])
                d.edge(f"param_{p}", _id(dst), style="dotted", arrowhead="none")
            labels = set()
        label = _weights(c, labels)
        if delay == 0:
            d.edge(_id(src), _id(dst), **label)
            continue
        squares += 1
        sq = f"delay{squares}"
        mark = "" if delay == 1 else (str(delay) if delay > 0 else f"t+{-delay}")
        d.node(sq, "", shape="square", style="filled", fillcolor="black", width="0.13",
               height="0.13", fixedsize="true", **({"xlabel": mark} if mark else {}))
        with d.subgraph() as s:
            s.attr(rank="same")
            s.node(_id(src))
            s.node(sq)
        if src is dst:                     # the book's loop: out of h, through ■, back into h
            # (compass points are flipped vertically in a bottom-to-top layout)
            d.edge(_id(src), sq, arrowhead="none", weight="100", tailport="se", headport="s")
            d.edge(sq, _id(dst), constraint="false", tailport="n", headport="ne", **label)
        else:
            d.edge(_id(src), sq, arrowhead="none", constraint="false")
            d.edge(sq, _id(dst), constraint="false" if v.rank(src) == v.rank(dst) else "true",
                   **label)
    return d


def _rows(d, rank_of: dict) -> None:
    """Put the nodes of each row side by side, and the rows in order (an invisible ladder)."""
    rows = {}
    for n, r in rank_of.items():
        rows.setdefault(r, []).append(_id(n))
    prev = None
    for r in sorted(rows):
        with d.subgraph() as s:
            s.attr(rank="same")
            s.node(f"row{r}", style="invis", width="0", height="0", label="")
            for i in rows[r]:
                s.node(i)
        if prev is not None:
            d.edge(prev, f"row{r}", style="invis")
        prev = f"row{r}"


def _new(name: str, title: bool) -> graphviz.Digraph:
    d = graphviz.Digraph(name=f"circuit_{name}")
    d.attr(rankdir="BT", nodesep="0.45", ranksep="0.42", fontname=FONT, newrank="true")
    if title:
        d.attr(label=name, labelloc="b", fontsize="13")
    d.attr("node", shape="circle", fontname=FONT, fontsize="15", width="0.5", height="0.5",
           fixedsize="true", penwidth="1.2", style="filled")
    d.attr("edge", fontname=FONT, fontsize="13", arrowsize="0.7", penwidth="1.1")
    return d


def _rank(c: Circuit, p: str) -> int:
    return len(c.params[p].node.aval.shape) if p in c.params else 2


def _weights(c: Circuit, labels) -> dict:
    if not labels:
        return {}
    runs = []
    for i, p in enumerate(sorted(labels)):
        if i:
            runs.append(richtext.Run(", "))
        runs += list(richtext.var(p, vector=_rank(c, p) > 1))
    return {"label": richtext.to_html(runs)}


def _id(n: Node) -> str:
    return f"n{n.id}"


def _node(d, n: Node, v: "_Visible", c: Circuit) -> None:
    role = v.role(n)
    fill, periph = STYLE[role]
    if role == "named" and v.detail == "ops" and n.name is None:
        text = n.prim.name if not isinstance(n.prim.fmt, str) or "{" not in n.prim.fmt else \
            _op_symbol(n)
        d.node(_id(n), text, shape="box", width="0.3", height="0.25", fixedsize="false",
               fontsize="11", fillcolor=fill, style="filled,rounded")
        return
    name = v.label(n)
    runs = richtext.var(name, vector=role != "loss")      # the book: bold vectors, italic L
    d.node(_id(n), richtext.to_html(runs), fillcolor=fill, peripheries=str(periph),
           **({"width": "0.42", "height": "0.42"} if role == "named" else {}))


def _op_symbol(n: Node) -> str:
    """A short symbol for an operation node: '+', '×', 'tanh', ... from its print format."""
    fmt = n.prim.fmt
    for sym, show in ((" + ", "+"), (" - ", "−"), (" * ", "×"), (" / ", "÷"), (" @ ", "·")):
        if sym in fmt:
            return show
    return fmt.split("(")[0] or n.prim.name


class _Visible:
    """Which nodes of the circuit are drawn, their roles, and the edges between them."""

    def __init__(self, c: Circuit, detail: str):
        self.c, self.detail = c, detail
        self.state_of = {s.next: name for name, s in c.states.items()}
        self.loss_nodes = {n for n, _ in c.losses}
        self.output_nodes = {n for n, _ in c.outputs.values()}
        targets = self._targets()
        self.roles = {}
        for n in c.nodes:
            r = self._role(n, targets)
            if r is not None:
                self.roles[n] = r
        self.nodes = [n for n in c.nodes if n in self.roles]

    def _targets(self) -> set:
        """Inputs that only losses read (the y of the book)."""
        feeds = {}
        for n in self.c.nodes:
            if n.kind == "op":
                for x in n.inputs:
                    if isinstance(x, Node):
                        feeds.setdefault(x, []).append(n)
        out = set()
        for name, n in {**self.c.inputs, **self.c.statics}.items():
            todo, seen, ok = list(feeds.get(n, [])), set(), True
            while todo and ok:
                m = todo.pop()
                if m in seen:
                    continue
                seen.add(m)
                if m in self.loss_nodes:
                    continue
                if m in self.state_of or m in self.output_nodes:
                    ok = False
                todo += feeds.get(m, [])
            if ok and seen:
                out.add(n)
        return out

    def _role(self, n: Node, targets: set):
        if n.kind in ("input", "static"):
            return "target" if n in targets else ("input" if n.kind == "input" else "static")
        if n.kind != "op" or n.prim is PART and n.name is None:
            return None
        if n in self.state_of:
            return "state"
        if n in self.loss_nodes:
            return "loss"
        if n in self.output_nodes:
            return "output"
        if n in self.c.shown and n.name is not None:
            return "hidden"
        if self.detail == "ops" or (self.detail == "named" and n.name is not None):
            return "named"
        return None

    def role(self, n: Node) -> str:
        return self.roles[n]

    def label(self, n: Node) -> str:
        if n in self.state_of:
            return self.state_of[n]
        return n.name or n.prim.name

    def rank(self, n: Node) -> int:
        """Rows from the bottom: inputs, hidden values, forward states, backward states (above
        them, as in fig. 10.11), outputs and targets, losses."""
        role = self.roles[n]
        if role == "state" and self.c.states[self.state_of[n]].direction == "backward":
            return 3
        order = {"input": 0, "static": 0, "named": 1, "hidden": 1, "state": 2, "output": 4,
                 "target": 4, "loss": 5}
        if role == "target" and not self.output_nodes:
            return 3
        return order[role]

    def edges(self) -> dict:
        """{(source node, node, delay): set of weight names} between drawn nodes."""
        out = {}
        for n in self.nodes:
            if n.kind != "op":
                continue
            for src, delay, labels in self._sources(n):
                out.setdefault((src, n, delay), set()).update(labels)
        return out

    def _sources(self, n: Node):
        """The drawn nodes n reads, through hidden operations: (node, delay, weights)."""
        found = []

        def walk(m: Node, labels: frozenset):
            weights = m.prim.weights
            params = {x.name for x in m.inputs if isinstance(x, Node) and x.kind == "param"}
            for x in m.inputs:
                if not isinstance(x, Node) or x.kind == "param":
                    continue
                lab = labels | (params if weights else set())
                if x.kind == "delay":
                    s = self.c.states[x.ref]
                    k = x.k if s.direction == "forward" else -x.k
                    found.append((s.next, k, lab))
                elif x.kind == "state":
                    found.append((self.c.states[x.ref].next, 0, lab))
                elif x in self.roles:
                    found.append((x, 0, lab))
                elif x.kind == "op":
                    walk(x, lab)
        walk(n, frozenset())
        return found
