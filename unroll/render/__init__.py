"""Pictures for teaching: circuit diagrams and unrolled graphs that look like the textbook.

Builders return ``graphviz.Digraph`` objects (DOT is the artefact); :func:`render` writes SVG,
PNG, PDF or DOT by file extension, with a system Graphviz or, without one, a WebAssembly
Graphviz from PyPI (see :mod:`unroll.render.backend`).
"""
from .backend import has_system_dot, pdf, png, render, svg
from .circuit import circuit_dot
from .unrolled import unrolled_dot

__all__ = ["circuit_dot", "unrolled_dot", "render", "svg", "png", "pdf", "has_system_dot",
           "gradient_norms"]


def gradient_norms(g, params: dict, state: str = "h", **inputs):
    """‖∂L/∂h(t)‖ for t = 1..τ from a real backward pass (the norm over batch and features):
    what vanishing and exploding gradients look like. Pass it to ``g.to_dot(heat=...)``."""
    import numpy as np

    from .. import backends
    from ..runtime import grad_graph
    gg = grad_graph(g)
    vals = g.states[state]
    wanted = [gg.cotangents.get(vals[t]) for t in range(1, g.steps + 1)]
    got = gg.evaluate(params, [v for v in wanted if v is not None], **inputs)
    return np.array([0.0 if v is None else float(np.linalg.norm(backends.to_numpy(got[v])))
                     for v in wanted])
