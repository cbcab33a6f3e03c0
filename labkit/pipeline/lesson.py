"""The capstone: one model through every compression stage, measured the same way at each.

    FP32 teacher --distill--> student --prune_channels + fine-tune--> pruned
      --QAT (8-bit fake quantisation, STE)--> QAT model --unwrap, export--> ONNX FP32
      --ONNX Runtime quantize_static (QDQ, calibrated)--> ONNX INT8, run by ONNX Runtime

This module only chains what the topic modules own (labkit.distill, prune, qat) and the
core's ONNX plumbing and timing (labkit.onnx, labkit.bench), and keeps the books. A stage is measured by

- accuracy: fraction of the digits test split classified correctly;
- bytes: the serialized file (torch.save of the state_dict for a PyTorch model, the .onnx
  file for ONNX Runtime), what a deployment would ship;
- MACs: multiply-accumulates of one image (labkit.bench.count_macs; BN/ReLU/pool count 0);
- ms_b1 / ms_b32: median single-thread latency at batch 1 and batch 32, all stages timed
  interleaved in one run (labkit.bench.compare, compare_stages) so machine noise hits all
  alike; each ratio comes with its spread over rounds.

Ratios of a row r against a baseline row b (usually the FP32 teacher):

    smaller = bytes_b / bytes_r,   faster = ms_b / ms_r,   drop = 100 * (acc_b - acc_r)  points
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit import distill, prune, qat
from labkit.core import bench, models, onnx, train
from labkit.core.errors import (
    check_finite,
    check_int,
    check_model,
    check_nonempty,
    check_tensor,
)
from labkit.edge.checks import _check_fits
from labkit.pipeline.checks import (
    _check_budget,
    _check_distill,
    _check_faster,
    _check_name,
    _check_points,
    _check_prune,
    _check_qat,
    _check_row,
    _check_run,
    _check_summary,
    _check_target,
)

TARGET = {"smaller": 8.0, "faster": 2.0, "max_drop_points": 1.5}


class Stage(NamedTuple):
    """One pipeline stage: how to run it (x (N, 1, 8, 8) -> logits (N, 10)), what it ships,
    and its MACs per image.
    Used by torch_stage and onnx_stage (labkit/pipeline/lesson.py).
    """

    name: str
    run: Callable[[torch.Tensor], Any]
    bytes: int
    macs: int
    note: str = ""


# --------------------------------------------------------------------------- the steps


def distill_student(
    teacher: nn.Module,
    loader: DataLoader,
    *,
    width: int = 24,
    depth: int = 3,
    epochs: int = 8,
    lr: float = 3e-3,
    T: float = 4.0,
    alpha: float = 0.9,
    seed: int = 0,
) -> nn.Sequential:
    """A fresh ``labkit.models.cnn(width, depth)`` (seeded) trained on the teacher's soft labels.

    Loss per batch: labkit.distill.kd_loss_fn = (1 - alpha) CE + alpha T^2 KL(p_t(T) || p_s(T))
    on shift-augmented digits. A CNN (not distill.student_model's MLP) so that the next step
    can remove whole channels. Returns the student in eval mode.
    Taught in notebooks/13_capstone_pipeline.ipynb, "2. Distil a narrower student".
    """
    _check_distill(teacher, loader, width, depth, epochs, lr, T, alpha)
    torch.manual_seed(seed)
    student = models.cnn(width=width, depth=depth)
    loss = distill.kd_loss_fn(teacher, T=T, alpha=alpha, seed=seed)
    train.fit(student, loader, epochs=epochs, lr=lr, loss_fn=loss)
    return student.eval()


def prune_and_finetune(
    model: nn.Sequential,
    loader: DataLoader,
    teacher: nn.Module | None = None,
    *,
    ratio: float = 0.5,
    epochs: int = 3,
    lr: float = 3e-3,
    T: float = 4.0,
    alpha: float = 0.9,
    seed: int = 0,
) -> nn.Sequential:
    """Structured pruning: ``labkit.prune.prune_channels`` removes ``ratio`` of every conv's
    output channels (smallest L1 filters), BatchNorm statistics are re-estimated
    (prune.recalibrate_bn), then prune.finetune trains ``epochs`` more, with the teacher's
    distillation loss when a teacher is given (else cross-entropy). ``model`` is unchanged.
    Taught in notebooks/13_capstone_pipeline.ipynb, "3. Structured pruning, then fine-tuning".
    """
    _check_prune(model, loader, teacher, ratio, epochs, lr, T, alpha)
    torch.manual_seed(seed)
    small = prune.prune_channels(model, ratio)
    prune.recalibrate_bn(small, loader)
    loss = (
        distill.kd_loss_fn(teacher, T=T, alpha=alpha, seed=seed)
        if teacher is not None
        else train.cross_entropy_loss
    )
    prune.finetune(small, loader, epochs=epochs, lr=lr, loss_fn=loss)
    return small.eval()


def quantization_aware(
    model: nn.Module,
    loader: DataLoader,
    *,
    bits: int = 8,
    epochs: int = 2,
    lr: float = 1e-4,
    calib_batches: int = 4,
    seed: int = 0,
) -> nn.Module:
    """QAT: fold BN, wrap every Conv2d/Linear in a fake quantiser (weights per channel,
    activations calibrated on ``calib_batches`` batches) with labkit.qat.qat_model, then
    labkit.qat.qat_finetune for ``epochs`` (straight-through gradients). Eval mode.
    Taught in notebooks/13_capstone_pipeline.ipynb, "4. Quantisation-aware training (INT8)".
    """
    _check_qat(model, loader, bits, epochs, lr, calib_batches)
    torch.manual_seed(seed)
    q = qat.qat_model(model, qat.calibration_batches(loader, calib_batches), bits=bits)
    qat.qat_finetune(q, loader, epochs=epochs, lr=lr)
    return q.eval()


def export_float(qmodel: nn.Module) -> nn.Module:
    """The float model a deployer exports from a QAT model: every labkit.qat.QuantLayer is
    replaced by its Conv2d/Linear, whose weight is set to the fake-quantised weight
    W_hat = S_c * clamp(round(W / S_c), -128, 127), the 8-bit grid QAT trained for: a converter
    using the same per-channel grid leaves it unchanged (labkit.onnx.quantize_static_int8 on a
    CPU without VNNI keeps weights in [-64, 64], a coarser grid: see its reduce_range).
    BN was folded by qat.prepare. ``qmodel`` is unchanged.
    Taught in notebooks/13_capstone_pipeline.ipynb, "5. Export: ONNX FP32 and ONNX Runtime INT8 (QDQ)".
    """
    _check_qat_model(qmodel)
    out = copy.deepcopy(qmodel).eval()
    for name, ql in qat.quant_layers(out).items():
        plain = ql.layer
        with torch.no_grad():
            plain.weight.copy_(ql.quantized_weight())
        parent, _, child = name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, child, plain)
    return out


def export_onnx_int8(
    model: nn.Module,
    example: torch.Tensor,
    calib_x: torch.Tensor,
    workdir: str | Path,
    name: str,
    *,
    reduce_range: bool | None = None,
) -> tuple[Path, Path]:
    """Export ``model`` to ``workdir/name_fp32.onnx`` (labkit.onnx.export_onnx, dynamic
    batch) and quantise it with ONNX Runtime's static INT8 (QDQ, per-channel symmetric int8
    weights, uint8 activations, MinMax calibration on ``calib_x``) to ``workdir/name_int8.onnx``.
    reduce_range: 7-bit weights; None = labkit.onnx.quantize_static_int8's choice (on where the
    CPU has no VNNI).
    Taught in notebooks/13_capstone_pipeline.ipynb, "5. Export: ONNX FP32 and ONNX Runtime INT8 (QDQ)".
    """
    _check_export(model, example, calib_x, workdir, name)
    workdir = Path(workdir)
    fp32 = onnx.export_onnx(model, example, workdir / f"{name}_fp32.onnx")
    int8 = onnx.quantize_static_int8(
        fp32, workdir / f"{name}_int8.onnx", calib_x, reduce_range=reduce_range
    )
    return fp32, int8


# --------------------------------------------------------------------------- stages


def torch_stage(name: str, model: nn.Module, example: torch.Tensor, note: str = "") -> Stage:
    """A PyTorch-eager stage: bytes = torch.save(state_dict), MACs of ``example[:1]``.

    A QAT model's fake quantisers call F.conv2d/F.linear directly, which count_macs cannot
    see, so its MACs are counted on export_float(model) (the same arithmetic).
    Taught in notebooks/13_capstone_pipeline.ipynb, "1. The FP32 teacher".
    """
    _check_torch_stage(name, model, example)
    counted = export_float(model) if qat.quant_layers(model) else model
    return Stage(
        name,
        prune.inference_fn(model),
        bench.serialized_size_bytes(model),
        bench.count_macs(counted.eval(), example[:1]),
        note,
    )


def onnx_stage(name: str, path: str | Path, macs: int, note: str = "") -> Stage:
    """An ONNX Runtime stage on one intra-op thread: bytes = the .onnx file's size.

    Taught in notebooks/13_capstone_pipeline.ipynb, "5. Export: ONNX FP32 and ONNX Runtime INT8 (QDQ)".
    """
    _check_onnx_stage(name, path, macs)
    run = onnx.ort_runner(onnx.ort_session(path, threads=1))
    return Stage(name, run, onnx.file_size(path), int(macs), note)


def run_pipeline(
    teacher: nn.Module,
    loader: DataLoader,
    calib_x: torch.Tensor,
    workdir: str | Path,
    *,
    width: int = 24,
    distill_epochs: int = 8,
    prune_ratio: float = 0.5,
    finetune_epochs: int = 3,
    qat_epochs: int = 2,
    bits: int = 8,
    teacher_onnx: bool = False,
) -> list[Stage]:
    """teacher -> distilled student -> pruned + fine-tuned -> QAT -> ONNX FP32 -> ONNX INT8.

    Returns the stages in that order (with ``teacher_onnx`` also the teacher exported to
    ONNX Runtime FP32, right after the teacher: how much the runtime alone buys).
    ``calib_x`` (N, 1, 8, 8): training images for ONNX Runtime's INT8 calibration.
    Used by benchmarks/bench_pipeline.py (notebook 13 runs the same steps one cell at a time).
    """
    _check_run(teacher, loader, calib_x, workdir, width, distill_epochs, prune_ratio,
               finetune_epochs, qat_epochs, bits)  # fmt: skip
    example = calib_x[:2]  # (2, 1, 8, 8)
    student = distill_student(teacher, loader, width=width, epochs=distill_epochs)
    pruned = prune_and_finetune(student, loader, teacher, ratio=prune_ratio, epochs=finetune_epochs)
    q = quantization_aware(pruned, loader, bits=bits, epochs=qat_epochs)
    fp32_path, int8_path = export_onnx_int8(export_float(q), example, calib_x, workdir, "pipeline")
    stages = [torch_stage("FP32 teacher", teacher, example, "PyTorch eager")]
    if teacher_onnx:
        path = onnx.export_onnx(teacher, example, Path(workdir) / "teacher_fp32.onnx")
        stages.append(onnx_stage("FP32 teacher (ORT)", path, stages[0].macs, "ONNX Runtime"))
    stages += [
        torch_stage("distilled student", student, example, "PyTorch eager"),
        torch_stage("pruned + fine-tuned", pruned, example, "PyTorch eager"),
        torch_stage("QAT INT8 (simulated)", q, example, "fake-quant, float32 file"),
    ]
    macs = stages[-1].macs
    stages += [
        onnx_stage("ONNX FP32", fp32_path, macs, "ONNX Runtime"),
        onnx_stage("ONNX INT8 QDQ", int8_path, macs, "ONNX Runtime"),
    ]
    return stages


# --------------------------------------------------------------------------- measuring


def accuracy_rows(
    stages: Sequence[Stage], x: torch.Tensor, y: torch.Tensor
) -> list[dict[str, Any]]:
    """Deterministic columns per stage: {"stage", "accuracy", "bytes", "MACs", "note"}.

    Taught in notebooks/13_capstone_pipeline.ipynb, "6. The stage table".
    """
    _check_stages(stages, x, y)
    rows = []
    for s in stages:
        with torch.inference_mode():
            acc = train.accuracy(s.run, x, y)
        rows.append(
            {"stage": s.name, "accuracy": acc, "bytes": s.bytes, "MACs": s.macs, "note": s.note}
        )
    return rows


def compare_stages(
    stages: Sequence[Stage],
    x: torch.Tensor,
    *,
    batches: Sequence[int] = (1, 32),
    rounds: int = 9,
    repeats: int = 5,
) -> dict[str, bench.Comparison]:
    """{"ms_b<batch>": labkit.bench.compare of every stage against the first one} on ONE thread.

    Each batch size is one interleaved comparison (stages timed in alternating order every
    round, so machine noise hits all alike); ONNX Runtime sessions were opened with one
    intra-op thread. Per stage s: median ms, speed-up t(first)/t(s) and its IQR over rounds.
    Taught in notebooks/13_capstone_pipeline.ipynb, "6. The stage table".
    """
    _check_stages(stages, x, batches=batches, rounds=rounds, repeats=repeats)
    names = [s.name for s in stages]
    out: dict[str, bench.Comparison] = {}
    for b in batches:
        xb = x[:b]  # (b, 1, 8, 8)
        fns = {s.name: functools.partial(s.run, xb) for s in stages}
        out[f"ms_b{b}"] = bench.compare(
            fns, baseline=names[0], rounds=rounds, repeats=repeats, threads=1
        )
    return out


def with_latency(
    rows: Sequence[Mapping[str, Any]], comparisons: Mapping[str, bench.Comparison]
) -> list[dict[str, Any]]:
    """The accuracy rows with columns from ``compare_stages`` added (new dicts): per key
    "ms_b<batch>" the median ms, "faster_b<batch>" = t(first stage) / t(stage) (the
    bench.compare ratio), "iqr_b<batch>" its (25 %, 75 %) spread and "clear_b<batch>"
    (True when that spread excludes 1.0).
    Taught in notebooks/13_capstone_pipeline.ipynb, "6. The stage table".
    """
    _check_latency(rows, comparisons)
    out = []
    for r in rows:
        row = dict(r)
        for key, comp in comparisons.items():
            b, name = key.removeprefix("ms_b"), r["stage"]
            row[key] = comp.median_ms[name]
            row[f"faster_b{b}"] = comp.speedup[name]
            row[f"iqr_b{b}"] = comp.spread[name]
            row[f"clear_b{b}"] = name == comp.baseline or comp.clear(name)
        out.append(row)
    return out


def compression_summary(
    base: Mapping[str, float], row: Mapping[str, float], latency_key: str = "ms_b1"
) -> dict[str, float]:
    """How ``row`` compares with ``base``:

    smaller = base["bytes"] / row["bytes"];  faster = base[latency_key] / row[latency_key]
    (omitted when either row has no ``latency_key``);
    accuracy_drop_points = 100 * (base["accuracy"] - row["accuracy"]) (negative = a gain).
    Taught in notebooks/13_capstone_pipeline.ipynb, "8. Did we hit the target?".
    """
    _check_summary(base, row, latency_key)
    out = {
        "smaller": base["bytes"] / row["bytes"],
        "accuracy_drop_points": 100.0 * (base["accuracy"] - row["accuracy"]),
    }
    if latency_key in base and latency_key in row:
        out["faster"] = base[latency_key] / row[latency_key]
    return out


def meets_target(
    summary: Mapping[str, float], target: Mapping[str, float] = TARGET
) -> dict[str, bool]:
    """Which parts of the target a compression_summary meets: {"size", "speed", "accuracy"}
    (speed only when the summary has "faster").
    Taught in notebooks/13_capstone_pipeline.ipynb, "8. Did we hit the target?".
    """
    _check_target(summary, target)
    out = {
        "size": summary["smaller"] >= target["smaller"],
        "accuracy": summary["accuracy_drop_points"] <= target["max_drop_points"],
    }
    if "faster" in summary:
        out["speed"] = summary["faster"] >= target["faster"]
    return out


def pick_stage(
    rows: Sequence[Mapping[str, Any]],
    max_bytes: float,
    max_ms: float,
    latency_key: str = "ms_b1",
) -> Mapping[str, Any] | None:
    """The most accurate row with bytes <= max_bytes and row[latency_key] <= max_ms
    (ties: fewer bytes, then lower latency); None when no row fits both budgets.

    labkit.bench.best_under_budget(rows, {"bytes": max_bytes, latency_key: max_ms}).
    Taught in notebooks/13_capstone_pipeline.ipynb, "8. Did we hit the target?".
    """
    _check_budget(rows, max_bytes, max_ms, latency_key)
    return bench.best_under_budget(rows, {"bytes": max_bytes, latency_key: max_ms})


def clearly_faster(a: Mapping[str, Any], b: Mapping[str, Any], latency_key: str = "ms_b1") -> bool:
    """True when row ``a`` is faster than row ``b`` beyond the timing noise.

    With the "iqr_b<batch>" columns of ``with_latency`` (speed-ups against the same baseline,
    measured in the same interleaved rounds): a's lower quartile above b's upper quartile.
    Without them: a plain comparison of the medians.
    Used by pareto_stages (labkit/pipeline/lesson.py).
    """
    _check_faster(a, b, latency_key)
    b_ = latency_key.removeprefix("ms_b")
    iqr = f"iqr_b{b_}"
    if iqr in a and iqr in b:
        return a[iqr][0] > b[iqr][1]
    return a[latency_key] < b[latency_key]


def pareto_stages(
    rows: Sequence[Mapping[str, Any]], latency_key: str = "ms_b1", noise_aware: bool = True
) -> list[str]:
    """Names of the stages on the accuracy-vs-latency Pareto front, fastest first.

    A stage is dominated when another is at least as accurate and at least as fast, and
    better in one of the two. With ``noise_aware`` (and the IQR columns of ``with_latency``)
    "faster" means clearly_faster: two stages within each other's timing noise count as
    equally fast, so the front does not depend on which way their medians happened to fall.
    Without IQR columns "faster" compares the medians. labkit.bench.pareto_front does the
    work (cost = latency, minimised; value = accuracy, maximised).
    Taught in notebooks/13_capstone_pipeline.ipynb, "7. The stage front".
    """
    _check_points(rows, latency_key)
    b_ = latency_key.removeprefix("ms_b")
    points = [(r[latency_key], r["accuracy"]) for r in rows]
    if noise_aware and all(f"iqr_b{b_}" in r for r in rows):
        front = bench.pareto_front(
            points, cheaper=lambda i, j: clearly_faster(rows[i], rows[j], latency_key)
        )
    else:
        front = bench.pareto_front(points)
    return [rows[i]["stage"] for i in front]


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_qat_model(qmodel: object) -> None:
    if not qat.quant_layers(check_model(qmodel, "qmodel")):
        raise ValueError(
            "qmodel has no QuantLayer: export_float needs a model prepared by labkit.qat "
            "(pipeline.quantization_aware)."
        )


def _check_model_input(
    model: object, x: object, names: tuple[str, str], ndim: int | None = 4
) -> None:
    """A model and a non-empty, finite input batch of ``ndim`` dimensions that it can take."""
    check_model(model, names[0])
    check_finite(check_tensor(x, names[1], ndim=ndim), names[1])
    _check_fits(model, x, names[1])  # type: ignore[arg-type]


def _check_export(
    model: object, example: object, calib_x: object, workdir: object, name: object
) -> None:
    _check_model_input(model, example, ("model", "example"), ndim=None)
    _check_model_input(model, calib_x, ("model", "calib_x"))
    if not isinstance(workdir, str | Path):
        raise ValueError(f"workdir must be a folder path (str or Path), got {workdir!r}.")
    _check_name(name, "name (of the .onnx files)")


def _check_torch_stage(name: object, model: object, example: object) -> None:
    _check_name(name)
    _check_model_input(model, example, ("model", "example"), ndim=None)


def _check_onnx_stage(name: object, path: object, macs: object) -> None:
    _check_name(name)
    onnx.check_onnx_file(path)  # type: ignore[arg-type]
    check_int(macs, "macs (per image, e.g. the stage's torch_stage(...).macs)", low=0)


def _check_stages(
    stages: object,
    x: object,
    y: object = None,
    batches: object = None,
    rounds: object = 3,
    repeats: object = 1,
) -> None:
    """Stages (of torch_stage / onnx_stage) and the images x that each can run; labels y
    (accuracy_rows) or distinct names, batch sizes in 1..len(x), rounds and repeats
    (compare_stages)."""
    if not isinstance(stages, Sequence) or not all(isinstance(s, Stage) for s in stages):
        raise ValueError(
            "stages must be a list of Stage (build them with torch_stage, onnx_stage)."
        )
    check_nonempty(stages, "stages")
    check_nonempty(check_tensor(x, "x"), "x")
    if y is not None and (not isinstance(y, torch.Tensor) or y.shape != (len(x),)):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be a tensor of {len(x)} labels (one per row of x), got {got}.")
    if y is not None and (y.is_floating_point() or y.dtype == torch.bool):
        raise ValueError(f"y must hold class indices (int64), got dtype {y.dtype}; use y.long().")
    for s in stages:
        try:
            with torch.inference_mode():
                s.run(x[:1])
        except Exception as exc:  # noqa: BLE001 - torch or ONNX Runtime: either way, x does not fit
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise ValueError(
                f"x of shape {tuple(x.shape)} does not fit stage {s.name!r} ({first}); "
                "pass the images the stages were built for, e.g. (N, 1, 8, 8)."
            ) from None
    if batches is None:
        return
    names = [s.name for s in stages]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"compare_stages needs 2+ stages with unique names, got {names}.")
    for i, b in enumerate(check_nonempty(batches, "batches")):
        check_int(
            b, f"batches[{i}] (a batch size, at most the {len(x)} images given)", low=1, high=len(x)
        )
    check_int(rounds, "rounds (interleaved timing rounds)", low=3, high=1000)
    check_int(repeats, "repeats (timed calls per round)", low=1, high=10_000)


def _check_latency(rows: object, comparisons: object) -> None:
    check_nonempty(rows, "rows")
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise ValueError("comparisons must be the non-empty dict that compare_stages returns.")
    for key, comp in comparisons.items():
        if not str(key).startswith("ms_b") or not hasattr(comp, "median_ms"):
            raise ValueError(
                f"comparisons must map 'ms_b<batch>' to a labkit.bench.Comparison, as "
                f"compare_stages returns, got {key!r}: {type(comp).__name__}."
            )
    for i, r in enumerate(rows):  # type: ignore[arg-type]
        _check_row(r, f"rows[{i}]", "stage")
        for key, comp in comparisons.items():
            if r["stage"] not in comp.median_ms:
                raise ValueError(
                    f"rows[{i}]: stage {r['stage']!r} was not timed in comparisons[{key!r}] "
                    f"(timed: {list(comp.median_ms)})."
                )
