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
    return files
