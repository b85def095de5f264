"""The command line: ``unroll render MODULE:OBJECT [--steps N] -o FILE``.

MODULE is a Python file (``models.py``) or an importable module (``unroll.models.textbook``);
OBJECT is a Circuit, a Graph, or a function that returns one when called without arguments.
Without ``--steps`` the circuit diagram is drawn; with it, the graph unrolled over that many
steps. The output format follows the file's extension (.svg, .png, .pdf, .dot).

    unroll render examples/models.py:elman -o elman.svg
    unroll render unroll.models.textbook:elman --steps 4 -o elman-unrolled.png
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from .errors import RenderError, UnrollError

__all__ = ["main", "load_object"]


def load_object(spec: str):
    """The object named by ``MODULE:OBJECT`` (a file path or a module name, then a name)."""
    if ":" not in spec:
        raise RenderError(f"{spec!r}: write MODULE:OBJECT, e.g. models.py:elman or "
                          "unroll.models.textbook:elman")
    where, name = spec.rsplit(":", 1)
    path = Path(where)
    if where.endswith(".py") or path.exists():
        if not path.is_file():
            raise RenderError(f"no such file: {where}")
        mod_name = f"_unroll_cli_{path.stem}"
        loader = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[mod_name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            loader.loader.exec_module(module)
        except Exception as e:                  # the user's file: say which, and why
            raise RenderError(f"running {where} failed: {type(e).__name__}: {e}") from e
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise RenderError(f"cannot import {where!r} ({e}); give a file path or a module "
                              "on the Python path") from None
        except Exception as e:
            raise RenderError(f"importing {where} failed: {type(e).__name__}: {e}") from e
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            known = [k for k in dir(module) if not k.startswith("_")]
            raise RenderError(f"{where} has no {name!r}; it defines {', '.join(known[:12])}"
                              f"{' ...' if len(known) > 12 else ''}")
        obj = getattr(obj, part)
    return obj


def _materialise(obj, spec: str):
    from .circuit import Circuit
    from .ir import Graph
    from .models import EncoderDecoder
    if isinstance(obj, (Circuit, Graph, EncoderDecoder)):
        return obj
    if callable(obj):
        sig = inspect.signature(obj)
        required = [p.name for p in sig.parameters.values()
                    if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                           p.POSITIONAL_OR_KEYWORD)]
        if required:
            raise RenderError(f"{spec} needs arguments ({', '.join(required)}); wrap it in a "
                              "function with none, e.g. def model(): return "
                              f"{getattr(obj, '__name__', 'f')}(3, 4, 2)")
        try:
            made = obj()
        except UnrollError:
            raise
        except Exception as e:                  # the user's function: say which, and why
            raise RenderError(f"calling {spec}() failed: {type(e).__name__}: {e}") from e
        return _materialise(made, spec)
    raise RenderError(f"{spec} is a {type(obj).__name__}; expected a Circuit, a Graph or a "
                      "function returning one")


def _render(args) -> Path:
    from . import render
    from .circuit import Circuit
    from .ir import Graph
    from .models import EncoderDecoder
    for flag_, v in (("--steps", args.steps), ("--output-steps", args.output_steps),
                     ("--max-steps", args.max_steps)):
        if v is not None and v < 1:
            raise RenderError(f"{flag_} must be a number of steps >= 1, not {v}")
    suffix = Path(args.output).suffix.lower().lstrip(".")
    if suffix not in ("svg", "png", "pdf", "dot", "gv"):
        raise RenderError(f"cannot draw to {args.output!r}: give -o a file name ending in .svg, "
                          ".png, .pdf or .dot")
    obj = _materialise(load_object(args.object), args.object)
    if isinstance(obj, Graph) and args.steps is not None:
        raise RenderError(f"{args.object} is already unrolled (τ = {obj.steps}); --steps "
                          "unrolls a circuit: drop it")
    if args.output_steps is not None and not isinstance(obj, EncoderDecoder):
        raise RenderError(f"--output-steps sets the decoder steps of an encoder-decoder; "
                          f"{args.object} is a {type(obj).__name__}: drop it")
    diagram = isinstance(obj, Circuit) and args.steps is None
    if diagram:
        given = [f for f, v in (("--mode", args.mode), ("--relative", args.relative or None),
                                ("--max-steps", args.max_steps)) if v is not None]
        if given:
            raise RenderError(f"{', '.join(given)} draw(s) the unrolled graph; give --steps "
                              "to unroll, or drop them for the circuit diagram")
        dot = obj.to_dot(detail=args.detail or "variables", params=args.params,
                         title=args.title)
    else:
        if args.detail is not None:
            raise RenderError("--detail chooses the level of a circuit diagram; an unrolled "
                              "graph draws its variables: drop --detail"
                              + (" or --steps" if args.steps is not None else ""))
        if isinstance(obj, Graph):
            g = obj
        elif args.steps is None:
            raise RenderError(f"{args.object} is a sequence-to-sequence model: give --steps "
                              "(and --output-steps)")
        elif isinstance(obj, Circuit):
            g = obj.unroll(steps=args.steps)
        else:
            g = obj.unroll(args.steps, args.steps if args.output_steps is None
                           else args.output_steps)
        dot = g.to_dot(mode=args.mode or "forward", params=args.params,
                       relative=args.relative,
                       max_steps=8 if args.max_steps is None else args.max_steps,
                       title=args.title)
    return render.render(dot, args.output)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="unroll", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw a recurrent circuit, or its unrolled graph, to a picture.\n\n"
                    "  unroll render models.py:elman -o elman.svg\n"
                    "  unroll render unroll.models.textbook:elman --steps 4 -o unrolled.png\n\n"
                    "MODULE is a Python file or an importable module; OBJECT a Circuit, a Graph "
                    "or a\nfunction returning one. The format follows the file's extension "
                    "(.svg .png .pdf .dot).")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="draw a circuit or its unrolled graph",
                       description="Draw a circuit diagram (no --steps) or the unrolled graph.")
    r.add_argument("object", metavar="MODULE:OBJECT")
    r.add_argument("-o", "--output", required=True, help="file to write: .svg .png .pdf .dot")
    r.add_argument("--steps", type=int, help="unroll over this many steps")
    r.add_argument("--output-steps", type=int, help="decoder steps of an encoder-decoder")
    r.add_argument("--detail", choices=("variables", "named", "ops"),
                   help="circuit diagram only (default: variables)")
    r.add_argument("--params", default="edges", choices=("edges", "nodes", "none"))
    r.add_argument("--mode", choices=("forward", "backward", "overlay"),
                   help="unrolled graph only (default: forward)")
    r.add_argument("--relative", action="store_true", help="label steps t-1, t, t+1")
    r.add_argument("--max-steps", type=int, help="elide beyond this many steps (default 8)")
    r.add_argument("--title", action="store_true", help="write the name under the picture")
    args = p.parse_args(argv)
    try:
        path = _render(args)
    except UnrollError as e:
        print(f"unroll: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
