"""The Elman network against an independent, hand-written NumPy BPTT (Goodfellow et al.,
eq. 10.8-10.11 forward, eq. 10.18-10.28 backward), batched, in float64 and float32."""
import numpy as np
import pytest

import unroll as ur
from builders import elman, elman_problem




def bptt(p, x, y, cut=None, per_step=False):
    """Eq. 10.8-10.11 forward and 10.18-10.28 backward; loss = mean over the batch of Σ_t.

    ``cut=k``: truncated BPTT, no gradient from h(t+1) into h(t) when t is a multiple of k.
    ``per_step``: also return ∂L/∂h(t) for t = 1..T, shape (T, B, H)."""
    T, B, _ = x.shape
    H = p["W"].shape[0]
    h = np.zeros((T + 1, B, H))
    yhat = np.zeros((T, B, p["V"].shape[0]))
    loss = 0.0
    for t in range(1, T + 1):
        a = p["b"] + h[t - 1] @ p["W"].T + x[t - 1] @ p["U"].T          # 10.8
        h[t] = np.tanh(a)                                                # 10.9
        o = p["c"] + h[t] @ p["V"].T                                     # 10.10
        e = np.exp(o - o.max(-1, keepdims=True))
        yhat[t - 1] = e / e.sum(-1, keepdims=True)                       # 10.11
        loss -= np.log(yhat[t - 1][np.arange(B), y[t - 1]]).sum() / B
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dh_next = np.zeros((B, H))                      # W^T diag(1-h(t+1)^2) ∇h(t+1) L
    dhs = np.zeros((T, B, H))
    for t in range(T, 0, -1):
        if cut and t % cut == 0:
            dh_next = np.zeros((B, H))              # truncated: the chain is cut here
        do = yhat[t - 1].copy()                     # 10.18: ŷ - 1_{i = y}
        do[np.arange(B), y[t - 1]] -= 1.0
        do /= B                                     # the loss is a mean over the batch
        dh = do @ p["V"] + dh_next                  # 10.19 (t = τ) and 10.20-10.21
        dhs[t - 1] = dh
        da = (1.0 - h[t] ** 2) * dh                 # diag(1 - h(t)^2) ∇h(t) L
        grads["c"] += do.sum(0)                     # 10.22
        grads["b"] += da.sum(0)                     # 10.23
        grads["V"] += do.T @ h[t]                   # 10.24
        grads["W"] += da.T @ h[t - 1]               # 10.25-10.26
        grads["U"] += da.T @ x[t - 1]               # 10.28
        dh_next = da @ p["W"]
    return (loss, grads, dhs, h) if per_step else (loss, grads)


@pytest.mark.parametrize("T,B", [(1, 1), (5, 3), (12, 4)])
def test_matches_hand_written_bptt_float64(T, B):
    c, p, x, y = elman_problem(T, B, seed=T * 10 + B)
    g = c.unroll(steps=T)
    ref_loss, ref = bptt(p, x, y)
    for executor in ("compiled", "interpret"):
        loss, grads = g.value_and_grad(p, x=x, y=y, executor=executor)
        assert abs(float(loss) - ref_loss) <= 1e-10 * abs(ref_loss)
        for k in ref:
            err = np.max(np.abs(grads[k] - ref[k])) / (np.max(np.abs(ref[k])) or 1.0)
            assert err <= 1e-10, (executor, k, err)


def test_matches_hand_written_bptt_float32():
    c, p, x, y = elman_problem(8, 3, seed=1)
    g = c.unroll(steps=8)
    ref_loss, ref = bptt(p, x, y)
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    loss, grads = g.value_and_grad(p32, x=x.astype(np.float32), y=y)
    assert loss.dtype == np.float32
    assert abs(float(loss) - ref_loss) <= 1e-5 * abs(ref_loss)
    for k in ref:
        assert grads[k].dtype == np.float32
        assert np.max(np.abs(grads[k] - ref[k])) <= 1e-5 * np.max(np.abs(ref[k]))


def test_unbatched_inputs_give_unbatched_outputs():
    T, D, H, K = 4, 3, 5, 4
    rng = np.random.default_rng(2)
    c = elman(D, H, K)
    g = c.unroll(steps=T)
    p = {k: rng.uniform(-0.8, 0.8, size=s) for k, s in c.param_shapes().items()}
    x = rng.standard_normal((T, D))
    y = rng.integers(0, K, size=T)
    out = g.run(p, x=x, y=y)
    assert out["o"].shape == (T, K)
    ref_loss, ref = bptt(p, x[:, None], y[:, None])
    assert abs(float(out["loss"]) - ref_loss) <= 1e-12 * abs(ref_loss)
    _, grads = g.value_and_grad(p, x=x, y=y, wrt=["W", "x"])
    assert grads["x"].shape == (T, D)
    assert np.allclose(grads["W"], ref["W"], rtol=1e-12, atol=1e-14)


def test_shared_parameter_gradient_is_the_sum_of_its_per_step_copies():
    T, B, D, H, K = 6, 2, 3, 4, 3
    rng = np.random.default_rng(3)
    c = elman(D, H, K)
    g = c.unroll(steps=T)
    p = {k: rng.uniform(-0.8, 0.8, size=s) for k, s in c.param_shapes().items()}
    x, y = rng.standard_normal((T, B, D)), rng.integers(0, K, size=(T, B))
    gg = ur.grad(g)
    _, grads = g.value_and_grad(p, x=x, y=y)
    for name in ("W", "U", "V", "b", "c"):
        contrib = gg.contributions[name]
        assert sorted(t for t, _ in contrib) == list(range(1, T + 1))
        vals = gg.evaluate(p, [v for _, v in contrib], x=x, y=y)
        total = sum(vals[v] for _, v in contrib)
        assert np.allclose(total, grads[name], rtol=1e-13, atol=1e-15), name
