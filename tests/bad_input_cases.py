"""The bad-input matrix: one row per bad call at a public entry point of unroll.

Each row is ``case(entry, what, call, error, culprit)``: ``call()`` must raise ``error`` (an
``unroll.errors.UnrollError`` subclass) with ``culprit`` in its message (the argument, value,
name or fix at fault), or ``case(entry, what, call, check=...)``: an unusual but valid call whose
result ``check(result)`` confirms. No raw exception, no silent result. The rows run in
``tests/test_bad_input_matrix.py``; ``docs/make_errors.py`` draws docs/errors.md from them.

The calls write files (pictures, a model file for the CLI) into the current directory: run
them from the folder :func:`setup` prepares.
"""
import contextlib
import io
import os
import types
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

import unroll as ur
from unroll.errors import (AlgebraicLoopError, ArgumentError, CircuitError, DTypeError,  # noqa: F401
                           GradcheckError, InputError, NoSuchAttributeError,
                           NoSuchVariableError, NonFiniteError, ParamError, RenderError,
                           ResourceError, ShapeError, UnrollError)

try:
    import torch  # noqa: F401
    HAS_TORCH = True
except ImportError:
    HAS_TORCH = False


class Case(NamedTuple):
    entry: str              # the public entry point
    what: str               # the bad input, in words
    call: Callable
    error: type | None      # the UnrollError subclass it raises (None: a checked result)
    culprit: str | None     # text its message must contain
    check: Callable | None  # for a valid call: result -> bool


CASES: list = []


def case(entry, what, call, error=None, culprit=None, check=None):
    assert (error is None) == (check is not None), what
    CASES.append(Case(entry, what, call, error, culprit, check))


def setup(folder) -> None:
    """Write the model files the CLI rows load into ``folder``."""
    folder = Path(folder)
    (folder / "models_ok.py").write_text(
        "import unroll as ur\n"
        "def elman(): return ur.models.elman(3, 4, 2)\n"
        "def needs(a): return ur.models.elman(a, 4, 2)\n"
        "def bad(): return 5\n"
        "def boom(): raise ValueError('boom')\n"
        "number = 7\n"
        "seq = ur.models.encoder_decoder(3, 4, 2)\n"
        "graph = ur.models.elman(3, 4, 2).unroll(3)\n")
    (folder / "models_err.py").write_text("raise RuntimeError('broken module')\n")
    (folder / "models_syntax.py").write_text("def (:\n")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _ce(p, xs, ys, last=False):
    """The Elman network's loss, by hand: Σ_t cross-entropy(c + V h(t), y(t))."""
    h, total = np.zeros(3), 0.0
    for t in range(len(xs)):
        h = np.tanh(p["b"] + p["W"] @ h + p["U"] @ xs[t])
        o = p["c"] + p["V"] @ h
        z = o - o.max()
        ce = np.log(np.exp(z).sum()) - z[ys[t]]
        total = ce if last else total + ce
    return total


# --- fixtures ----------------------------------------------------------------------------------
def elman():
    c = ur.Circuit("elman")
    x = c.input("x", (4,))
    y = c.input("y", (), dtype="int")
    U, W, V = c.param("U", (3, 4)), c.param("W", (3, 3)), c.param("V", (4, 3))
    b, cb = c.param("b", (3,)), c.param("c", (4,))
    h = c.state("h", (3,), init="zeros")
    h.next = ur.tanh(b + W @ h.prev + U @ x)
    o = c.output("o", cb + V @ h)
    c.loss(ur.softmax_cross_entropy(o, y))
    return c


C = elman()
G = C.unroll(steps=4)
P = C.init_params(seed=0)
XS, YS = np.eye(4)[[0, 1, 2, 2]], np.array([1, 2, 2, 3])
XB, YB = np.stack([XS, XS], 1), np.stack([YS, YS], 1)       # (T, B, D)


def fresh():
    c = ur.Circuit("t")
    x = c.input("x", (4,))
    return c, x


def P_(**kw):
    d = {k: v.copy() for k, v in P.items()}
    d.update(kw)
    return d


# --- Circuit -------------------------------------------------------------------------------
E = "ur.Circuit"
case(E, "Circuit(123)", lambda: ur.Circuit(123), CircuitError, '123')
case(E, "Circuit('')", lambda: ur.Circuit(""), CircuitError, 'name')
case(E, "Circuit(None)", lambda: ur.Circuit(None), CircuitError, 'None')
case(E, "Circuit('a\\nb')", lambda: ur.Circuit("a\nb"), CircuitError, 'a\\nb')
case(E, "Circuit(b'bytes')", lambda: ur.Circuit(b"bytes"), CircuitError, 'bytes')
case(E, "c['nope'] (lookup of a missing name)", lambda: C["nope"], NoSuchVariableError, 'nope')
case(E, "c[3] (lookup with a non-str)", lambda: C[3], NoSuchVariableError, 'variable 3')

# --- c.input -------------------------------------------------------------------------------
E = "c.input"
case(E, "name=123", lambda: fresh()[0].input(123, (3,)), CircuitError, 'name')
case(E, "name='1x'", lambda: fresh()[0].input("1x", (3,)), CircuitError, 'name')
case(E, "name='_x'", lambda: fresh()[0].input("_x", (3,)), CircuitError, '_x')
case(E, "duplicate name 'x'", lambda: fresh()[0].input("x", (3,)), CircuitError, 'x')
case(E, "shape=-1", lambda: fresh()[0].input("z", -1), ShapeError, 'shape')
case(E, "shape=(0,)", lambda: fresh()[0].input("z", (0,)), ShapeError, 'shape')
case(E, "shape='3'", lambda: fresh()[0].input("z", "3"), ShapeError, 'shape')
case(E, "shape=3.0", lambda: fresh()[0].input("z", 3.0), ShapeError, 'shape')
case(E, "shape=(3.5,)", lambda: fresh()[0].input("z", (3.5,)), ShapeError, 'shape')
case(E, "shape=None", lambda: fresh()[0].input("z", None), ShapeError, 'shape')
case(E, "shape=(True,)", lambda: fresh()[0].input("z", (True,)), ShapeError, 'shape')
case(E, "dtype='complex'", lambda: fresh()[0].input("z", (3,), dtype="complex"), DTypeError, 'dtype')
case(E, "dtype=None", lambda: fresh()[0].input("z", (3,), dtype=None), DTypeError, 'dtype')
case(E, "dtype='bool'", lambda: fresh()[0].input("z", (3,), dtype="bool"), DTypeError, 'dtype')
case(E, "dtype='float16' (run needs float32/64)", lambda: fresh()[0].input("z", (3,), dtype="float16"), DTypeError, 'dtype')
case(E, "dtype='interval' (prefix 'int')", lambda: fresh()[0].input("z", (3,), dtype="interval"), DTypeError, 'dtype')
case(E, "per_step='no' (a string)", lambda: fresh()[0].input("z", (3,), per_step="no"), UnrollError, 'per_step')
case(E, "shape=(np.int64(3),) control (a NumPy int size)", lambda: fresh()[0].input("z", (np.int64(3),)), check=lambda r: r.shape == (3,) and type(r.shape[0]) is int)

# --- c.param -------------------------------------------------------------------------------
E = "c.param"
case(E, "shape=(3,-1)", lambda: fresh()[0].param("W", (3, -1)), ShapeError, 'shape')
case(E, "shape=[] is () OK? shape=None", lambda: fresh()[0].param("W", None), ShapeError, 'shape')
case(E, "name='W W'", lambda: fresh()[0].param("W W", (3,)), CircuitError, 'name')
case(E, "init='gaussian' (unknown; checked at declaration?)", lambda: fresh()[0].param("W", (3,), init="gaussian"), CircuitError, 'init')
case(E, "init=float('nan')", lambda: fresh()[0].param("W", (3,), init=float("nan")), CircuitError, 'init')
case(E, "init=None", lambda: fresh()[0].param("W", (3,), init=None), CircuitError, 'init')
case(E, "init=[1,2,3] (a list)", lambda: fresh()[0].param("W", (3,), init=[1, 2, 3]), CircuitError, 'init')


def _p_init(init, shape=(3,)):
    c, x = fresh()
    c.param("W", shape, init=init)
    return c.init_params(seed=0)


case(E, "init='gaussian' -> init_params", lambda: _p_init("gaussian"), CircuitError, 'init')
case(E, "init=float('nan') -> init_params", lambda: _p_init(float("nan")), CircuitError, 'init')
case(E, "init=float('inf') -> init_params", lambda: _p_init(float("inf")), CircuitError, 'init')
case(E, "init=None -> init_params", lambda: _p_init(None), CircuitError, 'init')
case(E, "init=[1,2,3] (unhashable) -> init_params", lambda: _p_init([1, 2, 3]), CircuitError, 'init')
case(E, "init=np.float64(0.5) -> init_params", lambda: _p_init(np.float64(0.5)), check=lambda r: np.all(r['W'] == 0.5))
case(E, "init=np.ones(3) (an array) -> init_params", lambda: _p_init(np.ones(3)), CircuitError, 'init')
case(E, "init=lambda rng, shape: wrong shape -> init_params", lambda: _p_init(lambda rng, s: np.ones(5)), CircuitError, 'init')
case(E, "init=lambda rng, shape: 1/0 -> init_params", lambda: _p_init(lambda rng, s: 1 / 0), CircuitError, 'init')
case(E, "init=lambda rng, shape: strings -> init_params", lambda: _p_init(lambda rng, s: np.array(["a", "b", "c"])), CircuitError, 'init')
case(E, "init=lambda: 0 (wrong arity) -> init_params", lambda: _p_init(lambda: 0), CircuitError, 'init')
case(E, "init='orthogonal' on a vector -> init_params", lambda: _p_init("orthogonal"), CircuitError, 'init')

# --- c.state -------------------------------------------------------------------------------
E = "c.state"
case(E, "shape=(0,)", lambda: fresh()[0].state("h", (0,)), ShapeError, 'shape')
case(E, "direction='fwd'", lambda: fresh()[0].state("h", (3,), direction="fwd"), CircuitError, 'direction')
case(E, "direction=None", lambda: fresh()[0].state("h", (3,), direction=None), CircuitError, 'direction')
case(E, "init=5 (a number)", lambda: fresh()[0].state("h", (3,), init=5), CircuitError, 'init')
case(E, "init=None", lambda: fresh()[0].state("h", (3,), init=None), CircuitError, 'init')
case(E, "init=np.zeros(3)", lambda: fresh()[0].state("h", (3,), init=np.zeros(3)), CircuitError, 'init')
case(E, "init_name='h 0'", lambda: fresh()[0].state("h", (3,), init_name="h 0"), CircuitError, 'init_name')
case(E, "show='no' (a string, truthy)", lambda: fresh()[0].state("h", (3,), show="no"), UnrollError, 'show')


def _state_unroll(**kw):
    c, x = fresh()
    W = c.param("W", (3, 4))
    h = c.state("h", (3,), **kw)
    h.next = ur.tanh(W @ x + h.prev)
    c.output("o", h)
    g = c.unroll(steps=2)
    return g.run(c.init_params(), x=np.ones((2, 4)))


case(E, "init='nosuch' (an unknown input name) -> unroll", lambda: _state_unroll(init="nosuch"), CircuitError, 'init')
case(E, "init='x' (a sequence input, not static) -> unroll", lambda: _state_unroll(init="x"), CircuitError, 'init')
case(E, "init='W' (a parameter name) -> unroll", lambda: _state_unroll(init="W"), CircuitError, 'init')
case(E, "init_name='x' (clashes with an input) -> unroll", lambda: _state_unroll(init_name="x"), CircuitError, 'x')
case(E, "init_name='W' (clashes with a param), init='param' -> unroll", lambda: _state_unroll(init="param", init_name="W"), CircuitError, 'W')


def _state_init_expr_seq():
    c, x = fresh()
    W = c.param("W", (3, 4))
    h = c.state("h", (3,), init=W @ x)          # depends on a per-step input
    h.next = ur.tanh(W @ x + h.prev)
    c.output("o", h)
    return c.unroll(steps=2).run(c.init_params(), x=np.ones((2, 4)))


case(E, "init=W @ x (expression of a sequence input) -> unroll", _state_init_expr_seq, CircuitError, 'init')


def _state_init_other():
    c, x = fresh()
    c2 = ur.Circuit("other")
    s = c2.input("s", (3,), per_step=False)
    return c.state("h", (3,), init=s)


case(E, "init=<expression of another circuit>", _state_init_other, CircuitError, 'circuit')


def _state_init_shape():
    c, x = fresh()
    s = c.input("s", (5,), per_step=False)
    W = c.param("W", (3, 4))
    h = c.state("h", (3,), init=s)               # (5,) initial value for a (3,) state
    h.next = ur.tanh(W @ x + h.prev)
    c.output("o", h)
    return c.unroll(steps=2).run(c.init_params(), x=np.ones((2, 4)), s=np.ones(5))


case(E, "init=<static input of shape (5,)> for a (3,) state -> unroll", _state_init_shape, ShapeError, 'shape')

# --- h.delayed / h.next / h.prev.prev -----------------------------------------------------
E = "h.delayed/h.next"


def _h():
    c, x = fresh()
    W = c.param("W", (3, 4))
    h = c.state("h", (3,))
    return c, x, W, h


case(E, "h.delayed(0)", lambda: _h()[3].delayed(0), CircuitError, 'h.delayed(0)')
case(E, "h.delayed(-1)", lambda: _h()[3].delayed(-1), CircuitError, 'h.delayed(-1)')
case(E, "h.delayed(1.5)", lambda: _h()[3].delayed(1.5), CircuitError, '1.5')
case(E, "h.delayed('2')", lambda: _h()[3].delayed("2"), CircuitError, "h.delayed('2')")
case(E, "h.delayed(True)", lambda: _h()[3].delayed(True), CircuitError, 'True')
case(E, "h.prev.prev", lambda: _h()[3].prev.prev, NoSuchAttributeError, 'h.delayed(2)')


def _next(val):
    c, x, W, h = _h()
    h.next = val(c, x, W, h)
    return h


case(E, "h.next = np.zeros(3)", lambda: _next(lambda c, x, W, h: np.zeros(3)), CircuitError, 'array')
case(E, "h.next = 0.0", lambda: _next(lambda c, x, W, h: 0.0), CircuitError, '0.0')
case(E, "h.next = None", lambda: _next(lambda c, x, W, h: None), CircuitError, 'None')
case(E, "h.next = W (wrong shape (3,4))", lambda: _next(lambda c, x, W, h: W), ShapeError, 'h.next')
case(E, "h.next = <other circuit's expr>", lambda: _next(lambda c, x, W, h: _h()[3].prev), CircuitError, 'circuit')


def _next_twice():
    c, x, W, h = _h()
    h.next = W @ x
    h.next = W @ x


case(E, "h.next set twice", _next_twice, CircuitError, 'h.next')


def _alg_loop():
    c, x, W, h = _h()
    h.next = ur.tanh(h + W @ x)
    c.output("o", h)
    return c.unroll(steps=2)


case(E, "h.next reads h (algebraic loop) -> unroll", _alg_loop, AlgebraicLoopError, 'h.next')


def _huge_delay():
    c, x, W, h = _h()
    h.next = ur.tanh(h.delayed(10 ** 12) + W @ x)
    c.output("o", h)
    return c.unroll(steps=2)


case(E, "h.delayed(10**12) -> unroll", _huge_delay, ResourceError, 'state h')


def _no_next():
    c, x, W, h = _h()
    c.output("o", W @ x)
    return c.unroll(steps=2)


case(E, "state never given .next -> unroll", _no_next, CircuitError, 'state')

# --- c.output -------------------------------------------------------------------------------
E = "c.output"


def _out(name="o", expr=lambda c, x, W, h: W @ x, at=None, run=False):
    c, x, W, h = _h()
    h.next = ur.tanh(W @ x + h.prev)
    e = expr(c, x, W, h) if callable(expr) else expr
    c.output(name, e, at=at)
    if run:
        g = c.unroll(steps=3)
        r = g.run(c.init_params(), x=np.ones((3, 4)))
        return r
    return c


case(E, "name='nosuch', no expr", lambda: _out("nosuch", None), CircuitError, 'nosuch')
case(E, "name='x' (an input), no expr", lambda: _out("x", None), CircuitError, 'x')
case(E, "name='o o'", lambda: _out("o o"), CircuitError, 'name')
case(E, "name='W' (a param's name)", lambda: _out("W"), CircuitError, 'name')
case(E, "expr=np.ones(3)", lambda: _out(expr=np.ones(3)), CircuitError, 'array')
case(E, "expr=<other circuit's>", lambda: _out(expr=lambda c, x, W, h: _h()[2] @ _h()[1]), UnrollError, 'circuit')
case(E, "at='lats' -> unroll/run", lambda: _out(at="lats", run=True), CircuitError, 'lats')
case(E, "at=[0] -> run", lambda: _out(at=[0], run=True), CircuitError, 'not [0]')
case(E, "at=[99] -> run (tau=3)", lambda: _out(at=[99], run=True), CircuitError, '99')
case(E, "at=5 (an int, not a list) -> run", lambda: _out(at=5, run=True), CircuitError, 'not 5')
case(E, "at=[1.7] (a float step) -> run", lambda: _out(at=[1.7], run=True), CircuitError, '1.7')
case(E, "at=['2'] (a string step) -> run", lambda: _out(at=["2"], run=True), CircuitError, "['2']")
case(E, "at=[] (no step at all) -> run", lambda: _out(at=[], run=True), CircuitError, '[]')
case(E, "at=[True] -> run", lambda: _out(at=[True], run=True), CircuitError, 'True')
case(E, "at='lats' at declaration (not run)", lambda: _out(at="lats"), CircuitError, 'lats')

def _out_named(name, rs=False):
    c, x, W, h = _h()
    h.next = ur.tanh(W @ x + h.prev)
    c.output(name, h)
    c.loss(ur.sum(h))
    r = c.unroll(2).run(c.init_params(), return_state=rs, x=np.ones((2, 4)))
    return {k: getattr(v, "shape", v) for k, v in r.items()}


case(E, "output named 'loss' (and a loss) -> run", lambda: _out_named("loss"), CircuitError, 'loss')
case(E, "output named 'state' -> run(return_state=True)", lambda: _out_named("state", True), CircuitError, 'state')

# --- c.loss ---------------------------------------------------------------------------------
E = "c.loss"


def _loss(expr, at=None, name=None, run=False):
    c, x, W, h = _h()
    h.next = ur.tanh(W @ x + h.prev)
    e = expr(c, x, W, h) if callable(expr) else expr
    c.loss(e, at=at, name=name)
    if run:
        return c.unroll(steps=3).run(c.init_params(), x=np.ones((3, 4)))
    return c


case(E, "non-scalar loss (shape (3,))", lambda: _loss(lambda c, x, W, h: h), ShapeError, 'scalar')
case(E, "expr=3.0", lambda: _loss(3.0), CircuitError, '3.0')
case(E, "expr=None", lambda: _loss(None), CircuitError, 'None')
case(E, "expr=np.float64(1)", lambda: _loss(np.float64(1.0)), CircuitError, 'np.float64')
case(E, "name='L L'", lambda: _loss(lambda c, x, W, h: ur.sum(h), name="L L"), CircuitError, 'name')
case(E, "name=5", lambda: _loss(lambda c, x, W, h: ur.sum(h), name=5), CircuitError, 'name')
case(E, "at='lats' -> run", lambda: _loss(lambda c, x, W, h: ur.sum(h), at="lats", run=True), CircuitError, 'lats')
case(E, "at=[0] -> run", lambda: _loss(lambda c, x, W, h: ur.sum(h), at=[0], run=True), CircuitError, 'not [0]')
case(E, "at=[2.9] -> run", lambda: _loss(lambda c, x, W, h: ur.sum(h), at=[2.9], run=True), CircuitError, '2.9')
case(E, "at=[] -> run", lambda: _loss(lambda c, x, W, h: ur.sum(h), at=[], run=True), CircuitError, '[]')
case(E, "at={'a': 1} (a dict) -> run", lambda: _loss(lambda c, x, W, h: ur.sum(h), at={"a": 1}, run=True), CircuitError, "{'a': 1}")

# --- init_params ------------------------------------------------------------------------------
E = "c.init_params"
case(E, "seed=-1", lambda: C.init_params(seed=-1), UnrollError, 'seed')
case(E, "seed=1.5", lambda: C.init_params(seed=1.5), UnrollError, 'seed')
case(E, "seed='a'", lambda: C.init_params(seed="a"), CircuitError, 'seed')
case(E, "seed=None", lambda: C.init_params(seed=None), CircuitError, 'seed')
case(E, "seed=True", lambda: C.init_params(seed=True), CircuitError, 'seed')
case(E, "seed=2**200", lambda: C.init_params(seed=2 ** 200), check=lambda r: _same(r, C.init_params(seed=2 ** 200)) and not _same(r, P))
case(E, "dtype='float16'", lambda: C.init_params(dtype="float16"), DTypeError, 'dtype')
case(E, "dtype='int32'", lambda: C.init_params(dtype="int32"), DTypeError, 'dtype')
case(E, "dtype='foo'", lambda: C.init_params(dtype="foo"), DTypeError, 'dtype')
case(E, "dtype=np.complex128", lambda: C.init_params(dtype=np.complex128), DTypeError, 'dtype')
case(E, "dtype=[1]", lambda: C.init_params(dtype=[1]), DTypeError, 'dtype')
case(E, "xp='numpy' (a string)", lambda: C.init_params(xp="numpy"), check=lambda r: _same(r, P) and all(type(v) is np.ndarray for v in r.values()))


def _huge_param():
    c, x = fresh()
    c.param("W", (10 ** 6, 10 ** 6))
    return c.init_params()


case(E, "param of shape (10**6, 10**6) (7 TiB)", _huge_param, ResourceError, 'shape')

# --- c.unroll -------------------------------------------------------------------------------
E = "c.unroll"
case(E, "steps=0", lambda: C.unroll(0), CircuitError, 'steps')
case(E, "steps=-1", lambda: C.unroll(-1), CircuitError, 'steps')
case(E, "steps=2.0", lambda: C.unroll(2.0), CircuitError, 'steps')
case(E, "steps='4'", lambda: C.unroll("4"), CircuitError, 'steps')
case(E, "steps=True", lambda: C.unroll(True), CircuitError, 'steps')
case(E, "steps=None", lambda: C.unroll(None), CircuitError, 'steps')
case(E, "steps=10**12", lambda: C.unroll(10 ** 12), ResourceError, 'steps')
case(E, "steps=np.int64(4) (control: a NumPy int)", lambda: C.unroll(np.int64(4)), check=lambda r: r.steps == 4 and type(r.steps) is int)
case(E, "loss_steps='lats'", lambda: C.unroll(3, loss_steps="lats"), CircuitError, 'loss_steps')
case(E, "loss_steps=[0]", lambda: C.unroll(3, loss_steps=[0]), CircuitError, 'loss_steps')
case(E, "loss_steps=[99]", lambda: C.unroll(3, loss_steps=[99]), CircuitError, 'loss_steps')
case(E, "loss_steps=5", lambda: C.unroll(3, loss_steps=5), CircuitError, 'loss_steps')
case(E, "loss_steps=[1.5]", lambda: C.unroll(3, loss_steps=[1.5]), CircuitError, 'loss_steps')
case(E, "loss_steps={'nope': [1]}", lambda: C.unroll(3, loss_steps={"nope": [1]}), CircuitError, 'loss_steps')
case(E, "loss_steps={'L': [99]}", lambda: C.unroll(3, loss_steps={"L": [99]}), CircuitError, 'L')
case(E, "loss_steps={'L': 'last'}", lambda: C.unroll(3, loss_steps={"L": "last"}), check=lambda r: np.isclose(r.run(P, x=XS[:3], y=YS[:3])['loss'], _ce(P, XS[:3], YS[:3], last=True)))
case(E, "loss_steps={'L': 2} (an int)", lambda: C.unroll(3, loss_steps={"L": 2}), CircuitError, 'L')
case(E, "loss_steps=[] (no loss at all)", lambda: C.unroll(3, loss_steps=[]), check=lambda r: r.loss is None and 'loss' not in r.run(P, x=XS[:3], y=YS[:3]))


def _empty():
    return ur.Circuit("e").unroll(2)


case(E, "empty circuit", _empty, CircuitError, 'circuit')

# --- c.render / c.to_dot --------------------------------------------------------------------
E = "c.render/c.to_dot"
case(E, "to_dot(detail='all')", lambda: C.to_dot(detail="all"), RenderError, 'detail')
case(E, "to_dot(detail=None)", lambda: C.to_dot(detail=None), RenderError, 'detail')
case(E, "to_dot(params='edge')", lambda: C.to_dot(params="edge"), RenderError, 'params')
case(E, "to_dot(params=None)", lambda: C.to_dot(params=None), RenderError, 'params')
case(E, "to_dot(title='My title') draws that text", lambda: "My title" in C.to_dot(title="My title").source, check=lambda r: r is True)
case(E, "render('c.jpg')", lambda: C.render("c.jpg"), RenderError, 'c.jpg')
case(E, "render('nodir/c.dot')", lambda: C.render("nodir/c.dot"), RenderError, 'nodir/c.dot')
case(E, "render(123)", lambda: C.render(123), RenderError, '123')
case(E, "render(None)", lambda: C.render(None), RenderError, 'None')
case(E, "render('c.png', zoom=0)", lambda: C.render("c.png", zoom=0), RenderError, 'zoom')
case(E, "render('c.dot', zom=2) (misspelled kw)", lambda: C.render("c.dot", zom=2), ArgumentError, 'zom')
case(E, "render('c.dot', detail='ops', format='jpg')", lambda: C.render("c.dot", format="jpg"), RenderError, "'jpg'")
case(E, "render('c', ) (no extension)", lambda: C.render("c"), RenderError, 'c')


def _render_nostate():
    c = ur.Circuit("nostate")
    x = c.input("x", (3,))
    c.output("o", ur.tanh(x))
    return c.to_dot().source[:40]


case(E, "to_dot of a circuit without state (control)", _render_nostate, check=lambda r: r.startswith('digraph circuit_nostate'))

# --- g.run ------------------------------------------------------------------------------------
E = "g.run"
case(E, "params=None", lambda: G.run(None, x=XS, y=YS), ParamError, 'params')
case(E, "params=list", lambda: G.run(list(P.values()), x=XS, y=YS), UnrollError, 'params')
case(E, "missing param", lambda: G.run({k: v for k, v in P.items() if k != "U"}, x=XS, y=YS), ParamError, 'missing')
case(E, "extra param 'Q'", lambda: G.run(P_(Q=np.ones(3)), x=XS, y=YS), ParamError, 'Q')
case(E, "param U transposed", lambda: G.run(P_(U=P["U"].T.copy()), x=XS, y=YS), ParamError, 'U')
case(E, "param U as list", lambda: G.run(P_(U=P["U"].tolist()), x=XS, y=YS), ParamError, 'U')
case(E, "param U int dtype", lambda: G.run(P_(U=np.ones((3, 4), int)), x=XS, y=YS), DTypeError, 'U')
case(E, "param U complex", lambda: G.run(P_(U=np.ones((3, 4), complex)), x=XS, y=YS), DTypeError, 'U')
case(E, "param U float32, others float64", lambda: G.run(P_(U=P["U"].astype("float32")), x=XS, y=YS), DTypeError, 'U')
case(E, "param U NaN", lambda: G.run(P_(U=np.full((3, 4), np.nan)), x=XS, y=YS), NonFiniteError, 'U')
case(E, "param U a 0-d object array", lambda: G.run(P_(U=np.array(None)), x=XS, y=YS), ParamError, 'U')
case(E, "x missing", lambda: G.run(P, y=YS), InputError, 'x')
case(E, "x as list", lambda: G.run(P, x=XS.tolist(), y=YS), InputError, 'x')
case(E, "x wrong T (5)", lambda: G.run(P, x=np.ones((5, 4)), y=np.ones(5, int)), InputError, 'x')
case(E, "x wrong D (3)", lambda: G.run(P, x=np.ones((4, 3)), y=YS), InputError, 'x')
case(E, "x int dtype", lambda: G.run(P, x=XS.astype(int), y=YS), DTypeError, 'x')
case(E, "x 4-D", lambda: G.run(P, x=np.ones((4, 2, 1, 4)), y=YB), InputError, 'x')
case(E, "x 1-D", lambda: G.run(P, x=np.ones(4), y=YS), InputError, 'x')
case(E, "x NaN", lambda: G.run(P, x=np.where(XS > 0, np.nan, 0), y=YS), NonFiniteError, 'x')
case(E, "x batch-first (B,T,D)", lambda: G.run(P, x=np.ones((2, 4, 4)), y=np.ones((2, 4), int)), InputError, 'x')
case(E, "y float", lambda: G.run(P, x=XS, y=YS.astype(float)), DTypeError, 'y')
case(E, "y out of range (4)", lambda: G.run(P, x=XS, y=np.array([1, 2, 4, 0])), InputError, 'y')
case(E, "y negative", lambda: G.run(P, x=XS, y=np.array([1, -1, 2, 0])), InputError, 'y')
case(E, "y one-hot (T,K)", lambda: G.run(P, x=XS, y=np.eye(4)[YS]), InputError, 'y')
case(E, "y bool", lambda: G.run(P, x=XS, y=YS > 1), DTypeError, 'y')
case(E, "batch mismatch x B=2 y B=3", lambda: G.run(P, x=XB, y=np.ones((4, 3), int)), InputError, 'batch')
case(E, "batch on x only", lambda: G.run(P, x=XB, y=YS), InputError, 'batch')
case(E, "empty batch B=0", lambda: G.run(P, x=np.ones((4, 0, 4)), y=np.ones((4, 0), int)), InputError, 'empty')
case(E, "unknown input 'z'", lambda: G.run(P, x=XS, y=YS, z=XS), InputError, 'z')
case(E, "misspelled input 'xx'", lambda: G.run(P, xx=XS, y=YS), InputError, 'xx')
case(E, "param given as input U=", lambda: G.run(P, x=XS, y=YS, U=P["U"]), InputError, 'input')
case(E, "executor='fast' (an unknown executor)", lambda: G.run(P, x=XS, y=YS, executor="fast"), UnrollError, 'executor')
case(E, "return_state='yes'", lambda: G.run(P, return_state="yes", x=XS, y=YS), UnrollError, 'return_state')
case(E, "h0 wrong shape (5,)", lambda: G.run(P, x=XS, y=YS, h0=np.ones(5)), InputError, 'h0')
case(E, "h0 NaN", lambda: G.run(P, x=XS, y=YS, h0=np.full(3, np.nan)), NonFiniteError, 'h0')
case(E, "h0 int", lambda: G.run(P, x=XS, y=YS, h0=np.ones(3, int)), DTypeError, 'h0')
case(E, "float32 params with float64 x", lambda: G.run(C.init_params(dtype="float32"), x=XS, y=YS), DTypeError, 'float32')
case(E, "x huge values 1e300 (overflow -> inf loss?)", lambda: G.run(P, x=XS * 1e300, y=YS), check=lambda r: np.isclose(r['loss'], _ce(P, XS * 1e300, YS)))
case(E, "params huge 1e300 (overflow -> inf/nan?)", lambda: G.run({k: v + 1e300 for k, v in P.items()}, x=XS, y=YS), check=lambda r: np.isclose(r['loss'], _ce({k: v + 1e300 for k, v in P.items()}, XS, YS)))

# --- g.value_and_grad -------------------------------------------------------------------------
E = "g.value_and_grad"
VG = G.value_and_grad
case(E, "wrt='Q'", lambda: VG(P, wrt="Q", x=XS, y=YS), InputError, 'wrt')
case(E, "wrt=['y'] (int input)", lambda: VG(P, wrt=["y"], x=XS, y=YS), InputError, 'wrt')
case(E, "wrt=5", lambda: VG(P, wrt=5, x=XS, y=YS), InputError, 'wrt')
case(E, "wrt=[] (nothing)", lambda: VG(P, wrt=[], x=XS, y=YS), InputError, 'wrt')
case(E, "wrt=['U','U'] (duplicate)", lambda: VG(P, wrt=["U", "U"], x=XS, y=YS), check=lambda r: list(r[1]) == ['U'] and np.allclose(r[1]['U'], VG(P, x=XS, y=YS)[1]['U'], rtol=1e-12))
case(E, "wrt=[None]", lambda: VG(P, wrt=[None], x=XS, y=YS), InputError, 'wrt')
case(E, "wrt={'U': 1} (dict)", lambda: VG(P, wrt={"U": 1}, x=XS, y=YS), InputError, 'wrt')
case(E, "executor='fast'", lambda: VG(P, executor="fast", x=XS, y=YS), UnrollError, 'executor')
case(E, "executor=None", lambda: VG(P, executor=None, x=XS, y=YS), UnrollError, 'executor')
case(E, "checkpoint=0", lambda: VG(P, checkpoint=0, x=XS, y=YS), UnrollError, 'checkpoint')
case(E, "checkpoint=-1", lambda: VG(P, checkpoint=-1, x=XS, y=YS), UnrollError, 'checkpoint')
case(E, "checkpoint='cube'", lambda: VG(P, checkpoint="cube", x=XS, y=YS), UnrollError, 'checkpoint')
case(E, "checkpoint=1.5", lambda: VG(P, checkpoint=1.5, x=XS, y=YS), UnrollError, 'checkpoint')
case(E, "checkpoint=True", lambda: VG(P, checkpoint=True, x=XS, y=YS), UnrollError, 'checkpoint')
case(E, "checkpoint=10**6", lambda: VG(P, checkpoint=10 ** 6, x=XS, y=YS), check=lambda r: all(np.allclose(r[1][k], VG(P, x=XS, y=YS)[1][k], rtol=1e-12) for k in P))
case(E, "checkpoint=float('nan')", lambda: VG(P, checkpoint=float("nan"), x=XS, y=YS), UnrollError, 'checkpoint')
case(E, "checkpoint=2, executor='fast' (executor ignored?)", lambda: VG(P, checkpoint=2, executor="fast", x=XS, y=YS), UnrollError, 'fast')
case(E, "check_finite='no' (string)", lambda: VG(P, check_finite="no", x=XS, y=YS)[0], UnrollError, 'check_finite')
case(E, "params=None", lambda: VG(None, x=XS, y=YS), ParamError, 'params')
case(E, "x NaN", lambda: VG(P, x=XS * np.nan, y=YS), NonFiniteError, 'x')
case(E, "params 1e300: tanh saturates, loss and gradients stay finite", lambda: VG({k: v + 1e300 for k, v in P.items()}, x=XS, y=YS), check=lambda r: np.isclose(r[0], _ce({k: v + 1e300 for k, v in P.items()}, XS, YS)) and all(np.isfinite(g).all() for g in r[1].values()))


def _noloss_graph():
    c, x, W, h = _h()
    h.next = ur.tanh(W @ x + h.prev)
    c.output("o", h)
    return c.unroll(2)


NL = _noloss_graph()
case(E, "graph without a loss", lambda: NL.value_and_grad({"W": np.ones((3, 4))}, x=np.ones((2, 4))), UnrollError, 'loss')

# --- g.evaluate / g.program ------------------------------------------------------------------
E = "g.evaluate/g.program"
case(E, "evaluate(values=['h'] strings)", lambda: G.evaluate(P, ["h"], x=XS, y=YS), InputError, 'values')
case(E, "evaluate(values=None)", lambda: G.evaluate(P, None, x=XS, y=YS), InputError, 'values')
case(E, "evaluate(values=[1])", lambda: G.evaluate(P, [1], x=XS, y=YS), InputError, 'values')
case(E, "evaluate(values=<Value of another graph>)", lambda: G.evaluate(P, [C.unroll(2).loss], x=XS, y=YS), InputError, 'another')
case(E, "evaluate(params=None)", lambda: G.evaluate(None, [G.loss], x=XS, y=YS), ParamError, 'params')
case(E, "program(grad=True, wrt='Q')", lambda: G.program(grad=True, wrt="Q"), InputError, 'Q')
case(E, "program(grad='yes') (string)", lambda: type(G.program(grad="yes")).__name__, UnrollError, 'grad')
case(E, "program(wrt='U') without grad (wrt ignored)", lambda: type(G.program(wrt="Q")).__name__, InputError, 'wrt')
case(E, "program(grad=True) of a graph without loss", lambda: NL.program(grad=True), UnrollError, 'loss')
case(E, "program(executor='interpret')", lambda: G.program(executor="interpret"), InputError, 'interpreter')
case(E, "program(executor='nmba') (misspelt)", lambda: G.program(executor="nmba"), UnrollError, 'numba')
case(E, "program(executor=3)", lambda: G.program(executor=3), UnrollError, 'executor')

# --- g.to_dot / g.render ----------------------------------------------------------------------
E = "g.to_dot/g.render"
NORMS = {"h": np.array([1.0, 0.5, 0.2, 0.1])}
case(E, "mode='fwd'", lambda: G.to_dot(mode="fwd"), RenderError, 'mode')
case(E, "params='edge'", lambda: G.to_dot(params="edge"), RenderError, 'params')
case(E, "max_steps=0", lambda: G.to_dot(max_steps=0), RenderError, 'max_steps')
case(E, "max_steps=-1", lambda: G.to_dot(max_steps=-1), RenderError, 'max_steps')
case(E, "max_steps='8'", lambda: G.to_dot(max_steps="8"), RenderError, 'max_steps')
case(E, "max_steps=None", lambda: G.to_dot(max_steps=None), RenderError, 'max_steps')
case(E, "keep=0 (tau=4, max_steps=2)", lambda: G.to_dot(max_steps=2, keep=0), RenderError, 'keep')
case(E, "keep=-1 (max_steps=2)", lambda: G.to_dot(max_steps=2, keep=-1), RenderError, 'keep')
case(E, "keep=10 > tau (max_steps=2): nothing between the ends, every step drawn", lambda: G.to_dot(max_steps=2, keep=10).source, check=lambda r: "⋯" not in r and all(f"v_h_{t}" in r for t in range(1, 5)))
case(E, "keep=1.5 (max_steps=2)", lambda: G.to_dot(max_steps=2, keep=1.5), RenderError, 'keep')
case(E, "heat=[1,2] (a list)", lambda: G.to_dot(heat=[1, 2]), RenderError, 'heat')
case(E, "heat={'q': ...}", lambda: G.to_dot(heat={"q": NORMS["h"]}), RenderError, 'heat')
case(E, "heat={'h': wrong length 2}", lambda: G.to_dot(heat={"h": np.ones(2)}), RenderError, 'heat')
case(E, "heat={'h': with NaN}", lambda: G.to_dot(heat={"h": np.array([1, np.nan, 1, 1.0])}), RenderError, 'heat')
case(E, "heat={'h': negative values}", lambda: G.to_dot(heat={"h": np.array([-1, -2, 1, 1.0])}), RenderError, 'heat')
case(E, "heat={'h': all zeros}", lambda: G.to_dot(heat={"h": np.zeros(4)}), check=lambda r: r.source.count('#ffffcc') >= 4)
case(E, "heat={'h': strings}", lambda: G.to_dot(heat={"h": ["a", "b", "c", "d"]}), RenderError, 'heat')
case(E, "heat={'h': 2-D (4,3)}", lambda: G.to_dot(heat={"h": np.ones((4, 3))}), RenderError, 'heat')
case(E, "heat={} (empty)", lambda: G.to_dot(heat={}), RenderError, 'heat')
case(E, "heat_range=(1,) ", lambda: G.to_dot(heat=NORMS, heat_range=(1,)), RenderError, 'heat_range')
case(E, "heat_range=(1, 0) (reversed)", lambda: G.to_dot(heat=NORMS, heat_range=(1, 0)), RenderError, 'heat_range')
case(E, "heat_range=(0, 1) (log scale from 0)", lambda: G.to_dot(heat=NORMS, heat_range=(0, 1)), RenderError, 'heat_range')
case(E, "heat_range=('a','b')", lambda: G.to_dot(heat=NORMS, heat_range=("a", "b")), RenderError, 'heat_range')
case(E, "heat_range=(1, 1) (no span)", lambda: G.to_dot(heat=NORMS, heat_range=(1, 1)), RenderError, 'heat_range')
case(E, "heat_range without heat", lambda: G.to_dot(heat_range=(0.1, 1)), RenderError, 'heat_range')
case(E, "heat_range=(-1, 5)", lambda: G.to_dot(heat=NORMS, heat_range=(-1, 5)), RenderError, 'heat_range')
case(E, "heat_range=(nan, 5)", lambda: G.to_dot(heat=NORMS, heat_range=(float("nan"), 5)), RenderError, 'heat_range')
case(E, "title=True draws the graph's name", lambda: [l.strip() for l in G.to_dot(title=True).source.splitlines() if "labelloc" in l], check=lambda r: r == ['fontsize=13 label=elman labelloc=b'])
case(E, "truncate=0", lambda: G.to_dot(truncate=0), RenderError, 'truncate')
case(E, "truncate=1.5", lambda: G.to_dot(truncate=1.5), RenderError, 'truncate')
case(E, "truncate=99 (> tau)", lambda: G.to_dot(truncate=99), RenderError, 'truncate')
case(E, "checkpoints=5 (an int)", lambda: G.to_dot(checkpoints=5), RenderError, 'checkpoints')
case(E, "checkpoints=[99]", lambda: G.to_dot(checkpoints=[99]), RenderError, 'checkpoints')
case(E, "checkpoints=['a']", lambda: G.to_dot(checkpoints=["a"]), RenderError, 'checkpoints')
case(E, "checkpoints=[0]", lambda: G.to_dot(checkpoints=[0]), RenderError, 'checkpoints')
case(E, "title=123", lambda: G.to_dot(title=123).source[:30], RenderError, 'title')
case(E, "relative='yes'", lambda: G.to_dot(relative="yes"), RenderError, 'relative')
case(E, "unknown option colour='red'", lambda: G.to_dot(colour="red"), RenderError, 'option')
case(E, "render('g.jpg')", lambda: G.render("g.jpg"), RenderError, 'g.jpg')
case(E, "render('g.png', zoom=-1)", lambda: G.render("g.png", zoom=-1), RenderError, 'zoom')
case(E, "render('g.png', zoom=float('nan'))", lambda: G.render("g.png", zoom=float("nan")), RenderError, 'nan')
case(E, "render('nodir/g.svg')", lambda: G.render("nodir/g.svg"), RenderError, 'nodir/g.svg')
case(E, "render('g.dot', mode='bwd')", lambda: G.render("g.dot", mode="bwd"), RenderError, 'bwd')
case(E, "render('g.dot', colour='red') (unknown option)", lambda: G.render("g.dot", colour="red"), RenderError, 'colour')
case(E, "to_dot(mode='backward') of a graph without loss", lambda: NL.to_dot(mode="backward").source[:30], RenderError, 'mode')

# --- ur.grad / gradcheck / hvp ----------------------------------------------------------------
E = "ur.grad"
case(E, "grad('notgraph')", lambda: ur.grad("notgraph"), UnrollError, 'not str')
case(E, "grad(None)", lambda: ur.grad(None), UnrollError, 'NoneType')
case(E, "grad(g, wrt='Q')", lambda: ur.grad(G, wrt="Q"), InputError, 'Q')
case(E, "grad(g, wrt=['y'])", lambda: ur.grad(G, wrt=["y"]), InputError, 'y')
case(E, "grad(g without loss)", lambda: ur.grad(NL), UnrollError, 'loss')
case(E, "grad(c) (a Circuit, not a Graph)", lambda: ur.grad(C), UnrollError, 'c')
case(E, "grad(g, wrt=5)", lambda: ur.grad(G, wrt=5), InputError, 'wrt')

E = "ur.gradcheck"
GC = ur.gradcheck
case(E, "mode='fulll'", lambda: GC(G, P, mode="fulll", x=XS, y=YS), UnrollError, 'mode')
case(E, "order=3", lambda: GC(G, P, order=3, x=XS, y=YS), UnrollError, 'order')
case(E, "eps=0", lambda: GC(G, P, eps=0, x=XS, y=YS), UnrollError, 'eps')
case(E, "eps=-1e-6", lambda: GC(G, P, eps=-1e-6, x=XS, y=YS), UnrollError, 'eps')
case(E, "rtol=-1", lambda: GC(G, P, rtol=-1, x=XS, y=YS), UnrollError, 'rtol')
case(E, "directions=0", lambda: GC(G, P, mode="directional", directions=0, x=XS, y=YS), UnrollError, 'directions')
case(E, "seed=1.5", lambda: GC(G, P, seed=1.5, x=XS, y=YS), UnrollError, 'seed')
case(E, "seed=-1", lambda: GC(G, P, seed=-1, x=XS, y=YS), UnrollError, 'seed')
case(E, "max_entries=0", lambda: GC(G, P, max_entries=0, x=XS, y=YS), UnrollError, 'max_entries')
case(E, "params=list", lambda: GC(G, list(P.values()), x=XS, y=YS), UnrollError, 'params')
case(E, "params={'U': list, ...}", lambda: GC(G, P_(U=P["U"].tolist()), x=XS, y=YS), ParamError, 'U')
case(E, "wrt='Q'", lambda: GC(G, P, wrt="Q", x=XS, y=YS), InputError, 'wrt')
case(E, "x as a list", lambda: GC(G, P, x=XS.tolist(), y=YS), InputError, 'x')
case(E, "graph 'notgraph'", lambda: GC("notgraph", P, x=XS, y=YS), UnrollError, 'notgraph')
case(E, "graph without a loss", lambda: GC(NL, {"W": np.ones((3, 4))}, x=np.ones((2, 4))), UnrollError, 'loss')
case(E, "missing input y", lambda: GC(G, P, x=XS), InputError, 'missing')
case(E, "order=2, wrt=['x']", lambda: GC(G, P, order=2, wrt=["x"], x=XS, y=YS), UnrollError, 'order')
case(E, "params with NaN", lambda: GC(G, P_(U=np.full((3, 4), np.nan)), x=XS, y=YS), NonFiniteError, 'NaN')
case(E, "eps=0.5 (a step too coarse), rtol=1e-9 -> raise_if_failed()", lambda: GC(G, P, eps=0.5, rtol=1e-9, x=XS, y=YS).raise_if_failed(), GradcheckError, 'disagrees with finite differences')
case(E, "mode='directional' with max_entries=5 (a full-mode option, ignored)", lambda: GC(G, P, mode="directional", max_entries=5, x=XS, y=YS).ok, check=lambda r: r is True)

E = "ur.hvp"
V1 = {"U": np.ones((3, 4))}
case(E, "vectors={'Q': ...} (not a param)", lambda: ur.hvp(G, P, {"Q": np.ones(3)}, x=XS, y=YS), ParamError, 'Q')
case(E, "vectors={'U': wrong shape (4,3)}", lambda: ur.hvp(G, P, {"U": np.ones((4, 3))}, x=XS, y=YS), ShapeError, 'vectors')
case(E, "vectors={'U': (12,) same size}", lambda: ur.hvp(G, P, {"U": np.ones(12)}, x=XS, y=YS), ShapeError, 'vectors')
case(E, "vectors={'U': scalar 1.0}", lambda: ur.hvp(G, P, {"U": 1.0}, x=XS, y=YS), ShapeError, 'vectors')
case(E, "vectors={'U': list}", lambda: ur.hvp(G, P, {"U": np.ones((3, 4)).tolist()}, x=XS, y=YS), check=lambda r: np.allclose(r['U'], ur.hvp(G, P, {'U': np.ones((3, 4))}, x=XS, y=YS)['U'], rtol=1e-12))
case(E, "vectors={'U': NaN}", lambda: ur.hvp(G, P, {"U": np.full((3, 4), np.nan)}, x=XS, y=YS), NonFiniteError, 'vectors')
case(E, "vectors={'U': strings}", lambda: ur.hvp(G, P, {"U": np.full((3, 4), "a")}, x=XS, y=YS), ParamError, 'vectors')
case(E, "vectors={} (empty)", lambda: ur.hvp(G, P, {}, x=XS, y=YS), ParamError, 'vectors')
case(E, "vectors=list", lambda: ur.hvp(G, P, [np.ones((3, 4))], x=XS, y=YS), ParamError, 'vectors')
case(E, "vectors=None", lambda: ur.hvp(G, P, None, x=XS, y=YS), ParamError, 'vectors')
case(E, "vectors={'x': ...} (an input)", lambda: ur.hvp(G, P, {"x": XS}, x=XS, y=YS), ParamError, 'x')
case(E, "vectors={'y': ...} (an int input)", lambda: ur.hvp(G, P, {"y": YS}, x=XS, y=YS), ParamError, 'y')
case(E, "params=None", lambda: ur.hvp(G, None, V1, x=XS, y=YS), ParamError, 'params')
case(E, "graph without loss", lambda: ur.hvp(NL, {"W": np.ones((3, 4))}, {"W": np.ones((3, 4))}, x=np.ones((2, 4))), UnrollError, 'loss')
case(E, "missing input y", lambda: ur.hvp(G, P, V1, x=XS), InputError, 'missing')

# --- diagnostics -----------------------------------------------------------------------------
E = "ur.diagnostics"
D = ur.diagnostics
case(E, "gradient_norms(states='q')", lambda: D.gradient_norms(G, P, states="q", x=XS, y=YS), UnrollError, 'states')
case(E, "gradient_norms(states=5)", lambda: D.gradient_norms(G, P, states=5, x=XS, y=YS), UnrollError, 'states')
case(E, "gradient_norms(states=[]) (nothing)", lambda: D.gradient_norms(G, P, states=[], x=XS, y=YS), UnrollError, 'states')
case(E, "gradient_norms(params=None)", lambda: D.gradient_norms(G, None, x=XS, y=YS), ParamError, 'params')
case(E, "gradient_norms(no loss)", lambda: D.gradient_norms(NL, {"W": np.ones((3, 4))}, x=np.ones((2, 4))), UnrollError, 'loss')
case(E, "gradient_norms(g='notgraph')", lambda: D.gradient_norms("notgraph", P, x=XS, y=YS), UnrollError, "'notgraph'")
case(E, "gradient_norms(x missing)", lambda: D.gradient_norms(G, P, y=YS), InputError, 'x')
case(E, "gradient_norms(x NaN)", lambda: D.gradient_norms(G, P, x=XS * np.nan, y=YS), NonFiniteError, 'x')
case(E, "gradient_norms(params 1e300)", lambda: D.gradient_norms(G, {k: v + 1e300 for k, v in P.items()}, x=XS, y=YS), check=lambda r: r['h'].shape == (4,) and np.isfinite(r['h']).all())
case(E, "jacobians(state='q')", lambda: D.jacobians(G, P, "q", x=XS, y=YS), UnrollError, 'state')
case(E, "jacobians(state='x') (an input)", lambda: D.jacobians(G, P, "x", x=XS, y=YS), UnrollError, 'state')
case(E, "jacobians(state=5)", lambda: D.jacobians(G, P, 5, x=XS, y=YS), UnrollError, 'state')
case(E, "jacobians(state=['h'])", lambda: D.jacobians(G, P, ["h"], x=XS, y=YS), UnrollError, 'state')
case(E, "jacobians(params=None)", lambda: D.jacobians(G, None, x=XS, y=YS), ParamError, 'params')
case(E, "jacobians(params={})", lambda: D.jacobians(G, {}, x=XS, y=YS), ParamError, 'parameter U')
case(E, "jacobians(x missing)", lambda: D.jacobians(G, P, y=YS), InputError, 'x')
case(E, "jacobians(x as list)", lambda: D.jacobians(G, P, x=XS.tolist(), y=YS), InputError, 'x')
case(E, "jacobians(x wrong T)", lambda: D.jacobians(G, P, x=np.ones((5, 4)), y=np.ones(5, int)), InputError, 'x')
case(E, "jacobians(unknown input z)", lambda: D.jacobians(G, P, x=XS, y=YS, z=XS), InputError, 'unknown')
case(E, "jacobians(g='notgraph')", lambda: D.jacobians("notgraph", P, x=XS, y=YS), UnrollError, "'notgraph'")
case(E, "jacobians(params float32 with float64 x)", lambda: D.jacobians(G, C.init_params(dtype="float32"), x=XS, y=YS), DTypeError, 'float32')
case(E, "jacobian_norms(state='q')", lambda: D.jacobian_norms(G, P, "q", x=XS, y=YS), UnrollError, 'state')
case(E, "jacobian_norms(x NaN)", lambda: D.jacobian_norms(G, P, x=XS * np.nan, y=YS), NonFiniteError, 'x')
case(E, "plot(series=[1,2])", lambda: D.plot([1, 2], "p.png"), RenderError, '[1, 2]')
case(E, "plot({'a': 'abc'})", lambda: D.plot({"a": "abc"}, "p.png"), RenderError, 'abc')
case(E, "plot({'a': []})", lambda: D.plot({"a": []}, "p.png"), RenderError, "curve 'a'")
case(E, "plot({'a': 3-D})", lambda: D.plot({"a": np.ones((2, 2, 2))}, "p.png"), RenderError, '(2, 2, 2)')
case(E, "plot({'a': [1,nan,2]})", lambda: D.plot({"a": [1, np.nan, 2]}, "p.png"), RenderError, 'nan')
case(E, "plot(path='p.jpg2')", lambda: D.plot({"a": [1, 2]}, "p.jpg2"), RenderError, 'p.jpg2')
case(E, "plot(path='nodir/p.png')", lambda: D.plot({"a": [1, 2]}, "nodir/p.png"), RenderError, 'nodir/p.png')
case(E, "plot(path=None)", lambda: D.plot({"a": [1, 2]}, None), RenderError, 'path')
case(E, "plot({}) (no series)", lambda: D.plot({}, "p.png"), RenderError, 'at least one curve')

# --- interop ---------------------------------------------------------------------------------
E = "ur.interop"
I = ur.interop
LS = ur.models.lstm(3, 4)
LP = LS.init_params()
case(E, "from_torch(None)", lambda: I.from_torch(None), UnrollError, 'NoneType')
case(E, "from_torch('lstm')", lambda: I.from_torch("lstm"), UnrollError, 'got str')


def fake(mode="LSTM", **kw):
    d = dict(mode=mode, proj_size=0, dropout=0.0, training=False, num_layers=1, input_size=3,
             hidden_size=4, bias=True, bidirectional=False, batch_first=False)
    d.update(kw)
    sd = kw.pop("sd", None)
    m = types.SimpleNamespace(**d)

    class T:
        def __init__(self, a): self.a = a
        def detach(self): return self
        def cpu(self): return self
        def numpy(self): return self.a
    m.state_dict = lambda: {k: T(v) for k, v in (sd if sd is not None else LP).items()}
    return m


case(E, "from_torch(fake LSTM) control", lambda: I.from_torch(fake())[1].keys(), check=lambda r: sorted(r) == sorted(LP))
case(E, "from_torch(fake, proj_size=2)", lambda: I.from_torch(fake(proj_size=2)), UnrollError, 'proj_size')
case(E, "from_torch(fake, batch_first=True)", lambda: I.from_torch(fake(batch_first=True)), UnrollError, 'batch_first')
case(E, "from_torch(fake, hidden_size=0)", lambda: I.from_torch(fake(hidden_size=0)), CircuitError, 'hidden_size')
case(E, "from_torch(fake, num_layers=0)", lambda: I.from_torch(fake(num_layers=0)), CircuitError, 'num_layers')
case(E, "from_torch(fake, dtype='int8')", lambda: I.from_torch(fake(), dtype="int8")[1]["weight_ih_l0"].dtype, DTypeError, 'int8')
case(E, "from_torch(fake, dtype='foo')", lambda: I.from_torch(fake(), dtype="foo"), DTypeError, 'foo')
case(E, "from_torch(fake state_dict with a wrong shape)", lambda: I.from_torch(fake(sd={**LP, "weight_ih_l0": np.ones((2, 2))}))[1]["weight_ih_l0"].shape, UnrollError, 'shape')
case(E, "from_torch(fake state_dict with NaN)", lambda: I.from_torch(fake(sd={**LP, "weight_ih_l0": LP["weight_ih_l0"] * np.nan}))[1]["weight_ih_l0"][0, 0], UnrollError, 'weight_ih_l0[0, 0] is nan')
case(E, "from_torch(fake mode='RNN_GELU')", lambda: I.from_torch(fake(mode="RNN_GELU")), UnrollError, 'RNN, LSTM or GRU')
case(E, "to_torch_state_dict(c, {'foo': ...})", lambda: I.to_torch_state_dict(LS, {"foo": np.ones(3)}), UnrollError, 'foo')
case(E, "to_torch_state_dict(c, wrong shape)", lambda: I.to_torch_state_dict(LS, {**LP, "weight_ih_l0": np.ones((2, 2))}), UnrollError, 'shape')
case(E, "to_torch_state_dict(c, weight as list)", lambda: I.to_torch_state_dict(LS, {**LP, "weight_ih_l0": LP["weight_ih_l0"].tolist()}), UnrollError, 'list')
case(E, "to_torch_state_dict(c, None)", lambda: I.to_torch_state_dict(LS, None), UnrollError, 'params must be a dict')
case(E, "to_torch_state_dict(c, list)", lambda: I.to_torch_state_dict(LS, list(LP.values())), UnrollError, 'list')
case(E, "to_torch_state_dict('notcircuit', params)", lambda: I.to_torch_state_dict("notcircuit", LP), UnrollError, 'notcircuit')
if HAS_TORCH:
    case(E, "to_torch_state_dict(c, params, as_tensors=True) with torch", lambda: I.to_torch_state_dict(LS, LP, as_tensors=True), check=lambda r: all(type(v).__name__ == "Tensor" for v in r.values()))
else:
    case(E, "to_torch_state_dict(c, params, as_tensors=True) without torch", lambda: I.to_torch_state_dict(LS, LP, as_tensors=True), UnrollError, 'pip install torch')
case(E, "to_torch_state_dict(c, {'weight_ih_l7': ...}) (layer absent)", lambda: I.to_torch_state_dict(LS, {"weight_ih_l7": np.ones(3)}), UnrollError, 'weight_ih_l7')
case(E, "to_torch_state_dict(c, partial dict) (one of four)", lambda: list(I.to_torch_state_dict(LS, {"weight_ih_l0": LP["weight_ih_l0"]})), check=lambda r: r == ['weight_ih_l0'])
case(E, "to_torch_state_dict(elman, elman params) (no PyTorch names)", lambda: I.to_torch_state_dict(C, P), UnrollError, 'PyTorch')

# --- models ----------------------------------------------------------------------------------
E = "ur.models (textbook)"
M = ur.models
case(E, "elman(0, 3, 2)", lambda: M.elman(0, 3, 2), CircuitError, 'input_size')
case(E, "elman(-1, 3, 2)", lambda: M.elman(-1, 3, 2), CircuitError, 'input_size')
case(E, "elman(3.5, 3, 2)", lambda: M.elman(3.5, 3, 2), CircuitError, 'input_size')
case(E, "elman('3', 3, 2)", lambda: M.elman("3", 3, 2), CircuitError, 'input_size')
case(E, "elman(3, 3, 2, nonlinearity='sigmoid')", lambda: M.elman(3, 3, 2, nonlinearity="sigmoid"), CircuitError, 'sigmoid')
case(E, "elman(3, 3, 2, loss='ce')", lambda: M.elman(3, 3, 2, loss="ce"), CircuitError, "'ce'")
case(E, "elman(3, 3, 2, name='')", lambda: M.elman(3, 3, 2, name=""), CircuitError, 'name')
case(E, "elman(3, 3, 0)", lambda: M.elman(3, 3, 0), CircuitError, 'output_size')
case(E, "jordan(3, 0, 2)", lambda: M.jordan(3, 0, 2), CircuitError, 'hidden_size')
case(E, "jordan(3, 3, 2, nonlinearity=None)", lambda: M.jordan(3, 3, 2, nonlinearity=None), CircuitError, 'nonlinearity')
case(E, "many_to_one(3, 3, 2, loss='hinge')", lambda: M.many_to_one(3, 3, 2, loss="hinge"), CircuitError, 'hinge')
case(E, "many_to_one(3, 3, -2)", lambda: M.many_to_one(3, 3, -2), CircuitError, 'output_size')
case(E, "teacher_forcing(3, 3, 2, mode='test')", lambda: M.teacher_forcing(3, 3, 2, mode="test"), CircuitError, 'test')
case(E, "teacher_forcing(3, 3, 2, loss=None)", lambda: M.teacher_forcing(3, 3, 2, loss=None), CircuitError, 'None')
case(E, "teacher_forcing(3, 3, 2, loss='hinge')", lambda: M.teacher_forcing(3, 3, 2, loss="hinge"), CircuitError, 'hinge')
case(E, "conditioned(3, 3, 2, feed_previous=True, loss=None)", lambda: M.conditioned(3, 3, 2, feed_previous=True, loss=None), CircuitError, 'None')
case(E, "conditioned(3, 3, 2, loss=None) control (no feedback)", lambda: M.conditioned(3, 3, 2, loss=None), check=lambda r: not r.losses and 'o' in r.outputs)
case(E, "conditioned(0, 3, 2)", lambda: M.conditioned(0, 3, 2), CircuitError, 'vector_size')
case(E, "bidirectional(3, 0, 2)", lambda: M.bidirectional(3, 0, 2), CircuitError, 'hidden_size')
case(E, "bidirectional(3, 3, 2, loss='x')", lambda: M.bidirectional(3, 3, 2, loss="x"), CircuitError, "'x'")
case(E, "encoder_decoder(3, 3, 2, mode='bogus')", lambda: M.encoder_decoder(3, 3, 2, mode="bogus"), CircuitError, 'bogus')
case(E, "encoder_decoder(3, 3, 2, context_size=0)", lambda: M.encoder_decoder(3, 3, 2, context_size=0).encoder.param_shapes()["W_e"], ShapeError, 'context_size')
case(E, "encoder_decoder(3, 3, 2, context_size=-2)", lambda: M.encoder_decoder(3, 3, 2, context_size=-2), ShapeError, 'context_size')
case(E, "encoder_decoder(3, 3, 2, name='')", lambda: M.encoder_decoder(3, 3, 2, name=""), CircuitError, 'name')
case(E, "encoder_decoder(...).unroll(0, 3)", lambda: M.encoder_decoder(3, 3, 2).unroll(0, 3), CircuitError, 'unroll')
case(E, "encoder_decoder(...).unroll(2, 'x')", lambda: M.encoder_decoder(3, 3, 2).unroll(2, "x"), CircuitError, "steps='x'")
case(E, "encoder_decoder(...).init_params(dtype='int8')", lambda: M.encoder_decoder(3, 3, 2).init_params(dtype="int8"), DTypeError, 'int8')

E = "ur.models (layers)"
case(E, "rnn(3, 4, num_layers=0)", lambda: M.rnn(3, 4, num_layers=0), CircuitError, 'num_layers')
case(E, "rnn(3, 4, num_layers='2')", lambda: M.rnn(3, 4, num_layers="2"), CircuitError, 'num_layers')
case(E, "rnn(3, 4, num_layers=1.5)", lambda: M.rnn(3, 4, num_layers=1.5), CircuitError, 'num_layers')
case(E, "rnn(3, 4, num_layers=None)", lambda: M.rnn(3, 4, num_layers=None), CircuitError, 'num_layers')
case(E, "rnn(3, 4, nonlinearity='gelu')", lambda: M.rnn(3, 4, nonlinearity="gelu"), CircuitError, 'gelu')
case(E, "rnn(3, 0)", lambda: M.rnn(3, 0), CircuitError, 'hidden_size')
case(E, "rnn(3, -4)", lambda: M.rnn(3, -4), CircuitError, 'hidden_size')
case(E, "rnn(0, 4)", lambda: M.rnn(0, 4), CircuitError, 'input_size')
case(E, "rnn(3, 4.0)", lambda: M.rnn(3, 4.0), CircuitError, '4.0')
case(E, "rnn(3, 4, bias='no') (a string)", lambda: list(M.rnn(3, 4, bias="no").params), CircuitError, 'bias')
case(E, "lstm(3, 4, variant='vanilla')", lambda: M.lstm(3, 4, variant="vanilla"), CircuitError, 'vanilla')
case(E, "lstm(3, 4, variant='v') (lower case)", lambda: M.lstm(3, 4, variant="v"), CircuitError, 'v')
case(E, "lstm(3, 4, peephole=True) (misspelled option)", lambda: M.lstm(3, 4, peephole=True), CircuitError, 'peephole')
case(E, "lstm(3, 4, variant='CIFG', input_gate=False)", lambda: M.lstm(3, 4, variant="CIFG", input_gate=False), CircuitError, 'CIFG')
case(E, "lstm(3, 0)", lambda: M.lstm(3, 0), CircuitError, 'hidden_size')
case(E, "lstm(3, -1)", lambda: M.lstm(3, -1), CircuitError, 'hidden_size')
case(E, "lstm(3, 4.0)", lambda: M.lstm(3, 4.0), CircuitError, '4.0')
case(E, "lstm(3, 4, names={...}) (internal kw)", lambda: M.lstm(3, 4, names={}), CircuitError, 'names')
case(E, "lstm(3, 4, input_gate=False, forget_gate=False, output_gate=False, peepholes=True, full_gate_recurrence=True)",
      lambda: list(M.lstm(3, 4, input_gate=False, forget_gate=False, output_gate=False, full_gate_recurrence=True).params), check=lambda r: r == ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'])
case(E, "lstm(3, 4, num_layers=0)", lambda: M.lstm(3, 4, num_layers=0), CircuitError, 'num_layers')
case(E, "gru(3, 0)", lambda: M.gru(3, 0), CircuitError, 'hidden_size')
case(E, "gru(3, -2)", lambda: M.gru(3, -2), CircuitError, 'hidden_size')
case(E, "gru(3, 4, num_layers=-1)", lambda: M.gru(3, 4, num_layers=-1), CircuitError, 'num_layers')
case(E, "gru(3, 4, nonlinearity='relu') (not a GRU option)", lambda: M.gru(3, 4, nonlinearity="relu"), ArgumentError, 'nonlinearity')
case(E, "stacked(3, [])", lambda: M.stacked(3, []), CircuitError, 'non-empty list')
case(E, "stacked(3, 'lstm')", lambda: M.stacked(3, "lstm"), CircuitError, 'lstm')
case(E, "stacked(3, [('lstm',)])", lambda: M.stacked(3, [("lstm",)]), CircuitError, 'lstm')
case(E, "stacked(3, [('foo', 3)])", lambda: M.stacked(3, [("foo", 3)]), CircuitError, 'foo')
case(E, "stacked(3, [('rnn', 0)])", lambda: M.stacked(3, [("rnn", 0)]), CircuitError, 'hidden_size')
case(E, "stacked(3, [('lstm', 0)])", lambda: M.stacked(3, [("lstm", 0)]), CircuitError, 'hidden_size')
case(E, "stacked(3, [({'nocell': 1}, 3)])", lambda: M.stacked(3, [({"nocell": 1}, 3)]), CircuitError, "'cell'")
case(E, "stacked(3, [({'cell': 'lstm', 'peephole': True}, 3)])", lambda: M.stacked(3, [({"cell": "lstm", "peephole": True}, 3)]), CircuitError, 'lstm')
case(E, "stacked(3, [({'cell': 'lstm', 'variant': 'CIFG'}, 3)])", lambda: M.stacked(3, [({"cell": "lstm", "variant": "CIFG"}, 3)]), CircuitError, 'lstm')
case(E, "stacked(3, [({'cell': 'rnn', 'names': {}}, 3)])", lambda: M.stacked(3, [({"cell": "rnn", "names": {}}, 3)]), CircuitError, 'rnn')
case(E, "stacked(3, [(‘gru’, 3)], bidirectional='no')", lambda: list(M.stacked(3, [("gru", 3)], bidirectional="no").states), CircuitError, 'bidirectional')
case(E, "stacked(3, [None])", lambda: M.stacked(3, [None]), CircuitError, 'None')
case(E, "stacked(3, [('rnn', 3, 'extra')])", lambda: M.stacked(3, [("rnn", 3, "extra")]), CircuitError, 'rnn')

E = "ur.models.generate"
EL = M.elman(4, 6, 4)
EP = EL.init_params(seed=1)
case(E, "prime=[]", lambda: M.generate(EL, EP, [], 3), InputError, 'prime')
case(E, "prime=5 (an int)", lambda: M.generate(EL, EP, 5, 3), InputError, 'prime')
case(E, "prime=None", lambda: M.generate(EL, EP, None, 3), InputError, 'prime')
case(E, "prime=[9] (out of range)", lambda: M.generate(EL, EP, [9], 3), InputError, 'prime')
case(E, "prime=[-1]", lambda: M.generate(EL, EP, [-1], 3), InputError, 'prime')
case(E, "prime=[1.7] (a float token)", lambda: M.generate(EL, EP, [1.7], 2, greedy=True), InputError, 'prime')
case(E, "prime=['a']", lambda: M.generate(EL, EP, ["a"], 3), InputError, 'prime')
case(E, "prime='ab' (a str)", lambda: M.generate(EL, EP, "ab", 3), InputError, 'prime')
case(E, "steps=-1", lambda: M.generate(EL, EP, [0], -1), InputError, 'steps')
case(E, "steps=2.5", lambda: M.generate(EL, EP, [0], 2.5), InputError, 'steps')
case(E, "steps=None", lambda: M.generate(EL, EP, [0], None), InputError, 'steps')
case(E, "temperature=0", lambda: M.generate(EL, EP, [0], 3, temperature=0), InputError, 'temperature')
case(E, "temperature=nan", lambda: M.generate(EL, EP, [0], 3, temperature=float("nan")), InputError, 'temperature')
case(E, "temperature=inf", lambda: M.generate(EL, EP, [0], 3, temperature=float("inf")), InputError, 'temperature')
case(E, "temperature=1e-300 (underflow)", lambda: M.generate(EL, EP, [0], 3, temperature=1e-300), check=lambda r: r == M.generate(EL, EP, [0], 3, greedy=True))
case(E, "temperature='1'", lambda: M.generate(EL, EP, [0], 3, temperature="1"), InputError, 'temperature')
case(E, "temperature=None", lambda: M.generate(EL, EP, [0], 3, temperature=None), InputError, 'temperature')
case(E, "input='q'", lambda: M.generate(EL, EP, [0], 3, input="q"), InputError, 'input')
case(E, "output='q'", lambda: M.generate(EL, EP, [0], 3, output="q"), InputError, 'output')
case(E, "input='y' (the int target input)", lambda: M.generate(EL, EP, [0], 3, input="y"), InputError, 'input')
case(E, "encode=lambda k: np.ones(3) (wrong size)", lambda: M.generate(EL, EP, [0], 3, encode=lambda k: np.ones(3)), InputError, 'encode')
case(E, "encode=lambda k: 'a'", lambda: M.generate(EL, EP, [0], 3, encode=lambda k: "a"), InputError, 'encode')
case(E, "encode=5 (not callable)", lambda: M.generate(EL, EP, [0], 3, encode=5), InputError, 'encode')
case(E, "encode given, prime=[99] (token never checked)", lambda: M.generate(EL, EP, [99], 2, encode=lambda k: np.eye(4)[k % 4]), check=lambda r: len(r) == 3 and r[0] == 99 and all(0 <= k < 4 for k in r[1:]))
case(E, "params={}", lambda: M.generate(EL, {}, [0], 3), ParamError, 'missing parameter')
case(E, "params=None", lambda: M.generate(EL, None, [0], 3), ParamError, 'params')
case(E, "statics={'q': ...}", lambda: M.generate(EL, EP, [0], 3, statics={"q": np.ones(3)}), InputError, 'q')
case(E, "statics=[1]", lambda: M.generate(EL, EP, [0], 3, statics=[1]), InputError, 'statics')
case(E, "seed='a'", lambda: M.generate(EL, EP, [0], 3, seed="a"), InputError, 'seed')
case(E, "circuit='notcircuit'", lambda: M.generate("notcircuit", EP, [0], 3), UnrollError, 'notcircuit')
case(E, "lstm(4, 3) with output='h' (control)", lambda: M.generate(M.lstm(4, 3), M.lstm(4, 3).init_params(), [0], 2, output="h"), check=lambda r: len(r) == 3 and all(0 <= k < 3 for k in r))


def _scalar_gen():
    c = ur.Circuit("s")
    x = c.input("x", ())
    w = c.param("w", (), init=0.5)
    h = c.state("h", ())
    h.next = ur.tanh(w * h.prev + x)
    c.output("o", h)
    return M.generate(c, c.init_params(), [0], 2, greedy=True)


case(E, "circuit whose input has shape () (one-hot impossible)", _scalar_gen, InputError, 'input')


def _gen_int_input():
    c = ur.Circuit("s")
    x = c.input("x", (), dtype="int")
    W = c.param("W", (3, 3))
    h = c.state("h", (3,))
    h.next = ur.tanh(W @ h.prev + ur.one_hot(x, 3))
    c.output("o", h)
    return M.generate(c, c.init_params(), [0], 2, greedy=True)


case(E, "circuit with an integer token input", _gen_int_input, InputError, 'input')

# --- training --------------------------------------------------------------------------------
E = "ur.training.TruncatedBPTT"
TB = ur.training.TruncatedBPTT
case(E, "k1=0", lambda: TB(C, 0), UnrollError, 'k1')
case(E, "k1=-1", lambda: TB(C, -1), UnrollError, 'k1')
case(E, "k1=2.5", lambda: TB(C, 2.5), UnrollError, 'k1')
case(E, "k1=2, k2=1", lambda: TB(C, 2, 1), UnrollError, 'k2 = 1 < k1 = 2')
case(E, "circuit='notcircuit'", lambda: TB("notcircuit", 2), UnrollError, 'notcircuit')
case(E, "circuit=graph", lambda: TB(G, 2), UnrollError, 'circuit')
case(E, "bidirectional circuit", lambda: TB(M.bidirectional(3, 3, 2), 2), CircuitError, 'runs backward')
case(E, "wrt='Q' -> chunks", lambda: list(TB(C, 2, wrt="Q").chunks(P, x=XS, y=YS)), InputError, 'wrt')
case(E, "checkpoint='cube' -> chunks", lambda: list(TB(C, 2, checkpoint="cube").chunks(P, x=XS, y=YS)), UnrollError, 'checkpoint')
case(E, "chunks: x missing", lambda: list(TB(C, 2).chunks(P, y=YS)), InputError, 'x')
case(E, "chunks: x as list", lambda: list(TB(C, 2).chunks(P, x=XS.tolist(), y=YS)), InputError, 'x')
case(E, "chunks: 0 steps", lambda: list(TB(C, 2).chunks(P, x=np.ones((0, 4)), y=np.ones(0, int))), InputError, 'steps')
case(E, "chunks: x 5 steps, y 4", lambda: list(TB(C, 2).chunks(P, x=np.ones((5, 4)), y=YS)), InputError, 'x')
case(E, "chunks: y shorter than x... y 3 steps (not a seq input check?)", lambda: list(TB(C, 2).chunks(P, x=XS, y=YS[:3])), InputError, 'y')
case(E, "chunks: params=None", lambda: list(TB(C, 2).chunks(None, x=XS, y=YS)), ParamError, 'params')
case(E, "chunks: unknown input z", lambda: list(TB(C, 2).chunks(P, x=XS, y=YS, z=XS)), InputError, 'unknown')
case(E, "chunks: x NaN", lambda: list(TB(C, 2).chunks(P, x=XS * np.nan, y=YS)), NonFiniteError, 'x')
case(E, "chunks: h0 wrong shape", lambda: list(TB(C, 2).chunks(P, x=XS, y=YS, h0=np.ones(7))), InputError, 'h0')
case(E, "chunks: x scalar np.float64", lambda: list(TB(C, 2).chunks(P, x=np.float64(1), y=YS)), InputError, 'x')


def _tb_then_change_batch():
    tb = TB(C, 2)
    list(tb.chunks(P, x=XB, y=YB))                      # B = 2, state carried
    return list(tb.chunks(P, x=np.ones((4, 3, 4)), y=np.ones((4, 3), int)))   # B = 3


case(E, "carried state of B=2, next call with B=3", _tb_then_change_batch, InputError, 'h0')


def _tb_then_unbatched():
    tb = TB(C, 2)
    list(tb.chunks(P, x=XB, y=YB))
    return list(tb.chunks(P, x=XS, y=YS))


case(E, "carried state of B=2, next call unbatched", _tb_then_unbatched, InputError, 'h0')

E = "ur.training.train"
TR = ur.training.train
OPT = lambda p: ur.optim.SGD(p, lr=0.01)
BAT = [{"x": XS, "y": YS}]


def _tr(step=G, batches=BAT, opt=True, **kw):
    p = C.init_params()
    o = OPT(p) if opt is True else opt
    return TR(step, p, batches, o, progress=False, **kw)


case(E, "optimizer=None", lambda: _tr(opt=None), UnrollError, 'optimizer')
case(E, "optimizer of another dict", lambda: _tr(opt=OPT(C.init_params())), UnrollError, 'optimizer')
case(E, "epochs=0", lambda: _tr(epochs=0), UnrollError, 'epochs')
case(E, "epochs=1.5", lambda: _tr(epochs=1.5), UnrollError, 'epochs')
case(E, "batches=dict", lambda: _tr(batches=BAT[0]), InputError, 'batches')
case(E, "batches=5", lambda: _tr(batches=5), InputError, 'batches')
case(E, "batches=[]", lambda: _tr(batches=[]), InputError, 'batches')
case(E, "batches=[5]", lambda: _tr(batches=[5]), InputError, 'batch 0')
case(E, "batches='xy' (a str)", lambda: _tr(batches="xy"), InputError, 'batches')
case(E, "batches=[{'x': xs}] (y missing)", lambda: _tr(batches=[{"x": XS}]), InputError, 'y')
case(E, "batches=lambda e: 5", lambda: _tr(batches=lambda e: 5), InputError, 'batches')
case(E, "batches=lambda e: None", lambda: _tr(batches=lambda e: None), InputError, 'batches')
case(E, "batches=lambda: [...] (wrong arity)", lambda: _tr(batches=lambda: BAT), InputError, 'batches')
case(E, "clip_norm=-1", lambda: _tr(clip_norm=-1), ParamError, 'clip_norm')
case(E, "clip_norm=nan", lambda: _tr(clip_norm=float("nan")), ParamError, 'clip_norm')
case(E, "clip_value=0", lambda: _tr(clip_value=0), ParamError, 'clip_value')
case(E, "target_loss=nan", lambda: _tr(target_loss=float("nan")), ParamError, 'target_loss')
case(E, "target_loss='low'", lambda: _tr(target_loss="low"), ParamError, 'target_loss')
case(E, "step='notgraph'", lambda: _tr(step="notgraph"), UnrollError, 'step')
case(E, "step=graph without loss", lambda: _tr(step=NL), UnrollError, 'loss')
case(E, "step=lambda returning 5", lambda: _tr(step=lambda p, b: 5), UnrollError, 'step')
case(E, "step=lambda returning (loss, list)", lambda: _tr(step=lambda p, b: (1.0, [1])), UnrollError, 'step')
case(E, "step=lambda returning (nan, grads)", lambda: _tr(step=lambda p, b: (float("nan"), {})), NonFiniteError, 'nan')
case(E, "step=lambda returning (1.0, {}) (no gradients: no update)", lambda: _tr(step=lambda p, b: (1.0, {})).losses, check=lambda r: r == [1.0])
case(E, "step=lambda returning ('a', {})", lambda: _tr(step=lambda p, b: ("a", {})), UnrollError, 'step')
case(E, "callback=5 (not callable)", lambda: _tr(callback=5), UnrollError, 'callback')
case(E, "desc=5 with progress=True", lambda: TR(G, (p := C.init_params()), BAT, OPT(p), desc=5, progress=True).final, UnrollError, 'desc')
case(E, "progress='no' (a string: truthy)", lambda: TR(G, (p := C.init_params()), BAT, OPT(p), progress="no").final, UnrollError, 'progress')
case(E, "step=TruncatedBPTT(k1=2)", lambda: _tr(step=TB(C, 2)).final, check=lambda r: np.isfinite(r) and r > 0)
case(E, "executor='nmba' (misspelt)", lambda: _tr(executor="nmba"), UnrollError, 'numba')
case(E, "executor=5", lambda: _tr(executor=5), UnrollError, 'executor')
case(E, "executor='interpret' with a function step", lambda: _tr(step=lambda p, b: (1.0, {}), executor="interpret"), UnrollError, 'TruncatedBPTT')
case(E, "executor='interpret' (runs the reference interpreter)", lambda: _tr(executor="interpret").final, check=lambda r: np.isfinite(r) and r > 0)
case(E, "TruncatedBPTT(executor='nope')", lambda: TB(C, 2, executor="nope"), UnrollError, 'executor')
case(E, "TruncatedBPTT(executor='interpret')", lambda: _tr(step=TB(C, 2, executor="interpret")).final, check=lambda r: np.isfinite(r) and r > 0)

E = "ur.optim"
O = ur.optim
case(E, "SGD({}, 0.1)", lambda: O.SGD({}, 0.1), ParamError, 'dict of parameter')
case(E, "SGD(params, lr=-1)", lambda: O.SGD(C.init_params(), lr=-1), ParamError, 'lr')
case(E, "SGD(params, lr=nan)", lambda: O.SGD(C.init_params(), lr=float("nan")), ParamError, 'lr')
case(E, "SGD(params, lr=0.1, momentum=-1)", lambda: O.SGD(C.init_params(), lr=0.1, momentum=-1), ParamError, 'momentum')
case(E, "SGD(params, 0.1, nesterov=True, momentum=0)", lambda: O.SGD(C.init_params(), lr=0.1, nesterov=True), ParamError, 'momentum')
case(E, "Adam(params, betas=(1.5, 0.9))", lambda: O.Adam(C.init_params(), betas=(1.5, 0.9)), ParamError, '1.5')
case(E, "Adam(params, betas='ab')", lambda: O.Adam(C.init_params(), betas="ab"), ParamError, 'ab')
case(E, "Adam(params, betas=(0.9,))", lambda: O.Adam(C.init_params(), betas=(0.9,)), ParamError, 'betas')
case(E, "Adam(params, eps=0)", lambda: O.Adam(C.init_params(), eps=0), ParamError, 'eps')
case(E, "RMSprop(params, alpha=2)", lambda: O.RMSprop(C.init_params(), alpha=2), ParamError, 'alpha')
case(E, "RMSprop(params, centered='yes')", lambda: O.RMSprop(C.init_params(), centered="yes"), ParamError, 'yes')
case(E, "opt.step([1])", lambda: O.SGD(C.init_params(), 0.1).step([1]), ParamError, 'not a list')
case(E, "opt.step({'U': wrong shape})", lambda: O.SGD(C.init_params(), 0.1).step({"U": np.ones(3)}), ParamError, 'U')
case(E, "opt.step({'U': NaN})", lambda: O.SGD(C.init_params(), 0.1).step({"U": np.full((3, 4), np.nan)}), NonFiniteError, 'U')
case(E, "opt.step({'U': list})", lambda: O.SGD(C.init_params(), 0.1).step({"U": np.ones((3, 4)).tolist()}), ParamError, 'U')
case(E, "opt.step({'Uu': ...}) (misspelled: silently passed over)", lambda: O.SGD(C.init_params(), 0.1).step({"Uu": np.ones((3, 4))}), ParamError, 'Uu')
case(E, "clip_grad_norm(grads, -1)", lambda: O.clip_grad_norm({"U": np.ones(3)}, -1), ParamError, 'max_norm')
case(E, "clip_grad_norm('x', 1)", lambda: O.clip_grad_norm("x", 1), ParamError, 'clip_grad_norm')
case(E, "clip_grad_norm({'U': list}, 1)", lambda: O.clip_grad_norm({"U": [1.0, 2.0]}, 1), ParamError, 'U')
case(E, "clip_grad_value(grads, nan)", lambda: O.clip_grad_value({"U": np.ones(3)}, float("nan")), ParamError, 'nan')
case(E, "clip_grad_norm({'U': NaN}, 1)", lambda: O.clip_grad_norm({"U": np.full(3, np.nan)}, 1), NonFiniteError, 'U')
case(E, "global_norm({'U': 'a'})", lambda: O.global_norm({"U": "a"}), ParamError, 'U')

# --- render functions -------------------------------------------------------------------------
E = "ur.render.*"
R = ur.render
DOT = C.to_dot()
case(E, "render(dot, 'x.jpg')", lambda: R.render(DOT, "x.jpg"), RenderError, 'x.jpg')
case(E, "render(None, 'x.dot')", lambda: R.render(None, "x.dot"), RenderError, 'None')
case(E, "render(5, 'x.dot')", lambda: R.render(5, "x.dot"), RenderError, 'int 5')
case(E, "render('not dot source', 'x.svg')", lambda: R.render("not dot source {", "x.svg"), RenderError, 'source')
case(E, "render(dot, 123) (path an int)", lambda: R.render(DOT, 123), RenderError, '123')
case(E, "render(dot, 'x.svg', format='jpg')", lambda: R.render(DOT, "x.svg", format="jpg"), RenderError, "'jpg'")
case(E, "render(dot, 'x.svg', format=5)", lambda: R.render(DOT, "x.svg", format=5), RenderError, 'format')
case(E, "render(dot, 'x.png', zoom=nan)", lambda: R.render(DOT, "x.png", zoom=float("nan")), RenderError, 'zoom')
case(E, "render(dot, '/nonexistent/x.svg')", lambda: R.render(DOT, "/nonexistent/x.svg"), RenderError, '/nonexistent/x.svg')
case(E, "render(dot, '/proc/x.dot') (unwritable)", lambda: R.render(DOT, "/proc/x.dot"), RenderError, '/proc/x.dot')
case(E, "render(dot, '.') (a folder)", lambda: R.render(DOT, "."), RenderError, 'folder')
case(E, "render(dot, 'dir.svg/') existing dir named .svg", lambda: (os.makedirs("d.svg", exist_ok=True), R.render(DOT, "d.svg"))[1], RenderError, 'svg')
case(E, "svg(None)", lambda: R.svg(None), RenderError, 'None')
case(E, "svg('garbage {')", lambda: R.svg("digraph { a -> }"), RenderError, 'could not lay out')
case(E, "svg(dot, engine='nope')", lambda: R.svg(DOT, engine="nope"), RenderError, 'nope')
case(E, "png(None)", lambda: R.png(None), RenderError, 'None')
case(E, "png(dot, zoom=-1)", lambda: R.png(DOT, zoom=-1), RenderError, 'zoom')
case(E, "png(dot, zoom='2')", lambda: R.png(DOT, zoom="2"), RenderError, 'zoom')
case(E, "pdf(5)", lambda: R.pdf(5), RenderError, 'int 5')
case(E, "circuit_dot('notcircuit')", lambda: R.circuit_dot("notcircuit"), RenderError, 'notcircuit')
case(E, "unrolled_dot('notgraph')", lambda: R.unrolled_dot("notgraph"), RenderError, 'notgraph')

# --- CLI --------------------------------------------------------------------------------------
E = "python -m unroll render"



def cli(*args):
    """``unroll render ARGS`` in this process: its verdict is exit status 2 with one
    "unroll: error: ..." line (raised here as an UnrollError carrying that line)."""
    def run():
        from unroll.__main__ import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(["render", *args])
            except SystemExit as e:             # argparse: a usage error names the option
                rc = e.code
        text = err.getvalue().strip()
        if rc == 2 and text:
            raise UnrollError(text.splitlines()[-1])
        return f"rc={rc} {text!r}"
    return run


case(E, "nomodule:obj", cli("nomodule:obj", "-o", "x.svg"), UnrollError, 'nomodule')
case(E, "no colon", cli("models_ok.py", "-o", "x.svg"), UnrollError, 'MODULE:OBJECT')
case(E, "missing file nofile.py:x", cli("nofile.py:x", "-o", "x.svg"), UnrollError, 'file')
case(E, "models_ok.py:nope", cli("models_ok.py:nope", "-o", "x.dot"), UnrollError, 'models_ok.py')
case(E, "models_ok.py:number (not a circuit)", cli("models_ok.py:number", "-o", "x.dot"), UnrollError, 'models_ok.py')
case(E, "models_ok.py:needs (needs args)", cli("models_ok.py:needs", "-o", "x.dot"), UnrollError, 'models_ok.py')
case(E, "models_ok.py:bad (returns 5)", cli("models_ok.py:bad", "-o", "x.dot"), UnrollError, 'models_ok.py')
case(E, "models_ok.py:boom (raises)", cli("models_ok.py:boom", "-o", "x.dot"), UnrollError, 'models_ok.py')
case(E, "models_err.py:x (module raises)", cli("models_err.py:x", "-o", "x.dot"), UnrollError, 'models_err.py')
case(E, "models_syntax.py:x (syntax error)", cli("models_syntax.py:x", "-o", "x.dot"), UnrollError, 'models_syntax.py')
case(E, "--steps 0", cli("models_ok.py:elman", "--steps", "0", "-o", "x.dot"), UnrollError, 'steps')
case(E, "--steps -1", cli("models_ok.py:elman", "--steps", "-1", "-o", "x.dot"), UnrollError, 'steps')
case(E, "--steps abc", cli("models_ok.py:elman", "--steps", "abc", "-o", "x.dot"), UnrollError, 'steps')
case(E, "--max-steps 0", cli("models_ok.py:elman", "--steps", "4", "--max-steps", "0", "-o", "x.dot"), UnrollError, 'steps')
case(E, "--max-steps -3", cli("models_ok.py:elman", "--steps", "4", "--max-steps", "-3", "-o", "x.dot"), UnrollError, 'steps')
case(E, "-o x.jpg", cli("models_ok.py:elman", "-o", "x.jpg"), UnrollError, 'x.jpg')
case(E, "-o nodir/x.svg", cli("models_ok.py:elman", "-o", "nodir/x.svg"), UnrollError, 'nodir')
case(E, "--detail all", cli("models_ok.py:elman", "--detail", "all", "-o", "x.dot"), UnrollError, 'detail')
case(E, "seq2seq without --steps", cli("models_ok.py:seq", "-o", "x.dot"), UnrollError, 'steps')
case(E, "seq2seq --steps 2 --output-steps 0", cli("models_ok.py:seq", "--steps", "2", "--output-steps", "0", "-o", "x.dot"), UnrollError, 'steps')
case(E, "--output-steps with a plain circuit (ignored?)", cli("models_ok.py:elman", "--steps", "2", "--output-steps", "5", "-o", "x.dot"), UnrollError, 'output')
case(E, "--mode backward without --steps (ignored?)", cli("models_ok.py:elman", "--mode", "backward", "-o", "x.dot"), UnrollError, 'mode')
case(E, "--detail ops with --steps (ignored?)", cli("models_ok.py:elman", "--steps", "2", "--detail", "ops", "-o", "x.dot"), UnrollError, 'detail')
case(E, "module 'unroll.nosuch:x'", cli("unroll.nosuch:x", "-o", "x.dot"), UnrollError, 'module')
case(E, "module 'unroll.models:elman' (needs args)", cli("unroll.models:elman", "-o", "x.dot"), UnrollError, 'unroll.models:elman')
case(E, "models_ok.py: (empty object name)", cli("models_ok.py:", "-o", "x.dot"), UnrollError, 'models_ok.py')

# --- unroll.testing ---------------------------------------------------------------------------
E = "unroll.testing"
import unroll.testing as ut
from hypothesis import given, settings, HealthCheck, strategies as st


def draw(strategy, n=3):
    out = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def t(v):
        out.append(v)
    t()
    return out


case(E, "random_circuits(max_states=0)", lambda: draw(ut.random_circuits(max_states=0)), UnrollError, 'max_states')
case(E, "random_circuits(max_states=-1)", lambda: draw(ut.random_circuits(max_states=-1)), UnrollError, 'max_states')
case(E, "random_circuits(max_delay=0)", lambda: draw(ut.random_circuits(max_delay=0)), UnrollError, 'max_delay')
case(E, "random_circuits(max_steps=0)", lambda: draw(ut.random_circuits(max_steps=0)), UnrollError, 'max_steps')
case(E, "random_circuits(max_ops=-1)", lambda: draw(ut.random_circuits(max_ops=-1)), UnrollError, 'max_ops')
case(E, "random_circuits(max_states='3')", lambda: draw(ut.random_circuits(max_states="3")), UnrollError, 'max_states')
def _dirs(s):
    out = []

    @settings(max_examples=10, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(s)
    def t(v):
        out.append(v)
    t()
    return sorted({st_.direction for cc in out for st_ in cc.circuit.states.values()})


case(E, "random_circuits(directions='forward') -> directions drawn", lambda: _dirs(ut.random_circuits(directions="forward")), UnrollError, 'directions')
case(E, "random_circuits(directions=('sideways',))", lambda: draw(ut.random_circuits(directions=("sideways",))), UnrollError, 'directions')
case(E, "random_circuits(inits=('bogus',))", lambda: draw(ut.random_circuits(inits=("bogus",))), UnrollError, 'inits')
case(E, "random_circuits(inits=())", lambda: draw(ut.random_circuits(inits=())), UnrollError, 'inits')
case(E, "random_circuits(primitives=['nope'])", lambda: draw(ut.random_circuits(primitives=["nope"])), UnrollError, 'primitives')
case(E, "random_circuits(primitives=[]) (falls back to all?)", lambda: draw(ut.random_circuits(primitives=[])), UnrollError, 'primitives')
case(E, "random_circuits(backward=False, directions=('backward',))", lambda: draw(ut.random_circuits(backward=False, directions=("backward",))), UnrollError, 'contradicts')
case(E, "params_for(circuit, dtype='int32')", lambda: draw(ut.params_for(C, dtype="int32")), DTypeError, 'int32')
case(E, "params_for(circuit, dtype='foo')", lambda: draw(ut.params_for(C, dtype="foo")), DTypeError, 'foo')
case(E, "params_for(circuit, scale=-1)", lambda: draw(ut.params_for(C, scale=-1)), UnrollError, 'scale')
case(E, "params_for(circuit, scale=nan)", lambda: draw(ut.params_for(C, scale=float("nan"))), UnrollError, 'scale')
case(E, "params_for('notcircuit')", lambda: draw(ut.params_for("notcircuit")), UnrollError, 'notcircuit')
case(E, "inputs_for(g, batch=-1)", lambda: draw(ut.inputs_for(G, batch=-1)), UnrollError, 'batch')
case(E, "inputs_for(g, batch=2.5)", lambda: draw(ut.inputs_for(G, batch=2.5)), UnrollError, 'batch')
case(E, "inputs_for(g, dtype='int32')", lambda: draw(ut.inputs_for(G, dtype="int32")), DTypeError, 'int32')
case(E, "inputs_for(circuit) (a Circuit, not a Graph)", lambda: draw(ut.inputs_for(C)), UnrollError, 'circuit')
case(E, "primitive_cases('nope')", lambda: draw(ut.primitive_cases("nope")), UnrollError, 'nope')


# --- found by review: each a class of its own ---------------------------------------------------
def _int_model():
    """A token model whose input is an integer class (embedded by one_hot)."""
    c = ur.Circuit("tokens")
    x = c.input("x", (), dtype="int")
    h = c.state("h", (4,))
    h.next = ur.tanh(c.param("W", (4, 4)) @ h.prev + c.param("E", (4, 3)) @ ur.one_hot(x, 3))
    c.output("o", c.param("V", (3, 4)) @ h)
    return c


_COUNT = [0]


def _vjp_case(vjp):
    """A circuit through a fresh primitive with this VJP, differentiated (then unregistered)."""
    _COUNT[0] += 1
    op = ur.primitive(f"vjp_case{_COUNT[0]}", lambda xp, x: x / (1 + xp.abs(x)), vjp)
    try:
        c = ur.Circuit("q")
        x = c.input("x", (3,))
        h = c.state("h", (3,))
        h.next = op(c.param("W", (3, 3)) @ h.prev + x)
        c.loss(ur.sum(h))
        return c.unroll(steps=2).value_and_grad(c.init_params(), x=np.ones((2, 3)))
    finally:
        ur.unregister(op)


def _lrelu(*args, **kw):
    """A parametric primitive applied to ``args`` (then unregistered)."""
    op = ur.primitive("lrelu_case", lambda xp, x, alpha=0.1: xp.maximum(x, alpha * x), None)
    try:
        return op(*args, **kw)
    finally:
        ur.unregister(op)


def _ro(a):
    a = a.copy()
    a.setflags(write=False)
    return a


E = "g.run"
case(E, "params with a non-str key", lambda: G.run({**P, 1: np.ones(2)}, x=XS, y=YS), ParamError, "unknown parameter 1")
case(E, "x a masked array", lambda: G.run(P, x=np.ma.masked_array(XS, XS > 0), y=YS), InputError, "masked array")
case(E, "return_sate=True (a misspelt option)", lambda: G.run(P, return_sate=True, x=XS, y=YS), InputError, "'return_state'")
E = "g.value_and_grad"
case(E, "chekpoint=2 (a misspelt option)", lambda: VG(P, chekpoint=2, x=XS, y=YS), InputError, "'checkpoint'")
E = "ur.gradcheck"
case(E, "rtoll=1e-3 (a misspelt option)", lambda: GC(G, P, rtoll=1e-3, x=XS, y=YS), InputError, "'rtol'")
E = "ur.hvp"
case(E, "vectors={'U': complex}", lambda: ur.hvp(G, P, {"U": np.ones((3, 4), complex)}, x=XS, y=YS), ParamError, "real numbers")
E = "ur.diagnostics"
case(E, "gradient_norms(state='h') (the option is states)", lambda: D.gradient_norms(G, P, state="h", x=XS, y=YS), InputError, "'states'")
case(E, "plot({'a': ragged lists})", lambda: D.plot({"a": [[1, 2], [3]]}, "p.png"), RenderError, "curve 'a'")
case(E, "plot(title='$a$ costs $5') (not math: drawn as text)", lambda: D.plot({"a": [1.0, 2.0]}, "p.png", title="$a$ costs $5"), check=lambda r: r == "p.png" and os.path.getsize("p.png") > 0)
case(E, "plot(title='$\\frac{$') (broken math)", lambda: D.plot({"a": [1.0, 2.0]}, "p.png", title="$\\frac{$"), RenderError, "mathtext")
E = "g.to_dot/g.render"
case(E, "relative=np.True_", lambda: G.to_dot(relative=np.True_).source, check=lambda r: "t-1" in r or "t+1" in r or "(t)" in r)
case(E, "keep=5 on τ = 3 (nothing elided)", lambda: C.unroll(steps=3).to_dot(keep=5).source, check=lambda r: "⋯" not in r)
case(E, "render('k.dot', zom=3) (misspelt zoom)", lambda: G.render("k.dot", zom=3), RenderError, "'zoom'")
E = "c.render/c.to_dot"
case(E, "render of a 300-character file name", lambda: C.render("a" * 300 + ".svg"), RenderError, "cannot write")
E = "ur.render.*"
case(E, "render(dot, 'x.png', zoom=np.int64(1))", lambda: str(R.render(DOT, "x.png", zoom=np.int64(1))), check=lambda r: r == "x.png" and open("x.png", "rb").read(4) == b"\x89PNG")
E = "c.init_params"
case(E, "xp='this' (a module name that is no array library)", lambda: C.init_params(xp="this"), UnrollError, "'this'")
E = "ur.optim"
case(E, "clip_grad_norm with a read-only gradient", lambda: O.clip_grad_norm({"W": np.full(3, 10.0), "U": _ro(np.full(3, 10.0))}, 1.0), ParamError, "U")
case(E, "clip_grad_value of a NumPy scalar", lambda: O.clip_grad_value({"W": np.float64(5.0)}, 1.0), ParamError, "W")
case(E, "opt.step of no parameter's gradient", lambda: O.Adam(C.init_params()).step({"encoder.W": np.ones((4, 4))}), ParamError, "encoder.W")
E = "h.delayed/h.next"
case(E, "h * inf (a non-finite constant)", lambda: _h()[3] * float("inf"), UnrollError, "inf")
case(E, "h ** 10**400", lambda: _h()[3] ** 10 ** 400, UnrollError, "exponent")
case(E, "h * array with NaN", lambda: _h()[3] * np.array([np.nan, 1.0, 1.0]), UnrollError, "NaN")
E = "ur.models (textbook)"
case(E, "elman(nonlinearity=['tanh'])", lambda: M.elman(3, 4, 2, nonlinearity=["tanh"]), CircuitError, "nonlinearity")
case(E, "conditioned(feed_previous='no')", lambda: M.conditioned(3, 4, 2, feed_previous="no"), CircuitError, "feed_previous")
case(E, "conditioned(sequence=np.True_)", lambda: sorted(M.conditioned(3, 4, 2, sequence=np.True_).inputs), check=lambda r: "x" in r)
E = "ur.models (layers)"
case(E, "rnn(3, 4, bias=np.True_)", lambda: list(M.rnn(3, 4, bias=np.True_).params), check=lambda r: "bias_ih_l0" in r)
case(E, "torch_names(-1)", lambda: M.torch_names(-1), CircuitError, "layer")
case(E, "torch_names(0, 5)", lambda: M.torch_names(0, 5), CircuitError, "suffix")
case(E, "rnn_cell(None, None, 4, names={})", lambda: M.rnn_cell(None, None, 4, names={}), CircuitError, "rnn_cell")
case(E, "lstm_cell(c, x, 4, names={})", lambda: M.lstm_cell(*fresh(), 4, names={}), CircuitError, "W_ih")
E = "ur.models.generate"
case(E, "encode=lambda k: k for an integer input", lambda: M.generate(_int_model(), _int_model().init_params(seed=2), [0, 1], 3, output="o", encode=lambda k: k, greedy=True), check=lambda r: len(r) == 5 and all(0 <= k < 3 for k in r))
E = "ur.training.train"
case(E, "step returning integer gradients", lambda: _tr(step=lambda p, b: (1.0, {"U": np.ones((3, 4), int)})), DTypeError, "train")
E = "python -m unroll render"
case(E, "models_ok.py:graph --steps 7 (already unrolled)", cli("models_ok.py:graph", "--steps", "7", "-o", "x.dot"), UnrollError, "already unrolled")
case(E, "seq --steps 2 --output-steps 0", cli("models_ok.py:seq", "--steps", "2", "--output-steps", "0", "-o", "x.dot"), UnrollError, "--output-steps")
case(E, "models_ok.py:graph --detail ops", cli("models_ok.py:graph", "--detail", "ops", "-o", "x.dot"), UnrollError, "--detail")
E = "unroll.testing"
case(E, "random_circuits(max_states=0), not drawn", lambda: ut.random_circuits(max_states=0), UnrollError, "max_states")
case(E, "random_circuits(primitives='tanh'), not drawn", lambda: ut.random_circuits(primitives="tanh"), UnrollError, "primitives")

E = "ops"
case(E, "ur.clip(x, 1.0, 0.0) (lo above hi)", lambda: ur.clip(fresh()[1], 1.0, 0.0), UnrollError, "lo = 1.0")
case(E, "ur.clip(x, 'a', 1.0)", lambda: ur.clip(fresh()[1], "a", 1.0), UnrollError, "lo")
case(E, "ur.leaky_relu(x, slope=nan)", lambda: ur.leaky_relu(fresh()[1], float("nan")), UnrollError, "slope")
case(E, "ur.elu(x, alpha=None)", lambda: ur.elu(fresh()[1], None), UnrollError, "alpha")
case(E, "ur.sqrt(3.0) (a number, not a circuit value)", lambda: ur.sqrt(3.0), UnrollError, "no variable")
case(E, "ur.maximum of two circuits' values", lambda: ur.maximum(fresh()[1], fresh()[1]), UnrollError, "different circuits")
case(E, "ur.primitive('tanh', ...) (a built-in's name)", lambda: ur.primitive("tanh", lambda xp, x: x, None), UnrollError, "registered already")
case(E, "ur.primitive(vjp='g')", lambda: ur.primitive("q_never", lambda xp, x: x, "g"), UnrollError, "vjp must be")
case(E, "ur.unregister(ur.tanh)", lambda: ur.unregister(ur.tanh), UnrollError, "not a registered primitive")

E = "ur.save/ur.load"
case(E, "save(params=list)", lambda: ur.save([np.ones(2)], "w.safetensors"), ParamError, "params must be a dict")
case(E, "save({'z': complex})", lambda: ur.save({"z": np.ones(2, complex)}, "w.safetensors"), ParamError, "complex128")
case(E, "save({1: array}) (a non-str name)", lambda: ur.save({1: np.ones(2)}, "w.safetensors"), ParamError, "1")
case(E, "save(metadata={'a': 1})", lambda: ur.save(P, "w.safetensors", metadata={"a": 1}), UnrollError, "metadata")
case(E, "save to a missing folder", lambda: ur.save(P, "nodir/w.safetensors"), UnrollError, "cannot write")
case(E, "load a missing file", lambda: ur.load("missing.safetensors"), InputError, "cannot read")
case(E, "load a DOT file", lambda: ur.load((R.render(DOT, "x.dot"), "x.dot")[1]), InputError, "safetensors")
case(E, "load with the wrong circuit", lambda: ur.load(ur.save(P, "w.safetensors"), circuit=ur.models.lstm(3, 4)), ParamError, "lacks")
case(E, "load(xp='this')", lambda: ur.load(ur.save(P, "w.safetensors"), xp="this"), UnrollError, "'this'")
case(E, "save then load (control)", lambda: ur.load(ur.save(P, "w.safetensors"), circuit=C), check=lambda r: all(np.array_equal(r[k], P[k]) for k in P))
E = "g.run"
case(E, "run(outputs=['oo'])", lambda: G.run(P, x=XS, outputs=["oo"]), InputError, "'oo'")
case(E, "run(outputs='o') without targets (control)", lambda: G.run(P, x=XS, outputs="o"), check=lambda r: list(r) == ["o"] and r["o"].shape == (4, 4))
case(E, "run(outputs=['loss']) without targets", lambda: G.run(P, x=XS, outputs=["loss"]), InputError, "missing input y")

E = "ur.primitive"
case(E, "a VJP with no cotangent", lambda: _vjp_case(lambda g, out, x: ()), UnrollError, "returned 0 cotangents")
case(E, "a VJP returning None", lambda: _vjp_case(lambda g, out, x: None), UnrollError, "not a tuple")
case(E, "a VJP returning a bare value", lambda: _vjp_case(lambda g, out, x: g), UnrollError, "not a tuple")
case(E, "a VJP cotangent of the wrong shape", lambda: _vjp_case(lambda g, out, x: (ur.sum(g),)), UnrollError, "cotangent of shape")
case(E, "a VJP with the wrong signature", lambda: _vjp_case(lambda g, x: (g,)), UnrollError, "VJP rule of primitive")
case(E, "a forward of the wrong shape", lambda: ur.primitive("bad_f1", lambda xp, x: xp.sum(x, axis=-1), None), UnrollError, "shape")
case(E, "a forward returning a list", lambda: ur.primitive("bad_f2", lambda xp, x: [x], None), UnrollError, "list")
case(E, "a forward without xp", lambda: ur.primitive("bad_f3", lambda x: x, None), UnrollError, "xp")
case(E, "a template that does not fit", lambda: ur.primitive("bad_f4", lambda xp, x: x * 1.0, None, code="{0} + {1}"), UnrollError, "does not fit")
case(E, "a misspelt parameter", lambda: _lrelu(fresh()[1], alfa=0.2), UnrollError, "'alpha'")
case(E, "too many operands", lambda: _lrelu(fresh()[1], fresh()[1]), UnrollError, "operand")
case(E, "np.tanh of a circuit value", lambda: np.tanh(fresh()[1]), UnrollError, "ur.tanh")

E = "ur.compare_gradients"
_GR = G.value_and_grad(P, x=XS, y=YS)[1]
case(E, "an unknown parameter", lambda: ur.compare_gradients({"Wq": _GR["W"]}, G, P, x=XS, y=YS), InputError, "'Wq'")
case(E, "not a dict", lambda: ur.compare_gradients([_GR["W"]], G, P, x=XS, y=YS), InputError, "mine")
case(E, "an empty dict", lambda: ur.compare_gradients({}, G, P, x=XS, y=YS), InputError, "mine")
case(E, "a function returning a list", lambda: ur.compare_gradients(lambda p, **i: [1], G, P, x=XS, y=YS), InputError, "mine")
case(E, "a gradient graph for g", lambda: ur.compare_gradients(_GR, ur.grad(G), P, x=XS, y=YS), InputError, "forward graph")
case(E, "rtol=-1", lambda: ur.compare_gradients(_GR, G, P, rtol=-1, x=XS, y=YS), InputError, "rtol")
case(E, "a missing input", lambda: ur.compare_gradients(_GR, G, P, x=XS), InputError, "missing input y")
case(E, "the transpose of U", lambda: ur.compare_gradients({"U": _GR["U"].T}, G, P, x=XS, y=YS), check=lambda r: not r.ok and "transposed?" in str(r))
case(E, "unroll's own gradients (control)", lambda: ur.compare_gradients(_GR, G, P, x=XS, y=YS), check=lambda r: r.ok)
case(E, "a gradient that is text", lambda: ur.compare_gradients({"W": "zeros"}, G, P, x=XS, y=YS), InputError, "W")
case(E, "plot() of totals only", lambda: ur.compare_gradients({"W": 2 * _GR["W"]}, G, P, x=XS, y=YS).plot(), InputError, "per step")
case(E, "plot() of gradients that all match", lambda: ur.compare_gradients(_GR, G, P, x=XS, y=YS).plot(), InputError, "matches")
case(E, "plot() to a .gif", lambda: ur.compare_gradients({"W": np.zeros((4, 3, 3)) + 1.0}, G, P, x=XS, y=YS).plot("departures.gif"), RenderError, ".png")

E = "ur.latex"


def _no_loss():
    c, x = fresh()
    h = c.state("h", (4,))
    h.next = ur.tanh(x + h.prev)
    return c


def _delay2():
    c, x = fresh()
    h = c.state("h", (4,))
    h.next = ur.tanh(x + c.param("W", (4, 4)) @ h.delayed(2))
    c.loss(ur.sum(h * h))
    return c


def _every_other():
    c, x = fresh()
    h = c.state("h", (4,))
    h.next = ur.tanh(x + c.param("W", (4, 4)) @ h.delayed(2))
    c.loss(ur.sum(h * h), at="last")
    return c


def _changed():
    c = elman()
    eq = ur.latex(c, grad=True)
    c.param("extra", (2,))
    return eq.evaluate(P, x=np.eye(4)[[0, 1, 2, 2, 3]], y=np.array([1, 2, 2, 3, 0]))


def _agrees(eq, g, **inputs):
    loss, grads = eq.evaluate(P, **inputs)
    want_loss, want = g.value_and_grad(P, **inputs)
    return np.allclose(loss, want_loss, rtol=1e-10) and all(
        np.allclose(grads[k], want[k], rtol=1e-10, atol=1e-12) for k in want)


case(E, "a number instead of a circuit", lambda: ur.latex(42), InputError, "Circuit")
case(E, "grad='yes'", lambda: ur.latex(C, grad="yes"), InputError, "grad")
case(E, "grad=True for a circuit with no loss", lambda: ur.latex(_no_loss(), grad=True), InputError, "c.loss")
case(E, "a gradient graph", lambda: ur.latex(ur.grad(G), grad=True), InputError, "forward graph")
case(E, "render to a .gif", lambda: ur.latex(C).render("eqs.gif"), RenderError, ".png")
case(E, "render into a missing folder", lambda: ur.latex(C).render("no/such/eqs.png"), RenderError, "no/such")
case(E, "render to a 300-character name", lambda: ur.latex(C).render("e" * 300 + ".png"), RenderError, "255 bytes")
case(E, "render to a name with a NUL byte", lambda: ur.latex(C).render("e\x00.png"), RenderError, "NUL")
case(E, "evaluate without the targets", lambda: ur.latex(C, grad=True).evaluate(P, x=XS), InputError, "missing input y")
case(E, "evaluate an unknown parameter", lambda: ur.latex(C, grad=True).evaluate({**P, "Q": P["W"]}, x=XS, y=YS), ParamError, "Q")
case(E, "evaluate a graph's equations at another τ", lambda: ur.latex(G, grad=True).evaluate(P, x=XS[:3], y=YS[:3]), InputError, "τ = 4")
case(E, "evaluate a delay of 2 over 2 steps", lambda: ur.latex(_delay2(), grad=True).evaluate({"W": np.eye(4)}, x=np.ones((2, 4))), InputError, "too short")
case(E, "evaluate after the circuit changed", _changed, InputError, "changed")
case(E, "evaluate forward-only equations of a circuit with no loss", lambda: ur.latex(_no_loss()).evaluate({}, x=np.ones((3, 4))), InputError, "c.loss")
case(E, "a graph's equations at its τ (control)", lambda: _agrees(ur.latex(G, grad=True), G, x=XS, y=YS), check=bool)
case(E, "a circuit's equations at 5 steps (control)", lambda: _agrees(ur.latex(C, grad=True), C.unroll(steps=5), x=np.eye(4)[[0, 1, 2, 2, 3]], y=np.array([1, 2, 2, 3, 0])), check=bool)
case(E, "render(None)", lambda: ur.latex(C).render(None), RenderError, "path")
case(E, "render(dpi=0)", lambda: ur.latex(C).render("eqs.png", dpi=0), InputError, "dpi")
case(E, "render(fontsize='a')", lambda: ur.latex(C).render("eqs.png", fontsize="a"), InputError, "fontsize")
case(E, "render(headings='no')", lambda: ur.latex(C).render("eqs.png", headings="no"), InputError, "headings")
case(E, "render into a folder", lambda: ur.latex(C).render("."), RenderError, "folder")
case(E, "evaluate a scalar sequence", lambda: ur.latex(C, grad=True).evaluate(P, x=np.float64(1.0), y=YS), InputError, "x")
case(E, "evaluate(steps=0)", lambda: ur.latex(C, grad=True).evaluate(P, steps=0, x=XS, y=YS), InputError, "steps")
case(E, "evaluate(steps=) other than the sequences'", lambda: ur.latex(C, grad=True).evaluate(P, steps=5, x=XS, y=YS), InputError, "steps")
case(E, "a chained graph", lambda: ur.latex(ur.models.encoder_decoder(3, 4, 3).unroll(3, 2), grad=True), InputError, "each circuit")
case(E, "equations that depend on τ itself", lambda: ur.latex(_every_other(), grad=True), UnrollError, "c.unroll(steps=T)")
case(E, "plot(5)", lambda: ur.compare_gradients({"W": np.zeros((4, 3, 3)) + 1.0}, G, P, x=XS, y=YS).plot(5), RenderError, "path")
case(E, "plot(ax=5)", lambda: ur.compare_gradients({"W": np.zeros((4, 3, 3)) + 1.0}, G, P, x=XS, y=YS).plot(ax=5), InputError, "Axes")
