"""Declaring circuits and unrolling them: the graph's structure, printing and export."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, strategies as st

import unroll as ur
from builders import elman


def test_printing_reads_like_the_textbook():
    g = elman().unroll(steps=4)
    text = str(g)
    assert text.startswith("graph elman (τ = 4)")
    for line in ["h[0] = h0", "_1[1] = W @ h[0]", "a[3] = _2[3] + _3[3]", "h[3] = tanh(a[3])",
                 "_1[4] = W @ h[3]", "o[2] = c + _4[2]", "ΣL[2] = ΣL[1] + L[2]",
                 "L = mean_b(ΣL[4])"]:
        assert f"  {line}" in text, line
    assert "params: U (4, 3), V (3, 4), W (4, 4), b (4,), c (3,)" in text
    assert "inputs: x[1..4] B×(3,), y[1..4] B×() int, h0 B×(4,) (default zeros)" in text


def test_steps_are_numbered_from_one_and_parameters_are_shared():
    g = elman().unroll(steps=5)
    steps = {e.step for e in g.eqns} - {None}
    assert steps == {1, 2, 3, 4, 5}
    users_of_W = [e for e in g.eqns if any(x is g.params["W"] for x in e.inputs)]
    assert [e.step for e in users_of_W] == [1, 2, 3, 4, 5]      # one shared Value W
    assert sorted(g.states["h"]) == [0, 1, 2, 3, 4, 5]
    g.typecheck()


def test_networkx_export():
    g = elman().unroll(steps=3)
    G = g.to_networkx()
    assert isinstance(G, nx.DiGraph) and nx.is_directed_acyclic_graph(G)
    assert G.nodes["h[2]"] == {"name": "h", "step": 2, "op": "tanh", "shape": (4,),
                               "dtype": "float", "batched": True}
    assert G.nodes["W"]["op"] == "param" and G.nodes["x[1]"]["op"] == "input"
    assert G.has_edge("h[1]", "_1[2]") and G.has_edge("W", "_1[3]")
    assert nx.has_path(G, "x[1]", "L") and not nx.has_path(G, "x[3]", "h[2]")


def test_circuit_networkx_graph_carries_delays():
    c = elman()
    G = c.to_networkx()
    delays = sorted(d for _, _, d in G.edges(data="delay"))
    assert delays.count(1) == 1 and set(delays) == {0, 1}
    labels = {d["label"] for _, d in G.nodes(data=True)}
    assert {"x", "W", "h.prev", "h", "o"} <= labels


def test_getitem_returns_handles_of_named_variables():
    c = elman()
    assert c["W"].shape == (4, 4)
    assert c["a"].shape == (4,)
    h = c["h"]
    assert isinstance(h, ur.State) and h.prev.shape == (4,)
    # add a second loss to an existing circuit through c[name]
    c.loss(0.1 * ur.sum(c["o"] * c["o"]), name="reg")
    g = c.unroll(steps=2)
    assert "reg[2]" in str(g) and "ΣL[2]" in str(g)


def _run_with(c, steps, **kw):
    g = c.unroll(steps=steps)
    return g, g.run(c.init_params(seed=1), **kw)


def test_delay_k_reads_k_initial_values():
    c = ur.Circuit("delay3")
    x = c.input("x", ())
    h = c.state("h", (), init="h_init")
    c.input("h_init", (3,), per_step=False)
    h.next = h.delayed(3) + x                       # h(t) = h(t-3) + x(t)
    c.output("o", h)
    g = c.unroll(steps=7)
    assert [t for t in sorted(g.states["h"]) if t <= 0] == [-2, -1, 0]
    xs = np.arange(1.0, 8.0)
    init = np.array([10.0, 20.0, 30.0])             # h(-2), h(-1), h(0), oldest first
    out = g.run({}, x=xs, h_init=init)["o"]
    ref = list(init)
    for t in range(7):
        ref.append(ref[-3] + xs[t])
    assert np.array_equal(out, ref[3:])


def test_wrong_initial_value_shape():
    c = ur.Circuit("delay2")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="h0x")
    c.input("h0x", (2,), per_step=False)
    h.next = h.delayed(2) + x
    with pytest.raises(ur.ShapeError, match=r"needs shape \(2, 2\).*oldest first"):
        c.unroll(steps=3)


def test_init_param_and_expression():
    c = ur.Circuit("inits")
    x = c.input("x", (2,))
    s = c.input("s", (2,), per_step=False)
    h = c.state("h", (2,), init="param")
    g = c.state("g", (2,), init=ur.tanh(s * 2.0))
    h.next = h.prev + x
    g.next = g.prev * x
    c.output("oh", h)
    c.output("og", g)
    assert "h0" in c.param_shapes()
    p = {"h0": np.array([1.0, -1.0])}
    gr = c.unroll(steps=2)
    xs = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = gr.run(p, x=xs, s=np.array([0.5, 0.1]))
    assert np.allclose(out["oh"], [[2.0, 1.0], [5.0, 5.0]])
    g0 = np.tanh(np.array([1.0, 0.2]))
    assert np.allclose(out["og"], [g0 * xs[0], g0 * xs[0] * xs[1]])


def test_init_must_be_static():
    c = ur.Circuit("badinit")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="x")
    h.next = h.prev + x
    with pytest.raises(ur.CircuitError, match=r"name a static input.*sequence input"):
        c.unroll(steps=2)
    c2 = ur.Circuit("badinit2")
    x2 = c2.input("x", (2,))
    h2 = c2.state("h", (2,), init=ur.tanh(x2))
    h2.next = h2.prev + x2
    with pytest.raises(ur.CircuitError, match=r"reads per-step values"):
        c2.unroll(steps=2)


def test_zero_initial_state_can_be_overridden():
    c = elman()
    g = c.unroll(steps=3)
    p = c.init_params(seed=2)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 2, 3)), rng.integers(0, 2, (3, 2))
    a = g.run(p, x=x, y=y)["o"]
    b = g.run(p, x=x, y=y, h0=np.zeros((2, 4)))["o"]
    c_ = g.run(p, x=x, y=y, h0=np.ones((2, 4)))["o"]
    assert np.array_equal(a, b) and not np.allclose(a, c_)


def test_backward_state_runs_from_the_end():
    c = ur.Circuit("reverse")
    x = c.input("x", ())
    g = c.state("g", (), direction="backward")
    g.next = g.prev + x                             # g(t) = g(t+1) + x(t): suffix sums
    c.output("o", g)
    gr = c.unroll(steps=5)
    assert sorted(gr.states["g"])[-1] == 6          # g(τ+1) is the initial value
    xs = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert np.array_equal(gr.run({}, x=xs)["o"], np.cumsum(xs[::-1])[::-1])


def test_bidirectional_schedule():
    c = ur.Circuit("birnn")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    g = c.state("g", (3,), direction="backward")
    W, R = c.param("W", (3, 3)), c.param("R", (3, 3))
    Uh, Ug = c.param("Uh", (3, 2)), c.param("Ug", (3, 2))
    h.next = ur.tanh(W @ h.prev + Uh @ x)
    g.next = ur.tanh(R @ g.prev + Ug @ x)
    V, Vg = c.param("V", (2, 3)), c.param("Vg", (2, 3))
    c.output("o", V @ h + Vg @ g)
    phases = c.schedule()
    assert [p.direction for p in phases] == [1, -1]
    gr = c.unroll(steps=4)
    order = [(e.outs[0].name, e.outs[0].t) for e in gr.eqns if e.outs[0].name in ("h", "g")]
    assert order == [("h", 0), ("g", 5), ("h", 1), ("h", 2), ("h", 3), ("h", 4),
                     ("g", 4), ("g", 3), ("g", 2), ("g", 1)]


def test_a_deep_step_body_schedules_without_recursion():
    """Scheduling walks the body iteratively: 1,500 chained operations (deeper than Python's
    recursion limit) schedule in dependency order, with the delayed read closing the cycle."""
    c = ur.Circuit("deep")
    x = c.input("x", ())
    h = c.state("h", ())
    v = h.prev + x
    for _ in range(1500):
        v = v * 1.0
    h.next = v
    (phase,) = c.schedule()
    assert phase.direction == 1 and len(phase.nodes) == 1501
    assert phase.nodes[-1] is h.next.node
    res = c.unroll(steps=3).run({}, x=np.array([1.0, 2.0, 3.0]), return_state=True)
    assert res["state"]["h"] == 6.0                 # h(3) = 1 + 2 + 3


def test_many_to_one_loss_and_outputs():
    c = ur.Circuit("classify")
    x = c.input("x", (2,))
    y = c.input("y", (), dtype="int")
    W, U, V = c.param("W", (3, 3)), c.param("U", (3, 2)), c.param("V", (4, 3))
    h = c.state("h", (3,))
    h.next = ur.tanh(W @ h.prev + U @ x)
    o = c.output("o", V @ h, at="last")
    c.loss(ur.softmax_cross_entropy(o, y), at="last")
    g = c.unroll(steps=6)
    ops = [e for e in g.eqns if e.outs[0].name == "o"]
    assert [e.step for e in ops] == [6]             # the output is computed once, at τ
    rng = np.random.default_rng(0)
    out = g.run(c.init_params(), x=rng.standard_normal((6, 5, 2)),
                y=np.zeros((6, 5), dtype=int))
    assert out["o"].shape == (5, 4)


def test_static_input_feeds_every_step():
    c = ur.Circuit("fig10_9")
    xs = c.input("xvec", (2,), per_step=False)
    R, W = c.param("R", (3, 2)), c.param("W", (3, 3))
    h = c.state("h", (3,))
    h.next = ur.tanh(W @ h.prev + R @ xs)
    c.output("o", h)
    g = c.unroll(steps=4)
    Rx = [e for e in g.eqns if e.prim.name == "matvec" and e.inputs[0] is g.params["R"]]
    assert len(Rx) == 1 and Rx[0].step is None      # R x is the same at every step: once
    p = {"R": np.ones((3, 2)), "W": 0.5 * np.eye(3)}
    out = g.run(p, xvec=np.array([[0.1, 0.2], [0.3, -0.3]]))["o"]
    assert out.shape == (4, 2, 3)


def test_gate_split_and_slicing():
    c = ur.Circuit("gates")
    x = c.input("x", (2,))
    W = c.param("W", (6, 2))
    a = W @ x
    i, f = ur.split(a[:4], 2)
    r = a[4:]
    c.output("o", ur.sigmoid(i) * ur.tanh(f) + r)
    g = c.unroll(steps=1)
    p = {"W": np.arange(12.0).reshape(6, 2) / 10}
    xs = np.array([[1.0, -1.0]])
    av = p["W"] @ xs[0]
    ref = 1 / (1 + np.exp(-av[:2])) * np.tanh(av[2:4]) + av[4:]
    assert np.allclose(g.run(p, x=xs)["o"][0], ref)
    text = str(g)
    assert "_3.0[1], _3.1[1] = split(_2[1], (2, 2))" in text and "_2[1] = _1[1][0:4]" in text


def test_init_params_are_seeded_per_name():
    c = elman()
    a, b = c.init_params(seed=3), c.init_params(seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W"], c.init_params(seed=4)["W"])
    c.param("extra", (5, 5))                         # adding one leaves the others unchanged
    assert np.array_equal(a["W"], c.init_params(seed=3)["W"])
    assert c.init_params(dtype="float32")["W"].dtype == np.float32
    with pytest.raises(ur.DTypeError):
        c.init_params(dtype="int32")
    assert np.abs(a["W"]).max() <= 0.5 and np.all(a["b"] == 0)


def test_vector_times_matrix_and_dot():
    c = ur.Circuit("products")
    x = c.input("x", (3,))
    A = c.param("A", (3, 2))
    v = c.param("v", (3,))
    c.output("row", x @ A)            # a row vector times a matrix
    c.output("dot", x @ v)            # a scalar per step
    g = c.unroll(steps=1)
    p = {"A": np.arange(6.0).reshape(3, 2), "v": np.array([1.0, 2.0, 3.0])}
    xs = np.array([[1.0, 0.5, -1.0]])
    out = g.run(p, x=xs)
    assert np.allclose(out["row"][0], xs[0] @ p["A"])
    assert np.allclose(out["dot"][0], xs[0] @ p["v"])


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                   st.integers(-2, 2)), max_size=20))))
def test_scheduling_graph_algorithms_agree_with_networkx(graph):
    """The schedule's own graph algorithms give networkx's answers and orders (the unrolled
    equation order, and so every printed graph, depends on them)."""
    from unroll.schedule import _find_cycle, _negative_cycle, _strongly_connected, _topological
    n, edges = graph
    succ = {v: {} for v in range(n)}
    for u, v, _ in edges:
        succ[u][v] = None
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from((u, v) for u, v, _ in edges)
    assert list(_strongly_connected(succ)) == list(nx.strongly_connected_components(G))
    cycle = _find_cycle(succ)
    if nx.is_directed_acyclic_graph(G):
        assert cycle == [] and _topological(succ) == list(nx.topological_sort(G))
    else:
        assert cycle and all(G.has_edge(a, b) for a, b in zip(cycle, cycle[1:] + cycle[:1]))
    weight = {}
    for u, v, w in edges:
        weight[u, v] = min(weight.get((u, v), w), w)
    W = nx.DiGraph()
    W.add_nodes_from(range(n))
    W.add_weighted_edges_from((u, v, w) for (u, v), w in weight.items())
    assert _negative_cycle(range(n), weight) == nx.negative_edge_cycle(W)


def test_run_asks_only_for_the_inputs_of_the_outputs_it_returns():
    """Prediction needs no targets: run(outputs=[...]) computes those outputs only, and an
    input none of them reads may be left out."""
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(steps=5)
    p = c.init_params(seed=0)
    xs, ys = np.random.default_rng(0).normal(size=(5, 2, 3)), np.zeros((5, 2), dtype=int)
    full = g.run(p, x=xs, y=ys)
    only = g.run(p, x=xs, outputs=["o"])
    assert list(only) == ["o"] and np.array_equal(only["o"], full["o"])
    assert np.allclose(g.run(p, x=xs[:, 0], outputs="o")["o"], full["o"][:, 0], rtol=1e-13)
    assert float(g.run(p, x=xs, y=ys, outputs=["loss"])["loss"]) == float(full["loss"])
    with pytest.raises(ur.InputError, match="missing input y"):
        g.run(p, x=xs, outputs=["o", "loss"])        # the loss reads the targets
    with pytest.raises(ur.InputError, match="no output 'oo'; did you mean 'o'"):
        g.run(p, x=xs, outputs=["oo"])
    with pytest.raises(ur.InputError, match="outputs must be a non-empty list"):
        g.run(p, x=xs, outputs=[])
    state = g.run(p, x=xs, outputs=["o"], return_state=True)["state"]["h"]
    assert state.shape == (2, 4)


def test_a_circuit_prints_its_step_equations():
    """print(c) shows the step body with time indices, as the book writes it, unrolled or
    not: an input at t, a state read at t-1 (t+1 backward, t-k for a delay k)."""
    c = ur.Circuit("two")
    x = c.input("x", (2,))
    h = c.state("h", (2,))
    g = c.state("g", (2,), direction="backward")
    W = c.param("W", (2, 2))
    h.next = ur.tanh(W @ h.prev + h.delayed(2) + x)
    g.next = ur.tanh(W @ g.prev + x)
    c.output("o", h + g, at="last")
    c.loss(ur.sum(h * h))
    text = str(c)
    assert text.splitlines() == [
        "circuit two",
        "  h(t) = tanh(((W @ h(t-1)) + h(t-2)) + x(t))",
        "  g(t) = tanh((W @ g(t+1)) + x(t))",
        "  o(t) = h(t) + g(t)    (at last)",
        "  L(t) = sum(h(t) * h(t), axes=(-1,))",
    ], text
