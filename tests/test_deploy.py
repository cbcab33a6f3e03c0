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

from labkit import data, deploy, models, train
from labkit.errors import MissingDependency


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
    fp32 = deploy.export_onnx(model, digits["test"].x[:2], tmp / "cnn.onnx")
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
    got = deploy.ort_runner(deploy.ort_session(fp32, threads=2))(x)
    result = deploy.parity(expected, got, atol=1e-4, rtol=1e-4)
    assert got.shape == (batch, 10)
    assert result["ok"], result
    assert result["max_abs_diff"] < 1e-4


def test_onnx_transformer_parity_with_pytorch(tmp_path, digits) -> None:
    torch.manual_seed(0)
    model = deploy.digit_transformer(d_model=32, heads=4, depth=1).eval()
    path = deploy.export_onnx(model, digits["test"].x[:2], tmp_path / "tr.onnx")
    run = deploy.ort_runner(deploy.ort_session(path))
    for batch in (1, 17):
        x = digits["test"].x[:batch]
        with torch.no_grad():
            result = deploy.parity(model(x), run(x), atol=1e-4, rtol=1e-4)
        assert result["ok"], result


@pytest.mark.parametrize("method", deploy.CALIBRATION_METHODS)
def test_static_int8_accuracy_within_one_point_and_smaller(cnn_files, digits, method) -> None:
    model, fp32, tmp = cnn_files
    int8 = deploy.quantize_static_int8(
        fp32, tmp / f"cnn_{method}.onnx", digits["train"].x[:256], method=method
    )
    ops = deploy.describe_onnx(int8)["op_types"]
    assert ops.get("QuantizeLinear", 0) >= 4 and ops.get("DequantizeLinear", 0) >= 4
    x, y = digits["test"]
    acc32 = deploy.accuracy(deploy.ort_runner(deploy.ort_session(fp32)), x, y)
    acc8 = deploy.accuracy(deploy.ort_runner(deploy.ort_session(int8)), x, y)
    assert acc32 > 0.95
    assert acc8 >= acc32 - 0.01, (method, acc32, acc8)


def test_static_int8_file_is_at_least_3_5x_smaller(tmp_path, digits) -> None:
    """Size does not depend on training: the width-48 CNN of notebook 09, freshly initialised."""
    torch.manual_seed(0)
    fp32 = deploy.export_onnx(
        models.cnn(width=48, depth=3), digits["test"].x[:2], tmp_path / "w48.onnx"
    )
    int8 = deploy.quantize_static_int8(fp32, tmp_path / "w48_int8.onnx", digits["train"].x[:64])
    ratio = deploy.file_size(fp32) / deploy.file_size(int8)
    assert 3.5 <= ratio < 4.0, ratio  # weights shrink exactly 4x; scales and graph cost a little


def test_int8_weights_are_stored_as_int8(cnn_files, digits) -> None:
    import onnx

    _, fp32, tmp = cnn_files
    int8 = deploy.quantize_static_int8(
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
    fp32 = deploy.export_onnx(model, x[:2], tmp_path / "tr.onnx")
    dyn = deploy.quantize_dynamic_int8(fp32, tmp_path / "tr_dyn.onnx")
    assert deploy.describe_onnx(dyn)["op_types"].get("MatMulInteger", 0) >= 4
    acc8 = deploy.accuracy(deploy.ort_runner(deploy.ort_session(dyn)), x, y)
    assert acc8 >= acc_torch - 0.01
    assert deploy.file_size(fp32) / deploy.file_size(dyn) > 3.0


def test_calibration_reader_yields_every_example_once() -> None:
    x = torch.arange(70 * 64, dtype=torch.float64).reshape(70, 1, 8, 8)
    reader = deploy.calibration_reader(x, "inp", 32)
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
        deploy.session_options(threads=0)
    with pytest.raises(ValueError, match="opt_level"):
        deploy.session_options(opt_level="max")
    with pytest.raises(ValueError, match="not found"):
        deploy.ort_session(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="shapes differ"):
        deploy.parity(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="method"):
        deploy.quantize_static_int8(
            tmp_path / "a.onnx", tmp_path / "b.onnx", torch.zeros(1, 1, 8, 8), method="kl"
        )
    with pytest.raises(ValueError, match="divisible"):
        deploy.digit_transformer(d_model=30, heads=4)


def test_providers_and_gpu_route() -> None:
    have = deploy.available_providers()
    assert "CPUExecutionProvider" in have
    route = deploy.gpu_providers("cache", fp16=True)
    assert route[-1] == "CPUExecutionProvider"
    names = [p[0] if isinstance(p, tuple) else p for p in route]
    assert set(names) <= set(have)
    if "TensorrtExecutionProvider" in names:
        assert route[0][1]["trt_fp16_enable"] is True and route[0][1]["trt_engine_cache_enable"]


def test_int8_kernel_note_names_the_instruction() -> None:
    assert "vpdpbusd" in deploy.int8_kernel_note({"avx2": True, "avx512_vnni": True})
    assert "vpmaddubsw" in deploy.int8_kernel_note({"avx2": True, "avx512_vnni": False})
    assert "No AVX2" in deploy.int8_kernel_note({})


# --------------------------------------------------------------------------- TensorRT

SOURCE = Path(inspect.getsourcefile(deploy)).read_text()
# local variable in deploy.py -> the TensorRT class it holds
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
TRT_FUNCTIONS = ("trt_build_engine", "trt_runner", "_trt")


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _trt_uses() -> set[str]:
    tree = ast.parse(SOURCE)
    uses: set[str] = set()
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name not in TRT_FUNCTIONS:
            continue
        inner = {id(n.value) for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
        for node in ast.walk(fn):
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


def test_trt_attribute_list_covers_every_use_in_labkit() -> None:
    uses = _trt_uses()
    assert len(uses) > 20, "the AST scan found too few TensorRT uses; is the scan broken?"
    missing = sorted(uses - set(deploy.TRT_ATTRIBUTES))
    assert not missing, (
        f"labkit.deploy uses TensorRT attributes not listed in TRT_ATTRIBUTES: {missing}"
    )


def test_trt_code_uses_only_the_tensorrt10_api() -> None:
    removed = [
        "execute_v2",
        "execute_async_v2",
        ".build_engine(",
        "get_binding",
        "binding_is_input",
        "max_workspace_size",
        "EXPLICIT_BATCH",
        "max_batch_size",
        "build_cuda_engine",
    ]
    code = "\n".join(
        ast.get_source_segment(SOURCE, fn) or ""
        for fn in ast.parse(SOURCE).body
        if isinstance(fn, ast.FunctionDef) and fn.name in TRT_FUNCTIONS
    )
    assert "execute_async_v3" in code and "build_serialized_network" in code
    found = [name for name in removed if name in code]
    assert not found, f"pre-TensorRT-10 API in labkit.deploy: {found}"


def _tensorrt_or_skip():
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        pytest.skip(f"tensorrt is not installed here ({exc}); this check runs where it is")


def test_every_tensorrt_attribute_labkit_uses_exists() -> None:
    trt = _tensorrt_or_skip()  # where tensorrt imports, everything below must hold
    assert int(trt.__version__.split(".")[0]) >= 10, (
        f"labkit needs TensorRT >= 10, found {trt.__version__}"
    )
    missing = []
    for path in deploy.TRT_ATTRIBUTES:
        obj = trt
        for part in path.split("."):
            if not hasattr(obj, part):
                missing.append(path)
                break
            obj = getattr(obj, part)
    assert not missing, f"tensorrt {trt.__version__} lacks attributes labkit.deploy uses: {missing}"


def test_trt_functions_fail_clearly_without_gpu_or_tensorrt(tmp_path) -> None:
    has_trt = importlib.util.find_spec("tensorrt") is not None
    if torch.cuda.is_available() and has_trt:
        pytest.skip("a GPU and tensorrt are present: the engine is built in notebook 09 instead")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(MissingDependency, match="GPU|tensorrt|TensorRT"):
        deploy.trt_build_engine(tmp_path / "m.onnx")
    with pytest.raises(MissingDependency):
        deploy.trt_runner(b"")


def test_engine_cache_key_changes_with_settings(tmp_path) -> None:
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"model")
    a = deploy.trt_engine_path(onnx_file, tmp_path, {"fp16": True})
    b = deploy.trt_engine_path(onnx_file, tmp_path, {"fp16": False})
    assert a != b and a == deploy.trt_engine_path(onnx_file, tmp_path, {"fp16": True})
    onnx_file.write_bytes(b"other model")
    assert deploy.trt_engine_path(onnx_file, tmp_path, {"fp16": True}) != a


def test_reduce_range_defaults_on_only_without_vnni() -> None:
    assert deploy.has_vnni({"avx2": True, "avx512_vnni": False, "avx_vnni": False}) is False
    assert deploy.has_vnni({"avx2": True, "avx512_vnni": True}) is True
    assert deploy.has_vnni({"avx2": True, "avx_vnni": True}) is True
    src = inspect.getsource(deploy.quantize_static_int8)
    assert "reduce_range=reduce_range" in src
