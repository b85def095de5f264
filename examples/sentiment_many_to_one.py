"""Sequence classification with a single output at the end (fig. 10.5): the sentiment of a
sentence.

A small synthetic language: sentences of 10 words drawn from positive words ("good", "great",
"love", ...), negative ones ("bad", "awful", "hate", ...), neutral filler ("the", "movie",
"was", ...) and the negation "not", which flips the word after it. The label is the sign of the
sentence's total sentiment (ties are not generated). The model reads the whole sentence, word by
word (one-hot), and only its last state is classified: ``ur.models.many_to_one``, the book's
network with o and L at t = τ only.

Order matters ("not good" vs "good"), so a bag of words cannot solve it; the recurrent state
has to carry the running sentiment and whether the previous word was "not".

Quality (full run, seed 0): 98-99% accuracy on 2,000 held-out sentences (a bag-of-words
majority vote that ignores negation gets about 81%; the last full run's figures are in
examples/README.md).

    python examples/sentiment_many_to_one.py            # full run
    python examples/sentiment_many_to_one.py --quick    # the tests' version
"""
import argparse

import numpy as np

import unroll as ur

POSITIVE = ["good", "great", "love", "fun", "superb", "enjoyed"]
NEGATIVE = ["bad", "awful", "hate", "boring", "poor", "dull"]
NEUTRAL = ["the", "movie", "was", "plot", "actors", "and", "it", "a"]
WORDS = POSITIVE + NEGATIVE + NEUTRAL + ["not"]
LENGTH = 10


def sentence(rng) -> tuple:
    """(word ids, label); label 1 positive, 0 negative."""
    while True:
        words, score, flip = [], 0, False
        for _ in range(LENGTH):
            r = rng.random()
            if r < 0.3:
                w = rng.choice(POSITIVE)
            elif r < 0.6:
                w = rng.choice(NEGATIVE)
            elif r < 0.75 and not flip:
                w = "not"
            else:
                w = rng.choice(NEUTRAL)
            if w in POSITIVE or w in NEGATIVE:
                v = 1 if w in POSITIVE else -1
                score += -v if flip else v
            flip = w == "not"
            words.append(WORDS.index(w))
        if score != 0:
            return words, int(score > 0)


def dataset(n: int, rng) -> tuple:
    pairs = [sentence(rng) for _ in range(n)]
    x = np.eye(len(WORDS))[np.array([p[0] for p in pairs]).T]     # (T, N, V)
    return x, np.array([p[1] for p in pairs])


def bag_of_words(x: np.ndarray) -> np.ndarray:
    """Count positive minus negative words, ignoring "not"."""
    ids = x.argmax(-1)
    score = np.isin(ids, range(len(POSITIVE))).sum(0) - \
        np.isin(ids, range(len(POSITIVE), len(POSITIVE) + len(NEGATIVE))).sum(0)
    return (score > 0).astype(int)


def main(quick: bool = False, seed: int = 0, progress: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    x_train, y_train = dataset(500 if quick else 8000, rng)
    x_test, y_test = dataset(300 if quick else 2000, rng)
    c = ur.models.many_to_one(len(WORDS), 32, 2)          # fig. 10.5
    g = c.unroll(steps=LENGTH)
    params = c.init_params(seed=seed)

    def batches(epoch):
        order = np.random.default_rng(seed + epoch).permutation(len(y_train))
        for s in range(0, len(order), 64):
            i = order[s:s + 64]
            yield {"x": x_train[:, i], "y": y_train[i]}

    hist = ur.training.train(g, params, batches, ur.optim.Adam(params, lr=3e-3),
                             epochs=3 if quick else 30, clip_norm=5.0, progress=progress,
                             desc="sentiment", target_loss=None if quick else 0.01)
    logits = g.run(params, x=x_test, y=y_test)["o"]                # (N, 2): o at τ only
    accuracy = float((logits.argmax(-1) == y_test).mean())
    baseline = float((bag_of_words(x_test) == y_test).mean())
    print(f"test accuracy {accuracy:.1%} on {len(y_test)} sentences after "
          f"{len(hist.losses)} updates; bag of words without negation: {baseline:.1%}")
    demo = ["the", "movie", "was", "not", "good", "and", "it", "was", "a", "bore"]
    demo = [w if w in WORDS else "dull" for w in demo]
    p = g.run(params, x=np.eye(len(WORDS))[[WORDS.index(w) for w in demo]],
              y=np.array(0))["o"]
    print(f"'{' '.join(demo)}' -> {'positive' if p.argmax() else 'negative'}")
    return {"accuracy": accuracy, "baseline": baseline, "history": hist}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    main(**vars(ap.parse_args()))
