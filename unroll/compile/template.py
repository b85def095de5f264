"""Programs that do not grow with τ: one program source for every number of steps.

Every step of an unrolled circuit is the same body, so once the compiler has re-rolled the
steps into loops, the programs it emits for τ and τ + 1 steps differ only in integer literals
that count steps: loop bounds (``range(1, τ + 1)``), the lengths of arrays stacked over steps,
the first and the last step's indices, the ``t = 1..τ`` of the comments. A
:class:`Template` is fitted to the programs of a few small unrollings: text that is the same
in all of them stays, and each literal that differs must be ``a + k·τ`` (an integer k) in every
sample. It then writes the program for any τ without unrolling, differentiating or compiling τ
steps: the compilation costs what the small samples cost, whatever τ is.

Nothing is assumed that the samples do not show: the fit needs three samples; the third must
come out of the two before it exactly (text, every literal, the namespace the code runs in and
the statistics), and anything else (a literal that is not affine in τ, a line that appears at
one τ and not another) refuses the template, and the caller compiles the graph itself. The
tests hold the template's program for τ to the source compiled from τ steps, character for
character.
"""
from __future__ import annotations

import functools
import math
import re
import types

__all__ = ["Template", "fit", "sample_steps", "same_namespace"]

#: an integer literal: digits not part of a name (``v3_``); a float is two (``0.5``) and stays
#: whole only if it is the same in every sample
_INT = re.compile(r"(?<!\w)\d+(?!\w)")


def _split(source: str) -> tuple:
    """(text pieces, integer literals): ``pieces[0] + ints[0] + pieces[1] + ...``."""
    pieces, ints, at = [], [], 0
    for m in _INT.finditer(source):
        pieces.append(source[at:m.start()])
        ints.append(m.group())
        at = m.end()
    pieces.append(source[at:])
    return pieces, ints


class Template:
    """Program text with holes ``a + k·τ``; ``source(τ)`` fills them."""

    def __init__(self, pieces: list, holes: list, stats: dict):
        self.pieces = pieces            # text between the holes
        self.holes = holes              # (a, k): the literal is a + k·τ (a string: constant)
        self.stats = stats              # name -> (a, k), or a tuple of them, or a constant

    def source(self, steps: int) -> str:
        out = [self.pieces[0]]
        for (a, k), piece in zip(self.holes, self.pieces[1:]):
            out.append(a if k is None else str(a + k * steps))
            out.append(piece)
        return "".join(out)

    def statistics(self, steps: int) -> dict:
        def fill(s):
            if isinstance(s, tuple) and s and s[0] == "affine":
                return s[1] + s[2] * steps
            if isinstance(s, tuple):
                return tuple(fill(x) for x in s)
            return s
        return {name: fill(s) for name, s in self.stats.items()}


def sample_steps(steps: int, depth: int):
    """The three τ to sample for a graph of ``steps`` steps whose states are read up to
    ``depth`` steps back, or None when the graph is too short for them to be smaller.

    They lie past the boundary steps (the first and last ``depth`` steps, peeled off the
    loops, and a loop between them), and they are congruent with ``steps`` modulo every delay
    up to ``depth``: a chain of k-step delays ends on an initial row that depends on τ mod k.
    (Today such a chain is never one loop, so the fit fails on it anyway; the congruence keeps
    the template right should the re-roller learn strided loops.)"""
    period = math.lcm(*range(1, depth + 1))
    t0 = max(8, 4 + 3 * depth)
    t0 += (steps - t0) % period
    out = (t0, t0 + period, t0 + 3 * period)
    return out if out[-1] < steps else None


def fit(samples: list):
    """A :class:`Template` from ``samples``, three ``(τ, source, stats)`` at τ0 < τ1 < τ2, or
    None when a literal that differs between the first two is not a + k·τ with an integer k,
    or when the third does not come out of the first two exactly. The template holds for the
    τ that are τ0 modulo τ1 - τ0 (what the samples are of: with a delay of 2, the program for
    an odd τ may read other initial rows than for an even one)."""
    (t0, src0, st0), (t1, src1, st1), (t2, src2, st2) = samples
    if not t0 < t1 < t2:
        raise ValueError("fit: samples at τ0 < τ1 < τ2")
    p0, i0 = _split(src0)
    p1, i1 = _split(src1)
    if p0 != p1 or len(i0) != len(i1):
        return None
    holes = [(a, None) if a == b else _affine(int(a), int(b), t0, t1 - t0)
             for a, b in zip(i0, i1)]
    if any(h is None for h in holes):
        return None
    stats = _fit_stats(st0, st1, t0, t1 - t0)
    if stats is None:
        return None
    tpl = Template(p0, holes, stats)
    if tpl.source(t2) != src2 or tpl.statistics(t2) != st2:
        return None
    return tpl


def _affine(a: int, b: int, t0: int, d: int):
    """(c, k) with a = c + k·t0 and b = c + k·(t0 + d), or None when k is not an integer."""
    k, r = divmod(b - a, d)
    return None if r else (a - k * t0, k)


def _fit_stats(s0: dict, s1: dict, t0: int, d: int):
    if set(s0) != set(s1):
        return None

    def one(x, y):
        if isinstance(x, bool) or isinstance(y, bool):
            return x if x == y else None
        if isinstance(x, int) and isinstance(y, int):
            line = _affine(x, y, t0, d)
            return x if x == y else None if line is None else ("affine",) + line
        if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y):
            parts = tuple(one(a, b) for a, b in zip(x, y))
            return None if any(p is None for p in parts) else parts
        return x if x == y else None
    out = {}
    for k in s0:
        v = one(s0[k], s1[k])
        if v is None:
            return None
        out[k] = v
    return out


def same_namespace(a: dict, b: dict) -> bool:
    """Do two programs' namespaces hold the same things (by value: the partial applications
    of primitives with their parameters, constants, loop kernels by their source)?"""
    if a.keys() != b.keys():
        return False
    return all(_same(a[k], b[k]) for k in a)


def _same(x, y) -> bool:
    if x is y:
        return True
    if type(x) is not type(y):
        return False
    if isinstance(x, functools.partial):
        return x.func is y.func and x.args == () == y.args and \
            x.keywords.keys() == y.keywords.keys() and \
            all(_same(x.keywords[k], y.keywords[k]) for k in x.keywords)
    if isinstance(x, types.FunctionType):         # made afresh by one line: the same code
        return x.__code__ is y.__code__ and x.__globals__ is y.__globals__ and \
            _same(x.__defaults__, y.__defaults__) and x.__kwdefaults__ == y.__kwdefaults__ and \
            (x.__closure__ is None) == (y.__closure__ is None) and \
            all(_same(a.cell_contents, b.cell_contents)
                for a, b in zip(x.__closure__ or (), y.__closure__ or ()))
    code = getattr(x, "code", None)
    if isinstance(code, str):                     # a loop kernel: by what it compiles
        return code == getattr(y, "code", None)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x.shape == y.shape and x.dtype == y.dtype and bool((x == y).all())
    if isinstance(x, tuple):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    if isinstance(x, (int, float, complex, str, bytes, type(None), frozenset)):
        return x == y
    return False
