"""Bad input for edge, pipeline (issue 18, section 5): one bad argument per case; see badinput_probe.py."""

import math
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from badinput_probe import Case, outcome
from torch import nn

from labkit import bench, data, edge, models, pipeline, qat

# ---- shared valid inputs (tiny; each valid call well under a second)
torch.manual_seed(0)
W = torch.randn(4, 6)  # a weight matrix (out, in)
LIN = nn.Linear(6, 4)
CONV = nn.Conv2d(2, 4, 3)
CNN = models.cnn(width=4, depth=2).eval()  # x (N, 1, 8, 8) -> (N, 10)
X = torch.rand(8, 1, 8, 8)
X32 = torch.rand(32, 1, 8, 8)  # compare_stages times batches 1 and 32
Y = torch.randint(0, 10, (8,))
X1 = X[:1]
BAD_X = torch.rand(1, 1, 7, 7)  # the wrong image size for CNN
NAN_X = X.clone()
NAN_X[0, 0, 0, 0] = math.nan
LOADERS = data.digits_loaders(batch_size=32, train_subset=64)
LOADER = LOADERS.train
SHARED, BOOKS = edge.share_model(CNN, 2, iters=2)
SHAPES = edge.factorizable_layers(CNN)
RANKS = dict.fromkeys(SHAPES, 1)
IDX = torch.tensor([0, 1, 2, 3, 1, 2])
PACKED = edge.pack_indices(IDX, 2)
ARCH = ((8, 3), (8, 3))
KEY = edge.lut_keys(ARCH)[0]
LUT = {k: 0.01 for k in edge.lut_keys(ARCH)}
RNG = random.Random(0)


def acc_of(arch):  # a cheap accuracy proxy for the searches
    return 0.9


def ms_of(arch):  # a cheap latency proxy for the searches
    return 1.0


HISTORY = [{"arch": ARCH, "accuracy": 0.9, "latency_ms": 1.0, "reward": 0.9}]
COUNTS = {0: 5, 1: 3, 2: 1}
CODE = edge.huffman_code(COUNTS)
MESSAGE = [0, 1, 2]  # ends with the rarest symbol: its codeword is the longest
BITS = edge.huffman_encode(MESSAGE, CODE)
NOT_PREFIX_FREE = {0: "0", 1: "01", 2: "11"}
DC_LAYERS = {"0": {"bytes": dict.fromkeys(edge.STAGES, 10)}}

TMP = Path(tempfile.mkdtemp(prefix="badinput_deploy_edge_"))
TXT = TMP / "notes.txt"
TXT.write_text("not an onnx model")


def _tiny_onnx(path: Path) -> Path:
    """x (batch, 1, 8, 8) -> Flatten -> Gemm -> logits (batch, 10), written by onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((64, 10), np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


ONNX = _tiny_onnx(TMP / "tiny.onnx")
QMODEL = qat.qat_model(CNN, [X], bits=8)
STAGES = [pipeline.torch_stage("a", CNN, X[:2]), pipeline.torch_stage("b", CNN, X[:2])]
COMP = bench.Comparison(
    baseline="a",
    median_ms={"a": 1.0, "b": 0.5},
    speedup={"a": 1.0, "b": 2.0},
    spread={"a": (1.0, 1.0), "b": (1.8, 2.2)},
    rounds=3,
    threads=1,
)
COMPS = {"ms_b1": COMP}
ROW_A = {"stage": "a", "accuracy": 0.9, "bytes": 8000, "MACs": 10, "note": "", "ms_b1": 1.0}
ROW_B = {"stage": "b", "accuracy": 0.89, "bytes": 1000, "MACs": 10, "note": "", "ms_b1": 0.5}
ROWS = [ROW_A, ROW_B]
IQR_A = {**ROW_A, "iqr_b1": (1.0, 1.0)}
IQR_B = {**ROW_B, "iqr_b1": (1.8, 2.2)}
SUMMARY = {"smaller": 9.0, "accuracy_drop_points": 0.5, "faster": 2.5}
ORDERS = pipeline.QUANT_ORDERS + pipeline.DISTIL_ORDERS
ABLATION = [
    {"order": o, "seed": s, "accuracy": 0.9 - 0.01 * i + 0.001 * s, "bytes": 1000 + i}
    for i, o in enumerate(ORDERS)
    for s in (0, 1, 2)
]
SWEEP = [
    {"width": 8, "ratio": 0.0, "bits": 8, "accuracy": 0.90, "bytes": 2000},
    {"width": 8, "ratio": 0.5, "bits": 4, "accuracy": 0.85, "bytes": 800},
]


def _with(rows, i, **change):
    """A copy of ``rows`` whose row i has ``change`` applied (None deletes the key)."""
    out = [dict(r) for r in rows]
    for k, v in change.items():
        if v is None:
            out[i].pop(k, None)
        else:
            out[i][k] = v
    return out


CASES = [
    # ------------------------------------------------------------------ edge: low rank
    Case("edge.low_rank_factors", "empty weight", lambda: edge.low_rank_factors(torch.empty(0, 6), 1), "weight"),
    Case("edge.low_rank_factors", "NaN weight", lambda: edge.low_rank_factors(torch.full((4, 6), math.nan), 1), "weight"),
    Case("edge.low_rank_factors", "3-D weight", lambda: edge.low_rank_factors(torch.randn(2, 3, 4), 1), "weight"),
    Case("edge.low_rank_factors", "rank 0", lambda: edge.low_rank_factors(W, 0), "rank"),
    Case("edge.low_rank_factors", "rank 10**12", lambda: edge.low_rank_factors(W, 10**12), "rank"),
    Case("edge.low_rank_factors", "fractional rank", lambda: edge.low_rank_factors(W, 2.5), "rank"),
    Case("edge.rank_error_curve", "empty weight", lambda: edge.rank_error_curve(torch.empty(0, 4)), "weight"),
    Case("edge.rank_error_curve", "inf weight", lambda: edge.rank_error_curve(torch.full((3, 3), math.inf)), "weight"),
    Case("edge.rank_error_curve", "1-D weight", lambda: edge.rank_error_curve(torch.randn(6)), "weight"),
    Case("edge.rank_error_curve", "all-zero weight (0/0 errors)", lambda: edge.rank_error_curve(torch.zeros(4, 6)), "weight"),
    Case("edge.rank_error_curve", "string weight", lambda: edge.rank_error_curve("conv.weight"), "weight"),
    Case("edge.matrix_of", "string layer", lambda: edge.matrix_of("fc"), "layer"),
    Case("edge.matrix_of", "ReLU layer", lambda: edge.matrix_of(nn.ReLU()), "layer"),
    Case("edge.matrix_of", "None layer", lambda: edge.matrix_of(None), "layer"),
    Case("edge.matrix_of", "grouped conv", lambda: edge.matrix_of(nn.Conv2d(4, 4, 3, groups=2)), "layer"),
    Case("edge.factorize_linear", "a Conv2d as layer", lambda: edge.factorize_linear(CONV, 1), "layer"),
    Case("edge.factorize_linear", "string layer", lambda: edge.factorize_linear("fc", 1), "layer"),
    Case("edge.factorize_linear", "rank 0", lambda: edge.factorize_linear(LIN, 0), "rank"),
    Case("edge.factorize_linear", "rank 10**12", lambda: edge.factorize_linear(LIN, 10**12), "rank"),
    Case("edge.factorize_linear", "fractional rank", lambda: edge.factorize_linear(LIN, 1.5), "rank"),
    Case("edge.factorize_conv", "a Linear as conv", lambda: edge.factorize_conv(LIN, 1), "conv"),
    Case("edge.factorize_conv", "grouped conv", lambda: edge.factorize_conv(nn.Conv2d(4, 4, 3, groups=2), 1), "conv"),
    Case("edge.factorize_conv", "string conv", lambda: edge.factorize_conv("conv1", 1), "conv"),
    Case("edge.factorize_conv", "rank 0", lambda: edge.factorize_conv(CONV, 0), "rank"),
    Case("edge.factorize_conv", "rank above min(out, in)", lambda: edge.factorize_conv(CONV, 100), "rank"),
    Case("edge.factorized_params", "negative out_features", lambda: edge.factorized_params(-4, 6, 2), "out_features"),
    Case("edge.factorized_params", "zero in_features", lambda: edge.factorized_params(4, 0, 2), "in_features"),
    Case("edge.factorized_params", "fractional rank", lambda: edge.factorized_params(4, 6, 2.5), "rank"),
    Case("edge.factorized_params", "negative rank", lambda: edge.factorized_params(4, 6, -1), "rank"),
    Case("edge.factorized_params", "string out_features", lambda: edge.factorized_params("64", 6, 2), "out_features"),
    Case("edge.factorize_model", "string model", lambda: edge.factorize_model("cnn.pt", 0.5), "model"),
    Case("edge.factorize_model", "rank_fraction 0", lambda: edge.factorize_model(CNN, 0), "rank_fraction"),
    Case("edge.factorize_model", "rank_fraction 1.5", lambda: edge.factorize_model(CNN, 1.5), "rank_fraction"),
    Case("edge.factorize_model", "NaN rank_fraction", lambda: edge.factorize_model(CNN, math.nan), "rank_fraction"),
    Case("edge.factorize_model", "ranks naming no layer", lambda: edge.factorize_model(CNN, ranks={"nope": 2}), "ranks"),
    Case("edge.factorize_model", "rank 0 in ranks", lambda: edge.factorize_model(CNN, ranks={"0": 0}), "ranks"),
    Case("edge.factorize_model", "ranks a list", lambda: edge.factorize_model(CNN, ranks=[2, 2]), "ranks"),
    Case("edge.factorizable_layers", "string model", lambda: edge.factorizable_layers("cnn.pt"), "model"),
    Case("edge.factorizable_layers", "None model", lambda: edge.factorizable_layers(None), "model"),
    Case("edge.factorizable_layers", "a state dict", lambda: edge.factorizable_layers(CNN.state_dict()), "model"),
    Case("edge.uniform_ranks", "string model", lambda: edge.uniform_ranks("cnn", 0.5), "model"),
    Case("edge.uniform_ranks", "rank_fraction 0", lambda: edge.uniform_ranks(CNN, 0), "rank_fraction"),
    Case("edge.uniform_ranks", "negative rank_fraction", lambda: edge.uniform_ranks(CNN, -0.5), "rank_fraction"),
    Case("edge.uniform_ranks", "bool rank_fraction", lambda: edge.uniform_ranks(CNN, True), "rank_fraction"),
    Case("edge.factor_weights", "ranks missing a layer", lambda: edge.factor_weights(SHAPES, {}), "ranks"),
    Case("edge.factor_weights", "rank 0", lambda: edge.factor_weights(SHAPES, dict.fromkeys(SHAPES, 0)), "ranks"),
    Case("edge.factor_weights", "string shapes", lambda: edge.factor_weights("0", RANKS), "shapes"),
    Case("edge.factor_weights", "shape not (out, in)", lambda: edge.factor_weights(dict.fromkeys(SHAPES, 36), RANKS), "shapes"),
    Case("edge.energy_ranks", "string model", lambda: edge.energy_ranks("cnn", 1000), "model"),
    Case("edge.energy_ranks", "negative max_weights", lambda: edge.energy_ranks(CNN, -1), "max_weights"),
    Case("edge.energy_ranks", "NaN max_weights", lambda: edge.energy_ranks(CNN, math.nan), "max_weights"),
    Case("edge.energy_ranks", "string max_weights", lambda: edge.energy_ranks(CNN, "1000"), "max_weights"),
    # ------------------------------------------------------------------ edge: k-means, packing
    Case("edge.kmeans_share", "empty weight", lambda: edge.kmeans_share(torch.empty(0), 2), "weight"),
    Case("edge.kmeans_share", "NaN weight", lambda: edge.kmeans_share(torch.tensor([1.0, math.nan]), 2), "weight"),
    Case("edge.kmeans_share", "integer weight", lambda: edge.kmeans_share(torch.arange(6), 2), "weight"),
    Case("edge.kmeans_share", "bits 0", lambda: edge.kmeans_share(W, 0), "bits"),
    Case("edge.kmeans_share", "bits 9", lambda: edge.kmeans_share(W, 9), "bits"),
    Case("edge.kmeans_share", "iters 0", lambda: edge.kmeans_share(W, 2, 0), "iters"),
    Case("edge.kmeans_share", "iters 10**12", lambda: edge.kmeans_share(W, 2, 10**12), "iters"),
    Case("edge.kmeans_share", "fractional iters", lambda: edge.kmeans_share(W, 2, 2.5), "iters"),
    Case("edge.pack_indices", "float indices", lambda: edge.pack_indices(IDX.float(), 2), "indices"),
    Case("edge.pack_indices", "index out of range", lambda: edge.pack_indices(torch.tensor([0, 4]), 2), "indices"),
    Case("edge.pack_indices", "negative index", lambda: edge.pack_indices(torch.tensor([0, -1]), 2), "indices"),
    Case("edge.pack_indices", "bits 3", lambda: edge.pack_indices(IDX, 3), "bits"),
    Case("edge.pack_indices", "bits 0", lambda: edge.pack_indices(IDX, 0), "bits"),
    Case("edge.pack_indices", "string indices", lambda: edge.pack_indices("0123", 2), "indices"),
    Case("edge.unpack_indices", "n above capacity", lambda: edge.unpack_indices(PACKED, 2, 100), "n"),
    Case("edge.unpack_indices", "negative n", lambda: edge.unpack_indices(PACKED, 2, -1), "n"),
    Case("edge.unpack_indices", "fractional n", lambda: edge.unpack_indices(PACKED, 2, 2.5), "n"),
    Case("edge.unpack_indices", "int64 packed", lambda: edge.unpack_indices(PACKED.long(), 2, 6), "packed"),
    Case("edge.unpack_indices", "2-D packed", lambda: edge.unpack_indices(PACKED[None], 2, 6), "packed"),
    Case("edge.unpack_indices", "bits 5", lambda: edge.unpack_indices(PACKED, 5, 6), "bits"),
    Case("edge.packed_bytes", "negative n", lambda: edge.packed_bytes(-10, 2), "n"),
    Case("edge.packed_bytes", "fractional n", lambda: edge.packed_bytes(2.5, 2), "n"),
    Case("edge.packed_bytes", "bits 0", lambda: edge.packed_bytes(100, 0), "bits"),
    Case("edge.packed_bytes", "bits 10**12", lambda: edge.packed_bytes(100, 10**12), "bits"),
    Case("edge.packed_bytes", "fractional bits", lambda: edge.packed_bytes(100, 2.5), "bits"),
    Case("edge.packed_bytes", "negative codebook_bytes_per_entry", lambda: edge.packed_bytes(100, 2, -4), "codebook_bytes_per_entry"),
    Case("edge.shareable_layers", "string model", lambda: edge.shareable_layers("cnn.pt"), "model"),
    Case("edge.shareable_layers", "None model", lambda: edge.shareable_layers(None), "model"),
    Case("edge.shareable_layers", "a state dict", lambda: edge.shareable_layers(CNN.state_dict()), "model"),
    Case("edge.share_model", "string model", lambda: edge.share_model("cnn.pt", 2), "model"),
    Case("edge.share_model", "None model", lambda: edge.share_model(None, 2), "model"),
    Case("edge.share_model", "bits 0", lambda: edge.share_model(CNN, 0), "bits"),
    Case("edge.share_model", "bits 9", lambda: edge.share_model(CNN, 9), "bits"),
    Case("edge.share_model", "iters 0", lambda: edge.share_model(CNN, 2, 0), "iters"),
    Case("edge.shared_model_bytes", "empty books", lambda: edge.shared_model_bytes(SHARED, {}, 2), "books"),
    Case("edge.shared_model_bytes", "bits not those of the books", lambda: edge.shared_model_bytes(SHARED, BOOKS, 4), "bits"),
    Case("edge.shared_model_bytes", "bits 0", lambda: edge.shared_model_bytes(SHARED, BOOKS, 0), "bits"),
    Case("edge.shared_model_bytes", "string model", lambda: edge.shared_model_bytes("cnn", BOOKS, 2), "model"),
    Case("edge.shared_model_bytes", "books of another model", lambda: edge.shared_model_bytes(nn.Sequential(nn.Linear(6, 4)), BOOKS, 2), "books"),
    Case("edge.finetune_centroids", "epochs 0", lambda: edge.finetune_centroids(SHARED, BOOKS, LOADER, epochs=0), "epochs"),
    Case("edge.finetune_centroids", "epochs 10**12", lambda: edge.finetune_centroids(SHARED, BOOKS, LOADER, epochs=10**12), "epochs"),
    Case("edge.finetune_centroids", "lr 0", lambda: edge.finetune_centroids(SHARED, BOOKS, LOADER, lr=0), "lr"),
    Case("edge.finetune_centroids", "NaN lr", lambda: edge.finetune_centroids(SHARED, BOOKS, LOADER, lr=math.nan), "lr"),
    Case("edge.finetune_centroids", "empty books", lambda: edge.finetune_centroids(SHARED, {}, LOADER), "books"),
    Case("edge.finetune_centroids", "string loader", lambda: edge.finetune_centroids(SHARED, BOOKS, "digits"), "loader"),
    Case("edge.finetune_centroids", "None loader", lambda: edge.finetune_centroids(SHARED, BOOKS, None), "loader"),
    # ------------------------------------------------------------------ edge: budgets, search
    Case("edge.budgets", "string model", lambda: edge.budgets("cnn.pt", X1), "model"),
    Case("edge.budgets", "empty example", lambda: edge.budgets(CNN, torch.empty(0, 1, 8, 8)), "example"),
    Case("edge.budgets", "example of the wrong size", lambda: edge.budgets(CNN, BAD_X), "example"),
    Case("edge.budgets", "integer example", lambda: edge.budgets(CNN, torch.ones(1, 1, 8, 8, dtype=torch.long)), "example"),
    Case("edge.budgets", "flattened example", lambda: edge.budgets(CNN, torch.rand(1, 64)), "example"),
    Case("edge.sample_architectures", "n 0", lambda: edge.sample_architectures(0), "n"),
    Case("edge.sample_architectures", "n 10**12", lambda: edge.sample_architectures(10**12), "n"),
    Case("edge.sample_architectures", "fractional n", lambda: edge.sample_architectures(2.5), "n"),
    Case("edge.sample_architectures", "negative n", lambda: edge.sample_architectures(-1), "n"),
    Case("edge.train_candidate", "width 0", lambda: edge.train_candidate(0, 2, LOADERS, epochs=1), "width"),
    Case("edge.train_candidate", "fractional width", lambda: edge.train_candidate(2.5, 2, LOADERS, epochs=1), "width"),
    Case("edge.train_candidate", "depth 1", lambda: edge.train_candidate(4, 1, LOADERS, epochs=1), "depth"),
    Case("edge.train_candidate", "epochs 0", lambda: edge.train_candidate(4, 2, LOADERS, epochs=0), "epochs"),
    Case("edge.train_candidate", "epochs 10**12", lambda: edge.train_candidate(4, 2, LOADERS, epochs=10**12), "epochs"),
    Case("edge.train_candidate", "one DataLoader as loaders", lambda: edge.train_candidate(4, 2, LOADER, epochs=1), "loaders"),
    # ------------------------------------------------------------------ edge: NAS
    Case("edge.build", "string arch", lambda: edge.build("8-3,8-3"), "arch"),
    Case("edge.build", "kernel 4", lambda: edge.build(((8, 4), (8, 3))), "arch"),
    Case("edge.build", "five blocks", lambda: edge.build(((8, 3),) * 5), "arch"),
    Case("edge.build", "empty arch", lambda: edge.build(()), "arch"),
    Case("edge.lut_keys", "channels 7", lambda: edge.lut_keys(((7, 3), (8, 3))), "arch"),
    Case("edge.lut_keys", "None arch", lambda: edge.lut_keys(None), "arch"),
    Case("edge.lut_keys", "one block", lambda: edge.lut_keys(((8, 3),)), "arch"),
    Case("edge.latency_lut", "repeats 0", lambda: edge.latency_lut([KEY], repeats=0), "repeats"),
    Case("edge.latency_lut", "repeats 10**12", lambda: edge.latency_lut([KEY], repeats=10**12), "repeats"),
    Case("edge.latency_lut", "threads 0", lambda: edge.latency_lut([KEY], threads=0), "threads"),
    Case("edge.latency_lut", "negative threads", lambda: edge.latency_lut([KEY], threads=-1), "threads"),
    Case("edge.latency_lut", "empty keys", lambda: edge.latency_lut([]), "keys"),
    Case("edge.latency_lut", "unknown op kind", lambda: edge.latency_lut([("conv", 1, 4, 3, 8)]), "keys"),
    Case("edge.latency_lut", "string keys", lambda: edge.latency_lut("block"), "keys"),
    Case("edge.predict_latency", "lut missing the ops", lambda: edge.predict_latency(ARCH, {}), "lut"),
    Case("edge.predict_latency", "string lut", lambda: edge.predict_latency(ARCH, "lut.json"), "lut"),
    Case("edge.predict_latency", "NaN in lut", lambda: edge.predict_latency(ARCH, dict.fromkeys(LUT, math.nan)), "lut"),
    Case("edge.predict_latency", "negative latency in lut", lambda: edge.predict_latency(ARCH, dict.fromkeys(LUT, -1.0)), "lut"),
    Case("edge.predict_latency", "bad arch", lambda: edge.predict_latency(((8, 4),), LUT), "arch"),
    Case("edge.measure_latency", "bad arch", lambda: edge.measure_latency(((8, 4), (8, 3))), "arch"),
    Case("edge.measure_latency", "repeats 0", lambda: edge.measure_latency(ARCH, repeats=0), "repeats"),
    Case("edge.measure_latency", "repeats 10**12", lambda: edge.measure_latency(ARCH, repeats=10**12), "repeats"),
    Case("edge.measure_latency", "negative threads", lambda: edge.measure_latency(ARCH, threads=-1), "threads"),
    Case("edge.measure_latency", "fractional threads", lambda: edge.measure_latency(ARCH, threads=2.5), "threads"),
    Case("edge.mean_abs_pct_error", "empty measured", lambda: edge.mean_abs_pct_error([1.0], []), "measured"),
    Case("edge.mean_abs_pct_error", "lengths differ", lambda: edge.mean_abs_pct_error([1.0, 2.0], [1.0]), "predicted"),
    Case("edge.mean_abs_pct_error", "measured 0", lambda: edge.mean_abs_pct_error([1.0], [0.0]), "measured"),
    Case("edge.mean_abs_pct_error", "inf measured", lambda: edge.mean_abs_pct_error([1.0], [math.inf]), "measured"),
    Case("edge.mean_abs_pct_error", "NaN predicted", lambda: edge.mean_abs_pct_error([math.nan], [1.0]), "predicted"),
    Case("edge.mean_abs_pct_error", "strings predicted", lambda: edge.mean_abs_pct_error(["1.0"], [1.0]), "predicted"),
    Case("edge.mnas_reward", "accuracy 1.5", lambda: edge.mnas_reward(1.5, 1.0, 2.0), "accuracy"),
    Case("edge.mnas_reward", "accuracy in percent", lambda: edge.mnas_reward(90, 1.0, 2.0), "accuracy"),
    Case("edge.mnas_reward", "latency_ms 0", lambda: edge.mnas_reward(0.9, 0.0, 2.0), "latency_ms"),
    Case("edge.mnas_reward", "NaN target_ms", lambda: edge.mnas_reward(0.9, 1.0, math.nan), "target_ms"),
    Case("edge.mnas_reward", "NaN alpha", lambda: edge.mnas_reward(0.9, 1.0, 2.0, alpha=math.nan), "alpha"),
    Case("edge.mnas_reward", "string beta", lambda: edge.mnas_reward(0.9, 3.0, 2.0, beta="-0.07"), "beta"),
    Case("edge.random_arch", "an int seed as rng", lambda: edge.random_arch(0), "rng"),
    Case("edge.random_arch", "None rng", lambda: edge.random_arch(None), "rng"),
    Case("edge.random_arch", "torch Generator rng", lambda: edge.random_arch(torch.Generator()), "rng"),
    Case("edge.mutate", "empty arch", lambda: edge.mutate((), RNG), "arch"),
    Case("edge.mutate", "string arch", lambda: edge.mutate("8-3,8-3", RNG), "arch"),
    Case("edge.mutate", "kernel 4", lambda: edge.mutate(((8, 4), (8, 3)), RNG), "arch"),
    Case("edge.mutate", "an int seed as rng", lambda: edge.mutate(ARCH, 0), "rng"),
    Case("edge.random_search", "budget 0", lambda: edge.random_search(acc_of, ms_of, 2.0, 0), "budget"),
    Case("edge.random_search", "negative budget", lambda: edge.random_search(acc_of, ms_of, 2.0, -3), "budget"),
    Case("edge.random_search", "fractional budget", lambda: edge.random_search(acc_of, ms_of, 2.0, 2.5), "budget"),
    Case("edge.random_search", "budget 10**12", lambda: edge.random_search(acc_of, ms_of, 2.0, 10**12), "budget"),
    Case("edge.random_search", "target_ms 0", lambda: edge.random_search(acc_of, ms_of, 0.0, 4), "target_ms"),
    Case("edge.random_search", "string evaluate", lambda: edge.random_search("accuracy", ms_of, 2.0, 4), "evaluate"),
    Case("edge.random_search", "None latency", lambda: edge.random_search(acc_of, None, 2.0, 4), "latency"),
    Case("edge.regularized_evolution", "budget below population", lambda: edge.regularized_evolution(acc_of, ms_of, 2.0, 4), "budget"),
    Case("edge.regularized_evolution", "budget 10**12", lambda: edge.regularized_evolution(acc_of, ms_of, 2.0, 10**12), "budget"),
    Case("edge.regularized_evolution", "population 1", lambda: edge.regularized_evolution(acc_of, ms_of, 2.0, 10, population=1), "population"),
    Case("edge.regularized_evolution", "sample above population", lambda: edge.regularized_evolution(acc_of, ms_of, 2.0, 10, sample=9), "sample"),
    Case("edge.regularized_evolution", "None evaluate", lambda: edge.regularized_evolution(None, ms_of, 2.0, 10), "evaluate"),
    Case("edge.regularized_evolution", "negative target_ms", lambda: edge.regularized_evolution(acc_of, ms_of, -1.0, 10), "target_ms"),
    Case("edge.train_arch", "bad arch", lambda: edge.train_arch(((8, 4), (8, 3)), LOADERS, epochs=1), "arch"),
    Case("edge.train_arch", "one DataLoader as loaders", lambda: edge.train_arch(ARCH, LOADER, epochs=1), "loaders"),
    Case("edge.train_arch", "epochs 0", lambda: edge.train_arch(ARCH, LOADERS, epochs=0), "epochs"),
    Case("edge.train_arch", "epochs 10**12", lambda: edge.train_arch(ARCH, LOADERS, epochs=10**12), "epochs"),
    Case("edge.best_so_far", "history without rewards", lambda: edge.best_so_far([{"arch": ARCH}]), "history"),
    Case("edge.best_so_far", "string history", lambda: edge.best_so_far("history"), "history"),
    Case("edge.best_so_far", "NaN reward", lambda: edge.best_so_far(HISTORY + [{**HISTORY[0], "reward": math.nan}]), "history"),
    Case("edge.best_so_far", "None history", lambda: edge.best_so_far(None), "history"),
    # ------------------------------------------------------------------ edge: ONNX size, energy
    Case("edge.onnx_size_breakdown", "missing file", lambda: edge.onnx_size_breakdown(TMP / "missing.onnx"), "path"),
    Case("edge.onnx_size_breakdown", "a text file", lambda: edge.onnx_size_breakdown(TXT), "path"),
    Case("edge.onnx_size_breakdown", "a folder", lambda: edge.onnx_size_breakdown(TMP), "path"),
    Case("edge.onnx_size_breakdown", "None path", lambda: edge.onnx_size_breakdown(None), "path"),
    Case("edge.over_budget", "measured missing a limit", lambda: edge.over_budget({"bytes": 10}, {"bytes": 20, "macs": 5}), "measured"),
    Case("edge.over_budget", "NaN measured", lambda: edge.over_budget({"bytes": math.nan}, {"bytes": 20}), "measured"),
    Case("edge.over_budget", "string measured", lambda: edge.over_budget({"bytes": "10"}, {"bytes": 20}), "measured"),
    Case("edge.over_budget", "NaN limit", lambda: edge.over_budget({"bytes": 10}, {"bytes": math.nan}), "budget"),
    Case("edge.over_budget", "budget a list", lambda: edge.over_budget({"bytes": 10}, ["bytes"]), "budget"),
    Case("edge.inference_energy", "negative macs", lambda: edge.inference_energy(-1, 100), "macs"),
    Case("edge.inference_energy", "fractional macs", lambda: edge.inference_energy(2.5, 100), "macs"),
    Case("edge.inference_energy", "string macs", lambda: edge.inference_energy("1e6", 100), "macs"),
    Case("edge.inference_energy", "negative weight_bytes", lambda: edge.inference_energy(10, -4), "weight_bytes"),
    Case("edge.inference_energy", "unknown dtype", lambda: edge.inference_energy(10, 100, "int4"), "dtype"),
    Case("edge.inference_energy", "NaN activation_bytes", lambda: edge.inference_energy(10, 100, activation_bytes=math.nan), "activation_bytes"),
    Case("edge.peak_activation_bytes", "string model", lambda: edge.peak_activation_bytes("cnn", X1), "model"),
    Case("edge.peak_activation_bytes", "empty Sequential", lambda: edge.peak_activation_bytes(nn.Sequential(), X1), "model"),
    Case("edge.peak_activation_bytes", "example of the wrong size", lambda: edge.peak_activation_bytes(CNN, BAD_X), "example"),
    Case("edge.peak_activation_bytes", "string example", lambda: edge.peak_activation_bytes(CNN, "x"), "example"),
    Case("edge.peak_activation_bytes", "empty example", lambda: edge.peak_activation_bytes(CNN, torch.empty(0, 1, 8, 8)), "example"),
    # ------------------------------------------------------------------ edge: deep compression
    Case("edge.huffman_code", "empty counts", lambda: edge.huffman_code({}), "counts"),
    Case("edge.huffman_code", "negative count", lambda: edge.huffman_code({0: 3, 1: -1}), "counts"),
    Case("edge.huffman_code", "counts a list", lambda: edge.huffman_code([5, 3, 1]), "counts"),
    Case("edge.huffman_code", "fractional count", lambda: edge.huffman_code({0: 2.5, 1: 1}), "counts"),
    Case("edge.huffman_encode", "symbol not in code", lambda: edge.huffman_encode([0, 7], CODE), "symbols"),
    Case("edge.huffman_encode", "int symbols", lambda: edge.huffman_encode(5, CODE), "symbols"),
    Case("edge.huffman_encode", "string code", lambda: edge.huffman_encode(MESSAGE, "0 10 11"), "code"),
    Case("edge.huffman_encode", "code not prefix-free", lambda: edge.huffman_encode([0, 1], NOT_PREFIX_FREE), "code"),
    Case("edge.huffman_decode", "bits end inside a codeword", lambda: edge.huffman_decode(BITS[:-1], CODE), "bits"),
    Case("edge.huffman_decode", "bits with a 2", lambda: edge.huffman_decode("0120", CODE), "bits"),
    Case("edge.huffman_decode", "int bits", lambda: edge.huffman_decode(1011, CODE), "bits"),
    Case("edge.huffman_decode", "empty code", lambda: edge.huffman_decode(BITS, {}), "code"),
    Case("edge.huffman_decode", "code not prefix-free", lambda: edge.huffman_decode("0110", NOT_PREFIX_FREE), "code"),
    Case("edge.expected_length", "code missing a symbol", lambda: edge.expected_length(COUNTS, {0: "0", 1: "1"}), "code"),
    Case("edge.expected_length", "empty counts", lambda: edge.expected_length({}, CODE), "counts"),
    Case("edge.expected_length", "negative count", lambda: edge.expected_length({0: -5, 1: 3, 2: 1}, CODE), "counts"),
    Case("edge.expected_length", "string code", lambda: edge.expected_length(COUNTS, "0 10 11"), "code"),
    Case("edge.entropy_bits", "empty counts", lambda: edge.entropy_bits({}), "counts"),
    Case("edge.entropy_bits", "negative count", lambda: edge.entropy_bits({0: 3, 1: -1}), "counts"),
    Case("edge.entropy_bits", "all counts zero", lambda: edge.entropy_bits({0: 0, 1: 0}), "counts"),
    Case("edge.entropy_bits", "NaN count", lambda: edge.entropy_bits({0: 3, 1: math.nan}), "counts"),
    Case("edge.entropy_bits", "string counts", lambda: edge.entropy_bits("aab"), "counts"),
    Case("edge.sparse_gaps", "string weight", lambda: edge.sparse_gaps("fc.weight"), "weight"),
    Case("edge.sparse_gaps", "None weight", lambda: edge.sparse_gaps(None), "weight"),
    Case("edge.sparse_gaps", "a list weight", lambda: edge.sparse_gaps([0.0, 1.0, 0.0]), "weight"),
    Case("edge.deep_compress", "string model", lambda: edge.deep_compress("pruned.pt", 4), "model"),
    Case("edge.deep_compress", "bits 0", lambda: edge.deep_compress(CNN, 0), "bits"),
    Case("edge.deep_compress", "bits 9", lambda: edge.deep_compress(CNN, 9), "bits"),
    Case("edge.deep_compress", "fractional bits", lambda: edge.deep_compress(CNN, 2.5), "bits"),
    Case("edge.stage_bytes", "string layers", lambda: edge.stage_bytes("layers"), "layers"),
    Case("edge.stage_bytes", "layer without bytes", lambda: edge.stage_bytes({"0": {}}), "layers"),
    Case("edge.stage_bytes", "layers a list", lambda: edge.stage_bytes([DC_LAYERS["0"]]), "layers"),
    Case("edge.stage_bytes", "a stage missing", lambda: edge.stage_bytes({"0": {"bytes": {"dense fp32": 10}}}), "layers"),
    # ------------------------------------------------------------------ pipeline: the steps
    Case("pipeline.distill_student", "string teacher", lambda: pipeline.distill_student("teacher.pt", LOADER, epochs=1), "teacher"),
    Case("pipeline.distill_student", "None loader", lambda: pipeline.distill_student(CNN, None, epochs=1), "loader"),
    Case("pipeline.distill_student", "width 0", lambda: pipeline.distill_student(CNN, LOADER, width=0, epochs=1), "width"),
    Case("pipeline.distill_student", "fractional width", lambda: pipeline.distill_student(CNN, LOADER, width=2.5, epochs=1), "width"),
    Case("pipeline.distill_student", "depth 1", lambda: pipeline.distill_student(CNN, LOADER, depth=1, epochs=1), "depth"),
    Case("pipeline.distill_student", "epochs 0", lambda: pipeline.distill_student(CNN, LOADER, epochs=0), "epochs"),
    Case("pipeline.distill_student", "epochs 10**12", lambda: pipeline.distill_student(CNN, LOADER, epochs=10**12), "epochs"),
    Case("pipeline.distill_student", "negative lr", lambda: pipeline.distill_student(CNN, LOADER, epochs=1, lr=-1.0), "lr"),
    Case("pipeline.distill_student", "T 0", lambda: pipeline.distill_student(CNN, LOADER, epochs=1, T=0.0), "T"),
    Case("pipeline.distill_student", "alpha 1.5", lambda: pipeline.distill_student(CNN, LOADER, epochs=1, alpha=1.5), "alpha"),
    Case("pipeline.prune_and_finetune", "string model", lambda: pipeline.prune_and_finetune("student", LOADER, epochs=1), "model"),
    Case("pipeline.prune_and_finetune", "string loader", lambda: pipeline.prune_and_finetune(CNN, "digits", epochs=1), "loader"),
    Case("pipeline.prune_and_finetune", "string teacher", lambda: pipeline.prune_and_finetune(CNN, LOADER, "teacher.pt", epochs=1), "teacher"),
    Case("pipeline.prune_and_finetune", "ratio 1", lambda: pipeline.prune_and_finetune(CNN, LOADER, ratio=1.0, epochs=1), "ratio"),
    Case("pipeline.prune_and_finetune", "negative ratio", lambda: pipeline.prune_and_finetune(CNN, LOADER, ratio=-0.1, epochs=1), "ratio"),
    Case("pipeline.prune_and_finetune", "epochs 0", lambda: pipeline.prune_and_finetune(CNN, LOADER, epochs=0), "epochs"),
    Case("pipeline.prune_and_finetune", "epochs 10**12", lambda: pipeline.prune_and_finetune(CNN, LOADER, epochs=10**12), "epochs"),
    Case("pipeline.prune_and_finetune", "lr 0", lambda: pipeline.prune_and_finetune(CNN, LOADER, epochs=1, lr=0.0), "lr"),
    Case("pipeline.prune_and_finetune", "negative T", lambda: pipeline.prune_and_finetune(CNN, LOADER, CNN, epochs=1, T=-1.0), "T"),
    Case("pipeline.prune_and_finetune", "alpha 2", lambda: pipeline.prune_and_finetune(CNN, LOADER, CNN, epochs=1, alpha=2.0), "alpha"),
    Case("pipeline.quantization_aware", "string model", lambda: pipeline.quantization_aware("pruned", LOADER, epochs=1), "model"),
    Case("pipeline.quantization_aware", "None loader", lambda: pipeline.quantization_aware(CNN, None, epochs=1), "loader"),
    Case("pipeline.quantization_aware", "bits 1", lambda: pipeline.quantization_aware(CNN, LOADER, bits=1, epochs=1), "bits"),
    Case("pipeline.quantization_aware", "fractional bits", lambda: pipeline.quantization_aware(CNN, LOADER, bits=2.5, epochs=1), "bits"),
    Case("pipeline.quantization_aware", "epochs 0", lambda: pipeline.quantization_aware(CNN, LOADER, epochs=0), "epochs"),
    Case("pipeline.quantization_aware", "epochs 10**12", lambda: pipeline.quantization_aware(CNN, LOADER, epochs=10**12), "epochs"),
    Case("pipeline.quantization_aware", "lr 0", lambda: pipeline.quantization_aware(CNN, LOADER, epochs=1, lr=0.0), "lr"),
    Case("pipeline.quantization_aware", "calib_batches 0", lambda: pipeline.quantization_aware(CNN, LOADER, epochs=1, calib_batches=0), "calib_batches"),
    Case("pipeline.export_float", "string qmodel", lambda: pipeline.export_float("q.pt"), "qmodel"),
    Case("pipeline.export_float", "None qmodel", lambda: pipeline.export_float(None), "qmodel"),
    Case("pipeline.export_float", "a model without QAT", lambda: pipeline.export_float(CNN), "qmodel"),
    Case("pipeline.export_onnx_int8", "string model", lambda: pipeline.export_onnx_int8("m", X[:2], X, TMP, "m"), "model"),
    Case("pipeline.export_onnx_int8", "string example", lambda: pipeline.export_onnx_int8(CNN, "x", X, TMP, "m"), "example"),
    Case("pipeline.export_onnx_int8", "example of the wrong size", lambda: pipeline.export_onnx_int8(CNN, BAD_X, X, TMP, "m"), "example"),
    Case("pipeline.export_onnx_int8", "empty calib_x", lambda: pipeline.export_onnx_int8(CNN, X[:2], torch.empty(0, 1, 8, 8), TMP, "m"), "calib_x"),
    Case("pipeline.export_onnx_int8", "NaN calib_x", lambda: pipeline.export_onnx_int8(CNN, X[:2], NAN_X, TMP, "m"), "calib_x"),
    Case("pipeline.export_onnx_int8", "flattened calib_x", lambda: pipeline.export_onnx_int8(CNN, X[:2], X.flatten(1), TMP, "m"), "calib_x"),
    Case("pipeline.export_onnx_int8", "None workdir", lambda: pipeline.export_onnx_int8(CNN, X[:2], X, None, "m"), "workdir"),
    Case("pipeline.export_onnx_int8", "None name", lambda: pipeline.export_onnx_int8(CNN, X[:2], X, TMP, None), "name"),
    # ------------------------------------------------------------------ pipeline: stages
    Case("pipeline.torch_stage", "string model", lambda: pipeline.torch_stage("t", "teacher.pt", X[:2]), "model"),
    Case("pipeline.torch_stage", "string example", lambda: pipeline.torch_stage("t", CNN, "x"), "example"),
    Case("pipeline.torch_stage", "empty example", lambda: pipeline.torch_stage("t", CNN, torch.empty(0, 1, 8, 8)), "example"),
    Case("pipeline.torch_stage", "example of the wrong size", lambda: pipeline.torch_stage("t", CNN, BAD_X), "example"),
    Case("pipeline.torch_stage", "None name", lambda: pipeline.torch_stage(None, CNN, X[:2]), "name"),
    Case("pipeline.onnx_stage", "missing file", lambda: pipeline.onnx_stage("o", TMP / "missing.onnx", 640), "path"),
    Case("pipeline.onnx_stage", "a text file", lambda: pipeline.onnx_stage("o", TXT, 640), "path"),
    Case("pipeline.onnx_stage", "negative macs", lambda: pipeline.onnx_stage("o", ONNX, -1), "macs"),
    Case("pipeline.onnx_stage", "fractional macs", lambda: pipeline.onnx_stage("o", ONNX, 2.5), "macs"),
    Case("pipeline.onnx_stage", "string macs", lambda: pipeline.onnx_stage("o", ONNX, "many"), "macs"),
    Case("pipeline.onnx_stage", "None name", lambda: pipeline.onnx_stage(None, ONNX, 640), "name"),
    Case("pipeline.run_pipeline", "string teacher", lambda: pipeline.run_pipeline("teacher.pt", LOADER, X, TMP, distill_epochs=1), "teacher"),
    Case("pipeline.run_pipeline", "None loader", lambda: pipeline.run_pipeline(CNN, None, X, TMP, distill_epochs=1), "loader"),
    Case("pipeline.run_pipeline", "string calib_x", lambda: pipeline.run_pipeline(CNN, LOADER, "x_train", TMP, distill_epochs=1), "calib_x"),
    Case("pipeline.run_pipeline", "empty calib_x", lambda: pipeline.run_pipeline(CNN, LOADER, torch.empty(0, 1, 8, 8), TMP, distill_epochs=1), "calib_x"),
    Case("pipeline.run_pipeline", "None workdir", lambda: pipeline.run_pipeline(CNN, LOADER, X, None, distill_epochs=1), "workdir"),
    Case("pipeline.run_pipeline", "width 0", lambda: pipeline.run_pipeline(CNN, LOADER, X, TMP, width=0, distill_epochs=1), "width"),
    Case("pipeline.run_pipeline", "distill_epochs 10**12", lambda: pipeline.run_pipeline(CNN, LOADER, X, TMP, distill_epochs=10**12), "distill_epochs"),
    Case("pipeline.run_pipeline", "prune_ratio 1", lambda: pipeline.run_pipeline(CNN, LOADER, X, TMP, distill_epochs=1, prune_ratio=1.0), "prune_ratio"),
    Case("pipeline.run_pipeline", "finetune_epochs 0", lambda: pipeline.run_pipeline(CNN, LOADER, X, TMP, distill_epochs=1, finetune_epochs=0), "finetune_epochs"),
    Case("pipeline.run_pipeline", "qat_epochs 0", lambda: pipeline.run_pipeline(CNN, LOADER, X, TMP, distill_epochs=1, qat_epochs=0), "qat_epochs"),
    Case("pipeline.run_pipeline", "bits 1", lambda: pipeline.run_pipeline(CNN, LOADER, X, TMP, distill_epochs=1, bits=1), "bits"),
    # ------------------------------------------------------------------ pipeline: measuring
    Case("pipeline.accuracy_rows", "empty stages", lambda: pipeline.accuracy_rows([], X, Y), "stages"),
    Case("pipeline.accuracy_rows", "rows as stages", lambda: pipeline.accuracy_rows(ROWS, X, Y), "stages"),
    Case("pipeline.accuracy_rows", "string x", lambda: pipeline.accuracy_rows(STAGES, "x_test", Y), "x"),
    Case("pipeline.accuracy_rows", "flattened x", lambda: pipeline.accuracy_rows(STAGES, X.flatten(1), Y), "x"),
    Case("pipeline.accuracy_rows", "y of the wrong length", lambda: pipeline.accuracy_rows(STAGES, X, Y[:3]), "y"),
    Case("pipeline.accuracy_rows", "float y", lambda: pipeline.accuracy_rows(STAGES, X, Y.float()), "y"),
    Case("pipeline.compare_stages", "one stage", lambda: pipeline.compare_stages(STAGES[:1], X32), "stages"),
    Case("pipeline.compare_stages", "duplicate stage names", lambda: pipeline.compare_stages([STAGES[0], STAGES[0]], X32), "stages"),
    Case("pipeline.compare_stages", "empty x", lambda: pipeline.compare_stages(STAGES, torch.empty(0, 1, 8, 8)), "x"),
    Case("pipeline.compare_stages", "batch size 0", lambda: pipeline.compare_stages(STAGES, X32, batches=(0,)), "batches"),
    Case("pipeline.compare_stages", "batch size 10**12", lambda: pipeline.compare_stages(STAGES, X32, batches=(10**12,)), "batches"),
    Case("pipeline.compare_stages", "rounds 0", lambda: pipeline.compare_stages(STAGES, X32, rounds=0), "rounds"),
    Case("pipeline.compare_stages", "rounds 10**12", lambda: pipeline.compare_stages(STAGES, X32, rounds=10**12), "rounds"),
    Case("pipeline.compare_stages", "repeats 0", lambda: pipeline.compare_stages(STAGES, X32, repeats=0), "repeats"),
    Case("pipeline.compare_stages", "repeats 10**12", lambda: pipeline.compare_stages(STAGES, X32, repeats=10**12), "repeats"),
    Case("pipeline.with_latency", "empty rows", lambda: pipeline.with_latency([], COMPS), "rows"),
    Case("pipeline.with_latency", "empty comparisons", lambda: pipeline.with_latency(ROWS, {}), "comparisons"),
    Case("pipeline.with_latency", "row without a stage", lambda: pipeline.with_latency(_with(ROWS, 0, stage=None), COMPS), "rows"),
    Case("pipeline.with_latency", "row of an untimed stage", lambda: pipeline.with_latency(_with(ROWS, 0, stage="c"), COMPS), "rows"),
    Case("pipeline.with_latency", "comparisons of dicts", lambda: pipeline.with_latency(ROWS, {"ms_b1": COMP.median_ms}), "comparisons"),
    Case("pipeline.with_latency", "key not ms_b<batch>", lambda: pipeline.with_latency(ROWS, {"b1": COMP}), "comparisons"),
    Case("pipeline.compression_summary", "base without bytes", lambda: pipeline.compression_summary(_with(ROWS, 0, bytes=None)[0], ROW_B), "base"),
    Case("pipeline.compression_summary", "string base", lambda: pipeline.compression_summary("teacher", ROW_B), "base"),
    Case("pipeline.compression_summary", "NaN base accuracy", lambda: pipeline.compression_summary({**ROW_A, "accuracy": math.nan}, ROW_B), "base"),
    Case("pipeline.compression_summary", "row bytes 0", lambda: pipeline.compression_summary(ROW_A, {**ROW_B, "bytes": 0}), "row"),
    Case("pipeline.compression_summary", "row accuracy 1.5", lambda: pipeline.compression_summary(ROW_A, {**ROW_B, "accuracy": 1.5}), "row"),
    Case("pipeline.compression_summary", "row latency 0", lambda: pipeline.compression_summary(ROW_A, {**ROW_B, "ms_b1": 0.0}), "row"),
    Case("pipeline.meets_target", "summary without smaller", lambda: pipeline.meets_target({"accuracy_drop_points": 0.5}), "summary"),
    Case("pipeline.meets_target", "string summary", lambda: pipeline.meets_target("9x smaller"), "summary"),
    Case("pipeline.meets_target", "NaN in summary", lambda: pipeline.meets_target({**SUMMARY, "smaller": math.nan}), "summary"),
    Case("pipeline.meets_target", "target without max_drop_points", lambda: pipeline.meets_target(SUMMARY, {"smaller": 8.0, "faster": 2.0}), "target"),
    Case("pipeline.meets_target", "NaN in target", lambda: pipeline.meets_target(SUMMARY, {**pipeline.TARGET, "faster": math.nan}), "target"),
    Case("pipeline.pick_stage", "empty rows", lambda: pipeline.pick_stage([], 1e6, 10.0), "rows"),
    Case("pipeline.pick_stage", "rows without accuracy", lambda: pipeline.pick_stage(_with(ROWS, 1, accuracy=None), 1e6, 10.0), "rows"),
    Case("pipeline.pick_stage", "max_bytes 0", lambda: pipeline.pick_stage(ROWS, 0, 10.0), "max_bytes"),
    Case("pipeline.pick_stage", "NaN max_ms", lambda: pipeline.pick_stage(ROWS, 1e6, math.nan), "max_ms"),
    Case("pipeline.pick_stage", "unknown latency_key", lambda: pipeline.pick_stage(ROWS, 1e6, 10.0, "ms_b7"), "latency_key"),
    Case("pipeline.clearly_faster", "a without latency", lambda: pipeline.clearly_faster({"stage": "a"}, ROW_B), "a"),
    Case("pipeline.clearly_faster", "NaN latency in a", lambda: pipeline.clearly_faster({**ROW_A, "ms_b1": math.nan}, ROW_B), "a"),
    Case("pipeline.clearly_faster", "string b", lambda: pipeline.clearly_faster(ROW_A, "b"), "b"),
    Case("pipeline.clearly_faster", "unknown latency_key", lambda: pipeline.clearly_faster(IQR_A, IQR_B, "ms_b7"), "latency_key"),
    Case("pipeline.pareto_stages", "empty rows", lambda: pipeline.pareto_stages([]), "rows"),
    Case("pipeline.pareto_stages", "string rows", lambda: pipeline.pareto_stages("rows"), "rows"),
    Case("pipeline.pareto_stages", "row without latency", lambda: pipeline.pareto_stages(_with(ROWS, 1, ms_b1=None)), "rows"),
    Case("pipeline.pareto_stages", "NaN accuracy", lambda: pipeline.pareto_stages(_with(ROWS, 1, accuracy=math.nan)), "rows"),
    Case("pipeline.pareto_stages", "unknown latency_key", lambda: pipeline.pareto_stages(ROWS, "ms_b7"), "latency_key"),
    # ------------------------------------------------------------------ pipeline: ablation
    Case("pipeline.prune_then_quantise", "string model", lambda: pipeline.prune_then_quantise("m", LOADER), "model"),
    Case("pipeline.prune_then_quantise", "None loader", lambda: pipeline.prune_then_quantise(CNN, None), "loader"),
    Case("pipeline.prune_then_quantise", "ratio 1", lambda: pipeline.prune_then_quantise(CNN, LOADER, ratio=1.0), "ratio"),
    Case("pipeline.prune_then_quantise", "bits 1", lambda: pipeline.prune_then_quantise(CNN, LOADER, bits=1), "bits"),
    Case("pipeline.prune_then_quantise", "epochs 0", lambda: pipeline.prune_then_quantise(CNN, LOADER, epochs=0), "epochs"),
    Case("pipeline.prune_then_quantise", "qat_epochs 0", lambda: pipeline.prune_then_quantise(CNN, LOADER, qat_epochs=0), "qat_epochs"),
    Case("pipeline.quantise_then_prune", "string model", lambda: pipeline.quantise_then_prune("m", LOADER), "model"),
    Case("pipeline.quantise_then_prune", "ratio 1", lambda: pipeline.quantise_then_prune(CNN, LOADER, ratio=1.0), "ratio"),
    Case("pipeline.quantise_then_prune", "bits 1", lambda: pipeline.quantise_then_prune(CNN, LOADER, bits=1), "bits"),
    Case("pipeline.quantise_then_prune", "epochs 0", lambda: pipeline.quantise_then_prune(CNN, LOADER, epochs=0), "epochs"),
    Case("pipeline.quantise_then_prune", "qat_epochs 10**12", lambda: pipeline.quantise_then_prune(CNN, LOADER, qat_epochs=10**12), "qat_epochs"),
    Case("pipeline.order_ablation", "string teacher", lambda: pipeline.order_ablation("t", LOADER, X, Y, seeds=(0,)), "teacher"),
    Case("pipeline.order_ablation", "None loader", lambda: pipeline.order_ablation(CNN, None, X, Y, seeds=(0,)), "loader"),
    Case("pipeline.order_ablation", "empty x", lambda: pipeline.order_ablation(CNN, LOADER, torch.empty(0, 1, 8, 8), Y[:0], seeds=(0,)), "x"),
    Case("pipeline.order_ablation", "y of the wrong length", lambda: pipeline.order_ablation(CNN, LOADER, X, Y[:3], seeds=(0,)), "y"),
    Case("pipeline.order_ablation", "no seeds", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=()), "seeds"),
    Case("pipeline.order_ablation", "negative seed", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=(-1,)), "seeds"),
    Case("pipeline.order_ablation", "width 0", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=(0,), width=0), "width"),
    Case("pipeline.order_ablation", "ratio 1", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=(0,), ratio=1.0), "ratio"),
    Case("pipeline.order_ablation", "bits 1", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=(0,), bits=1), "bits"),
    Case("pipeline.order_ablation", "epochs 0", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=(0,), epochs=0), "epochs"),
    Case("pipeline.order_ablation", "finetune_epochs 0", lambda: pipeline.order_ablation(CNN, LOADER, X, Y, seeds=(0,), finetune_epochs=0), "finetune_epochs"),
    Case("pipeline.order_table", "empty rows", lambda: pipeline.order_table([]), "rows"),
    Case("pipeline.order_table", "string rows", lambda: pipeline.order_table("rows"), "rows"),
    Case("pipeline.order_table", "row without accuracy", lambda: pipeline.order_table(_with(ABLATION, 0, accuracy=None)), "rows"),
    Case("pipeline.order_table", "sizes differ over seeds", lambda: pipeline.order_table(_with(ABLATION, 0, bytes=5)), "rows"),
    Case("pipeline.order_table", "NaN accuracy", lambda: pipeline.order_table(_with(ABLATION, 0, accuracy=math.nan)), "rows"),
    Case("pipeline.order_verdict", "empty rows", lambda: pipeline.order_verdict([], *pipeline.QUANT_ORDERS), "rows"),
    Case("pipeline.order_verdict", "unknown order a", lambda: pipeline.order_verdict(ABLATION, "prune first", ORDERS[1]), "a"),
    Case("pipeline.order_verdict", "unknown order b", lambda: pipeline.order_verdict(ABLATION, ORDERS[0], "quantise first"), "b"),
    Case("pipeline.order_verdict", "b the same order as a", lambda: pipeline.order_verdict(ABLATION, ORDERS[0], ORDERS[0]), "b"),
    Case("pipeline.order_verdict", "NaN accuracy", lambda: pipeline.order_verdict(_with(ABLATION, 0, accuracy=math.nan), *pipeline.QUANT_ORDERS), "rows"),
    # ------------------------------------------------------------------ pipeline: sweep
    Case("pipeline.sweep", "None loader", lambda: pipeline.sweep(None, X, Y, widths=(4,), ratios=(0.0,), bits=(8,), epochs=1), "loader"),
    Case("pipeline.sweep", "empty x", lambda: pipeline.sweep(LOADER, torch.empty(0, 1, 8, 8), Y[:0], widths=(4,), ratios=(0.0,), bits=(8,), epochs=1), "x"),
    Case("pipeline.sweep", "y of the wrong length", lambda: pipeline.sweep(LOADER, X, Y[:3], widths=(4,), ratios=(0.0,), bits=(8,), epochs=1), "y"),
    Case("pipeline.sweep", "no widths", lambda: pipeline.sweep(LOADER, X, Y, widths=(), ratios=(0.0,), bits=(8,), epochs=1), "widths"),
    Case("pipeline.sweep", "width 0", lambda: pipeline.sweep(LOADER, X, Y, widths=(0,), ratios=(0.0,), bits=(8,), epochs=1), "widths"),
    Case("pipeline.sweep", "fractional width", lambda: pipeline.sweep(LOADER, X, Y, widths=(2.5,), ratios=(0.0,), bits=(8,), epochs=1), "widths"),
    Case("pipeline.sweep", "width 10**12", lambda: pipeline.sweep(LOADER, X, Y, widths=(10**12,), ratios=(0.0,), bits=(8,), epochs=1), "widths"),
    Case("pipeline.sweep", "ratio 1", lambda: pipeline.sweep(LOADER, X, Y, widths=(4,), ratios=(1.0,), bits=(8,), epochs=1), "ratios"),
    Case("pipeline.sweep", "bits 1", lambda: pipeline.sweep(LOADER, X, Y, widths=(4,), ratios=(0.0,), bits=(1,), epochs=1), "bits"),
    Case("pipeline.sweep", "epochs 0", lambda: pipeline.sweep(LOADER, X, Y, widths=(4,), ratios=(0.0,), bits=(8,), epochs=0), "epochs"),
    Case("pipeline.sweep", "finetune_epochs 0", lambda: pipeline.sweep(LOADER, X, Y, widths=(4,), ratios=(0.5,), bits=(8,), epochs=1, finetune_epochs=0), "finetune_epochs"),
    Case("pipeline.sweep_front", "empty rows", lambda: pipeline.sweep_front([]), "rows"),
    Case("pipeline.sweep_front", "row without bytes", lambda: pipeline.sweep_front(_with(SWEEP, 0, bytes=None)), "rows"),
    Case("pipeline.sweep_front", "NaN accuracy", lambda: pipeline.sweep_front(_with(SWEEP, 0, accuracy=math.nan)), "rows"),
    Case("pipeline.sweep_front", "accuracy in percent", lambda: pipeline.sweep_front(_with(SWEEP, 0, accuracy=95.0)), "rows"),
    Case("pipeline.choose_under_budget", "empty rows", lambda: pipeline.choose_under_budget([], 1000), "rows"),
    Case("pipeline.choose_under_budget", "negative max_bytes", lambda: pipeline.choose_under_budget(SWEEP, -1), "max_bytes"),
    Case("pipeline.choose_under_budget", "NaN max_bytes", lambda: pipeline.choose_under_budget(SWEEP, math.nan), "max_bytes"),
    Case("pipeline.choose_under_budget", "negative tolerance_points", lambda: pipeline.choose_under_budget(SWEEP, 1000, -1.0), "tolerance_points"),
    Case("pipeline.sweep_figure", "empty rows", lambda: pipeline.sweep_figure([]), "rows"),
    Case("pipeline.sweep_figure", "rows without bits", lambda: pipeline.sweep_figure(_with(SWEEP, 0, bits=None)), "rows"),
    Case("pipeline.sweep_figure", "chosen without bytes", lambda: pipeline.sweep_figure(SWEEP, {"accuracy": 0.9}), "chosen"),
    Case("pipeline.sweep_figure", "string chosen", lambda: pipeline.sweep_figure(SWEEP, "width 8"), "chosen"),
    Case("pipeline.transformer_stages", "string model", lambda: pipeline.transformer_stages("tr.pt", LOADER, X, Y), "model"),
    Case("pipeline.transformer_stages", "None loader", lambda: pipeline.transformer_stages(CNN, None, X, Y), "loader"),
    Case("pipeline.transformer_stages", "empty x", lambda: pipeline.transformer_stages(CNN, LOADER, torch.empty(0, 1, 8, 8), Y[:0]), "x"),
    Case("pipeline.transformer_stages", "y of the wrong length", lambda: pipeline.transformer_stages(CNN, LOADER, X, Y[:3]), "y"),
    Case("pipeline.transformer_stages", "no bits", lambda: pipeline.transformer_stages(CNN, LOADER, X, Y, bits=()), "bits"),
    Case("pipeline.transformer_stages", "bits 1", lambda: pipeline.transformer_stages(CNN, LOADER, X, Y, bits=(1,)), "bits"),
    Case("pipeline.transformer_stages", "sparsity 1", lambda: pipeline.transformer_stages(CNN, LOADER, X, Y, sparsity=1.0), "sparsity"),
    Case("pipeline.transformer_stages", "finetune_epochs 0", lambda: pipeline.transformer_stages(CNN, LOADER, X, Y, finetune_epochs=0), "finetune_epochs"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    assert outcome(case) == "clear"
