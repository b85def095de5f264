"""Pictures: the DOT structure of circuit diagrams and unrolled graphs, rendering to SVG, PNG and
PDF with no system Graphviz, text in the PNGs, Jupyter display, and the command line."""
import io
import re
import subprocess
import sys
from pathlib import Path

import graphviz
import numpy as np
import pytest

import unroll as ur
from unroll.models import textbook as tb
from unroll.render import backend

ROOT = Path(__file__).resolve().parents[1]
D, H, K = 3, 4, 2


def _load_gallery():
    """docs/make_gallery.py as the module ``docs_gallery`` (its figures are tested here)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("docs_gallery",
                                                  ROOT / "docs" / "make_gallery.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["docs_gallery"] = mod
    spec.loader.exec_module(mod)
    return mod


_load_gallery()


# --- a small reader of the DOT the graphviz package writes (one statement per line) --------

_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*?>(?= \w+=|\]$)|[^\s\]]+)')


def parse(dot):
    """{node id: attrs}, [(tail, head, attrs)] of a graphviz.Digraph (subgraphs included)."""
    nodes, edges = {}, []
    for line in dot.source.splitlines():
        line = line.strip()
        m = re.match(r'^("?[\w.]+"?) -> ("?[\w.]+"?)(?: \[(.*)\])?$', line)
        if m:
            edges.append((m.group(1), m.group(2), _attrs(m.group(3) or "")))
            continue
        m = re.match(r'^("?[\w.]+"?) \[(.*)\]$', line)
        if m and m.group(1) not in ("node", "edge", "graph"):
            nodes.setdefault(m.group(1), {}).update(_attrs(m.group(2)))
    return nodes, edges


def _attrs(text):
    return {k: v.strip('"') for k, v in _ATTR.findall(text + "]")}


def plain(label):
    """The text of an HTML-like label: <<B><I>h</I></B><SUP>(3)</SUP>> -> h(3)."""
    label = label or ""
    if label.startswith("<") and label.endswith(">"):
        label = label[1:-1]
    return re.sub(r"<[^<>]*>", "", label)


def labels(nodes):
    return {plain(a.get("label")) for a in nodes.values() if a.get("style") != "invis"}


def elman():
    return tb.elman(D, H, K)


# --- circuit diagrams ----------------------------------------------------------------------

def test_circuit_variables_roles_and_delay_square():
    nodes, edges = parse(elman().to_dot())
    assert {"x", "h", "o", "L", "y"} <= labels(nodes)
    squares = [n for n, a in nodes.items() if a.get("shape") == "square"]
    assert len(squares) == 1 and nodes[squares[0]]["fillcolor"] == "black"
    name = {plain(a.get("label")): n for n, a in nodes.items() if "label" in a}
    sq = squares[0]
    # the loop: h -> ■ -> h, the recurrent weight W on the way back in
    assert any(t == name["h"] and h == sq for t, h, _ in edges)
    back = [a for t, h, a in edges if t == sq and h == name["h"]]
    assert back and plain(back[0]["xlabel"]) == "W"       # placed clear of other labels
    weights = {plain(a.get("label") or a.get("xlabel")) for t, h, a in edges
               if "label" in a or "xlabel" in a}
    assert {"U", "V", "W"} <= weights
    # roles by fill: h is a state, L a loss
    assert nodes[name["h"]]["fillcolor"] == ur.render.circuit.STYLE["state"][0]
    assert nodes[name["L"]]["fillcolor"] == ur.render.circuit.STYLE["loss"][0]


def test_circuit_rows_follow_the_book():
    """x at the bottom, then h, o, L, and the target y on top (fig. 10.3, left)."""
    c = elman()
    from unroll.render.circuit import _Visible
    v = _Visible(c, "variables")
    rank = {v.label(n): v.rank(n) for n in v.nodes}
    assert rank["x"] < rank["h"] < rank["o"] < rank["L"] < rank["y"]


def test_static_input_double_border_and_backward_state_above():
    v_nodes, _ = parse(tb.conditioned(D, H, K).to_dot())
    x = [a for a in v_nodes.values() if plain(a.get("label")) == "x"][0]
    assert x["peripheries"] == "2"
    from unroll.render.circuit import _Visible
    v = _Visible(tb.bidirectional(D, H, K), "variables")
    rank = {v.label(n): v.rank(n) for n in v.nodes}
    assert rank["h"] < rank["g"] < rank["o"]


def test_backward_state_delay_is_marked():
    nodes, _ = parse(tb.bidirectional(D, H, K).to_dot())
    marks = {a.get("xlabel") for a in nodes.values() if a.get("shape") == "square"}
    assert "t+1" in marks                    # g reads g(t+1)


def test_k_step_delay_mark():
    c = ur.Circuit("k2")
    x = c.input("x", (D,))
    h = c.state("h", (H,))
    h.next = ur.tanh(c.param("W", (H, H)) @ h.delayed(2) + c.param("U", (H, D)) @ x)
    nodes, _ = parse(c.to_dot())
    assert [a.get("xlabel") for a in nodes.values() if a.get("shape") == "square"] == ["2"]


def test_one_square_per_delayed_value_shared_by_its_readers():
    """An LSTM's h(t-1) feeds four gates: one black square, four edges out of it."""
    from docs_gallery import lstm_cell_circuit
    nodes, edges = parse(lstm_cell_circuit().to_dot())
    squares = [n for n, a in nodes.items() if a.get("shape") == "square"]
    assert len(squares) == 2                 # h(t-1) and s(t-1)
    outs = {sq: [h for t, h, _ in edges if t == sq] for sq in squares}
    assert sorted(len(v) for v in outs.values()) == [1, 4]
    assert {"f", "g", "q", "i", "s", "h", "x"} <= labels(nodes)


def test_detail_levels_and_param_options():
    c = tb.elman(D, H, K)
    ops, _ = parse(c.to_dot(detail="ops"))
    named, _ = parse(c.to_dot(detail="named"))
    textbook, _ = parse(c.to_dot())
    boxes = [a for a in ops.values() if a.get("shape") == "box"]
    assert {"·", "+", "log_softmax"} <= {a["label"] for a in boxes}
    assert "a" in labels(named) and "a" not in labels(textbook)    # the named value a(t)
    pn, pe = parse(c.to_dot(params="nodes"))
    assert {"param_U", "param_V", "param_W"} <= set(pn)
    _, none_edges = parse(c.to_dot(params="none"))
    assert not any("label" in a for _, _, a in none_edges)
    with pytest.raises(ur.RenderError, match="detail"):
        c.to_dot(detail="everything")
    with pytest.raises(ur.RenderError, match="params"):
        c.to_dot(params="badges")


def test_weights_with_an_index_are_subscripted():
    assert ur.render.richtext.to_html(ur.render.richtext.var("W_f")) == \
        "<<B><I>W</I></B><SUB><I>f</I></SUB>>"
    assert ur.render.richtext.to_html(ur.render.richtext.var("weight_hh_l0")) == \
        "<<B><I>weight_hh_l0</I></B>>"


# --- unrolled graphs -----------------------------------------------------------------------

def test_unrolled_columns_superscripts_and_initial_state():
    g = elman().unroll(steps=4)
    nodes, edges = parse(g.to_dot())
    for t in range(1, 5):
        for v in "xhoLy":
            n = nodes[f"v_{v}_{t}"]
            assert plain(n["label"]) == f"{v}({t})" and f"<SUP>({t})</SUP>" in n["label"]
            assert n["group"] == f"col{t}"           # one column per step
    assert plain(nodes["v_h_0"]["label"]) == "h(0)"
    chain = {(t, h): plain(a.get("xlabel", a.get("label"))) for t, h, a in edges}
    for t in range(1, 5):
        assert chain[(f"v_h_{t - 1}", f"v_h_{t}")] == "W"     # W on every copy of its edge
        assert chain[(f"v_x_{t}", f"v_h_{t}")] == "U"


def test_unrolled_elision_keeps_a_long_graph_readable():
    g = elman().unroll(steps=1000)
    nodes, edges = parse(g.to_dot())
    steps = {int(m.group(1)) for n in nodes if (m := re.match(r"v_h_(\d+)$", n))}
    assert steps == {0, 1, 2, 3, 998, 999, 1000}
    gaps = [n for n, a in nodes.items() if a.get("label") == "⋯"]
    assert gaps
    assert any(t == "v_h_3" and h in gaps for t, h, _ in edges)
    assert any(t in gaps and h == "v_h_998" for t, h, _ in edges)
    assert len(nodes) < 60


def test_relative_labels_and_open_ends():
    nodes, _ = parse(elman().unroll(steps=3).to_dot(relative=True))
    text = labels(nodes)
    assert {"h(t−1)", "h(t)", "h(t+1)", "h(…)"} <= text
    assert not any(re.search(r"\(\d\)", s) for s in text)


def test_backward_graph_reverses_and_dashes_every_edge():
    nodes, edges = parse(elman().unroll(steps=3).to_dot(mode="backward"))
    text = labels(nodes)
    assert {"∂L/∂h(1)", "∂L/∂o(3)", "∂L/∂h(0)"} <= text
    assert not any(s.startswith(("x", "y")) for s in text)    # no gradient into data
    assert edges and all(a.get("style") == "dashed" and a.get("dir") in ("back", "forward")
                         for _, _, a in edges if a.get("style") != "invis")
    # the backward pass multiplies by the transposes (eq. 10.21): Wᵀ, Vᵀ, not W, V
    weights = {a.get("label") or a.get("xlabel") for _, _, a in edges} - {None}
    assert weights == {"<<B><I>W</I></B><SUP>⊤</SUP>>", "<<B><I>V</I></B><SUP>⊤</SUP>>"}
    forward = {a.get("label") or a.get("xlabel") for _, _, a in
               parse(elman().unroll(steps=3).to_dot())[1]} - {None}
    assert "<<B><I>W</I></B>>" in forward and not any("⊤" in w for w in forward)


def test_overlay_draws_both_flows_and_truncation_cuts():
    g = elman().unroll(steps=6)
    nodes, edges = parse(g.to_dot(mode="overlay", truncate=3, checkpoints=[3, 6]))
    grad = [(t, h) for t, h, a in edges if a.get("color") == "#b03a2e"]
    fwd = [(t, h) for t, h, a in edges if a.get("style") not in ("invis", "dashed")]
    assert ("v_h_1", "v_h_2") in grad and ("v_h_1", "v_h_2") in fwd
    cut = [a for t, h, a in edges if (t, h) == ("v_h_3", "v_h_4") and a.get("style") ==
           "dashed" and a.get("color") == "#777777"]
    assert cut and cut[0].get("headlabel") == "✂"
    assert ("v_h_3", "v_h_4") not in grad                    # no gradient across the cut
    assert not any(h.startswith("v_y") or t.startswith("v_y") for t, h in grad)
    assert nodes["v_h_3"]["peripheries"] == "2" and nodes["v_h_6"]["peripheries"] == "2"
    assert "peripheries" not in nodes["v_h_2"]


def test_heat_map_colours_from_a_real_backward_pass():
    c = ur.Circuit("fade")
    x = c.input("x", (D,))
    h = c.state("h", (H,))
    h.next = ur.tanh(c.param("W", (H, H)) @ h.prev + c.param("U", (H, D)) @ x)
    c.loss(ur.sum(h * h), at="last")
    g = c.unroll(steps=8)
    p = c.init_params(seed=0)
    p["W"] = p["W"] * 0.5                                      # contracting: gradients fade
    heat = ur.diagnostics.gradient_norms(g, p, x=np.random.default_rng(0).normal(size=(8, D)))
    assert np.all(np.diff(heat["h"]) > 0)                      # larger towards the loss
    nodes, _ = parse(g.to_dot(heat=heat))
    from unroll.render.unrolled import _MAP
    assert nodes["v_h_1"]["fillcolor"] == _MAP[0] and nodes["v_h_8"]["fillcolor"] == _MAP[-1]
    legend = [n for n in nodes if n.startswith("legend")]
    assert len(legend) == len(_MAP)
    assert float(nodes["legend0"]["label"]) == pytest.approx(heat["h"].min(), rel=0.05)
    assert float(nodes[f"legend{len(_MAP) - 1}"]["label"]) == \
        pytest.approx(heat["h"].max(), rel=0.05)
    with pytest.raises(ur.RenderError, match="dict"):
        g.to_dot(heat=heat["h"])
    with pytest.raises(ur.RenderError, match=r"no state 'hh' to colour; did you mean 'h'"):
        g.to_dot(heat={"hh": heat["h"]})
    bad = heat["h"].copy()
    bad[4] = np.nan
    with pytest.raises(ur.RenderError, match=r"heat\['h'\] at step t = 5 is nan"):
        g.to_dot(heat={"h": bad})
    with pytest.raises(ur.RenderError, match=r"heat\['h'\] has 7 values, but .* τ = 8 steps"):
        g.to_dot(heat={"h": heat["h"][1:]})
    with pytest.raises(ur.RenderError, match=r"heat\['h'\] must be a sequence of numbers"):
        g.to_dot(heat={"h": ["low"] * 8})
    with pytest.raises(ur.RenderError, match="truncate .* must be an integer >= 1"):
        g.to_dot(truncate=0)


def test_params_as_nodes_draws_each_weight_once():
    nodes, edges = parse(elman().unroll(steps=3).to_dot(params="nodes"))
    assert {"param_U", "param_W", "param_V"} <= set(nodes)
    assert sum(1 for t, h, a in edges if t == "param_W") == 3
    assert not any("label" in a or "xlabel" in a for t, h, a in edges
                   if not t.startswith("param_") and a.get("style") != "invis")


def test_encoder_decoder_and_teacher_forcing_edges():
    g = tb.encoder_decoder(D, H, K).unroll(input_steps=3, output_steps=4)
    nodes, edges = parse(g.to_dot())
    assert any(plain(nodes[h].get("label")) == "s(1)" and plain(nodes[t].get("label")) ==
               "h(3)" for t, h, _ in edges if t in nodes and h in nodes)
    _, tf = parse(tb.teacher_forcing(D, H, K, mode="train").unroll(steps=3).to_dot())
    _, free = parse(tb.teacher_forcing(D, H, K, mode="free").unroll(steps=3).to_dot())
    def pairs(es):             # either way round: an edge down the rows is laid out upwards
        return {frozenset((t, h)) for t, h, a in es if a.get("style") != "invis"}
    assert {"v_y_1", "v_h_2"} in pairs(tf) and {"v_o_1", "v_h_2"} not in pairs(tf)
    assert {"v_o_1", "v_h_2"} in pairs(free) and {"v_y_1", "v_h_2"} not in pairs(free)


# --- rendering -----------------------------------------------------------------------------

@pytest.fixture
def no_system_dot(monkeypatch):
    monkeypatch.setattr(backend, "has_system_dot", lambda: False)


def test_svg_without_a_system_graphviz(no_system_dot, tmp_path):
    path = elman().render(tmp_path / "elman.svg")
    text = path.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg"))
    assert 'font-style="italic"' in text and ">W</tspan>" in text     # rich labels restyled
    g = elman().unroll(steps=3)
    svg = g.render(tmp_path / "g.svg").read_text()
    assert svg.count('class="node"') >= 15 and 'dy="' in svg           # superscripts


def _dark(png_bytes):
    from PIL import Image
    img = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("L"), dtype=float)
    return img < 128


def test_png_has_its_text(no_system_dot):
    """The same picture with and without labels: the labelled one has many more dark pixels
    inside the nodes, so the fonts resolved (a PNG without its text is a failure)."""
    dot = elman().to_dot()
    blank = dot.copy()
    blank.body = [line if "->" in line else re.sub(r"label=<.*?>(?= \w+=|\])", 'label=""', line)
                  for line in dot.body]
    with_text, without = _dark(backend.png(dot)), _dark(backend.png(blank))
    assert with_text.shape == without.shape
    assert with_text.sum() - without.sum() > 400


def test_png_and_pdf_files(no_system_dot, tmp_path):
    png = elman().unroll(steps=2).render(tmp_path / "g.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    w, h = Image.open(png).size
    assert w > 200 and h > 200
    pdf = elman().render(tmp_path / "c.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    dot = elman().render(tmp_path / "c.dot")
    assert dot.read_text().startswith("digraph")
    with pytest.raises(ur.RenderError, match=r"\.svg, \.png"):
        elman().render(tmp_path / "c.jpeg")


@pytest.mark.dot
def test_system_dot_agrees(tmp_path):
    text = ur.render.svg(elman().to_dot())
    assert "<svg" in text and "W" in text


def test_jupyter_shows_svg(no_system_dot):
    bundle = elman()._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]
    assert "<svg" in elman().unroll(steps=2)._repr_mimebundle_()["image/svg+xml"]


# --- the command line ----------------------------------------------------------------------

MODELS = '''
import unroll as ur
from unroll.models import textbook as tb

def model():
    return tb.elman(3, 4, 2)

circuit = model()
'''


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "unroll", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_cli_end_to_end(tmp_path):
    (tmp_path / "models.py").write_text(MODELS)
    r = cli("render", "models.py:model", "--steps", "4", "-o", "fig.svg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "<svg" in (tmp_path / "fig.svg").read_text() and "wrote fig.svg" in r.stdout
    r = cli("render", "models.py:circuit", "-o", "c.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    r = cli("render", "unroll.models.textbook:elman", "-o", "x.svg", cwd=tmp_path)
    assert r.returncode == 2 and "needs arguments" in r.stderr
    r = cli("render", "models.py:nothing", "-o", "x.svg", cwd=tmp_path)
    assert r.returncode == 2 and "has no 'nothing'" in r.stderr
    r = cli("render", "models.py", "-o", "x.svg", cwd=tmp_path)
    assert r.returncode == 2 and "MODULE:OBJECT" in r.stderr
    (tmp_path / "broken.py").write_text("import unroll\n1 / 0\n")
    r = cli("render", "broken.py:model", "-o", "x.svg", cwd=tmp_path)
    assert r.returncode == 2 and "running broken.py failed: ZeroDivisionError" in r.stderr
    assert "Traceback" not in r.stderr


# --- the gallery ---------------------------------------------------------------------------

def test_gallery_figures_build_and_the_page_is_current():
    import docs_gallery as gal
    for title, fn in gal.FIGURES:
        for key, dot in fn().items():
            assert dot.source.startswith("digraph"), (title, key)
            page = (ROOT / "docs" / "gallery.md").read_text()
            assert f"gallery/{fn.__name__}_{key}.png" in page
            assert (ROOT / "docs" / "gallery" / f"{fn.__name__}_{key}.png").exists()
            assert (ROOT / "docs" / "gallery" / f"{fn.__name__}_{key}.svg").exists()


def test_every_picture_renders_and_displays_without_a_system_graphviz(tmp_path, monkeypatch):
    """What to_dot returns draws itself: .render(path) and Jupyter's display both work with
    no `dot` on the PATH, and dpi= sets a PNG's resolution."""
    import shutil
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot"
                        else real(name, *a, **k))
    assert not ur.render.has_system_dot()
    c = elman()
    for pic in (c.to_dot(), c.unroll(steps=3).to_dot(mode="overlay")):
        assert isinstance(pic, graphviz.Digraph)             # still a Digraph, DOT as data
        png = pic.render(str(tmp_path / "p.png"), dpi=144)
        assert open(png, "rb").read(4) == b"\x89PNG"
        assert pic.render(str(tmp_path / "p.svg")).endswith("p.svg")
        bundle = pic._repr_mimebundle_()
        assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    from PIL import Image
    small = Image.open(c.render(tmp_path / "a.png", dpi=72)).size
    large = Image.open(c.render(tmp_path / "b.png", dpi=216)).size
    assert abs(large[0] / small[0] - 3) < 0.05
    with pytest.raises(ur.RenderError, match="dpi must be"):
        c.render(tmp_path / "c.png", dpi=0)
    with pytest.raises(ur.RenderError, match="needs a file name"):
        c.to_dot().render()


def test_the_command_line_help_is_plain_text_and_names_its_formats(tmp_path, capsys):
    from unroll.__main__ import main
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "unroll render models.py:elman -o elman.svg" in out
    assert main(["render", "unroll.models.textbook:elman", "-o", str(tmp_path / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert "give -o a file name ending in .svg, .png, .pdf or .dot" in err and "format=" not in err


def test_a_delay_of_two_draws_both_initial_rows_and_no_unread_one():
    """a(t) reads a(t-2): a(1) reads a(-1) and a(2) reads a(0), both drawn with their edges;
    b reads only a(t-1), so nothing reads b(0) and it is not drawn."""
    c = ur.Circuit("delay2")
    x, a, b = c.input("x", (2,)), c.state("a", (2,)), c.state("b", (2,))
    a.next = ur.tanh(c.param("W", (2, 2)) @ a.delayed(2) + x)
    b.next = ur.tanh(c.param("V", (2, 2)) @ a.prev)
    c.loss(ur.sum(b * b))
    nodes, edges = parse(c.unroll(steps=3).to_dot())
    pairs = {(t, h) for t, h, _ in edges}
    assert {"v_a_m1", "v_a_0"} <= set(nodes) and "v_b_0" not in nodes
    assert {("v_a_m1", "v_a_1"), ("v_a_0", "v_a_2"), ("v_a_0", "v_b_1")} <= pairs


@pytest.mark.parametrize("mode", ["forward", "backward"])
def test_a_pdf_looks_like_the_png_of_the_same_figure(mode, no_system_dot):
    """The PDF (svglib, no system Graphviz) rasterised next to the PNG (resvg) of the same
    unrolled graph: the ink must coincide. Labels of styled runs (h⁽¹⁾, ∂L/∂h⁽¹⁾, Wᵀ) were
    off-centre with their superscripts over the base letter: ink overlap 0.48-0.60 then,
    0.80 and more since."""
    import io
    import pypdfium2
    from PIL import Image
    from unroll.render import backend
    dot = elman().unroll(steps=3).to_dot(mode=mode)
    png = Image.open(io.BytesIO(backend.png(dot, zoom=2))).convert("L")
    page = pypdfium2.PdfDocument(backend.pdf(dot))[0]
    pdf = page.render(scale=png.size[0] / page.get_size()[0]).to_pil().convert("L")
    a = np.asarray(png, dtype=float) / 255
    b = np.asarray(pdf.resize(png.size), dtype=float) / 255
    ink_a, ink_b = a < 0.5, b < 0.5
    overlap = (ink_a & ink_b).sum() / (ink_a | ink_b).sum()
    assert overlap > 0.75, overlap
    assert np.abs(a - b).mean() < 0.01


def _label_boxes(svg_text: str) -> list:
    """(text, x0, y0, x1, y1) of every label of a rendered SVG, measured with the DejaVu
    fonts it is drawn in (each run in its own weight, style and size)."""
    import html as _html
    from pathlib import Path as _Path
    from reportlab.pdfbase.pdfmetrics import registerFont, stringWidth
    from reportlab.pdfbase.ttfonts import TTFont
    from unroll.render import backend
    for p in backend.font_files():
        registerFont(TTFont(_Path(p).stem, p))
    out = []
    for m in re.finditer(r"<text ([^>]*)>(.*?)</text>", svg_text, re.S):
        a = dict(re.findall(r'([\w:-]+)="([^"]*)"', m.group(1)))
        size, x, y = float(a.get("font-size", 14)), float(a["x"]), float(a["y"])
        width = 0.0
        for attrs, t in re.findall(r"<tspan ?([^>]*)>([^<]*)</tspan>", m.group(2)) or \
                [("", m.group(2))]:
            s = dict(re.findall(r'([\w:-]+)="([^"]*)"', attrs))
            bold, italic = s.get("font-weight") == "bold", s.get("font-style") == "italic"
            font = "DejaVuSerif" + ("-BoldItalic" if bold and italic else "-Bold" if bold
                                    else "-Italic" if italic else "")
            width += stringWidth(_html.unescape(t), font, float(s.get("font-size", size)))
        x0 = x - width / 2 if a.get("text-anchor") == "middle" else x
        text = _html.unescape(re.sub("<[^>]+>", "", m.group(2))).strip()
        if text:
            out.append((text, x0, y - 0.75 * size, x0 + width, y + 0.2 * size))
    return out


def _overlapping(svg_text: str) -> list:
    boxes = _label_boxes(svg_text)
    return [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]]


@pytest.mark.parametrize("make", [lambda: ur.models.lstm(3, 4), lambda: ur.models.gru(3, 4),
                                  lambda: ur.models.lstm(3, 4, num_layers=2),
                                  lambda: ur.models.elman(3, 4, 2)])
def test_no_two_labels_overlap_in_the_models_pictures(make, no_system_dot):
    """Graphviz lays labels out in plain Times; drawn in DejaVu Serif bold italic they are up
    to 1.5x wider, so weight_ih_l0 and weight_hh_l0 ran into each other (now padded)."""
    c = make()
    for params in ("edges", "nodes"):
        assert not _overlapping(ur.render.svg(c.to_dot(params=params))), (c.name, params)


_GALLERY: list = []


def _gallery_svgs() -> list:
    """(figure, picture, SVG) of every gallery figure (docs/make_gallery.py), drawn once (by
    the first test asking, with the system Graphviz hidden)."""
    if not _GALLERY:
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "make_gallery", Path(__file__).resolve().parent.parent / "docs" / "make_gallery.py")
        gallery = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gallery)
        _GALLERY.extend((fn.__name__, key, ur.render.svg(dot))
                        for _, fn in gallery.FIGURES for key, dot in fn().items())
    return _GALLERY


def test_no_two_labels_overlap_in_the_gallery(no_system_dot):
    for figure, key, svg_text in _gallery_svgs():
        assert not _overlapping(svg_text), (figure, key)


def test_parameters_drawn_as_nodes_are_boxes_their_size_with_arrows():
    nodes, edges = parse(ur.models.lstm(3, 4).to_dot(params="nodes"))
    boxes = {k: a for k, a in nodes.items() if k.startswith("param_")}
    assert set(boxes) == {"param_weight_ih_l0", "param_weight_hh_l0"}     # the weights
    assert all(a.get("fixedsize") == "false" for a in boxes.values())
    into = [a for t, h, a in edges if t.startswith("param_")]
    assert into and all(a.get("arrowhead") != "none" for a in into)


def test_the_bidirectional_figure_keeps_h_in_one_straight_row(no_system_dot):
    """Fig. 10.11: h runs left to right in one row; drawn as curves, each h -> h edge dipped
    below the row around the bend point of an x -> g edge passing it. Straight, every
    h -> h edge stays at the height of the h row."""
    g = tb.bidirectional(3, 4, 2).unroll(steps=3)
    svg_text = ur.render.svg(g.to_dot(relative=True))
    row = {float(y) for y in re.findall(r'<title>v_h_\w+</title>\s*<ellipse[^>]*cy="([-0-9.]+)"',
                                        svg_text)}
    assert len(row) == 1, row
    y0 = row.pop()
    chain = re.findall(r'<title>v_h_\w+&#45;&gt;v_h_\w+</title>\s*<path[^>]*d="([^"]+)"',
                       svg_text)
    assert len(chain) >= 2
    for d in chain:
        heights = [float(v) for v in re.findall(r"[-0-9.]+", d)[1::2]]
        assert max(abs(h - y0) for h in heights) < 1, d


def _edge_points(svg_text: str) -> list:
    """(title, points sampled along its path, the texts of its own labels) of every edge."""
    import html as _html
    out = []
    for m in re.finditer(r'<g id="[^"]*" class="edge">\s*<title>([^<]*)</title>(.*?)</g>',
                         svg_text, re.S):
        points = []
        for d in re.findall(r'<path[^>]*d="([^"]+)"', m.group(2)):
            nums = [float(v) for v in re.findall(r"[-0-9.]+", d)]
            P = list(zip(nums[0::2], nums[1::2]))
            for i in range(0, len(P) - 3, 3):              # cubic Bézier pieces
                p0, p1, p2, p3 = P[i:i + 4]
                for k in range(21):
                    t = k / 20
                    points.append(tuple((1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b +
                                        3 * (1 - t) * t * t * c + t ** 3 * e
                                        for a, b, c, e in zip(p0, p1, p2, p3)))
        own = [_html.unescape(re.sub("<[^>]+>", "", t)).strip()
               for t in re.findall(r"<text[^>]*>(.*?)</text>", m.group(2), re.S)]
        out.append((_html.unescape(m.group(1)), points, own))
    return out


def test_no_label_of_the_gallery_sits_on_another_edge(no_system_dot):
    """The book's standard: a weight's label touches no edge but its own (fig. 10.11's U_g
    and W sat on the h chain and on the x -> g edges crossing it)."""
    for figure, key, svg_text in _gallery_svgs():
        edges = _edge_points(svg_text)
        for text, x0, y0, x1, y1 in _label_boxes(svg_text):
            on = [title for title, points, own in edges if text not in own and
                  any(x0 + 1 < x < x1 - 1 and y0 + 1 < y < y1 - 1 for x, y in points)]
            assert not on, (figure, key, text, on)
