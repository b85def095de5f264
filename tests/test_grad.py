"""Reverse mode as a graph transformation, gradients of every kind, second order, gradcheck."""
import warnings

import numpy as np
import pytest

import unroll as ur
from unroll.errors import GradcheckWarning

import builders
from builders import data


def elman(D=3, H=4, K=3, init="zeros"):
    return builders.elman(D, H, K, init=init, bias_init="uniform")






def test_gradient_graph_is_a_graph():
    c = elman()
    g = c.unroll(steps=3)
    gg = ur.grad(g)
    assert isinstance(gg, ur.Graph) and gg.base is g
    gg.typecheck()
    text = str(gg)
    assert "∂h[2] = " in text and "∂W = Σ∂W[2] + " in text
    assert "grads: U = ∂U, W = ∂W" in text
    x, y = data(T=3)
    p = c.init_params(seed=1)
    # executable by both executors, and equal to value_and_grad
    _, grads = g.value_and_grad(p, x=x, y=y)
    vals = gg.evaluate(p, list(gg.grads.values()), x=x, y=y)
    for k, v in gg.grads.items():
        assert np.allclose(vals[v], grads[k], rtol=1e-14, atol=1e-16)
    assert ur.grad(g) is gg                      # cached


def test_gradients_only_for_what_is_asked():
    c = elman()
    g = c.unroll(steps=3)
    gg = ur.grad(g, wrt=["W"])
    names = {v.name for e in gg.eqns for v in e.outs}
    assert "∂W" in names and "∂U" not in names and not any(n.startswith("Σ∂U") for n in names)
    assert set(gg.grads) == {"W"}


def test_input_gradient_reports_steps():
    c = elman()
    g = c.unroll(steps=4)
    x, y = data()
    p = c.init_params(seed=2)
    _, grads = g.value_and_grad(p, x=x, y=y, wrt=["x", "W"])
    assert grads["x"].shape == x.shape
    rep = ur.gradcheck(g, p, wrt=["x"], x=x, y=y)
    assert rep.ok and rep.checks["x"].step == rep.checks["x"].worst[0] + 1
    assert rep.checks["x"].checked == x.size


def test_initial_state_gradients():
    x, y = data()
    c = elman()                                  # zero init: "h0" is an input, default zeros
    g = c.unroll(steps=4)
    p = c.init_params(seed=3)
    h0 = np.random.default_rng(1).standard_normal((2, 4))
    _, grads = g.value_and_grad(p, x=x, y=y, h0=h0, wrt=["h0"])
    assert grads["h0"].shape == (2, 4)
    assert ur.gradcheck(g, p, wrt=["h0"], x=x, y=y, h0=h0).ok
    c2 = elman(init="param")                     # learned initial state: a parameter
    g2 = c2.unroll(steps=4)
    p2 = c2.init_params(seed=3)
    p2["h0"] = np.array([0.1, -0.2, 0.3, 0.0])
    rep = ur.gradcheck(g2, p2, x=x, y=y)
    assert rep.ok and "h0" in rep.checks


def test_long_delays_and_backward_states_gradcheck():
    c = ur.Circuit("mix")
    x = c.input("x", (2,))
    h = c.state("h", (3,), init="param")
    g = c.state("g", (3,), direction="backward")
    A, B = c.param("A", (3, 3), init="normal"), c.param("B", (3, 3), init="normal")
    Uh, Ug = c.param("Uh", (3, 2)), c.param("Ug", (3, 2))
    h.next = ur.tanh(A @ h.prev + 0.5 * h.delayed(3) + Uh @ x)
    g.next = ur.sigmoid(B @ g.delayed(2) + Ug @ x + h)
    V = c.param("V", (2, 3))
    o = c.output("o", V @ (h * g))
    y = c.input("y", (2,))
    c.loss(ur.mse(o, y))
    gr = c.unroll(steps=6)
    p = c.init_params(seed=4)
    p["h0"] = np.random.default_rng(2).standard_normal((3, 3)) * 0.3
    rng = np.random.default_rng(5)
    xs, ys = rng.standard_normal((6, 2, 2)), rng.standard_normal((6, 2, 2))
    rep = ur.gradcheck(gr, p, x=xs, y=ys)
    assert rep.ok, str(rep)
    assert ur.gradcheck(gr, p, wrt=["x"], x=xs, y=ys).ok


def test_second_order_hessian_vector_products():
    c = elman(D=2, H=3, K=2)
    g = c.unroll(steps=3)
    x, y = data(T=3, D=2, K=2)
    p = c.init_params(seed=5)
    rep = ur.gradcheck(g, p, order=2, x=x, y=y)
    assert rep.ok, str(rep)
    rep = ur.gradcheck(g, p, order=2, mode="directional", directions=3, x=x, y=y)
    assert rep.ok, str(rep)
    # H v is linear in v and symmetric: <u, H v> = <v, H u>
    rng = np.random.default_rng(0)
    u = {k: rng.standard_normal(a.shape) for k, a in p.items()}
    v = {k: rng.standard_normal(a.shape) for k, a in p.items()}
    Hu, Hv = ur.hvp(g, p, u, x=x, y=y), ur.hvp(g, p, v, x=x, y=y)
    lhs = sum(np.sum(u[k] * Hv[k]) for k in p)
    rhs = sum(np.sum(v[k] * Hu[k]) for k in p)
    assert np.isclose(lhs, rhs, rtol=1e-10)


def test_gradcheck_report_format_and_failure():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data(T=3)
    p = c.init_params(seed=6)
    rep = ur.gradcheck(g, p, x=x, y=y)
    text = str(rep)
    assert text.splitlines()[0].endswith(": OK")
    assert "max abs err" in text and "max rel err" in text and "worst" in text
    for k in p:
        assert f"\n  {k} " in text
    assert rep.raise_if_failed() is rep
    # an impossible tolerance makes it fail, and the error holds the table
    rep = ur.gradcheck(g, p, rtol=0.0, atol=0.0, wrt=["W"], x=x, y=y)
    assert not rep.ok and rep.worst.name == "W"
    with pytest.raises(ur.GradcheckError, match=r"gradient of W disagrees .* at entry \("):
        rep.raise_if_failed()


def test_gradcheck_upcasts_float32_with_a_warning():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data(T=3)
    p = {k: v.astype(np.float32) for k, v in c.init_params(seed=7).items()}
    with pytest.warns(GradcheckWarning, match=r"checking in float64"):
        rep = ur.gradcheck(g, p, x=x.astype(np.float32), y=y)
    assert rep.ok


def test_gradcheck_argument_errors():
    g = elman().unroll(steps=2)
    with pytest.raises(ur.UnrollError, match="mode must be"):
        ur.gradcheck(g, {}, mode="fast")
    with pytest.raises(ur.UnrollError, match="order must be"):
        ur.gradcheck(g, {}, order=3)


def test_directional_mode_on_a_bigger_model_is_cheap_and_right():
    c = elman(D=16, H=32, K=10)
    g = c.unroll(steps=20)
    x, y = data(T=20, B=4, D=16, K=10)
    p = c.init_params(seed=8)
    rep = ur.gradcheck(g, p, mode="directional", directions=3, x=x, y=y)
    assert rep.ok and all(ch.checked == 3 for ch in rep.checks.values())


def test_loss_independent_of_a_parameter_has_zero_gradient():
    c = ur.Circuit("unused")
    x = c.input("x", (2,))
    W, Z = c.param("W", (2, 2)), c.param("Z", (2, 2))
    h = c.state("h", (2,))
    h.next = ur.tanh(W @ h.prev + x)
    c.output("z", Z @ x)                             # an output, but no part of the loss
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    p = c.init_params(seed=1)
    _, grads = g.value_and_grad(p, x=np.ones((3, 2)))
    assert np.array_equal(grads["Z"], np.zeros((2, 2)))


def test_no_warnings_in_a_normal_run():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data(T=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.value_and_grad(c.init_params(), x=x, y=y)


def test_a_multi_output_primitive_whose_first_result_is_unused():
    """Only the second piece of a split reaches the loss: its gradient still flows back
    (the first result being inactive must not skip the rule)."""
    c = ur.Circuit("second_piece")
    x = c.input("x", (4,))
    h = c.state("h", (2,))
    _, b = ur.split(x, 2)
    h.next = ur.tanh(h.prev + b)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    xs = np.linspace(-1, 1, 12).reshape(3, 4)
    _, grads = g.value_and_grad({}, wrt=["x"], x=xs)
    assert np.all(grads["x"][:, :2] == 0) and np.all(grads["x"][:, 2:] != 0)
    assert ur.gradcheck(g, {}, wrt=["x"], x=xs).ok
