"""Parameter initialisation: seeded, per-parameter random streams, NumPy arrays by default.

Each parameter draws from its own generator, seeded by ``(seed, crc32(name))``, so adding a
parameter to a circuit does not change the values of the others.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from .errors import CircuitError, DTypeError

__all__ = ["init_params", "initialize", "INITIALIZERS"]


def _fan_in(shape) -> int:
    return shape[-1] if shape else 1


def _uniform(rng, shape):
    k = 1.0 / math.sqrt(_fan_in(shape))
    return rng.uniform(-k, k, size=shape)


def _default(rng, shape):
    return _uniform(rng, shape) if len(shape) >= 2 else np.zeros(shape)


def _normal(rng, shape):
    return rng.standard_normal(shape) / math.sqrt(_fan_in(shape))


def _xavier(rng, shape):
    fan_out = shape[-2] if len(shape) >= 2 else 1
    k = math.sqrt(6.0 / (_fan_in(shape) + fan_out))
    return rng.uniform(-k, k, size=shape)


def _orthogonal(rng, shape):
    if len(shape) != 2:
        raise CircuitError(f"orthogonal init needs a matrix, got shape {shape}")
    a = rng.standard_normal((max(shape), min(shape)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return q if q.shape == tuple(shape) else q.T


INITIALIZERS = {
    "default": _default,          # U(±1/√fan_in) for matrices, zeros for vectors and scalars
    "uniform": _uniform,          # U(±1/√fan_in), PyTorch's RNN default
    "normal": _normal,            # N(0, 1/fan_in)
    "xavier": _xavier,            # Glorot uniform
    "orthogonal": _orthogonal,    # orthogonal matrix (good for recurrent weights)
    "zeros": lambda rng, shape: np.zeros(shape),
    "ones": lambda rng, shape: np.ones(shape),
}


def initialize(name: str, shape: tuple, init, seed: int, dtype) -> np.ndarray:
    """One parameter's initial array."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if callable(init):
        arr = np.asarray(init(rng, shape))
    elif isinstance(init, (int, float)) and not isinstance(init, bool):
        arr = np.full(shape, float(init))
    elif init in INITIALIZERS:
        arr = INITIALIZERS[init](rng, shape)
    else:
        raise CircuitError(f"parameter {name}: unknown init {init!r}; use one of "
                           f"{', '.join(INITIALIZERS)}, a number or a callable (rng, shape)")
    if arr.shape != tuple(shape):
        raise CircuitError(f"parameter {name}: its init returned shape {arr.shape}, "
                           f"expected {tuple(shape)}")
    return arr.astype(dtype)


def init_params(circuit, seed: int = 0, dtype="float64", xp=None) -> dict:
    """Initial values of every parameter of ``circuit`` (see :meth:`Circuit.init_params`)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"init_params: unknown dtype {dtype!r}; use 'float32' or 'float64'") \
            from None
    if dtype not in (np.float32, np.float64):
        raise DTypeError(f"init_params: dtype must be float32 or float64, not {dtype}")
    out = {}
    for name, shape in circuit.param_shapes().items():
        spec = circuit.params.get(name)
        init = spec.init if spec is not None else "zeros"       # initial-state parameters
        arr = initialize(name, shape, init, seed, dtype)
        out[name] = arr if xp is None else xp.asarray(arr)
    return out
