"""Properties over random well-formed circuits (unroll.testing.random_circuits): several
states, delays 1-3, same-step dependencies, backward states, MSE and cross-entropy losses."""
import numpy as np
from hypothesis import given, strategies as st

import unroll as ur
import unroll.testing as ut


@given(ut.random_circuits(), st.data())
def test_unrolled_forward_equals_a_direct_loop(case, data):
    g = case.circuit.unroll(steps=case.steps)
    g.typecheck()
    params = data.draw(ut.params_for(case.circuit))
    inputs = data.draw(ut.inputs_for(g, batch=data.draw(st.integers(1, 3))))
    out = g.run(params, **inputs)
    o, loss = case.reference(params, inputs["x"], inputs["y"])
    assert np.allclose(out["o"], o, rtol=1e-12, atol=1e-12)
    assert np.isclose(float(out["loss"]), loss, rtol=1e-12, atol=1e-12)


@given(ut.random_circuits(max_steps=4), st.data())
def test_gradients_equal_finite_differences(case, data):
    g = case.circuit.unroll(steps=case.steps)
    params = data.draw(ut.params_for(case.circuit))
    inputs = data.draw(ut.inputs_for(g, batch=2))
    rep = ur.gradcheck(g, params, **inputs)
    assert rep.ok, str(rep)


@given(ut.random_circuits(), st.data())
def test_compiled_program_equals_reference_interpreter(case, data):
    g = case.circuit.unroll(steps=case.steps)
    params = data.draw(ut.params_for(case.circuit))
    inputs = data.draw(ut.inputs_for(g, batch=2))
    wrt = list(params) + ["x"]
    la, ga = g.value_and_grad(params, wrt=wrt, **inputs)
    lb, gb = g.value_and_grad(params, wrt=wrt, executor="interpret", **inputs)
    assert np.isclose(float(la), float(lb), rtol=1e-13, atol=1e-15)
    for k in ga:
        assert np.allclose(ga[k], gb[k], rtol=1e-13, atol=1e-15), k


@given(ut.random_circuits(), st.data())
def test_shared_parameter_gradient_is_the_sum_of_per_step_contributions(case, data):
    g = case.circuit.unroll(steps=case.steps)
    params = data.draw(ut.params_for(case.circuit))
    inputs = data.draw(ut.inputs_for(g, batch=2))
    gg = ur.grad(g)
    _, grads = g.value_and_grad(params, **inputs)
    for name, contrib in gg.contributions.items():
        vals = gg.evaluate(params, [v for _, v in contrib], **inputs)
        total = sum(vals[v] for _, v in contrib)
        assert np.allclose(total, grads[name], rtol=1e-12, atol=1e-14), name
        steps = {t for t, _ in contrib}
        assert steps <= set(range(1, case.steps + 1)) | {None}
