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
    out = load("demo").main(quick=True, out=str(tmp_path), progress=False)
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
    assert out["trained"] == "ello" and out["generated"] == "hello"


def test_hello_char_lm():
    out = load("hello_char_lm").main(quick=True, progress=False)
    assert out["prediction"] == "ello" and out["generated"] == "hello"


def test_char_rnn(tmp_path):
    out = load("char_rnn").main(quick=True, progress=False, out=str(tmp_path))
    assert out["valid_bits"] < out["start_bits"] - 1.0          # it learned something
    assert out["sample"].startswith("Return the ") and len(out["sample"]) == 51
    assert (tmp_path / "loss.png").exists()


def test_time_series(tmp_path):
    out = load("time_series").main(quick=True, progress=False, out=str(tmp_path))
    assert set(out) == {"naive", "RNN", "LSTM", "GRU"}
    assert all(v > 0 and v == v for v in out.values())
    assert min(out[k] for k in ("RNN", "LSTM", "GRU")) < out["naive"]   # even in seconds
    assert (tmp_path / "training.png").exists()


def test_sentiment_many_to_one():
    out = load("sentiment_many_to_one").main(quick=True, progress=False)
    assert 0.5 < out["accuracy"] <= 1.0 and 0.7 < out["baseline"] < 0.9


def test_vanishing_gradients(tmp_path):
    out = load("vanishing_gradients").main(quick=True, progress=False, out=str(tmp_path))
    assert out["reach"]["RNN"] < out["reach"]["LSTM"]            # the LSTM's gradient reaches t=1
    for name in ("gradient_norms.png", "jacobian_norms.png", "training.png"):
        assert (tmp_path / name).exists()


def test_dinner_schedule(tmp_path):
    out = load("dinner_schedule").main(quick=True, progress=False, out=str(tmp_path))
    assert out["accuracy"] >= 0.95                 # the rule is learned in 400 updates
    assert (tmp_path / "dinner_circuit.png").exists()
    assert (tmp_path / "dinner_unrolled.png").exists()


def test_lstm_odyssey():
    out = load("lstm_odyssey").main(quick=True, progress=False)
    assert set(out["table"]) == {"V", "NIG", "NFG"}
    assert all(0 < v[0] < 1 for v in out["table"].values())


def test_seq2seq_reverse(tmp_path):
    out = load("seq2seq_reverse").main(quick=True, progress=False, out=str(tmp_path))
    assert 0.2 < out["digits"] <= 1.0              # chance is 0.1
    assert (tmp_path / "seq2seq_test.png").exists()


def test_attention_reverse(tmp_path):
    out = load("attention_reverse").main(quick=True, progress=False, out=str(tmp_path))
    assert 0.2 < out["attention"] <= 1.0 and 0.2 < out["encoder-decoder"] <= 1.0  # chance 0.1
    assert (tmp_path / "alignment.png").read_bytes()[:4] == b"\x89PNG"
