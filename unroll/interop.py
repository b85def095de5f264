"""PyTorch interoperability: a ``torch.nn.RNN``/``LSTM``/``GRU`` as a circuit, and back.

The models of :mod:`unroll.models.layers` use PyTorch's parameter names, shapes and gate order,
so a module's ``state_dict`` *is* a parameter dict and mapping back is a matter of checking
names. Torch is imported only when a function here needs it; it is not a dependency.
"""
from __future__ import annotations

import re

from . import backends
from .errors import UnrollError, expect, flag

__all__ = ["from_torch", "to_torch_state_dict", "torch_options"]

_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


def torch_options(module) -> dict:
    """The options of a PyTorch recurrent module that decide its circuit.

    Raises
    ------
    UnrollError
        For an option unroll does not model (``proj_size``, dropout in training mode, ...).
    """
    mode = getattr(module, "mode", None)
    kinds = {"RNN_TANH": ("rnn", "tanh"), "RNN_RELU": ("rnn", "relu"), "LSTM": ("lstm", None),
             "GRU": ("gru", None)}
    if mode not in kinds:
        raise UnrollError(f"from_torch: expected a torch.nn.RNN, LSTM or GRU, got "
                          f"{type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise UnrollError(f"from_torch: proj_size={module.proj_size} (an LSTM with projections) "
                          "is not supported; use proj_size=0")
    if getattr(module, "dropout", 0) and module.training and module.num_layers > 1:
        raise UnrollError(f"from_torch: dropout={module.dropout} between layers acts only in "
                          "training mode, which unroll does not model; call module.eval() "
                          "first or set dropout=0")
    kind, nonlinearity = kinds[mode]
    return dict(kind=kind, nonlinearity=nonlinearity, input_size=module.input_size,
                hidden_size=module.hidden_size, num_layers=module.num_layers,
                bias=module.bias, bidirectional=module.bidirectional,
                batch_first=module.batch_first)


def from_torch(module, allow_batch_first: bool = False, dtype=None):
    """``(circuit, params)`` computing exactly what ``module`` computes.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
    allow_batch_first : bool
        unroll's inputs are time-major, (T, B, features). A module with ``batch_first=True``
        is refused unless you say you will transpose its inputs (``x.transpose(0, 1)``).
    dtype : optional
        Cast the parameters (e.g. "float64"); default: the module's dtype.

    Returns
    -------
    circuit : Circuit
        With input ``"x"`` and output ``"h"`` (PyTorch's ``output``, shape (T, B, D·H)).
    params : dict
        name -> NumPy array, PyTorch's names (``weight_ih_l0``, ...).
    """
    from . import models
    allow_batch_first = flag(allow_batch_first, "from_torch: allow_batch_first")
    if dtype is not None:
        dtype = backends.float_dtype(dtype, "from_torch")
    opts = torch_options(module)
    if opts.pop("batch_first") and not allow_batch_first:
        raise UnrollError("from_torch: the module has batch_first=True, but unroll's inputs are "
                          "time-major (T, B, features); transpose your inputs "
                          "(x.transpose(0, 1)) and pass allow_batch_first=True")
    kind, nonlinearity = opts.pop("kind"), opts.pop("nonlinearity")
    if kind == "rnn":
        c = models.rnn(nonlinearity=nonlinearity, **opts)
    else:
        c = getattr(models, kind)(**opts)
    params = {}
    for k, v in module.state_dict().items():
        a = v.detach().cpu().numpy()
        params[k] = a.astype(dtype) if dtype is not None else a
    missing = set(c.param_shapes()) ^ set(params)
    if missing:
        raise UnrollError(f"from_torch: parameter names differ from the circuit's: "
                          f"{sorted(missing)}")
    _check_arrays("from_torch", c, params)
    return c, params


def _check_arrays(what: str, c, params: dict) -> None:
    """Every array of the circuit's shape, float and finite."""
    import numpy as np
    declared = c.param_shapes()
    for k, v in params.items():
        if not backends.is_array(v):
            raise UnrollError(f"{what}: {k} must be an array of shape {declared[k]}, not "
                              f"{type(v).__name__}; convert it with np.asarray(...)")
        if tuple(v.shape) != declared[k]:
            raise UnrollError(f"{what}: {k} has shape {tuple(v.shape)}, the circuit declares "
                              f"{declared[k]}")
        a = backends.to_numpy(v)
        if a.dtype.kind != "f":
            raise UnrollError(f"{what}: {k} has dtype {a.dtype}; parameters are floats")
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            raise UnrollError(f"{what}: {k}{[int(i) for i in bad[0]]} is {a[tuple(bad[0])]}; every "
                              "parameter must be finite")


def to_torch_state_dict(circuit, params: dict, as_tensors: bool = False) -> dict:
    """Map unroll parameters (or their gradients) to PyTorch's names.

    For the models of :mod:`unroll.models.layers` the names already are PyTorch's; this checks
    them and returns the arrays (NumPy, or ``torch.Tensor`` with ``as_tensors=True``) in
    PyTorch's order: layer by layer, weights before biases, forward before reverse.

    Raises
    ------
    UnrollError
        Naming a parameter that has no PyTorch counterpart (an LSTM peephole, say).
    """
    from .circuit import Circuit
    expect(circuit, Circuit, "to_torch_state_dict: circuit")
    expect(params, dict, "to_torch_state_dict: params",
           "pass {name: array}, e.g. c.init_params() or the gradients of value_and_grad")
    as_tensors = flag(as_tensors, "to_torch_state_dict: as_tensors")
    unknown = [k for k in params if not isinstance(k, str) or not _NAME.match(k)]
    if unknown:
        raise UnrollError(f"to_torch_state_dict: {', '.join(sorted(unknown))} "
                          f"{'has' if len(unknown) == 1 else 'have'} no PyTorch counterpart "
                          "(PyTorch's recurrent modules know weight_ih/weight_hh/bias_ih/"
                          "bias_hh per layer only)")
    declared = circuit.param_shapes()
    for k in params:
        if k not in declared:
            raise UnrollError(f"to_torch_state_dict: {k} is not a parameter of {circuit.name}")
    _check_arrays("to_torch_state_dict", circuit, params)
    if as_tensors:
        try:
            import torch
        except ImportError:
            raise UnrollError("to_torch_state_dict(as_tensors=True) needs PyTorch: pip install "
                              "torch (or leave as_tensors=False for NumPy arrays)") from None

    def order(k):
        kind, layer, rev = _NAME.match(k).groups()
        return (int(layer), bool(rev), ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
                .index(kind))

    out = {k: backends.to_numpy(params[k]).copy() for k in sorted(params, key=order)}
    if as_tensors:
        out = {k: torch.from_numpy(v.copy()) for k, v in out.items()}
    return out
