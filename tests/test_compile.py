"""The compiler: passes that keep meaning, and re-rolled, readable programs."""
import numpy as np

import unroll as ur
from unroll import backends
from unroll.compile import compile_graph
from unroll.compile.passes import cse, dce, hoist


def elman(D=3, H=4, K=3):
    c = ur.Circuit("elman")
    x = c.input("x", (D,))
    y = c.input("y", (), dtype="int")
    U, W, V = c.param("U", (H, D)), c.param("W", (H, H)), c.param("V", (K, H))
    b, cb = c.param("b", (H,)), c.param("c", (K,))
    h = c.state("h", (H,))
    h.next = ur.tanh((b + W @ h.prev + U @ x).named("a"))
    o = c.output("o", cb + V @ h)
    c.loss(ur.softmax_cross_entropy(o, y))
    return c


def test_forward_program_is_one_loop_over_the_step_body():
    g = elman().unroll(steps=50)
    prog = g.program()
    src = str(prog)
    assert src.count("for t in range(") == 1
    assert "for t in range(1, 51, 1):  # t = 1..50" in src
    assert "h_[t] = xp.tanh(a)  # h[t] = tanh(a[t])" in src
    assert "(h_[t - 1] @ W.T)  # _1[t] = W @ h[t-1]" in src
    assert len(src.splitlines()) < 40            # the body once, not 50 times
    assert prog.stats["loops"] == 1


def test_backward_program_rolls_the_middle_steps():
    g = elman().unroll(steps=30)
    prog = g.program(grad=True)
    src = str(prog)
    assert prog.stats["loops"] == 2               # forward loop, backward loop
    assert "for t in range(29, 1, -1):  # t = 29..2" in src
    assert "Wᵀ = transpose(W)" in src and src.count("xp.matrix_transpose(W)") == 1
    # only what the backward pass reads across steps is kept per step
    lists = [ln.split(" = ")[0].strip() for ln in src.splitlines() if "= [None] *" in ln]
    assert sorted(lists) == ["h_", "v5_"]


def test_running_sums_live_in_one_variable():
    g = elman().unroll(steps=10)
    src = str(g.program(grad=True))
    assert "Sd_W = (Sd_W + d__1_1)  # Σ∂W[t] = Σ∂W[t+1] + ∂_1.1[t]" in src


def test_programs_and_interpreter_agree_including_unbatched():
    c = elman()
    g = c.unroll(steps=7)
    p = c.init_params(seed=1)
    rng = np.random.default_rng(0)
    for x, y in [(rng.standard_normal((7, 3, 3)), rng.integers(0, 3, (7, 3))),
                 (rng.standard_normal((7, 3)), rng.integers(0, 3, 7))]:
        a = g.value_and_grad(p, x=x, y=y)
        b = g.value_and_grad(p, x=x, y=y, executor="interpret")
        assert float(a[0]) == float(b[0])
        for k in p:
            assert np.array_equal(a[1][k], b[1][k])


def test_passes_keep_meaning():
    c = ur.Circuit("dup")
    x = c.input("x", (2,))
    W = c.param("W", (2, 2))
    h = c.state("h", (2,))
    h.next = ur.tanh(W @ h.prev + x) + ur.tanh(W @ h.prev + x)    # the same work twice
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=4)
    gg = ur.grad(g)
    results = [gg.loss, gg.grads["W"]]
    eqns = dce(gg.eqns, results)
    merged, res = cse(eqns, results)
    assert len(merged) < len(eqns)
    pro, rest = hoist(merged, gg.inputs())
    assert all(all(getattr(x, "t", None) is None for x in e.inputs) for e in pro)
    prog = compile_graph(gg, results)
    p = {"W": np.array([[0.3, -0.2], [0.1, 0.5]])}
    xs = np.random.default_rng(1).standard_normal((4, 2))
    out = prog(backends.get(np, np.float64), p, {"x": xs[:, None], "h0": np.zeros((1, 2))})
    ref = gg.evaluate(p, results, x=xs)
    assert np.isclose(out[gg.loss], ref[gg.loss]) and np.allclose(out[gg.grads["W"]],
                                                                  ref[gg.grads["W"]])


def test_program_repr():
    g = elman().unroll(steps=3)
    assert repr(g.program()).startswith("<Program elman_forward:")
