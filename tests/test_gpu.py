"""CuPy on a GPU against NumPy (the reference): the same graphs, the same numbers.

These run only where a CUDA GPU and CuPy are present (marker ``gpu``; skipped elsewhere and
reported as skipped, never as passed).
"""
import numpy as np
import pytest

import unroll as ur

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")


def _to_gpu(d):
    return {k: cp.asarray(v) for k, v in d.items()}


@pytest.mark.parametrize("model", ["elman", "lstm", "gru"])
def test_gradients_on_the_gpu_match_numpy(model):
    rng = np.random.default_rng(0)
    T, B, D, H, K = 12, 4, 3, 8, 5
    if model == "elman":
        c = ur.models.elman(D, H, K)
    else:
        c = getattr(ur.models, model)(D, H, num_layers=2)
        c.loss(ur.mse(c["h"], c.input("r", (H,))))
    p = c.init_params(seed=0)
    feed = {"x": rng.standard_normal((T, B, D))}
    if "y" in c:
        feed["y"] = rng.integers(0, K, size=(T, B))
    if "r" in c:
        feed["r"] = rng.standard_normal((T, B, H))
    g = c.unroll(steps=T)
    loss, grads = g.value_and_grad(p, **feed)
    gl, gg = g.value_and_grad(_to_gpu(p), **_to_gpu(feed))
    assert isinstance(gl, cp.ndarray) and all(isinstance(v, cp.ndarray) for v in gg.values())
    assert abs(float(gl) - float(loss)) <= 1e-12 * abs(float(loss))
    for k in grads:
        np.testing.assert_allclose(cp.asnumpy(gg[k]), grads[k], rtol=1e-10, atol=1e-12)


def test_training_checkpointing_and_diagnostics_on_the_gpu():
    rng = np.random.default_rng(1)
    c = ur.models.elman(3, 6, 4)
    g = c.unroll(steps=10)
    x, y = rng.standard_normal((10, 2, 3)), rng.integers(0, 4, size=(10, 2))
    p = _to_gpu(c.init_params(seed=0))
    gx, gy = cp.asarray(x), cp.asarray(y)
    _, a = g.value_and_grad(p, x=gx, y=gy, executor="interpret")
    _, b = g.value_and_grad(p, x=gx, y=gy, checkpoint=3)
    assert all(bool(cp.all(a[k] == b[k])) for k in a)
    hist = ur.training.train(g, p, [{"x": gx, "y": gy}], ur.optim.Adam(p, lr=0.05),
                             epochs=50, progress=False)
    assert hist.final < hist.losses[0]
    assert isinstance(p["W"], cp.ndarray)
    norms = ur.diagnostics.gradient_norms(g, p, x=gx, y=gy)
    assert norms["h"].shape == (10,) and np.all(norms["h"] > 0)
