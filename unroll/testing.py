"""Hypothesis strategies for property-testing recurrent circuits (yours and unroll's own).

Requires ``hypothesis`` (``pip install unroll-circuits[test]``).

- :func:`random_circuits` draws well-formed random circuits: several states (optionally
  running backward in time), delays 1–3, same-step dependencies between states, tanh /
  sigmoid / relu / gated updates, and an MSE or cross-entropy loss. Each comes with
  :meth:`CircuitCase.reference`, a direct NumPy loop over t of the same step function, written
  independently of unroll's graph machinery.
- :func:`params_for` and :func:`inputs_for` draw parameter and input arrays for any
  circuit or graph.
- :func:`primitive_cases` draws operands for a primitive from its registry domain.

Example
-------
>>> from hypothesis import given, settings
>>> import unroll.testing as ut
>>> @settings(max_examples=5, deadline=None)
... @given(ut.random_circuits(), ut.data())
... def test_runs(case, data):
...     g = case.circuit.unroll(steps=case.steps)
...     params = data.draw(ut.params_for(case.circuit))
...     inputs = data.draw(ut.inputs_for(g, batch=2))
...     assert set(g.run(params, **inputs)) >= {"o", "loss"}
>>> test_runs()
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import data  # re-exported for convenience

import unroll as ur

__all__ = ["random_circuits", "CircuitCase", "params_for", "inputs_for", "primitive_cases",
           "Arg", "data"]


# --- drawing operands for primitives ----------------------------------------------------------

@dataclass
class Arg:
    """A drawn operand: ``value`` has a leading batch axis if ``batched``."""
    value: np.ndarray
    shape: tuple                # per-example shape
    batched: bool
    dtype: str = "float"


class _Draw:
    """The interface registry domains draw through (see ``Primitive.domain``)."""

    def __init__(self, draw, batch: int):
        self._draw, self.batch = draw, batch

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def choice(self, options):
        return self._draw(st.sampled_from(list(options)))

    def shape(self, min_rank: int = 0, max_rank: int = 2) -> tuple:
        r = self.integer(min_rank, max_rank)
        return tuple(self.integer(1, 3) for _ in range(r))

    def broadcastable(self, shape: tuple) -> tuple:
        """A shape that broadcasts against ``shape`` (same rank, some sizes 1)."""
        return tuple(n if self._draw(st.booleans()) else 1 for n in shape)

    def _batched(self, batched):
        return self._draw(st.booleans()) if batched is None else batched

    def array(self, shape, low=-2.0, high=2.0, away_from_zero=False, batched=None) -> Arg:
        b = self._batched(batched)
        full = ((self.batch,) if b else ()) + tuple(shape)
        seed = self._draw(st.integers(0, 2 ** 32 - 1))
        rng = np.random.default_rng(seed)
        v = rng.uniform(low, high, size=full)
        if away_from_zero:                    # keep |v| >= 0.3 (kinks, division)
            v = np.sign(v + (v == 0)) * (0.3 + np.abs(v) * (max(abs(low), abs(high)) - 0.3)
                                         / max(abs(low), abs(high)))
        return Arg(np.asarray(v, dtype=np.float64), tuple(shape), b)

    def ints(self, shape, high: int, batched=None) -> Arg:
        b = self._batched(batched)
        full = ((self.batch,) if b else ()) + tuple(shape)
        seed = self._draw(st.integers(0, 2 ** 32 - 1))
        v = np.random.default_rng(seed).integers(0, high, size=full)
        return Arg(v, tuple(shape), b, "int")


@st.composite
def primitive_cases(draw, prim):
    """``(args, params)`` for ``prim`` drawn from its registry domain (batch size 2)."""
    d = _Draw(draw, batch=2)
    args, params = prim.domain(d)
    return list(args), dict(params)


# --- random circuits ---------------------------------------------------------------------------

@dataclass
class _State:
    name: str
    size: int
    backward: bool
    delays: list          # [(state index, k)]: reads of h_j(t ∓ k)
    same: list            # [state index]: reads of h_j(t) (lower index only)
    act: str              # "tanh" | "sigmoid" | "relu" | "gated"
    init: str             # "zeros" | "param"


@dataclass
class CircuitCase:
    """A random circuit, the choices it was built from, and how many steps to unroll."""
    circuit: object
    states: list
    D: int
    K: int
    loss: str             # "mse" | "ce"
    steps: int
    names: dict = field(default_factory=dict)

    def reference(self, params: dict, x: np.ndarray, y: np.ndarray) -> tuple:
        """Direct NumPy loop of the step function: (outputs o of shape (T, B, K), loss).

        ``x``: (T, B, D); ``y``: (T, B, K) floats or (T, B) ints. Independent of unroll's
        graph, scheduling and autodiff: it reads the textbook definitions off the choices.
        """
        T, B = x.shape[:2]
        p = params
        vals = {}                                  # (state index, t) -> (B, H) array

        def init(i, t):
            s = self.states[i]
            k = max([kk for j, kk in _all_reads(self.states) if j == i] + [1])
            if s.init == "zeros":
                return np.zeros((B, s.size))
            h0 = p[f"{s.name}0"]
            if k == 1:
                return np.broadcast_to(h0, (B, s.size))
            row = (t + k - 1) if not s.backward else (t - T - 1)   # oldest first
            return np.broadcast_to(h0[row], (B, s.size))

        def read(j, t):
            if 1 <= t <= T:
                return vals[(j, t)]
            return init(j, t)

        fwd = [i for i, s in enumerate(self.states) if not s.backward]
        bwd = [i for i, s in enumerate(self.states) if s.backward]
        for group, ts in ((fwd, range(1, T + 1)), (bwd, range(T, 0, -1))):
            for t in ts:
                for i in group:
                    s = self.states[i]
                    pre = p[f"b{i}"] + x[t - 1] @ p[f"U{i}"].T
                    for j, k in s.delays:
                        tt = t + k if s.backward else t - k
                        pre = pre + read(j, tt) @ p[f"W{i}_{j}_{k}"].T
                    for j in s.same:
                        pre = pre + vals[(j, t)] @ p[f"S{i}_{j}"].T
                    vals[(i, t)] = _act(s.act, pre, p, i, x[t - 1])
        o = np.stack([sum(vals[(i, t)] @ p[f"V{i}"].T for i in range(len(self.states)))
                      + p["c"] for t in range(1, T + 1)])
        if self.loss == "mse":
            per = np.mean((o - y) ** 2, axis=-1)
        else:
            z = o - o.max(-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            per = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
        return o, float(per.mean(axis=1).sum())


def _all_reads(states):
    return [(j, k) for s in states for j, k in s.delays]


def _act(name, pre, p, i, x):
    if name == "tanh":
        return np.tanh(pre)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-pre))
    if name == "relu":
        return np.maximum(pre, 0)
    gate = 1 / (1 + np.exp(-(x @ p[f"G{i}"].T)))
    return np.tanh(pre) * gate


@st.composite
def random_circuits(draw, max_states: int = 3, max_delay: int = 3, backward: bool = True,
                    max_steps: int = 5):
    """Random well-formed circuits as :class:`CircuitCase` s.

    Forward states read delayed forward states and the current value of lower-numbered states;
    backward states (``backward=True``) read delayed backward states and any lower-numbered
    state's current value, so no algebraic loop can arise.
    """
    n = draw(st.integers(1, max_states))
    D, K = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    back = [backward and i > 0 and draw(st.integers(0, 3)) == 0 for i in range(n)]
    states = []
    for i in range(n):
        # delayed reads stay within one direction; h_i always reads itself
        delays = [(j, draw(st.integers(1, max_delay))) for j in range(n)
                  if back[j] == back[i] and (j == i or draw(st.booleans()))]
        # same-step reads go to lower-numbered states; a forward state reads forward ones
        same = [j for j in range(i) if (back[i] or not back[j]) and draw(st.booleans())]
        act = draw(st.sampled_from(["tanh", "sigmoid", "relu", "gated"]))
        init = draw(st.sampled_from(["zeros", "param"]))
        states.append(_State(f"h{i}", draw(st.integers(1, 3)), back[i], delays, same, act, init))
    loss = draw(st.sampled_from(["mse", "ce"]))
    case = CircuitCase(None, states, D, K, loss, draw(st.integers(1, max_steps)))
    case.circuit = _build(case)
    return case


def _build(case: CircuitCase):
    c = ur.Circuit("random")
    x = c.input("x", (case.D,))
    y = c.input("y", (case.K,)) if case.loss == "mse" else c.input("y", (), dtype="int")
    hs = [c.state(s.name, (s.size,), init=s.init,
                  direction="backward" if s.backward else "forward") for s in case.states]
    for i, (s, h) in enumerate(zip(case.states, hs)):
        pre = c.param(f"b{i}", (s.size,), init="uniform") + c.param(f"U{i}", (s.size, case.D)) @ x
        for j, k in s.delays:
            W = c.param(f"W{i}_{j}_{k}", (s.size, case.states[j].size))
            pre = pre + W @ hs[j].delayed(k)
        for j in s.same:
            S = c.param(f"S{i}_{j}", (s.size, case.states[j].size))
            pre = pre + S @ hs[j]
        if s.act == "gated":
            G = c.param(f"G{i}", (s.size, case.D))
            h.next = ur.tanh(pre) * ur.sigmoid(G @ x)
        else:
            h.next = {"tanh": ur.tanh, "sigmoid": ur.sigmoid, "relu": ur.relu}[s.act](pre)
    o = c.param("c", (case.K,), init="uniform")
    for i, (s, h) in enumerate(zip(case.states, hs)):
        o = o + c.param(f"V{i}", (case.K, s.size)) @ h
    o = c.output("o", o)
    c.loss(ur.mse(o, y) if case.loss == "mse" else ur.softmax_cross_entropy(o, y))
    return c


# --- arrays ------------------------------------------------------------------------------------

@st.composite
def params_for(draw, circuit, dtype="float64", scale: float = 1.0):
    """A parameter dict for ``circuit``: entries uniform in [-scale, scale]."""
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-scale, scale, size=s).astype(dtype)
            for k, s in circuit.param_shapes().items()}


@st.composite
def inputs_for(draw, graph, batch=None, dtype="float64"):
    """Inputs for ``graph``: (T, B, ...) arrays (or (T, ...) if ``batch`` is 0); integer
    inputs hold valid class indices."""
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
        if k not in graph.zero_defaults:
            out[k] = rng.standard_normal(lead + v.shape).astype(dtype)
    return out
