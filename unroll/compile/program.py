"""A compiled Program: generated Python source, its function, and the values it returns."""
from __future__ import annotations

import itertools
import linecache
import weakref

_ids = itertools.count()

__all__ = ["Program"]


class Program:
    """Straight-line Python over the step body, looped over t. ``print(program)`` shows it.

    Calling it with a backend namespace, the parameters (name -> array) and the inputs
    (name -> array, with a batch axis) returns the requested items' arrays, in order.
    """

    def __init__(self, name: str, source: str, namespace: dict, stats: dict):
        self.name = name
        self.source = source            # the generated function, as text
        self.stats = stats              # equations before/after the passes, loops, ...
        self.namespace = namespace      # what the source reads besides xp, P and A
        glb = dict(namespace)
        filename = f"<unroll program {name} #{next(_ids)}>"
        # tracebacks through generated code show its lines, for as long as the program lives
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        weakref.finalize(self, linecache.cache.pop, filename, None)
        exec(compile(source, filename, "exec"), glb)
        self.fn = glb[name]
        #: the loop kernels a code target compiles (their ``source``), in order
        self.kernels = [glb[k] for k in sorted((k for k in glb if k.startswith("_kernel")),
                                               key=lambda k: int(k[len("_kernel"):]))]

    def __call__(self, xp, params: dict, arrays: dict) -> tuple:
        return self.fn(xp, params, arrays)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return (f"<Program {self.name}: {self.stats.get('equations', '?')} equations, "
                f"{self.stats.get('loops', 0)} loops, {self.source.count(chr(10))} lines>")
