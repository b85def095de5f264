"""One-to-many: generate a sequence by feeding each output back as the next input."""
from __future__ import annotations

import math
import numbers

import numpy as np

import unroll as ur
from unroll import backends

__all__ = ["generate"]


def generate(circuit: ur.Circuit, params: dict, prime, steps: int, *, input: str = "x",
             output: str = "o", temperature: float = 1.0, greedy: bool = False,
             seed: int | None = 0, encode=None, statics: dict | None = None) -> list:
    """Prime the model with the tokens ``prime``, then sample ``steps`` more, each fed back
    as the next input.

    The circuit is run one step at a time (a graph unrolled over one step, its final state
    passed on as the next initial state). Token k enters as ``encode(k)`` (default: a one-hot
    vector of the input's size); the output's logits give the next token, the argmax with
    ``greedy=True``, else a sample from softmax(logits / temperature).

    Parameters
    ----------
    prime : sequence of int
        At least one token.
    steps : int
        How many tokens to generate after the prime.
    statics : dict, optional
        The circuit's static inputs (one sequence: no batch axis), e.g. the conditioning
        vector of fig. 10.9.

    Returns
    -------
    list of int
        The prime followed by the generated tokens.

    Examples
    --------
    >>> import unroll as ur
    >>> c = ur.models.elman(4, 8, 4)
    >>> out = ur.models.generate(c, c.init_params(seed=1), [0], 5, greedy=True)
    >>> len(out), all(0 <= k < 4 for k in out)
    (6, True)
    """
    if not isinstance(circuit, ur.Circuit):
        raise ur.InputError(f"generate: expected a Circuit, not {type(circuit).__name__} "
                            f"{circuit!r:.60}")
    if not isinstance(params, dict):
        raise ur.ParamError(f"generate: params must be a dict name -> array, not "
                            f"{type(params).__name__}")
    if isinstance(prime, (str, bytes)) or not hasattr(prime, "__len__") or not len(prime):
        raise ur.InputError(f"generate: prime must be a non-empty list of token ids, not "
                            f"{prime!r}")
    if any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in prime):
        raise ur.InputError(f"generate: prime must hold integer token ids, not {list(prime)!r}")
    if not isinstance(input, str) or input not in circuit.inputs:
        raise ur.InputError(f"generate: the circuit has no sequence input {input!r}"
                            f"{ur.errors.suggest(str(input), circuit.inputs)}")
    if not isinstance(output, str) or output not in circuit.outputs:
        raise ur.InputError(f"generate: the circuit has no output {output!r}"
                            f"{ur.errors.suggest(str(output), circuit.outputs)}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or \
            not math.isfinite(temperature) or temperature <= 0:
        raise ur.InputError(f"generate: temperature must be a finite number > 0 (greedy=True "
                            f"for the argmax), not {temperature!r}")
    shape = circuit.inputs[input].aval
    if encode is None and (shape.dtype != "float" or len(shape.shape) != 1):
        raise ur.InputError(f"generate: input {input} has shape {shape.shape} ({shape.dtype}); "
                            "tokens are fed as one-hot vectors, so it must be a float vector, "
                            "or pass encode=lambda k: ... giving the input's value")
    if encode is not None and not callable(encode):
        raise ur.InputError(f"generate: encode must be a function token -> input value, not "
                            f"{encode!r}")
    D = shape.shape[0] if encode is None else None
    if encode is None:
        bad = [int(k) for k in prime if not 0 <= int(k) < D]
        if bad:
            raise ur.InputError(f"generate: prime token(s) {bad} are not classes of input "
                                f"{input}, which one-hot encodes 0..{D - 1}")
        encode = lambda k: np.eye(D)[k]              # noqa: E731
    steps = ur.errors.integer(steps, "generate: steps", 0, err=ur.InputError)
    greedy = ur.errors.flag(greedy, "generate: greedy", err=ur.InputError)
    if seed is not None:
        seed = ur.errors.integer(seed, "generate: seed", 0, err=ur.InputError)
    if statics is not None and not isinstance(statics, dict):
        raise ur.InputError(f"generate: statics must be a dict {{static input: array}}, not "
                            f"{type(statics).__name__} {statics!r:.60}")
    # tokens are chosen on the host; the model runs in the parameters' namespace (NumPy,
    # CuPy, any array API one), which every array fed to it is moved into
    first = next(iter(params.values()), None)
    dtype = np.dtype(backends.dtype_name(first.dtype)) if first is not None else np.float64
    xp = backends.namespace_of(params, None).module
    encode = _checked(encode, input, shape.shape, np.int64 if shape.dtype == "int" else dtype)
    g = circuit.unroll(steps=1)
    rng = np.random.default_rng(seed)
    # other sequence inputs (targets the loss reads): placeholders, the loss is not used
    extra = {k: np.zeros((1,) + v[0].shape, dtype=int if v[0].aval.dtype == "int" else dtype)
             for k, v in g.seq_inputs.items() if k != input}
    dev = {k: xp.asarray(v) for k, v in extra.items()}
    statics = dict(statics or {})
    missing = [k for k in g.static_inputs if k not in statics and k not in g.zero_defaults]
    if missing:
        raise ur.InputError(f"generate: pass the static input(s) {', '.join(missing)} as "
                            f"statics={{{missing[0]!r}: array}}")
    state: dict = {}
    tokens = [int(k) for k in prime]
    params = dict(params)
    # a state whose initial value is an expression cannot be handed on: run from the start
    replay = any(not isinstance(s.init, str) for s in circuit.states.values())
    for i in range(len(tokens) + steps - 1):
        if replay:
            if i < len(tokens) - 1:                  # the prime needs no prediction
                continue
            gi = circuit.unroll(steps=i + 1)
            feed = {input: xp.asarray(np.stack([encode(k) for k in tokens[:i + 1]])[:, None])}
            feed.update({k: xp.asarray(np.zeros((i + 1, 1) + v.shape[1:], dtype=v.dtype))
                         for k, v in extra.items()})
            feed.update({k: xp.expand_dims(v, axis=0) for k, v in statics.items()})
            logits = backends.to_numpy(gi.run(params, **feed)[output])[-1, 0]
            tokens.append(_pick(logits, greedy, temperature, rng))
            continue
        feed = {input: xp.asarray(encode(tokens[i])[None]), **dev, **statics}
        for name, value in state.items():
            spec = circuit.states[name]
            if spec.init == "param":
                params[spec.init_name] = value
            else:
                feed[spec.init_name if spec.init == "zeros" else spec.init] = value
        out = g.run(params, return_state=True, **feed)
        state = out["state"]
        if i >= len(tokens) - 1:
            tokens.append(_pick(backends.to_numpy(out[output])[0], greedy, temperature, rng))
    return tokens


def _checked(encode, input: str, shape: tuple, dtype):
    """``encode`` whose every value is checked to be an array of the input's shape."""
    def enc(k):
        v = encode(k)
        try:
            a = np.asarray(v, dtype=dtype)
        except (TypeError, ValueError):
            raise ur.InputError(f"generate: encode({k}) gave {type(v).__name__} {v!r:.40}, "
                                f"not numbers; it must give input {input}'s value, an array "
                                f"of shape {shape}") from None
        if a.shape != tuple(shape):
            raise ur.InputError(f"generate: encode({k}) gave shape {a.shape}, but input "
                                f"{input} has shape {tuple(shape)}")
        return a
    return enc


def _pick(logits, greedy: bool, temperature: float, rng) -> int:
    if greedy:
        return int(np.argmax(logits))
    z = logits / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))
