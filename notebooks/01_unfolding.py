# %% [markdown]
# # 1 · Unfolding a circuit (Goodfellow et al., figs. 10.2–10.4)
#
# A recurrent network is a *circuit*: the equations of one time step, with a delay edge (the
# black square) carrying a value from one step to the next. Unfolding it over τ steps gives an
# ordinary computational graph, with one copy of the step per time step and the **same
# parameters** in every copy. This notebook draws both, and prints the equations of each.

# %%
import numpy as np
import unroll as ur

# %% [markdown]
# ## A dynamical system (eq. 10.1)
#
# The simplest recurrence: s⁽ᵗ⁾ = f(s⁽ᵗ⁻¹⁾; θ). Unfolded over three steps, the
# same θ appears three times.

# %%
c = ur.Circuit("dynamical_system")
s = c.state("s", (3,))
s.next = ur.tanh(c.param("θ", (3, 3)) @ s.prev)
print(c)
c.unroll(steps=3).to_dot()

# %% [markdown]
# ## A recurrent network with no outputs (fig. 10.2)
#
# h⁽ᵗ⁾ = f(h⁽ᵗ⁻¹⁾, x⁽ᵗ⁾; θ): the state summarises the inputs seen so far.

# %%
c = ur.Circuit("no_outputs")
x = c.input("x", (2,))
h = c.state("h", (3,))
h.next = ur.tanh(c.param("W", (3, 3)) @ h.prev + c.param("U", (3, 2)) @ x)
c.to_dot()

# %%
g = c.unroll(steps=4)
g.to_dot()

# %% [markdown]
# ## The Elman network (fig. 10.3, eq. 10.8–10.11)
#
# With an output and a loss at every step. `named("a")` gives the pre-activation the book's
# name, so that the printed equations read like eq. 10.8.

# %%
c = ur.Circuit("elman")
x, y = c.input("x", (4,)), c.input("y", (), dtype="int")
U, W, V = c.param("U", (3, 4)), c.param("W", (3, 3)), c.param("V", (4, 3))
b, cb = c.param("b", (3,)), c.param("c", (4,))
h = c.state("h", (3,))
a = (b + W @ h.prev + U @ x).named("a")     # eq. 10.8
h.next = ur.tanh(a)                         # eq. 10.9
o = c.output("o", cb + V @ h)               # eq. 10.10
c.loss(ur.softmax_cross_entropy(o, y))      # eq. 10.11-10.14
print(c)
c.to_dot()

# %% [markdown]
# Unfolded over τ = 3 steps: every h⁽ᵗ⁾ is computed by the same equation from
# h⁽ᵗ⁻¹⁾, and every copy reads the same W.

# %%
g = c.unroll(steps=3)
print("\n".join(line for line in str(g).splitlines() if line.strip().startswith(("h[", "a["))))
g.to_dot()

# %% [markdown]
# The book also draws the unfolded graph *relative* to a step t, with the ends elided:

# %%
c.unroll(steps=5).to_dot(relative=True)

# %% [markdown]
# ## Jordan network: output recurrence (fig. 10.4)
#
# Here the only recurrence is from the output o⁽ᵗ⁻¹⁾ to the hidden layer: less
# powerful (the output must carry all the state), but each step can be trained in
# isolation with teacher forcing (notebook 5).

# %%
j = ur.models.jordan(4, 3, 4)
print(j)
j.to_dot()

# %% [markdown]
# ## The unrolled graph is data
#
# Every unrolled value is a node of a networkx graph: count how many equations read the
# shared W.

# %%
nx_graph = g.to_networkx()
print(nx_graph.number_of_nodes(), "values;",
      sum(1 for _, v, d in nx_graph.edges(data=True) if _ == "W"), "edges out of W")
