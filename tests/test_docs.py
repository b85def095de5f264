"""Code blocks of the docs run as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["docs/testing.md"]


def _blocks(page: str) -> list:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, capsys):
    blocks = _blocks(page)
    assert blocks, page
    for code in blocks:
        exec(compile(code, page, "exec"), {"__name__": "__doc__"})
