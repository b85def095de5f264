"""Gradient diagnostics against independent computations: per-step ‖∂L/∂h(t)‖ against a
hand-written BPTT, one-step Jacobians against their closed forms and finite differences."""
import numpy as np
import pytest

import unroll as ur
from builders import elman_problem
from test_elman_bptt import bptt

D, H, K = 3, 5, 4


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def dh_by_hand(p, x, y):
    """∂L/∂h(t) for t = 1..T (eq. 10.19-10.21) and the states, from the hand-written BPTT."""
    _, _, dh, h = bptt(p, x, y, per_step=True)
    return dh, h


@pytest.fixture
def problem():
    c, p, x, y = elman_problem(7, 2, D, H, K, seed=3, scale=0.9)
    return c, c.unroll(steps=7), p, x, y


def test_gradient_norms_match_hand_written_bptt(problem):
    c, g, p, x, y = problem
    dh, _ = dh_by_hand(p, x, y)
    got = ur.diagnostics.gradient_norms(g, p, x=x, y=y)
    want = np.sqrt((dh ** 2).sum(axis=(1, 2)))
    assert set(got) == {"h"}
    np.testing.assert_allclose(got["h"], want, rtol=1e-12)


def test_jacobians_closed_form_and_finite_differences(problem):
    c, g, p, x, y = problem
    J = ur.diagnostics.jacobians(g, p, "h", x=x, y=y)
    _, h = dh_by_hand(p, x, y)
    T, B = x.shape[:2]
    assert J.shape == (T, B, H, H)
    for t in range(1, T + 1):
        for b in range(B):
            closed = (1.0 - h[t, b] ** 2)[:, None] * p["W"]        # diag(1 - h²) W
            np.testing.assert_allclose(J[t - 1, b], closed, atol=1e-14)
            step = lambda hp: np.tanh(p["b"] + p["W"] @ hp + p["U"] @ x[t - 1, b])
            eps, fd = 1e-6, np.zeros((H, H))
            for j in range(H):
                e = np.zeros(H)
                e[j] = eps
                fd[:, j] = (step(h[t - 1, b] + e) - step(h[t - 1, b] - e)) / (2 * eps)
            np.testing.assert_allclose(J[t - 1, b], fd, atol=1e-9)
    norms = ur.diagnostics.jacobian_norms(g, p, "h", x=x, y=y)
    assert norms.shape == (T, B)
    np.testing.assert_allclose(norms[2, 1], np.linalg.norm(J[2, 1], 2))


def test_lstm_cell_state_jacobian_is_the_forget_gate():
    """∂c(t)/∂c(t-1) = diag(f(t)) with h(t-1) held fixed: the constant error carousel."""
    c = ur.models.lstm(D, H)
    rng = np.random.default_rng(0)
    p = c.init_params(seed=1)
    T = 5
    x = rng.standard_normal((T, D))
    g = c.unroll(steps=T)
    J = ur.diagnostics.jacobians(g, p, "c_l0", x=x)
    assert J.shape == (T, H, H)
    hs = g.evaluate(p, [g.states["h_l0"][t] for t in range(T)], x=x)
    for t in range(1, T + 1):
        hprev = hs[g.states["h_l0"][t - 1]]
        a = p["weight_ih_l0"] @ x[t - 1] + p["bias_ih_l0"] + p["weight_hh_l0"] @ hprev + \
            p["bias_hh_l0"]
        f = _sigmoid(a[H:2 * H])
        np.testing.assert_allclose(J[t - 1], np.diag(f), atol=1e-14)


def test_backward_state_jacobian_looks_at_the_next_step():
    c = ur.Circuit("back")
    x = c.input("x", (D,))
    g_ = c.state("g", (H,), direction="backward")
    W = c.param("W", (H, H))
    g_.next = ur.tanh(W @ g_.prev + c.param("U", (H, D)) @ x)
    c.loss(ur.sum(g_ * g_))
    T = 4
    gr = c.unroll(steps=T)
    p = c.init_params(seed=0)
    x_ = np.random.default_rng(1).standard_normal((T, D))
    J = ur.diagnostics.jacobians(gr, p, "g", x=x_)
    vals = gr.evaluate(p, [gr.states["g"][t] for t in range(1, T + 1)], x=x_)
    for t in range(1, T + 1):
        gt = vals[gr.states["g"][t]]
        np.testing.assert_allclose(J[t - 1], (1 - gt ** 2)[:, None] * p["W"], atol=1e-14)


def test_rnn_gradient_vanishes_lstm_cell_carries_it():
    """The textbook picture in numbers: loss at the last step only, τ = 30."""
    T, rng = 30, np.random.default_rng(0)
    x = rng.standard_normal((T, 4, D))
    rnn = ur.Circuit("rnn")
    h = rnn.state("h", (H,))
    h.next = ur.tanh(rnn.param("W", (H, H)) @ h.prev + rnn.param("U", (H, D)) @
                     rnn.input("x", (D,)))
    rnn.loss(ur.sum(h * h), at="last")
    lstm = ur.models.lstm(D, H)
    lstm.loss(ur.sum(lstm["h"] * lstm["h"]), at="last")
    pr, pl = rnn.init_params(seed=0), lstm.init_params(seed=0)
    pl["bias_ih_l0"][H:2 * H] += 4.0                    # forget gates open
    r = ur.diagnostics.gradient_norms(rnn.unroll(steps=T), pr, x=x)["h"]
    c = ur.diagnostics.gradient_norms(lstm.unroll(steps=T), pl, x=x, states="c_l0")["c_l0"]
    assert r[0] / r[-1] < 1e-4                          # vanished over 30 steps
    assert c[0] / c[-1] > 0.1                           # carried


def test_errors_name_the_state(problem):
    c, g, p, x, y = problem
    with pytest.raises(ur.UnrollError, match="no state 'hh'"):
        ur.diagnostics.gradient_norms(g, p, states="hh", x=x, y=y)
    with pytest.raises(ur.UnrollError, match="no state 'q'"):
        ur.diagnostics.jacobians(g, p, "q", x=x, y=y)


def test_plot_writes_a_png(tmp_path, problem):
    c, g, p, x, y = problem
    n = ur.diagnostics.gradient_norms(g, p, x=x, y=y)
    path = ur.diagnostics.plot({"RNN": n["h"]}, tmp_path / "norms.png", title="‖∂L/∂h‖")
    assert path.read_bytes()[:4] == b"\x89PNG"
