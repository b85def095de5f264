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
    out["kernels"] = kernels
    return out


def kernels(xp) -> dict:
    """The engine's fused kernels (backends.KERNELS) in place, for NumPy-like modules: one
    temporary array instead of one per operation (half the time of the plain expression on
    an LSTM's gates), bitwise the same values."""
    m = xp.module
    negative, minimum, exp, add, reciprocal = m.negative, m.minimum, m.exp, m.add, m.reciprocal
    ndarray, cap = m.ndarray, xp.exp_max

    def sigmoid(x):
        t = negative(x)
        if type(t) is not ndarray:            # a scalar: nothing to write into
            return 1.0 / (1.0 + exp(minimum(t, cap)))
        minimum(t, cap, out=t)
        exp(t, out=t)
        add(t, 1.0, out=t)
        return reciprocal(t, out=t)
    def transposed(a):                        # Wᵀ as a C-contiguous copy (BLAS's fast case)
        return ascontiguous(a.T)
    ascontiguous = m.ascontiguousarray

    def concat_into(out, xs, axis):           # no temporary: straight into ``out``
        concatenate(xs, axis=axis, out=out)
    concatenate = m.concatenate

    def all_finite(a):                        # the method, not np.all's Python layer
        return bool(isfinite(a).all())
    isfinite = m.isfinite
    return {"sigmoid": sigmoid, "transposed": transposed, "concat_into": concat_into,
            "all_finite": all_finite}
