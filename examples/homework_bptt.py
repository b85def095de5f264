"""Homework: back-propagation through time by hand, checked by unroll.

The Elman network of Goodfellow et al., fig. 10.3 (eq. 10.8-10.11), trained with a
cross-entropy loss at every step. Below are four hand-written BPTTs in NumPy, each returning
the per-step contributions ∂W(t), ∂U(t), ∂V(t), ∂b(t), ∂c(t) (eq. 10.22-10.28: each
parameter's gradient is their sum). One is right; three make the mistakes students make most:

- ``no_recurrence``: ∂h(t) = Vᵀ ∂o(t) only, the term Wᵀ diag(1 − h(t+1)²) ∂h(t+1) forgotten;
- ``no_tanh_derivative``: ∂a(t) = ∂h(t), the factor 1 − h(t)² forgotten;
- ``off_by_one``: ∂W(t) = ∂a(t) h(t)ᵀ where eq. 10.26 has h(t−1).

``ur.compare_gradients`` checks each against unroll's BPTT and says which parameter, which
entry and which step goes wrong first, and which of these slips it matches.

    python examples/homework_bptt.py
"""
import numpy as np

import unroll as ur

D, H, K, T, B = 4, 5, 3, 6, 2


def forward(p, x, y):
    """eq. 10.8-10.11: h, the softmax outputs ŷ and the loss (mean over the batch)."""
    h = [np.zeros((x.shape[1], H))]
    yhat = []
    for t in range(T):
        a = p["b"] + h[-1] @ p["W"].T + x[t] @ p["U"].T
        h.append(np.tanh(a))
        o = p["c"] + h[-1] @ p["V"].T
        e = np.exp(o - o.max(-1, keepdims=True))
        yhat.append(e / e.sum(-1, keepdims=True))
    n = x.shape[1]
    loss = -sum(np.log(yhat[t][np.arange(n), y[t]]) for t in range(T)).mean()
    return h, yhat, loss


def bptt(p, x, y, recurrence=True, tanh_derivative=True, off_by_one=False):
    """The per-step contributions {name: (T, *shape)} of eq. 10.18-10.28, with the slips
    switched on by the flags."""
    h, yhat, _ = forward(p, x, y)
    n = x.shape[1]
    grads = {k: np.zeros((T,) + v.shape) for k, v in p.items()}
    dh_next = np.zeros((n, H))                       # Wᵀ diag(1 − h(t+1)²) ∂h(t+1)
    for t in reversed(range(T)):
        do = yhat[t].copy()
        do[np.arange(n), y[t]] -= 1                  # eq. 10.18
        do /= n                                      # the loss is averaged over the batch
        dh = do @ p["V"] + (dh_next if recurrence else 0.0)   # eq. 10.20-10.21
        da = dh * (1 - h[t + 1] ** 2) if tanh_derivative else dh
        grads["c"][t] = do.sum(0)                    # eq. 10.24
        grads["V"][t] = do.T @ h[t + 1]              # eq. 10.25
        grads["b"][t] = da.sum(0)                    # eq. 10.22
        grads["W"][t] = da.T @ (h[t + 1] if off_by_one else h[t])   # eq. 10.26
        grads["U"][t] = da.T @ x[t]                  # eq. 10.28
        dh_next = da @ p["W"]
    return grads


HOMEWORKS = {
    "correct": lambda p, x, y: bptt(p, x, y),
    "no_recurrence": lambda p, x, y: bptt(p, x, y, recurrence=False),
    "no_tanh_derivative": lambda p, x, y: bptt(p, x, y, tanh_derivative=False),
    "off_by_one": lambda p, x, y: bptt(p, x, y, off_by_one=True),
}


def main(seed: int = 0) -> dict:
    c = ur.models.elman(D, H, K)
    g = c.unroll(steps=T)
    params = c.init_params(seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((T, B, D)), rng.integers(0, K, (T, B))
    reports = {}
    for name, homework in HOMEWORKS.items():
        report = ur.compare_gradients(lambda p, x, y: homework(p, x, y), g, params, x=x, y=y)
        print(f"--- {name}\n{report}\n")
        reports[name] = report
    return reports


if __name__ == "__main__":
    main()
