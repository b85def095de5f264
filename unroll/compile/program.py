"""A compiled Program: generated Python source, its function, and the values it returns."""
from __future__ import annotations

import itertools
import math
import linecache
import threading
import weakref

_ids = itertools.count()

__all__ = ["Program", "Workspace"]


class Workspace:
    """The stacked arrays a program allocates, kept from one call to the next.

    A fresh array over all steps is fresh memory: its first write faults every page in (W3's
    gates and states, 28 MiB: ~7,000 page faults, a fifth of a compiled call). The program
    asks here instead, one slot per allocation; a slot keeps its array while the next call
    asks for the same shape on the same namespace (the batch size and dtype may change: then
    it is allocated again). Each thread has its own slots. What a call returns is the
    caller's: a slot whose array a result is, or is a view of, is given up after the call
    (:meth:`release`: followed through ``.base``, or by address where a view's owner is no
    array, as numba's are). At most ``LIMIT`` bytes are kept per program and thread (what
    would go over is allocated afresh at every call, as before); ``clear()`` drops them all,
    and the memory goes back when the program does (with its graph)."""

    #: bytes kept between calls, per program and thread
    LIMIT = 256 * 2 ** 20

    def __init__(self):
        self._local = threading.local()

    @property
    def held(self) -> int:
        """Bytes this thread's slots keep between calls."""
        return sum(n for _, _, n in self._slots().values())

    def _slots(self) -> dict:
        slots = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._local.slots = {}
        return slots

    def empty(self, xp, slot: int, shape: tuple):
        """An uninitialised array of ``shape`` in ``xp``'s float dtype, kept in ``slot``."""
        slots = self._slots()
        held = slots.get(slot)
        if held is not None and held[0] is xp and held[1].shape == shape:
            return held[1]
        if held is not None:
            del slots[slot]
        a = xp.empty(shape, dtype=xp.float_dtype)
        n = math.prod(shape) * (xp.module.finfo(xp.float_dtype).bits // 8)
        if n + sum(m for _, _, m in slots.values()) <= self.LIMIT:
            slots[slot] = (xp, a, n)
        return a

    def release(self, results) -> None:
        """Give up the slots whose arrays ``results`` are, or are views of."""
        slots = getattr(self._local, "slots", None)
        if not slots:
            return
        roots, others = set(), []
        for r in results:
            a = r
            while getattr(a, "base", None) is not None:
                a = a.base
            roots.add(id(a))
            if a is not r and type(a) is not type(r):
                others.append(r)                # a view whose owner is no array (numba's)
        for slot, (xp, a, _) in list(slots.items()):
            may = getattr(xp.module, "may_share_memory", None)
            if id(a) in roots or may is not None and any(may(r, a) for r in others):
                del slots[slot]

    def clear(self) -> None:
        self._local = threading.local()


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
        self.workspace = glb["_ws"] = Workspace() if "_ws." in source else None
        exec(compile(source, filename, "exec"), glb)
        self.fn = glb[name]
        #: the loop kernels a code target compiles (their ``source``), in order
        self.kernels = [glb[k] for k in sorted((k for k in glb if k.startswith("_kernel")),
                                               key=lambda k: int(k[len("_kernel"):]))]

    def __call__(self, xp, params: dict, arrays: dict) -> tuple:
        out = self.fn(xp, params, arrays)
        if self.workspace is not None:
            self.workspace.release(out)
        return out

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return (f"<Program {self.name}: {self.stats.get('equations', '?')} equations, "
                f"{self.stats.get('loops', 0)} loops, {self.source.count(chr(10))} lines>")
