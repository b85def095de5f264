"""Code blocks of the docs run as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/testing.md", "docs/architecture.md"]


def _blocks(page: str) -> list:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, capsys):
    blocks = _blocks(page)
    assert blocks, page
    for code in blocks:
        exec(compile(code, page, "exec"), {"__name__": "__doc__"})


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
