"""A compiled Program: generated Python source, its function, and the values it returns."""
from __future__ import annotations

__all__ = ["Program"]


class Program:
    """Straight-line Python over the step body, looped over t. ``print(program)`` shows it.

    Calling it with a backend namespace, the parameters and the (bound) inputs returns a dict
    mapping each requested result Value to its array.
    """

    def __init__(self, name: str, source: str, namespace: dict, results: list, stats: dict):
        self.name = name
        self.source = source            # the generated function, as text
        self.results = results          # Values, in the order the function returns them
        self.stats = stats              # equations before/after the passes, loops, ...
        glb = dict(namespace)
        exec(compile(source, f"<unroll program {name}>", "exec"), glb)
        self.fn = glb[name]

    def __call__(self, xp, params: dict, arrays: dict) -> dict:
        return dict(zip(self.results, self.fn(xp, params, arrays)))

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return (f"<Program {self.name}: {self.stats.get('equations', '?')} equations, "
                f"{self.stats.get('loops', 0)} loops, {self.source.count(chr(10))} lines>")
