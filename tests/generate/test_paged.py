"""PagedAttention (labkit/generate/paged.py) and the serving simulator (labkit/generate/simulator.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from labkit import generate


def contiguous(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None):
    """q (H, d), k, v (C, H, d): SDPA over the C tokens, one query per head."""
    out = F.scaled_dot_product_attention(
        q[:, None], k.transpose(0, 1), v.transpose(0, 1), scale=scale
    )  # (H, 1, d)
    return out[:, 0]


def paged_pool(k, v, block_size: int, num_blocks: int, seed: int, fill: float):
    """Scatter k, v (C, H, d) into a pool of shuffled blocks; every other slot holds ``fill``."""
    C, H, d = k.shape
    g = torch.Generator().manual_seed(seed)
    table = torch.randperm(num_blocks, generator=g)[: -(-C // block_size)]
    k_cache = torch.full((num_blocks, block_size, H, d), fill)
    v_cache = torch.full((num_blocks, block_size, H, d), fill)
    for t in range(C):
        k_cache[table[t // block_size], t % block_size] = k[t]
        v_cache[table[t // block_size], t % block_size] = v[t]
    return k_cache, v_cache, table


@pytest.mark.parametrize("fill", [float("nan"), 1e30, -1e30])
@pytest.mark.parametrize(("C", "block_size"), [(1, 4), (13, 4), (16, 4), (37, 8), (5, 16)])
def test_paged_attention_equals_contiguous_attention(C: int, block_size: int, fill: float) -> None:
    g = torch.Generator().manual_seed(C)
    H, d = 3, 8
    q, k, v = (
        torch.randn(H, d, generator=g),
        torch.randn(C, H, d, generator=g),
        torch.randn(C, H, d, generator=g),
    )
    k_cache, v_cache, table = paged_pool(k, v, block_size, num_blocks=12, seed=C, fill=fill)
    padded = torch.cat([table, torch.tensor([-1, 10**6, 3])])  # longer than needed, garbage after
    for bt in (table.to(torch.int32), padded, padded.to(torch.int32)):
        out = generate.paged_attention(q, k_cache, v_cache, bt, C)
        assert torch.isfinite(out).all()  # nothing of the unused slots leaked in
        torch.testing.assert_close(out, contiguous(q, k, v), atol=1e-5, rtol=1e-4)
    out = generate.paged_attention(q, k_cache, v_cache, table, C, scale=0.3)
    torch.testing.assert_close(out, contiguous(q, k, v, scale=0.3), atol=1e-5, rtol=1e-4)


def test_gather_paged_is_the_block_table_lookup() -> None:
    cache = torch.arange(5 * 4).float().view(5, 4, 1, 1)  # slot value = 4 * block + offset
    table = torch.tensor([3, 0, 4, 1])
    got = generate.gather_paged(cache, table, 10).flatten().tolist()
    assert got == [12, 13, 14, 15, 0, 1, 2, 3, 16, 17]


def test_allocator_shares_a_prefix_and_copies_on_write() -> None:
    alloc = generate.BlockAllocator(num_blocks=8, block_size=4)
    assert alloc.allocate("a", 6) == [0, 1]  # 6 tokens: 2 blocks, the second half full
    alloc.fork("a", "b")  # b shares both blocks
    assert alloc.refs[:2] == [2, 2] and len(alloc.free_blocks) == 6
    block, slot, copy = alloc.append("b")  # b writes token 6 into the shared block 1: copy it
    assert (slot, copy) == (2, (1, block)) and block not in (0, 1)
    assert alloc.tables["b"] == [0, block] and alloc.refs[1] == 1 and alloc.refs[block] == 1
    assert alloc.append("a") == (1, 2, None)  # a owns block 1 alone now: no copy
    alloc.append("a")
    assert alloc.append("a")[1:] == (0, None)  # token 8 opens a new block
    alloc.free("a")
    assert alloc.refs[0] == 1 and 0 not in alloc.free_blocks  # b still uses block 0
    alloc.free("b")
    assert sorted(alloc.free_blocks) == list(range(8)) and not any(alloc.refs)


def test_allocator_end_to_end_with_attention() -> None:
    """Two samples of one prompt share its blocks, write their own tokens (copy-on-write), and
    each one's paged attention equals attention over its own tokens only."""
    H, d, bs = 2, 4, 4
    alloc = generate.BlockAllocator(num_blocks=10, block_size=bs)
    k_cache, v_cache = (
        torch.full((10, bs, H, d), float("nan")),
        torch.full((10, bs, H, d), float("nan")),
    )
    g = torch.Generator().manual_seed(0)
    prompt_k, prompt_v = torch.randn(6, H, d, generator=g), torch.randn(6, H, d, generator=g)
    table = alloc.allocate("s0", 6)
    for t in range(6):
        k_cache[table[t // bs], t % bs], v_cache[table[t // bs], t % bs] = prompt_k[t], prompt_v[t]
    alloc.fork("s0", "s1")
    own = {s: ([*prompt_k], [*prompt_v]) for s in ("s0", "s1")}
    for _ in range(5):
        for s in ("s0", "s1"):
            kt, vt = torch.randn(H, d, generator=g), torch.randn(H, d, generator=g)
            block, slot, copy = alloc.append(s)
            if copy:
                k_cache[copy[1]], v_cache[copy[1]] = k_cache[copy[0]], v_cache[copy[0]]
            k_cache[block, slot], v_cache[block, slot] = kt, vt
            own[s][0].append(kt), own[s][1].append(vt)
    q = torch.randn(H, d, generator=g)
    for s in ("s0", "s1"):
        out = generate.paged_attention(q, k_cache, v_cache, alloc.block_table(s), alloc.lengths[s])
        ref = contiguous(q, torch.stack(own[s][0]), torch.stack(own[s][1]))
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    assert alloc.tables["s0"][0] == alloc.tables["s1"][0]  # the full prompt block is still shared


def test_allocator_runs_out_with_a_clear_error() -> None:
    alloc = generate.BlockAllocator(num_blocks=2, block_size=4)
    with pytest.raises(ValueError, match="n_tokens"):  # more than the whole pool: never fits
        alloc.allocate("a", 9)
    alloc.allocate("b", 1)
    with pytest.raises(MemoryError, match="free"):  # fits the pool, not its free blocks
        alloc.allocate("a", 8)
    alloc.free("b")
    alloc.allocate("a", 8)
    with pytest.raises(MemoryError, match="out of KV blocks"):
        alloc.append("a")
    with pytest.raises(ValueError, match="already"):
        alloc.allocate("a", 1)


def test_kv_waste_counts_slots() -> None:
    w = generate.kv_waste([1, 16, 17], max_len=64, block_size=16)
    assert (w["used_slots"], w["contiguous_slots"], w["paged_slots"]) == (34, 192, 64)
    assert math.isclose(w["contiguous_waste"], 1 - 34 / 192) and math.isclose(
        w["paged_waste"], 1 - 34 / 64
    )


def test_request_mix_is_chat_like_and_capped() -> None:
    mix = generate.request_mix(2000, seed=0, max_len=2048)
    assert mix == generate.request_mix(2000, seed=0, max_len=2048)
    assert all(p >= 1 and o >= 1 and p + o <= 2048 for p, o in mix)
    prompts = sorted(p for p, _ in mix)
    assert 80 < prompts[1000] < 125  # median ~100
    w = generate.kv_waste([p + o for p, o in mix], 2048, 16)
    assert 0.6 < w["contiguous_waste"] < 0.9 and w["paged_waste"] < 0.04


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: generate.paged_attention(
                torch.zeros(2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.tensor([0.0]),
                2,
            ),
            "int32 or int64",
        ),
        (
            lambda: generate.paged_attention(
                torch.zeros(2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.tensor([[0]]),
                2,
            ),
            "1-D",
        ),
        (
            lambda: generate.paged_attention(
                torch.zeros(2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.tensor([0, 3]),
                5,
            ),
            "0..2",
        ),
        (
            lambda: generate.paged_attention(
                torch.zeros(2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.tensor([0]),
                5,
            ),
            "context_len",
        ),
        (
            lambda: generate.paged_attention(
                torch.zeros(2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.tensor([0]),
                0,
            ),
            "context_len",
        ),
        (
            lambda: generate.paged_attention(
                torch.zeros(3, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.tensor([0]),
                1,
            ),
            "same H and d",
        ),
        (
            lambda: generate.paged_attention(
                torch.zeros(2, 4),
                torch.zeros(3, 4, 2, 4),
                torch.zeros(3, 2, 2, 4),
                torch.tensor([0]),
                1,
            ),
            "same H and d",
        ),
        (
            lambda: generate.gather_paged(torch.zeros(3, 4), torch.tensor([0]), 1),
            "num_blocks, block_size",
        ),
        (lambda: generate.BlockAllocator(0, 4), "num_blocks"),
        (lambda: generate.kv_waste([5, 80], 64, 16), "max_len"),
    ],
)
def test_bad_paged_input_is_a_clear_error(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- the serving simulator

STEP = generate.linear_step_time(0.010, 0.0005)


def chat(rate: float) -> list:
    return generate.chat_requests(120, rate, seed=0)


def test_without_prompts_or_a_cap_paged_is_continuous() -> None:
    reqs = generate.poisson_requests(150, rate=6.0, seed=1)
    assert generate.simulate_batching(reqs, "paged", 8) == generate.simulate_batching(
        reqs, "continuous", 8
    )


@pytest.mark.parametrize("policy", ["static", "continuous", "paged"])
def test_every_token_is_served_and_memory_is_respected(policy: str) -> None:
    reqs = chat(3.0)
    kv = 8192
    r = generate.simulate_batching(
        reqs, policy, 32, STEP, prefill_token_s=1e-4, chunk=256, kv_tokens=kv, max_len=2048
    )
    total = sum(q.new_tokens for q in reqs)
    assert math.isclose(r["throughput_tok_s"] * r["makespan_s"], total)
    if policy != "paged":  # contiguous: at most kv // max_len requests at once
        assert r["mean_running"] <= kv // 2048
    assert r["ttft_p50_s"] <= r["p50_s"]


def test_paged_fits_more_requests_and_wins_under_load() -> None:
    reqs = chat(4.0)
    kw = dict(step_time=STEP, prefill_token_s=1e-4, kv_tokens=16384, max_len=2048)
    cont = generate.simulate_batching(reqs, "continuous", 32, **kw)
    paged = generate.simulate_batching(reqs, "paged", 32, **kw)
    static = generate.simulate_batching(reqs, "static", 32, **kw)
    assert paged["mean_running"] > 1.5 * cont["mean_running"]
    assert paged["throughput_tok_s"] > cont["throughput_tok_s"] > static["throughput_tok_s"]
    assert paged["p90_s"] < cont["p90_s"] < static["p90_s"]


def test_preemption_when_the_pool_runs_dry_still_serves_everyone() -> None:
    reqs = [generate.Request(0.0, 40, 10) for _ in range(6)]
    r = generate.simulate_batching(reqs, "paged", 6, STEP, kv_tokens=96, block_size=16)
    assert r["preemptions"] > 0
    assert math.isclose(r["throughput_tok_s"] * r["makespan_s"], 240)


def test_chunked_prefill_bounds_the_stall_of_running_streams() -> None:
    reqs = [generate.Request(0.0, 50, 4)] + [
        generate.Request(0.05 * i, 20, 1500) for i in range(1, 4)
    ]
    kw = dict(step_time=STEP, prefill_token_s=1e-4)
    whole = generate.simulate_batching(reqs, "continuous", 8, **kw)
    chunked = generate.simulate_batching(reqs, "continuous", 8, chunk=128, **kw)
    assert whole["itl_max_s"] > 0.15  # a 1,500-token prompt stalls everyone for 150 ms
    assert chunked["itl_max_s"] < 0.035  # at most 128 prompt tokens per step


def test_prefill_cost_shows_in_the_time_to_first_token() -> None:
    reqs = [generate.Request(0.0, 5, 1000)]
    r = generate.simulate_batching(reqs, "continuous", 1, STEP, prefill_token_s=1e-4)
    assert math.isclose(r["ttft_p50_s"], 0.1 + STEP(1))
    assert math.isclose(r["p50_s"], 0.1 + 5 * STEP(1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy": "lifo"}, "policy"),
        ({"chunk": 0}, "chunk"),
        ({"prefill_token_s": -1.0}, "prefill_token_s"),
        ({"kv_tokens": 10}, "kv_tokens"),
        ({"max_len": 3}, "max_len"),
        ({"block_size": 0}, "block_size"),
    ],
)
def test_bad_simulation_input_is_a_clear_error(kwargs, match) -> None:
    args = {"requests": [generate.Request(0.0, 4, 2)], "policy": "paged", "max_batch": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        generate.simulate_batching(**args)
