"""The compiler: passes that keep meaning, and re-rolled, readable programs."""
import re

import numpy as np
import pytest

import unroll as ur
from builders import elman
from unroll import backends
from unroll.compile import compile_graph
from unroll.compile.lower import Lowering, _lifetimes
from unroll.compile.passes import cse, dce, hoist




def test_forward_program_is_one_loop_over_the_recurrence():
    g = elman().unroll(steps=50)
    prog = g.program()
    src = str(prog)
    assert src.count("for t in range(") == 1
    assert "for t in range(1, 51, 1):  # t = 1..50" in src
    assert "h_[t, ...] = xp.tanh(a)  # h[t] = tanh(a[t])" in src
    # the product by the shared W runs on a contiguous copy of Wᵀ, made once before the loop
    assert "(h_[t - 1, ...] @ WT_c)  # _1[t] = W @ h[t-1]" in src
    assert src.index("    WT_c = xp.transposed(W)  # Wᵀ, contiguous") < \
        src.index("    for t in range(1, 51, 1)")
    # state-independent work is done for all steps at once, before and after the loop
    assert "v3_ = matvec_fn(xp, U, x_[0:50, ...])  # _3[t] = U @ x[t]" in src
    assert "v4_ = matvec_fn(xp, V, h_[1:51, ...])  # _4[t] = V @ h[t]" in src
    assert "SL = SL + xp.sum(L_[0:50, ...], axis=0)  # ΣL[50] = ΣL[0] + Σ_t L[t]" in src
    assert "return (o_[0:50, ...], L,)" in src
    assert len(src.splitlines()) < 40            # the body once, not 50 times
    # the bias joins the input projection (b + W h + U x: (b + U x) + W h), which dies
    # after its last use: b + U x when made, b + U x after the loop
    assert "v2_ = add_fn(xp, b, v3_[0:50, ...])  # _2[t] = b + _3[t]" in src
    assert "a = (v2_[t - 1, ...] + v1)  # a[t] = _2[t] + _1[t]" in src
    lines = src.splitlines()
    assert lines.index("    del v3_") == lines.index("    v2_ = add_fn(xp, b, v3_[0:50, ...])  "
                                                     "# _2[t] = b + _3[t]") + 1
    assert lines.index("    del v2_") == lines.index("        h_[t, ...] = xp.tanh(a)  "
                                                     "# h[t] = tanh(a[t])") + 1
    assert prog.stats["loops"] == 1 and prog.stats["stacked"] == 2


def test_backward_loop_keeps_only_the_recurrence():
    g = elman().unroll(steps=30)
    prog = g.program(grad=True)
    src = str(prog).splitlines()
    start = src.index("    for t in range(29, 1, -1):  # t = 29..2")
    body = [ln for ln in src[start + 1:] if ln.startswith("        ")]
    # eq. 10.21-10.22, one equation each: tanh's VJP from the stored h[t] is one equation
    assert [ln.split("  # ")[1] for ln in body] == [
        "∂h[t] = ∂_1.2[t+1] + ∂_4.2[t]", "∂a[t] = ∂h[t] * (1 - h[t]²)", "∂_1.2[t] = Wᵀ @ ∂a[t]"]
    text = "\n".join(src)
    # the weight gradients: one product over all steps and batch rows each (eq. 10.26)
    assert "Sd_W = Sd_W + outer_fn(xp, d_a_[1:29, ...], h_[1:29, ...])" in text
    assert "Σ∂W[2] = Σ∂W[30] + Σ_t ∂a[t] ⊗ h[t-1]" in text
    assert text.count("xp.matrix_transpose(W)") == 1


def test_elementwise_work_only_the_loop_reads_stays_in_the_loop():
    # 2 z(t) is elementwise work that only the recurrence reads: stacked, it would be one more
    # (T, B, H) array written and read back, so it stays in the loop. Adding b to the stacked
    # product U x(t) is the exception: one add over all steps instead of one per step
    c = ur.Circuit("biased")
    x, z = c.input("x", (3,)), c.input("z", (4,))
    U, W, b = c.param("U", (4, 3)), c.param("W", (4, 4)), c.param("b", (4,))
    h = c.state("h", (4,))
    h.next = ur.tanh(W @ h.prev + (U @ x + b).named("ux") + (2.0 * z).named("z2"))
    c.loss(ur.sum(h * h))
    src = str(c.unroll(steps=6).program()).splitlines()
    loop = src.index("    for t in range(1, 7, 1):  # t = 1..6")
    assert any("matvec_fn(xp, U, x_[0:6, ...])" in ln for ln in src[:loop])
    assert any(ln.endswith("# ux[t] = _2[t] + b") and ln.startswith("    ux_ = add_fn(xp, ")
               for ln in src[:loop])
    assert any(ln.endswith("# z2[t] = 2 * z[t]") and ln.startswith("        ")
               for ln in src[loop:])


def test_without_time_batching_everything_stays_in_the_loops():
    c = elman()
    g = c.unroll(steps=12)
    gg = ur.grad(g)
    items = [gg.loss] + list(gg.grads.values())
    a = compile_graph(gg, items, time_batching=True)
    b = compile_graph(gg, items, time_batching=False)
    assert a.stats["stacked"] > 0 and b.stats["stacked"] == 0
    xp = backends.get(np, np.float64)
    rng = np.random.default_rng(3)
    p = c.init_params(seed=2)
    arrays = {"x": rng.standard_normal((12, 3, 3)), "y": rng.integers(0, 3, (12, 3)),
              "h0": np.zeros((3, 4))}
    for u, v in zip(a(xp, p, arrays), b(xp, p, arrays)):
        assert np.allclose(u, v, rtol=1e-13, atol=1e-15)


def test_programs_and_interpreter_agree_including_unbatched():
    c = elman()
    g = c.unroll(steps=7)
    p = c.init_params(seed=1)
    rng = np.random.default_rng(0)
    for x, y in [(rng.standard_normal((7, 3, 3)), rng.integers(0, 3, (7, 3))),
                 (rng.standard_normal((7, 3)), rng.integers(0, 3, 7))]:
        a = g.value_and_grad(p, x=x, y=y)
        b = g.value_and_grad(p, x=x, y=y, executor="interpret")
        assert np.isclose(float(a[0]), float(b[0]), rtol=1e-14)
        for k in p:           # sums over steps are done in another order: round-off only
            assert np.allclose(a[1][k], b[1][k], rtol=1e-13, atol=1e-15)


def test_passes_keep_meaning():
    c = ur.Circuit("dup")
    x = c.input("x", (2,))
    W = c.param("W", (2, 2))
    h = c.state("h", (2,))
    h.next = ur.tanh(W @ h.prev + x) + ur.tanh(W @ h.prev + x)    # the same work twice
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=4)
    gg = ur.grad(g)
    results = [gg.loss, gg.grads["W"]]
    eqns = dce(gg.eqns, results)
    merged, res = cse(eqns, results)
    assert len(merged) < len(eqns)
    pro, rest = hoist(merged, gg.inputs())
    early = {id(v) for v in gg.inputs()} | {id(v) for e in pro for v in e.outs}
    for e in pro:            # hoisted work reads graph inputs and other hoisted work only,
        vals = [x for x in e.inputs if isinstance(x, ur.Value)]
        assert all(id(x) in early for x in vals)
        if e.step is not None:              # and per-step work only loop invariants
            assert all(x.t is None for x in vals)
    prog = compile_graph(gg, results)
    p = {"W": np.array([[0.3, -0.2], [0.1, 0.5]])}
    xs = np.random.default_rng(1).standard_normal((4, 2))
    loss, dW = prog(backends.get(np, np.float64), p, {"x": xs[:, None], "h0": np.zeros((1, 2))})
    ref = gg.evaluate(p, results, x=xs)
    assert np.isclose(loss, ref[gg.loss]) and np.allclose(dW, ref[gg.grads["W"]])


def test_program_repr():
    g = elman().unroll(steps=3)
    assert repr(g.program()).startswith("<Program elman_forward:")


def test_dead_stacked_arrays_are_recycled_only_when_nothing_shares_their_memory():
    # the Elman backward pass: the input projection b + U x(t), dead after the forward loop,
    # lends its (T, B, H) array to the stacked ∂a(t); the results stay those of the
    # interpreter
    c = elman()
    g = c.unroll(steps=9)
    lines = str(g.program(grad=True)).splitlines()
    assert "    d_a_ = v2_" in lines and "    del v2_" in lines
    assert not any(ln.strip().startswith("d_a_ = xp.empty") for ln in lines)
    p = c.init_params(seed=4)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((9, 2, 3)), rng.integers(0, 3, (9, 2))
    a = g.value_and_grad(p, x=x, y=y)
    b = g.value_and_grad(p, x=x, y=y, executor="interpret")
    for k in p:
        assert np.allclose(a[1][k], b[1][k], rtol=1e-13, atol=1e-15)

    # a stacked value read by a view (u[:4] of U x(t)) shares its memory: never recycled
    c = ur.Circuit("sliced")
    x = c.input("x", (3,))
    U, W = c.param("U", (8, 3)), c.param("W", (4, 4))
    h = c.state("h", (4,))
    u = (U @ x).named("u")
    h.next = ur.tanh(W @ h.prev + u[:4])
    c.loss(ur.sum(h * h))
    gg = ur.grad(c.unroll(steps=5), tuple(c.param_shapes()))
    items = [gg.loss] + list(gg.grads.values())
    eqns = dce(gg.eqns, items)
    pro, rest = hoist(eqns, gg.inputs())
    low = Lowering(gg, pro, rest, items)
    u_stack = {low.kind[v][1] for v in low.kind if getattr(v, "name", "") == "u"}
    assert u_stack and u_stack <= set(low.layouts) and not u_stack & low.recyclable


def test_recycling_follows_liveness():
    code = ["a_ = f(x)", "b = g(a_)", "c_[0] = b", "z = k(c_)", "d_[0] = z", "e_[0] = d_[0]",
            "y = h(e_)"]
    allocs = {v: f"{v} = xp.empty(L)" for v in ("c_", "d_", "e_")}
    layouts = {v: "L" for v in ("a_", "c_", "d_", "e_")}
    stored = {"a_", "c_", "d_", "e_"}
    out = _lifetimes(code, allocs, stored, {"y"}, layouts, {"a_", "c_", "d_"})
    # a_ dies after its last reader and lends its memory to c_, c_ to d_; d_ is still
    # alive when e_ is born: e_ gets new memory
    assert out == ["a_ = f(x)", "b = g(a_)", "c_ = a_", "del a_", "c_[0] = b", "z = k(c_)",
                   "d_ = c_", "del c_", "d_[0] = z", "e_ = xp.empty(L)", "e_[0] = d_[0]",
                   "del d_", "y = h(e_)", "del e_"]
    # nothing recyclable (something shares their memory): allocated and freed as usual
    out = _lifetimes(code, allocs, stored, {"y"}, layouts, set())
    assert out == ["a_ = f(x)", "b = g(a_)", "del a_", "c_ = xp.empty(L)", "c_[0] = b",
                   "z = k(c_)", "del c_", "d_ = xp.empty(L)", "d_[0] = z", "e_ = xp.empty(L)",
                   "e_[0] = d_[0]", "del d_", "y = h(e_)", "del e_"]


def test_same_body_tells_apart_every_difference_between_two_steps():
    """Loop finding compares neighbouring chunks; each way two steps can differ must make
    them different bodies (equal bodies shifted by one step are the same)."""
    from unroll.compile.reroll import Chunk, same_body
    from unroll.core import PRIMITIVES, Aval, Lit
    from unroll.ir import Eqn, Value
    F, FU = Aval((2,), "float", True), Aval((2,), "float", False)
    W = Value("W", None, Aval((2, 2), "float", False), "param")
    add, mul, tanh = PRIMITIVES["add"], PRIMITIVES["mul"], PRIMITIVES["tanh"]

    def chunk(t, prim=add, other=None, outname="h", out_t=0, params=None, second=None,
              extra_in=False, extra_out=False, aval=F, name="x", shift=1):
        x = Value(name, t - shift, aval)
        a = Value("a", t, F)
        ins = (x, other if other is not None else Value("y", t, F)) + ((x,) if extra_in else ())
        e1 = Eqn(prim, ins, params if params is not None else {}, (a,), t)
        outs = (Value(outname, None if out_t is None else t + out_t, F),)
        if extra_out:
            outs += (Value("z", t, F),)
        e2 = Eqn(tanh, (second if second is not None else a,), {}, outs, t)
        return Chunk(t, [e1, e2])

    base = chunk(3)
    assert same_body(chunk(2), base, None)
    lit2 = Lit(2.0)
    for what, other in [
            ("a primitive", chunk(2, prim=mul)),
            ("a parameter value", chunk(2, params={"k": 1})),
            ("an operand count", chunk(2, extra_in=True)),
            ("a result count", chunk(2, extra_out=True)),
            ("a constant for a value", chunk(2, other=lit2)),
            ("a value computed once", chunk(2, other=W)),
            ("a step offset", chunk(2, shift=2)),
            ("batchedness", chunk(2, aval=FU)),
            ("an operand's name", chunk(2, name="u")),
            ("a result's name", chunk(2, outname="g")),
            ("a result computed once", chunk(2, out_t=None)),
            ("a result's step", chunk(2, out_t=1)),
            ("a local operand for an outside one", chunk(2, second=Value("a", 2, F)))]:
        assert not same_body(other, base, None), what
    assert not same_body(chunk(2, other=Lit(3.0)), chunk(3, other=lit2), None)
    assert same_body(chunk(2, other=Lit(2.0)), chunk(3, other=lit2), None)
    p = {"k": 1}
    assert same_body(chunk(2, params=p), chunk(3, params=dict(p)), None)
    assert not same_body(chunk(2, params={"k": 1}), chunk(3, params={"k": 2}), None)


def test_any_value_can_be_a_result_of_a_program():
    """The compiler folds running sums into one sum after the loop when nobody reads their
    intermediate values; asked for one of those values, it must keep the running sum."""
    g = elman().unroll(steps=5)
    gg = ur.grad(g)
    acc = [e.outs[0] for e in g.eqns if e.prim.accumulates]            # ΣL[1..5]
    dW = [e.outs[0] for e in gg.eqns if e.outs[0].name == "Σ∂W"]
    rng = np.random.default_rng(0)
    p = {k: rng.standard_normal(v.shape) * 0.5 for k, v in g.params.items()}
    x, y = rng.standard_normal((5, 2, 3)), rng.integers(0, 2, (5, 2))
    bound = ur.runtime.bind_arguments(gg, p, {"x": x, "y": y})
    for items in ([acc[2], g.loss], [dW[1], dW[-1]]):
        prog = compile_graph(gg, items)
        got = prog(bound.xp, bound.params, bound.arrays)
        want = gg.evaluate(p, items, x=x, y=y)
        for v, a in zip(items, got):
            assert np.allclose(a, want[v], rtol=1e-13, atol=1e-15), v


def test_a_multi_output_operation_with_one_result_in_the_compiled_program():
    """ur.split(x, 1) is a multi-output operation with one result: the program unpacks a
    tuple of one (``v, = ...``)."""
    c = ur.Circuit("one_piece")
    x = c.input("x", (3,))
    h = c.state("h", (3,))
    (part,) = ur.split(ur.tanh(h.prev) + x, 1)          # in the loop: it reads h(t-1)
    h.next = ur.tanh(c.param("W", (3, 3)) @ part)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    p = {"W": np.eye(3) * 0.5}
    xs = np.random.default_rng(0).standard_normal((3, 2, 3))
    la, ga = g.value_and_grad(p, x=xs)
    lb, gb = g.value_and_grad(p, x=xs, executor="interpret")
    assert np.isclose(float(la), float(lb), rtol=1e-13)
    assert np.allclose(ga["W"], gb["W"], rtol=1e-13)


def test_a_code_target_plugs_in_its_templates_and_its_loops():
    """The seam for another code target: its primitive templates, its loop code and its
    globals reach the program, which agrees with the default target and the interpreter;
    each target's program is compiled and cached on its own."""
    from test_differential import kernel_target
    c = ur.models.elman(3, 4, 2)
    g = c.unroll(steps=6)
    p = c.init_params(seed=0)
    rng = np.random.default_rng(0)
    data = dict(x=rng.standard_normal((6, 2, 3)), y=rng.integers(0, 2, size=(6, 2)))
    ref = g.value_and_grad(p, executor="interpret", **data)
    g.value_and_grad(p, **data)
    with kernel_target() as names:
        assert "test_kernel" in names
        loss, grads = g.value_and_grad(p, executor="test_kernel", **data)
        cache = ur.grad(g)._cache
        src = cache[("program", "grad", "test_kernel")].source
        assert "for t in _k_steps(" in src and "_k_tanh(xp, " in src and "_k_matvec(" in src
        assert "_k_" not in cache[("program", "grad")].source
    assert np.isclose(loss, ref[0], rtol=1e-13)
    for k in grads:
        assert np.allclose(grads[k], ref[1][k], rtol=1e-12, atol=1e-14), k
    with pytest.raises(ur.UnrollError, match="executor must be one of 'compiled', 'interpret'"):
        g.value_and_grad(p, executor="test_kernel", **data)      # unregistered again


def test_a_one_piece_split_of_the_state_inside_the_loop():
    """A multi-output primitive with one result in the loop body is unpacked as a tuple of
    one (``a, = split(...)``): its value is the piece, not the tuple."""
    c = ur.Circuit("one_piece")
    x = c.input("x", (3,))
    h = c.state("h", (3,))
    (a,) = ur.split(h.prev, 1)
    h.next = ur.tanh(a * 0.5 + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=4)
    xs = np.linspace(-1, 1, 12).reshape(4, 3)
    assert "for t in range(" in g.program().source and "split" in g.program().source
    ref = g.value_and_grad({}, wrt=["x"], executor="interpret", x=xs)
    got = g.value_and_grad({}, wrt=["x"], x=xs)
    assert np.isclose(got[0], ref[0]) and np.allclose(got[1]["x"], ref[1]["x"])


def test_stacked_arrays_are_kept_for_the_next_call_and_results_stay_the_callers():
    """A program keeps the arrays over all steps it allocates (no fresh pages to fault in on
    every call); what it returns is never one of them, so an earlier call's results do not
    change, and a new batch size or dtype allocates again."""
    c = elman()
    g = c.unroll(steps=7)
    p = c.init_params(seed=1)
    rng = np.random.default_rng(0)
    prog = g.program(grad=True)
    assert "_ws.empty(xp, " in prog.source
    seen, kept = [], None
    for B, dtype in [(3, None), (3, None), (5, None), (5, "float32")]:
        x, y = rng.standard_normal((7, B, 3)), rng.integers(0, 3, (7, B))
        q = p
        if dtype is not None:                           # the arrays give the dtype
            x, q = x.astype(dtype), {k: v.astype(dtype) for k, v in p.items()}
        loss, grads = g.value_and_grad(q, x=x, y=y)
        o = g.run(q, x=x, outputs=["o"])["o"]
        want = g.value_and_grad(q, x=x, y=y, executor="interpret")
        tol = dict(rtol=1e-12, atol=1e-14) if dtype is None else dict(rtol=1e-5, atol=1e-6)
        assert np.allclose(loss, want[0], **tol)
        for k in p:
            assert np.allclose(grads[k], want[1][k], **tol), k
        seen.append((loss, grads, o, (np.copy(loss), {k: v.copy() for k, v in grads.items()},
                                      o.copy())))
        slots = {k: a for k, (_, a, _) in prog.workspace._slots().items()}
        assert slots
        if B == 3 and kept is not None:                 # the same arrays, the same batch
            assert all(slots[k] is kept[k] for k in kept)
        kept = slots
    for loss, grads, o, (loss0, grads0, o0) in seen:    # later calls changed none of them
        assert np.array_equal(loss, loss0) and np.array_equal(o, o0)
        assert all(np.array_equal(grads[k], grads0[k]) for k in grads)


def test_a_workspace_slot_is_per_thread_and_given_up_when_a_result_views_it():
    import threading
    from unroll.compile.program import Program, Workspace
    xp, xp32 = backends.get(np, np.float64), backends.get(np, np.float32)
    ws = Workspace()
    a = ws.empty(xp, 0, (3, 2))
    assert ws.empty(xp, 0, (3, 2)) is a and ws.empty(xp, 1, (3, 2)) is not a
    assert ws.empty(xp, 0, (4, 2)).shape == (4, 2)
    b = ws.empty(xp32, 0, (4, 2))
    assert b.dtype == np.float32 and ws.empty(xp32, 0, (4, 2)) is b
    other = []
    t = threading.Thread(target=lambda: other.append(ws.empty(xp32, 0, (4, 2))))
    t.start()
    t.join()
    assert other[0] is not b
    ws.release((None, b[1:, ::2]))
    assert ws.empty(xp32, 0, (4, 2)) is not b
    c = ws.empty(xp32, 0, (4, 2))           # a view whose owner is no array (numba's are not)
    ws.release((np.frombuffer(memoryview(c), dtype=np.float32),))
    assert ws.empty(xp32, 0, (4, 2)) is not c
    assert ws.held == 3 * 2 * 8 + 4 * 2 * 4                  # slot 1 (float64), slot 0
    ws.LIMIT = ws.held + 10 * 8                          # room for 10 more: kept up to it
    big = ws.empty(xp, 2, (11,))
    assert ws.empty(xp, 2, (11,)) is not big and ws.empty(xp, 3, (10,)) is ws.empty(xp, 3, (10,))
    ws.clear()
    assert ws.held == 0
    # a program returning (a view of) a kept array gives it up: the next call's result is
    # a new array, the first one stays the caller's
    prog = Program("f", "def f(xp, P, A):\n    a = _ws.empty(xp, 0, (2,))\n"
                        "    a[...] = A['x']\n    return (a[1:],)\n", {}, {})
    r1, = prog(xp, {}, {"x": np.array([1.0, 2.0])})
    r2, = prog(xp, {}, {"x": np.array([3.0, 4.0])})
    assert r1[0] == 2.0 and r2[0] == 4.0 and not np.shares_memory(r1, r2)


def _forward_loop(src: str) -> list:
    body = src.split("for t in range(1, ", 1)[1].split("\n")[1:]
    return [ln for ln in body[:next(i for i, ln in enumerate(body)
                                    if not ln.startswith("        "))]]


@pytest.mark.parametrize("order", ["Ux + Wh + b", "b + (Ux + Wh)", "Wh + Ux + b", "b + Wh + Ux"])
def test_a_bias_after_the_recurrence_joins_the_stacked_input_projection(order):
    """tanh(U x + W h + b): b is added to the stacked U x once, for all steps, and the loop
    makes one call fewer per step (a reassociation: equal up to round-off)."""
    c = ur.Circuit("biased")
    x, y = c.input("x", (3,)), c.input("y", (2,))
    h = c.state("h", (8,))
    U, W, b = c.param("U", (8, 3)), c.param("W", (8, 8)), c.param("b", (8,))
    ux, wh = U @ x, W @ h.prev
    h.next = ur.tanh({"Ux + Wh + b": lambda: ux + wh + b, "b + (Ux + Wh)": lambda: b + (ux + wh),
                      "Wh + Ux + b": lambda: wh + ux + b, "b + Wh + Ux": lambda: b + wh + ux,
                      }[order]())
    c.loss(ur.sum((c.param("V", (2, 8)) @ h - y) ** 2))
    g = c.unroll(steps=6)
    src = g.program(grad=True).source
    loop = _forward_loop(src)
    assert len(loop) == 3 and not any(" b)" in ln or "+ b" in ln for ln in loop), loop
    assert re.search(r"add_fn\(xp, (v\d+_\[0:6, \.\.\.\], b|b, v\d+_\[0:6, \.\.\.\])\)", src)
    p = c.init_params(seed=2)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 4, 2))
    got, want = g.value_and_grad(p, x=x, y=y), g.value_and_grad(p, x=x, y=y, executor="interpret")
    assert np.isclose(got[0], want[0], rtol=1e-13)
    for k in p:
        assert np.allclose(got[1][k], want[1][k], rtol=1e-12, atol=1e-14), k


def test_two_biases_are_summed_once_and_added_to_the_stacked_projection():
    """An LSTM written as PyTorch has it, U x + b_ih + W h + b_hh: one sum of the two biases
    (done once), one stacked add, and the loop adds only the product W h."""
    c = ur.Circuit("lstm")
    x, y = c.input("x", (3,)), c.input("y", (2,))
    h, cell = c.state("h", (4,)), c.state("cell", (4,))
    U, W = c.param("U", (16, 3)), c.param("W", (16, 4))
    b_ih, b_hh = c.param("b_ih", (16,)), c.param("b_hh", (16,))
    i, f, g_, o = ur.split(U @ x + b_ih + W @ h.prev + b_hh, 4)
    cell.next = ur.sigmoid(f) * cell.prev + ur.sigmoid(i) * ur.tanh(g_)
    h.next = ur.sigmoid(o) * ur.tanh(cell)
    c.loss(ur.sum((c.param("V", (2, 4)) @ h - y) ** 2))
    g = c.unroll(steps=6)
    src = g.program(grad=True).source
    assert src.count("(b_ih + b_hh)") == 1 and "add_fn(xp, v1_[0:6, ...], b_ih_b_hh)" in src
    assert sum(" + " in ln.split("  #")[0] for ln in _forward_loop(src)) == 2  # W h, cell
    p = c.init_params(seed=2)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 4, 2))
    got, want = g.value_and_grad(p, x=x, y=y), g.value_and_grad(p, x=x, y=y, executor="interpret")
    for k in p:
        assert np.allclose(got[1][k], want[1][k], rtol=1e-12, atol=1e-14), k


def _lstm(H, D=3, K=2):
    c = ur.Circuit("lstm")
    x, y = c.input("x", (D,)), c.input("y", (K,))
    h, cell = c.state("h", (H,)), c.state("cell", (H,))
    U, W, b = c.param("U", (4 * H, D)), c.param("W", (4 * H, H)), c.param("b", (4 * H,))
    i, f, g_, o = ur.split(U @ x + W @ h.prev + b, 4)
    cell.next = ur.sigmoid(f) * cell.prev + ur.sigmoid(i) * ur.tanh(g_)
    h.next = ur.sigmoid(o) * ur.tanh(cell)
    o = c.output("o", c.param("V", (K, H)) @ h)
    c.loss(ur.sum((o - y) ** 2))
    return c


def test_large_stacked_work_is_done_chunk_by_chunk():
    """4H = 256 gate pre-activations per step: the input projection and the gates'
    cotangents, which only their own step reads, live in arrays over one chunk of 64 steps,
    not over all τ (the weight gradients add up chunk by chunk); the results are the
    interpreter's for τ = 150 (chunks of steps 1-64, 65-128, 129-150; the backward loop's,
    149-2, aligned with them: 149-129, 128-65, 64-2)."""
    from unroll.compile import target as targets
    c = _lstm(64)
    g = c.unroll(steps=150)
    gg = ur.grad(g)
    prog = g.program(grad=True)
    src = prog.source
    assert src.count("in chunks of 64 steps") == 2                   # forward, backward
    assert "for _j in range((1 - 1) // 64, (150 - 1) // 64 + 1):" in src
    assert "for _j in range((149 - 1) // 64, (2 - 1) // 64 - 1, -1):" in src
    assert "(64, B, 256)" in src and "(150, B, 256)" not in src and "(149, B, 256)" not in src

    class Whole(targets.Target):
        name, chunk_steps = "test_whole", None
    targets.register(Whole())
    try:
        whole = compile_graph(gg, [gg.loss] + list(gg.grads.values()), target="test_whole")
    finally:
        del targets.TARGETS["test_whole"]
    assert "in chunks" not in whole.source
    assert prog.stats["stored"][0] < whole.stats["stored"][0] - 150 * 256   # per example
    p = c.init_params(seed=3)
    rng = np.random.default_rng(0)
    for B in (1, 3):
        x, y = rng.standard_normal((150, B, 3)), rng.standard_normal((150, B, 2))
        got = g.value_and_grad(p, x=x, y=y)
        want = g.value_and_grad(p, x=x, y=y, executor="interpret")
        assert np.isclose(got[0], want[0], rtol=1e-12)
        for k in p:
            assert np.allclose(got[1][k], want[1][k], rtol=1e-11, atol=1e-13), k
        assert np.allclose(g.run(p, x=x, outputs=["o"])["o"],
                           g.run(p, x=x, outputs=["o"], executor="interpret")["o"], rtol=1e-12)


def test_an_operand_read_for_its_shape_is_read_from_its_elementwise_source():
    """∂ of Σ (o - y)² broadcasts a cotangent "like (o - y)²": only the shape is read, and
    o - y has it; reading that instead, nothing keeps (o - y)² of every step alive for the
    backward pass (o - y it keeps anyway, for 2 (o - y))."""
    from unroll.compile.passes import shape_donors
    g = _lstm(4).unroll(steps=5)
    gg = ur.grad(g)
    like = [e for e in gg.eqns if e.prim.name == "broadcast_like"]
    made = {v: e for e in gg.eqns for v in e.outs}
    assert any(made[e.inputs[1]].prim.name == "pow" for e in like if e.inputs[1] in made)
    eqns, _ = shape_donors(list(gg.eqns), [])
    after = [e for e in eqns if e.prim.name == "broadcast_like"]
    assert not any(made[e.inputs[1]].prim.name == "pow" for e in after if e.inputs[1] in made)
    assert [e.inputs[0] for e in after] == [e.inputs[0] for e in like]
    src = _lstm(64).unroll(steps=150).program(grad=True).source
    squares = [ln.split(" = ")[0].split("[")[0].strip() for ln in src.splitlines()
               if "pow_fn(" in ln]
    assert squares and all(f"{v}[" not in src.split("mean_batch_fn")[1] for v in squares)


@pytest.mark.parametrize("k", [2, 5, 16, 40])
def test_checkpointing_on_the_compiled_program_recomputes_the_forward_chunks(k):
    """checkpoint=k on the compiled program: the gates the backward loop reads are kept in k
    slots (step t in slot (t - 1) % k), and each backward chunk first recomputes its forward
    chunk with the forward loop's own code; the gradients are bitwise those of the same
    program run stored with chunks of k steps, and the interpreter's to round-off."""
    from unroll.ir import _grad_items
    c = _lstm(4)
    g = c.unroll(steps=37)
    gg = ur.grad(g)
    items = _grad_items(gg)
    remat = compile_graph(gg, items, remat=k)
    src = remat.source
    assert remat.stats["recomputed"] == 1 and "# recomputed: the forward chunk j" in src
    assert src.count(f"[None] * {k}\n") >= 5 and f"[(t - 1) % {k}]" in src    # 4 gates, tanh c
    stored = compile_graph(gg, items, chunk=k)          # the same program, stored
    if k < 37:                                   # (k slots against one per step)
        assert remat.stats["stored"][0] < stored.stats["stored"][0]
    p = c.init_params(seed=5)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((37, 3, 3)), rng.standard_normal((37, 3, 2))
    bound = ur.runtime.bind_arguments(gg, p, {"x": x, "y": y})
    a = stored(bound.xp, bound.params, bound.arrays)
    b = remat(bound.xp, bound.params, bound.arrays)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    loss, grads = g.value_and_grad(p, x=x, y=y, checkpoint=k)       # the same, through the API
    want = g.value_and_grad(p, x=x, y=y, executor="interpret")
    assert np.array_equal(loss, b[0])
    assert np.isclose(loss, want[0], rtol=1e-13)
    for name in p:
        assert np.allclose(grads[name], want[1][name], rtol=1e-11, atol=1e-13), name


def test_biases_on_both_sides_of_the_recurrence_are_summed_once():
    """b1 + W h + b2 + U x: the two biases summed once ((b1 + b2), before the loops), then
    added to the stacked U x: the loop adds only W h."""
    c = ur.Circuit("two")
    x, y = c.input("x", (3,)), c.input("y", (2,))
    h = c.state("h", (8,))
    U, W = c.param("U", (8, 3)), c.param("W", (8, 8))
    b1, b2 = c.param("b1", (8,)), c.param("b2", (8,))
    h.next = ur.tanh(b1 + W @ h.prev + b2 + U @ x)
    c.loss(ur.sum((c.param("V", (2, 8)) @ h - y) ** 2))
    g = c.unroll(steps=6)
    src = g.program(grad=True).source
    assert src.count("(b1 + b2)") == 1 and len(_forward_loop(src)) == 3, src
    p = c.init_params(seed=2)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 4, 2))
    got, want = g.value_and_grad(p, x=x, y=y), g.value_and_grad(p, x=x, y=y, executor="interpret")
    for k in p:
        assert np.allclose(got[1][k], want[1][k], rtol=1e-12, atol=1e-14), k
