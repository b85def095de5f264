"""Random circuits over every feature the API offers, each with its independent reference.

:func:`random_circuits` draws a :class:`~unroll.testing.spec.Spec` and declares the same circuit
through the public API (``Circuit.input/param/state/output/loss``, ``h.delayed(k)``, and
primitives applied with :func:`unroll.core.bind`). What it draws:

- states of per-example rank 0–2 running forward or backward in time, reading themselves and
  each other at delays 1–3 (longer than τ too) and at the same step, across directions, with
  initial values of every kind: zeros (an overridable ``h0``), a parameter, a static input,
  an expression of parameters and static inputs;
- sequence and static inputs, float and integer (class indices);
- inside each step, primitives drawn from the registry :data:`unroll.core.PRIMITIVES` on
  operands from their own test domains, so a primitive registered later joins by itself;
  operands come from the step's values through small adapters (linear maps, reshapes, a
  bounded range for ``log`` or a division), and mix per-example ranks by broadcasting;
- outputs and several losses (sum of squares, MSE against a float target, cross-entropy
  against integer classes), each at every step, at "last", or at a list of steps.

Each draw is a :class:`CircuitCase`: the circuit, τ, the Spec, and ``case.reference(...)``,
the plain NumPy evaluation of :mod:`unroll.testing.reference`.
"""
from __future__ import annotations

import numbers
import math
import numpy as np
from hypothesis import strategies as st

import unroll as ur
from ..core import PRIMITIVES, bind
from . import reference as _ref
from .spec import Expr, Spec, StatePlan

__all__ = ["random_circuits", "CircuitCase", "drawable_primitives"]

STATE_NAMES = ("h", "g", "f", "e")


def drawable_primitives() -> list:
    """Registry entries the generator can place in a step: a test domain and an operand."""
    return sorted(n for n, p in PRIMITIVES.items() if p.domain is not None and p.nargs != 0)


class CircuitCase:
    """A drawn circuit: the Circuit, τ, the Spec it was declared from, what it uses."""

    def __init__(self, circuit, steps: int, spec: Spec, features: set):
        self.circuit = circuit          # the Circuit, declared through the public API
        self.steps = steps              # τ
        self.spec = spec                # what it was declared from (the reference reads it)
        self.features = features        # what it uses: "backward", "prim:log", ...

    def reference(self, params: dict, inputs: dict, **options) -> "_ref.Result":
        """The independent NumPy evaluation (see :func:`unroll.testing.reference.evaluate`);
        ``inputs`` with a batch axis, (T, B, ...)."""
        return _ref.evaluate(self.spec, params, inputs, **options)

    @property
    def directions(self) -> set:
        return {s.direction for s in self.spec.states}

    @property
    def carried(self) -> bool:
        """Can each state be handed from one chunk to the next (through an input)?"""
        return all(s.init in ("zeros", "input") for s in self.spec.states)

    def init_input(self, name: str) -> str:
        """The input that holds state ``name``'s initial value (``h0`` or a static input)."""
        return self.spec.state(name).init_name

    def __repr__(self) -> str:
        lines = [f"CircuitCase(τ = {self.steps}, features: {', '.join(sorted(self.features))})"]
        for s in self.spec.states:
            lines.append(f"  state {s.name}{s.shape} {s.direction}, init {s.init}, k = {s.k}: "
                         f"{self.circuit.describe(self.circuit.states[s.name].next)}")
        for name, (_, at) in self.spec.outputs.items():
            lines.append(f"  output {name} at {at!r}")
        for name, _, at in self.spec.losses:
            lines.append(f"  loss {name} at {at!r}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:       # Hypothesis prints falsifying examples
        p.text(repr(self))


class _Gen:
    """Draws a Spec and declares it as a Circuit, expression by expression."""

    def __init__(self, draw, steps: int, max_ops: int, prims: list):
        self.draw, self.prims, self.max_ops = draw, prims, max_ops
        self.composites = False
        self.c = ur.Circuit("random")
        self.spec = Spec(steps)
        self.var: dict = {}                    # Expr -> its Var in the circuit
        self.n = 0
        self.features: set = set()
        self.unbatched_pool: list = []         # values without a batch axis an op may read

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def bool(self) -> bool:
        return self.draw(st.booleans())

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options):
        return self.draw(st.sampled_from(list(options)))

    def shape(self, lo: int = 0, hi: int = 2) -> tuple:
        return tuple(self.int(1, 3) for _ in range(self.int(lo, hi)))

    # --- leaves and operations -------------------------------------------------------------------

    def leaf(self, op: str, var, name: str = "", k: int = 0) -> Expr:
        e = Expr(op, shape=tuple(var.shape), batched=var.batched, dtype=var.dtype, name=name,
                 k=k)
        self.var[e] = var
        return e

    def param(self, shape: tuple) -> Expr:
        name = self.fresh("P")
        return self.leaf("param", self.c.param(name, shape, init="uniform"), name)

    def const(self, value) -> Expr:
        a = np.asarray(value)
        e = Expr("const", shape=a.shape, batched=False,
                 dtype="int" if a.dtype.kind in "iu" else "float", value=value)
        self.var[e] = value
        return e

    def apply(self, op: str, args: list, **params):
        """``op`` applied to Exprs (and constants); an Expr, or a list of them (multi-output)."""
        args = [a if isinstance(a, Expr) else self.const(a) for a in args]
        out = bind(op, *[self.var[a] for a in args], **params)
        if not isinstance(out, tuple):
            e = Expr(op, tuple(args), dict(params), tuple(out.shape), out.batched, out.dtype)
            self.var[e] = out
            return e
        whole = Expr(op, tuple(args), dict(params), None, any(v.batched for v in out))
        parts = []
        for i, v in enumerate(out):
            p = Expr("part", (whole,), shape=tuple(v.shape), batched=v.batched, dtype=v.dtype,
                     part=i)
            self.var[p] = v
            parts.append(p)
        return parts

    # --- adapters: any value to a given shape and range ------------------------------------------

    def flat(self, src: Expr) -> Expr:
        n = math.prod(src.shape)
        return src if len(src.shape) == 1 else self.apply("reshape", [src], shape=(n,),
                                                           old=src.shape)

    def linear(self, src: Expr, shape: tuple) -> Expr:
        """A linear map of ``src`` to ``shape``: reshape(M @ flat(src), shape) / √n."""
        v = self.flat(src)
        n, m = v.shape[0], math.prod(shape)
        z = self.apply("matvec", [self.param((m, n)), v])
        if n > 1:
            z = self.apply("mul", [z, 1.0 / math.sqrt(n)])
        return z if shape == (m,) else self.apply("reshape", [z], shape=shape, old=(m,))

    def adapt(self, src: Expr, shape: tuple, low=-2.0, high=2.0, away=False) -> Expr:
        """A value of ``shape`` (batched like ``src``) computed from ``src``, within
        [low, high] (and |v| >= 0.3 with ``away``), smooth in ``src``."""
        shape = tuple(shape)
        if shape and self.int(0, 2) == 0:              # a lower rank, broadcast against P
            j = self.int(1, len(shape))
            z = self.linear(src, shape[j:])
            P = self.param(shape)
            z = self.apply(*self.choice([("add", [z, P]), ("add", [P, z]), ("mul", [P, z])]))
            self.features.add("broadcast:ranks")
        else:
            z = self.linear(src, shape)
        return self.bound(z, low, high, away)

    def bound(self, z: Expr, low, high, away) -> Expr:
        if away:
            m = max(abs(low), abs(high))
            if z.shape:                                # a sign per entry, drawn
                sign = np.reshape([self.choice([1.0, -1.0]) for _ in range(math.prod(z.shape))],
                                  z.shape)
            else:
                sign = self.choice([1.0, -1.0])
            s = self.apply("sigmoid", [z])
            return self.apply("mul", [sign, self.apply("add", [0.3, self.apply("mul",
                                                                            [m - 0.3, s])])])
        if (low, high) == (-2.0, 2.0) and self.bool():
            return self.apply("mul", [2.0, self.apply("tanh", [z])])
        s = self.apply("sigmoid", [z])
        return self.apply("add", [low, self.apply("mul", [high - low, s])])

    def unbatched(self, shape: tuple, low=-2.0, high=2.0, away=False) -> Expr:
        """A value of ``shape`` that depends on parameters only."""
        if self.unbatched_pool and self.bool():
            return self.adapt(self.choice(self.unbatched_pool), shape, low, high, away)
        return self.bound(self.param(shape), low, high, away)

    # --- the registry's primitives -----------------------------------------------------------------

    def operation(self, pool: list) -> None:
        """One primitive from the registry on operands its domain asks for (or, one time in
        six, a composite helper of unroll.ops); its float results join the pools."""
        if self.composites and self.int(0, 5) == 0:
            return self.composite(pool)
        name = self.choice(self.prims)
        args, params = PRIMITIVES[name].domain(_Domain(self, pool))
        out = self.apply(name, list(args), **params)
        self.features.add(f"prim:{name}")
        for e in out if isinstance(out, list) else [out]:
            if e.dtype == "float":
                (pool if e.batched else self.unbatched_pool).append(e)
                if not e.batched:
                    self.features.add("unbatched-in-step")


    def composite(self, pool: list) -> None:
        """A composite helper (``ur.swish``, ``ur.where``, ``a ** b``, ``ur.max``, ...) on
        values of the step, with its NumPy formula in the reference."""
        name = self.choice(sorted(COMPOSITE_OPS))
        build, positive, nargs = COMPOSITE_OPS[name]
        d = _Domain(self, pool)
        s = self.shape(1 if name in ("max", "min", "layer_norm") else 0, 2)
        lo = 0.5 if positive else -2.0
        args = [d.array(s, lo, 2.0)] + [d.array(s, -1.0 if not positive else 0.5, 1.5)
                                        for _ in range(nargs - 1)]
        vs = build(*[self.var[a] for a in args])
        e = Expr(f"composite:{name}", tuple(args), {}, tuple(vs.shape), vs.batched, vs.dtype)
        self.var[e] = vs
        self.features.add(f"composite:{name}")
        (pool if e.batched else self.unbatched_pool).append(e)


#: composite helpers the generator applies: name -> (build on Vars, positive operands?, arity)
COMPOSITE_OPS = {
    "square": (ur.square, False, 1), "clip": (lambda x: ur.clip(x, -0.5, 0.7), False, 1),
    "leaky_relu": (lambda x: ur.leaky_relu(x, 0.05), False, 1), "elu": (ur.elu, False, 1),
    "swish": (ur.swish, False, 1), "gelu": (ur.gelu, False, 1),
    "where": (lambda x, y: ur.where(x > 0.0, x, y), False, 2),
    "pow": (lambda x, y: x ** y, True, 2), "max": (ur.max, False, 1), "min": (ur.min, False, 1),
    "layer_norm": (ur.layer_norm, False, 1),
}


class _Domain:
    """What a primitive's test domain draws through, answered with circuit values."""

    def __init__(self, gen: _Gen, pool: list):
        self.gen, self.pool = gen, pool
        self.batch = None

    def integer(self, lo: int, hi: int) -> int:
        return self.gen.int(lo, hi)

    def choice(self, options):
        return self.gen.choice(options)

    def shape(self, min_rank: int = 0, max_rank: int = 2) -> tuple:
        return self.gen.shape(min_rank, max_rank)

    def broadcastable(self, shape: tuple) -> tuple:
        return tuple(n if self.gen.bool() else 1 for n in shape)

    def array(self, shape, low=-2.0, high=2.0, away_from_zero=False, batched=None) -> Expr:
        g = self.gen
        batched = g.int(0, 3) > 0 if batched is None else batched
        if not batched:
            return g.unbatched(tuple(shape), low, high, away_from_zero)
        return g.adapt(g.choice(self.pool), tuple(shape), low, high, away_from_zero)

    def ints(self, shape, high: int, batched=None) -> Expr:
        """Class indices: an integer input (sequence or static) read by this operation."""
        g = self.gen
        per_step = g.int(0, 3) > 0
        name = g.fresh("y")
        var = g.c.input(name, tuple(shape), dtype="int", per_step=per_step)
        (g.spec.inputs if per_step else g.spec.statics)[name] = (tuple(shape), "int")
        g.features.add("int-input" if per_step else "int-static")
        return g.leaf("input" if per_step else "static", var, name)


# --- the whole circuit -------------------------------------------------------------------------

def random_circuits(max_states: int = 3, max_delay: int = 3, max_steps: int = 5,
                    max_ops: int = 2, backward: bool = True, primitives=None,
                    directions=None, inits=("zeros", "param", "input", "expr")):
    """Random well-formed circuits as :class:`CircuitCase` s (see the module docstring); the
    options are checked when the strategy is built.

    Parameters
    ----------
    max_states, max_delay, max_steps, max_ops : int
        At most this many states, this long a delay, τ, and registry primitives per state.
    backward : bool
        Draw states that run backward in time too.
    primitives : list of str, optional
        The registry entries to draw from (default: :func:`drawable_primitives`).
    directions : tuple of "forward" / "backward", optional
        The directions states may run in (default: both, or forward only without
        ``backward``).
    inits : tuple of str
        The kinds of initial value to draw from: "zeros", "param", "input", "expr".
    """
    directions, primitives = _options(max_states, max_delay, max_steps, max_ops, backward,
                                      primitives, directions, inits)
    return _random_circuits(max_states, max_delay, max_steps, max_ops, primitives,
                            directions, inits)


@st.composite
def _random_circuits(draw, max_states, max_delay, max_steps, max_ops, primitives, directions,
                     inits):
    steps = draw(st.integers(1, max_steps))
    g = _Gen(draw, steps, max_ops, primitives or drawable_primitives())
    g.composites = primitives is None         # all of the API, or only the named primitives
    c, spec = g.c, g.spec
    # inputs
    xs = []
    for name in ("x", "u")[:g.int(1, 2)]:
        shape = g.shape(0, 2)
        xs.append(g.leaf("input", c.input(name, shape), name))
        spec.inputs[name] = (shape, "float")
    statics = []
    for name in ("s", "z")[:g.int(0, 2)]:
        shape = g.shape(0, 2)
        statics.append(g.leaf("static", c.input(name, shape, per_step=False), name))
        spec.statics[name] = (shape, "float")
        g.features.add("static-input")
    data = xs + statics
    # states and what each reads: (j, k), k = 0 the same step
    n = g.int(1, max_states)
    plans = []
    for i in range(n):
        direction = directions[0] if len(directions) == 1 else \
            ("backward" if g.int(0, 2) == 0 else "forward")
        plans.append(StatePlan(STATE_NAMES[i], g.shape(0, 2), direction, g.choice(inits), ""))
    # within a direction, a state reads lower-numbered ones at any delay and higher-numbered
    # ones delayed; across directions only the downstream direction reads the upstream one
    # (both ways round, forward and backward delays could cancel around a loop)
    upstream = g.choice(["forward", "backward"])
    reads = []
    for i, s in enumerate(plans):
        rs = [(i, g.int(1, max_delay))]
        for j, o in enumerate(plans):
            if j == i or not g.bool():
                continue
            if o.direction != s.direction:
                if o.direction == upstream:
                    rs.append((j, g.int(0, max_delay)))
            elif j < i:
                rs.append((j, g.int(0, max_delay)))
            else:
                rs.append((j, g.int(1, max_delay)))
        reads.append(rs)
        for j, k in rs:
            plans[j].k = max(plans[j].k, k)
    hs = []
    for s in plans:
        hs.append(_declare_state(g, s, statics))
        spec.states.append(s)
        g.features |= {f"init:{s.init}", s.direction, f"rank:{len(s.shape)}"}
        if s.k > 1:
            g.features.add("delay>1")
        if s.k > steps:
            g.features.add("delay>τ")
    # each state's update
    for i, (s, h) in enumerate(zip(plans, hs)):
        read_exprs = []
        for j, k in reads[i]:
            var = hs[j].delayed(k) if k else hs[j]
            read_exprs.append(g.leaf("read", var, plans[j].name, k))
            if k == 0:
                g.features.add("same-step")
            if plans[j].direction != s.direction:
                g.features.add("cross-direction")
        terms = [g.adapt(r, s.shape) for r in read_exprs + [g.choice(data)]]
        bias = g.bool()
        if bias and g.bool():         # two biases: (U x + b1) + W h + b2, as PyTorch's
            terms[-1] = g.apply("add", [terms[-1], g.param(s.shape)])       # RNNs have them
            terms.insert(0, terms.pop())
            g.features.add("bias:2")
        pre = terms[0]
        for t in terms[1:]:
            pre = g.apply("add", [pre, t])
        pool = [pre] + read_exprs + data
        # a value without a batch axis may still depend on this step (a mean over the batch):
        # it stays with the state that computed it, or it could read another state at the
        # same step and close an algebraic loop
        g.unbatched_pool = []
        for _ in range(g.int(0, max_ops)):
            g.operation(pool)
        if len(pool) > len(read_exprs) + len(data) + 1:
            pre = g.apply("add", [pre, g.adapt(pool[-1], s.shape)])
        if bias:                      # a bias last: (W h + U x) + b, which the compiler
            pre = g.apply("add", [pre, g.param(s.shape)])      # folds into U x + b
            g.features.add("bias")
        act = g.choice(["tanh", "sigmoid", "gated"])
        if act == "gated":
            nxt = g.apply("mul", [g.apply("tanh", [pre]), g.adapt(g.choice(data), s.shape,
                                                                   0.0, 1.0)])
        else:
            nxt = g.apply(act, [pre])
        h.next = g.var[nxt]
        s.next = nxt
    # outputs and losses
    g.unbatched_pool = []
    now = [g.leaf("read", h, s.name, 0) for s, h in zip(plans, hs)]
    for k in range(g.int(1, 2)):
        name = f"o{k + 1}"
        e = g.adapt(g.choice(now + data), g.shape(0, 2))
        at = _at(g, steps)
        c.output(name, g.var[e], at=at)
        spec.outputs[name] = (e, at)
    for k in range(g.int(1, 3)):
        e = _loss(g, g.choice(now + data))
        at = _at(g, steps)
        name = "L" if k == 0 else f"L{k + 1}"
        c.loss(g.var[e], at=at)
        spec.losses.append((name, e, at))
    return CircuitCase(c, steps, spec, g.features)


def _options(max_states, max_delay, max_steps, max_ops, backward, primitives, directions,
             inits) -> tuple:
    """Check random_circuits' arguments (a misread option would test less than it says)."""
    for what, v, lo in (("max_states", max_states, 1), ("max_delay", max_delay, 1),
                        ("max_steps", max_steps, 1), ("max_ops", max_ops, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ur.UnrollError(f"random_circuits: {what} must be an integer >= {lo}, "
                                 f"not {v!r}")
    if max_states > len(STATE_NAMES):
        raise ur.UnrollError(f"random_circuits: max_states is at most {len(STATE_NAMES)}")
    backward = ur.errors.flag(backward, "random_circuits: backward")
    if directions is None:
        directions = ("forward", "backward") if backward else ("forward",)
    elif not backward and isinstance(directions, (tuple, list)) and "backward" in directions:
        raise ur.UnrollError("random_circuits: backward=False contradicts directions="
                             f"{tuple(directions)!r}; give one of them")
    if isinstance(directions, str) or not directions or \
            not set(directions) <= {"forward", "backward"}:
        raise ur.UnrollError(f"random_circuits: directions must be a tuple of 'forward' and "
                             f"'backward', not {directions!r}")
    if isinstance(inits, str) or not inits or \
            not set(inits) <= {"zeros", "param", "input", "expr"}:
        raise ur.UnrollError(f"random_circuits: inits must be a tuple of 'zeros', 'param', "
                             f"'input', 'expr', not {inits!r}")
    if primitives is not None:
        bad = [p for p in primitives if p not in drawable_primitives()]
        if isinstance(primitives, str) or not primitives or bad:
            raise ur.UnrollError(f"random_circuits: primitives must be a non-empty list of "
                                 f"registered primitives with a test domain; not {bad or primitives!r}")
    return tuple(directions), list(primitives) if primitives else None


def _declare_state(g: _Gen, s: StatePlan, statics: list):
    shape = s.shape if s.k == 1 else (s.k,) + s.shape
    if s.init in ("zeros", "param"):
        s.init_name = f"{s.name}0" if g.int(0, 2) else f"{s.name}_start"
        if s.init_name != f"{s.name}0":
            g.features.add("init_name")
        return g.c.state(s.name, s.shape, init=s.init, direction=s.direction,
                         init_name=s.init_name)
    if s.init == "input":
        s.init_name = f"{s.name}_init"
        g.c.input(s.init_name, shape, per_step=False)
        g.spec.statics[s.init_name] = (shape, "float")
        return g.c.state(s.name, s.shape, init=s.init_name, direction=s.direction)
    src = g.choice(statics) if statics and g.bool() else None
    e = g.adapt(src, shape) if src is not None else g.unbatched(shape)
    s.init_expr = e
    return g.c.state(s.name, s.shape, init=g.var[e], direction=s.direction)


def _at(g: _Gen, steps: int):
    kind = g.int(0, 3)
    if kind <= 1:
        return None
    if kind == 2:
        g.features.add("at:last")
        return "last"
    ts = sorted({g.int(1, steps) for _ in range(g.int(1, 2))})
    if g.bool():
        ts = [t - steps - 1 for t in ts]               # counted from the end
    g.features.add("at:steps")
    return ts


def _loss(g: _Gen, src: Expr) -> Expr:
    """A per-example scalar: a sum of squares, MSE against a float target, or cross-entropy
    against integer classes."""
    kind = g.choice(["sum", "mse", "ce"])
    g.features.add(f"loss:{kind}")
    if kind == "ce":
        shape = g.shape(1, 2)
        o = g.adapt(src, shape)
        name = g.fresh("y")
        per_step = g.bool()
        y = g.leaf("input" if per_step else "static",
                   g.c.input(name, shape[:-1], dtype="int", per_step=per_step), name)
        (g.spec.inputs if per_step else g.spec.statics)[name] = (shape[:-1], "int")
        per = g.apply("neg", [g.apply("pick", [g.apply("log_softmax", [o]), y])])
        return _total(g, per)
    shape = g.shape(0, 2)
    o = g.adapt(src, shape)
    if kind == "sum":
        return _total(g, g.apply("mul", [o, o]))
    name = g.fresh("t")
    per_step = g.bool()
    y = g.leaf("input" if per_step else "static",
               g.c.input(name, shape, per_step=per_step), name)
    (g.spec.inputs if per_step else g.spec.statics)[name] = (shape, "float")
    sq = g.apply("pow", [g.apply("sub", [o, y])], p=2.0)
    return g.apply("mul", [_total(g, sq), 1.0 / max(1, math.prod(shape))])


def _total(g: _Gen, e: Expr) -> Expr:
    if not e.shape:
        return e
    return g.apply("sum", [e], axes=tuple(range(-len(e.shape), 0)), keepdims=False)
