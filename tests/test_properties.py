"""Properties over random circuits (unroll.testing.random_circuits) beyond the differential
property of tests/test_differential.py: the per-step split of shared-parameter gradients."""
import numpy as np
from hypothesis import given, strategies as st

import unroll as ur
import unroll.testing as ut


@given(ut.random_circuits(), st.data())
def test_shared_parameter_gradient_is_the_sum_of_per_step_contributions(case, data):
    """∂W = Σ_t ∂W(t) (eq. 10.26): the per-step copies the gradient graph keeps visible add
    up to the gradient, and each belongs to a step of the graph (or to work done once)."""
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
