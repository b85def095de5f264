"""A circuit's equations in the book's notation: forward, BPTT and the parameters' gradients.

:func:`latex` reads the rolled equations off the gradient graph (:mod:`unroll.derive`) and
writes them as Goodfellow et al. do in chapter 10: ``h^{(t)}``, ``W^{\\top}``,
``\\operatorname{diag}(1 - (h^{(t+1)})^{2})`` for an elementwise Jacobian, ``\\nabla_{h^{(t)}} L``
for a gradient, ``u v^{\\top}`` for a weight's per-step gradient, ``\\sum_t`` for the shared
weights, and each boundary case with its step put in (``t = \\tau``). Each primitive's LaTeX
comes from the registry (``Primitive.tex``); the pictures are drawn with matplotlib's
mathtext, so no TeX install is needed.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..circuit import Circuit
from ..derive import App, Const, Derivation, Ref, Step, Sum, derive, shape_key
from ..errors import (InputError, RenderError, UnrollError, flag, integer, number,
                      output_file)
from ..ir import Graph
from ..ops import (accumulate_p, add_p, broadcast_like_p, exp_p, log_softmax_p, mul_p, neg_p,
                   outer_p, reshape_p, sub_p, sum_to_p, transpose_p)

__all__ = ["latex", "Equations"]

#: precedences, loosest first: a sum; -x; ∇L; a ⊙ b (or 2 x); a juxtaposed product W h;
#: a power; an atom. An operand looser than its slot is parenthesised.
SUM, UNARY, GRAD, ODOT, PROD, POW, ATOM = 1, 1.2, 1.5, 1.8, 2, 3, 4
_PREC = {"sum": SUM, "unary": UNARY, "elementwise": ODOT, "product": PROD, "power": POW,
         "atom": ATOM}
_SUMS = (add_p, accumulate_p, sub_p, neg_p)

_UNICODE_GREEK = dict(zip("αβγδεζηθκλμνξπρστφχψωΓΔΘΛΞΠΣΦΨΩ",
                          ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta",
                           "theta", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma",
                           "tau", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
                           "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega"]))


_GREEK = set(_UNICODE_GREEK.values())          # "sigma" -> \sigma


def latex(obj, grad: bool = False) -> "Equations":
    """The equations of a circuit or graph in the book's notation (chapter 10).

    Parameters
    ----------
    obj : Circuit or Graph
        A circuit gives equations that hold for every τ (read from a short unrolling); a
        graph gives those of its own τ steps (its losses where it puts them).
    grad : bool
        Also the BPTT equations: the gradient of every state and output, with the
        boundary step (t = τ) stated, and every parameter's gradient as a sum over t.

    Returns
    -------
    Equations
        ``str()`` is LaTeX (an ``aligned`` block); ``.render("eqs.png")`` draws it (PNG,
        SVG or PDF, no TeX needed); ``.evaluate(params, **inputs)`` runs the equations
        themselves with NumPy; Jupyter shows it typeset.

    Examples
    --------
    >>> import unroll as ur
    >>> c = ur.Circuit("rnn")
    >>> x, W, U = c.input("x", (2,)), c.param("W", (3, 3)), c.param("U", (3, 2))
    >>> h = c.state("h", (3,))
    >>> h.next = ur.tanh(W @ h.prev + U @ x)
    >>> _ = c.loss(ur.sum(h))
    >>> print(ur.latex(c).lines[1][1])
    \\tanh\\left(W h^{(t-1)} + U x^{(t)}\\right)
    """
    grad = flag(grad, "ur.latex: grad", err=InputError)
    if isinstance(obj, Circuit):
        d = _from_circuit(obj, grad)
    elif isinstance(obj, Graph):
        if grad and obj.grads:
            raise InputError(f"ur.latex: {obj.name} is a gradient graph; pass the forward "
                             "graph (or the circuit) with grad=True")
        d = derive(obj, grad=grad)
    else:
        hint = (f"; {getattr(obj, '__name__', 'it')} is a function: call it, e.g. "
                "ur.latex(ur.models.elman(3, 4, 2))" if callable(obj) else "")
        raise InputError(f"ur.latex takes a Circuit or a Graph, not {type(obj).__name__}"
                         f"{hint}")
    return Equations(d)


def _from_circuit(c: Circuit, grad: bool) -> Derivation:
    """Read the equations off an unrolling long enough that no boundary step reaches the
    middle: 2k + 4 steps for a longest delay k, more where losses sit at chosen steps."""
    if grad and not c.losses:
        raise InputError(f"ur.latex: circuit {c.name} has no loss, so it has no BPTT "
                         "equations; add c.loss(...) or call ur.latex(c) without grad")
    chosen = [abs(t) for _, at in list(c.losses) + list(c.outputs.values())
              if isinstance(at, (list, tuple, range)) for t in at]
    steps = 6
    for _ in range(2):
        g = c.unroll(steps=steps)
        k = max(g.delays.values(), default=1)
        need = max(6, 2 * k + 4, 2 * max(chosen, default=0) + 2 * k + 2)
        if need <= steps:
            break
        steps = need
    # read again one step longer: equations that hold for every τ say the same thing (where
    # they do not, the boundary steps of several states may reach the middle: read longer)
    for _ in range(3):
        d = derive(g, grad=grad, general=True)
        if shape_key(d) == shape_key(derive(c.unroll(steps=steps + 1), grad=grad,
                                            general=True)):
            return d
        steps *= 2
        g = c.unroll(steps=steps)
    raise UnrollError(
        f"ur.latex: the equations of circuit {c.name} are not the same at every step: they "
        "depend on τ itself (a delay of 2 alone, say, with the loss at one step, reaches "
        "every other step); write them for one τ from its graph: "
        "ur.latex(c.unroll(steps=T), grad=True)")


# --- writing terms -----------------------------------------------------------------------------

def tex_name(name: str) -> str:
    """``h`` -> h, ``h0`` -> h_{0}, ``W_hh`` -> W_{hh}, ``sigma`` -> \\sigma,
    ``weight_ih_l0`` -> \\mathrm{weight}_{ih\\_l0}."""
    m = re.fullmatch(r"([^\W\d_]+)(\d*)(?:_(.+))?", name)
    if not m:
        return r"\mathrm{%s}" % _escape(name)
    base, digits, sub = m.groups()
    if base in _GREEK:
        base = "\\" + base
    elif base in _UNICODE_GREEK:
        base = "\\" + _UNICODE_GREEK[base]
    elif len(base) > 1:
        base = r"\mathrm{%s}" % base
    sub = ",".join(x for x in (digits, _escape(sub or "")) if x)
    return base + (f"_{{{sub}}}" if sub else "")


def _escape(s: str) -> str:
    return re.sub(r"([_#$%&{}])", r"\\\1", s)


def _number(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else "%.6g" % v


class _When:
    """Where a term is written: at a general t, or at one step (``Step``) put in."""

    def __init__(self, step: Step | None = None):
        self.step = step

    def time(self, shift: int) -> str:
        if self.step is None:
            base, k = "t", shift
        elif self.step.end:
            base, k = r"\tau", shift - self.step.k
        else:
            return str(self.step.k + shift)
        return base if k == 0 else f"{base}{k:+d}"


class _Writer:
    def __init__(self, when: _When):
        self.when = when

    def ref(self, r: Ref) -> tuple:
        name = tex_name(r.name)
        if r.kind == "grad":
            inner = name if r.shift is None else f"{name}^{{({self.when.time(r.shift)})}}"
            return rf"\nabla_{{{inner}}} L", GRAD
        if r.shift is None or r.kind in ("param", "static"):
            return name, ATOM
        return f"{name}^{{({self.when.time(r.shift)})}}", ATOM

    def transposed(self, term) -> tuple:
        if type(term) is Ref and term.kind != "grad":
            text, _ = self.ref(term)
            if text.endswith(")}"):                         # h^{(t-1)} -> h^{(t-1)\top}
                return text[:-1] + r"\top}", POW
            return text + r"^{\top}", POW
        text, prec = self.write(term)
        return rf"\left({text}\right)^{{\top}}" if prec < ATOM or "^" in text else \
            text + r"^{\top}", POW

    def write(self, term) -> tuple:
        """(LaTeX, precedence) of a term."""
        if type(term) is Const:
            v = term.value
            if np.ndim(v) == 0 and not term.shape:
                return (_number(v), ATOM) if v >= 0 else ("-" + _number(-v), UNARY)
            flat = np.ravel(v)
            if np.all(flat == flat[0]):                     # c 1: every entry c
                c = "" if flat[0] == 1 else _number(flat[0]) + " "
                return c + r"\mathbf{1}", ATOM if not c else \
                    (UNARY if c.startswith("-") else ODOT)
            if np.ndim(v) == 1 and len(flat) <= 6:
                return (r"\left(" + ", ".join(_number(x) for x in flat) + r"\right)^{\top}",
                        POW)
            return r"\operatorname{const}_{%s}" % r"\times ".join(map(str, np.shape(v))), ATOM
        if type(term) is Ref:
            return self.ref(term)
        if type(term) is Sum:
            parts = _sum_text(term.pieces)
            return " + ".join(t for t, _ in parts), SUM if len(parts) > 1 else parts[0][1]
        p, a = term.prim, term.args
        if p in _SUMS:
            return self.sum(term)
        if p is transpose_p:
            return self.transposed(a[0])
        if p is outer_p:
            u, pu = self.write(a[0])
            v, _ = self.transposed(a[1])
            return f"{_wrap(u) if pu < PROD else u} {v}", PROD
        if p is sum_to_p and getattr(a[0], "shape", None) == term.shape or \
                p in (reshape_p, broadcast_like_p) and not term.params.get("mean"):
            return self.write(a[0])      # over the batch only, or the same entries laid out
        if p is exp_p and type(a[0]) is App and a[0].prim is log_softmax_p:
            z, _ = self.write(a[0].args[0])
            return rf"\operatorname{{softmax}}\left({z}\right)", ATOM
        if p is mul_p and a[0].key() == a[1].key() and not _has_grad(a[0]):   # x ⊙ x
            x, q = self.write(a[0])
            return (f"{_wrap(x) if q < ATOM or '^' in x else x}^{{2}}", POW)
        if p is mul_p:
            grads = [_has_grad(x) for x in a]
            if any(_scalar(x) for x in a):                  # 2 x, -2 x
                c, x = (a[0], a[1]) if _scalar(a[0]) else (a[1], a[0])
                cs, _ = self.write(c)
                xs, px = self.write(x)
                return (f"{cs} {_wrap(xs) if px < PROD else xs}",
                        UNARY if cs.startswith("-") else ODOT)
            if grads[0] != grads[1]:                         # diag(Jacobian) ∇
                j, g = (a[1], a[0]) if grads[0] else (a[0], a[1])
                js, _ = self.write(j)
                gs, pg = self.write(g)
                return (rf"\operatorname{{diag}}\left({js}\right) "
                        f"{_wrap(gs) if pg < PROD else gs}"), PROD
        args = [self.write(x) for x in a]
        text, prec = _apply(p, args, term.params)
        if term.index is not None:
            return rf"\left[{text}\right]_{{{term.index + 1}}}", ATOM
        return text, prec

    def sum(self, term) -> tuple:
        parts = []

        def collect(t, sign):
            if type(t) is App and t.prim in _SUMS:
                if t.prim is neg_p:
                    collect(t.args[0], -sign)
                else:
                    collect(t.args[0], sign)
                    collect(t.args[1], -sign if t.prim is sub_p else sign)
            elif _scalar(t) and t.value < 0:
                parts.append((-sign, Const(-t.value)))
            elif type(t) is App and t.prim is mul_p and any(
                    _scalar(x) and x.value < 0 for x in t.args):   # -2 x: a minus sign
                c, x = (t.args[0], t.args[1]) if _scalar(t.args[0]) else \
                    (t.args[1], t.args[0])
                parts.append((-sign, App(mul_p, (Const(-c.value), x), t.params, None,
                                         t.shape, t.batched)))
            else:
                parts.append((sign, t))
        collect(term, 1)
        merged = {}                                  # h + h: 2 h, in its first place
        for sign, t in parts:
            k = (sign, t.key())
            merged[k] = (sign, t, merged[k][2] + 1) if k in merged else (sign, t, 1)
        parts = [(sign, t if n == 1 else App(mul_p, (Const(float(n)), t), {}, None,
                                             getattr(t, "shape", None)))
                 for sign, t, n in merged.values()]
        out = []
        for i, (sign, t) in enumerate(parts):
            text, prec = self.write(t)
            if prec <= SUM or text.startswith("-") and (i > 0 or sign < 0):
                text = _wrap(text)
            if i == 0:
                out.append(text if sign > 0 else "-" + text)
            else:
                out.append(("+ " if sign > 0 else "- ") + text)
        if len(out) == 1:
            return out[0], UNARY if parts[0][0] < 0 else self.write(parts[0][1])[1]
        return " ".join(out), SUM


def _scalar(term) -> bool:
    return type(term) is Const and np.ndim(term.value) == 0


def _sum_text(pieces) -> list:
    """[(LaTeX, precedence)] of Σ over each piece's steps (a single step put in)."""
    terms = []
    for p in pieces:
        if p.first is None:
            terms.append(_Writer(_When()).write(p.term))
        elif p.first == p.last:
            terms.append(_Writer(_When(p.first)).write(p.term))
        else:
            full, _ = _span(p.first, p.last)
            text, prec = _Writer(_When()).write(p.term)
            lo, hi = _When(p.first).time(0), _When(p.last).time(0)
            sigma = r"\sum_{t}" if full else rf"\sum_{{t={lo}}}^{{{hi}}}"
            terms.append((f"{sigma} {_wrap(text) if prec <= SUM else text}", SUM))
    return terms


def _wrap(text: str) -> str:
    return rf"\left({text}\right)"


def _has_grad(term) -> bool:
    """Does a term carry a gradient (∇L, or a ξ of the backward pass)?"""
    if type(term) is Ref:
        return term.kind in ("grad", "aux")
    return type(term) is App and any(_has_grad(a) for a in term.args)


def _apply(p, args: list, params: dict) -> tuple:
    """A primitive's registry LaTeX with operand texts put in its slots, each wrapped in
    parentheses where its precedence or a superscript after it needs them."""
    spec = p.tex
    prec = ATOM
    if isinstance(spec, tuple):
        spec, prec = spec[0], _PREC[spec[1]]
    if spec is None:
        names = ", ".join(f"#{i}" for i in range(len(args)))
        spec = rf"\operatorname{{{_escape(p.name)}}}\left({names}\right)"
    if callable(spec):
        # an operand is parenthesised if looser than the result; under a power (x², the
        # registry's pow), also if it has a superscript of its own: (h^{(t)})^{2}
        texts = [_wrap(t) if q < prec or prec == POW and (q < ATOM or "^" in t) else t
                 for t, q in args]
        return spec(texts, **params), prec

    def slot(m):
        i = int(m.group(1))
        text, q = args[i]
        before, after = spec[:m.start()], spec[m.end():]
        enclosed = before.rstrip().endswith(("(", "{", "[", "|", ",", ";")) and \
            after.lstrip().startswith((")", "}", "]", "|", ",", ";", r"\right"))
        if after.startswith("^"):
            return _wrap(text) if q < ATOM or "^" in text else text
        if prec == ODOT and q == PROD:            # (W h) ⊙ a, not W h ⊙ a
            return _wrap(text)
        if enclosed or q >= prec or q >= PROD and prec <= PROD:
            return text
        return _wrap(text)
    return re.sub(r"#(\d)", slot, spec), prec


# --- the equations, as a whole -------------------------------------------------------------------

def _span(first: Step, last: Step) -> tuple:
    """(is it every step 1..τ, its condition in LaTeX)."""
    full = first == Step(False, 1) and last == Step(True, 0)
    lo, hi = _When(first).time(0), _When(last).time(0)
    return full, rf"{lo} \le t \le {hi}"


class Equations:
    """The forward, BPTT and gradient equations of a circuit, in LaTeX (see :func:`latex`)."""

    def __init__(self, derivation: Derivation):
        self.derivation = d = derivation
        #: (section, left side, right side, condition) for every line, in LaTeX
        self.rows = []
        for section, eqs in (("forward", d.forward), ("backward", d.backward),
                             ("gradients", d.gradients)):
            for e in eqs:
                self.rows.extend((section,) + r for r in self._lines(e))
            if section == "forward" and d.loss is not None:
                self.rows.extend((section,) + r for r in self._lines(d.loss))

    @property
    def lines(self) -> list:
        """[(left side, right side)] in LaTeX, one per line (boundary cases on their own)."""
        return [(lhs, rhs) for _, lhs, rhs, _ in self.rows]

    def _lines(self, e) -> list:
        target = e.target
        if e.summed:
            lhs = _Writer(_When()).ref(target)[0]
            terms = _sum_text(e.pieces)
            rhs = " + ".join(t for t, _ in terms) if terms else "0"
            return [(lhs, rhs, "")]
        out = []
        # a gradient is computed from where the backward sweep starts: t = τ first (eq.
        # 10.18, then 10.21), or t = 1 for a state running backward in time
        sweep = target.kind == "grad" and \
            self.derivation.directions.get(target.name) != "backward"
        for p in (reversed(e.pieces) if sweep else e.pieces):
            if p.first == p.last:
                w = _When(p.first)
                lhs = _ref_text(w, target)
                out.append((lhs, _term_text(w, p.term), ""))
            else:
                full, cond = _span(p.first, p.last)
                w = _When()
                out.append((_ref_text(w, target), _term_text(w, p.term), "" if full else cond))
        return out

    # --- output ---

    def __str__(self) -> str:
        body = []
        for _, lhs, rhs, cond in self.rows:
            parts = _wrap_terms(rhs)
            body.append(f"{lhs} &= {parts[0]}" + "".join(
                f" \\\\\n&\\quad {p}" for p in parts[1:]) + (rf" && {cond}" if cond else ""))
        return "\\begin{aligned}\n" + " \\\\\n".join(body) + "\n\\end{aligned}"

    def __repr__(self) -> str:
        return f"<{len(self.rows)} equations of {self.derivation.name}>"

    def _repr_latex_(self) -> str:
        return "$$" + str(self) + "$$"

    def evaluate(self, params: dict, **inputs) -> tuple:
        """Run the equations themselves with NumPy: ``(loss, grads)``, as
        ``value_and_grad`` returns (see :meth:`unroll.derive.Derivation.evaluate`)."""
        return self.derivation.evaluate(params, **inputs)

    def render(self, path, *, fontsize: float = 14, dpi: int = 150,
               headings: bool = True) -> Path:
        """Draw the equations (PNG, SVG or PDF by the suffix) with matplotlib's mathtext,
        Computer Modern, one line each, the boundary cases with their steps."""
        path = output_file(path, (".png", ".svg", ".pdf"), "Equations.render")
        fontsize = number(fontsize, "Equations.render: fontsize", above=0, hi=200,
                          err=InputError)
        dpi = integer(dpi, "Equations.render: dpi", 10, 2400, err=InputError)
        headings = flag(headings, "Equations.render: headings", err=InputError)
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        titles = {"forward": "Forward", "backward": "Back-propagation through time",
                  "gradients": "Parameter gradients"}
        items, last = [], None
        for section, lhs, rhs, cond in self.rows:
            if headings and section != last:
                items.append(("title", titles[section]))
                last = section
            parts = _wrap_terms(rhs)
            for i, part in enumerate(parts):
                math = f"${_mathtext(lhs)} = {_mathtext(part)}$" if i == 0 else \
                    f"$\\qquad {_mathtext(part)}$"
                if i == len(parts) - 1 and cond:
                    math += f"    $({_mathtext(cond)})$"
                items.append(("eq", math))
        with matplotlib.rc_context({"mathtext.fontset": "cm", "font.family": "serif",
                                    "svg.fonttype": "path"}):
            fig = Figure(figsize=(8, 1))
            renderer = FigureCanvasAgg(fig).get_renderer()
            texts = []
            for kind, text in items:                     # drawn once to measure each line
                t = (fig.text(0, 0, text, fontsize=fontsize * 0.85, weight="bold",
                              color="#444444", va="bottom") if kind == "title" else
                     fig.text(0, 0, text, fontsize=fontsize, va="bottom"))
                try:
                    height = t.get_window_extent(renderer).height / fig.dpi
                except ValueError as e:
                    raise RenderError(f"ur.latex: mathtext could not draw {text!r}: {e}") \
                        from None
                texts.append((kind, t, height))
            gap = fontsize * 0.55 / 72                   # inches between lines
            total = sum(h for _, _, h in texts) + gap * (len(texts) + 1)
            fig.set_size_inches(8, total)
            y = total - gap
            for kind, t, height in texts:
                y -= height
                t.set_position((0.02 if kind == "title" else 0.05, y / total))
                y -= gap * (1.4 if kind == "title" else 1)
            try:
                fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.15,
                            facecolor="white")
            except OSError as e:
                raise RenderError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
        return path


def _wrap_terms(rhs: str, width: int = 150) -> list:
    """A long sum cut before a top-level + or - into lines of about ``width`` characters of
    LaTeX (a continuation line starts with its sign)."""
    if len(rhs) <= width:
        return [rhs]
    cuts, depth, i = [], 0, 0
    while i < len(rhs):
        if rhs.startswith(r"\left", i) or rhs[i] == "{":
            depth += 1
        elif rhs.startswith(r"\right", i) or rhs[i] == "}":
            depth -= 1
        elif depth == 0 and rhs.startswith((" + ", " - "), i):
            cuts.append(i)
        i += 1
    lines, start = [], 0
    for a, b in zip([0] + cuts, cuts + [len(rhs)]):
        if b - start > width and a > start:
            lines.append(rhs[start:a].strip())
            start = a
    lines.append(rhs[start:].strip())
    return lines


def _ref_text(w: _When, r: Ref) -> str:
    return _Writer(w).ref(r)[0]


def _term_text(w: _When, term) -> str:
    return _Writer(w).write(term)[0]


def _mathtext(s: str) -> str:
    """The LaTeX as matplotlib's mathtext reads it (\\le is \\leq there; a sum with its
    limits below needs a thin space after it)."""
    s = s.replace(r"\le ", r"\leq ")
    return re.sub(r"(\\sum_\{[^{}]*\}(?:\^\{[^{}]*\})?) ", r"\1\\, ", s)
