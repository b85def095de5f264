"""unroll with its compiled loop-kernel target (executor="numba", the ``fast`` extra) in the
shared RNN benchmark harness: the same circuits as impl_unroll.py.

Each program's loops run as numba-compiled kernels, cached on disk: the harness's first call
is the cold compilation only on a machine that never ran these kernels before.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import impl_unroll  # noqa: E402

NAME = "unroll-numba"
ORDER = 6
TRACEMALLOC_SEES_ALLOCATIONS = False     # the kernels allocate through numba's runtime


def supports(workload):
    import importlib.util
    return importlib.util.find_spec("numba") is not None


def make(workload, params, data):
    return impl_unroll.make(workload, params, data, executor="numba")
