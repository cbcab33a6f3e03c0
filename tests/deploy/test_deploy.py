"""labkit.deploy: ONNX export parity, ORT INT8 accuracy and size, TensorRT API surface."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import bench, data, deploy, env, models, train
from labkit import onnx as lk_onnx
from labkit.core.errors import MissingDependency
from labkit.deploy import trt as deploy_trt


@pytest.fixture(scope="module")
def digits():
    return data.digits()


@pytest.fixture(scope="module")
def cnn_files(tmp_path_factory, digits):
    """A trained course CNN and its FP32 ONNX file."""
    torch.manual_seed(0)
    model = models.cnn(width=16, depth=3)
    train.fit(model, data.digits_loaders(64).train, epochs=4, lr=3e-3)
    model.eval()
    tmp = tmp_path_factory.mktemp("onnx")
    fp32 = lk_onnx.export_onnx(model, digits["test"].x[:2], tmp / "cnn.onnx")
    return model, fp32, tmp


def test_onnx_export_has_dynamic_batch_and_passes_checker(cnn_files) -> None:
    _, fp32, _ = cnn_files
    info = deploy.describe_onnx(fp32)
    assert info["input_shape"] == ["batch", 1, 8, 8]
    assert info["op_types"].get("Conv") == 3 and "BatchNormalization" not in info["op_types"]


@pytest.mark.parametrize("batch", [1, 32, 360])
def test_onnx_cnn_parity_with_pytorch(cnn_files, digits, batch) -> None:
    model, fp32, _ = cnn_files
    x = digits["test"].x[:batch]
    with torch.no_grad():
        expected = model(x)
    got = lk_onnx.ort_runner(lk_onnx.ort_session(fp32, threads=2))(x)
    result = deploy.parity(expected, got, atol=1e-4, rtol=1e-4)
    assert got.shape == (batch, 10)
    assert result["ok"], result
    assert result["max_abs_diff"] < 1e-4


def test_onnx_transformer_parity_with_pytorch(tmp_path, digits) -> None:
    torch.manual_seed(0)
    model = deploy.digit_transformer(d_model=32, heads=4, depth=1).eval()
    path = lk_onnx.export_onnx(model, digits["test"].x[:2], tmp_path / "tr.onnx")
    run = lk_onnx.ort_runner(lk_onnx.ort_session(path))
    for batch in (1, 17):
        x = digits["test"].x[:batch]
        with torch.no_grad():
            result = deploy.parity(model(x), run(x), atol=1e-4, rtol=1e-4)
        assert result["ok"], result


@pytest.mark.parametrize("method", lk_onnx.CALIBRATION_METHODS)
def test_static_int8_accuracy_within_one_point_and_smaller(cnn_files, digits, method) -> None:
    model, fp32, tmp = cnn_files
    int8 = lk_onnx.quantize_static_int8(
        fp32, tmp / f"cnn_{method}.onnx", digits["train"].x[:256], method=method
    )
    ops = deploy.describe_onnx(int8)["op_types"]
    assert ops.get("QuantizeLinear", 0) >= 4 and ops.get("DequantizeLinear", 0) >= 4
    x, y = digits["test"]
    acc32 = train.accuracy(lk_onnx.ort_runner(lk_onnx.ort_session(fp32)), x, y)
    acc8 = train.accuracy(lk_onnx.ort_runner(lk_onnx.ort_session(int8)), x, y)
    assert acc32 > 0.95
    assert acc8 >= acc32 - 0.01, (method, acc32, acc8)


def test_static_int8_file_is_at_least_3_5x_smaller(tmp_path, digits) -> None:
    """Size does not depend on training: the width-48 CNN of notebook 09, freshly initialised."""
    torch.manual_seed(0)
    fp32 = lk_onnx.export_onnx(
        models.cnn(width=48, depth=3), digits["test"].x[:2], tmp_path / "w48.onnx"
    )
    int8 = lk_onnx.quantize_static_int8(fp32, tmp_path / "w48_int8.onnx", digits["train"].x[:64])
    ratio = lk_onnx.file_size(fp32) / lk_onnx.file_size(int8)
    assert 3.5 <= ratio < 4.0, ratio  # weights shrink exactly 4x; scales and graph cost a little


def test_int8_weights_are_stored_as_int8(cnn_files, digits) -> None:
    import onnx

    _, fp32, tmp = cnn_files
    int8 = lk_onnx.quantize_static_int8(
        fp32, tmp / "cnn_sym.onnx", digits["train"].x[:64], symmetric_activations=True
    )
    inits = {t.name: t for t in onnx.load(str(int8)).graph.initializer}
    weights = [t for n, t in inits.items() if n.endswith("weight_quantized")]
    assert len(weights) == 4 and all(t.data_type == onnx.TensorProto.INT8 for t in weights)
    zero_points = [
        t
        for n, t in inits.items()
        if n.endswith("_zero_point") and "weight" not in n and "bias" not in n
    ]
    assert zero_points and all(t.data_type == onnx.TensorProto.INT8 for t in zero_points)


def test_dynamic_int8_transformer_asset(tmp_path, digits) -> None:
    model, meta = deploy.load_transformer()
    x, y = digits["test"]
    with torch.no_grad():
        acc_torch = float((model(x).argmax(1) == y).float().mean())
    assert abs(acc_torch - float(meta["test_accuracy"])) < 1e-3
    fp32 = lk_onnx.export_onnx(model, x[:2], tmp_path / "tr.onnx")
    dyn = lk_onnx.quantize_dynamic_int8(fp32, tmp_path / "tr_dyn.onnx")
    assert deploy.describe_onnx(dyn)["op_types"].get("MatMulInteger", 0) >= 4
    acc8 = train.accuracy(lk_onnx.ort_runner(lk_onnx.ort_session(dyn)), x, y)
    assert acc8 >= acc_torch - 0.01
    assert lk_onnx.file_size(fp32) / lk_onnx.file_size(dyn) > 3.0


def test_calibration_reader_yields_every_example_once() -> None:
    x = torch.arange(70 * 64, dtype=torch.float64).reshape(70, 1, 8, 8)
    reader = lk_onnx.calibration_reader(x, "inp", 32)
    batches = list(reader)
    assert [b["inp"].shape[0] for b in batches] == [32, 32, 6]
    assert all(b["inp"].dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(np.concatenate([b["inp"] for b in batches]), x.numpy())
    reader.rewind()
    assert reader.get_next()["inp"].shape[0] == 32


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20),
    st.floats(0, 1e-2),
    st.floats(1e-6, 1e-2),
    st.floats(0, 1e-1),
)
def test_parity_agrees_with_numpy_allclose(values, noise, atol, rtol) -> None:
    e = np.array(values)
    g = e + noise * np.cos(np.arange(len(e)))
    result = deploy.parity(torch.tensor(e), g, atol=atol, rtol=rtol)
    assert result["ok"] == np.allclose(g, e, atol=atol, rtol=rtol)
    assert result["max_abs_diff"] == pytest.approx(np.abs(g - e).max(), abs=1e-12)


def test_bad_input_gives_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="threads"):
        lk_onnx.session_options(threads=0)
    with pytest.raises(ValueError, match="opt_level"):
        lk_onnx.session_options(opt_level="max")
    with pytest.raises(ValueError, match="shapes differ"):
        deploy.parity(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="method"):
        lk_onnx.quantize_static_int8(
            tmp_path / "a.onnx", tmp_path / "b.onnx", torch.zeros(1, 1, 8, 8), method="kl"
        )
    with pytest.raises(ValueError, match="divisible"):
        deploy.digit_transformer(d_model=30, heads=4)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: lk_onnx.session_options(threads=True), "threads"),  # a bool is not a count
        (lambda: lk_onnx.session_options(threads=10**6), "threads"),
        (lambda: lk_onnx.calibration_reader(torch.zeros(0, 1, 8, 8)), "x"),
        (lambda: lk_onnx.calibration_reader(torch.zeros(4, 1, 8, 8), batch_size=0), "batch_size"),
        (lambda: lk_onnx.calibration_reader(torch.zeros(4, 1, 8, 8), batch_size=2.5), "batch_size"),
        (lambda: lk_onnx.export_onnx("cnn.pt", torch.zeros(2, 1, 8, 8), "m.onnx"), "model"),
        (
            lambda: lk_onnx.export_onnx(models.cnn(8, 2), torch.zeros(0, 1, 8, 8), "m.onnx"),
            "example",
        ),
        (lambda: lk_onnx.ort_runner("cnn.onnx"), "session"),
        (lambda: deploy.parity(torch.zeros(0, 10), torch.zeros(0, 10)), "expected"),
        (lambda: deploy.parity(torch.zeros(2, 10), {"logits": torch.zeros(2, 10)}), "got"),
        (lambda: deploy.parity(torch.zeros(2), ["a", "b"]), "got"),
        (lambda: deploy.parity(torch.zeros(2), torch.zeros(2), atol=-1e-4), "atol"),
        (lambda: deploy.parity(torch.zeros(2), torch.zeros(2), rtol=float("nan")), "rtol"),
        (lambda: deploy.digit_transformer(depth=0), "depth"),
        (lambda: deploy.digit_transformer(d_model=10**6), "d_model"),
        (lambda: deploy.digit_transformer(d_model=64.0), "d_model"),
        (lambda: deploy.DigitTransformer(heads=0), "heads"),
        (lambda: deploy.train_transformer(epochs=0), "epochs"),
        (lambda: deploy.runner("cnn.onnx"), "engine_bytes"),
        (lambda: deploy.run_batched(lambda x: {"y": x}, torch.zeros(0, 2), 4), "x"),
        (lambda: deploy.run_batched(lambda x: {"y": x}, torch.zeros(3, 2), True), "max_batch"),
        (lambda: deploy_trt.Float16Graph("cnn.pt"), "model"),
        (lambda: deploy.export_fp16_onnx(models.cnn(8, 2), [[0.0]], "m.onnx"), "example"),
    ],
)
def test_bad_input_names_the_parameter(call, name) -> None:
    """Empty inputs, non-models, bools, fractional, zero and huge counts: one ValueError each."""
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


@pytest.mark.parametrize(
    ("batches", "name"),
    [
        ({"min_batch": 0}, "min_batch"),
        ({"opt_batch": -1}, "opt_batch"),
        ({"max_batch": 10**7}, "max_batch"),  # a profile this large would not fit a GPU
        ({"max_batch": 256.0}, "max_batch"),
        ({"workspace_bytes": 0}, "workspace_bytes"),
    ],
)
def test_build_engine_refuses_bad_profiles_before_needing_a_gpu(cnn_files, batches, name) -> None:
    _, fp32, _ = cnn_files
    with pytest.raises(ValueError, match=name):
        deploy.build_engine(fp32, **batches)


def test_ort_session_refuses_unknown_providers(cnn_files) -> None:
    """ORT itself only warns and falls back to CPU; a typo must not pass for a GPU run."""
    _, fp32, _ = cnn_files
    with pytest.raises(ValueError, match="providers: 'CUDAExecutionProviderr'"):
        lk_onnx.ort_session(fp32, providers=["CUDAExecutionProviderr"])
    with pytest.raises(ValueError, match="providers must be a list"):
        lk_onnx.ort_session(fp32, providers="CPUExecutionProvider")  # ORT would split the letters
    assert lk_onnx.ort_session(fp32, providers=deploy.gpu_providers("c")).get_providers()


def test_file_size_of_a_missing_file_names_it(tmp_path) -> None:
    with pytest.raises(ValueError, match="nothing.onnx does not exist"):
        lk_onnx.file_size(tmp_path / "nothing.onnx")


BAD_FILES = {
    "missing": None,
    "garbage": b"\x00\xffthis is not a protobuf" * 8,
    "empty": b"",
    "folder": "dir",
}
ENTRY_POINTS = {
    "ort_session": lambda p, tmp: lk_onnx.ort_session(p),
    "describe_onnx": lambda p, tmp: deploy.describe_onnx(p),
    "quantize_static_int8": lambda p, tmp: lk_onnx.quantize_static_int8(
        p, tmp / "out.onnx", torch.zeros(4, 1, 8, 8)
    ),
    "quantize_dynamic_int8": lambda p, tmp: lk_onnx.quantize_dynamic_int8(p, tmp / "out.onnx"),
    "check_onnx_file": lambda p, tmp: lk_onnx.check_onnx_file(p),
    "deploy_trt.build_engine": lambda p, tmp: deploy_trt.build_engine(p),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_missing_or_garbage_onnx_gives_one_clear_error(tmp_path, kind, entry) -> None:
    """Issue 13: one ValueError naming the file and the fix, whichever entry point reads it."""
    path = tmp_path / f"{kind}.onnx"
    content = BAD_FILES[kind]
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        ENTRY_POINTS[entry](path, tmp_path)
    message = str(err.value)
    assert path.name in message and "export_onnx" in message, message
    assert "valid proto" not in message  # the raw protobuf wording of the old error
    assert not (tmp_path / "out.onnx").exists()


def test_describe_onnx_turns_checker_failures_into_value_error(tmp_path, cnn_files) -> None:
    import onnx

    _, fp32, _ = cnn_files
    proto = onnx.load(str(fp32))
    proto.graph.node[0].input[0] = "no_such_tensor"  # a dangling edge
    bad = tmp_path / "dangling.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match="dangling.onnx.*onnx.checker"):
        deploy.describe_onnx(bad)


def test_check_onnx_file_accepts_a_real_model_and_rejects_non_paths(cnn_files) -> None:
    _, fp32, _ = cnn_files
    assert lk_onnx.check_onnx_file(str(fp32)) == fp32
    with pytest.raises(ValueError, match="file path"):
        lk_onnx.check_onnx_file(b"bytes are not a path")


def test_providers_and_gpu_route() -> None:
    have = deploy.available_providers()
    assert "CPUExecutionProvider" in have
    route = deploy.gpu_providers("cache")
    assert route[-1] == "CPUExecutionProvider"
    names = [p[0] if isinstance(p, tuple) else p for p in route]
    assert set(names) <= set(have)
    if "TensorrtExecutionProvider" in names:
        assert route[0][1]["trt_engine_cache_enable"] and route[0][1]["trt_engine_cache_path"]


def test_gpu_route_sets_no_weak_typing_precision_switch(monkeypatch) -> None:
    """Precision comes from the graph (strong typing): no trt_fp16_enable / trt_int8_enable."""
    from labkit.deploy import runtime

    monkeypatch.setattr(
        runtime,
        "available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    route = deploy.gpu_providers("cache", device_id=1)
    assert [p[0] if isinstance(p, tuple) else p for p in route] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    trt_options = route[0][1]
    assert trt_options["device_id"] == 1 and trt_options["trt_engine_cache_path"] == "cache"
    assert not [k for k in trt_options if k.endswith(("fp16_enable", "int8_enable", "bf16_enable"))]
    with pytest.raises(TypeError):
        deploy.gpu_providers("cache", fp16=True)  # the weak-typing switch is gone


def _timed(ratio: float, lo: float, hi: float) -> bench.Comparison:
    return bench.Comparison(
        baseline="eager",
        median_ms={"eager": 1.0, "ORT": 1.0 / ratio},
        speedup={"eager": 1.0, "ORT": ratio},
        spread={"eager": (1.0, 1.0), "ORT": (lo, hi)},
        rounds=11,
        threads=1,
    )


@pytest.mark.parametrize(
    ("second", "word"),
    [
        ((1.9, 1.84, 1.92), "shrank"),  # notebook 09's CNN: 4.08x at batch 1 -> 1.90x at 32
        ((6.0, 5.0, 7.0), "grew"),
        ((4.0, 3.5, 4.2), "no clear change"),  # IQRs overlap
        ((3.6, 3.0, 3.66), "no clear change"),  # touching at the edge is an overlap
    ],
)
def test_speedup_trend_reads_the_two_iqrs(second, word) -> None:
    runs = {"batch 1": _timed(4.08, 3.66, 4.56), "batch 32": _timed(*second)}
    text = deploy.speedup_trend(runs, "ORT")
    assert text.endswith(word) or f": {word}" in text
    assert "batch 1 -> batch 32" in text and "4.08x (IQR 3.66-4.56)" in text


def test_speedup_trend_rejects_bad_runs() -> None:
    one = _timed(2.0, 1.9, 2.1)
    with pytest.raises(ValueError, match="dict of two"):
        deploy.speedup_trend({"b1": one}, "ORT")
    with pytest.raises(ValueError, match="dict of two"):
        deploy.speedup_trend([one, one], "ORT")
    with pytest.raises(ValueError, match="timed 'INT8'"):
        deploy.speedup_trend({"b1": one, "b32": one}, "INT8")
    with pytest.raises(ValueError, match="baseline"):
        deploy.speedup_trend({"b1": one, "b32": one}, "eager")
    with pytest.raises(ValueError, match="bench.compare result"):
        deploy.speedup_trend({"b1": one, "b32": 2.0}, "ORT")


def test_int8_kernel_note_names_the_instruction() -> None:
    assert "vpdpbusd" in env.int8_kernel_note({"avx2": True, "avx512_vnni": True})
    assert "vpmaddubsw" in env.int8_kernel_note({"avx2": True, "avx512_vnni": False})
    assert "No AVX2" in env.int8_kernel_note({})


# --------------------------------------------------------------------------- TensorRT

SOURCE = Path(inspect.getsourcefile(deploy_trt)).read_text()
# local variable in deploy_trt.py -> the TensorRT class it holds
TRT_VARIABLES = {
    "builder": "Builder",
    "network": "INetworkDefinition",
    "parser": "OnnxParser",
    "config": "IBuilderConfig",
    "profile": "IOptimizationProfile",
    "tensor": "ITensor",
    "runtime": "Runtime",
    "engine": "ICudaEngine",
    "context": "IExecutionContext",
}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _trt_uses(source: str = SOURCE) -> set[str]:
    """Every `trt.X[.Y]` chain and every `<trt variable>.attr` in the module, by AST."""
    tree = ast.parse(source)
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    uses: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:  # whole chains only
            name = _dotted(node)
            if not name:
                continue
            root, *rest = name.split(".")
            if root == "trt":
                uses.add(".".join(rest[:2]))
            elif root in TRT_VARIABLES and rest:
                uses.add(f"{TRT_VARIABLES[root]}.{rest[0]}")
    return uses


def _attribute_names(source: str = SOURCE) -> set[str]:
    return {n.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)}


def _removed_leaf_names() -> set[str]:
    """Method/attribute names removed in 11 that no kept class still has (INT8 stays in DataType)."""
    kept = {name.split(".")[-1] for name in deploy_trt.TRT_10_AND_11}
    return {name.split(".")[-1] for name in deploy_trt.TRT_REMOVED_IN_11} - kept


def test_trt_manifest_covers_every_use_in_labkit() -> None:
    uses = _trt_uses()
    assert len(uses) > 25, "the AST scan found too few TensorRT uses; is the scan broken?"
    missing = sorted(uses - set(deploy_trt.TRT_USED))
    assert not missing, f"labkit.deploy.trt uses TensorRT names missing from TRT_USED: {missing}"


def test_trt_code_uses_only_names_of_tensorrt_10_and_11() -> None:
    """Every name used exists in 10.x and 11.x; none was removed in 11 (no tensorrt needed)."""
    used = set(deploy_trt.TRT_USED)
    assert used <= deploy_trt.TRT_10_AND_11, sorted(used - deploy_trt.TRT_10_AND_11)
    assert not used & deploy_trt.TRT_REMOVED_IN_11, sorted(used & deploy_trt.TRT_REMOVED_IN_11)
    found = sorted(_attribute_names() & _removed_leaf_names())
    assert not found, f"labkit.deploy.trt touches TensorRT API removed in 11: {found}"
    assert {"execute_async_v3", "build_serialized_network", "STRONGLY_TYPED"} <= _attribute_names()


def test_trt_api_scan_catches_the_removed_api() -> None:
    """The scan itself works: the weakly typed pre-11 recipe is flagged."""
    old = (
        "def build(trt, builder, config, context):\n"
        "    config.set_flag(trt.BuilderFlag.FP16)\n"
        "    if builder.platform_has_fast_int8:\n"
        "        config.set_flag(trt.BuilderFlag.INT8)\n"
        "    context.execute_async_v2([], 0)\n"
    )
    uses = _trt_uses(old)
    assert {"BuilderFlag.FP16", "BuilderFlag.INT8", "Builder.platform_has_fast_int8"} <= uses
    assert uses & deploy_trt.TRT_REMOVED_IN_11
    assert "execute_async_v2" in _attribute_names(old) & _removed_leaf_names()


def test_only_trt_py_holds_tensorrt_code() -> None:
    from labkit.deploy import runtime, transformer

    for module in (deploy, runtime, transformer):
        assert not _trt_uses(Path(inspect.getsourcefile(module)).read_text()), module.__name__
    assert not hasattr(deploy, "trt_build_engine")


def _tensorrt_or_skip():
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        pytest.skip(f"tensorrt is not installed here ({exc}); this check runs where it is")


def test_every_tensorrt_name_labkit_uses_exists() -> None:
    trt = _tensorrt_or_skip()  # where tensorrt imports, everything below must hold
    assert int(trt.__version__.split(".")[0]) >= 10, (
        f"labkit needs TensorRT >= 10, found {trt.__version__}"
    )
    missing = []
    for path in deploy_trt.TRT_USED:
        obj = trt
        for part in path.split("."):
            if not hasattr(obj, part):
                missing.append(path)
                break
            obj = getattr(obj, part)
    assert not missing, f"tensorrt {trt.__version__} lacks names labkit.deploy.trt uses: {missing}"


def test_trt_functions_fail_clearly_without_gpu_or_tensorrt(cnn_files) -> None:
    has_trt = importlib.util.find_spec("tensorrt") is not None
    if torch.cuda.is_available() and has_trt:
        pytest.skip("a GPU and tensorrt are present: the engine is built in notebook 09 instead")
    _, fp32, _ = cnn_files
    with pytest.raises(MissingDependency, match="GPU|tensorrt|TensorRT"):
        deploy_trt.build_engine(fp32)
    with pytest.raises(MissingDependency):
        deploy_trt.runner(b"serialized engine bytes")  # b"" is refused first: no engine is empty


def test_gpu_check_rows_without_gpu_are_skip_rows() -> None:
    if torch.cuda.is_available() and importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("GPU and tensorrt present: gpu-check builds real engines here")
    rows = deploy_trt.gpu_check_rows()
    assert [r[0] for r in rows] == [
        "TensorRT FP16 engine",
        "TensorRT INT8 engine (Q/DQ)",
        "TensorRT profile guard",
    ]
    assert all(len(r) == 3 and r[1] == "skip" and r[2] for r in rows)


def test_build_engine_checks_its_file_and_profile_first(tmp_path, cnn_files) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        deploy_trt.build_engine(tmp_path / "missing.onnx")
    _, fp32, _ = cnn_files
    with pytest.raises(ValueError, match="min_batch <= opt_batch <= max_batch"):
        deploy_trt.build_engine(fp32, opt_batch=512, max_batch=256)
    with pytest.raises(ValueError, match="max_batch"):
        deploy_trt.run_batched(lambda x: {"y": x}, torch.zeros(3, 2), 0)


def test_run_batched_splits_within_the_profile() -> None:
    seen = []

    def run(x):
        seen.append(len(x))
        assert len(x) <= 256, "a chunk larger than the profile reached the engine"
        return {"logits": x * 2}

    x = torch.arange(360.0).reshape(360, 1)
    out = deploy_trt.run_batched(run, x, 256)["logits"]
    assert seen == [256, 104]
    torch.testing.assert_close(out, x * 2)


def test_fp16_and_qdq_onnx_files_carry_their_precision(tmp_path, cnn_files, digits) -> None:
    """What a strongly typed TensorRT network reads: float16 weights, or int8 Q/DQ nodes."""
    import onnx

    model, fp32, _ = cnn_files
    f16 = deploy_trt.export_fp16_onnx(model, digits["test"].x[:2], tmp_path / "f16.onnx")
    proto = onnx.load(str(f16))
    weights = [t for t in proto.graph.initializer if t.name.endswith("weight")]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # FP32 in
    assert deploy.describe_onnx(f16)["op_types"]["Cast"] == 2
    with torch.no_grad():  # the FP16 graph is the model in half precision
        want = model.double()(digits["test"].x[:8].double()).float()
        model.float()
    got = deploy_trt.Float16Graph(model)(digits["test"].x[:8])
    assert (got - want).abs().max() < 0.05
    q = deploy_trt.export_int8_qdq_onnx(fp32, tmp_path / "q.onnx", digits["train"].x[:64])
    inits = onnx.load(str(q)).graph.initializer
    assert not [t.name for t in inits if t.data_type == onnx.TensorProto.INT32]  # float biases
    zero_points = [t for t in inits if t.name.endswith("zero_point")]
    assert zero_points and all(t.data_type == onnx.TensorProto.INT8 for t in zero_points)
    assert all(not any(onnx.numpy_helper.to_array(t).ravel()) for t in zero_points)  # symmetric


def test_engine_cache_key_changes_with_settings(tmp_path, cnn_files) -> None:
    _, fp32, _ = cnn_files
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(fp32.read_bytes())
    a = deploy_trt.engine_path(onnx_file, tmp_path, {"profile": (1, 32, 256)})
    b = deploy_trt.engine_path(onnx_file, tmp_path, {"profile": (1, 32, 512)})
    assert a != b and a == deploy_trt.engine_path(onnx_file, tmp_path, {"profile": (1, 32, 256)})


def test_reduce_range_defaults_on_only_without_vnni() -> None:
    assert env.has_vnni({"avx2": True, "avx512_vnni": False, "avx_vnni": False}) is False
    assert env.has_vnni({"avx2": True, "avx512_vnni": True}) is True
    assert env.has_vnni({"avx2": True, "avx_vnni": True}) is True
    src = inspect.getsource(lk_onnx.quantize_static_int8)
    assert "reduce_range=reduce_range" in src


class _FakeTrt:
    """Just enough of the tensorrt module for runner()'s checks before any CUDA work."""

    __version__ = "11.0.0"

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    class TensorIOMode:
        INPUT, OUTPUT = 0, 1

    class DataType:
        FLOAT, HALF, INT32, INT64, INT8, BOOL = range(6)

    class _Context:
        def __init__(self, accept):
            self.accept = accept

        def set_input_shape(self, name, shape):
            return self.accept

    class _Engine:
        num_io_tensors = 2

        def __init__(self, accept):
            self.accept = accept

        def get_tensor_name(self, i):
            return ["x", "logits"][i]

        def get_tensor_mode(self, name):
            return 0 if name == "x" else 1

        def get_tensor_dtype(self, name):
            return 0

        def get_tensor_profile_shape(self, name, index):
            return [(1, 1, 8, 8), (32, 1, 8, 8), (256, 1, 8, 8)]

        def create_execution_context(self):
            return _FakeTrt._Context(self.accept)

    accept = True

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return _FakeTrt._Engine(_FakeTrt.accept)


def test_runner_refuses_a_batch_outside_the_profile(monkeypatch) -> None:
    """Issue 13: 360 images through a profile ending at 256 must raise, not run on garbage."""
    monkeypatch.setattr(deploy_trt, "tensorrt", lambda: _FakeTrt)
    run = deploy_trt.runner(b"engine")
    assert run.max_batch == 256
    with pytest.raises(ValueError, match=r"outside the engine's optimisation profile.*run_batched"):
        run(torch.zeros(360, 1, 8, 8))
    with pytest.raises(ValueError, match="outside"):
        run(torch.zeros(4, 1, 9, 9))  # right batch, wrong image size
    monkeypatch.setattr(_FakeTrt, "accept", False)  # TensorRT itself says no
    with pytest.raises(ValueError, match="outside"):
        deploy_trt.runner(b"engine")(torch.zeros(8, 1, 8, 8))


def test_digit_transformer_stacks_the_shared_encoder_block() -> None:
    """labkit.models.TransformerBlock, not causal (every row sees every row), SDPA attention."""
    from labkit import assets

    model = deploy.digit_transformer()
    assert all(isinstance(b, models.TransformerBlock) for b in model.blocks)
    assert all(not b.causal and b.sdpa for b in model.blocks)
    assert "blocks.1.fc.weight" in model.state_dict() and "blocks.1.out.bias" in model.state_dict()
    assert assets.REGISTRY["digit_transformer"].train is deploy.train_transformer
    x = torch.randn(3, 1, 8, 8)
    changed = x.clone()
    changed[:, :, -1] += torch.randn(8)  # the last row (token) only
    with torch.no_grad():
        h, h2 = (model.embed(t.reshape(3, 8, 8)) + model.pos for t in (x, changed))
        first, _ = model.blocks[0](h)
        first2, _ = model.blocks[0](h2)
    assert not torch.allclose(first[:, 0], first2[:, 0])  # the first token saw the last one


def test_one_calibration_method_table_for_ort_range_and_the_static_quantiser() -> None:
    """quant.ort_range (05) and onnx.quantize_static_int8 (09) read the same name -> ORT table."""
    from onnxruntime.quantization import CalibrationMethod

    from labkit import quant

    assert [lk_onnx.calibration_method(m) for m in lk_onnx.CALIBRATION_METHODS] == [
        CalibrationMethod.MinMax,
        CalibrationMethod.Entropy,
        CalibrationMethod.Percentile,
    ]
    with pytest.raises(ValueError, match="method must be one of"):
        quant.ort_range([torch.randn(100)], method="kl")
