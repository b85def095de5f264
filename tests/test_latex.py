"""ur.latex: a circuit's forward and BPTT equations in rolled form, in the book's notation.

The Elman circuit of fig. 10.3 must give eq. 10.8-10.11 and 10.18-10.28 of Goodfellow et
al. term by term; every derivation must evaluate (the derived equations themselves, step by
step, not the graph) to what ``value_and_grad`` computes, for the textbook models, the
library's LSTM and GRU, the book's LSTM and GRU cells, delays of 2 and states running
backward, at a τ other than the one they were read from. Random circuits: tests/
test_differential.py.
"""
import re

import numpy as np
import pytest

import unroll as ur
from unroll.models import layers, textbook

TOL = dict(rtol=1e-10, atol=1e-12)

# eq. 10.8-10.11 (forward) and 10.17-10.28 (BPTT) of the book, written as unroll writes them:
# ŷ(t) = softmax(o(t)) put in, e_y(t) as 1_y(t), and the parentheses the book puts around
# every gradient that a matrix multiplies (10.21) put around it in 10.18 too
THE_BOOK = [
    ("forward", "a^{(t)}", r"b + W h^{(t-1)} + U x^{(t)}", ""),                     # 10.8
    ("forward", "h^{(0)}", r"h_{0}", ""),
    ("forward", "h^{(t)}", r"\tanh\left(a^{(t)}\right)", ""),                      # 10.9
    ("forward", "o^{(t)}", r"c + V h^{(t)}", ""),                                  # 10.10
    ("forward", "L^{(t)}",                                                  # 10.11-10.14
     r"-\left[\log\operatorname{softmax}\left(o^{(t)}\right)\right]_{y^{(t)}}", ""),
    ("forward", "L", r"\sum_{t} L^{(t)}", ""),
    ("backward", r"\nabla_{o^{(t)}} L",                                           # 10.17
     r"\operatorname{softmax}\left(o^{(t)}\right) - \mathbf{1}_{y^{(t)}}", ""),
    ("backward", r"\nabla_{h^{(\tau)}} L",                                        # 10.18
     r"V^{\top} \left(\nabla_{o^{(\tau)}} L\right)", ""),
    ("backward", r"\nabla_{h^{(t)}} L",                                           # 10.21
     r"W^{\top} \operatorname{diag}\left(1 - \left(h^{(t+1)}\right)^{2}\right) "
     r"\left(\nabla_{h^{(t+1)}} L\right) + V^{\top} \left(\nabla_{o^{(t)}} L\right)",
     r"1 \le t \le \tau-1"),
    ("gradients", r"\nabla_{U} L", r"\sum_{t} \operatorname{diag}\left(1 - \left(h^{(t)}"  # 10.28
     r"\right)^{2}\right) \left(\nabla_{h^{(t)}} L\right) x^{(t)\top}", ""),
    ("gradients", r"\nabla_{W} L", r"\sum_{t} \operatorname{diag}\left(1 - \left(h^{(t)}"  # 10.26
     r"\right)^{2}\right) \left(\nabla_{h^{(t)}} L\right) h^{(t-1)\top}", ""),
    ("gradients", r"\nabla_{V} L",                                                # 10.24
     r"\sum_{t} \left(\nabla_{o^{(t)}} L\right) h^{(t)\top}", ""),
    ("gradients", r"\nabla_{b} L", r"\sum_{t} \operatorname{diag}\left(1 - \left(h^{(t)}"  # 10.23
     r"\right)^{2}\right) \left(\nabla_{h^{(t)}} L\right)", ""),
    ("gradients", r"\nabla_{c} L", r"\sum_{t} \nabla_{o^{(t)}} L", ""),          # 10.22
]


def test_the_elman_circuit_gives_the_books_equations_term_by_term():
    eq = ur.latex(textbook.elman(3, 4, 2), grad=True)
    assert eq.rows == THE_BOOK
    # the forward equations alone are the first six
    assert ur.latex(textbook.elman(3, 4, 2)).rows == THE_BOOK[:6]
    text = str(eq)
    assert text.startswith(r"\begin{aligned}") and text.endswith(r"\end{aligned}")
    assert r"\nabla_{h^{(t)}} L &= W^{\top}" in text and r"&& 1 \le t \le \tau-1" in text
    assert eq._repr_latex_() == f"$${text}$$"


def _arguments(g, rng, batch=3):
    inputs = {}
    for k, xs in g.seq_inputs.items():
        v = xs[0]
        if v.aval.dtype == "int":
            inputs[k] = rng.integers(0, g.bounds[k], size=(g.steps, batch) + v.shape)
        else:
            inputs[k] = rng.standard_normal((g.steps, batch) + v.shape)
    for k, v in g.static_inputs.items():
        inputs[k] = rng.integers(0, g.bounds[k], size=(batch,) + v.shape) \
            if v.aval.dtype == "int" else 0.5 * rng.standard_normal((batch,) + v.shape)
    return inputs


def _agree(eq, c, steps, seed=0, batch=3):
    rng = np.random.default_rng(seed)
    g = c.unroll(steps=steps)
    params = {k: 0.7 * v for k, v in c.init_params(seed=seed).items()}
    inputs = _arguments(g, rng, batch)
    loss, grads = g.value_and_grad(params, **inputs)
    mine, derived = eq.evaluate(params, **inputs)
    np.testing.assert_allclose(mine, loss, **TOL)
    assert set(derived) == set(grads)
    for k in grads:
        np.testing.assert_allclose(derived[k], grads[k], err_msg=k, **TOL)


def _book_lstm():
    """The LSTM cell of eq. 10.40-10.44: forget gate f, input gate g, output gate q."""
    c = ur.Circuit("book_lstm")
    x = c.input("x", (3,))
    h, s = c.state("h", (4,)), c.state("s", (4,))

    def gate(n):
        return ur.sigmoid(c.param(f"b_{n}", (4,)) + c.param(f"U_{n}", (4, 3)) @ x
                          + c.param(f"W_{n}", (4, 4)) @ h.prev).named(n)
    f, g, q = gate("f"), gate("g"), gate("q")
    i = ur.tanh(c.param("b", (4,)) + c.param("U", (4, 3)) @ x + c.param("W", (4, 4)) @ h.prev)
    s.next = f * s.prev + g * i
    h.next = ur.tanh(s) * q
    y = c.input("y", (), dtype="int")
    c.loss(ur.softmax_cross_entropy(c.output("o", c.param("V", (2, 4)) @ h), y))
    return c


def _book_gru():
    """The GRU of eq. 10.45-10.46: update gate u, reset gate r."""
    c = ur.Circuit("book_gru")
    x = c.input("x", (3,))
    h = c.state("h", (4,))

    def gate(n):
        return ur.sigmoid(c.param(f"b_{n}", (4,)) + c.param(f"U_{n}", (4, 3)) @ x
                          + c.param(f"W_{n}", (4, 4)) @ h.prev).named(n)
    u, r = gate("u"), gate("r")
    h.next = u * h.prev + (1.0 - u) * ur.sigmoid(
        c.param("b", (4,)) + c.param("U", (4, 3)) @ x + c.param("W", (4, 4)) @ (r * h.prev))
    c.loss(ur.mse(c.output("o", c.param("V", (3, 4)) @ h), c.input("y", (3,))))
    return c


def _delay_two():
    c = ur.Circuit("delay2")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.delayed(2) + c.param("A", (3, 3)) @ h.prev
                     + c.param("U", (3, 2)) @ x)
    c.loss(ur.sum(h * h), at="last")
    return c


def _through_add(outside: bool):
    """h(t) = tanh(h(t-1) + U x(t)), or h(t-1) + tanh(U x(t)): an add passes ∇h(t) on
    unchanged, so the gradient of h(t-1) is a value of step t's backward work."""
    c = ur.Circuit("through_add")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    u = c.param("U", (3, 2)) @ x
    h.next = h.prev + ur.tanh(u) if outside else ur.tanh(h.prev + u)
    c.loss(ur.sum(h * h), at="last")
    return c


def _loss_reads_a_parameter():
    c = ur.Circuit("reads_b")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    b = c.param("b", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.prev + c.param("U", (3, 2)) @ x + b)
    c.loss(ur.sum(h) + ur.sum(b) + ur.sum(b * b))   # ∇b: 1 per example, summed over B
    return c


def _delay_two_and_one(at="last"):
    c = ur.Circuit("delays")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.delayed(2) + c.param("U", (3, 2)) @ x + h.prev)
    c.loss(ur.sum(h * h), at=at)
    return c


def _with_loss(c, state="h"):
    c.loss(ur.sum(c[state] * c[state]))
    return c


MODELS = {
    "elman": lambda: textbook.elman(3, 4, 2),
    "elman relu, mse": lambda: textbook.elman(3, 4, 2, nonlinearity="relu", loss="mse"),
    "jordan": lambda: textbook.jordan(3, 4, 2),
    "many_to_one": lambda: textbook.many_to_one(3, 4, 2),
    "bidirectional": lambda: textbook.bidirectional(3, 4, 2),
    "teacher forcing": lambda: textbook.teacher_forcing(3, 4, 2),
    "library rnn": lambda: _with_loss(layers.rnn(3, 4)),
    "library lstm": lambda: _with_loss(layers.lstm(3, 4)),
    "library lstm, peepholes": lambda: _with_loss(layers.lstm(3, 4, variant="FGR")),
    "library gru": lambda: _with_loss(layers.gru(3, 4)),
    "book lstm": _book_lstm,
    "book gru": _book_gru,
    "delay 2, loss at the last step": _delay_two,
    "gradient passed on by an add": lambda: _through_add(False),
    "state plus a term": lambda: _through_add(True),
    "a loss reading a parameter": _loss_reads_a_parameter,
    "delays 1 and 2, loss at the last step": _delay_two_and_one,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_derived_equations_evaluate_to_the_computed_gradients(name):
    """Read from an unrolling of 2k + 4 steps or more, evaluated at 9 and 13 steps."""
    c = MODELS[name]()
    eq = ur.latex(c, grad=True)
    assert eq.derivation.steps < 13
    for steps in (9, 13):
        _agree(eq, c, steps, seed=steps)


def test_equations_read_from_a_graph_hold_at_its_own_steps():
    c = textbook.elman(3, 4, 2)
    c.loss(ur.sum(c["h"] * c["h"]), at=[2, -1])
    g = c.unroll(steps=5)
    eq = ur.latex(g, grad=True)
    _agree(eq, c, 5)
    with pytest.raises(ur.InputError, match="τ = 5"):
        eq.evaluate(c.init_params(seed=0), **_arguments(c.unroll(steps=6),
                                                        np.random.default_rng(0)))


@pytest.mark.parametrize("at", ["last", "first", [2], [2, -2]])
def test_a_graph_with_delays_1_and_2_and_placed_losses(at):
    """Equations read from a graph hold at its τ, wherever its losses sit."""
    c = _delay_two_and_one(at)
    _agree(ur.latex(c.unroll(steps=5), grad=True), c, 5)


def test_equations_that_depend_on_tau_itself_are_read_from_a_graph_only():
    """A delay of 2 alone with the loss at the last step reaches every other step: the
    equations differ between odd and even τ, so a circuit's are refused, a graph's hold."""
    c = ur.Circuit("every_other")
    x = c.input("x", (2,))
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.delayed(2) + c.param("U", (3, 2)) @ x)
    c.loss(ur.sum(h * h), at="last")
    with pytest.raises(ur.UnrollError, match="not the same at every step"):
        ur.latex(c, grad=True)
    for steps in (5, 6):
        _agree(ur.latex(c.unroll(steps=steps), grad=True), c, steps)


def test_a_circuit_without_sequence_inputs_is_evaluated_at_the_steps_given():
    c = ur.Circuit("driven")
    z = c.input("z", (3,), per_step=False)
    h = c.state("h", (3,))
    h.next = ur.tanh(c.param("W", (3, 3)) @ h.prev + z)
    c.loss(ur.sum(h * h))
    eq = ur.latex(c, grad=True)
    params = c.init_params(seed=0)
    z0 = np.random.default_rng(0).standard_normal((2, 3))
    for steps in (7, 9):
        loss, grads = eq.evaluate(params, steps=steps, z=z0)
        want_loss, want = c.unroll(steps=steps).value_and_grad(params, z=z0)
        np.testing.assert_allclose(loss, want_loss, **TOL)
        np.testing.assert_allclose(grads["W"], want["W"], **TOL)


# (how it is declared, what h(t) must read): parentheses where precedence needs them, signs
# folded, powers of superscripted symbols parenthesised, indexing shown
WRITTEN = [
    (lambda h, x, W, a: h ** 2 + x, r"\left(h^{(t-1)}\right)^{2} + x^{(t)}"),
    (lambda h, x, W, a: W @ (a * h) + x, r"W \left(a \odot h^{(t-1)}\right) + x^{(t)}"),
    (lambda h, x, W, a: (W @ h) * a + x, r"\left(W h^{(t-1)}\right) \odot a + x^{(t)}"),
    (lambda h, x, W, a: ur.square(a) - h + x, r"a^{2} - h^{(t-1)} + x^{(t)}"),
    (lambda h, x, W, a: W @ (-h) + x, r"W \left(-h^{(t-1)}\right) + x^{(t)}"),
    (lambda h, x, W, a: W @ (2 * h) + x, r"W \left(2 h^{(t-1)}\right) + x^{(t)}"),
    (lambda h, x, W, a: -2 * (-h) - 3 + x, r"2 h^{(t-1)} - 3 + x^{(t)}"),
    (lambda h, x, W, a: a - (-2 * h) + x, r"a + 2 h^{(t-1)} + x^{(t)}"),
    (lambda h, x, W, a: a * (-2 * h) + x, r"a \odot \left(-2 h^{(t-1)}\right) + x^{(t)}"),
    (lambda h, x, W, a: h[0] + x, r"\left[h^{(t-1)}\right]_{0} + x^{(t)}"),
    (lambda h, x, W, a: (W.T @ h) ** 2 + x, r"\left(W^{\top} h^{(t-1)}\right)^{2} + x^{(t)}"),
]


@pytest.mark.parametrize("build, want", WRITTEN, ids=[w for _, w in WRITTEN])
def test_terms_are_written_unambiguously(build, want, tmp_path):
    c = ur.Circuit("written")
    x = c.input("x", (3,))
    h = c.state("h", (3,))
    W, a = c.param("W", (3, 3)), c.param("a", (3,))
    h.next = ur.tanh(build(h.prev, x, W, a))
    c.loss(ur.sum(h * h))
    eq = ur.latex(c, grad=True)
    assert dict(eq.lines)["h^{(t)}"] == rf"\tanh\left({want}\right)"
    eq.render(tmp_path / "eqs.png")            # mathtext reads every line
    _agree(eq, c, 7)


def test_boundary_cases_are_stated_with_their_steps():
    """A loss at the last step only: ∇h(τ) has no recurrent term, the others no output
    term; a delay of 2 has two boundary steps at each end."""
    rows = ur.latex(_delay_two(), grad=True).rows
    lhs = [r[1] for r in rows]
    assert r"\nabla_{h^{(\tau)}} L" in lhs and r"\nabla_{h^{(\tau-1)}} L" in lhs
    assert "h^{(0)}" in lhs and "h^{(-1)}" in lhs
    assert any(r[3] == r"1 \le t \le \tau-2" for r in rows)


def test_long_sums_are_cut_into_lines():
    eq = ur.latex(_book_lstm(), grad=True)
    text = str(eq)
    long = [r for r in eq.rows if len(r[2]) > 150]
    assert long
    assert text.count(r"&\quad +") >= 2
    # every line's braces balance
    for line in text.split("\\\\\n"):
        assert line.count("{") == line.count("}"), line


def test_names_are_written_as_the_book_writes_them():
    from unroll.render.equations import tex_name
    assert tex_name("h") == "h"
    assert tex_name("h0") == "h_{0}"
    assert tex_name("W_hh") == "W_{hh}"
    assert tex_name("sigma") == r"\sigma"
    assert tex_name("weight_ih_l0") == r"\mathrm{weight}_{ih\_l0}"


def test_a_primitive_of_ones_own_is_written_with_its_tex_or_its_name():
    c = ur.Circuit("own")
    x = c.input("x", (2,))
    h = c.state("h", (2,))
    sq = ur.primitive("half_tex", lambda xp, a: 0.5 * a, lambda g, out, a: (0.5 * g,),
                      tex=r"\frac{#0}{2}")
    sp = ur.primitive("soft_sign", lambda xp, a: a / (1.0 + xp.abs(a)),
                      lambda g, out, a: (g / ((1.0 + ur.abs(a)) * (1.0 + ur.abs(a))),))
    try:
        h.next = sp(sq(h.prev) + x)
        c.loss(ur.sum(h))
        eq = ur.latex(c, grad=True)
        rhs = dict(eq.lines)["h^{(t)}"]
        assert rhs == r"\operatorname{soft\_sign}\left(\frac{h^{(t-1)}}{2} + x^{(t)}\right)"
        _agree(eq, c, 7)
    finally:
        ur.unregister(sq)
        ur.unregister(sp)


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_the_equations_are_drawn_without_tex(tmp_path, suffix):
    eq = ur.latex(_book_lstm(), grad=True)
    path = eq.render(tmp_path / f"eqs.{suffix}")
    data = path.read_bytes()
    assert data[:8] == {"png": b"\x89PNG\r\n\x1a\n", "svg": data[:8], "pdf": b"%PDF-1.4"}[suffix]
    if suffix == "png":
        from PIL import Image
        w, h = Image.open(path).size
        # one line per row, long sums on several lines, three headings
        assert h > 25 * (len(eq.rows) + 3) and w > 800
    if suffix == "svg":
        assert b"<svg" in data


def test_a_changed_circuit_asks_for_the_equations_again():
    c = textbook.elman(3, 4, 2)
    eq = ur.latex(c, grad=True)
    c.param("extra", (2,))
    with pytest.raises(ur.InputError, match="changed"):
        _agree(eq, c, 9)


def test_the_lstm_cell_state_and_forget_gate_gradients_read_as_by_hand():
    """∇s(t) = diag(f(t+1)) ∇s(t+1) + diag(1 - tanh²(s(t))) diag(q(t)) ∇h(t), stated at
    t = τ without the first term; ∇W_f = Σ_t diag(σ′) diag(s(t-1)) ∇s(t) h(t-1)ᵀ: an
    elementwise product with a gradient is written diag(·) ∇, the Jacobian first."""
    rows = {r[1]: (r[2], r[3]) for r in ur.latex(_book_lstm(), grad=True).rows}
    tanh2 = r"\operatorname{diag}\left(1 - \left(\tanh\left(s^{(%s)}\right)\right)^{2}\right)"
    assert rows[r"\nabla_{s^{(\tau)}} L"] == (
        tanh2 % r"\tau" + r" \operatorname{diag}\left(q^{(\tau)}\right) "
        r"\left(\nabla_{h^{(\tau)}} L\right)", "")
    assert rows[r"\nabla_{s^{(t)}} L"] == (
        r"\operatorname{diag}\left(f^{(t+1)}\right) \left(\nabla_{s^{(t+1)}} L\right) + "
        + tanh2 % "t" + r" \operatorname{diag}\left(q^{(t)}\right) "
        r"\left(\nabla_{h^{(t)}} L\right)", r"1 \le t \le \tau-1")
    assert rows[r"\nabla_{W_{f}} L"] == (
        r"\sum_{t} \operatorname{diag}\left(f^{(t)} \odot \left(1 - f^{(t)}\right)\right) "
        r"\operatorname{diag}\left(s^{(t-1)}\right) \left(\nabla_{s^{(t)}} L\right) "
        r"h^{(t-1)\top}", "")


def test_like_terms_are_counted_and_the_output_gradient_comes_first():
    """∇h(t) of a state with loss Σ h⊙h at every step reads 2 h(t), as at t = τ (not
    h(t) + h(t)); many-to-one states ∇o(τ) before ∇h(τ) = Vᵀ ∇o(τ) uses it."""
    rows = ur.latex(_delay_two_and_one(at=None), grad=True).rows
    interior = [r[2] for r in rows if r[1] == r"\nabla_{h^{(t)}} L"]
    assert interior and "2 h^{(t)}" in interior[0] and "h^{(t)} + h^{(t)}" not in interior[0]
    lhs = [r[1] for r in ur.latex(textbook.many_to_one(3, 4, 2), grad=True).rows]
    assert lhs.index(r"\nabla_{o^{(\tau)}} L") < lhs.index(r"\nabla_{h^{(\tau)}} L")


def test_a_value_the_backward_pass_reads_again_is_named_once():
    """The GRU's candidate σ(b + U x + W (r ⊙ h)), unnamed, is read by its own gradient and
    others': it is written once, as ζ1(t), and products with gradients keep the diag form."""
    rows = {r[1]: r[2] for r in ur.latex(_book_gru(), grad=True).rows}
    assert r"\zeta_{1}^{(t)}" in rows
    text = " ".join(rows.values())
    assert text.count(r"\sigma\left(b + U x^{(t)}") == 1
    assert r"\odot \left(\nabla" not in text


def test_a_circuits_equations_are_evaluated_at_a_length_given():
    c = _book_gru()
    eq = ur.latex(c, grad=True)
    with pytest.raises(ur.InputError, match="pass the sequence input"):
        eq.evaluate(c.init_params(seed=0))


def test_a_product_with_a_backward_quantity_is_written_as_a_jacobian():
    """diag(r) ξ(t): a ξ of the backward pass is a gradient quantity, as ∇h is (the
    printer's rule, checked on terms directly)."""
    from unroll.derive import App, Ref
    from unroll.ops import mul_p
    from unroll.render.equations import _term_text, _When
    r, xi = Ref("value", "r", 0, (3,), True), Ref("aux", "ξ1", 1, (3,), True)
    assert _term_text(_When(), App(mul_p, (xi, r), {}, None, (3,))) == \
        r"\operatorname{diag}\left(r^{(t)}\right) \xi_{1}^{(t+1)}"
