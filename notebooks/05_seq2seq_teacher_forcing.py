# %% [markdown]
# # 5 · Sequence to sequence and teacher forcing (figs. 10.6, 10.12)
#
# When a network's own previous output feeds its next step, training can cut that loop:
# **teacher forcing** feeds the *correct* previous output instead (fig. 10.6), so the steps
# decouple and each can be trained in parallel. At test time the model must run on its own
# outputs. An **encoder–decoder** (fig. 10.12) reads one sequence into a context C and writes
# another, of a different length, conditioned on it.

# %%
import numpy as np
import unroll as ur

# %% [markdown]
# ## Teacher forcing (fig. 10.6)
#
# `ur.models.teacher_forcing` declares the output recurrence once; `mode` chooses what flows
# back: the target y(t−1) in training, the model's own output at test time. The parameters
# are the same.

# %%
train_c = ur.models.teacher_forcing(3, 4, 3, mode="train")
test_c = ur.models.teacher_forcing(3, 4, 3, mode="greedy")
print(train_c)
print(test_c)
train_c.unroll(steps=3).to_dot()

# %%
test_c.unroll(steps=3).to_dot()

# %% [markdown]
# ## An encoder–decoder that reverses digits (fig. 10.12)
#
# The encoder reads 4 digits into its last state, the context C; the decoder, conditioned
# on C at every step, writes them in reverse order. It is trained with teacher forcing and
# tested free-running (greedy: its own previous argmax feeds it back).

# %%
DIGITS, LENGTH, H = 10, 4, 32
model = ur.models.encoder_decoder(DIGITS, H, DIGITS, mode="train")
free = ur.models.encoder_decoder(DIGITS, H, DIGITS, mode="greedy")
model.unroll(input_steps=3, output_steps=3).to_dot()

# %%
def data(n, rng):
    seq = rng.integers(0, DIGITS, size=(LENGTH, n))
    return np.eye(DIGITS)[seq], seq[::-1].copy()          # x (T, n, 10), y (T, n)

g = model.unroll(input_steps=LENGTH, output_steps=LENGTH)
params = model.init_params(seed=0)
rng = np.random.default_rng(0)

def batches(epoch):
    x, y = data(64, rng)
    yield {"x": x, "y": y}

hist = ur.training.train(g, params, batches, ur.optim.Adam(params, lr=1e-2), epochs=150,
                         clip_norm=5.0, progress=False)
print(f"{len(hist.losses)} updates, loss {hist.losses[0]:.2f} -> {hist.final:.3f}")

# %% [markdown]
# ## Forced and free-running
#
# With teacher forcing every step sees the correct previous digit; free-running, one wrong
# digit is fed back and can derail the rest (the *exposure bias* of teacher forcing).

# %%
x, y = data(500, np.random.default_rng(1))
forced = g.run(params, x=x, y=y)["o"].argmax(-1)
pred = free.unroll(input_steps=LENGTH, output_steps=LENGTH).run(params, x=x, y=y)["o"].argmax(-1)
print(f"teacher forced: {(forced == y).mean():.1%} of digits; "
      f"free-running: {(pred == y).mean():.1%} of digits, {(pred == y).all(0).mean():.1%} "
      "of whole sequences (chance: 10% of digits)")
for i in range(3):
    print("".join(map(str, x[:, i].argmax(-1))), "->", "".join(map(str, pred[:, i])))
assert (pred == y).mean() > 0.3                           # well above chance after 150 updates
