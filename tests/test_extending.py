"""A primitive of the user's own: ur.primitive makes it work everywhere a built-in one does,
and unroll.testing.check_primitive catches each rule that is wrong, naming it."""
import numpy as np
import pytest
from hypothesis import given, settings

import unroll as ur
import unroll.testing as ut


@pytest.fixture
def defined():
    """Primitives a test defines, unregistered after it."""
    made = []
    yield made
    for op in made:
        ur.unregister(op)


def _softplus(defined, name="softplus_t", **kw):
    op = ur.primitive(name, lambda xp, x: xp.log(1.0 + xp.exp(x)),
                      kw.pop("vjp", lambda g, out, x: (g * ur.sigmoid(x),)),
                      code=kw.pop("code", "xp.log(1.0 + xp.exp({0}))"), **kw)
    defined.append(op)
    return op


def test_a_primitive_of_ones_own_works_everywhere(defined):
    softplus = _softplus(defined)
    assert ut.check_primitive(softplus, examples=15) == 15
    c = ur.Circuit("soft")
    x = c.input("x", (3,))
    h = c.state("h", (3,))
    h.next = ur.tanh(softplus(c.param("W", (3, 3)) @ h.prev + x))
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=4)
    assert "softplus_t(" in str(g) and "xp.log(1.0 + xp.exp(" in str(g.program(grad=True))
    p, xs = c.init_params(seed=0), np.linspace(-1, 1, 24).reshape(4, 2, 3)
    lc, gc = g.value_and_grad(p, x=xs)
    li, gi = g.value_and_grad(p, x=xs, executor="interpret")
    lk, gk = g.value_and_grad(p, x=xs, checkpoint=2)
    assert np.isclose(lc, li) and np.isclose(lk, li)
    assert np.allclose(gc["W"], gi["W"]) and np.allclose(gk["W"], gi["W"])
    for order in (1, 2):
        assert ur.gradcheck(g, p, order=order, x=xs).ok
    assert "softplus_t" in c.to_dot(detail="ops").source


def test_the_random_circuits_draw_it_and_agree_with_the_reference(defined):
    _softplus(defined)

    @settings(max_examples=15, deadline=None, derandomize=True, database=None)
    @given(ut.random_circuits(primitives=["softplus_t", "add", "mul"]), ut.data())
    def agrees(case, data):
        g = case.circuit.unroll(steps=case.steps)
        params = data.draw(ut.params_for(case.circuit))
        inputs = data.draw(ut.inputs_for(g, batch=2))
        ref = case.reference(params, inputs)
        assert np.isclose(float(g.run(params, **inputs)["loss"]), ref.loss, rtol=1e-10)
        wrt = list(g.params)
        if wrt:
            lc, gc = g.value_and_grad(params, wrt=wrt, **inputs)
            li, gi = g.value_and_grad(params, wrt=wrt, executor="interpret", **inputs)
            for k in wrt:
                assert np.allclose(gc[k], gi[k], rtol=1e-10, atol=1e-12)
    agrees()


@pytest.mark.parametrize("kw, rule", [
    (dict(vjp=lambda g, out, x: (g * ur.tanh(x),)), "VJP rule is wrong"),
    (dict(vjp=lambda g, out, x: (g * ur.stop_gradient(ur.sigmoid(x)),)),
     r"VJP rule's own derivative \(second order\) is wrong"),
    (dict(shape=lambda a: ur.core.Aval(a.shape + (1,), a.dtype, a.batched),
          domain=lambda d: ([d.array(d.shape())], {})), "shape rule is wrong"),
    (dict(code="xp.exp({0})"), "code template is wrong"),
])
def test_check_primitive_names_the_rule_that_is_wrong(defined, kw, rule):
    bad = _softplus(defined, **kw)
    with pytest.raises(ut.PrimitiveCheckError, match=rule):
        ut.check_primitive(bad, examples=10)


def test_a_result_sharing_memory_must_be_declared(defined):
    ident = ur.primitive("ident_t", lambda xp, x: x, lambda g, out, x: (g,))
    defined.append(ident)
    with pytest.raises(ut.PrimitiveCheckError, match="shares memory.*views=True"):
        ut.check_primitive(ident, examples=5)
    ur.unregister(ident)
    defined.remove(ident)
    ok = ur.primitive("ident_t", lambda xp, x: x, lambda g, out, x: (g,), views=True)
    defined.append(ok)
    assert ut.check_primitive(ok, examples=5) == 5


def test_defining_a_primitive_is_checked(defined):
    _softplus(defined)
    with pytest.raises(ur.UnrollError, match="registered already"):
        _softplus(defined)
    with pytest.raises(ur.UnrollError, match="must be an identifier"):
        ur.primitive("soft plus", lambda xp, x: x, None)
    with pytest.raises(ur.UnrollError, match="forward must be a function"):
        ur.primitive("f_t", "x", None)
    with pytest.raises(ur.UnrollError, match="one of unroll's own"):
        ur.unregister(ur.ops.tanh_p)
    with pytest.raises(ur.UnrollError, match="no test domain"):
        ut.check_primitive(ur.ops.part_p)


def _against_numpy_to_second_order(name, f, ref, xs):
    """y(t) = f(x(t)) against ``ref`` in NumPy, and gradcheck at orders 1 and 2 of a loss
    through f(w · x)."""
    c = ur.Circuit(name)
    x = c.input("x", (4,))
    w = c.param("w", (4,), init="ones")
    c.output("y", f(x))
    c.loss(ur.sum(f(w * x) * f(w * x)))
    g = c.unroll(steps=3)
    assert np.allclose(g.run({"w": np.ones(4)}, x=xs)["y"], ref(xs), atol=1e-12), name
    for order in (1, 2):
        assert ur.gradcheck(g, {"w": np.full(4, 0.9)}, order=order, x=xs).ok, (name, order)


def test_the_composite_ops_against_numpy_and_finite_differences():
    """Each composite computes its textbook formula and differentiates (to second order)."""
    rng = np.random.default_rng(3)
    xs = rng.uniform(-2, 2, size=(3, 2, 4))
    want = {
        "square": lambda x: x * x,
        "clip": lambda x: np.clip(x, -0.5, 0.7),
        "leaky_relu": lambda x: np.where(x > 0, x, 0.1 * x),
        "elu": lambda x: np.where(x > 0, x, 1.5 * (np.exp(x) - 1)),
        "swish": lambda x: x / (1 + np.exp(-x)),
        "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
        "where": lambda x: np.where(x > 0.3, np.sin(x), np.cos(x)),
        "softplus": lambda x: np.log1p(np.exp(x)),
        "abs": np.abs, "sqrt_abs": lambda x: np.sqrt(np.abs(x) + 0.5),
    }
    make = {
        "square": ur.square, "clip": lambda x: ur.clip(x, -0.5, 0.7),
        "leaky_relu": lambda x: ur.leaky_relu(x, 0.1), "elu": lambda x: ur.elu(x, 1.5),
        "swish": ur.swish, "gelu": ur.gelu,
        "where": lambda x: ur.where(x > 0.3, ur.sin(x), ur.cos(x)),
        "softplus": ur.softplus, "abs": ur.abs, "sqrt_abs": lambda x: ur.sqrt(ur.abs(x) + 0.5),
    }
    for name, f in make.items():
        _against_numpy_to_second_order(name, f, want[name], xs)


def test_comparisons_give_masks_without_gradient():
    c = ur.Circuit("masks")
    x, w = c.input("x", ()), c.param("w", ())
    c.output("m", x > 0.0)
    c.output("le", x <= 1.0)
    c.loss(w * (x > 0.0) * x)
    g = c.unroll(steps=3)
    out = g.run({"w": np.array(2.0)}, x=np.array([-1.0, 0.5, 2.0]))
    assert np.array_equal(out["m"], [0.0, 1.0, 1.0]) and np.array_equal(out["le"], [1, 1, 0])
    _, grads = g.value_and_grad({"w": np.array(2.0)}, wrt=["w", "x"], x=np.array([-1.0, 0.5, 2.0]))
    assert np.allclose(grads["x"], [0.0, 2.0, 2.0])    # the mask itself passes no gradient


def test_reductions_stack_and_powers_against_numpy_and_finite_differences():
    rng = np.random.default_rng(5)
    xs = rng.uniform(0.5, 2, size=(3, 2, 4))
    cases = {
        "max": (lambda x: ur.max(x), lambda x: x.max(-1)),
        "min": (lambda x: ur.min(x), lambda x: x.min(-1)),
        "stack": (lambda x: ur.stack([x, 2 * x], axis=0), lambda x: np.stack([x, 2 * x], 2)),
        "stack_last": (lambda x: ur.stack([x, x * x], axis=-1),
                       lambda x: np.stack([x, x * x], -1)),
        "pow": (lambda x: x ** (x * 0.5), lambda x: x ** (x * 0.5)),
        "rpow": (lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    }
    for name, (f, ref) in cases.items():
        _against_numpy_to_second_order(name, f, ref, xs)
    c = ur.Circuit("bad")
    x = c.input("x", (2, 3))
    with pytest.raises(ur.UnrollError, match="only the last axis"):
        ur.max(x, axis=0)
    with pytest.raises(ur.ShapeError, match="one shape"):
        ur.stack([x, ur.sum(x, axis=0)])
    with pytest.raises(ur.UnrollError, match="base must be a finite number > 0"):
        (-2.0) ** x


def test_dropout_is_a_seeded_mask_input():
    c = ur.Circuit("drop")
    x = c.input("x", (6,))
    h = c.state("h", (6,))
    h.next = ur.tanh(c.param("W", (6, 6)) @ ur.dropout(h.prev, "m") + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=4)
    p, xs = c.init_params(seed=0), np.random.default_rng(1).normal(size=(4, 3, 6))
    m1 = ur.dropout_masks(g, rate=0.3, seed=7, batch=3)
    m2 = ur.dropout_masks(g, rate=0.3, seed=7, batch=3)
    assert set(np.unique(m1["m"])) == {0.0, 1 / 0.7}
    a, b = g.value_and_grad(p, x=xs, **m1), g.value_and_grad(p, x=xs, **m2)
    assert a[0] == b[0] and np.array_equal(a[1]["W"], b[1]["W"])     # same mask, same result
    other = g.value_and_grad(p, x=xs, **ur.dropout_masks(g, 0.3, seed=8, batch=3))
    assert other[0] != a[0]
    plain = ur.Circuit("plain")
    px = plain.input("x", (6,))
    ph = plain.state("h", (6,))
    ph.next = ur.tanh(plain.param("W", (6, 6)) @ ph.prev + px)
    plain.loss(ur.sum(ph * ph))
    ev = g.value_and_grad(p, x=xs, **ur.dropout_masks(g, 0.3, train=False, batch=3))
    ref = plain.unroll(steps=4).value_and_grad(p, x=xs)
    assert np.isclose(ev[0], ref[0]) and np.allclose(ev[1]["W"], ref[1]["W"])
    assert ur.gradcheck(g, p, x=xs, **m1).ok
    with pytest.raises(ur.UnrollError, match="rate must be < 1"):
        ur.dropout_masks(g, 1.0)
    with pytest.raises(ur.UnrollError, match="has no ur.dropout"):
        ur.dropout_masks(plain.unroll(steps=2), 0.5)


def test_layer_norm_against_numpy_and_to_second_order():
    c = ur.Circuit("ln")
    x = c.input("x", (4,))
    gain, bias = c.param("g", (4,), init="ones"), c.param("b", (4,))
    c.output("y", ur.layer_norm(x, gain, bias))
    c.loss(ur.sum(ur.layer_norm(x, gain, bias) ** 2.0 * x))
    g = c.unroll(steps=2)
    xs = np.random.default_rng(0).normal(size=(2, 3, 4))
    p = {"g": np.full(4, 1.1), "b": np.full(4, 0.1)}
    ref = (xs - xs.mean(-1, keepdims=True)) / np.sqrt(xs.var(-1, keepdims=True) + 1e-5)
    assert np.allclose(g.run(p, x=xs)["y"], ref * 1.1 + 0.1, atol=1e-12)
    for order in (1, 2):
        assert ur.gradcheck(g, p, order=order, x=xs).ok
    with pytest.raises(ur.ShapeError, match="scalar per example"):
        ur.layer_norm(ur.sum(x))


def test_a_primitive_of_ones_own_passes_the_differential_property(defined):
    """The trust issue's property, on random circuits built from a user's primitive: loss and
    outputs against the independent reference, compiled against interpreted and checkpointed
    gradients, and gradients against finite differences of the reference."""
    import math
    from test_differential import _close, _directional, _setup, _wrt
    _softplus(defined)

    @settings(max_examples=20, deadline=None, derandomize=True, database=None)
    @given(ut.random_circuits(primitives=["softplus_t", "add", "mul", "tanh"]), ut.data())
    def prop(case, data):
        g, params, inputs, rng = _setup(case, data)
        ref = case.reference(params, inputs)
        _close(g.run(params, **inputs)["loss"], ref.loss, "loss")
        wrt = _wrt(g, inputs)
        lc, gc = g.value_and_grad(params, wrt=wrt, **inputs)
        li, gi = g.value_and_grad(params, wrt=wrt, executor="interpret", **inputs)
        _close(lc, ref.loss, "compiled loss")
        for k in wrt:
            _close(gc[k], gi[k], k)
        k = max(math.isqrt(case.steps - 1) + 1, 3)
        lk, gk = g.value_and_grad(params, wrt=wrt, checkpoint=k, **inputs)
        for n in wrt:
            _close(gk[n], gi[n], n)
        _directional(case, params, inputs, gc, rng)
    prop()
