"""The files follow the pipeline: no module imports a later stage, lazily or not (the facades
on Circuit and Graph aside), and the import graph has no cycle.

``python tests/test_layering.py`` prints the module graph: each module, its stage, and what it
imports (lazy imports marked).
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "unroll"

#: the stages, earliest first; a module may import its own stage and earlier ones only
STAGES = [
    ["errors"],
    ["backends", "backends.numpy", "backends.cupy"],
    ["core"],
    ["ops"],
    ["ir"],
    ["initializers", "schedule"],
    ["circuit"],
    ["structure"],
    ["unrolling", "compose"],
    ["reverse"],
    ["compile.target", "compile.passes", "compile.reroll", "compile.timebatch", "compile.program",
     "compile.lower", "compile.template", "compile", "compile.loopkernel",
     "compile.numba_helpers"],           # the kernels' helpers: numba's side (numpy, llvmlite)
    ["runtime", "checkpoint"],
    ["api"],
    ["gradcheck", "diagnostics", "derive"],
    ["optim", "training", "weights", "compare"],
    ["render.richtext", "render.backend", "render.circuit", "render.unrolled", "render.explore",
     "render.equations", "render"],
    # users of the public API: they import the package itself (import unroll as ur)
    ["models.cells", "models.layers", "models.textbook", "models.attention", "models.generate",
     "models",
     "interop", "testing.spec", "testing.draws", "testing.reference", "testing.circuits",
     "testing.primitives",
     "testing", "", "__main__"],
]

#: one-line facades into later stages: (module, the function whose body may import them)
FACADES = {
    ("circuit", "render"), ("circuit", "to_dot"), ("circuit", "unroll"),
    ("circuit", "init_params"), ("circuit", "_repr_mimebundle_"),
    ("ir", "run"), ("ir", "value_and_grad"), ("ir", "program"), ("ir", "evaluate"),
    ("ir", "to_dot"), ("ir", "render"), ("ir", "_repr_mimebundle_"), ("ir", "explore"),
}


def modules() -> dict:
    """{dotted name under unroll ("" for the package): path}."""
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(name: str, path: Path, known: dict) -> list:
    """(imported module, lazy?, enclosing function) for every import of unroll's modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, func, top):
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else func
            lazy = not top or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".") if package else []
                    base = base[:len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                elif (child.module or "").split(".")[0] == "unroll":
                    mod = child.module[len("unroll."):] if child.module != "unroll" else ""
                else:
                    mod = None
                if mod is not None:
                    subs = [f"{mod}.{a.name}".strip(".") for a in child.names
                            if f"{mod}.{a.name}".strip(".") in known]
                    # `from . import x` imports the module x, not the package
                    for m in subs or [mod]:
                        found.append((m, not top, func))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == "unroll":
                        found.append((a.name[len("unroll."):] if a.name != "unroll" else "",
                                      not top, func))
            visit(child, f, top and not lazy)
    visit(ast.parse(path.read_text()), None, True)
    return [(m, lazy, f) for m, lazy, f in found if m in known and m != name]


def stage_of() -> dict:
    return {m: i for i, ms in enumerate(STAGES) for m in ms}


def test_every_module_has_a_stage():
    assert set(modules()) == set(stage_of()), set(modules()) ^ set(stage_of())


def test_no_module_imports_a_later_stage():
    known, stage = modules(), stage_of()
    bad = []
    for name, path in known.items():
        for m, lazy, func in imports(name, path, known):
            if stage[m] > stage[name] and (name, func) not in FACADES:
                bad.append(f"{name or 'unroll'} imports {m or 'unroll'}"
                           f"{' lazily in ' + str(func) if lazy else ''}")
    assert not bad, "\n".join(bad)


def test_the_import_graph_has_no_cycle():
    known = modules()
    edges = {n: {m for m, _, f in imports(n, p, known) if (n, f) not in FACADES}
             for n, p in known.items()}
    # the package imports everything; a module importing the package is a user of the API
    for n in edges:
        edges[n].discard("")
    done, onstack, cycles = set(), [], []

    def walk(n):
        if n in onstack:
            cycles.append(onstack[onstack.index(n):] + [n])
            return
        if n in done:
            return
        onstack.append(n)
        for m in sorted(edges[n]):
            walk(m)
        onstack.pop()
        done.add(n)
    for n in sorted(edges):
        walk(n)
    assert not cycles, cycles


if __name__ == "__main__":
    known, stage = modules(), stage_of()
    for name in sorted(known, key=lambda n: (stage.get(n, 99), n)):
        deps = imports(name, known[name], known)
        text = ", ".join(sorted({(m or "unroll") + (" (lazy)" if lazy else "")
                                 for m, lazy, _ in deps}))
        print(f"{stage.get(name, '?'):>2} {name or 'unroll':22} {text}")


#: modules that run on the user's arrays: they reach NumPy or CuPy through ``xp`` only
ENGINE = ["core", "ops", "ir", "schedule", "circuit", "structure", "unrolling", "compose", "reverse", "compile.target",
          "compile.passes",
          "compile.reroll", "compile.timebatch", "compile.program", "compile.lower", "compile",
          "compile.loopkernel",
          "runtime", "checkpoint", "api", "optim", "training"]


def test_the_engine_imports_no_array_library():
    """The array libraries are imported in backends/ only (and by the host-side helpers:
    initializers' seeded RNG, gradcheck's float64 differences, diagnostics' reports, the
    sampling of generate, interop's conversions)."""
    known = modules()
    bad = []
    for name in ENGINE:
        tree = ast.parse(known[name].read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                else []
            bad += [f"{name} imports {n}" for n in names if n.split(".")[0] in ("numpy", "cupy")]
    assert not bad, bad
