"""Regression tests for corners that once gave wrong answers or crashed, each named after what
it protects. The differential property (tests/test_differential.py) covers them all at random;
these pin down the minimal cases that were found first."""
import numpy as np
import pytest

import unroll as ur


def _rand(shapes: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1, 1, s) for k, s in shapes.items()}


def _same(a: dict, b: dict, tol=1e-12):
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k], b[k], rtol=tol, atol=tol), k


def test_compiled_program_keeps_the_batch_axis_of_an_initial_value_read_at_a_delay():
    """A backward state initialised by a parameter, read two steps ahead by a forward state:
    its initial rows (no batch axis) must not be stacked against batched steps, where T
    would line up with B (silently wrong for B = the number of stacked steps)."""
    c = ur.Circuit("corner1")
    x = c.input("x", (2,))
    g = c.state("g", (3,), init="param", direction="backward")
    g.next = ur.tanh(c.param("Wg", (3, 3)) @ g.delayed(2) + c.param("Ug", (3, 2)) @ x)
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("U", (3, 2)) @ x + c.param("A", (3, 3)) @ g.delayed(2)
                     + c.param("W", (3, 3)) @ h.prev)
    c.loss(ur.sum(h * h))
    gr = c.unroll(steps=5)
    p = _rand(c.param_shapes(), 1)
    for B in (2, 3):                                    # 2: the two initial rows; 3: a crash
        xs = np.random.default_rng(B).standard_normal((5, B, 2))
        la, ga = gr.value_and_grad(p, x=xs)
        lb, gb = gr.value_and_grad(p, x=xs, executor="interpret")
        assert float(la) == pytest.approx(float(lb), rel=1e-13)
        _same(ga, gb)


def _delayed_param_state():
    c = ur.Circuit("corner2")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="param")
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.delayed(2) + x)
    c.loss(ur.sum(h * h))
    return c


def test_hessian_vector_products_of_a_parameter_initial_value_read_at_a_delay():
    """The two rows of h0 are read by two different steps; a VJP rule replayed from one row
    for the other reused the first row's cotangent (once-work that read the rule's own
    cotangent)."""
    c = _delayed_param_state()
    g = c.unroll(steps=2)
    rng = np.random.default_rng(0)
    p = {"W": rng.uniform(-1, 1, (2, 2)), "h0": rng.uniform(-1, 1, (2, 2))}
    xs = rng.standard_normal((2, 2))
    for k in ("W", "h0"):
        for idx in np.ndindex(*p[k].shape):
            v = {n: np.zeros_like(a) for n, a in p.items()}
            v[k][idx] = 1.0
            hv = ur.hvp(g, p, v, x=xs)
            eps = 1e-5
            gp = g.value_and_grad({n: a + eps * v[n] for n, a in p.items()}, x=xs)[1]
            gm = g.value_and_grad({n: a - eps * v[n] for n, a in p.items()}, x=xs)[1]
            for n in p:
                assert np.allclose(hv[n], (gp[n] - gm[n]) / (2 * eps), atol=1e-7), (k, idx, n)
    assert ur.gradcheck(g, p, order=2, x=xs).ok


def test_values_of_one_step_never_share_a_name():
    """Cotangent names: ∂(o.1) for a value named o.1, so that it is never the piece ∂o.1 of
    another rule; a second sweep writes ∂′. The compiler stores values by name and step: a
    GRU with a readout of another size (K != H) crashed in hvp at τ >= 5."""
    c = ur.models.gru(3, 4)
    y = c.input("y", (), dtype="int")
    c.loss(ur.softmax_cross_entropy(c.param("V", (2, 4)) @ c["h"], y))
    g = c.unroll(steps=5)
    rng = np.random.default_rng(0)
    p = _rand(c.param_shapes(), 0)
    xs, ys = rng.standard_normal((5, 2, 3)), rng.integers(0, 2, (5, 2))
    v = _rand(c.param_shapes(), 1)
    hv = ur.hvp(g, p, v, x=xs, y=ys)
    h = g._cache[("hvp", tuple(v))]
    for graph in (ur.grad(g), ur.grad(h, wrt=tuple(v))):
        seen = {}
        for e in graph.eqns:
            for o in e.outs:
                if o.t is not None:
                    assert (o.name, o.t) not in seen, (o, e, seen.get((o.name, o.t)))
                    seen[o.name, o.t] = e
    eps = 1e-6
    gp = g.value_and_grad({k: a + eps * v[k] for k, a in p.items()}, x=xs, y=ys)[1]
    gm = g.value_and_grad({k: a - eps * v[k] for k, a in p.items()}, x=xs, y=ys)[1]
    for k in p:
        assert np.allclose(hv[k], (gp[k] - gm[k]) / (2 * eps), rtol=1e-5, atol=1e-6), k


@pytest.mark.parametrize("k", [4, "sqrt"])
def test_checkpointing_returns_the_final_state(k):
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(steps=11)
    p = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((11, 3)), rng.integers(0, 2, 11)
    la, ga, sa = g.value_and_grad(p, return_state=True, x=xs, y=ys)
    lb, gb, sb = g.value_and_grad(p, checkpoint=k, return_state=True, x=xs, y=ys)
    assert float(la) == pytest.approx(float(lb), rel=1e-14)
    _same(ga, gb)
    _same(sa, sb)
    tb = ur.training.TruncatedBPTT(c, k1=5, checkpoint=k)
    total, grads = tb.grads(p, x=xs, y=ys)
    assert total == pytest.approx(float(la), rel=1e-13)


def _two_way(direction, init="zeros"):
    c = ur.Circuit("chunks")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init=init, direction=direction)
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.delayed(2) + c.param("A", (2, 2)) @ h.prev + x)
    c.output("o", h)
    c.loss(ur.sum(h * h))
    return c


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_state_carried_between_chunks_equals_one_run(direction):
    """The state returned for the next chunk has the initial value's layout (B, k, H), rows
    in time order; B = k = 2 made a (k, B, H) layout look right. A backward state runs the
    later chunk first."""
    c = _two_way(direction)
    p = _rand(c.param_shapes(), 3)
    xs = np.random.default_rng(4).standard_normal((7, 2, 2))
    whole = c.unroll(steps=7).run(p, x=xs)
    first, second = (slice(0, 3), slice(3, 7)) if direction == "forward" else \
        (slice(3, 7), slice(0, 3))
    a = c.unroll(steps=first.stop - first.start).run(p, return_state=True, x=xs[first])
    assert a["state"]["h"].shape == (2, 2, 2)
    b = c.unroll(steps=second.stop - second.start).run(p, x=xs[second], h0=a["state"]["h"])
    o = np.concatenate([a["o"], b["o"]] if direction == "forward" else [b["o"], a["o"]])
    assert np.allclose(o, whole["o"], rtol=1e-13, atol=1e-15)


def test_state_of_a_parameter_initial_value_longer_than_the_run():
    """τ = 1 < delay 3: the state handed on holds two rows of h0 (no batch axis) and one
    computed step; they are stacked per sequence. models.generate runs on such circuits."""
    c = ur.Circuit("long")
    x = c.input("x", (3,))
    h = c.state("h", (4,), init="param")
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.delayed(3) + c.param("U", (4, 3)) @ x)
    o = c.output("o", c.param("V", (3, 4)) @ h)
    c.loss(ur.softmax_cross_entropy(o, c.input("y", (), dtype="int")))
    p = c.init_params(seed=0)
    xs = np.random.default_rng(0).standard_normal((5, 2, 3))
    out = c.unroll(steps=1).run(p, return_state=True, x=xs[:1], y=np.zeros((1, 2), int))
    st = out["state"]["h"]
    assert st.shape == (2, 3, 4)
    assert np.array_equal(st[:, :2], np.broadcast_to(p["h0"][1:], (2, 2, 4)))
    tokens = ur.models.generate(c, p, [0, 1], 4, greedy=True)
    g = c.unroll(steps=5)
    want = np.argmax(g.run(p, x=np.eye(3)[tokens[:5]], y=np.zeros(5, int))["o"], -1)
    assert tokens[2:] == list(want[1:])


def test_truncated_bptt_counts_a_sparse_loss_once():
    """A loss at="last" is the sequence's last step, in the last window only: the window
    losses add up to the sequence's loss, and one window gives full BPTT."""
    c = ur.models.many_to_one(3, 4, 2)
    p = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    g = c.unroll(steps=6)
    ins = {"x": rng.standard_normal((6, 3)), "y": np.array(1)}
    full, gf = g.value_and_grad(p, **ins)
    total, grads = ur.training.TruncatedBPTT(c, k1=2).grads(p, **ins)
    assert total == pytest.approx(float(full), rel=1e-13)
    one, g1 = ur.training.TruncatedBPTT(c, k1=6).grads(p, **ins)
    assert one == pytest.approx(float(full), rel=1e-13)
    _same(g1, gf)


@pytest.mark.parametrize("expr", ["s * h.prev", "a / ur.sum(a)", "a - ur.mean(a)", "a * a[0]",
                                  "ur.sum(M.prev + b, axis=0)"])
def test_operands_of_different_ranks_broadcast(expr):
    c = ur.Circuit("ranks")
    x = c.input("x", (3,))
    s, b = c.param("s", ()), c.param("b", (3,))
    M = c.state("M", (3, 3))
    M.next = ur.tanh(M.prev + b)
    h = c.state("h", (3,))
    a = x + h.prev
    h.next = ur.tanh(eval(expr))
    c.loss(ur.sum(h * h) + ur.sum(M * M))
    g = c.unroll(steps=3)
    p = _rand(c.param_shapes(), 5)
    xs = np.random.default_rng(6).standard_normal((3, 2, 3))
    assert ur.gradcheck(g, p, x=xs).ok
    la, _ = g.value_and_grad(p, x=xs)
    lb, _ = g.value_and_grad(p, x=xs, executor="interpret")
    assert float(la) == pytest.approx(float(lb), rel=1e-13)


def test_gradient_graph_of_a_composed_graph_keeps_its_parts():
    s2s = ur.models.encoder_decoder(2, 3, 2)
    g = s2s.unroll(input_steps=3, output_steps=2)
    gg = ur.grad(g)
    assert gg.parts == g.parts
    assert gg.to_dot(mode="backward").source.count("->") == \
        g.to_dot(mode="backward").source.count("->") > 0


def test_a_loss_that_reads_no_per_step_value_counts_at_each_of_its_steps():
    """Found by the random circuits: a loss of static inputs and parameters only (computed
    once) was left out of the total; it counts at each of its steps like any other."""
    c = ur.Circuit("static_loss")
    x = c.input("x", (2,))
    s = c.input("s", (2,), per_step=False)
    h = c.state("h", (2,))
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.prev + x)
    c.loss(ur.sum(h * h))
    c.loss(ur.sum(ur.tanh(c.param("A", (2, 2)) @ s) ** 2), at=[1, 3])
    g = c.unroll(steps=3)
    p = _rand(c.param_shapes(), 2)
    rng = np.random.default_rng(3)
    xs, s0 = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 2))
    hs, hv = [], np.zeros((2, 2))
    for t in range(3):
        hv = np.tanh(hv @ p["W"].T + xs[t])
        hs.append(hv)
    want = sum(np.mean(np.sum(v * v, -1)) for v in hs) + \
        2 * np.mean(np.sum(np.tanh(s0 @ p["A"].T) ** 2, -1))
    assert float(g.run(p, x=xs, s=s0)["loss"]) == pytest.approx(want, rel=1e-13)
    assert ur.gradcheck(g, p, x=xs, s=s0).ok


@pytest.mark.parametrize("B", [1, 2, 3])
def test_a_value_computed_once_meets_initial_rows_in_the_compiled_program(B):
    """Found by the random circuits: a batched value computed once (from a static input)
    times the parameter rows of a delayed initial value: stacked over steps, (T, H) met
    (B, H) and T lined up with B."""
    c = ur.Circuit("once_meets_init")
    x = c.input("x", (2,))
    s = c.input("s", (2,), per_step=False)
    h = c.state("h", (2,), init="param")
    A = ur.tanh(c.param("P", (2, 2)) @ s)
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.delayed(2) + x)
    o = c.output("o", c.param("V", (2, 2)) @ (A / (1.5 + h.delayed(2) ** 2)))
    c.loss(ur.sum(o * o))
    p = _rand(c.param_shapes(), 4)
    rng = np.random.default_rng(5)
    for T in (2, 4):
        g = c.unroll(steps=T)
        xs, s0 = rng.standard_normal((T, B, 2)), rng.standard_normal((B, 2))
        la, ga = g.value_and_grad(p, x=xs, s=s0)
        lb, gb = g.value_and_grad(p, x=xs, s=s0, executor="interpret")
        assert float(la) == pytest.approx(float(lb), rel=1e-13)
        _same(ga, gb)


@pytest.mark.parametrize("B", [1, 2])
def test_concat_of_a_step_input_and_a_static_input_in_the_compiled_program(B):
    """Found by review (the conditioning pattern of fig. 10.9): stacked over time, x has
    leading axes (T, B) and the static s only (B,); concat broadcast s wrongly."""
    c = ur.Circuit("cond")
    x, s = c.input("x", (2,)), c.input("s", (3,), per_step=False)
    h = c.state("h", (4,))
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.prev + c.param("M", (4, 5)) @ ur.concat([x, s]))
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    p = _rand(c.param_shapes(), 6)
    xs, s0 = np.ones((3, B, 2)), np.ones((B, 3))
    la, ga = g.value_and_grad(p, x=xs, s=s0)
    lb, gb = g.value_and_grad(p, x=xs, s=s0, executor="interpret")
    assert float(la) == pytest.approx(float(lb), rel=1e-13)
    _same(ga, gb)


def test_a_graph_changed_after_unrolling_is_not_handed_out_again():
    c = ur.models.elman(2, 3, 2)
    g = c.unroll(steps=3)
    assert c.unroll(steps=3) is g                     # reused, with its programs
    g.prune(keep=[g.loss])
    g2 = c.unroll(steps=3)
    assert g2 is not g and g2.outputs
    out = g2.run(c.init_params(seed=0), x=np.ones((3, 2)), y=np.zeros(3, int))
    assert out["o"].shape == (3, 2)


def test_truncated_bptt_gives_each_step_its_input_gradient_once():
    """Found by review: the windows' input gradients, of different lengths, were summed
    (broadcast) into one; each step's gradient comes from the window that counts its loss,
    and a carried initial value has no single gradient."""
    c = ur.models.elman(3, 4, 2)
    p = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((5, 2, 3)), rng.integers(0, 2, (5, 2))
    _, got = ur.training.TruncatedBPTT(c, k1=2, wrt=("U", "x")).grads(p, x=xs, y=ys)
    want, state = [], {}
    for lo, hi in ((0, 2), (2, 4), (4, 5)):
        g = c.unroll(steps=hi - lo)
        _, gr, st = g.value_and_grad(p, wrt=("x",), return_state=True, x=xs[lo:hi],
                                     y=ys[lo:hi], **state)
        want.append(gr["x"])
        state = {"h0": st["h"]}
    assert got["x"].shape == xs.shape
    assert np.allclose(got["x"], np.concatenate(want), rtol=1e-13, atol=1e-15)
    with pytest.raises(ur.UnrollError, match="h0 carries the state"):
        ur.training.TruncatedBPTT(c, k1=2, wrt=("U", "h0"))


def test_generate_with_an_expression_initial_value_and_a_static_input():
    """A state initialised by an expression cannot be handed on, so generate runs from the
    start for each token; greedy tokens are the argmax of one run over them all."""
    c = ur.Circuit("cond_gen")
    x = c.input("x", (3,))
    s = c.input("s", (2,), per_step=False)
    h = c.state("h", (4,), init=ur.tanh(c.param("A", (4, 2)) @ s))
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.prev + c.param("U", (4, 3)) @ x)
    c.output("o", c.param("V", (3, 4)) @ h)
    p, s0 = _rand(c.param_shapes(), 7), np.array([0.5, -1.0])
    tokens = ur.models.generate(c, p, [0, 1], 4, greedy=True, statics={"s": s0})
    want = np.argmax(c.unroll(steps=5).run(p, x=np.eye(3)[tokens[:5]], s=s0)["o"], -1)
    assert len(tokens) == 6 and tokens[2:] == list(want[1:])
