"""Planted wrong answers to notebook 09's exercises must be rejected."""

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader

from labkit import checks


def _reader_class(to_batches, end_value=None, dtype=np.float32):
    class Reader(CalibrationDataReader):
        def __init__(self, x, input_name="x", batch_size=32):
            self.batches = to_batches(x.numpy().astype(dtype), batch_size)
            self.name = input_name
            self.i = 0

        def get_next(self):
            if self.i >= len(self.batches):
                return end_value
            self.i += 1
            return {self.name: self.batches[self.i - 1]}

    return Reader


def _split(a, b):
    return [a[i : i + b] for i in range(0, len(a), b)]


def test_reader_dropping_the_last_partial_batch_is_rejected() -> None:
    def full_only(a, b):
        return [a[i : i + b] for i in range(0, len(a) - b + 1, b)]

    res = checks.check("deploy.calibration_reader", _reader_class(full_only))
    assert not res.passed and "expected 3 batches of sizes [32, 32, 6]" in res.message


def test_reader_ignoring_batch_size_is_rejected() -> None:
    """Hard-codes 32, the only batch size the old checker tried."""
    res = checks.check("deploy.calibration_reader", _reader_class(lambda a, b: _split(a, 32)))
    assert not res.passed and "batch_size=16" in res.message
    assert "expected 3 batches of sizes [16, 16, 16], got 2 of sizes [32, 16]" in res.message


def test_reader_with_an_empty_last_batch_on_an_exact_multiple_is_rejected() -> None:
    """range(len // b + 1) batches: right for 70 / 32, one empty batch too many for 48 / 16."""

    def one_too_many(a, b):
        return [a[i * b : (i + 1) * b] for i in range(len(a) // b + 1)]

    res = checks.check("deploy.calibration_reader", _reader_class(one_too_many))
    assert not res.passed and "got 4 of sizes [16, 16, 16, 0]" in res.message


def test_reader_hard_coding_the_number_of_batches_is_rejected() -> None:
    """Three batches, right for 70 / 32, 48 / 16 and 25 / 10; wrong for 5 / 8 and 9 / 1."""

    def three(a, b):
        return [a[i * b : (i + 1) * b] for i in range(3)]

    res = checks.check("deploy.calibration_reader", _reader_class(three))
    assert not res.passed and "5 examples" in res.message and "expected 1 batches" in res.message


def test_reader_splitting_into_batch_size_parts_is_rejected() -> None:
    """np.array_split(a, n) makes n parts, not parts of n rows."""
    res = checks.check(
        "deploy.calibration_reader", _reader_class(lambda a, b: np.array_split(a, b))
    )
    assert not res.passed and "expected 3 batches" in res.message


def test_reader_keeping_float64_is_rejected() -> None:
    res = checks.check("deploy.calibration_reader", _reader_class(_split, dtype=np.float64))
    assert not res.passed and "float32" in res.message and "float64" in res.message


def test_reader_that_never_ends_is_rejected() -> None:
    class Endless(CalibrationDataReader):
        def __init__(self, x, input_name="x", batch_size=32):
            self.x, self.name = x.numpy().astype(np.float32), input_name

        def get_next(self):
            return {self.name: self.x[:32]}

    res = checks.check("deploy.calibration_reader", Endless)
    assert not res.passed and "None" in res.message


def test_reader_that_raises_at_the_end_is_reported_not_raised() -> None:
    class PopsPastTheEnd(CalibrationDataReader):
        def __init__(self, x, input_name="x", batch_size=32):
            self.batches = _split(x.numpy().astype(np.float32), batch_size)
            self.name = input_name

        def get_next(self):
            return {self.name: self.batches.pop(0)}  # IndexError once empty

    res = checks.check("deploy.calibration_reader", PopsPastTheEnd)
    assert not res.passed and "get_next() raised IndexError" in res.message


def test_reader_yielding_tensors_is_rejected() -> None:
    class Tensors(CalibrationDataReader):
        def __init__(self, x, input_name="x", batch_size=32):
            self.batches = list(x.float().split(batch_size))
            self.name = input_name

        def get_next(self):
            return {self.name: self.batches.pop(0)} if self.batches else None

    res = checks.check("deploy.calibration_reader", Tensors)
    assert not res.passed and "NumPy" in res.message and "Tensor" in res.message


def test_reader_hard_coding_input_name_x_is_rejected() -> None:
    class FixedName(CalibrationDataReader):
        def __init__(self, x, input_name="x", batch_size=32):
            self.batches = [b.float().numpy() for b in x.split(batch_size)]

        def get_next(self):
            return {"x": self.batches.pop(0)} if self.batches else None

    res = checks.check("deploy.calibration_reader", FixedName)
    assert not res.passed and "{'inp': array}, got ['x']" in res.message


def test_reader_with_swapped_parameters_is_rejected() -> None:
    """(x, batch_size, input_name): the keyword call and the positional one cannot both work."""

    class Swapped(CalibrationDataReader):
        def __init__(self, x, batch_size=32, input_name="x"):
            self.batches = [b.float().numpy() for b in x.split(batch_size)]
            self.name = input_name

        def get_next(self):
            return {self.name: self.batches.pop(0)} if self.batches else None

    assert not checks.check("deploy.calibration_reader", Swapped).passed


def test_reader_checker_accepts_the_core_reference() -> None:
    from labkit.core.onnx import calibration_reader

    def reference(x, input_name="x", batch_size=32):
        return calibration_reader(x, input_name, batch_size)

    assert checks.check("deploy.calibration_reader", reference).passed


def _diff(expected, got):
    return (
        torch.as_tensor(np.asarray(got)).double() - torch.as_tensor(np.asarray(expected)).double()
    )


def test_parity_with_atol_only_is_rejected() -> None:
    def atol_only(expected, got, atol=1e-4, rtol=1e-3):
        d = _diff(expected, got).abs()
        return d.max().item(), bool((d <= atol).all())

    res = checks.check("deploy.parity_check", atol_only)
    assert not res.passed and "large logits" in res.message


def test_parity_with_signed_difference_is_rejected() -> None:
    def signed(expected, got, atol=1e-4, rtol=1e-3):
        d = _diff(expected, got)
        return d.max().item(), bool(
            (d <= atol + rtol * torch.as_tensor(np.asarray(expected)).abs()).all()
        )

    res = checks.check("deploy.parity_check", signed)
    assert not res.passed and "negative" in res.message


def test_parity_with_mean_difference_is_rejected() -> None:
    def mean_diff(expected, got, atol=1e-4, rtol=1e-3):
        d = _diff(expected, got).abs()
        return d.mean().item(), bool(
            (d <= atol + rtol * torch.as_tensor(np.asarray(expected)).abs().double()).all()
        )

    assert not checks.check("deploy.parity_check", mean_diff).passed


def test_parity_that_lets_nan_through_is_rejected() -> None:
    def nan_blind(expected, got, atol=1e-4, rtol=1e-3):
        d = _diff(expected, got).abs()
        tol = atol + rtol * torch.as_tensor(np.asarray(expected)).abs().double()
        return d.max().item(), not bool((d > tol).any())

    res = checks.check("deploy.parity_check", nan_blind)
    assert not res.passed and "NaN" in res.message


def _parity_from(tolerance, compare=lambda d, tol: d <= tol):
    def fn(expected, got, atol=1e-4, rtol=1e-3):
        e = torch.as_tensor(np.asarray(expected)).double()
        g = torch.as_tensor(np.asarray(got)).double()
        d = (g - e).abs()
        return d.max().item(), bool(compare(d, tolerance(e, g, atol, rtol)).all())

    return fn


def test_parity_with_rtol_on_got_is_rejected() -> None:
    wrong = _parity_from(lambda e, g, atol, rtol: atol + rtol * g.abs())
    res = checks.check("deploy.parity_check", wrong)
    assert not res.passed and "scales |expected|" in res.message


def test_parity_with_strict_less_than_is_rejected() -> None:
    wrong = _parity_from(lambda e, g, atol, rtol: atol + rtol * e.abs(), lambda d, tol: d < tol)
    res = checks.check("deploy.parity_check", wrong)
    assert not res.passed and "exactly equal to atol" in res.message


def test_parity_with_tolerance_of_the_largest_logit_is_rejected() -> None:
    wrong = _parity_from(lambda e, g, atol, rtol: atol + rtol * e.abs().max())
    res = checks.check("deploy.parity_check", wrong)
    assert not res.passed and "elementwise" in res.message


def test_reader_with_off_by_one_slices_is_rejected() -> None:
    def short(a, b):
        return [a[i : i + b - 1] for i in range(0, len(a), b)]

    res = checks.check("deploy.calibration_reader", _reader_class(short))
    assert not res.passed and "batch 0" in res.message


def test_reader_returning_a_list_is_rejected() -> None:
    class ListReader(CalibrationDataReader):
        def __init__(self, x, input_name="x", batch_size=32):
            self.batches = [b.float().numpy() for b in x.split(batch_size)]

        def get_next(self):
            return [self.batches.pop(0)] if self.batches else None

    res = checks.check("deploy.calibration_reader", ListReader)
    assert not res.passed and "dict" in res.message


def test_reference_solutions_pass_and_hints_are_graduated() -> None:
    from labkit.deploy import exercises as ex
    from solutions import n09_onnx_and_tensorrt as sol

    for key, fn in sol.EXERCISES.items():
        assert checks.check(key, fn).passed, key
        exercise = ex.EXERCISES[key]
        assert exercise.hint and exercise.formula and exercise.hint != exercise.formula
        assert "astype(np.float32)" not in exercise.hint  # a nudge, not the answer
        assert "atol + rtol" not in exercise.hint
