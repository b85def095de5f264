"""Long-range dependencies: "Tom ... (50 words later) ... Mary said hi to [?]".

The answer depends on the very first input. Each sequence starts with one of four "names",
followed by T - 1 distractor symbols; at the last step the model must say which name it saw
first (a many-to-one classifier, the loss only at t = T). Chance is 25%.

A plain tanh RNN (``ur.models.rnn``) cannot learn it at T = 50: the gradient that reaches the
first step is a product of 49 Jacobians ∂h(t)/∂h(t-1), and vanishes. An LSTM
(``ur.models.lstm``) and a GRU (``ur.models.gru``) whose gates start open (forget gate, resp.
update gate, biased by +3: Jozefowicz et al., 2015; Tallec & Ollivier, 2018) carry it through
their gated, additive state updates, and learn.

The script saves, from real backward passes at initialisation:
``gradient_norms.png`` (‖∂L/∂h(t)‖ for the three models, log scale: the RNN's curve falls by
orders of magnitude towards t = 1), ``jacobian_norms.png`` (‖∂h(t)/∂h(t-1)‖₂ per step) and
``training.png``.

Quality (full run, seed 0, T = 50, 1,500 updates): RNN at chance (about 25% test accuracy),
LSTM and GRU 100% (the last full run's figures are in examples/README.md).

    python examples/vanishing_gradients.py            # full run
    python examples/vanishing_gradients.py --quick    # the tests' version
"""
import argparse
from pathlib import Path

import numpy as np

import unroll as ur

NAMES, DISTRACTORS = 4, 8
V = NAMES + DISTRACTORS


def data(n: int, T: int, rng) -> tuple:
    first = rng.integers(0, NAMES, size=n)
    ids = np.concatenate([first[None], rng.integers(NAMES, V, size=(T - 1, n))])
    return np.eye(V)[ids], first                     # x (T, n, V), y (n,)


def classifier(kind: str, H: int) -> ur.Circuit:
    make = {"RNN": ur.models.rnn, "LSTM": ur.models.lstm, "GRU": ur.models.gru}[kind]
    c = make(V, H, name=kind.lower())
    y = c.input("y", (), dtype="int", per_step=False)
    o = c.output("o", c.param("W_out", (NAMES, H), init=ur.models.torch_init(H)) @ c["h"]
                 + c.param("b_out", (NAMES,)), at="last")
    c.loss(ur.softmax_cross_entropy(o, y), at="last")
    return c


def init(kind: str, c: ur.Circuit, seed: int, H: int) -> dict:
    """PyTorch's initialisation, with the gates that keep the state opened: the LSTM's forget
    gate (order i, f, g, o) and the GRU's update gate z (order r, z, n) biased by +3, so that
    σ ≈ 0.95 and the state is kept by default. A plain RNN has no such gate."""
    p = c.init_params(seed=seed)
    if kind in ("LSTM", "GRU"):
        p["bias_ih_l0"][H:2 * H] += 3.0
    return p


def main(quick: bool = False, seed: int = 0, progress: bool = True,
         out: str = "out/vanishing_gradients") -> dict:
    T, H = (12, 16) if quick else (50, 32)
    updates = 40 if quick else 1500
    rng = np.random.default_rng(seed)
    x_test, y_test = data(1000, T, rng)
    norms, jac, acc, curves = {}, {}, {}, {}
    for kind in ("RNN", "LSTM", "GRU"):
        c = classifier(kind, H)
        g = c.unroll(steps=T)
        params = init(kind, c, seed, H)
        probe_x, probe_y = x_test[:, :32], y_test[:32]
        norms[kind] = ur.diagnostics.gradient_norms(g, params, states="h_l0", x=probe_x,
                                                    y=probe_y)["h_l0"]
        jac[kind] = ur.diagnostics.jacobian_norms(g, params, "h_l0", x=probe_x, y=probe_y)
        batch_rng = np.random.default_rng(seed + 1)

        def batches(epoch, batch_rng=batch_rng):
            x, y = data(64, T, batch_rng)
            yield {"x": x, "y": y}

        hist = ur.training.train(g, params, batches, ur.optim.Adam(params, lr=3e-3),
                                 epochs=updates, clip_norm=1.0, progress=progress, desc=kind,
                                 target_loss=None if quick else 1e-3)
        pred = g.run(params, x=x_test, y=y_test)["o"].argmax(-1)
        acc[kind] = float((pred == y_test).mean())
        curves[kind] = hist
    print(f"T = {T}: ‖∂L/∂h(t)‖ at initialisation, first step / last step "
          "(how much of the gradient reaches t = 1):")
    for k in norms:
        print(f"  {k:5s} {norms[k][0] / norms[k][-1]:.2e}   median ‖∂h(t)/∂h(t-1)‖₂ = "
              f"{np.median(jac[k]):.2f}")
    print("test accuracy (chance 25%):")
    for k, a in acc.items():
        print(f"  {k:5s} {a:.1%}  after {len(curves[k].losses)} updates")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ur.diagnostics.plot(norms, out / "gradient_norms.png",
                        title=f"‖∂L/∂h(t)‖ at initialisation, loss at t = {T} only")
    ur.diagnostics.plot(jac, out / "jacobian_norms.png", ylabel="‖∂h(t)/∂h(t-1)‖₂",
                        title="one-step Jacobian norms (batch mean)")
    ur.diagnostics.plot({k: h.losses for k, h in curves.items()}, out / "training.png",
                        ylabel="loss", xlabel="update", title="training loss")
    print(f"plots in {out.resolve()}")
    return {"accuracy": acc, "reach": {k: norms[k][0] / norms[k][-1] for k in norms}}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/vanishing_gradients")
    main(**vars(ap.parse_args()))
