"""labkit.attention: tiled (FlashAttention) and naive attention vs torch's SDPA; online softmax."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import MissingDependency, attention


@settings(max_examples=40, deadline=None)
@given(
    lead=st.sampled_from([(), (2,), (2, 3)]),
    n=st.integers(1, 70),
    m=st.integers(1, 70),
    d=st.sampled_from([1, 8, 16]),
    block=st.integers(1, 33),
    block_q=st.one_of(st.none(), st.integers(1, 20)),
    causal=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_tiled_matches_sdpa(lead, n, m, d, block, block_q, causal, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, n, d, generator=g)
    k, v = (torch.randn(*lead, m, d, generator=g) for _ in range(2))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    got = attention.tiled_attention(q, k, v, block_size=block, causal=causal, block_q=block_q)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert torch.allclose(
        attention.naive_attention(q, k, v, causal), expected, atol=1e-5, rtol=1e-4
    )


def test_tiled_n_not_multiple_of_block_and_custom_scale():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 130, 32) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)
    got = attention.tiled_attention(q, k, v, block_size=64, causal=True, scale=0.3)
    assert torch.allclose(got, expected, atol=1e-5)


def test_tiled_handles_large_scores_without_overflow():
    q = torch.full((1, 8, 4), 30.0)
    k = torch.randn(1, 8, 4) * 30
    v = torch.randn(1, 8, 4)
    got = attention.tiled_attention(q, k, v, block_size=3)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, F.scaled_dot_product_attention(q, k, v), atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(1,), (7,), (3, 10), (2, 3, 33)]),
    block=st.integers(1, 12),
    scale=st.sampled_from([1.0, 100.0, 1000.0]),
    seed=st.integers(0, 10_000),
)
def test_online_softmax_matches_softmax(shape, block, scale, seed):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale
    expected = torch.softmax(x, dim=-1)
    assert torch.allclose(attention.online_softmax(x, block_size=block), expected, atol=1e-6)
    assert torch.allclose(attention.safe_softmax(x), expected, atol=1e-6)


def test_online_softmax_with_masked_entries():
    x = torch.tensor([[float("-inf"), 1.0, 2.0, float("-inf")]])
    assert torch.allclose(attention.online_softmax(x), torch.softmax(x, -1))


def test_tile_update_two_tiles_equal_one_pass():
    torch.manual_seed(0)
    s = torch.randn(4, 10)
    v = torch.randn(10, 3)
    o, m, l = torch.zeros(4, 3), torch.full((4,), float("-inf")), torch.zeros(4)  # noqa: E741
    o, m, l = attention.tile_update(o, m, l, s[:, :6], v[:6])  # noqa: E741
    o, m, l = attention.tile_update(o, m, l, s[:, 6:], v[6:])  # noqa: E741
    assert torch.allclose(o / l.unsqueeze(-1), torch.softmax(s, -1) @ v, atol=1e-6)
    assert torch.allclose(m, s.amax(-1))


def test_bad_input_is_a_clear_value_error():
    q = torch.randn(4, 8)
    with pytest.raises(ValueError, match="head dim"):
        attention.tiled_attention(q, torch.randn(4, 5), torch.randn(4, 5))
    with pytest.raises(ValueError, match="block_size"):
        attention.tiled_attention(q, q, q, block_size=0)
    with pytest.raises(ValueError, match="floating"):
        attention.naive_attention(q.long(), q, q)


def test_io_complexity_numbers():
    r = attention.io_complexity(4096, 64, sram_bytes=192 * 1024, dtype_bytes=2)
    assert r["M_elements"] == 98304
    assert r["standard"] == 4096 * 64 + 4096**2
    assert r["flash"] == pytest.approx(4096**2 * 64**2 / 98304)


def test_sdpa_kernel_used_names_a_backend():
    q = torch.randn(1, 2, 16, 8)
    assert attention.sdpa_kernel_used(q, q, q) != ""
    with attention.forced_backend("math"):
        assert attention.sdpa_kernel_used(q, q, q).startswith("MATH")
    with pytest.raises(ValueError, match="name must be one of"):
        with attention.forced_backend("fast"):
            pass


def test_gpu_paths_say_what_is_missing():
    if torch.cuda.is_available():
        rows = attention.time_cuda_backends(n=256, d=64, heads=2)
        assert any(r["backend"] == "math" and r["median_ms"] > 0 for r in rows)
    else:
        with pytest.raises(MissingDependency, match="GPU"):
            attention.time_cuda_backends()
    for name in ("flash_attn", "xformers"):
        notice = attention.optional_kernel_notice(name)
        assert notice is None or notice.count("\n") == 0 and name in notice


@pytest.mark.parametrize(
    "call",
    [
        lambda: attention.naive_attention(*(torch.zeros(1, 200_000, 8),) * 3),
        lambda: attention.naive_attention(
            torch.zeros(1, 200_000, 8), torch.zeros(1, 200_000, 8), torch.zeros(1, 200_000, 8)
        ),
        lambda: attention.tiled_attention(*(torch.zeros(1, 60_000, 4),) * 3, block_size=60_000),
    ],
    ids=["naive N=200k", "naive N=200k separate", "tiled with a 60k block"],
)
def test_huge_sizes_refuse_before_allocating(call):
    """Issue 13: refuse with a ValueError naming the memory and the fix, allocating nothing."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=r"GiB of memory.*(tiled_attention|smaller blocks)"):
        call()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024  # well under the GiB it asked for


def test_naive_at_n_200k_names_the_memory_it_would_need():
    q = torch.zeros(1, 200_000, 8)
    with pytest.raises(ValueError, match=r"N=200,000.*298\.0 GiB"):
        attention.naive_attention(q, q, q)


def test_sizes_just_under_the_limit_still_run():
    q = torch.randn(2, 64, 8)
    torch.testing.assert_close(
        attention.naive_attention(q, q, q), F.scaled_dot_product_attention(q, q, q)
    )


def test_score_matrix_bytes_rejects_non_positive_sizes():
    assert attention.score_matrix_bytes(4, 2, batch_heads=3) == 4 * 2 * 3 * 4
    for bad in ({"n": 0}, {"n": 4, "m": -1}, {"n": 4, "batch_heads": 0}, {"n": 2.5}):
        with pytest.raises(ValueError, match=f"{list(bad)[-1]} must be an integer >= 1"):
            attention.score_matrix_bytes(**bad)


def test_memory_and_time_compares_against_the_first_function():
    fns = {"naive": attention.naive_attention, "sdpa": F.scaled_dot_product_attention}
    rows = attention.memory_and_time(fns, ns=(64,), d=8, rounds=3)
    assert [r["method"] for r in rows] == ["naive", "sdpa"]
    assert rows[0]["verdict"] == "baseline" and rows[0]["speedup"] == 1.0
    assert rows[1]["time_ms"] > 0 and "sdpa" in rows[1]["verdict"]
    with pytest.raises(ValueError, match="2\\+ functions"):
        attention.memory_and_time({"naive": attention.naive_attention}, ns=(64,))


def test_time_backends_times_the_runnable_backends_against_math():
    q = torch.randn(1, 2, 64, 16)
    rows = {r["backend"]: r for r in attention.time_backends(q, q, q, repeats=1, rounds=3)}
    assert rows["math"]["note"] == "baseline" and rows["math"]["median_ms"] > 0
    assert rows["flash"]["median_ms"] > 0 and "flash" in rows["flash"]["note"]
    if not torch.cuda.is_available():
        assert rows["cudnn"]["kernel"] == "-" and rows["cudnn"]["note"]


TILE = (torch.zeros(4, 3), torch.zeros(4), torch.zeros(4), torch.zeros(4, 5), torch.zeros(5, 3))


@pytest.mark.parametrize(
    ("i", "bad", "what"),
    [
        (4, torch.zeros(6, 3), "v with 6 keys for a tile of 5"),
        (4, torch.zeros(5, 2), "v with head dim 2, o with 3"),
        (1, torch.zeros(3), "m for 3 rows, o for 4"),
        (2, torch.zeros(4, 1), "l of the wrong rank"),
        (3, torch.zeros(2, 5), "s for 2 query rows, o for 4"),
    ],
)
def test_tile_update_refuses_mismatched_shapes(i, bad, what):
    args = list(TILE)
    args[i] = bad
    with pytest.raises(ValueError, match=r"tile_update needs o \(\.\.\., B_r, d\)"):
        attention.tile_update(*args)
    attention.tile_update(*TILE)  # the matching shapes still run


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: attention.naive_attention(*(torch.zeros(2, 0, 8),) * 3), "q must be a non-empty"),
        (
            lambda: attention.tiled_attention(
                torch.zeros(1, 4), torch.zeros(0, 4), torch.zeros(0, 4)
            ),
            "k must be a non-empty",
        ),
        (
            lambda: attention.naive_attention(
                torch.zeros(3, 4, 8), torch.zeros(2, 4, 8), torch.zeros(2, 4, 8)
            ),
            "leading .* must broadcast",
        ),
        (
            lambda: attention.tiled_attention(*(torch.zeros(4, 8),) * 3, block_size=2.5),
            "block_size must be an integer",
        ),
        (
            lambda: attention.tiled_attention(*(torch.zeros(4, 8),) * 3, block_q=0),
            "block_q must be an integer",
        ),
        (
            lambda: attention.tiled_attention(*(torch.zeros(4, 8),) * 3, block_size=True),
            "block_size must be an integer",
        ),
        (lambda: attention.naive_attention(*(torch.zeros(4, 8),) * 3, scale=float("nan")), "scale"),
        (lambda: attention.tiled_attention(*(torch.zeros(4, 8),) * 3, scale=-1.0), "scale"),
        (lambda: attention.online_softmax(torch.zeros(3, 0)), "x must be a non-empty"),
        (lambda: attention.online_softmax(torch.tensor(1.0)), "at least one dimension"),
        (lambda: attention.online_softmax(torch.zeros(3), block_size=0), "block_size"),
        (lambda: attention.safe_softmax(torch.zeros(0)), "x must be a non-empty"),
        (lambda: attention.safe_softmax([1.0, 2.0]), "x must be a torch.Tensor"),
        (lambda: attention.io_complexity(0, 64, 1024), "n must be an integer >= 1"),
        (lambda: attention.io_complexity(64, 64, 1024, dtype_bytes=0.5), "dtype_bytes"),
        (
            lambda: attention.memory_and_time(
                {"a": attention.naive_attention, "b": attention.tiled_attention}, ns=()
            ),
            "ns .* is empty",
        ),
        (
            lambda: attention.memory_and_time(
                {"a": attention.naive_attention, "b": attention.tiled_attention}, ns=(10**9,)
            ),
            "GiB of memory",
        ),
        (
            lambda: attention.memory_and_time(
                {"a": attention.naive_attention, "b": "sdpa"}, ns=(8,)
            ),
            "2\\+ functions",
        ),
        (
            lambda: attention.sdpa_kernel_used(
                torch.zeros(4, 8), torch.zeros(4, 6), torch.zeros(4, 6)
            ),
            "head dim",
        ),
        (lambda: attention.optional_kernel_notice("flash-attn"), "name must be one of"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_names_the_parameter(call, match):
    """Issue 18: each class of bad input is a ValueError naming the parameter (before any work)."""
    with pytest.raises(ValueError, match=match):
        call()
