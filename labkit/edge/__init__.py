"""Chapter 10, edge deployment (notebooks/10_edge_deployment.ipynb).

- ``lesson.py``: the budgets (bytes, MACs, peak memory), low-rank factorisation (truncated
  SVD, one rank fraction or per-layer ranks), weight sharing with k-means codebooks and packed
  indices, hardware-aware search.
- ``file_size.py``: where the bytes of an exported ONNX file go (weights, scales, graph).
- ``exercises.py``: the notebook's exercises (low_rank_factors, kmeans_share).
"""

from labkit.edge.lesson import (  # noqa: I001 (packed to keep the face short)
    DEPTHS, PACK_BITS, WIDTHS, Codebook, budgets, energy_ranks, factor_weights,
    factorizable_layers, factorize_conv, factorize_linear, factorize_model, factorized_params,
    finetune_centroids, kmeans_share, low_rank_factors, matrix_of, pack_indices, packed_bytes,
    rank_error_curve, sample_architectures, share_model, shareable_layers, shared_model_bytes,
    train_candidate, uniform_ranks, unpack_indices,
)  # fmt: skip
from labkit.edge.file_size import onnx_size_breakdown  # noqa: I001

__all__ = [
    "DEPTHS", "PACK_BITS", "WIDTHS", "Codebook", "budgets", "energy_ranks", "factor_weights",
    "factorizable_layers", "factorize_conv", "factorize_linear", "factorize_model",
    "factorized_params", "finetune_centroids", "kmeans_share", "low_rank_factors", "matrix_of",
    "onnx_size_breakdown", "pack_indices", "packed_bytes", "rank_error_curve",
    "sample_architectures", "share_model", "shareable_layers", "shared_model_bytes",
    "train_candidate", "uniform_ranks", "unpack_indices",
]  # fmt: skip
