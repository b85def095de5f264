"""Parameter initialisation: seeded, per-parameter random streams, NumPy arrays by default.

Each parameter draws from its own generator, seeded by ``(seed, crc32(name))``, so adding a
parameter to a circuit does not change the values of the others.
"""
from __future__ import annotations

import math
import numbers
import zlib

import numpy as np

from . import backends
from .errors import CircuitError, ResourceError, available_memory, gib, integer

__all__ = ["init_params", "initialize", "INITIALIZERS", "dropout_masks"]


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


def check_init(name: str, init) -> None:
    """Refuse, when the parameter is declared, an init that cannot give finite values."""
    if callable(init):
        return
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        if not math.isfinite(init):
            raise CircuitError(f"parameter {name}: init={init!r} is not a finite number")
        return
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise CircuitError(f"parameter {name}: unknown init {init!r}; use one of "
                           f"{', '.join(INITIALIZERS)}, a number, or a callable (rng, shape) "
                           "-> array (for fixed values: init=lambda rng, shape: array)")


def initialize(name: str, shape: tuple, init, seed: int, dtype) -> np.ndarray:
    """One parameter's initial array."""
    check_init(name, init)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if callable(init):
        try:
            arr = np.asarray(init(rng, shape), dtype=float)
        except Exception as e:
            raise CircuitError(f"parameter {name}: its init {getattr(init, '__name__', init)} "
                               f"failed: {type(e).__name__}: {e}") from e
    elif isinstance(init, numbers.Real):
        arr = np.full(shape, float(init))
    else:
        arr = INITIALIZERS[init](rng, shape)
    if arr.shape != tuple(shape):
        raise CircuitError(f"parameter {name}: its init returned shape {arr.shape}, "
                           f"expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise CircuitError(f"parameter {name}: its init returned NaN or Inf values")
    return arr.astype(dtype)


def init_params(circuit, seed: int = 0, dtype="float64", xp=None) -> dict:
    """Initial values of every parameter of ``circuit`` (see :meth:`Circuit.init_params`)."""
    dtype = backends.float_dtype(dtype, "init_params")
    xp = backends.array_module(xp, "init_params")
    seed = integer(seed, "init_params: seed", 0, err=CircuitError)
    shapes = circuit.param_shapes()
    need = sum(math.prod(s) for s in shapes.values()) * dtype.itemsize
    free = available_memory()
    if free is not None and need > free:
        big = max(shapes, key=lambda k: math.prod(shapes[k]))
        raise ResourceError(f"init_params: the parameters of {circuit.name} need {gib(need)} "
                            f"(the largest, {big}, has shape {shapes[big]}), but "
                            f"{gib(free)} is available; declare smaller shapes")
    out = {}
    for name, shape in shapes.items():
        spec = circuit.params.get(name)
        init = spec.init if spec is not None else "zeros"       # initial-state parameters
        arr = initialize(name, shape, init, seed, dtype)
        out[name] = arr if xp is None else xp.asarray(arr)
    return out


def dropout_masks(g, rate: float, seed: int = 0, batch: int = 1, train: bool = True) -> dict:
    """Masks for every :func:`dropout` of graph ``g``: {name: (T, batch, ...) array} of 0 and
    1/(1 - rate) (ones with ``train=False``), from a seeded generator."""
    from .errors import UnrollError, flag, number
    rate = number(rate, "dropout_masks: rate", 0.0, below=1.0)
    seed = integer(seed, "dropout_masks: seed", 0)
    batch = integer(batch, "dropout_masks: batch", 1)
    train = flag(train, "dropout_masks: train")
    names = getattr(g, "dropout", None)
    if not names:
        raise UnrollError(f"dropout_masks: {getattr(g, 'name', g)!r:.40} has no ur.dropout")
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(names):
        shape = (g.steps, batch) + tuple(names[name])
        if train and rate > 0:
            out[name] = (rng.random(shape) >= rate) / (1.0 - rate)
        else:
            out[name] = np.ones(shape)
    return out
