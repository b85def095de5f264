"""Gradient diagnostics: vanishing and exploding gradients, measured on a real backward pass.

Two quantities explain why plain RNNs forget (Goodfellow et al., section 10.7; Bengio et al.
1994; Pascanu et al. 2013):

* :func:`gradient_norms`: ‖∂L/∂h⁽ᵗ⁾‖ for t = 1..τ, the total gradient reaching each step's
  state. When the loss sits at the end, it shrinks (or grows) geometrically going back in time.
* :func:`jacobian_norms`: ‖∂h⁽ᵗ⁾/∂h⁽ᵗ⁻¹⁾‖₂, the spectral norm of one step's state transition
  (the other states held fixed). The gradient that reaches step t from step τ is multiplied by
  τ - t of these Jacobians, hence the geometry. An LSTM's cell state has
  ∂c⁽ᵗ⁾/∂c⁽ᵗ⁻¹⁾ = diag(f⁽ᵗ⁾): with forget gates near 1, nothing vanishes.

:func:`plot` draws either (or a dict of several models' curves) with matplotlib to a PNG.
Both take the same ``params`` and inputs as :meth:`Graph.value_and_grad`.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from . import backends
from .core import Var, bind
from .errors import RenderError, UnrollError, flag, suggest
from .ir import Graph, GraphBuilder, Value, expect_graph, live_eqns
from .api import grad_graph, value_and_grad
from .runtime import check_input_names
from .ops import mean_batch_p, sum as _sum

__all__ = ["gradient_norms", "jacobian_norms", "jacobians", "plot", "figure", "alignment"]


def gradient_norms(g: Graph, params: dict, states=None, **inputs) -> dict:
    """‖∂L/∂s⁽ᵗ⁾‖ for every step t = 1..τ of each state s, from one backward pass.

    The norm is taken over the batch and the state's features together (the loss averages the
    batch, so it is the norm of the whole gradient arriving at that step).

    Parameters
    ----------
    states : str or list of str, optional
        The states to measure (default: all of the graph's states).

    Returns
    -------
    dict
        {state name: float64 array of shape (τ,)}, index t-1 for step t; it can be passed to
        ``g.to_dot(heat=...)`` as is.
    """
    names = _states(g, states, "gradient_norms")
    check_input_names(g, inputs, ("states",))
    gg = grad_graph(g)
    wanted = {s: [gg.cotangents.get(g.states[s].get(t)) for t in range(1, g.steps + 1)]
              for s in names}
    got = gg.evaluate(params, [v for vs in wanted.values() for v in vs if v is not None],
                      **inputs)
    return {s: np.array([0.0 if v is None else
                         float(np.linalg.norm(backends.to_numpy(got[v]).ravel()))
                         for v in vs]) for s, vs in wanted.items()}


def jacobians(g: Graph, params: dict, state: str = "h", **inputs) -> np.ndarray:
    """The Jacobians ∂s⁽ᵗ⁾/∂s⁽ᵗ⁻¹⁾ of state ``s`` for t = 1..τ, by reverse mode.

    Each is the derivative of one step of the circuit with respect to the state's previous
    value, at the values the forward pass actually reached, holding the step's inputs and the
    other states fixed (for a backward-running state: ∂s⁽ᵗ⁾/∂s⁽ᵗ⁺¹⁾). All τ·B·H rows come from
    one backward pass of a one-step graph over a batch of τ·B·H probes.

    Returns
    -------
    numpy.ndarray
        Shape (τ, B, H, H) (or (τ, H, H) without a batch axis): row i, column j is
        ∂s_i⁽ᵗ⁾/∂s_j⁽ᵗ⁻¹⁾. States with more than one feature axis are flattened.
    """
    expect_graph(g, "jacobians")
    check_input_names(g, inputs, ("state",))
    if not isinstance(state, str):
        raise UnrollError(f"jacobians: state must be the name of one state (a str), not "
                          f"{type(state).__name__} {state!r:.60}")
    if g.parts or g.base is not None or not g.states:
        raise UnrollError("jacobians needs the forward graph of one circuit (c.unroll(...)); "
                          "for a composed graph, measure each circuit's graph on its own")
    _states(g, state, "jacobians")
    for name, k in g.delays.items():
        if k > 1:
            raise UnrollError(f"jacobians: state {name} reads {name}.delayed({k}); only "
                              "one-step delays have a one-step Jacobian")
    probe = _probe_graph(g, state)
    T = g.steps
    # the forward pass: every state's value at every step (and the initial ones)
    need = {s: [g.states[s][t + 1 if g.directions[s] == "backward" else t - 1]
                for t in range(1, T + 1)] for s in probe.prev_names}
    got = g.evaluate(params, [v for vs in need.values() for v in vs], **inputs)
    first = backends.to_numpy(got[need[state][0]])
    batched = first.ndim > len(need[state][0].shape)      # evaluate drops an axis not given
    B = first.shape[0] if batched else 1
    H = int(np.prod(g.states[state][1].shape, dtype=int))

    def lead(a, per_step: bool):
        """(T, [B,] ...) or ([B,] ...) -> (T*B*H, ...): each row repeated for every probe."""
        a = backends.to_numpy(a)
        if not per_step:
            a = np.broadcast_to(a, (T,) + a.shape)
        if not batched:
            a = a[:, None, ...]
        a = np.repeat(a[:, :, None, ...], H, axis=2)
        return np.ascontiguousarray(a.reshape((-1,) + a.shape[3:]))

    feed = {}
    for k, xs in probe.graph.seq_inputs.items():
        feed[k] = lead(inputs[k], True)[None, ...]
    for k in probe.graph.static_inputs:
        if k in probe.prev_names.values() or k == "probe":
            continue
        if k in inputs:
            feed[k] = lead(inputs[k], False)
    for s, k in probe.prev_names.items():
        vals = np.stack([backends.to_numpy(got[v]) for v in need[s]])
        feed[k] = lead(vals, True)
    eye = np.eye(H).reshape((H,) + g.states[state][1].shape)
    # the probe graph runs on the host, in the parameters' precision, whatever their backend
    sub = {k: backends.to_numpy(params[k]) for k in probe.graph.params}
    dtype = next(iter(sub.values())).dtype if sub else np.float64
    feed["probe"] = np.ascontiguousarray(np.broadcast_to(
        eye, (T, B) + eye.shape).reshape((-1,) + eye.shape[1:])).astype(dtype)
    feed = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in feed.items()}
    key = probe.prev_names[state]
    _, grads = value_and_grad(probe.graph, sub, wrt=(key,), **feed)
    n = feed["probe"].shape[0]
    J = backends.to_numpy(grads[key]).reshape(T, B, H, H) * n    # mean over the probes undone
    return J if batched else J[:, 0]


def jacobian_norms(g: Graph, params: dict, state: str = "h", **inputs) -> np.ndarray:
    """‖∂s⁽ᵗ⁾/∂s⁽ᵗ⁻¹⁾‖₂ (spectral norm) for t = 1..τ: shape (τ, B), or (τ,) without a batch
    axis. Values below 1 shrink the gradient at every step back; above 1, it can explode.
    See :func:`jacobians`."""
    J = jacobians(g, params, state, **inputs)
    return np.linalg.norm(J, 2, axis=(-2, -1))


def plot(series: dict, path, *, title: str = "", ylabel: str = "‖∂L/∂h⁽ᵗ⁾‖",
         xlabel: str = "step t", log: bool = True):
    """Plot per-step curves ({label: array of shape (τ,) or (τ, B)}; a batch is averaged)
    to ``path`` (PNG, SVG or PDF by extension) with matplotlib; returns the path."""
    curves = _series(series)
    with figure(path, title=title, xlabel=xlabel, ylabel=ylabel, log=log) as ax:
        for label, ys in curves.items():
            ax.plot(np.arange(1, len(ys) + 1), ys, label=label, markersize=3,
                    marker="o" if len(ys) <= 100 else None)      # (points on short curves)
    return path


def alignment(alpha, path, *, inputs=None, outputs=None, title: str = "attention weights α"):
    """The alignment matrix of an attention model (decoder step × encoder step, e.g.
    ``run(...)["alpha"]`` of :func:`unroll.models.attention_seq2seq` for one sequence) as a
    heat map PNG/SVG/PDF; ``inputs`` and ``outputs`` label the axes (tokens). Returns the
    path."""
    path = _plot_path(path)
    try:
        a = np.asarray(backends.to_numpy(alpha), dtype=float)
    except (TypeError, ValueError, UnrollError):
        raise RenderError(f"alignment: alpha must be an array of weights, not "
                          f"{type(alpha).__name__}") from None
    if a.ndim != 2 or not a.size:
        raise RenderError(f"alignment: alpha must be (decoder steps, encoder steps), one "
                          f"sequence, not shape {a.shape}; pick one batch entry first")
    if not np.isfinite(a).all() or (a < 0).any():
        raise RenderError("alignment: alpha must hold finite weights >= 0")
    for what, labels, n in (("inputs", inputs, a.shape[1]), ("outputs", outputs, a.shape[0])):
        if labels is not None and len(labels) != n:
            raise RenderError(f"alignment: {len(labels)} {what} labels for {n} steps")
    with _saved(path, (1.2 + 0.45 * a.shape[1], 1.0 + 0.45 * a.shape[0])) as (fig, ax):
        im = ax.imshow(a, cmap="Greys", vmin=0.0, vmax=1.0, aspect="equal")
        ax.set_xlabel("encoder step j")
        ax.set_ylabel("decoder step t")
        ax.set_xticks(range(a.shape[1]))
        ax.set_yticks(range(a.shape[0]))
        ax.set_xticklabels([str(v) for v in inputs] if inputs is not None
                           else range(1, a.shape[1] + 1))
        ax.set_yticklabels([str(v) for v in outputs] if outputs is not None
                           else range(1, a.shape[0] + 1))
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return path


@contextlib.contextmanager
def figure(path, *, title: str = "", xlabel: str = "", ylabel: str = "", log: bool = True):
    """A matplotlib axes to draw on; on leaving, labelled, log-scaled (when every value is
    positive), with a legend for several curves, and saved to ``path``."""
    path = _plot_path(path)
    for what, text in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel)):
        if not isinstance(text, str):
            raise RenderError(f"{what} must be a str, not {type(text).__name__} {text!r:.60}")
        _mathtext(text, what)
    log = flag(log, "log", err=RenderError)
    with _saved(path, (6.4, 3.6)) as (fig, ax):
        yield ax
        if log and all((line.get_ydata() > 0).all() for line in ax.get_lines()):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if len(ax.get_lines()) > 1:
            ax.legend()


@contextlib.contextmanager
def _saved(path, size: tuple):
    """A matplotlib figure and axes (off-screen) that are laid out and saved to ``path`` on
    leaving, and closed whatever happens."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=size, dpi=120)
    try:
        yield fig, ax
        fig.tight_layout()
        try:
            fig.savefig(path)
        except OSError as e:
            raise RenderError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


# --- internals ------------------------------------------------------------------------------

def _states(g: Graph, states, what: str) -> list:
    expect_graph(g, what)
    if states is None:
        return list(g.states)
    names = [states] if isinstance(states, str) else states
    if not isinstance(names, (list, tuple)) or not names \
            or not all(isinstance(s, str) for s in names):
        raise UnrollError(f"{what}: states must be a state's name or a non-empty list of "
                          f"names, not {states!r:.60}; the states of {g.name} are "
                          f"{', '.join(g.states) or 'none'}")
    for s in names:
        if s not in g.states:
            raise UnrollError(f"{g.name} has no state {s!r}{suggest(s, g.states)}; its states "
                              f"are {', '.join(g.states) or 'none'}")
    return list(names)


def _series(series) -> dict:
    """{label: float array (τ,)}, a batch axis averaged; every value finite."""
    if not isinstance(series, dict) or not series:
        raise RenderError(f"plot takes a dict {{label: per-step values}} with at least one "
                          f"curve, not {series!r:.60}; e.g. plot({{'W x 0.5': norms}}, path)")
    out = {}
    for label, ys in series.items():
        try:
            a = np.asarray(backends.to_numpy(ys), dtype=float)
        except (TypeError, ValueError, UnrollError):
            raise RenderError(f"plot: curve {label!r} must be numbers, one per step (got "
                              f"{type(ys).__name__} {ys!r:.40})") from None
        if a.ndim == 2:
            a = a.mean(axis=1)
        if a.ndim != 1 or a.size == 0:
            raise RenderError(f"plot: curve {label!r} must have shape (τ,) or (τ, B) with "
                              f"τ >= 1, not {np.shape(ys)}")
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise RenderError(f"plot: curve {label!r} is {a[bad[0]]} at step t = {bad[0] + 1}; "
                              "only finite values can be drawn (a NaN gradient: "
                              "value_and_grad(..., check_finite=True) finds where it began)")
        _mathtext(str(label), f"the label of curve {label!r}")
        out[label] = a
    return out


def _mathtext(text: str, what: str) -> None:
    """Refuse a text matplotlib would fail to draw: ``$...$`` that is not valid mathtext."""
    from matplotlib.cbook import is_math_text
    if not is_math_text(text):
        return
    from matplotlib.mathtext import MathTextParser
    try:
        MathTextParser("path").parse(text)
    except ValueError as e:
        why = str(e).strip().splitlines()[-1]
        raise RenderError(f"{what} {text!r:.60} is not valid matplotlib mathtext ({why}); "
                          "write a literal dollar sign as \\$") from None


_PLOT_FORMATS = ("png", "svg", "pdf")


def _plot_path(path):
    import os
    from pathlib import Path
    if not isinstance(path, (str, os.PathLike)):
        raise RenderError(f"the path to plot to must be a file name (str or Path), not "
                          f"{type(path).__name__} {path!r:.60}")
    p = Path(path)
    if p.suffix.lstrip(".").lower() not in _PLOT_FORMATS:
        raise RenderError(f"cannot plot to {p.name!r}: use a .png, .svg or .pdf file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise RenderError(f"cannot write {str(p)!r}: the folder {str(parent)!r} does not "
                          "exist; create it first (e.g. Path(...).mkdir(parents=True))")
    return path


_PROBES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # graph -> its probes


class _Probe:
    def __init__(self, graph, prev_names):
        self.graph, self.prev_names = graph, prev_names


def _probe_graph(g1: Graph, state: str) -> _Probe:
    """Step 1 of ``g1`` (its equations of step 1 and those done once) with the values each
    state reads from before made plain inputs, and the loss mean_b(probe · s⁽¹⁾): its
    gradient with respect to the previous s is probe · ∂s/∂s_prev. Built from the graph
    alone (every step of an unrolled graph computes the same body)."""
    cache = _PROBES.setdefault(g1, {})
    if state in cache:
        return cache[state]
    out = g1.states[state][1]
    g = Graph(f"{g1.name}_step_{state}", 1)
    prev_names, swap = {}, {}
    for s in g1.states:
        t0 = 2 if g1.directions[s] == "backward" else 0
        v0 = g1.states[s].get(t0)
        if v0 is None:
            continue
        name = f"{s}_prev__"
        prev_names[s] = name
        swap[v0] = Value(name, None, v0.aval._replace(batched=True), "input")
    swapped = [type(e)(e.prim, tuple(swap.get(x, x) if isinstance(x, Value) else x
                                     for x in e.inputs), e.params, e.outs, e.step)
               for e in g1.eqns if e.step is None or e.step == 1]
    g.eqns = eqns = live_eqns(swapped, [out])     # (what made the old initial values goes)
    used = {x for e in eqns for x in e.inputs if isinstance(x, Value)}
    g.params = {k: v for k, v in g1.params.items() if v in used}
    g.seq_inputs = {k: xs[:1] for k, xs in g1.seq_inputs.items() if xs[0] in used}
    g.static_inputs = {k: v for k, v in g1.static_inputs.items() if v in used}
    g.bounds = {k: b for k, b in g1.bounds.items() if k in g.seq_inputs or k in
                g.static_inputs}
    for v in swap.values():
        if v in used:
            g.static_inputs[v.name] = v
    prev_names = {s: n for s, n in prev_names.items() if n in g.static_inputs}
    if state not in prev_names:
        raise UnrollError(f"state {state} does not depend on its own previous value; its "
                          "one-step Jacobian is zero")
    p = Value("probe", None, out.aval)
    g.static_inputs["probe"] = p
    b = GraphBuilder(g)
    b.t, b.step = 1, 1
    b.prefix = "_probe"                         # names of its own: the compiler keys by name
    s = _sum(Var(b, p) * Var(b, out))
    b.t = b.step = None                          # the loss is untimed, as unrolling makes it
    g.loss = bind(mean_batch_p, s, rank=0).node
    g.states = {state: {1: out}}
    probe = _Probe(g, prev_names)
    cache[state] = probe
    return probe
