"""unroll: declare a recurrent circuit, unroll it over τ steps into an explicit graph, run and
differentiate it (BPTT) with a small reverse-mode autodiff on NumPy or CuPy, render both
pictures, and check every gradient numerically.

>>> import unroll as ur
>>> c = ur.Circuit("elman")                       # Goodfellow et al., fig. 10.3
>>> x = c.input("x", (3,))
>>> W, U = c.param("W", (4, 4)), c.param("U", (4, 3))
>>> h = c.state("h", (4,))
>>> h.next = ur.tanh(W @ h.prev + U @ x)
>>> _ = c.loss(ur.sum(h * h))
>>> g = c.unroll(steps=3)
>>> [repr(e) for e in g.eqns if e.outs[0].name == "h"][1:3]
['h[1] = tanh(_3[1])', 'h[2] = tanh(_3[2])']
"""
from . import ops
from . import compile as _compile_module  # noqa: F401  (loaded now, not in a first call)
from .circuit import Circuit, State
from .core import Var
from .errors import (AlgebraicLoopError, ArgumentError, CircuitError, DTypeError, GradcheckError,
                     InputError, NoSuchAttributeError, NoSuchVariableError, NonFiniteError,
                     ParamError, RenderError, ResourceError, ShapeError, UnrollError)
from .ir import Eqn, Graph, Value
from .initializers import dropout_masks
from .ops import (abs, clip, concat, cos, dropout, elu, exp, layer_norm, gelu, hardmax, leaky_relu, log, log_softmax,
                  matmul, max, maximum, mean, min, minimum, mse, one_hot, primitive, relu,
                  reshape, sigmoid, sin, softmax, softmax_cross_entropy, softplus, split, sqrt,
                  square, stack, stop_gradient, sum, swish, tanh, unregister, where)
from .gradcheck import GradcheckReport, gradcheck, hvp
from .weights import load, save
from .api import grad_graph as grad
from .compare import GradientReport, compare_gradients

__version__ = "0.1.0"

__all__ = [
    "Circuit", "State", "Graph", "Eqn", "Value", "Var", "grad", "gradcheck", "hvp", "save",
    "load", "compare_gradients", "GradientReport",
    "GradcheckReport",
    "tanh", "sigmoid", "relu", "exp", "log", "softmax", "log_softmax", "sum", "mean",
    "concat", "split", "softmax_cross_entropy", "mse", "one_hot", "hardmax", "stop_gradient",
    "matmul", "primitive", "unregister", "sin", "cos", "abs", "sqrt", "square", "softplus",
    "maximum", "minimum", "clip", "leaky_relu", "elu", "swish", "gelu", "where", "max", "min",
    "stack", "dropout", "dropout_masks", "layer_norm",
    "reshape", "UnrollError", "ArgumentError", "CircuitError", "AlgebraicLoopError", "ShapeError", "DTypeError",
    "InputError", "ParamError", "NonFiniteError", "GradcheckError", "RenderError",
    "NoSuchAttributeError", "NoSuchVariableError", "ResourceError",
]

from . import diagnostics, interop, models, optim, render, training  # noqa: E402  (built on the API above)
from .render.equations import Equations, latex  # noqa: E402
__all__ += ["latex", "Equations"]

# A call the API cannot take (an unknown keyword, a missing argument) raises ArgumentError with
# a "did you mean" hint, never a bare TypeError.
from . import compose as _compose, unrolling as _unrolling  # noqa: E402
from .errors import guard_module as _guard_module  # noqa: E402
for _m in (__import__(__name__), diagnostics, interop, models, optim, render, training, _compose,
           _unrolling):
    _guard_module(_m)
del _m, _guard_module
