"""The compiled loop-kernel target, executor="numba" (unroll/compile/loopkernel.py).

The first part needs no numba: the kernel writer's source, run by Python (what numba would
compile), the fallbacks and their notices. The random-circuit property of
tests/test_differential.py runs every program through these Python-run kernels too. The second
part compiles with numba (``make test-fast`` installs it; without it those tests are skipped).
"""
import importlib.util
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import unroll as ur
from unroll import api
from unroll.compile import loopkernel as lk
from unroll.ir import _grad_items
from unroll.compile import target as targets
from unroll import testing as ut

HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def _lstm(H=3, D=2):
    c = ur.Circuit("lstm")
    x, y = c.input("x", (D,)), c.input("y", (2,))
    h, cell = c.state("h", (H,)), c.state("cell", (H,))
    W, U, b = c.param("W", (4 * H, H)), c.param("U", (4 * H, D)), c.param("b", (4 * H,))
    i, f, g, o = ur.split(W @ h.prev + U @ x + b, 4)
    cell.next = ur.sigmoid(f) * cell.prev + ur.sigmoid(i) * ur.tanh(g)
    h.next = ur.sigmoid(o) * ur.tanh(cell)
    V = c.param("V", (2, H))
    c.loss(ur.sum((V @ h - y) ** 2))
    return c


def _gru(H=3, D=2):
    c = ur.Circuit("gru")
    x, y = c.input("x", (D,)), c.input("y", (2,))
    h = c.state("h", (H,))
    Wi, Wh = c.param("Wi", (3 * H, D)), c.param("Wh", (3 * H, H))
    i_r, i_z, i_n = ur.split(Wi @ x, 3)
    h_r, h_z, h_n = ur.split(Wh @ h.prev, 3)
    r, z = ur.sigmoid(i_r + h_r), ur.sigmoid(i_z + h_z)
    n = ur.tanh(i_n + r * h_n)
    h.next = (1.0 - z) * n + z * h.prev
    V = c.param("V", (2, H))
    c.loss(ur.sum(ur.relu(V @ h - y) ** 2))
    return c


def _data(c, T, B, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    p = {k: v.astype(dtype) for k, v in c.init_params(seed=seed).items()}
    x = rng.standard_normal((T, B, 2)).astype(dtype)
    y = rng.standard_normal((T, B, 2)).astype(dtype)
    return p, x, y


def _agree(make, dtype, steps, batch, executor):
    """value_and_grad on ``executor`` against the default program, in ``dtype``."""
    c = make()
    g = c.unroll(steps=steps)
    p, x, y = _data(c, steps, batch, dtype)
    l0, g0 = g.value_and_grad(p, x=x, y=y)
    l1, g1 = g.value_and_grad(p, x=x, y=y, executor=executor)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    assert np.allclose(l0, l1, **tol)
    for k in g0:
        assert g1[k].dtype == dtype and np.allclose(g0[k], g1[k], **tol), k
    return g


@pytest.fixture
def python_kernels():
    """The numba target with its kernels run by Python, registered for the test."""
    t = targets.register(lk.NumbaTarget("py_kernels", python=True))
    yield t.name
    del targets.TARGETS[t.name]


def _kernels(prog, loops=True) -> list:
    """The program's kernels of loops (or of the steps peeled off them, loops=False)."""
    return [k for k in prog.kernels if (k.steps[0] != k.steps[1]) == loops]


# --- the kernel writer, with no numba ------------------------------------------------------------

def test_an_lstm_step_is_one_product_and_one_fused_nest_per_shape(python_kernels):
    g = _lstm(H=16).unroll(steps=6)          # large enough for U x[t] to be stacked
    gg = ur.grad(g)
    prog = api.program(gg, _grad_items(gg), "grad", python_kernels)
    fwd, bwd = sorted(_kernels(prog), key=lambda k: "d_" in k.source)
    body = fwd.source.split("for t in range", 1)[1]
    assert body.count("_mm_t(") == 1                   # W h[t-1]: one BLAS product
    # ... against a contiguous Wᵀ made once before the loop (BLAS's no-transpose case: a
    # step's few rows times a C-contiguous W transposed in the call take 2-3x as long)
    head = fwd.source.split("for t in range", 1)[0]
    assert "_T0 = _np.ascontiguousarray((W).T)" in head and "_mm_t(h_[t - 1, ...], _T0.T)" in body
    assert body.count("for _i0 in range(_B):") == 2    # (B, 4H) for the sum, (B, H) for gates
    assert body.count("_exp(") == 3 and body.count("_tanh(") == 2   # 3 σ, 2 tanh, fused
    assert "_np.empty" not in body                     # the (B, 4H) sum is a workspace
    back = bwd.source.split("for t in range", 1)[1]
    assert "written in place above" in back            # ∂ of the gates straight into ∂(Wh...)
    assert back.count("_mm_t(") == 1 and "concatenate" not in back
    # nothing of τ or B is in a kernel: one compilation serves them all
    other = ur.grad(_lstm(H=16).unroll(steps=11))
    prog2 = api.program(other, _grad_items(other), "grad", python_kernels)
    assert {k.digest for k in _kernels(prog)} == {k.digest for k in _kernels(prog2)}
    # the steps peeled off the backward loop's ends are kernels too (one step each)
    assert len(_kernels(prog, loops=False)) == 2
    # small steps are not stacked at all: the whole step is the kernel's (3 products)
    small = ur.grad(_lstm(H=3).unroll(steps=6))
    fwd = _kernels(api.program(small, _grad_items(small), "grad", python_kernels))[0]
    assert fwd.source.split("for t in range", 1)[1].count("_mm_t(") == 3


@pytest.mark.parametrize("make", [_lstm, _gru])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_python_run_kernels_agree_with_the_compiled_program(make, dtype, python_kernels):
    g = _agree(make, dtype, 7, 3, python_kernels)
    prog = api.program(ur.grad(g), _grad_items(ur.grad(g)), "grad", python_kernels)
    assert len(_kernels(prog)) == 2                    # both loops ran as kernels


def test_on_another_array_namespace_the_loops_run_in_python(python_kernels):
    xps = pytest.importorskip("array_api_strict")
    c = _lstm()
    g = c.unroll(steps=5)
    p, x, y = _data(c, 5, 2)
    want = g.value_and_grad(p, x=x, y=y)
    lk._told.discard("backend")
    with pytest.warns(lk.KernelWarning, match="NumPy arrays only"):
        got = g.value_and_grad({k: xps.asarray(v) for k, v in p.items()},
                               x=xps.asarray(x), y=xps.asarray(y), executor=python_kernels)
    assert np.allclose(np.asarray(got[0]), want[0], rtol=1e-12)
    for k in want[1]:
        assert np.allclose(np.asarray(got[1][k]), want[1][k], rtol=1e-12, atol=1e-14)


def test_without_numba_executor_numba_says_so_once_and_runs_numpy(monkeypatch):
    monkeypatch.setattr(lk, "numba_missing", lambda: "numba is not installed (test)")
    lk._told.discard("missing")
    c = _gru()
    g = c.unroll(steps=4)
    p, x, y = _data(c, 4, 2)
    want = g.value_and_grad(p, x=x, y=y)
    with pytest.warns(lk.KernelWarning, match="not installed"):
        got = g.value_and_grad(p, x=x, y=y, executor="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # once, not per call
        ur.grad(c.unroll(steps=3))
        g.value_and_grad(p, x=x, y=y, executor="numba")
    assert np.allclose(got[0], want[0], rtol=1e-12)
    for k in want[1]:
        assert np.allclose(got[1][k], want[1][k], rtol=1e-12, atol=1e-14)


def test_numba_is_a_known_executor_and_a_misspelt_one_is_named():
    assert targets.get("numba").name == "numba"
    with pytest.raises(ur.UnrollError, match="'numba'"):
        targets.get("nmba")


def test_the_kernel_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("UNROLL_KERNEL_CACHE", str(tmp_path / "k"))
    assert lk.cache_dir() == str(tmp_path / "k")
    monkeypatch.delenv("UNROLL_KERNEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert lk.cache_dir() == str(tmp_path / "unroll" / "kernels")


# --- compiled by numba ---------------------------------------------------------------------------

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed "
                                 "(make test-fast installs the fast extra)")


@pytest.fixture
def kernel_cache(monkeypatch, tmp_path_factory):
    d = tmp_path_factory.getbasetemp() / "unroll-kernels"
    monkeypatch.setenv("UNROLL_KERNEL_CACHE", str(d))
    return d


@needs_numba
@pytest.mark.parametrize("make", [_lstm, _gru])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_kernels_agree_with_the_numpy_program(make, dtype, kernel_cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error", lk.KernelWarning)     # every loop compiled
        g = _agree(make, dtype, 9, 4, "numba")
    gg = ur.grad(g)
    prog = api.program(gg, _grad_items(gg), "grad", "numba")
    ks = _kernels(prog)
    assert len(ks) == 2 and all(k.fn is not None and not k.failed for k in ks)
    assert list(kernel_cache.glob("*/unroll_kernel_*.py"))      # on disk, for later processes


@needs_numba
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=ut.random_circuits(), data=st.data())
def test_numba_kernels_on_random_circuits(kernel_cache, case, data):
    g = case.circuit.unroll(steps=case.steps)
    params = data.draw(ut.params_for(case.circuit), label="params")
    batch = data.draw(st.integers(1, 3), label="batch")
    inputs = data.draw(ut.inputs_for(g, batch=batch), label="inputs")
    li, gi = g.value_and_grad(params, executor="interpret", **inputs)
    ln, gn = g.value_and_grad(params, executor="numba", **inputs)
    assert np.allclose(ln, li, rtol=1e-10, atol=1e-12)
    for k in gi:
        assert np.allclose(gn[k], gi[k], rtol=1e-10, atol=1e-12), k


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_products_on_every_layout(dtype):
    """mm_t(v, A) = v @ A.T through NumPy's BLAS: A as it lies (C, or F such as a transposed
    view Wᵀ, without a copy), or copied when neither; empty sizes; one vector (mv_t)."""
    from unroll.compile.numba_helpers import mm_t, mv_t
    rng = np.random.default_rng(0)
    for m, k, n in [(3, 4, 5), (1, 7, 2), (16, 64, 256), (2, 0, 3), (0, 3, 2)]:
        v = rng.standard_normal((m, k)).astype(dtype)
        W = rng.standard_normal((n, k)).astype(dtype)
        for A in (W, np.asfortranarray(W), rng.standard_normal((n, 2 * k)).astype(dtype)[:, ::2]):
            for x in (v, np.asfortranarray(v)):
                got = mm_t(x, A)
                assert got.dtype == dtype and got.shape == (m, n)
                assert np.allclose(got, x @ A.T, rtol=1e-5, atol=1e-5)
        if m:
            assert np.allclose(mv_t(v[0], W), v[0] @ W.T, rtol=1e-5, atol=1e-5)


def test_a_training_loop_runs_on_the_kernels(python_kernels, monkeypatch):
    """train(..., executor=) and TruncatedBPTT(..., executor=): the same losses and parameters
    as the default program (to round-off), the loops run by kernels."""
    calls = []
    run = lk.Kernel.__call__
    monkeypatch.setattr(lk.Kernel, "__call__", lambda self, *a: calls.append(1) or run(self, *a))
    c = _gru()
    rng = np.random.default_rng(1)
    batches = [{"x": rng.standard_normal((8, 3, 2)), "y": rng.standard_normal((8, 3, 2))}
               for _ in range(2)]
    runs = []
    for ex in ("compiled", python_kernels):
        for step in (c.unroll(steps=8), ur.training.TruncatedBPTT(c, 3, executor=ex)):
            p = c.init_params(seed=3)
            kw = {"executor": ex} if not isinstance(step, ur.training.TruncatedBPTT) else {}
            before = len(calls)
            h = ur.training.train(step, p, batches, ur.optim.Adam(p, lr=0.05), epochs=3,
                                  progress=False, **kw)
            assert (len(calls) > before) == (ex != "compiled")
            runs.append((h.losses, p))
    for (la, pa), (lb, pb) in [(runs[0], runs[2]), (runs[1], runs[3])]:
        assert np.allclose(la, lb, rtol=1e-10)
        assert all(np.allclose(pa[k], pb[k], rtol=1e-9, atol=1e-12) for k in pa)


def test_a_kernels_source_is_the_same_in_every_process(python_kernels):
    """The disk cache is keyed by the source: it must not depend on the process (object
    ids, hash seeds, dict order of anything unordered)."""
    import subprocess
    import sys
    code = ("import unroll as ur, sys; sys.path.insert(0, 'tests');"
            "from test_loopkernel import _lstm, _gru;"
            "from unroll.compile import loopkernel as lk, target as tg;"
            "tg.register(lk.NumbaTarget('pk', python=True));"
            "print(*[k.digest for c in (_lstm(), _gru()) for k in "
            "c.unroll(steps=5).program(grad=True, executor='pk').kernels])")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"},
                           check=True).stdout for seed in (1, 2)}
    assert len(runs) == 1 and len(runs.pop().split()) >= 6


def test_a_state_that_is_a_view_of_a_step_value(python_kernels):
    """A state defined by a reshape of an elementwise value escapes its step: it must not be
    a view of an array the next step overwrites while still reading it (found in review)."""
    c = ur.Circuit("alias")
    x, y = c.input("x", (4,)), c.input("y", (4,))
    h = c.state("h", (4,))
    R = ur.reshape(h.prev, (2, 2))
    left, _ = ur.split(R, 2, axis=-1)
    h.next = ur.reshape(ur.tanh(R + left + ur.reshape(x, (2, 2))), (4,))
    c.loss(ur.sum((h - y) ** 2))
    g = c.unroll(steps=5)
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 3, 4))
    for wrt in (None, ["x"]):                       # (two programs: only the loss; ∂x too)
        want = g.value_and_grad({}, x=xs, y=ys, wrt=wrt)
        for ex in [python_kernels] + (["numba"] if HAVE_NUMBA else []):
            got = g.value_and_grad({}, x=xs, y=ys, wrt=wrt, executor=ex)
            assert np.isclose(got[0], want[0], rtol=1e-12), (ex, wrt)
            for k in want[1]:
                assert np.allclose(got[1][k], want[1][k], rtol=1e-10, atol=1e-12), (ex, k)


def test_program_kernels_are_in_program_order(python_kernels):
    c = ur.models.bidirectional(2, 3, 2)
    kernels = c.unroll(steps=6).program(grad=True, executor=python_kernels).kernels
    assert len(kernels) >= 4
    src = str(c.unroll(steps=6).program(grad=True, executor=python_kernels))
    pos = [src.index(f"({k.digest};") for k in kernels]
    assert pos == sorted(pos)


@needs_numba
def test_the_cache_is_keyed_by_the_toolchain_and_rewrites_a_foreign_file(kernel_cache):
    """Kernels live under a subdirectory named after the helpers' source and the numba,
    llvmlite and NumPy versions (a new helper never meets old machine code), and a kernel
    file whose contents are not the kernel's source is rewritten before it is imported."""
    c = _gru()
    g = c.unroll(steps=5)
    p, x, y = _data(c, 5, 2)
    want = g.value_and_grad(p, x=x, y=y)
    g.value_and_grad(p, x=x, y=y, executor="numba")
    sub = kernel_cache / lk._toolchain()
    kernels = g.program(grad=True, executor="numba").kernels
    files = [sub / f"unroll_kernel_{k.digest}.py" for k in kernels]
    assert kernels and all(f.read_text() == k.code for f, k in zip(files, kernels))
    files[0].write_text("raise SystemExit('not a kernel')\\n")      # a foreign file
    import sys as _sys
    for name in [m for m in _sys.modules if m.startswith("unroll_kernel_")]:
        del _sys.modules[name]
    fresh = _gru().unroll(steps=5)
    got = fresh.value_and_grad(p, x=x, y=y, executor="numba")
    assert np.allclose(got[0], want[0], rtol=1e-12)
    assert "not a kernel" not in files[0].read_text()


@needs_numba
def test_threads_loading_the_same_kernels(kernel_cache):
    import threading
    c = _lstm()
    p, x, y = _data(c, 6, 2)
    want = c.unroll(steps=6).value_and_grad(p, x=x, y=y)[0]
    out, errors = [], []

    def work():
        try:
            out.append(c.unroll(steps=6).value_and_grad(p, x=x, y=y, executor="numba")[0])
        except Exception as e:                      # pragma: no cover - what it tests
            errors.append(e)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lk.KernelWarning)
        ts = [threading.Thread(target=work) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert not errors and len(out) == 6 and all(np.isclose(o, want, rtol=1e-12) for o in out)


@needs_numba
@pytest.mark.parametrize("dtype,ulps", [(np.float32, (1.0, 4.0)), (np.float64, (1.0, 20.0))])
def test_the_kernels_exp_and_tanh_to_a_few_units_of_round_off(dtype, ulps):
    """fexp within 1 ulp and ftanh within a few, relative, from 1e-6 to overflow (near 0 too,
    where 1 - 2/(e^2x + 1) alone loses every digit); NaN, ±inf and ±0 as NumPy has them."""
    import numba
    from unroll.compile.numba_helpers import fexp, ftanh

    @numba.njit
    def run(x, e, t):
        for i in range(x.shape[0]):
            e[i] = fexp(x[i])
            t[i] = ftanh(x[i])
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(5000) * s for s in (1e-6, 1e-3, 0.1, 1, 5, 30)])
    x = np.concatenate([x, [0.0, -0.0, np.nan, np.inf, -np.inf, 0.05, 0.3]]).astype(dtype)
    e, t = np.empty_like(x), np.empty_like(x)
    run(x, e, t)
    eps = np.finfo(dtype).eps
    with np.errstate(over="ignore"):
        for got, want, most in ((e, np.exp(x.astype(np.float64)), ulps[0]),
                                (t, np.tanh(x.astype(np.float64)), ulps[1])):
            ok = np.isfinite(want) & (np.abs(want) > np.finfo(dtype).tiny) & \
                (np.abs(want) < np.finfo(dtype).max)
            rel = np.abs(got[ok].astype(np.float64) - want[ok]) / np.abs(want[ok])
            assert rel.max() <= most * eps, rel.max() / eps
    assert np.array_equal(t[-7:-2], np.tanh(x[-7:-2]), equal_nan=True)
    assert np.array_equal(e[-7:-2], np.exp(x[-7:-2]), equal_nan=True)


def test_a_kernel_that_fails_to_compile_runs_in_python_with_a_notice(monkeypatch):
    """Whatever numba raises on a first call (a typing error, or an internal one that is not
    a NumbaError) becomes the Python loop and one KernelWarning, never a raw traceback."""
    c = _gru()
    g = c.unroll(steps=5)
    p, x, y = _data(c, 5, 2)
    want = g.value_and_grad(p, x=x, y=y)

    def broken(*args):
        raise AssertionError("numba internal error (test)")
    monkeypatch.setattr(lk, "numba_missing", lambda: None)
    monkeypatch.setattr(lk.Kernel, "_load", lambda self: broken)
    lk._told.clear()
    with pytest.warns(lk.KernelWarning, match="could not be compiled"):
        got = g.value_and_grad(p, x=x, y=y, executor="numba")
    assert np.allclose(got[0], want[0], rtol=1e-12)
    for k in want[1]:
        assert np.allclose(got[1][k], want[1][k], rtol=1e-12, atol=1e-14)


def test_a_kernel_is_keyed_by_its_code_not_its_comments():
    """The comments show the equations with their steps (a peeled step's ΣL[t+τ-1]); one
    kernel serves every τ, so they are not part of what is compiled, cached and keyed."""
    a = lk.Kernel("@_njit\ndef kernel(t0, t1, dt, x):  # t = 1\n    # ΣL[t+9]\n"
                  "    return (x,)  # ΣL[1] = ΣL[10] + L2\n", [], ())
    b = lk.Kernel("@_njit\ndef kernel(t0, t1, dt, x):  # t = 1\n    # ΣL[t+12]\n"
                  "    return (x,)  # ΣL[1] = ΣL[13] + L2\n", [], ())
    assert a.source != b.source and a.code == b.code and a.digest == b.digest
    assert "#" not in a.code and "return (x,)" in a.code
    kept = lk._code('    s = "#not a comment"  # but this is\n')
    assert kept == '    s = "#not a comment"  # but this is\n'       # quoted: left whole
