"""Bad input for attention, fusion, deploy, interview, measure (issue 18, section 5): one bad argument per case; see badinput_probe.py.

measure's face (labkit/measure/__init__.py) exports no name (its library is core's bench and env),
so it has no case here. GPU-only functions get only cases that fail before a GPU is needed.
"""

import math
import tempfile
from pathlib import Path

import onnx
import pytest
import torch
from badinput_probe import Case, outcome
from onnx import TensorProto, helper
from torch import nn

from labkit import attention, deploy, fusion, interview
from labkit.core import bench

# ---------------------------------------------------------------- shared valid inputs (tiny)

_G = torch.Generator().manual_seed(0)
Q, K, V = (torch.randn(1, 8, 4, generator=_G) for _ in range(3))  # (1, N=8, d=4)
OUT, LSE = attention.flash_forward(Q, K, V)
DO = torch.randn(1, 8, 4, generator=_G)
Q6, K6, V6 = (torch.randn(12, 4, generator=_G) for _ in range(3))  # one head, (N, d)
FNS = {
    "naive": attention.naive_attention,
    "tiled": lambda q, k, v: attention.tiled_attention(q, k, v, block_size=8),
}
# one tile of the forward: o (B_r=3, d=2), m and l (3,), s (3, B_c=4), v (4, 2)
TO, TM, TL = torch.zeros(3, 2), torch.full((3,), -math.inf), torch.zeros(3)
TS, TV = torch.randn(3, 4, generator=_G), torch.randn(4, 2, generator=_G)
# one tile of the backward: q (3, 4), k (5, 4), v (5, 2), do (3, 2), lse and delta (3,)
BQ, BK, BV = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2)
BDO, BLSE, BDELTA = torch.randn(3, 2), torch.randn(3), torch.randn(3)

CONV, BN = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4).eval()
BN_NAN = nn.BatchNorm2d(4).eval()
BN_NAN.running_var.fill_(float("nan"))
CNN = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
LQ, LK, LV = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
Y = torch.randn(2, 12)  # a fused (d_q + d_k + d_v) = 4 + 4 + 4 projection

_TMP = Path(tempfile.mkdtemp(prefix="badinput_kernels_"))
_GRAPH = helper.make_graph(
    [helper.make_node("Relu", ["x"], ["logits"])],
    "tiny",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
)
_MODEL = helper.make_model(_GRAPH, opset_imports=[helper.make_opsetid("", 17)])
_MODEL.ir_version = 8
ONNX = _TMP / "tiny.onnx"  # input x (batch, 4) -> Relu -> logits
onnx.save(_MODEL, str(ONNX))
TEXT = _TMP / "notes.txt"
TEXT.write_text("not an ONNX model")
MISSING = _TMP / "no_such_file.onnx"
X4 = torch.randn(6, 4, generator=_G)  # fits the tiny graph and the tiny linear model
LINEAR = nn.Sequential(nn.Linear(4, 4)).eval()
NO_FOLDER = _TMP / "no_such_folder"
A_FILE = TEXT  # a file where a folder is expected


def _cmp(lo: float, hi: float) -> bench.Comparison:
    return bench.Comparison(
        "eager",
        {"eager": 1.0, "ORT": 0.5},
        {"eager": 1.0, "ORT": 2.0},
        {"eager": (1.0, 1.0), "ORT": (lo, hi)},
        3,
        1,
    )


RUNS = {"batch 1": _cmp(1.8, 2.2), "batch 32": _cmp(2.5, 3.0)}


def _echo(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"logits": x}


def _with_backend(name: object) -> None:
    with attention.forced_backend(name):  # type: ignore[arg-type]
        return None


CASES = [
    # ------------------------------------------------------------ attention: lesson.py
    Case("attention.score_matrix_bytes", "n = 0", lambda: attention.score_matrix_bytes(0), "n"),
    Case("attention.score_matrix_bytes", "negative n", lambda: attention.score_matrix_bytes(-1024), "n"),
    Case("attention.score_matrix_bytes", "fractional n", lambda: attention.score_matrix_bytes(1024.5), "n"),
    Case("attention.score_matrix_bytes", "bool n", lambda: attention.score_matrix_bytes(True), "n"),
    Case("attention.score_matrix_bytes", "m = 0", lambda: attention.score_matrix_bytes(1024, 0), "m"),
    Case("attention.score_matrix_bytes", "batch_heads = 0", lambda: attention.score_matrix_bytes(1024, batch_heads=0), "batch_heads"),
    Case("attention.score_matrix_bytes", "dtype_bytes = 0", lambda: attention.score_matrix_bytes(1024, dtype_bytes=0), "dtype_bytes"),
    Case("attention.naive_attention", "q is None", lambda: attention.naive_attention(None, K, V), "q"),
    Case("attention.naive_attention", "empty q", lambda: attention.naive_attention(torch.empty(1, 0, 4), K, V), "q"),
    Case("attention.naive_attention", "integer q", lambda: attention.naive_attention(Q.long(), K, V), "q"),
    Case("attention.naive_attention", "1-D q", lambda: attention.naive_attention(torch.randn(4), K, V), "q"),
    Case("attention.naive_attention", "k's head dim differs from q's", lambda: attention.naive_attention(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.naive_attention", "v's length differs from k's", lambda: attention.naive_attention(Q, K, torch.randn(1, 7, 4)), "v"),
    Case("attention.naive_attention", "scale = 0", lambda: attention.naive_attention(Q, K, V, scale=0.0), "scale"),
    Case("attention.naive_attention", "NaN scale", lambda: attention.naive_attention(Q, K, V, scale=float("nan")), "scale"),
    Case("attention.naive_attention", "causal as the string 'no'", lambda: attention.naive_attention(Q, K, V, causal="no"), "causal"),
    Case("attention.memory_and_time", "one function only", lambda: attention.memory_and_time({"naive": attention.naive_attention}, ns=(16,), d=4), "fns"),
    Case("attention.memory_and_time", "fns a list", lambda: attention.memory_and_time(list(FNS.values()), ns=(16,), d=4), "fns"),
    Case("attention.memory_and_time", "empty ns", lambda: attention.memory_and_time(FNS, ns=(), d=4), "ns"),
    Case("attention.memory_and_time", "ns an int, not a tuple", lambda: attention.memory_and_time(FNS, ns=16, d=4), "ns"),
    Case("attention.memory_and_time", "a zero length in ns", lambda: attention.memory_and_time(FNS, ns=(0,), d=4), "ns"),
    Case("attention.memory_and_time", "absurd length in ns", lambda: attention.memory_and_time(FNS, ns=(10**12,), d=4), "ns"),
    Case("attention.memory_and_time", "d = 0", lambda: attention.memory_and_time(FNS, ns=(16,), d=0), "d"),
    Case("attention.memory_and_time", "batch_heads = 0", lambda: attention.memory_and_time(FNS, ns=(16,), d=4, batch_heads=0), "batch_heads"),
    Case("attention.memory_and_time", "rounds = 0", lambda: attention.memory_and_time(FNS, ns=(16,), d=4, rounds=0), "rounds"),
    Case("attention.memory_and_time", "threads = 0", lambda: attention.memory_and_time(FNS, ns=(16,), d=4, threads=0), "threads"),
    Case("attention.safe_softmax", "x is None", lambda: attention.safe_softmax(None), "x"),
    Case("attention.safe_softmax", "x a list", lambda: attention.safe_softmax([1.0, 2.0]), "x"),
    Case("attention.safe_softmax", "empty x", lambda: attention.safe_softmax(torch.empty(0)), "x"),
    Case("attention.safe_softmax", "integer x", lambda: attention.safe_softmax(torch.tensor([1, 2, 3])), "x"),
    Case("attention.safe_softmax", "0-d x", lambda: attention.safe_softmax(torch.tensor(1.0)), "x"),
    Case("attention.online_softmax", "block_size = 0", lambda: attention.online_softmax(TS, block_size=0), "block_size"),
    Case("attention.online_softmax", "negative block_size", lambda: attention.online_softmax(TS, block_size=-1), "block_size"),
    Case("attention.online_softmax", "fractional block_size", lambda: attention.online_softmax(TS, block_size=2.5), "block_size"),
    Case("attention.online_softmax", "bool block_size", lambda: attention.online_softmax(TS, block_size=True), "block_size"),
    Case("attention.online_softmax", "empty x", lambda: attention.online_softmax(torch.empty(3, 0)), "x"),
    Case("attention.online_softmax", "integer x", lambda: attention.online_softmax(torch.tensor([1, 2, 3])), "x"),
    Case("attention.tile_update", "o is None", lambda: attention.tile_update(None, TM, TL, TS, TV), "o"),
    Case("attention.tile_update", "m of shape (3, 1)", lambda: attention.tile_update(TO, TM[:, None], TL, TS, TV), "m"),
    Case("attention.tile_update", "l of shape (2,)", lambda: attention.tile_update(TO, TM, TL[:2], TS, TV), "l"),
    Case("attention.tile_update", "s 5 keys wide, v 4 keys", lambda: attention.tile_update(TO, TM, TL, torch.randn(3, 5), TV), "s"),
    Case("attention.tile_update", "s a list", lambda: attention.tile_update(TO, TM, TL, TS.tolist(), TV), "s"),
    Case("attention.tile_update", "v's head dim differs from o's", lambda: attention.tile_update(TO, TM, TL, TS, torch.randn(4, 3)), "v"),
    Case("attention.tiled_attention", "block_size = 0", lambda: attention.tiled_attention(Q, K, V, block_size=0), "block_size"),
    Case("attention.tiled_attention", "fractional block_size", lambda: attention.tiled_attention(Q, K, V, block_size=64.0), "block_size"),
    Case("attention.tiled_attention", "block_q = 0", lambda: attention.tiled_attention(Q, K, V, block_q=0), "block_q"),
    Case("attention.tiled_attention", "k's head dim differs from q's", lambda: attention.tiled_attention(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.tiled_attention", "integer q", lambda: attention.tiled_attention(Q.long(), K, V), "q"),
    Case("attention.tiled_attention", "negative scale", lambda: attention.tiled_attention(Q, K, V, scale=-1.0), "scale"),
    Case("attention.tiled_attention", "causal as the string 'no'", lambda: attention.tiled_attention(Q, K, V, causal="no"), "causal"),
    Case("attention.io_complexity", "n = 0", lambda: attention.io_complexity(0, 64, 196608), "n"),
    Case("attention.io_complexity", "d = 0", lambda: attention.io_complexity(1024, 0, 196608), "d"),
    Case("attention.io_complexity", "fractional d", lambda: attention.io_complexity(1024, 64.5, 196608), "d"),
    Case("attention.io_complexity", "sram_bytes = 0", lambda: attention.io_complexity(1024, 64, 0), "sram_bytes"),
    Case("attention.io_complexity", "SRAM smaller than one row (M < d)", lambda: attention.io_complexity(1024, 64, 16), "sram_bytes"),
    Case("attention.io_complexity", "dtype_bytes = 0", lambda: attention.io_complexity(1024, 64, 196608, dtype_bytes=0), "dtype_bytes"),
    # ------------------------------------------------------------ attention: loop_order.py
    Case("attention.flash_block_sizes", "sram_elements = 0", lambda: attention.flash_block_sizes(0, 64), "sram_elements"),
    Case("attention.flash_block_sizes", "negative sram_elements", lambda: attention.flash_block_sizes(-4096, 64), "sram_elements"),
    Case("attention.flash_block_sizes", "d = 0", lambda: attention.flash_block_sizes(4096, 0), "d"),
    Case("attention.flash_block_sizes", "float d", lambda: attention.flash_block_sizes(4096, 16.0), "d"),
    Case("attention.hbm_traffic", "unknown order 'fa3'", lambda: attention.hbm_traffic(1024, 64, 98304, "fa3"), "order"),
    Case("attention.hbm_traffic", "order None", lambda: attention.hbm_traffic(1024, 64, 98304, None), "order"),
    Case("attention.hbm_traffic", "n = 0", lambda: attention.hbm_traffic(0, 64, 98304), "n"),
    Case("attention.hbm_traffic", "negative d", lambda: attention.hbm_traffic(1024, -1, 98304), "d"),
    Case("attention.hbm_traffic", "sram_elements = 0", lambda: attention.hbm_traffic(1024, 64, 0), "sram_elements"),
    Case("attention.loop_order_forward", "batched 3-D q", lambda: attention.loop_order_forward(Q, K, V, 4, 4), "q"),
    Case("attention.loop_order_forward", "block_q = 0", lambda: attention.loop_order_forward(Q6, K6, V6, 0, 4), "block_q"),
    Case("attention.loop_order_forward", "block_k = 0", lambda: attention.loop_order_forward(Q6, K6, V6, 4, 0), "block_k"),
    Case("attention.loop_order_forward", "fractional block_k", lambda: attention.loop_order_forward(Q6, K6, V6, 4, 2.5), "block_k"),
    Case("attention.loop_order_forward", "order 'FA2'", lambda: attention.loop_order_forward(Q6, K6, V6, 4, 4, "FA2"), "order"),
    Case("attention.loop_order_forward", "k's head dim differs from q's", lambda: attention.loop_order_forward(Q6, torch.randn(12, 5), V6, 4, 4), "k"),
    # ------------------------------------------------------------ attention: flash.py
    Case("attention.flash_forward", "float16 q", lambda: attention.flash_forward(Q.half(), K.half(), V.half()), "q"),
    Case("attention.flash_forward", "block_size = 0", lambda: attention.flash_forward(Q, K, V, block_size=0), "block_size"),
    Case("attention.flash_forward", "k's head dim differs from q's", lambda: attention.flash_forward(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.flash_forward", "scale = 0", lambda: attention.flash_forward(Q, K, V, scale=0.0), "scale"),
    Case("attention.flash_forward", "v is None", lambda: attention.flash_forward(Q, K, None), "v"),
    Case("attention.flash_forward", "causal as the string 'no'", lambda: attention.flash_forward(Q, K, V, causal="no"), "causal"),
    Case("attention.causal_tile_mask", "rows = 0", lambda: attention.causal_tile_mask(0, 0, 0, 4), "rows"),
    Case("attention.causal_tile_mask", "negative cols", lambda: attention.causal_tile_mask(0, 0, 4, -1), "cols"),
    Case("attention.causal_tile_mask", "negative i0", lambda: attention.causal_tile_mask(-1, 0, 4, 4), "i0"),
    Case("attention.causal_tile_mask", "fractional j0", lambda: attention.causal_tile_mask(0, 1.5, 4, 4), "j0"),
    Case("attention.causal_tile_mask", "a 10^6 x 10^6 tile", lambda: attention.causal_tile_mask(0, 0, 10**6, 10**6), "rows"),
    Case("attention.causal_tile_mask", "unknown device 'gpu0'", lambda: attention.causal_tile_mask(0, 0, 4, 4, "gpu0"), "device"),
    Case("attention.backward_tile", "q is None", lambda: attention.backward_tile(None, BK, BV, BDO, BLSE, BDELTA, 0.5), "q"),
    Case("attention.backward_tile", "k's head dim differs from q's", lambda: attention.backward_tile(BQ, torch.randn(5, 3), BV, BDO, BLSE, BDELTA, 0.5), "k"),
    Case("attention.backward_tile", "scale None", lambda: attention.backward_tile(BQ, BK, BV, BDO, BLSE, BDELTA, None), "scale"),
    Case("attention.backward_tile", "scale = 0", lambda: attention.backward_tile(BQ, BK, BV, BDO, BLSE, BDELTA, 0.0), "scale"),
    Case("attention.backward_tile", "do of shape (3, 3), v's d_v is 2", lambda: attention.backward_tile(BQ, BK, BV, torch.randn(3, 3), BLSE, BDELTA, 0.5), "do"),
    Case("attention.backward_tile", "lse of 4 rows, q has 3", lambda: attention.backward_tile(BQ, BK, BV, BDO, torch.randn(4), BDELTA, 0.5), "lse"),
    Case("attention.backward_tile", "delta of shape (3, 1)", lambda: attention.backward_tile(BQ, BK, BV, BDO, BLSE, BDELTA[:, None], 0.5), "delta"),
    Case("attention.backward_tile", "a float mask", lambda: attention.backward_tile(BQ, BK, BV, BDO, BLSE, BDELTA, 0.5, torch.ones(3, 5)), "mask"),
    Case("attention.backward_tile", "mask transposed (5, 3)", lambda: attention.backward_tile(BQ, BK, BV, BDO, BLSE, BDELTA, 0.5, torch.ones(5, 3, dtype=torch.bool)), "mask"),
    Case("attention.flash_backward", "o of the wrong shape", lambda: attention.flash_backward(Q, K, V, OUT[:, :4], LSE, DO), "o"),
    Case("attention.flash_backward", "lse of the wrong shape", lambda: attention.flash_backward(Q, K, V, OUT, LSE[..., None], DO), "lse"),
    Case("attention.flash_backward", "do is None", lambda: attention.flash_backward(Q, K, V, OUT, LSE, None), "do"),
    Case("attention.flash_backward", "block_size = 0", lambda: attention.flash_backward(Q, K, V, OUT, LSE, DO, block_size=0), "block_size"),
    Case("attention.flash_backward", "integer q", lambda: attention.flash_backward(Q.long(), K, V, OUT, LSE, DO), "q"),
    Case("attention.flash_attention", "block_size = 0", lambda: attention.flash_attention(Q, K, V, block_size=0), "block_size"),
    Case("attention.flash_attention", "integer q", lambda: attention.flash_attention(Q.long(), K, V), "q"),
    Case("attention.flash_attention", "k's head dim differs from q's", lambda: attention.flash_attention(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.flash_attention", "NaN scale", lambda: attention.flash_attention(Q, K, V, scale=float("nan")), "scale"),
    Case("attention.flash_attention", "causal as the string 'no'", lambda: attention.flash_attention(Q, K, V, causal="no"), "causal"),
    Case("attention.largest_tensor", "fn is None", lambda: attention.largest_tensor(None, Q, K, V), "fn"),
    Case("attention.largest_tensor", "fn a function's name", lambda: attention.largest_tensor("naive_attention", Q, K, V), "fn"),
    Case("attention.largest_tensor", "fn a module of functions", lambda: attention.largest_tensor(attention, Q, K, V), "fn"),
    Case("attention.train_step_memory", "empty fns", lambda: attention.train_step_memory({}, n=16, d=4), "fns"),
    Case("attention.train_step_memory", "fns a list", lambda: attention.train_step_memory([attention.naive_attention], n=16, d=4), "fns"),
    Case("attention.train_step_memory", "fns holds a string", lambda: attention.train_step_memory({"naive": "naive_attention"}, n=16, d=4), "fns"),
    Case("attention.train_step_memory", "n = 0", lambda: attention.train_step_memory(FNS, n=0, d=4), "n"),
    Case("attention.train_step_memory", "absurd n", lambda: attention.train_step_memory(FNS, n=10**12, d=4), "n"),
    Case("attention.train_step_memory", "d = 0", lambda: attention.train_step_memory(FNS, n=16, d=0), "d"),
    # ------------------------------------------------------------ attention: fused.py
    Case("attention.parallel_flash_forward", "block_size = 0", lambda: attention.parallel_flash_forward(Q, K, V, block_size=0), "block_size"),
    Case("attention.parallel_flash_forward", "float16 q", lambda: attention.parallel_flash_forward(Q.half(), K.half(), V.half()), "q"),
    Case("attention.parallel_flash_forward", "negative scale", lambda: attention.parallel_flash_forward(Q, K, V, scale=-1.0), "scale"),
    Case("attention.parallel_flash_forward", "v's length differs from k's", lambda: attention.parallel_flash_forward(Q, K, torch.randn(1, 7, 4)), "v"),
    Case("attention.parallel_flash_forward", "causal as the string 'no'", lambda: attention.parallel_flash_forward(Q, K, V, causal="no"), "causal"),
    Case("attention.compiled_flash_forward", "block_q = 0", lambda: attention.compiled_flash_forward(Q, K, V, block_q=0), "block_q"),
    Case("attention.compiled_flash_forward", "block_size = 0", lambda: attention.compiled_flash_forward(Q, K, V, block_size=0), "block_size"),
    Case("attention.compiled_flash_forward", "integer q", lambda: attention.compiled_flash_forward(Q.long(), K, V), "q"),
    Case("attention.compiled_flash_forward", "k's head dim differs from q's", lambda: attention.compiled_flash_forward(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.compiled_flash_forward", "causal as the string 'no'", lambda: attention.compiled_flash_forward(Q, K, V, causal="no"), "causal"),
    Case("attention.time_fused_forward", "n = 0", lambda: attention.time_fused_forward(n=0), "n"),
    Case("attention.time_fused_forward", "absurd n", lambda: attention.time_fused_forward(n=10**12), "n"),
    Case("attention.time_fused_forward", "d = 0", lambda: attention.time_fused_forward(n=64, d=0), "d"),
    Case("attention.time_fused_forward", "block_size = 0", lambda: attention.time_fused_forward(n=64, d=4, block_size=0), "block_size"),
    Case("attention.time_fused_forward", "block_q = 0", lambda: attention.time_fused_forward(n=64, d=4, block_q=0), "block_q"),
    Case("attention.time_fused_forward", "rounds = 0", lambda: attention.time_fused_forward(n=64, d=4, rounds=0), "rounds"),
    Case("attention.time_fused_forward", "seed None", lambda: attention.time_fused_forward(n=64, d=4, seed=None), "seed"),
    Case("attention.triton_flash_forward", "q is None", lambda: attention.triton_flash_forward(None, K, V), "q"),
    Case("attention.triton_flash_forward", "k's head dim differs from q's", lambda: attention.triton_flash_forward(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.triton_flash_forward", "scale = 0", lambda: attention.triton_flash_forward(Q, K, V, scale=0.0), "scale"),
    Case("attention.triton_flash_forward", "integer q", lambda: attention.triton_flash_forward(Q.long(), K, V), "q"),
    Case("attention.triton_flash_backward", "q is None", lambda: attention.triton_flash_backward(None, K, V, OUT, LSE, DO), "q"),
    Case("attention.triton_flash_backward", "o of the wrong shape", lambda: attention.triton_flash_backward(Q, K, V, OUT[:, :4], LSE, DO), "o"),
    Case("attention.triton_flash_backward", "lse is None", lambda: attention.triton_flash_backward(Q, K, V, OUT, None, DO), "lse"),
    Case("attention.triton_flash_backward", "do of the wrong shape", lambda: attention.triton_flash_backward(Q, K, V, OUT, LSE, DO[..., :2]), "do"),
    # ------------------------------------------------------------ attention: backends.py
    Case("attention.sdpa_kernel_used", "q is None", lambda: attention.sdpa_kernel_used(None, K, V), "q"),
    Case("attention.sdpa_kernel_used", "empty q", lambda: attention.sdpa_kernel_used(torch.empty(1, 0, 4), K, V), "q"),
    Case("attention.sdpa_kernel_used", "k's head dim differs from q's", lambda: attention.sdpa_kernel_used(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.sdpa_kernel_used", "causal= (SDPA's keyword is is_causal)", lambda: attention.sdpa_kernel_used(Q, K, V, causal=True), "causal"),
    Case("attention.sdpa_kernel_used", "is_causal as the string 'yes'", lambda: attention.sdpa_kernel_used(Q, K, V, is_causal="yes"), "is_causal"),
    Case("attention.forced_backend", "unknown backend 'fast'", lambda: _with_backend("fast"), "name"),
    Case("attention.forced_backend", "backend None", lambda: _with_backend(None), "name"),
    Case("attention.forced_backend", "backend 'FLASH' (upper case)", lambda: _with_backend("FLASH"), "name"),
    Case("attention.time_backends", "unknown backend in names", lambda: attention.time_backends(Q, K, V, names=("flash", "fast")), "names"),
    Case("attention.time_backends", "names one string, not a tuple", lambda: attention.time_backends(Q, K, V, names="flash"), "names"),
    Case("attention.time_backends", "empty names", lambda: attention.time_backends(Q, K, V, names=()), "names"),
    Case("attention.time_backends", "repeats = 0", lambda: attention.time_backends(Q, K, V, names=("flash", "math"), repeats=0), "repeats"),
    Case("attention.time_backends", "rounds = 0", lambda: attention.time_backends(Q, K, V, names=("flash", "math"), rounds=0), "rounds"),
    Case("attention.time_backends", "q is None", lambda: attention.time_backends(None, K, V), "q"),
    Case("attention.time_cuda_backends", "n = 0", lambda: attention.time_cuda_backends(n=0), "n"),
    Case("attention.time_cuda_backends", "absurd n", lambda: attention.time_cuda_backends(n=10**12), "n"),
    Case("attention.time_cuda_backends", "d = 0", lambda: attention.time_cuda_backends(d=0), "d"),
    Case("attention.time_cuda_backends", "heads = 0", lambda: attention.time_cuda_backends(heads=0), "heads"),
    Case("attention.time_cuda_backends", "negative batch", lambda: attention.time_cuda_backends(batch=-1), "batch"),
    Case("attention.time_cuda_backends", "causal as the string 'no'", lambda: attention.time_cuda_backends(causal="no"), "causal"),
    Case("attention.flash_attn_attention", "q is None", lambda: attention.flash_attn_attention(None, K, V), "q"),
    Case("attention.flash_attn_attention", "k's head dim differs from q's", lambda: attention.flash_attn_attention(Q, torch.randn(1, 8, 5), V), "k"),
    Case("attention.xformers_attention", "q is None", lambda: attention.xformers_attention(None, K, V), "q"),
    Case("attention.xformers_attention", "v's length differs from k's", lambda: attention.xformers_attention(Q, K, torch.randn(1, 7, 4)), "v"),
    Case("attention.optional_kernel_notice", "unknown kernel 'triton'", lambda: attention.optional_kernel_notice("triton"), "name"),
    Case("attention.optional_kernel_notice", "name None", lambda: attention.optional_kernel_notice(None), "name"),
    Case("attention.optional_kernel_notice", "pip name 'flash-attn'", lambda: attention.optional_kernel_notice("flash-attn"), "name"),
    # ------------------------------------------------------------ fusion
    Case("fusion.chain_traffic", "numel = 0", lambda: fusion.chain_traffic(0, 8), "numel"),
    Case("fusion.chain_traffic", "negative numel", lambda: fusion.chain_traffic(-1, 8), "numel"),
    Case("fusion.chain_traffic", "float numel 1.5e6", lambda: fusion.chain_traffic(1.5e6, 8), "numel"),
    Case("fusion.chain_traffic", "length = 0", lambda: fusion.chain_traffic(1 << 20, 0), "length"),
    Case("fusion.chain_traffic", "bool length", lambda: fusion.chain_traffic(1 << 20, True), "length"),
    Case("fusion.chain_traffic", "itemsize = 0", lambda: fusion.chain_traffic(1 << 20, 8, itemsize=0), "itemsize"),
    Case("fusion.chain_traffic", "itemsize 3 (no such dtype)", lambda: fusion.chain_traffic(1 << 20, 8, itemsize=3), "itemsize"),
    Case("fusion.matmul_traffic", "n = 0", lambda: fusion.matmul_traffic(0), "n"),
    Case("fusion.matmul_traffic", "negative n", lambda: fusion.matmul_traffic(-512), "n"),
    Case("fusion.matmul_traffic", "float n", lambda: fusion.matmul_traffic(512.0), "n"),
    Case("fusion.matmul_traffic", "itemsize = 0", lambda: fusion.matmul_traffic(512, itemsize=0), "itemsize"),
    Case("fusion.matmul_traffic", "itemsize 3 (no such dtype)", lambda: fusion.matmul_traffic(512, itemsize=3), "itemsize"),
    Case("fusion.fold_conv_bn", "conv a Linear", lambda: fusion.fold_conv_bn(nn.Linear(4, 4), BN), "conv"),
    Case("fusion.fold_conv_bn", "conv a string", lambda: fusion.fold_conv_bn("conv", BN), "conv"),
    Case("fusion.fold_conv_bn", "bn a BatchNorm1d", lambda: fusion.fold_conv_bn(CONV, nn.BatchNorm1d(4)), "bn"),
    Case("fusion.fold_conv_bn", "bn of 3 channels, conv has 4", lambda: fusion.fold_conv_bn(CONV, nn.BatchNorm2d(3)), "bn"),
    Case("fusion.fold_conv_bn", "bn's running_var is NaN", lambda: fusion.fold_conv_bn(CONV, BN_NAN), "bn"),
    Case("fusion.fold_conv_bn", "bn without running statistics", lambda: fusion.fold_conv_bn(CONV, nn.BatchNorm2d(4, track_running_stats=False)), "bn"),
    Case("fusion.fold_model", "model a string", lambda: fusion.fold_model("cnn"), "model"),
    Case("fusion.fold_model", "model a state dict", lambda: fusion.fold_model(CNN.state_dict()), "model"),
    Case("fusion.fold_model", "model None", lambda: fusion.fold_model(None), "model"),
    Case("fusion.count_layers", "model a string", lambda: fusion.count_layers("cnn", nn.BatchNorm2d), "model"),
    Case("fusion.count_layers", "kind a string", lambda: fusion.count_layers(CNN, "BatchNorm2d"), "kind"),
    Case("fusion.count_layers", "kind an instance, not a class", lambda: fusion.count_layers(CNN, nn.BatchNorm2d(4)), "kind"),
    Case("fusion.elementwise_chain", "x is None", lambda: fusion.elementwise_chain(None), "x"),
    Case("fusion.elementwise_chain", "x a list", lambda: fusion.elementwise_chain([1.0, 2.0]), "x"),
    Case("fusion.elementwise_chain", "empty x", lambda: fusion.elementwise_chain(torch.empty(0)), "x"),
    Case("fusion.elementwise_chain", "length = 0", lambda: fusion.elementwise_chain(Y, 0), "length"),
    Case("fusion.elementwise_chain", "absurd length", lambda: fusion.elementwise_chain(Y, 10**12), "length"),
    Case("fusion.elementwise_chain", "fractional length", lambda: fusion.elementwise_chain(Y, 2.5), "length"),
    Case("fusion.elementwise_chain", "unknown ops 'relu'", lambda: fusion.elementwise_chain(Y, 8, ops="relu"), "ops"),
    Case("fusion.elementwise_chain", "ops None", lambda: fusion.elementwise_chain(Y, 8, ops=None), "ops"),
    Case("fusion.compile_timed", "fn is None", lambda: fusion.compile_timed(None, Y), "fn"),
    Case("fusion.compile_timed", "fn a function's name", lambda: fusion.compile_timed("gelu", Y), "fn"),
    Case("fusion.compile_timed", "fn a state dict", lambda: fusion.compile_timed(CNN.state_dict(), Y), "fn"),
    Case("fusion.cuda_chain_speedup", "numel = 0", lambda: fusion.cuda_chain_speedup(numel=0), "numel"),
    Case("fusion.cuda_chain_speedup", "absurd numel", lambda: fusion.cuda_chain_speedup(numel=10**12), "numel"),
    Case("fusion.cuda_chain_speedup", "length = 0", lambda: fusion.cuda_chain_speedup(length=0), "length"),
    Case("fusion.cuda_chain_speedup", "absurd length", lambda: fusion.cuda_chain_speedup(length=10**12), "length"),
    Case("fusion.cuda_chain_speedup", "repeats = 0", lambda: fusion.cuda_chain_speedup(repeats=0), "repeats"),
    Case("fusion.fuse_qkv", "q a Conv2d", lambda: fusion.fuse_qkv(CONV, LK, LV), "q"),
    Case("fusion.fuse_qkv", "q is None", lambda: fusion.fuse_qkv(None, LK, LV), "q"),
    Case("fusion.fuse_qkv", "v a string", lambda: fusion.fuse_qkv(LQ, LK, "linear"), "v"),
    Case("fusion.fuse_qkv", "k reads 6 features, q and v 8", lambda: fusion.fuse_qkv(LQ, nn.Linear(6, 8), LV), "k"),
    Case("fusion.fuse_qkv", "v in float64, q and k float32", lambda: fusion.fuse_qkv(LQ, LK, nn.Linear(8, 8).double()), "v"),
    Case("fusion.split_qkv", "y is None", lambda: fusion.split_qkv(None, (4, 4, 4)), "y"),
    Case("fusion.split_qkv", "empty y", lambda: fusion.split_qkv(torch.empty(0, 12), (4, 4, 4)), "y"),
    Case("fusion.split_qkv", "0-d y", lambda: fusion.split_qkv(torch.tensor(1.0), (4, 4, 4)), "y"),
    Case("fusion.split_qkv", "two sizes", lambda: fusion.split_qkv(Y, (6, 6)), "sizes"),
    Case("fusion.split_qkv", "sizes summing to 9, y has 12", lambda: fusion.split_qkv(Y, (3, 3, 3)), "sizes"),
    Case("fusion.split_qkv", "float sizes", lambda: fusion.split_qkv(Y, (4.0, 4.0, 4.0)), "sizes"),
    Case("fusion.split_qkv", "a negative size", lambda: fusion.split_qkv(Y, (8, 8, -4)), "sizes"),
    Case("fusion.op_counts", "missing file", lambda: fusion.op_counts(MISSING), "path"),
    Case("fusion.op_counts", "path None", lambda: fusion.op_counts(None), "path"),
    Case("fusion.op_counts", "a text file", lambda: fusion.op_counts(TEXT), "path"),
    Case("fusion.ort_levels", "missing file", lambda: fusion.ort_levels(MISSING, X4), "path"),
    Case("fusion.ort_levels", "example None", lambda: fusion.ort_levels(ONNX, None), "example"),
    Case("fusion.ort_levels", "empty example", lambda: fusion.ort_levels(ONNX, torch.empty(0, 4)), "example"),
    Case("fusion.ort_levels", "example (6, 3), the graph wants (batch, 4)", lambda: fusion.ort_levels(ONNX, torch.randn(6, 3)), "example"),
    Case("fusion.ort_levels", "float64 example, the graph wants float32", lambda: fusion.ort_levels(ONNX, X4.double()), "example"),
    Case("fusion.ort_levels", "threads = 0", lambda: fusion.ort_levels(ONNX, X4, threads=0), "threads"),
    Case("fusion.ort_levels", "rounds = 0", lambda: fusion.ort_levels(ONNX, X4, rounds=0), "rounds"),
    Case("fusion.ort_levels", "repeats = 0", lambda: fusion.ort_levels(ONNX, X4, repeats=0), "repeats"),
    # ------------------------------------------------------------ deploy: runtime.py
    Case("deploy.describe_onnx", "missing file", lambda: deploy.describe_onnx(MISSING), "path"),
    Case("deploy.describe_onnx", "path None", lambda: deploy.describe_onnx(None), "path"),
    Case("deploy.describe_onnx", "a text file", lambda: deploy.describe_onnx(TEXT), "path"),
    Case("deploy.describe_onnx", "a folder", lambda: deploy.describe_onnx(_TMP), "path"),
    Case("deploy.gpu_providers", "negative device_id", lambda: deploy.gpu_providers(device_id=-1), "device_id"),
    Case("deploy.gpu_providers", "device_id the string '0'", lambda: deploy.gpu_providers(device_id="0"), "device_id"),
    Case("deploy.gpu_providers", "bool device_id", lambda: deploy.gpu_providers(device_id=True), "device_id"),
    Case("deploy.gpu_providers", "cache_dir None", lambda: deploy.gpu_providers(None), "cache_dir"),
    Case("deploy.gpu_providers", "cache_dir an int", lambda: deploy.gpu_providers(5), "cache_dir"),
    Case("deploy.parity", "got of another shape", lambda: deploy.parity(torch.ones(3), torch.ones(1, 3)), "got"),
    Case("deploy.parity", "empty expected", lambda: deploy.parity(torch.empty(0), torch.empty(0)), "expected"),
    Case("deploy.parity", "got None", lambda: deploy.parity(torch.ones(3), None), "got"),
    Case("deploy.parity", "got a string", lambda: deploy.parity(torch.ones(3), "abc"), "got"),
    Case("deploy.parity", "expected a dict of outputs", lambda: deploy.parity({"logits": torch.ones(3)}, torch.ones(3)), "expected"),
    Case("deploy.parity", "negative atol", lambda: deploy.parity(torch.ones(3), torch.ones(3), atol=-1e-4), "atol"),
    Case("deploy.parity", "bool atol", lambda: deploy.parity(torch.ones(3), torch.ones(3), atol=True), "atol"),
    Case("deploy.parity", "NaN rtol", lambda: deploy.parity(torch.ones(3), torch.ones(3), rtol=float("nan")), "rtol"),
    Case("deploy.speedup_trend", "runs a list", lambda: deploy.speedup_trend(list(RUNS.values()), "ORT"), "runs"),
    Case("deploy.speedup_trend", "one run only", lambda: deploy.speedup_trend({"batch 1": RUNS["batch 1"]}, "ORT"), "runs"),
    Case("deploy.speedup_trend", "runs of strings", lambda: deploy.speedup_trend({"a": "cmp_1", "b": "cmp_32"}, "ORT"), "runs"),
    Case("deploy.speedup_trend", "name not timed", lambda: deploy.speedup_trend(RUNS, "INT8"), "name"),
    Case("deploy.speedup_trend", "name the baseline", lambda: deploy.speedup_trend(RUNS, "eager"), "name"),
    Case("deploy.speedup_trend", "name None", lambda: deploy.speedup_trend(RUNS, None), "name"),
    # ------------------------------------------------------------ deploy: transformer.py
    Case("deploy.DigitTransformer", "d_model = 0", lambda: deploy.DigitTransformer(d_model=0), "d_model"),
    Case("deploy.DigitTransformer", "fractional d_model", lambda: deploy.DigitTransformer(d_model=64.5), "d_model"),
    Case("deploy.DigitTransformer", "heads 3 does not divide 64", lambda: deploy.DigitTransformer(heads=3), "heads"),
    Case("deploy.DigitTransformer", "depth = 0", lambda: deploy.DigitTransformer(depth=0), "depth"),
    Case("deploy.digit_transformer", "d_model = 0", lambda: deploy.digit_transformer(d_model=0), "d_model"),
    Case("deploy.digit_transformer", "d_model the string '64'", lambda: deploy.digit_transformer(d_model="64"), "d_model"),
    Case("deploy.digit_transformer", "heads = 0", lambda: deploy.digit_transformer(heads=0), "heads"),
    Case("deploy.digit_transformer", "negative depth", lambda: deploy.digit_transformer(depth=-1), "depth"),
    Case("deploy.train_transformer", "epochs = 0", lambda: deploy.train_transformer(epochs=0), "epochs"),
    Case("deploy.train_transformer", "negative epochs", lambda: deploy.train_transformer(epochs=-1), "epochs"),
    Case("deploy.train_transformer", "fractional epochs", lambda: deploy.train_transformer(epochs=2.5), "epochs"),
    Case("deploy.train_transformer", "absurd epochs", lambda: deploy.train_transformer(epochs=10**12), "epochs"),
    Case("deploy.load_transformer", "retrain the string 'no'", lambda: deploy.load_transformer(retrain="no"), "retrain"),
    Case("deploy.load_transformer", "retrain the string 'False'", lambda: deploy.load_transformer(retrain="False"), "retrain"),
    # ------------------------------------------------------------ deploy: trt.py (fails before the GPU)
    Case("deploy.export_fp16_onnx", "model a string", lambda: deploy.export_fp16_onnx("cnn", X4, _TMP / "a.onnx"), "model"),
    Case("deploy.export_fp16_onnx", "example None", lambda: deploy.export_fp16_onnx(LINEAR, None, _TMP / "a.onnx"), "example"),
    Case("deploy.export_fp16_onnx", "empty example", lambda: deploy.export_fp16_onnx(LINEAR, torch.empty(0, 4), _TMP / "a.onnx"), "example"),
    Case("deploy.export_fp16_onnx", "example (6, 3), the model reads 4 features", lambda: deploy.export_fp16_onnx(LINEAR, torch.randn(6, 3), _TMP / "a.onnx"), "example"),
    Case("deploy.export_fp16_onnx", "path None", lambda: deploy.export_fp16_onnx(LINEAR, X4, None), "path"),
    Case("deploy.export_int8_qdq_onnx", "missing fp32_path", lambda: deploy.export_int8_qdq_onnx(MISSING, _TMP / "q.onnx", X4), "fp32_path"),
    Case("deploy.export_int8_qdq_onnx", "fp32_path a text file", lambda: deploy.export_int8_qdq_onnx(TEXT, _TMP / "q.onnx", X4), "fp32_path"),
    Case("deploy.export_int8_qdq_onnx", "out_path None", lambda: deploy.export_int8_qdq_onnx(ONNX, None, X4), "out_path"),
    Case("deploy.export_int8_qdq_onnx", "calib_x None", lambda: deploy.export_int8_qdq_onnx(ONNX, _TMP / "q.onnx", None), "calib_x"),
    Case("deploy.export_int8_qdq_onnx", "empty calib_x", lambda: deploy.export_int8_qdq_onnx(ONNX, _TMP / "q.onnx", torch.empty(0, 4)), "calib_x"),
    Case("deploy.export_int8_qdq_onnx", "calib_x (6, 3), the graph wants (batch, 4)", lambda: deploy.export_int8_qdq_onnx(ONNX, _TMP / "q.onnx", torch.randn(6, 3)), "calib_x"),
    Case("deploy.export_int8_qdq_onnx", "unknown method 'kl'", lambda: deploy.export_int8_qdq_onnx(ONNX, _TMP / "q.onnx", X4, method="kl"), "method"),
    Case("deploy.build_engine", "missing onnx_path", lambda: deploy.build_engine(MISSING), "onnx_path"),
    Case("deploy.build_engine", "min_batch = 0", lambda: deploy.build_engine(ONNX, min_batch=0), "min_batch"),
    Case("deploy.build_engine", "fractional min_batch", lambda: deploy.build_engine(ONNX, min_batch=1.5), "min_batch"),
    Case("deploy.build_engine", "opt_batch above max_batch", lambda: deploy.build_engine(ONNX, opt_batch=512, max_batch=256), "opt_batch"),
    Case("deploy.build_engine", "absurd max_batch", lambda: deploy.build_engine(ONNX, max_batch=10**12), "max_batch"),
    Case("deploy.build_engine", "workspace_bytes = 0", lambda: deploy.build_engine(ONNX, workspace_bytes=0), "workspace_bytes"),
    Case("deploy.build_engine", "absurd workspace_bytes", lambda: deploy.build_engine(ONNX, workspace_bytes=10**15), "workspace_bytes"),
    Case("deploy.build_engine", "cache_dir None", lambda: deploy.build_engine(ONNX, cache_dir=None), "cache_dir"),
    Case("deploy.runner", "an .onnx path, not engine bytes", lambda: deploy.runner(str(ONNX)), "engine_bytes"),
    Case("deploy.runner", "engine_bytes None", lambda: deploy.runner(None), "engine_bytes"),
    Case("deploy.runner", "empty engine_bytes", lambda: deploy.runner(b""), "engine_bytes"),
    Case("deploy.run_batched", "run the engine bytes, not a runner", lambda: deploy.run_batched(b"engine", X4, 4), "run"),
    Case("deploy.run_batched", "run None", lambda: deploy.run_batched(None, X4, 4), "run"),
    Case("deploy.run_batched", "max_batch = 0", lambda: deploy.run_batched(_echo, X4, 0), "max_batch"),
    Case("deploy.run_batched", "fractional max_batch", lambda: deploy.run_batched(_echo, X4, 2.5), "max_batch"),
    Case("deploy.run_batched", "x is None", lambda: deploy.run_batched(_echo, None, 4), "x"),
    Case("deploy.run_batched", "empty x", lambda: deploy.run_batched(_echo, torch.empty(0, 4), 4), "x"),
    # ------------------------------------------------------------ interview
    Case("interview.course_notebooks", "missing folder", lambda: interview.course_notebooks(NO_FOLDER), "folder"),
    Case("interview.course_notebooks", "folder None", lambda: interview.course_notebooks(None), "folder"),
    Case("interview.course_notebooks", "folder a file", lambda: interview.course_notebooks(A_FILE), "folder"),
    Case("interview.glossary", "missing folder", lambda: interview.glossary(NO_FOLDER), "folder"),
    Case("interview.glossary", "folder an int", lambda: interview.glossary(123), "folder"),
    Case("interview.questions", "missing folder", lambda: interview.questions(NO_FOLDER), "folder"),
    Case("interview.questions", "folder None", lambda: interview.questions(None), "folder"),
    Case("interview.notebook_titles", "missing folder", lambda: interview.notebook_titles(NO_FOLDER), "folder"),
    Case("interview.notebook_titles", "folder a file", lambda: interview.notebook_titles(A_FILE), "folder"),
    Case("interview.notebook_headings", "stem None", lambda: interview.notebook_headings(None), "stem"),
    Case("interview.notebook_headings", "empty stem", lambda: interview.notebook_headings(""), "stem"),
    Case("interview.notebook_headings", "a file name, not a stem", lambda: interview.notebook_headings("08_flash_attention.ipynb"), "stem"),
    Case("interview.notebook_headings", "missing folder", lambda: interview.notebook_headings("08_flash_attention", NO_FOLDER), "folder"),
    Case("interview.notebook_text", "stem an int", lambda: interview.notebook_text(8), "stem"),
    Case("interview.notebook_text", "a file name, not a stem", lambda: interview.notebook_text("08_flash_attention.ipynb"), "stem"),
    Case("interview.notebook_text", "folder None", lambda: interview.notebook_text("08_flash_attention", None), "folder"),
    Case("interview.parse_key_terms", "section None", lambda: interview.parse_key_terms(None), "section"),
    Case("interview.parse_key_terms", "section a list of lines", lambda: interview.parse_key_terms(["| English | 中文 | meaning |"]), "section"),
    Case("interview.section_link", "stem None", lambda: interview.section_link(None, "1. Naive attention"), "stem"),
    Case("interview.section_link", "empty stem", lambda: interview.section_link("", "1. Naive attention"), "stem"),
    Case("interview.section_link", "empty heading", lambda: interview.section_link("08_flash_attention", ""), "heading"),
    Case("interview.section_link", "heading None", lambda: interview.section_link("08_flash_attention", None), "heading"),
    Case("interview.split_row", "row None", lambda: interview.split_row(None), "row"),
    Case("interview.split_row", "row a list of cells", lambda: interview.split_row(["a", "b"]), "row"),
    Case("interview.split_row", "a line with no pipe", lambda: interview.split_row("no table here"), "row"),
    Case("interview.Question", "notebook None", lambda: interview.Question(None, "Q1. Why?", "Because."), "notebook"),
    Case("interview.Question", "empty question", lambda: interview.Question("01_x", "", "Because."), "question"),
    Case("interview.Question", "answer None", lambda: interview.Question("01_x", "Q1. Why?", None), "answer"),
    Case("interview.Classic", "empty evidence (found in any text)", lambda: interview.Classic("Why?", "Because.", "08_flash_attention", ""), "evidence"),
    Case("interview.Classic", "notebook an int", lambda: interview.Classic("Why?", "Because.", 8, "tiled_attention"), "notebook"),
    Case("interview.Classic", "empty question", lambda: interview.Classic("", "Because.", "08_flash_attention", "tiled_attention"), "question"),
    Case("interview.SourceClassic", "sections one flat pair", lambda: interview.SourceClassic("Why?", "为什么？", "為什麼？", "Because.", ("08_flash_attention", "1. Naive attention stores an N x N matrix")), "sections"),
    Case("interview.SourceClassic", "no sections", lambda: interview.SourceClassic("Why?", "为什么？", "為什麼？", "Because.", ()), "sections"),
    Case("interview.SourceClassic", "en None", lambda: interview.SourceClassic(None, "为什么？", "為什麼？", "Because.", (("08_flash_attention", "x"),)), "en"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    assert outcome(case) == "clear"
