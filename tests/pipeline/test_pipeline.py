"""labkit.pipeline: the chaining on tiny models and few steps, and the stage-table arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit import bench, data, models, pipeline, qat


@pytest.fixture(scope="module")
def tiny():
    """A small untrained teacher, 64 training digits and the test split."""
    torch.manual_seed(0)
    teacher = models.cnn(width=4, depth=3).eval()
    return teacher, _fresh_loader(), data.digits()


def _fresh_loader():
    """A new loader each time: a loader's shuffling generator advances as it is used."""
    return data.digits_loaders(batch_size=32, train_subset=64).train


def _convs(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_distill_student_is_a_seeded_cnn_of_the_given_width(tiny) -> None:
    teacher = tiny[0]
    a, b = (pipeline.distill_student(teacher, _fresh_loader(), width=6, epochs=1) for _ in range(2))
    assert _convs(a) == [6, 12, 12] and not a.training
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)  # same seed, same data -> same student
    untrained = models.cnn(width=6, depth=3)
    assert any(
        not torch.equal(p, q) for p, q in zip(a.parameters(), untrained.parameters(), strict=True)
    )


def test_prune_and_finetune_removes_channels_and_keeps_the_input(tiny) -> None:
    teacher, loader, digits = tiny
    student = models.cnn(width=8, depth=3).eval()
    before = [p.clone() for p in student.parameters()]
    small = pipeline.prune_and_finetune(student, loader, teacher, ratio=0.5, epochs=1)
    assert _convs(small) == [4, 8, 8]
    assert bench.count_macs(small, digits["test"].x[:1]) < bench.count_macs(
        student, digits["test"].x[:1]
    )
    assert all(torch.equal(p, q) for p, q in zip(before, student.parameters(), strict=True))
    assert small(digits["test"].x[:3]).shape == (3, 10)
    with pytest.raises(ValueError, match="ratio"):
        pipeline.prune_and_finetune(student, loader, ratio=1.0)


def test_quantization_aware_then_export_float_lands_on_the_int8_grid(tiny) -> None:
    _, loader, digits = tiny
    torch.manual_seed(1)
    model = models.cnn(width=4, depth=3).eval()
    q = pipeline.quantization_aware(model, loader, bits=8, epochs=1)
    assert len(qat.quant_layers(q)) == 4
    plain = pipeline.export_float(q)
    assert not qat.quant_layers(plain) and len(qat.quant_layers(q)) == 4  # q unchanged
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())  # folded
    for ql, layer in zip(
        qat.quant_layers(q).values(),
        [m for m in plain.modules() if isinstance(m, nn.Conv2d | nn.Linear)],
        strict=True,
    ):
        scale, _, _ = qat.weight_qparams(ql.layer.weight, 8)
        steps = layer.weight / scale
        torch.testing.assert_close(steps, steps.round(), atol=1e-3, rtol=0)
        assert steps.abs().max() <= 128
    # with activation quantisation switched off the QAT model and the export agree
    for m in qat.quant_layers(q).values():
        m.mode = "float"
    x = digits["test"].x[:8]
    with torch.no_grad():
        torch.testing.assert_close(plain(x), q(x), atol=1e-5, rtol=1e-4)


def test_export_float_needs_a_qat_model() -> None:
    with pytest.raises(ValueError, match="labkit.qat"):
        pipeline.export_float(models.cnn(width=4))


def test_torch_stage_counts_bytes_and_macs_also_for_a_qat_model(tiny) -> None:
    _, loader, digits = tiny
    x = digits["test"].x[:2]
    model = models.cnn(width=4, depth=3).eval()
    st = pipeline.torch_stage("m", model, x)
    assert st.bytes == bench.serialized_size_bytes(model)
    assert st.macs == bench.count_macs(model, x[:1])
    q = qat.qat_model(model, [x], bits=8)
    assert pipeline.torch_stage("q", q, x).macs == st.macs  # fake quantisers hide no MACs
    assert st.run(x).shape == (2, 10)


def test_run_pipeline_chains_every_stage(tiny, tmp_path) -> None:
    teacher, loader, digits = tiny
    stages = pipeline.run_pipeline(
        teacher, loader, digits["train"].x[:64], tmp_path,
        width=8, distill_epochs=1, finetune_epochs=1, qat_epochs=1,
    )  # fmt: skip
    names = [s.name for s in stages]
    assert names == [
        "FP32 teacher", "distilled student", "pruned + fine-tuned",
        "QAT INT8 (simulated)", "ONNX FP32", "ONNX INT8 QDQ",
    ]  # fmt: skip
    by = {s.name: s for s in stages}
    assert by["ONNX INT8 QDQ"].bytes < by["ONNX FP32"].bytes
    assert by["pruned + fine-tuned"].macs < by["distilled student"].macs
    assert by["QAT INT8 (simulated)"].macs == by["ONNX FP32"].macs == by["ONNX INT8 QDQ"].macs
    x, y = digits["test"]
    rows = pipeline.accuracy_rows(stages, x[:40], y[:40])
    assert [r["stage"] for r in rows] == names
    assert all(0 <= r["accuracy"] <= 1 and r["bytes"] > 0 for r in rows)
    # the ONNX FP32 file runs the QAT model's rounded weights: logits close to its INT8 twin
    fp32, int8 = by["ONNX FP32"].run(x[:16]), by["ONNX INT8 QDQ"].run(x[:16])
    assert fp32.shape == int8.shape == (16, 10)
    comps = pipeline.compare_stages(stages[-2:], x, batches=(1, 4), rounds=3, repeats=1)
    assert set(comps) == {"ms_b1", "ms_b4"}
    timed = pipeline.with_latency(rows[-2:], comps)
    assert all(r["ms_b1"] > 0 and r["ms_b4"] > 0 for r in timed)
    assert timed[0]["faster_b1"] == 1.0 and timed[0]["clear_b1"]  # the baseline


def _row(name, acc, nbytes, b1, b32=None):
    r = {"stage": name, "accuracy": acc, "bytes": nbytes, "ms_b1": b1}
    if b32 is not None:
        r["ms_b32"] = b32
    return r


def test_compression_summary_arithmetic() -> None:
    base, row = _row("t", 0.99, 1000, 2.0, 20.0), _row("s", 0.985, 100, 0.5, 2.5)
    s = pipeline.compression_summary(base, row)
    assert s == pytest.approx({"smaller": 10.0, "faster": 4.0, "accuracy_drop_points": 0.5})
    assert pipeline.compression_summary(base, row, "ms_b32")["faster"] == pytest.approx(8.0)
    no_lat = pipeline.compression_summary(
        {"bytes": 10, "accuracy": 0.5}, {"bytes": 5, "accuracy": 0.6}
    )
    assert set(no_lat) == {"smaller", "accuracy_drop_points"}
    assert no_lat["accuracy_drop_points"] == pytest.approx(-10.0)
    with pytest.raises(ValueError, match="bytes"):
        pipeline.compression_summary(base, {"accuracy": 0.9})
    with pytest.raises(ValueError, match="bytes"):
        pipeline.compression_summary(base, _row("zero", 0.9, 0, 1.0))


def test_meets_target_checks_each_part() -> None:
    ok = pipeline.meets_target({"smaller": 8.0, "faster": 2.0, "accuracy_drop_points": 1.5})
    assert ok == {"size": True, "speed": True, "accuracy": True}
    bad = pipeline.meets_target({"smaller": 7.9, "faster": 1.9, "accuracy_drop_points": 1.6})
    assert bad == {"size": False, "speed": False, "accuracy": False}
    assert "speed" not in pipeline.meets_target({"smaller": 9, "accuracy_drop_points": 0})


def test_pick_stage_budget_ties_and_none() -> None:
    rows = [_row("a", 0.99, 5000, 1.0), _row("b", 0.98, 800, 0.2), _row("c", 0.98, 600, 0.3)]
    assert pipeline.pick_stage(rows, 10_000, 5.0)["stage"] == "a"
    assert pipeline.pick_stage(rows, 1000, 5.0)["stage"] == "c"  # tie on accuracy: fewer bytes
    assert pipeline.pick_stage(rows, 1000, 0.2)["stage"] == "b"  # budget is inclusive
    assert pipeline.pick_stage(rows, 100, 5.0) is None
    with pytest.raises(ValueError, match="max_ms"):
        pipeline.pick_stage(rows, 100, 0)


def test_pareto_stages_drops_the_dominated_stage() -> None:
    rows = [
        _row("slow best", 0.99, 9000, 3.0),
        _row("fast", 0.97, 1000, 0.5),
        _row("dominated", 0.96, 2000, 1.0),
        _row("middle", 0.98, 4000, 1.5),
    ]
    assert pipeline.pareto_stages(rows) == ["fast", "middle", "slow best"]


class _FakeComparison:
    """What with_latency reads from a labkit.bench.Comparison."""

    def __init__(self, ms, spread):
        self.baseline = next(iter(ms))
        self.median_ms = ms
        self.speedup = {n: ms[self.baseline] / v for n, v in ms.items()}
        self.spread = spread

    def clear(self, name):
        lo, hi = self.spread[name]
        return not lo <= 1.0 <= hi


def test_with_latency_merges_without_mutating() -> None:
    rows = [
        {"stage": "a", "accuracy": 1.0, "bytes": 1},
        {"stage": "b", "accuracy": 1.0, "bytes": 1},
    ]
    comp = _FakeComparison({"a": 0.2, "b": 0.1}, {"a": (1.0, 1.0), "b": (1.8, 2.2)})
    merged = pipeline.with_latency(rows, {"ms_b1": comp})
    assert merged[1]["ms_b1"] == 0.1 and "ms_b1" not in rows[1]
    assert merged[1]["faster_b1"] == 2.0 and merged[1]["iqr_b1"] == (1.8, 2.2)
    assert merged[1]["clear_b1"] and merged[0]["clear_b1"]
    with pytest.raises(ValueError, match="not timed"):
        pipeline.with_latency([{"stage": "zzz", "accuracy": 1, "bytes": 1}], {"ms_b1": comp})


def test_pareto_front_ignores_differences_within_the_noise() -> None:
    # "int8" is 0.02 ms faster than "fp32" but their speed-up IQRs overlap: within the noise
    # they are equally fast, so the more accurate "fp32" dominates it (the medians alone
    # would keep both, and which one looks faster would change from run to run).
    rows = [
        {**_row("base", 0.99, 9000, 1.0), "iqr_b1": (1.0, 1.0)},
        {**_row("fp32", 0.985, 5000, 0.21), "iqr_b1": (4.4, 5.0)},
        {**_row("int8", 0.98, 2000, 0.19), "iqr_b1": (4.8, 5.6)},
        {**_row("slow", 0.97, 5000, 2.0), "iqr_b1": (0.45, 0.55)},
    ]
    assert pipeline.pareto_stages(rows) == ["fp32", "base"]
    assert pipeline.pareto_stages(rows, noise_aware=False) == ["int8", "fp32", "base"]
    rows[2]["accuracy"] = 0.985  # equal accuracy, within noise: both stay
    assert pipeline.pareto_stages(rows) == ["int8", "fp32", "base"]
    rows[2]["iqr_b1"] = (5.1, 5.6)  # now clearly faster at equal accuracy: fp32 dominated
    assert pipeline.pareto_stages(rows) == ["int8", "base"]
    assert pipeline.clearly_faster(rows[2], rows[1]) and not pipeline.clearly_faster(
        rows[1], rows[2]
    )


def test_compare_stages_rejects_bad_input() -> None:
    st = pipeline.Stage("id", lambda x: x, 1, 0)
    st2 = pipeline.Stage("id2", lambda x: x, 1, 0)
    with pytest.raises(ValueError, match="batch"):
        pipeline.compare_stages([st, st2], torch.zeros(4, 1, 8, 8), batches=(8,))
    with pytest.raises(ValueError, match="2\\+ stages"):
        pipeline.compare_stages([st], torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match="unique"):
        pipeline.compare_stages([st, st], torch.zeros(4, 1, 8, 8))


_ST = pipeline.Stage("id", lambda x: x, 1, 0)
_ST2 = pipeline.Stage("id2", lambda x: x, 1, 0)
_X = torch.zeros(4, 1, 8, 8)
_ROWS = [_row("a", 0.99, 5000, 1.0), _row("b", 0.98, 800, 0.2)]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        # a non-model where a model is expected
        (lambda: pipeline.torch_stage("m", "model.pt", _X), "model must be a torch.nn.Module"),
        (lambda: pipeline.export_float("qat.pt"), "qmodel"),
        (lambda: pipeline.prune_and_finetune({"w": 1}, [], ratio=0.5), "model"),
        (lambda: pipeline.run_pipeline("teacher.pt", [], _X, "."), "teacher"),
        # empty tensors and lists, NaN
        (lambda: pipeline.torch_stage("m", models.cnn(4), torch.zeros(0, 1, 8, 8)), "example"),
        (
            lambda: pipeline.export_onnx_int8(
                models.cnn(4), _X, torch.full((4, 1, 8, 8), float("nan")), ".", "n"
            ),
            "calib_x",
        ),
        (lambda: pipeline.accuracy_rows([], _X, torch.zeros(4)), "stages"),
        (lambda: pipeline.accuracy_rows([_ST], _X, torch.zeros(3)), "y must be"),
        (lambda: pipeline.accuracy_rows(["stage"], _X, torch.zeros(4)), "Stage"),
        (lambda: pipeline.compare_stages([_ST, _ST2], _X, batches=()), "batches"),
        (lambda: pipeline.compare_stages([_ST, _ST2], _X[:0]), "x is empty"),
        (lambda: pipeline.with_latency([], {"ms_b1": None}), "rows"),
        (lambda: pipeline.with_latency(_ROWS, {}), "comparisons"),
        (lambda: pipeline.pick_stage([], 100, 1.0), "rows"),
        (lambda: pipeline.pareto_stages([]), "Pareto points"),
        (lambda: pipeline.pareto_stages([{"stage": "a", "accuracy": 1.0, "bytes": 1}]), "ms_b1"),
        (lambda: pipeline.pareto_stages([_row("a", 0.9, 0, 1.0)]), "bytes"),
        (
            lambda: pipeline.compression_summary(_ROWS[0], {**_ROWS[1], "accuracy": float("nan")}),
            "accuracy",
        ),
        (lambda: pipeline.compression_summary(_ROWS[0], {**_ROWS[1], "ms_b1": 0.0}), "ms_b1"),
        (lambda: pipeline.pick_stage(_ROWS, float("nan"), 1.0), "max_bytes"),
        # a bool or a fraction where a batch size is meant
        (lambda: pipeline.compare_stages([_ST, _ST2], _X, batches=(True,)), "batch"),
        (lambda: pipeline.compare_stages([_ST, _ST2], _X, batches=(1.5,)), "batch"),
    ],
)
def test_bad_input_gets_a_clear_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()
