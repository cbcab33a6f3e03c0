"""labkit.precision: formats from the bits vs torch, the loss scaler vs torch.amp.GradScaler."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from labkit import MissingDependency, precision

FORMATS = list(precision.FORMATS)
INT_OF = {32: torch.int32, 16: torch.int16, 8: torch.uint8}


def torch_value_of_bits(bits: torch.Tensor, fmt: precision.FloatFormat) -> torch.Tensor:
    """Reinterpret unsigned bit patterns as fmt's dtype with torch's own view (independent)."""
    signed = bits - (bits >= 2 ** (fmt.bits - 1)).long() * 2**fmt.bits if fmt.bits > 8 else bits
    return signed.to(INT_OF[fmt.bits]).view(fmt.dtype).double()


@pytest.mark.parametrize("name", FORMATS)
def test_limits_match_torch_finfo(name: str) -> None:
    fmt = precision.FORMATS[name]
    lim, fi = precision.limits(fmt), torch.finfo(fmt.dtype)
    assert lim["max"] == fi.max
    assert lim["smallest_normal"] == fi.smallest_normal
    assert lim["eps"] == fi.eps
    one_bit = torch_value_of_bits(torch.tensor([1]), fmt).item()
    assert lim["smallest_subnormal"] == one_bit == 2.0 ** (1 - fmt.bias - fmt.mantissa_bits)


def test_limits_table_rows() -> None:
    rows = precision.limits_table()
    assert [r["format"] for r in rows] == FORMATS
    assert all(r["matches torch.finfo"] for r in rows)


@pytest.mark.parametrize("name", ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"])
def test_bits_to_float_every_bit_pattern_like_torch(name: str) -> None:
    fmt = precision.FORMATS[name]
    patterns = torch.arange(2**fmt.bits)
    expected = torch_value_of_bits(patterns, fmt)
    ours = torch.tensor(
        [precision.bits_to_float(b, fmt) for b in range(2**fmt.bits)], dtype=torch.float64
    )
    assert torch.equal(ours.isnan(), expected.isnan())
    ok = ~expected.isnan()
    assert torch.equal(ours[ok], expected[ok])


def test_fp32_bits_to_float_on_sampled_patterns() -> None:
    fmt = precision.FORMATS["fp32"]
    gen = torch.Generator().manual_seed(0)
    patterns = torch.randint(0, 2**32, (2000,), generator=gen, dtype=torch.int64).tolist()
    patterns += [0, 1, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x00800000, 0x3F800000]
    for b in patterns:
        expected = torch_value_of_bits(torch.tensor([b]), fmt).item()
        got = precision.bits_to_float(b, fmt)
        assert (math.isnan(got) and math.isnan(expected)) or got == expected, hex(b)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-6e4, max_value=6e4, allow_nan=False, allow_subnormal=True),
    st.sampled_from(["fp16", "bf16", "fp8_e5m2", "fp8_e4m3"]),
)
def test_float_to_bits_round_trip_is_torchs_rounding(value: float, name: str) -> None:
    fmt = precision.FORMATS[name]
    stored = precision.bits_to_float(precision.float_to_bits(value, fmt), fmt)
    expected = torch.tensor(value, dtype=torch.float64).to(fmt.dtype).double().item()
    assert stored == expected or (math.isnan(stored) and math.isnan(expected))


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-3, max_value=6e4), st.sampled_from(["fp16", "bf16", "fp8_e5m2"]))
def test_relative_error_of_normals_is_at_most_half_eps(value: float, name: str) -> None:
    info = precision.explain(value, name)
    if info["kind"] == "normal":
        assert info["rel_error"] <= precision.limits(name)["eps"] / 2 + 1e-15


def test_explain_overflow_underflow_and_fields() -> None:
    assert precision.explain(1e5, "fp16")["kind"] == "inf"
    assert precision.explain(1e-9, "fp16")["kind"] == "zero"
    assert precision.explain(1e-9, "fp16")["rel_error"] == 1.0
    assert precision.explain(1e-6, "fp16")["kind"] == "subnormal"
    one = precision.explain(1.0, "bf16")
    assert (one["sign"], one["exponent"], one["mantissa"]) == (0, 127, 0)
    assert one["bit_string"] == "0|01111111|0000000"
    assert precision.explain(-2.0, "fp16")["bits"] == 0xC000


def test_failures_loss_scaling_fixes() -> None:
    small = torch.full((100,), 1e-8)
    assert precision.underflow_fraction(small, torch.float16) == 1.0
    assert precision.underflow_fraction(small * 2**16, torch.float16) == 0.0
    assert precision.underflow_fraction(small, torch.bfloat16) == 0.0
    assert precision.running_sum(1e-4, 1000, torch.float16) == 1.0  # stagnates
    assert abs(precision.running_sum(1e-4, 1000, torch.float32) - 1.1) < 1e-3


# ------------------------------------------------------------------ loss scaler vs GradScaler


@pytest.mark.parametrize(
    ("init_scale", "growth_interval", "seed"),
    [(2.0**16, 3, 0), (2.0**16, 1, 1), (2.0**10, 5, 2), (2.0**24, 2000, 3)],
)
def test_scaler_decisions_equal_gradscaler(
    init_scale: float, growth_interval: int, seed: int
) -> None:
    grads = precision.gradient_sequence(steps=40, seed=seed)
    ours = precision.replay_gradients(
        grads, precision.DynamicLossScaler(init_scale, growth_interval=growth_interval)
    )
    theirs = precision.replay_gradients(
        grads, torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    )
    assert ours == theirs
    assert any(not stepped for _, stepped in ours), "the sequence must contain skipped steps"
    assert any(stepped for _, stepped in ours)


def test_scaler_trains_a_model_exactly_like_gradscaler() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    models, scalers = [], []
    for make in (
        lambda: precision.DynamicLossScaler(2.0**8, growth_interval=2),
        lambda: torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=2),
    ):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = make()
        scales = []
        for step in range(12):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            if step in (3, 4, 9):
                loss = loss * math.inf  # a bad batch: inf/NaN gradients
            scaler.scale(loss).backward()
            scaler.step(opt)
            if isinstance(scaler, torch.amp.GradScaler):
                scaler.update()
                scales.append(scaler.get_scale())
            else:
                scales.append(scaler.scale_value)
        models.append(model)
        scalers.append(scales)
    assert scalers[0] == scalers[1]
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-7)
        assert torch.isfinite(p).all()


def test_update_scale_rule() -> None:
    assert precision.update_scale(8.0, 5, True) == (4.0, 0)
    assert precision.update_scale(8.0, 0, False, growth_interval=2) == (8.0, 1)
    assert precision.update_scale(8.0, 1, False, growth_interval=2) == (16.0, 0)
    top = float(torch.finfo(torch.float32).max)
    assert precision.update_scale(top, 0, False, growth_interval=1) == (top, 0)


def test_unscale_before_step_is_used_once() -> None:
    w = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=1.0)
    scaler = precision.DynamicLossScaler(init_scale=4.0)
    scaler.scale((w * torch.tensor([1.0, 2.0, 3.0])).sum()).backward()
    assert not scaler.unscale_(opt)
    assert torch.equal(w.grad, torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError):
        scaler.unscale_(opt)
    assert scaler.step(opt)
    assert torch.equal(w.detach(), torch.tensor([0.0, -1.0, -2.0]))


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown float format"):
        precision.get_format("fp12")
    with pytest.raises(ValueError, match="bits must be"):
        precision.fields(2**16, "fp16")
    with pytest.raises(ValueError, match="init_scale"):
        precision.DynamicLossScaler(init_scale=0)
    with pytest.raises(ValueError, match="backoff_factor"):
        precision.DynamicLossScaler(backoff_factor=2.0)
    with pytest.raises(ValueError, match="non-zero"):
        precision.underflow_fraction(torch.zeros(3), torch.float16)
    with pytest.raises(ValueError, match="torch.Tensor"):
        precision.round_trip([1.0], torch.float16)


# ------------------------------------------------------------------ autocast


def test_op_dtypes_under_cpu_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(5, 8), torch.randint(0, 4, (5,))

    def forward() -> None:
        nn.functional.cross_entropy(model(x), y)

    rows = {(r["op"], r["output"]) for r in precision.op_dtypes(forward)}
    assert ("addmm", "bfloat16") in rows  # matmuls run in bf16
    assert ("_log_softmax", "float32") in rows  # the loss is on CPU's fp32 list: its input is fp32
    assert ("_to_copy", "bfloat16") in rows  # autocast's casts are visible
    plain = precision.op_dtypes(forward, dtype=None)
    assert {r["output"] for r in plain} <= {"float32", "float32, float32"}


def test_autocast_policy_reads_each_devices_table() -> None:
    """Issue 19: exp, softmax and norms are upcast by CUDA's autocast, not by CPU's."""
    cpu = precision.autocast_policy("cpu", torch.bfloat16)
    cuda = precision.autocast_policy("cuda", torch.float16)
    assert set(cpu) == set(cuda) == set(precision.AUTOCAST_PROBES)
    for op in ("matmul", "linear", "conv2d"):
        assert cpu[op] == cuda[op] == "16-bit"
    for op in ("cross_entropy", "mse_loss", "prod", "cdist"):
        assert cpu[op] == cuda[op] == "fp32"
    for op in ("exp", "log", "sum", "softmax", "log_softmax", "layer_norm", "vector_norm"):
        assert cpu[op] == "input's dtype" and cuda[op] == "fp32", op
    assert cpu["relu"] == cuda["relu"] == "input's dtype"
    # the device decides, not the dtype: CPU fp16 follows CPU's table, CUDA bf16 CUDA's
    assert precision.autocast_policy("cpu", torch.float16) == cpu
    assert precision.autocast_policy("cuda", torch.bfloat16) == cuda
    # CUDA autocast was switched on for the fake run only
    assert not torch.is_autocast_enabled("cuda") and not torch.is_autocast_enabled("cpu")
    assert torch.get_autocast_dtype("cuda") == torch.float16


def test_amp_memory_saves_activations_not_weights_or_gradients() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 10))  # fmt: skip
    n_params = sum(p.numel() for p in model.parameters())

    def memory(batch: int) -> dict[str, int]:
        return precision.amp_memory(model, torch.randn(batch, 64), torch.randint(0, 10, (batch,)))

    big, small = memory(1024), memory(8)
    assert big["weights"] == big["gradients"] == small["gradients"] == 4 * n_params  # fp32
    # activations in 2 bytes instead of 4 (plus the weight copies and the fp32 logits)
    assert 0.45 < big["saved_autocast"] / big["saved_fp32"] < 0.6
    # at a small batch the bf16 weight copies autocast saves for backward outweigh the saving
    copies = 2 * (128 * 128 + 128 * 10)  # the layers whose input needs a gradient
    assert small["saved_autocast"] > small["saved_fp32"]
    assert small["saved_autocast"] - small["saved_fp32"] / 2 >= copies
    assert all(p.grad is None for p in model.parameters())  # leaves no gradients behind
    with pytest.raises(ValueError, match="dtype"):
        precision.amp_memory(model, torch.randn(4, 64), torch.randint(0, 10, (4,)), torch.int8)
    with pytest.raises(ValueError, match="x and y"):
        precision.amp_memory(model, torch.randn(4, 64), torch.randint(0, 10, (3,)))
    with pytest.raises(ValueError, match="device_type"):
        precision.autocast_policy("tpu")
    with pytest.raises(ValueError, match="dtype"):
        precision.autocast_policy("cpu", torch.float32)


def test_amp_train_step_keeps_fp32_master_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    first = precision.amp_train_step(model, x, y, opt)
    for _ in range(20):
        last = precision.amp_train_step(
            model, x, y, opt, scaler=torch.amp.GradScaler("cpu"), max_grad_norm=1.0
        )
    assert last < first
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_cuda_path_needs_a_gpu() -> None:
    model = nn.Linear(4, 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    if torch.cuda.is_available():
        out = precision.cuda_fp16_training(model, x, y, steps=5)
        assert len(out["losses"]) == 5 and math.isfinite(out["losses"][-1])
    else:
        with pytest.raises(MissingDependency, match="GPU"):
            precision.cuda_fp16_training(model, x, y)


def test_loss_scale_guards() -> None:
    """Issue 13: an update with scale -1 returned a negative scale; now it is refused."""
    for bad in (-1.0, 0.0, math.inf, math.nan, 1e39, "2"):
        with pytest.raises(ValueError, match="scale"):
            precision.update_scale(bad, 0, False)
    with pytest.raises(ValueError, match="backed off to 0"):
        precision.update_scale(0.0, 0, True)
    with pytest.raises(ValueError, match="growth_tracker"):
        precision.update_scale(8.0, -1, False)
    with pytest.raises(ValueError, match="growth_tracker"):
        precision.update_scale(8.0, 5, False, growth_interval=3)
    with pytest.raises(ValueError, match="growth_interval"):
        precision.update_scale(8.0, 0, False, growth_interval=0)
    with pytest.raises(ValueError, match="growth_factor"):
        precision.update_scale(8.0, 0, False, growth_factor=0.5)
    with pytest.raises(ValueError, match="backoff_factor"):
        precision.update_scale(8.0, 0, True, backoff_factor=-0.5)
    with pytest.raises(ValueError, match="init_scale"):
        precision.DynamicLossScaler(init_scale=-1.0)
    with pytest.raises(ValueError, match="init_scale"):
        precision.DynamicLossScaler(init_scale=math.inf)
    with pytest.raises(ValueError, match="growth_interval"):
        precision.DynamicLossScaler(growth_interval=0)


def test_format_and_size_guards() -> None:
    with pytest.raises(ValueError, match="floating-point torch.dtype"):
        precision.round_trip(torch.ones(3), torch.int8)
    with pytest.raises(ValueError, match="floating-point torch.dtype"):
        precision.underflow_fraction(torch.ones(3), "fp16")
    with pytest.raises(ValueError, match="steps"):
        precision.running_sum(1e-4, -1, torch.float16)
    with pytest.raises(ValueError, match="steps"):
        precision.running_sum(1e-4, 10**9, torch.float16)
    with pytest.raises(ValueError, match="2 GB"):
        precision.gradient_sequence(steps=10**5, size=10**5)  # refused before allocating
    with pytest.raises(ValueError, match="size"):
        precision.gradient_sequence(size=0)
    with pytest.raises(ValueError, match="steps"):
        precision.cuda_fp16_training(
            nn.Linear(2, 2), torch.ones(2, 2), torch.zeros(2).long(), steps=0
        )


def test_bf16_support_and_verdict() -> None:
    support = precision.bf16_support()
    assert set(support) == {"avx512_bf16", "amx_tile", "torch_kernels", "onednn_bf16"}
    native = {**support, "onednn_bf16": True}
    emulated = {**support, "onednn_bf16": False}
    assert "as expected" in precision.bf16_verdict(native, {"matmul": (1.8, True)})
    assert "not what the flags predict" in precision.bf16_verdict(native, {"matmul": (0.5, True)})
    assert "as expected" in precision.bf16_verdict(
        emulated, {"matmul": (0.05, True), "step": (1.01, False)}
    )
    text = precision.bf16_verdict(emulated, {"matmul": (2.0, True)})
    assert "not what the flags predict" in text and "faster on matmul" in text


# ------------------------------------------------------------------ bad input (issue 18)


def test_format_bad_input_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="unknown float format"):
        precision.get_format(["fp16"])  # unhashable: was a TypeError
    with pytest.raises(ValueError, match="exponent_bits"):
        precision.bits_to_float(0, precision.FloatFormat("wide", 12, 3, torch.float32))
    with pytest.raises(ValueError, match="exponent_bits"):
        precision.bits_to_float(0, precision.FloatFormat("b", True, 3, torch.float32))
    with pytest.raises(ValueError, match="bits"):
        precision.fields(True, "fp16")  # a bool is not a bit pattern
    with pytest.raises(ValueError, match="fmt 'custom'"):
        precision.float_to_bits(1.0, precision.FloatFormat("custom", 5, 5, torch.float32))
    with pytest.raises(ValueError, match="value"):
        precision.explain("0.1", "fp16")
    with pytest.raises(ValueError, match="x is empty"):
        precision.round_trip(torch.empty(0), torch.float16)
    with pytest.raises(ValueError, match="x is empty"):
        precision.underflow_fraction(torch.empty(0), torch.float16)
    with pytest.raises(ValueError, match="increment"):
        precision.running_sum(math.nan, 10, torch.float16)
    with pytest.raises(ValueError, match="steps"):
        precision.running_sum(1e-4, True, torch.float16)


def test_scaler_bad_input_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="growth_tracker"):
        precision.update_scale(8.0, True, False)
    with pytest.raises(ValueError, match="growth_factor"):
        precision.update_scale(8.0, 0, False, growth_factor=math.inf)
    with pytest.raises(ValueError, match="params"):
        precision.DynamicLossScaler().unscale_("sgd")
    grads = [torch.ones(3), torch.ones(4)]
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        precision.replay_gradients(grads, precision.DynamicLossScaler())
    with pytest.raises(ValueError, match="scaler"):
        precision.replay_gradients([torch.ones(3)], "GradScaler")
    with pytest.raises(ValueError, match="lr"):
        precision.replay_gradients([torch.ones(3)], precision.DynamicLossScaler(), lr=math.nan)
    assert len(precision.gradient_sequence(steps=25, size=2)) == 25  # size < 4 was an IndexError


def test_autocast_bad_input_names_the_parameter() -> None:
    model = nn.Linear(4, 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="fn"):
        precision.op_dtypes(42)
    with pytest.raises(ValueError, match="dtype"):
        precision.op_dtypes(lambda: model(x), dtype=torch.int8)  # autocast would ignore it
    support = precision.bf16_support()
    with pytest.raises(ValueError, match="results"):
        precision.bf16_verdict(support, {})
    with pytest.raises(ValueError, match="results"):
        precision.bf16_verdict(support, {"matmul": (math.nan, True)})
    with pytest.raises(ValueError, match="model"):
        precision.amp_train_step("model.pt", x, y, opt)
    with pytest.raises(ValueError, match="x and y"):
        precision.amp_train_step(model, x, y[:5], opt)
    with pytest.raises(ValueError, match="x and y"):
        precision.amp_train_step(model, x[:0], y[:0], opt)
    with pytest.raises(ValueError, match="max_grad_norm"):
        precision.amp_train_step(model, x, y, opt, max_grad_norm=-1.0)
    with pytest.raises(ValueError, match="steps"):
        precision.cuda_fp16_training(model, x, y, steps=10**9)
    with pytest.raises(ValueError, match="model"):
        precision.cuda_fp16_training({"weight": x}, x, y)
    with pytest.raises(ValueError, match="lr"):
        precision.cuda_fp16_training(model, x, y, lr=0.0)
