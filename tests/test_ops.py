"""Registry-driven tests: every primitive, on its own domain, with batched and unbatched operands.

For each primitive, the checks of :mod:`unroll.testing.primitives` (the same ones
``unroll.testing.check_primitive`` runs on a user's primitive): the shape rule, the VJP against
finite differences, second order, the code template, fresh memory. A new primitive is picked
up automatically.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import unroll as ur
from unroll import backends
from unroll.core import PRIMITIVES
from unroll.api import evaluate
from unroll.testing import primitive_cases
from unroll.testing.primitives import (check_fresh, check_second_order, check_shape,
                                       check_template, check_vjp)

XP = backends.get(np, np.float64)
WITH_DOMAIN = sorted(n for n, p in PRIMITIVES.items() if p.domain is not None)
DIFFERENTIABLE = [n for n in WITH_DOMAIN if PRIMITIVES[n].vjp is not None]


@pytest.mark.parametrize("name", WITH_DOMAIN)
@given(data=st.data())
def test_forward_matches_shape_rule(name, data):
    prim = PRIMITIVES[name]
    check_shape(prim, *data.draw(primitive_cases(prim)))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_vjp_matches_finite_differences(name, data):
    prim = PRIMITIVES[name]
    check_vjp(prim, *data.draw(primitive_cases(prim)))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_second_order_matches_finite_differences_of_the_gradient(name, data):
    prim = PRIMITIVES[name]
    check_second_order(prim, *data.draw(primitive_cases(prim)))


def test_every_primitive_has_a_domain():
    """The registry tests and the random circuits draw each primitive's operands from its
    domain (stop_gradient's gradient, zero by definition, is tested on its own below)."""
    assert not {n for n, p in PRIMITIVES.items() if p.domain is None and not p.circuit_only}


def test_every_primitive_has_a_handle_in_ops_and_builders_use_no_names():
    """Builders reach structural primitives through handles (``ops.copy_p``), never by a
    name string, so a typo fails at import and a rename follows."""
    import re
    from pathlib import Path
    for name, p in PRIMITIVES.items():
        assert getattr(ur.ops, f"{name}_p", None) is p, name
    root = Path(ur.__file__).parent
    for path in root.rglob("*.py"):
        if path.name == "core.py" or "testing" in path.parts:
            continue
        text = path.read_text()
        assert not re.search(r'PRIMITIVES\["|bind\("', text), path


def test_stop_gradient_blocks_the_gradient():
    """... and gradcheck agrees: finite differences hold what reverse mode holds constant
    (a primitive without a VJP), at order 1 and 2."""
    c = ur.Circuit("sg")
    x, w = c.input("x", ()), c.param("w", ())
    h = c.state("h", ())
    h.next = ur.tanh(ur.stop_gradient(w * h.prev) + w * x)
    c.loss(h * h)
    g = c.unroll(steps=3)
    p = {"w": np.array(0.7)}
    xs = np.array([0.5, -0.3, 0.2])
    _, grads = g.value_and_grad(p, x=xs)
    # reference: the recurrent path contributes nothing to dL/dw
    h, dw = 0.0, 0.0
    hs = []
    for t in range(3):
        h = np.tanh(0.7 * h + 0.7 * xs[t])
        hs.append(h)
    for t in range(3):   # dL/dh_t = 2 h_t only (no flow through h_{t-1})
        dw += 2 * hs[t] * (1 - hs[t] ** 2) * xs[t]
    assert np.isclose(grads["w"], dw, rtol=1e-12)
    for order in (1, 2):
        for mode in ("full", "directional"):
            assert ur.gradcheck(g, p, order=order, mode=mode, x=xs).ok, (order, mode)


FRESH = [n for n in WITH_DOMAIN if not PRIMITIVES[n].views]


@pytest.mark.parametrize("name", FRESH)
@given(data=st.data())
def test_results_never_share_memory_with_operands_unless_marked_views(name, data):
    """The compiler recycles a dead per-step array for a new one of the same shape; that is
    safe only because a primitive not marked ``views`` returns new memory, from its forward
    rule and from its inline code template alike."""
    prim = PRIMITIVES[name]
    check_fresh(prim, *data.draw(primitive_cases(prim)))


TEMPLATED = [n for n in WITH_DOMAIN if PRIMITIVES[n].code is not None]


@pytest.mark.parametrize("name", TEMPLATED)
@given(data=st.data())
def test_code_template_computes_what_the_forward_rule_computes(name, data):
    """The compiled program runs a primitive's inline template, the interpreter its forward
    rule: on every operand the domain draws (batched or not, views included) they must give
    the same arrays, shapes and values, exactly as the shape rule says."""
    prim = PRIMITIVES[name]
    check_template(prim, *data.draw(primitive_cases(prim)))


def test_registry_entries_are_complete():
    for name, p in PRIMITIVES.items():
        assert p.name == name
        assert callable(p.forward) and callable(p.shape)
        assert p.fmt, name
        assert p.doc, name


def test_a_wrong_vjp_is_caught_by_gradcheck(monkeypatch):
    """The checker itself is tested: a tanh whose VJP forgets the derivative must fail."""
    import dataclasses
    wrong = dataclasses.replace(PRIMITIVES["tanh"], vjp=lambda g, out, x: (g,))
    monkeypatch.setitem(PRIMITIVES, "tanh", wrong)
    monkeypatch.setattr(ur.ops, "tanh_p", wrong)        # the handle ur.tanh binds
    c = ur.Circuit("wrong")
    x, w = c.input("x", (2,)), c.param("W", (2, 2))
    h = c.state("h", (2,))
    h.next = ur.tanh(w @ h.prev + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    p = {"W": np.array([[0.5, -0.3], [0.2, 0.4]])}
    xs = np.random.default_rng(0).standard_normal((3, 2))
    for mode in ("full", "directional"):
        rep = ur.gradcheck(g, p, mode=mode, x=xs)
        assert not rep.ok
        with pytest.raises(ur.GradcheckError, match="W"):
            rep.raise_if_failed()


@pytest.mark.parametrize("dtype, tol", [(np.float32, 6e-8), (np.float64, 1.2e-16)])
def test_sigmoid_saturates_without_overflow_in_both_executors(dtype, tol):
    # e^-x overflows for x < -88.7 (float32) and x < -709.8 (float64); RuntimeWarnings are
    # errors in this suite, so an overflow would fail here
    c = ur.Circuit("gate")
    x = c.input("x", (11,))
    c.output("s", ur.sigmoid(x))
    g = c.unroll(steps=1)
    z = np.array([-1e4, -800, -100, -88, -30, -1, 0, 1, 30, 100, 1e4], dtype=dtype)
    exact = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    compiled = g.run({}, x=z[None])["s"][0]
    s1 = g.outputs["s"][1]
    interpreted = evaluate(g, {}, [s1], x=z[None])[s1]
    for got in (compiled, interpreted):
        assert got.dtype == dtype
        assert np.all(np.abs(got - exact) <= tol), got - exact
