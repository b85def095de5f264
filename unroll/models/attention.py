"""Attention over the encoder (Bahdanau, Cho & Bengio, 2015): the step after fig. 10.12.

The encoder is bidirectional. Its annotation of step j is a(j) = [f(j); b(j)], the forward and
backward states side by side. The decoder reads all of them, stacked as a static value E of
shape (n_x, 2H), at every one of its steps::

    encoder:   f(j) = tanh(W_f f(j-1) + U_f x(j))       b(j) = tanh(W_b b(j+1) + U_b x(j))
    scores:    e(t)_j = v · tanh(U_a a(j) + W_a s(t-1))        (additive)
               e(t)_j = a(j) · (W_a s(t-1))                     (dot-product, ``attention="dot"``)
    weights:   α(t) = softmax(e(t))        context c(t) = Σ_j α(t)_j a(j) = α(t) E
    decoder:   s(t) = tanh(W_d s(t-1) + U_d y(t-1) + C_d c(t) + b_d)    o(t) = V s(t) + c

The decoder is teacher-forced in ``mode="train"``: y(t-1) is the correct previous class. In
``"greedy"`` mode it is the one-hot of the decoder's own previous argmax. The weights α(t)
are an output, so ``run(...)["alpha"]`` is the alignment matrix: decoder step × encoder step.
"""
from __future__ import annotations

import unroll as ur
from unroll.compose import chain

from .textbook import _feedback, _sized

__all__ = ["attention_seq2seq", "AttentionSeq2Seq"]


class AttentionSeq2Seq:
    """An encoder and an attention decoder; :meth:`unroll` joins them into one Graph in
    which the decoder's static input ``E`` is every encoder annotation, stacked."""

    def __init__(self, encoder: ur.Circuit, decoder: ur.Circuit):
        self.encoder, self.decoder = encoder, decoder
        self.name = f"{encoder.name}_{decoder.name}"

    def unroll(self, input_steps: int, output_steps: int) -> ur.Graph:
        """The joined graph: the encoder over ``input_steps`` (n_x, which the decoder's
        ``E`` was declared for), the decoder over ``output_steps``."""
        n_x = self.decoder.statics["E"].aval.shape[0]
        input_steps = ur.errors.integer(input_steps, "unroll: input_steps", 1)
        if input_steps != n_x:
            raise ur.CircuitError(f"{self.name} attends over n_x = {n_x} encoder steps (its "
                                  f"E is ({n_x}, ...)); unroll with input_steps={n_x}, or "
                                  f"build the model with input_steps={input_steps}")
        enc = self.encoder.unroll(steps=input_steps)
        dec = self.decoder.unroll(steps=output_steps)
        rows = [enc.outputs["a"][t] for t in range(1, input_steps + 1)]
        return chain(enc, dec, {"E": rows}, name=self.name)

    def init_params(self, seed: int = 0, dtype="float64") -> dict:
        return {**self.encoder.init_params(seed, dtype), **self.decoder.init_params(seed, dtype)}

    def __repr__(self) -> str:
        return f"<AttentionSeq2Seq {self.encoder!r} -> {self.decoder!r}>"


@_sized
def attention_seq2seq(input_size: int, hidden_size: int, output_size: int,
                      input_steps: int = 5, attention: str = "additive",
                      mode: str = "train", name: str = "attn") -> AttentionSeq2Seq:
    """A bidirectional encoder and a decoder that attends over its annotations (see the
    module docstring for the equations).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D (the encoder's input), H (each direction's state, and the decoder's), K (classes).
    input_steps : int
        n_x, the length of the input sequences (the decoder's E is (n_x, 2H)).
    attention : "additive" or "dot"
    mode : "train" or "greedy"
    name : str

    Returns
    -------
    AttentionSeq2Seq

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> m = ur.models.attention_seq2seq(4, 6, 4, input_steps=5)
    >>> g = m.unroll(5, 5)
    >>> out = g.run(m.init_params(), x=np.eye(4)[[0, 1, 2, 3, 0]], y=np.array([0, 3, 2, 1, 0]))
    >>> out["alpha"].shape, bool(np.allclose(out["alpha"].sum(-1), 1))
    ((5, 5), True)
    """
    if attention not in ("additive", "dot"):
        raise ur.CircuitError(f"attention must be 'additive' or 'dot', not {attention!r}")
    if mode not in ("train", "greedy"):
        raise ur.CircuitError(f"mode must be 'train' or 'greedy', not {mode!r}")
    n_x = ur.errors.integer(input_steps, "attention_seq2seq: input_steps", 1,
                            err=ur.CircuitError)
    if not isinstance(name, str) or not name:
        raise ur.CircuitError(f"attention_seq2seq: name must be a non-empty str, not {name!r}")
    D, H, K = input_size, hidden_size, output_size
    enc = ur.Circuit(f"{name}_encoder")
    x = enc.input("x", (D,))
    f = enc.state("f", (H,))
    b = enc.state("b", (H,), direction="backward")
    f.next = ur.tanh(enc.param("W_f", (H, H)) @ f.prev + enc.param("U_f", (H, D)) @ x)
    b.next = ur.tanh(enc.param("W_b", (H, H)) @ b.prev + enc.param("U_b", (H, D)) @ x)
    enc.output("a", ur.concat([f, b]))

    dec = ur.Circuit(f"{name}_decoder")
    E = dec.input("E", (n_x, 2 * H), per_step=False)
    y = dec.input("y", (), dtype="int")
    s = dec.state("s", (H,))
    fb = dec.state("fb", (K,), show=False)
    if attention == "additive":
        e = ur.tanh(E @ dec.param("U_a", (H, 2 * H)).T + dec.param("W_a", (H, H)) @ s.prev) \
            @ dec.param("v_a", (H,))
    else:
        e = E @ (dec.param("W_a", (2 * H, H)) @ s.prev)
    alpha = dec.output("alpha", ur.softmax(e))
    context = alpha @ E
    s.next = ur.tanh(dec.param("W_d", (H, H)) @ s.prev + dec.param("U_d", (H, K)) @ fb.prev
                     + dec.param("C_d", (H, 2 * H)) @ context + dec.param("b_d", (H,)))
    o = dec.output("o", dec.param("V", (K, H)) @ s + dec.param("c", (K,)))
    dec.loss(ur.softmax_cross_entropy(o, y))
    fb.next = _feedback(o, y, mode, "cross_entropy", K)
    return AttentionSeq2Seq(enc, dec)
