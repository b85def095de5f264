# %% [markdown]
# # 3 · Vanishing and exploding gradients, made visible (section 10.7)
#
# The gradient that reaches step t from the loss at step τ is multiplied by one Jacobian
# ∂h⁽ᵏ⁾/∂h⁽ᵏ⁻¹⁾ = diag(1 − (h⁽ᵏ⁾)²) W per step in
# between. If their norms stay below 1 it shrinks geometrically (vanishes); above 1 it can
# grow (explodes). Here we measure both on a real backward pass, draw them as heat maps on
# the unrolled graph, and clip.

# %%
import matplotlib.pyplot as plt
import numpy as np
import unroll as ur

H, D, tau, B = 8, 4, 30, 4
c = ur.Circuit("rnn")
x, y = c.input("x", (D,)), c.input("y", (), dtype="int", per_step=False)
h = c.state("h", (H,))
h.next = ur.tanh(c.param("b", (H,)) + c.param("W", (H, H)) @ h.prev + c.param("U", (H, D)) @ x)
o = c.output("o", c.param("V", (3, H)) @ h, at="last")
c.loss(ur.softmax_cross_entropy(o, y), at="last")    # one loss, at the last step
g = c.unroll(steps=tau)
rng = np.random.default_rng(0)
xs, ys = rng.standard_normal((tau, B, D)), rng.integers(0, 3, B)

def with_scale(scale):
    """The network's parameters, its recurrent W scaled to spectral radius ``scale``."""
    p = c.init_params(seed=0)
    W = rng.standard_normal((H, H))
    p["W"] = scale * W / np.max(np.abs(np.linalg.eigvals(W)))
    return p

# %% [markdown]
# ## ‖∂L/∂h⁽ᵗ⁾‖ for three recurrent weight scales
#
# `ur.diagnostics.gradient_norms` runs one backward pass and returns the norm of the gradient
# arriving at every step.

# %%
norms = {s: ur.diagnostics.gradient_norms(g, with_scale(s), x=xs, y=ys)["h"]
         for s in (0.5, 1.0, 3.0)}
for s, n in norms.items():
    plt.semilogy(range(1, tau + 1), n, "o-", ms=3, label=f"radius {s}")
plt.xlabel("step t"); plt.ylabel("‖∂L/∂h(t)‖"); plt.legend(); plt.title("loss at t = τ")
plt.show()
for s, n in norms.items():
    print(f"radius {s}: ‖∂L/∂h(τ)‖ = {n[-1]:.2e}, ‖∂L/∂h(1)‖ = {n[0]:.2e}")

# %% [markdown]
# With a small radius the gradient reaching step 1 is orders of magnitude smaller than at
# step τ: the first inputs barely influence learning. On the unrolled graph, as a heat map
# (log scale):

# %%
g.to_dot(heat={"h": norms[0.5]}, max_steps=8)

# %% [markdown]
# ## Why: the one-step Jacobians
#
# `jacobian_norms` gives ‖∂h⁽ᵗ⁾/∂h⁽ᵗ⁻¹⁾‖₂ at the values the forward
# pass reached. Their product bounds how the gradient changes over many steps.

# %%
for s in (0.5, 3.0):
    rho = ur.diagnostics.jacobian_norms(g, with_scale(s), "h", x=xs, y=ys).mean(axis=1)
    plt.plot(range(1, tau + 1), rho, label=f"radius {s}")
plt.axhline(1.0, color="gray", lw=0.8); plt.xlabel("step t"); plt.legend()
plt.ylabel("‖∂h(t)/∂h(t-1)‖₂"); plt.show()

# %% [markdown]
# A large radius does not always explode: tanh saturates, and 1 − h² shrinks the
# Jacobian. Where it does explode, the standard cure is **clipping** the gradient's norm
# (Pascanu et al., 2013): the direction is kept, the step bounded.

# %%
p = with_scale(3.0)
p["U"] *= 0.05                                       # small inputs: tanh stays linear
loss, grads = g.value_and_grad(p, x=xs, y=ys)
before = ur.optim.clip_grad_norm(grads, max_norm=1.0)  # in place; returns the norm before
after = np.sqrt(sum(float(np.sum(v * v)) for v in grads.values()))
print(f"gradient norm {before:.3g} clipped to {after:.3g}")
assert after <= 1.0 + 1e-9

# %% [markdown]
# ## The LSTM's way out
#
# An LSTM's cell state is updated additively, gated by the forget gate: with the gate open,
# the gradient flows back with little attenuation (notebook 4).

# %%
lstm = ur.models.lstm(D, H, name="lstm")
y = lstm.input("y", (), dtype="int", per_step=False)
o = lstm.output("o", lstm.param("V", (3, H)) @ lstm["h"], at="last")
lstm.loss(ur.softmax_cross_entropy(o, y), at="last")
pl = lstm.init_params(seed=0)
pl["bias_ih_l0"][H:2 * H] += 3.0                      # forget gate open (σ ≈ 0.95)
gl = lstm.unroll(steps=tau)
nl = ur.diagnostics.gradient_norms(gl, pl, x=xs, y=ys)["c_l0"]
plt.semilogy(range(1, tau + 1), norms[1.0], label="RNN, ‖∂L/∂h(t)‖")
plt.semilogy(range(1, tau + 1), nl, label="LSTM, ‖∂L/∂c(t)‖")
plt.xlabel("step t"); plt.legend(); plt.show()
print(f"gradient at step 1 / at step τ: RNN {norms[1.0][0] / norms[1.0][-1]:.1e}, "
      f"LSTM {nl[0] / nl[-1]:.1e}")
