"""A character-level language model on real English: the docstrings of Python's standard library.

The text is on every Python install (about 320,000 characters of the docstrings of 50-odd
standard modules, collected with ``inspect.getdoc``); every 10th docstring is held out for
validation. An LSTM (PyTorch layout, ``ur.models.lstm``) with a softmax readout is trained by
truncated BPTT: 32 parallel streams through the text, 50 steps a window, the state carried from
window to window (``ur.training.TruncatedBPTT``), Adam with gradient-norm clipping. Then it
writes some text of its own.

Quality (full run, seed 0, H = 128, 15 epochs, about 3 minutes on 2 cores): validation
2.32 bits per character on the held-out docstrings (a unigram model of the same text needs
4.79; the untrained model 6.62; training text 1.89), with samples that spell common words and
docstring phrases ("the optional code", "the current line is"). See examples/README.md for the
figures of the last full run.

    python examples/char_rnn.py            # full run (a few minutes on 2 cores)
    python examples/char_rnn.py --quick    # the tests' version (seconds)
"""
import argparse
import importlib
import inspect
import math
import string
import warnings
from pathlib import Path

import numpy as np

import unroll as ur

MODULES = ["collections", "functools", "itertools", "json", "re", "os", "pathlib", "textwrap",
           "string", "random", "statistics", "fractions", "decimal", "heapq", "bisect",
           "argparse", "logging", "unittest", "email", "csv", "datetime", "calendar", "shutil",
           "tempfile", "subprocess", "threading", "queue", "contextlib", "typing",
           "dataclasses", "enum", "abc", "io", "pickle", "copy", "pprint", "difflib", "zipfile",
           "tarfile", "gzip", "hashlib", "hmac", "secrets", "socket", "select", "asyncio",
           "inspect", "ast", "dis", "tokenize", "trace", "timeit", "doctest"]
ALPHABET = string.printable[:-2]                # letters, digits, punctuation, ' ', \t, \n


def corpus() -> list:
    """The standard library's docstrings, deduplicated, in a fixed order."""
    parts, seen = [], set()
    with warnings.catch_warnings():              # typing.io and typing.re are deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in MODULES:
            mod = importlib.import_module(name)
            for obj in [mod] + [getattr(mod, n) for n in sorted(dir(mod))
                                if not n.startswith("_")]:
                if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj):
                    doc = inspect.getdoc(obj)
                    if doc and len(doc) > 40 and doc not in seen:
                        seen.add(doc)
                        parts.append(doc)
    return ["".join(ch if ch in ALPHABET else "?" for ch in p) + "\n\n" for p in parts]


def language_model(vocab: int, hidden: int) -> ur.Circuit:
    """LSTM over one-hot characters, then o(t) = W_out h(t) + b_out and cross-entropy."""
    c = ur.models.lstm(vocab, hidden, name="char_lstm")
    y = c.input("y", (), dtype="int")
    o = c.output("o", c.param("W_out", (vocab, hidden), init=ur.models.torch_init(hidden))
                 @ c["h"] + c.param("b_out", (vocab,)))
    c.loss(ur.softmax_cross_entropy(o, y))
    return c


def streams(ids: np.ndarray, B: int) -> np.ndarray:
    """Cut the text into B equal streams, side by side: shape (T, B)."""
    T = len(ids) // B
    return ids[:T * B].reshape(B, T).T


def bits_per_char(c, params, data: np.ndarray, V: int, window: int) -> float:
    """Mean cross-entropy in bits over ``data`` (T, B), state carried from window to window."""
    tb = ur.training.TruncatedBPTT(c, window)
    total, n = 0.0, 0
    eye = np.eye(V)
    graphs: dict = {}
    for s in range(0, data.shape[0] - 1, window):
        e = min(s + window, data.shape[0] - 1)
        g = graphs.get(e - s) or graphs.setdefault(e - s, c.unroll(e - s))
        feed = {"x": eye[data[s:e]], "y": data[s + 1:e + 1]}
        if tb.state is not None:
            feed.update(tb.state)
        out = g.run(params, return_state=True, **feed)
        tb.state = {c.states[k].init_name: v for k, v in out["state"].items()}
        total += float(out["loss"]) * data.shape[1]      # mean over B of the window's sum
        n += (e - s) * data.shape[1]
    return total / n / math.log(2)


def main(quick: bool = False, seed: int = 0, progress: bool = True, out: str = "out/char_rnn",
         epochs: int | None = None, hidden: int | None = None) -> dict:
    parts = corpus()
    if quick:
        parts = parts[:60]
    train_text = "".join(p for i, p in enumerate(parts) if i % 10 != 9)
    valid_text = "".join(p for i, p in enumerate(parts) if i % 10 == 9)   # every 10th held out
    V = len(ALPHABET)
    train_ids = np.array([ALPHABET.index(ch) for ch in train_text])
    valid_ids = np.array([ALPHABET.index(ch) for ch in valid_text])
    B, window = (8, 25) if quick else (32, 50)
    train, valid = streams(train_ids, B), streams(valid_ids, B)
    H = hidden or (32 if quick else 128)
    c = language_model(V, H)
    params = c.init_params(seed=seed)
    unigram = np.bincount(train_ids, minlength=V) / len(train_ids)
    unigram_bits = float(-(np.log2(unigram[valid_ids] + 1e-12)).mean())
    eye = np.eye(V)

    def batches(epoch):
        """Consecutive windows of the streams, in order: the carried state stays valid."""
        T = train.shape[0] - 1
        step = window * (4 if quick else 20)          # a TruncatedBPTT call per stretch
        for s in range(0, T - 1, step):
            e = min(s + step, T)
            yield {"x": eye[train[s:e]], "y": train[s + 1:e + 1]}

    tb = ur.training.TruncatedBPTT(c, window)
    opt = ur.optim.Adam(params, lr=5e-3)
    n_epochs = epochs or (1 if quick else 15)
    start_bits = bits_per_char(c, params, valid, V, window)

    def report(epoch, hist):
        if not quick and progress:
            print(f"  epoch {epoch}: train {hist.epochs[-1] / math.log(2) / window:.3f} bits/char")

    hist = ur.training.train(tb, params, batches, opt, epochs=n_epochs, clip_norm=5.0,
                             progress=progress, desc="char-rnn", callback=report)
    valid_bits = bits_per_char(c, params, valid, V, window)
    prime = [ALPHABET.index(ch) for ch in "Return the "]
    sample = ur.models.generate(c, params, prime, 40 if quick else 300, temperature=0.7,
                                seed=seed)
    text_out = "".join(ALPHABET[i] for i in sample)
    print(f"text: {len(train_text):,} characters to train on, {len(valid_text):,} held out "
          f"(every 10th docstring), {V} symbols; a unigram model needs {unigram_bits:.2f} "
          "bits/char")
    print(f"validation: {start_bits:.2f} bits/char at start, {valid_bits:.3f} after "
          f"{len(hist.losses)} updates ({hist.seconds:.0f} s)")
    print(f"sample (temperature 0.7):\n{text_out}")
    Path(out).mkdir(parents=True, exist_ok=True)
    hist.plot(Path(out) / "loss.png", title="char-rnn: training loss per window")
    return {"valid_bits": valid_bits, "start_bits": start_bits, "unigram_bits": unigram_bits,
            "sample": text_out, "history": hist}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--out", default="out/char_rnn", help="where the loss plot goes")
    main(**vars(ap.parse_args()))
