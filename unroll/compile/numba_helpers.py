"""What the compiled loop kernels call (:mod:`unroll.compile.loopkernel`): matrix products
through the BLAS that NumPy itself ships, callable from numba-compiled code.

Imported by the kernels only, so by nothing unless ``executor="numba"`` is used with numba
installed. numba's own ``a @ b`` needs SciPy and measured half the speed of NumPy's product
on an LSTM's step (B = 16, H = 64); a ctypes pointer would be as fast but stops numba caching
the kernels on disk. So the product is an LLVM call of a symbol bound here, at import, to the
``cblas_?gemm`` of NumPy's bundled OpenBLAS: as fast as NumPy's own, and cacheable.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
import llvmlite.binding as _llvm
from llvmlite import ir as _ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["mm_t", "mv_t", "outer_sum", "fexp", "ftanh", "AVAILABLE"]


def _bind_blas() -> bool:
    """Bind ``unroll_sgemm``/``unroll_dgemm`` to NumPy's OpenBLAS (64-bit integers)."""
    here = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(here, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
            pairs = [("unroll_sgemm", lib.scipy_cblas_sgemm64_),
                     ("unroll_dgemm", lib.scipy_cblas_dgemm64_)]
        except (OSError, AttributeError):
            continue
        for ours, fn in pairs:
            _llvm.add_symbol(ours, ctypes.cast(fn, ctypes.c_void_p).value)
        return True
    return False


#: False when this NumPy has no bundled OpenBLAS with 64-bit CBLAS symbols (a NumPy built
#: against another BLAS): the kernels are then not used (executor="numba" says so once)
AVAILABLE = _bind_blas()


def _gemm(trans_b: bool):
    """An intrinsic ``(a, b, out)``: out = a @ b.T (``trans_b``, b is (n, k)) or a @ b (b is
    (k, n)), for C-contiguous 2-D arrays of one float dtype: one row-major BLAS gemm. The
    caller has checked the layouts (the types may say 'A')."""
    @intrinsic
    def gemm(typingctx, a, b, out):
        if not all(isinstance(x, types.Array) and x.ndim == 2 for x in (a, b, out)) or \
                a.dtype not in (types.float32, types.float64) or b.dtype != a.dtype or \
                out.dtype != a.dtype:
            return None
        sig = types.void(a, b, out)

        def codegen(context, builder, signature, args):
            single = a.dtype == types.float32
            fl = _ir.FloatType() if single else _ir.DoubleType()
            i32, i64, ptr = _ir.IntType(32), _ir.IntType(64), _ir.IntType(8).as_pointer()
            fnty = _ir.FunctionType(_ir.VoidType(), [i32, i32, i32, i64, i64, i64, fl, ptr,
                                                     i64, ptr, i64, fl, ptr, i64])
            fn = cgutils.get_or_insert_function(builder.module, fnty,
                                                "unroll_sgemm" if single else "unroll_dgemm")
            A, Bm, C = (context.make_array(t)(context, builder, v)
                        for t, v in zip(signature.args, args))
            m, k = cgutils.unpack_tuple(builder, A.shape, 2)
            b0, b1 = cgutils.unpack_tuple(builder, Bm.shape, 2)
            n = b0 if trans_b else b1

            def c32(v):
                return _ir.Constant(i32, v)
            # CblasRowMajor, CblasNoTrans, CblasTrans or CblasNoTrans
            builder.call(fn, [c32(101), c32(111), c32(112 if trans_b else 111), m, n, k,
                              _ir.Constant(fl, 1.0), builder.bitcast(A.data, ptr), k,
                              builder.bitcast(Bm.data, ptr), k if trans_b else n,
                              _ir.Constant(fl, 0.0), builder.bitcast(C.data, ptr), n])
            return context.get_dummy_value()
        return sig, codegen
    return gemm


_gemm_nt = _gemm(True)
_gemm_nn = _gemm(False)


@njit(cache=True, nogil=True)
def _product(v, A, out):
    """out = v @ A.T, v C-contiguous: A as it lies (C: transposed in the call; F, such as a
    transposed view Wᵀ: its transpose is C, no copy), copied only if neither."""
    if A.flags.c_contiguous:
        _gemm_nt(v, A, out)
    elif A.T.flags.c_contiguous:
        _gemm_nn(v, A.T, out)
    else:
        _gemm_nt(v, np.ascontiguousarray(A), out)


@njit(cache=True, nogil=True)
def mm_t(v, A):
    """v @ A.T for v (M, K) and A (N, K): one gemm."""
    out = np.empty((v.shape[0], A.shape[0]), v.dtype)
    if v.shape[0] and A.shape[0]:
        if not v.shape[1]:
            out[...] = 0
        elif v.flags.c_contiguous:
            _product(v, A, out)
        else:
            _product(np.ascontiguousarray(v), A, out)
    return out


@njit(cache=True, nogil=True)
def outer_sum(a, b):
    """Σ_rows a[r] ⊗ b[r] = a.T @ b for a (R, M) and b (R, N): one gemm."""
    return mm_t(np.ascontiguousarray(a.T), np.ascontiguousarray(b.T))


@njit(cache=True, nogil=True)
def mv_t(v, A):
    """v @ A.T for one vector v (K,) and A (N, K)."""
    return mm_t(np.ascontiguousarray(v).reshape((1, v.shape[0])), A)[0]


# --- exp that vectorises ------------------------------------------------------------------------
# numba's math.exp is libm's, one element at a time; this one is straight-line arithmetic
# (range reduction by ln 2, a Taylor polynomial to below round-off, 2^k from its bits) that
# LLVM turns into SIMD code over a loop nest: 3-6x faster per element, within 1-2 units of
# round-off of libm's (float64: degree 13, float32: degree 7).

@intrinsic
def _bits_as_float(typingctx, bits):
    """The float whose IEEE bits are the integer ``bits`` (int32 -> float32, int64 -> float64)."""
    if bits == types.int32:
        ret = types.float32
    elif bits == types.int64:
        ret = types.float64
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ret))
    return ret(bits), codegen


@njit(cache=True, error_model="numpy")
def _exp64(x):
    k = np.floor(x * 1.4426950408889634 + 0.5)
    k = min(max(k, -1021.0), 1024.0)      # 2^k as 2^(k-1) * 2: both ends representable
    r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    p = 1.0 / 1307674368000.0             # degree 15: below round-off for |r| < ln 2
    p = p * r + 1.0 / 87178291200.0
    p = p * r + 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    y = p * _bits_as_float(np.int64((np.int64(k) + np.int64(1022)) << np.int64(52))) * 2.0
    y = np.inf if x > 709.782712893384 else y
    y = 0.0 if x < -708.3964185322641 else y
    return x if x != x else y


@njit(cache=True, error_model="numpy")
def _exp32(x):
    k = np.floor(x * np.float32(1.442695) + np.float32(0.5))
    k = min(max(k, np.float32(-125.0)), np.float32(128.0))
    r = (x - k * np.float32(0.693359375)) - k * np.float32(-2.12194440e-4)
    p = np.float32(1.0 / 362880.0)        # degree 9: below round-off for |r| < ln 2
    p = p * r + np.float32(1.0 / 40320.0)
    p = p * r + np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    y = p * _bits_as_float(np.int32((np.int32(k) + np.int32(126)) << np.int32(23))) * \
        np.float32(2.0)
    y = np.float32(np.inf) if x > np.float32(88.72283) else y
    y = np.float32(0.0) if x < np.float32(-87.33654) else y
    return x if x != x else y


def _per_dtype(name: str, doc: str, f32, f64):
    """A scalar function of numba-compiled code that runs ``f32`` on float32 and ``f64`` on
    float64 (as Python, NumPy's ``name``)."""
    stub = getattr(np, name)

    def fn(x):
        return stub(x)
    fn.__name__, fn.__doc__ = name, doc

    @overload(fn)
    def _impl(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)
        return None
    return fn


fexp = _per_dtype("exp", "e^x of a float32 or float64 scalar, vectorisable.", _exp32, _exp64)


# --- tanh to relative precision -------------------------------------------------------------
# 1 - 2/(e^2x + 1) is exact to a unit of round-off of 1, not of tanh(x): near 0 its relative
# error grows without bound. Below a threshold an odd Taylor polynomial takes over (its
# first omitted term is below round-off there); both are straight-line code, selected per
# element, so the nest still vectorises.

@njit(cache=True, error_model="numpy")
def _tanh64(x):
    x2 = x * x
    p = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (
        62.0 / 2835.0 + x2 * (-1382.0 / 155925.0 + x2 * (21844.0 / 6081075.0)))))))
    q = 1.0 - 2.0 / (_exp64(2.0 * x) + 1.0)
    return p if abs(x) < 0.05 else q


@njit(cache=True, error_model="numpy")
def _tanh32(x):
    x2 = x * x
    p = x * (np.float32(1.0) + x2 * (np.float32(-1.0 / 3.0) + x2 * (np.float32(2.0 / 15.0) + x2 * (
        np.float32(-17.0 / 315.0) + x2 * (np.float32(62.0 / 2835.0) + x2 * (
            np.float32(-1382.0 / 155925.0) + x2 * np.float32(21844.0 / 6081075.0)))))))
    q = np.float32(1.0) - np.float32(2.0) / (_exp32(np.float32(2.0) * x) + np.float32(1.0))
    return p if abs(x) < np.float32(0.3) else q


ftanh = _per_dtype("tanh", "tanh of a float32 or float64 scalar, vectorisable.",
                  _tanh32, _tanh64)
