"""Bad inputs get an unroll.errors error that names the culprit; strings never become code.

Each row of a matrix is one bad call at one public entry point, with the error class and a
pattern its message must match (the culprit and the fix). The verdict is strict: a raw
Python or NumPy exception fails the test as surely as silence does.
"""
import builtins
import xml.dom.minidom

import numpy as np
import pytest

import unroll as ur
import unroll.__main__  # noqa: F401  (the CLI's main, called in this process)


def _circuit():
    c = ur.Circuit("bad")
    x = c.input("x", (5,))
    M = c.input("M", (2, 3))
    y = c.input("y", (), dtype="int")
    return c, x, M, y


def _ops_cases():
    c, x, M, y = _circuit()
    return [
        ("sum axis out of range", lambda: ur.sum(M, axis=5), ur.ShapeError,
         r"axis 5 is out of range for <M.*rank is 2 \(axes -2..1"),
        ("sum axis repeated", lambda: ur.sum(M, axis=(0, -2)), ur.ShapeError, "axis.*twice"),
        ("sum axis a string", lambda: ur.sum(M, axis="0"), ur.UnrollError,
         "axis must be an integer, not str"),
        ("sum of a scalar over an axis", lambda: ur.sum(ur.sum(x), axis=0), ur.ShapeError,
         "scalar per example and has no axis"),
        ("sum keepdims a string", lambda: ur.sum(x, keepdims="True); import os; ("),
         ur.UnrollError, "keepdims=...\\) must be True or False"),
        ("mean axis out of range", lambda: ur.mean(M, axis=2), ur.ShapeError,
         "ur.mean: axis 2 is out of range"),
        ("split unequal", lambda: ur.split(x, 2), ur.ShapeError,
         r"size 5 along axis -1, which does not split into 2 equal parts.*ur.split\(x, \(3, 2\)\)"),
        ("split into 0", lambda: ur.split(x, 0), ur.UnrollError, "parts must be an integer >= 1, not 0"),
        ("split sizes with a zero", lambda: ur.split(x, (5, 0)), ur.UnrollError,
         "part size 0 must be an integer >= 1"),
        ("split a scalar", lambda: ur.split(ur.sum(x), 1), ur.ShapeError, "cannot be split"),
        ("split sections a string", lambda: ur.split(x, "2"), ur.UnrollError,
         "number of equal parts or a tuple of sizes"),
        ("concat of nothing", lambda: ur.concat([]), ur.ShapeError, "nothing to join"),
        ("concat along two axes", lambda: ur.concat([M, M], axis=(0, 1)), ur.UnrollError,
         "one axis"),
        ("split along two axes", lambda: ur.split(M, 1, axis=(0, 1)), ur.UnrollError,
         "one axis"),
        ("concat of one value", lambda: ur.concat(x), ur.UnrollError, "takes a list"),
        ("concat of scalars", lambda: ur.concat([ur.sum(x), ur.sum(x)]), ur.ShapeError,
         "scalar per example"),
        ("reshape to floats", lambda: ur.reshape(x, (5.0,)), ur.UnrollError,
         "size 5.0 .* must be an integer"),
        ("reshape to 0", lambda: ur.reshape(x, (0, 5)), ur.UnrollError, "must be an integer >= 1"),
        ("reshape to a string", lambda: ur.reshape(x, "5"), ur.ShapeError,
         "shape must be a tuple"),
        ("one_hot n a string", lambda: ur.one_hot(y, "4\nimport os"), ur.UnrollError,
         "number of classes n must be an integer"),
        ("one_hot n zero", lambda: ur.one_hot(y, 0), ur.UnrollError, "must be an integer >= 1"),
        ("one_hot of a number", lambda: ur.one_hot(3, 4), ur.UnrollError,
         "expected a circuit value"),
        ("pow with a string", lambda: x ** "2", ur.UnrollError,
         "exponent must be a finite number"),
        ("pow with nan", lambda: x ** float("nan"), ur.UnrollError, "finite number"),
    ]


OPS = _ops_cases()


@pytest.mark.parametrize("what, call, err, msg", OPS, ids=[c[0] for c in OPS])
def test_op_arguments(what, call, err, msg):
    with pytest.raises(err, match=msg):
        call()


# --- strings never become code --------------------------------------------------------------------

EVIL = ["it's", 'say "hi"', "a\nimport builtins; builtins.PWNED = 1", "x\r\nbuiltins.PWNED=1",
        "__import__('builtins').__setattr__('PWNED', 1)", "<script>alert(1)</script>",
        '"; label="x', "a -> b; }", "{0}{1}{axes}", "\\", "π ∂ Σ ⟨⟩", "\u2028PWNED = 1",
        "$\\frac{$", "%s %(x)s", "&amp;&lt;", "]]><!--"]


def _ran_code() -> bool:
    return getattr(builtins, "PWNED", None) is not None


@pytest.mark.parametrize("s", EVIL)
def test_an_adversarial_circuit_name_runs_draws_and_executes_nothing(s):
    """A circuit's name is free text: it reaches printouts, pictures and the generated
    program's comments, where a line break would start code."""
    if not s.isprintable():
        with pytest.raises(ur.CircuitError, match="printable"):
            ur.Circuit(s)
        return
    c = ur.Circuit(s)
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="param")
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.delayed(2) + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    p = {"W": np.eye(2) * 0.5, "h0": np.ones((2, 2))}
    xs = np.ones((3, 2))
    loss, grads = g.value_and_grad(p, x=xs)
    assert np.isfinite(float(loss)) and not _ran_code()
    assert s not in g.program(grad=True).source.split("#")[0]
    xml.dom.minidom.parseString(ur.render.svg(c.to_dot(title=True)))   # well-formed SVG
    xml.dom.minidom.parseString(ur.render.svg(g.to_dot(title=s)))


@pytest.mark.parametrize("s", EVIL)
def test_an_adversarial_name_is_refused_where_a_name_is_expected(s):
    c = ur.Circuit("names")
    x = c.input("x", (2,))
    for call in (lambda: c.input(s, (2,)), lambda: c.param(s, (2,)),
                 lambda: c.state(s, (2,)), lambda: c.state("h", (2,), init_name=s),
                 lambda: (x * 2).named(s), lambda: c.output(s, x * 3),
                 lambda: c.loss(ur.sum(x), name=s)):
        with pytest.raises(ur.CircuitError, match="not a valid name"):
            call()
    assert not _ran_code()


def _quietly(call):
    """The call's result, or None when it refuses with an unroll error; anything else raised
    (a raw exception) fails the test."""
    try:
        return call()
    except ur.UnrollError:
        return None


@pytest.mark.parametrize("s", EVIL)
@pytest.mark.filterwarnings("ignore:Glyph")     # a carriage return has no glyph to draw
def test_an_adversarial_string_through_every_other_string_argument(s, tmp_path, monkeypatch):
    """Titles, labels, descriptions, names to look up, options and paths: each is refused
    with an unroll error or used as text; nothing runs and every SVG stays well-formed."""
    monkeypatch.chdir(tmp_path)
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(steps=3)
    p = c.init_params(seed=0)
    data = dict(x=np.ones((3, 3)), y=np.array([0, 1, 1]))
    for dot in (_quietly(lambda: c.to_dot(title=s)), _quietly(lambda: g.to_dot(title=s)),
                _quietly(lambda: g.to_dot(heat={s: np.ones(3)}))):
        if dot is not None:
            xml.dom.minidom.parseString(ur.render.svg(dot))
    calls = [
        lambda: ur.Circuit(s), lambda: c[s], lambda: c.param("Q", (2,), init=s),
        lambda: c.input("z", (2,), dtype=s), lambda: c.state("z", (2,), init=s).next,
        lambda: c.state("z2", (2,), direction=s), lambda: c.unroll(3, loss_steps={s: [1]}),
        lambda: c.unroll(3, loss_steps=s), lambda: c.render(s), lambda: c.render("c.svg", detail=s),
        lambda: c.render("c.svg", params=s), lambda: g.to_dot(mode=s),
        lambda: g.run(p, **{s: np.ones((3, 3))}, **data), lambda: g.value_and_grad(p, wrt=s, **data),
        lambda: g.value_and_grad(p, executor=s, **data), lambda: g.value_and_grad(p, checkpoint=s, **data),
        lambda: ur.gradcheck(g, p, wrt=[s], **data), lambda: ur.gradcheck(g, p, mode=s, **data),
        lambda: ur.hvp(g, p, {s: np.ones(2)}, **data),
        lambda: ur.diagnostics.gradient_norms(g, p, states=s, **data),
        lambda: ur.diagnostics.jacobians(g, p, state=s, **data),
        lambda: ur.diagnostics.plot({s: [1.0, 2.0]}, "p.svg", title=s, xlabel=s, ylabel=s),
        lambda: ur.diagnostics.plot({"a": [1.0, 2.0]}, s),
        lambda: ur.models.elman(3, 4, 2, nonlinearity=s), lambda: ur.models.elman(3, 4, 2, name=s),
        lambda: ur.models.lstm(3, 4, variant=s), lambda: ur.models.stacked(3, [(s, 2)]),
        lambda: ur.models.generate(c, p, [0], 2, input=s), lambda: ur.models.generate(c, p, [0], 2, output=s),
        lambda: ur.training.train(g, p, [data], ur.optim.SGD(p, lr=0.01), desc=s, progress=False),
        lambda: ur.optim.SGD(p, lr=s), lambda: ur.optim.SGD(p, lr=0.1).step({s: np.ones(2)}),
        lambda: ur.render.render(c.to_dot(), "x.svg", format=s), lambda: ur.render.svg(s),
        lambda: ur.render.svg(c.to_dot(), engine=s), lambda: ur.sum(c["x"], axis=s),
        lambda: ur.one_hot(c["y"], s), lambda: ur.reshape(c["x"], s),
        lambda: ur.__main__.main(["render", f"{s}:{s}", "-o", "x.svg"]),
    ]
    for call in calls:
        _quietly(call)
    assert not _ran_code()


def test_primitive_parameters_enter_the_program_as_literals_only():
    """Even through the low-level bind, a parameter enters the generated source as a
    quoted literal (a string stays a string), or not at all."""
    c = ur.Circuit("bind")
    x = c.input("x", (3,))
    s = ur.core.bind("sum", x, axes=(-1,), keepdims="False) or __import__('builtins')."
                     "__setattr__('PWNED', 1) or (False")
    c.loss(ur.sum(s))
    g = c.unroll(steps=1)
    with pytest.raises(TypeError):                 # NumPy's: a str is no keepdims
        g.run({}, x=np.ones((1, 3)))
    assert not _ran_code()
    assert 'keepdims="False) or __import__' in g.program().source
    c2 = ur.Circuit("bind2")
    x2 = c2.input("x", (3,))
    c2.loss(ur.sum(ur.core.bind("sum", x2, axes=(-1,), keepdims=1j)))
    with pytest.raises(ur.UnrollError, match="keepdims=1j is not a finite number"):
        c2.unroll(steps=1).run({}, x=np.ones((1, 3)))


def test_comments_of_the_generated_program_stay_comments():
    """The program prints each equation as a comment; a parameter's text with a line break
    (possible through the low-level bind only) must not end the comment and run."""
    c = ur.Circuit("comment")
    y = c.input("y", (), dtype="int")
    o = ur.core.bind("one_hot", y, n="2\nimport builtins; builtins.PWNED = 1\n")
    c.output("o", o)
    source = c.unroll(steps=1).program().source
    assert "onehot(y[1], 2 import builtins" in source
    assert not any(ln.strip().startswith("import") for ln in source.splitlines())
    assert not _ran_code()


# --- results are the caller's -----------------------------------------------------------------

def test_results_never_share_memory_with_what_the_user_passed():
    """An output that is an input, a gradient that is a broadcast parameter: writing into a
    result must not change the caller's arrays."""
    c = ur.Circuit("alias")
    x = c.input("x", (2,))
    W = c.param("W", (2,))
    c.output("o", x)
    c.loss(ur.sum(W * x))                     # ∂x is W, broadcast over the batch
    g = c.unroll(steps=2)
    xs, p = np.ones((2, 3, 2)), {"W": np.array([0.5, -1.0])}
    keep_x, keep_w = xs.copy(), p["W"].copy()
    for executor in ("compiled", "interpret"):
        out = g.run(p, **{"x": xs})
        out["o"][...] = 7.0
        _, grads = g.value_and_grad(p, wrt=["W", "x"], executor=executor, x=xs)
        for a in grads.values():
            a[...] = 9.0
        assert np.array_equal(xs, keep_x) and np.array_equal(p["W"], keep_w)


# --- gradcheck ------------------------------------------------------------------------------------

def _gc_problem():
    c = ur.Circuit("gc")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init_name="a0")
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.prev + x)
    c.loss(ur.sum(h * h))
    return c.unroll(steps=2), {"W": np.array([[0.5, -0.2], [0.1, 0.3]])}, np.ones((2, 3, 2))


@pytest.mark.parametrize("kw, msg", [
    (dict(max_entries=0), "max_entries must be an integer >= 1 .*proves nothing"),
    (dict(mode="directional", directions=0), "directions must be an integer >= 1"),
    (dict(eps=0), "eps must be a finite number > 0"),
    (dict(eps=float("nan")), "eps must be a finite number > 0, not nan"),
    (dict(rtol=-1), "rtol must be a finite number >= 0"),
    (dict(atol="0"), "atol must be a finite number"),
    (dict(seed="a"), "seed must be an integer"),
    (dict(mode="fast"), "mode must be 'full' or 'directional'"),
    (dict(order=3), "order must be 1 or 2")])
def test_gradcheck_refuses_settings_that_check_nothing(kw, msg):
    g, p, xs = _gc_problem()
    with pytest.raises(ur.UnrollError, match=msg):
        ur.gradcheck(g, p, x=xs, **kw)


def test_gradcheck_takes_a_default_initial_value_as_value_and_grad_does():
    g, p, xs = _gc_problem()
    rep = ur.gradcheck(g, p, wrt=["x", "a0"], x=xs)
    assert rep.ok and rep.checks["a0"].checked == 6


# --- messages that point to the right fix ---------------------------------------------------------

def _elman():
    c = ur.models.elman(3, 4, 2)
    return c.unroll(steps=5), c.init_params(seed=0)


def test_messages_name_the_right_fix():
    c = ur.Circuit("fixes")
    x = c.input("x", (4,))
    U, V = c.param("U", (4, 3)), c.param("V", (3, 4))
    h = c.state("h", (2,))
    with pytest.raises(ur.ShapeError, match=r"U \(4, 3\) has 3 columns.*looks transposed: "
                                            r"declare it with shape \(3, 4\)"):
        U @ x
    with pytest.raises(ur.ShapeError, match=r"x @ V: the vector has length 4 but the matrix "
                                            r"has 3 rows; for the matrix times the vector "
                                            r"write V @ x"):
        x @ V
    with pytest.raises(ur.NoSuchAttributeError, match=r"h.prev is already the value 1 step "
                                                      r"back.*h.delayed\(2\) for one step"):
        h.prev.prev
    assert not hasattr(x, "prev")                # still an AttributeError to Python
    g, p = _elman()
    with pytest.raises(ur.InputError, match=r"time-major.*np.swapaxes\(x, 0, 1\)"):
        g.run(p, x=np.ones((2, 5, 3)), y=np.zeros((2, 5), int))
    with pytest.raises(ur.DTypeError, match=r"class indices.*one-hot targets pass "
                                            r"y.argmax\(-1\)"):
        g.run(p, x=np.ones((5, 2, 3)), y=np.eye(2)[np.zeros((5, 2), int)])
    with pytest.raises(ur.ParamError, match=r"parameter b is a list, not an array of shape "
                                            r"\(4,\); convert it with np.asarray"):
        g.run(dict(p, b=[0.0] * 4), x=np.ones((5, 2, 3)), y=np.zeros((5, 2), int))


# --- files -----------------------------------------------------------------------------------------

def test_render_and_the_cli_report_file_errors_and_create_no_folders(tmp_path, capsys):
    from unroll.__main__ import main
    c = ur.models.elman(2, 3, 2)
    missing = tmp_path / "no" / "such" / "x.png"
    with pytest.raises(ur.RenderError, match=r"folder .*no/such' does not exist; create it"):
        c.render(missing)
    (tmp_path / "d.svg").mkdir()
    with pytest.raises(ur.RenderError, match="d.svg.: it is a folder"):
        c.render(tmp_path / "d.svg")                       # a folder, not a file
    with pytest.raises(ur.RenderError, match=r"\.svg, \.png, \.pdf or \.dot"):
        c.render(tmp_path / "x.jpg")
    with pytest.raises(ur.RenderError, match="zoom must be a number"):
        c.unroll(steps=2).render(tmp_path / "x.png", zoom=0)
    (tmp_path / "m.py").write_text("import unroll as ur\n"
                                   "def model():\n    return ur.models.elman(2, 3, 2)\n")
    assert main(["render", f"{tmp_path / 'm.py'}:model", "-o", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


# --- resources ---------------------------------------------------------------------------------

def test_a_delay_that_cannot_fit_is_refused_before_anything_is_built():
    c = ur.Circuit("far")
    x = c.input("x", ())
    h = c.state("h", ())
    h.next = ur.tanh(h.delayed(10 ** 9) + x)
    c.loss(h * h)
    with pytest.raises(ur.ResourceError, match=r"h is read 1,000,000,000 steps back"):
        c.unroll(steps=3)


def test_runs_that_would_not_fit_are_refused_with_the_way_out(monkeypatch):
    """With (pretend) 4 MiB free: a τ = 200,000 unroll, and a gradient whose stored arrays
    need more, are refused with the estimate and what to do instead."""
    import unroll.api
    import unroll.unrolling
    c = ur.models.elman(3, 8, 2)
    monkeypatch.setattr(unroll.unrolling, "available_memory", lambda: 4 * 2 ** 20)
    with pytest.raises(ur.ResourceError, match=r"τ = 200,000 .*TruncatedBPTT"):
        c.unroll(steps=200_000)
    monkeypatch.undo()
    g = c.unroll(steps=100)
    p = c.init_params(seed=0)
    x, y = np.ones((100, 5000, 3)), np.zeros((100, 5000), int)
    monkeypatch.setattr(unroll.api, "available_memory", lambda: 4 * 2 ** 20)
    for executor in ("compiled", "interpret"):
        with pytest.raises(ur.ResourceError, match=r"would keep about \d+ MiB.*checkpoint="
                                                   r"'sqrt'.*TruncatedBPTT.*B = 5000"):
            g.value_and_grad(p, executor=executor, x=x, y=y)
    loss, _ = g.value_and_grad(p, checkpoint="sqrt", x=x, y=y)    # the way out runs
    assert np.isfinite(float(loss))


# --- declarations and graphs (from the API sweep) ---------------------------------------------------

def _decl_cases():
    c = ur.models.elman(3, 4, 2)
    s = ur.Circuit("s")
    x = s.input("x", ())
    g = c.unroll(steps=3)
    return [
        ("c[name] for a missing name", lambda: c["nope"], ur.NoSuchVariableError,
         "no variable 'nope'.*its variables are x, y"),
        ("c[3]", lambda: c[3], KeyError, "no variable 3"),
        ("an output named loss", lambda: c.output("loss", c["o"]), ur.CircuitError,
         "run returns the loss under that key"),
        ("an output named state", lambda: c.output("state", c["o"]), ur.CircuitError,
         "state under that key"),
        ("at a fractional step", lambda: s.output("o1", x * 2, at=[1.7]), ur.CircuitError,
         "whole steps"),
        ("at a string step", lambda: s.output("o2", x * 2, at=["2"]), ur.CircuitError,
         "whole steps"),
        ("at a boolean step", lambda: s.loss(x * x, at=[True]), ur.CircuitError, "whole steps"),
        ("at step 0", lambda: s.loss(x * x, at=[0]), ur.CircuitError, "whole steps"),
        ("at no steps", lambda: s.loss(x * x, at=[]), ur.CircuitError, "non-empty"),
        ("loss_steps of a fractional step", lambda: c.unroll(3, loss_steps=[1.5]),
         ur.CircuitError, "whole steps"),
        ("loss_steps dict of an int", lambda: c.unroll(3, loss_steps={"L": 2}),
         ur.CircuitError, "list of whole steps"),
        ("unroll(4.0) after unroll(4)", lambda: (c.unroll(4), c.unroll(4.0)), ur.CircuitError,
         "τ must be an integer"),
        ("encoder_decoder mode", lambda: ur.models.encoder_decoder(3, 4, 2, mode="bogus"),
         ur.CircuitError, "mode must be 'train', 'free' or 'greedy'"),
        ("encoder_decoder context_size 0",
         lambda: ur.models.encoder_decoder(3, 4, 2, context_size=0), ur.ShapeError,
         "context_size must be an integer >= 1"),
        ("grad of a circuit", lambda: ur.grad(c), ur.UnrollError, "unroll the circuit first"),
        ("wrt a number", lambda: ur.grad(g, wrt=5), ur.InputError, "wrt must be a name"),
        ("wrt empty", lambda: g.value_and_grad(c.init_params(), wrt=[], x=np.ones((3, 3)),
                                               y=np.zeros(3, int)), ur.InputError, "wrt is empty"),
        ("executor with checkpoint", lambda: g.value_and_grad(
            c.init_params(), checkpoint=2, executor="fast", x=np.ones((3, 3)),
            y=np.zeros(3, int)), ur.UnrollError, "executor must be one of 'compiled', 'interpret'"),
    ]


DECL = _decl_cases()


@pytest.mark.parametrize("what, call, err, msg", DECL, ids=[c[0] for c in DECL])
def test_declarations_and_graphs(what, call, err, msg):
    with pytest.raises(err, match=msg):
        call()


def _more_cases():
    c = ur.models.elman(4, 3, 4)
    g = c.unroll(steps=2)
    p = c.init_params(seed=0)
    xs, ys = np.eye(4)[[0, 1]], np.array([1, 2])
    s = ur.Circuit("p")
    import unroll.testing as ut
    return [
        ("param init NaN", lambda: s.param("W", (3,), init=float("nan")), ur.CircuitError,
         "not a finite number"),
        ("param init unknown", lambda: s.param("W", (3,), init="gaussian"), ur.CircuitError,
         "unknown init 'gaussian'.*lambda rng, shape"),
        ("param init an array", lambda: s.param("W", (3,), init=np.ones(3)), ur.CircuitError,
         "unknown init"),
        ("param init that fails", lambda: (s.param("W5", (3,), init=lambda rng, sh: "abc"),
                                           s.init_params()), ur.CircuitError,
         "its init <lambda> failed"),
        ("init_params seed negative", lambda: c.init_params(seed=-1), ur.CircuitError,
         "seed must be an integer >= 0"),
        ("input per_step a string", lambda: s.input("q", (2,), per_step="no"), ur.UnrollError,
         "per_step must be True or False"),
        ("state show a string", lambda: s.state("k", (2,), show="no"), ur.UnrollError,
         "show must be True or False"),
        ("run return_state a string", lambda: g.run(p, return_state="yes", x=xs, y=ys),
         ur.UnrollError, "return_state=...\\) must be True or False"),
        ("check_finite a string", lambda: g.value_and_grad(p, check_finite="no", x=xs, y=ys),
         ur.UnrollError, "check_finite=...\\) must be True or False"),
        ("generate prime a number", lambda: ur.models.generate(c, p, 5, 2), ur.InputError,
         "prime must be a non-empty list"),
        ("generate prime fractional", lambda: ur.models.generate(c, p, [1.7], 2),
         ur.InputError, "integer token ids"),
        ("generate temperature NaN", lambda: ur.models.generate(c, p, [1], 2,
                                                                temperature=float("nan")),
         ur.InputError, "temperature must be a finite number > 0"),
        ("generate into an int input", lambda: ur.models.generate(c, p, [0], 3, input="y"),
         ur.InputError, "one-hot vectors.*encode="),
        ("generate params a list", lambda: ur.models.generate(c, [p], [0], 3), ur.ParamError,
         "params must be a dict"),
        ("random_circuits directions a string",
         lambda: ut.random_circuits(directions="forward").example(), ur.UnrollError,
         "directions must be a tuple"),
        ("random_circuits unknown init", lambda: ut.random_circuits(inits=("bogus",)).example(),
         ur.UnrollError, "inits must be"),
        ("random_circuits no primitives", lambda: ut.random_circuits(primitives=[]).example(),
         ur.UnrollError, "primitives must be a non-empty list"),
        ("random_circuits max_states 0", lambda: ut.random_circuits(max_states=0).example(),
         ur.UnrollError, "max_states must be an integer >= 1"),
    ]


MORE = _more_cases()


@pytest.mark.parametrize("what, call, err, msg", MORE, ids=[c[0] for c in MORE])
@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_parameters_flags_generation_and_strategies(what, call, err, msg):
    with pytest.raises(err, match=msg):
        call()


# --- every public callable answers a call it cannot take ------------------------------------------

def _public_callables():
    import inspect
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(steps=2)
    mods = [ur, ur.models, ur.diagnostics, ur.training, ur.optim, ur.render, ur.interop]
    out = {}
    for mod in mods:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                out[f"{mod.__name__}.{name}"] = obj
    for owner, inst in ((ur.Circuit, c), (ur.Graph, g)):
        for name, member in vars(owner).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                out[f"{owner.__name__}.{name}"] = getattr(inst, name)
    return out


PUBLIC = _public_callables()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_callable_refuses_an_argument_it_does_not_take(name):
    """With an unknown keyword (and without its required arguments) every public function
    and method raises an unroll error that names what it takes: never a bare TypeError."""
    import inspect
    fn = PUBLIC[name]
    with pytest.raises(ur.UnrollError) as e:
        fn(zz_not_an_option=1)
    text = str(e.value)
    open_kw = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    # the bad keyword is named; a function taking **inputs may first miss a required argument
    assert "zz_not_an_option" in text or open_kw and "missing" in text, text
    if isinstance(e.value, ur.errors.ArgumentError):
        assert "it takes (" in text
