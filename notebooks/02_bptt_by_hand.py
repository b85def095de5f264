# %% [markdown]
# # 2 · BPTT by hand, and by unroll (eq. 10.18–10.28)
#
# Back-propagation through time is reverse mode applied to the unrolled graph. Here we write
# the book's equations for the Elman network in NumPy, step by step, and compare every
# gradient with unroll's, and with finite differences.

# %%
import numpy as np
import unroll as ur

c = ur.models.elman(4, 5, 3)                 # U (5, 4), W (5, 5), V (3, 5), b, c
tau, B = 6, 2
g = c.unroll(steps=tau)
params = c.init_params(seed=0)
rng = np.random.default_rng(0)
xs = rng.standard_normal((tau, B, 4))
ys = rng.integers(0, 3, (tau, B))

# %% [markdown]
# ## Forward (eq. 10.8–10.11)

# %%
U, W, V, b, cb = (params[k] for k in ("U", "W", "V", "b", "c"))
h = [np.zeros((B, 5))]
yhat = []
for t in range(tau):
    a = b + h[-1] @ W.T + xs[t] @ U.T
    h.append(np.tanh(a))
    o = cb + h[-1] @ V.T
    e = np.exp(o - o.max(-1, keepdims=True))
    yhat.append(e / e.sum(-1, keepdims=True))
loss = -sum(np.log(yhat[t][np.arange(B), ys[t]]) for t in range(tau)).mean()

# %% [markdown]
# ## Backward (eq. 10.18–10.28)
#
# - ∇_{o⁽ᵗ⁾} L = ŷ⁽ᵗ⁾ − 1_{y⁽ᵗ⁾} (eq. 10.17)
# - ∇_{h⁽ᵗ⁾} L = V^⊤ ∇_{o⁽ᵗ⁾} L at t = τ (eq. 10.18)
# - ∇_{h⁽ᵗ⁾} L = W^⊤ diag(1 − (h⁽ᵗ⁺¹⁾)²) ∇_{h⁽ᵗ⁺¹⁾} L + V^⊤ ∇_{o⁽ᵗ⁾} L (eq. 10.21)
# - each parameter's gradient sums its per-step copies (eq. 10.22–10.28).

# %%
grads = {k: np.zeros_like(v) for k, v in params.items()}
dh_next = np.zeros((B, 5))
for t in reversed(range(tau)):
    do = yhat[t].copy()
    do[np.arange(B), ys[t]] -= 1
    do /= B                                           # the loss is averaged over the batch
    dh = do @ V + dh_next                             # eq. 10.20-10.21
    da = dh * (1 - h[t + 1] ** 2)                     # diag(1 - h²)
    grads["c"] += do.sum(0)                           # eq. 10.22
    grads["V"] += do.T @ h[t + 1]                     # eq. 10.24
    grads["b"] += da.sum(0)                           # eq. 10.23
    grads["W"] += da.T @ h[t]                         # eq. 10.26
    grads["U"] += da.T @ xs[t]                        # eq. 10.28
    dh_next = da @ W                                  # Wᵀ, one step back

# %% [markdown]
# ## unroll's gradients

# %%
l2, g2 = g.value_and_grad(params, x=xs, y=ys)
print(f"loss: by hand {loss:.12f}, unroll {float(l2):.12f}")
for k in grads:
    print(f"∂{k}: max |by hand - unroll| = {np.max(np.abs(grads[k] - g2[k])):.1e}")
assert all(np.allclose(grads[k], g2[k], rtol=1e-10, atol=1e-12) for k in grads)

# %% [markdown]
# ## unroll derives the same equations
#
# `ur.latex(c, grad=True)` reads the rolled equations off the gradient graph that unroll
# runs: eq. 10.8–10.11 forward, 10.17–10.28 backward, with t = τ on its own line (Jupyter
# shows them typeset; `.render("elman.png")` draws them). `evaluate` runs the derived
# equations themselves, step by step, and they give our hand-written gradients.

# %%
eq = ur.latex(c, grad=True)
eq

# %%
_, derived = eq.evaluate(params, x=xs, y=ys)
assert all(np.allclose(derived[k], grads[k], rtol=1e-10, atol=1e-12) for k in grads)
print("the derived equations give the hand-written gradients")

# %% [markdown]
# unroll's backward pass is a graph too. The gradient of W is the sum of its per-step
# copies ∂W⁽ᵗ⁾ (eq. 10.26), each one equation:

# %%
gg = ur.grad(g)
print("\n".join(line for line in str(gg).splitlines() if "Σ∂W" in line))

# %% [markdown]
# ## And finite differences
#
# `ur.gradcheck` perturbs every parameter entry in float64 and compares.

# %%
report = ur.gradcheck(g, params, x=xs, y=ys)
print(report)
assert report.ok

# %% [markdown]
# The backward graph, drawn: the gradient flows against the forward edges, multiplied by
# W^⊤ and V^⊤.

# %%
g.to_dot(mode="backward")
