"""ur.compare_gradients: a hand-derived BPTT checked against unroll's, the wrong parameter,
entry and first step named, and the slip recognised (examples/homework_bptt.py)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import unroll as ur

spec = importlib.util.spec_from_file_location(
    "homework_bptt", Path(__file__).resolve().parents[1] / "examples" / "homework_bptt.py")
hw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hw)


@pytest.fixture(scope="module")
def problem():
    c = ur.models.elman(hw.D, hw.H, hw.K)
    g = c.unroll(steps=hw.T)
    params = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((hw.T, hw.B, hw.D)), rng.integers(0, hw.K, (hw.T, hw.B))
    return g, params, x, y


def report(problem, name, totals=False):
    g, params, x, y = problem
    homework = hw.HOMEWORKS[name]
    if totals:
        return ur.compare_gradients({k: v.sum(0) for k, v in homework(params, x, y).items()},
                                    g, params, x=x, y=y)
    return ur.compare_gradients(homework, g, params, x=x, y=y)


def test_the_correct_homework_passes(problem):
    r = report(problem, "correct")
    assert r.ok and all(v.max_abs < 1e-12 for v in r.verdicts)
    assert "every gradient matches" in str(r)


# (homework, the wrong parameters, the first wrong step, what the report must say)
CASES = [
    ("no_recurrence", {"W", "U", "b"}, hw.T - 1, "without the recurrent term"),
    ("no_tanh_derivative", {"W", "U", "b"}, hw.T, "tanh′"),
    ("off_by_one", {"W"}, hw.T, "off by one"),
]


@pytest.mark.parametrize("name, wrong, step, cause", CASES, ids=[c[0] for c in CASES])
def test_each_wrong_homework_is_located_at_its_parameter_and_step(problem, name, wrong, step,
                                                                 cause):
    r = report(problem, name)
    assert not r.ok
    assert {v.name for v in r.verdicts if not v.ok} == wrong
    for p in wrong:
        v = r[p]
        assert v.step == step, (p, v.step)
        assert v.matches_from == (step + 1 if step < hw.T else None)
        assert v.cause and cause in v.cause, (p, v.cause)
        assert v.where is not None and abs(v.yours - v.want) == pytest.approx(v.max_abs)
    text = str(r)
    assert cause in text and f"not at t = {step}" in text or "differs already" in text


@pytest.mark.parametrize("name, wrong, step, cause", CASES, ids=[c[0] for c in CASES])
def test_totals_alone_are_recognised_as_the_same_slip_at_every_step(problem, name, wrong,
                                                                   step, cause):
    """A slip that changes each step's own term is recognised in the sum; one that also
    changes what flows back (tanh′ left out scales the recurrent chain too) is only named,
    with the advice to pass per-step contributions."""
    r = report(problem, name, totals=True)
    assert {v.name for v in r.verdicts if not v.ok} == wrong
    for p in wrong:
        assert r[p].step is None and "per-step contributions" in r[p].note
        if name == "no_tanh_derivative":
            assert r[p].cause is None
        else:
            assert r[p].cause and cause in r[p].cause
            assert r[p].cause.startswith(f"it equals Σ_t ∂{p}(t)")


def test_an_unrecognised_mistake_is_still_located(problem):
    g, params, x, y = problem
    mine = hw.HOMEWORKS["correct"](params, x, y)
    mine["W"][2] = mine["W"][2] * 1.5                  # something else wrong at t = 3
    r = ur.compare_gradients(mine, g, params, x=x, y=y)
    assert {v.name for v in r.verdicts if not v.ok} == {"W"}
    assert r["W"].step == 3 and r["W"].matches_from == 4 and r["W"].cause is None


def test_the_example_prints_the_four_reports(capsys):
    reports = hw.main()
    out = capsys.readouterr().out
    assert reports["correct"].ok and not any(reports[k].ok for k in reports if k != "correct")
    assert out.count("compare_gradients elman") == 4


def test_a_backward_running_state_is_scanned_in_its_own_order():
    """BPTT through a state that runs backward in time starts at t = 1."""
    c = ur.Circuit("back")
    x, y = c.input("x", (3,)), c.input("y", (2,))
    h = c.state("h", (4,), direction="backward")
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.prev + c.param("U", (4, 3)) @ x)
    c.loss(ur.mse(c.param("V", (2, 4)) @ h, y))
    g = c.unroll(steps=5)
    params = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 2))
    mine = {"W": np.stack([np.asarray(a) for a in _per_step(g, params, "W", x=xs, y=ys)])}
    mine["W"][3] *= 2.0                                    # t = 4 wrong
    r = ur.compare_gradients(mine, g, params, x=xs, y=ys)
    assert r["W"].step == 4 and r["W"].matches_from == 3 and r["W"].up
    assert "matches for t ≤ 3, not at t = 4" in str(r)


def _per_step(g, params, name, **inputs):
    from unroll.compare import _Slips
    from unroll.runtime import bind_arguments, interpret
    gg = ur.grad(g)
    bound = bind_arguments(g, params, inputs)
    env = interpret(gg, dict(bound.env), bound.xp)
    slips = _Slips(g, gg, env, params, inputs, [name], bound.xp)
    parts = slips.contributions(name)
    return [parts[t] for t in range(1, g.steps + 1)]


def test_losses_placed_otherwise_than_the_circuit_get_no_recurrence_verdict(problem):
    """Truncated BPTT places the losses as the circuit does: with loss_steps it would compare
    against another loss, so that slip is not offered (rather than named wrongly)."""
    c = ur.models.elman(hw.D, hw.H, hw.K)
    g = c.unroll(steps=hw.T, loss_steps="last")
    params = c.init_params(seed=0)
    _, _, x, y = problem
    mine = {"W": np.stack(_per_step(g, params, "W", x=x, y=y))}
    mine["W"][hw.T - 2] *= 0.5
    r = ur.compare_gradients(mine, g, params, x=x, y=y)
    assert r["W"].step == hw.T - 1 and (r["W"].cause is None or "recurrent" not in r["W"].cause)


@pytest.mark.parametrize("name, wrong, step, cause", CASES, ids=[c[0] for c in CASES])
def test_the_per_step_errors_depart_where_the_report_says(problem, name, wrong, step, cause,
                                                          tmp_path):
    """Verdict.per_step: max |Δ| of ∂W(t) for t = 1..τ, zero after the departure step (in
    the order BPTT runs) and not at it; plot() draws one panel per wrong parameter."""
    r = report(problem, name)
    for p in wrong:
        errs = r[p].per_step
        assert errs.shape == (hw.T,)
        assert np.all(errs[step:] < 1e-12) and errs[step - 1] > 1e-6, (p, errs)
    fig = r.plot(tmp_path / "departures.png")
    assert len(fig.axes) == len(wrong)
    assert (tmp_path / "departures.png").read_bytes()[:4] == b"\x89PNG"
    bars = fig.axes[0].patches
    assert len(bars) == hw.T
    red = [i + 1 for i, b in enumerate(bars) if b.get_facecolor()[0] > 0.7]
    assert red == [step]
    # the log axis starts a decade under the smallest bar: no bar is drawn as nothing
    for ax in fig.axes:
        assert ax.get_ylim()[0] <= min(b.get_height() for b in ax.patches) / 5


def test_a_plot_needs_per_step_gradients(problem):
    with pytest.raises(ur.InputError, match="per step"):
        report(problem, "no_recurrence", totals=True).plot()
    with pytest.raises(ur.InputError, match="every gradient matches"):
        report(problem, "correct").plot()
