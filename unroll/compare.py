"""Check gradients someone derived by hand (a homework's BPTT) against unroll's, and say where
the derivation departs.

``compare_gradients(mine, g, params, **inputs)`` computes the gradients of ``g`` and compares
``mine`` with them, parameter by parameter and entry by entry. A parameter shared by every
step has one contribution per step, ∂W⁽ᵗ⁾ (eq. 10.26: ∇_W L = Σ_t ∂W⁽ᵗ⁾); given those
(an array of shape (τ, *W.shape)), the report names the first step, going backward in time
as BPTT does, where they stop matching. At that step it tries the slips a derivation makes
most often, each computed from the real intermediate values of the unrolled graph:

- **the recurrent term left out**: the step's gradient without what flows back from step
  t+1 (``Wᵀ ∂h⁽ᵗ⁺¹⁾``), i.e. truncated BPTT with the chain cut at every step;
- **a nonlinearity's derivative left out**: the cotangent taken after tanh (∂h⁽ᵗ⁾) where the
  product needs it before (∂a⁽ᵗ⁾ = ∂h⁽ᵗ⁾ ⊙ (1 − h⁽ᵗ⁾²));
- **an operand off by one step**: h⁽ᵗ⁾ or h⁽ᵗ⁻²⁾ where the step reads h⁽ᵗ⁻¹⁾;

and says which one the student's value equals. Totals alone (shape ``W.shape``) are checked
against the same slips made at every step.
"""
from __future__ import annotations

import numbers
import textwrap

import numpy as np

from .errors import InputError, RenderError, UnrollError, output_file
from .ir import Graph, Value

__all__ = ["compare_gradients", "GradientReport", "Verdict"]


class Verdict:
    """How one gradient compares: ``ok``, the largest error and where, and for a wrong one
    the first step it departs at (``step``) and the slip it matches (``cause``)."""

    def __init__(self, name, shape, ok, max_abs, rel, where, yours, want, step=None,
                 matches_from=None, cause=None, note=None):
        self.name, self.shape, self.ok = name, shape, ok
        self.max_abs, self.rel, self.where = max_abs, rel, where
        self.yours, self.want = yours, want
        self.step = step                    # the first step (backward in time) that differs
        self.matches_from = matches_from    # the steps after it all match
        self.cause = cause                  # the slip it equals, in words, or None
        self.note = note                    # a shape problem, or the per-step format
        self.up = False                     # BPTT runs up in time (every state backward)
        self.per_step = None                # max |Δ| of ∂W(t), t = 1..τ (per-step input)

    def __repr__(self) -> str:
        return f"<Verdict {self.name}: {'ok' if self.ok else 'wrong'}>"


class GradientReport:
    """What :func:`compare_gradients` found; ``print(report)`` explains it."""

    def __init__(self, graph: str, steps: int, verdicts: list):
        self.graph, self.steps, self.verdicts = graph, steps, verdicts

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def plot(self, path=None, *, ax=None):
        """Bars of max |Δ| of each wrong parameter's per-step contribution ∂W(t) against t
        (those given per step), the step where the derivation departs marked; the slip it
        matches in the title. Draws into a new figure, or into ``ax`` (one matplotlib Axes
        per such parameter), saved to ``path`` if given (PNG, SVG or PDF). Returns the
        figure."""
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        wrong = [v for v in self.verdicts if not v.ok and v.per_step is not None]
        if not wrong:
            raise InputError("GradientReport.plot: no wrong gradient was given per step; "
                             "pass each ∂W(t) stacked, shape (τ, *shape), to see where "
                             "they depart" if not self.ok else
                             "GradientReport.plot: every gradient matches; nothing to draw")
        if path is not None:
            path = output_file(path, (".png", ".svg", ".pdf"), "GradientReport.plot")
        if ax is None:
            fig = Figure(figsize=(6.4, 1.2 + 1.6 * len(wrong)))
            FigureCanvasAgg(fig)
            axes = fig.subplots(len(wrong), 1, squeeze=False)[:, 0]
        else:
            from matplotlib.axes import Axes
            axes = [ax] if isinstance(ax, Axes) else list(ax) \
                if isinstance(ax, (list, tuple)) else None
            if axes is None or len(axes) != len(wrong) or \
                    not all(isinstance(a, Axes) for a in axes):
                raise InputError(f"GradientReport.plot: ax must be {len(wrong)} matplotlib "
                                 f"Axes, one per wrong parameter given per step "
                                 f"({', '.join(v.name for v in wrong)}), not {ax!r:.60}")
            fig = axes[0].figure
        steps = np.arange(1, self.steps + 1)
        for a, v in zip(axes, wrong):
            colours = ["#c0392b" if t == v.step else "#95a5a6" for t in steps]
            errs = np.maximum(v.per_step, 1e-18)
            a.bar(steps, errs, color=colours)
            a.set_yscale("log")                 # from a decade under the smallest bar: each
            a.set_ylim(bottom=errs.min() / 10)  # bar's height shows its size
            a.set_ylabel(f"max |Δ ∂{v.name}(t)|", fontsize=8)
            a.set_xticks(steps)
            a.set_title(textwrap.fill(f"∂{v.name}: departs at t = {v.step}" + (
                f" — {v.cause}" if v.cause else ""), 95), fontsize=8, loc="left")
        axes[-1].set_xlabel("t")
        with matplotlib.rc_context({"svg.fonttype": "path"}):
            fig.tight_layout()
            if path is not None:
                try:
                    fig.savefig(path, dpi=120)
                except OSError as e:
                    raise RenderError(f"cannot write {str(path)!r}: {e.strerror or e}") \
                        from None
        return fig

    def __getitem__(self, name: str) -> Verdict:
        for v in self.verdicts:
            if v.name == name:
                return v
        raise KeyError(name)

    def __str__(self) -> str:
        wrong = [v for v in self.verdicts if not v.ok]
        head = (f"compare_gradients {self.graph} (τ = {self.steps}): "
                + ("every gradient matches" if not wrong else
                   f"{len(wrong)} of {len(self.verdicts)} gradients differ"))
        lines = [head]
        for v in self.verdicts:
            if v.note and v.max_abs is None:
                lines.append(f"  WRONG {v.name}: {v.note}")
                continue
            state = "ok   " if v.ok else "WRONG"
            where = "" if v.ok or v.where is None else \
                f" at {v.where}: yours {v.yours:.6g}, unroll's {v.want:.6g}"
            lines.append(f"  {state} {v.name} {tuple(v.shape)}: max |Δ| {v.max_abs:.2e}"
                         f"{where}")
            if v.ok:
                continue
            if v.step is not None:
                up = getattr(v, "up", False)
                lines.append(f"        per step: your ∂{v.name}(t) " + (
                    f"matches for t {'≤' if up else '≥'} {v.matches_from}, not at t = {v.step}"
                    if v.matches_from is not None else
                    f"differs already at t = {v.step}, the step BPTT starts from"))
            if v.cause:
                lines.append(f"        {v.cause}")
            if v.note:
                lines.append(f"        {v.note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<GradientReport {self.graph}: {'ok' if self.ok else 'differs'}>"


def compare_gradients(mine, g: Graph, params: dict, *, rtol: float = 1e-6,
                      atol: float = 1e-9, **inputs) -> GradientReport:
    """Compare hand-derived gradients with unroll's, and locate the first wrong step.

    Parameters
    ----------
    mine : dict or callable
        {name: gradient} for parameters of ``g``: either the total (the parameter's shape)
        or its per-step contributions ∂W⁽¹⁾..∂W⁽ᵗ⁾ stacked, shape (τ, *shape). Or a function
        ``mine(params, **inputs)`` returning such a dict (or ``(loss, dict)``).
    g : Graph
        The unrolled forward graph (``c.unroll(τ)``); the loss must be the one ``mine``
        differentiates (averaged over the batch, summed over the steps).
    rtol, atol : float
        Tolerances of the agreement, as ``numpy.allclose``.

    Returns
    -------
    GradientReport
        ``.ok``, one :class:`Verdict` per gradient, and an explanation when printed.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> g = ur.models.elman(3, 4, 2).unroll(steps=3)
    >>> params = g.circuit.init_params(seed=0)
    >>> xs, ys = np.ones((3, 3)), np.array([0, 1, 1])
    >>> loss, grads = g.value_and_grad(params, x=xs, y=ys)
    >>> ur.compare_gradients(grads, g, params, x=xs, y=ys).ok
    True
    """
    from .api import grad_graph, resolve_wrt
    from .runtime import bind_arguments, interpret
    if not isinstance(g, Graph) or g.base is not None:
        raise InputError(f"compare_gradients: g must be the unrolled forward graph "
                         f"(c.unroll(τ)), not {type(g).__name__}")
    for what, v in (("rtol", rtol), ("atol", atol)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
            raise InputError(f"compare_gradients: {what} must be a number >= 0, not {v!r}")
    if callable(mine):
        got = mine({k: np.array(a, copy=True) for k, a in params.items()},
                   **{k: np.array(a, copy=True) for k, a in inputs.items()})
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], dict):
            got = got[1]
        mine = got
    if not isinstance(mine, dict) or not mine:
        raise InputError("compare_gradients: mine must be a dict {parameter name: gradient} "
                         "(or a function returning one), with at least one entry")
    unknown = [k for k in mine if k not in g.params]
    if unknown:
        raise InputError(f"compare_gradients: {unknown[0]!r} is not a parameter of {g.name} "
                         f"(its parameters: {', '.join(g.params)})")
    names = list(mine)
    wrt = resolve_wrt(g, names)
    gg = grad_graph(g, list(wrt))
    bound = bind_arguments(g, params, inputs)
    env = interpret(gg, dict(bound.env), bound.xp)
    T = g.steps
    slips = _Slips(g, gg, env, params, inputs, names, bound.xp)
    verdicts = []
    for name in names:
        want = np.asarray(env[gg.grads[name]])
        try:
            yours = np.asarray(mine[name], dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"compare_gradients: your gradient of {name} is a "
                             f"{type(mine[name]).__name__}, not an array of numbers "
                             f"(shape {tuple(want.shape)}, or (τ, *shape) per step)") from None
        shape = want.shape
        per_step = yours.shape == (T,) + shape
        if yours.shape != shape and not per_step:
            hint = " (transposed?)" if yours.shape == shape[::-1] and len(shape) == 2 else ""
            verdicts.append(Verdict(name, shape, False, None, None, None, None, None,
                                    note=f"shape {yours.shape}, where ∂{name} has shape "
                                         f"{shape}{hint} (or (τ, *shape) = {(T,) + shape} "
                                         f"for its per-step contributions)"))
            continue
        total = yours.sum(axis=0) if per_step else yours
        err = np.abs(total - want)
        ok = bool(np.allclose(total, want, rtol=rtol, atol=atol))
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) \
            if err.size else None
        v = Verdict(name, shape, ok, float(err.max()) if err.size else 0.0,
                    float(err.max() / (np.abs(want).max() + 1e-300)) if err.size else 0.0,
                    where, float(total[where]) if where is not None else 0.0,
                    float(want[where]) if where is not None else 0.0)
        if not ok:
            contributions = slips.contributions(name)
            if per_step:
                # in the order BPTT runs: from t = τ down for states running forward in time
                # (from t = 1 up when every state runs backward)
                up = bool(g.directions) and all(d == "backward"
                                                for d in g.directions.values())
                order = range(1, T + 1) if up else range(T, 0, -1)
                v.per_step = np.array([float(np.max(np.abs(yours[t - 1] - contributions[t]),
                                                    initial=0.0)) for t in range(1, T + 1)])
                for t in order:
                    if not np.allclose(yours[t - 1], contributions[t], rtol=rtol, atol=atol):
                        v.step, v.up = t, up
                        v.matches_from = None if t == order[0] else (t - 1 if up else t + 1)
                        v.cause = slips.explain(name, t, yours[t - 1], rtol, atol)
                        break
            else:
                v.cause = slips.explain_total(name, total, rtol, atol)
                v.note = (f"pass ∂{name}'s per-step contributions, shape {(T,) + shape}, to "
                          "find the first step that differs")
        verdicts.append(v)
    return GradientReport(g.name, T, verdicts)


class _Slips:
    """The per-step contributions of each parameter, and the usual slips, computed from the
    values of the unrolled graph (``env``: everything the interpreter computed)."""

    def __init__(self, g, gg, env, params, inputs, names, xp):
        self.g, self.gg, self.env, self.xp = g, gg, env, xp
        self.params, self.inputs, self.names = params, inputs, names
        self.producer = {v: e for e in gg.eqns for v in e.outs}
        self.readers: dict = {}
        for e in gg.eqns[:len(g.eqns)]:
            for x in e.inputs:
                if type(x) is Value:
                    self.readers.setdefault(x, []).append(e)
        self.primal_of = {}                  # cotangent Value -> the forward Values it is of
        for v, ct in gg.cotangents.items():
            self.primal_of.setdefault(ct, []).append(v)
        self.by_step = {(v.name, v.t): v for e in g.eqns for v in e.outs}
        self.by_step.update({(v.name, v.t): v for v in g.inputs()})
        self._cut = None

    def contributions(self, name: str) -> dict:
        """t -> ∂W⁽ᵗ⁾ (zeros at a step that has none)."""
        shape = np.shape(self.env[self.gg.grads[name]])
        out = {t: np.zeros(shape) for t in range(1, self.g.steps + 1)}
        for t, v in self.gg.contributions.get(name, ()):
            if t is not None and 1 <= t <= self.g.steps:
                out[t] = out[t] + np.asarray(self.env[v])
        return out

    # --- the slips -------------------------------------------------------------------------

    def _alternatives(self, name: str, t: int) -> list:
        """[(how ∂W⁽ᵗ⁾ was computed wrongly, what that means, its value)] at step t."""
        out = []
        cut = self._without_recurrence()
        if cut is not None and name in cut and t in cut[name]:
            state = next(iter(self.g.states), "h")
            nxt = "t-1" if self.g.directions.get(state) == "backward" else "t+1"
            out.append((f"without the recurrent term (the gradient from step {nxt}, "
                        f"Wᵀ ∂{state}({nxt}))",
                        "the gradient flowing back from later steps seems missing",
                        cut[name][t]))
        for step, v in self.gg.contributions.get(name, ()):
            e = self.producer.get(v) if step == t else None
            if e is None:
                continue
            for i, x in enumerate(e.inputs):
                if type(x) is not Value:
                    continue
                if x in self.primal_of:                      # a cotangent operand
                    after = self._after_nonlinearity(x)
                    if after is not None:
                        y, op = after
                        out.append((f"computed with ∂{y.name}, the gradient after {op}, "
                                    "instead of the one before it",
                                    f"the derivative of {op} ({op}′) seems left out",
                                    self._apply(e, i, self.env[self.gg.cotangents[y]])))
                elif x.t is not None and x.name in self.g.states:   # a state operand
                    for shift in (1, -1):
                        other = self.by_step.get((x.name, x.t + shift))
                        if other is not None and other in self.env:
                            d = x.t + shift - t
                            out.append((f"computed with {x.name}(t{d:+d}) where the step "
                                        f"reads {x.name}(t{x.t - t:+d})".replace("+0", ""),
                                        "an operand is off by one step",
                                        self._apply(e, i, self.env[other])))
        return out

    def _apply(self, e, i, value):
        args = [self.env[x] if type(x) is Value else x.val for x in e.inputs]
        args[i] = value
        out = e.prim.forward(self.xp, *args, **e.params)
        return np.asarray(out[0] if isinstance(out, tuple) else out)

    def _after_nonlinearity(self, ct):
        """The first value downstream of the primal of cotangent ``ct`` whose own cotangent
        differs (a sum passes its cotangent on unchanged, so ∂_1 = ∂_2 = ∂a), made by a unary
        elementwise primitive (tanh(a) for ∂a), and that primitive's name."""
        seen, frontier = set(), list(self.primal_of[ct])
        while frontier:
            v = frontier.pop()
            if v in seen:
                continue
            seen.add(v)
            for e in self.readers.get(v, ()):
                out = e.outs[0]
                if self.gg.cotangents.get(out) is ct:
                    frontier.append(out)
                elif e.prim.elementwise and e.prim.nargs == 1 and out in self.gg.cotangents:
                    return out, e.prim.name
        return None

    def _without_recurrence(self):
        """name -> t -> ∂W⁽ᵗ⁾ with the chain cut at every step (truncated BPTT, k = 1)."""
        if self._cut is None:
            self._cut = {}
            c = self.g.circuit
            if c is None or self.g.recipe is None or self.g.recipe[1] is not None:
                return None               # losses placed otherwise than the circuit does
            try:
                from .training import TruncatedBPTT
                tb = TruncatedBPTT(c, k1=1, wrt=list(self.names))
                for t, (_, grads) in enumerate(tb.chunks(self.params, **self.inputs), 1):
                    for k, a in grads.items():
                        self._cut.setdefault(k, {})[t] = np.asarray(a)
            except (UnrollError, TypeError, ValueError):
                self._cut = {}
        return self._cut or None

    def explain(self, name, t, yours_t, rtol, atol):
        for how, meaning, alt in self._alternatives(name, t):
            if np.shape(alt) == np.shape(yours_t) and np.allclose(yours_t, alt, rtol=rtol,
                                                                  atol=atol):
                return f"at t = {t} it equals ∂{name}(t) {how}: {meaning}"
        return None

    def explain_total(self, name, total, rtol, atol):
        """The slip that, made at every step, gives ``total``."""
        kinds: dict = {}
        for t in range(1, self.g.steps + 1):
            for how, meaning, alt in self._alternatives(name, t):
                kinds.setdefault((how, meaning), {})[t] = alt
        right = self.contributions(name)
        for (how, meaning), alts in kinds.items():
            s = sum(alts.get(t, right[t]) for t in right)
            if np.shape(s) == np.shape(total) and np.allclose(total, s, rtol=rtol, atol=atol):
                return f"it equals Σ_t ∂{name}(t) {how}: {meaning}"
        return None
