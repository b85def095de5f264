"""What a user installs: the wheel carries the license, and the progress bar needs no widgets."""
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_the_license(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("unroll_circuits-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names), names
    assert any(n.startswith("unroll/compile/template.py") for n in names)


def test_the_progress_bar_is_text_without_ipywidgets(monkeypatch):
    """In Jupyter without ipywidgets, tqdm.auto warns 'IProgress not found': the training
    loop takes the text bar instead."""
    import importlib.util
    from unroll import training
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = training._bar(3, "train", True)
    try:
        from tqdm.std import tqdm
        assert type(bar) is tqdm
    finally:
        bar.close()


def test_the_pypi_page_has_no_links_into_the_repository():
    """PyPI shows the package's readme without the repository around it: a relative link or
    image (docs/gallery/...png) is broken there. The page is docs/pypi.md (its code runs in
    tests/test_docs.py with the other pages)."""
    import re
    readme = re.search(r'^readme = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    page = (ROOT / readme.group(1)).read_text()
    targets = re.findall(r"\]\(([^)]+)\)|src=\"([^\"]+)\"", page)
    assert not [t for pair in targets for t in pair if t and "://" not in t]
