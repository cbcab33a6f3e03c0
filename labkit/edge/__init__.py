"""Chapter 10, edge deployment (notebooks/10_edge_deployment.ipynb).

- ``lesson.py``: budgets, low-rank factorisation, k-means codebooks, the (width, depth) search.
- ``file_size.py``: where the bytes of an exported ONNX file go (weights, scales, graph).
- ``nas.py``: hardware-aware NAS: a latency lookup table, the MnasNet reward, evolution.
- ``deep_compression.py``: prune -> k-means sharing -> Huffman coding, bytes per stage.
- ``energy.py``: energy per inference, analytic peak activation memory, the budget check.
- ``exercises.py``: the notebook's exercises (low_rank_factors, kmeans_share, over_budget).
- ``checks.py``: input checks shared by these modules (loaders, an example that fits the model).
"""

from labkit.edge.lesson import (  # noqa: I001 (packed to keep the face short)
    DEPTHS, PACK_BITS, WIDTHS, Codebook, budgets, energy_ranks, factor_weights,
    factorizable_layers, factorize_conv, factorize_linear, factorize_model, factorized_params,
    finetune_centroids, kmeans_share, low_rank_factors, matrix_of, pack_indices, packed_bytes,
    rank_error_curve, sample_architectures, share_model, shareable_layers, shared_model_bytes,
    train_candidate, uniform_ranks, unpack_indices,
)  # fmt: skip
from labkit.edge.file_size import onnx_size_breakdown  # noqa: I001
from labkit.edge.nas import (  # noqa: I001
    best_so_far, build, latency_lut, lut_keys, mean_abs_pct_error, measure_latency, mnas_reward,
    mutate, predict_latency, random_arch, random_search, regularized_evolution, train_arch,
)  # fmt: skip
from labkit.edge.deep_compression import (  # noqa: I001
    STAGES, deep_compress, entropy_bits, expected_length, huffman_code, huffman_decode,
    huffman_encode, sparse_gaps, stage_bytes,
)  # fmt: skip
from labkit.edge.energy import ENERGY_PJ, inference_energy, over_budget, peak_activation_bytes

__all__ = [
    "DEPTHS", "ENERGY_PJ", "PACK_BITS", "STAGES", "WIDTHS", "Codebook", "best_so_far", "budgets", "build", "deep_compress",
    "energy_ranks", "entropy_bits", "expected_length", "factor_weights", "factorizable_layers", "factorize_conv",
    "factorize_linear", "factorize_model", "factorized_params", "finetune_centroids", "huffman_code", "huffman_decode",
    "huffman_encode", "inference_energy", "kmeans_share", "latency_lut", "low_rank_factors", "lut_keys", "matrix_of",
    "mean_abs_pct_error", "measure_latency", "mnas_reward", "mutate", "onnx_size_breakdown", "over_budget",
    "pack_indices", "packed_bytes", "peak_activation_bytes", "predict_latency", "random_arch", "random_search",
    "rank_error_curve", "regularized_evolution", "sample_architectures", "share_model", "shareable_layers",
    "shared_model_bytes", "sparse_gaps", "stage_bytes", "train_arch", "train_candidate", "uniform_ranks", "unpack_indices",
]  # fmt: skip
