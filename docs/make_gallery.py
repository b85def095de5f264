"""Regenerate docs/gallery/ (SVG and PNG) and docs/gallery.md: the figures of Goodfellow et al.,
*Deep Learning*, chapter 10, each drawn by unroll from a short declaration.

    python docs/make_gallery.py            # or: make gallery

Each figure below is one function; its source is what docs/gallery.md shows beside the
pictures, so the page cannot drift from the code that drew them.
"""
from __future__ import annotations

import inspect
import sys
import textwrap
from pathlib import Path

import numpy as np

import unroll as ur
from unroll.models import textbook as tb

HERE = Path(__file__).resolve().parent
OUT = HERE / "gallery"
D, H, K = 3, 4, 2          # sizes do not show in the pictures


def fig10_1():
    """A classical dynamical system s(t) = f(s(t-1); θ), unfolded (eq. 10.1)."""
    c = ur.Circuit("dynamical_system")
    s = c.state("s", (H,))
    s.next = ur.tanh(c.param("θ", (H, H)) @ s.prev)
    return {"unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_2():
    """A recurrent network with no outputs: h(t) = f(h(t-1), x(t); θ) (eq. 10.5)."""
    c = ur.Circuit("no_outputs")
    x = c.input("x", (D,))
    h = c.state("h", (H,))
    h.next = ur.tanh(c.param("W", (H, H)) @ h.prev + c.param("U", (H, D)) @ x)
    return {"circuit": c.to_dot(), "unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_3():
    """Hidden-to-hidden recurrence with an output and a loss at every step (eq. 10.8-10.11)."""
    c = tb.elman(D, H, K)                  # ur.models.textbook.elman
    return {"circuit": c.to_dot(), "unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_4():
    """Output-to-hidden recurrence only: h(t) sees the past only through o(t-1)."""
    c = tb.jordan(D, H, K)
    return {"circuit": c.to_dot(), "unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_5():
    """A single output at the end of the sequence (many to one): sequence classification."""
    c = tb.many_to_one(D, H, K)
    return {"unfolded": c.unroll(steps=12).to_dot(max_steps=5, keep=2)}


def fig10_6():
    """Teacher forcing: at train time the correct y(t-1) feeds h(t); at test time, the
    model's own output o(t-1) does. One argument switches the circuit."""
    train = tb.teacher_forcing(D, H, K, mode="train")
    test = tb.teacher_forcing(D, H, K, mode="free")
    return {"train": train.unroll(steps=2).to_dot(title="Train time"),
            "test": test.unroll(steps=2).to_dot(title="Test time")}


def fig10_9():
    """One fixed vector x conditions every step (e.g. an image for its caption); each y(t) is
    the target at t and an input at t+1."""
    c = tb.conditioned(D, H, K, feed_previous=True)
    return {"unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_10():
    """A conditional RNN: the input sequence x(t) and the previous target y(t-1) feed h(t)."""
    c = tb.conditioned(D, H, K, feed_previous=True, sequence=True)
    return {"unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_11():
    """A bidirectional RNN: h runs forward in time, g backward; o(t) sees the whole input."""
    c = tb.bidirectional(D, H, K)
    return {"unfolded": c.unroll(steps=3).to_dot(relative=True)}


def fig10_12():
    """Encoder-decoder (sequence to sequence): the encoder's last state is the context C
    that conditions every step of a decoder writing an output of another length."""
    model = tb.encoder_decoder(D, H, K)
    return {"unfolded": model.unroll(input_steps=3, output_steps=4).to_dot()}


def lstm_cell_circuit(show_gates=True):
    """The LSTM cell in the book's notation (eq. 10.40-10.44): forget gate f, input gate g,
    output gate q, cell state s with its self-loop."""
    c = ur.Circuit("lstm_cell")
    x = c.input("x", (D,))
    h, s = c.state("h", (H,)), c.state("s", (H,))

    def gate(n):                                     # σ(b + U x(t) + W h(t-1))
        return ur.sigmoid(c.param(f"b_{n}", (H,)) + c.param(f"U_{n}", (H, D)) @ x
                          + c.param(f"W_{n}", (H, H)) @ h.prev)

    f = gate("f").named("f", show=show_gates)              # forget gate
    g = gate("g").named("g", show=show_gates)              # (external) input gate
    q = gate("q").named("q", show=show_gates)              # output gate
    i = gate("i").named("i", show=show_gates)              # the input itself
    s.next = f * s.prev + g * i
    h.next = ur.tanh(s) * q
    return c


def fig10_16():
    """LSTM cell (fig. 10.16): the gates are named values drawn with show=True, so they are
    part of the textbook view; detail="ops" shows every primitive."""
    c = lstm_cell_circuit()
    return {"cell": c.to_dot(params="none"), "ops": c.to_dot(detail="ops")}


def gru_cell():
    """GRU (eq. 10.45-10.46): update gate u, reset gate r."""
    c = ur.Circuit("gru_cell")
    x = c.input("x", (D,))
    h = c.state("h", (H,))

    def affine(n, hh):
        return (c.param(f"b_{n}", (H,)) + c.param(f"U_{n}", (H, D)) @ x
                + c.param(f"W_{n}", (H, H)) @ hh)

    u = ur.sigmoid(affine("u", h.prev)).named("u", show=True)     # update gate
    r = ur.sigmoid(affine("r", h.prev)).named("r", show=True)     # reset gate
    n = ur.tanh(affine("n", r * h.prev)).named("n", show=True)    # the candidate
    h.next = u * h.prev + (1.0 - u) * n
    return {"cell": c.to_dot(params="none")}


def stacked():
    """A deep RNN: two recurrent layers, the first one's h feeding the second (fig. 10.13a)."""
    c = ur.Circuit("stacked")
    x = c.input("x", (D,))
    h1, h2 = c.state("h_1", (H,)), c.state("h_2", (H,))
    h1.next = ur.tanh(c.param("W_1", (H, H)) @ h1.prev + c.param("U_1", (H, D)) @ x)
    h2.next = ur.tanh(c.param("W_2", (H, H)) @ h2.prev + c.param("U_2", (H, H)) @ h1)
    o = c.output("o", c.param("V", (K, H)) @ h2)
    c.loss(ur.softmax_cross_entropy(o, c.input("y", (), dtype="int")))
    return {"circuit": c.to_dot(), "unfolded": c.unroll(steps=3).to_dot()}


def vanishing():
    """‖∂L/∂h(t)‖ with one loss at the last step: an RNN's gradient fades going back in time;
    an LSTM's cell state s carries it (forget gates near 1). Same colour scale for both."""
    T, rng = 16, np.random.default_rng(0)
    x = rng.normal(size=(T, 8, D))
    rnn = ur.Circuit("rnn")
    xr = rnn.input("x", (D,))
    h = rnn.state("h", (H,))
    h.next = ur.tanh(rnn.param("W", (H, H)) @ h.prev + rnn.param("U", (H, D)) @ xr)
    rnn.loss(ur.sum(h * h), at="last")
    lstm = lstm_cell_circuit(show_gates=False)
    lstm.loss(ur.sum(lstm["h"] * lstm["h"]), at="last")
    pr, pl = rnn.init_params(seed=0), lstm.init_params(seed=0)
    pl["b_f"] = pl["b_f"] + 3.0                    # forget gates open: f ≈ σ(3) ≈ 0.95
    gr, gl = rnn.unroll(steps=T), lstm.unroll(steps=T)
    nr = ur.diagnostics.gradient_norms(gr, pr, x=x)
    nl = ur.diagnostics.gradient_norms(gl, pl, x=x, states="s")
    span = (min(nr["h"].min(), nl["s"].min()), max(nr["h"].max(), nl["s"].max()))
    opts = dict(heat_range=span, max_steps=T, params="none")
    return {"rnn": gr.to_dot(heat=nr, title="RNN: h", **opts),
            "lstm": gl.to_dot(heat=nl, title="LSTM: cell state s", **opts)}


def bptt():
    """The backward graph of BPTT (eq. 10.18-10.28): ∂L/∂h(t) gathers from o(t) and from
    h(t+1); truncated BPTT cuts the chain every k steps, and checkpointing stores only some
    states (double border), recomputing the rest."""
    g = tb.elman(D, H, K).unroll(steps=6)
    return {"backward": g.to_dot(mode="backward"),
            "overlay": g.to_dot(mode="overlay", truncate=3, checkpoints=[3, 6])}


FIGURES = [
    ("Figure 10.1: an unfolded dynamical system", fig10_1),
    ("Figure 10.2: a recurrent network with no outputs", fig10_2),
    ("Figure 10.3: the Elman network", fig10_3),
    ("Figure 10.4: output-to-hidden recurrence", fig10_4),
    ("Figure 10.5: one output at the end", fig10_5),
    ("Figure 10.6: teacher forcing", fig10_6),
    ("Figure 10.9: a fixed vector as input", fig10_9),
    ("Figure 10.10: conditioned on the previous output", fig10_10),
    ("Figure 10.11: bidirectional", fig10_11),
    ("Figure 10.12: encoder-decoder", fig10_12),
    ("Figure 10.16: the LSTM cell", fig10_16),
    ("The GRU cell", gru_cell),
    ("A two-layer (stacked) RNN", stacked),
    ("Vanishing gradients: RNN next to LSTM", vanishing),
    ("Back-propagation through time", bptt),
]


def main(out: Path = OUT) -> list:
    out.mkdir(parents=True, exist_ok=True)
    page = ["# Gallery", "",
            "The figures of Goodfellow, Bengio & Courville, *Deep Learning*, chapter 10, drawn "
            "by unroll. Each comes from the declaration beside it (the source of "
            "`docs/make_gallery.py`); `make gallery` redraws them all, with no system "
            "Graphviz needed. SVG files sit next to each PNG. Every function returns what "
            "`to_dot` returns: a `graphviz.Digraph` that also draws itself, so "
            "`fig10_3()['circuit'].render('fig.png', dpi=300)` writes a picture and a "
            "Jupyter cell ending in it shows one, without a system Graphviz.", "",
            "The declarations share these lines (each block below goes on from them, and "
            "ends by calling its function, as the tests run them):", "",
            "```python", "import numpy as np", "import unroll as ur",
            "from unroll.models import textbook as tb", "",
            "D, H, K = 3, 4, 2          # sizes do not show in the pictures", "```", ""]
    written = []
    for title, fn in FIGURES:
        pictures = fn()
        page += [f"## {title}", "", textwrap.dedent(fn.__doc__ or "").strip(), ""]
        src = inspect.getsource(fn)
        if fn is fig10_16:
            src = inspect.getsource(lstm_cell_circuit) + "\n\n" + src
        page += ["```python", "# (continued from the block above)", src.rstrip(), "",
                 f"pictures = {fn.__name__}()", "```", ""]
        for key, dot in pictures.items():
            stem = f"{fn.__name__}_{key}"
            for ext in ("svg", "png"):
                path = out / f"{stem}.{ext}"
                ur.render.render(dot, path)
                written.append(path)
            page += [f"![{title}: {key}](gallery/{stem}.png)", ""]
    (out.parent / "gallery.md").write_text("\n".join(page))
    return written


if __name__ == "__main__":
    paths = main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"wrote {len(paths)} pictures to {paths[0].parent} and docs/gallery.md")
