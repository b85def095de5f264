"""MkDocs hooks for the docs site (mkdocs.yml: ``hooks``).

The docstrings cross-reference in Sphinx's roles (``:meth:`~unroll.Graph.run```), which
mkdocstrings passes through as text: show them as the code they name (``run``), the way a
reader of ``help()`` sees them.
"""
import re

_TILDE = re.compile(r":(?:meth|class|func|mod|attr|data|exc|obj):(<code>)")


def on_page_content(html, page, config, files):
    def drop(m):
        return m.group(1)
    html = re.sub(r":(?:meth|class|func|mod|attr|data|exc|obj):(<code>)~([\w.]+\.)?",
                  drop, html)
    html = re.sub(r":(?:meth|class|func|mod|attr|data|exc|obj):`~?([^`]+)`", r"\1", html)
    return _TILDE.sub(drop, html)


def on_files(files, config):
    """The explorer of the Elman network (docs/explorer.md links to it), written at build
    time with the unroll being documented."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from mkdocs.structure.files import File

    import unroll as ur
    g = ur.models.elman(3, 4, 2).unroll(steps=5)
    params = g.circuit.init_params(seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 2, 3)), rng.integers(0, 2, (5, 2))
    with tempfile.TemporaryDirectory() as d:
        page = g.explore(Path(d) / "elman.html", params, x=x, y=y).read_text()
        files.append(File.generated(config, "explorer/elman.html", content=page))
        for name, data in _pictures(Path(d)).items():
            files.append(File.generated(config, f"img/{name}", content=data))
    return files


def _pictures(folder) -> dict:
    """The pictures of docs/deriving.md and docs/checking-gradients.md, drawn with the unroll
    being documented: the Elman network's and the LSTM cell's equations (ur.latex), and where
    the three wrong homeworks of examples/homework_bptt.py depart (GradientReport.plot)."""
    import contextlib
    import importlib.util
    import io
    import sys
    from pathlib import Path

    import unroll as ur
    docs = Path(__file__).resolve().parent
    sys.path.insert(0, str(docs))
    try:
        import make_gallery
    finally:
        sys.path.remove(str(docs))
    out = {}
    ur.latex(ur.models.elman(3, 4, 2), grad=True).render(folder / "elman-bptt.png")
    lstm = make_gallery.lstm_cell_circuit()
    lstm.loss(ur.sum(lstm["h"] * lstm["h"]), at="last")
    ur.latex(lstm, grad=True).render(folder / "lstm-bptt.png")
    spec = importlib.util.spec_from_file_location("homework_bptt",
                                                  docs.parent / "examples" / "homework_bptt.py")
    hw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hw)
    with contextlib.redirect_stdout(io.StringIO()):
        reports = hw.main()
    reports["no_recurrence"].plot(folder / "homework-departures.png")
    for name in ("elman-bptt.png", "lstm-bptt.png", "homework-departures.png"):
        out[name] = (folder / name).read_bytes()
    return out
