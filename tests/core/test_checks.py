import torch

from labkit import checks
from labkit.core.checks import Case, Exercise, close


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
    assert isinstance(got, checks._Lent) and got.reference is spec.reference
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


def test_in_place_change_of_an_argument_is_caught(monkeypatch) -> None:
    _patch(monkeypatch, _spec())

    def mutating(x):
        x.mul_(2)  # right values, but the caller's tensor is changed
        return x

    res = checks.check("t.double", mutating)
    assert not res.passed and "in place" in res.message and "argument 1" in res.message


def test_in_place_change_of_a_module_is_caught(monkeypatch) -> None:
    def layer() -> torch.nn.Linear:
        lin = torch.nn.Linear(3, 2)
        with torch.no_grad():  # fixed weights with negative entries: abs_() must change them
            lin.weight.copy_(torch.tensor([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]))
        return lin

    spec = Exercise(reference=lambda m: m.weight.abs().sum(), cases=lambda: [Case((layer(),))])
    _patch(monkeypatch, spec)
    assert checks.check("t.l1", lambda m: m.weight.abs().sum()).passed
    res = checks.check("t.l1", lambda m: m.weight.data.abs_().sum())
    assert not res.passed and "in place" in res.message


def test_in_place_change_the_reference_makes_too_is_allowed(monkeypatch) -> None:
    def scale_(x):
        x.mul_(2)
        return x

    _patch(monkeypatch, Exercise(reference=scale_, cases=lambda: [Case((torch.ones(2),))]))
    assert checks.check("t.scale_", scale_).passed


def test_rerunning_the_checker_on_the_lent_reference_is_never_a_pass(monkeypatch, capsys) -> None:
    _patch(monkeypatch, _spec())

    def stub(x):
        raise NotImplementedError

    lent = checks.exercise("t.double", stub)  # first Run All: not attempted, reference lent
    assert lent(torch.ones(1)).item() == 2.0  # the notebook goes on with it
    again = checks.exercise("t.double", lent)  # re-running only the checker cell
    out = capsys.readouterr().out
    assert "✅" not in out and "not attempted" in out
    assert isinstance(again, checks._Lent)
    assert not checks.check("t.double", lent).passed


def test_hints_are_graduated(monkeypatch) -> None:
    spec = Exercise(
        reference=lambda x: x * 2,
        cases=lambda: [Case((torch.ones(2),))],
        hint="think about what doubling means",
        formula="y = 2 * x",
    )
    _patch(monkeypatch, spec)
    checks._MISSES.clear()
    first = checks.check("t.double", lambda x: x * 3).message
    assert "think about" in first and "2 * x" not in first and "solution(" not in first
    second = checks.check("t.double", lambda x: x * 3).message
    assert "y = 2 * x" in second and 'labkit.checks.solution("t.double")' in second


def test_hint_kept_and_line_shown_when_the_learner_raises(monkeypatch) -> None:
    _patch(monkeypatch, _spec())
    checks._MISSES.clear()

    def typo(x):
        y = x * 2  # noqa: F841
        return yy  # noqa: F821

    res = checks.check("t.double", typo)
    assert "NameError" in res.message and "line" in res.message and "return yy" in res.message
    assert "multiply by two" in res.message


def test_odd_return_value_is_not_reported_as_a_raise(monkeypatch) -> None:
    _patch(monkeypatch, _spec())
    res = checks.check("t.double", lambda x: (x * 2).long())
    assert not res.passed and "raised" not in res.message and "dtype" in res.message

    def bad_compare(got, expected):
        return None if int(got) == expected else "not equal"

    _patch(
        monkeypatch, Exercise(reference=lambda: 1.0, cases=lambda: [Case(())], compare=bad_compare)
    )
    res = checks.check("t.one", lambda: float("nan"))
    assert not res.passed and "could not compare" in res.message and "raised" not in res.message


def test_worked_solution_on_request(capsys) -> None:
    text = checks.solution("quant.quantize")
    assert "def " in text and "solutions/" in text


def test_compare_shapes_dtypes_nested() -> None:
    cmp = close()
    assert cmp(torch.ones(2), torch.ones(3)) == "shape (2,) but expected (3,)"
    assert "dtype" in cmp(torch.ones(2, dtype=torch.int64), torch.ones(2))
    assert cmp({"a": (1.0, torch.ones(1))}, {"a": (1.0, torch.ones(1))}) is None
    assert "['a']" in cmp({"a": 1.0}, {"a": 2.0})
    assert cmp(float("nan"), float("nan")) is None


def test_unknown_key_is_clear() -> None:
    import pytest

    with pytest.raises(ValueError, match="names no exercise"):
        checks.lookup("nope.nothing")


def test_a_second_miss_counts_when_only_the_checker_cell_is_rerun(monkeypatch, capsys) -> None:
    spec = Exercise(
        reference=lambda x: x * 2,
        cases=lambda: [Case((torch.ones(2),))],
        hint="a nudge",
        formula="y = 2 x",
    )
    _patch(monkeypatch, spec)
    monkeypatch.setattr(checks, "_MISSES", {})
    lent = checks.exercise("t.double", lambda x: x * 3)  # first miss: the nudge only
    assert "Formula" not in capsys.readouterr().out
    again = checks.exercise("t.double", lent)  # the checker cell alone, run again
    out = capsys.readouterr().out
    assert "❌" in out and "Formula: y = 2 x" in out and "not attempted" not in out
    assert isinstance(again, checks._Lent) and again(torch.ones(1)).item() == 2.0


def test_editing_numbers_inside_a_list_of_dicts_in_place_is_caught(monkeypatch) -> None:
    rows = [{"name": "a", "ms": 3.0}, {"name": "b", "ms": 1.0}]

    def fastest(rows):
        return min(rows, key=lambda r: r["ms"])["name"]

    def sorts_in_place(rows):
        rows.sort(key=lambda r: r["ms"])
        return rows[0]["name"]

    def rounds_in_place(rows):
        for r in rows:
            r["ms"] = round(r["ms"])
        return fastest(rows)

    _patch(monkeypatch, Exercise(reference=fastest, cases=lambda: [Case((rows,))]))
    assert checks.check("t.fastest", fastest).passed
    for wrong in (sorts_in_place, rounds_in_place):
        res = checks.check("t.fastest", wrong)
        assert not res.passed and "in place" in res.message, wrong.__name__


def test_a_checker_failure_does_not_blame_the_learner(monkeypatch) -> None:
    def custom(fn):
        y = fn(torch.ones(3))
        y.sum().backward()  # the checker's own step: fails on an integer tensor
        return None

    _patch(monkeypatch, Exercise(reference=lambda x: x, custom=custom))
    res = checks.check("t.custom", lambda x: x.long())
    assert not res.passed and "your function raised" not in res.message
    assert "could not use what your function returned" in res.message

    def raises(x):
        raise KeyError("learner bug")

    res = checks.check("t.custom", raises)
    assert not res.passed and "your function raised KeyError" in res.message
