"""The pieces every stage shares: abstract values, literals, the primitive registry's record type,
and :class:`Var`, the handle users (and VJP rules) write expressions with.

Assumptions that hold everywhere in unroll:

- Shapes are **per example**, as in the textbook: ``h`` is a vector of shape ``(H,)``.
  A value is *batched* when its arrays carry leading batch axes in front of that shape
  (one batch axis at run time, two when the compiler stacks time steps). Every forward rule is
  therefore written for "any number of leading axes": axes are counted from the end.
- dtypes are kinds: ``"float"`` (resolved at run time to the parameters' float32/float64) or
  ``"int"`` (class indices).
- A ``Var`` is bound to a *builder* (a circuit being declared, or a graph being transformed);
  :func:`bind` checks shapes through the primitive's shape rule and asks the builder to record
  the operation. Builders differ only in what they record.
"""
from __future__ import annotations

import contextlib
import math
import gc
import numbers
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from .errors import DTypeError, NoSuchAttributeError, ShapeError, UnrollError

__all__ = ["Aval", "Lit", "Primitive", "PRIMITIVES", "defprim", "Var", "bind", "ShapeMismatch",
           "FLOAT", "INT", "dtype_kind", "format_op", "no_gc", "normalize_index"]

FLOAT, INT = "float", "int"


@contextlib.contextmanager
def no_gc():
    """Pause the cyclic garbage collector while a graph is built: graphs hold no reference
    cycles, and collections triggered by their many small objects only rescan the heap."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Aval(NamedTuple):
    """Abstract value: what is known about an array before it exists."""
    shape: tuple          # per-example shape, e.g. (H,) for a hidden vector
    dtype: str            # "float" | "int"
    batched: bool         # arrays carry leading batch axes in front of ``shape``

    def __str__(self) -> str:
        b = "B×" if self.batched else ""
        t = "" if self.dtype == FLOAT else f" {self.dtype}"
        return f"{b}{self.shape}{t}"


def dtype_kind(dtype) -> str:
    """Map "float", "int", "float32", numpy dtypes, ... to a kind ("float" or "int")."""
    if dtype is float or dtype is int:
        return FLOAT if dtype is float else INT
    s = str(getattr(dtype, "name", dtype)).lower()
    if s in ("float", "float32", "float64", "double"):
        return FLOAT
    if s in ("int", "long") or s in {f"{u}int{n}" for u in ("", "u") for n in (8, 16, 32, 64)}:
        return INT
    raise DTypeError(f"dtype {dtype!r} is not supported; use 'float' (computed in float32 or "
                     "float64) or 'int' (class indices)")


class Lit:
    """A constant operand: a Python number, or a NumPy-like array that is not batched."""
    __slots__ = ("val", "aval")

    def __init__(self, val):
        self.val = val
        kind = dtype_kind(val.dtype) if hasattr(val, "dtype") else FLOAT
        self.aval = Aval(tuple(getattr(val, "shape", ())), kind, False)

    @property
    def key(self) -> tuple:
        """What makes two constants the same operand (for CSE, loop finding and rule replay):
        a number's value, an array's identity."""
        return ("arr", id(self.val)) if hasattr(self.val, "shape") else ("lit", self.val)

    def __repr__(self) -> str:
        if hasattr(self.val, "shape"):
            return f"const{tuple(self.val.shape)}"
        v = float(self.val)
        return repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


class ShapeMismatch(Exception):
    """Raised by shape rules; :func:`bind` turns it into a ShapeError naming the expression.

    ``msg`` may use ``{0}``, ``{1}``, ... for the operands' descriptions and shapes.
    """

    def __init__(self, msg: str, fix: str = ""):
        super().__init__(msg)
        self.msg, self.fix = msg, fix


# --- the primitive registry -----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Primitive:
    """One primitive operation, with every rule the engine needs. See ``unroll/ops.py``."""
    name: str                          # registry key
    nargs: int | None                  # number of array operands (None: variadic)
    forward: Callable                  # forward(xp, *arrays, **params) -> array or tuple
    shape: Callable                    # shape(*avals, **params) -> Aval or tuple of Avals
    vjp: Callable | None               # vjp(g, out, *xs, **params) -> one cotangent per input
    fmt: str | Callable                # textbook printing: "{0} + {1}", or fmt(args, **params)
    domain: Callable | None = None     # domain(d) -> (args, params): test inputs (unroll.testing)
    code: Callable | str | None = None  # inline source for the compiler (None: call forward)
    nouts: int | None = 1              # number of results (None: given by params)
    elementwise: bool = False          # operands broadcast like NumPy (per example)
    bounds: Callable | None = None     # bounds(*avals, **params) -> {operand index: n classes}
    leading: Callable | None = None    # leading(**params) -> "map" | "sum" | "other", see below
    accumulates: bool = False          # a running sum over steps: out[t] = out[t∓1] + x[t]
    weights: bool = False              # its parameter operands are weights (edge labels: U, W)
    views: bool = False                # its result may share memory with an operand (a view,
    #                                    or the operand itself): the compiler never recycles it
    shape_only: tuple = ()             # operands it reads for their shape alone (broadcast
    #                                    "like" x, ones_like(x)), not their values
    doc: str = ""                      # one line for the docs
    tex: str | tuple | Callable | None = None  # LaTeX (ur.latex): "\tanh\left(#0\right)" with
    #                                    operands #0, #1, ...; or (template, "sum" | "unary" |
    #                                    "elementwise" | "product" | "power" | "atom") for its
    #                                    precedence; or tex(args, **params); None:
    #                                    \operatorname{name}(...)
    circuit_only: bool = False         # appears in circuit bodies only, never in a Graph
    extra: dict = field(default_factory=dict)  # anything a later stage wants to attach

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    def leading_axes(self, params: dict) -> str:
        """How the forward rule treats extra leading axes (what time-batching relies on):
        "map" - each leading index independently (stacking steps is batching them);
        "sum" - summed over all of them (stacked, it also sums over steps);
        "other" - anything else (a mean over the batch): never stacked."""
        return "map" if self.leading is None else self.leading(**params)


PRIMITIVES: dict[str, Primitive] = {}


def defprim(name: str, **kw) -> Primitive:
    """Register a primitive; every rule of it is given here, in one place."""
    if name in PRIMITIVES:
        raise UnrollError(f"primitive {name!r} is defined twice")
    p = Primitive(name=name, **kw)
    PRIMITIVES[name] = p
    return p


def format_op(prim: Primitive, args: list, params: dict) -> str:
    """Print one application of ``prim`` to operand strings ``args`` like the textbook."""
    if callable(prim.fmt):
        return prim.fmt(args, **params)
    return prim.fmt.format(*args, **params)


# --- the expression handle -------------------------------------------------------------------

class Var:
    """A handle on a value inside a builder: a circuit variable or a graph value.

    Supports ``+ - * / ** @``, unary minus, indexing/slicing of per-example axes and ``.T``:
    each is a primitive, so :mod:`unroll.ops` defines them, with the primitives.
    """
    __slots__ = ("builder", "node")
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy arithmetic with a circuit value (``np.float64(2) * x``) is the circuit's own;
        any other NumPy function on one is refused, naming the unroll function to use."""
        ops = {"add": "add", "subtract": "sub", "multiply": "mul", "true_divide": "truediv",
               "power": "pow", "matmul": "matmul"}
        name = ops.get(ufunc.__name__)
        if method == "__call__" and name and len(inputs) == 2 and not kwargs:
            a, b = inputs
            if isinstance(b, Var) and not isinstance(a, Var):
                return getattr(b, f"__r{name}__")(a)
            return getattr(a, f"__{name}__")(b)
        if method == "__call__" and ufunc.__name__ == "negative" and len(inputs) == 1:
            return -inputs[0]
        hint = {"absolute": "abs", "maximum": "maximum", "minimum": "minimum"}.get(
            ufunc.__name__, ufunc.__name__)
        raise UnrollError(f"np.{ufunc.__name__} cannot compute on a circuit value while the "
                          f"circuit is declared; use ur.{hint}(...) (NumPy computes on arrays, "
                          "inside forward rules)")

    def __init__(self, builder, node):
        self.builder = builder
        self.node = node

    # what the value is
    @property
    def aval(self) -> Aval:
        return self.node.aval

    @property
    def shape(self) -> tuple:
        return self.node.aval.shape

    @property
    def dtype(self) -> str:
        return self.node.aval.dtype

    @property
    def batched(self) -> bool:
        return self.node.aval.batched

    @property
    def ndim(self) -> int:
        return len(self.node.aval.shape)

    def named(self, name: str, show: bool = False) -> "Var":
        """Give this value a name (shown in printouts and in detailed diagrams); returns
        ``self``. ``show=True`` also draws it in the textbook view of the circuit (the hidden
        layer h of a Jordan network, say)."""
        self.builder.set_name(self.node, name, show)
        return self

    def __repr__(self) -> str:
        return f"<{self.builder.describe(self.node)}: {self.aval}>"

    def __bool__(self):
        raise UnrollError(
            f"{self!r} has no truth value while the circuit is being declared; "
            "use ur.relu / arithmetic instead of Python 'if'")

    def __hash__(self):
        return id(self)

    def __getattr__(self, name):
        # only reached for names a value does not have: say what the user may have meant
        if name.startswith("__"):
            raise AttributeError(name)
        who = self.builder.describe(self.node)
        if name in ("prev", "delayed", "next"):
            if self.node.kind == "delay":
                k = self.node.k
                hint = (f"{who} is already the value {k} step{'s' if k > 1 else ''} back, not a "
                        f"state; delays do not chain: write the whole delay once, "
                        f"{self.node.ref}.delayed({k + 1}) for one step more")
            else:
                hint = (f"{who} is a value, not a state; only a state declared with "
                        f"c.state(...) has .{name}")
        else:
            hint = (f"{who} has no attribute {name!r}; a circuit value has .shape, .dtype, .T, "
                    ".named(...), and a state .prev, .delayed(k), .next")
        raise NoSuchAttributeError(hint)

    def __iter__(self):
        raise UnrollError(f"{self!r} cannot be iterated while the circuit is being declared; "
                          "split it with ur.split(x, n) or index it, x[0:H]")

    def __len__(self):
        raise UnrollError(f"{self!r} has no len(); use .shape")


def normalize_index(key, shape: tuple, who) -> tuple:
    """Turn ``a[:H]``, ``a[2]``, ``A[1:, 0]`` into a tuple of ints / (start, stop) pairs."""
    if not isinstance(key, tuple):
        key = (key,)
    if len(key) > len(shape):
        raise ShapeError(f"{who!r}[{key}]: too many indices for a value of shape {shape}")
    out = []
    for k, n in zip(key, shape):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                raise ShapeError(f"{who!r}[...]: slices with a step are not supported")
            if stop <= start:
                raise ShapeError(f"{who!r}[{k.start}:{k.stop}] selects nothing from size {n}")
            out.append((start, stop))
        elif isinstance(k, numbers.Integral) and not isinstance(k, bool):
            k = int(k)
            if not -n <= k < n:
                raise ShapeError(f"{who!r}[{k}]: index out of range for axis of size {n}")
            out.append(k % n)
        else:
            raise ShapeError(f"{who!r}[{k!r}]: only integers and slices can index a value")
    return tuple(out)


# --- bind: the one way an operation enters a builder -----------------------------------------

def _as_operand(x):
    if isinstance(x, (Var, Lit)):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        try:
            v = float(x)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            raise UnrollError(f"the constant {x!r:.40} in an expression is not a finite number; "
                              "constants must be finite (a NaN or Inf would reach every "
                              "value it touches)")
        return Lit(v)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        from . import backends
        if backends.dtype_name(x.dtype).startswith(("float", "complex")):
            xp = backends.namespace_of({"constant": x}, None)
            if not bool(xp.all(xp.isfinite(x))):
                raise UnrollError(f"an array constant of shape {tuple(x.shape)} in an "
                                  "expression has a NaN or Inf entry; constants must be finite")
        return Lit(x)
    raise UnrollError(f"cannot use {type(x).__name__} {x!r} in an unroll expression; "
                      "use numbers, arrays or circuit variables")


def _where(*xs) -> str:
    return next((x.builder.where() for x in xs if isinstance(x, Var)), "")


def _describe(x) -> str:
    return x.builder.describe(x.node) if isinstance(x, Var) else repr(x)


def bind(prim, *args, **params):
    """Apply primitive ``prim`` (a handle such as ``ops.add_p``, or its registered name) to
    ``args``; return a Var (or a tuple for multi-output ops)."""
    if not isinstance(prim, Primitive):
        prim = PRIMITIVES[prim]
    name = prim.name
    if prim.nargs is not None and len(args) != prim.nargs:
        raise UnrollError(f"{name} takes {prim.nargs} operand(s), not {len(args)}")
    ops = [_as_operand(a) for a in args]
    builders = {id(o.builder): o.builder for o in ops if isinstance(o, Var)}
    if not builders:
        raise UnrollError(f"{name}({', '.join(map(repr, ops))}): no variable in this expression; "
                          "compute constants with NumPy instead")
    if len(builders) > 1:
        raise UnrollError(f"{name}: operands come from different circuits or graphs "
                          f"({', '.join(sorted(map(str, (b for b in builders.values()))))}); "
                          "build each expression inside one circuit")
    builder = next(iter(builders.values()))
    if prim.elementwise:
        ops = _align_ranks(ops)
    for o in ops:
        if o.aval.dtype != FLOAT and prim.elementwise:
            raise DTypeError(f"{_describe(o)} is an integer input and cannot enter {name}; "
                             "use it as a class index (ur.softmax_cross_entropy, ur.one_hot) "
                             "or declare it with dtype='float'")
    try:
        outs = prim.shape(*[o.aval for o in ops], **params)
    except ShapeMismatch as e:
        descs = [f"{_describe(o)} {o.aval.shape}" for o in ops]
        expr = format_op(prim, [_describe(o) for o in ops], params)
        fix = f"; {e.fix}" if e.fix else ""
        raise ShapeError(f"shape mismatch in {expr}: {e.msg.format(*descs)}{fix}"
                         f"{builder.where()}") from None
    single = isinstance(outs, Aval)
    nodes = builder.apply(prim, tuple(o if isinstance(o, Lit) else o.node for o in ops),
                          params, (outs,) if single else tuple(outs))
    vs = tuple(Var(builder, n) for n in nodes)
    return vs[0] if single else vs


def _align_ranks(ops):
    """Give every array operand of an elementwise op the same per-example rank (leading 1s),
    so that leading batch axes line up with each other."""
    rank = max(len(o.aval.shape) for o in ops)
    out = []
    for o in ops:
        r = len(o.aval.shape)
        if isinstance(o, Var) and r < rank:
            o = bind("reshape", o, shape=(1,) * (rank - r) + o.aval.shape, old=o.aval.shape)
        out.append(o)
    return out
