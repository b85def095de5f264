"""What the user declares: a recurrent circuit (Goodfellow et al., fig. 10.2 and 10.3).

A circuit holds inputs x(t), static inputs, shared parameters, states with delay edges
(``h.prev`` is h(t-1), ``h.delayed(k)`` is h(t-k); a backward state reads h(t+k)), outputs and
per-step losses. Its body is a small expression DAG of :class:`Node` s built by writing Python
expressions with :class:`~unroll.core.Var` handles.

The circuit is also a ``networkx`` graph whose edges carry their delay
(:meth:`Circuit.to_networkx`); well-formedness is a graph question: no cycle may have zero total
delay, and no closed walk may mix forward and backward delays so that they cancel
(:class:`~unroll.errors.AlgebraicLoopError`). :meth:`Circuit.schedule` orders the body into
phases, each run over t in one direction, so that unrolling never needs a global sort.
"""
from __future__ import annotations

import numbers
import weakref
from dataclasses import dataclass, field

from .core import FLOAT, Aval, Lit, Primitive, Var, bind, dtype_kind, format_op
from .ops import copy_p, part_p
from .initializers import check_init, init_params
from .schedule import Phase, schedule_body
from .errors import (CircuitError, NoSuchVariableError, ShapeError,
                     flag, suggest)

__all__ = ["Circuit", "State", "Node", "Phase"]


class Node:
    """One vertex of the step body: a leaf (input, parameter, state read) or an operation."""
    __slots__ = ("kind", "prim", "inputs", "params", "aval", "name", "ref", "k", "id")

    def __init__(self, kind, aval, name=None, prim=None, inputs=(), params=None, ref=None, k=0,
                 id=0):
        self.kind = kind          # "input" | "static" | "param" | "state" | "delay" | "op"
        self.aval = aval          # per-example shape and dtype (batched as traced)
        self.name = name          # user-visible name, or None for anonymous intermediates
        self.prim = prim          # op nodes: the Primitive
        self.inputs = inputs      # op nodes: operand Nodes and Lits
        self.params = params or {}
        self.ref = ref            # "state"/"delay" nodes: the state's name
        self.k = k                # "delay" nodes: how many steps back (or ahead) it reads
        self.id = id              # creation order, unique within the circuit

    def __repr__(self) -> str:
        return f"<Node {self.kind} {self.name or self.id}>"


@dataclass
class ParamSpec:
    node: Node                    # the leaf
    init: object                  # initializer name, number or callable (see initializers)


@dataclass
class StateSpec:
    node: Node                    # the "current value" leaf, h(t)
    init: object                  # "zeros" | "param" | an input name | a Var of static values
    direction: str                # "forward" | "backward"
    init_name: str = ""           # name of the zero-default input / parameter holding h(0)
    show: bool = True             # drawn in diagrams (False: folded, a mere delay line)
    next: Node | None = None      # the op node that computes h(t)
    delays: dict = field(default_factory=dict)   # k -> the delay leaf reading h(t∓k)

    @property
    def max_delay(self) -> int:
        return max(self.delays, default=1)


class State(Var):
    """Handle of a state variable: ``h`` is h(t); ``h.prev``, ``h.delayed(k)``, ``h.next``."""
    __slots__ = ("spec",)

    @property
    def prev(self) -> Var:
        """h(t-1) (for a backward state: h(t+1)).

        Examples
        --------
        >>> import unroll as ur
        >>> c = ur.Circuit("c")
        >>> h = c.state("h", (2,))
        >>> h.prev
        <h.prev: B×(2,)>
        """
        return self.delayed(1)

    def delayed(self, k: int) -> Var:
        """h(t-k) (for a backward state: h(t+k)), for any k >= 1; the initial value then has
        k rows, h(1-k), ..., h(0).

        Parameters
        ----------
        k : int
            The delay, in steps.

        Returns
        -------
        Var

        Examples
        --------
        >>> import unroll as ur
        >>> c = ur.Circuit("c")
        >>> h = c.state("h", (2,))
        >>> h.next = ur.tanh(h.prev + h.delayed(2))
        >>> c.unroll(steps=2).static_inputs["h0"].shape        # two initial rows
        (2, 2)
        """
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise CircuitError(f"{self.spec.node.name}.delayed({k!r}): a delay must be an "
                               f"integer k >= 1; use {self.spec.node.name} itself for "
                               f"{self.spec.node.name}(t)")
        return self.builder._delay(self.spec, int(k))

    @property
    def next(self):
        """The expression that defines h(t); assign it once, ``h.next = expr``.

        Examples
        --------
        >>> import unroll as ur
        >>> c = ur.Circuit("c")
        >>> x, h = c.input("x", (2,)), c.state("h", (2,))
        >>> h.next = ur.tanh(h.prev + x)
        >>> h.next
        <h: B×(2,)>
        """
        n = self.spec.next
        return None if n is None else Var(self.builder, n)

    @next.setter
    def next(self, expr) -> None:
        self.builder._set_next(self.spec, expr)


# --- the circuit ------------------------------------------------------------------------------

class Circuit:
    """A recurrent circuit: declare variables, write the step body, then :meth:`unroll`.

    Examples
    --------
    >>> import unroll as ur
    >>> c = ur.Circuit("elman")
    >>> x = c.input("x", (3,))
    >>> W, U = c.param("W", (4, 4)), c.param("U", (4, 3))
    >>> h = c.state("h", (4,))
    >>> h.next = ur.tanh(W @ h.prev + U @ x)
    >>> o = c.output("o", h)
    >>> g = c.unroll(steps=2)
    >>> [repr(e) for e in g.eqns if e.outs[0].name == "h"]
    ['h[0] = h0', 'h[1] = tanh(_3[1])', 'h[2] = tanh(_3[2])']
    """

    def __init__(self, name: str = "circuit"):
        if not isinstance(name, str) or not name or not name.isprintable():
            raise CircuitError(f"a circuit's name must be a non-empty line of printable text, "
                               f"not {name!r}")
        self.name = name
        self.nodes: list[Node] = []             # every node, in creation order
        self.named: dict[str, Node] = {}        # name -> node, for c[name]
        self.inputs: dict[str, Node] = {}       # sequence inputs x(t)
        self.statics: dict[str, Node] = {}      # inputs shared by every step
        self.params: dict[str, ParamSpec] = {}
        self.states: dict[str, StateSpec] = {}
        self.outputs: dict[str, tuple] = {}     # name -> (op node, at)
        self.dropout: dict = {}                 # mask input of ur.dropout -> its shape
        self.losses: list[tuple] = []           # (op node, at)
        self.shown: set = set()                 # named values the textbook view draws
        self._version = 0                       # bumped on every change (schedule cache)
        self._deferred = weakref.WeakSet()      # graphs unrolled from it, not yet built
        self._schedule = None
        self._graphs: dict = {}                 # (version, τ, loss steps) -> (Graph, eqns)

    # --- declarations ------------------------------------------------------------------------

    def input(self, name: str, shape=(), dtype="float", per_step: bool = True) -> Var:
        """Declare a sequence input x(t) (or, with ``per_step=False``, one shared by all steps).

        Parameters
        ----------
        name : str
        shape : tuple of int
            Per-example shape, without time or batch axes.
        dtype : "float" or "int"
            "int" for integer class targets.
        per_step : bool
            False gives a static input (fig. 10.9), an array of shape (B, ...) at run time.

        Returns
        -------
        Var
            x(t), to build expressions with.

        Examples
        --------
        >>> import unroll as ur
        >>> c = ur.Circuit("c")
        >>> c.input("x", (3,)), c.input("y", (), dtype="int"), c.input("s", (4,), per_step=False)
        (<x: B×(3,)>, <y: B×() int>, <s: B×(4,)>)
        """
        self._settle()
        per_step = flag(per_step, f"input {name}: per_step")
        node = self._leaf("input" if per_step else "static", name, shape, dtype_kind(dtype))
        (self.inputs if per_step else self.statics)[name] = node
        return Var(self, node)

    def param(self, name: str, shape, init="default") -> Var:
        """Declare a parameter, shared by every step.

        Parameters
        ----------
        name : str
        shape : tuple of int
        init : str, number or callable
            "default" (U(±1/√fan_in) for matrices, zeros for vectors), "zeros", "ones",
            "normal", "uniform", "orthogonal", a number, or ``init(rng, shape) -> array``;
            used by :meth:`init_params`.

        Returns
        -------
        Var

        Examples
        --------
        >>> import unroll as ur
        >>> c = ur.Circuit("c")
        >>> W = c.param("W", (4, 4), init="orthogonal")
        >>> W.shape, c.init_params(seed=0)["W"].shape
        ((4, 4), (4, 4))
        """
        self._settle()
        check_init(name, init)
        node = self._leaf("param", name, shape, FLOAT)
        self.params[name] = ParamSpec(node, init)
        return Var(self, node)

    def state(self, name: str, shape, init="zeros", direction: str = "forward",
              init_name: str | None = None, show: bool = True) -> State:
        """Declare a state h with a delay edge: ``h.prev`` is h(t-1), ``h.next = expr``.

        Parameters
        ----------
        init : "zeros", "param", an input name, or an expression of static values
            The initial value(s) h(0), ..., h(1-k) for the longest delay k read. "zeros" can be
            overridden at run time by passing ``{name}0``; "param" creates the parameter
            ``{name}0``. With k > 1 the initial value has shape (k, *shape), its rows in time
            order: h(1-k), ..., h(0) for a forward state, h(τ+1), ..., h(τ+k) for a backward
            one (the layout ``run(..., return_state=True)`` hands back for the next chunk).
        direction : "forward" or "backward"
            A backward state reads h(t+1) and is computed from t = τ down to 1 (fig. 10.11).
        init_name : str, optional
            The name of that initial-value input or parameter instead of ``{name}0``.
        show : bool
            False folds the state out of diagrams (a mere delay line, such as the previous
            output fed back by teacher forcing: the book draws y(t-1) -> h(t) directly).

        Returns
        -------
        State
            h, which is h(t); ``h.prev`` is h(t-1) and ``h.next = ...`` defines h(t).

        Examples
        --------
        >>> import numpy as np, unroll as ur
        >>> c = ur.Circuit("running_sum")
        >>> x = c.input("x", ())
        >>> h = c.state("h", ())
        >>> h.next = h.prev + x
        >>> _ = c.output("s", h)
        >>> c.unroll(steps=3).run({}, x=np.array([1.0, 2.0, 3.0]), h0=np.array(10.0))["s"]
        array([11., 13., 16.])
        """
        self._settle()
        show = flag(show, f"state {name}: show")
        if direction not in ("forward", "backward"):
            raise CircuitError(f"state {name}: direction must be 'forward' or 'backward', "
                               f"not {direction!r}")
        if isinstance(init, Var):
            _as_var(init, self)
        elif not isinstance(init, str):
            raise CircuitError(f"state {name}: init must be 'zeros', 'param', an input name or "
                               f"an expression, not {type(init).__name__} {init!r:.60}; for "
                               "fixed values pass them at run time as "
                               f"{init_name or name + '0'}=array (init='zeros')")
        if init_name is not None and (not isinstance(init_name, str) or
                                      not init_name.isidentifier() or init_name[0] == "_"):
            raise CircuitError(f"state {name}: init_name={init_name!r} is not a valid name; "
                               "use a Python identifier (such as 'h_start')")
        node = self._leaf("state", name, shape, FLOAT, ref=name)
        spec = StateSpec(node, init, direction, init_name=init_name or f"{name}0", show=show)
        self.states[name] = spec
        h = State(self, node)
        h.spec = spec
        return h

    def output(self, name: str, expr=None, at=None) -> Var:
        """Declare an output o(t) (at every step, or only ``at``: "last" or a list of steps).

        Without ``expr``, ``name`` must be a state or a named value of the circuit already,
        which becomes an output under its own name. "loss" and "state" are the keys ``run``
        returns the loss and the final states under, so they cannot name an output.

        Parameters
        ----------
        name : str
        expr : Var, optional
        at : None, "last", "first" or list of int
            The steps it is computed at (1-based; negative from the end).

        Returns
        -------
        Var

        Examples
        --------
        >>> import numpy as np, unroll as ur
        >>> c = ur.Circuit("c")
        >>> x = c.input("x", (2,))
        >>> _ = c.output("o", 2 * x, at="last")
        >>> c.unroll(steps=3).run({}, x=np.ones((3, 2)))["o"]
        array([2., 2.])
        """
        self._settle()
        if name in ("loss", "state"):
            raise CircuitError(f"output {name!r}: run returns the {name} under that key; pick "
                               f"another name for the output")
        _check_at(at, f"output {name}")
        if expr is None:
            if name not in self.named:
                raise CircuitError(f"output {name}: there is no variable {name!r} to output"
                                   f"{suggest(name, self.named)}; give the expression too")
            node = self.named[name]
            if node.kind == "state":
                node = self.states[name].next
                if node is None:
                    raise CircuitError(f"output {name}: set {name}.next before declaring it an "
                                       "output")
            elif node.kind != "op":
                raise CircuitError(f"output {name}: {name} is a {node.kind}; outputs are "
                                   "computed values")
        else:
            node = self._own(name, expr, "output")
        self.outputs[name] = (node, at)
        self._version += 1                      # a change: cached graphs are stale
        return Var(self, node)

    def loss(self, expr, at=None, name: str | None = None) -> Var:
        """Add a per-step loss L(t) (a scalar per example); the total is L = Σ_t L(t), averaged
        over the batch.

        Parameters
        ----------
        expr : Var
            A scalar per example.
        at : None, "last", "first" or list of int
            The steps it counts at (default: every step).
        name : str, optional
            Default "L" (then "L2", ...).

        Returns
        -------
        Var

        Examples
        --------
        >>> import numpy as np, unroll as ur
        >>> c = ur.Circuit("c")
        >>> x = c.input("x", ())
        >>> _ = c.loss(x * x)
        >>> float(c.unroll(steps=2).run({}, x=np.array([1.0, 2.0]))["loss"])   # 1 + 4
        5.0
        """
        self._settle()
        _check_at(at, "loss")
        if tuple(_as_var(expr, self).shape) != ():
            raise ShapeError(f"loss {_describe(expr)} has shape {tuple(expr.shape)} per example, "
                             "but a loss must be a scalar; wrap it in ur.sum(...)")
        name = name or ("L" if not self.losses else f"L{len(self.losses) + 1}")
        node = self._own(name, expr, "loss")
        self.losses.append((node, at))
        self._version += 1
        return Var(self, node)

    def __getitem__(self, name: str) -> Var:
        """The handle of any named variable (input, parameter, state, output, named value)."""
        if not isinstance(name, str) or name not in self.named:
            raise NoSuchVariableError(f"circuit {self.name} has no variable {name!r}"
                                      f"{suggest(name, self.named) if isinstance(name, str) else ''}"
                                      f"; its variables are {', '.join(self.named) or 'none'}")
        node = self.named[name]
        if node.kind == "state":
            h = State(self, node)
            h.spec = self.states[name]
            return h
        return Var(self, node)

    def __contains__(self, name: str) -> bool:
        return name in self.named

    def __repr__(self) -> str:
        return (f"<Circuit {self.name}: inputs {list(self.inputs) + list(self.statics)}, "
                f"states {list(self.states)}, params {list(self.params)}, "
                f"outputs {list(self.outputs)}, {len(self.losses)} loss(es)>")

    def __str__(self) -> str:
        """The step equations, as the book writes them (``h(t) = tanh(W h(t-1) + ...)``),
        without unrolling."""
        return "\n".join([f"circuit {self.name}"] + ["  " + ln for ln in self.equations()])

    def equations(self) -> list:
        """One line per named value of the step body, in declaration order: states (their
        ``.next``), named values, outputs and losses, with time indices (``x(t)``,
        ``h(t-1)``; a backward state's ``h(t+1)``)."""
        lines = []
        at = {n: a for n, a in self.outputs.values()}
        at.update({n: a for n, a in self.losses})
        for n in self.nodes:
            if n.kind != "op" or n.name is None or n.prim is part_p:
                continue
            where = "" if at.get(n) is None else f"    (at {at[n]})"
            lines.append(f"{self._timed(n)} = {self._step_text(n, top=True)}{where}")
        return lines

    def _timed(self, node) -> str:
        return f"{node.name}(t)"

    def _step_text(self, node, top: bool = False) -> str:
        if isinstance(node, Lit):
            return repr(node)
        if node.kind == "delay":
            s = self.states[node.ref]
            sign = "-" if s.direction == "forward" else "+"
            return f"{node.ref}(t{sign}{node.k})"
        if node.kind in ("input", "state"):
            return f"{node.name if node.kind == 'input' else node.ref}(t)"
        if node.kind in ("static", "param"):
            return node.name
        if node.name is not None and not top:
            return f"{node.name}(t)"
        if node.prim is part_p:
            return f"{self._step_text(node.inputs[0])}[{node.params['i']}]"
        args = [self._step_text(x) for x in node.inputs]
        fmt = node.prim.fmt if isinstance(node.prim.fmt, str) else ""
        enclosed = [any(f"{a}{{{i}}}{b}" in fmt for a, b in (("(", ")"), ("[", "]"), ("(", ","),
                                                              (", ", ")"), (", ", ",")))
                    for i in range(len(args))]
        return format_op(node.prim, [a if _atomic(a) or enclosed[i] else f"({a})"
                                     for i, a in enumerate(args)], node.params)

    # --- the builder protocol (used by core.bind) --------------------------------------------

    def apply(self, prim: Primitive, inputs: tuple, params: dict, avals: tuple) -> tuple:
        if len(avals) == 1:
            return (self._add(Node("op", avals[0], prim=prim, inputs=inputs, params=params)),)
        whole = self._add(Node("op", None, prim=prim, inputs=inputs, params=params))
        whole.aval = avals
        return tuple(self._add(Node("op", a, prim=part_p, inputs=(whole,), params={"i": i}))
                     for i, a in enumerate(avals))

    def describe(self, node) -> str:
        """Source-like text of an expression, e.g. ``W @ h.prev``."""
        if isinstance(node, Lit):
            return repr(node)
        if node.kind == "delay":
            return f"{node.ref}.prev" if node.k == 1 else f"{node.ref}.delayed({node.k})"
        if node.name is not None or node.kind != "op":
            return node.name
        if node.prim is part_p:
            return f"{self.describe(node.inputs[0])}[{node.params['i']}]"
        args = [self.describe(x) for x in node.inputs]
        return format_op(node.prim, [a if _atomic(a) else f"({a})" for a in args], node.params)

    def where(self) -> str:
        return f" (in circuit {self.name})"

    def set_name(self, node: Node, name: str, show: bool = False) -> None:
        self._settle()
        if node.kind != "op":
            raise CircuitError(f"{node.name} already has a name; names go on computed values")
        self._claim(name)
        if node.name is not None:
            del self.named[node.name]
        node.name = name
        self.named[name] = node
        if show:
            self.shown.add(node)
        self._version += 1

    # --- internals -----------------------------------------------------------------------------

    def _settle(self) -> None:
        """Before any change: build the graphs unrolled from this circuit whose building was
        deferred (``Graph.deferred``) and has not happened yet, so that each is the graph of
        the circuit it was unrolled from."""
        while self._deferred:                   # (one left unbuilt by an interrupt stays)
            g = next(iter(self._deferred))
            g.eqns                              # noqa: B018  (builds it)
            self._deferred.discard(g)

    def _add(self, node: Node) -> Node:
        self._settle()
        node.id = len(self.nodes)
        self.nodes.append(node)
        self._version += 1
        return node

    def _claim(self, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise CircuitError(f"{name!r} is not a valid name: use a Python identifier")
        if name.startswith("_"):
            raise CircuitError(f"{name!r}: names starting with '_' are reserved for unnamed "
                               "values; drop the underscore")
        if name in self.named:
            raise CircuitError(f"circuit {self.name} already has a variable named {name!r}; "
                               "pick another name")

    def _leaf(self, kind, name, shape, dtype, ref=None) -> Node:
        self._claim(name)
        shape = _check_shape(name, shape)
        node = self._add(Node(kind, Aval(shape, dtype, kind != "param"), name=name, ref=ref))
        self.named[name] = node
        return node

    def _own(self, name: str, expr, role: str) -> Node:
        """An op node named ``name`` computing ``expr`` (a copy if ``expr`` is not a fresh op)."""
        v = _as_var(expr, self)
        self._claim(name)
        node = v.node
        if node.kind != "op" or node.name is not None or node.prim is part_p:
            node = bind(copy_p, v).node
        node.name = name
        self.named[name] = node
        return node

    def _delay(self, spec: StateSpec, k: int) -> Var:
        if k not in spec.delays:
            spec.delays[k] = self._add(Node("delay", spec.node.aval, ref=spec.node.name, k=k))
        return Var(self, spec.delays[k])

    def _set_next(self, spec: StateSpec, expr) -> None:
        self._settle()
        name = spec.node.name
        v = _as_var(expr, self)
        if v.shape != spec.node.aval.shape:
            raise ShapeError(f"{name}.next = {_describe(v)} has shape {v.shape}, but state "
                             f"{name} was declared with shape {spec.node.aval.shape}; make the "
                             "expression's shape match (check the parameters' shapes)")
        if spec.next is not None:
            raise CircuitError(f"{name}.next is already set; a state is defined once")
        node = v.node
        if node.kind != "op" or node.name is not None or node.prim is part_p:
            node = bind(copy_p, v).node
        node.name = name
        spec.next = node
        self._version += 1

    # --- structure ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raise a :class:`CircuitError` if the circuit cannot be unrolled."""
        for name, s in self.states.items():
            if s.next is None:
                raise CircuitError(f"state {name} is never given an update: set "
                                   f"{name}.next = <expression for {name}(t)>")
        self.schedule()

    def to_networkx(self):
        """The circuit as a ``networkx.MultiDiGraph`` over body nodes.

        Node keys are the nodes' ids; attributes ``kind``, ``name``, ``label``, ``shape``.
        Edges go operand -> user with attribute ``delay`` (0 for same-step edges, k for a
        read of h(t-k), -k for a backward state's read of h(t+k)).
        """
        import networkx as nx
        G = nx.MultiDiGraph(name=self.name)
        for n in self.nodes:
            G.add_node(n.id, kind=n.kind, name=n.name, label=self._label(n),
                       shape=n.aval.shape if isinstance(n.aval, Aval) else None, node=n)
        for n in self.nodes:
            if n.kind == "op":
                for x in n.inputs:
                    if isinstance(x, Node):
                        G.add_edge(x.id, n.id, delay=0)
            elif n.kind == "delay":
                spec = self.states[n.ref]
                G.add_edge(spec.node.id, n.id, delay=n.k if spec.direction == "forward" else -n.k)
        for s in self.states.values():
            if s.next is not None:
                G.add_edge(s.next.id, s.node.id, delay=0)
        return G

    def _label(self, n: Node) -> str:
        if n.kind == "op":
            return n.name or n.prim.name
        return self.describe(n)

    def schedule(self) -> list:
        """The body's op nodes grouped into phases, each in dependency order.

        Raises
        ------
        AlgebraicLoopError
            If some variable depends on itself at the same step.
        """
        if self._schedule is not None and self._schedule[0] == self._version:
            return self._schedule[1]
        for name, s in self.states.items():
            if s.next is None:
                raise CircuitError(f"state {name} is never given an update: set "
                                   f"{name}.next = <expression for {name}(t)>")
        phases = schedule_body(self)
        self._schedule = (self._version, phases)
        return phases

    # --- pictures ------------------------------------------------------------------------------

    def to_dot(self, detail: str = "variables", params: str = "edges", title: bool | str = False):
        """The circuit diagram as a ``graphviz.Digraph`` (see :func:`unroll.render.circuit_dot`):
        variables as circles, weights on the edges, delays through the book's black square."""
        from .render import circuit_dot
        return circuit_dot(self, detail=detail, params=params, title=title)

    def render(self, path, detail: str = "variables", params: str = "edges",
               title: bool | str = False, format: str | None = None, zoom: float = 2.0,
               dpi=None):
        """Draw the circuit diagram to ``path`` (.svg, .png, .pdf or .dot); returns the path.

        Parameters
        ----------
        path : str or Path
        detail, params, title
            As for :meth:`to_dot`.
        format : str, optional
            Instead of the file's extension.
        zoom : float
            PNG only: 2 is about 144 dpi.
        dpi : float, optional
            PNG only, instead of ``zoom`` (72 dpi is zoom 1).

        Returns
        -------
        Path

        Examples
        --------
        >>> import os, tempfile, unroll as ur
        >>> c = ur.models.elman(3, 4, 2)
        >>> path = c.render(os.path.join(tempfile.mkdtemp(), "elman.svg"))
        >>> path.read_text().startswith("<?xml")
        True
        """
        from .render import render
        return render(self.to_dot(detail=detail, params=params, title=title), path,
                      format=format, zoom=zoom, dpi=dpi)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .render import svg
        return {"image/svg+xml": svg(self.to_dot())}

    def init_params(self, seed: int = 0, dtype="float64", xp=None) -> dict:
        """Fresh parameter arrays, reproducible from ``seed``: a dict name -> array.

        Includes the initial-state parameters of states declared with ``init="param"``.

        Parameters
        ----------
        seed : int
        dtype : "float64" or "float32"
        xp : module, optional
            The array module to put them in (default NumPy; "cupy" for the GPU).

        Returns
        -------
        dict

        Examples
        --------
        >>> import unroll as ur
        >>> p = ur.models.elman(3, 4, 2).init_params(seed=0)
        >>> sorted((k, v.shape) for k, v in p.items())
        [('U', (4, 3)), ('V', (2, 4)), ('W', (4, 4)), ('b', (4,)), ('c', (2,))]
        """
        return init_params(self, seed=seed, dtype=dtype, xp=xp)

    def param_shapes(self) -> dict:
        """name -> shape of every parameter, initial-state parameters included."""
        shapes = {k: p.node.aval.shape for k, p in self.params.items()}
        for name, s in self.states.items():
            if s.init == "param":
                shapes[s.init_name] = init_shape(s)
        return shapes

    def unroll(self, steps: int, loss_steps=None):
        """Unfold the circuit over ``steps`` = τ steps into an explicit :class:`~unroll.Graph`.

        From 48 steps on, a graph whose outputs and losses sit at every step, the first or the
        last is built the first time something reads it (``g.built``): a gradient does not
        need it (its program is written from small unrollings), printing or drawing it does.

        ``loss_steps`` (optional: "last" or a list of steps) keeps the losses only at those
        steps (where the circuit has them): truncated BPTT with overlapping windows counts
        each step's loss in one window only. A dict {loss name: steps} instead places each
        loss at exactly those steps, whatever its ``at`` (a window of a longer sequence,
        whose ``at="last"`` means the sequence's last step, not the window's); outputs
        placed at a list of steps then keep those that fall in the window.

        Parameters
        ----------
        steps : int
            τ.
        loss_steps : "last", list of int or dict, optional

        Returns
        -------
        Graph

        Raises
        ------
        CircuitError
            If the circuit is ill-formed (see :meth:`check`) or τ < 1.

        Examples
        --------
        >>> import unroll as ur
        >>> g = ur.models.elman(3, 4, 2).unroll(steps=3)
        >>> g.steps, [repr(e) for e in g.eqns if e.outs[0].name == "h"][1:3]
        (3, ['h[1] = tanh(a[1])', 'h[2] = tanh(a[2])'])
        """
        from .unrolling import unroll
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
            raise CircuitError(f"unroll(steps={steps!r}): τ must be an integer >= 1")
        steps = int(steps)
        # the same circuit unrolled again the same way is the same graph, with the programs
        # it has compiled (a training loop over batches of a few lengths compiles each once)
        key = (self._version, steps, _frozen(loss_steps))
        g, eqns = self._graphs.pop(key, (None, None))
        if g is None or not _intact(g, eqns):
            g = unroll(self, steps, loss_steps=loss_steps, defer=True)   # new, or changed
        self._graphs[key] = (g, g.eqns if g.built else None)
        while len(self._graphs) > _GRAPHS_KEPT:
            del self._graphs[next(iter(self._graphs))]
        return g


_GRAPHS_KEPT = 8                                # unrolled graphs a circuit keeps for reuse


def _intact(g, eqns) -> bool:
    """Is a kept graph as it was unrolled: not built yet, or its equations the list it was
    built with (``eqns``, None if it was kept before it was built), as many as then
    (``recipe``: not changed since, by prune)?"""
    return not g.built or (eqns is None or g.eqns is eqns) and len(g.eqns) == g.recipe[2]


def _frozen(x):
    """A hashable key of ``loss_steps`` (None, "last", a list, a dict of lists)."""
    if isinstance(x, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_frozen(v) for v in x)
    return x if isinstance(x, (str, int, type(None))) else repr(x)


def init_shape(spec: StateSpec) -> tuple:
    """Shape of a state's initial value: (*shape) for delay 1, (k, *shape) for delay k > 1."""
    k = spec.max_delay
    return spec.node.aval.shape if k == 1 else (k,) + spec.node.aval.shape


# --- helpers -----------------------------------------------------------------------------------

def _check_at(at, what: str) -> None:
    """``at``: None, "last", "first" or a list of whole steps (their range is checked when
    the circuit is unrolled, against τ)."""
    if at is None or isinstance(at, str) and at in ("last", "first"):
        return
    if isinstance(at, str) or not isinstance(at, (list, tuple, range)) or not at or any(
            isinstance(t, bool) or not isinstance(t, numbers.Integral) or t == 0 for t in at):
        raise CircuitError(f"{what}: at must be None, 'last', 'first' or a non-empty list of "
                           f"whole steps (1-based, negative from the end), not {at!r}")


def _atomic(s: str) -> bool:
    """True if ``s`` needs no parentheses as an operand: no space outside brackets."""
    depth = 0
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == " " and depth == 0:
            return False
    return True


def _as_var(expr, circuit) -> Var:
    if isinstance(expr, Var):
        if expr.builder is not circuit:
            raise CircuitError(f"{expr!r} belongs to {expr.builder}, not to circuit "
                               f"{circuit.name}")
        return expr
    raise CircuitError(f"expected an expression of circuit {circuit.name}, got {expr!r}; "
                       "build it from the circuit's inputs, parameters and states")


def _describe(expr) -> str:
    return expr.builder.describe(expr.node) if isinstance(expr, Var) else repr(expr)


def _check_shape(name, shape) -> tuple:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise ShapeError(f"{name}: shape must be a tuple of sizes, got {shape!r}") from None
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
               for n in shape):
        raise ShapeError(f"{name}: shape {shape} must hold positive integers")
    return tuple(int(n) for n in shape)
