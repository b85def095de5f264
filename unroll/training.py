"""Training through time: truncated BPTT over long sequences and a small training loop.

:class:`TruncatedBPTT` (Williams & Peng, 1990; Sutskever, 2013) trains on a long sequence in
windows: every k₁ steps it back-propagates through the last k₂ steps, starting from the state
the forward pass reached there, which is carried in as an input and so receives no gradient
(the cut edge of the picture ``g.to_dot(truncate=k)``). With k₁ = k₂ = k the windows are the
sequence's consecutive chunks; the state also carries over to the next call (stateful across
batches) until :meth:`~TruncatedBPTT.reset`.

:func:`train` runs an optimizer over batches with clipping, a progress bar, early stopping on a
target loss, NaN/Inf localisation (training stops with the node and step of the first one) and
returns a :class:`History` that can be plotted.
"""
from __future__ import annotations

import numbers
import math
import time

from .circuit import Circuit
from .compile.target import get as _get_target
from .errors import CircuitError, InputError, NonFiniteError, UnrollError, flag
from .ir import Graph
from .unrolling import resolve_steps
from . import optim as _optim

__all__ = ["TruncatedBPTT", "train", "History"]


class TruncatedBPTT:
    """Gradients of a long sequence by truncated BPTT (k₁, k₂).

    Parameters
    ----------
    circuit : Circuit
        Its states must run forward in time and start from an input (``init="zeros"``,
        whose ``h0`` may be passed, or the name of a static input): that input carries the
        state from one window to the next (with delays up to k, the last k values).
    k1 : int
        An update every k₁ steps (and one at the end of the sequence).
    k2 : int, optional
        Each update back-propagates through the last k₂ steps (k₂ ≥ k₁; default k₁): the k₁
        new steps and k₂ - k₁ before them. Losses are counted once: a window's loss covers
        its new steps only, at the steps of the whole sequence where the circuit places it
        (``at="last"`` is the sequence's last step, in the last window). The last window,
        after fewer than k₁ new steps, is shorter.
    wrt, checkpoint : passed on to :meth:`Graph.value_and_grad`.

    Examples
    --------
    >>> import numpy as np, unroll as ur
    >>> c = ur.models.elman(3, 4, 2)
    >>> params = c.init_params(seed=0)
    >>> xs, ys = np.ones((100, 3)), np.zeros(100, dtype=int)     # a 100-step sequence
    >>> tb = ur.training.TruncatedBPTT(c, k1=25)
    >>> opt = ur.optim.SGD(params, lr=0.01)
    >>> for loss, grads in tb.chunks(params, x=xs, y=ys):     # 4 updates of 25 steps each
    ...     opt.step(grads)
    >>> opt.steps, sorted(tb.state)
    (4, ['h0'])
    """

    def __init__(self, circuit: Circuit, k1: int, k2: int | None = None, *, wrt=None,
                 checkpoint=None, executor: str = "compiled"):
        if not isinstance(circuit, Circuit):
            fix = ("pass the circuit it was unrolled from (each window is unrolled here)"
                   if isinstance(circuit, Graph) else "build one with ur.Circuit(...)")
            raise UnrollError(f"truncated BPTT takes a Circuit, not {type(circuit).__name__} "
                              f"{circuit!r:.60}; {fix}")
        k2 = k1 if k2 is None else k2
        for name, k in (("k1", k1), ("k2", k2)):
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
                raise UnrollError(f"truncated BPTT: {name} must be an integer >= 1, not {k!r}")
        k1, k2 = int(k1), int(k2)
        if k2 < k1:
            raise UnrollError(f"truncated BPTT: k2 = {k2} < k1 = {k1}; each update must "
                              "cover at least the k1 steps since the previous one")
        for name, spec in circuit.states.items():
            if not isinstance(spec.init, str) or spec.init == "param":
                what = "a parameter" if spec.init == "param" else "an expression"
                raise CircuitError(f"truncated BPTT carries each state through its initial "
                                   f"value; state {name} starts from {what}, which cannot "
                                   f"be passed in: declare it with init='zeros'")
            if spec.direction != "forward":
                raise CircuitError(f"truncated BPTT needs states that run forward in time; "
                                   f"{name} runs backward")
        carried = {spec.init_name if spec.init == "zeros" else spec.init
                   for spec in circuit.states.values()}
        for k in ([wrt] if isinstance(wrt, str) else wrt or ()):
            if k in carried:
                raise UnrollError(f"truncated BPTT: {k} carries the state from one window to "
                                  "the next, so it has a gradient per window, not one; leave "
                                  "it out of wrt (or run value_and_grad on the whole sequence)")
        _executor(executor, "truncated BPTT")
        self.circuit, self.k1, self.k2 = circuit, k1, k2
        self.wrt, self.checkpoint, self.executor = wrt, checkpoint, executor
        self.state = None                       # init input name -> array: carried state
        self._init_names = {name: spec.init_name if spec.init == "zeros" else spec.init
                            for name, spec in circuit.states.items()}
        self._graphs: dict = {}

    def reset(self) -> None:
        """Forget the carried state (the next call starts from zeros)."""
        self.state = None

    def graph(self, start: int, stop: int, new_from: int, total: int) -> Graph:
        """The window of steps start+1..stop of a sequence of ``total`` steps, its losses
        counted from step ``new_from`` + 1 on, where the circuit places them in the sequence."""
        keep = {}
        for node, at in self.circuit.losses:
            ts = resolve_steps(at, total, f"loss {node.name}")
            keep[node.name] = tuple(t - start for t in ts if new_from < t <= stop)
        key = (stop - start, tuple(sorted(keep.items())))
        if key not in self._graphs:
            self._graphs[key] = self.circuit.unroll(stop - start, loss_steps=keep)
        return self._graphs[key]

    def chunks(self, params: dict, **inputs):
        """Yield ``(loss, grads)`` for each update over the sequence in ``inputs`` (shapes
        (T, B, ...) as for :meth:`Graph.value_and_grad`); the losses add up to the sequence's
        loss. The state reached at the end is kept for the next call."""
        T = self._length(inputs)
        ends = self._ends(T)
        states = {0: self.state}                # step -> the state reached there
        prev_end = 0
        for j, end in enumerate(ends):
            start = max(0, prev_end - (self.k2 - self.k1))   # the new steps, k2 - k1 before
            g = self.graph(start, end, prev_end, T)
            feed = self._feed(inputs, start, end, states[start])
            if g.loss is None:                   # no loss falls in this window (at="last")
                out = g.run(params, return_state=True, executor=self.executor, **feed)
                loss, grads, state = 0.0 * out["loss"] if "loss" in out else 0.0, \
                    self._zero_grads(g, params, feed), out["state"]
            else:
                loss, grads, state = g.value_and_grad(
                    params, wrt=self.wrt, return_state=True, checkpoint=self.checkpoint,
                    check_finite=True, executor=self.executor, **feed)
            states[end] = self._carried(state)
            if j + 1 < len(ends):
                nxt = max(0, end - (self.k2 - self.k1))  # where the next window starts
                if nxt not in states:                   # (inside this one when they overlap)
                    states[nxt] = self._advance(params, inputs, start, nxt, states[start], T)
                states = {s: v for s, v in states.items() if s >= nxt}
            prev_end = end
            yield loss, grads
        self.state = states[T]

    def _length(self, inputs: dict) -> int:
        """T, the length of the sequence inputs, after checking they are all there."""
        seq = list(self.circuit.inputs)
        missing = [k for k in seq if k not in inputs]
        if missing:
            raise InputError(f"truncated BPTT: missing sequence input(s) {', '.join(missing)}")
        if not seq:
            raise InputError("truncated BPTT needs at least one sequence input")
        for k in seq:
            if not hasattr(inputs[k], "shape") or len(inputs[k].shape) < 1:
                raise InputError(f"input {k} is a {type(inputs[k]).__name__}, not an array "
                                 "of shape (T, [B,] ...); convert it with np.asarray(...)")
        T = int(inputs[seq[0]].shape[0])
        for k in seq:
            if int(inputs[k].shape[0]) != T:
                raise InputError(f"input {k} has {inputs[k].shape[0]} steps, "
                                 f"{seq[0]} has {T}: sequence inputs must have the same length")
        if T < 1:
            raise InputError("truncated BPTT: the sequence inputs have no steps")
        return T

    def _feed(self, inputs: dict, start: int, stop: int, state) -> dict:
        """The inputs of steps start+1..stop, and the state reached at step ``start``."""
        feed = {k: v[start:stop, ...] if k in self.circuit.inputs else v
                for k, v in inputs.items()}
        feed.update(state or {})
        return feed

    def _carried(self, state: dict) -> dict:
        """A window's final state as the initial-value inputs of the next one."""
        return {self._init_names[s]: a for s, a in state.items()}

    def _advance(self, params, inputs, start, stop, state, total):
        """The state at step ``stop``, running forward from ``state`` at step ``start``."""
        if stop == start:
            return state
        out = self.graph(start, stop, stop, total).run(
            params, return_state=True, executor=self.executor,
            **self._feed(inputs, start, stop, state))
        return self._carried(out["state"])

    def _zero_grads(self, g: Graph, params: dict, feed: dict) -> dict:
        """The gradients of a window without a loss: zeros of each wrt's shape."""
        from .api import resolve_wrt
        from .runtime import bind_arguments
        bound = bind_arguments(g, params, feed, check_values=False)
        out = {}
        for k in resolve_wrt(g, self.wrt):
            a = params[k] if k in params else bound.arrays[k]
            z = bound.xp.zeros_like(a)
            out[k] = z if k in params or bound.batched else \
                z[:, 0, ...] if k in g.seq_inputs else z[0, ...]
        return out

    def grads(self, params: dict, **inputs):
        """The total loss and the gradients summed over every update (what one optimizer
        step on the whole sequence would use with truncated gradients). A sequence input's
        gradient is the whole sequence's, (T, ...): each step's from the window that counts
        its loss."""
        total, acc, seq = 0.0, None, {}
        ends = iter(self._ends(self._length(inputs)))
        prev = 0
        for loss, grads in self.chunks(params, **inputs):
            end = next(ends)
            total += float(loss)
            for k, v in grads.items():
                if k in self.circuit.inputs:            # this window's new steps
                    seq.setdefault(k, []).append(v[v.shape[0] - (end - prev):])
            rest = {k: v for k, v in grads.items() if k not in self.circuit.inputs}
            if acc is None:
                acc = {k: v * 1.0 for k, v in rest.items()}
            else:
                for k, v in rest.items():
                    acc[k] += v
            prev = end
        for k, parts in seq.items():
            acc[k] = _concat(parts)
        return total, acc

    def _ends(self, T: int) -> list:
        return list(range(self.k1, T, self.k1)) + [T]


def _concat(parts: list):
    """Arrays joined along their first (time) axis, in any array namespace."""
    from . import backends
    return backends.namespace_of({"a": parts[0]}, None).concat(parts, axis=0)


# --- the training loop ----------------------------------------------------------------------

class History:
    """What a training run did: the loss of every update and of every epoch, the gradient
    norms, the wall time, and why it stopped."""

    def __init__(self):
        self.losses: list = []           # per update
        self.grad_norms: list = []       # per update, before clipping
        self.epochs: list = []           # mean loss per epoch (per update of that epoch)
        self.seconds = 0.0
        self.stopped = None              # None, or why training stopped early

    @property
    def final(self) -> float:
        return self.epochs[-1] if self.epochs else math.nan

    def plot(self, path, title: str = "", log: bool = True):
        """The loss per update and per epoch, to a PNG/SVG/PDF file."""
        from .diagnostics import figure
        with figure(path, title=title, xlabel="update", ylabel="loss", log=log) as ax:
            ax.plot(range(1, len(self.losses) + 1), self.losses, lw=0.8, alpha=0.6,
                    label="update")
            if self.epochs:
                per = len(self.losses) / len(self.epochs)
                ax.plot([per * e for e in range(1, len(self.epochs) + 1)], self.epochs, "o-", ms=3,
                        label="epoch mean")
        return path

    def __repr__(self) -> str:
        why = f", stopped: {self.stopped}" if self.stopped else ""
        return (f"<History {len(self.epochs)} epochs, {len(self.losses)} updates, final loss "
                f"{self.final:.6g}{why}>")


def _executor(executor, what: str) -> None:
    """An executor by name ("compiled", "interpret" or a code target such as "numba")."""
    if executor != "interpret":
        try:
            _get_target(executor)
        except UnrollError as e:
            raise UnrollError(f"{what}: {e}") from None


def train(step, params: dict, batches, optimizer, *, epochs: int = 1, clip_norm=None,
          clip_value=None, target_loss=None, progress: bool = True, desc: str = "train",
          callback=None, executor: str = "compiled") -> History:
    """Fit ``params`` (in place) and return the :class:`History`.

    Parameters
    ----------
    step : Graph, TruncatedBPTT or callable
        A Graph: ``value_and_grad(params, check_finite=True, **batch)`` on each batch. A
        TruncatedBPTT: one update per window of each batch (its state carries across
        batches; it is reset at each epoch). A callable ``(params, batch) -> (loss, grads)``
        or an iterable of such pairs.
    batches : list of dicts of inputs, or a callable ``epoch -> iterable`` of them
    optimizer : an :class:`unroll.optim.Optimizer` over ``params``
    clip_norm, clip_value : gradient clipping before each update
    target_loss : stop after the first epoch whose mean loss is at most this
    progress : a tqdm progress bar over the epochs, the loss shown
    callback : called as ``callback(epoch, history)`` after each epoch; returning True stops
    executor : for a Graph step, what runs it: "compiled" (the default), "interpret" or a
        code target such as "numba" (compiled loop kernels); a TruncatedBPTT has its own

    Raises
    ------
    NonFiniteError
        On the first NaN/Inf, naming the node and step t where it appeared and the epoch and
        update; ``err.history`` holds the run up to there.
    """
    if not isinstance(optimizer, _optim.Optimizer):
        raise UnrollError(f"train: optimizer must be an unroll.optim optimizer (SGD, Adam, "
                          f"RMSprop), not {type(optimizer).__name__}")
    if optimizer.params is not params:
        raise UnrollError("the optimizer updates another dict than params: build it with "
                          "the same dict, e.g. ur.optim.Adam(params, lr=...)")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise UnrollError(f"train: epochs must be an integer >= 1, not {epochs!r}")
    epochs = int(epochs)
    if isinstance(batches, dict):
        raise InputError("train: batches is one dict of inputs; pass a list of batches, "
                         "e.g. [{'x': xs, 'y': ys}] (or a function epoch -> batches)")
    if not callable(batches) and not hasattr(batches, "__iter__"):
        raise InputError(f"train: batches must be a list of dicts of inputs, or a function "
                         f"epoch -> such a list, not {type(batches).__name__}")
    if callable(batches):
        import inspect
        try:
            inspect.signature(batches).bind(1)
        except TypeError:
            raise InputError("train: batches as a function is called with the epoch number "
                             "(1, 2, ...) and returns that epoch's batches; give it one "
                             "argument, e.g. lambda epoch: [...]") from None
        except ValueError:                      # pragma: no cover - no signature to read
            pass
    for what, v in (("target_loss", target_loss), ("clip_norm", clip_norm),
                    ("clip_value", clip_value)):
        if v is not None:
            _optim._number(what, v, None if what == "target_loss" else 0.0,
                           lo_open=what != "target_loss")
    progress = flag(progress, "train: progress")
    if not isinstance(desc, str):
        raise UnrollError(f"train: desc (the progress bar's label) must be a str, not "
                          f"{type(desc).__name__} {desc!r:.60}")
    _executor(executor, "train")
    if executor != "compiled" and not isinstance(step, Graph):
        raise UnrollError(f"train: executor={executor!r} applies to a Graph step; give a "
                          "TruncatedBPTT its own (TruncatedBPTT(..., executor=...)), and a "
                          "function runs as it likes")
    if callback is not None and not callable(callback):
        raise UnrollError(f"train: callback must be a function (epoch, history) -> bool, not "
                          f"{type(callback).__name__} {callback!r:.60}")
    grad_fn = _grad_fn(step, executor)
    hist = History()
    t0 = time.perf_counter()
    bar = _bar(epochs, desc, progress)
    update = 0
    try:
        for epoch in range(1, epochs + 1):
            if isinstance(step, TruncatedBPTT):
                step.reset()
            total, n = 0.0, 0
            for i, batch in enumerate(_epoch(batches, epoch)):
                if not isinstance(batch, dict):
                    raise InputError(f"train: batch {i} of epoch {epoch} is a "
                                     f"{type(batch).__name__}, not a dict of inputs such as "
                                     "{'x': xs, 'y': ys}")
                for loss, grads in _pairs(grad_fn(params, batch), epoch, i):
                    _optim._grads(grads, f"train (epoch {epoch}, batch {i})")
                    norm = _optim.global_norm(grads)
                    if not math.isfinite(norm) or not math.isfinite(loss):
                        raise NonFiniteError(f"loss {loss} or gradient norm {norm} is not "
                                             "finite")
                    if clip_norm is not None:
                        _optim.clip_grad_norm(grads, clip_norm)
                    if clip_value is not None:
                        _optim.clip_grad_value(grads, clip_value)
                    optimizer.step(grads)
                    update += 1
                    hist.losses.append(loss)
                    hist.grad_norms.append(norm)
                    total, n = total + loss, n + 1
            if n == 0:
                raise InputError(f"train: epoch {epoch} has no batches, so nothing would be "
                                 "learned; pass at least one dict of inputs")
            hist.epochs.append(total / n)
            if bar is not None:
                bar.set_postfix(loss=f"{hist.epochs[-1]:.4g}", refresh=False)
                bar.update(1)
            if target_loss is not None and hist.epochs[-1] <= target_loss:
                hist.stopped = f"reached the target loss {target_loss} at epoch {epoch}"
                break
            if callback is not None and callback(epoch, hist):
                hist.stopped = f"the callback stopped training at epoch {epoch}"
                break
    except NonFiniteError as e:
        hist.stopped = f"NaN/Inf at epoch {epoch}, update {update + 1}"
        err = NonFiniteError(f"training stopped at epoch {epoch}, update {update + 1}: {e}")
        err.history = hist
        raise err from None
    finally:
        hist.seconds = time.perf_counter() - t0
        if bar is not None:
            if hist.stopped and not hist.stopped.startswith("NaN"):  # ended early, by design:
                bar.total = bar.n                                     # a full bar of the
                bar.set_postfix_str(f"{bar.postfix}, stopped early", refresh=False)  # epochs
                bar.refresh()                                         # that ran
            bar.close()
    return hist


def _epoch(batches, epoch: int):
    """The batches of one epoch, checked to be an iterable (of dicts, checked one by one)."""
    got = batches(epoch) if callable(batches) else batches
    if isinstance(got, (dict, str, bytes)) or not hasattr(got, "__iter__"):
        raise InputError(f"train: batches({epoch}) returned {type(got).__name__} "
                         f"{got!r:.60}; it must return a list of dicts of inputs such as "
                         "[{'x': xs, 'y': ys}]")
    return got


def _pairs(out, epoch: int, i: int):
    """(loss as a float, grads dict) pairs from what a step gave for batch ``i``."""
    where = f"train: the step function, on batch {i} of epoch {epoch},"
    fix = "it must return (loss, grads) with grads a dict {parameter: array}"
    if isinstance(out, (dict, str, bytes)) or not hasattr(out, "__iter__"):
        raise UnrollError(f"{where} returned {type(out).__name__} {out!r:.60}; {fix}")
    for pair in out:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or \
                not isinstance(pair[1], dict):
            raise UnrollError(f"{where} gave {type(pair).__name__} {pair!r:.60}; {fix}")
        loss, grads = pair
        try:
            loss = float(loss)
        except (TypeError, ValueError):
            raise UnrollError(f"{where} gave the loss {loss!r:.60}, not a number; "
                              f"{fix}") from None
        yield loss, grads


def _grad_fn(step, executor: str = "compiled"):
    if isinstance(step, Graph):
        return lambda params, batch: [step.value_and_grad(params, check_finite=True,
                                                          executor=executor, **batch)]
    if isinstance(step, TruncatedBPTT):
        return lambda params, batch: step.chunks(params, **batch)
    if callable(step):
        def fn(params, batch):
            out = step(params, batch)
            return [out] if isinstance(out, (tuple, list)) and len(out) == 2 and \
                isinstance(out[1], dict) else out
        return fn
    raise UnrollError(f"train: step must be a Graph, a TruncatedBPTT or a function "
                      f"(params, batch) -> (loss, grads), not {type(step).__name__}")


def _bar(epochs: int, desc: str, progress: bool):
    if not progress:
        return None
    # tqdm.auto picks the notebook widget in Jupyter, which without ipywidgets only warns
    # (TqdmWarning: IProgress not found) and falls back: take the text bar then, silently
    import importlib.util
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(total=epochs, desc=desc, unit="epoch", leave=True, dynamic_ncols=True)
