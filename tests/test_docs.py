"""Code blocks of the docs run as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: every page with code (docs/errors.md is generated from the bad-input matrix, checked below)
PAGES = ["README.md", "examples/README.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md") if p.name != "errors.md")

#: the first line of a block that goes on from the block before it, in the same namespace;
#: any other block runs on its own
CONTINUED = "# (continued"


def _blocks(page: str) -> list:
    """[(code, expected stdout or None)]: a ```text block right after a python block is what
    it prints."""
    text = (ROOT / page).read_text()
    found = re.findall(r"```python\n(.*?)```(?:\n+```text\n(.*?)```)?", text, flags=re.S)
    return [(code, out if out else None) for code, out in found]


def _chains() -> list:
    """(page, index of the first block, [(code, expected)]): a block and those continuing it."""
    out = []
    for page in PAGES:
        for i, (code, want) in enumerate(_blocks(page)):
            if code.startswith(CONTINUED) and out and out[-1][0] == page:
                out[-1][2].append((code, want))
            else:
                assert not code.startswith(CONTINUED), f"{page}: block {i} continues nothing"
                out.append((page, i, [(code, want)]))
    return out


@pytest.mark.parametrize("page, first, chain", _chains(),
                         ids=[f"{p}:{i}" for p, i, _ in _chains()])
def test_every_code_block_runs_as_written_and_prints_what_the_page_shows(
        page, first, chain, capsys, tmp_path, monkeypatch):
    if any(re.search(r"^import torch|^from torch", code, flags=re.M) for code, _ in chain):
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)                 # what a block writes lands here
    namespace = {"__name__": "__doc__"}
    for k, (code, want) in enumerate(chain):
        capsys.readouterr()
        exec(compile(code, f"{page} (block {first + k})", "exec"), namespace)
        got = capsys.readouterr().out
        if want is not None:
            assert [ln.rstrip() for ln in got.strip().splitlines()] == \
                [ln.rstrip() for ln in want.strip().splitlines()], f"{page} block {first + k}"


def test_pages_have_code():
    for page in ["README.md", "docs/training.md", "docs/models.md", "docs/extending.md"]:
        assert _blocks(page), page


def test_the_errors_page_is_the_matrix_run_today():
    """docs/errors.md is generated from the bad-input matrix: a changed message or a new
    error class without a regenerated page fails here (run python docs/make_errors.py)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_errors", ROOT / "docs" / "make_errors.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    page = (ROOT / "docs" / "errors.md").read_text()
    assert make.build() == page, "docs/errors.md is stale: run python docs/make_errors.py"
    for c in make._classes():
        assert f"\n## {c.__name__}\n" in page
        assert f"unroll.errors.{c.__name__}: " in page, f"no real message of {c.__name__}"


def test_the_public_api_of_the_design_has_running_examples():
    """Every function and method DESIGN.md lists as the public API has numpydoc sections and
    an example that ``--doctest-modules`` runs (a missing one fails here)."""
    import inspect
    import unroll as ur
    api = [ur.Circuit, ur.Circuit.input, ur.Circuit.param, ur.Circuit.state, ur.Circuit.output,
           ur.Circuit.loss, ur.Circuit.render, ur.Circuit.unroll, ur.Circuit.init_params,
           ur.State.prev, ur.State.delayed, ur.State.next, ur.Graph.run,
           ur.Graph.value_and_grad, ur.Graph.render, ur.Graph.to_networkx, ur.gradcheck,
           ur.tanh, ur.sigmoid, ur.relu, ur.exp, ur.log, ur.softmax, ur.log_softmax, ur.sum,
           ur.mean, ur.concat, ur.split, ur.softmax_cross_entropy, ur.mse]
    for obj in api:
        doc = inspect.getdoc(obj) or ""
        assert "Examples\n--------\n>>> " in doc, getattr(obj, "__qualname__", obj)
        if callable(obj) and not isinstance(obj, type) and \
                [p for p in inspect.signature(obj).parameters if p != "self"]:
            assert "Parameters\n----------" in doc or "See :func:" in doc, obj.__qualname__
