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

from .errors import ParamError

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "clip_grad_norm", "clip_grad_value",
           "global_norm"]


class Optimizer:
    """Base class: holds the parameter dict and per-parameter state; ``step(grads)``."""

    def __init__(self, params: dict, lr: float):
        if not isinstance(params, dict) or not params:
            raise ParamError("an optimizer takes the dict of parameter arrays it updates "
                             "(e.g. c.init_params(seed=0))")
        if not lr > 0:
            raise ParamError(f"learning rate must be > 0, not {lr!r}")
        self.params, self.lr = params, float(lr)
        self.state: dict = {k: {} for k in params}
        self.steps = 0

    def step(self, grads: dict) -> None:
        """Update every parameter that has a gradient in ``grads``, in place."""
        for k, g in grads.items():
            if k not in self.params:
                continue                     # gradients of inputs or initial states
            p = self.params[k]
            if not hasattr(g, "shape"):
                raise ParamError(f"gradient of {k} is a {type(g).__name__}, not an array; pass "
                                 "the grads dict that value_and_grad returns")
            if tuple(g.shape) != tuple(p.shape):
                raise ParamError(f"gradient of {k} has shape {tuple(g.shape)}, but the "
                                 f"parameter has shape {tuple(p.shape)}")
        self.steps += 1
        for k, g in grads.items():
            if k in self.params:
                self._update(k, self.params[k], g, self.state[k])

    def _update(self, name, p, g, state) -> None:      # pragma: no cover - abstract
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
        if nesterov and momentum <= 0:
            raise ParamError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def _update(self, name, p, g, state):
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
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay

    def _update(self, name, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if "m" not in state:
            state["m"], state["v"] = g * 0.0, g * 0.0
        m, v = state["m"], state["v"]
        m *= self.b1
        m += (1.0 - self.b1) * g
        v *= self.b2
        v += (1.0 - self.b2) * (g * g)
        t = self.steps
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
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered
        self.weight_decay = weight_decay

    def _update(self, name, p, g, state):
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

def global_norm(grads: dict) -> float:
    """‖g‖₂ over every gradient in ``grads`` together."""
    return math.sqrt(sum(float((g * g).sum()) for g in grads.values()))


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Rescale ``grads`` in place so that their global 2-norm is at most ``max_norm``
    (Pascanu, Mikolov & Bengio, 2013; PyTorch's ``clip_grad_norm_``: factor
    max_norm / (norm + 1e-6) when the norm exceeds it). Returns the norm before clipping."""
    if not max_norm > 0:
        raise ParamError(f"max_norm must be > 0, not {max_norm!r}")
    norm = global_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return norm


def clip_grad_value(grads: dict, clip_value: float) -> None:
    """Clip every gradient entry to [-clip_value, clip_value], in place."""
    if not clip_value > 0:
        raise ParamError(f"clip_value must be > 0, not {clip_value!r}")
    for g in grads.values():
        if hasattr(g, "__array_namespace__"):
            xp = g.__array_namespace__()
            g[...] = xp.clip(g, -clip_value, clip_value)
        else:                                   # an older array type with a clip method
            g[...] = g.clip(-clip_value, clip_value)
