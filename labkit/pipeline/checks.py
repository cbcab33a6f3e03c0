"""Input checks of the capstone's steps (lesson.py, ablation.py, pareto.py, transformer.py) and
of the stage table's rows.

Each raises one ValueError that names the parameter, says what it got and how to fix it, before
any training, export or timing starts. The checks of Stage lists stay in lesson.py, beside Stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from labkit.core.errors import (
    check_bits,
    check_finite,
    check_fraction,
    check_int,
    check_loader,
    check_model,
    check_nonempty,
    check_number,
    check_positive,
    check_tensor,
)


def _check_training(loader: object, epochs: object, lr: object, max_epochs: int = 1000) -> None:
    """What every training step needs, checked before its first batch."""
    check_loader(loader)
    check_int(epochs, "epochs", low=1, high=max_epochs)
    check_positive(lr, "lr (learning rate)")


def _check_kd(T: object, alpha: object) -> None:  # noqa: N803 - T is the paper's name
    check_positive(T, "T (temperature)")
    check_fraction(alpha, "alpha (weight of the teacher's term)", include_one=True)


def _check_distill(
    teacher: object, loader: object, width: object, depth: object, epochs: object, lr: object,
    T: object, alpha: object,  # noqa: N803
) -> None:  # fmt: skip
    check_model(teacher, "teacher")
    check_loader(loader)
    check_int(width, "width", low=1)
    check_int(depth, "depth", low=2)
    _check_training(loader, epochs, lr)
    _check_kd(T, alpha)


def _check_prune(
    model: object, loader: object, teacher: object, ratio: object, epochs: object, lr: object,
    T: object, alpha: object,  # noqa: N803
) -> None:  # fmt: skip
    check_model(model)
    check_loader(loader)
    if teacher is not None:
        check_model(teacher, "teacher")
        _check_kd(T, alpha)
    check_fraction(ratio, "ratio (the fraction of channels to remove)")
    _check_training(loader, epochs, lr, max_epochs=100)


def _check_qat(
    model: object, loader: object, bits: object, epochs: object, lr: object, calib_batches: object
) -> None:
    check_model(model)
    check_loader(loader)
    check_bits(bits)
    _check_training(loader, epochs, lr)
    check_int(calib_batches, "calib_batches", low=1, high=10_000)


def _check_name(name: object, what: str = "name (of the stage)") -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}.")


def _check_run(
    teacher: object, loader: object, calib_x: object, workdir: object, width: object,
    distill_epochs: object, prune_ratio: object, finetune_epochs: object, qat_epochs: object,
    bits: object,
) -> None:  # fmt: skip
    """Everything run_pipeline hands on, checked before the first stage trains."""
    check_model(teacher, "teacher")
    check_loader(loader)
    check_finite(check_tensor(calib_x, "calib_x", ndim=4), "calib_x")
    if not isinstance(workdir, str | Path):
        raise ValueError(f"workdir must be a folder path (str or Path), got {workdir!r}.")
    check_int(width, "width", low=1)
    check_int(distill_epochs, "distill_epochs", low=1, high=1000)
    check_fraction(prune_ratio, "prune_ratio")
    check_int(finetune_epochs, "finetune_epochs", low=1, high=100)
    check_int(qat_epochs, "qat_epochs", low=1, high=1000)
    check_bits(bits)


def _check_row(r: object, what: str, *columns: str) -> None:
    """A row of the stage table (a dict of accuracy_rows / with_latency) with these columns."""
    for key in columns:
        if not isinstance(r, Mapping) or key not in r:
            raise ValueError(f"{what} needs a {key!r} entry (a row of accuracy_rows).")


def _check_latency_key(r: object, what: str, latency_key: object) -> None:
    """A row with a finite, positive latency under ``latency_key`` (a column of with_latency)."""
    if not isinstance(r, Mapping):
        raise ValueError(f"{what} must be a row of with_latency (a dict), got {r!r}.")
    if latency_key not in r:  # type: ignore[operator]
        raise ValueError(
            f"{what} has no {latency_key!r} column: latency_key must name a latency column "
            f"of with_latency's rows, e.g. 'ms_b1' (columns: {list(r)})."  # type: ignore[call-overload]
        )
    check_positive(r[latency_key], f"{what}[{latency_key!r}]")  # type: ignore[index]


def _check_summary(base: object, row: object, latency_key: str) -> None:
    for r, what in ((base, "base"), (row, "row")):
        _check_row(r, what, "bytes", "accuracy")
        check_positive(r["bytes"], f"{what}['bytes']")
        check_number(r["accuracy"], f"{what}['accuracy'] (a fraction)", low=0, high=1)
        if latency_key in base and latency_key in row:
            check_positive(r[latency_key], f"{what}[{latency_key!r}]")


def _check_target(summary: object, target: object) -> None:
    """A compression_summary and a target with the limits it is compared against."""
    _check_row(summary, "summary", "smaller", "accuracy_drop_points")
    needs = ("smaller", "max_drop_points") + (("faster",) if "faster" in summary else ())
    for key in ("smaller", "accuracy_drop_points", "faster"):
        if key in summary:  # type: ignore[operator]
            check_number(summary[key], f"summary[{key!r}]")  # type: ignore[index]
    for key in needs:
        if not isinstance(target, Mapping) or key not in target:
            raise ValueError(f"target needs a {key!r} entry, like pipeline.TARGET.")
        check_number(target[key], f"target[{key!r}]")


def _check_budget(rows: object, max_bytes: object, max_ms: object, latency_key: object) -> None:
    check_nonempty(rows, "rows")
    check_positive(max_bytes, "max_bytes")
    check_positive(max_ms, "max_ms")
    for i, r in enumerate(rows):  # type: ignore[arg-type]
        _check_row(r, f"rows[{i}]", "accuracy", "bytes")
        _check_latency_key(r, f"rows[{i}]", latency_key)


def _check_faster(a: object, b: object, latency_key: object) -> None:
    for r, what in ((a, "a"), (b, "b")):
        _check_latency_key(r, what, latency_key)


def _check_points(rows: object, latency_key: str) -> None:
    """The Pareto points: a non-empty list of rows with stage, accuracy, bytes and latency."""
    check_nonempty(rows, "rows (the Pareto points)")
    for i, r in enumerate(rows):
        _check_row(r, f"rows[{i}]", "stage", "accuracy", "bytes")
        _check_latency_key(r, f"rows[{i}]", latency_key)
        check_positive(r["bytes"], f"rows[{i}]['bytes']")
        check_number(r["accuracy"], f"rows[{i}]['accuracy'] (a fraction)", low=0, high=1)
