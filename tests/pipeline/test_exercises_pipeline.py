"""Planted wrong answers to notebook 13's exercises must be rejected; the solutions pass."""

from labkit import checks
from solutions import n13_capstone_pipeline as sol


def test_solutions_pass() -> None:
    for key, fn in sol.EXERCISES.items():
        res = checks.check(key, fn)
        assert res.passed, res.message


def _summary(smaller, faster, drop):
    def fn(base, row, latency_key="ms_b1"):
        return {
            "smaller": smaller(base, row),
            "faster": faster(base, row, latency_key),
            "accuracy_drop_points": drop(base, row),
        }

    return fn


def _smaller(b, r):
    return b["bytes"] / r["bytes"]


def _faster(b, r, k):
    return b[k] / r[k]


def _drop(b, r):
    return 100 * (b["accuracy"] - r["accuracy"])


def test_summary_reference_pieces_pass() -> None:
    assert checks.check("pipeline.compression_summary", _summary(_smaller, _faster, _drop)).passed


def test_summary_inverted_size_ratio_is_rejected() -> None:
    wrong = _summary(lambda b, r: r["bytes"] / b["bytes"], _faster, _drop)
    assert not checks.check("pipeline.compression_summary", wrong).passed


def test_summary_inverted_speed_ratio_is_rejected() -> None:
    wrong = _summary(_smaller, lambda b, r, k: r[k] / b[k], _drop)
    assert not checks.check("pipeline.compression_summary", wrong).passed


def test_summary_drop_as_a_fraction_is_rejected() -> None:
    wrong = _summary(_smaller, _faster, lambda b, r: b["accuracy"] - r["accuracy"])
    assert not checks.check("pipeline.compression_summary", wrong).passed


def test_summary_drop_with_the_wrong_sign_is_rejected() -> None:
    wrong = _summary(_smaller, _faster, lambda b, r: 100 * (r["accuracy"] - b["accuracy"]))
    assert not checks.check("pipeline.compression_summary", wrong).passed


def test_summary_absolute_drop_is_rejected() -> None:
    wrong = _summary(_smaller, _faster, lambda b, r: abs(100 * (b["accuracy"] - r["accuracy"])))
    res = checks.check("pipeline.compression_summary", wrong)
    assert not res.passed and "negative" in res.message


def test_summary_ignoring_latency_key_is_rejected() -> None:
    wrong = _summary(_smaller, lambda b, r, k: b["ms_b1"] / r["ms_b1"], _drop)
    res = checks.check("pipeline.compression_summary", wrong)
    assert not res.passed and "ms_b32" in res.message


def _pick(keep, best):
    def fn(rows, max_bytes, max_ms, latency_key="ms_b1"):
        fits = [r for r in rows if keep(r, max_bytes, max_ms, latency_key)]
        return best(fits) if fits else None

    return fn


def _keep(r, mb, mm, k):
    return r["bytes"] <= mb and r[k] <= mm


def _best(fits):
    return max(fits, key=lambda r: (r["accuracy"], -r["bytes"]))


def test_pick_reference_pieces_pass() -> None:
    assert checks.check("pipeline.pick_stage", _pick(_keep, _best)).passed


def test_pick_strict_budget_is_rejected() -> None:
    wrong = _pick(lambda r, mb, mm, k: r["bytes"] < mb and r[k] < mm, _best)
    res = checks.check("pipeline.pick_stage", wrong)
    assert not res.passed and "on both budgets" in res.message


def test_pick_ignoring_the_latency_budget_is_rejected() -> None:
    wrong = _pick(lambda r, mb, mm, k: r["bytes"] <= mb, _best)
    assert not checks.check("pipeline.pick_stage", wrong).passed


def test_pick_ignoring_the_size_budget_is_rejected() -> None:
    wrong = _pick(lambda r, mb, mm, k: r[k] <= mm, _best)
    assert not checks.check("pipeline.pick_stage", wrong).passed


def test_pick_always_batch_one_is_rejected() -> None:
    wrong = _pick(lambda r, mb, mm, k: r["bytes"] <= mb and r["ms_b1"] <= mm, _best)
    res = checks.check("pipeline.pick_stage", wrong)
    assert not res.passed and "ms_b32" in res.message


def test_pick_smallest_file_instead_of_most_accurate_is_rejected() -> None:
    wrong = _pick(_keep, lambda fits: min(fits, key=lambda r: r["bytes"]))
    assert not checks.check("pipeline.pick_stage", wrong).passed


def test_pick_first_of_equal_accuracy_is_rejected() -> None:
    wrong = _pick(_keep, lambda fits: max(fits, key=lambda r: r["accuracy"]))
    res = checks.check("pipeline.pick_stage", wrong)
    assert not res.passed and "equal accuracy" in res.message


def test_pick_empty_list_instead_of_none_is_rejected() -> None:
    def wrong(rows, max_bytes, max_ms, latency_key="ms_b1"):
        fits = [r for r in rows if _keep(r, max_bytes, max_ms, latency_key)]
        return _best(fits) if fits else []

    res = checks.check("pipeline.pick_stage", wrong)
    assert not res.passed and "None" in res.message


def test_hints_are_graduated() -> None:
    from labkit.pipeline.exercises import EXERCISES

    for ex in EXERCISES.values():
        assert ex.hint and ex.formula and ex.hint != ex.formula
        assert "base['bytes'] /" not in ex.hint and "max(" not in ex.hint


def test_pick_sorting_the_rows_in_place_is_rejected() -> None:
    """Sorts the caller's table by accuracy to take the first fit: the stage table is reordered."""

    def wrong(rows, max_bytes, max_ms, latency_key="ms_b1"):
        rows.sort(key=lambda r: (-r["accuracy"], r["bytes"]))
        for r in rows:
            if r["bytes"] <= max_bytes and r[latency_key] <= max_ms:
                return r
        return None

    res = checks.check("pipeline.pick_stage", wrong)
    assert not res.passed and "in place" in res.message


def test_pick_rounding_accuracy_in_place_is_rejected() -> None:
    """Rounds each row's accuracy to 2 decimals (to compare 'equal' accuracies) in the caller's rows."""

    def wrong(rows, max_bytes, max_ms, latency_key="ms_b1"):
        for r in rows:
            r["accuracy"] = round(r["accuracy"], 2)
        fits = [r for r in rows if _keep(r, max_bytes, max_ms, latency_key)]
        return _best(fits) if fits else None

    res = checks.check("pipeline.pick_stage", wrong)
    assert not res.passed and "in place" in res.message


# ---- choose_under_budget: planted wrong answers


def _choose(fits_ok, pick):
    """A learner's choose_under_budget from a fit test and a pick over the fitting rows."""

    def fn(rows, max_bytes, tolerance_points=0.0):
        fits = [(i, r) for i, r in enumerate(rows) if fits_ok(r, max_bytes)]
        return pick(fits, tolerance_points) if fits else None

    return fn


def _cfits(r, b):
    return r["bytes"] <= b


def _cpick(fits, tol):
    best = max(r["accuracy"] for _, r in fits)
    near = [(i, r) for i, r in fits if 100 * (best - r["accuracy"]) <= tol + 1e-9]
    return min(near, key=lambda ir: (ir[1]["bytes"], -ir[1]["accuracy"], ir[0]))[1]


def test_choose_reference_pieces_pass() -> None:
    assert checks.check("pipeline.choose_under_budget", _choose(_cfits, _cpick)).passed


def test_choose_ignoring_the_budget_is_rejected() -> None:
    assert not checks.check(
        "pipeline.choose_under_budget", _choose(lambda r, b: True, _cpick)
    ).passed


def test_choose_strict_budget_is_rejected() -> None:
    assert not checks.check(
        "pipeline.choose_under_budget", _choose(lambda r, b: r["bytes"] < b, _cpick)
    ).passed


def test_choose_smallest_that_fits_is_rejected() -> None:
    assert not checks.check(
        "pipeline.choose_under_budget",
        _choose(_cfits, lambda fits, tol: min(fits, key=lambda ir: ir[1]["bytes"])[1]),
    ).passed


def test_choose_off_the_front_on_equal_bytes_is_rejected() -> None:
    def pick(fits, tol):  # equal bytes: the LESS accurate row (dominated, off the front)
        best = max(r["accuracy"] for _, r in fits)
        near = [(i, r) for i, r in fits if 100 * (best - r["accuracy"]) <= tol + 1e-9]
        return min(near, key=lambda ir: (ir[1]["bytes"], ir[1]["accuracy"], ir[0]))[1]

    assert not checks.check("pipeline.choose_under_budget", _choose(_cfits, pick)).passed


def test_choose_ties_to_the_later_row_is_rejected() -> None:
    def pick(fits, tol):
        best = max(r["accuracy"] for _, r in fits)
        near = [(i, r) for i, r in fits if 100 * (best - r["accuracy"]) <= tol + 1e-9]
        return min(near, key=lambda ir: (ir[1]["bytes"], -ir[1]["accuracy"], -ir[0]))[1]

    assert not checks.check("pipeline.choose_under_budget", _choose(_cfits, pick)).passed


def test_choose_ignoring_the_tolerance_is_rejected() -> None:
    assert not checks.check(
        "pipeline.choose_under_budget", _choose(_cfits, lambda fits, tol: _cpick(fits, 0.0))
    ).passed


def test_choose_tolerance_as_a_fraction_is_rejected() -> None:
    assert not checks.check(
        "pipeline.choose_under_budget", _choose(_cfits, lambda fits, tol: _cpick(fits, 100 * tol))
    ).passed


def test_choose_largest_within_tolerance_is_rejected() -> None:
    def pick(fits, tol):  # the most accurate, not the smallest within the tolerance
        return max(fits, key=lambda ir: (ir[1]["accuracy"], -ir[1]["bytes"], -ir[0]))[1]

    assert not checks.check("pipeline.choose_under_budget", _choose(_cfits, pick)).passed


def test_choose_smallest_instead_of_none_is_rejected() -> None:
    def fn(rows, max_bytes, tolerance_points=0.0):
        return _choose(_cfits, _cpick)(rows, max_bytes, tolerance_points) or min(
            rows, key=lambda r: r["bytes"]
        )

    assert not checks.check("pipeline.choose_under_budget", fn).passed
