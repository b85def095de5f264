"""The teaching notebooks (notebooks/): each .ipynb is written from its plain-text source, and
every cell runs headless as Jupyter would run it, top to bottom in one namespace, with a
cell's last expression displayed (a picture rendered to SVG, without a system Graphviz)."""
import ast
import importlib.util
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nbsync", ROOT / "notebooks" / "sync.py")
sync = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync)
NOTEBOOKS = sync.sources()


def test_the_five_notebooks_of_the_course_are_there():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_is_written_from_its_source(source):
    nb = source.with_suffix(".ipynb")
    assert nb.read_text(encoding="utf-8") == sync.text(source.read_text(encoding="utf-8")), \
        f"{nb.name} is out of date: run python notebooks/sync.py"


def _display(value) -> str:
    """What Jupyter would show for a cell's last expression (its rich form, rendered)."""
    if hasattr(value, "_repr_mimebundle_"):
        bundle = value._repr_mimebundle_()
        assert "<svg" in bundle["image/svg+xml"]
        return "svg"
    if hasattr(value, "_repr_latex_"):                 # equations, typeset by MathJax
        text = value._repr_latex_()
        assert text.startswith("$$\\begin{aligned}") and text.endswith("\\end{aligned}$$")
        assert text.count("{") == text.count("}")
        return "latex"
    return repr(value)


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_cell_runs_headless(source, tmp_path, monkeypatch, capsys):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    shown = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-interactive.*")   # plt.show()
        for i, (kind, text) in enumerate(sync.cells(source.read_text(encoding="utf-8"))):
            if kind != "code":
                continue
            tree = ast.parse(text)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) \
                else None
            exec(compile(tree, f"{source.name} cell {i}", "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), f"{source.name} cell {i}",
                                     "eval"), namespace)
                if value is not None:
                    shown.append(_display(value))
    plt.close("all")
    assert "svg" in shown, "each notebook draws at least one picture"
    assert capsys.readouterr().out
