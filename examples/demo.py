"""The main demo (``make demo``): the textbook's RNN, unrolled, differentiated and checked.

Goodfellow, Bengio & Courville, *Deep Learning*, fig. 10.3 and eq. 10.8-10.11:

    a(t) = b + W h(t-1) + U x(t)        h(t) = tanh(a(t))
    o(t) = c + V h(t)                   L = Σ_t -log softmax(o(t))[y(t)]

It draws the circuit and its unrolled graphs (``out/demo/``), prints the forward and backward
equations, the loss, the gradients and a gradcheck report, then trains the network to predict
"ello" from "hell" with a progress bar and lets it write "hello".

Run ``python examples/demo.py --quick`` for the short version the tests run.
"""
import argparse
from pathlib import Path

import numpy as np

import unroll as ur


def elman(D: int = 4, H: int = 3, K: int = 4) -> ur.Circuit:
    """Fig. 10.3: hidden-to-hidden recurrence, an output and a loss at every step."""
    c = ur.Circuit("elman")
    x = c.input("x", (D,))                      # x(t)
    y = c.input("y", (), dtype="int")           # target class y(t)
    U, W, V = c.param("U", (H, D)), c.param("W", (H, H)), c.param("V", (K, H))
    b, cb = c.param("b", (H,)), c.param("c", (K,))
    h = c.state("h", (H,), init="zeros")        # h(t), with h.prev = h(t-1)
    a = (b + W @ h.prev + U @ x).named("a")
    h.next = ur.tanh(a)
    o = c.output("o", cb + V @ h)
    c.loss(ur.softmax_cross_entropy(o, y))
    return c


def pictures(c: ur.Circuit, g: ur.Graph, out: Path) -> list:
    """The circuit diagram (fig. 10.3, left), the unrolled graph (right) and the BPTT graph."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in ("svg", "png"):
        written.append(c.render(out / f"elman-circuit.{ext}"))
        written.append(g.render(out / f"elman-unrolled.{ext}"))
        written.append(g.render(out / f"elman-backward.{ext}", mode="backward"))
    return written


def main(quick: bool = False, out: str = "out/demo", progress: bool = True) -> dict:
    steps = 4
    c = elman()
    g = c.unroll(steps=steps)
    print(f"== the circuit: {c!r}")
    files = pictures(c, g, Path(out))
    print("== pictures of the circuit, the unrolled graph and its backward pass, in "
          f"{Path(out).resolve()}:")
    for f in files:
        print(f"  {f.name}")
    print(f"\n== unrolled over τ = {steps} steps (forward equations)\n{g}")

    # the word "hell" -> predict "ello", characters one-hot over the vocabulary h, e, l, o
    vocab = "helo"
    xs = np.eye(len(vocab))[[vocab.index(ch) for ch in "hell"]]        # (T, D)
    ys = np.array([vocab.index(ch) for ch in "ello"])                  # (T,)
    params = c.init_params(seed=0)

    loss, grads = g.value_and_grad(params, x=xs, y=ys)
    backward = ur.grad(g)
    n_fwd = len(g.eqns)
    print(f"\n== the backward pass (BPTT), {len(backward.eqns) - n_fwd} more equations")
    for e in backward.eqns[n_fwd:]:
        print(f"  {e!r}")
    print(f"\n== loss L = {float(loss):.6f}")
    print("== gradient norms:")
    for k, v in grads.items():
        print(f"  ‖∂L/∂{k}‖ = {np.linalg.norm(v):.6f}")
    contrib = backward.contributions["W"]
    per_step = backward.evaluate(params, [v for _, v in contrib], x=xs, y=ys)
    print("== ∂L/∂W is the sum of the gradients of its per-step copies W(t) (eq. 10.26):")
    for t, v in contrib:
        print(f"  t = {t}: ‖∂L/∂W(t)‖ = {np.linalg.norm(per_step[v]):.6f}   ({v!r})")
    total = sum(per_step[v] for _, v in contrib)
    print(f"  |Σ_t ∂L/∂W(t) - ∂L/∂W| = {np.abs(total - grads['W']).max():.1e}")
    report = ur.gradcheck(g, params, x=xs, y=ys)
    print(f"\n== {report}")
    report.raise_if_failed()

    # train it: Adam on the one sequence, until it predicts every next character
    print("\n== training (Adam, lr 0.05) on 'hell' -> 'ello'")
    guess = lambda: "".join(vocab[i] for i in np.argmax(g.run(params, x=xs, y=ys)["o"], -1))
    before = guess()
    hist = ur.training.train(g, params, [{"x": xs, "y": ys}], ur.optim.Adam(params, lr=0.05),
                             epochs=400, target_loss=0.01, progress=progress, desc="elman")
    after = guess()
    generated = "".join(vocab[i] for i in ur.models.generate(c, params, [0], 4, greedy=True))
    print(f"  loss {hist.losses[0]:.4f} -> {hist.final:.4f} in {len(hist.losses)} updates "
          f"({hist.seconds:.2f} s)")
    print(f"  'hell' -> {before!r} before training, {after!r} after")
    print(f"  primed with 'h', it writes {generated!r}")
    return {"loss": float(loss), "grads": grads, "report": report, "pictures": files,
            "trained": after, "generated": generated}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the short version (for the tests)")
    ap.add_argument("--out", default="out/demo", help="where the pictures go")
    main(**vars(ap.parse_args()))
