"""Pictures for teaching: circuit diagrams and unrolled graphs that look like the textbook.

Builders return ``graphviz.Digraph`` objects (DOT is the artefact); :func:`render` writes SVG,
PNG, PDF or DOT by file extension, with a system Graphviz or, without one, a WebAssembly
Graphviz from PyPI (see :mod:`unroll.render.backend`).
"""
from .backend import Picture, has_system_dot, pdf, png, render, svg
from .circuit import circuit_dot
from .equations import Equations, latex
from .unrolled import unrolled_dot

__all__ = ["circuit_dot", "unrolled_dot", "render", "svg", "png", "pdf", "has_system_dot",
           "Picture", "latex", "Equations"]

