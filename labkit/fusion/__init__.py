"""Chapter 07, operator fusion (notebooks/07_operator_fusion.ipynb):
- ``lesson.py``: the memory wall (bytes moved vs FLOPs), BatchNorm folded into the conv,
  elementwise chains fused by torch.compile, one GEMM for Q/K/V, ONNX Runtime's fusion levels.
"""

from labkit.fusion.lesson import (
    chain_traffic,
    compile_timed,
    count_layers,
    cuda_chain_speedup,
    elementwise_chain,
    fold_conv_bn,
    fold_model,
    fuse_qkv,
    matmul_traffic,
    op_counts,
    ort_graph_levels,
    ort_levels,
    split_qkv,
)

__all__ = [
    "chain_traffic", "matmul_traffic", "fold_conv_bn", "fold_model", "count_layers",
    "elementwise_chain", "compile_timed", "cuda_chain_speedup", "fuse_qkv", "split_qkv",
    "op_counts", "ort_graph_levels", "ort_levels",
]  # fmt: skip
