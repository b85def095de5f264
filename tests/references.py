"""Independent NumPy implementations of every model, for the tests.

Each is a direct loop over t written from the equations (the textbook's, or PyTorch's
documented ones), sharing no code with unroll. They accept complex arrays, so their gradients
can be taken by the complex-step method, f'(θ) = Im f(θ + iε) / ε with ε = 1e-30: exact to
machine precision, and independent of any backward pass.
"""
import numpy as np


# --- pieces that work on complex numbers ---------------------------------------------------------

def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def relu(a):
    return np.where(a.real > 0, a, 0.0)


ACT = {"tanh": np.tanh, "relu": relu}


def cross_entropy(o, y):
    """Per-example -log softmax(o)[y]; o (..., K), y (...) ints."""
    z = o - o.real.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]


def mse(o, y):
    return ((o - y) ** 2).mean(axis=-1)


def total(per_step):
    """The loss convention: Σ_t of the mean over the batch."""
    return per_step.mean(axis=-1).sum()


def softmax(o):
    z = np.exp(o - o.real.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def lin(W, v):
    """W @ v for every row of v (per example, batch axis first)."""
    return v @ W.T


def complex_step(loss_fn, params: dict, eps: float = 1e-30) -> dict:
    """Gradients of ``loss_fn(params)`` by the complex-step method."""
    grads = {}
    for k, a in params.items():
        g = np.zeros(a.shape)
        for idx in np.ndindex(*a.shape):
            p = {kk: vv.astype(complex) for kk, vv in params.items()}
            p[k][idx] += 1j * eps
            g[idx] = loss_fn(p).imag / eps
        grads[k] = g
    return grads


# --- chapter 10 -------------------------------------------------------------------------------------

def elman(p, x, nonlinearity="tanh"):
    T, B, _ = x.shape
    h = np.zeros((B, p["W"].shape[0]), dtype=p["W"].dtype)
    os = []
    for t in range(T):
        h = ACT[nonlinearity](p["b"] + lin(p["W"], h) + lin(p["U"], x[t]))
        os.append(p["c"] + lin(p["V"], h))
    return np.stack(os)


def jordan(p, x):
    T, B, _ = x.shape
    o = np.zeros((B, p["V"].shape[0]), dtype=p["W"].dtype)
    os = []
    for t in range(T):
        h = np.tanh(p["b"] + lin(p["W"], o) + lin(p["U"], x[t]))
        o = p["c"] + lin(p["V"], h)
        os.append(o)
    return np.stack(os)


def many_to_one(p, x):
    return elman(p, x)[-1]


def teacher_forcing(p, x, y, mode):
    T, B, _ = x.shape
    K = p["V"].shape[0]
    prev = np.zeros((B, K), dtype=p["W"].dtype)
    os = []
    for t in range(T):
        h = np.tanh(p["b"] + lin(p["W"], prev) + lin(p["U"], x[t]))
        o = p["c"] + lin(p["V"], h)
        os.append(o)
        if mode == "train":
            prev = np.eye(K)[y[t]]
        elif mode == "free":
            prev = softmax(o)
        else:
            prev = np.eye(K)[np.argmax(o.real, axis=-1)]
    return np.stack(os)


def conditioned(p, xvec, y, T, feed_previous):
    """xvec: (B, D) for one vector, or (T, B, D) for a sequence (fig. 10.10)."""
    B = xvec.shape[-2]
    K = p["V"].shape[0]
    h = np.zeros((B, p["W"].shape[0]), dtype=p["W"].dtype)
    prev = np.zeros((B, K))
    os = []
    for t in range(T):
        a = p["b"] + lin(p["W"], h) + lin(p["R"], xvec if xvec.ndim == 2 else xvec[t])
        if feed_previous:
            a = a + lin(p["U"], prev)
            prev = np.eye(K)[y[t]]
        h = np.tanh(a)
        os.append(p["c"] + lin(p["V"], h))
    return np.stack(os)


def bidirectional(p, x):
    T, B, _ = x.shape
    H = p["W"].shape[0]
    hs, gs = [], [None] * T
    h = np.zeros((B, H), dtype=p["W"].dtype)
    for t in range(T):
        h = np.tanh(p["b"] + lin(p["W"], h) + lin(p["U"], x[t]))
        hs.append(h)
    g = np.zeros((B, H), dtype=p["W"].dtype)
    for t in reversed(range(T)):
        g = np.tanh(p["b_g"] + lin(p["W_g"], g) + lin(p["U_g"], x[t]))
        gs[t] = g
    return np.stack([p["c"] + lin(p["V"], hs[t]) + lin(p["V_g"], gs[t]) for t in range(T)])


def encoder_decoder(p, x, y, mode="train"):
    h = np.zeros((x.shape[1], p["W_e"].shape[0]), dtype=p["W_e"].dtype)
    for t in range(x.shape[0]):
        h = np.tanh(p["b_e"] + lin(p["W_e"], h) + lin(p["U_e"], x[t]))
    K = p["V"].shape[0]
    s = np.zeros((x.shape[1], p["W_d"].shape[0]), dtype=p["W_d"].dtype)
    prev = np.zeros((x.shape[1], K))
    os = []
    for t in range(y.shape[0]):
        s = np.tanh(p["b_d"] + lin(p["W_d"], s) + lin(p["R"], h) + lin(p["U_d"], prev))
        o = p["c"] + lin(p["V"], s)
        os.append(o)
        prev = np.eye(K)[y[t]] if mode == "train" else np.eye(K)[np.argmax(o.real, axis=-1)]
    return np.stack(os)


# --- PyTorch's layers, from PyTorch's documented equations ----------------------------------------

def torch_layers(kind, p, x, num_layers, bidirectional, nonlinearity="tanh", bias=True,
                 variant=None):
    """The output of torch.nn.RNN / LSTM / GRU (time-major), or an Odyssey LSTM variant."""
    inp = x
    for k in range(num_layers):
        outs = []
        for suffix, rev in [("", False)] + ([("_reverse", True)] if bidirectional else []):
            w = lambda n: p[f"{n}_l{k}{suffix}"]  # noqa: E731
            b = (lambda n: p[f"{n}_l{k}{suffix}"]) if bias else (lambda n: 0.0)
            seq = inp[::-1] if rev else inp
            step = {"rnn": _rnn_step, "gru": _gru_step, "lstm": _lstm_step}[kind]
            out = step(seq, w, b, nonlinearity, variant or {}, p, f"_l{k}{suffix}")
            outs.append(out[::-1] if rev else out)
        inp = np.concatenate(outs, axis=-1)
    return inp


def _rnn_step(seq, w, b, nonlinearity, _variant, _p, _s):
    H = w("weight_hh").shape[0]
    h = np.zeros((seq.shape[1], H), dtype=w("weight_hh").dtype)
    out = []
    for xt in seq:
        h = ACT[nonlinearity](lin(w("weight_ih"), xt) + b("bias_ih") + lin(w("weight_hh"), h)
                              + b("bias_hh"))
        out.append(h)
    return np.stack(out)


def _gru_step(seq, w, b, _nl, _variant, _p, _s):
    H = w("weight_hh").shape[1]
    h = np.zeros((seq.shape[1], H), dtype=w("weight_hh").dtype)
    out = []
    for xt in seq:
        gi = lin(w("weight_ih"), xt) + b("bias_ih")
        gh = lin(w("weight_hh"), h) + b("bias_hh")
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


def _lstm_step(seq, w, b, _nl, v, p, s):
    """PyTorch's LSTM; with the Odyssey's options (Greff et al. 2017, eq. 1-6)."""
    H = w("weight_hh").shape[1]
    gates = [g for g, on in (("i", v.get("input_gate", True)),
                             ("f", v.get("forget_gate", True) and not v.get("coupled")),
                             ("g", True), ("o", v.get("output_gate", True))) if on]
    B = seq.shape[1]
    h = np.zeros((B, H), dtype=w("weight_hh").dtype)
    c = np.zeros((B, H), dtype=h.dtype)
    prev_gates = {g: np.zeros((B, H)) for g in ("i", "f", "o")}
    out = []
    for xt in seq:
        a = lin(w("weight_ih"), xt) + b("bias_ih") + lin(w("weight_hh"), h) + b("bias_hh")
        a = {g: a[:, j * H:(j + 1) * H] for j, g in enumerate(gates)}
        gated = [g for g in ("i", "f", "o") if g in gates]
        if v.get("full_gate_recurrence") and gated:
            r = lin(p[f"weight_gates{s}"], np.concatenate([prev_gates[g] for g in gated], -1))
            for j, g in enumerate(gated):
                a[g] = a[g] + r[:, j * H:(j + 1) * H]
        if v.get("peepholes"):
            for g in ("i", "f"):
                if g in a:
                    a[g] = a[g] + p[f"peephole_{g}{s}"] * c
        i = sigmoid(a["i"]) if "i" in a else 1.0
        if "f" in a:
            f = sigmoid(a["f"])
        else:
            f = 1.0 - i if v.get("coupled") else 1.0
        g = np.tanh(a["g"]) if v.get("input_activation", True) else a["g"]
        c = f * c + i * g
        if "o" in a:
            ao = a["o"] + (p[f"peephole_o{s}"] * c if v.get("peepholes") else 0.0)
            o = sigmoid(ao)
        else:
            o = 1.0
        h = o * (np.tanh(c) if v.get("output_activation", True) else c)
        prev_gates = {"i": i * np.ones((B, H)), "f": f * np.ones((B, H)),
                      "o": o * np.ones((B, H))}
        out.append(h)
    return np.stack(out)
