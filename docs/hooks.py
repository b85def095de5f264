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
