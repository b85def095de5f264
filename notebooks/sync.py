#!/usr/bin/env python3
"""Write each teaching notebook (``NN_name.ipynb``) from its plain-text source
(``NN_name.py``, Jupytext's percent format: ``# %%`` starts a code cell, ``# %% [markdown]``
a markdown cell whose lines are comments). The sources are what is edited and reviewed; the
notebooks carry no outputs. ``tests/test_notebooks.py`` checks that they are in sync and runs
every cell; Jupytext opens the sources as notebooks too.

    python notebooks/sync.py          # rewrite the .ipynb files
    python notebooks/sync.py --check  # fail if one is out of date
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cells(source: str) -> list:
    """[(kind, text)] of a percent-format source."""
    out = []
    for chunk in source.split("# %%")[1:]:
        head, _, body = chunk.partition("\n")
        kind = "markdown" if "[markdown]" in head else "code"
        lines = body.strip("\n").splitlines()
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        out.append((kind, "\n".join(lines).strip("\n")))
    return out


def notebook(source: str) -> dict:
    nb_cells = []
    for kind, text in cells(source):
        lines = text.splitlines(keepends=True)
        cell = {"cell_type": kind, "metadata": {}, "source": lines}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    return {"cells": nb_cells,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"},
                         "jupytext": {"formats": "ipynb,py:percent"}},
            "nbformat": 4, "nbformat_minor": 5}


def text(source: str) -> str:
    return json.dumps(notebook(source), indent=1, ensure_ascii=False) + "\n"


def sources() -> list:
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def main(argv) -> int:
    stale = []
    for py in sources():
        want = text(py.read_text(encoding="utf-8"))
        nb = py.with_suffix(".ipynb")
        if not nb.exists() or nb.read_text(encoding="utf-8") != want:
            stale.append(nb.name)
            if "--check" not in argv:
                nb.write_text(want, encoding="utf-8")
    if stale and "--check" in argv:
        print("out of date (python notebooks/sync.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
