"""The recurrent architectures of Goodfellow, Bengio & Courville, *Deep Learning*, chapter 10,
as circuits, with the book's names (U input-to-hidden, W recurrent, V hidden-to-output, b and
c biases).

Every function returns an ordinary :class:`~unroll.Circuit` (the encoder-decoder returns an
:class:`EncoderDecoder`, whose ``unroll`` gives one Graph), built only with the public API.
``loss`` is "cross_entropy" (targets y(t) are integer classes), "mse" (float targets of the
output's size) or None (no loss: add your own through ``c["o"]``).
"""
from __future__ import annotations

import functools
import inspect
import numbers

import unroll as ur
from unroll.compose import chain
from unroll.errors import _argument_error

from .cells import size

__all__ = ["elman", "jordan", "many_to_one", "teacher_forcing", "conditioned", "bidirectional",
           "encoder_decoder", "EncoderDecoder"]

_ACT = {"tanh": ur.tanh, "relu": ur.relu}


def _sized(fn):
    """``fn`` with its three leading sizes checked (integers >= 1) before it builds anything,
    so that a bad one is named as the argument the user passed, not as a parameter's shape."""
    sig = inspect.signature(fn)
    names = list(sig.parameters)[:3]

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise _argument_error(fn, e, kwargs) from None
        for n in names:
            if n in bound.arguments:
                size(bound.arguments[n], f"{fn.__name__}: {n}")
        return fn(*args, **kwargs)
    return checked


def _act(nonlinearity: str):
    if not isinstance(nonlinearity, str) or nonlinearity not in _ACT:
        raise ur.CircuitError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
    return _ACT[nonlinearity]


def _target(c, loss: str | None, K: int, name: str = "y", per_step: bool = True):
    if loss == "cross_entropy":
        return c.input(name, (), dtype="int", per_step=per_step)
    if loss == "mse":
        return c.input(name, (K,), per_step=per_step)
    if loss is None:
        return None
    raise ur.CircuitError(f"loss must be 'cross_entropy', 'mse' or None, not {loss!r}")


def _weights(c, input_size: int, hidden_size: int, output_size: int, recurrent_from: int):
    """The book's U (input to hidden), W (into the hidden layer from a vector of size
    ``recurrent_from``: h(t-1) in fig. 10.3, o(t-1) in fig. 10.4), V (hidden to output) and
    the biases b, c, declared in that order."""
    U = c.param("U", (hidden_size, input_size))
    W = c.param("W", (hidden_size, recurrent_from))
    V = c.param("V", (output_size, hidden_size))
    return U, W, V, c.param("b", (hidden_size,)), c.param("c", (output_size,))


def _loss(c, o, y, loss: str | None, at=None) -> None:
    if loss == "cross_entropy":
        c.loss(ur.softmax_cross_entropy(o, y), at=at)
    elif loss == "mse":
        c.loss(ur.mse(o, y), at=at)


@_sized
def elman(input_size: int, hidden_size: int, output_size: int, nonlinearity: str = "tanh",
          loss: str | None = "cross_entropy", name: str = "elman") -> ur.Circuit:
    """Hidden-to-hidden recurrence with an output at every step (fig. 10.3, eq. 10.8-10.11)::

        a(t) = b + W h(t-1) + U x(t)      h(t) = tanh(a(t))   (or relu)
        o(t) = c + V h(t)                 L = Σ_t L(o(t), y(t))
    """
    c = ur.Circuit(name)
    x = c.input("x", (input_size,))
    y = _target(c, loss, output_size)
    U, W, V, b, cb = _weights(c, input_size, hidden_size, output_size, hidden_size)
    h = c.state("h", (hidden_size,))
    h.next = _act(nonlinearity)((b + W @ h.prev + U @ x).named("a"))
    o = c.output("o", cb + V @ h)
    _loss(c, o, y, loss)
    return c


@_sized
def jordan(input_size: int, hidden_size: int, output_size: int, nonlinearity: str = "tanh",
           loss: str | None = "cross_entropy", name: str = "jordan") -> ur.Circuit:
    """Output-to-hidden recurrence only (fig. 10.4): the previous output feeds the hidden
    layer, so h(t) knows the past only through o(t-1)::

        h(t) = tanh(b + W o(t-1) + U x(t))    o(t) = c + V h(t)
    """
    c = ur.Circuit(name)
    x = c.input("x", (input_size,))
    y = _target(c, loss, output_size)
    U, W, V, b, cb = _weights(c, input_size, hidden_size, output_size, output_size)
    o = c.state("o", (output_size,))
    h = _act(nonlinearity)(b + W @ o.prev + U @ x).named("h", show=True)
    o.next = cb + V @ h
    c.output("o")
    _loss(c, c["o"], y, loss)
    return c


@_sized
def many_to_one(input_size: int, hidden_size: int, output_size: int,
                nonlinearity: str = "tanh", loss: str | None = "cross_entropy",
                name: str = "many_to_one") -> ur.Circuit:
    """Read a whole sequence, produce one output at the end (fig. 10.5): sequence
    classification. ``o`` and the loss exist only at t = τ; the target ``y`` is a static input,
    one per sequence::

        h(t) = tanh(b + W h(t-1) + U x(t))    o(τ) = c + V h(τ)    L = L(o(τ), y)
    """
    c = ur.Circuit(name)
    x = c.input("x", (input_size,))
    y = _target(c, loss, output_size, per_step=False)
    U, W, V, b, cb = _weights(c, input_size, hidden_size, output_size, hidden_size)
    h = c.state("h", (hidden_size,))
    h.next = _act(nonlinearity)(b + W @ h.prev + U @ x)
    o = c.output("o", cb + V @ h, at="last")
    _loss(c, o, y, loss, at="last")
    return c


@_sized
def teacher_forcing(input_size: int, hidden_size: int, output_size: int, mode: str = "train",
                    loss: str = "cross_entropy", name: str | None = None) -> ur.Circuit:
    """Output recurrence trained with teacher forcing (fig. 10.6)::

        train: h(t) = tanh(b + W y(t-1) + U x(t))      the correct previous output
        free:  h(t) = tanh(b + W ŷ(t-1) + U x(t))      the model's own previous output
        o(t) = c + V h(t)

    The previous output is the state ``fb`` (zero at t = 1). With class targets, y(t-1)
    enters as a one-hot vector and ŷ(t-1) is softmax(o(t-1)) (``mode="free"``) or the one-hot
    of its argmax (``mode="greedy"``, no gradient: test-time decoding); with ``loss="mse"``
    they are y(t-1) and o(t-1). One argument switches the circuit; the parameters are the
    same.
    """
    if mode not in ("train", "free", "greedy"):
        raise ur.CircuitError(f"mode must be 'train', 'free' or 'greedy', not {mode!r}")
    c = ur.Circuit(name or f"teacher_forcing_{mode}")
    x = c.input("x", (input_size,))
    y = _target(c, loss, output_size)
    U, W, V, b, cb = _weights(c, input_size, hidden_size, output_size, output_size)
    fb = c.state("fb", (output_size,), show=False)
    h = ur.tanh(b + W @ fb.prev + U @ x).named("h", show=True)
    o = c.output("o", cb + V @ h)
    _loss(c, o, y, loss)
    fb.next = _feedback(o, y, mode, loss, output_size)
    return c


def _feedback(o, y, mode: str, loss: str, K: int):
    if mode == "train":
        return ur.one_hot(y, K) if loss == "cross_entropy" else y
    if loss != "cross_entropy":
        return o if mode == "free" else ur.stop_gradient(o)
    return ur.softmax(o) if mode == "free" else ur.hardmax(o)


@_sized
def conditioned(vector_size: int, hidden_size: int, output_size: int,
                feed_previous: bool = False, sequence: bool = False,
                loss: str = "cross_entropy", name: str | None = None) -> ur.Circuit:
    """An RNN conditioned on one fixed vector x that feeds every step, e.g. an image embedding
    for captioning; with ``feed_previous`` the previous target y(t-1) feeds h(t) as well, so
    each y(t) is both the target at t and an input at t+1 (fig. 10.9 draws exactly this).
    With ``sequence=True``, x is a sequence x(t) instead of one vector: the conditional RNN of
    fig. 10.10 (with ``feed_previous=True``)::

        h(t) = tanh(b + W h(t-1) + R x [+ U y(t-1)])    o(t) = c + V h(t)

    ``x`` is a static input (shape (B, vector_size) at run time) unless ``sequence``; y(t-1)
    is the state ``fb``.
    """
    feed_previous = ur.errors.flag(feed_previous, "conditioned: feed_previous",
                                   err=ur.CircuitError)
    sequence = ur.errors.flag(sequence, "conditioned: sequence", err=ur.CircuitError)
    c = ur.Circuit(name or ("conditioned_y" if feed_previous else "conditioned"))
    xv = c.input("x", (vector_size,), per_step=sequence)
    y = _target(c, loss, output_size)
    R, W = c.param("R", (hidden_size, vector_size)), c.param("W", (hidden_size, hidden_size))
    V = c.param("V", (output_size, hidden_size))
    b, cb = c.param("b", (hidden_size,)), c.param("c", (output_size,))
    h = c.state("h", (hidden_size,))
    a = b + W @ h.prev + R @ xv
    if feed_previous:
        fb = c.state("fb", (output_size,), show=False)
        fb.next = _feedback(None, y, "train", loss, output_size)
        a = a + c.param("U", (hidden_size, output_size)) @ fb.prev
    h.next = ur.tanh(a)
    o = c.output("o", cb + V @ h)
    _loss(c, o, y, loss)
    return c


@_sized
def bidirectional(input_size: int, hidden_size: int, output_size: int,
                  loss: str | None = "cross_entropy", name: str = "bidirectional") -> ur.Circuit:
    """A forward chain h and a backward chain g, both feeding o(t) (fig. 10.11), so the output
    at t sees the whole sequence::

        h(t) = tanh(b + W h(t-1) + U x(t))        (t = 1 .. τ)
        g(t) = tanh(b_g + W_g g(t+1) + U_g x(t))  (t = τ .. 1)
        o(t) = c + V h(t) + V_g g(t)
    """
    c = ur.Circuit(name)
    x = c.input("x", (input_size,))
    y = _target(c, loss, output_size)
    h = c.state("h", (hidden_size,))
    g = c.state("g", (hidden_size,), direction="backward")
    H, D, K = hidden_size, input_size, output_size
    h.next = ur.tanh(c.param("b", (H,)) + c.param("W", (H, H)) @ h.prev
                     + c.param("U", (H, D)) @ x)
    g.next = ur.tanh(c.param("b_g", (H,)) + c.param("W_g", (H, H)) @ g.prev
                     + c.param("U_g", (H, D)) @ x)
    o = c.output("o", c.param("c", (K,)) + c.param("V", (K, H)) @ h
                 + c.param("V_g", (K, H)) @ g)
    _loss(c, o, y, loss)
    return c


class EncoderDecoder:
    """Sequence to sequence with different lengths (fig. 10.12): an encoder reads x(1..n_x)
    into its last state, the context C, which conditions a decoder writing y(1..n_y).

    ``encoder`` and ``decoder`` are circuits; :meth:`unroll` joins them into one Graph.
    """

    def __init__(self, encoder: ur.Circuit, decoder: ur.Circuit, context: str = "h"):
        self.encoder, self.decoder, self.context = encoder, decoder, context
        self.name = f"{encoder.name}_{decoder.name}"

    def unroll(self, input_steps: int, output_steps: int) -> ur.Graph:
        """The joined graph: encoder over ``input_steps``, decoder over ``output_steps``."""
        enc = self.encoder.unroll(steps=input_steps)
        dec = self.decoder.unroll(steps=output_steps)
        return chain(enc, dec, {"C": enc.states[self.context][input_steps]}, name=self.name)

    def init_params(self, seed: int = 0, dtype="float64") -> dict:
        return {**self.encoder.init_params(seed, dtype), **self.decoder.init_params(seed, dtype)}

    def __repr__(self) -> str:
        return f"<EncoderDecoder {self.encoder!r} -> {self.decoder!r}>"


@_sized
def encoder_decoder(input_size: int, hidden_size: int, output_size: int, mode: str = "train",
                    context_size: int | None = None, name: str = "seq2seq") -> EncoderDecoder:
    """Encoder-decoder (fig. 10.12) for class sequences::

        encoder:  h(t) = tanh(b_e + W_e h(t-1) + U_e x(t)),       C = h(n_x)
        decoder:  s(t) = tanh(b_d + W_d s(t-1) + R C + U_d y(t-1)),  o(t) = c + V s(t)

    The decoder is teacher-forced in ``mode="train"`` (y(t-1) is the correct previous class)
    and free-running at test time (``"greedy"``: the one-hot of its own previous argmax, or
    ``"free"``: its softmax).
    """
    if mode not in ("train", "free", "greedy"):
        raise ur.CircuitError(f"mode must be 'train', 'free' or 'greedy', not {mode!r}")
    if context_size is not None and (isinstance(context_size, bool) or
                                     not isinstance(context_size, numbers.Integral) or context_size < 1):
        raise ur.ShapeError(f"context_size must be an integer >= 1 (or None for the hidden "
                            f"size), not {context_size!r}")
    H, K = hidden_size, output_size
    C = hidden_size if context_size is None else context_size
    if not isinstance(name, str) or not name:
        raise ur.CircuitError(f"encoder_decoder: name must be a non-empty str (the circuits "
                              f"are named name_encoder and name_decoder), not {name!r}")
    enc = ur.Circuit(f"{name}_encoder")
    x = enc.input("x", (input_size,))
    he = enc.state("h", (C,))
    he.next = ur.tanh(enc.param("b_e", (C,)) + enc.param("W_e", (C, C)) @ he.prev
                      + enc.param("U_e", (C, input_size)) @ x)
    dec = ur.Circuit(f"{name}_decoder")
    ctx = dec.input("C", (C,), per_step=False)
    y = dec.input("y", (), dtype="int")
    s = dec.state("s", (H,))
    fb = dec.state("fb", (K,), show=False)
    s.next = ur.tanh(dec.param("b_d", (H,)) + dec.param("W_d", (H, H)) @ s.prev
                     + dec.param("R", (H, C)) @ ctx + dec.param("U_d", (H, K)) @ fb.prev)
    o = dec.output("o", dec.param("c", (K,)) + dec.param("V", (K, H)) @ s)
    dec.loss(ur.softmax_cross_entropy(o, y))
    fb.next = _feedback(o, y, mode, "cross_entropy", K)
    return EncoderDecoder(enc, dec)
