"""Prove a gradient right: compare reverse mode with central finite differences in float64.

``mode="full"`` perturbs every entry (the whole gradient; fine for small problems);
``mode="directional"`` compares, for random unit directions v, the finite-difference slope
(L(θ + εv) - L(θ - εv)) / 2ε with the inner product <∇L, v> of the backward pass: one pair of
forward passes per direction, so big models are cheap to check. ``order=2`` checks
Hessian-vector products of the twice-differentiated graph against finite differences of the
gradient. Failures name the parameter, the entry and, for sequence inputs, the step t.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import backends
from .errors import (GradcheckError, GradcheckWarning, NonFiniteError, ParamError, ShapeError,
                     UnrollError, integer, suggest)
from .api import grad_graph, resolve_wrt
from .ir import expect_graph
from .runtime import apply_eqn, bind_arguments, check_input_names, interpret

__all__ = ["gradcheck", "hvp", "GradcheckReport", "Check"]


@dataclass
class Check:
    """The comparison for one parameter or input."""
    name: str                   # parameter / input name
    shape: tuple                # its shape (as passed in)
    checked: int                # entries (full) or directions (directional) compared
    max_abs: float              # largest |analytic - numeric|
    max_rel: float              # largest |analytic - numeric| / max(|analytic|, |numeric|)
    worst: tuple | None         # index of the worst entry (full) or None
    step: int | None            # time step t of the worst entry (sequence inputs), else None
    analytic: float             # analytic value at the worst entry / direction
    numeric: float              # finite-difference value there
    ok: bool                    # every entry within tolerance

    @property
    def ratio(self) -> float:
        """Worst error relative to its tolerance (> 1 fails)."""
        return self._ratio

    _ratio: float = 0.0         # worst error / its tolerance (set by the checker)


@dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`; ``str(report)`` is a readable table."""
    graph: str
    mode: str
    order: int
    eps: float
    rtol: float
    atol: float
    checks: dict = field(default_factory=dict)     # name -> Check

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())

    @property
    def worst(self) -> Check | None:
        """The check with the largest error relative to its tolerance."""
        return max(self.checks.values(), key=lambda c: c.ratio, default=None)

    def raise_if_failed(self) -> "GradcheckReport":
        """Raise :class:`~unroll.errors.GradcheckError` (with this table) unless ok."""
        if not self.ok:
            w = self.worst
            where = f" at entry {w.worst}" if w.worst is not None else ""
            step = f", step t = {w.step}" if w.step is not None else ""
            raise GradcheckError(f"gradient of {w.name} disagrees with finite differences"
                                 f"{where}{step}: analytic {w.analytic:.6g} vs numeric "
                                 f"{w.numeric:.6g}\n{self}")
        return self

    def __str__(self) -> str:
        what = "entries" if self.mode == "full" else "directions"
        head = (f"gradcheck {self.graph}: mode={self.mode}, order={self.order}, "
                f"eps={self.eps:.1e}, rtol={self.rtol:.0e}, atol={self.atol:.0e}: "
                f"{'OK' if self.ok else 'FAILED'}")
        rows = [("name", "shape", what, "max abs err", "max rel err", "worst", "step",
                 "analytic", "numeric", "")]
        for c in self.checks.values():
            rows.append((c.name, str(c.shape), str(c.checked), f"{c.max_abs:.2e}",
                         f"{c.max_rel:.2e}", "-" if c.worst is None else str(c.worst),
                         "-" if c.step is None else str(c.step), f"{c.analytic:.6g}",
                         f"{c.numeric:.6g}", "ok" if c.ok else "FAIL"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join([head] + lines)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


# --- the checker ------------------------------------------------------------------------------

def gradcheck(g, params: dict, *, mode: str = "full", order: int = 1, wrt=None, eps=None,
              rtol: float = 1e-5, atol: float = 1e-7, directions: int = 4, seed: int = 0,
              max_entries: int | None = None, **inputs) -> GradcheckReport:
    """Compare the gradients of ``g`` with central finite differences, in float64.

    Parameters
    ----------
    g : Graph
        An unrolled graph with a loss.
    params : dict
        Parameter arrays; float32 ones are upcast to float64 (with a GradcheckWarning).
    mode : "full" or "directional"
    order : 1 or 2
        2 checks Hessian-vector products (parameters only).
    wrt : list of str, optional
        What to check (default: every parameter); sequence and static inputs allowed.
    eps : float, optional
        Finite-difference step, relative to max(1, |θ|); default (machine ε)^(1/3).
    rtol, atol : float
        An entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
    directions : int
        Random directions per checked name (directional mode).
    max_entries : int, optional
        Full mode: check at most this many entries per name (chosen at random).
    **inputs
        The graph's inputs.

    Returns
    -------
    GradcheckReport

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.Circuit("tiny")
    >>> x, w = c.input("x", ()), c.param("w", (), init=0.5)
    >>> h = c.state("h", ())
    >>> h.next = ur.tanh(w * h.prev + x)
    >>> _ = c.loss(h * h)
    >>> g = c.unroll(steps=3)
    >>> ur.gradcheck(g, c.init_params(), x=np.array([0.1, -0.2, 0.3])).ok
    True
    """
    expect_graph(g, "gradcheck")
    check_input_names(g, inputs, ("mode", "order", "wrt", "eps", "rtol", "atol", "directions",
                                  "seed", "max_entries"))
    if mode not in ("full", "directional"):
        raise UnrollError(f"gradcheck: mode must be 'full' or 'directional', not {mode!r}")
    if order not in (1, 2):
        raise UnrollError(f"gradcheck: order must be 1 or 2, not {order!r}")
    eps = _options(eps, rtol, atol, directions, seed, max_entries)
    if not isinstance(params, dict):
        raise UnrollError(f"gradcheck: params must be a dict name -> array, not "
                          f"{type(params).__name__}")
    params, inputs = _float64(params, "parameter"), _float64(inputs, "input")
    wrt = resolve_wrt(g, wrt)
    for k in wrt:                    # an initial value left at its default: zeros, explicitly
        if k in g.zero_defaults and k not in inputs:
            inputs[k] = _default_zeros(g, k, inputs)
    if order == 2 and any(k not in g.params for k in wrt):
        raise UnrollError("gradcheck: order=2 checks second derivatives with respect to "
                          "parameters only")
    rng = np.random.default_rng(seed)
    report = GradcheckReport(g.name, mode, order, eps, rtol, atol)
    check = _check_first if order == 1 else _check_second
    check(g, params, inputs, wrt, eps, rtol, atol, rng, mode, directions, max_entries, report)
    return report


def _options(eps, rtol, atol, directions, seed, max_entries) -> float:
    """Check gradcheck's settings (a check over nothing, or with a zero step, proves
    nothing); returns the step eps."""
    def number(what, v, positive):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) \
                or v < 0 or positive and v == 0:
            raise UnrollError(f"gradcheck: {what} must be a finite number "
                              f"{'> 0' if positive else '>= 0'}, not {v!r}")
        return float(v)

    def count(what, v, allow_none=False):
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise UnrollError(f"gradcheck: {what} must be an integer >= 1 (a check of no "
                              f"{'entries' if what == 'max_entries' else 'directions'} "
                              f"proves nothing), not {v!r}")
    number("rtol", rtol, False)
    number("atol", atol, False)
    count("directions", directions)
    count("max_entries", max_entries, allow_none=True)
    integer(seed, "gradcheck: seed", 0)
    if eps is None:
        return np.finfo(np.float64).eps ** (1 / 3)
    return number("eps", eps, True)


def _default_zeros(g, k, inputs):
    """The zeros an initial-value input ``k`` defaults to, with the batch of the inputs."""
    v = g.static_inputs[k]
    batch = next((a.shape[1:2] for n, a in inputs.items() if n in g.seq_inputs and
                  a.ndim > len(g.seq_inputs[n][0].shape) + 1), ())
    return np.zeros(tuple(batch) + v.shape)


def _float64(arrays: dict, what: str) -> dict:
    out = {}
    for k, a in arrays.items():
        dt = backends.dtype_name(getattr(a, "dtype", ""))
        if dt.startswith("float") and dt != "float64":
            warnings.warn(f"gradcheck: {what} {k} is {dt}; checking in float64 (finite "
                          "differences need the precision)", GradcheckWarning, stacklevel=3)
            a = backends.to_numpy(a).astype(np.float64)
        out[k] = a
    return out


class _Pins:
    """What reverse mode holds constant, finite differences must hold constant too: the
    results of primitives without a gradient rule (stop_gradient, a step, a hardmax) are
    pinned at their values in the unperturbed run. Without any, the compiled program runs."""

    def __init__(self, graph, params, inputs):
        self.graph = graph
        eqns = [e for e in graph.eqns if e.prim.vjp is None and e.prim.nouts == 1 and
                e.outs[0].aval.dtype == "float"]
        self.values = {}
        if eqns:
            bound = bind_arguments(graph, params, inputs)
            env = interpret(graph, dict(bound.env), bound.xp)
            self.values = {e.outs[0]: env[e.outs[0]] for e in eqns}

    def run(self, params, inputs, items: list) -> list:
        """The arrays of ``items`` (Values of the graph), the pinned values held."""
        bound = bind_arguments(self.graph, params, inputs)
        env, xp, pins = dict(bound.env), bound.xp, self.values
        for e in self.graph.eqns:
            if e.outs[0] in pins:
                env[e.outs[0]] = pins[e.outs[0]]
            else:
                apply_eqn(xp, e, env)
        return [env[v] for v in items]


def _loss(g, params, inputs, pins=None) -> float:
    if pins is not None and pins.values:
        return float(backends.to_numpy(pins.run(params, inputs, [g.loss])[0]))
    return float(backends.to_numpy(g.run(params, **inputs)["loss"]))


def _grads(g, params, inputs, wrt, pins=None) -> dict:
    if pins is not None and pins.values:
        gg = pins.graph
        vals = pins.run(params, inputs, [gg.grads[k] for k in wrt])
        return {k: backends.to_numpy(v) for k, v in zip(wrt, vals)}
    _, grads = g.value_and_grad(params, wrt=wrt, **inputs)
    return {k: backends.to_numpy(v) for k, v in grads.items()}


def _where(g, name):
    """Where the array of ``name`` lives: ("param" | "input", dict key)."""
    return "param" if name in g.params else "input"


def _perturbed(params, inputs, kind, name, delta):
    """Copies of params/inputs with ``delta`` (a NumPy array) added to ``name``."""
    src = params if kind == "param" else inputs
    a = src[name]
    new = dict(src)
    new[name] = a + _like(a, delta)
    return (new, inputs) if kind == "param" else (params, new)


def _like(a, delta):
    mod = type(a).__module__.split(".")[0]
    if mod == "numpy":
        return delta
    return a.__array_namespace__().asarray(delta) if hasattr(a, "__array_namespace__") else delta


def _tolerance(rtol, atol, numeric):
    return atol + rtol * abs(numeric)


def _ratio(err: float, tol: float) -> float:
    if tol > 0:
        return float(err) / tol
    return math.inf if err > 0 else 0.0


def _make_check(g, name, shape, ana, num, idx_list, rtol, atol, kind) -> Check:
    errs = [abs(a - n) for a, n in zip(ana, num)]
    rels = [e / max(abs(a), abs(n), 1e-300) if e else 0.0 for e, a, n in zip(errs, ana, num)]
    ratios = [_ratio(e, _tolerance(rtol, atol, n)) for e, n in zip(errs, num)]
    i = int(np.argmax(ratios)) if ratios else 0
    worst = idx_list[i] if idx_list and idx_list[i] is not None else None
    step = worst[0] + 1 if worst is not None and name in g.seq_inputs else None
    c = Check(name, tuple(shape), len(ana), max(errs, default=0.0), max(rels, default=0.0),
              worst, step, float(ana[i]) if ana else 0.0, float(num[i]) if num else 0.0,
              all(r <= 1 for r in ratios))
    c._ratio = max(ratios, default=0.0)
    return c


def _check_first(g, params, inputs, wrt, eps, rtol, atol, rng, mode, ndir, max_entries, rep):
    grads = _grads(g, params, inputs, wrt)
    pins = _Pins(g, params, inputs)
    for name in wrt:
        kind = _where(g, name)
        a = backends.to_numpy(params[name] if kind == "param" else inputs[name])
        gk = grads[name]
        ana, num, idxs = [], [], []
        if mode == "full":
            for idx in _entries(a.shape, max_entries, rng):
                h = eps * max(1.0, abs(float(a[idx])))
                d = np.zeros(a.shape)
                d[idx] = h
                lp = _loss(g, *_perturbed(params, inputs, kind, name, d), pins)
                lm = _loss(g, *_perturbed(params, inputs, kind, name, -d), pins)
                ana.append(float(gk[idx]))
                num.append((lp - lm) / (2 * h))
                idxs.append(idx)
        else:
            scale = max(1.0, float(np.max(np.abs(a)))) if a.size else 1.0
            for _ in range(ndir):
                v = rng.standard_normal(a.shape)
                v /= np.linalg.norm(v) or 1.0
                h = eps * scale
                lp = _loss(g, *_perturbed(params, inputs, kind, name, h * v), pins)
                lm = _loss(g, *_perturbed(params, inputs, kind, name, -h * v), pins)
                ana.append(float(np.sum(gk * v)))
                num.append((lp - lm) / (2 * h))
                idxs.append(None)
        rep.checks[name] = _make_check(g, name, a.shape, ana, num, idxs, rtol, atol, kind)


def _entries(shape, max_entries, rng):
    idx = list(np.ndindex(*shape)) if shape else [()]
    if max_entries is not None and len(idx) > max_entries:
        pick = rng.choice(len(idx), size=max_entries, replace=False)
        idx = [idx[i] for i in sorted(pick)]
    return idx


def _check_second(g, params, inputs, wrt, eps, rtol, atol, rng, mode, ndir, max_entries, rep):
    """Hessian-vector products against central differences of the gradient."""
    arrays = {k: backends.to_numpy(params[k]) for k in wrt}
    pins = _Pins(grad_graph(g, wrt), params, inputs)
    per = {k: ([], [], []) for k in wrt}
    if mode == "full":
        dirs = []
        for k in wrt:
            for idx in _entries(arrays[k].shape, max_entries, rng):
                v = {j: np.zeros(arrays[j].shape) for j in wrt}
                v[k][idx] = 1.0
                dirs.append((v, k, idx))
    else:
        dirs = []
        for _ in range(ndir):
            v = {j: rng.standard_normal(arrays[j].shape) for j in wrt}
            norm = math.sqrt(sum(float(np.sum(x * x)) for x in v.values())) or 1.0
            dirs.append(({j: x / norm for j, x in v.items()}, None, None))
    scale = max([1.0] + [float(np.max(np.abs(a))) for a in arrays.values() if a.size])
    h = eps * scale
    for v, k, idx in dirs:
        hv = hvp(g, params, v, **inputs)
        plus = {j: params[j] + _like(params[j], h * v[j]) if j in v else params[j]
                for j in params}
        minus = {j: params[j] - _like(params[j], h * v[j]) if j in v else params[j]
                 for j in params}
        gp, gm = _grads(g, plus, inputs, wrt, pins), _grads(g, minus, inputs, wrt, pins)
        for j in wrt:
            fd = (gp[j] - gm[j]) / (2 * h)
            an = backends.to_numpy(hv[j])
            for e in (np.ndindex(*an.shape) if an.shape else [()]):
                per[j][0].append(float(an[e]))
                per[j][1].append(float(fd[e]))
                per[j][2].append(e if mode == "full" else None)
    for j in wrt:
        ana, num, idxs = per[j]
        rep.checks[j] = _make_check(g, j, arrays[j].shape, ana, num, idxs, rtol, atol, "param")


def hvp(g, params: dict, vectors: dict, **inputs) -> dict:
    """Hessian-vector product H v of the loss, by reverse mode applied twice.

    Parameters
    ----------
    vectors : dict name -> array
        The direction v, one array per parameter (missing parameters count as zero).

    Returns
    -------
    dict name -> array
        (H v) restricted to each parameter in ``vectors``.
    """
    from .reverse import hvp_graph
    expect_graph(g, "hvp")
    check_input_names(g, inputs, ("vectors",))
    if not isinstance(params, dict):
        raise ParamError(f"hvp: params must be a dict name -> array, not "
                         f"{type(params).__name__}")
    if not isinstance(vectors, dict) or not vectors:
        raise ParamError(f"hvp: vectors must be a non-empty dict {{parameter: array of its "
                         f"shape}} (the direction v), not {vectors!r:.60}")
    for k, v in vectors.items():
        if k not in g.params:
            raise ParamError(f"hvp: {k!r} is not a parameter of {g.name}"
                             f"{suggest(str(k), g.params)}; H v is taken over parameters")
        if k not in params:
            raise ParamError(f"hvp: params has no {k!r}, which vectors names")
        shape = tuple(g.params[k].shape)
        try:
            a = np.asarray(backends.to_numpy(v))
            if a.dtype.kind not in "fiu":
                raise TypeError
            a = a.astype(np.float64)
        except (TypeError, ValueError, UnrollError):
            raise ParamError(f"hvp: vectors[{k!r}] must be an array of real numbers of shape "
                             f"{shape}, not {type(v).__name__} {v!r:.40}") from None
        if a.shape != shape:
            raise ShapeError(f"hvp: vectors[{k!r}] has shape {a.shape}; parameter {k} has "
                             f"shape {shape}")
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            raise NonFiniteError(f"hvp: vectors[{k!r}]{[int(i) for i in bad[0]]} is {a[tuple(bad[0])]}; "
                                 "the direction must be finite")
    wrt = tuple(vectors)
    key = ("hvp", wrt)
    if key not in g._cache:
        first = grad_graph(g, wrt)
        h = hvp_graph(first)
        h.name = f"{g.name}_hvp"
        g._cache[key] = h
    h = g._cache[key]
    full = dict(params)
    for k, v in vectors.items():
        full["v:" + k] = _like(params[k], backends.to_numpy(v).astype(
            backends.to_numpy(params[k]).dtype))
    _, out = h.value_and_grad(full, wrt=wrt, **inputs)
    return out

