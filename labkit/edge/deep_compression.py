"""Deep Compression (Han, Mao and Dally, ICLR 2016): prune -> share weights -> Huffman-code.

Per layer, for a weight of n entries pruned to m non-zeros (stored in row-major order):
- pruned, sparse: each non-zero kept as a 32-bit value plus its relative index, the gap
  g_i = p_i - p_{i-1} (p_0 = -1) stored in b_gap = ceil(log2(max g)) bits (the paper fixes
  5 or 8 bits and pads long gaps with filler zeros; sizing the field per layer needs none):
      bytes = 4 m + ceil(m b_gap / 8)
- + weight sharing: the non-zeros clustered by k-means into 2^b values (edge.kmeans_share),
  each stored as a b-bit index, plus the fp32 codebook:
      bytes = ceil(m b / 8) + ceil(m b_gap / 8) + 4 * 2^b
- + Huffman coding of the indices and of the gaps: a prefix-free code where a symbol of
  probability p gets about -log2 p bits; the expected length L = sum_s p_s len(s) is the
  smallest of any prefix code (H <= L < H + 1, H the entropy). Each table is stored as one
  byte of code length per symbol (a canonical Huffman code is rebuilt from the lengths):
      bytes = ceil(sum len(index codes) / 8) + ceil(sum len(gap codes) / 8) + 4 * 2^b + tables
Ratios are against the dense fp32 weights, 4 n bytes (biases and BatchNorm left out, as in
the paper's tables).
"""

from __future__ import annotations

import copy
import heapq
import math
from collections import Counter
from collections.abc import Iterable

import torch
from torch import nn

from labkit.core.errors import check_model, check_tensor
from labkit.edge.lesson import kmeans_share

STAGES = ("dense fp32", "pruned (fp32 + gaps)", "+ k-means sharing", "+ Huffman coding")


def huffman_code(counts: dict[int, int]) -> dict[int, str]:
    """An optimal prefix-free code {symbol: bit string} for the symbol ``counts``.

    Merge the two least frequent nodes until one is left; a symbol's code is its path (0 =
    left, 1 = right). A single symbol gets "0". Ties break by insertion order (deterministic).
    Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    _check_counts(counts)
    heap = [(c, i, {s: ""}) for i, (s, c) in enumerate(sorted(counts.items()))]
    heapq.heapify(heap)
    if len(heap) == 1:
        return {s: "0" for s in counts}
    tie = len(heap)
    while len(heap) > 1:
        c0, _, left = heapq.heappop(heap)  # least frequent
        c1, _, right = heapq.heappop(heap)  # next least frequent
        merged = {s: "0" + b for s, b in left.items()} | {s: "1" + b for s, b in right.items()}
        heapq.heappush(heap, (c0 + c1, tie, merged))
        tie += 1
    return heap[0][2]


def huffman_encode(symbols: list[int], code: dict[int, str]) -> str:
    """The concatenated bit string of ``symbols`` under ``code``.

    Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    _check_encode(symbols, code)
    return "".join(code[s] for s in symbols)


def huffman_decode(bits: str, code: dict[int, str]) -> list[int]:
    """Read ``bits`` left to right, emitting a symbol whenever the prefix read is a codeword.

    Prefix-free means no codeword starts another, so the first match is the only one.
    Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    _check_decodes(bits, code)
    return _decode(bits, code)[0]


def expected_length(counts: dict[int, int], code: dict[int, str]) -> float:
    """L = sum_s p_s len(code[s]) (bits per symbol); compare with the entropy H = -sum p log2 p.

    Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    _check_length(counts, code)
    total = sum(counts.values())
    return sum(c * len(code[s]) for s, c in counts.items()) / total


def entropy_bits(counts: dict[int, int]) -> float:
    """H = -sum_s p_s log2 p_s (bits per symbol): no prefix code averages fewer.

    Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    _check_weights(counts)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c)


def sparse_gaps(weight: torch.Tensor) -> list[int]:
    """Relative indices of the non-zeros (row-major): g_i = p_i - p_{i-1}, p_0 = -1, so g_i >= 1."""
    check_tensor(weight, "weight", floating=False)
    pos = torch.nonzero(weight.reshape(-1)).flatten()  # (m,)
    return torch.diff(pos, prepend=torch.tensor([-1])).tolist()


def compress_layer(weight: torch.Tensor, bits: int) -> dict:
    """One pruned weight through the pipeline: gaps, k-means indices of the non-zeros, bytes per stage.

    Returns {"n", "m", "gaps", "indices", "centroids", "shared" (the weight rebuilt from the
    codebook, zeros kept), "bytes" {stage: bytes}}. Used by deep_compress (this module).
    """
    w = weight.detach().reshape(-1)  # (n,)
    keep = w != 0
    gaps, nz = sparse_gaps(w), w[keep]  # (m,)
    book = kmeans_share(nz if nz.numel() else torch.zeros(1), bits)
    idx = book.indices.reshape(-1)[: nz.numel()].tolist()
    shared = torch.zeros_like(w)
    shared[keep] = book.centroids[book.indices.reshape(-1)][: nz.numel()]
    m, b_gap = len(gaps), max(1, math.ceil(math.log2(max(gaps, default=1) + 1)))
    huff_bits = 0
    for symbols in (idx, gaps):
        counts = Counter(symbols)
        if counts:
            code = huffman_code(dict(counts))
            huff_bits += sum(c * len(code[s]) for s, c in counts.items()) + 8 * len(counts)
    codebook = 4 * 2**bits
    sizes = {
        STAGES[0]: 4 * w.numel(),
        STAGES[1]: 4 * m + math.ceil(m * b_gap / 8),
        STAGES[2]: math.ceil(m * bits / 8) + math.ceil(m * b_gap / 8) + codebook,
        STAGES[3]: math.ceil(huff_bits / 8) + codebook,
    }
    return {"n": w.numel(), "m": m, "gaps": gaps, "indices": idx, "centroids": book.centroids,
            "shared": shared.reshape(weight.shape), "bytes": sizes}  # fmt: skip


def deep_compress(model: nn.Module, bits: int) -> tuple[nn.Module, dict[str, dict]]:
    """Share and Huffman-size every Conv2d/Linear weight of an (already pruned) model.

    Returns (a copy whose weights are the shared values, zeros kept; {layer name: compress_layer
    result}). Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    check_model(model)
    out = copy.deepcopy(model)
    layers = {}
    for name, mod in out.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):
            layers[name] = compress_layer(mod.weight, bits)
            with torch.no_grad():
                mod.weight.copy_(layers[name]["shared"])
    return out, layers


def stage_bytes(layers: dict[str, dict]) -> dict[str, int]:
    """Total bytes of every stage over the layers (see the module docstring for each formula).

    Taught in notebooks/10_edge_deployment.ipynb, "7. Deep Compression: prune, share, Huffman-code".
    """
    _check_layers(layers)
    return {s: sum(layer["bytes"][s] for layer in layers.values()) for s in STAGES}


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_counts(counts: object) -> None:
    ok = (
        isinstance(counts, dict)
        and counts
        and all(isinstance(c, int) and c > 0 for c in counts.values())
    )
    if not ok:
        raise ValueError(f"counts must be a non-empty dict {{symbol: count > 0}}, got {counts!r}.")


def _decode(bits: str, code: dict[int, str]) -> tuple[list[int], str]:
    inverse, out, word = {b: s for s, b in code.items()}, [], ""
    for bit in bits:
        word += bit
        if word in inverse:
            out.append(inverse[word])
            word = ""
    return out, word  # word: what is left after the last whole codeword


def _check_code(code: object) -> None:
    """A prefix-free code {symbol: non-empty string of 0s and 1s}, as huffman_code returns."""
    words = list(code.values()) if isinstance(code, dict) else []
    if not words or not all(isinstance(w, str) and w and set(w) <= {"0", "1"} for w in words):
        raise ValueError(
            f"code must be a dict {{symbol: bit string}} from huffman_code, got {code!r}."
        )
    words.sort()  # a codeword sits right before the words it is a prefix of
    for a, b in zip(words[:-1], words[1:], strict=True):
        if b.startswith(a):
            raise ValueError(f"code is not prefix-free: {a!r} starts {b!r}; use huffman_code.")


def _check_encode(symbols: object, code: object) -> None:
    _check_code(code)
    if not isinstance(symbols, Iterable):
        raise ValueError(f"symbols must be a list of symbols, got {type(symbols).__name__}.")
    for s in symbols:
        if s not in code:  # type: ignore[operator]
            raise ValueError(f"symbols holds {s!r}, which has no codeword in code.")


def _check_decodes(bits: object, code: object) -> None:
    _check_code(code)
    if not isinstance(bits, str) or set(bits) - {"0", "1"}:
        raise ValueError(f"bits must be a string of 0s and 1s (huffman_encode), got {bits!r}.")
    rest = _decode(bits, code)[1]  # type: ignore[arg-type]
    if rest:
        raise ValueError(
            f"bits ends inside a codeword ({rest!r} left over): this code did not produce it."
        )


def _check_weights(counts: object) -> None:
    """{symbol: count >= 0} (counts or frequencies) with a positive total."""
    ok = isinstance(counts, dict) and len(counts) > 0
    for c in counts.values() if ok else ():  # type: ignore[union-attr]
        ok = ok and isinstance(c, int | float) and not isinstance(c, bool) and 0 <= c < math.inf
    if not ok or sum(counts.values()) <= 0:  # type: ignore[union-attr]
        raise ValueError(f"counts must be a non-empty dict {{symbol: count >= 0}}, got {counts!r}.")


def _check_length(counts: object, code: object) -> None:
    _check_weights(counts)
    _check_code(code)
    missing = [s for s in counts if s not in code]  # type: ignore[union-attr, operator]
    if missing:
        raise ValueError(f"code has no codeword for the symbols {missing} of counts.")


def _check_layers(layers: object) -> None:
    """{layer name: compress_layer result}, as deep_compress returns it."""
    ok = isinstance(layers, dict) and all(
        isinstance(v, dict) and isinstance(v.get("bytes"), dict) and set(STAGES) <= set(v["bytes"])
        for v in layers.values()
    )
    if not ok:
        raise ValueError(
            f"layers must be the dict {{layer name: result}} of deep_compress, each result with "
            f"bytes for every stage {STAGES}."
        )
