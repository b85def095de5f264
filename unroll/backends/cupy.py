"""The CuPy backend: fills in the array-API names older CuPy releases lack."""


def shims(cp) -> dict:
    out = {}
    if not hasattr(cp, "concat"):
        out["concat"] = lambda xs, axis=0: cp.concatenate(xs, axis=axis)
    if not hasattr(cp, "matrix_transpose"):
        out["matrix_transpose"] = lambda a: cp.swapaxes(a, -1, -2)
    if not hasattr(cp, "astype"):
        out["astype"] = lambda x, dtype: x.astype(dtype)
    return out
