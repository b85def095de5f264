"""Nothing is lost: no public call changes what the user passed (optimizer steps and in-place
clipping aside, as documented), a call that fails changes nothing, and the same seed gives
bit-identical results in another process."""
import copy
import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unroll as ur


def _arrays(tree) -> list:
    """Every array inside dicts, lists and tuples, in order."""
    if isinstance(tree, dict):
        return [a for v in tree.values() for a in _arrays(v)]
    if isinstance(tree, (list, tuple)):
        return [a for v in tree for a in _arrays(v)]
    return [tree] if isinstance(tree, np.ndarray) else []


def _problem():
    """A circuit with a two-step delay, a static input and a parameter initial state."""
    c = ur.Circuit("safe")
    x = c.input("x", (3,))
    s = c.input("s", (4,), per_step=False)
    y = c.input("y", (), dtype="int")
    h = c.state("h", (4,), init="param")
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.delayed(2) + c.param("U", (4, 3)) @ x + s)
    o = c.output("o", c.param("V", (2, 4)) @ h)
    c.loss(ur.softmax_cross_entropy(o, y))
    rng = np.random.default_rng(1)
    p = c.init_params(seed=3)
    data = dict(x=rng.normal(size=(5, 2, 3)), s=rng.normal(size=(2, 4)),
                y=rng.integers(0, 2, size=(5, 2)))
    return c, c.unroll(steps=5), p, data


_rnn = ur.models.rnn(3, 4)
_rnn_params = _rnn.init_params()


def _calls(c, g, p, data):
    v = {k: np.ones_like(a) for k, a in p.items()}
    return {
        "run": lambda: g.run(p, **data),
        "run(return_state=True)": lambda: g.run(p, return_state=True, **data),
        "value_and_grad": lambda: g.value_and_grad(p, **data),
        "value_and_grad(wrt inputs)": lambda: g.value_and_grad(p, wrt=["W", "x", "s"], **data),
        "value_and_grad(interpret)": lambda: g.value_and_grad(p, executor="interpret", **data),
        "value_and_grad(checkpoint=2)": lambda: g.value_and_grad(p, checkpoint=2, **data),
        "evaluate": lambda: g.evaluate(p, [g.states["h"][3], g.seq_inputs["x"][0],
                                           g.static_inputs["s"], g.params["W"]], **data),
        "gradcheck": lambda: ur.gradcheck(g, p, max_entries=3, **data),
        "gradcheck(directional)": lambda: ur.gradcheck(g, p, mode="directional", **data),
        "gradcheck(order=2)": lambda: ur.gradcheck(g, p, order=2, mode="directional",
                                                   directions=1, **data),
        "hvp": lambda: ur.hvp(g, p, v, **data),
        "gradient_norms": lambda: ur.diagnostics.gradient_norms(g, p, **data),
        "tbptt": lambda: list(ur.training.TruncatedBPTT(
            _carried(), 2).chunks(_carried_params(p), x=data["x"], y=data["y"])),
        "to_torch_state_dict": lambda: ur.interop.to_torch_state_dict(_rnn, _rnn_params),
        "heat map": lambda: g.to_dot(heat={"h": np.linspace(0.1, 1, 5)}),
        "generate": lambda: ur.models.generate(c, p, [0, 2], 3, statics={"s": data["s"][0]}),
        "jacobians": lambda: ur.diagnostics.jacobians(
            _carried().unroll(steps=5), _carried_params(p), x=data["x"], y=data["y"]),
    }


def _carried():
    c = ur.Circuit("carried")
    x, y = c.input("x", (3,)), c.input("y", (), dtype="int")
    h = c.state("h", (4,))
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.prev + c.param("U", (4, 3)) @ x)
    c.loss(ur.softmax_cross_entropy(c.param("V", (2, 4)) @ h, y))
    return c


def _carried_params(p):
    return {k: p[k] for k in ("W", "U", "V")}


@pytest.mark.filterwarnings("ignore::unroll.errors.GradcheckWarning")
@pytest.mark.parametrize("name", list(_calls(*_problem())))
def test_no_public_call_changes_what_the_user_passed(name):
    c, g, p, data = _problem()
    call = _calls(c, g, p, data)[name]
    mine = (p, data, _rnn_params)                # (the torch export's own parameters last)
    before = copy.deepcopy(mine)
    ids = {k: id(a) for k, a in {**p, **data}.items()}
    result = call()
    assert [list(d) for d in mine] == [list(d) for d in before], f"{name} added a key"
    for a, b in zip(_arrays(mine), _arrays(before)):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{name} changed an argument"
    assert {k: id(a) for k, a in {**p, **data}.items()} == ids
    mine = _arrays(mine)
    for r in _arrays(result):                     # and hands back nothing of the caller's
        assert not any(np.shares_memory(r, a) for a in mine), f"{name} returned an alias"


def _state(c: ur.Circuit):
    return (repr(c), list(c.named), list(c.inputs), list(c.statics), list(c.params),
            {k: (s.next is not None, tuple(s.delays)) for k, s in c.states.items()},
            list(c.outputs), len(c.losses), c._version)


def test_a_declaration_that_fails_changes_nothing():
    """Validate everything, then change all or nothing: a refused declaration leaves the
    circuit exactly as it was (names, variables, delays, cached graphs)."""
    c = ur.Circuit("atomic")
    x = c.input("x", (3,))
    W = c.param("W", (3, 3))
    h = c.state("h", (3,))
    h.next = ur.tanh(W @ h.prev + x)
    c.loss(ur.sum(h * h))
    Wx, sx, x2 = W @ x, ur.sum(x), x * 2          # (new values: built before the snapshot)
    g = c.unroll(steps=2)
    before = _state(c)
    bad = [lambda: c.input("x", (3,)), lambda: c.input("z", (0,)),
           lambda: c.input("z", (3,), dtype="float16"), lambda: c.param("Q", (3,), init="?"),
           lambda: c.param("W", (3,)), lambda: c.state("k", (3,), direction="up"),
           lambda: c.state("k", (3,), init=np.zeros(3)), lambda: c.state("k", (3,), init_name="1"),
           lambda: c.output("o", Wx, at="lats"), lambda: c.output("loss", x),
           lambda: c.output("o", 3.0), lambda: c.loss(x), lambda: c.loss(sx, at=[0]),
           lambda: c.loss(sx, name="1L"), lambda: h.delayed(0),
           lambda: setattr(h, "next", x), lambda: x2.named("x"),
           lambda: c.unroll(steps=0), lambda: c.unroll(2, loss_steps=[9])]
    for call in bad:
        with pytest.raises(ur.UnrollError):
            call()
        assert _state(c) == before, call
    assert c.unroll(steps=2) is g                    # the cached graph is still good


def test_a_failed_training_step_or_clip_changes_nothing():
    c, g, p, data = _problem()
    opt = ur.optim.Adam(p, lr=0.1)
    opt.step(g.value_and_grad(p, **data)[1])
    before = copy.deepcopy((p, opt.state, opt.steps))
    _, grads = g.value_and_grad(p, **data)
    grads["V"] = grads["V"].copy()
    grads["V"][0, 1] = np.nan
    with pytest.raises(ur.NonFiniteError, match=r"V has a NaN or Inf at entry \(0, 1\)"):
        opt.step(grads)
    with pytest.raises(ur.NonFiniteError, match="V"):
        ur.optim.clip_grad_norm(grads, 1.0)
    clean = {k: a.copy() for k, a in grads.items() if k != "V"}
    kept = copy.deepcopy(clean)
    with pytest.raises(ur.NonFiniteError):
        ur.optim.clip_grad_value({**clean, "V": grads["V"]}, 0.1)
    for k in clean:                                  # nothing clipped before the refusal
        assert np.array_equal(clean[k], kept[k])
    after = (p, opt.state, opt.steps)
    for a, b in zip(_arrays(after), _arrays(before)):
        assert np.array_equal(a, b)
    assert opt.steps == before[2]


_DETERMINISM = textwrap.dedent("""
    import hashlib, numpy as np, unroll as ur
    from hypothesis import given, settings, strategies as st
    import unroll.testing as ut
    h = hashlib.sha256()
    c = ur.models.lstm(3, 5, num_layers=2)
    p = c.init_params(seed=11)
    for k in sorted(p):
        h.update(p[k].tobytes())
    g = c.unroll(steps=6)
    x = np.random.default_rng(5).normal(size=(6, 2, 3))
    out = g.run(p, x=x)["h"]
    h.update(out.tobytes())
    e = ur.models.elman(4, 6, 4)
    ep = e.init_params(seed=2)
    h.update(repr(ur.models.generate(e, ep, [1], 8, seed=9)).encode())
    eg = e.unroll(steps=4)
    batches = [dict(x=np.eye(4)[[0, 1, 2, 3]], y=np.array([1, 2, 3, 0]))]
    hist = ur.training.train(eg, ep, batches, ur.optim.Adam(ep, lr=0.05), epochs=3,
                             progress=False)
    h.update(np.array(hist.losses).tobytes())
    for k in sorted(ep):
        h.update(ep[k].tobytes())
    rep = ur.gradcheck(eg, ep, mode="directional", seed=4, x=batches[0]["x"],
                       y=batches[0]["y"])
    h.update(repr([(k, ch.max_abs, ch.analytic, ch.numeric)
                   for k, ch in sorted(rep.checks.items())]).encode())
    drawn = []
    @settings(max_examples=3, derandomize=True, database=None, deadline=None)
    @given(ut.random_circuits())
    def draw(case):
        drawn.append(str(case.circuit))
    draw()
    h.update("".join(drawn).encode())
    print(h.hexdigest())
""")


def test_the_same_seed_gives_bit_identical_results_in_another_process():
    """Parameters, a forward pass, sampling, training, gradcheck's random choices and the
    random circuits: each process (with its own hash seed) prints the same digest."""
    digests = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", _DETERMINISM], capture_output=True,
                             text=True, timeout=300,
                             env={"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr[-2000:]
        digests.add(out.stdout.strip())
    assert len(digests) == 1 and len(next(iter(digests))) == 64
    assert hashlib.sha256(b"").hexdigest() not in digests


def test_a_call_like_the_last_checks_the_values_again():
    """The structural checks of a binding are kept for the next call with the same names,
    types, shapes and dtypes (a training loop); the values never are."""
    c = ur.Circuit("again")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.prev + c.param("U", (3, 2)) @ x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=4)
    p = c.init_params(seed=0)
    xs = np.ones((4, 2, 2))
    g.value_and_grad(p, x=xs)
    bad = xs.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ur.NonFiniteError, match=r"input x .* t = 3, batch entry 1"):
        g.value_and_grad(p, x=bad)
    q = dict(p, W=p["W"].copy())
    q["W"][0, 0] = np.inf
    with pytest.raises(ur.NonFiniteError, match="parameter W"):
        g.value_and_grad(q, x=xs)
    with pytest.raises(ur.DTypeError, match="float32"):
        g.value_and_grad(p, x=xs.astype(np.float32))       # another dtype: checked anew
    with pytest.raises(ur.InputError, match="steps"):
        g.value_and_grad(p, x=np.ones((5, 2, 2)))
    xs[0, 0, 0] = np.nan                                     # changed in place
    with pytest.raises(ur.NonFiniteError, match="t = 1, batch entry 0"):
        g.value_and_grad(p, x=xs)


@pytest.mark.parametrize("executor", ["compiled", "interpret"])
def test_no_two_results_share_memory(executor):
    """An RNN's two biases get one gradient, which the program computes once: each result is
    still an array of its own, so changing one in place (clipping does) leaves the others.
    Found in a notebook where clip_grad_norm scaled that array twice (norm 9.15 -> 0.894)."""
    c = ur.models.rnn(4, 8)
    y = c.input("y", (), dtype="int", per_step=False)
    o = c.output("o", c.param("V", (3, 8)) @ c["h"], at="last")
    c.loss(ur.softmax_cross_entropy(o, y), at="last")
    g = c.unroll(steps=5)
    p = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    x, yy = 5 * rng.standard_normal((5, 2, 4)), np.array([0, 1])
    loss, grads, state = g.value_and_grad(p, x=x, y=yy, executor=executor, wrt=None,
                                          return_state=True)
    arrays = list(grads.values()) + list(state.values())
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(grads["bias_ih_l0"], grads["bias_hh_l0"])
    before = ur.optim.clip_grad_norm(grads, max_norm=0.1)
    assert before > 0.1
    assert abs(ur.optim.global_norm(grads) - 0.1) < 1e-6
    out = g.run(p, x=x, y=yy, return_state=True)
    assert not np.shares_memory(out["o"], out["state"]["h_l0"])
