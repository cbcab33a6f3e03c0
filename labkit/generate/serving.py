"""Notebook 11, parts 4-5: streaming latency (TTFT, inter-token) and batching for serving.

A stream's first token waits for the prefill (time to first token, TTFT); the gaps after it
are the per-token (inter-token) latencies. Serving: static batching takes the requests waiting
when the server is idle (up to the batch size) and runs them until the longest one ends;
continuous (dynamic) batching refills a free slot at every decode step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import torch

from labkit.core import bench
from labkit.core.errors import check_choice, check_int, check_nonempty, check_positive
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
    check_nonempty(arrivals, "arrivals")
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


class Request(NamedTuple):
    """A generation request: arrival time (s) and how many tokens it will generate.

    Used by poisson_requests and simulate_batching (labkit/generate/serving.py).
    """

    arrival: float
    new_tokens: int


def poisson_requests(
    n: int, rate: float, min_tokens: int = 8, max_tokens: int = 128, seed: int = 0
) -> list[Request]:
    """n requests with exponential inter-arrival times (mean 1/rate s), lengths uniform.

    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    _check_requests(n, rate, min_tokens, max_tokens)
    gen = torch.Generator().manual_seed(seed)
    gaps = torch.empty(n, dtype=torch.float64).exponential_(rate, generator=gen)
    arrivals = gaps.cumsum(0).tolist()
    lengths = torch.randint(min_tokens, max_tokens + 1, (n,), generator=gen).tolist()
    return [Request(round(a, 6), int(k)) for a, k in zip(arrivals, lengths, strict=True)]


def linear_step_time(base_s: float = 0.010, per_seq_s: float = 0.0005) -> Callable[[int], float]:
    """A decode-step cost model: seconds for one step of a batch of b sequences = base + b * per_seq.

    Used by simulate_batching (labkit/generate/serving.py).
    """

    def step(b: int) -> float:
        return base_s + b * per_seq_s

    return step


def simulate_batching(
    requests: Sequence[Request],
    policy: str,
    max_batch: int,
    step_time: Callable[[int], float] | None = None,
) -> dict[str, float]:
    """Deterministic discrete-event simulation of a decode server.

    One decode step advances every running request by one token and takes step_time(b)
    seconds for a batch of b. 'static': when idle, take up to max_batch waiting requests and
    run them until the LONGEST finishes (finished ones keep their slot idle). 'continuous':
    before every step, fill free slots with waiting requests; a finished request leaves at
    once. Latency = finish - arrival. Returns throughput (tokens/s), latency p50/p90/p99 (s),
    mean batch occupancy and the makespan (s).
    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    _check_simulation(requests, policy, max_batch)
    step_time = step_time or linear_step_time()
    pending = sorted(requests, key=lambda r: r.arrival)  # stable: ties keep their order
    waiting: list[int] = []  # indices into pending, in arrival order
    running: dict[int, int] = {}  # index -> tokens left
    finish: dict[int, float] = {}
    now, nxt, busy_slots, steps = 0.0, 0, 0, 0
    while len(finish) < len(pending):
        while nxt < len(pending) and pending[nxt].arrival <= now:
            waiting.append(nxt)
            nxt += 1
        admit = policy == "continuous" or not running
        if admit:
            while waiting and len(running) < max_batch:
                i = waiting.pop(0)
                running[i] = pending[i].new_tokens
        if not running:  # idle: jump to the next arrival
            now = pending[nxt].arrival
            continue
        active = [i for i, left in running.items() if left > 0]
        now += step_time(len(active) if policy == "continuous" else len(running))
        steps += 1
        busy_slots += len(active)
        for i in active:
            running[i] -= 1
            if running[i] == 0:
                finish[i] = now
        if policy == "continuous" or all(v == 0 for v in running.values()):
            running = {i: v for i, v in running.items() if v > 0}
    lat = [finish[i] - r.arrival for i, r in enumerate(pending)]
    tokens = sum(r.new_tokens for r in pending)
    return {
        "throughput_tok_s": tokens / now,
        "p50_s": bench.percentile(lat, 50),
        "p90_s": bench.percentile(lat, 90),
        "p99_s": bench.percentile(lat, 99),
        "occupancy": busy_slots / (steps * max_batch),
        "makespan_s": now,
    }


# ---- checks: bad input gets one clear error naming the parameter and the fix


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


def _check_requests(n: Any, rate: Any, min_tokens: Any, max_tokens: Any) -> None:
    check_int(n, "n", low=1, high=10**6)
    check_positive(rate, "rate")
    check_int(max_tokens, "max_tokens", low=1, high=10**6)
    check_int(min_tokens, "min_tokens", low=1, high=max_tokens)


def _check_simulation(requests: Any, policy: Any, max_batch: Any) -> None:
    check_nonempty(requests, "requests")
    if not all(isinstance(r, Request) and r.new_tokens >= 1 and r.arrival >= 0 for r in requests):
        raise ValueError(
            "requests must be Request(arrival >= 0, new_tokens >= 1) items, e.g. from "
            "generate.poisson_requests(...)."
        )
    check_choice(policy, "policy", ("static", "continuous"))
    check_int(max_batch, "max_batch", low=1)
