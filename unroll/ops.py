"""Every primitive operation of unroll, one entry each, and the helpers users call.

An entry gives, in one place: the forward rule ``forward(xp, *arrays, **params)`` (``xp`` is the
array namespace; arrays may carry any number of leading batch axes, so axes are counted from the
end), the vector-Jacobian product ``vjp(g, out, *xs, **params)`` written with primitives (one
cotangent per operand, ``None`` for none), the shape rule on per-example :class:`Aval`\\ s, the
textbook print format, an optional inline code template for the compiler, whether its result
may share memory with an operand (``views``: the compiler never recycles such memory), and the
Hypothesis domain the registry-driven tests draw from. The executor, ``grad``, the compiler, the printer and
the renderer dispatch through :data:`PRIMITIVES` and never name an op.

Unbroadcasting (summing a cotangent back to its operand's shape, batch axis included) happens
once, in the backward transformation; rules return cotangents of the output's shape unless they
can reduce more cheaply themselves (``matvec`` returns the batch-summed outer product for an
unbatched weight, one matrix product instead of B outer products).
"""
from __future__ import annotations

import builtins
import sys
import math
import numbers

from .core import (FLOAT, INT, PRIMITIVES, Aval, Primitive, ShapeMismatch, Var, _as_operand, _describe,
                   _where, bind, defprim, normalize_index)
from .errors import ShapeError, UnrollError, flag, integer, suggest

__all__ = ["tanh", "sigmoid", "relu", "exp", "log", "softmax", "log_softmax", "sum", "mean",
           "concat", "split", "softmax_cross_entropy", "mse", "one_hot", "hardmax", "stop_gradient",
           "matmul", "reshape", "primitive", "unregister", "sin", "cos", "abs", "sqrt", "square",
           "softplus", "maximum", "minimum", "clip", "leaky_relu", "elu", "swish", "gelu",
           "where", "max", "min", "stack", "dropout", "layer_norm"]


# --- shape helpers ---------------------------------------------------------------------------

def _broadcast(*avals) -> Aval:
    shapes = [a.shape for a in avals]
    rank = builtins.max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        sizes = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0} - {1}
        if len(sizes) > 1:
            raise ShapeMismatch(" and ".join("{%d}" % k for k in range(len(shapes)))
                                + " do not broadcast together",
                                "make the shapes equal, or 1 where one should be repeated")
        out.append(sizes.pop() if sizes else 1)
    return Aval(tuple(out), FLOAT, any(a.batched for a in avals))


def _same(x: Aval, **_) -> Aval:
    return Aval(x.shape, FLOAT, x.batched)


def _lead(x, rank: int) -> int:
    """Number of leading (batch) axes of array ``x`` whose per-example rank is ``rank``."""
    return len(getattr(x, "shape", ())) - rank


def _neg_axes(axes, rank: int) -> tuple:
    return tuple(sorted({(a % rank) - rank for a in axes}))


# --- elementwise arithmetic ------------------------------------------------------------------

def _unary(name, forward, vjp, fmt, code, low=-2.0, high=2.0, away=False, doc="",
           views=False, tex=None):
    return defprim(name, nargs=1, forward=forward, shape=_same, vjp=vjp, fmt=fmt, code=code,
                   elementwise=True, doc=doc, views=views, tex=tex,
                   domain=lambda d: ([d.array(d.shape(), low, high, away_from_zero=away)], {}))


def _binary(name, forward, vjp, fmt, code, away=False, doc="", weights=False, tex=None):
    def domain(d):
        s = d.shape()
        return [d.array(s), d.array(d.broadcastable(s), away_from_zero=away)], {}
    return defprim(name, nargs=2, forward=forward, shape=_broadcast, vjp=vjp, fmt=fmt,
                   code=code, elementwise=True, domain=domain, doc=doc, weights=weights,
                   tex=tex)


add_p = _binary("add", lambda xp, a, b: a + b, lambda g, out, a, b: (g, g),
                "{0} + {1}", "({0} + {1})", doc="a + b",
        tex=("#0 + #1", "sum"))
accumulate_p = defprim("accumulate", nargs=2, forward=lambda xp, acc, x: acc + x, shape=_broadcast,
                       vjp=lambda g, out, acc, x: (g, g), fmt="{0} + {1}", code="({0} + {1})",
                       elementwise=True, accumulates=True,
                       domain=lambda d: ([d.array(s := d.shape()), d.array(s)], {}),
                       doc="a running sum over steps, Σ[t] = Σ[t-1] + x[t] (loss totals, shared weights)",
        tex=("#0 + #1", "sum"))
sub_p = _binary("sub", lambda xp, a, b: a - b, lambda g, out, a, b: (g, -g),
                "{0} - {1}", "({0} - {1})", doc="a - b",
        tex=("#0 - #1", "sum"))
mul_p = _binary("mul", lambda xp, a, b: a * b, lambda g, out, a, b: (g * b, g * a),
                "{0} * {1}", "({0} * {1})", doc="a * b (elementwise)", weights=True,
        tex=(r"#0 \odot #1", "elementwise"))
div_p = _binary("div", lambda xp, a, b: a / b, lambda g, out, a, b: (g / b, -(g * out) / b),
                "{0} / {1}", "({0} / {1})", away=True, doc="a / b (elementwise)",
        tex=r"\frac{#0}{#1}")

neg_p = _unary("neg", lambda xp, x: -x, lambda g, out, x: (-g,), "-{0}", "(-{0})", doc="-x",
        tex=("-#0", "unary"))
exp_p = _unary("exp", lambda xp, x: xp.exp(x), lambda g, out, x: (g * out,), "exp({0})",
               "xp.exp({0})", doc="e^x",
        tex=r"\exp\left(#0\right)")
log_p = _unary("log", lambda xp, x: xp.log(x), lambda g, out, x: (g / x,), "log({0})",
               "xp.log({0})", low=0.3, high=3.0, doc="natural logarithm",
        tex=r"\log\left(#0\right)")
tanh_p = _unary("tanh", lambda xp, x: xp.tanh(x), lambda g, out, x: (bind(dtanh_p, g, out),),
                "tanh({0})", "xp.tanh({0})", doc="hyperbolic tangent",
        tex=r"\tanh\left(#0\right)")
# 1/(1 + e^-x), e^-x capped where it would overflow: the backend's kernel (in place on NumPy)
sigmoid_p = _unary("sigmoid", lambda xp, x: xp.sigmoid(x),
                   lambda g, out, x: (bind(dsigmoid_p, g, out),), "σ({0})", "xp.sigmoid({0})",
                   doc="logistic sigmoid 1/(1+e^-x)",
        tex=r"\sigma\left(#0\right)")


# The activations' VJPs from their values, one equation each (eq. 10.22's diag(1 - h²) ∂h):
# the backward pass of an LSTM step has five of them.
def _act_grad(name, forward, vjp, fmt, code, doc, tex=None):
    return defprim(name, nargs=2, forward=forward, shape=_broadcast, vjp=vjp, fmt=fmt,
                   code=code, elementwise=True, doc=doc, tex=tex,
                   domain=lambda d: ([d.array(s := d.shape()), d.array(s, -0.99, 0.99)], {}))


dtanh_p = _act_grad("dtanh", lambda xp, g, y: g * (1.0 - y * y),
                    lambda ct, out, g, y: (bind(dtanh_p, ct, y), ct * g * (-2.0 * y)),
                    "{0} * (1 - {1}²)", "({0} * (1.0 - {1} * {1}))",
                    "tanh's VJP from its value y: g (1 - y²)",
        tex=(r"\operatorname{diag}\left(1 - #1^{2}\right) #0", "product"))
dsigmoid_p = _act_grad("dsigmoid", lambda xp, g, y: g * (y * (1.0 - y)),
                       lambda ct, out, g, y: (bind(dsigmoid_p, ct, y), ct * g * (1.0 - 2.0 * y)),
                       "{0} * {1}(1 - {1})", "({0} * ({1} * (1.0 - {1})))",
                       "σ's VJP from its value y: g y(1 - y)",
        tex=(r"\operatorname{diag}\left(#1 \odot \left(1 - #1\right)\right) #0", "product"))
relu_p = _unary("relu", lambda xp, x: xp.maximum(x, 0.0), lambda g, out, x: (g * bind(step_p, x),),
                "relu({0})", "xp.maximum({0}, 0.0)", away=True, doc="max(x, 0)",
        tex=r"\operatorname{relu}\left(#0\right)")
step_p = _unary("step", lambda xp, x: xp.astype(x > 0, x.dtype), None, "[{0} > 0]", None, away=True,
                doc="Heaviside step (x > 0) as a float; no gradient",
        tex=r"\left[#0 > 0\right]")
sin_p = _unary("sin", lambda xp, x: xp.sin(x), lambda g, out, x: (g * bind(cos_p, x),),
               "sin({0})", "xp.sin({0})", low=-3.0, high=3.0, doc="sine",
        tex=r"\sin\left(#0\right)")
cos_p = _unary("cos", lambda xp, x: xp.cos(x), lambda g, out, x: (-(g * bind(sin_p, x)),),
               "cos({0})", "xp.cos({0})", low=-3.0, high=3.0, doc="cosine",
        tex=r"\cos\left(#0\right)")
abs_p = _unary("abs", lambda xp, x: xp.abs(x), lambda g, out, x: (g * x / out,),
               "|{0}|", "xp.abs({0})", away=True, doc="|x| (its derivative x/|x| away from 0)",
        tex=r"\left|#0\right|")
sqrt_p = _unary("sqrt", lambda xp, x: xp.sqrt(x), lambda g, out, x: (g * 0.5 / out,),
                "√{0}", "xp.sqrt({0})", low=0.3, high=3.0, doc="square root (x > 0)",
        tex=r"\sqrt{#0}")
# log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)
softplus_p = _unary("softplus", lambda xp, x: xp.maximum(x, 0.0) + xp.log(1.0 + xp.exp(-xp.abs(x))),
                    lambda g, out, x: (g * bind(sigmoid_p, x),), "softplus({0})",
                    "(xp.maximum({0}, 0.0) + xp.log(1.0 + xp.exp(-xp.abs({0}))))",
                    low=-4.0, high=4.0, doc="log(1 + e^x), a smooth relu",
        tex=r"\operatorname{softplus}\left(#0\right)")


def _apart(d):
    """Operands that never tie (|a - b| >= 0.2), so that either may be the larger one: a away
    from zero, b near it."""
    s = d.shape()
    return [d.array(s, away_from_zero=True), d.array(d.broadcastable(s), -0.1, 0.1)], {}


maximum_p = defprim("maximum", nargs=2, forward=lambda xp, a, b: xp.maximum(a, b),
                    shape=_broadcast, elementwise=True, domain=_apart,
                    vjp=lambda g, out, a, b: (g * bind(step_p, a - b), g * bind(step_p, b - a)),
                    fmt="max({0}, {1})", code="xp.maximum({0}, {1})",
                    doc="elementwise maximum (at a tie the gradient goes to neither)",
        tex=r"\max\left(#0, #1\right)")
minimum_p = defprim("minimum", nargs=2, forward=lambda xp, a, b: xp.minimum(a, b),
                    shape=_broadcast, elementwise=True, domain=_apart,
                    vjp=lambda g, out, a, b: (g * bind(step_p, b - a), g * bind(step_p, a - b)),
                    fmt="min({0}, {1})", code="xp.minimum({0}, {1})",
                    doc="elementwise minimum (at a tie the gradient goes to neither)",
        tex=r"\min\left(#0, #1\right)")
copy_p = _unary("copy", lambda xp, x: x, lambda g, out, x: (g,), "{0}", "{0}", views=True,
                doc="identity (gives a value a second name)",
        tex="#0")
stop_gradient_p = defprim("stop_gradient", nargs=1, forward=lambda xp, x: x, shape=_same, vjp=None, views=True,
                          fmt="stop_gradient({0})", code="{0}", doc="identity whose gradient is zero",
                          domain=lambda d: ([d.array(d.shape())], {}),
        tex=r"\operatorname{sg}\left(#0\right)")


def _pow_vjp(g, out, x, *, p):
    if p == 2.0:
        return (g * (2.0 * x),)
    return (g * (p * x ** (p - 1.0)),)


pow_p = defprim("pow", nargs=1, forward=lambda xp, x, *, p: x * x if p == 2.0 else x ** p, shape=_same,
                vjp=_pow_vjp, fmt="{0}**{p:g}", elementwise=True,
                code=lambda avals, p: "({0} * {0})" if p == 2.0 else "({0} ** %r)" % p,
                domain=lambda d: ([d.array(d.shape(), 0.3, 2.0)], {"p": d.choice([2.0, 3.0, 0.5, -1.0])}),
                doc="x ** p for a constant p",
        tex=(lambda a, p: a[0] + "^{%g}" % p, "power"))


# --- products --------------------------------------------------------------------------------

def _matvec_forward(xp, A, v):
    if A.ndim == 2:                              # shared weight: one GEMM over all rows
        if v.ndim <= 2:
            return v @ A.T
        rows = xp.reshape(v, (-1, v.shape[-1])) @ A.T
        return xp.reshape(rows, v.shape[:-1] + (A.shape[0],))
    return (A @ v[..., None])[..., 0]            # a weight per example


def _matvec_shape(A, v):
    if len(A.shape) != 2 or len(v.shape) != 1:
        raise ShapeMismatch("{0} must be a matrix and {1} a vector")
    if A.shape[1] != v.shape[0]:
        m, n = A.shape
        fix = ("the matrix looks transposed: declare it with shape (%d, %d)" % (n, m)
               if m == v.shape[0] else
               "declare the matrix with %d columns, e.g. shape (%d, %d)" % (v.shape[0], m,
                                                                            v.shape[0]))
        raise ShapeMismatch("{0} has %d columns but {1} has length %d" % (n, v.shape[0]), fix)
    return Aval((A.shape[0],), FLOAT, A.batched or v.batched)


def _matvec_vjp(g, out, A, v):
    dA = bind(outer_p, g, v, reduce=not A.batched)
    dv = bind(matvec_p, bind(transpose_p, A), g)
    return dA, dv


def _matvec_domain(d):
    m, n = d.integer(1, 4), d.integer(1, 4)
    return [d.array((m, n)), d.array((n,))], {}


matvec_p = defprim("matvec", nargs=2, forward=_matvec_forward, shape=_matvec_shape, vjp=_matvec_vjp,
                   fmt="{0} @ {1}", domain=_matvec_domain, weights=True,
                   code=lambda avals: None if avals[0].batched else "({1} @ {0}.T)",
                   doc="matrix times vector, W @ h (per example)",
        tex=("#0 #1", "product"))


def _outer_forward(xp, a, b, *, reduce):
    if not reduce:
        return a[..., :, None] * b[..., None, :]
    la, lb = a.ndim - 1, b.ndim - 1
    if la and lb:                                # sum over every row: one GEMM
        return xp.reshape(a, (-1, a.shape[-1])).T @ xp.reshape(b, (-1, b.shape[-1]))
    if la:
        a = xp.sum(xp.reshape(a, (-1, a.shape[-1])), axis=0)
    if lb:
        b = xp.sum(xp.reshape(b, (-1, b.shape[-1])), axis=0)
    return a[:, None] * b[None, :]


def _outer_shape(a, b, *, reduce):
    if len(a.shape) != 1 or len(b.shape) != 1:
        raise ShapeMismatch("outer products need two vectors, got {0} and {1}")
    return Aval(a.shape + b.shape, FLOAT, (a.batched or b.batched) and not reduce)


def _outer_vjp(g, out, a, b, *, reduce):
    return bind(matvec_p, g, b), bind(matvec_p, bind(transpose_p, g), a)


outer_p = defprim("outer", nargs=2, forward=_outer_forward, shape=_outer_shape, vjp=_outer_vjp,
                  fmt="{0} ⊗ {1}", leading=lambda reduce: "sum" if reduce else "map",
                  code=lambda avals, reduce: ("({0}.T @ {1})" if reduce and avals[0].batched
                                              and avals[1].batched else None),
                  domain=lambda d: ([d.array((d.integer(1, 4),)), d.array((d.integer(1, 4),))],
                                    {"reduce": d.choice([False, True])}),
                  doc="outer product a b^T; reduce=True also sums over the batch (weight gradients)",
        tex=(r"#0 #1^{\top}", "product"))


def _matmul_shape(A, B):
    if len(A.shape) != 2 or len(B.shape) != 2 or A.shape[1] != B.shape[0]:
        raise ShapeMismatch("{0} and {1} cannot be multiplied (inner sizes differ)")
    return Aval((A.shape[0], B.shape[1]), FLOAT, A.batched or B.batched)


matmul_p = defprim("matmul", nargs=2, forward=lambda xp, A, B: A @ B, shape=_matmul_shape,
                   vjp=lambda g, out, A, B: (bind(matmul_p, g, bind(transpose_p, B)),
                                             bind(matmul_p, bind(transpose_p, A), g)),
                   fmt="{0} @ {1}", code="({0} @ {1})", weights=True,
                   domain=lambda d: ([d.array((d.integer(1, 3), k := d.integer(1, 3))),
                                      d.array((k, d.integer(1, 3)))], {}),
                   doc="matrix product (per example)",
        tex=("#0 #1", "product"))

transpose_p = defprim("transpose", nargs=1, forward=lambda xp, A: xp.matrix_transpose(A),
                      shape=lambda A: Aval(A.shape[::-1], FLOAT, A.batched),
                      vjp=lambda g, out, A: (bind(transpose_p, g),), fmt="{0}ᵀ",
                      code="xp.matrix_transpose({0})",
                      domain=lambda d: ([d.array((d.integer(1, 3), d.integer(1, 3)))], {}),
                      views=True, doc="matrix transpose",
        tex=(r"#0^{\top}", "power"))


# --- reductions and (un)broadcasting ---------------------------------------------------------

def _sum_shape(x, *, axes, keepdims):
    r = len(x.shape)
    pos = {a + r for a in axes}
    shape = tuple(1 if i in pos else n for i, n in enumerate(x.shape) if keepdims or i not in pos)
    return Aval(shape, FLOAT, x.batched)


def _sum_vjp(g, out, x, *, axes, keepdims):
    if not keepdims:
        g = bind(reshape_p, g, shape=_sum_shape(x.aval, axes=axes, keepdims=True).shape,
                 old=g.shape)
    return (_bind_broadcast_like(g, x),)


def _sum_domain(d):
    s = d.shape(1, 3)
    axes = tuple(a - len(s) for a in range(len(s)) if d.choice([True, False])) or (-1,)
    return [d.array(s)], {"axes": axes, "keepdims": d.choice([False, True])}


sum_p = defprim("sum", nargs=1, forward=lambda xp, x, *, axes, keepdims: xp.sum(x, axis=axes,
                                                                                keepdims=keepdims),
                shape=_sum_shape, vjp=_sum_vjp, fmt="sum({0}, axes={axes})", domain=_sum_domain,
                code="xp.sum({0}, axis={axes}, keepdims={keepdims})", doc="sum over per-example axes",
        tex=r"\operatorname{sum}\left(#0\right)")


def _mean_batch_forward(xp, x, *, rank):
    lead = _lead(x, rank)
    return xp.mean(x, axis=tuple(range(lead))) if lead else x


mean_batch_p = defprim("mean_batch", nargs=1, forward=_mean_batch_forward,
                       shape=lambda x, *, rank: Aval(x.shape, FLOAT, False),
                       vjp=lambda g, out, x, *, rank: (_bind_broadcast_like(g, x, mean=True),),
                       fmt="mean_b({0})", leading=lambda rank: "other", views=True,
                       domain=lambda d: ([d.array(s := d.shape(0, 2))], {"rank": len(s)}),
                       doc="mean over the batch (each sequence's loss counts equally)")


def _sum_to_forward(xp, g, *, shape, drop, rank):
    lead = _lead(g, rank)
    extra = rank - len(shape)
    axes = list(range(lead)) if drop else []
    axes += [lead + i for i in range(extra)]
    axes += [lead + extra + i for i, n in enumerate(shape)
             if n == 1 and g.shape[lead + extra + i] != 1]
    if axes:
        g = xp.sum(g, axis=tuple(axes))
    return xp.reshape(g, (() if drop else g.shape[:lead]) + tuple(shape))


def _sum_to_vjp(ct, out, g, *, shape, drop, rank):
    if len(shape) < rank:
        ct = bind(reshape_p, ct, shape=(1,) * (rank - len(shape)) + tuple(shape), old=ct.shape)
    return (_bind_broadcast_like(ct, g),)


def _sum_to_domain(d):
    s = d.shape(1, 3)
    target = tuple(n if d.choice([True, False]) else 1 for n in s)[d.integer(0, len(s)):]
    g = d.array(s)
    return [g], {"shape": target, "drop": g.batched and d.choice([True, False]),
                 "rank": len(s)}


sum_to_p = defprim("sum_to", nargs=1, forward=_sum_to_forward,
                   shape=lambda g, *, shape, drop, rank: Aval(tuple(shape), FLOAT, g.batched and not drop),
                   vjp=_sum_to_vjp, fmt="sum_to({0}, {shape})", domain=_sum_to_domain,
                   leading=lambda shape, drop, rank: "sum" if drop else "map", views=True,
                   doc="unbroadcast: sum a cotangent down to an operand's shape (and batch)")


def _broadcast_like_forward(xp, g, ref, *, mean, rank):
    """Broadcast ``g`` to ``ref``'s shape, keeping the batch axes of whichever has them;
    ``rank`` is ``ref``'s per-example rank (a batched ``g`` has it too, an unbatched one
    aligns from the right)."""
    lead = ref.shape[:ref.ndim - rank]
    if not hasattr(g, "shape"):
        out = xp.full(ref.shape, g, dtype=xp.float_dtype)
    else:
        g_lead = g.shape[:g.ndim - rank] if g.ndim > rank else ()
        out = xp.broadcast_to(g, (g_lead if len(g_lead) > len(lead) else lead)
                              + ref.shape[ref.ndim - rank:])
    return out / math.prod(lead) if mean and lead else out


def _broadcast_like_shape(g, ref, *, mean, rank=None):
    if g.batched and len(g.shape) != len(ref.shape):
        raise ShapeMismatch("{0} must have the rank of {1} to broadcast to it")
    try:
        _broadcast(Aval(g.shape, FLOAT, False), Aval(ref.shape, FLOAT, False))
    except ShapeMismatch:
        raise ShapeMismatch("{0} cannot be broadcast to {1}") from None
    return Aval(ref.shape, FLOAT, ref.batched or g.batched)


def _broadcast_like_vjp(ct, out, g, ref, *, mean, rank):
    if mean:
        return bind(mean_batch_p, ct, rank=rank), None
    return bind(sum_to_p, ct, shape=g.shape, drop=not g.batched, rank=rank), None


def _broadcast_like_domain(d):
    s = d.shape(0, 3)
    ref = d.array(s)
    g = d.array(tuple(n if d.choice([True, False]) else 1 for n in s),
                batched=ref.batched and d.choice([True, False]))
    return [g, ref], {"mean": False, "rank": len(s)}


def _bind_broadcast_like(g, ref, mean=False):
    return bind(broadcast_like_p, g, ref, mean=mean, rank=len(ref.shape))


broadcast_like_p = defprim("broadcast_like", nargs=2, forward=_broadcast_like_forward, shape=_broadcast_like_shape,
                           vjp=_broadcast_like_vjp, fmt="broadcast({0} like {1})", domain=_broadcast_like_domain,
                           leading=lambda mean, rank: "other" if mean else "map", views=True,
                           shape_only=(1,),
                           doc="broadcast a cotangent back to an operand's shape; mean=True also divides by B")

zeros_like_p = defprim("zeros_like", nargs=1, forward=lambda xp, x: xp.zeros_like(x), shape=_same, vjp=None,
                       fmt="zeros_like({0})", code="xp.zeros_like({0})",
                       shape_only=(0,),
                       domain=lambda d: ([d.array(d.shape())], {}), doc="zeros of an operand's shape",
        tex="0")
zeros_p = defprim("zeros", nargs=0, forward=lambda xp, *, shape: xp.zeros(shape, dtype=xp.float_dtype),
                  shape=lambda *, shape: Aval(tuple(shape), FLOAT, False), vjp=None, fmt="0",
                  code="xp.zeros({shape}, dtype=xp.float_dtype)",
                  domain=lambda d: ([], {"shape": d.shape()}), doc="a zero array (start of a sum)",
        tex="0")
batch_zeros_p = defprim("batch_zeros", nargs=1,
                        forward=lambda xp, ref, *, shape, rank: xp.zeros(ref.shape[:ref.ndim - rank] + shape,
                                                                        dtype=xp.float_dtype),
                        shape=lambda ref, *, shape, rank: Aval(tuple(shape), FLOAT, ref.batched), vjp=None,
                        fmt="0", code=lambda avals, shape, rank: ("xp.zeros({0}.shape[:1] + %r, "
                                                                  "dtype=xp.float_dtype)" % (tuple(shape),)
                                                                  if avals[0].batched else None),
                        domain=lambda d: ([d.array(s := d.shape())], {"shape": d.shape(), "rank": len(s)}),
                        doc="zeros of a per-example shape with the batch axes of an operand (a running sum's "
                            "start, one per sequence)",
        tex="0")
ones_like_p = defprim("ones_like", nargs=1, forward=lambda xp, x: xp.ones_like(x), shape=_same, vjp=None,
                      fmt="ones_like({0})", code="xp.ones_like({0})",
                      shape_only=(0,),
                      domain=lambda d: ([d.array(d.shape())], {}), doc="ones of an operand's shape",
        tex="1")


# --- shapes: reshape, index, split, concat ---------------------------------------------------

def _reshape_shape(x, *, shape, old):
    if math.prod(shape) != math.prod(x.shape):
        raise ShapeMismatch("{0} has %d entries and cannot be reshaped to %s"
                            % (math.prod(x.shape), tuple(shape)))
    return Aval(tuple(shape), x.dtype, x.batched)


reshape_p = defprim("reshape", nargs=1,
                    forward=lambda xp, x, *, shape, old: xp.reshape(x, x.shape[:x.ndim - len(old)] + shape),
                    shape=_reshape_shape, vjp=lambda g, out, x, *, shape, old: (
                        bind(reshape_p, g, shape=old, old=shape),), fmt="reshape({0}, {shape})",
                    domain=lambda d: ([d.array(s := d.shape(1, 3))],
                                      {"shape": (1,) + s[::-1], "old": s}),
                    views=True, doc="reshape (per example)")


def _index_key(idx, rank):
    key = tuple(slice(*i) if isinstance(i, tuple) else i for i in idx)
    return (Ellipsis,) + key + (slice(None),) * (rank - len(idx))


def _index_parts(idx):
    return [f"{i[0]}:{i[1]}" if isinstance(i, tuple) else str(i) for i in idx]


def _index_text(idx):
    """Per-example indexing as the user wrote it: ``a[0:4]``."""
    return "[" + ", ".join(_index_parts(idx)) + "]"


def _index_src(idx, rank):
    """The same indexing on arrays with leading batch axes: ``a[..., 0:4]``."""
    return "[..., " + ", ".join(_index_parts(idx) + [":"] * (rank - len(idx))) + "]"


def _index_shape(x, *, idx, rank):
    kept = tuple(i[1] - i[0] for i in idx if isinstance(i, tuple))
    return Aval(kept + x.shape[len(idx):], x.dtype, x.batched)


def _unindex_forward(xp, g, *, idx, shape):
    rank = len(shape)
    g_rank = len(_index_shape(Aval(tuple(shape), FLOAT, False), idx=idx, rank=rank).shape)
    lead = g.shape[:g.ndim - g_rank]
    out = xp.zeros(lead + tuple(shape), dtype=g.dtype)
    out[_index_key(idx, rank)] = g
    return out


def _index_domain(d):
    s = d.shape(1, 3)
    idx = []
    for n in s[:d.integer(1, len(s))]:
        lo = d.integer(0, n - 1)
        idx.append(lo if d.choice([True, False]) else (lo, d.integer(lo + 1, n)))
    return [d.array(s)], {"idx": tuple(idx), "rank": len(s)}


def _unindex_domain(d):
    [x], p = _index_domain(d)
    g = d.array(_index_shape(Aval(x.shape, FLOAT, False), **p).shape)
    return [g], {"idx": p["idx"], "shape": x.shape}


index_p = defprim("index", nargs=1, forward=lambda xp, x, *, idx, rank: x[_index_key(idx, rank)],
                  shape=_index_shape,
                  vjp=lambda g, out, x, *, idx, rank: (bind(unindex_p, g, idx=idx, shape=x.shape),),
                  fmt=lambda a, idx, rank: a[0] + _index_text(idx),
                  code=lambda avals, idx, rank: "{0}" + _index_src(idx, rank),
                  domain=_index_domain, views=True, doc="indexing / slicing of per-example axes, a[:H]",
                  tex=lambda a, idx, rank: r"\left[%s\right]_{%s}" % (a[0], _index_text(idx)[1:-1]))
unindex_p = defprim("unindex", nargs=1, forward=_unindex_forward,
                    shape=lambda g, *, idx, shape: Aval(tuple(shape), FLOAT, g.batched),
                    vjp=lambda ct, out, g, *, idx, shape: (bind(index_p, ct, idx=idx, rank=len(shape)),),
                    fmt="pad({0} into {shape} at {idx})", domain=_unindex_domain,
                    doc="the transpose of index: place a value in a zero array")


def _split_forward(xp, x, *, sizes, axis):
    out, start = [], 0
    tail = (slice(None),) * (-axis - 1)
    for n in sizes:
        out.append(x[(Ellipsis, slice(start, start + n)) + tail])
        start += n
    return tuple(out)


def _split_shape(x, *, sizes, axis):
    if builtins.sum(sizes) != x.shape[axis]:
        raise ShapeMismatch("{0} has size %d along axis %d, not %d = %s"
                            % (x.shape[axis], axis, builtins.sum(sizes), " + ".join(map(str, sizes))))
    r = len(x.shape)
    return tuple(Aval(x.shape[:r + axis] + (n,) + x.shape[r + axis + 1:], FLOAT, x.batched)
                 for n in sizes)


def _split_vjp(gs, outs, x, *, sizes, axis):
    parts = [g if g is not None else bind(zeros_like_p, o) for g, o in zip(gs, outs)]
    return (bind(concat_p, *parts, axis=axis, rank=len(x.shape)),)


def _split_code(avals, sizes, axis):
    tail = ", :" * (-axis - 1)
    starts = [builtins.sum(sizes[:i]) for i in range(len(sizes))]
    return "(%s,)" % ", ".join("{0}[..., %d:%d%s]" % (s, s + n, tail)
                               for s, n in zip(starts, sizes))


split_p = defprim("split", nargs=1, nouts=None, forward=_split_forward, shape=_split_shape, vjp=_split_vjp,
                  fmt="split({0}, {sizes})", code=_split_code,
                  domain=lambda d: ([d.array((builtins.sum(sz := [d.integer(1, 3) for _ in range(d.integer(1, 4))]),))],
                                    {"sizes": tuple(sz), "axis": -1}),
                  views=True, doc="split along an axis into pieces (LSTM gates)")


def _concat_forward(xp, *xs, axis, rank):
    leads = [x.shape[:x.ndim - rank] for x in xs]
    lead = builtins.max(leads, key=len)
    xs = [x if len(l) == len(lead) else xp.broadcast_to(x, lead + x.shape[x.ndim - rank:])
          for x, l in zip(xs, leads)]
    return xp.concat(xs, axis=axis)


def _concat_shape(*xs, axis, rank):
    r = len(xs[0].shape)
    for x in xs:
        others = [n for i, n in enumerate(x.shape) if i != r + axis]
        first = [n for i, n in enumerate(xs[0].shape) if i != r + axis]
        if len(x.shape) != r or others != first:
            raise ShapeMismatch("concatenated pieces must agree except along axis %d: %s"
                                % (axis, ", ".join("{%d}" % i for i in range(len(xs)))))
    size = builtins.sum(x.shape[axis] for x in xs)
    shape = xs[0].shape[:r + axis] + (size,) + xs[0].shape[r + axis + 1:]
    return Aval(shape, FLOAT, any(x.batched for x in xs))


def _concat_vjp(g, out, *xs, axis, rank):
    return bind(split_p, g, sizes=tuple(x.shape[axis] for x in xs), axis=axis)


concat_p = defprim("concat", nargs=None, forward=_concat_forward, shape=_concat_shape, vjp=_concat_vjp,
                   fmt=lambda a, **p: "concat(%s)" % ", ".join(a),
                   domain=lambda d: ([d.array((d.integer(1, 3),)) for _ in range(d.integer(1, 3))],
                                     {"axis": -1, "rank": 1}),
                   doc="join along an axis",
        tex=lambda a, **p: r"\left[" + "; ".join(a) + r"\right]")


# --- classification --------------------------------------------------------------------------

def _log_softmax_forward(xp, x):
    m = xp.max(x, axis=-1, keepdims=True)
    z = x - m
    return z - xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))


def _log_softmax_vjp(g, out, x):
    return (g - exp(out) * sum(g, axis=-1, keepdims=True),)


log_softmax_p = defprim("log_softmax", nargs=1, forward=_log_softmax_forward,
                        shape=lambda x: _same(x) if x.shape else _raise("log_softmax needs a vector, got {0}"),
                        vjp=_log_softmax_vjp, fmt="log_softmax({0})",
                        domain=lambda d: ([d.array(d.shape(1, 2))], {}),
                        doc="log of the softmax over the last axis, computed stably",
        tex=r"\log\operatorname{softmax}\left(#0\right)")


def _raise(msg):
    raise ShapeMismatch(msg)


def _pick_forward(xp, x, y):
    lead = builtins.max(x.shape[:-1], y.shape, key=len)
    if x.shape[:-1] != lead:
        x = xp.broadcast_to(x, lead + x.shape[-1:])
    idx = xp.broadcast_to(y, lead)[..., None]
    return xp.take_along_axis(x, idx, axis=-1)[..., 0]


def _pick_shape(x, y):
    if y.dtype != INT:
        raise ShapeMismatch("{1} must be an integer class index", "declare it with dtype='int'")
    if not x.shape or x.shape[:-1] != y.shape:
        raise ShapeMismatch("{0} needs one class index per row, but {1} has shape %s"
                            % (y.shape,))
    return Aval(y.shape, FLOAT, x.batched or y.batched)


def _pick_vjp(g, out, x, y):
    n = x.shape[-1]
    return bind(one_hot_p, y, n=n) * bind(reshape_p, g, shape=g.shape + (1,), old=g.shape), None


pick_p = defprim("pick", nargs=2, forward=_pick_forward, shape=_pick_shape, vjp=_pick_vjp,
                 fmt="{0}[{1}]", bounds=lambda x, y: {1: x.shape[-1]},
                 domain=lambda d: ([d.array((k := d.integer(1, 4),)), d.ints((), k)], {}),
                 doc="x[y]: the entry of the class y (cross-entropy)",
        tex=r"\left[#0\right]_{#1}")

hardmax_p = defprim("hardmax", nargs=1,
                    forward=lambda xp, x: xp.astype(x == xp.max(x, axis=-1, keepdims=True), x.dtype),
                    shape=lambda x: _same(x) if x.shape else _raise("hardmax needs a vector, got {0}"),
                    vjp=None, fmt="hardmax({0})",
                    domain=lambda d: ([d.array(d.shape(1, 2))], {}),
                    doc="one-hot vector of the largest entry (greedy decoding); no gradient",
        tex=r"\operatorname{hardmax}\left(#0\right)")
one_hot_p = defprim("one_hot", nargs=1,
                    forward=lambda xp, y, *, n: xp.astype(y[..., None] == xp.arange(n), xp.float_dtype),
                    shape=lambda y, *, n: (Aval(y.shape + (n,), FLOAT, y.batched) if y.dtype == INT else
                                           _raise("{0} must be an integer class index")),
                    vjp=None, fmt="onehot({0}, {n})", bounds=lambda y, *, n: {0: n},
                    domain=lambda d: ([d.ints((), k := d.integer(1, 4))], {"n": k}),
                    doc="one-hot float vector of an integer class index",
        tex=r"\mathbf{1}_{#0}")


# --- the helpers users call (composites first: no gradient rule of their own) -----------------

def tanh(x) -> Var:
    """Hyperbolic tangent, elementwise.

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.tanh(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[-0.7616,  0.    ,  0.964 ]])
    """
    return bind(tanh_p, x)


def sigmoid(x) -> Var:
    """Logistic sigmoid σ(x) = 1 / (1 + e^-x), elementwise.

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.sigmoid(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[0.2689, 0.5   , 0.8808]])
    """
    return bind(sigmoid_p, x)


def relu(x) -> Var:
    """Rectified linear unit max(x, 0), elementwise.

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.relu(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[0., 0., 2.]])
    """
    return bind(relu_p, x)


def exp(x) -> Var:
    """e^x, elementwise.

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.exp(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[0.3679, 1.    , 7.3891]])
    """
    return bind(exp_p, x)


def log(x) -> Var:
    """Natural logarithm, elementwise.

    Parameters
    ----------
    x : Var
        A value of a circuit (positive entries).

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.log(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[0.5, 1.0, 2.0]]))["y"].round(4)
    array([[-0.6931,  0.    ,  0.6931]])
    """
    return bind(log_p, x)


def sin(x) -> Var:
    """Sine, elementwise (a primitive)."""
    return bind(sin_p, x)


def cos(x) -> Var:
    """Cosine, elementwise (a primitive)."""
    return bind(cos_p, x)


def abs(x) -> Var:
    """|x|, elementwise (a primitive; its derivative is x/|x|, undefined at 0)."""
    return bind(abs_p, x)


def sqrt(x) -> Var:
    """Square root, elementwise, of positive values (a primitive)."""
    return bind(sqrt_p, x)


def square(x) -> Var:
    """x², elementwise (a composite: x * x)."""
    return x * x


def softplus(x) -> Var:
    """log(1 + eˣ), elementwise, computed without overflow (a primitive)."""
    return bind(softplus_p, x)


def maximum(a, b) -> Var:
    """Elementwise maximum (a primitive; at a tie the gradient goes to neither)."""
    return bind(maximum_p, a, b)


def minimum(a, b) -> Var:
    """Elementwise minimum (a primitive; at a tie the gradient goes to neither)."""
    return bind(minimum_p, a, b)


def clip(x, lo: float, hi: float) -> Var:
    """``x`` limited to [lo, hi], elementwise (a composite of minimum and maximum)."""
    lo = _real(lo, "ur.clip: lo")
    hi = _real(hi, "ur.clip: hi")
    if not lo < hi:
        raise UnrollError(f"ur.clip: lo = {lo} must be below hi = {hi}")
    return minimum(maximum(x, lo), hi)


def leaky_relu(x, slope: float = 0.01) -> Var:
    """x for x > 0, slope·x below (a composite: relu(x) - slope · relu(-x))."""
    slope = _real(slope, "ur.leaky_relu: slope")
    return relu(x) - slope * relu(-x)


def elu(x, alpha: float = 1.0) -> Var:
    """x for x > 0, α(eˣ - 1) below (a composite: relu(x) + α(exp(-relu(-x)) - 1))."""
    alpha = _real(alpha, "ur.elu: alpha")
    return relu(x) + alpha * (exp(-relu(-x)) - 1.0)


def swish(x) -> Var:
    """x·σ(x), SiLU (a composite)."""
    return x * sigmoid(x)


def gelu(x) -> Var:
    """GELU, tanh approximation 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))) (a composite)."""
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


def where(mask, a, b) -> Var:
    """``a`` where ``mask`` is 1, ``b`` where it is 0: mask·a + (1 - mask)·b (a composite; the
    mask, from a comparison such as ``x > 0``, passes no gradient)."""
    return mask * a + (1.0 - mask) * b


def max(x, axis: int = -1) -> Var:
    """The largest entry along ``axis`` (default the last): Σ x · hardmax(x) (a composite;
    the gradient goes to the largest entry)."""
    x = _var(x, "max")
    (ax,) = _axes(x, axis, "max")
    if ax != -1:                                   # move the axis last, where hardmax looks
        raise UnrollError("ur.max: only the last axis is supported (axis=-1); transpose the "
                          "value first")
    return sum(x * hardmax(x), axis=-1)


def min(x, axis: int = -1) -> Var:
    """The smallest entry along ``axis`` (the last): -max(-x) (a composite)."""
    return -max(-_var(x, "min"), axis)


def stack(xs, axis: int = 0) -> Var:
    """Values of the same shape joined along a new axis (a composite: each reshaped with an
    axis of size 1 there, then concatenated)."""
    if not isinstance(xs, (list, tuple)) or not xs:
        raise UnrollError(f"ur.stack takes a non-empty list of circuit values, not "
                          f"{type(xs).__name__} {xs!r:.40}")
    xs = [_var(x, "stack") for x in xs]
    shape = xs[0].shape
    for x in xs[1:]:
        if x.shape != shape:
            raise ShapeError(f"ur.stack: {x!r} has shape {x.shape}, but {xs[0]!r} has {shape}; "
                             "stacked values must have one shape")
    r = len(shape) + 1
    axis = integer(axis, "ur.stack: axis")
    if not -r <= axis < r:
        raise ShapeError(f"ur.stack: axis {axis} is out of range for the result's rank {r}")
    axis %= r
    new = shape[:axis] + (1,) + shape[axis:]
    return concat([reshape(x, new) for x in xs], axis=axis - r)


def layer_norm(x, gain=None, bias=None, eps: float = 1e-5) -> Var:
    """Layer normalisation over the last axis (Ba, Kiros & Hinton, 2016), a composite:
    (x - mean(x)) / sqrt(var(x) + eps), times ``gain`` and plus ``bias`` when given.

    Parameters
    ----------
    x : Var
    gain, bias : Var, optional
        Parameters of the last axis's size.
    eps : float

    Returns
    -------
    Var
    """
    x = _var(x, "layer_norm")
    if not x.shape:
        raise ShapeError(f"ur.layer_norm: {x!r} is a scalar per example; it normalises over "
                         "the last axis of a vector")
    eps = _real(eps, "ur.layer_norm: eps")
    if eps <= 0:
        raise UnrollError(f"ur.layer_norm: eps must be > 0, not {eps}")
    centred = x - mean(x, axis=-1, keepdims=True)
    out = centred / sqrt(mean(centred * centred, axis=-1, keepdims=True) + eps)
    if gain is not None:
        out = out * gain
    if bias is not None:
        out = out + bias
    return out


def dropout(x, name: str) -> Var:
    """Inverted dropout with its mask an input of the graph: ``x · m(t)``, where the circuit
    input ``name`` (x's shape, per step) holds 0 or 1/(1 - rate) per entry. Pass
    :func:`dropout_masks` at run time: seeded, so the same masks give the same gradients;
    ``train=False`` gives masks of ones (evaluation).

    Parameters
    ----------
    x : Var
        A float value of a circuit.
    name : str
        The name of the mask input it declares.

    Returns
    -------
    Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("drop")
    >>> x = c.input("x", (4,))
    >>> _ = c.output("y", ur.dropout(x, "m"))
    >>> g = c.unroll(steps=2)
    >>> m = ur.dropout_masks(g, rate=0.5, seed=0, batch=1)
    >>> sorted(np.unique(m["m"]))
    [np.float64(0.0), np.float64(2.0)]
    >>> g.run({}, x=np.ones((2, 1, 4)), **ur.dropout_masks(g, 0.5, train=False))["y"].sum()
    np.float64(8.0)
    """
    x = _var(x, "dropout")
    c = x.builder
    if not hasattr(c, "input"):
        raise UnrollError("ur.dropout declares its mask as an input: use it while declaring a "
                          "circuit")
    mask = c.input(name, x.shape)
    c.dropout[name] = x.shape
    return x * mask


def _real(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise UnrollError(f"{what} must be a finite number, not {v!r:.40}")
    return float(v)


def stop_gradient(x) -> Var:
    """``x`` itself, treated as a constant by the backward pass.

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        ``x``, with no gradient flowing back through it.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x, w = c.input("x", ()), c.param("w", ())
    >>> _ = c.loss(ur.stop_gradient(w * w) + w * x)
    >>> g = c.unroll(steps=1)
    >>> g.value_and_grad({"w": np.array(3.0)}, x=np.array([2.0]))[1]["w"]   # d(w·x)/dw only
    np.float64(2.0)
    """
    return bind(stop_gradient_p, x)


# --- matmul and the operators of a circuit value: each is one of the primitives above ----------

def matmul(a, b) -> Var:
    """``a @ b`` with the per-example ranks deciding the product, as in the textbook: matrix
    times vector (``matvec``), vector times matrix (``Bᵀ a``), matrix times matrix, or the dot
    product of two vectors.

    Parameters
    ----------
    a, b : Var or array
        A matrix and a vector, two matrices, or two vectors (per example).

    Returns
    -------
    Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> W = c.param("W", (2, 3))
    >>> (W @ x).shape, ur.matmul(x, x).shape
    ((2,), ())
    """
    a, b = _as_operand(a), _as_operand(b)
    ra, rb = len(a.aval.shape), len(b.aval.shape)
    if (ra, rb) == (2, 1):
        return bind(matvec_p, a, b)
    if (ra, rb) == (1, 2):                       # row vector times matrix: (B^T a)
        if a.aval.shape[0] != b.aval.shape[0]:
            hint = (f"; for the matrix times the vector write {_describe(b)} @ {_describe(a)}"
                    if b.aval.shape[1] == a.aval.shape[0] else "")
            raise ShapeError(f"{_describe(a)} @ {_describe(b)}: the vector has length "
                             f"{a.aval.shape[0]} but the matrix has {b.aval.shape[0]} rows"
                             f"{hint}{_where(a, b)}")
        return bind(matvec_p, bind(transpose_p, b), a)
    if (ra, rb) == (2, 2):
        return bind(matmul_p, a, b)
    if (ra, rb) == (1, 1):
        return bind(sum_p, bind(mul_p, a, b), axes=(-1,), keepdims=False)
    raise ShapeError(f"{_describe(a)} @ {_describe(b)}: @ needs vectors or matrices, "
                     f"got shapes {a.aval.shape} and {b.aval.shape}")


def _pow(x, p):
    if isinstance(p, Var):                       # a ** b = exp(b log a), for a > 0
        return exp(p * log(x))
    try:
        finite = not isinstance(p, bool) and isinstance(p, numbers.Real) and \
            math.isfinite(float(p))
    except OverflowError:                         # an int too large for a float
        finite = False
    if not finite:
        raise UnrollError(f"{x!r} ** {p!r:.40}: the exponent must be a finite number")
    return bind(pow_p, x, p=float(p))


def _rpow(x, base):
    """``base ** x`` for a constant base > 0: exp(x log base)."""
    try:
        ok = not isinstance(base, bool) and isinstance(base, numbers.Real) and \
            math.isfinite(float(base)) and base > 0
    except OverflowError:
        ok = False
    if not ok:
        raise UnrollError(f"{base!r:.40} ** {x!r}: the base must be a finite number > 0")
    return exp(x * math.log(float(base)))


def _transpose(x) -> Var:
    if x.ndim != 2:
        raise ShapeError(f"{x!r}.T: only a matrix (rank 2) can be transposed")
    return bind(transpose_p, x)


def _getitem(x, key) -> Var:
    return bind(index_p, x, idx=normalize_index(key, x.shape, x), rank=x.ndim)


Var.__add__ = lambda a, b: bind(add_p, a, b)
Var.__radd__ = lambda a, b: bind(add_p, b, a)
Var.__sub__ = lambda a, b: bind(sub_p, a, b)
Var.__rsub__ = lambda a, b: bind(sub_p, b, a)
Var.__mul__ = lambda a, b: bind(mul_p, a, b)
Var.__rmul__ = lambda a, b: bind(mul_p, b, a)
Var.__truediv__ = lambda a, b: bind(div_p, a, b)
Var.__rtruediv__ = lambda a, b: bind(div_p, b, a)
Var.__neg__ = lambda a: bind(neg_p, a)
Var.__pos__ = lambda a: a
Var.__pow__ = _pow
Var.__rpow__ = lambda a, b: _rpow(a, b)
Var.__matmul__ = lambda a, b: matmul(a, b)
Var.__rmatmul__ = lambda a, b: matmul(b, a)
Var.T = property(_transpose)
# comparisons give float masks (1.0 or 0.0) that pass no gradient, for ur.where
Var.__gt__ = lambda a, b: bind(step_p, a - b)
Var.__lt__ = lambda a, b: bind(step_p, b - a)
Var.__ge__ = lambda a, b: 1.0 - bind(step_p, b - a)
Var.__le__ = lambda a, b: 1.0 - bind(step_p, a - b)
Var.__getitem__ = _getitem


#: the circuit-only pseudo-primitive that selects result ``i`` of a multi-output operation
#: inside a circuit body (the unroller maps it to the i-th output of the unrolled equation;
#: it never appears in a Graph, so it has no rules beyond its shape and print format)
part_p = defprim("part", nargs=1, forward=lambda xp, whole, *, i: whole[i],
                 shape=lambda a, *, i: a[i], vjp=None, fmt="{0}[{i}]", circuit_only=True,
                 doc="result i of a multi-output operation (circuit bodies only)")


# --- your own primitives ------------------------------------------------------------------------

def primitive(name: str, forward, vjp, *, shape=None, fmt: str | None = None, code=None,
              domain=None, nargs: int | None = None, views: bool = False, doc: str = "",
              tex=None):
    """Define a primitive of your own: it then works everywhere a built-in one does
    (unrolling, reverse mode of any order, the compiler and both executors, printing, the
    ``detail="ops"`` diagram, gradcheck, checkpointing, the random circuits).

    Parameters
    ----------
    name : str
        An identifier not yet registered.
    forward : callable
        ``forward(xp, *arrays, **params) -> array``, with ``xp`` the array namespace (NumPy,
        CuPy, ...): never import an array library in it. Arrays carry leading batch axes.
    vjp : callable or None
        ``vjp(g, out, *operands, **params) -> one cotangent per operand`` (None for an
        integer operand), written with unroll's primitives so it can be differentiated
        again; None if the primitive passes no gradient (a mask, a step).
    shape : callable, optional
        ``shape(*avals, **params) -> Aval``; default: elementwise (operands broadcast like
        NumPy, per example).
    fmt : str, optional
        How it prints, e.g. ``"softplus({0})"`` (the default).
    tex : str, optional
        How :func:`unroll.latex` writes it, with operands ``#0``, ``#1``, ...: e.g.
        ``r"\\operatorname{softplus}\\left(#0\\right)"`` (the default, from the name).
    code : str or callable, optional
        An inline template for the compiled program, e.g. ``"xp.log(1.0 + xp.exp({0}))"``;
        default: a call of ``forward``.
    domain : callable, optional
        ``domain(d) -> (operands, params)`` for the property tests; default, for an
        elementwise primitive: arrays of broadcastable shapes with entries in [-2, 2].
    nargs : int, optional
        The number of operands; default: ``forward``'s positional parameters after ``xp``.
    views : bool
        Its result may share memory with an operand.
    doc : str
        One line for the docs.

    Returns
    -------
    callable
        ``op(*operands, **params)`` applying it in a circuit; ``op.primitive`` is the handle.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> cube = ur.primitive("cube_example", lambda xp, x: x * x * x,
    ...                     lambda g, out, x: (g * 3.0 * x * x,))
    >>> c = ur.Circuit("cubes")
    >>> _ = c.loss(ur.sum(cube(c.input("x", (2,)))))
    >>> float(c.unroll(steps=1).run({}, x=np.array([[1.0, 2.0]]))["loss"])
    9.0
    >>> import unroll.testing
    >>> ur.testing.check_primitive(cube)      # the same property tests as the built-ins
    20
    >>> ur.unregister(cube)
    """
    import inspect
    import keyword
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise UnrollError(f"ur.primitive: the name must be an identifier, not {name!r:.40}")
    if name in PRIMITIVES:
        raise UnrollError(f"ur.primitive: {name!r} is registered already; pick another name "
                          "(or ur.unregister the old one first)")
    if not callable(forward):
        raise UnrollError(f"ur.primitive {name}: forward must be a function "
                          "(xp, *arrays, **params) -> array")
    if vjp is not None and not callable(vjp):
        raise UnrollError(f"ur.primitive {name}: vjp must be a function "
                          "(g, out, *operands, **params) -> cotangents, or None")
    try:
        sig = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):                 # pragma: no cover - builtins
        sig = []
    if not sig or sig[0].kind not in (sig[0].POSITIONAL_ONLY, sig[0].POSITIONAL_OR_KEYWORD):
        raise UnrollError(f"ur.primitive {name}: forward takes the array namespace first, "
                          "forward(xp, *arrays, **params): write lambda xp, x: ...")
    ps = sig[1:]
    if nargs is None:
        nargs = builtins.sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and
                             p.default is p.empty for p in ps)
    nargs = integer(nargs, f"ur.primitive {name}: nargs", 0)
    if nargs == 0 and shape is None:
        raise UnrollError(f"ur.primitive {name}: forward takes no array after xp; an "
                          "elementwise primitive takes at least one (lambda xp, x: ...)")
    kwargs = {p.name for p in ps if p.kind is p.KEYWORD_ONLY or p.default is not p.empty}
    open_kw = any(p.kind is p.VAR_KEYWORD for p in ps)
    if isinstance(code, str):                        # a template must fit the operands
        try:
            code.format(*[f"a{i}" for i in range(nargs)], **{k: 0 for k in kwargs})
        except (IndexError, KeyError) as e:
            raise UnrollError(f"ur.primitive {name}: the code template {code!r} does not fit "
                              f"{nargs} operand(s) ({{0}}..{{{nargs - 1}}}) and the params "
                              f"{sorted(kwargs)} ({type(e).__name__}: {e})") from None
    if shape is None:                                # elementwise: try the forward rule once
        from . import backends
        from .backends import numpy as host
        ns = backends.get(host.module(), host.module().float64)
        probe = [ns.asarray([[0.1, 0.2, 0.3], [0.6, 0.7, 0.9]])] * nargs
        try:
            got = forward(ns, *probe)
        except Exception as e:
            raise UnrollError(f"ur.primitive {name}: forward(xp, {', '.join(['x'] * nargs)}) "
                              f"failed on (2, 3) arrays: {type(e).__name__}: {e}") from None
        if not hasattr(got, "shape") or tuple(got.shape) != (2, 3):
            raise UnrollError(f"ur.primitive {name}: forward returned "
                              f"{type(got).__name__} of shape {getattr(got, 'shape', None)} "
                              "for (2, 3) operands; an elementwise primitive returns an array "
                              "of its operands' shape (else give shape=...)")
    for what, v in (("fmt", fmt), ("doc", doc), ("tex", tex)):
        if v is not None and not isinstance(v, str):
            raise UnrollError(f"ur.primitive {name}: {what} must be a str, not {v!r:.40}")
    if code is not None and not (isinstance(code, str) or callable(code)):
        raise UnrollError(f"ur.primitive {name}: code must be a template str or a function")
    elementwise = shape is None
    if domain is None and elementwise:
        def domain(d):
            s = d.shape()
            return [d.array(s)] + [d.array(d.broadcastable(s)) for _ in range(nargs - 1)], {}
    p = defprim(name, nargs=nargs, forward=forward, vjp=vjp,
                shape=shape or (_same if nargs == 1 else _broadcast),
                fmt=fmt or f"{name}({', '.join('{%d}' % i for i in range(nargs))})",
                code=code, domain=domain, elementwise=elementwise,
                views=flag(views, f"ur.primitive {name}: views"), doc=doc or name, tex=tex)

    def op(*operands, **params):
        bad = [k for k in params if k not in kwargs] if not open_kw else []
        if bad:
            raise UnrollError(f"{name}() has no parameter {bad[0]!r}"
                              f"{suggest(bad[0], kwargs)}; its forward takes "
                              f"{', '.join(sorted(kwargs)) or 'none'}")
        return bind(p, *operands, **params)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc or f"The primitive {name} (defined with ur.primitive)."
    op.primitive = p
    return op


def unregister(op) -> None:
    """Remove a primitive defined with :func:`primitive` (graphs already built with it keep
    working; new expressions cannot use it)."""
    p = getattr(op, "primitive", op)
    if not isinstance(p, Primitive) or PRIMITIVES.get(p.name) is not p:
        raise UnrollError(f"ur.unregister: {op!r:.60} is not a registered primitive")
    if getattr(sys.modules[__name__], f"{p.name}_p", None) is p:
        raise UnrollError(f"ur.unregister: {p.name} is one of unroll's own primitives")
    del PRIMITIVES[p.name]


# --- checking what users pass to the helpers (parameters become literals of the program) ------

def _var(x, op: str) -> Var:
    if not isinstance(x, Var):
        raise UnrollError(f"ur.{op}: expected a circuit value (built from the circuit's inputs, "
                          f"parameters and states), got {type(x).__name__} {x!r}")
    return x


def _axes(x: Var, axis, op: str) -> tuple:
    """Per-example axes as negative ints, checked against ``x``'s rank (the batch axis is
    not one of them)."""
    r = len(x.shape)
    axes = tuple(range(r)) if axis is None else (tuple(axis) if isinstance(axis, (tuple, list))
                                                  else (axis,))
    out = []
    for a in axes:
        a = integer(a, f"ur.{op}(..., axis=...): an axis")
        if not -r <= a < r:
            raise ShapeError(f"ur.{op}: axis {a} is out of range for {x!r}, whose per-example "
                             f"rank is {r} (axes {-r}..{r - 1}; the batch axis is not one of "
                             "them)" if r else f"ur.{op}: {x!r} is a scalar per example and "
                             "has no axis to reduce; drop axis=...")
        out.append(a % r - r)
    if len(set(out)) != len(out):
        raise ShapeError(f"ur.{op}: axis {axis!r} names an axis twice")
    return tuple(sorted(out))


def sum(x, axis=None, keepdims: bool = False) -> Var:
    """Sum over per-example axes (all of them by default); the batch axis is never summed.

    Parameters
    ----------
    x : Var
    axis : int or tuple of int, optional
        Per-example axes (default: all).
    keepdims : bool

    Returns
    -------
    Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> A = c.input("A", (2, 3))
    >>> _ = c.output("y", ur.sum(A, axis=-1))
    >>> c.unroll(steps=1).run({}, A=np.arange(6.0).reshape(1, 2, 3))["y"]
    array([[ 3., 12.]])
    """
    x = _var(x, "sum")
    axes = _axes(x, axis, "sum")
    keepdims = flag(keepdims, "ur.sum(..., keepdims=...)")
    if not axes:
        return x
    return bind(sum_p, x, axes=axes, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Var:
    """Mean over per-example axes (all of them by default).

    Parameters
    ----------
    x : Var
    axis : int or tuple of int, optional
        Per-example axes (default: all).
    keepdims : bool

    Returns
    -------
    Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> A = c.input("A", (2, 3))
    >>> _ = c.output("y", ur.mean(A, axis=0))
    >>> c.unroll(steps=1).run({}, A=np.arange(6.0).reshape(1, 2, 3))["y"]
    array([[1.5, 2.5, 3.5]])
    """
    x = _var(x, "mean")
    axes = _axes(x, axis, "mean")
    n = math.prod(x.shape[a] for a in axes)
    return sum(x, axes, keepdims) * (1.0 / n)


def reshape(x, shape) -> Var:
    """Reshape a per-example value.

    Parameters
    ----------
    x : Var
    shape : tuple of int
        The new per-example shape (same number of entries).

    Returns
    -------
    Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (6,))
    >>> ur.reshape(x, (2, 3)).shape
    (2, 3)
    """
    x = _var(x, "reshape")
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise ShapeError(f"ur.reshape: shape must be a tuple of sizes, not {shape!r}")
    shape = tuple(integer(n, f"ur.reshape: size {n!r} of shape {tuple(shape)}", 1) for n in shape)
    return bind(reshape_p, x, shape=shape, old=x.shape)


def concat(xs, axis: int = -1) -> Var:
    """Join vectors (or arrays) along a per-example axis.

    Parameters
    ----------
    xs : list of Var
        Values of one circuit, equal but for the joined axis.
    axis : int

    Returns
    -------
    Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (2,))
    >>> _ = c.output("y", ur.concat([x, 2 * x]))
    >>> c.unroll(steps=1).run({}, x=np.array([[1.0, 2.0]]))["y"]
    array([[1., 2., 2., 4.]])
    """
    if isinstance(xs, Var) or not hasattr(xs, "__iter__"):
        raise UnrollError(f"ur.concat takes a list of values, e.g. ur.concat([a, b]); got "
                          f"{type(xs).__name__}")
    xs = [_var(x, "concat") for x in xs]
    if not xs:
        raise ShapeError("ur.concat([]): there is nothing to join; pass at least one value")
    r = len(xs[0].shape)
    if r == 0:
        raise ShapeError(f"ur.concat: {xs[0]!r} is a scalar per example; join vectors "
                         "(ur.reshape(x, (1,)) makes a scalar one)")
    if isinstance(axis, (tuple, list)):
        raise UnrollError(f"ur.concat joins along one axis, not {axis!r}")
    return bind(concat_p, *xs, axis=_axes(xs[0], axis, "concat")[0], rank=r)


def split(x, sections, axis: int = -1) -> tuple:
    """Split along ``axis`` into ``sections`` equal parts (an int) or parts of the given sizes.

    Parameters
    ----------
    x : Var
    sections : int or tuple of int
        A number of equal parts, or their sizes.
    axis : int

    Returns
    -------
    tuple of Var

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (4,))
    >>> i, f = ur.split(x, 2)                  # two gates of an LSTM, say
    >>> _ = c.output("y", i * f)
    >>> c.unroll(steps=1).run({}, x=np.array([[1.0, 2.0, 3.0, 4.0]]))["y"]
    array([[3., 8.]])
    """
    x = _var(x, "split")
    if not x.shape:
        raise ShapeError(f"ur.split: {x!r} is a scalar per example and cannot be split")
    if isinstance(axis, (tuple, list)):
        raise UnrollError(f"ur.split splits along one axis, not {axis!r}")
    ax = _axes(x, axis, "split")[0]
    n = x.shape[ax]
    if isinstance(sections, numbers.Integral) and not isinstance(sections, bool):
        k = integer(sections, "ur.split: the number of parts", 1)
        if n % k:
            raise ShapeError(f"ur.split: {x!r} has size {n} along axis {ax}, which does not "
                             f"split into {k} equal parts; give the sizes instead, e.g. "
                             f"ur.split(x, {(n // k + 1,) * (n % k) + (n // k,) * (k - n % k)})")
        sizes = (n // k,) * k
    elif isinstance(sections, (tuple, list)):
        sizes = tuple(integer(m, f"ur.split: part size {m!r}", 1) for m in sections)
        if not sizes:
            raise ShapeError("ur.split: give at least one part size")
    else:
        raise UnrollError(f"ur.split: sections must be a number of equal parts or a tuple of "
                          f"sizes, not {sections!r}")
    return bind(split_p, x, sizes=sizes, axis=ax)


def log_softmax(x) -> Var:
    """log softmax over the last axis (stable).

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.log_softmax(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[-3.1698, -2.1698, -0.1698]])
    """
    return bind(log_softmax_p, x)


def softmax(x) -> Var:
    """softmax over the last axis, exp(log_softmax(x)).

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.softmax(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[0.042 , 0.1142, 0.8438]])
    """
    return exp(log_softmax(x))


def hardmax(x) -> Var:
    """One-hot vector of the largest entry of ``x`` (last axis): greedy feedback of a model's
    own output. Constant for the backward pass.

    Parameters
    ----------
    x : Var
        A value of a circuit.

    Returns
    -------
    Var
        Same shape.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> x = c.input("x", (3,))
    >>> _ = c.output("y", ur.hardmax(x))
    >>> c.unroll(steps=1).run({}, x=np.array([[-1.0, 0.0, 2.0]]))["y"].round(4)
    array([[0., 0., 1.]])
    """
    return bind(hardmax_p, x)


def one_hot(y, n: int) -> Var:
    """Float one-hot vector of length ``n`` for an integer class index ``y``.

    Parameters
    ----------
    y : Var
        An integer input (class indices).
    n : int
        The number of classes.

    Returns
    -------
    Var
        Shape (n,), floats.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> y = c.input("y", (), dtype="int")
    >>> _ = c.output("o", ur.one_hot(y, 3))
    >>> c.unroll(steps=2).run({}, y=np.array([2, 0]))["o"]
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    return bind(one_hot_p, _var(y, "one_hot"), n=integer(n, "ur.one_hot: the number of classes n",
                                                        1))


def softmax_cross_entropy(o, y) -> Var:
    """-log softmax(o)[y]: cross-entropy of logits ``o`` against an integer class ``y``.

    Parameters
    ----------
    o : Var
        Logits, shape (K,).
    y : Var
        An integer input: the class, 0..K-1.

    Returns
    -------
    Var
        A scalar per example (a per-step loss for c.loss).

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> o = c.input("o", (3,))
    >>> y = c.input("y", (), dtype="int")
    >>> _ = c.loss(ur.softmax_cross_entropy(o, y))
    >>> out = c.unroll(steps=1).run({}, o=np.array([[0.0, 0.0, 0.0]]), y=np.array([1]))
    >>> float(out["loss"].round(4))                # log 3
    1.0986
    """
    return -bind(pick_p, log_softmax(o), y)


def mse(o, y) -> Var:
    """Mean squared error over the entries of one example, mean((o - y)**2).

    Parameters
    ----------
    o : Var
    y : Var
        A float input of the same shape.

    Returns
    -------
    Var
        A scalar per example.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("demo")
    >>> o, y = c.input("o", (2,)), c.input("y", (2,))
    >>> _ = c.loss(ur.mse(o, y))
    >>> float(c.unroll(steps=1).run({}, o=np.array([[1.0, 3.0]]), y=np.array([[0.0, 0.0]]))["loss"])
    5.0
    """
    return mean((o - y) ** 2)
