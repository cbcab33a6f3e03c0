"""Notebook 11, streaming generation: sampling, the KV cache, streaming, serving, INT8 weights.

- ``gpt.py``: the tiny character-level GPT, its vocabulary, loss and checkpoint.
- ``sampling.py``: temperature and top-k sampling; ``generate``, the streamed decode loop.
- ``kv_cache.py``: one decode step of attention against the cache, and the cache's bytes.
- ``serving.py``: TTFT and inter-token latency; static vs continuous batching (simulated).
- ``int8.py``: dynamic INT8 linear layers and how closely the INT8 model agrees.
- ``exercises.py``: the notebook's exercises (top-k probabilities, a KV-cache step).
"""

from labkit.generate.gpt import load_char_gpt, val_loss, vocab  # noqa: I001 (names grouped by line)
from labkit.generate.sampling import generate, generate_text, greedy_agreement
from labkit.generate.sampling import next_token_probs, sample_next, top_k_logits
from labkit.generate.kv_cache import cache_tensor_bytes, kv_attention_step, kv_cache_bytes
from labkit.generate.kv_cache import prefill_cache
from labkit.generate.serving import latency_summary, stream_latency, stream_timings, timed
from labkit.generate.serving import tokens_per_second, decode_step_seconds, Request
from labkit.generate.serving import linear_step_time, poisson_requests, simulate_batching
from labkit.generate.int8 import Int8Linear, int8_matmul, int_mm_is_exact
from labkit.generate.int8 import agreement_on_val, quantize_linear_int8

__all__ = ["load_char_gpt", "val_loss", "vocab"]
__all__ += ["generate", "generate_text", "greedy_agreement"]
__all__ += ["next_token_probs", "sample_next", "top_k_logits"]
__all__ += ["cache_tensor_bytes", "kv_attention_step", "kv_cache_bytes", "prefill_cache"]
__all__ += ["latency_summary", "stream_latency", "stream_timings", "timed"]
__all__ += ["tokens_per_second", "decode_step_seconds", "Request"]
__all__ += ["linear_step_time", "poisson_requests", "simulate_batching"]
__all__ += ["Int8Linear", "int8_matmul", "int_mm_is_exact"]
__all__ += ["agreement_on_val", "quantize_linear_int8"]
