"""One differential property over random circuits that use every feature of the API.

Every way unroll computes the same quantity must agree with the independent NumPy reference
of :mod:`unroll.testing.reference` (a lazy step loop that shares no code with unroll's
scheduling, unrolling, autodiff, compiler or runtime) and with finite differences of it:

- the loss and every output: the compiled program and the reference interpreter (1e-10);
- gradients: compiled, interpreted and checkpointed with k in {1, 2, ⌈√τ⌉, τ} (k shorter
  than the longest delay is refused with a clear error) agree with each other, and with
  central differences of the reference along random directions over every parameter and
  float input;
- second order: Hessian-vector products against central differences of the gradient
  (``gradcheck(order=2)``);
- chunks: τ₁ then τ₂ steps with the returned state fed back equal τ₁ + τ₂ at once (forward
  states run the earlier chunk first, backward states the later one), every delay;
- truncated BPTT: one window is full BPTT; windows k₁ < τ add up to the sequence's loss and
  their gradients are the reference's with the chain cut (the carried state a constant).

``HYPOTHESIS_PROFILE=thorough`` runs thousands of circuits through each.
"""
import contextlib
import math
import os

import numpy as np
import pytest
from hypothesis import assume, event, given, settings, strategies as st

import unroll as ur
import unroll.testing as ut
from unroll.checkpoint import reach
from unroll.compile import target as targets
from unroll.testing.circuits import COMPOSITE_OPS
from unroll.testing.reference import resolve
from unroll.render.equations import _mathtext
from matplotlib.mathtext import MathTextParser

TOL = dict(rtol=1e-10, atol=1e-12)
_MATHTEXT = MathTextParser("path")
# the thorough profile puts at least 2,000 circuits through each property
MANY = settings(max_examples=max(2000, settings.default.max_examples)) \
    if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else settings()


def _close(a, b, what, **tol):
    tol = tol or TOL
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert np.allclose(a, b, **tol), (what, float(np.max(np.abs(a - b))))


def _setup(case, data, batch=None):
    g = case.circuit.unroll(steps=case.steps)
    params = data.draw(ut.params_for(case.circuit), label="params")
    b = data.draw(st.integers(1, 3), label="batch") if batch is None else batch
    inputs = data.draw(ut.inputs_for(g, batch=b), label="inputs")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    for k in g.zero_defaults:                 # an initial value passed in (h0) half the time
        if rng.integers(2):
            inputs[k] = 0.5 * rng.standard_normal((b,) + g.static_inputs[k].shape)
    return g, params, inputs, rng


def _wrt(g, inputs):
    """Every parameter, and every float input passed in."""
    floats = [k for k in inputs if (g.seq_inputs[k][0] if k in g.seq_inputs else
                                    g.static_inputs[k]).aval.dtype == "float"]
    return list(g.params) + floats


class LoopKernel(targets.Target):
    """A code target of the tests' own, the shape of a compiled loop kernel: every re-rolled
    loop runs through a step iterator the target supplies, and tanh, sigmoid and matvec
    through functions of its own. Registered only while the property runs."""
    name = "test_kernel"
    own = {"tanh": "_k_tanh(xp, {0})", "sigmoid": "_k_sigmoid(xp, {0})",
           "matvec": "_k_matvec(xp, {0}, {1})"}

    def template(self, prim):
        return self.own.get(prim.name, prim.code)

    def namespace(self):
        return {"_k_tanh": lambda xp, x: xp.tanh(x),
                "_k_sigmoid": lambda xp, x: ur.ops.sigmoid_p.forward(xp, x),
                "_k_matvec": lambda xp, A, v: ur.ops.matvec_p.forward(xp, A, v),
                "_k_steps": lambda a, z: range(a, z + (1 if z >= a else -1), 1 if z >= a else -1)}

    def loop(self, lowering, block):
        a, z = block.steps[0], block.steps[-1]
        return [f"for t in _k_steps({a}, {z}):  # the kernel's loop"] + \
            lowering.body_lines(block)


class Chunked(targets.Target):
    """The default target with every time-batched loop done chunk by chunk, 2 steps a chunk
    (the default chunks only loops whose stacked values are large: none of these circuits)."""
    name = "test_chunked"
    chunk_steps = 2
    chunk_min = 0


@contextlib.contextmanager
def kernel_target():
    """The tests' LoopKernel, and the numba target's kernels run as Python (what numba would
    compile, with no numba: every random circuit goes through the kernel writer), registered
    for the duration; yields every code target besides the default and the real numba one
    (tests/test_loopkernel.py compiles that, on fewer circuits: seconds per kernel)."""
    from unroll.compile.loopkernel import NumbaTarget
    own = [LoopKernel(), NumbaTarget("numba_python", python=True), Chunked()]
    for t in own:
        targets.register(t)
    try:
        yield [t for t in targets.TARGETS if t not in ("python", "numba")]
    finally:
        for t in own:
            del targets.TARGETS[t.name]


def _directional(case, params, inputs, grads, rng, n=2, **ref):
    """<∇L, v> against central differences of the reference loss for random directions v
    over everything in ``grads`` (stop_gradient held at its unperturbed values)."""
    base = case.reference(params, inputs, **ref)
    for _ in range(n):
        v = {k: rng.standard_normal(np.shape(a)) for k, a in grads.items()}
        norm = math.sqrt(sum(float(np.sum(x * x)) for x in v.values())) or 1.0
        v = {k: x / norm for k, x in v.items()}
        h = 1e-6

        def shifted(sign):
            p = {k: a + sign * h * v[k] if k in v else a for k, a in params.items()}
            i = {k: a + sign * h * v[k] if k in v else a for k, a in inputs.items()}
            return case.reference(p, i, frozen=base, **ref).loss
        fd = (shifted(1) - shifted(-1)) / (2 * h)
        an = sum(float(np.sum(np.asarray(grads[k]) * v[k])) for k in v)
        assert abs(fd - an) <= 1e-6 * (1 + abs(fd)), (fd, an)


# --- the loss, outputs and first-order gradients -----------------------------------------------

@MANY
@given(ut.random_circuits(), st.data())
def test_every_executor_agrees_with_the_reference_and_finite_differences(case, data):
    g, params, inputs, rng = _setup(case, data)
    g.typecheck()
    ref = case.reference(params, inputs)
    out = g.run(params, **inputs)
    _close(out["loss"], ref.loss, "loss")
    for name, want in ref.outputs.items():
        _close(out[name], want, name)
        # one output alone (its own program, no inputs it does not read), and interpreted
        _close(g.run(params, outputs=[name], **inputs)[name], want, f"{name} alone")
        _close(g.run(params, executor="interpret", **inputs)[name], want, f"{name} interpreted")
    wrt = _wrt(g, inputs)
    lc, gc = g.value_and_grad(params, wrt=wrt, **inputs)
    li, gi = g.value_and_grad(params, wrt=wrt, executor="interpret", **inputs)
    _close(lc, ref.loss, "compiled loss")
    _close(li, ref.loss, "interpreted loss")
    for k in wrt:
        _close(gc[k], gi[k], f"∂{k} compiled vs interpreted")
    with kernel_target() as names:
        for name in names:                       # every code target, as an executor
            lt, gt = g.value_and_grad(params, wrt=wrt, executor=name, **inputs)
            _close(lt, li, f"loss on {name}")
            for k in wrt:
                _close(gt[k], gi[k], f"∂{k} on {name}")
    depth = max(reach(ur.grad(g, wrt=wrt)))
    for k in sorted({1, 2, math.isqrt(case.steps - 1) + 1, case.steps}):
        if k < depth:
            with pytest.raises(ur.UnrollError, match="at least"):
                g.value_and_grad(params, wrt=wrt, checkpoint=k, **inputs)
            continue
        lk, gk = g.value_and_grad(params, wrt=wrt, checkpoint=k, **inputs)
        _close(lk, li, f"loss checkpoint={k}")
        for n in wrt:
            _close(gk[n], gi[n], f"∂{n} checkpoint={k}")
        _remat_is_the_stored_program(g, wrt, params, inputs, k)
    _directional(case, params, inputs, gc, rng)


def _remat_is_the_stored_program(g, wrt, params, inputs, k):
    """Checkpointing on the compiled program (remat=k: the backward loop recomputes the
    forward loop's chunks) gives bitwise the gradients of the same program run stored, its
    loops chunked alike (chunk=k: every time-batched loop in chunks of k steps)."""
    from unroll.compile import compile_graph
    from unroll.ir import _grad_items
    gg = ur.grad(g, wrt=wrt)
    items = _grad_items(gg)
    remat = compile_graph(gg, items, remat=k)
    event(f"checkpoint on the compiled program recomputes: {bool(remat.stats['recomputed'])}")
    if not remat.stats["recomputed"]:
        return
    stored = compile_graph(gg, items, chunk=k)
    bound = ur.runtime.bind_arguments(gg, params, inputs)
    a = stored(bound.xp, bound.params, bound.arrays)
    b = remat(bound.xp, bound.params, bound.arrays)
    for x, y in zip(a, b):
        assert np.array_equal(x, y), f"checkpoint={k} on the compiled program"


@MANY
@given(ut.random_circuits(max_steps=4), st.data())
def test_hessian_vector_products_agree_with_finite_differences(case, data):
    g, params, inputs, _ = _setup(case, data, batch=2)
    rep = ur.gradcheck(g, params, order=2, mode="directional", directions=2, **inputs)
    assert rep.ok, str(rep)


# --- programs written from small unrollings -----------------------------------------------------

@MANY
@given(ut.random_circuits(), st.integers(40, 46), st.data())
def test_programs_written_from_small_unrollings_are_those_of_all_steps(case, steps, data):
    """From api.STEADY_FROM steps on (lowered to 40 here), value_and_grad writes the gradient
    program from three small unrollings (unroll/compile/template.py), and the graph is built
    only when read (unrolling.DEFER_FROM, lowered too): arguments are drawn, checked and bound
    against its stand-in. Where the program is written, it must be the one compiled from all
    τ steps, character for character, on every code target; either way the results are the
    reference's."""
    from unroll import api, unrolling
    from unroll.ir import _grad_items
    saved = api.STEADY_FROM, unrolling.DEFER_FROM
    api.STEADY_FROM = unrolling.DEFER_FROM = 40
    try:
        g = case.circuit.unroll(steps=steps)
        view = api._stand_in(g)                 # g itself once built
        assume(view.loss is not None)
        params = data.draw(ut.params_for(case.circuit), label="params")
        inputs = data.draw(ut.inputs_for(view, batch=2), label="inputs")
        wrt = _wrt(view, inputs)
        names = api.resolve_wrt(view, wrt)
        ref = case.reference(params, inputs)
        deferred = not g.built
        loss, grads = g.value_and_grad(params, wrt=wrt, **inputs)
        event(f"deferred, still unbuilt after the gradient: "
              f"{deferred and not g.built}")
        _close(loss, ref.loss, "loss")
        _directional(case, params, inputs, grads, np.random.default_rng(0), n=1)
        with kernel_target():                   # the kernels' programs, the same way
            for target in ["python", "numba_python", "test_chunked"]:
                written = api._steady(g, names, "grad", target)
                event(f"written on {target}: {written is not None}")
                if api._placement(g) is None:
                    assert written is None
                if written is not None:
                    gg = ur.grad(g, wrt=wrt)
                    prog = api.compile_graph(gg, _grad_items(gg), target=target,
                                             name=api._ident(f"{g.name}_grad"))
                    assert written[0].source == prog.source, target
    finally:
        api.STEADY_FROM, unrolling.DEFER_FROM = saved


# --- chunks with carried state --------------------------------------------------------------------

def _loss_steps(case, lo, hi):
    """The losses of sequence steps lo+1..hi, placed in a chunk over those steps."""
    return {name: [t - lo for t in resolve(at, case.steps) if lo < t <= hi]
            for name, _, at in case.spec.losses}


CARRIED = ("zeros", "input")              # initial values a next chunk can be handed


@MANY
@given(st.sampled_from(["forward", "backward"]).flatmap(
    lambda d: ut.random_circuits(directions=(d,), inits=CARRIED).filter(
        lambda c: c.steps >= 2)), st.data())
def test_running_in_chunks_with_the_state_fed_back_equals_one_run(case, data):
    assert case.carried and len(case.directions) == 1
    g, params, inputs, _ = _setup(case, data)
    whole = g.run(params, return_state=True, **inputs)
    split = data.draw(st.integers(1, case.steps - 1), label="split")
    seq = list(g.seq_inputs)
    forward = case.directions == {"forward"}
    first, second = ((0, split), (split, case.steps)) if forward else \
        ((split, case.steps), (0, split))

    def run(lo, hi, state):
        feed = {k: (a[lo:hi] if k in seq else a) for k, a in inputs.items()}
        feed.update(state)
        gc = case.circuit.unroll(hi - lo, loss_steps=_loss_steps(case, lo, hi))
        out = gc.run(params, return_state=True, **feed)
        return out, {case.init_input(n): a for n, a in out["state"].items()}

    a, carried = run(*first, {})
    b, _ = run(*second, carried)
    last = b                                   # the chunk run second ends the states' run
    _close(a.get("loss", 0.0) + b.get("loss", 0.0), whole.get("loss", 0.0), "loss")
    early, late = (a, b) if forward else (b, a)
    for name, (_, at) in case.spec.outputs.items():
        if at is None:
            _close(np.concatenate([early[name], late[name]]), whole[name], name)
    for name in whole["state"]:
        _close(last["state"][name], whole["state"][name], f"state {name}")


# --- truncated BPTT ----------------------------------------------------------------------------

@MANY
@given(ut.random_circuits(backward=False, inits=CARRIED), st.data())
def test_truncated_bptt_is_the_reference_with_the_chain_cut(case, data):
    assert case.carried
    g, params, inputs, rng = _setup(case, data)
    c, T = case.circuit, case.steps
    ref = case.reference(params, inputs)
    # one window over the whole sequence is full BPTT
    total, grads = ur.training.TruncatedBPTT(c, k1=T).grads(params, **inputs)
    _, full = g.value_and_grad(params, **inputs)
    _close(total, ref.loss, "one window's loss")
    for k in full:
        _close(grads[k], full[k], f"∂{k}, one window")
    # windows of k1 new steps, back-propagating through k2 >= k1
    k1 = data.draw(st.integers(1, T), label="k1")
    k2 = data.draw(st.integers(k1, T), label="k2")
    tb = ur.training.TruncatedBPTT(c, k1=k1, k2=k2)
    losses, sums = [], None
    for loss, gr in tb.chunks(params, **inputs):
        losses.append(float(loss))
        sums = gr if sums is None else {k: sums[k] + gr[k] for k in gr}
    _close(sum(losses), ref.loss, f"Σ window losses (k1={k1}, k2={k2})")
    # the reference with the chain cut: each window starts from the state the full run
    # reached there, held constant; its losses are those of its new steps
    ends = list(range(k1, T, k1)) + [T]
    prev, windows = 0, []
    for end in ends:
        start = max(0, prev - (k2 - k1))
        fixed = {key: a for key, a in ref.states.items() if key[1] <= start}
        windows.append(dict(start=start, fixed=fixed, loss_steps=set(range(prev + 1, end + 1)),
                            end=end))
        prev = end

    class Cut:                                  # Σ over windows, as one reference
        def reference(self, p, i, frozen=None):
            runs = [case.reference(p, i, start=w["start"], stop=w["end"], fixed=w["fixed"],
                                   loss_steps=w["loss_steps"],
                                   frozen=frozen.runs[j] if frozen else None)
                    for j, w in enumerate(windows)]
            return _Windows(runs)
    _directional(Cut(), params, inputs, {k: sums[k] for k in params}, rng)


class _Windows:
    """The reference's windows: their total loss, and each run (stop_gradient held fixed)."""

    def __init__(self, runs):
        self.runs, self.loss = runs, sum(r.loss for r in runs)


# --- the generator itself ----------------------------------------------------------------------

def test_the_generator_draws_every_feature_and_every_primitive():
    """The property above is only as good as what it is fed: over a few hundred draws, every
    declaration feature and every registered primitive must appear."""
    seen = set()

    @settings(max_examples=1500, derandomize=True, database=None)
    @given(ut.random_circuits())
    def collect(case):
        seen.update(case.features)
    collect()
    want = {"forward", "backward", "cross-direction", "same-step", "delay>1", "delay>τ",
            "init:zeros", "init:param", "init:input", "init:expr", "init_name", "static-input",
            "int-input", "int-static", "rank:0", "rank:1", "rank:2", "broadcast:ranks",
            "unbatched-in-step", "at:last", "at:steps", "loss:sum", "loss:mse", "loss:ce",
            "bias", "bias:2"}
    want |= {f"prim:{n}" for n in ut.drawable_primitives()}
    want |= {f"composite:{n}" for n in COMPOSITE_OPS}
    assert want <= seen, sorted(want - seen)


# --- the derived equations (ur.latex) ----------------------------------------------------------

@MANY
@given(ut.random_circuits(), st.data())
def test_derived_equations_evaluate_to_the_reference(case, data):
    """The rolled equations ur.latex reads off the gradient graph, evaluated themselves step by
    step (unroll/derive.py), give the reference's loss and value_and_grad's gradients: those
    read from the graph at its own τ, and those read from the circuit (a longer unrolling)
    at this τ where its boundary steps fit in it."""
    g, params, inputs, _ = _setup(case, data)
    assume(g.loss is not None)
    ref = case.reference(params, inputs)
    _, want = g.value_and_grad(params, executor="interpret", **inputs)
    for source in (g, case.circuit):
        try:
            eq = ur.latex(source, grad=True)
        except ur.UnrollError as e:               # equations that differ with τ's parity
            assert source is case.circuit and "not the same at every step" in str(e), str(e)
            event("circuit's equations depend on τ itself")
            continue
        if source is g:                           # every line as the pictures draw it
            for _, lhs, rhs, cond in eq.rows:
                _MATHTEXT.parse(f"${_mathtext(lhs)} = {_mathtext(rhs)}$")
        try:
            loss, grads = eq.evaluate(params, steps=case.steps, **inputs)
        except ur.InputError as e:                # a circuit's boundary steps overlap here:
            assert source is case.circuit and "too short" in str(e), str(e)
            event("circuit's equations: τ too short, evaluated one step longer than read")
            longer = case.circuit.unroll(steps=eq.derivation.steps + 1)
            more = data.draw(ut.inputs_for(longer, batch=2), label="inputs, longer")
            loss, grads = eq.evaluate(params, steps=longer.steps, **more)
            long_loss, long_want = longer.value_and_grad(params, executor="interpret", **more)
            _close(loss, long_loss, "derived loss, longer")
            for k in long_want:
                _close(grads[k], long_want[k], f"derived ∂{k}, longer")
            continue
        _close(loss, ref.loss, "derived loss")
        assert set(grads) == set(want)
        for k in want:
            _close(grads[k], want[k], f"derived ∂{k}")


# --- checkpointing on the compiled program, on the model library --------------------------------

@given(st.sampled_from(["lstm", "gru", "rnn"] + [f"lstm:{v}" for v in ur.models.LSTM_VARIANTS]),
       st.integers(1, 2), st.booleans(), st.integers(3, 14), st.integers(2, 5), st.data())
def test_checkpointing_on_the_compiled_program_is_its_stored_program_on_the_models(
        kind, layers, bidirectional, steps, k, data):
    """The random circuits above seldom have what the compiled program recomputes (a forward
    loop's per-step values other than its states, read by the backward loop): the model
    library's cells all do. checkpoint=k on the compiled program is bitwise the same program
    run stored (chunks of k steps) and the interpreter's to round-off."""
    name, _, variant = kind.partition(":")
    make = getattr(ur.models, name)
    c = make(3, 4, num_layers=layers, bidirectional=bidirectional,
             **({"variant": variant} if variant else {}))
    c.loss(ur.mse(c["h"], c.input("r", c["h"].shape)))
    g = c.unroll(steps=steps)
    B = data.draw(st.integers(1, 3), label="batch")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    params = c.init_params(seed=int(rng.integers(1000)))
    inputs = {"x": rng.standard_normal((steps, B, 3)),
              "r": rng.standard_normal((steps, B) + tuple(c["h"].shape))}
    wrt = list(params)
    _remat_is_the_stored_program(g, wrt, params, inputs, k)
    li, gi = g.value_and_grad(params, executor="interpret", **inputs)
    lk, gk = g.value_and_grad(params, checkpoint=k, **inputs)
    _close(lk, li, "loss")
    for n in gi:
        _close(gk[n], gi[n], f"∂{n} checkpoint={k}")
