"""Text generation: sampling, the KV cache, streaming, batching for serving, INT8 weights.

Autoregressive decoding: ids_{t+1} ~ softmax(logits_t / T) restricted to the top-k logits.
Without a cache every new token re-runs the model on the whole sequence (cost ~ S per token,
S = tokens so far); with a KV cache the model sees only the new token and attends to the
cached keys/values of the earlier ones. KV-cache memory (bytes):

    layers x 2 (k and v) x heads x head_dim x tokens x bytes_per_element  (x batch)

Serving: static batching takes the requests waiting when the server is idle (up to the batch
size) and runs them until the longest one ends; continuous (dynamic) batching refills a free
slot at every decode step.
Dynamic INT8: weights int8 per output channel, activations quantised per row at run time,
int8 x int8 -> int32 matmul (torch._int_mm), rescaled to float.
"""

from __future__ import annotations

import copy
import functools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from labkit import bench, data, quant
from labkit.core.errors import check_positive, check_tensor
from labkit.generate import gpt
from labkit.generate.gpt import CharGPT, KVCache

MAX_CACHE_BYTES = 4 * 2**30  # refuse KV caches (and demos) larger than this on a laptop

# ----------------------------------------------------------------------------- sampling


def top_k_logits(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits of the last dim, set the rest to -inf (ties with the k-th kept).

    logits: (..., V). k=None or k >= V keeps everything.

    Taught in notebooks/11_streaming_generation.ipynb, "2. Sampling: temperature and top-k".
    """
    check_tensor(logits, "logits")
    if k is None:
        return logits
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {k!r}.")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None
) -> torch.Tensor:
    """p = softmax(top_k(logits) / T) over the last dim, shape (..., V). T must be > 0.

    Taught in notebooks/11_streaming_generation.ipynb, "2. Sampling: temperature and top-k".
    """
    check_positive(temperature, "temperature")
    return torch.softmax(top_k_logits(logits, top_k) / temperature, dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next ids (B,) from logits (B, V): argmax when temperature == 0, else a sample.

    Taught in notebooks/11_streaming_generation.ipynb, "2. Sampling: temperature and top-k".
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = next_token_probs(logits, temperature, top_k)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ----------------------------------------------------------------------------- generation


def _as_ids(prompt: torch.Tensor | Sequence[int], vocab_size: int | None = None) -> torch.Tensor:
    ids = torch.as_tensor(prompt, dtype=torch.long)
    if ids.ndim != 1 or ids.numel() == 0:
        raise ValueError(
            f"prompt must be a non-empty 1-D sequence of token ids, got shape {tuple(ids.shape)}."
        )
    if vocab_size is not None and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"prompt ids must be in 0..{vocab_size - 1} (the model's vocabulary), got "
            f"{int(ids.min())}..{int(ids.max())}; encode text with data.encode(text, stoi)."
        )
    return ids


@torch.no_grad()
def generate(
    model: CharGPT,
    prompt: torch.Tensor | Sequence[int],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield ``max_new_tokens`` token ids one at a time, as soon as each is produced.

    temperature=0 is greedy decoding. use_cache=False re-runs the model on the whole
    sequence for every token; use_cache=True runs the prompt once (prefill) and then one
    token per step against the cached keys/values. prompt + new tokens <= block_size.

    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """
    ids = _as_ids(prompt, model.cfg.vocab_size)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}.")
    limit = model.cfg.block_size
    if len(ids) + max_new_tokens > limit:
        raise ValueError(
            f"prompt ({len(ids)}) + max_new_tokens ({max_new_tokens}) exceeds the model's "
            f"block_size={limit}; shorten the prompt or generate fewer tokens."
        )
    model.eval()
    seq = ids.unsqueeze(0)  # (1, S)
    cache: KVCache | None = None
    step_input = seq
    for _ in range(max_new_tokens):
        if use_cache:
            logits, cache = model(step_input, cache)
        else:
            logits, _ = model(seq)
        nxt = sample_next(logits[:, -1], temperature, top_k, generator)
        seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
        step_input = nxt.view(1, 1)
        yield int(nxt)


def generate_text(
    model: CharGPT,
    prompt: str,
    max_new_tokens: int,
    stoi: dict[str, int],
    itos: list[str],
    **kwargs: object,
) -> Iterator[str]:
    """``generate`` on text: encode the prompt, yield each new character as it is produced.

    Taught in notebooks/11_streaming_generation.ipynb, "2. Sampling: temperature and top-k".
    """
    for t in generate(model, data.encode(prompt, stoi), max_new_tokens, **kwargs):  # type: ignore[arg-type]
        yield itos[t]


# ----------------------------------------------------------------------------- the KV cache


def kv_attention_step(
    q: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    cache_k: torch.Tensor | None,
    cache_v: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decode step of attention with a KV cache.

    q, k_new, v_new: (B, H, 1, hd) for the new token; cache_k, cache_v: (B, H, S, hd) or None.
    k = cat(cache_k, k_new), v = cat(cache_v, v_new) along the sequence axis (dim 2);
    out = softmax(q k^T / sqrt(hd)) v, shape (B, H, 1, hd) - no mask: the newest token may
    see every earlier one. Returns (out, k, v); k and v are the updated cache.

    Taught in notebooks/11_streaming_generation.ipynb, "Exercise 2: a KV-cache attention step".
    """
    k = k_new if cache_k is None else torch.cat([cache_k, k_new], dim=2)
    v = v_new if cache_v is None else torch.cat([cache_v, v_new], dim=2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v, k, v


def kv_cache_bytes(
    n_layer: int, n_head: int, head_dim: int, tokens: int, bytes_per_element: int, batch: int = 1
) -> int:
    """layers x 2 x heads x head_dim x tokens x bytes_per_element x batch.

    Taught in notebooks/11_streaming_generation.ipynb, "How much memory the cache takes".
    """
    sizes = {
        "n_layer": n_layer, "n_head": n_head, "head_dim": head_dim, "tokens": tokens,
        "bytes_per_element": bytes_per_element, "batch": batch,
    }  # fmt: skip
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}.")
    return n_layer * 2 * n_head * head_dim * tokens * bytes_per_element * batch


def cache_tensor_bytes(cache: KVCache) -> int:
    """Bytes held by the real cache tensors: sum of numel * element_size over every k and v.

    Taught in notebooks/11_streaming_generation.ipynb, "How much memory the cache takes".
    """
    return sum(t.numel() * t.element_size() for kv in cache for t in kv)


@torch.no_grad()
def prefill_cache(model: CharGPT, ids: torch.Tensor) -> KVCache:
    """The KV cache after running ``ids`` (B, T) through the model once.

    Taught in notebooks/11_streaming_generation.ipynb, "How much memory the cache takes".
    """
    return model(ids)[1]


# ----------------------------------------------------------------------------- streaming


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

    Taught in notebooks/11_streaming_generation.ipynb, "4. Streaming: tokens as they are produced".
    """
    return timed(generate(model, prompt, max_new_tokens, use_cache=use_cache))[1]


def latency_summary(arrivals: list[float]) -> dict[str, float]:
    """Time to first token, median inter-token latency (ms) and tokens/s after the first.

    Taught in notebooks/11_streaming_generation.ipynb, "4. Streaming: tokens as they are produced".
    """
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
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}.")
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

    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """

    def run() -> None:
        for _ in generate(model, prompt, max_new_tokens, use_cache=use_cache):
            pass

    return max_new_tokens / bench.latency(run, warmup=1, repeats=repeats, threads=threads).median


@torch.no_grad()
def decode_step_seconds(
    model: CharGPT, batch: int, context: int, repeats: int = 20, threads: int | None = None
) -> float:
    """Median seconds of one cached decode step for ``batch`` sequences of ``context`` tokens.

    The cache is prefilled with random ids (B, context); the timed call feeds one new token
    per sequence, (B, 1), against it. This is the step_time(b) that serving batches share.

    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    if batch < 1 or context < 1 or context >= model.cfg.block_size:
        raise ValueError(
            f"need batch >= 1 and 1 <= context < block_size={model.cfg.block_size}, "
            f"got {batch=}, {context=}."
        )
    cfg = model.cfg
    need = kv_cache_bytes(cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, context + 1, 4, batch)
    if need > MAX_CACHE_BYTES:
        raise ValueError(
            f"batch={batch} x context={context} needs a {need / 2**30:.1f} GiB KV cache, more than "
            f"{MAX_CACHE_BYTES / 2**30:.0f} GiB; use a smaller batch."
        )
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(model.cfg.vocab_size, (batch, context + 1), generator=gen)
    cache = prefill_cache(model, ids[:, :context])
    step = ids[:, context:]
    timing = bench.latency(lambda: model(step, cache), warmup=2, repeats=repeats, threads=threads)
    return timing.median


# ----------------------------------------------------------------------------- serving


class Request(NamedTuple):
    """A generation request: arrival time (s) and how many tokens it will generate.

    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """

    arrival: float
    new_tokens: int


def poisson_requests(
    n: int, rate: float, min_tokens: int = 8, max_tokens: int = 128, seed: int = 0
) -> list[Request]:
    """n requests with exponential inter-arrival times (mean 1/rate s), lengths uniform.

    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
    """
    check_positive(rate, "rate")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**6:
        raise ValueError(f"n must be an integer from 1 to 1,000,000 (requests), got {n!r}.")
    if not isinstance(min_tokens, int) or not 1 <= min_tokens <= max_tokens:
        raise ValueError(
            f"need 1 <= min_tokens <= max_tokens, got min_tokens={min_tokens!r}, "
            f"max_tokens={max_tokens!r}."
        )
    gen = torch.Generator().manual_seed(seed)
    gaps = torch.empty(n, dtype=torch.float64).exponential_(rate, generator=gen)
    arrivals = gaps.cumsum(0).tolist()
    lengths = torch.randint(min_tokens, max_tokens + 1, (n,), generator=gen).tolist()
    return [Request(round(a, 6), int(k)) for a, k in zip(arrivals, lengths, strict=True)]


def linear_step_time(base_s: float = 0.010, per_seq_s: float = 0.0005) -> Callable[[int], float]:
    """A decode-step cost model: seconds for one step of a batch of b sequences = base + b * per_seq.

    Taught in notebooks/11_streaming_generation.ipynb, "5. Serving many users: static vs continuous batching".
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
    if policy not in ("static", "continuous"):
        raise ValueError(f"policy must be 'static' or 'continuous', got {policy!r}.")
    if not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}.")
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


# ----------------------------------------------------------------------------- dynamic INT8


@functools.cache
def int_mm_is_exact() -> bool:
    """Does torch._int_mm give the exact int32 product on this CPU (checked once per process)?

    Without VNNI (AVX2-only or older CPUs, or ATEN_CPU_CAPABILITY/ONEDNN_MAX_CPU_ISA forcing
    such a path) the int8 GEMM adds pairs of u8 x s8 products into a saturating int16, as
    ONNX Runtime's does (notebook 09): 2 * 255 * 127 > 32767, so large codes come out wrong.
    The worst case below (all codes +-127) exposes it.

    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    a = torch.full((2, 64), 127, dtype=torch.int8)
    b = torch.full((64, 8), -127, dtype=torch.int8)
    b[:, ::2] = 127
    try:
        got = torch._int_mm(a, b)
    except RuntimeError:  # no int8 GEMM at all on this build
        return False
    return bool(torch.equal(got.long(), a.long() @ b.long()))


def int8_matmul(x_q: torch.Tensor, w_q_t: torch.Tensor) -> torch.Tensor:
    """int8 (M, K) x int8 (K, N) -> exact int32 (M, N): torch._int_mm where it is exact on
    this CPU (int_mm_is_exact), else an int32 matmul (slower, same result).

    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    if int_mm_is_exact():
        return torch._int_mm(x_q, w_q_t)
    return x_q.to(torch.int32) @ w_q_t.to(torch.int32)


class Int8Linear(nn.Module):
    """y = (round(x / s_x) @ W_q^T) * s_x * s_w + b, computed in int8 x int8 -> int32.

    W_q: int8 (out, in), symmetric per output channel, s_w = max|W_row| / 127.
    s_x = max|x_row| / 127: per input row (token), computed at run time (dynamic).
    Both scales are notebook 05's ``quant.symmetric_scale``. The int32 product comes from
    int8_matmul (torch._int_mm where it is exact on this CPU).

    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach()  # (out, in)
        scale = quant.symmetric_scale(w, 8, axis=0)  # (out,) s_w = max|W_row| / 127
        self.register_buffer("weight_q", torch.round(w / scale[:, None]).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])  # (rows, in)
        s_x = quant.symmetric_scale(x2, 8, axis=0)[:, None]  # (rows, 1) max|x_row| / 127
        x_q = torch.round(x2 / s_x).clamp_(-127, 127).to(torch.int8)  # (rows, in)
        acc = int8_matmul(x_q, self.weight_q.t())  # int32 (rows, out)
        y = acc.float() * s_x * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every nn.Linear replaced by an Int8Linear (dynamic INT8).

    (torch.ao.quantization.quantize_dynamic does the same but is deprecated in torch 2.x in
    favour of torchao; this is the same arithmetic, written out. Not to be confused with
    ``labkit.onnx.quantize_dynamic_int8``, which quantises an ONNX file.)

    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    qmodel = copy.deepcopy(model)
    for module in list(qmodel.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, Int8Linear(child))
    return qmodel.eval()


def greedy_agreement(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two greedy generations share before they first differ.

    Taught in notebooks/11_streaming_generation.ipynb, "Same tokens, with and without the cache".
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@torch.no_grad()
def agreement_on_val(
    reference: CharGPT, candidate: nn.Module, batches: int = 4, batch_size: int = 8, seed: int = 1
) -> dict[str, float]:
    """Compare two models on the same fixed windows of the val split (teacher forcing).

    Returns each model's cross-entropy (nats per character) and top1_agreement, the fraction
    of positions where both models' most likely next character is the same.

    Taught in notebooks/11_streaming_generation.ipynb, "6. Dynamic INT8 weights".
    """
    _, val = gpt.split_ids()
    gen = torch.Generator().manual_seed(seed)
    block = reference.cfg.block_size
    loss_ref = loss_cand = agree = 0.0
    for _ in range(batches):
        x, y = data.text_batch(val, block, batch_size, gen)
        a, b = reference(x)[0], candidate(x)[0]
        loss_ref += F.cross_entropy(a.flatten(0, 1), y.flatten()).item() / batches
        loss_cand += F.cross_entropy(b.flatten(0, 1), y.flatten()).item() / batches
        agree += (a.argmax(-1) == b.argmax(-1)).float().mean().item() / batches
    return {"loss_reference": loss_ref, "loss_candidate": loss_cand, "top1_agreement": agree}
