"""Training: optimizers against hand-computed updates, clipping, truncated BPTT against full
BPTT and a hand-written truncated BPTT, checkpointing against stored activations, NaN
localisation in the training loop, and the loop itself."""
import math

import numpy as np
import pytest

import unroll as ur
from builders import elman_problem
from test_elman_bptt import bptt

D, H, K = 3, 5, 4


def pair(seed=0):
    rng = np.random.default_rng(seed)
    p = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))}
    gs = [{"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))} for _ in range(4)]
    return p, gs


# --- optimizers: the update rules written out by hand ---------------------------------------

def test_sgd_plain_momentum_nesterov_weight_decay():
    for momentum, nesterov, wd in [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.01)]:
        p, gs = pair()
        ref = {k: v.copy() for k, v in p.items()}
        vel = {}
        opt = ur.optim.SGD(p, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd)
        for g in gs:
            opt.step({k: v.copy() for k, v in g.items()})
            for k in ref:
                d = g[k] + wd * ref[k]
                if momentum:
                    vel[k] = d.copy() if k not in vel else momentum * vel[k] + d
                    d = d + momentum * vel[k] if nesterov else vel[k]
                ref[k] = ref[k] - 0.1 * d
            for k in ref:
                np.testing.assert_allclose(p[k], ref[k], rtol=1e-14, atol=1e-15)


def test_adam_matches_the_paper_with_bias_correction():
    p, gs = pair(1)
    ref = {k: v.copy() for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v_ = {k: np.zeros_like(v) for k, v in p.items()}
    opt = ur.optim.Adam(p, lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    for t, g in enumerate(gs, 1):
        opt.step(g)
        for k in ref:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v_[k] = 0.99 * v_[k] + 0.01 * g[k] ** 2
            mhat, vhat = m[k] / (1 - 0.9 ** t), v_[k] / (1 - 0.99 ** t)
            ref[k] = ref[k] - 0.01 * mhat / (np.sqrt(vhat) + 1e-8)
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-12)
    # the first Adam step moves every entry by about lr, whatever the gradient's scale
    p, gs = pair(2)
    before = {k: v.copy() for k, v in p.items()}
    ur.optim.Adam(p, lr=0.01).step({k: 1e-3 * g for k, g in gs[0].items()})
    for k in p:
        np.testing.assert_allclose(np.abs(p[k] - before[k]), 0.01, rtol=1e-3)


def test_rmsprop_plain_centered_momentum():
    for centered, momentum in [(False, 0.0), (True, 0.0), (False, 0.5)]:
        p, gs = pair(3)
        ref = {k: v.copy() for k, v in p.items()}
        s = {k: np.zeros_like(v) for k, v in p.items()}
        gbar = {k: np.zeros_like(v) for k, v in p.items()}
        buf = {k: np.zeros_like(v) for k, v in p.items()}
        opt = ur.optim.RMSprop(p, lr=0.01, alpha=0.9, centered=centered, momentum=momentum)
        for g in gs:
            opt.step(g)
            for k in ref:
                s[k] = 0.9 * s[k] + 0.1 * g[k] ** 2
                gbar[k] = 0.9 * gbar[k] + 0.1 * g[k]
                denom = np.sqrt(s[k] - gbar[k] ** 2 if centered else s[k]) + 1e-8
                if momentum:
                    buf[k] = momentum * buf[k] + g[k] / denom
                    ref[k] = ref[k] - 0.01 * buf[k]
                else:
                    ref[k] = ref[k] - 0.01 * g[k] / denom
                np.testing.assert_allclose(p[k], ref[k], rtol=1e-12)


def test_optimizers_against_torch():
    torch = pytest.importorskip("torch")
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                     ("Adam", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, centered=True))]:
        p, gs = pair(4)
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
        topt = getattr(torch.optim, name)(list(tp.values()), **kw)
        opt = getattr(ur.optim, name)(p, **kw)
        for g in gs:
            opt.step(g)
            for k, t in tp.items():
                t.grad = torch.tensor(g[k])
            topt.step()
        for k in p:
            np.testing.assert_allclose(p[k], tp[k].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_optimizer_errors():
    p, gs = pair()
    with pytest.raises(ur.ParamError, match="learning rate"):
        ur.optim.SGD(p, lr=0)
    with pytest.raises(ur.ParamError, match="shape"):
        ur.optim.Adam(p).step({"w": np.zeros((2, 3))})
    with pytest.raises(ur.ParamError, match="gradient of b is a list, not an array"):
        ur.optim.SGD(p).step({"b": [1.0, 2.0]})
    with pytest.raises(ur.ParamError, match="dict of parameter arrays"):
        ur.optim.Adam([np.zeros(3)])


@pytest.mark.parametrize("make", [
    lambda p: ur.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: ur.optim.Adam(p, lr=0.01),
    lambda p: ur.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True)])
def test_a_failed_step_changes_nothing(make):
    """Every gradient and parameter is checked before anything is updated: a NaN, a complex
    or integer gradient, a wrong shape or a read-only parameter raises and leaves the
    parameters, the optimizer's buffers and its step count as they were."""
    p = {"a": np.array([1.0, 2.0]), "b": np.array([[0.5, -0.5]])}
    opt = make(p)
    opt.step({"a": np.array([0.1, 0.2]), "b": np.array([[0.3, 0.4]])})
    before = {k: v.copy() for k, v in p.items()}
    state = {k: {n: b.copy() for n, b in st.items()} for k, st in opt.state.items()}
    good = np.array([0.1, 0.1])
    bad = [({"a": good, "b": np.array([[np.nan, 1.0]])}, ur.NonFiniteError,
            r"gradient of b has a NaN or Inf at entry \(0, 0\)"),
           ({"a": good, "b": np.array([[1.0, np.inf]])}, ur.NonFiniteError, "entry \\(0, 1\\)"),
           ({"a": good, "b": np.array([[1 + 1j, 0]])}, ur.DTypeError, "gradient of b.*complex"),
           ({"a": good, "b": np.array([[1, 2]])}, ur.DTypeError, "gradient of b.*int"),
           ({"a": good, "b": np.zeros(2)}, ur.ParamError, "shape"),
           ({"a": good, "b": "0.1"}, ur.ParamError, "gradient of b is a str"),
           ([good], ur.ParamError, "dict of gradients")]
    for grads, err, msg in bad:
        with pytest.raises(err, match=msg):
            opt.step(grads)
    p["b"].flags.writeable = False
    with pytest.raises(ur.ParamError, match="parameter b is read-only"):
        opt.step({"a": good, "b": np.array([[0.3, 0.4]])})
    assert opt.steps == 1
    for k in p:
        assert np.array_equal(p[k], before[k])
        assert all(np.array_equal(opt.state[k][n], state[k][n]) for n in state[k])


def test_optimizer_hyper_parameters_are_checked():
    p = {"w": np.ones(2)}
    for make, msg in [(lambda: ur.optim.SGD(p, lr="0.1"), "lr must be a number, not str"),
                      (lambda: ur.optim.SGD(p, lr=float("inf")), "lr must be a finite"),
                      (lambda: ur.optim.SGD(p, momentum=-0.1), "momentum .* >= 0"),
                      (lambda: ur.optim.Adam(p, betas=(1.0, 0.9)), r"β₁ .* in \[0, 1\)"),
                      (lambda: ur.optim.Adam(p, betas=0.9), "betas must be a pair"),
                      (lambda: ur.optim.Adam(p, eps=0), "eps .* > 0"),
                      (lambda: ur.optim.RMSprop(p, alpha=0), r"alpha .* in \(0, 1\]"),
                      (lambda: ur.optim.RMSprop(p, centered="yes"), "centered must be")]:
        with pytest.raises(ur.ParamError, match=msg):
            make()


def test_clip_grad_norm_and_value():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    norm = ur.optim.clip_grad_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    assert ur.optim.global_norm(g) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(g["a"], [3.0 / (5 + 1e-6), 0.0])
    g = {"a": np.array([0.3, -0.4])}
    assert ur.optim.clip_grad_norm(g, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(g["a"], [0.3, -0.4])          # under the limit: untouched
    g = {"a": np.array([-3.0, 0.2, 7.0])}
    ur.optim.clip_grad_value(g, 1.0)
    np.testing.assert_array_equal(g["a"], [-1.0, 0.2, 1.0])


# --- truncated BPTT --------------------------------------------------------------------------

def truncated_by_hand(p, x, y, k):
    """Elman BPTT (eq. 10.18-10.28) with the chain ∂L/∂h cut every k steps."""
    return bptt(p, x, y, cut=k)


@pytest.fixture
def seq():
    return elman_problem(17, 3, D, H, K, seed=5)


def test_tbptt_covering_the_sequence_is_full_bptt(seq):
    c, p, x, y = seq
    loss, full = c.unroll(steps=len(x)).value_and_grad(p, x=x, y=y)
    for k1, k2 in [(17, 17), (40, 40), (5, 22)]:       # one window, or windows reaching t=0
        total, grads = ur.training.TruncatedBPTT(c, k1, k2).grads(p, x=x, y=y)
        assert total == pytest.approx(float(loss), rel=1e-13)
        for name in full:
            np.testing.assert_allclose(grads[name], full[name], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("k", [1, 4, 5, 16])
def test_tbptt_chunks_cut_the_chain_as_documented(seq, k):
    """Same loss (the state is carried), gradients of the chain cut every k steps."""
    c, p, x, y = seq
    ref_loss, ref = truncated_by_hand(p, x, y, k)
    tb = ur.training.TruncatedBPTT(c, k)
    total, grads = tb.grads(p, x=x, y=y)
    assert total == pytest.approx(ref_loss, rel=1e-12)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-10, atol=1e-12)
    _, full = c.unroll(steps=len(x)).value_and_grad(p, x=x, y=y)
    assert np.abs(grads["W"] - full["W"]).max() > 1e-6           # and it is not full BPTT


def test_tbptt_overlapping_windows_count_each_loss_once(seq):
    c, p, x, y = seq
    loss, _ = c.unroll(steps=len(x)).value_and_grad(p, x=x, y=y)
    tb = ur.training.TruncatedBPTT(c, 3, 8)
    parts = list(tb.chunks(p, x=x, y=y))
    assert len(parts) == math.ceil(len(x) / 3)
    assert sum(float(l) for l, _ in parts) == pytest.approx(float(loss), rel=1e-12)
    # each window back-propagates through 8 steps: its W-gradient is the full one of a graph
    # that starts 8 steps back from the state reached there, losses on the last 3 steps only
    g8 = c.unroll(steps=8, loss_steps=[6, 7, 8])
    gfull = c.unroll(steps=len(x))
    h4 = gfull.evaluate(p, [gfull.states["h"][4]], x=x, y=y)[gfull.states["h"][4]]
    _, want = g8.value_and_grad(p, x=x[4:12], y=y[4:12], h0=h4)
    for name in want:
        np.testing.assert_allclose(parts[3][1][name], want[name], rtol=1e-12, atol=1e-14)


def test_tbptt_state_carries_across_calls(seq):
    c, p, x, y = seq
    whole = ur.training.TruncatedBPTT(c, 4)
    a, _ = whole.grads(p, x=x, y=y)
    split = ur.training.TruncatedBPTT(c, 4)
    b1, _ = split.grads(p, x=x[:8], y=y[:8])
    b2, _ = split.grads(p, x=x[8:], y=y[8:])
    assert a == pytest.approx(b1 + b2, rel=1e-12)            # stateful across batches
    split.reset()
    b3, _ = split.grads(p, x=x[8:], y=y[8:])
    assert abs(b3 - b2) > 1e-6                              # reset: back to zeros


def test_tbptt_errors(seq):
    c, p, x, y = seq
    with pytest.raises(ur.UnrollError, match="k2 = 2 < k1 = 3"):
        ur.training.TruncatedBPTT(c, 3, 2)
    with pytest.raises(ur.UnrollError, match="k1 must be an integer"):
        ur.training.TruncatedBPTT(c, 0)
    with pytest.raises(ur.InputError, match="missing sequence input"):
        list(ur.training.TruncatedBPTT(c, 3).chunks(p, x=x))
    with pytest.raises(ur.InputError, match="input x is a list, not an array"):
        list(ur.training.TruncatedBPTT(c, 3).chunks(p, x=x.tolist(), y=y))
    with pytest.raises(ur.InputError, match="input y has 16 steps, x has 17"):
        list(ur.training.TruncatedBPTT(c, 3).chunks(p, x=x, y=y[1:]))
    bi = ur.models.bidirectional(D, H, K)
    with pytest.raises(ur.CircuitError, match="backward"):
        ur.training.TruncatedBPTT(bi, 3)


# --- checkpointing -----------------------------------------------------------------------------

@pytest.mark.parametrize("every", [1, 3, 5, "sqrt", 100])
def test_checkpointed_gradients_equal_stored_ones_exactly(seq, every):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    l0, g0 = g.value_and_grad(p, x=x, y=y, executor="interpret", wrt=["W", "U", "x", "h0"])
    l1, g1 = g.value_and_grad(p, x=x, y=y, checkpoint=every, wrt=["W", "U", "x", "h0"])
    assert float(l0) == float(l1)
    for k in g0:
        assert np.array_equal(g0[k], g1[k]), k                   # bitwise
    lc, gc = g.value_and_grad(p, x=x, y=y, wrt=["W", "U", "x", "h0"])
    for k in g0:
        np.testing.assert_allclose(g1[k], gc[k], rtol=1e-12, atol=1e-14)


def test_checkpointing_an_lstm_and_a_two_step_delay():
    c = ur.models.lstm(D, H)
    r = c.input("r", (H,))
    c.loss(ur.mse(c["h"], r))
    rng = np.random.default_rng(0)
    T = 12
    g = c.unroll(steps=T)
    p = c.init_params(seed=0)
    feed = dict(x=rng.normal(size=(T, 2, D)), r=rng.normal(size=(T, 2, H)))
    _, a = g.value_and_grad(p, executor="interpret", **feed)
    _, b = g.value_and_grad(p, checkpoint=4, executor="interpret", **feed)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    _, b = g.value_and_grad(p, checkpoint=4, **feed)          # on the compiled program
    assert all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-14) for k in a)
    d2 = ur.Circuit("d2")
    xin = d2.input("x", (D,))
    h = d2.state("h", (H,))
    h.next = ur.tanh(d2.param("W", (H, H)) @ h.delayed(2) + d2.param("U", (H, D)) @ xin)
    d2.loss(ur.sum(h * h))
    g2 = d2.unroll(steps=9)
    p2 = d2.init_params(seed=0)
    xs = rng.normal(size=(9, D))
    _, a = g2.value_and_grad(p2, executor="interpret", x=xs)
    _, b = g2.value_and_grad(p2, checkpoint=3, executor="interpret", x=xs)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    _, b = g2.value_and_grad(p2, checkpoint=3, x=xs)
    assert all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-14) for k in a)
    with pytest.raises(ur.UnrollError, match="at least 2 steps"):
        g2.value_and_grad(p2, checkpoint=1, x=xs)


def test_checkpointing_refuses_what_it_cannot_do(seq):
    c, p, x, y = seq
    with pytest.raises(ur.UnrollError, match="checkpoint must be"):
        c.unroll(steps=4).value_and_grad(p, x=x[:4], y=y[:4], checkpoint=0)
    with pytest.raises(ur.UnrollError, match="at least 2 steps.*checkpoint=2"):
        _delay2_graph(9).value_and_grad(_delay2_params(), checkpoint=1, x=x[:9])


def _delay2_graph(T):
    d2 = ur.Circuit("d2")
    h = d2.state("h", (H,))
    h.next = ur.tanh(d2.param("W", (H, H)) @ h.delayed(2) + d2.param("U", (H, D)) @
                     d2.input("x", (D,)))
    d2.loss(ur.sum(h * h))
    return d2.unroll(steps=T)


def _delay2_params():
    return {"W": np.full((H, H), 0.3), "U": np.full((H, D), -0.2)}


def test_checkpointing_a_bidirectional_network_is_bitwise_the_interpreter(seq):
    """States that run backward in time are recomputed from checkpoints at the start of the
    next segment; the state returned for the next chunk survives checkpointing."""
    c, p, x, y = seq
    bi = ur.models.bidirectional(D, H, K)
    g = bi.unroll(steps=9)
    pb = bi.init_params(seed=0)
    _, a = g.value_and_grad(pb, executor="interpret", x=x[:9], y=y[:9])
    for k in (1, 2, 3, 9, "sqrt"):
        _, b, state = g.value_and_grad(pb, checkpoint=k, return_state=True, x=x[:9], y=y[:9])
        assert all(np.array_equal(a[n], b[n]) for n in a), k
        assert set(state) == set(bi.states)


def test_checkpoint_sqrt_is_at_least_the_longest_delay():
    """checkpoint="sqrt" takes max(⌈√τ⌉, longest delay) instead of refusing."""
    from unroll.checkpoint import segment_length
    assert segment_length("sqrt", 4, 3) == 3 and segment_length("sqrt", 100, 3) == 10
    assert [segment_length("sqrt", T) for T in (1, 2, 3, 4, 5, 9, 10, 99, 100, 101)] == \
        [1, 2, 2, 2, 3, 3, 4, 10, 10, 11]                   # ⌈√τ⌉
    g = _delay2_graph(4)                        # ⌈√4⌉ = 2 = the delay; τ = 2: 2 > ⌈√2⌉
    _, a = g.value_and_grad(_delay2_params(), executor="interpret", x=np.ones((4, D)))
    _, b = g.value_and_grad(_delay2_params(), checkpoint="sqrt", x=np.ones((4, D)))
    assert all(np.array_equal(a[n], b[n]) for n in a)
    g = _delay2_graph(1)                        # ⌈√1⌉ = 1 < 2: segments of 2 steps
    _, a = g.value_and_grad(_delay2_params(), executor="interpret", x=np.ones((1, D)))
    _, b = g.value_and_grad(_delay2_params(), checkpoint="sqrt", x=np.ones((1, D)))
    assert all(np.array_equal(a[n], b[n]) for n in a)


def test_checkpointing_keeps_fewer_values_alive():
    """The most arrays alive at once, counted while the equations run: about τ/k + k steps'
    worth with checkpoints, all τ steps' worth without; the checkpoints are every k-th step."""
    from unroll.checkpoint import Plan, run_checkpointed
    from unroll.runtime import apply_eqn, bind_arguments, interpret
    T = 100
    c, p, x, y = elman_problem(T, 2, D, H, K, seed=0)
    g = c.unroll(steps=T)
    gg = ur.grad(g)
    assert [t for t in range(1, T + 1) if Plan(gg, 10).kept(t)] == list(range(10, T + 1, 10))
    bound = bind_arguments(g, p, {"x": x, "y": y})
    stored = len(interpret(gg, dict(bound.env), bound.xp)) - len(bound.env)

    def peak(k):
        most = 0

        def apply(e, env):
            nonlocal most
            apply_eqn(bound.xp, e, env)
            most = max(most, len(env) - len(bound.env))
        run_checkpointed(gg, dict(bound.env), k, [gg.loss], apply)
        return most
    per_step = stored / T
    assert peak(10) < 0.35 * stored and peak(10) < (T / 10 + 2 * 10 + 5) * per_step
    assert peak(10) < peak(50) < stored                 # k = √τ keeps fewer than k = τ/2


# --- losses at some steps only -----------------------------------------------------------------

def test_unroll_loss_steps(seq):
    c, p, x, y = seq
    full = c.unroll(steps=6)
    part = c.unroll(steps=6, loss_steps=[5, 6])
    assert set(part.step_losses) == {5, 6}
    per = full.evaluate(p, [v for t in (5, 6) for v in full.step_losses[t]], x=x[:6], y=y[:6])
    want = sum(float(np.mean(a)) for a in per.values())
    assert float(part.run(p, x=x[:6], y=y[:6])["loss"]) == pytest.approx(want, rel=1e-13)
    with pytest.raises(ur.CircuitError, match="steps 1..6"):
        c.unroll(steps=6, loss_steps=[7])


# --- the training loop -----------------------------------------------------------------------

def test_train_learns_and_stops_at_the_target(seq, tmp_path):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    params = c.init_params(seed=0)
    hist = ur.training.train(g, params, [{"x": x, "y": y}], ur.optim.Adam(params, lr=0.05),
                             epochs=500, target_loss=15.0, progress=False)
    assert hist.losses[0] > 20 and hist.final <= 15.0 and len(hist.epochs) < 500
    assert "target" in hist.stopped
    assert hist.plot(tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_train_stops_on_the_first_nan_naming_node_and_step(seq):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    params = c.init_params(seed=0)
    bad = x.copy()
    bad[6, 1, 2] = np.inf                         # an Inf in the data at step 7
    batches = [{"x": x, "y": y}, {"x": bad, "y": y}]
    with pytest.raises(ur.NonFiniteError) as err:
        ur.training.train(g, params, batches, ur.optim.SGD(params, lr=0.01), epochs=3,
                          progress=False)
    msg = str(err.value)
    assert "training stopped at epoch 1, update 2" in msg and "x" in msg and "t = 7" in msg
    assert len(err.value.history.losses) == 1


def test_train_stops_when_the_updates_blow_up(seq):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    params = c.init_params(seed=0)
    with np.errstate(all="ignore"), \
            pytest.raises(ur.NonFiniteError, match="training stopped at epoch 2.*parameter"):
        ur.training.train(g, params, [{"x": x, "y": y}], ur.optim.SGD(params, lr=1e308),
                          epochs=5, progress=False)


def test_train_with_tbptt_and_a_function(seq):
    c, p, x, y = seq
    params = c.init_params(seed=0)
    tb = ur.training.TruncatedBPTT(c, 5)
    hist = ur.training.train(tb, params, [{"x": x, "y": y}], ur.optim.Adam(params, lr=0.01),
                             epochs=2, progress=False)
    assert len(hist.losses) == 2 * 4                  # ceil(17 / 5) windows per epoch
    g = c.unroll(steps=len(x))
    hist = ur.training.train(lambda prm, b: g.value_and_grad(prm, **b), params,
                             [{"x": x, "y": y}], ur.optim.Adam(params, lr=0.01), epochs=2,
                             progress=False, clip_norm=0.5)
    assert max(hist.grad_norms) > 0.5                 # the norm before clipping is recorded
    with pytest.raises(ur.UnrollError, match="another dict"):
        ur.training.train(g, dict(params), [], ur.optim.Adam(params), progress=False)


def test_train_progress_bar_shows_the_loss(seq, capsys):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    params = c.init_params(seed=0)
    ur.training.train(g, params, [{"x": x, "y": y}], ur.optim.Adam(params, lr=0.01),
                      epochs=3, desc="elman")
    err = capsys.readouterr().err
    assert "elman" in err and "loss=" in err and "3/3" in err


def test_train_refuses_what_would_learn_nothing(seq):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    params = c.init_params(seed=0)
    before = {k: v.copy() for k, v in params.items()}
    opt = ur.optim.SGD(params, lr=0.1)
    for batches, err, msg in [
            ([], ur.InputError, "epoch 1 has no batches"),
            ({"x": x, "y": y}, ur.InputError, "one dict of inputs; pass a list"),
            ([x, y], ur.InputError, "batch 0 of epoch 1 is a ndarray, not a dict"),
            (7, ur.InputError, "not int")]:
        with pytest.raises(err, match=msg):
            ur.training.train(g, params, batches, opt, target_loss=100.0, progress=False)
    for kw, msg in [(dict(epochs=0), "epochs must be"), (dict(clip_norm=-1), "clip_norm"),
                    (dict(target_loss="low"), "target_loss must be a number")]:
        with pytest.raises(ur.UnrollError, match=msg):
            ur.training.train(g, params, [{"x": x, "y": y}], opt, progress=False, **kw)
    with pytest.raises(ur.UnrollError, match="optimizer must be"):
        ur.training.train(g, params, [{"x": x, "y": y}], "adam", progress=False)
    assert opt.steps == 0 and all(np.array_equal(params[k], before[k]) for k in params)


def test_the_progress_bar_is_full_when_training_stops_early(seq, capsys):
    c, p, x, y = seq
    g = c.unroll(steps=len(x))
    params = c.init_params(seed=0)
    hist = ur.training.train(g, params, [{"x": x, "y": y}], ur.optim.Adam(params, lr=0.01),
                             epochs=50, desc="elman", callback=lambda e, h: e == 4)
    err = capsys.readouterr().err
    assert hist.stopped and "4/4" in err and "stopped early" in err and "100%" in err
