"""Mutation check: does the test suite bite? (``make mutate``; not part of ``make test``.)

Each mutant changes one thing in the code under test — an arithmetic or comparison operator,
a boolean, a constant, a condition negated, an inline code template's operand order — and
runs the fast differential and registry tests against it in a copy of the tree. A mutant the
tests fail on is *killed*; one they pass is a *survivor*: either the tests miss something or
the change does not change behaviour (an equivalent mutant), which the report asks you to
judge.

Targets: ``unroll/reverse.py``, ``unroll/compile/*.py``, and in ``unroll/ops.py`` the primitives'
VJP rules and inline code templates.

    python tools/mutate.py                 # a seeded sample of 120 mutants, 2 at a time
    python tools/mutate.py --all           # every mutant (hours)
    python tools/mutate.py --list          # what would be tried
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["unroll/reverse.py", "unroll/compile/lower.py", "unroll/compile/reroll.py",
           "unroll/compile/passes.py",
           "unroll/compile/timebatch.py", "unroll/checkpoint.py", "unroll/ops.py"]
# the quickest first: pytest -x stops at the first failure
TESTS = ["tests/test_corners.py", "tests/test_elman_bptt.py", "tests/test_grad.py",
         "tests/test_compile.py", "tests/test_bad_inputs.py", "tests/test_training.py",
         "tests/test_ops.py", "tests/test_differential.py"]

SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
        ast.MatMult: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv,
        ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt,
        ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
        ast.In: ast.NotIn, ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And}


@dataclass
class Mutant:
    path: str            # file, relative to the root
    line: int
    col: int
    end_line: int
    end_col: int
    new: str             # the replacement text of that span
    what: str            # a description

    def apply(self, source: str) -> str:
        lines = source.splitlines(True)
        starts = [0]
        for ln in lines:
            starts.append(starts[-1] + len(ln))
        a = starts[self.line - 1] + _col(lines[self.line - 1], self.col)
        b = starts[self.end_line - 1] + _col(lines[self.end_line - 1], self.end_col)
        return source[:a] + self.new + source[b:]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _col(line: str, byte_col: int) -> int:
    """AST columns count UTF-8 bytes; the text is indexed by characters."""
    return len(line.encode()[:byte_col].decode(errors="ignore"))


# --- finding mutants -------------------------------------------------------------------------------

def _in_rule(path: str, tree: ast.AST) -> set:
    """For ops.py: the ids of nodes inside VJP rules and code templates only."""
    keep = set()

    def mark(node):
        for n in ast.walk(node):
            keep.add(id(n))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (node.name.endswith("_vjp") or
                                                   node.name.endswith("_code")):
            mark(node)
        if isinstance(node, ast.keyword) and node.arg in ("vjp", "code"):
            mark(node.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "_unary", "_binary", "_act_grad"):
            for a in (node.args[2:3] + node.args[4:5]):    # vjp and code (not the print fmt)
                mark(a)
    return keep


def mutants(path: str) -> list:
    src = (ROOT / path).read_text()
    tree = ast.parse(src)
    only = _in_rule(path, tree) if path.endswith("ops.py") else None
    out = []

    def add(node, new_node_or_text, what):
        text = new_node_or_text if isinstance(new_node_or_text, str) else \
            ast.unparse(new_node_or_text)
        out.append(Mutant(path, node.lineno, node.col_offset, node.end_lineno,
                          node.end_col_offset, text, what))

    for node in ast.walk(tree):
        if only is not None and id(node) not in only:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in SWAP:
            new = ast.BinOp(node.left, SWAP[type(node.op)](), node.right)
            add(node, new, f"{_op(node.op)} -> {_op(new.op)}")
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAP:
            new = ast.Compare(node.left, [SWAP[type(node.ops[0])]()], node.comparators)
            add(node, new, f"{_op(node.ops[0])} -> {_op(new.ops[0])}")
        elif isinstance(node, ast.BoolOp) and type(node.op) in SWAP:
            add(node, ast.BoolOp(SWAP[type(node.op)](), node.values),
                f"{_op(node.op)} -> {_op(SWAP[type(node.op)]())}")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add(node, node.operand, "not dropped")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            add(node, node.operand, "unary minus dropped")
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
            t = node.test
            add(t, ast.UnaryOp(ast.Not(), t), "condition negated")
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            add(node, repr(not node.value), f"{node.value} -> {not node.value}")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            v = node.value
            new = v + 1 if isinstance(v, int) else (v * 1.5 if v else 1.0)
            add(node, repr(new), f"{v!r} -> {new!r}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                only is not None and ("{0}" in node.value or "{1}" in node.value):
            v = node.value
            for a, b, what in (("{0}", "{1}", "template operands swapped"),
                               (" + ", " - ", "template + -> -"),
                               (" * ", " / ", "template * -> /"),
                               ("xp.tanh", "xp.sin", "template tanh -> sin"),
                               ("xp.exp", "xp.expm1", "template exp -> expm1")):
                if a in v and (a != "{0}" or "{1}" in v):
                    new = v.replace(a, "\0").replace(b, a).replace("\0", b) \
                        if a == "{0}" else v.replace(a, b, 1)
                    add(node, repr(new), what)
    return out


def _op(op) -> str:
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@",
            ast.FloorDiv: "//", ast.Mod: "%", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<",
            ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Is: "is", ast.IsNot: "is not",
            ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or"}[type(op)]


# --- running them -----------------------------------------------------------------------------------

def run(m: Mutant, python: str, timeout: int) -> tuple:
    """(verdict, seconds): "killed", "survived" or "timeout" (counted as killed)."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        for part in ("unroll", "tests", "pyproject.toml"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, Path(tmp) / part)
        target = Path(tmp) / m.path
        mutated = m.apply(target.read_text())
        try:
            ast.parse(mutated)
        except SyntaxError:
            return "invalid", 0.0
        target.write_text(mutated)
        env = dict(os.environ, PYTHONPATH=tmp, HYPOTHESIS_PROFILE="ci",
                   PYTHONDONTWRITEBYTECODE="1")
        t0 = time.perf_counter()
        try:
            r = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                *TESTS], cwd=tmp, env=env, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - t0
        return ("survived" if r.returncode == 0 else "killed"), time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=120, help="how many mutants (seeded)")
    ap.add_argument("--all", action="store_true", help="every mutant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=180,
                    help="seconds per mutant (a normal run takes under a minute)")
    ap.add_argument("--list", action="store_true", help="list the mutants and stop")
    ap.add_argument("--only", help="only mutants whose file:line contains this")
    args = ap.parse_args(argv)
    every = [m for p in TARGETS for m in mutants(p)]
    if args.only:
        every = [m for m in every if args.only in f"{m.path}:{m.line}"]
    chosen = every if args.all or args.sample >= len(every) else \
        sorted(random.Random(args.seed).sample(every, args.sample),
               key=lambda m: (m.path, m.line, m.col))
    if args.list:
        print("\n".join(map(str, chosen)))
        print(f"{len(chosen)} of {len(every)} mutants")
        return 0
    print(f"running {len(chosen)} of {len(every)} mutants, {args.jobs} at a time", flush=True)
    counts: dict = {}
    survivors = []
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run, m, sys.executable, args.timeout): m for m in chosen}
        for f in cf.as_completed(futures):
            m = futures[f]
            verdict, secs = f.result()
            counts.setdefault(m.path, {}).setdefault(verdict, 0)
            counts[m.path][verdict] += 1
            print(f"{verdict:8s} {secs:6.1f}s  {m}", flush=True)
            if verdict == "survived":
                survivors.append(m)
    print("\nkill rate by file (timeouts count as killed; invalid mutants are not counted):")
    total_k = total_n = 0
    for path, c in sorted(counts.items()):
        k = c.get("killed", 0) + c.get("timeout", 0)
        n = k + c.get("survived", 0)
        total_k, total_n = total_k + k, total_n + n
        print(f"  {path:30s} {k:4d} / {n:4d} killed")
    if total_n:
        print(f"  {'all':30s} {total_k:4d} / {total_n:4d} = {100 * total_k / total_n:.1f} %")
    if survivors:
        print("\nsurvivors (a missing test, or a change that does not change behaviour):")
        for m in sorted(survivors, key=lambda m: (m.path, m.line)):
            print(f"  {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
