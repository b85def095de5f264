"""The circuit diagram (Goodfellow et al., fig. 10.3 left): variables as circles, weights on the
edges, every delay drawn through the book's black square.

Roles are visible by place (inputs at the bottom, states above them, outputs, then losses, with
targets beside the outputs) and by a light fill; a static input has a double border. ``detail``
chooses the level: "variables" (the textbook view), "named" (plus every value you named, e.g. the
gates of an LSTM cell) or "ops" (every primitive operation).
"""
from __future__ import annotations

import graphviz

from ..circuit import Circuit, Node
from ..structure import Visible as _Visible
from ..errors import RenderError, _numpy_bool
from . import richtext
from .backend import FONT, Picture

__all__ = ["circuit_dot", "STYLE"]

#: node style per role: (fill, border peripheries)
STYLE = {
    "input": ("white", 1), "static": ("white", 2), "target": ("white", 1),
    "state": ("#dfe9fb", 1), "output": ("white", 1), "loss": ("#fbe3e3", 1),
    "named": ("#f4f4f4", 1), "param": ("#fff7d6", 1), "hidden": ("white", 1),
}


def circuit_dot(c: Circuit, detail: str = "variables", params: str = "edges",
                title: bool | str = False) -> graphviz.Digraph:
    """The circuit diagram of ``c`` as a ``graphviz.Digraph``.

    Parameters
    ----------
    detail : "variables", "named" or "ops"
    params : "edges" (weights label the edges, as in the book), "nodes" (each parameter a
        node of its own, with edges to where it is used) or "none" (no weights: the cell's
        structure alone, as fig. 10.16 draws it)
    title : bool or str
        Write the circuit's name (True) or this text under the picture.
    """
    if not isinstance(c, Circuit):
        raise RenderError(f"circuit_dot draws a Circuit, not {type(c).__name__} {c!r:.60}; for "
                          "an unrolled Graph use unrolled_dot(graph)")
    if detail not in ("variables", "named", "ops"):
        raise RenderError(f"detail must be 'variables', 'named' or 'ops', not {detail!r}")
    if params not in ("edges", "nodes", "none"):
        raise RenderError(f"params must be 'edges', 'nodes' or 'none', not {params!r}")
    c.check()
    d = _new(c.name, heading(title, c.name))
    v = _Visible(c, detail)
    for n in v.nodes:
        _node(d, n, v, c)
    edges = v.edges()
    readers = {}                 # (state, delay) -> who reads it: one black square for all
    for (src, dst, delay) in edges:
        if delay:
            readers.setdefault((src, delay), []).append(dst)
    squares, rows = {}, {_id(n): v.rank(n) for n in v.nodes}
    for (src, delay), dsts in readers.items():
        sq = squares[src, delay] = f"delay{len(squares) + 1}"
        mark = "" if delay == 1 else (str(delay) if delay > 0 else f"t+{-delay}")
        d.node(sq, "", shape="square", style="filled", fillcolor="black", width="0.13",
               height="0.13", fixedsize="true", **({"xlabel": mark} if mark else {}))
        if dsts == [src]:        # the book's loop: out of h, through ■, back into h
            rows[sq] = v.rank(src)
            # (compass points are flipped vertically in a bottom-to-top layout)
            d.edge(_id(src), sq, arrowhead="none", weight="100", tailport="se", headport="s")
        elif len(set(dsts)) == 1:   # beside its one reader (o -> ■ -> h, fig. 10.4)
            rows[sq] = v.rank(dsts[0])
            d.edge(_id(src), sq, arrowhead="none", constraint="false")
        else:                    # fed from below, like the inputs, to every reader
            rows[sq] = max(0, min(v.rank(n) for n in dsts) - 1)
            d.edge(_id(src), sq, arrowhead="none", constraint="false")
    linked = {tuple(sorted((v.rank(a), v.rank(b)))) for a, b, k in edges if k == 0}
    _rows(d, rows, linked)
    for (src, dst, delay), labels in edges.items():
        if params == "nodes":
            for p in sorted(labels):
                # a box as wide as its name (not the circles' fixed size), and an arrow into
                # each value it weights: a parameter is an operand like any other
                d.node(f"param_{p}", richtext.to_html(richtext.var(p, vector=_rank(c, p) > 1)),
                       shape="box", style="filled,rounded", fillcolor=STYLE["param"][0],
                       fixedsize="false", width="0", height="0.4", margin="0.08,0.04")
                d.edge(f"param_{p}", _id(dst), style="dashed", color="#8a7a3a",
                       arrowsize="0.6")
            labels = set()
        label = _weights(c, labels if params == "edges" else ())
        if delay == 0 and v.rank(src) > v.rank(dst):   # a target down into its loss:
            d.edge(_id(dst), _id(src), dir="back", **label)   # laid out upwards, drawn down
        elif delay == 0:
            d.edge(_id(src), _id(dst), **label)
        elif readers[src, delay] == [src]:
            # the loop's way back: an edge outside the ranking, whose label Graphviz would
            # not keep clear of the others; an xlabel is placed clear of them after layout
            d.edge(squares[src, delay], _id(dst), constraint="false", tailport="n",
                   headport="e", **{"xlabel" if k == "label" else k: v
                                    for k, v in label.items()})
        elif rows[squares[src, delay]] == v.rank(dst):
            d.edge(squares[src, delay], _id(dst), constraint="false", **label)
        else:
            d.edge(squares[src, delay], _id(dst), **label)
    return d


def _rows(d, rank_of: dict, linked: set) -> None:
    """Put the nodes of each row side by side, and the rows in order: rows that no drawn edge
    joins get an invisible one (weight 0: it orders the rows without pulling nodes sideways;
    beside a real edge it would bend it)."""
    rows = {}
    for n, r in rank_of.items():
        rows.setdefault(r, []).append(n)
    prev = None
    for r in sorted(rows):
        with d.subgraph() as s:
            s.attr(rank="same")
            for i in rows[r]:
                s.node(i)
        if prev is not None and (prev, r) not in linked:
            d.edge(rows[prev][0], rows[r][0], style="invis", weight="0")
        prev = r


def heading(title, name: str) -> str | None:
    """The text a picture's ``title=`` asks for: None or False (none), True (the name of what
    is drawn) or a str of its own."""
    if title is None or isinstance(title, str):
        return title or None
    if isinstance(title, bool) or _numpy_bool(title):
        return name if title else None
    raise RenderError(f"title must be True (the name, {name!r}), False or a str, not "
                      f"{type(title).__name__} {title!r:.60}")


def _new(name: str, title: str | None) -> graphviz.Digraph:
    d = Picture(name=graphviz.escape(f"circuit_{name}"))
    d.attr(rankdir="BT", nodesep="0.45", ranksep="0.42", fontname=FONT, newrank="true")
    if title:
        d.attr(label=graphviz.escape(title), labelloc="b", fontsize="13")   # text, not HTML
    d.attr("node", shape="circle", fontname=FONT, fontsize="15", width="0.5", height="0.5",
           fixedsize="true", penwidth="1.2", style="filled")
    d.attr("edge", fontname=FONT, fontsize="13", arrowsize="0.7", penwidth="1.1")
    return d


def _rank(c: Circuit, p: str) -> int:
    return len(c.params[p].node.aval.shape) if p in c.params else 2


def _weights(c: Circuit, labels) -> dict:
    if not labels:
        return {}
    return {"label": richtext.to_html(richtext.names(labels, lambda p: _rank(c, p) > 1))}


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
    head = fmt.split("(")[0] if isinstance(fmt, str) else ""
    return head if head and "{" not in head else n.prim.name
