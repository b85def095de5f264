"""The unrolled graph: a flat, single-assignment list of equations over named, timed values.

Every value knows its name, its step ``t`` (``None`` for parameters and other values computed
once) and its abstract value (per-example shape, dtype kind, batched or not). Equations are in
execution order. A Graph prints like the textbook (``h[3] = tanh(a[3])``), type-checks itself,
and exports to ``networkx``. Running and differentiating it live in later stages
(:mod:`unroll.api`), reached through the methods at the bottom.
"""
from __future__ import annotations

import copy
import threading

from typing import Any

from .core import Aval, Lit, Primitive, Var, format_op
from .errors import UnrollError

__all__ = ["Value", "Eqn", "Graph", "GraphBuilder"]


class Value:
    """One array-valued variable of a Graph, e.g. ``h[3]`` or the parameter ``W``."""
    __slots__ = ("name", "t", "aval", "role")

    def __init__(self, name: str, t: int | None, aval: Aval, role: str | None = None):
        self.name = name          # base name shared by every step's copy ("h")
        self.t = t                # step 1..τ (0, -1, ... for initial states); None: untimed
        self.aval = aval          # per-example shape, dtype kind, batched
        self.role = role          # "param" | "input" | "static" | None (computed)

    def __repr__(self) -> str:
        return self.name if self.t is None else f"{self.name}[{self.t}]"

    @property
    def shape(self) -> tuple:
        return self.aval.shape


class Eqn:
    """``outs = prim(*inputs, **params)``, executed as part of step ``step`` (None: once)."""
    __slots__ = ("prim", "inputs", "params", "outs", "step")

    def __init__(self, prim: Primitive, inputs: tuple, params: dict, outs: tuple, step):
        self.prim = prim          # the registry entry
        self.inputs = inputs      # Values and Lits
        self.params = params      # static parameters of the primitive (hashable values)
        self.outs = outs          # the Values it defines (usually one)
        self.step = step          # the time step whose work this is; None: done once

    def __repr__(self) -> str:
        lhs = ", ".join(map(repr, self.outs))
        args = [repr(x) for x in self.inputs]
        rhs = format_op(self.prim, args, self.params)
        if rhs == lhs:                    # a value named by its expression, e.g. Wᵀ
            rhs = f"{self.prim.name}({', '.join(args)})"
        return f"{lhs} = {rhs}"


#: one deferred graph is built at a time (Graph.__getattr__)
_BUILDING = threading.RLock()


class Graph:
    """An explicit computational graph over τ steps (see :meth:`unroll.Circuit.unroll`)."""

    def __init__(self, name: str, steps: int):
        self.name = name
        self.steps = steps                      # τ
        self.eqns: list[Eqn] = []
        self.params: dict[str, Value] = {}      # shared parameters
        self.seq_inputs: dict[str, list] = {}   # name -> [x[1], ..., x[τ]]
        self.static_inputs: dict[str, Value] = {}
        self.zero_defaults: set[str] = set()    # static inputs that default to zeros (h0)
        self.outputs: dict[str, dict] = {}      # name -> {t: Value}
        self.output_at: dict[str, object] = {}  # name -> the circuit's `at` (None, "last", ...)
        self.states: dict[str, dict] = {}       # name -> {t: Value}, initial values included
        self.directions: dict[str, str] = {}    # state -> "forward" or "backward"
        self.delays: dict[str, int] = {}        # state -> its longest delay k (k initial rows)
        self.variables: dict = {}               # value name -> structure.Role (the picture)
        self.dropout: dict = {}                 # mask input of ur.dropout -> its shape
        self.loss: Value | None = None          # total loss (unbatched scalar)
        self.step_losses: dict[int, Value] = {}  # t -> per-example loss at step t
        self.bounds: dict[str, int] = {}        # integer input -> number of classes
        self.grads: dict[str, Any] = {}         # gradient graphs: name -> Value or {t: Value}
        self.contributions: dict[str, list] = {}  # param -> [(t, Value)]: the W(t) copies
        self.cotangents: dict = {}              # gradient graphs: forward Value -> its ∂L/∂v
        self.circuit = None                     # the Circuit it came from, if any
        self.base = None                        # the forward Graph a gradient graph extends
        self.recipe = None                      # Circuit.unroll's: (circuit version,
        #                                         loss_steps, equations), see api._steady
        self.parts: tuple = ()                  # the graphs a composed graph joins (chain)
        self._cache: dict = {}                  # compiled programs and derived graphs

    # --- built on first use ----------------------------------------------------------------

    @classmethod
    def deferred(cls, name: str, steps: int, build, **fields) -> "Graph":
        """A graph whose equations (and everything indexed by step) are built by ``build()``
        the first time anything reads them: ``Circuit.unroll`` of a long sequence, whose
        gradient program is written from small unrollings (see ``api._steady``) and so may
        never need its τ steps. ``fields`` are known without building."""
        g = cls.__new__(cls)
        g.__dict__.update(name=name, steps=steps, _cache={}, _build=build, **fields)
        return g

    @property
    def built(self) -> bool:
        """Have the equations been built (always, but for a deferred graph not yet read)?"""
        return "_build" not in self.__dict__

    def __getattr__(self, name: str):
        # only reached for what the instance lacks: a deferred graph builds itself, once
        # (one thread at a time; a build that fails or is interrupted leaves it deferred)
        if name.startswith("__") or "_build" not in self.__dict__:
            raise AttributeError(f"'Graph' object has no attribute {name!r}")
        with _BUILDING:
            build = self.__dict__.get("_build")
            if build is not None:
                full = build()
                for k, v in full.__dict__.items():
                    if k == "recipe" or k not in self.__dict__:   # what was set stays set
                        self.__dict__[k] = v
                del self.__dict__["_build"]
        if name not in self.__dict__:
            raise AttributeError(f"'Graph' object has no attribute {name!r}")
        return self.__dict__[name]

    def __getstate__(self):
        """A copy (copy.copy, deepcopy, pickle) of a deferred graph is of the built graph:
        the circuit may change after the copy is made."""
        self.eqns                               # noqa: B018  (builds a deferred graph)
        return self.__dict__

    # --- reading ---------------------------------------------------------------------------

    def inputs(self) -> list:
        """Every Value the graph reads from outside: parameters and inputs."""
        vals = list(self.params.values())
        for xs in self.seq_inputs.values():
            vals.extend(xs)
        return vals + list(self.static_inputs.values())

    def __str__(self) -> str:
        head = [f"graph {self.name} (τ = {self.steps}): {len(self.eqns)} equations"]
        if self.params:
            head.append("  params: " + ", ".join(f"{k} {v.shape}" for k, v in
                                                 sorted(self.params.items())))
        ins = [f"{k}[1..{self.steps}] {v[0].aval}" for k, v in self.seq_inputs.items()]
        ins += [f"{k} {v.aval}" + (" (default zeros)" if k in self.zero_defaults else "")
                for k, v in self.static_inputs.items()]
        if ins:
            head.append("  inputs: " + ", ".join(ins))
        lines, step = [], object()
        for e in self.eqns:
            if e.step != step:
                step = e.step
                lines.append("  # once" if step is None else f"  # t = {step}")
            lines.append(f"  {e!r}")
        tail = [f"  loss: {self.loss!r}"] if self.loss is not None else []
        if self.grads:
            tail.append("  grads: " + ", ".join(
                f"{k} = {v!r}" if isinstance(v, Value) else f"{k} = [{k}[1..{self.steps}]]"
                for k, v in self.grads.items()))
        return "\n".join(head + lines + tail)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: τ = {self.steps}, {len(self.eqns)} equations>"

    def typecheck(self) -> None:
        """Check single assignment, definition before use, and every shape rule.

        Raises
        ------
        UnrollError
            Naming the first equation that does not check.
        """
        defined = {id(v) for v in self.inputs()}
        for i, e in enumerate(self.eqns):
            for x in e.inputs:
                if isinstance(x, Value) and id(x) not in defined:
                    raise UnrollError(f"equation {i} ({e!r}) reads {x!r} before it is defined")
            want = e.prim.shape(*[x.aval for x in e.inputs], **e.params)
            want = (want,) if isinstance(want, Aval) else tuple(want)
            got = tuple(v.aval for v in e.outs)
            if want != got:
                raise UnrollError(f"equation {i} ({e!r}) records {got} but its shape rule "
                                  f"gives {want}")
            for v in e.outs:
                if id(v) in defined:
                    raise UnrollError(f"equation {i} ({e!r}) assigns {v!r} a second time")
                defined.add(id(v))

    def derive(self, **changes) -> "Graph":
        """A new Graph that shares this one's description (inputs, outputs, states, loss, ...)
        with ``changes`` applied: every field is carried over, none is listed by hand. Its
        equations are a copy of this one's; what a transformation builds afresh (the
        gradients, contributions, cotangents and caches) starts empty unless given."""
        self.eqns                               # noqa: B018  (a deferred graph: built now)
        g = copy.copy(self)
        g.eqns = list(self.eqns)
        g.grads, g.contributions, g.cotangents, g._cache = {}, {}, {}, {}
        for k, v in changes.items():
            if k not in self.__dict__:
                from .errors import ArgumentError, suggest
                fields = [f for f in self.__dict__ if not f.startswith("_")]
                raise ArgumentError(f"Graph.derive: a Graph has no field {k!r}"
                                    f"{suggest(k, fields)}; it takes ({', '.join(fields)})")
            setattr(g, k, v)
        return g

    def to_networkx(self):
        """A ``networkx.DiGraph``: one node per value (``"h[3]"``), edges operand -> result.

        Node attributes: ``name``, ``step``, ``op`` (primitive name, or the role of an input),
        ``shape``, ``dtype``, ``batched``. Edge attribute ``eqn``: index of the equation.

        Returns
        -------
        networkx.DiGraph

        Examples
        --------
        >>> import networkx as nx, unroll as ur
        >>> G = ur.models.elman(3, 4, 2).unroll(steps=3).to_networkx()
        >>> nx.has_path(G, "x[1]", "h[3]"), nx.has_path(G, "x[3]", "h[1]")
        (True, False)
        """
        import networkx as nx
        G = nx.DiGraph(name=self.name, steps=self.steps)
        for v in self.inputs():
            G.add_node(repr(v), name=v.name, step=v.t, op=v.role, shape=v.shape,
                       dtype=v.aval.dtype, batched=v.aval.batched)
        for i, e in enumerate(self.eqns):
            for v in e.outs:
                G.add_node(repr(v), name=v.name, step=v.t, op=e.prim.name, shape=v.shape,
                           dtype=v.aval.dtype, batched=v.aval.batched)
                for x in e.inputs:
                    if isinstance(x, Value):
                        G.add_edge(repr(x), repr(v), eqn=i)
        return G

    def results(self) -> list:
        """The Values a caller can ask for: outputs, states, the loss and any gradients."""
        vals = [v for d in self.outputs.values() for v in d.values()]
        vals += [v for d in self.states.values() for v in d.values()]
        for v in self.grads.values():
            vals.extend(v.values() if isinstance(v, dict) else [v])
        return vals + ([self.loss] if self.loss is not None else [])

    def prune(self, keep=None) -> "Graph":
        """Drop, in place, every equation that nothing in ``keep`` (default: :meth:`results`)
        depends on. Returns the graph."""
        self.eqns = live_eqns(self.eqns, self.results() if keep is None else keep)
        return self

    # --- running (later stages) --------------------------------------------------------------

    def run(self, params: dict, **inputs) -> dict:
        """Forward pass: every output as an array of shape (T, B, ...), and ``"loss"``.

        Parameters
        ----------
        params : dict
            name -> array, e.g. from :meth:`Circuit.init_params`.
        **inputs
            Sequence inputs (T, B, ...) or (T, ...); static inputs (B, ...) or (...).
            Options: ``return_state=True`` adds each state's last value(s);
            ``outputs=["o"]`` computes only those (no targets needed: prediction);
            ``executor="interpret"`` runs the reference interpreter.

        Returns
        -------
        dict
            See :func:`unroll.api.run`.

        Examples
        --------
        >>> import numpy as np, unroll as ur
        >>> c = ur.models.elman(3, 4, 2)
        >>> out = c.unroll(steps=5).run(c.init_params(), x=np.ones((5, 8, 3)),
        ...                             y=np.zeros((5, 8), dtype=int))
        >>> out["o"].shape, out["loss"].shape
        ((5, 8, 2), ())
        """
        from .api import run
        return run(self, params, **inputs)

    def value_and_grad(self, params: dict, *, wrt=None, check_finite: bool = False,
                       executor: str = "compiled", checkpoint=None, return_state: bool = False,
                       **inputs):
        """The loss and its gradients (BPTT); ``checkpoint=k`` recomputes instead of storing.

        Parameters
        ----------
        params : dict
        wrt, check_finite, executor, checkpoint, return_state
            See :func:`unroll.api.value_and_grad`.
        **inputs
            As for :meth:`run`.

        Returns
        -------
        loss : 0-d array
        grads : dict
            name -> array of the parameter's (or input's) shape.

        Examples
        --------
        >>> import numpy as np, unroll as ur
        >>> c = ur.models.elman(3, 4, 2)
        >>> g, p = c.unroll(steps=5), c.init_params(seed=0)
        >>> loss, grads = g.value_and_grad(p, x=np.ones((5, 3)), y=np.zeros(5, dtype=int))
        >>> {k: v.shape for k, v in grads.items()} == {k: v.shape for k, v in p.items()}
        True
        """
        from .api import value_and_grad
        return value_and_grad(self, params, wrt=wrt, check_finite=check_finite,
                              executor=executor, checkpoint=checkpoint,
                              return_state=return_state, **inputs)

    # --- pictures ------------------------------------------------------------------------------

    def to_dot(self, **options):
        """The unrolled graph as a ``graphviz.Digraph``: one column per step, inputs below,
        losses above (see :func:`unroll.render.unrolled_dot` for the options)."""
        from .render import unrolled_dot
        _options(options, unrolled_dot, "to_dot")
        return unrolled_dot(self, **options)

    def render(self, path, format: str | None = None, zoom: float = 2.0, dpi=None, **options):
        """Draw the unrolled graph to ``path`` (.svg, .png, .pdf or .dot); returns the path.

        Parameters
        ----------
        path : str or Path
        format : str, optional
            Instead of the file's extension.
        zoom : float
            PNG only: 2 is about 144 dpi.
        dpi : float, optional
            PNG only, instead of ``zoom`` (72 dpi is zoom 1).
        **options
            Those of :meth:`to_dot` (mode, params, max_steps, keep, heat, ...).

        Returns
        -------
        Path

        Examples
        --------
        >>> import os, tempfile, unroll as ur
        >>> g = ur.models.elman(3, 4, 2).unroll(steps=12)
        >>> path = g.render(os.path.join(tempfile.mkdtemp(), "g.dot"), max_steps=5, keep=2)
        >>> "⋯" in path.read_text()                      # steps 3..10 elided
        True
        """
        from .render import render, unrolled_dot
        _options(options, unrolled_dot, "render", extra=("path", "format", "zoom", "dpi"))
        return render(self.to_dot(**options), path, format=format, zoom=zoom, dpi=dpi)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .render import svg
        return {"image/svg+xml": svg(self.to_dot())}

    def explore(self, path, params: dict, **inputs):
        """Write an interactive page (one self-contained .html) that steps through this
        graph's forward pass column by column and then BPTT step by step, with every
        value, gradient and ‖∂L/∂h⁽ᵗ⁾‖ from the real numbers; see
        :func:`unroll.render.explore.explore` (drawing options such as ``truncate`` may be
        passed too).

        Examples
        --------
        >>> import os, tempfile, numpy as np, unroll as ur
        >>> g = ur.models.elman(3, 4, 2).unroll(steps=3)
        >>> p = g.explore(os.path.join(tempfile.mkdtemp(), "bptt.html"),
        ...               g.circuit.init_params(0), x=np.ones((3, 3)), y=np.array([0, 1, 1]))
        >>> "forward, t = " in p.read_text()
        True
        """
        from .render.explore import explore
        return explore(self, path, params, **inputs)

    def program(self, grad: bool = False, wrt=None, executor: str = "compiled"):
        """The compiled :class:`~unroll.compile.Program` that runs this graph (forward, or with
        ``grad=True`` forward and backward) on code target ``executor`` ("compiled", or a
        registered one such as "numba"); ``print()`` it to read the generated Python (a
        loop kernel's own source is ``program.kernels[i].source``). A program keeps the
        arrays over all steps it allocates from one call to the next, up to 256 MiB per
        thread (``program.workspace.held`` bytes; ``program.workspace.clear()`` frees them,
        as dropping the graph does)."""
        from .errors import InputError, flag
        from .api import grad_graph, program
        from .compile.target import get
        if executor == "interpret":
            raise InputError("program: the reference interpreter runs the equations, not a "
                             "program; pass executor='compiled' or a code target such as "
                             "'numba'")
        target = get(executor).name
        if not flag(grad, "program(grad=...)"):
            if wrt is not None:
                raise InputError("program: wrt chooses what the gradient program "
                                 "differentiates; pass grad=True with it")
            return program(self, _forward_items(self), "forward", target)
        gg = grad_graph(self, wrt)
        return program(gg, _grad_items(gg), "grad", target)

    def evaluate(self, params: dict, values=(), **inputs) -> dict:
        """Evaluate with the reference interpreter and return the arrays of ``values``
        (Values of this graph, e.g. per-step gradient contributions)."""
        from .api import evaluate
        return evaluate(self, params, values, **inputs)


def _options(given: dict, fn, what: str, extra=()) -> None:
    import inspect
    from .errors import RenderError, options
    known = [p for p in inspect.signature(fn).parameters if p != "g"] + list(extra)
    options(given, known, what, err=RenderError)


def expect_graph(g, what: str) -> "Graph":
    """``g`` itself if it is an unrolled Graph; else the error every entry that takes one
    raises: what it got, and how to unroll."""
    if not isinstance(g, Graph):
        from .errors import UnrollError
        raise UnrollError(f"{what} takes an unrolled Graph, not {type(g).__name__} {g!r:.60}; "
                          "unroll the circuit first: g = c.unroll(steps=...)")
    return g


def live_eqns(eqns: list, results) -> list:
    """The equations ``results`` depend on, in order (dead-code elimination)."""
    need = set(results)
    unused, add = need.isdisjoint, need.update       # (constants join `need` harmlessly)
    kept = []
    for e in reversed(eqns):
        if not unused(e.outs):
            kept.append(e)
            add(e.inputs)
    kept.reverse()
    return kept


def _forward_items(g: "Graph") -> list:
    """What a forward program returns: every output (per-step Values, stacked), the loss."""
    items = [tuple(d[t] for t in sorted(d)) for d in g.outputs.values()]
    return items + ([g.loss] if g.loss is not None else [])


def _grad_items(gg: "Graph") -> list:
    """What a gradient program returns: the loss, then every gradient (a sequence input's
    per-step gradients stacked)."""
    return [gg.loss] + [tuple(d[t] for t in sorted(d)) if isinstance(d, dict) else d
                        for d in gg.grads.values()]


class GraphBuilder:
    """Records operations bound to its Vars as equations of ``graph``.

    ``t`` and ``step`` label what is recorded; new values are named ``prefix + counter``.
    An operation whose operands are all untimed (parameters, values computed once) is recorded
    once, as work done once, however many steps ask for it.
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        self.t = None
        self.step = None
        self.prefix = "_"
        self.counter = 0
        self._once: dict = {}

    def var(self, v) -> Var | Lit:
        return v if isinstance(v, Lit) else Var(self, v)

    def fresh(self) -> str:
        self.counter += 1
        return f"{self.prefix}{self.counter}"

    def apply(self, prim: Primitive, inputs: tuple, params: dict, avals: tuple) -> tuple:
        once = all(isinstance(x, Lit) or x.t is None for x in inputs)
        if once:
            key = (prim.name, tuple(id(x) for x in inputs), tuple(sorted(params.items())))
            if key in self._once:
                return self._once[key]
        name = self._once_name(prim, inputs, params) if once else self.fresh()
        t, step = (None, None) if once else (self.t, self.step)
        if len(avals) == 1:
            outs = (Value(name, t, avals[0]),)
        else:
            outs = tuple(Value(f"{name}.{i}", t, a) for i, a in enumerate(avals))
        self.graph.eqns.append(Eqn(prim, inputs, params, outs, step))
        if once:
            self._once[key] = outs
        return outs

    def _once_name(self, prim, inputs, params) -> str:
        """Work done once is named by what it computes when that is short (``Wᵀ``)."""
        text = format_op(prim, [repr(x) for x in inputs], params)
        return text if len(text) <= 16 and " " not in text else self.fresh()

    def describe(self, v) -> str:
        return repr(v)

    def where(self) -> str:
        return f" (in graph {self.graph.name}, step {self.step})"

    def set_name(self, v, name: str, show: bool = False) -> None:
        v.name = name

    def __str__(self) -> str:
        return f"graph {self.graph.name}"
