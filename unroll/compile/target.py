"""Code targets: what the compiler emits for the equations and loops of a graph.

The array namespace ``xp`` (NumPy, CuPy, ...) holds the data; a *code target* decides the code
that computes on it. The default target, ``"python"``, emits readable Python over ``xp``: each
primitive through its ``code`` template (or a call of its forward rule), each re-rolled run of
steps as a ``for t`` loop. Another target (a compiled loop kernel: numba on the CPU, a fused
kernel on a GPU) lives in its own files and plugs in here by subclassing :class:`Target`:

- :meth:`Target.template` gives its own code for a primitive (or falls back to the default);
- :meth:`Target.loop` may take over a whole ``for t`` loop of the lowering (a kernel call),
  and :meth:`Target.straight` the straight-line work of one step;
- :meth:`Target.namespace` adds the globals its code calls.

:func:`register` makes it available as ``value_and_grad(..., executor=name)``; the
differential tests run every registered target against the reference interpreter.
"""
from __future__ import annotations

from ..errors import UnrollError, suggest

__all__ = ["Target", "TARGETS", "register", "get"]


class Target:
    """The default code target: Python over ``xp``. Subclass it for another."""

    name = "python"
    #: keep per-step values in arrays over steps (``h_[t, ...]``) rather than in lists of
    #: arrays (``h_[t]``): what a compiled kernel can take as an argument
    stack_lists = False
    #: the target fuses a loop's elementwise work (so none of it is taken out of the loop)
    fuses_elementwise = False
    #: time-batched work of a loop is done chunk by chunk, ``chunk_steps`` steps at a time
    #: (None: all steps at once), where a stacked value has at least ``chunk_min`` entries
    #: per example and step: its array over the steps of one chunk replaces one over all
    #: steps (see :mod:`~unroll.compile.lower`)
    chunk_steps: int | None = 64
    chunk_min = 256

    def template(self, prim):
        """The code template of ``prim`` for this target: a format string over the operand
        expressions (``"xp.tanh({0})"``), a callable ``(avals, **params) -> str or None``,
        or None to call its forward rule."""
        return prim.code

    def loop(self, lowering, block) -> list | None:
        """Lines that run the re-rolled loop ``block`` (steps ``block.steps``, body
        ``block.chunk``), or None for the default ``for t`` loop. ``lowering`` offers the body
        as Python lines (``lowering.body_lines(block)``) and the loop header."""
        return None

    def time_batches(self, chunk) -> bool:
        """Take the work of a loop (body ``chunk``) that does not need the recurrence out of
        it, stacked over the steps (:mod:`~unroll.compile.timebatch`)? A kernel that runs
        small per-step work faster in its loop than NumPy runs it stacked says no."""
        return True

    def straight(self, lowering, block) -> list | None:
        """Lines that run the straight-line work of one step (``block.chunk``, step
        ``block.chunk.step``: a step peeled off a loop's end), or None for the default
        (``lowering.straight_lines(block)``)."""
        return None

    def namespace(self) -> dict:
        """Globals the generated code of this target calls (kernels, helpers)."""
        return {}

    def __repr__(self) -> str:
        return f"<code target {self.name}>"


TARGETS: dict = {"python": Target()}

#: targets of unroll's own that register themselves when first asked for (their module
#: imports nothing heavy until a program of theirs runs)
BUILTIN = {"numba": "loopkernel"}


def register(target: Target) -> Target:
    """Make ``target`` available by its name (``executor=target.name``)."""
    if not isinstance(target, Target):
        raise UnrollError(f"a code target is a unroll.compile.target.Target, not "
                          f"{type(target).__name__}")
    if not isinstance(target.name, str) or not target.name.isidentifier() or \
            target.name in ("compiled", "interpret"):
        raise UnrollError(f"a code target needs a name of its own (an identifier other than "
                          f"'compiled' and 'interpret'), not {target.name!r}")
    TARGETS[target.name] = target
    return target


def get(name: str) -> Target:
    """The registered target ``name`` ("compiled" is the default, Python over ``xp``)."""
    key = "python" if name == "compiled" else name
    if isinstance(key, str) and key in BUILTIN and key not in TARGETS:
        import importlib
        importlib.import_module(f"{__package__}.{BUILTIN[key]}")
    if not isinstance(key, str) or key not in TARGETS:
        known = ["compiled", "interpret"] + list(dict.fromkeys(
            [t for t in TARGETS if t != "python"] + list(BUILTIN)))
        raise UnrollError(f"executor must be one of {', '.join(map(repr, known))}, not "
                          f"{name!r}{suggest(str(name), known)}")
    return TARGETS[key]
