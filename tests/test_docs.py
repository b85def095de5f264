"""Code blocks of the docs run as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/testing.md", "docs/architecture.md", "docs/extending.md"]


def _blocks(page: str) -> list:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, capsys):
    blocks = _blocks(page)
    assert blocks, page
    namespace = {"__name__": "__doc__"}         # a page is read top to bottom
    for code in blocks:
        exec(compile(code, page, "exec"), namespace)


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
