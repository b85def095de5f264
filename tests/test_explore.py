"""g.explore: one self-contained HTML page stepping through the forward pass and BPTT with
the real numbers. The page's numbers are checked here; the page itself runs in headless
Chromium (Debian's, ``make test-browser`` installs it; skipped where there is none)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import unroll as ur

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    g = ur.models.elman(3, 4, 2).unroll(steps=5)
    params = g.circuit.init_params(seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 2, 3)), rng.integers(0, 2, (5, 2))
    path = g.explore(tmp_path_factory.mktemp("explore") / "bptt.html", params, x=x, y=y)
    return g, params, x, y, path


def _data(path) -> dict:
    text = path.read_text()
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                text, re.S).group(1).replace("<\\/", "</"))


def test_the_page_is_self_contained_and_holds_the_real_numbers(page):
    g, params, x, y, path = page
    text = path.read_text()
    assert "<svg" in text and not re.search(r"(src|href)=\"https?://", text)
    data = _data(path)
    assert [f["phase"] for f in data["frames"]] == ["forward"] * 5 + ["backward"] * 5
    assert [f["t"] for f in data["frames"]] == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
    norms = ur.diagnostics.gradient_norms(g, params, x=x, y=y)["h"]
    np.testing.assert_allclose(data["norms"]["h"], norms, rtol=1e-12)
    loss, _ = g.value_and_grad(params, x=x, y=y)
    assert data["loss"] == pytest.approx(float(loss), rel=1e-12)
    h2 = g.evaluate(params, [g.states["h"][2]], x=x, y=y)[g.states["h"][2]]
    assert data["values"]["v_h_2"]["value"]["norm"] == pytest.approx(np.linalg.norm(h2))
    assert data["values"]["v_h_2"]["value"]["strip"] == pytest.approx(list(h2[0]))
    assert data["frames"][2]["eqs"][:2] == ["a(3) = (b + (W @ h(2))) + (U @ x(3))",
                                           "h(3) = tanh(a(3))"]
    assert any(e.startswith("∂h[3] = ") for e in data["frames"][7]["eqs"])


def test_explore_refuses_what_it_cannot_write(page, tmp_path):
    g, params, x, y, _ = page
    with pytest.raises(ur.errors.RenderError, match=r"\.html"):
        g.explore(tmp_path / "bptt.png", params, x=x, y=y)
    with pytest.raises(ur.errors.RenderError, match="does not exist"):
        g.explore(tmp_path / "nope" / "bptt.html", params, x=x, y=y)
    with pytest.raises(ur.errors.RenderError, match="no loss"):
        ur.models.lstm(3, 4).unroll(3).explore(tmp_path / "a.html", {}, x=x)


def _chromium(url: str, *args) -> str:
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", *args, url], capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (make test-browser installs "
                                             "Debian's)")
def test_the_page_steps_through_forward_and_bptt_in_a_browser(page, tmp_path):
    """Opened at a frame (the page reads #frame=N&select=id, as its buttons set it): the
    step's values are highlighted, its equations and the selected value's numbers shown."""
    g, params, x, y, path = page
    data = _data(path)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]

    def dom(frame, select=None):
        url = path.as_uri() + f"#frame={frame}" + (f"&select={select}" if select else "")
        return _chromium(url, "--dump-dom", *profile)

    def classes(html, ident):
        m = re.search(r'<g id="[^"]*" class="([^"]*)"[^>]*>\s*<title>' + ident + "</title>",
                      html)
        return set(m.group(1).split()) if m else set()

    forward = dom(2)                                  # forward, t = 3
    assert "forward, t = 3" in forward
    assert "current" in classes(forward, "v_h_3") and "current" in classes(forward, "v_o_3")
    assert "done" in classes(forward, "v_h_2") and "current" not in classes(forward, "v_h_4")
    assert "h(3) = tanh(a(3))" in forward

    backward = dom(7, "v_h_2")                        # BPTT, t = 3, h(2) clicked
    assert "backward (BPTT), t = 3" in backward
    assert "grad" in classes(backward, "v_h_3") and "grad" not in classes(backward, "v_h_4")
    assert "∂h[3] = " in backward
    assert "selected" in classes(backward, "v_h_2")
    norm = data["values"]["v_h_2"]["grad"]["norm"]
    assert f'<span id="grad-norm">{norm:.3e}'.replace("e-0", "e-") in backward
    assert re.search(r'<div id="bar-3" [^>]*class="now"', backward)

    shot = tmp_path / "bptt.png"
    _chromium(path.as_uri() + "#frame=7&select=v_h_2", f"--screenshot={shot}",
              "--window-size=1300,800", *profile)
    assert shot.stat().st_size > 10_000


def test_names_cannot_break_or_script_the_page(tmp_path):
    """Names are any printable text: none of them may end the data block, open a comment,
    fill a placeholder or run script."""
    c = ur.Circuit("n__DATA__<img src=x onerror=alert(1)><!--<script>__SVG__")
    x = c.input("x", (2,))
    h = c.state("h", (2,))
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.prev + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    path = g.explore(tmp_path / "p.html", g.circuit.init_params(0), x=np.ones((3, 2)))
    text = path.read_text()
    assert text.count("<svg") == 1 and "<img src=x" not in text and "<!--<script>" not in text
    assert _data(path)["name"] == c.name
    if CHROMIUM:
        out = _chromium(path.as_uri() + "#frame=3", "--dump-dom",
                        "--user-data-dir=" + str(tmp_path / "profile"))
        assert "backward (BPTT), t = 3" in out and "<img" not in out


def test_values_without_a_batch_axis_show_their_own_shape(tmp_path):
    """h(-1), h(0) of a state read two steps back from a parameter: one value for every
    sequence, shape (2,), not the first entry of it."""
    c = ur.Circuit("delay")
    x = c.input("x", (2,))
    h = c.state("h", (2,), init="param")
    h.next = ur.tanh(c.param("W", (2, 2)) @ h.delayed(2) + x)
    c.loss(ur.sum(h * h))
    g = c.unroll(steps=3)
    path = g.explore(tmp_path / "p.html", g.circuit.init_params(0), x=np.ones((3, 2, 2)))
    data = _data(path)
    for ident in ("v_h_m1", "v_h_0"):
        assert data["values"][ident]["value"]["shape"] == [2]
        assert len(data["values"][ident]["value"]["strip"]) == 2
    assert data["bars"]["h"] == ["v_h_1", "v_h_2", "v_h_3"]
