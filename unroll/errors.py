"""Every error unroll raises on purpose, in one hierarchy.

Each message names the object at fault, where it sits (node, step t, batch entry) and what to do
about it. Catch :class:`UnrollError` to catch them all; the classes also derive from the builtin
exception a Python user would expect (``ValueError``, ``TypeError``, ...).
"""
from __future__ import annotations

import difflib

__all__ = [
    "UnrollError", "CircuitError", "AlgebraicLoopError", "ShapeError", "DTypeError",
    "InputError", "ParamError", "NonFiniteError", "GradcheckError", "GradcheckWarning",
    "RenderError", "NoSuchAttributeError", "NoSuchVariableError", "ResourceError", "suggest",
    "flag",
]


class UnrollError(Exception):
    """Base class of every error raised by unroll on purpose."""


class CircuitError(UnrollError, ValueError):
    """The circuit is ill-formed: a state without ``.next``, a delay k < 1, a bad name, ..."""


class AlgebraicLoopError(CircuitError):
    """A variable depends on itself at the same time step (a cycle with zero total delay)."""


class ShapeError(UnrollError, ValueError):
    """Operands, parameters or inputs whose shapes do not fit together."""


class DTypeError(UnrollError, TypeError):
    """An array of the wrong dtype (integer data where floats are needed, mixed precisions)."""


class InputError(UnrollError, ValueError):
    """A missing, extra, misspelled or ill-shaped input, a wrong sequence length, a bad target."""


class ParamError(UnrollError, ValueError):
    """A missing, extra or ill-shaped parameter."""


class NonFiniteError(UnrollError, FloatingPointError):
    """A NaN or Inf appeared; the message names the first node and step where it did."""


class GradcheckError(UnrollError, AssertionError):
    """Analytic gradients disagree with finite differences; the message holds the report."""


class RenderError(UnrollError, ValueError):
    """A picture cannot be drawn as asked: an unknown option or file type, a missing renderer."""


class NoSuchAttributeError(UnrollError, AttributeError):
    """A circuit value has no such attribute (``h.prev.prev``: write ``h.delayed(2)``)."""


class NoSuchVariableError(CircuitError, KeyError):
    """``c[name]`` for a name the circuit does not have."""

    def __str__(self) -> str:                 # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class ResourceError(UnrollError, MemoryError):
    """What was asked would not fit in memory; the message gives the estimate and the ways
    out (a shorter τ, truncated BPTT, checkpoint=..., a smaller batch)."""


def available_memory() -> int | None:
    """Bytes of memory this process can still use (MemAvailable on Linux), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MiB"


class GradcheckWarning(UserWarning):
    """Gradcheck had to change something you asked for (e.g. upcast float32 to float64)."""


def flag(value, what: str) -> bool:
    """``value`` as a bool; a string such as "no" (which Python counts as true) is refused."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise UnrollError(f"{what} must be True or False, not {value!r}")


def suggest(name: str, known) -> str:
    """A "did you mean ...?" hint for a misspelled ``name`` among ``known`` (or '')."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
