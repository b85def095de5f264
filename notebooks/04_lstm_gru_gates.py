# %% [markdown]
# # 4 · LSTM and GRU gates (fig. 10.16, eq. 10.40–10.46)
#
# Gated cells let the network decide, step by step, what to keep in its state. This
# notebook declares the LSTM cell in the book's notation, draws it as fig. 10.16, watches its
# gates on a sequence, and shows how the forget gate's bias decides how far back the
# gradient reaches.

# %%
import matplotlib.pyplot as plt
import numpy as np
import unroll as ur

D, H = 3, 4

# %% [markdown]
# ## The LSTM cell in the book's notation
#
# Forget gate f (eq. 10.40), cell state s with its self-loop (eq. 10.41), external input
# gate g (eq. 10.42), output h through the output gate q (eq. 10.43–10.44). The
# gates are named values with `show=True`, so they are drawn as in the figure.

# %%
c = ur.Circuit("lstm_cell")
x = c.input("x", (D,))
h, s = c.state("h", (H,)), c.state("s", (H,))

def gate(n):                                   # σ(b + U x(t) + W h(t-1))
    return ur.sigmoid(c.param(f"b_{n}", (H,)) + c.param(f"U_{n}", (H, D)) @ x
                      + c.param(f"W_{n}", (H, H)) @ h.prev)

f = gate("f").named("f", show=True)            # forget gate, eq. 10.40
g = gate("g").named("g", show=True)            # external input gate, eq. 10.42
q = gate("q").named("q", show=True)            # output gate, eq. 10.44
i = gate("i").named("i", show=True)            # the input unit
s.next = f * s.prev + g * i                    # eq. 10.41
h.next = ur.tanh(s) * q                        # eq. 10.43
for name in ("f", "g", "q"):
    c.output(name)                             # the gates' values, to look at
print(c)
c.to_dot(params="none")

# %% [markdown]
# Every primitive of the step, with `detail="ops"`:

# %%
c.to_dot(detail="ops", params="none")

# %% [markdown]
# ## The gates on a sequence
#
# The same input pattern, with the forget gate's bias closed (−2) and open (+3):

# %%
tau = 20
rng = np.random.default_rng(1)
xs = rng.standard_normal((tau, 1, D))
g20 = c.unroll(steps=tau)
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
for ax, bias in zip(axes, (-2.0, 3.0)):
    params = c.init_params(seed=0)
    params["b_f"][:] = bias
    out = g20.run(params, x=xs)
    for name in ("f", "g", "q"):
        ax.plot(range(1, tau + 1), out[name][:, 0].mean(-1), label=name)
    ax.set_title(f"forget-gate bias {bias:+}"); ax.set_xlabel("step t")
axes[0].set_ylabel("mean gate activation"); axes[0].legend()
plt.show()

# %% [markdown]
# ## How far back the gradient reaches
#
# Put a loss on the last step only and measure ‖∂L/∂s⁽ᵗ⁾‖: with the
# forget gate open, the cell state carries the gradient back almost unchanged
# (∂s⁽ᵗ⁾/∂s⁽ᵗ⁻¹⁾ = diag(f⁽ᵗ⁾) along the self-loop).

# %%
y = c.input("y", (H,), per_step=False)
c.loss(ur.mse(h, y), at="last")
gl = c.unroll(steps=tau)
ys = rng.standard_normal((1, H))
for bias in (-2.0, 0.0, 3.0):
    params = c.init_params(seed=0)
    params["b_f"][:] = bias
    n = ur.diagnostics.gradient_norms(gl, params, x=xs, y=ys)["s"]
    plt.semilogy(range(1, tau + 1), n, "o-", ms=3, label=f"forget bias {bias:+}")
    print(f"forget bias {bias:+}: ‖∂L/∂s(1)‖ / ‖∂L/∂s(τ)‖ = {n[0] / n[-1]:.1e}")
plt.xlabel("step t"); plt.ylabel("‖∂L/∂s(t)‖"); plt.legend(); plt.show()

# %% [markdown]
# ## The GRU (eq. 10.45–10.46)
#
# One update gate u decides between keeping h⁽ᵗ⁻¹⁾ and taking the candidate; the
# reset gate r decides how much of the past the candidate sees.

# %%
gru = ur.Circuit("gru_cell")
x = gru.input("x", (D,))
h = gru.state("h", (H,))

def affine(n, hh):
    return (gru.param(f"b_{n}", (H,)) + gru.param(f"U_{n}", (H, D)) @ x
            + gru.param(f"W_{n}", (H, H)) @ hh)

u = ur.sigmoid(affine("u", h.prev)).named("u", show=True)     # update gate
r = ur.sigmoid(affine("r", h.prev)).named("r", show=True)     # reset gate
n = ur.tanh(affine("n", r * h.prev)).named("n", show=True)    # the candidate
h.next = u * h.prev + (1.0 - u) * n
print(gru)
gru.to_dot(params="none")

# %% [markdown]
# The library's PyTorch-layout cells (`ur.models.lstm`, `ur.models.gru`) compute exactly what
# `torch.nn.LSTM` and `torch.nn.GRU` compute, with their parameter names; every variant of
# "LSTM: A Search Space Odyssey" is an option of `ur.models.lstm`.

# %%
print(sorted(ur.models.LSTM_VARIANTS))
