"""Notebook 11, parts 5 and 9: a serving simulator, static vs continuous vs paged batching.

One server step runs one forward pass over the batch: every running request that has finished
its prefill decodes one token, and requests still in prefill process (part of) their prompt.

    step seconds = step_time(b) + prefill_token_s * prompt tokens in this step,

b = the sequences that emit a token in this step (static: every slot of the batch, finished
ones idle). A request's first token comes out of the step that finishes its prefill (TTFT);
chunked prefill caps the prompt tokens per step so one long prompt does not stall every
running stream. Policies:

- 'static': when idle, take up to max_batch waiting requests; run them until the longest ends.
- 'continuous': before every step, finished requests leave and waiting ones take free slots.
- 'paged': continuous, with the KV cache in blocks (labkit/generate/paged.py).

KV memory (kv_tokens slots, optional): 'static' and 'continuous' reserve max_len slots per
request when it joins (its final length is unknown); 'paged' holds ceil(tokens / block_size)
blocks and takes one more when a sequence fills its last block. When the pool is empty the
newest request is preempted: its blocks are freed and it is prefilled again later (vLLM's
recompute preemption); the tokens it already streamed stay streamed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from labkit.core import bench
from labkit.core.errors import check_choice, check_int, check_nonempty, check_number, check_positive
from labkit.generate.paged import request_mix

POLICIES = ("static", "continuous", "paged")


class _RequestFields(NamedTuple):
    arrival: float
    new_tokens: int
    prompt_tokens: int = 0


class Request(_RequestFields):
    """A generation request: arrival time (s), tokens it will generate, its prompt's tokens.

    A named tuple (arrival >= 0, new_tokens >= 1, prompt_tokens >= 0), checked when made.
    Used by poisson_requests and simulate_batching (labkit/generate/simulator.py).
    """

    __slots__ = ()

    def __new__(cls, arrival: float, new_tokens: int, prompt_tokens: int = 0) -> Request:
        _check_request(arrival, new_tokens, prompt_tokens)
        return super().__new__(cls, arrival, new_tokens, prompt_tokens)


def poisson_requests(
    n: int, rate: float, min_tokens: int = 8, max_tokens: int = 128, seed: int = 0
) -> list[Request]:
    """n requests with exponential inter-arrival times (mean 1/rate s), lengths uniform.

    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    _check_requests(n, rate, min_tokens, max_tokens, seed)
    gen = torch.Generator().manual_seed(seed)
    gaps = torch.empty(n, dtype=torch.float64).exponential_(rate, generator=gen)
    arrivals = gaps.cumsum(0).tolist()
    lengths = torch.randint(min_tokens, max_tokens + 1, (n,), generator=gen).tolist()
    return [Request(round(a, 6), int(k)) for a, k in zip(arrivals, lengths, strict=True)]


def chat_requests(n: int, rate: float, seed: int = 0, max_len: int = 2048) -> list[Request]:
    """n requests arriving as a Poisson process (rate per s) with chat-like prompt and output
    lengths (``request_mix``: log-normal, most short, a few long, at most max_len in total).

    Taught in notebooks/11_streaming_generation.ipynb, "9. Serving with prefill and a KV-memory cap".
    """
    gaps = poisson_requests(n, rate, seed=seed)  # it checks n and rate; its lengths unused
    mix = request_mix(n, seed=seed + 1, max_len=max_len)
    return [Request(r.arrival, out, p) for r, (p, out) in zip(gaps, mix, strict=True)]


def linear_step_time(base_s: float = 0.010, per_seq_s: float = 0.0005) -> Callable[[int], float]:
    """A decode-step cost model: seconds for one step of a batch of b sequences = base + b * per_seq.

    Used by simulate_batching (labkit/generate/simulator.py).
    """
    _check_step_time(base_s, per_seq_s)

    def step(b: int) -> float:
        return base_s + b * per_seq_s

    return step


def simulate_batching(
    requests: Sequence[Request],
    policy: str,
    max_batch: int,
    step_time: Callable[[int], float] | None = None,
    prefill_token_s: float = 0.0,
    chunk: int | None = None,
    kv_tokens: int | None = None,
    block_size: int = 16,
    max_len: int | None = None,
) -> dict[str, float]:
    """Deterministic discrete-event simulation of a decode server (see the module docstring).

    Latency = finish - arrival, TTFT = first token - arrival (queueing included), ITL = the gap
    between two tokens of one stream. Returns throughput (tokens/s), latency p50/p90/p99 (s),
    TTFT p50/p90 (s), ITL p99 and max (s), mean batch occupancy
    (emitting sequences / max_batch), mean running requests, preemptions and the makespan (s).
    With no prompts, no prefill cost and no KV cap, 'continuous' and 'paged' are the same.
    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    _check_sim(requests, policy, max_batch, step_time, prefill_token_s, chunk, kv_tokens, block_size, max_len)  # fmt: skip
    max_len = max_len or max(r.prompt_tokens + r.new_tokens for r in requests)  # slots reserved
    step_time = step_time or linear_step_time()
    reqs = sorted(requests, key=lambda r: r.arrival)  # stable: ties keep their order
    prefill = [r.prompt_tokens for r in reqs]  # prompt tokens still to run, per request
    left = [r.new_tokens for r in reqs]  # tokens still to emit
    kv = [0] * len(reqs)  # KV slots written
    held = [0] * len(reqs)  # KV slots held: max_len (contiguous) or whole blocks (paged)
    pool = kv_tokens if kv_tokens is not None else float("inf")  # free KV slots
    waiting: deque[int] = deque()
    running: list[int] = []  # in the order they joined
    first: dict[int, float] = {}
    last: dict[int, float] = {}  # when each request last emitted a token
    gaps: list[float] = []  # inter-token latencies of every stream
    finish: dict[int, float] = {}
    now, nxt, steps, busy, batch_sum, preempted = 0.0, 0, 0, 0, 0, 0

    def need(i: int) -> int:  # slots a request must hold to join
        if policy != "paged":
            return max_len
        return (-(-(prefill[i] + 1) // block_size)) * block_size  # its prompt + one slot

    while len(finish) < len(reqs):
        while nxt < len(reqs) and reqs[nxt].arrival <= now:
            waiting.append(nxt)
            nxt += 1
        if policy != "static" or not running:  # admit while slots and memory allow
            while waiting and len(running) < max_batch and need(waiting[0]) <= pool:
                i = waiting.popleft()
                held[i], pool = need(i), pool - need(i)
                running.append(i)
        if not running:  # idle: jump to the next arrival
            now = reqs[nxt].arrival
            continue
        budget = chunk if chunk is not None else float("inf")  # prompt tokens in this step
        emit, prompt_run = [], 0
        for i in list(running):
            if i not in running:
                continue  # preempted in this step
            if prefill[i] > 0:  # (part of) the prompt runs in this step
                take = int(min(prefill[i], budget))
                prefill[i], kv[i], budget, prompt_run = (
                    prefill[i] - take,
                    kv[i] + take,
                    budget - take,
                    prompt_run + take,
                )
                if prefill[i] > 0:
                    continue  # chunked: more prompt next step
            if left[i] == 0:
                continue  # static: finished, its slot idles
            if policy == "paged" and kv[i] + 1 > held[i]:  # its last block is full
                while pool < block_size and running[-1] != i:  # preempt the newest
                    j = running.pop()
                    pool, held[j], preempted = pool + held[j], 0, preempted + 1
                    prefill[j], kv[j] = reqs[j].prompt_tokens + reqs[j].new_tokens - left[j], 0
                    waiting.appendleft(j)
                if pool < block_size:  # nobody left to preempt but itself
                    running.remove(i)
                    pool, held[i], preempted = pool + held[i], 0, preempted + 1
                    prefill[i], kv[i] = reqs[i].prompt_tokens + reqs[i].new_tokens - left[i], 0
                    waiting.appendleft(i)
                    continue
                held[i], pool = held[i] + block_size, pool - block_size
            emit.append(i)
        b = len(running) if policy == "static" else len(emit)
        now += step_time(b) + prefill_token_s * prompt_run
        steps, busy, batch_sum = steps + 1, busy + len(emit), batch_sum + len(running)
        for i in emit:
            left[i], kv[i] = left[i] - 1, kv[i] + 1
            first.setdefault(i, now)
            if i in last:
                gaps.append(now - last[i])
            last[i] = now
            if left[i] == 0:
                finish[i] = now
        done = [i for i in running if left[i] == 0]
        if policy != "static" or len(done) == len(running):  # static: the whole batch at once
            for i in done:
                running.remove(i)
                pool, held[i] = pool + held[i], 0
    lat = [finish[i] - r.arrival for i, r in enumerate(reqs)]
    ttft = [first[i] - r.arrival for i, r in enumerate(reqs)]
    return {
        "throughput_tok_s": sum(r.new_tokens for r in reqs) / now,
        "p50_s": bench.percentile(lat, 50),
        "p90_s": bench.percentile(lat, 90),
        "p99_s": bench.percentile(lat, 99),
        "ttft_p50_s": bench.percentile(ttft, 50),
        "ttft_p90_s": bench.percentile(ttft, 90),
        "itl_p99_s": bench.percentile(gaps, 99) if gaps else 0.0,
        "itl_max_s": max(gaps, default=0.0),
        "occupancy": busy / (steps * max_batch),
        "mean_running": batch_sum / steps,
        "preemptions": preempted,
        "makespan_s": now,
    }


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_request(arrival: Any, new_tokens: Any, prompt_tokens: Any) -> None:
    check_number(arrival, "arrival (seconds)", low=0)
    check_int(new_tokens, "new_tokens (tokens to generate)", low=1)
    check_int(prompt_tokens, "prompt_tokens", low=0)


def _check_step_time(base_s: Any, per_seq_s: Any) -> None:
    check_number(base_s, "base_s (seconds per step)", low=0)
    check_number(per_seq_s, "per_seq_s (seconds per sequence in the step)", low=0)


def _check_requests(n: Any, rate: Any, min_tokens: Any, max_tokens: Any, seed: Any = 0) -> None:
    check_int(n, "n", low=1, high=10**6)
    check_int(seed, "seed")
    check_positive(rate, "rate")
    check_int(max_tokens, "max_tokens", low=1, high=10**6)
    check_int(min_tokens, "min_tokens", low=1, high=max_tokens)


def _check_sim(
    requests: Any,
    policy: Any,
    max_batch: Any,
    step_time: Any,
    prefill_token_s: Any,
    chunk: Any,
    kv_tokens: Any,
    block_size: Any,
    max_len: Any,
) -> None:
    """Valid requests and settings; max_len (None: the longest prompt + output) fits them."""
    check_nonempty(requests, "requests")
    ok = all(isinstance(r, Request) for r in requests)
    if not ok or not all(
        r.new_tokens >= 1 and r.arrival >= 0 and r.prompt_tokens >= 0 for r in requests
    ):
        raise ValueError(
            "requests must be Request(arrival >= 0, new_tokens >= 1, prompt_tokens >= 0) items, "
            "e.g. from generate.poisson_requests(...) or generate.chat_requests(...)."
        )
    check_choice(policy, "policy", POLICIES)
    check_int(max_batch, "max_batch", low=1)
    if step_time is not None and not callable(step_time):
        raise ValueError(
            f"step_time must be a function of the batch size (seconds per step) or None, got "
            f"{step_time!r}; e.g. generate.linear_step_time(0.010, 0.0005)."
        )
    check_number(prefill_token_s, "prefill_token_s (seconds per prompt token)", low=0)
    if chunk is not None:
        check_int(chunk, "chunk (prompt tokens per step, or None)", low=1)
    check_int(block_size, "block_size", low=1)
    longest = max(r.prompt_tokens + r.new_tokens for r in requests)
    if max_len is not None:
        check_int(max_len, f"max_len (>= {longest}, the longest request)", low=longest)
    if kv_tokens is not None:
        low = (max_len or longest) + (block_size if policy == "paged" else 0)
        check_int(kv_tokens, f"kv_tokens (>= {low}: one request of max_len must fit)", low=low)
