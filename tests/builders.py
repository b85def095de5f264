"""Circuits and data several test files share."""
import numpy as np

import unroll as ur


def elman(D=3, H=4, K=3, init="zeros", bias_init="default"):
    """Goodfellow et al. fig. 10.3: a(t) = b + W h(t-1) + U x(t), h = tanh(a), o = c + V h,
    L(t) = cross-entropy of o(t) against the class y(t)."""
    c = ur.Circuit("elman")
    x = c.input("x", (D,))
    y = c.input("y", (), dtype="int")
    U, W, V = c.param("U", (H, D)), c.param("W", (H, H)), c.param("V", (K, H))
    b, cb = c.param("b", (H,), init=bias_init), c.param("c", (K,), init=bias_init)
    h = c.state("h", (H,), init=init)
    h.next = ur.tanh((b + W @ h.prev + U @ x).named("a"))
    o = c.output("o", cb + V @ h)
    c.loss(ur.softmax_cross_entropy(o, y))
    return c


def data(T=4, B=2, D=3, K=3, seed=0):
    """x of shape (T, B, D), class targets y of shape (T, B)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, D)), rng.integers(0, K, size=(T, B))


def elman_problem(T, B, D=3, H=5, K=4, seed=0, scale=0.8):
    """The Elman circuit with parameters U(-scale, scale) and random data: (c, p, x, y)."""
    rng = np.random.default_rng(seed)
    c = elman(D, H, K)
    p = {k: rng.uniform(-scale, scale, size=s) for k, s in c.param_shapes().items()}
    return c, p, rng.standard_normal((T, B, D)), rng.integers(0, K, size=(T, B))
