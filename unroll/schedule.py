"""Scheduling a circuit's step body: pure graph algorithms over its nodes.

Every cycle of the circuit must carry a non-zero total delay: a same-step cycle is an
*algebraic loop*, refused with the cycle named. The body's operations are then grouped into
phases, each run over t in one direction (forward states first, or backward ones), in
dependency order; a strongly connected group whose delays point both ways in time cannot
be run at all. Every walk is iterative: a step body may be deeper than Python's recursion
limit.
"""
from __future__ import annotations

from dataclasses import dataclass

from .core import Lit
from .errors import AlgebraicLoopError

__all__ = ["Phase", "schedule_body"]


@dataclass
class Phase:
    """Body nodes run together over t in one direction (+1 forward, -1 backward)."""
    direction: int
    nodes: list


def _dependencies(c):
    """Edges (u, v, delay) between op nodes, state reads resolved to the states' update nodes."""
    edges = []
    for n in c.nodes:
        if n.kind != "op":
            continue
        for x in n.inputs:
            if isinstance(x, Lit):
                continue
            if x.kind == "op":
                edges.append((x, n, 0))
            elif x.kind == "state":
                edges.append((c.states[x.ref].next, n, 0))
            elif x.kind == "delay":
                s = c.states[x.ref]
                edges.append((s.next, n, x.k if s.direction == "forward" else -x.k))
    return edges


def schedule_body(c) -> list:
    """The op nodes of circuit ``c``'s step body grouped into :class:`Phase` s, each in
    dependency order (see :meth:`unroll.Circuit.schedule`)."""
    ops = [n for n in c.nodes if n.kind == "op"]
    edges = _dependencies(c)
    zero = {n: {} for n in ops}                   # same-step successors, in insertion order
    for u, v, d in edges:
        if d == 0:
            zero[u][v] = None
    cycle = _find_cycle(zero)
    if cycle:
        raise AlgebraicLoopError(_same_step_message(c, cycle))
    full = {n: {} for n in ops}                   # successor -> delays of the parallel edges
    preds = {n: [] for n in ops}
    for u, v, d in edges:
        full[u].setdefault(v, []).append(d)
        preds[v].append((u, d))
    comps = list(_strongly_connected(full))
    comp_of = {v: i for i, members in enumerate(comps) for v in members}
    cond = {i: {} for i in range(len(comps))}
    for u, succ in full.items():
        for v in succ:
            if comp_of[u] != comp_of[v]:
                cond[comp_of[u]][comp_of[v]] = None
    order = {n: i for i, n in enumerate(_topological(zero))}
    phases: list[dict] = []
    phase_of = {}
    for s in _topological(cond):
        members = comps[s]
        direction = _scc_direction(c, members, full)
        ins = [(phase_of[u], d) for v in members for u, d in preds[v] if u not in members]
        lo = max((p for p, _ in ins), default=0)
        q = lo
        while q < len(phases):
            signs = {phases[q]["sign"], direction} | {(d > 0) - (d < 0) for p, d in ins if p == q}
            signs.discard(0)
            if len(signs) <= 1:
                phases[q]["sign"] = signs.pop() if signs else 0
                break
            q += 1
        if q == len(phases):
            phases.append({"sign": direction, "nodes": []})
        phases[q]["nodes"].extend(members)
        for v in members:
            phase_of[v] = q
    return [Phase(p["sign"] or 1, sorted(p["nodes"], key=order.__getitem__)) for p in phases]


# The few graph algorithms scheduling needs, on {node: {successor: ...}} dicts (a circuit body
# has tens of nodes; networkx's dispatch costs more than the work). Orders follow networkx's.

def _find_cycle(succ: dict) -> list:
    """The nodes of one directed cycle, in order ([] if there is none): depth-first search."""
    done = set()
    for root in succ:
        if root in done:
            continue
        path, on_path, todo = [root], {root}, [iter(succ[root])]
        while todo:
            for v in todo[-1]:
                if v in on_path:
                    return path[path.index(v):]
                if v not in done:
                    path.append(v)
                    on_path.add(v)
                    todo.append(iter(succ[v]))
                    break
            else:
                todo.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
    return []


def _strongly_connected(succ: dict):
    """Strongly connected components (sets), iteratively, in networkx's order."""
    preorder, lowlink, found, stack, i = {}, {}, set(), [], 0
    nbrs = {v: iter(succ[v]) for v in succ}
    for source in succ:
        if source in found:
            continue
        queue = [source]
        while queue:
            v = queue[-1]
            if v not in preorder:
                i += 1
                preorder[v] = i
            done = True
            for w in nbrs[v]:
                if w not in preorder:
                    queue.append(w)
                    done = False
                    break
            if not done:
                continue
            lowlink[v] = preorder[v]
            for w in succ[v]:
                if w not in found:
                    lowlink[v] = min(lowlink[v], lowlink[w] if preorder[w] > preorder[v]
                                     else preorder[w])
            queue.pop()
            if lowlink[v] == preorder[v]:
                comp = {v}
                while stack and preorder[stack[-1]] > preorder[v]:
                    comp.add(stack.pop())
                found |= comp
                yield comp
            else:
                stack.append(v)


def _topological(succ: dict) -> list:
    """Nodes in dependency order, generation by generation (Kahn), as networkx orders them."""
    indeg = dict.fromkeys(succ, 0)
    for u in succ:
        for v in succ[u]:
            indeg[v] += 1
    gen, out = [u for u in succ if indeg[u] == 0], []
    while gen:
        out += gen
        nxt = []
        for u in gen:
            for v in succ[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    nxt.append(v)
        gen = nxt
    return out


def _negative_cycle(nodes, weight: dict) -> bool:
    """Does some cycle have negative total weight? Bellman-Ford from a virtual source."""
    dist = dict.fromkeys(nodes, 0)
    for _ in range(len(dist)):
        changed = False
        for (u, v), w in weight.items():
            if dist[u] + w < dist[v]:
                dist[v] = dist[u] + w
                changed = True
        if not changed:
            return False
    return True


def _scc_direction(c, members: set, full: dict) -> int:
    """+1 if every cycle of this strongly connected piece runs forward in time, -1 if every
    one runs backward, 0 if it has no cycle; raises if forward and backward delays can cancel."""
    inner = [(u, v, d) for u in members for v, ds in full[u].items() if v in members
             for d in ds]
    if not inner:
        return 0
    n = len(members) + 1
    fw, bw = {}, {}                           # parallel edges: keep the tightest of each kind
    for u, v, d in inner:
        fw[u, v] = min(fw.get((u, v), n * d - 1), n * d - 1)
        bw[u, v] = min(bw.get((u, v), -n * d - 1), -n * d - 1)
    has_nonpositive = _negative_cycle(members, fw)   # a cycle with Σ delay <= 0
    has_nonnegative = _negative_cycle(members, bw)   # a cycle with Σ delay >= 0
    if has_nonpositive and has_nonnegative:
        states = sorted({x.ref for v in members for x in v.inputs
                         if not isinstance(x, Lit) and x.kind == "delay"})
        raise AlgebraicLoopError(
            f"the states {', '.join(states)} read each other forward and backward in time, so "
            "their delays cancel around a loop and some value would depend on itself at the "
            "same step; a backward state must not (even indirectly) read a forward state that "
            "reads it back — feed both into a separate output instead (fig. 10.11)")
    return -1 if has_nonpositive else 1


def _same_step_message(c, cycle: list) -> str:
    """'h(t) depends on itself at the same step via tanh -> add; read h.prev instead'."""
    roots = {s.next: name for name, s in c.states.items()}
    start = next((i for i, n in enumerate(cycle) if n in roots), 0)
    cycle = cycle[start:] + cycle[:start]
    name = roots.get(cycle[0])
    path = " -> ".join(n.prim.name for n in cycle[1:] + cycle[:1])
    if name is None:
        return (f"algebraic loop: {path} forms a cycle with no delay; every cycle must pass "
                "through a state's delay (h.prev)")
    return (f"algebraic loop: {name}(t) depends on itself at the same step via {path}; "
            f"read {name}.prev ({name}(t-1)) instead of {name} inside {name}.next")
