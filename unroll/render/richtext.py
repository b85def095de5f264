"""Rich labels: the book's bold italic variables with superscript steps, in three forms.

A label is a tuple of :class:`Run` s. It is written into DOT as a Graphviz HTML-like label
(``<<B><I>h</I></B><SUP>(t)</SUP>>``), which a system ``dot`` renders as is. The WebAssembly
Graphviz has no HTML labels: there it is laid out as plain text (``h(t)``) and the text is
restyled in the SVG afterwards (:func:`svg_spans`), so both routes give the same picture.
"""
from __future__ import annotations

import html
import re
from typing import NamedTuple

__all__ = ["Run", "var", "names", "to_html", "to_plain", "svg_spans", "parse_html",
           "superscript"]


class Run(NamedTuple):
    text: str
    bold: bool = False
    italic: bool = False
    sup: bool = False
    sub: bool = False


def var(name: str, step=None, vector: bool = True, prefix: str = "") -> tuple:
    """The label of a variable: ``h`` bold italic (a vector) or ``L`` italic, with the step
    as a superscript: ``h⁽ᵗ⁾``. ``step`` is an int, a string like "t-1", or None."""
    runs = [Run(prefix)] if prefix else []
    base, _, index = name.partition("_")
    if index and 0 < len(base) <= 2:        # W_f: the gate's weight, W with a subscript f
        runs += [Run(base, bold=vector, italic=True), Run(index, italic=True, sub=True)]
    else:
        runs.append(Run(name, bold=vector, italic=True))
    if step is not None:
        runs.append(Run(f"({superscript(step)})", sup=True))
    return tuple(runs)


def names(labels, vector=lambda name: True, transposed: bool = False) -> tuple:
    """Several variables in one label, sorted and comma-separated ("U, W"); ``vector(name)``
    says which are set bold; ``transposed`` writes each as the backward pass multiplies by
    it, Wᵀ (eq. 10.21)."""
    runs = []
    for i, name in enumerate(sorted(labels)):
        runs += ([Run(", ")] if i else []) + list(var(name, vector=vector(name)))
        if transposed:
            runs.append(Run("⊤", sup=True))
    return tuple(runs)


def superscript(step) -> str:
    """The text of a step: 3 -> "3", "t-1" -> "t−1" (a true minus sign)."""
    return str(step).replace("-", "−")


def to_html(runs) -> str:
    """A Graphviz HTML-like label (with the surrounding ``<`` ``>``)."""
    out = []
    for r in runs:
        t = html.escape(r.text, quote=False)
        if r.italic:
            t = f"<I>{t}</I>"
        if r.bold:
            t = f"<B>{t}</B>"
        if r.sup:
            t = f"<SUP>{t}</SUP>"
        if r.sub:
            t = f"<SUB>{t}</SUB>"
        out.append(t)
    return "<" + "".join(out) + ">"


def to_plain(runs) -> str:
    return "".join(r.text for r in runs)


_TAG = re.compile(r"<(/?)(B|I|SUP|SUB)>|([^<]+)")


def parse_html(label: str) -> tuple:
    """The runs of an HTML-like label made by :func:`to_html` (the inverse)."""
    bold = italic = sup = sub = 0
    runs = []
    for close, tag, text in _TAG.findall(label):
        if text:
            runs.append(Run(html.unescape(text), bool(bold), bool(italic), bool(sup),
                            bool(sub)))
            continue
        d = -1 if close else 1
        if tag == "B":
            bold += d
        elif tag == "I":
            italic += d
        elif tag == "SUP":
            sup += d
        else:
            sub += d
    return tuple(runs)


def svg_spans(runs, font_size: float) -> str:
    """SVG ``<tspan>`` s for the runs (superscripts raised with ``dy``, which every SVG
    renderer understands)."""
    out, shift = [], 0.0                     # the baseline's current offset
    small = round(font_size * 0.72, 2)
    for r in runs:
        attrs = []
        if r.bold:
            attrs.append('font-weight="bold"')
        if r.italic:
            attrs.append('font-style="italic"')
        want = -0.42 * font_size if r.sup else (0.22 * font_size if r.sub else 0.0)
        if want != shift:
            attrs.append(f'dy="{want - shift:.2f}"')
            shift = want
        if r.sup or r.sub:
            attrs.append(f'font-size="{small}"')
        text = html.escape(r.text, quote=False)
        out.append(f"<tspan {' '.join(attrs)}>{text}</tspan>" if attrs else
                   f"<tspan>{text}</tspan>")
    return "".join(out)
