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
    "ArgumentError", "flag", "integer", "number", "expect", "options", "guard",
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


class ArgumentError(UnrollError, TypeError):
    """A call with an argument the function does not take, or without one it needs
    (``c.render("c.png", zom=2)``: did you mean ``zoom``?)."""


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


def flag(value, what: str, err: type = UnrollError) -> bool:
    """``value`` as a bool; a string such as "no" (which Python counts as true) is refused."""
    if isinstance(value, bool) or _numpy_bool(value):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise err(f"{what} must be True or False, not {value!r}")


def _numpy_bool(value) -> bool:
    """NumPy's bool scalar (np.True_), without importing NumPy."""
    t = type(value)
    return t.__module__ == "numpy" and t.__name__ in ("bool", "bool_")


def integer(value, what: str, lo: int | None = None, hi: int | None = None,
            err: type = UnrollError) -> int:
    """``value`` as an int (NumPy integers welcome; bools, floats and strings refused)."""
    import numbers
    rule = "an integer" + (f" in {lo}..{hi}" if lo is not None and hi is not None else
                           f" >= {lo}" if lo is not None else f" <= {hi}" if hi is not None
                           else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise err(f"{what} must be {rule}, not {type(value).__name__} {_short(value)}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise err(f"{what} must be {rule}, not {v}")
    return v


def number(value, what: str, lo: float | None = None, hi: float | None = None, *,
           above: float | None = None, below: float | None = None,
           err: type = UnrollError) -> float:
    """``value`` as a finite float within [lo, hi] (and > above, < below)."""
    import math
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise err(f"{what} must be a number, not {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise err(f"{what} must be a finite number, not {v}")
    for ok, rule in ((lo is None or v >= lo, f">= {lo}"), (hi is None or v <= hi, f"<= {hi}"),
                     (above is None or v > above, f"> {above}"),
                     (below is None or v < below, f"< {below}")):
        if not ok:
            raise err(f"{what} must be {rule}, not {v:g}")
    return v


def output_file(path, suffixes: tuple, what: str):
    """``path`` as a Path to write a picture to: a str or Path with one of ``suffixes``,
    not a folder, in a folder that exists (else a RenderError naming it and the fix)."""
    import os
    from pathlib import Path
    if not isinstance(path, (str, os.PathLike)):
        raise RenderError(f"{what}: the file to write must be a path (str or Path), not "
                          f"{type(path).__name__} {_short(path)}")
    path = Path(path)
    if "\x00" in str(path) or any(len(part.encode()) > 255 for part in path.parts):
        raise RenderError(f"{what}: {_short(str(path))} is not a usable file name (a NUL "
                          "byte, or a name longer than 255 bytes); pick a shorter plain name")
    if path.is_dir():
        raise RenderError(f"{what}: {str(path)!r} is a folder; give a file name such as "
                          f"picture{suffixes[0]}")
    if path.suffix.lower() not in suffixes:
        raise RenderError(f"{what}: cannot draw to {path.name!r}; name a "
                          f"{', '.join(suffixes[:-1])} or {suffixes[-1]} file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise RenderError(f"cannot write {str(path)!r}: the folder {str(parent)!r} does not "
                          "exist; create it first (e.g. Path(...).mkdir(parents=True))")
    return path


def expect(value, types, what: str, fix: str = "", err: type = UnrollError):
    """``value`` itself if it is one of ``types``; else an error naming what it is instead."""
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise err(f"{what} must be a {names}, not {type(value).__name__} {_short(value)}"
                  + (f"; {fix}" if fix else ""))
    return value


def options(given: dict, known, what: str, err: type = UnrollError) -> None:
    """Refuse keyword arguments ``what`` does not take, with a "did you mean" hint."""
    for k in given:
        if k not in known:
            raise err(f"{what} has no option {k!r}{suggest(k, known)}; its options are "
                      f"{', '.join(sorted(known))}")


def _short(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def suggest(name: str, known) -> str:
    """A "did you mean ...?" hint for a misspelled ``name`` among ``known`` (or '')."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- the public API answers a call it cannot take with an ArgumentError -----------------------

def _argument_error(fn, e: TypeError, kwargs: dict) -> ArgumentError:
    """The error for a call of ``fn`` that cannot bind: an unknown keyword first (with the
    closest name ``fn`` takes), else Python's own reason; then ``fn``'s parameters."""
    import inspect
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):                          # pragma: no cover - builtins
        return ArgumentError(f"{fn.__qualname__}(): {e}")
    params = [p for p in sig.parameters.values() if p.name != "self"]
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes, star = [], False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star:
            takes.append("*")
            star = True
        takes.append({p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name)
        star = star or p.kind is p.VAR_POSITIONAL
    open_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    unknown = [k for k in kwargs if k not in names] if not open_kw else []
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1, cutoff=0.6)
        why = (f"got an unexpected keyword argument {unknown[0]!r}"
               + (f" (did you mean {close[0]!r}?)" if close else ""))
    else:
        why = str(e).split("() ", 1)[-1] if str(e).startswith(fn.__qualname__) else str(e)
    return ArgumentError(f"{fn.__qualname__}() {why}; it takes ({', '.join(takes)})")


def guard(fn):
    """``fn`` wrapped so that a call it cannot bind (an unknown or missing argument) raises
    an :class:`ArgumentError` naming the argument and what ``fn`` takes; errors raised
    inside ``fn`` pass through untouched."""
    import functools
    if getattr(fn, "__unroll_guarded__", False):
        return fn

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TypeError as e:
            if isinstance(e, UnrollError):
                raise
            import inspect
            try:                        # was it the call itself that could not bind?
                inspect.signature(fn).bind(*args, **kwargs)
            except TypeError as binding:
                raise _argument_error(fn, binding, kwargs) from None
            except ValueError:          # pragma: no cover - no signature to read
                pass
            raise                       # no: raised inside fn, passed on untouched

    guarded.__unroll_guarded__ = True
    return guarded


def guard_module(module) -> None:
    """Guard every function and every public method of every class in ``module.__all__``
    (and where each was defined, so that every way of reaching it is guarded)."""
    import inspect
    import sys
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and not issubclass(obj, BaseException) \
                and obj.__module__.startswith("unroll"):
            for attr, member in list(vars(obj).items()):
                if inspect.isfunction(member) and (not attr.startswith("_")
                                                   or attr in ("__init__", "__call__")):
                    setattr(obj, attr, guard(member))
        elif inspect.isfunction(obj) and obj.__module__.startswith("unroll"):
            wrapped = guard(obj)
            setattr(module, name, wrapped)
            home = sys.modules.get(obj.__module__)
            if home is not None and getattr(home, obj.__name__, None) is obj:
                setattr(home, obj.__name__, wrapped)
