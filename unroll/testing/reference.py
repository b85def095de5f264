"""An independent reference: evaluate a drawn circuit (:class:`~unroll.testing.spec.Spec`) with
a plain NumPy loop, lazily, step by step.

Nothing here uses unroll's machinery (no scheduling, unrolling, graph, autodiff, compiler or
runtime): a state's value at step t is computed on demand from the values it reads, memoised,
so any well-formed mixture of forward and backward states, delays and same-step reads is
evaluated in a valid order by construction. Each built-in primitive has its own NumPy
definition below (:data:`OPS`), written from its documented meaning; a primitive registered
later (yours) is evaluated through its forward rule.

Arrays carry one leading batch axis when they depend on the batch; per-example ranks are
aligned here, as the textbook's broadcasting says.
"""
from __future__ import annotations

import numpy as np

from .spec import Expr, Spec

__all__ = ["evaluate", "Result", "OPS", "resolve"]


class Result:
    """What the reference computes: outputs as ``run`` returns them, the loss, state values."""

    def __init__(self, outputs: dict, loss: float, states: dict):
        self.outputs = outputs        # name -> array
        self.loss = loss              # Σ over losses and their steps of the batch mean
        self.states = states          # (state name, t) -> (B, ...) array
        self.memo: dict = {}          # every value computed, (id of Expr or name, t) -> ...


def resolve(at, T: int) -> list:
    """The steps a loss or an output placed ``at`` covers in a sequence of T steps."""
    if at is None:
        return list(range(1, T + 1))
    if at == "last":
        return [T]
    if at == "first":
        return [1]
    return sorted({t + T + 1 if t < 0 else t for t in at})


# --- the primitives, in NumPy --------------------------------------------------------------------

def _aligned(args):
    """Operands of an elementwise op with their per-example ranks made equal (1s in front,
    after the batch axis)."""
    r = max(len(s) for _, b, s in args)
    out = []
    for a, b, s in args:
        a = np.asarray(a)
        new = (1,) * (r - len(s)) + tuple(s)
        out.append(a.reshape(((a.shape[0],) if b else ()) + new))
    return out


def _elementwise(f):
    return lambda args, **p: f(*_aligned(args), **p)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))        # another formula than unroll's


def _matvec(args):
    (A, _, _), (v, _, _) = args
    return np.einsum("...ij,...j->...i", A, v)


def _outer(args, *, reduce):
    (a, ba, _), (b, bb, _) = args
    out = a[..., :, None] * b[..., None, :]
    return out.sum(axis=0) if reduce and (ba or bb) else out


def _sum_to(args, *, shape, drop, rank):
    (g, b, s), = args
    if b and drop:
        g, b = g.sum(axis=0), False
    lead = 1 if b else 0
    while g.ndim - lead > len(shape):                 # extra per-example axes in front
        g = g.sum(axis=lead)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[lead + i] != 1:
            g = g.sum(axis=lead + i, keepdims=True)
    return g.reshape(g.shape[:lead] + tuple(shape))


def _broadcast_like(args, *, mean, rank):
    (g, bg, _), (ref, bref, s) = args
    B = (g.shape[0],) if bg else (ref.shape[0],) if bref else ()
    out = np.broadcast_to(g, B + tuple(s))
    return out / ref.shape[0] if mean and bref else out


def _index_key(idx, rank):
    key = tuple(slice(*i) if isinstance(i, tuple) else i for i in idx)
    return (Ellipsis,) + key + (slice(None),) * (rank - len(idx))


def _unindex(args, *, idx, shape):
    (g, b, _), = args
    out = np.zeros(((g.shape[0],) if b else ()) + tuple(shape))
    out[_index_key(idx, len(shape))] = g
    return out


def _split(args, *, sizes, axis):
    (x, _, _), = args
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _concat(args, *, axis, rank):
    B = max((a.shape[0] for a, b, _ in args if b), default=None)
    xs = [np.broadcast_to(a, (B,) + a.shape) if B is not None and not b else a
          for a, b, _ in args]
    return np.concatenate(xs, axis=axis)


def _log_softmax(args):
    (x, _, _), = args
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _pick(args):
    (x, bx, sx), (y, by, sy) = args
    if by and not bx:
        x = np.broadcast_to(x, (y.shape[0],) + x.shape)
    if bx and not by:
        y = np.broadcast_to(y, (x.shape[0],) + y.shape)
    return np.take_along_axis(x, y[..., None], axis=-1)[..., 0]


def _batch_zeros(args, *, shape, rank):
    (ref, b, _), = args
    return np.zeros(((ref.shape[0],) if b else ()) + tuple(shape))


def _mean_batch(args, *, rank):
    (x, b, _), = args
    return x.mean(axis=0) if b else x


#: name -> f(args, **params): args are (array, batched, per-example shape) triples
OPS = {
    "add": _elementwise(lambda a, b: a + b),
    "accumulate": _elementwise(lambda a, b: a + b),
    "sub": _elementwise(lambda a, b: a - b),
    "mul": _elementwise(lambda a, b: a * b),
    "div": _elementwise(lambda a, b: a / b),
    "neg": _elementwise(lambda a: -a),
    "exp": _elementwise(np.exp),
    "log": _elementwise(np.log),
    "tanh": _elementwise(np.tanh),
    "sigmoid": _elementwise(_sigmoid),
    "dtanh": _elementwise(lambda g, y: g * (1 - y ** 2)),
    "dsigmoid": _elementwise(lambda g, y: g * y * (1 - y)),
    "relu": _elementwise(lambda x: np.where(x > 0, x, 0.0)),
    "step": _elementwise(lambda x: (x > 0).astype(float)),
    "copy": _elementwise(lambda x: x.copy()),
    "sin": _elementwise(np.sin),
    "cos": _elementwise(np.cos),
    "abs": _elementwise(np.abs),
    "sqrt": _elementwise(np.sqrt),
    "softplus": _elementwise(lambda x: np.logaddexp(0.0, x)),
    "maximum": _elementwise(np.maximum),
    "minimum": _elementwise(np.minimum),
    "stop_gradient": _elementwise(lambda x: x.copy()),
    "pow": _elementwise(lambda x, *, p: np.power(x, p)),
    "matvec": _matvec,
    "outer": _outer,
    "matmul": lambda args: np.matmul(args[0][0], args[1][0]),
    "transpose": lambda args: np.swapaxes(args[0][0], -1, -2),
    "sum": lambda args, *, axes, keepdims: np.sum(args[0][0], axis=axes, keepdims=keepdims),
    "mean_batch": _mean_batch,
    "sum_to": _sum_to,
    "broadcast_like": _broadcast_like,
    "zeros_like": lambda args: np.zeros_like(args[0][0], dtype=float),
    "ones_like": lambda args: np.ones_like(args[0][0], dtype=float),
    "batch_zeros": _batch_zeros,
    "reshape": lambda args, *, shape, old: np.reshape(
        args[0][0], args[0][0].shape[:args[0][0].ndim - len(old)] + tuple(shape)),
    "index": lambda args, *, idx, rank: args[0][0][_index_key(idx, rank)],
    "unindex": _unindex,
    "split": _split,
    "concat": _concat,
    "log_softmax": _log_softmax,
    "pick": _pick,
    "hardmax": lambda args: (args[0][0] == args[0][0].max(axis=-1, keepdims=True)).astype(float),
    "one_hot": lambda args, *, n: np.eye(n)[args[0][0]],
}


#: the composite helpers of unroll.ops the random circuits apply (``composite:<name>``), each
#: as its textbook formula in NumPy
COMPOSITES = {
    "square": lambda x: x * x,
    "clip": lambda x: np.clip(x, -0.5, 0.7),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.05 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "swish": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3))),
    "where": lambda x, y: np.where(x > 0, x, y),
    "pow": lambda x, y: x ** y,
    "max": lambda x: np.max(x, axis=-1),
    "min": lambda x: np.min(x, axis=-1),
    "layer_norm": lambda x: (x - x.mean(-1, keepdims=True))
    / np.sqrt(x.var(-1, keepdims=True) + 1e-5),
}


def _composite(name):
    f = COMPOSITES[name]
    if name in ("max", "min", "layer_norm"):
        return lambda args: f(args[0][0])
    return _elementwise(f)


def _registered(name):
    """A primitive without an entry above: its own forward rule on NumPy."""
    from .. import backends
    from ..core import PRIMITIVES
    prim = PRIMITIVES[name]
    xp = backends.get(np, np.float64)
    return lambda args, **p: prim.forward(xp, *[a for a, _, _ in args], **p)


# --- the step loop -------------------------------------------------------------------------------

def evaluate(spec: Spec, params: dict, inputs: dict, *, start: int = 0, stop=None,
             fixed=None, loss_steps=None, frozen: Result | None = None) -> Result:
    """Run the circuit described by ``spec`` over the whole sequence in ``inputs`` (arrays
    (T, B, ...), statics (B, ...); zero-default initial values may be left out).

    ``start``, ``stop`` and ``fixed`` evaluate only steps start+1..stop (default T), reading
    the states at steps <= start from ``fixed`` {(state name, t): (B, ...) array} (a window
    of truncated BPTT, whose carried state is a constant); ``loss_steps`` keeps the losses at
    those sequence steps only. Losses and outputs are placed by their ``at`` in the whole
    sequence.

    ``frozen`` (the Result of an unperturbed run) makes ``stop_gradient`` return the values it
    had there: what finite differences must hold fixed to compare with reverse mode."""
    T = next(iter(inputs[k] for k in spec.inputs)).shape[0]
    B = next(iter(inputs[k] for k in spec.inputs)).shape[1]
    fixed = fixed or {}
    stop = T if stop is None else stop
    memo: dict = {}

    def state(name, t):
        key = (name, t)
        if key in memo:
            return memo[key]
        s = spec.state(name)
        if 1 <= t <= T and key in fixed:
            val = (np.asarray(fixed[key]), True)
        elif 1 <= t <= T:
            val = ev(s.next, t)
        else:
            val = initial(s, t)
        memo[key] = val
        return val

    def initial(s, t):
        if s.init == "zeros":
            full = (B, s.k) + s.shape if s.k > 1 else (B,) + s.shape
            a, b = inputs.get(s.init_name, np.zeros(full)), True
        elif s.init == "param":
            a, b = params[s.init_name], False
        elif s.init == "input":
            a, b = inputs[s.init_name], True
        else:
            a, b = ev(s.init_expr, None)
        if s.k == 1:
            return a, b
        row = t + s.k - 1 if s.direction == "forward" else t - T - 1
        return (a[:, row] if b else a[row]), b

    def ev(e: Expr, t):
        """The value of ``e`` at step t: its operands first, from an explicit stack (an
        expression may be deeper than Python's recursion limit allows)."""
        key = (id(e), t)
        if key in memo:
            return memo[key]
        stack = [e]
        while stack:
            x = stack[-1]
            kids = [a for a in _operands(x) if (id(a), t) not in memo]
            if kids:
                stack += kids
                continue
            stack.pop()
            if (id(x), t) not in memo:
                memo[id(x), t] = ev1(x, t)
        return memo[key]

    def _operands(e: Expr) -> list:
        if e.op in ("input", "static", "param", "const", "read") or \
                e.op == "stop_gradient" and frozen is not None:
            return []
        return list(e.args[:1]) if e.op == "part" else list(e.args)

    def ev1(e: Expr, t):
        key = (id(e), t)
        op = e.op
        if op == "input":
            val = (inputs[e.name][t - 1], True)
        elif op == "static":
            full = (B,) + tuple(e.shape)
            val = (inputs[e.name] if e.name in inputs else np.zeros(full), True)
        elif op == "param":
            val = (params[e.name], False)
        elif op == "const":
            val = (e.value, False)
        elif op == "read":
            s = spec.state(e.name)
            val = state(e.name, t - e.k if s.direction == "forward" else t + e.k)
        elif op == "stop_gradient" and frozen is not None:
            val = frozen.memo[key]
        elif op == "part":
            whole, _ = ev(e.args[0], t)
            a = whole[e.part]
            val = (a, np.ndim(a) > len(e.shape))
        else:                         # batched if its operands make it so at this step
            args = [(*ev(x, t), x.shape) for x in e.args]
            fn = OPS.get(op) or (_composite(op[10:]) if op.startswith("composite:")
                                 else _registered(op))
            a = fn(args, **e.params)
            val = (a, None if isinstance(a, tuple) else np.ndim(a) > len(e.shape))
        return val

    def batched(a, b):
        a = np.asarray(a, dtype=float)
        return a if b else np.broadcast_to(a, (B,) + a.shape)

    for s in spec.states:                     # every step's value (kept for the tests)
        for t in range(start + 1, stop + 1):
            state(s.name, t)
    outputs = {}
    for name, (e, at) in spec.outputs.items():
        ts = [t for t in resolve(at, T) if start < t <= stop]
        vals = [batched(*ev(e, t)) for t in ts]
        if at in ("last", "first"):
            outputs[name] = vals[0] if vals else None
        else:
            outputs[name] = np.stack(vals) if vals else None
    loss = 0.0
    for name, e, at in spec.losses:
        for t in resolve(at, T):
            if start < t <= stop and (loss_steps is None or t in loss_steps):
                loss += float(np.mean(batched(*ev(e, t))))
    states = {k: batched(*v) for k, v in memo.items() if isinstance(k[0], str)}
    res = Result(outputs, loss, states)
    res.memo = memo
    return res
