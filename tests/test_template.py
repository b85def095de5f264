"""Programs that do not grow with τ (unroll/compile/template.py, api._steady): from
``api.STEADY_FROM`` steps on, value_and_grad writes a circuit's gradient program from the
programs of three small unrollings. The written program must be the program compiled from all
τ steps, character for character; the random-circuit property of tests/test_differential.py
holds it to the independent reference as well.
"""
import numpy as np
import pytest

import unroll as ur
from unroll import api
from unroll.compile.template import fit, same_namespace, sample_steps
from unroll.ir import _grad_items

TOL = dict(rtol=1e-10, atol=1e-12)


def direct(g, wrt=None, kind="grad", target="python"):
    """The program compiled from all of ``g``'s steps, as value_and_grad compiled it before."""
    gg = api.grad_graph(g, wrt)
    items = _grad_items(gg) + (api._flat(api._final_state_items(g)) if kind == "grad+state"
                               else [])
    return api.compile_graph(gg, items, name=api._ident(f"{g.name}_{kind}"), target=target)


def steady(g, wrt=None, kind="grad", target="python"):
    got = api._steady(g, api.resolve_wrt(g, wrt), kind, target)
    return None if got is None else got[0]


def data(g, B=3, seed=0):
    """Parameters and inputs for ``g`` (read off its stand-in: a deferred graph stays so)."""
    g = api._stand_in(g)
    rng = np.random.default_rng(seed)
    params = {k: 0.4 * rng.standard_normal(v.shape) for k, v in g.params.items()}
    ins = {}
    for k, xs in g.seq_inputs.items():
        a = xs[0].aval
        ins[k] = (rng.integers(0, g.bounds[k], (g.steps, B) + a.shape) if a.dtype == "int"
                  else rng.standard_normal((g.steps, B) + a.shape))
    for k, v in g.static_inputs.items():
        if k not in g.zero_defaults:
            ins[k] = (rng.integers(0, g.bounds[k], (B,) + v.shape) if v.aval.dtype == "int"
                      else rng.standard_normal((B,) + v.shape))
    return params, ins


def with_loss(c, K=2):
    """A model without a loss, with a readout and a squared error at every step."""
    V, y = c.param("V", (K, c["h"].shape[0])), c.input("y", (K,))
    c.loss(ur.sum((V @ c["h"] - y) ** 2))
    return c


def models():
    return {"elman": ur.models.elman(3, 4, 2),
            "jordan": ur.models.jordan(3, 4, 2),
            "lstm": with_loss(ur.models.lstm(3, 4)),
            "gru": with_loss(ur.models.gru(3, 4)),
            "stacked-lstm": with_loss(ur.models.lstm(3, 4, num_layers=2)),
            "bidirectional": ur.models.bidirectional(3, 4, 2),
            "many-to-one": ur.models.many_to_one(3, 4, 2)}


# --- the fit ---------------------------------------------------------------------------------

def test_fit_fills_literals_that_count_steps_and_keeps_the_rest():
    def src(T):
        return (f"a = xp.empty(({T + 1}, B, 64))  # 0.5 * h[{T}]\n"
                f"for t in range(1, {T + 1}, 1):  # t = 1..{T}\n    v[t - 1] = 2 * x[{2 * T}]\n")
    tpl = fit([(10, src(10), {"stored": (3 * 10, 7)}), (11, src(11), {"stored": (33, 7)}),
               (13, src(13), {"stored": (39, 7)})])
    assert tpl is not None
    assert tpl.source(1000) == src(1000)
    assert tpl.statistics(1000) == {"stored": (3000, 7)}


@pytest.mark.parametrize("why, srcs", [
    ("a line only some τ have", ["x = 1\n", "x = 1\ny = 2\n", "x = 1\n"]),
    ("not affine in τ", ["n = 100\n", "n = 121\n", "n = 169\n"]),
    ("a step that is not a whole number per period", ["n = 1\n", "n = 2\n", "n = 3\n"]),
    ("the third sample does not follow", ["n = 10\n", "n = 11\n", "n = 14\n"]),
    ("a float that depends on τ", ["s = 0.1\n", "s = 0.09\n", "s = 0.077\n"]),
])
def test_fit_refuses_what_is_not_one_program_for_every_tau(why, srcs):
    ts = (10, 12, 16) if "whole" in why else (10, 11, 13)
    assert fit([(t, s, {}) for t, s in zip(ts, srcs)]) is None, why


def test_fit_refuses_statistics_that_do_not_follow():
    s = "x = 1\n"
    assert fit([(10, s, {"n": 10}), (11, s, {"n": 11}), (13, s, {"n": 14})]) is None
    assert fit([(10, s, {"n": 10}), (11, s, {"m": 11}), (13, s, {"n": 13})]) is None


@pytest.mark.parametrize("steps", [48, 97, 1000, 1001])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_samples_lie_past_the_boundary_and_share_tau_modulo_every_delay(steps, depth):
    ts = sample_steps(steps, depth)
    if (steps, depth) == (48, 4):                 # samples 12 steps apart: 24, 36, 60
        assert ts is None
        return
    assert ts is not None and ts[0] < ts[1] < ts[2] < steps
    assert ts[0] >= 3 * depth + 4
    for k in range(1, depth + 1):
        assert all((steps - t) % k == 0 for t in ts), (k, ts)
    assert sample_steps(ts[2], depth) is None                    # too short for its samples


def test_namespaces_compare_by_value():
    import functools
    f = functools.partial(np.sum, axis=0)
    assert same_namespace({"f": f}, {"f": functools.partial(np.sum, axis=0)})
    assert not same_namespace({"f": f}, {"f": functools.partial(np.sum, axis=1)})
    assert not same_namespace({"c": np.zeros(2)}, {"c": np.ones(2)})
    assert not same_namespace({"f": f}, {"g": f})
    assert not same_namespace({"o": object()}, {"o": object()})


# --- the programs ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(models()))
@pytest.mark.parametrize("steps", [api.STEADY_FROM, 97])
def test_the_written_program_is_the_compiled_one_and_computes_the_same(name, steps):
    g = models()[name].unroll(steps)
    params, ins = data(g)
    loss, grads = g.value_and_grad(params, **ins)
    written = steady(g)
    assert written is not None, name
    assert ("grad", api.resolve_wrt(g, None)) not in g._cache      # no τ-step gradient graph
    assert written.source == direct(g).source
    li, gi = g.value_and_grad(params, executor="interpret", **ins)
    np.testing.assert_allclose(loss, li, **TOL)
    for k in gi:
        np.testing.assert_allclose(grads[k], gi[k], **TOL, err_msg=k)


def test_per_step_input_gradients_and_the_final_state():
    g = ur.models.elman(3, 4, 2).unroll(60)
    params, ins = data(g)
    wrt = ["W", "x", "h0"]
    written = steady(g, wrt, "grad+state")
    assert written is not None
    assert written.source == direct(g, wrt, "grad+state").source
    loss, grads, state = g.value_and_grad(params, wrt=wrt, return_state=True, **ins)
    li, gi = g.value_and_grad(params, wrt=wrt, executor="interpret", **ins)
    assert grads["x"].shape == ins["x"].shape
    for k in wrt:
        np.testing.assert_allclose(grads[k], gi[k], **TOL, err_msg=k)
    np.testing.assert_allclose(state["h"], g.run(params, return_state=True, **ins)["state"]["h"],
                               **TOL)


def test_long_delays_read_the_initial_rows_of_their_own_residue():
    """A state read 3 steps back with the loss at the last step only: which initial row the
    chain ends on depends on τ mod 3 (the samples are taken congruent with τ)."""
    c = ur.Circuit("delay3")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="param")
    W = c.param("W", (2, 2))
    h.next = ur.tanh(W @ h.delayed(3) + x)
    c.loss(ur.sum(h * h), at="last")
    for steps in (60, 61, 62):
        g = c.unroll(steps)
        written = steady(g)
        if written is not None:
            assert written.source == direct(g).source, steps
        params, ins = data(g)
        loss, grads = g.value_and_grad(params, **ins)
        li, gi = g.value_and_grad(params, executor="interpret", **ins)
        for k in gi:
            np.testing.assert_allclose(grads[k], gi[k], **TOL, err_msg=f"{k} at τ = {steps}")


def test_short_graphs_and_placed_losses_are_compiled_from_their_steps():
    c = ur.models.elman(3, 4, 2)
    assert steady(c.unroll(api.STEADY_FROM - 1)) is None
    assert steady(c.unroll(80, loss_steps=[5, 70])) is None
    out = ur.Circuit("placed")
    x, h = out.input("x", (2,)), out.state("h", (2,))
    h.next = ur.tanh(h.prev + x)
    out.loss(ur.sum(h), at=[3, 50])
    assert steady(out.unroll(80)) is None


def test_a_circuit_changed_after_unrolling_is_not_resampled():
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(60)
    c.output("extra", ur.tanh(c["h"]))              # the circuit changes; g does not
    assert steady(g) is None
    params, ins = data(g)
    loss, grads = g.value_and_grad(params, **ins)
    li, gi = g.value_and_grad(params, executor="interpret", **ins)
    np.testing.assert_allclose(loss, li, **TOL)


def test_a_graph_whose_equations_were_changed_is_not_resampled():
    g = ur.models.elman(3, 4, 2).unroll(60)
    g.eqns.append(g.eqns[-1])
    assert steady(g) is None


def test_the_written_program_costs_what_the_samples_cost():
    """The point: its size does not grow with τ, and neither does the work of writing it
    (counted in equations compiled, not timed)."""
    c = ur.models.elman(3, 4, 2)
    sizes = {}
    for steps in (100, 1000):
        g = c.unroll(steps)
        params, ins = data(g)
        g.value_and_grad(params, **ins)
        sizes[steps] = len(steady(g).source)
        assert ("grad", api.resolve_wrt(g, None)) not in g._cache
    assert sizes[1000] < 1.05 * sizes[100]          # literals a digit longer, nothing more


# --- graphs built on first use -----------------------------------------------------------------

def test_a_long_graph_is_built_only_when_something_reads_it():
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(500)
    assert not g.built and c.unroll(500) is g              # kept, like any unrolled graph
    params, ins = data(g)
    loss, grads, state = g.value_and_grad(params, wrt=["W", "x", "h0"], return_state=True,
                                          **ins)
    assert not g.built                                     # the gradient did not need it
    assert grads["x"].shape == ins["x"].shape and state["h"].shape == (3, 4)
    li, gi, si = g.value_and_grad(params, wrt=["W", "x", "h0"], return_state=True,
                                  executor="interpret", **ins)
    assert g.built and len(g.eqns) == g.recipe[2] and c.unroll(500) is g
    np.testing.assert_allclose(loss, li, **TOL)
    for k in gi:
        np.testing.assert_allclose(grads[k], gi[k], **TOL, err_msg=k)
    np.testing.assert_allclose(state["h"], si["h"], **TOL)


@pytest.mark.parametrize("read", [
    str, repr, lambda g: g.eqns, lambda g: g.outputs["o"][7], lambda g: g.derive(),
    lambda g: g.program(grad=True), lambda g: g.run(data(g)[0], **data(g)[1]),
    lambda g: g.value_and_grad(data(g)[0], checkpoint="sqrt", **data(g)[1]),
    lambda g: g.render("/dev/null", format="dot")])
def test_reading_a_deferred_graph_builds_it_as_unrolled(read):
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(60)
    assert not g.built
    read(g)
    assert g.built and len(g.eqns) == g.recipe[2]
    assert str(g) == str(ur.unrolling.unroll(c, 60))


def test_changing_the_circuit_first_builds_the_graphs_unrolled_from_it():
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(60)
    before = str(ur.unrolling.unroll(c, 60))
    assert not g.built
    c.output("extra", ur.tanh(c["h"]))
    assert g.built and "extra" not in g.outputs and str(g) == before
    assert "extra" in c.unroll(60).outputs


def test_graphs_placed_at_chosen_steps_are_built_at_once():
    c = ur.models.elman(3, 4, 2)
    assert c.unroll(60).built is False
    assert c.unroll(60, loss_steps=[3, 50]).built
    assert c.unroll(api.STEADY_FROM - 1).built
    out = ur.Circuit("placed")
    x, h = out.input("x", (2,)), out.state("h", (2,))
    h.next = ur.tanh(h.prev + x)
    out.output("o", h, at=[3, 9])
    assert out.unroll(60).built


def test_bad_arguments_to_a_deferred_graph_are_named_as_for_a_built_one():
    g = ur.models.elman(3, 4, 2).unroll(200)
    params, ins = data(g)
    with pytest.raises(ur.errors.InputError, match=r"x.*200"):
        g.value_and_grad(params, x=ins["x"][:199], y=ins["y"][:199])
    with pytest.raises(ur.errors.InputError, match="missing input y"):
        g.value_and_grad(params, x=ins["x"])
    with pytest.raises(ur.errors.UnrollError, match="Wq"):
        g.value_and_grad(params, wrt=["Wq"], **ins)
    bad = dict(ins, x=ins["x"].copy())
    bad["x"][150, 1, 0] = np.nan
    with pytest.raises(ur.errors.NonFiniteError, match="x"):
        g.value_and_grad(params, **bad)
    assert not g.built
    params["V"] = np.full_like(params["V"], 1e308)       # finite inputs, overflow inside
    with pytest.raises(ur.errors.NonFiniteError, match="step"), np.errstate(all="ignore"):
        g.value_and_grad(params, check_finite=True, **ins)


def test_a_deferred_graph_is_built_once_by_racing_threads():
    import threading
    g = ur.models.elman(3, 4, 2).unroll(3000)
    errors, sizes = [], []

    def read():
        try:
            sizes.append(len(g.eqns))
        except Exception as e:                  # noqa: BLE001
            errors.append(repr(e))
    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(sizes)) == 1 and g.built


def test_a_build_that_fails_leaves_the_graph_deferred(monkeypatch):
    """Interrupted (Ctrl-C) or failed, the next read builds it again."""
    from unroll import unrolling
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(60)
    real = unrolling._unroll
    monkeypatch.setattr(unrolling, "_unroll", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        g.eqns
    assert not g.built
    monkeypatch.setattr(unrolling, "_unroll", real)
    assert len(g.eqns) == g.recipe[2] and c.unroll(60) is g


def test_a_copy_of_a_deferred_graph_is_the_graph_as_unrolled():
    import copy
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(60)
    twin = copy.copy(g)
    c.output("extra", ur.tanh(c["h"]))
    assert "extra" not in twin.outputs and "extra" not in g.outputs
    assert str(twin) == str(g)


def test_what_is_set_on_a_deferred_graph_before_it_is_built_stays_set():
    g = ur.models.elman(3, 4, 2).unroll(60)
    g.name = "renamed"
    assert len(g.eqns) > 0 and g.name == "renamed"


def test_dropout_masks_do_not_build_the_graph():
    c = ur.Circuit("drop")
    x = c.input("x", (3,))
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.prev + ur.dropout(x, "m"))
    c.loss(ur.sum(h * h))
    g = c.unroll(60)
    masks = ur.dropout_masks(g, rate=0.5, seed=0, batch=2)
    assert masks["m"].shape == (60, 2, 3) and not g.built


def test_the_state_a_deferred_graph_returns_is_its_last_steps():
    """A state read two steps back from a parameter: the two values returned are h(τ-1) and
    h(τ), never the initial rows (which have no batch axis)."""
    c = ur.Circuit("delay2")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="param")
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.delayed(2) + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(60)
    params, ins = data(g)
    _, _, state = g.value_and_grad(params, return_state=True, **ins)
    assert not g.built
    want = g.run(params, return_state=True, executor="interpret", **ins)["state"]["h"]
    assert state["h"].shape == want.shape == (3, 2, 2)
    np.testing.assert_allclose(state["h"], want, **TOL)
