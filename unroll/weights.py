"""Saving and loading parameters in the safetensors format: plain bytes, no pickle.

A file is an 8-byte little-endian header length, a JSON header
``{name: {"dtype": "F64", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}``,
and then the arrays' bytes, C-ordered and little-endian. Any safetensors reader opens it, and
PyTorch's ``safetensors.torch.load_file`` gives the tensors that :mod:`unroll.models` names in
PyTorch's layout. Loading never runs code from the file. Every offset and shape is checked,
and with ``circuit=`` the names and shapes are checked against the circuit's parameters.
"""
from __future__ import annotations

import json
import os
import struct

from . import backends
from .errors import InputError, ParamError, UnrollError, expect

__all__ = ["save", "load"]

_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
           "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 2 ** 20


def save(params: dict, path, metadata: dict | None = None):
    """Write ``params`` ({name: array}, any backend) to ``path`` in the safetensors format.

    Parameters
    ----------
    params : dict
        name -> array, e.g. ``c.init_params()`` or trained parameters.
    path : str or Path
    metadata : dict of str -> str, optional
        Stored in the header's ``__metadata__``.

    Returns
    -------
    Path

    Examples
    --------
    >>> import os, tempfile, numpy as np, unroll as ur
    >>> p = ur.models.lstm(3, 4).init_params(seed=0)
    >>> path = ur.save(p, os.path.join(tempfile.mkdtemp(), "lstm.safetensors"))
    >>> q = ur.load(path, circuit=ur.models.lstm(3, 4))
    >>> all(np.array_equal(p[k], q[k]) for k in p)
    True
    """
    from pathlib import Path
    import numpy as np
    expect(params, dict, "save: params", "pass {name: array}, e.g. c.init_params()",
           err=ParamError)
    if metadata is not None and (not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise UnrollError(f"save: metadata must be a dict of str -> str, not {metadata!r:.60}")
    header, blobs, offset = {}, [], 0
    for name, a in params.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ParamError(f"save: {name!r} cannot name an array (a non-empty str other "
                             "than '__metadata__')")
        if not backends.is_array(a):
            raise ParamError(f"save: {name} is a {type(a).__name__}, not an array")
        host = np.asarray(backends.to_numpy(a))
        if not host.flags.c_contiguous:             # (ascontiguousarray would make 0-d 1-d)
            host = host.copy(order="C")
        dt = _DTYPES.get(host.dtype.name)
        if dt is None:
            raise ParamError(f"save: {name} has dtype {host.dtype}, which safetensors does "
                             "not store here; use float32 or float64")
        data = host.astype(host.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(host.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)                  # the data starts 8-byte aligned
    if not isinstance(path, (str, os.PathLike)):
        raise UnrollError(f"save: path must be a file name, not {type(path).__name__}")
    path = Path(path)
    part = path.with_name(path.name + ".partial")    # all or nothing: never half a file
    try:
        with open(part, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        os.replace(part, path)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise UnrollError(f"save: cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


def load(path, circuit=None, xp=None) -> dict:
    """Read arrays saved by :func:`save` (or any safetensors file).

    Parameters
    ----------
    path : str or Path
    circuit : Circuit, optional
        Check that the file holds exactly its parameters, with their shapes.
    xp : module, optional
        The array module to put them in (default NumPy).

    Returns
    -------
    dict
        name -> array, in the file's order.

    Raises
    ------
    InputError
        For a file that is not safetensors or is cut short (naming what is wrong).
    ParamError
        For a parameter the circuit lacks, has not, or has with another shape.
    """
    import numpy as np
    xp = backends.array_module(xp, "load")
    if not isinstance(path, (str, os.PathLike)):
        raise UnrollError(f"load: path must be a file name, not {type(path).__name__}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(f"load: cannot read {str(path)!r}: {e.strerror or e}") from None
    where = f"load: {os.fspath(path)!r}"
    if len(raw) < 8:
        raise InputError(f"{where} is not a safetensors file (it has {len(raw)} bytes)")
    n = struct.unpack("<Q", raw[:8])[0]
    if n > min(len(raw) - 8, _MAX_HEADER):
        raise InputError(f"{where} is not a safetensors file, or is cut short (its header "
                         f"would be {n} bytes)")
    try:
        header = json.loads(raw[8:8 + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{where}: the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise InputError(f"{where}: the header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    out, end = {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_NAMES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in info["shape"])
            begin, stop = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: the entry of {name!r} is not a valid safetensors "
                             f"entry ({info!r:.80})") from None
        if any(s < 0 for s in shape) or not 0 <= begin <= stop <= len(data) or \
                stop - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise InputError(f"{where}: {name!r} claims shape {shape} of {dtype.name} at bytes "
                             f"{begin}..{stop}, which the file does not hold (it is cut "
                             "short or damaged)")
        a = np.frombuffer(data[begin:stop], dtype=dtype).reshape(shape)
        out[name] = a.astype(a.dtype.newbyteorder("="))       # native order, owned memory
        end = max(end, stop)
    if circuit is not None:
        _check_against(circuit, out, where)
    return out if xp is None else {k: xp.asarray(v) for k, v in out.items()}


def _check_against(circuit, arrays: dict, where: str) -> None:
    shapes = circuit.param_shapes()
    missing = [k for k in shapes if k not in arrays]
    extra = [k for k in arrays if k not in shapes]
    if missing or extra:
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + \
                ([f"has {', '.join(extra)}, which {circuit.name} does not"] if extra else [])
        raise ParamError(f"{where} {' and '.join(parts)} (the circuit's parameters: "
                         f"{', '.join(shapes)})")
    for k, s in shapes.items():
        if tuple(arrays[k].shape) != tuple(s):
            raise ParamError(f"{where}: parameter {k} has shape {tuple(arrays[k].shape)}, but "
                             f"{circuit.name} declares {tuple(s)}")
