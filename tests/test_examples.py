"""Every example runs (its quick mode) in the suite."""
import importlib.util
import pathlib
import re

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo(capsys, tmp_path):
    out = load("demo").main(quick=True, out=str(tmp_path))
    text = capsys.readouterr().out
    assert out["report"].ok
    assert "h[4] = tanh(a[4])" in text and "∂h[3] = " in text
    assert "gradcheck elman" in text
    diff = re.search(r"\|Σ_t ∂L/∂W\(t\) - ∂L/∂W\| = (\S+)", text)
    assert diff and float(diff.group(1)) < 1e-14
    assert out["loss"] == pytest.approx(5.537148, abs=1e-6)
    names = {p.name for p in out["pictures"]}
    assert {"elman-circuit.png", "elman-unrolled.svg", "elman-backward.png"} <= names
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
    assert str(tmp_path) in text
