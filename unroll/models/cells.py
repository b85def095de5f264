"""Recurrent cells: each adds one layer (its states, parameters and update) to a circuit.

Built only with the public circuit API. Weights act on column vectors as in the textbook
(``W_ih @ x``), which is PyTorch's layout: ``weight_ih`` has shape (gates·H, D) with the gate
blocks in PyTorch's order. ``names`` maps each role (``"W_ih"``, ``"W_hh"``, ``"b_ih"``,
``"b_hh"``, and for LSTM variants ``"p_i"``, ``"p_f"``, ``"p_o"``, ``"R"``) to a parameter name.
"""
from __future__ import annotations

import math

import unroll as ur
from unroll.errors import flag, integer

__all__ = ["rnn_cell", "lstm_cell", "gru_cell", "LSTM_VARIANTS", "torch_init"]

_ACT = {"tanh": ur.tanh, "relu": ur.relu, "sigmoid": ur.sigmoid}


def size(value, what: str) -> int:
    """A layer's size: an integer >= 1 (a CircuitError naming ``what`` otherwise)."""
    return integer(value, what, 1, err=ur.CircuitError)


def torch_init(hidden_size: int):
    """PyTorch's initialisation of recurrent layers: every weight and bias U(±1/√H)."""
    k = 1.0 / math.sqrt(size(hidden_size, "torch_init: hidden_size"))
    return lambda rng, shape: rng.uniform(-k, k, size=shape)


def _cell_args(c, x, names, what: str, roles: tuple) -> None:
    """The circuit, its input value and the parameter names of a cell, checked."""
    if not isinstance(c, ur.Circuit):
        raise ur.CircuitError(f"{what}: c must be the Circuit to add the layer to, not "
                              f"{type(c).__name__} {c!r:.40}")
    if not isinstance(x, ur.Var) or x.builder is not c or len(x.shape) != 1:
        raise ur.CircuitError(f"{what}: x must be a vector value of circuit {c.name} (its "
                              f"input, or the layer below), not {x!r:.60}")
    missing = [r for r in roles if not isinstance(names, dict) or r not in names]
    if missing:
        raise ur.CircuitError(f"{what}: names must map every role to a parameter name; "
                              f"{', '.join(missing)} missing (torch_names(layer) gives them "
                              "all)")


def _affine(c, x, H: int, G: int, names: dict, bias: bool, state, init):
    """W_ih x + b_ih and W_hh h(t-1) + b_hh, each (G·H,)."""
    D = x.shape[0]
    gi = c.param(names["W_ih"], (G * H, D), init=init) @ x
    gh = c.param(names["W_hh"], (G * H, H), init=init) @ state.prev
    if bias:
        gi = gi + c.param(names["b_ih"], (G * H,), init=init)
        if names.get("b_hh"):
            gh = gh + c.param(names["b_hh"], (G * H,), init=init)
    return gi, gh


def rnn_cell(c, x, hidden_size: int, *, names: dict, nonlinearity: str = "tanh",
             bias: bool = True, direction: str = "forward", state: str = "h",
             init="zeros", init_name: str | None = None, weight_init=None):
    """Elman layer: h(t) = act(W_ih x(t) + b_ih + W_hh h(t∓1) + b_hh). Returns the state.
    ``weight_init`` defaults to PyTorch's U(±1/√H)."""
    if not isinstance(nonlinearity, str) or nonlinearity not in _ACT:
        raise ur.CircuitError(f"nonlinearity must be one of {', '.join(_ACT)}, not "
                              f"{nonlinearity!r}")
    hidden_size = size(hidden_size, "rnn_cell: hidden_size")
    bias = flag(bias, "rnn_cell: bias", err=ur.CircuitError)
    _cell_args(c, x, names, "rnn_cell", ("W_ih", "W_hh") + (("b_ih",) if bias else ()))
    h = c.state(state, (hidden_size,), init=init, direction=direction, init_name=init_name)
    gi, gh = _affine(c, x, hidden_size, 1, names, bias, h, weight_init or torch_init(hidden_size))
    h.next = _ACT[nonlinearity](gi + gh)
    return h


#: the options of lstm_cell that choose a variant (besides names, sizes and initialisation)
LSTM_OPTIONS = ("peepholes", "input_gate", "forget_gate", "output_gate", "input_activation",
                "output_activation", "coupled", "full_gate_recurrence")

#: the variants of Greff et al., "LSTM: A Search Space Odyssey" (2017), as arguments of
#: lstm_cell; "V" (vanilla) there has peepholes, "NP" is vanilla without them.
LSTM_VARIANTS = {
    "V": dict(peepholes=True),
    "NIG": dict(peepholes=True, input_gate=False),
    "NFG": dict(peepholes=True, forget_gate=False),
    "NOG": dict(peepholes=True, output_gate=False),
    "NIAF": dict(peepholes=True, input_activation=False),
    "NOAF": dict(peepholes=True, output_activation=False),
    "NP": dict(peepholes=False),
    "CIFG": dict(peepholes=True, coupled=True),
    "FGR": dict(peepholes=True, full_gate_recurrence=True),
}


def lstm_cell(c, x, hidden_size: int, *, names: dict, bias: bool = True,
              direction: str = "forward", state: str = "h", cell: str = "c", init="zeros",
              init_names: tuple = (None, None), peepholes: bool = False,
              input_gate: bool = True, forget_gate: bool = True, output_gate: bool = True,
              input_activation: bool = True, output_activation: bool = True,
              coupled: bool = False, full_gate_recurrence: bool = False, weight_init=None):
    """LSTM layer (PyTorch's gate order i, f, g, o), with every variant of the Odyssey::

        a = W_ih x(t) + b_ih + W_hh h(t-1) + b_hh         split into the gates present
        i = σ(a_i + p_i ⊙ c(t-1))      (1 without an input gate)
        f = σ(a_f + p_f ⊙ c(t-1))      (1 without a forget gate; 1 - i when coupled, CIFG)
        g = tanh(a_g)                  (a_g without an input activation, NIAF)
        c(t) = f ⊙ c(t-1) + i ⊙ g
        o = σ(a_o + p_o ⊙ c(t))        (1 without an output gate, NOG)
        h(t) = o ⊙ tanh(c(t))          (o ⊙ c(t) without an output activation, NOAF)

    Peephole terms p ⊙ c are there only with ``peepholes``. ``full_gate_recurrence`` (FGR)
    adds R [i(t-1); f(t-1); o(t-1)] to the pre-activations of the gates present. Returns the
    (h, c) states.
    """
    H = size(hidden_size, "lstm_cell: hidden_size")
    bias, peepholes, input_gate, forget_gate, output_gate, input_activation, \
        output_activation, coupled, full_gate_recurrence = (
            flag(v, f"lstm: {k}", err=ur.CircuitError) for k, v in (
                ("bias", bias), ("peepholes", peepholes), ("input_gate", input_gate),
                ("forget_gate", forget_gate), ("output_gate", output_gate),
                ("input_activation", input_activation),
                ("output_activation", output_activation), ("coupled", coupled),
                ("full_gate_recurrence", full_gate_recurrence)))
    _cell_args(c, x, names, "lstm_cell", ("W_ih", "W_hh") + (("b_ih",) if bias else ())
               + (("p_i", "p_f", "p_o") if peepholes else ())
               + (("R",) if full_gate_recurrence else ()))
    winit = weight_init or torch_init(H)
    if coupled and not (input_gate and forget_gate):
        raise ur.CircuitError("lstm: a coupled input and forget gate (CIFG) needs both gates")
    gates = [g for g, on in (("i", input_gate), ("f", forget_gate and not coupled), ("g", True),
                             ("o", output_gate)) if on]
    h = c.state(state, (H,), init=init, direction=direction, init_name=init_names[0])
    cs = c.state(cell, (H,), init=init, direction=direction, init_name=init_names[1])
    gi, gh = _affine(c, x, H, len(gates), names, bias, h, winit)
    a = dict(zip(gates, ur.split(gi + gh, len(gates))))
    gated = [g for g in ("i", "f", "o") if g in gates]
    if full_gate_recurrence and gated:
        prev = c.state(f"{state}_gates", (len(gated) * H,), direction=direction,
                       init_name=f"{state}_gates0")
        R = c.param(names["R"], (len(gated) * H, len(gated) * H), init=winit)
        for g, r in zip(gated, ur.split(R @ prev.prev, len(gated))):
            a[g] = a[g] + r
    if peepholes:
        for g in ("i", "f"):
            if g in a:
                a[g] = a[g] + c.param(names[f"p_{g}"], (H,), init=winit) * cs.prev
    i = ur.sigmoid(a["i"]) if "i" in a else None
    if "f" in a:
        f = ur.sigmoid(a["f"])
    else:
        f = (1.0 - i) if coupled else None
    g = ur.tanh(a["g"]) if input_activation else a["g"]
    new_c = g if i is None else i * g
    cs.next = (cs.prev if f is None else f * cs.prev) + new_c     # f = 1 without a forget gate
    o = None
    if "o" in a:
        ao = a["o"]
        if peepholes:
            ao = ao + c.param(names["p_o"], (H,), init=winit) * cs
        o = ur.sigmoid(ao)
    out = ur.tanh(cs) if output_activation else cs
    h.next = out if o is None else o * out
    if full_gate_recurrence and gated:
        act = {"i": i, "f": f, "o": o}
        prev.next = ur.concat([act[g] for g in gated])
    return h, cs


def gru_cell(c, x, hidden_size: int, *, names: dict, bias: bool = True,
             direction: str = "forward", state: str = "h", init="zeros",
             init_name: str | None = None, weight_init=None):
    """GRU layer, PyTorch's formulation (gates r, z, n)::

        r = σ(W_ir x + b_ir + W_hr h(t-1) + b_hr)
        z = σ(W_iz x + b_iz + W_hz h(t-1) + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h(t-1) + b_hn))
        h(t) = (1 - z) ⊙ n + z ⊙ h(t-1)
    """
    H = size(hidden_size, "gru_cell: hidden_size")
    bias = flag(bias, "gru_cell: bias", err=ur.CircuitError)
    _cell_args(c, x, names, "gru_cell", ("W_ih", "W_hh") + (("b_ih",) if bias else ()))
    h = c.state(state, (H,), init=init, direction=direction, init_name=init_name)
    gi, gh = _affine(c, x, H, 3, names, bias, h, weight_init or torch_init(H))
    i_r, i_z, i_n = ur.split(gi, 3)
    h_r, h_z, h_n = ur.split(gh, 3)
    r, z = ur.sigmoid(i_r + h_r), ur.sigmoid(i_z + h_z)
    n = ur.tanh(i_n + r * h_n)
    h.next = (1.0 - z) * n + z * h.prev
    return h
