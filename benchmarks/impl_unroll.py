"""unroll in the shared RNN benchmark harness (../shared/bench, see its README for the contract).

The cells are declared with unroll's public circuit API, in the textbook's per-example notation,
with PyTorch's parameter layout and gate order (what the workloads specify). ``make`` only
keeps the arrays; the first call declares the circuit, unrolls it over T steps, builds the
backward graph and compiles both, so the harness's "first call" column is unroll + first
gradient, comparable with JAX's trace + compile.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import unroll as ur  # noqa: E402

NAME = "unroll"
ORDER = 5
TRACEMALLOC_SEES_ALLOCATIONS = True      # its arrays are NumPy arrays


def circuit(w):
    """The workload's recurrence + readout o = V h + c and loss 0.5 Σ_k (o - y)^2 / T per step
    (averaged over the batch by unroll, summed over t: 0.5 Σ (o - y)^2 / (T B) in all)."""
    D, H, K, T = w.D, w.H, w.K, w.T
    c = ur.Circuit(w.name)
    x, y = c.input("x", (D,)), c.input("y", (K,))
    h = c.state("h", (H,))
    if w.cell == "elman":
        W_xh, W_hh, b = c.param("W_xh", (H, D)), c.param("W_hh", (H, H)), c.param("b", (H,))
        h.next = ur.tanh(W_xh @ x + W_hh @ h.prev + b)
    else:
        G = w.G
        W_ih, W_hh = c.param("W_ih", (G * H, D)), c.param("W_hh", (G * H, H))
        b_ih, b_hh = c.param("b_ih", (G * H,)), c.param("b_hh", (G * H,))
        if w.cell == "lstm":
            cell = c.state("cell", (H,))
            i, f, g, o = ur.split(W_ih @ x + b_ih + W_hh @ h.prev + b_hh, 4)
            cell.next = ur.sigmoid(f) * cell.prev + ur.sigmoid(i) * ur.tanh(g)
            h.next = ur.sigmoid(o) * ur.tanh(cell)
        else:                                   # GRU, PyTorch's r, z, n
            i_r, i_z, i_n = ur.split(W_ih @ x + b_ih, 3)
            h_r, h_z, h_n = ur.split(W_hh @ h.prev + b_hh, 3)
            r, z = ur.sigmoid(i_r + h_r), ur.sigmoid(i_z + h_z)
            n = ur.tanh(i_n + r * h_n)
            h.next = (1.0 - z) * n + z * h.prev
    V, cb = c.param("V", (K, H)), c.param("c", (K,))
    o = c.output("o", V @ h + cb)
    c.loss(ur.sum((o - y) ** 2) * (0.5 / T))
    return c


EXECUTOR = "compiled"      # impl_unroll_numba.py: the same with executor="numba"


def make(workload, params, data, executor=None):
    state = {}
    p = dict(params)
    x, y = data["x"], data["y"]
    executor = executor or EXECUTOR

    def run():
        if "g" not in state:
            state["g"] = circuit(workload).unroll(steps=workload.T)
        loss, grads = state["g"].value_and_grad(p, x=x, y=y, executor=executor)
        return float(loss), grads

    return run
