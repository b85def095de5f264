"""Attention: reversing longer digit strings than a fixed context handles (Bahdanau et al., 2015).

The plain encoder-decoder (fig. 10.12, ``examples/seq2seq_reverse.py``) squeezes the whole
input into one context vector C. The attention model (``ur.models.attention_seq2seq``) lets
each decoder step look at every encoder step. Both are trained with the same budget on
strings of LENGTH digits and tested decoding free-running (greedy) on unseen strings. The
attention model's alignment α is drawn: to reverse, output t looks at input n - t + 1.

    python examples/attention_reverse.py            # full run
    python examples/attention_reverse.py --quick    # the tests' version

Quality (full run, seed 0: 10 digits, 1,500 Adam updates each): attention 99.6% of digits
and 99.0% of whole strings right, the plain encoder-decoder 89.8% and 59.0% (chance: 10% of
the digits); the alignment sits on the anti-diagonal.
"""
import argparse
from pathlib import Path

import numpy as np

import unroll as ur

DIGITS = 10


def data(n: int, length: int, rng) -> tuple:
    seq = rng.integers(0, DIGITS, size=(length, n))
    return np.eye(DIGITS)[seq], seq[::-1].copy()          # x (T, n, 10), y (T, n)


def train_and_test(kind: str, length: int, H: int, updates: int, seed: int, progress: bool):
    if kind == "attention":
        train_model = ur.models.attention_seq2seq(DIGITS, H, DIGITS, input_steps=length)
        test_model = ur.models.attention_seq2seq(DIGITS, H, DIGITS, input_steps=length,
                                                 mode="greedy")
    else:
        train_model = ur.models.encoder_decoder(DIGITS, 2 * H, DIGITS, mode="train")
        test_model = ur.models.encoder_decoder(DIGITS, 2 * H, DIGITS, mode="greedy")
    g = train_model.unroll(length, length)
    params = train_model.init_params(seed=seed)
    rng = np.random.default_rng(seed)

    def batches(epoch):
        x, y = data(64, length, rng)
        yield {"x": x, "y": y}

    hist = ur.training.train(g, params, batches, ur.optim.Adam(params, lr=3e-3),
                             epochs=updates, clip_norm=5.0, progress=progress, desc=kind)
    x, y = data(500, length, np.random.default_rng(seed + 1))
    out = test_model.unroll(length, length).run(params, x=x, y=y)
    pred = out["o"].argmax(-1)
    return {"digits": float((pred == y).mean()), "sequences": float((pred == y).all(0).mean()),
            "alpha": out.get("alpha"), "x": x, "pred": pred, "history": hist}


def main(quick: bool = False, seed: int = 0, progress: bool = True,
         out: str = "out/attention_reverse") -> dict:
    length, H, updates = (6, 16, 150) if quick else (10, 48, 1500)
    res = {k: train_and_test(k, length, H, updates, seed, progress)
           for k in ("encoder-decoder", "attention")}
    print(f"reversing {length} digits, {updates} updates each, greedy decoding of 500 unseen "
          "strings:")
    for k, r in res.items():
        print(f"  {k:16} {r['digits']:6.1%} of digits, {r['sequences']:6.1%} of strings right")
    a = res["attention"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = list(a["x"][:, 0].argmax(-1))
    ur.diagnostics.alignment(a["alpha"][:, 0], out / "alignment.png", inputs=src,
                             outputs=list(a["pred"][:, 0]))
    focus = a["alpha"].mean(axis=1).argmax(-1)              # where each output step looks
    return {"encoder-decoder": res["encoder-decoder"]["digits"],
            "attention": a["digits"], "attention_sequences": a["sequences"],
            "anti_diagonal": float((focus == np.arange(length)[::-1]).mean())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/attention_reverse")
    main(**vars(ap.parse_args()))
