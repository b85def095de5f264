"""Hypothesis strategies and an independent reference for property-testing recurrent circuits
(yours and unroll's own).

Requires ``hypothesis`` (``pip install unroll-circuits[test]``).

- :func:`random_circuits` draws well-formed random circuits over every feature the API offers
  (see :mod:`unroll.testing.circuits`): states of rank 0–2 running forward or backward, delays
  1–3, same-step and cross-direction reads, every kind of initial value, static and integer
  inputs, every registered primitive, outputs and several losses at chosen steps. Each comes
  as a :class:`CircuitCase` whose :meth:`~CircuitCase.reference` is a plain NumPy loop
  (:mod:`unroll.testing.reference`) that shares no code with unroll's machinery.
- :func:`params_for` and :func:`inputs_for` draw parameter and input arrays for any circuit
  or graph.
- :func:`primitive_cases` draws operands for a primitive from its registry domain.

Example
-------
>>> import numpy as np
>>> from hypothesis import given, settings
>>> import unroll.testing as ut
>>> @settings(max_examples=5, deadline=None)
... @given(ut.random_circuits(), ut.data())
... def test_runs(case, data):
...     g = case.circuit.unroll(steps=case.steps)
...     params = data.draw(ut.params_for(case.circuit))
...     inputs = data.draw(ut.inputs_for(g, batch=2))
...     ref = case.reference(params, inputs)
...     assert np.isclose(float(g.run(params, **inputs)["loss"]), ref.loss, rtol=1e-10)
>>> test_runs()
"""
from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ModuleNotFoundError:                                   # pragma: no cover
    raise ModuleNotFoundError(
        "unroll.testing needs Hypothesis: pip install unroll-circuits[test]") from None

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import data  # re-exported for convenience

from .. import backends
from ..errors import expect, integer, number
from .circuits import CircuitCase, drawable_primitives, random_circuits
from .draws import Arg, primitive_cases
from .primitives import PrimitiveCheckError, check_primitive
from .reference import evaluate

__all__ = ["random_circuits", "CircuitCase", "drawable_primitives", "evaluate", "params_for",
           "inputs_for", "primitive_cases", "Arg", "data", "check_primitive",
           "PrimitiveCheckError"]


def params_for(circuit, dtype="float64", scale: float = 1.0):
    """A parameter dict for ``circuit``: entries uniform in [-scale, scale]."""
    from ..circuit import Circuit
    expect(circuit, Circuit, "params_for: circuit", "draw inputs of a Graph with inputs_for")
    dtype = backends.float_dtype(dtype, "params_for")
    scale = number(scale, "params_for: scale", above=0)
    return _params_for(circuit, dtype, scale)


def inputs_for(graph, batch=None, dtype="float64"):
    """Inputs for ``graph``: (T, B, ...) arrays (or (T, ...) if ``batch`` is 0); integer
    inputs hold valid class indices; zero-default initial values are left out."""
    from ..ir import Graph
    expect(graph, Graph, "inputs_for: graph",
           "unroll the circuit first: inputs_for(c.unroll(steps=...))")
    if batch is not None:
        batch = integer(batch, "inputs_for: batch (0 for no batch axis)", 0)
    dtype = backends.float_dtype(dtype, "inputs_for")
    return _inputs_for(graph, batch, dtype)


@st.composite
def _params_for(draw, circuit, dtype, scale):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-scale, scale, size=s).astype(dtype)
            for k, s in circuit.param_shapes().items()}


@st.composite
def _inputs_for(draw, graph, batch, dtype):
    b = draw(st.integers(1, 3)) if batch is None else batch
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    lead = (b,) if b else ()
    out = {}
    for k, xs in graph.seq_inputs.items():
        v = xs[0]
        shape = (graph.steps,) + lead + v.shape
        if v.aval.dtype == "int":
            out[k] = rng.integers(0, graph.bounds.get(k, 2), size=shape)
        else:
            out[k] = rng.standard_normal(shape).astype(dtype)
    for k, v in graph.static_inputs.items():
        if k in graph.zero_defaults:
            continue
        if v.aval.dtype == "int":
            out[k] = rng.integers(0, graph.bounds.get(k, 2), size=lead + v.shape)
        else:
            out[k] = rng.standard_normal(lead + v.shape).astype(dtype)
    return out


from ..errors import guard_module as _guard_module  # noqa: E402

_guard_module(__import__(__name__, fromlist=["_"]))
