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


def _both(seed=1):
    """The Elman model's parameters and data, in NumPy and in array_api_strict."""
    c = ur.models.elman(3, 4, 3)
    rng = np.random.default_rng(0)
    p = c.init_params(seed=seed)
    x, y = rng.standard_normal((4, 2, 3)), rng.integers(0, 3, size=(4, 2))
    return c, (p, x, y), ({k: xps.asarray(v.copy()) for k, v in p.items()}, xps.asarray(x),
                          xps.asarray(y))


def test_diagnostics_on_array_api_strict():
    c, (p, x, y), (ps, xs, ys) = _both()
    g = c.unroll(steps=4)
    for fn in (ur.diagnostics.gradient_norms, ur.diagnostics.jacobians,
               ur.diagnostics.jacobian_norms):
        ref, got = fn(g, p, x=x, y=y), fn(g, ps, x=xs, y=ys)
        ref, got = (ref["h"], got["h"]) if isinstance(ref, dict) else (ref, got)
        assert np.allclose(np.asarray(got), ref, rtol=1e-12, atol=1e-15), fn.__name__


def test_generate_on_array_api_strict():
    c, (p, _, _), (ps, _, _) = _both()
    for kw in (dict(greedy=True), dict(seed=3, temperature=0.7)):
        assert ur.models.generate(c, ps, [0, 2], 5, **kw) == \
            ur.models.generate(c, p, [0, 2], 5, **kw)


def test_training_and_clipping_on_array_api_strict():
    c, (p, x, y), (ps, xs, ys) = _both()
    g = c.unroll(steps=4)
    runs = []
    for params, data in ((p, dict(x=x, y=y)), (ps, dict(x=xs, y=ys))):
        params = dict(params)
        h1 = ur.training.train(g, params, [data], ur.optim.Adam(params, lr=0.05), epochs=3,
                               clip_norm=0.5, progress=False)
        tb = ur.training.TruncatedBPTT(c, 2)
        h2 = ur.training.train(tb, params, [data], ur.optim.SGD(params, lr=0.1, momentum=0.9),
                               epochs=2, clip_value=0.2, progress=False)
        runs.append((h1.losses + h2.losses, {k: np.asarray(v) for k, v in params.items()}))
    (l0, p0), (l1, p1) = runs
    assert np.allclose(l1, l0, rtol=1e-12)
    for k in p0:
        assert np.allclose(p1[k], p0[k], rtol=1e-12, atol=1e-15), k
    grads = g.value_and_grad(ps, x=xs, y=ys)[1]
    ref = g.value_and_grad(p, x=x, y=y)[1]
    assert np.isclose(ur.optim.global_norm(grads), ur.optim.global_norm(ref), rtol=1e-13)


def test_the_required_members_are_written_down_and_provided():
    """Every ``xp.<name>`` the engine's source calls is in backends.REQUIRED (or is one of the
    Namespace's own attributes), and NumPy and array_api_strict provide every one."""
    import re
    from pathlib import Path
    from unroll import backends
    own = {"float_dtype", "exp_max", "module", "name"} | set(backends.KERNELS)
    used = set()
    for path in Path(ur.__file__).parent.rglob("*.py"):
        if "testing" in path.parts:
            continue
        used |= set(re.findall(r"\bxp\.([a-z_][a-z_0-9]*)", path.read_text()))
    assert used - own <= set(backends.REQUIRED), sorted(used - own - set(backends.REQUIRED))
    for module in (np, xps):
        ns = backends.get(module, module.float64)
        for name in backends.REQUIRED:
            assert callable(getattr(ns, name)) or name in ("float64", "int64"), (module.__name__, name)


def test_a_namespace_missing_a_required_member_is_refused_by_name():
    import types
    from unroll import backends
    lacking = types.ModuleType("lacking")
    lacking.__dict__.update({m: getattr(xps, m) for m in backends.REQUIRED if m != "tanh"})
    with pytest.raises(ur.UnrollError, match=r"lacking lacks tanh.*unroll/backends/lacking.py"):
        backends.get(lacking, xps.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpys_own_kernels_are_bitwise_the_generic_ones(dtype):
    """backends.KERNELS: NumPy's own (in place, no temporaries, contiguous copies) against the
    generic versions over the namespace's functions, on views, extremes, 0-d arrays and
    scalars; an operand is never written."""
    from unroll import backends
    ns = backends.get(np, dtype)
    assert set(backends.KERNELS) == {"sigmoid", "transposed", "concat_into", "all_finite"}
    plain = {k: make(ns) for k, make in backends.KERNELS.items()}
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 12)) * 30).astype(dtype)
    x[0, :4] = [1e4, -1e4, 0.0, -0.0]
    before = x.copy()
    assert ns.sigmoid is not plain["sigmoid"]
    for arg in (x, x[:, 3:9], x.T, x[1, 2:3], x[2, 5], np.asarray(x[2, 5]), dtype(-7.5)):
        got, want = ns.sigmoid(arg), plain["sigmoid"](arg)
        assert np.asarray(got).dtype == np.asarray(want).dtype
        assert np.array_equal(got, want), arg
    for arg in (x, x[:, 3:9], x.T):
        got = ns.transposed(arg)
        assert np.array_equal(got, plain["transposed"](arg)) and got.flags.c_contiguous
    for axis in (-1, 0):
        pieces = (x[:2], x[2:4]) if axis == 0 else (x[:, :5], x[:, 5:])
        a, b = np.full((4, 12) if axis == 0 else (5, 12), 7.0, dtype), \
            np.full((4, 12) if axis == 0 else (5, 12), 7.0, dtype)
        ns.concat_into(a, pieces, axis)
        plain["concat_into"](b, pieces, axis)
        assert np.array_equal(a, b) and np.array_equal(a, np.concatenate(pieces, axis))
    for arg in (x, x.T, x[:, 2:3], np.asarray(x[2, 5]), np.array([], dtype)):
        assert ns.all_finite(arg) is plain["all_finite"](arg) is True
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[3, 7] = bad
        assert ns.all_finite(y) is plain["all_finite"](y) is False
        assert ns.all_finite(y[:, 6:9]) is False and ns.all_finite(y[:, :6]) is True
    slot = np.zeros((3, 5, 12), dtype)                # a slot of a stacked array
    ns.concat_into(slot[1, ...], (x[:, :7], x[:, 7:]), -1)
    assert np.array_equal(slot[1], x) and not slot[0].any() and not slot[2].any()
    assert np.array_equal(x, before)
