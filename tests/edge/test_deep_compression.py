"""Deep Compression: Huffman codes against known optima, sparse gaps, the size of each stage."""

import itertools
import math
import random

import pytest
import torch

from labkit import edge
from labkit.core import models


def _prefix_free(code: dict[int, str]) -> bool:
    words = list(code.values())
    return not any(a != b and b.startswith(a) for a, b in itertools.permutations(words, 2))


def test_huffman_known_dyadic_case_reaches_the_entropy() -> None:
    counts = {0: 8, 1: 4, 2: 2, 3: 1, 4: 1}  # p = 1/2, 1/4, 1/8, 1/16, 1/16
    code = edge.huffman_code(counts)
    assert sorted(len(code[s]) for s in counts) == [1, 2, 3, 4, 4]
    assert edge.expected_length(counts, code) == pytest.approx(edge.entropy_bits(counts))
    assert _prefix_free(code)


def _brute_force_optimal_length(counts: dict[int, int]) -> float:
    """Smallest expected length over all code-length vectors satisfying Kraft's equality."""
    n, total, best = len(counts), sum(counts.values()), math.inf
    for lengths in itertools.product(range(1, n), repeat=n):
        if sum(2.0**-k for k in lengths) <= 1.0:
            best = min(
                best, sum(c * k for c, k in zip(counts.values(), lengths, strict=True)) / total
            )
    return best


@pytest.mark.parametrize("seed", range(6))
def test_huffman_is_optimal_against_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    counts = {s: rng.randint(1, 30) for s in range(rng.randint(2, 5))}
    code = edge.huffman_code(counts)
    assert _prefix_free(code)
    assert edge.expected_length(counts, code) == pytest.approx(_brute_force_optimal_length(counts))
    h = edge.entropy_bits(counts)
    assert h <= edge.expected_length(counts, code) < h + 1


def test_huffman_round_trip_and_single_symbol() -> None:
    rng = random.Random(0)
    symbols = [rng.choice([0, 0, 0, 1, 2, 5]) for _ in range(500)]
    code = edge.huffman_code({s: symbols.count(s) for s in set(symbols)})
    assert edge.huffman_decode(edge.huffman_encode(symbols, code), code) == symbols
    assert edge.huffman_code({7: 3}) == {7: "0"}
    with pytest.raises(ValueError, match="ends inside a codeword"):
        edge.huffman_decode("1", {0: "0", 1: "10", 2: "11"})
    with pytest.raises(ValueError, match="counts"):
        edge.huffman_code({})


def test_sparse_gaps_rebuild_the_positions() -> None:
    w = torch.tensor([0.0, 2.0, 0.0, 0.0, 3.0, 1.0, 0.0])
    assert edge.sparse_gaps(w) == [2, 3, 1]
    assert edge.sparse_gaps(torch.zeros(4)) == []


def test_stage_bytes_follow_the_formulas() -> None:
    torch.manual_seed(0)
    model = models.cnn(width=4, depth=2)
    with torch.no_grad():
        w = model[0].weight  # (4, 1, 3, 3): 36 weights
        w.zero_()
        w.view(-1)[[0, 5, 35]] = torch.tensor([1.0, -1.0, 2.0])
    shared, layers = edge.deep_compress(model, bits=2)
    first = layers["0"]
    assert first["m"] == 3 and first["gaps"] == [1, 5, 30]
    b = first["bytes"]
    assert b["dense fp32"] == 144
    assert b["pruned (fp32 + gaps)"] == 3 * 4 + math.ceil(3 * 5 / 8)  # 30 needs 5 bits
    assert b["+ k-means sharing"] == math.ceil(3 * 2 / 8) + math.ceil(3 * 5 / 8) + 16
    # 3 distinct values, 3 distinct gaps: Huffman lengths 1+2+2 each, plus 1 byte per symbol
    assert b["+ Huffman coding"] == math.ceil((5 + 5 + 8 * 6) / 8) + 16
    assert torch.equal(shared[0].weight.view(-1)[[0, 5, 35]], torch.tensor([1.0, -1.0, 2.0]))
    assert int((shared[0].weight != 0).sum()) == 3  # zeros stay zeros
    totals = edge.stage_bytes(layers)
    assert totals["dense fp32"] == 4 * sum(
        m.weight.numel() for m in (model[0], model[3], model[-1])
    )


def test_compression_ratio_grows_with_each_stage_on_a_pruned_model() -> None:
    from labkit import prune

    torch.manual_seed(0)
    model = models.cnn(width=16, depth=3)
    prune.prune_model(model, 0.9)
    _, layers = edge.deep_compress(model, bits=4)
    sizes = list(edge.stage_bytes(layers).values())
    assert sizes == sorted(sizes, reverse=True) and sizes[0] / sizes[-1] > 20
