import torch

from labkit import checks
from labkit.checks import Case, Exercise, close


def _spec() -> Exercise:
    return Exercise(
        reference=lambda x: x * 2,
        cases=lambda: [Case((torch.tensor([1.0, 2.0]),), label="small"), Case((torch.zeros(3),))],
        hint="multiply by two",
    )


def _patch(monkeypatch, spec: Exercise) -> None:
    monkeypatch.setattr(checks, "lookup", lambda key: spec)


def test_correct_function_passes_and_is_returned(monkeypatch, capsys) -> None:
    _patch(monkeypatch, _spec())
    fn = lambda x: x + x  # noqa: E731
    assert checks.exercise("t.double", fn) is fn
    assert "✅" in capsys.readouterr().out


def test_wrong_function_reported_with_hint_and_reference_returned(monkeypatch, capsys) -> None:
    spec = _spec()
    _patch(monkeypatch, spec)
    got = checks.exercise("t.double", lambda x: x * 3)
    out = capsys.readouterr().out
    assert got is spec.reference
    assert "❌" in out and "small" in out and "multiply by two" in out and "reference" in out


def test_not_attempted(monkeypatch) -> None:
    _patch(monkeypatch, _spec())

    def stub(x):
        raise NotImplementedError

    res = checks.check("t.double", stub)
    assert not res.passed and not res.attempted and "not attempted" in res.message


def test_learner_exception_never_raises(monkeypatch) -> None:
    _patch(monkeypatch, _spec())
    res = checks.check("t.double", lambda x: x.nonexistent())
    assert not res.passed and res.attempted and "AttributeError" in res.message


def test_missing_return_is_named(monkeypatch) -> None:
    _patch(monkeypatch, _spec())
    res = checks.check("t.double", lambda x: None)
    assert "forget `return`" in res.message


def test_learner_cannot_mutate_the_reference_inputs(monkeypatch) -> None:
    _patch(monkeypatch, _spec())

    def mutating(x):
        x.mul_(2)
        return x

    assert checks.check("t.double", mutating).passed


def test_compare_shapes_dtypes_nested() -> None:
    cmp = close()
    assert cmp(torch.ones(2), torch.ones(3)) == "shape (2,) but expected (3,)"
    assert "dtype" in cmp(torch.ones(2, dtype=torch.int64), torch.ones(2))
    assert cmp({"a": (1.0, torch.ones(1))}, {"a": (1.0, torch.ones(1))}) is None
    assert "['a']" in cmp({"a": 1.0}, {"a": 2.0})
    assert cmp(float("nan"), float("nan")) is None


def test_unknown_key_is_clear() -> None:
    import pytest

    with pytest.raises(ValueError, match="no exercise named"):
        checks.lookup("nope.nothing")
