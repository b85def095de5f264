"""Drawing operands for a primitive from its registry domain (``Primitive.domain``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

__all__ = ["Arg", "primitive_cases"]


@dataclass
class Arg:
    """A drawn operand: ``value`` has a leading batch axis if ``batched``."""
    value: np.ndarray
    shape: tuple                # per-example shape
    batched: bool
    dtype: str = "float"


class Draw:
    """The interface registry domains draw through: sizes and choices, and operands."""

    def __init__(self, draw, batch: int):
        self._draw, self.batch = draw, batch

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def choice(self, options):
        return self._draw(st.sampled_from(list(options)))

    def shape(self, min_rank: int = 0, max_rank: int = 2) -> tuple:
        r = self.integer(min_rank, max_rank)
        return tuple(self.integer(1, 3) for _ in range(r))

    def broadcastable(self, shape: tuple) -> tuple:
        """A shape that broadcasts against ``shape`` (same rank, some sizes 1)."""
        return tuple(n if self._draw(st.booleans()) else 1 for n in shape)

    def _batched(self, batched):
        return self._draw(st.booleans()) if batched is None else batched

    def array(self, shape, low=-2.0, high=2.0, away_from_zero=False, batched=None) -> Arg:
        b = self._batched(batched)
        full = ((self.batch,) if b else ()) + tuple(shape)
        seed = self._draw(st.integers(0, 2 ** 32 - 1))
        rng = np.random.default_rng(seed)
        v = rng.uniform(low, high, size=full)
        if away_from_zero:                    # keep |v| >= 0.3 (kinks, division)
            v = np.sign(v + (v == 0)) * (0.3 + np.abs(v) * (max(abs(low), abs(high)) - 0.3)
                                         / max(abs(low), abs(high)))
        return Arg(np.asarray(v, dtype=np.float64), tuple(shape), b)

    def ints(self, shape, high: int, batched=None) -> Arg:
        b = self._batched(batched)
        full = ((self.batch,) if b else ()) + tuple(shape)
        seed = self._draw(st.integers(0, 2 ** 32 - 1))
        v = np.random.default_rng(seed).integers(0, high, size=full)
        return Arg(v, tuple(shape), b, "int")


def primitive_cases(prim):
    """``(args, params)`` for ``prim`` (a registered primitive or its name) drawn from its
    registry domain (batch size 2)."""
    from ..core import PRIMITIVES, Primitive
    from ..errors import UnrollError, suggest
    if isinstance(prim, str):
        if prim not in PRIMITIVES:
            raise UnrollError(f"primitive_cases: no primitive {prim!r}"
                              f"{suggest(prim, PRIMITIVES)}")
        prim = PRIMITIVES[prim]
    if not isinstance(prim, Primitive):
        raise UnrollError(f"primitive_cases takes a registered primitive or its name, not "
                          f"{type(prim).__name__} {prim!r:.60}")
    if prim.domain is None:
        raise UnrollError(f"primitive_cases: {prim.name} has no test domain; register one "
                          "with defprim(..., domain=...)")
    return _cases(prim)


@st.composite
def _cases(draw, prim):
    d = Draw(draw, batch=2)
    args, params = prim.domain(d)
    return list(args), dict(params)
