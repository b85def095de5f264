"""Optimizers and gradient clipping over a dict of parameter arrays, updated in place.

The update rules are PyTorch's (``torch.optim``), so settings carry over::

    opt = ur.optim.Adam(params, lr=1e-2)
    for batch in batches:
        loss, grads = g.value_and_grad(params, **batch)
        norm = ur.optim.clip_grad_norm(grads, max_norm=1.0)    # Pascanu et al. (2013)
        opt.step(grads)                                        # params change in place

Arrays may be NumPy or CuPy (any array API namespace with in-place operators).
"""
from __future__ import annotations

import math
import numbers

from .backends import dtype_name, first_true, namespace_of
from .errors import DTypeError, NonFiniteError, ParamError, suggest

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "clip_grad_norm", "clip_grad_value",
           "global_norm"]


def _number(what: str, value, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """``value`` as a float, checked to lie in its range; a ParamError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParamError(f"{what} must be a number, not {type(value).__name__} {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (lo is None or (v > lo if lo_open else v >= lo)) and \
        (hi is None or (v < hi if hi_open else v <= hi))
    if not ok:
        if lo is None:
            span = ""
        elif hi is None:
            span = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            span = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ParamError(f"{what} must be a finite number {span}, not {value!r}")
    return v


class Optimizer:
    """Base class: holds the parameter dict and per-parameter state; ``step(grads)``.

    A step checks every gradient first (an array of the parameter's shape, real floats, no
    NaN/Inf) and every parameter (a writable float array), and only then updates all of them
    together: a step that fails changes nothing, not the parameters, not the optimizer's
    state, not its step count.
    """

    def __init__(self, params: dict, lr: float):
        if not isinstance(params, dict) or not params:
            raise ParamError("an optimizer takes the dict of parameter arrays it updates "
                             "(e.g. c.init_params(seed=0))")
        self.params = params
        self.lr = _number("the learning rate lr", lr, 0.0, lo_open=True)
        self.state: dict = {k: {} for k in params}
        self.steps = 0

    def step(self, grads: dict) -> None:
        """Update every parameter that has a gradient in ``grads``, in place; gradients of
        inputs or initial states that are not parameters are passed over.

        Raises
        ------
        ParamError, DTypeError, NonFiniteError
            Before anything changes: naming the parameter (and the entry of a NaN/Inf).
        """
        if not isinstance(grads, dict):
            raise ParamError(f"step takes the dict of gradients that value_and_grad returns, "
                             f"not a {type(grads).__name__}")
        missing = [k for k in self.params if k not in grads]
        for k in grads:
            close = suggest(k, missing) if isinstance(k, str) and k not in self.params else ""
            if close:
                raise ParamError(f"step: the gradients name {k!r}, which is not a parameter"
                                 f"{close}; nothing was updated")
        todo = [(k, self._checked(k, g)) for k, g in grads.items() if k in self.params]
        if grads and not todo:
            raise ParamError(f"step: none of the gradients ({', '.join(map(str, grads))}) is "
                             f"of a parameter of this optimizer "
                             f"({', '.join(self.params)}); nothing was updated")
        # everything is checked: the in-place updates below cannot fail halfway
        self.steps += 1
        for k, g in todo:
            self._update(k, self.params[k], g, self.state[k], self.steps)

    def _checked(self, k: str, g):
        p = self.params[k]
        for what, a in (("gradient", g), ("parameter", p)):
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise ParamError(f"{what} of {k} is a {type(a).__name__}, not an array; pass "
                                 "the grads dict that value_and_grad returns" if what ==
                                 "gradient" else f"parameter {k} is a {type(a).__name__}, "
                                 "not an array; build the dict with c.init_params()")
            kind = dtype_name(a.dtype)
            if not kind.startswith("float"):
                raise DTypeError(f"{what} of {k} has dtype {kind}; optimizers update real "
                                 "floating-point arrays (float32 or float64)")
        if tuple(g.shape) != tuple(p.shape):
            raise ParamError(f"gradient of {k} has shape {tuple(g.shape)}, but the "
                             f"parameter has shape {tuple(p.shape)}")
        flags = getattr(p, "flags", None)
        if flags is not None and not flags.writeable:
            raise ParamError(f"parameter {k} is read-only; the optimizer updates it in place "
                             "(pass a writable copy, e.g. p.copy())")
        xp = namespace_of({k: g}, None)
        bad = ~xp.isfinite(g)
        if bool(xp.any(bad)):
            idx = first_true(bad)
            raise NonFiniteError(f"gradient of {k} has a NaN or Inf at entry {idx}; nothing "
                                 "was updated. Lower the learning rate, clip the gradients "
                                 "(ur.optim.clip_grad_norm), or find where it came from "
                                 "(value_and_grad(..., check_finite=True))")
        return g

    def _update(self, name, p, g, state, t) -> None:    # pragma: no cover - abstract
        """Update parameter ``p`` and its ``state`` in place (step ``t``, from 1)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, {len(self.params)} parameters)"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay::

        g ← g + λ p;   v ← μ v + g;   p ← p - lr · v      (Nesterov: p ← p - lr (g + μ v))
    """

    def __init__(self, params: dict, lr: float = 0.1, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = _number("momentum", momentum, 0.0)
        self.weight_decay = _number("weight_decay", weight_decay, 0.0)
        if not isinstance(nesterov, bool):
            raise ParamError(f"nesterov must be True or False, not {nesterov!r}")
        if nesterov and self.momentum <= 0:
            raise ParamError("Nesterov momentum needs momentum > 0")
        self.nesterov = nesterov

    def _update(self, name, p, g, state, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if "v" not in state:
                state["v"] = g * 1.0                    # a copy: PyTorch's first buffer is g
            else:
                state["v"] *= self.momentum
                state["v"] += g
            g = g + self.momentum * state["v"] if self.nesterov else state["v"]
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction::

        m ← β₁ m + (1-β₁) g;   v ← β₂ v + (1-β₂) g²
        p ← p - lr · m̂ / (√v̂ + ε),   m̂ = m / (1-β₁ᵗ),  v̂ = v / (1-β₂ᵗ)
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ParamError(f"betas must be a pair (β₁, β₂), not {betas!r}")
        self.b1 = _number("β₁", betas[0], 0.0, 1.0, hi_open=True)
        self.b2 = _number("β₂", betas[1], 0.0, 1.0, hi_open=True)
        self.eps = _number("eps", eps, 0.0, lo_open=True)
        self.weight_decay = _number("weight_decay", weight_decay, 0.0)

    def _update(self, name, p, g, state, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if "m" not in state:
            state["m"], state["v"] = g * 0.0, g * 0.0
        m, v = state["m"], state["v"]
        m *= self.b1
        m += (1.0 - self.b1) * g
        v *= self.b2
        v += (1.0 - self.b2) * (g * g)
        c1, c2 = 1.0 - self.b1 ** t, 1.0 - self.b2 ** t
        # PyTorch: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)
        p -= (self.lr / c1) * m / ((v ** 0.5) / math.sqrt(c2) + self.eps)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) as PyTorch has it::

        s ← α s + (1-α) g²;   p ← p - lr · g / (√s + ε)
        (centered: s - ḡ² under the root; with momentum: b ← μ b + g/(√s + ε), p ← p - lr b)
    """

    def __init__(self, params: dict, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, momentum: float = 0.0, centered: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.alpha = _number("alpha", alpha, 0.0, 1.0, lo_open=True)
        self.eps = _number("eps", eps, 0.0, lo_open=True)
        self.momentum = _number("momentum", momentum, 0.0)
        self.weight_decay = _number("weight_decay", weight_decay, 0.0)
        if not isinstance(centered, bool):
            raise ParamError(f"centered must be True or False, not {centered!r}")
        self.centered = centered

    def _update(self, name, p, g, state, t):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if "s" not in state:
            state["s"] = g * 0.0
            if self.centered:
                state["gbar"] = g * 0.0
            if self.momentum:
                state["b"] = g * 0.0
        s = state["s"]
        s *= self.alpha
        s += (1.0 - self.alpha) * (g * g)
        if self.centered:
            state["gbar"] *= self.alpha
            state["gbar"] += (1.0 - self.alpha) * g
            denom = (s - state["gbar"] * state["gbar"]) ** 0.5 + self.eps
        else:
            denom = s ** 0.5 + self.eps
        if self.momentum:
            b = state["b"]
            b *= self.momentum
            b += g / denom
            p -= self.lr * b
        else:
            p -= self.lr * g / denom


# --- clipping ---------------------------------------------------------------------------------

def _grads(grads, what: str, writable: bool = False) -> dict:
    """``grads`` checked: a dict of real floating-point arrays (that can be changed in
    place, for the clipping functions)."""
    if not isinstance(grads, dict):
        raise ParamError(f"{what} takes the dict of gradients that value_and_grad returns, "
                         f"not {type(grads).__name__} {grads!r:.60}")
    for k, g in grads.items():
        if not hasattr(g, "shape") or not hasattr(g, "dtype"):
            raise ParamError(f"{what}: the gradient of {k} is a {type(g).__name__}, not an "
                             "array; pass the grads dict that value_and_grad returns")
        if not dtype_name(g.dtype).startswith("float"):
            raise DTypeError(f"{what}: the gradient of {k} has dtype {dtype_name(g.dtype)}; "
                             "gradients are real floating-point arrays")
        flags = getattr(g, "flags", None)
        if writable and (flags is not None and not flags.writeable
                         or not hasattr(g, "__setitem__")):
            raise ParamError(f"{what}: the gradient of {k} cannot be written ({type(g).__name__},"
                             f" read-only); {what} changes the gradients in place: pass "
                             "writable arrays (e.g. np.array(g)); nothing was changed")
    return grads


def _finite(grads: dict, what: str) -> None:
    for k, g in grads.items():
        xp = namespace_of({k: g}, None)
        bad = ~xp.isfinite(g)
        if bool(xp.any(bad)):
            raise NonFiniteError(f"{what}: the gradient of {k} has a NaN or Inf at entry "
                                 f"{first_true(bad)}, so it cannot be clipped; nothing was "
                                 "changed. Find where it came from with "
                                 "value_and_grad(..., check_finite=True)")


def global_norm(grads: dict) -> float:
    """‖g‖₂ over every gradient in ``grads`` together (NaN or Inf when one of them has
    such an entry: the check :func:`unroll.training.train` makes before each update)."""
    _grads(grads, "global_norm")
    xps = {k: namespace_of({k: g}, None) for k, g in grads.items()}
    norm = math.sqrt(sum(float(xps[k].sum(g * g)) for k, g in grads.items()))
    if norm == math.inf:                  # the squares overflowed: scale by the largest entry
        big = max(float(xps[k].max(xps[k].abs(g))) if math.prod(g.shape) else 0.0
                  for k, g in grads.items())
        if math.isfinite(big):
            norm = big * math.sqrt(sum(float(xps[k].sum((g / big) ** 2))
                                       for k, g in grads.items()))
    return norm


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Rescale ``grads`` in place so that their global 2-norm is at most ``max_norm``
    (Pascanu, Mikolov & Bengio, 2013; PyTorch's ``clip_grad_norm_``: factor
    max_norm / (norm + 1e-6) when the norm exceeds it). Returns the norm before clipping."""
    _number("max_norm", max_norm, 0.0, lo_open=True)
    norm = global_norm(_grads(grads, "clip_grad_norm", writable=True))
    if not math.isfinite(norm):
        _finite(grads, "clip_grad_norm")
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return norm


def clip_grad_value(grads: dict, clip_value: float) -> None:
    """Clip every gradient entry to [-clip_value, clip_value], in place."""
    _number("clip_value", clip_value, 0.0, lo_open=True)
    _finite(_grads(grads, "clip_grad_value", writable=True), "clip_grad_value")
    for g in grads.values():
        if hasattr(g, "__array_namespace__"):
            xp = g.__array_namespace__()
            g[...] = xp.clip(g, -clip_value, clip_value)
        else:                                   # an older array type with a clip method
            g[...] = g.clip(-clip_value, clip_value)
