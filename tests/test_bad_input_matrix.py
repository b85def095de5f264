"""The bad-input matrix (tests/bad_input_cases.py): every row raises its unroll.errors error
naming the culprit, or returns a result its check confirms. A raw exception fails the row."""
import collections
import re
import warnings

import pytest

import unroll as ur
import bad_input_cases as m


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("matrix")
    m.setup(d)
    return d


@pytest.mark.parametrize("case", m.CASES, ids=[f"{c.entry}: {c.what}" for c in m.CASES])
def test_bad_input(case, folder, monkeypatch):
    monkeypatch.chdir(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ur.errors.GradcheckWarning)
        if case.check is not None:
            assert case.check(case.call()), f"{case.what}: wrong result"
            return
        with pytest.raises(case.error) as e:
            case.call()
    assert isinstance(e.value, ur.UnrollError)
    named = re.search(rf"(?<!\w){re.escape(case.culprit)}(?!\w)", str(e.value))
    assert named, f"the message does not name {case.culprit!r}: {e.value}"


def test_the_matrix_covers_every_entry_point():
    by = collections.Counter(c.entry for c in m.CASES)
    assert sum(by.values()) >= 300
    for entry in ("ur.Circuit", "c.input", "c.param", "c.state", "c.output", "c.loss",
                  "c.unroll", "g.run", "g.value_and_grad", "ur.gradcheck", "ur.hvp",
                  "g.to_dot/g.render", "python -m unroll render", "ur.optim",
                  "ur.training.train", "ur.training.TruncatedBPTT", "ur.diagnostics",
                  "ur.interop", "ur.models (layers)", "unroll.testing"):
        assert by[entry] >= 5, entry


def test_the_matrix_leaves_no_primitive_registered():
    """Rows that define primitives remove them again (a leftover would be drawn by the
    random circuits of later tests)."""
    import unroll.testing as ut
    for case in m.CASES:
        if case.entry == "ur.primitive":
            try:
                case.call()
            except ur.UnrollError:
                pass
    assert not [n for n in ut.drawable_primitives() if "case" in n or n.startswith("bad_f")]
