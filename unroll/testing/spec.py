"""What a random circuit is made of, as plain data: expressions, states, outputs and losses.

The generator (:mod:`unroll.testing.circuits`) draws a :class:`Spec` and declares the same
circuit through the public API; the reference (:mod:`unroll.testing.reference`) evaluates the
Spec directly with NumPy. The two share nothing but this description.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Expr", "StatePlan", "Spec"]


@dataclass(eq=False)
class Expr:
    """One node of a step body: a leaf or a primitive applied to operand Exprs."""
    op: str                  # a primitive's name, or "input" | "static" | "param" | "const" |
    #                          "read" (a state at a delay) | "part" (result i of a multi-output op)
    args: tuple = ()         # operand Exprs
    params: dict = field(default_factory=dict)   # the primitive's parameters
    shape: tuple = ()        # per-example shape
    batched: bool = True     # depends on the batch (data, states) or not (parameters only)
    dtype: str = "float"
    name: str = ""           # input, static, param: its name; read: the state's name
    k: int = 0               # read: the delay (0: the state's current value)
    part: int = 0            # part: which result
    value: object = None     # const: the array or number

    def __repr__(self) -> str:
        if self.op in ("input", "static", "param"):
            return self.name
        if self.op == "read":
            return self.name if not self.k else f"{self.name}.delayed({self.k})"
        if self.op == "const":
            return repr(self.value) if not self.shape else f"const{self.shape}"
        if self.op == "part":
            return f"{self.args[0]!r}[{self.part}]"
        return f"{self.op}({', '.join(map(repr, self.args))})"


@dataclass(eq=False)
class StatePlan:
    """A state of the drawn circuit."""
    name: str
    shape: tuple
    direction: str           # "forward" | "backward"
    init: str                # "zeros" | "param" | "input" | "expr"
    init_name: str           # the initial value's input or parameter ("h0"), or ""
    k: int = 1               # the longest delay anything reads it at
    init_expr: Expr | None = None   # init == "expr": an expression of parameters and statics
    next: Expr | None = None  # h(t)


@dataclass(eq=False, repr=False)
class Spec:
    """A whole drawn circuit."""
    steps: int                                        # τ to unroll
    inputs: dict = field(default_factory=dict)        # sequence input -> (shape, dtype)
    statics: dict = field(default_factory=dict)       # static input -> (shape, dtype)
    states: list = field(default_factory=list)        # [StatePlan], in declaration order
    outputs: dict = field(default_factory=dict)       # name -> (Expr, at)
    losses: list = field(default_factory=list)        # [(name, Expr, at)]

    def state(self, name: str) -> StatePlan:
        return next(s for s in self.states if s.name == name)
