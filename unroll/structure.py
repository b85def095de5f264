"""The structure of a circuit as the textbook draws it: which values are variables (inputs,
targets, states, outputs, losses, values shown by name), the row each sits in, and the edges
between them with the weights and delays they carry.

Pure graph algorithms over a :class:`~unroll.Circuit`. Unrolling records their result on the
Graph (:func:`variables`), so a picture of an unrolled graph never reads the circuit back;
the circuit diagram uses :class:`Visible` directly, at any level of detail.
"""
from __future__ import annotations

from typing import NamedTuple

from .circuit import Circuit, Node
from .ops import part_p

__all__ = ["Visible", "Role", "variables"]


class Role(NamedTuple):
    """How one variable of a graph is drawn."""
    role: str           # input, static, target, state, bstate, hidden, output, loss
    shown: str          # the name drawn (a state's name for the value of its .next)
    row: int            # from the bottom, as in the circuit diagram; a decoder above


def variables(c: Circuit) -> dict:
    """{value name in the unrolled graph: Role} for every variable of ``c``'s textbook
    picture (memoised per version of the circuit)."""
    memo = c.__dict__.get("_variables")
    if memo is not None and memo[0] == c._version:
        return memo[1]
    v = Visible(c, "variables")
    out = {}
    for n, role in v.roles.items():
        row = v.rank(n)
        if n.kind in ("input", "static"):
            out[n.name] = Role(role, n.name, row)
            continue
        name = v.label(n)
        if role == "state" and c.states[name].direction == "backward":
            role = "bstate"
        out[name if role in ("state", "bstate") else n.name] = Role(role, name, row)
    c._variables = (c._version, out)
    return out


class Visible:
    """Which nodes of the circuit are drawn, their roles, and the edges between them."""

    def __init__(self, c: Circuit, detail: str):
        self.c, self.detail = c, detail
        self.state_of = {s.next: name for name, s in c.states.items()}
        self.shown_states = {name for name, s in c.states.items() if s.show}
        self.loss_nodes = {n for n, _ in c.losses}
        self.output_nodes = {n for n, _ in c.outputs.values()}
        targets = self._targets()
        self.roles = {}
        for n in c.nodes:
            r = self._role(n, targets)
            if r is not None:
                self.roles[n] = r
        self.nodes = [n for n in c.nodes if n in self.roles]
        self._ranks = None

    def _targets(self) -> set:
        """Inputs a loss reads directly, not through the model (the y of the book), whatever
        else reads them later (teacher forcing feeds y(t-1) back)."""
        feeds = {}
        for n in self.c.nodes:
            if n.kind == "op":
                for x in n.inputs:
                    if isinstance(x, Node):
                        feeds.setdefault(x, []).append(n)
        model = set(self.state_of) | self.output_nodes | self.c.shown
        out = set()
        for n in list(self.c.inputs.values()) + list(self.c.statics.values()):
            todo, seen = list(feeds.get(n, [])), set()
            while todo:
                m = todo.pop()
                if m in seen:
                    continue
                seen.add(m)
                if m in self.loss_nodes:
                    out.add(n)
                    break
                if m not in model:
                    todo += feeds.get(m, [])
        return out

    def _role(self, n: Node, targets: set):
        if n.kind in ("input", "static"):
            return "target" if n in targets else ("input" if n.kind == "input" else "static")
        if n.kind != "op" or n.prim is part_p and n.name is None:
            return None
        if n in self.state_of:
            return "state" if self.state_of[n] in self.shown_states else None
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
        """Rows from the bottom, by what each value is computed from within a step: inputs,
        then (for an LSTM cell) the gates, the cell state, the hidden state; outputs above
        the states; backward states above forward ones (fig. 10.11); targets on top."""
        if self._ranks is None:
            self._ranks = self._layers()
        return self._ranks[n]

    def _layers(self) -> dict:
        preds = {n: set() for n in self.nodes}
        low: dict = {}
        for (src, dst, delay) in self.edges():
            if delay == 0 and src is not dst:
                preds[dst].add(src)
            elif src is not dst:                 # fed by a delay square, drawn below it
                low[dst] = 1
        ranks: dict = {}

        def depth(n):
            """The row of ``n``: one above its highest predecessor (iteratively: a step
            body may be deeper than Python's recursion limit)."""
            todo = [n]
            while todo:
                m = todo[-1]
                if m in ranks:
                    todo.pop()
                    continue
                below = [p for p in preds[m] if self.roles[p] != "target"]
                waiting = [p for p in below if p not in ranks]
                if waiting:
                    todo.extend(waiting)
                    continue
                ranks[m] = max([low.get(m, 0)] + [ranks[p] + 1 for p in below])
                todo.pop()
            return ranks[n]
        for _ in range(2):
            ranks = {}
            for n in self.nodes:
                depth(n)
            forward = {ranks[n] for n in self.nodes if self._direction(n) == "forward"}
            for n in self.nodes:                 # a backward chain in a row above
                if self._direction(n) == "backward" and ranks[n] in forward:
                    low[n] = max(forward) + 1
        top = max((r for n, r in ranks.items() if self.roles[n] != "target"), default=0)
        for n in self.nodes:
            if self.roles[n] == "target":
                ranks[n] = top + 1
        return ranks

    def _direction(self, n: Node):
        if self.roles[n] != "state":
            return None
        return self.c.states[self.state_of[n]].direction

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

        def frame(m: Node, labels: frozenset, delay: int, through: frozenset):
            params = {x.name for x in m.inputs if isinstance(x, Node) and x.kind == "param"}
            lab = labels | (params if m.prim.weights else set())
            return iter(m.inputs), lab, delay, through

        # depth first, operands in order, with a stack of frames (a step body may be deeper
        # than Python's recursion limit)
        stack = [frame(n, frozenset(), 0, frozenset())]
        while stack:
            inputs, lab, delay, through = stack[-1]
            x = next(inputs, None)
            if x is None:
                stack.pop()
                continue
            if not isinstance(x, Node) or x.kind == "param":
                continue
            if x.kind in ("delay", "state"):
                s = self.c.states[x.ref]
                k = 0 if x.kind == "state" else (x.k if s.direction == "forward" else -x.k)
                if s.show:
                    found.append((s.next, delay + k, lab))
                elif x.ref not in through:           # a folded delay line: look through it
                    stack.append(frame(s.next, lab, delay + k, through | {x.ref}))  # (once:
            elif x in self.roles:                                            # it may read
                found.append((x, delay, lab))                                # itself)
            elif x.kind == "op":
                stack.append(frame(x, lab, delay, through))
        return found
