"""Notebook 11, parts 4-5: streaming latency (TTFT, inter-token) and the cost of a batched step.

A stream's first token waits for the prefill (time to first token, TTFT); the gaps after it
are the per-token (inter-token) latencies. One decode step of a batch of b sequences costs much
less than b single steps: the step time that the serving simulator (simulator.py) shares out.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from labkit.core import bench
from labkit.core.errors import check_int, check_nonempty, check_number
from labkit.generate.gpt import CharGPT, _check_gpt
from labkit.generate.kv_cache import kv_cache_bytes, prefill_cache
from labkit.generate.sampling import generate

MAX_CACHE_BYTES = 4 * 2**30  # refuse KV caches (and demos) larger than this on a laptop

# ----------------------------------------------------------------------------- 4. streaming


def timed(stream: Iterable[int]) -> tuple[list[int], list[float]]:
    """Consume a token stream: (tokens, seconds from the start until each token arrived).

    The clock starts when ``timed`` starts pulling, so for a fresh ``generate(...)`` stream
    arrivals[0] is the time to first token (prefill + one step) and the gaps between
    arrivals are the per-token (inter-token) latencies.
    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """
    _check_timed(stream)
    tokens: list[int] = []
    arrivals: list[float] = []
    t0 = time.perf_counter()
    for token in stream:
        arrivals.append(time.perf_counter() - t0)
        tokens.append(token)
    return tokens, arrivals


def stream_timings(
    model: CharGPT,
    prompt: torch.Tensor | Sequence[int],
    max_new_tokens: int,
    use_cache: bool = True,
) -> list[float]:
    """Seconds from the call until each token was yielded (greedy). t[0] is the TTFT.

    Used by stream_latency (labkit/generate/serving.py).
    """
    return timed(generate(model, prompt, max_new_tokens, use_cache=use_cache))[1]


def latency_summary(arrivals: list[float]) -> dict[str, float]:
    """Time to first token, median inter-token latency (ms) and tokens/s after the first.

    Used by stream_latency (labkit/generate/serving.py).
    """
    _check_arrivals(arrivals)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    itl = sorted(gaps)[len(gaps) // 2] if gaps else float("nan")
    decode_s = arrivals[-1] - arrivals[0]
    return {
        "ttft_ms": arrivals[0] * 1e3,
        "inter_token_ms": itl * 1e3,
        "tokens_per_s": (len(arrivals) - 1) / decode_s if decode_s > 0 else float("nan"),
    }


def stream_latency(
    model: CharGPT,
    prompt: torch.Tensor | Sequence[int],
    max_new_tokens: int,
    use_cache: bool = True,
    repeats: int = 3,
) -> dict[str, float]:
    """``latency_summary`` of ``repeats`` greedy streams (after one short warm-up), each
    field the median over the runs: one TTFT sample per run is noisy on a busy machine.

    Taught in notebooks/11_streaming_generation.ipynb, "4. Streaming: tokens as they are produced".
    """
    _check_stream(max_new_tokens, repeats)  # generate checks the rest
    stream_timings(model, prompt, min(2, max_new_tokens), use_cache)  # warm-up
    runs = [
        latency_summary(stream_timings(model, prompt, max_new_tokens, use_cache))
        for _ in range(repeats)
    ]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def tokens_per_second(
    model: CharGPT,
    prompt: torch.Tensor | Sequence[int],
    max_new_tokens: int,
    use_cache: bool,
    repeats: int = 3,
    threads: int | None = None,
) -> float:
    """New tokens per second of greedy generation: max_new_tokens / median wall time.

    Used by benchmarks/bench_generate.py.
    """

    def run() -> None:
        for _ in generate(model, prompt, max_new_tokens, use_cache=use_cache):
            pass

    return max_new_tokens / bench.latency(run, warmup=1, repeats=repeats, threads=threads).median


# ----------------------------------------------------------------------------- 5. serving


@torch.no_grad()
def decode_step_seconds(
    model: CharGPT, batch: int, context: int, repeats: int = 20, threads: int | None = None
) -> float:
    """Median seconds of one cached decode step for ``batch`` sequences of ``context`` tokens.

    The cache is prefilled with random ids (B, context); the timed call feeds one new token
    per sequence, (B, 1), against it. This is the step_time(b) that serving batches share.
    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    _check_decode_step(model, batch, context)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(model.cfg.vocab_size, (batch, context + 1), generator=gen)  # (B, C + 1)
    cache = prefill_cache(model, ids[:, :context])
    step = ids[:, context:]  # (B, 1)
    timing = bench.latency(lambda: model(step, cache), warmup=2, repeats=repeats, threads=threads)
    return timing.median


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_timed(stream: Any) -> None:
    if not isinstance(stream, Iterable) or isinstance(stream, torch.nn.Module):
        raise ValueError(
            f"stream must be an iterable of tokens (a running generator), got "
            f"{type(stream).__name__}; e.g. generate.timed(generate.generate(model, prompt, n))."
        )


def _check_arrivals(arrivals: Any) -> None:
    """Seconds since the start, one per token: finite, >= 0, in arrival order."""
    if not isinstance(arrivals, list | tuple):
        raise ValueError(
            f"arrivals must be a list of seconds (generate.timed(...)[1]), got "
            f"{type(arrivals).__name__}."
        )
    check_nonempty(arrivals, "arrivals")
    for i, t in enumerate(arrivals):
        check_number(t, f"arrivals[{i}] (seconds since the start)", low=0)
    if any(b < a for a, b in zip(arrivals, arrivals[1:], strict=False)):
        raise ValueError(
            "arrivals must be in the order the tokens arrived (non-decreasing seconds), got "
            f"{list(arrivals)[:6]}...; pass generate.timed(stream)[1] as it is."
        )


def _check_stream(max_new_tokens: Any, repeats: Any) -> None:
    check_int(max_new_tokens, "max_new_tokens", low=1)
    check_int(repeats, "repeats", low=1)


def _check_decode_step(model: Any, batch: Any, context: Any) -> None:
    cfg = _check_gpt(model, batch=batch)
    check_int(context, f"context (< block_size={cfg.block_size})", low=1, high=cfg.block_size - 1)
    need = kv_cache_bytes(cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, context + 1, 4, batch)
    if need > MAX_CACHE_BYTES:
        raise ValueError(
            f"batch={batch} x context={context} needs a {need / 2**30:.1f} GiB KV cache, more than "
            f"{MAX_CACHE_BYTES / 2**30:.0f} GiB; use a smaller batch."
        )
