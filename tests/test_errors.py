"""Every kind of bad input gets an unroll.errors exception naming the culprit and the fix."""
import numpy as np
import pytest

import unroll as ur


def elman(D=3, H=4, K=2):
    c = ur.Circuit("elman")
    x = c.input("x", (D,))
    y = c.input("y", (), dtype="int")
    W, U, V = c.param("W", (H, H)), c.param("U", (H, D)), c.param("V", (K, H))
    h = c.state("h", (H,))
    h.next = ur.tanh(W @ h.prev + U @ x)
    o = c.output("o", V @ h)
    c.loss(ur.softmax_cross_entropy(o, y))
    return c


def data(T=3, B=2, D=3, K=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, D)), rng.integers(0, K, size=(T, B))


# --- circuits ---------------------------------------------------------------------------------

def test_algebraic_loop_names_the_cycle_and_suggests_prev():
    c = ur.Circuit("loop")
    x, W = c.input("x", (2,)), c.param("W", (2, 2))
    h = c.state("h", (2,))
    h.next = ur.tanh(W @ h + x)                 # h(t) from h(t): no delay
    with pytest.raises(ur.AlgebraicLoopError) as e:
        c.unroll(steps=3)
    msg = str(e.value)
    assert "h(t) depends on itself at the same step" in msg
    assert "matvec" in msg and "tanh" in msg and "add" in msg
    assert "h.prev" in msg


def test_algebraic_loop_through_two_states():
    c = ur.Circuit("loop2")
    x = c.input("x", (2,))
    h, g = c.state("h", (2,)), c.state("g", (2,))
    h.next = ur.tanh(g + x)
    g.next = ur.sigmoid(h * 2.0)                # g(t) from h(t) from g(t)
    with pytest.raises(ur.AlgebraicLoopError, match=r"depends on itself at the same step"):
        c.check()


def test_forward_and_backward_delays_that_cancel_are_an_algebraic_loop():
    c = ur.Circuit("mixed")
    x = c.input("x", (2,))
    h = c.state("h", (2,))
    g = c.state("g", (2,), direction="backward")
    h.next = ur.tanh(h.prev + g + x)            # h(t) reads g(t), which reads g(t+1) ...
    g.next = ur.tanh(g.prev + h.prev)           # ... and h(t-1): h(t) <- g(t+1) <- h(t)
    with pytest.raises(ur.AlgebraicLoopError, match=r"forward and backward"):
        c.unroll(steps=3)


def test_state_without_update():
    c = ur.Circuit("noupdate")
    c.input("x", (2,))
    h = c.state("h", (2,))
    c.output("o", h * 2.0)
    with pytest.raises(ur.CircuitError, match=r"state h is never given an update: set h.next"):
        c.unroll(steps=2)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_delay_must_be_at_least_one(k):
    c = ur.Circuit("delay")
    h = c.state("h", (2,))
    with pytest.raises(ur.CircuitError, match=r"h.delayed\(.*\): a delay must be an integer k >= 1"):
        h.delayed(k)


@pytest.mark.parametrize("steps", [0, -3, 2.0, "4"])
def test_steps_must_be_a_positive_integer(steps):
    with pytest.raises(ur.CircuitError, match=r"τ must be an integer >= 1"):
        elman().unroll(steps=steps)


def test_shape_mismatch_names_expression_shapes_and_fix():
    c = ur.Circuit("shapes")
    x = c.input("x", (3,))
    W = c.param("W", (4, 5))
    with pytest.raises(ur.ShapeError) as e:
        W @ x
    msg = str(e.value)
    assert "W @ x" in msg and "(4, 5)" in msg and "(3,)" in msg
    assert "declare the matrix with 3 columns, e.g. shape (4, 3)" in msg


def test_elementwise_shape_mismatch():
    c = ur.Circuit("shapes")
    a, b = c.input("a", (3,)), c.input("b", (4,))
    with pytest.raises(ur.ShapeError, match=r"a \(3,\) and b \(4,\) do not broadcast"):
        a + b


def test_next_with_the_wrong_shape():
    c = ur.Circuit("shapes")
    x = c.input("x", (3,))
    h = c.state("h", (4,))
    with pytest.raises(ur.ShapeError, match=r"h.next = .* has shape \(3,\), but state h was "
                                            r"declared with shape \(4,\)"):
        h.next = ur.tanh(x)


def test_loss_must_be_scalar():
    c = ur.Circuit("loss")
    x = c.input("x", (3,))
    with pytest.raises(ur.ShapeError, match=r"a loss must be a scalar; wrap it in ur.sum"):
        c.loss(x * x)


def test_duplicate_and_bad_names():
    c = ur.Circuit("names")
    c.input("x", (3,))
    with pytest.raises(ur.CircuitError, match=r"already has a variable named 'x'"):
        c.param("x", (3,))
    with pytest.raises(ur.CircuitError, match=r"not a valid name"):
        c.param("my param", (3,))
    with pytest.raises(ur.CircuitError, match=r"reserved"):
        c.param("_w", (3,))
    with pytest.raises(KeyError, match=r"did you mean 'x'"):
        c["xx"]


def test_integer_inputs_cannot_enter_arithmetic():
    c = ur.Circuit("ints")
    y = c.input("y", (), dtype="int")
    with pytest.raises(ur.DTypeError, match=r"y is an integer input"):
        y * 2.0


def test_loss_steps_out_of_range():
    c = elman()
    c.losses.clear()
    c.loss(ur.sum(c["o"] * c["o"]), at=[1, 7], name="Lx")
    with pytest.raises(ur.CircuitError, match=r"step\(s\) \[7\].*τ = 3"):
        c.unroll(steps=3)


# --- parameters -------------------------------------------------------------------------------

def test_missing_parameter():
    c = elman()
    g = c.unroll(steps=3)
    p = c.init_params()
    del p["U"]
    x, y = data()
    with pytest.raises(ur.ParamError, match=r"missing parameter U of shape \(4, 3\)"):
        g.run(p, x=x, y=y)


def test_misspelled_parameter():
    c = elman()
    g = c.unroll(steps=3)
    p = c.init_params()
    p["Ww"] = p.pop("W")
    with pytest.raises(ur.ParamError, match=r"missing parameter W"):
        g.run(p, x=data()[0], y=data()[1])
    p["W"] = p["Ww"]
    with pytest.raises(ur.ParamError, match=r"unknown parameter 'Ww'; did you mean 'W'"):
        g.run(p, x=data()[0], y=data()[1])


def test_ill_shaped_parameter():
    c = elman()
    g = c.unroll(steps=3)
    p = c.init_params()
    p["W"] = np.zeros((4, 5))
    with pytest.raises(ur.ParamError, match=r"parameter W has shape \(4, 5\), but the circuit "
                                            r"declares \(4, 4\)"):
        g.run(p, x=data()[0], y=data()[1])


def test_parameter_dtypes():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    p = c.init_params()
    p["W"] = p["W"].astype(np.float32)
    with pytest.raises(ur.DTypeError, match=r"parameters mix precisions"):
        g.run(p, x=x, y=y)
    p["W"] = np.zeros((4, 4), dtype=np.int64)
    with pytest.raises(ur.DTypeError, match=r"parameter W has dtype int64"):
        g.run(p, x=x, y=y)


# --- inputs -----------------------------------------------------------------------------------

def test_missing_input():
    g = elman().unroll(steps=3)
    with pytest.raises(ur.InputError, match=r"missing input y: expected an array of shape "
                                            r"\(T=3, B\) of ints"):
        g.run(elman().init_params(), x=data()[0])


def test_extra_and_misspelled_inputs():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    with pytest.raises(ur.InputError, match=r"unknown input 'xx'; did you mean 'x'"):
        g.run(c.init_params(), x=x, y=y, xx=x)
    with pytest.raises(ur.InputError, match=r"unknown input 'W' \(it is a parameter"):
        g.run(c.init_params(), x=x, y=y, W=x)


def test_ill_shaped_input():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data(D=5)
    with pytest.raises(ur.InputError, match=r"input x has per-step shape \(5,\), but the "
                                            r"circuit declares \(3,\)"):
        g.run(c.init_params(), x=x, y=y)
    with pytest.raises(ur.InputError, match=r"input x has shape \(3, 2, 2, 3\)"):
        g.run(c.init_params(), x=np.zeros((3, 2, 2, 3)), y=y)


def test_sequence_length_differs_from_steps():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data(T=5)
    with pytest.raises(ur.InputError, match=r"input x has 5 steps, but the graph was unrolled "
                                            r"for τ = 3; unroll again with steps=5"):
        g.run(c.init_params(), x=x, y=y)


def test_batch_axes_must_agree():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data(B=2)
    with pytest.raises(ur.InputError, match=r"has a batch axis but input .* does not"):
        g.run(c.init_params(), x=x, y=y[:, 0])
    with pytest.raises(ur.InputError, match=r"batch size 3, but input x has 2"):
        g.run(c.init_params(), x=x, y=np.zeros((3, 3), dtype=int))
    # an empty batch would average nothing: a NaN loss, silently
    with pytest.raises(ur.InputError, match=r"input x has an empty batch \(B = 0, shape "
                                            r"\(4, 0, 3\)\); pass at least one sequence"):
        g.value_and_grad(c.init_params(), x=np.zeros((4, 0, 3)), y=np.zeros((4, 0), int))


def test_integer_targets_out_of_range():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    y[1, 1] = 7
    with pytest.raises(ur.InputError, match=r"input y = 7 at step t = 2, batch entry 1 is not "
                                            r"a class index.*2 classes \(0..1\)"):
        g.run(c.init_params(), x=x, y=y)
    y[1, 1] = -1
    with pytest.raises(ur.InputError, match=r"input y = -1"):
        g.value_and_grad(c.init_params(), x=x, y=y)


def test_input_dtypes():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    with pytest.raises(ur.DTypeError, match=r"input y holds class indices and must be an "
                                            r"integer array"):
        g.run(c.init_params(), x=x, y=y.astype(float))
    with pytest.raises(ur.DTypeError, match=r"input x must be a float array, not int64"):
        g.run(c.init_params(), x=x.astype(np.int64), y=y)
    with pytest.raises(ur.DTypeError, match=r"input x is float32 but the parameters are float64"):
        g.run(c.init_params(), x=x.astype(np.float32), y=y)
    with pytest.raises(ur.InputError, match=r"input x is a list"):
        g.run(c.init_params(), x=x.tolist(), y=y)


def test_nan_in_inputs_is_located():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    x[2, 1, 0] = np.nan
    with pytest.raises(ur.NonFiniteError, match=r"input x contains a NaN or Inf at step t = 3, "
                                                r"batch entry 1"):
        g.run(c.init_params(), x=x, y=y)


def test_nan_in_parameters_is_located():
    c = elman()
    g = c.unroll(steps=3)
    p = c.init_params()
    p["V"][1, 2] = np.inf
    with pytest.raises(ur.NonFiniteError, match=r"parameter V contains a NaN or Inf at entry "
                                                r"\(1, 2\)"):
        g.run(p, x=data()[0], y=data()[1])


def test_check_finite_names_the_first_node_and_step():
    c = ur.Circuit("blowup")
    x, w = c.input("x", ()), c.param("w", ())
    h = c.state("h", ())
    h.next = ur.exp(w * h.prev) + x                # explodes after a few steps
    c.loss(h * 1.0)
    g = c.unroll(steps=8)
    p = {"w": np.array(5.0)}
    xs = np.ones(8)
    with np.errstate(over="ignore", invalid="ignore"):
        loss, _ = g.value_and_grad(p, x=xs)          # no check: the Inf comes back silently
        assert not np.isfinite(loss)
        with pytest.raises(ur.NonFiniteError) as e:
            g.value_and_grad(p, x=xs, check_finite=True)
    msg = str(e.value)
    assert "first NaN/Inf" in msg and "exp(" in msg and "at step t = 3" in msg
    assert "clip gradients" in msg


def test_wrt_names_are_checked():
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    with pytest.raises(ur.InputError, match=r"wrt: 'WW' is neither a parameter nor an input; "
                                            r"did you mean 'W'"):
        g.value_and_grad(c.init_params(), x=x, y=y, wrt=["WW"])
    with pytest.raises(ur.InputError, match=r"wrt: y is an integer input"):
        g.value_and_grad(c.init_params(), x=x, y=y, wrt=["y"])


def test_no_loss_to_differentiate():
    c = ur.Circuit("noloss")
    x = c.input("x", (2,))
    h = c.state("h", (2,))
    h.next = ur.tanh(h.prev + x)
    g = c.unroll(steps=2)
    with pytest.raises(ur.UnrollError, match=r"no loss to differentiate; add c.loss"):
        g.value_and_grad({}, x=np.zeros((2, 2)))
    with pytest.raises(ur.UnrollError, match="no output and no loss.*return_state=True"):
        g.run({}, x=np.ones((2, 2)))             # nothing to return either
    assert g.run({}, x=np.ones((2, 2)), return_state=True)["state"]["h"].shape == (2,)
    with pytest.raises(ur.CircuitError, match="nothing to unroll"):
        ur.Circuit("empty").unroll(steps=2)


def test_errors_never_leak_numpy_tracebacks():
    """Each user mistake above is one of ours (a sample, all through the public API)."""
    c = elman()
    g = c.unroll(steps=3)
    x, y = data()
    bad_calls = [
        lambda: g.run(c.init_params(), x=x[:, :, :2], y=y),
        lambda: g.run({}, x=x, y=y),
        lambda: g.run(c.init_params(), x=x, y=y + 5),
        lambda: g.run(c.init_params(), x=x[:2], y=y[:2]),
    ]
    for call in bad_calls:
        with pytest.raises(ur.UnrollError):
            call()
