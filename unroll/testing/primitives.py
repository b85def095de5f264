"""Checking a primitive: the same property tests every built-in one gets, for yours.

Each check runs one primitive on operands drawn from its domain (batched and unbatched) and
raises :class:`PrimitiveCheckError` naming the rule that is wrong, the operands and the
numbers:

- **shape**: the forward rule returns what the shape rule promises;
- **vjp**: the backward transformation of a one-equation graph (the VJP rule, plus the
  unbroadcasting reverse mode does) matches central finite differences of the forward rule;
- **second order**: Hessian-vector products of that graph (reverse mode applied twice, so the
  VJP rule's own derivative) match finite differences of the gradient;
- **template**: the inline code template computes what the forward rule computes;
- **fresh memory**: no result shares memory with an operand, unless the primitive declares
  ``views=True``.

:func:`check_primitive` draws operands with Hypothesis and runs them all.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..core import PRIMITIVES, Aval, Lit, Primitive, Var, bind
from ..errors import UnrollError
from ..ir import Graph, GraphBuilder, Value
from ..ops import mean_batch_p, sum as _sum
from ..reverse import backward_graph
from ..runtime import interpret
from .draws import Arg, primitive_cases

__all__ = ["check_primitive", "PrimitiveCheckError", "one_equation", "check_shape",
           "check_vjp", "check_second_order", "check_template", "check_fresh"]

XP = backends.get(np, np.float64)


class PrimitiveCheckError(UnrollError, AssertionError):
    """A rule of a primitive disagrees with its forward rule; the message says which."""


def _fail(prim, rule: str, args, params, why: str):
    shapes = ", ".join(f"{a.shape}{' batched' if a.batched else ''} {a.dtype}"
                       if isinstance(a, Arg) else repr(a) for a in args)
    raise PrimitiveCheckError(f"{prim.name}: the {rule} is wrong on operands ({shapes}) with "
                              f"params {params!r}: {why}")


def one_equation(prim: Primitive, args, params):
    """A graph ``out = prim(*args)`` with the loss mean_b Σ out·R (R random): its float
    operands are parameters ``a0, a1, ...``. Returns (graph, env, results, float names)."""
    g = Graph(prim.name, 1)
    b = GraphBuilder(g)
    env, ops, floats = {}, [], []
    for i, a in enumerate(args):
        if isinstance(a, Arg):
            v = Value(f"a{i}", None, Aval(a.shape, a.dtype, a.batched), "param")
            if a.dtype == "int":
                g.static_inputs[v.name] = v
            else:
                g.params[v.name] = v
                floats.append(v.name)
            env[v] = a.value
            ops.append(Var(b, v))
        else:
            ops.append(Lit(a))
    if ops:
        outs = bind(prim, *ops, **params)
        outs = outs if isinstance(outs, tuple) else (outs,)
    else:                           # no operand to find the builder through
        aval = prim.shape(**params)
        outs = tuple(Var(b, v) for v in b.apply(prim, (), params, (aval,)))
    rng = np.random.default_rng(7)
    loss = None
    for k, o in enumerate(outs):
        r = Value(f"r{k}", None, o.aval, "static")
        g.static_inputs[r.name] = r
        env[r] = rng.standard_normal(((2,) if o.aval.batched else ()) + o.shape)
        term = o * Var(b, r)
        if term.shape:
            term = _sum(term)
        if term.aval.batched:
            term = bind(mean_batch_p, term, rank=0)
        loss = term if loss is None else loss + term
    g.loss = loss.node
    return g, env, outs, floats


def _arrays(args) -> list:
    return [np.array(a.value, dtype=np.float64 if a.dtype == "float" else np.int64)
            if isinstance(a, Arg) else a for a in args]


def check_shape(prim: Primitive, args, params) -> None:
    """The forward rule returns what the shape rule promises."""
    if prim.nargs is not None and len(args) != prim.nargs:
        _fail(prim, "domain", args, params, f"it drew {len(args)} operands for a primitive "
              f"of {prim.nargs}")
    g, env, outs, _ = one_equation(prim, args, params)
    env = interpret(g, env, XP)
    for o in outs:
        got = tuple(np.shape(env[o.node]))
        want = ((2,) if o.aval.batched else ()) + o.shape
        if got != want:
            _fail(prim, "shape rule", args, params, f"it promises {want}, the forward rule "
                  f"returns {got}")


def check_vjp(prim: Primitive, args, params, eps: float = 1e-6, tol: float = 1e-6) -> None:
    """The VJP rule (with reverse mode's unbroadcasting) against central differences."""
    if prim.vjp is None:
        return
    g, env, _, floats = one_equation(prim, args, params)
    if not floats:
        return
    gg = backward_graph(g, tuple(floats))
    analytic = interpret(gg, dict(env), XP)

    def loss(e):
        return float(interpret(g, dict(e), XP)[g.loss])

    for k in floats:
        v = g.params[k]
        a = env[v]
        got = np.asarray(analytic[gg.grads[k]])
        if got.shape != np.shape(a):
            _fail(prim, "VJP rule", args, params, f"the cotangent of operand {k} has shape "
                  f"{got.shape}, the operand {np.shape(a)}")
        for idx in np.ndindex(*np.shape(a)):
            d = np.zeros(np.shape(a))
            d[idx] = eps
            plus, minus = dict(env), dict(env)
            plus[v], minus[v] = a + d, a - d
            num = (loss(plus) - loss(minus)) / (2 * eps)
            if not abs(got[idx] - num) <= tol + tol * abs(num):
                _fail(prim, "VJP rule", args, params, f"∂L/∂{k}{list(idx)} is {got[idx]:.6g} "
                      f"by the rule but {num:.6g} by finite differences")


def check_second_order(prim: Primitive, args, params, eps: float = 1e-5) -> None:
    """Hessian-vector products (reverse mode applied twice, so the VJP rule's own derivative)
    against central differences of the gradient along a random direction."""
    if prim.vjp is None:
        return
    g, env, _, floats = one_equation(prim, args, params)
    # second derivatives are taken with respect to parameters, which carry no batch axis;
    # batched operands (data) stay fixed
    floats = [k for k in floats if not g.params[k].aval.batched]
    if not floats:
        return
    from ..reverse import hvp_graph
    for k in list(g.params):                  # the batched ones become fixed data
        if k not in floats:
            g.static_inputs[k] = g.params.pop(k)
    gg = backward_graph(g, tuple(floats))
    hh = backward_graph(hvp_graph(gg), tuple(floats))
    rng = np.random.default_rng(11)
    v = {k: rng.standard_normal(g.params[k].shape) for k in floats}
    env2 = dict(env)
    for k in floats:
        env2[hh.params["v:" + k]] = v[k]
    got = interpret(hh, env2, XP)

    def grads(sign):
        e = dict(env)
        for k in floats:
            e[g.params[k]] = env[g.params[k]] + sign * eps * v[k]
        out = interpret(gg, e, XP)
        return {k: np.asarray(out[gg.grads[k]]) for k in floats}
    plus, minus = grads(1), grads(-1)
    for k in floats:
        an = np.asarray(got[hh.grads[k]])
        fd = (plus[k] - minus[k]) / (2 * eps)
        if an.shape != fd.shape or not np.allclose(an, fd, rtol=1e-4, atol=1e-6):
            err = float(np.max(np.abs(an - fd))) if an.shape == fd.shape else float("nan")
            _fail(prim, "VJP rule's own derivative (second order)", args, params,
                  f"H·v for operand {k} differs from finite differences of the gradient by "
                  f"up to {err:.3g}; write the VJP with primitives whose VJPs are right")


def _template(prim, args, params):
    code = prim.code
    if callable(code):
        code = code(tuple(Aval(a.shape, a.dtype, a.batched) if isinstance(a, Arg)
                          else Lit(a).aval for a in args), **params)
    return code


def check_template(prim: Primitive, args, params) -> None:
    """The inline code template computes what the forward rule computes (same shapes,
    dtypes and values)."""
    code = _template(prim, args, params)
    if code is None:
        return
    arrays = _arrays(args)
    names = [f"a{i}" for i in range(len(arrays))]
    got = eval(code.format(*names, **params), {"xp": XP, **dict(zip(names, arrays))})
    want = prim.forward(XP, *arrays, **params)
    if isinstance(got, tuple) != isinstance(want, tuple):
        _fail(prim, "code template", args, params, "one gives a tuple, the other does not")
    got = list(got) if isinstance(got, tuple) else [got]
    want = list(want) if isinstance(want, tuple) else [want]
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            _fail(prim, "code template", args, params, f"it gives {a.shape} {a.dtype}, the "
                  f"forward rule {b.shape} {b.dtype}")
        if not np.allclose(a, b, rtol=1e-14, atol=1e-14):
            _fail(prim, "code template", args, params, f"it computes other values (largest "
                  f"difference {float(np.max(np.abs(a - b))):.3g})")


def check_fresh(prim: Primitive, args, params) -> None:
    """No result (of the forward rule or the template) shares memory with an operand, unless
    the primitive is marked ``views=True`` (the compiler recycles dead arrays)."""
    if prim.views:
        return
    arrays = _arrays(args)
    outs = prim.forward(XP, *arrays, **params)
    results = list(outs) if isinstance(outs, tuple) else [outs]
    code = _template(prim, args, params)
    if code is not None:
        names = [f"a{i}" for i in range(len(arrays))]
        got = eval(code.format(*names, **params), {"xp": XP, **dict(zip(names, arrays))})
        results += list(got) if isinstance(got, tuple) else [got]
    for r in results:
        for a in arrays:
            if isinstance(a, np.ndarray) and np.shares_memory(np.asarray(r), a):
                _fail(prim, "forward rule or template", args, params, "a result shares "
                      "memory with an operand; return new memory, or declare views=True")


CHECKS = (check_shape, check_template, check_fresh, check_vjp, check_second_order)


def check_primitive(prim, examples: int = 20, second_order: bool = True) -> int:
    """Run every check on ``examples`` operand sets drawn from ``prim``'s domain (a
    primitive, its registered name, or a function made by :func:`unroll.primitive`).

    Returns the number of operand sets checked; raises :class:`PrimitiveCheckError` (naming
    the rule) at the first disagreement.
    """
    from hypothesis import HealthCheck, given, settings
    if callable(prim) and hasattr(prim, "primitive"):
        prim = prim.primitive
    if isinstance(prim, str):
        prim = PRIMITIVES.get(prim, prim)
    if not isinstance(prim, Primitive):
        raise UnrollError(f"check_primitive takes a primitive (or its name), not {prim!r:.60}")
    if prim.domain is None:
        raise UnrollError(f"check_primitive: {prim.name} has no test domain; give one "
                          "(domain=lambda d: ([d.array(d.shape())], {}))")
    seen = [0]
    checks = [c for c in CHECKS if second_order or c is not check_second_order]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(primitive_cases(prim))
    def run(case):
        args, params = case
        for check in checks:
            check(prim, args, params)
        seen[0] += 1
    run()
    return seen[0]
