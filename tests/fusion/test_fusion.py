"""labkit.fusion: BN folding vs torch's own fuse_conv_bn_eval, fused QKV, chains, ORT levels."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from labkit import fusion, models
from labkit import onnx as lk_onnx
from labkit.fusion.lesson import _no_graph_cache_across_isas


def random_bn(c: int, seed: int, affine: bool = True) -> nn.BatchNorm2d:
    """A BN in eval mode with non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(c, affine=affine, eps=1e-3)
    bn.running_mean = torch.randn(c, generator=g)
    bn.running_var = torch.rand(c, generator=g) * 2 + 0.1
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.randn(c, generator=g))
            bn.bias.copy_(torch.randn(c, generator=g))
    return bn.eval()


@settings(max_examples=25, deadline=None)
@given(
    groups=st.sampled_from([1, 2, 4]),
    per_group_in=st.integers(1, 3),
    per_group_out=st.integers(1, 3),
    kernel=st.sampled_from([1, 3]),
    bias=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_fold_matches_conv_bn_and_torch(
    groups, per_group_in, per_group_out, kernel, bias, affine, seed
):
    torch.manual_seed(seed)
    c_in, c_out = groups * per_group_in, groups * per_group_out
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=bias).eval()
    bn = random_bn(c_out, seed, affine)
    x = torch.randn(2, c_in, 6, 6)
    folded = fusion.fold_conv_bn(conv, bn)
    with torch.no_grad():
        expected = bn(conv(x))
        torch_folded = fuse_conv_bn_eval(conv, bn)
        assert torch.allclose(folded(x), expected, atol=1e-5, rtol=1e-4)
        assert torch.allclose(folded.weight, torch_folded.weight, atol=1e-6, rtol=1e-5)
        assert torch.allclose(folded.bias, torch_folded.bias, atol=1e-6, rtol=1e-5)
    assert folded.groups == groups and folded.bias is not None


def test_fold_leaves_inputs_unchanged():
    conv, bn = nn.Conv2d(3, 4, 3), random_bn(4, 1)
    w = conv.weight.clone()
    fusion.fold_conv_bn(conv, bn)
    assert torch.equal(conv.weight, w) and conv.bias is not None


def test_fold_model_removes_every_bn_and_keeps_outputs():
    torch.manual_seed(0)
    model = models.cnn(width=8, depth=3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    folded = fusion.fold_model(model)
    x = torch.randn(4, 1, 8, 8)
    assert fusion.count_layers(model, nn.BatchNorm2d) == 3
    assert fusion.count_layers(folded, nn.BatchNorm2d) == 0
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5)


def test_fold_rejects_bad_input():
    with pytest.raises(ValueError, match="same|channels"):
        fusion.fold_conv_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5))
    with pytest.raises(ValueError, match="running statistics"):
        fusion.fold_conv_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(ValueError, match="nn.Conv2d"):
        fusion.fold_conv_bn(nn.Linear(3, 4), nn.BatchNorm2d(4))


def _bn_with(**stats: torch.Tensor) -> nn.BatchNorm2d:
    bn = random_bn(4, 0)
    for name, value in stats.items():
        setattr(bn, name, value)
    return bn


def _bad_calls() -> list[tuple[str, object]]:
    """(parameter the message must name, call) for every class of bad input fusion guards."""
    conv, x = nn.Conv2d(3, 4, 3), torch.randn(8)
    lin = nn.Linear(4, 4)
    return [
        # mismatched shapes and broken statistics in conv/BN folding
        ("running_mean", lambda: fusion.fold_conv_bn(conv, _bn_with(running_mean=torch.zeros(5)))),
        ("running_var", lambda: fusion.fold_conv_bn(conv, _bn_with(running_var=-torch.ones(4)))),
        (
            "running_mean",
            lambda: fusion.fold_conv_bn(
                conv, _bn_with(running_mean=torch.full((4,), float("nan")))
            ),
        ),
        ("bn", lambda: fusion.fold_conv_bn(conv, "bn")),
        # a string where a model (or a layer class) is expected
        ("model", lambda: fusion.fold_model("cnn.pt")),
        ("model", lambda: fusion.count_layers("cnn.pt", nn.BatchNorm2d)),
        ("kind", lambda: fusion.count_layers(conv, "BatchNorm2d")),
        ("dtype", lambda: fusion.fuse_qkv(lin, nn.Linear(4, 4, dtype=torch.float64), lin)),
        # sizes and counts: zero, negative, fractional, bool, absurdly large
        ("sizes", lambda: fusion.split_qkv(torch.randn(2, 8), (4, 4))),
        ("sizes", lambda: fusion.split_qkv(torch.randn(2, 8), (4, 5, -1))),
        ("sizes", lambda: fusion.split_qkv(torch.randn(2, 8), (True, 3, 4))),
        ("length", lambda: fusion.elementwise_chain(x, length=0)),
        ("length", lambda: fusion.elementwise_chain(x, length=2.5)),
        ("length", lambda: fusion.elementwise_chain(x, length=True)),
        ("length", lambda: fusion.elementwise_chain(x, length=10**7)),
        ("numel", lambda: fusion.chain_traffic(0, 8)),
        ("length", lambda: fusion.chain_traffic(1000, 2.5)),
        ("itemsize", lambda: fusion.chain_traffic(1000, 8, itemsize=-4)),
        ("n", lambda: fusion.matmul_traffic(0)),
        ("n", lambda: fusion.matmul_traffic(True)),
        ("numel", lambda: fusion.cuda_chain_speedup(numel=1 << 40)),
        # empty tensors
        ("x", lambda: fusion.elementwise_chain(torch.empty(0))),
        ("y", lambda: fusion.split_qkv(torch.empty(0, 3), (1, 1, 1))),
        ("example is empty", lambda: fusion.ort_levels("cnn.onnx", torch.empty(0, 1, 8, 8))),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_every_bad_input_class_names_the_parameter(case):
    name, call = _bad_calls()[case]
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("biases", [(True, True, True), (False, False, False), (True, False, True)])
@pytest.mark.parametrize("outs", [(16, 16, 16), (16, 4, 4)])
def test_fused_qkv_equals_three_linears(biases, outs):
    torch.manual_seed(0)
    q, k, v = (nn.Linear(16, o, bias=b) for o, b in zip(outs, biases, strict=True))
    x = torch.randn(3, 5, 16)
    fused = fusion.fuse_qkv(q, k, v)
    with torch.no_grad():
        got = fusion.split_qkv(fused(x), outs)
        for g, layer in zip(got, (q, k, v), strict=True):
            assert torch.allclose(g, layer(x), atol=1e-6)
    assert (fused.bias is not None) == any(biases)


def test_fused_qkv_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same input size"):
        fusion.fuse_qkv(nn.Linear(4, 4), nn.Linear(5, 4), nn.Linear(4, 4))


def test_paired_latency_is_gone_use_bench_compare():
    """Issue 11: one timing helper for the course (labkit.bench.compare)."""
    assert not hasattr(fusion, "paired_latency")


def test_cheap_chain_and_bad_ops():
    x = torch.linspace(-4, 4, 9)
    y = fusion.elementwise_chain(x, length=3, ops="cheap")
    assert torch.allclose(y, (x * 1.5 + 0.5).clamp(-3, 3))
    with pytest.raises(ValueError, match="ops must be"):
        fusion.elementwise_chain(x, ops="erf")


def test_missing_or_garbage_onnx_file_is_a_clear_error(tmp_path):
    # the one message of labkit.onnx.check_onnx_file, the same as deploy and the quantisers
    with pytest.raises(ValueError, match="ONNX file .*missing.onnx does not exist; export"):
        lk_onnx.ort_session(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="does not exist"):
        fusion.op_counts(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(ValueError, match="not a valid ONNX model.*export"):
        lk_onnx.ort_session(garbage)


def test_chain_and_traffic():
    x = torch.linspace(-2, 2, 11)
    y = fusion.elementwise_chain(x, length=4)
    assert torch.allclose(y, torch.nn.functional.gelu(x * 1.5 + 0.5).clamp(-3, 3))
    t = fusion.chain_traffic(1000, 8)
    assert t["bytes_unfused"] == 8 * t["bytes_fused"] == 8 * 2 * 1000 * 4
    assert fusion.matmul_traffic(6)["intensity"] == pytest.approx(2 * 6**3 / (3 * 36 * 4))


def test_ort_levels_fuse_conv_bn_relu(tmp_path):
    torch.manual_seed(0)
    model = models.cnn(width=4, depth=2).eval()
    x = torch.randn(2, 1, 8, 8)
    # no exporter optimisation: the BatchNormalization nodes stay for ORT's levels to fuse
    path = lk_onnx.export_onnx(
        model, x, tmp_path / "cnn.onnx", dynamic_batch=False, exporter_optimize=False
    )
    assert fusion.op_counts(path)["BatchNormalization"] == 2
    rows = {r["level"]: r for r in fusion.ort_levels(path, x, rounds=3, repeats=1)}
    assert rows["basic"]["nodes"] < rows["disable_all"]["nodes"]
    assert "BatchNormalization" in rows["basic"]["removed node types"]
    assert "com.microsoft:FusedConv" in rows["extended"]["new node types"]
    for r in rows.values():
        assert r["max_abs_diff"] < 1e-4
        assert r["latency_ms"] > 0 and r["iqr"][0] <= r["iqr"][1]
    assert rows["disable_all"]["verdict"] == "baseline"
    assert rows["disable_all"]["speedup"] == 1.0
    assert "disable_all" in rows["all"]["verdict"]
    # every level of the installed onnxruntime, lowest first, named after ORT's own enum
    import onnxruntime as ort

    members = ort.GraphOptimizationLevel.__members__
    levels = fusion.ort_graph_levels()
    assert list(rows) == list(levels) and set(levels.values()) == set(members)
    assert [int(members[m]) for m in levels.values()] == sorted(int(v) for v in members.values())
    if "layout" in rows:  # ORT_ENABLE_LAYOUT (1.32 has it): between extended and all
        assert rows["layout"]["ORT name"] == "ORT_ENABLE_LAYOUT"
    assert rows["all"]["ORT name"] == "ORT_ENABLE_ALL"
    assert rows["disable_all"]["same graph as the level below"] is False
    assert rows["extended"]["same graph as the level below"] is False  # FusedConv appeared
    sess = lk_onnx.ort_session(path, threads=2, opt_level="all")
    with torch.no_grad():
        assert torch.allclose(
            torch.from_numpy(sess.run(None, {"x": x.numpy()})[0]), model(x), atol=1e-4
        )


def test_forced_isa_switches_off_the_graph_cache(monkeypatch):
    """Inductor's FX graph cache ignores ATEN_CPU_CAPABILITY: code built for AVX-512 was reused
    under a forced AVX2 and gave garbage for half the elements. Forced ISA -> no graph cache."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "fx_graph_cache", True)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    _no_graph_cache_across_isas()
    assert inductor_config.fx_graph_cache is True  # native: left alone
    for isa in ("avx2", "default"):
        monkeypatch.setattr(inductor_config, "fx_graph_cache", True)
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", isa)
        _no_graph_cache_across_isas()
        assert inductor_config.fx_graph_cache is False
