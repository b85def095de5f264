"""The NumPy backend (the reference): fills in the array-API names NumPy < 2.0 lacks (and
older CuPy, whose file uses these shims too)."""
import numpy


def module():
    return numpy


def shims(np) -> dict:
    """``concat``, ``matrix_transpose`` and ``astype`` for a NumPy-like module lacking them."""
    out = {}
    if not hasattr(np, "concat"):
        out["concat"] = lambda xs, axis=0: np.concatenate(xs, axis=axis)
    if not hasattr(np, "matrix_transpose"):
        out["matrix_transpose"] = lambda a: np.swapaxes(a, -1, -2)
    if not hasattr(np, "astype"):
        out["astype"] = lambda x, dtype: x.astype(dtype)
    return out
