"""The compiled loop-kernel target, ``executor="numba"`` (the ``fast`` extra installs numba).

Each re-rolled ``for t`` loop of a program becomes one function compiled by numba: the whole
loop runs in machine code, its matrix products through the BLAS NumPy ships
(:mod:`~unroll.compile.numba_helpers`), its elementwise work with no Python between the
steps. Everything else of the program (the stacked work before and after the loops, the
steps peeled off at either end) stays NumPy, as in the default target.

- **Which loops.** A loop whose every equation has a kernel form below (the arithmetic,
  tanh, σ, exp, log, relu and their derivatives, products by a shared matrix, split and
  concat) becomes a kernel; any other loop stays a Python loop. Per-step values live in
  arrays over the steps (``Target.stack_lists``), which a kernel takes as arguments and
  writes in place.
- **Cached on disk.** A kernel is a small Python file named after the hash of its source,
  under ``$UNROLL_KERNEL_CACHE`` (default ``~/.cache/unroll/kernels``); numba caches its
  machine code beside it. The source has no τ and no batch size in it (the loop bounds are
  arguments), so one compilation serves every τ, batch size and later process: the first
  use compiles for some seconds, later processes load it in a fraction of one.
- **Never in the way.** The default executor never imports numba. Without numba, or on
  arrays that are not NumPy's, or where numba cannot compile a kernel, the same loop runs
  in Python, with a one-line notice (:class:`KernelWarning`) the first time.
- **Same numbers.** Typed constants keep float32 float32. The kernel computes what the
  Python loop does, to round-off (the differential tests hold it to the reference
  interpreter with every other executor).
"""
from __future__ import annotations

import hashlib
import math
import importlib.util
import os
import sys
import tempfile
import threading
import warnings

from ..core import Lit
from ..ir import Value
from .lower import STACK, VAR, _comment, _symbolic, _words
from .target import Target, register

__all__ = ["NumbaTarget", "KernelWarning", "cache_dir"]


class KernelWarning(UserWarning):
    """executor="numba" ran (some of) a program's loops in Python instead: why, once."""


_told: set = set()


def _notice(key: str, text: str) -> None:
    if key not in _told:
        _told.add(key)
        warnings.warn(text, KernelWarning, stacklevel=4)


def numba_missing() -> str | None:
    """Why numba kernels cannot run here, or None."""
    if importlib.util.find_spec("numba") is None:
        return ("numba is not installed, so executor='numba' runs the NumPy program "
                "(pip install 'unroll-circuits[fast]' for the compiled loop kernels)")
    return None


_loading = threading.Lock()


def _holds(path: str, source: str) -> bool:
    """Does the cached kernel file hold exactly ``source``? (Never run a file another
    process or a person left under that name with other contents: it is rewritten.)"""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == source
    except OSError:
        return False


def _toolchain() -> str:
    """The cache's subdirectory for what compiles and links the kernels: the helpers' source
    (exp, the BLAS products), numba's and NumPy's versions. numba would otherwise keep
    serving machine code built against an older helper, its cache being keyed by the
    kernel's own file only."""
    import importlib.metadata as md
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    with open(os.path.join(here, "numba_helpers.py"), "rb") as f:
        h.update(f.read())
    h.update(_HEADER.encode())
    for dist in ("numba", "llvmlite", "numpy"):
        try:
            h.update(f"{dist}={md.version(dist)};".encode())
        except md.PackageNotFoundError:
            h.update(f"{dist}=?;".encode())
    return "t" + h.hexdigest()[:16]


def cache_dir() -> str:
    """Where the kernels' files (and numba's machine code for them) are kept."""
    d = os.environ.get("UNROLL_KERNEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "unroll", "kernels")
    return d


# --- the kernel form of each primitive --------------------------------------------------------
# Elementwise work is fused: the loop body's consecutive elementwise equations over one
# iteration space (B, H) become one loop nest over its elements, each value a scalar in a
# register, stored to an array only where something outside the nest reads it (an array
# over steps, a variable of the program, a product). f(operands, const) -> the scalar code;
# ``const(1.0)`` names a float constant of the program's dtype (a kernel argument: a literal
# 1.0 would make numba compute a float32 program in float64).

def _max(a, k, p):
    return f"({a[0]} if ({a[0]} > {a[1]} or {a[0]} != {a[0]}) else {a[1]})"   # NaN wins


def _min(a, k, p):
    return f"({a[0]} if ({a[0]} < {a[1]} or {a[0]} != {a[0]}) else {a[1]})"


def _pow(a, k, p):
    return f"({a[0]} * {a[0]})" if p["p"] == 2.0 else f"({a[0]} ** {k(p['p'])})"


SCALAR_CODE = {
    "add": lambda a, k, p: f"({a[0]} + {a[1]})",
    "accumulate": lambda a, k, p: f"({a[0]} + {a[1]})",
    "sub": lambda a, k, p: f"({a[0]} - {a[1]})",
    "mul": lambda a, k, p: f"({a[0]} * {a[1]})",
    "div": lambda a, k, p: f"({a[0]} / {a[1]})",
    "neg": lambda a, k, p: f"(-{a[0]})",
    "copy": lambda a, k, p: a[0],
    "ones_like": lambda a, k, p: k(1.0),
    "zeros_like": lambda a, k, p: k(0.0),
    "stop_gradient": lambda a, k, p: a[0],
    "exp": lambda a, k, p: f"_exp({a[0]})",
    "log": lambda a, k, p: f"_np.log({a[0]})",
    "sin": lambda a, k, p: f"_np.sin({a[0]})",
    "cos": lambda a, k, p: f"_np.cos({a[0]})",
    "sqrt": lambda a, k, p: f"_np.sqrt({a[0]})",
    "abs": lambda a, k, p: f"abs({a[0]})",
    # numba_helpers.ftanh: 1 - 2/(e^2x + 1), and a Taylor polynomial near 0 (relative
    # precision there); as fast as NumPy's tanh in float32 and 2x faster in float64 (libm's
    # tanh, what numba calls, is 5x slower per element)
    "tanh": lambda a, k, p: f"_tanh({a[0]})",
    "sigmoid": lambda a, k, p: f"({k(1.0)} / ({k(1.0)} + _exp(-{a[0]})))",
    "relu": lambda a, k, p: _max([a[0], k(0.0)], k, p),
    "step": lambda a, k, p: f"({k(1.0)} if {a[0]} > {k(0.0)} else {k(0.0)})",
    "softplus": lambda a, k, p: f"({_max([a[0], k(0.0)], k, p)} + "
                                f"_np.log({k(1.0)} + _exp(-abs({a[0]}))))",
    "maximum": _max,
    "minimum": _min,
    "pow": _pow,
    # g broadcast to ref's shape (ref gives only the shape); mean: divided by B as well
    "broadcast_like": lambda a, k, p: f"({a[0]} / _B)" if p["mean"] else a[0],
    "dtanh": lambda a, k, p: f"({a[0]} * ({k(1.0)} - {a[1]} * {a[1]}))",
    "dsigmoid": lambda a, k, p: f"({a[0]} * ({a[1]} * ({k(1.0)} - {a[1]})))",
}


def _sum_to(e):
    g, = e.inputs
    shape, drop, rank = e.params["shape"], e.params["drop"], e.params["rank"]
    if type(g) is not Value or len(g.shape) != rank:
        return None
    extra = rank - len(shape)

    def out_index(idx):
        lead = [idx[0]] if g.aval.batched and not drop else []
        per = idx[1:] if g.aval.batched else idx
        return lead + ["0" if n == 1 else per[extra + i] for i, n in enumerate(shape)]
    return _space(g), lambda a: a[0], out_index, False


def _sum(e):
    x, = e.inputs
    axes, keep = {a % len(x.shape) for a in e.params["axes"]} if x.shape else set(), \
        e.params["keepdims"]
    if type(x) is not Value:
        return None

    def out_index(idx):
        lead = [idx[0]] if x.aval.batched else []
        per = idx[1:] if x.aval.batched else idx
        return lead + [("0" if i in axes else per[i]) for i in range(len(x.shape))
                       if keep or i not in axes]
    return _space(x), lambda a: a[0], out_index, False


def _mean_batch(e):
    x, = e.inputs
    if type(x) is not Value or not x.aval.batched or len(x.shape) != e.params["rank"]:
        return None
    return _space(x), lambda a: a[0], lambda idx: idx[1:], True


def _outer(e):
    a, b = e.inputs
    if not e.params["reduce"] or type(a) is not Value or type(b) is not Value or \
            len(a.shape) != 1 or len(b.shape) != 1 or _outer_gemm(e) or \
            a.shape[0] * b.shape[0] > SMALL:      # (a large one is NumPy's, or a gemm)
        return None
    batched = a.aval.batched or b.aval.batched     # (B, M, N): out[m, n] += a[b, m] b[b, n]
    space = (batched, (a.shape[0], b.shape[0]))

    def term(ops):
        return f"({ops[0]} * {ops[1]})"

    def access(w, idx):
        lead, (i, j) = idx[:len(idx) - 2], idx[len(idx) - 2:]
        return [w.at(a, (lead if a.aval.batched else []) + [i]),
                w.at(b, (lead if b.aval.batched else []) + [j])]
    return space, term, lambda idx: idx[len(idx) - 2:], False, access


def _outer_gemm(e) -> bool:
    """Σ_b a[b] ⊗ b[b] of two batches of vectors: one gemm (the weight gradient of a step)."""
    if e.prim.name != "outer" or not e.params["reduce"]:
        return False
    a, b = e.inputs
    return type(a) is Value and type(b) is Value and a.aval.batched and b.aval.batched and \
        len(a.shape) == 1 and len(b.shape) == 1


def _matmul(e):
    A, Bm = e.inputs
    if type(A) is not Value or type(Bm) is not Value or len(A.shape) != 2 or \
            len(Bm.shape) != 2 or math.prod(A.shape) * Bm.shape[1] > SMALL:
        return None
    (m, k), n = A.shape, Bm.shape[1]
    batched = e.outs[0].aval.batched
    space = (batched, (m, k, n))          # out[b, m, n] += A[b, m, k] B[b, k, n]

    def access(w, idx):
        lead = idx[:1] if batched else []
        i, j, l = idx[len(lead):]
        return [w.at(A, (lead if A.aval.batched else []) + [i, j]),
                w.at(Bm, (lead if Bm.aval.batched else []) + [j, l])]
    return (space, lambda ops: f"({ops[0]} * {ops[1]})",
            lambda idx: (idx[:1] if batched else []) + [idx[-3], idx[-1]], False, access)


#: reductions: f(eqn) -> (the operand's iteration space, the term summed, its entry of the
#: result, divided by B?[, the operands' entries]) or None where this use has no kernel form
REDUCTIONS = {"sum_to": _sum_to, "sum": _sum, "mean_batch": _mean_batch, "outer": _outer,
              "matmul": _matmul}



def _rank(v) -> int:
    return len(v.shape) + v.aval.batched


def _space(v) -> tuple:
    return (v.aval.batched, v.shape)


def _code(source: str) -> str:
    """``source`` without comments (a line with a quote in it is kept whole)."""
    out = []
    for line in source.splitlines():
        if "'" in line or '"' in line or "#" not in line:
            out.append(line)
        elif line.split("#", 1)[0].strip():
            out.append(line.split("#", 1)[0].rstrip())
    return "\n".join(out) + "\n"


class Kernel:
    """One compiled loop: its source, loaded (and compiled by numba) on first call."""

    def __init__(self, source: str, consts: list, carried: tuple, python: bool = False,
                 reassigned: tuple = ()):
        self.source = source
        self.consts = consts                # the float constants, in argument order
        self.carried = carried              # positions of arguments it does not write into
        self.reassigned = set(reassigned)   # ... of variables it sets again (C, one type)
        self.python = python                # run as plain Python (tests, debugging)
        # what is compiled, cached and keyed: the source without its comments, which show
        # the equations with their steps (a peeled step's ΣL[t+τ-1]) and so would make a
        # kernel per τ of what is one kernel for every τ
        self.code = _code(source)
        self.digest = hashlib.sha256(self.code.encode()).hexdigest()[:24]
        self.fn = None
        self.failed = None
        self.steps = None

    def __call__(self, xp, t0, t1, dt, *args):
        """The loop's assigned variables, or None where the caller must run it in Python."""
        if self.failed or xp.name != "numpy":
            if xp.name != "numpy":
                _notice("backend", f"executor='numba' runs NumPy arrays only; on "
                        f"{xp.name} the program's loops run as Python loops")
            return None
        if self.python:
            return self._call_python(xp, t0, t1, dt, self._layout(xp, args))
        if self.fn is None:
            try:
                self.fn = self._load()
            except Exception as e:          # no numba, no BLAS, no writable cache: say so
                self.failed = f"{type(e).__name__}: {e}"
                _notice("load", f"executor='numba': the loop kernels could not be loaded "
                        f"({self.failed}); the loops run in Python")
                return None
        dtype = xp.module.dtype(xp.float_dtype).type
        args = self._layout(xp, args)
        try:
            return self.fn(t0, t1, dt, *[dtype(c) for c in self.consts], *args)
        except MemoryError:
            raise
        except Exception as e:               # numba's typing or lowering, or its internals
            # (a kernel raises nothing once compiled; the Python loop then recomputes every
            # slot the kernel may have begun to write, from the same arguments)
            self.failed = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            _notice("compile:" + self.digest, f"executor='numba': a loop could not be "
                    f"compiled ({self.failed[:200]}); it runs in Python")
            return None

    def _layout(self, xp, args) -> list:
        """C-contiguous, whatever the caller's layout: one type for a variable the loop
        reassigns, and loops numba vectorises (a strided slice, a piece of a split stacked
        array, makes every access generic: 2x slower). What it writes into goes as it is."""
        args = list(args)
        np = xp.module
        for i in self.carried:             # (run by Python, always a copy: a write into an
            #                                 argument the writer did not declare is lost, and
            #                                 the tests see it)
            a = args[i]
            if self.python:
                args[i] = np.array(a, order="C", copy=True)
            elif i in self.reassigned or not (a.flags.c_contiguous or a.flags.f_contiguous):
                args[i] = np.ascontiguousarray(a)   # (an F one, such as Wᵀ, is fine as is)
        return args

    def _call_python(self, xp, t0, t1, dt, args):
        """The kernel's own source run by Python, element by element, with NumPy standing in
        for numba and its helpers: slow, but it needs no numba and runs exactly the code
        numba would compile (how the tests check the kernel writer without numba)."""
        if self.fn is None:
            np = xp.module
            body = self.code.split("@_njit", 1)[1].split("\n", 1)[1]
            glb = {"_np": np, "_math": __import__("math"), "_exp": np.exp, "_tanh": np.tanh,
                   "_mm_t": lambda v, A: v @ A.T, "_mv_t": lambda v, A: v @ A.T,
                   "_outer_sum": lambda a, b: a.T @ b}
            exec(compile(body, f"<unroll kernel {self.digest}>", "exec"), glb)
            self.fn = glb["kernel"]
        np = xp.module
        dtype = np.dtype(xp.float_dtype).type
        with np.errstate(all="ignore"):          # as in machine code: inf, not a warning
            return self.fn(t0, t1, dt, *[dtype(c) for c in self.consts], *args)

    def _load(self):
        if numba_missing():
            raise ImportError(numba_missing())
        from . import numba_helpers
        if not numba_helpers.AVAILABLE:
            raise ImportError("this NumPy ships no OpenBLAS with 64-bit CBLAS symbols")
        with _loading:                      # one thread writes and imports a kernel at once
            d = os.path.join(cache_dir(), _toolchain())
            os.makedirs(d, exist_ok=True)
            name = f"unroll_kernel_{self.digest}"
            path = os.path.join(d, name + ".py")
            if not _holds(path, self.code):     # written once, whole (numba keys on the file)
                fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(self.code)
                os.replace(tmp, path)
            mod = sys.modules.get(name)
            if mod is None:
                spec = importlib.util.spec_from_file_location(name, path)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                sys.modules[name] = mod
        return mod.kernel

    def __repr__(self) -> str:
        return f"<loop kernel {self.digest}>"


_HEADER = '''"""A loop kernel of unroll (generated from a program's loop; numba caches it here)."""
import math as _math

import numpy as _np
from numba import njit as _njit
from unroll.compile.numba_helpers import fexp as _exp, ftanh as _tanh, mm_t as _mm_t, \
    mv_t as _mv_t, outer_sum as _outer_sum


@_njit(cache=True, nogil=True, error_model="numpy")
'''


class _Unsupported(Exception):
    """This loop has an equation with no kernel form: it stays a Python loop."""


class _KernelWriter:
    """The source of one loop's kernel (see the module's docstring)."""

    def __init__(self, low, b, python: bool = False):
        self.low, self.b, self.s0 = low, b, b.chunk.step
        self.python = python
        self.eqns = b.chunk.eqns
        self.consts: list = []
        self.args: list = []                 # argument names, in order
        self.batched_arg = None              # (name, axis of B) of a batched array argument
        self.float_arg = None                # a float array argument (its dtype)
        self.lines: list = []                # the body of the time loop
        self.before: list = []               # before the time loop (workspaces)
        self.returned: list = []             # variables the program reads after the loop
        self.written: set = set()            # arrays over steps it writes into
        self.transposed: dict = {}           # loop-invariant matrix -> its contiguous Aᵀ

    # -- names --------------------------------------------------------------------------------

    def const(self, value) -> str:
        value = float(value)
        if value not in self.consts:
            self.consts.append(value)
        return f"_k{self.consts.index(value)}"

    def arg(self, v, name: str) -> None:
        """``name`` (the storage of Value ``v``) is read or written before being set here."""
        if name in self.args:
            return
        self.args.append(name)
        how = self.low.kind[v].how if v in self.low.kind else VAR
        if v.aval.batched and self.batched_arg is None:
            self.batched_arg = (name, 0 if how is VAR else 1)
        if v.aval.dtype == "float" and self.float_arg is None:
            self.float_arg = name

    # -- analysis -----------------------------------------------------------------------------

    def local(self, v) -> bool:
        """Is ``v`` (a variable of the program) read only within its own step, at this step
        and at the loop's last (what the program reads after the loop is returned)?"""
        if v.t is None:                       # a total computed in a peeled step
            return False
        low = self.low
        if not hasattr(low, "_by_step"):
            low._by_step = {(low.sname(x), x.t): x for x in low._defined}
        for t in (self.b.steps[0], self.b.steps[-1]):
            d = t - self.s0
            last = max(low._defined[low._by_step[(low.sname(o), o.t + d)]]
                       for e in self.eqns for o in e.outs if o.t is not None)
            w = low._by_step.get((low.sname(v), v.t + d))
            if w is None or low._last_use.get(w, -1) > last:
                return False
        return True

    def write(self):
        try:
            return self._write()
        except _Unsupported:
            return None

    def _write(self):
        low, s0 = self.low, self.s0
        kinds = []
        for e in self.eqns:
            if any(v.aval.dtype != "float" or _rank(v) == 0 or
                   v.t is None and (low.kind[v].how is not VAR or len(self.b.steps) > 1)
                   for v in e.outs):
                raise _Unsupported                # (a total of a peeled step is returned)
            if e.prim.name in SCALAR_CODE:
                kinds.append("ew")
            elif e.prim.name == "split" and e.params["axis"] < 0:
                kinds.append("split")
            elif _outer_gemm(e):
                kinds.append("outer")
            elif e.prim.name in REDUCTIONS and REDUCTIONS[e.prim.name](e) is not None:
                kinds.append("reduce")
            elif e.prim.name == "transpose" and type(e.inputs[0]) is Value and \
                    len(e.inputs[0].shape) == 2:
                kinds.append("transpose")         # a view: the last two indices swapped
            elif e.prim.name == "reshape" and type(e.inputs[0]) is Value:
                kinds.append("reshape")           # a view: its index computed from ours
            elif e.prim.name == "matvec" and type(e.inputs[0]) is Value and \
                    not e.inputs[0].aval.batched and len(e.inputs[0].shape) == 2 and \
                    type(e.inputs[1]) is Value and _rank(e.inputs[1]) in (1, 2):
                kinds.append("mm")
            elif e.prim.name == "concat" and e.params["axis"] < 0 and all(
                    type(x) is Value and _space(x)[0] == e.outs[0].aval.batched and
                    len(x.shape) == len(e.outs[0].shape) for x in e.inputs):
                kinds.append("concat")
            else:
                self.why = e
                raise _Unsupported
            for x in e.inputs:
                if type(x) is Lit and hasattr(x.val, "shape"):
                    raise _Unsupported
                if type(x) is Value and (x.aval.dtype != "float" or
                                         low.kind.get(x) is None and x.t is not None):
                    raise _Unsupported
            for v in e.outs:
                if low.kind[v].how not in (VAR, STACK):
                    raise _Unsupported
        self.kinds = kinds
        defined = {v: i for i, e in enumerate(self.eqns) for v in e.outs}
        readers: dict = {}
        for i, e in enumerate(self.eqns):
            for x in e.inputs:
                if type(x) is Value and x in defined:
                    readers.setdefault(x, []).append(i)
        self.defined, self.readers = defined, readers
        # groups: runs of elementwise equations over one iteration space
        group, groups, current = {}, [], None
        for i, e in enumerate(self.eqns):
            if kinds[i] == "ew":
                sp = _space(e.outs[0])
                if current is None or current[0] != sp:
                    current = (sp, [])
                    groups.append(current)
                current[1].append(i)
                group[i] = len(groups) - 1
            else:
                current = None
        self.group = group
        # views: split pieces (value -> (base, axis, start)); sinks: concat pieces written
        # straight into the concat's slot (value -> (concat out, start))
        self.views, self.sinks, self.sunk, self.reshapes = {}, {}, set(), {}
        self.transposes = {}
        for i, e in enumerate(self.eqns):
            if kinds[i] == "split":
                x = e.inputs[0]
                ax = _rank(x) + e.params["axis"]
                start = 0
                for v, n in zip(e.outs, e.params["sizes"]):
                    self.views[v] = (x, ax, start)
                    start += n
            elif kinds[i] == "reshape":
                self.reshapes[e.outs[0]] = e.inputs[0]
            elif kinds[i] == "transpose":
                self.transposes[e.outs[0]] = e.inputs[0]
            elif kinds[i] == "concat" and low.kind[e.outs[0]].how is STACK and all(
                    x in defined and kinds[defined[x]] == "ew" and
                    readers.get(x) == [i] and low.kind[x].how is VAR and self.local(x)
                    for x in e.inputs) and len(set(e.inputs)) == len(e.inputs):
                start = 0
                for x in e.inputs:
                    self.sinks[x] = (e.outs[0], start)
                    start += x.shape[-1]
                self.sunk.add(i)
        # which values need an array (and which of those are workspaces kept across steps)
        self.array, self.workspace = set(), set()
        outside = {low.kind[x].name for e in self.eqns for x in e.inputs
                   if type(x) is Value and x not in defined and x in low.kind}
        for v, i in defined.items():
            k = low.kind[v]
            if k.how is STACK or v in self.sinks:
                continue                      # stored in its slot / the concat's slot
            rs = readers.get(v, [])
            if v in self.transposes:          # read through the view, unless it escapes
                if not self.local(v):
                    self.array.add(v)
                    self.returned.append(k.name)
                continue
            if v in self.reshapes:            # read through the view, unless it escapes
                if not self.local(v):
                    self.array.add(v)
                    self.returned.append(k.name)
                continue
            if v in self.views:               # read through the view, unless it escapes
                if not self.local(v):
                    self.array.add(v)
                    self.returned.append(k.name)
                continue
            if not self.local(v):
                self.array.add(v)             # a fresh array each step (it outlives it)
                self.returned.append(k.name)
            elif kinds[i] == "ew" and any(kinds[j] != "ew" or group.get(j) != group[i]
                                          for j in rs):
                self.array.add(v)             # read outside its nest: one array, reused,
                if k.name not in outside:     # unless its name also brings a value in
                    self.workspace.add(v)
        self.set_here = {low.kind[v].name for v in defined if low.kind[v].how is VAR}
        # a variable the loop reads before it sets it comes in as an argument
        self.set_here_so_far = set()
        emitted = set()
        for i, e in enumerate(self.eqns):
            if kinds[i] == "ew":
                g = group[i]
                if g not in emitted:
                    emitted.add(g)
                    self.emit_group(groups[g])
            elif kinds[i] == "mm":
                self.emit_mm(e)
            elif kinds[i] == "concat":
                self.emit_concat(e, i in self.sunk)
            elif kinds[i] == "split":
                self.emit_split(e)
            elif kinds[i] == "reshape":
                self.emit_reshape(e)
            elif kinds[i] == "reduce":
                self.emit_reduce(e, i)
            elif kinds[i] == "outer":
                a, b = e.inputs
                self.assign(e, f"_outer_sum({self.array_ref(a)}, {self.array_ref(b)})")
            elif kinds[i] == "transpose":
                self.emit_reshape(e)
        returned = list(dict.fromkeys(self.returned))
        return self.finish(returned)

    # -- references ---------------------------------------------------------------------------

    def operand(self, x) -> None:
        """Record ``x`` as an argument if it comes from outside (or from an earlier step)."""
        if type(x) is not Value:
            return
        k = self.low.kind.get(x)
        name = k.name if k is not None else None
        if k is None:
            raise _Unsupported
        if x in self.defined and (k.how is VAR and name in self.set_here_so_far):
            return
        self.arg(x, name)

    def array_ref(self, x) -> str:
        """``x`` as a whole array (a slot, a variable, a slice of a split)."""
        if x in self.transposes and x not in self.array:
            r = self.array_ref(self.transposes[x])
            return f"_np.transpose({r}, (0, 2, 1))" if x.aval.batched else f"{r}.T"
        if x in self.reshapes and x not in self.array:
            dims = (["_B"] if x.aval.batched else []) + [str(n) for n in x.shape]
            return (f"_np.ascontiguousarray({self.array_ref(self.reshapes[x])})"
                    f".reshape(({', '.join(dims)},))")
        if x in self.views and x not in self.array:
            base, ax, start = self.views[x]
            r = self.array_ref(base)
            idx = [":"] * _rank(base)
            idx[ax] = f"{start}:{start + x.shape[ax - base.aval.batched]}"
            return f"{r}[{', '.join(idx)}]"
        if x in self.sinks:
            raise _Unsupported
        self.operand(x)
        return self.low.ref(x, self.s0, True)

    def element(self, x, idx: list, scalars: dict, space) -> str:
        """Element ``idx`` (the indices of ``space``, the consumer's iteration space) of
        operand ``x``, broadcast as NumPy does."""
        if type(x) is Lit:
            return self.const(x.val)
        if x in scalars and _space(x) == space:
            return scalars[x]
        batched, shape = space
        per = idx[1:] if batched else idx
        mine = []
        if x.aval.batched:
            if not batched:
                raise _Unsupported
            mine.append(idx[0])
        if len(x.shape) > len(shape) or x.aval.batched and len(x.shape) != len(shape):
            raise _Unsupported
        tail = per[len(per) - len(x.shape):] if x.shape else []     # aligned from the right
        for n, m, i in zip(x.shape, shape[len(shape) - len(x.shape):], tail):
            mine.append("0" if n == 1 and m != 1 else i)
        return self.at(x, mine)

    def at(self, x, mine: list) -> str:
        """``x`` at the full index ``mine`` (one entry per axis, batch first)."""
        if x in self.transposes and x not in self.array:
            full = list(mine)
            full[-1], full[-2] = full[-2], full[-1]
            return self.at(self.transposes[x], full)
        if x in self.reshapes and x not in self.array:
            base = self.reshapes[x]
            lead = [mine[0]] if x.aval.batched else []
            per = mine[len(lead):]
            if [n for n in base.shape if n != 1] == [n for n in x.shape if n != 1]:
                rest = iter([i for i, n in zip(per, x.shape) if n != 1])   # 1s come and go
                return self.at(base, lead + ["0" if n == 1 else next(rest) for n in base.shape])
            flat = " + ".join(f"{i} * {math.prod(x.shape[j + 1:])}" for j, i in enumerate(per))
            inner = []
            for j, n in enumerate(base.shape):
                inner.append(f"(({flat}) // {math.prod(base.shape[j + 1:])}) % {n}")
            return self.at(base, lead + inner)
        if x in self.views and x not in self.array:
            base, ax, start = self.views[x]
            full = list(mine)
            full[ax] = f"{start} + {full[ax]}"
            return self.at(base, full)
        if x in self.sinks:
            raise _Unsupported
        self.operand(x)
        r = self.low.ref(x, self.s0, True)
        if r.endswith(", ...]"):
            return f"{r[:-6]}, {', '.join(mine)}]" if mine else r[:-6] + "]"
        return f"{r}[{', '.join(mine) or '()'}]"

    def store(self, v, idx: list) -> str | None:
        """Where the scalar of ``v`` at ``idx`` is stored, or None if nowhere."""
        k = self.low.kind[v]
        if v in self.sinks:
            out, start = self.sinks[v]
            full = list(idx)
            full[-1] = f"{start} + {full[-1]}"
            r = self.low.ref(out, self.s0, True)
            self.operand(out)
            self.written.add(self.low.kind[out].name)
            return f"{r[:-6]}, {', '.join(full)}]"
        if k.how is STACK:
            self.operand(v)
            self.written.add(k.name)
            r = self.low.ref(v, self.s0, True)
            return f"{r[:-6]}, {', '.join(idx)}]"
        if v in self.array:
            return f"{self.fresh.get(v, k.name)}[{', '.join(idx)}]"
        return None

    def alloc(self, v) -> str:
        dims = (["_B"] if v.aval.batched else []) + [str(n) for n in v.shape]
        return f"_np.empty(({', '.join(dims)},), _dtype)"

    # -- emitting -----------------------------------------------------------------------------

    def emit_group(self, group) -> None:
        space, members = group
        batched, shape = space
        n = int(batched) + len(shape)
        idx = [f"_i{j}" for j in range(n)]
        dims = (["_B"] if batched else []) + [str(m) for m in shape]
        head, tail = [], []
        self.fresh = {}
        for i in members:
            for v in self.eqns[i].outs:
                if v in self.array:
                    name = self.low.kind[v].name
                    if v in self.workspace:
                        self.before.append(f"    {name} = {self.alloc(v)}")
                    else:                     # the old value may still be read in the nest
                        self.fresh[v] = f"_n{i}"
                        head.append(f"        _n{i} = {self.alloc(v)}")
                        tail.append(f"        {name} = _n{i}")
        body, scalars = [], {}
        for i in members:
            e = self.eqns[i]
            reads = [j for j in range(len(e.inputs)) if j not in e.prim.shape_only]
            params = e.params
            if e.prim.name == "broadcast_like":      # divided by B only over a batch
                params = dict(params, mean=params["mean"] and e.inputs[1].aval.batched)
            ops = [self.element(x, idx, scalars, space) if j in reads else None
                   for j, x in enumerate(e.inputs)]
            v = e.outs[0]
            s = f"_s{i}"
            body.append(f"{s} = {SCALAR_CODE[e.prim.name](ops, self.const, params)}  "
                        f"# {_comment(_symbolic(e, self.s0))}")
            scalars[v] = s
            where = self.store(v, idx)
            if where is not None:
                body.append(f"{where} = {s}")
        for i in members:
            for v in self.eqns[i].outs:
                if self.low.kind[v].how is VAR:
                    self.set_here_so_far.add(self.low.kind[v].name)
        self.lines += head
        ind = "        "
        for j, d in enumerate(dims):
            self.lines.append(f"{ind}for {idx[j]} in range({d}):")
            ind += "    "
        self.lines += [ind + ln for ln in body] + tail

    def emit_mm(self, e) -> None:
        A, x = e.inputs
        fn = "_mm_t" if _rank(x) == 2 else "_mv_t"
        a = self.array_ref(A)
        if A.t is None and not A.aval.batched and A not in self.defined:
            # x Aᵀ against a C-contiguous A is BLAS's transposed case, 2-3x slower on a
            # step's few rows (16 x 64 by 256: 15 µs, against 5 µs): a contiguous Aᵀ is made
            # once, before the loop, and read transposed back (its own no-transpose case)
            name = self.transposed.get(a)
            if name is None:
                name = self.transposed[a] = f"_T{len(self.transposed)}"
                self.before.append(f"    {name} = _np.ascontiguousarray(({a}).T)")
            a = f"{name}.T"
        self.assign(e, f"{fn}({self.array_ref(x)}, {a})")

    def emit_concat(self, e, sunk: bool) -> None:
        if sunk:
            self.operand(e.outs[0])
            self.written.add(self.low.kind[e.outs[0]].name)
            self.lines.append(f"        pass  # {_comment(_symbolic(e, self.s0))}: "
                              "written in place above")
            return
        parts = ", ".join(self.array_ref(x) for x in e.inputs)
        self.assign(e, f"_np.concatenate(({parts},), axis={e.params['axis']!r})")

    def emit_reduce(self, e, i: int) -> None:
        """A sum into a smaller array: a nest over the operand's elements, each added to its
        entry (zeroed first), then what the primitive does after (the mean's 1/B)."""
        x_space, term, out_index, scale, *access = REDUCTIONS[e.prim.name](e)
        v = e.outs[0]
        batched, shape = x_space
        n = int(batched) + len(shape)
        idx = [f"_i{j}" for j in range(n)]
        dims = (["_B"] if batched else []) + [str(m) for m in shape]
        acc = f"_n{i}"
        out_dims = (["_B"] if v.aval.batched else []) + [str(m) for m in v.shape]
        self.lines.append(f"        {acc} = _np.zeros(({', '.join(out_dims)},), _dtype)")
        ind = "        "
        for j, d in enumerate(dims):
            self.lines.append(f"{ind}for {idx[j]} in range({d}):")
            ind += "    "
        operands = access[0](self, idx) if access else \
            [self.element(x, idx, {}, x_space) for x in e.inputs]
        self.lines.append(f"{ind}{acc}[{', '.join(out_index(idx)) or '()'}] += "
                          f"{term(operands)}  # {_comment(_symbolic(e, self.s0))}")
        if scale:
            self.lines.append(f"        {acc} /= _B")
        self.assign(e, acc)

    def emit_reshape(self, e) -> None:
        """A view (reshape, transpose) stored for other steps or after the loop: copied."""
        v = e.outs[0]
        k = self.low.kind[v]
        if k.how is STACK or v in self.array:  # stored for other steps, or after the loop
            array = v in self.array
            self.array.discard(v)
            rhs = self.array_ref(v)
            if array:                          # a copy: the view's base may be a workspace
                self.array.add(v)                  # the next step overwrites
                self.lines.append(f"        {k.name} = ({rhs}).copy()  "
                                  f"# {_comment(_symbolic(e, self.s0))}")
                self.set_here_so_far.add(k.name)
            else:
                self.operand(v)
                self.written.add(k.name)
                self.lines.append(f"        {self.low.ref(v, self.s0, True)} = {rhs}  "
                                  f"# {_comment(_symbolic(e, self.s0))}")

    def emit_split(self, e) -> None:
        for v in e.outs:
            if self.low.kind[v].how is STACK:  # stored for other steps: copied to its slot
                self.operand(v)
                self.written.add(self.low.kind[v].name)
                self.lines.append(f"        {self.low.ref(v, self.s0, True)} = "
                                  f"{self.array_ref(v)}  # {_comment(repr(v))}")
                continue
            if v in self.array:                # a piece read as a whole: a copy of it
                base, ax, start = self.views[v]
                del self.views[v]
                self.array.discard(v)
                self.views[v] = (base, ax, start)
                rhs = f"({self.array_ref(v)}).copy()"   # (its base may be a workspace)
                self.array.add(v)
                self.lines.append(f"        {self.low.kind[v].name} = {rhs}  "
                                  f"# {_comment(repr(v))}")
                self.set_here_so_far.add(self.low.kind[v].name)

    def assign(self, e, rhs: str) -> None:
        v = e.outs[0]
        k = self.low.kind[v]
        comment = _comment(_symbolic(e, self.s0))
        if k.how is STACK:
            self.operand(v)
            self.written.add(k.name)
            self.lines.append(f"        {self.low.ref(v, self.s0, True)} = {rhs}  # {comment}")
        else:
            self.lines.append(f"        {k.name} = {rhs}  # {comment}")
            self.set_here_so_far.add(k.name)
            self.array.add(v)

    def finish(self, returned):
        pre = []
        if self.batched_arg is not None:
            name, ax = self.batched_arg
            pre.append(f"    _B = {name}.shape[{ax}]")
        elif any("_B" in ln for ln in self.lines + self.before):
            raise _Unsupported
        if self.float_arg is None and any("_dtype" in ln for ln in self.lines + self.before):
            raise _Unsupported
        if self.float_arg is not None:
            pre.append(f"    _dtype = {self.float_arg}.dtype")
        carried = tuple(i for i, w in enumerate(self.args) if w not in self.written)
        reassigned = tuple(i for i, w in enumerate(self.args) if w in self.set_here)
        consts = "".join(f", _k{i}" for i in range(len(self.consts)))
        src = (_HEADER + f"def kernel(_t0, _t1, _dt{consts}"
               f"{''.join(', ' + w for w in self.args)}):\n" + "\n".join(pre + self.before)
               + ("\n" if pre or self.before else "")
               + "    for t in range(_t0, _t1, _dt):\n" + "\n".join(self.lines) + "\n"
               f"    return ({''.join(w + ', ' for w in returned)})\n")
        return Kernel(src, list(self.consts), carried, self.python, reassigned), \
            list(self.args), returned




def _has_form(e) -> bool:
    """Has equation ``e`` a kernel form (as :class:`_KernelWriter` classifies it)?"""
    n = e.prim.name
    if any(v.aval.dtype != "float" for v in e.outs) or any(
            type(x) is Lit and hasattr(x.val, "shape") or
            type(x) is Value and x.aval.dtype != "float" for x in e.inputs):
        return False
    if n in SCALAR_CODE:
        return True
    if _outer_gemm(e):
        return True
    if n in REDUCTIONS:
        return REDUCTIONS[n](e) is not None
    if n in ("split", "concat"):
        return e.params["axis"] < 0
    if n in ("reshape", "transpose"):
        return type(e.inputs[0]) is Value
    if n == "matvec":
        A, x = e.inputs
        return type(A) is Value and not A.aval.batched and len(A.shape) == 2 and \
            type(x) is Value and _rank(x) in (1, 2)
    return False


#: per-example entries up to which a loop's work is not stacked over the steps (see
#: NumbaTarget.time_batches)
SMALL = 512


class NumbaTarget(Target):
    """``executor="numba"``: the program's loops as numba-compiled kernels."""

    name = "numba"
    stack_lists = True
    fuses_elementwise = True
    chunk_steps = None              # a kernel takes the arrays over all steps

    def __init__(self, name: str = "numba", python: bool = False):
        self.name = name
        self.python = python        # kernels run as Python (no numba): the tests' variant

    def loop(self, low, b):
        return self._call(low, b, b.steps[0], b.steps[-1], low.loop_lines(b))

    def time_batches(self, chunk) -> bool:
        """Small steps stay whole in the kernel: below ``SMALL`` entries per example in every
        value and matrix of the loop, a stacked NumPy operation costs more in calls than the
        kernel's loop does in arithmetic (an Elman network with H = 16: 2x faster). Only
        where every equation has a kernel form: else the loop stays Python, and stacking
        spares it work."""
        if (self.python or not numba_missing()) and all(
                math.prod(x.shape) <= SMALL for e in chunk.eqns
                for x in list(e.inputs) + list(e.outs) if type(x) is Value) and \
                all(_has_form(e) for e in chunk.eqns):
            return False
        return True

    def straight(self, low, b):
        """A step peeled off a loop's end: its work as a kernel of one step."""
        s = b.chunk.step
        one = type(b)("loop", b.chunk, [s])
        return self._call(low, one, s, s, low.straight_lines(b))

    def _call(self, low, b, a, z, python: list):
        why = None if self.python else numba_missing()
        if why:
            _notice("missing", why)
            return None
        made = self._kernel(low, b)
        if made is None:
            return None
        kernel, args, assigned = made
        kernel.steps = (a, z)                   # the steps it runs (one for a peeled step)
        n = sum(1 for k in low.namespace if k.startswith("_kernel"))
        kname = f"_kernel{n}"
        low.namespace[kname] = kernel
        d = 1 if z >= a else -1
        res = "".join(w + ", " for w in assigned).rstrip(" ")
        what = f"t = {a}..{z}" if a != z else f"t = {a}"
        lines = [f"_r = {kname}(xp, {a}, {z + d}, {d}{''.join(', ' + x for x in args)})  "
                 f"# {what}: a compiled kernel ({kernel.digest}; None: in Python)",
                 "if _r is None:"]
        lines += ["    " + ln for ln in python]
        if assigned:
            lines += [f"    _r = ({res})", f"{res} = _r"]
        return lines

    def _kernel(self, low, b):
        """(Kernel, its argument names, the variables it sets for after the loop), or None
        where an equation of the loop has no kernel form."""
        return _KernelWriter(low, b, self.python).write()


register(NumbaTarget())
