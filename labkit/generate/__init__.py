"""Notebook 11, streaming generation: sampling, the KV cache, streaming, serving, INT8, speed-ups.

- ``gpt.py``: the tiny character-level GPT, its vocabulary, loss and checkpoint.
- ``sampling.py``: temperature, top-k/p, min-p; ``generate``, the streamed decode loop; beams.
- ``kv_cache.py``: one decode step against the cache, the cache's bytes, attention sinks.
- ``serving.py``: TTFT, inter-token latency, one batched step; ``simulator.py``: batching policies.
- ``int8.py``: dynamic INT8 linear layers and how closely the INT8 model agrees.
- ``speculative.py``, ``ngram.py``: speculative decoding (acceptance rule; GPT and n-gram drafts).
- ``paged.py``: PagedAttention (block tables, a block allocator, KV waste); ``exercises.py``.
"""

from labkit.generate.gpt import load_char_gpt, val_loss, vocab  # noqa: I001 (names grouped by line)
from labkit.generate.sampling import generate, generate_text, greedy_agreement, beam_search
from labkit.generate.sampling import next_token_probs, sample_next, top_k_logits, sequence_logprob
from labkit.generate.sampling import top_p_logits, min_p_logits
from labkit.generate.kv_cache import cache_tensor_bytes, kv_attention_step, kv_cache_bytes
from labkit.generate.kv_cache import prefill_cache, sink_window_cache, streaming_nll
from labkit.generate.serving import latency_summary, stream_latency, stream_timings, timed
from labkit.generate.serving import tokens_per_second, decode_step_seconds
from labkit.generate.simulator import Request, linear_step_time, poisson_requests, chat_requests
from labkit.generate.simulator import simulate_batching
from labkit.generate.int8 import Int8Linear, int8_matmul, int_mm_is_exact, quantize_rows
from labkit.generate.int8 import agreement_on_val, quantize_linear_int8
from labkit.generate.speculative import accept_draft, speculative_step, speculative_generate
from labkit.generate.speculative import expected_tokens_per_call, load_draft_gpt
from labkit.generate.ngram import load_ngram_draft
from labkit.generate.paged import paged_attention, gather_paged, BlockAllocator, kv_waste
from labkit.generate.paged import request_mix

__all__ = ["load_char_gpt", "val_loss", "vocab", "generate", "generate_text", "greedy_agreement"]
__all__ += ["beam_search", "next_token_probs", "sample_next", "top_k_logits", "sequence_logprob"]
__all__ += ["top_p_logits", "min_p_logits", "cache_tensor_bytes", "kv_attention_step"]
__all__ += ["kv_cache_bytes", "prefill_cache", "sink_window_cache", "streaming_nll"]
__all__ += ["latency_summary", "stream_latency", "stream_timings", "timed", "tokens_per_second"]
__all__ += ["decode_step_seconds", "Request", "linear_step_time", "poisson_requests"]
__all__ += ["chat_requests", "simulate_batching", "Int8Linear", "int8_matmul", "int_mm_is_exact"]
__all__ += ["quantize_rows", "request_mix", "agreement_on_val", "quantize_linear_int8"]
__all__ += ["accept_draft", "speculative_step", "speculative_generate", "expected_tokens_per_call"]
__all__ += ["load_draft_gpt", "paged_attention", "gather_paged", "BlockAllocator", "kv_waste"]
__all__ += ["load_ngram_draft"]
