"""Array backends: the namespace ``xp`` that every forward rule receives.

A backend is an array namespace (NumPy, CuPy, or any namespace of the Python array API
standard, e.g. ``array_api_strict``), found by one rule: an array's ``__array_namespace__()``
(NumPy before 2.0 lacks it and is recognised by its type). :func:`namespace_of` wraps it in a
:class:`Namespace`: the module's functions as plain attributes (fast lookups in generated code),
the program's float dtype as ``xp.float_dtype``, and the few functions a namespace lacks filled
in by the shims of its own file here, named after it (``backends/cupy.py`` for ``cupy``; a
namespace without a file needs none). :data:`REQUIRED` lists every member the engine calls;
a namespace missing one is refused when first used, by name.
"""
from __future__ import annotations

import importlib
import math

from ..errors import DTypeError, UnrollError

__all__ = ["Namespace", "namespace_of", "get", "to_numpy", "is_array", "dtype_name",
           "first_true", "float_dtype", "array_module"]

_cache: dict = {}

#: every member of ``xp`` the engine calls (forward rules, code templates, the runtime, the
#: optimizers); tests/test_array_api.py keeps this list complete
REQUIRED = ("abs", "all", "any", "arange", "asarray", "astype", "broadcast_to", "clip", "concat",
            "cos", "empty", "exp", "expand_dims", "finfo", "full", "isfinite", "log",
            "matrix_transpose", "max", "maximum", "mean", "min", "minimum", "ones_like", "reshape", "sin",
            "sqrt", "stack", "sum", "take_along_axis", "tanh", "zeros", "zeros_like", "float64",
            "int64")


def _sigmoid(xp):
    """σ(x) = 1/(1 + e^-x), e^-x capped where it would overflow (σ is 0 there to round-off).
    NumPy's exp is 2-4x faster than its tanh, so this beats 0.5 tanh(x/2) + 0.5."""
    exp, minimum, cap = xp.exp, xp.minimum, xp.exp_max
    return lambda x: 1.0 / (1.0 + exp(minimum(-x, cap)))


#: kernels the engine calls as ``xp.<name>`` that no array namespace has: a generic version
#: here, over the namespace's own functions; a backend's file may give a faster one
#: (``kernels(xp)``: NumPy's works in place on one temporary instead of allocating five)
def _concat_into(xp):
    """concat_into(out, xs, axis): ``out[...] = concat(xs, axis)``."""
    concat = xp.concat

    def concat_into(out, xs, axis):
        out[...] = concat(xs, axis=axis)
    return concat_into


def _all_finite(xp):
    """all_finite(a): no NaN or Inf in ``a`` (a Python bool)."""
    isfinite, all_ = xp.isfinite, xp.all
    return lambda a: bool(all_(isfinite(a)))


KERNELS = {"sigmoid": _sigmoid, "transposed": lambda xp: xp.matrix_transpose,
           "concat_into": _concat_into, "all_finite": _all_finite}


class Namespace:
    """An array namespace with ``float_dtype`` fixed (one per module and dtype)."""

    def __init__(self, module, float_dtype, shims: dict):
        missing = [m for m in REQUIRED if m not in shims and not hasattr(module, m)]
        if missing:
            raise UnrollError(f"the array namespace {module.__name__} lacks "
                              f"{', '.join(missing)}, which unroll needs; add them in a shim "
                              f"file unroll/backends/{module.__name__.split('.')[0]}.py")
        kernels = shims.pop("kernels", None)
        self.__dict__.update(shims)
        self.module = module              # the wrapped namespace
        self.name = module.__name__       # "numpy", "cupy", "array_api_strict", ...
        self.float_dtype = float_dtype    # the dtype every float array of the program has
        # exp(x) is finite for x <= exp_max in float_dtype (87 in float32, 708 in float64):
        # sigmoid's guard against overflow, beyond which its value is 0 to round-off anyway
        self.exp_max = 87.0 if float_dtype is None else \
            math.floor(math.log(float(module.finfo(float_dtype).max))) - 1.0
        # the engine's own kernels: the generic ones, or the faster ones of the backend's file
        own = kernels(self) if kernels is not None else {}
        for name, make in KERNELS.items():
            self.__dict__[name] = own[name] if name in own else make(self)

    def __getattr__(self, name):
        # first use of a name: copy it from the module, so later lookups are plain attributes
        value = getattr(self.module, name)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"<backend {self.name} {self.float_dtype}>"


def _module_of(arr):
    """The array namespace of ``arr`` (None for anything that is not an array)."""
    ns = getattr(arr, "__array_namespace__", None)
    if ns is not None:
        return ns()
    if type(arr).__module__.split(".")[0] == "numpy":       # NumPy < 2.0, NumPy scalars
        import numpy
        return numpy
    return None


def dtype_name(dtype) -> str:
    """"float32", "int64", ... for the dtype of any backend (array_api_strict prefixes its)."""
    key = (type(dtype), dtype)          # dtypes of two libraries never compared
    try:
        return _dtype_names[key]
    except (KeyError, TypeError):
        name = str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1]
        try:
            _dtype_names[key] = name
        except TypeError:                   # unhashable: not cached
            pass
        return name


_dtype_names: dict = {}


def is_array(x) -> bool:
    """True for an array of a supported backend."""
    return _module_of(x) is not None and hasattr(x, "shape")


def float_dtype(dtype, what: str):
    """``dtype`` as NumPy's float32 or float64 (the two a program computes in)."""
    import numpy
    try:
        d = numpy.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{what}: unknown dtype {dtype!r}; use 'float32' or 'float64'") \
            from None
    if d not in (numpy.float32, numpy.float64):
        raise DTypeError(f"{what}: dtype must be float32 or float64, not {d}")
    return d


def array_module(xp, what: str):
    """None (NumPy), an array module (numpy, cupy, ...) or its name, as the module."""
    if xp is None or (hasattr(xp, "asarray") and callable(xp.asarray)):
        return xp
    if isinstance(xp, str):
        if xp not in ("numpy", "cupy"):              # a name is never imported blindly
            raise UnrollError(f"{what}: xp={xp!r} is not an array module unroll knows by name "
                              "('numpy' or 'cupy'); pass the module itself (xp=module)")
        try:
            return importlib.import_module(xp)
        except ImportError as e:
            raise UnrollError(f"{what}: cannot import the array module {xp!r} ({e}); install "
                              "it, or leave xp=None for NumPy") from None
    raise UnrollError(f"{what}: xp must be an array module such as numpy or cupy, not "
                      f"{type(xp).__name__} {xp!r:.60}")


def _shims(module) -> dict:
    """The shims of the namespace's own file in this package, if it has one."""
    name = module.__name__.split(".")[0]
    try:
        own = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        return {}
    return own.shims(module)


def get(module, float_dtype) -> Namespace:
    """The cached :class:`Namespace` of ``module`` with float dtype ``float_dtype``."""
    key = (module.__name__, str(float_dtype))
    ns = _cache.get(key)
    if ns is None:
        ns = _cache[key] = Namespace(module, float_dtype, _shims(module))
    return ns


def namespace_of(arrays: dict, float_dtype) -> Namespace:
    """The backend all of ``arrays`` (name -> array) belong to.

    Raises
    ------
    DTypeError
        If they come from different backends.
    """
    mods = {}
    for name, a in arrays.items():
        m = _module_of(a)
        if m is not None:
            mods.setdefault(m.__name__, (m, name))
    if len(mods) > 1:
        desc = ", ".join(f"{n} ({m})" for m, (_, n) in mods.items())
        raise DTypeError(f"arrays come from different backends: {desc}; move them all to one "
                         "(e.g. cupy.asarray(...) or .get())")
    if not mods:
        from . import numpy as _np
        return get(_np.module(), float_dtype)
    return get(next(iter(mods.values()))[0], float_dtype)


def to_numpy(x):
    """A NumPy copy of an array of any backend (for reports and checks)."""
    import numpy
    m = type(x).__module__.split(".")[0]
    if m == "cupy":
        return x.get()
    if m == "numpy" or isinstance(x, (int, float)):
        return numpy.asarray(x)
    try:
        return numpy.asarray(x)
    except Exception:      # array API objects that refuse __array__: go through DLPack/lists
        try:
            return numpy.from_dlpack(x)
        except Exception as e:
            raise UnrollError(f"cannot convert {type(x).__name__} to NumPy: {e}") from None


def first_true(mask) -> tuple:
    """The index (as ints) of the first True entry of a boolean array of any backend."""
    import numpy
    return tuple(int(i) for i in numpy.argwhere(to_numpy(mask))[0])
