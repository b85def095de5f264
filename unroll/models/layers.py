"""Stacks of recurrent layers in PyTorch's parameter layout: ``rnn``, ``lstm``, ``gru`` (the
counterparts of ``torch.nn.RNN``, ``nn.LSTM``, ``nn.GRU``) and ``stacked`` (any cells, any
sizes).

Parameters carry PyTorch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...) and shapes,
gates are in PyTorch's order, and the circuit's output ``"h"`` is the top layer's hidden
sequence: shape (T, B, directions·H) from :meth:`~unroll.Graph.run`, PyTorch's ``output``.
Each layer's states are ``h_l{k}`` (and ``c_l{k}`` for an LSTM), ``_reverse`` for the
backward direction, with initial values ``h0_l{k}``... (zeros unless passed), PyTorch's
``h_0[k]``. Add a readout and a loss through ``c["h"]``.
"""
from __future__ import annotations

import unroll as ur

from ..errors import flag, options as _check_options
from .cells import LSTM_OPTIONS, LSTM_VARIANTS, gru_cell, lstm_cell, rnn_cell, size

__all__ = ["rnn", "lstm", "gru", "stacked", "torch_names"]


def torch_names(layer: int, suffix: str = "") -> dict:
    """Parameter names of layer ``layer`` (``suffix`` "_reverse" for the backward direction).
    The LSTM-variant extras (peepholes, full gate recurrence) have no PyTorch counterpart."""
    layer = ur.errors.integer(layer, "torch_names: layer", 0, err=ur.CircuitError)
    if suffix not in ("", "_reverse"):
        raise ur.CircuitError(f"torch_names: suffix must be '' or '_reverse' (PyTorch's "
                              f"backward direction), not {suffix!r}")
    s = f"_l{layer}{suffix}"
    return {"W_ih": f"weight_ih{s}", "W_hh": f"weight_hh{s}", "b_ih": f"bias_ih{s}",
            "b_hh": f"bias_hh{s}", "p_i": f"peephole_i{s}", "p_f": f"peephole_f{s}",
            "p_o": f"peephole_o{s}", "R": f"weight_gates{s}"}


def _build(name, input_size, num_layers, bidirectional, layer):
    input_size = size(input_size, f"{name}: input_size")
    num_layers = size(num_layers, f"{name}: num_layers")
    bidirectional = flag(bidirectional, f"{name}: bidirectional", err=ur.CircuitError)
    c = ur.Circuit(name)
    inp = c.input("x", (input_size,))
    for k in range(num_layers):
        outs = [layer(c, inp, k, "", "forward")]
        if bidirectional:
            outs.append(layer(c, inp, k, "_reverse", "backward"))
        inp = outs[0] if len(outs) == 1 else ur.concat(outs)
    c.output("h", inp)
    return c


def rnn(input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
        bias: bool = True, bidirectional: bool = False, name: str = "rnn") -> ur.Circuit:
    """``torch.nn.RNN``: h(t) = act(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh), per layer."""
    def layer(c, x, k, suffix, direction):
        return rnn_cell(c, x, hidden_size, names=torch_names(k, suffix), bias=bias,
                        nonlinearity=nonlinearity, direction=direction,
                        state=f"h_l{k}{suffix}", init_name=f"h0_l{k}{suffix}")
    return _build(name, input_size, num_layers, bidirectional, layer)


def lstm(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
         bidirectional: bool = False, variant: str | None = None, name: str = "lstm",
         **options) -> ur.Circuit:
    """``torch.nn.LSTM`` (gates i, f, g, o), and every variant of Greff et al.'s "LSTM: A
    Search Space Odyssey" through ``variant`` ("V", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP",
    "CIFG", "FGR") or the options of :func:`~unroll.models.cells.lstm_cell` (``peepholes``,
    ``input_gate``, ``forget_gate``, ``output_gate``, ``input_activation``,
    ``output_activation``, ``coupled``, ``full_gate_recurrence``). Without them it is exactly
    PyTorch's LSTM (which has no peepholes: the Odyssey's "NP")."""
    _check_options(options, LSTM_OPTIONS, "lstm", err=ur.CircuitError)
    if variant is not None:
        if not isinstance(variant, str) or variant not in LSTM_VARIANTS:
            raise ur.CircuitError(f"lstm: unknown variant {variant!r}; choose one of "
                                  f"{', '.join(LSTM_VARIANTS)}")
        options = {**LSTM_VARIANTS[variant], **options}

    def layer(c, x, k, suffix, direction):
        h, _ = lstm_cell(c, x, hidden_size, names=torch_names(k, suffix), bias=bias,
                         direction=direction, state=f"h_l{k}{suffix}", cell=f"c_l{k}{suffix}",
                         init_names=(f"h0_l{k}{suffix}", f"c0_l{k}{suffix}"), **options)
        return h
    return _build(name, input_size, num_layers, bidirectional, layer)


def gru(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        bidirectional: bool = False, name: str = "gru") -> ur.Circuit:
    """``torch.nn.GRU`` (gates r, z, n; r applied to W_hn h + b_hn)."""
    def layer(c, x, k, suffix, direction):
        return gru_cell(c, x, hidden_size, names=torch_names(k, suffix), bias=bias,
                        direction=direction, state=f"h_l{k}{suffix}",
                        init_name=f"h0_l{k}{suffix}")
    return _build(name, input_size, num_layers, bidirectional, layer)


def stacked(input_size: int, layers: list, bidirectional: bool = False,
            name: str = "stacked") -> ur.Circuit:
    """A deep RNN of any depth and any cells: ``layers`` is a list of ``(cell, hidden_size)``
    with cell "rnn", "lstm" or "gru" (or a dict of lstm options with key "cell"), bottom
    first. Each layer reads the hidden sequence of the one below; ``"h"`` is the top one."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ur.CircuitError(f"stacked: layers must be a non-empty list of (cell, hidden_size), "
                              f"bottom first, not {layers!r:.60}; e.g. [('lstm', 8), ('gru', 4)]")
    specs = [_layer(k, entry) for k, entry in enumerate(layers)]

    def layer(c, x, k, suffix, direction):
        cell, opts, H = specs[k]
        common = dict(names=torch_names(k, suffix), direction=direction,
                      state=f"h_l{k}{suffix}")
        if cell == "rnn":
            return rnn_cell(c, x, H, init_name=f"h0_l{k}{suffix}", **common, **opts)
        if cell == "gru":
            return gru_cell(c, x, H, init_name=f"h0_l{k}{suffix}", **common, **opts)
        return lstm_cell(c, x, H, cell=f"c_l{k}{suffix}",
                         init_names=(f"h0_l{k}{suffix}", f"c0_l{k}{suffix}"), **common, **opts)[0]
    return _build(name, input_size, len(layers), bidirectional, layer)


#: what a layer of stacked() may set besides its cell and size
_CELL_OPTIONS = {"rnn": ("nonlinearity", "bias", "init", "weight_init"),
                 "gru": ("bias", "init", "weight_init"),
                 "lstm": ("bias", "init", "weight_init") + LSTM_OPTIONS}


def _layer(k: int, entry) -> tuple:
    """(cell, options, hidden size) of layer ``k`` of stacked(), every part checked."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 2:
        raise ur.CircuitError(f"stacked: layer {k} must be a pair (cell, hidden_size), e.g. "
                              f"('lstm', 8), not {entry!r:.60}")
    spec, H = entry
    opts = dict(spec) if isinstance(spec, dict) else {"cell": spec}
    if "cell" not in opts:
        raise ur.CircuitError(f"stacked: layer {k}'s options {opts!r:.60} have no key 'cell'; "
                              "add 'cell': 'rnn', 'lstm' or 'gru'")
    cell = opts.pop("cell")
    if not isinstance(cell, str) or cell not in _CELL_OPTIONS:
        raise ur.CircuitError(f"stacked: layer {k} has unknown cell {cell!r}; use 'rnn', "
                              "'lstm' or 'gru' (or a dict of options with the key 'cell')")
    _check_options(opts, _CELL_OPTIONS[cell], f"stacked: layer {k} ({cell})",
                   err=ur.CircuitError)
    return cell, opts, size(H, f"stacked: layer {k}: hidden_size")
