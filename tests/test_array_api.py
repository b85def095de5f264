"""The backend is a parameter: the whole Elman pipeline runs on array_api_strict, a namespace
that allows nothing beyond the Python array API standard, and agrees with NumPy."""
import array_api_strict as xps     # a test dependency: if missing, fail rather than skip
import numpy as np
import pytest

import unroll as ur
import builders


def elman(D=3, H=4, K=3):
    return builders.elman(D, H, K, bias_init="uniform")


def to_numpy(a):
    return np.from_dlpack(a)


@pytest.mark.parametrize("executor", ["compiled", "interpret"])
def test_elman_pipeline_on_array_api_strict(executor):
    c = elman()
    g = c.unroll(steps=5)
    rng = np.random.default_rng(0)
    p = c.init_params(seed=1)
    x, y = rng.standard_normal((5, 2, 3)), rng.integers(0, 3, size=(5, 2))
    ref_out = g.run(p, x=x, y=y)
    ref_loss, ref_grads = g.value_and_grad(p, x=x, y=y, wrt=list(p) + ["x"])

    ps = {k: xps.asarray(v) for k, v in p.items()}
    xs, ys = xps.asarray(x), xps.asarray(y)
    out = g.run(ps, x=xs, y=ys)
    assert type(out["o"]).__module__.startswith("array_api_strict")
    assert np.allclose(to_numpy(out["o"]), ref_out["o"], rtol=1e-14, atol=1e-15)
    loss, grads = g.value_and_grad(ps, x=xs, y=ys, wrt=list(p) + ["x"], executor=executor)
    assert np.isclose(float(loss), float(ref_loss), rtol=1e-14)
    for k in ref_grads:
        assert np.allclose(to_numpy(grads[k]), ref_grads[k], rtol=1e-13, atol=1e-15), k


def test_gradcheck_on_array_api_strict():
    c = elman()
    g = c.unroll(steps=3)
    rng = np.random.default_rng(2)
    ps = {k: xps.asarray(v) for k, v in c.init_params(seed=3).items()}
    rep = ur.gradcheck(g, ps, mode="directional", x=xps.asarray(rng.standard_normal((3, 2, 3))),
                       y=xps.asarray(rng.integers(0, 3, size=(3, 2))))
    assert rep.ok, str(rep)


def test_mixing_backends_is_an_error():
    c = elman()
    g = c.unroll(steps=2)
    p = c.init_params()
    with pytest.raises(ur.DTypeError, match=r"different backends"):
        g.run(p, x=xps.asarray(np.zeros((2, 3))), y=np.zeros(2, dtype=int))
