"""Notebook 11, part 8: PagedAttention, the KV cache in fixed-size blocks (vLLM).

The cache is one pool of physical blocks, (num_blocks, block_size, H, d) for keys and one for
values. A sequence owns a block table, the ids of its blocks in sequence order: token t lives at

    k_cache[block_table[t // block_size], t % block_size]      (the same slot in v_cache)

so a sequence grows one block at a time instead of reserving its maximum length up front, the
only waste is the unfilled tail of its last block, and sequences that share a prefix (one
prompt, several samples) share its blocks, copying a block only when one of them writes into
it (copy-on-write, tracked with reference counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from labkit.core.errors import check_int, check_nonempty, check_positive


def gather_paged(cache: torch.Tensor, block_table: torch.Tensor, context_len: int) -> torch.Tensor:
    """The first context_len tokens of one sequence, gathered from paged blocks: (context_len, H, d).

    cache (num_blocks, block_size, H, d); token t is cache[block_table[t // block_size],
    t % block_size]. Only the ceil(context_len / block_size) blocks the sequence uses are read,
    and the unused tail of its last block is cut off.
    Taught in notebooks/11_streaming_generation.ipynb, "Exercise 4: the block-table lookup".
    """
    _check_table(cache, block_table, context_len)
    t = torch.arange(context_len)  # (C,) token positions
    blocks = block_table.long()[t // cache.shape[1]]  # (C,) the physical block of each token
    return cache[blocks, t % cache.shape[1]]  # (C, H, d)


def paged_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    context_len: int,
    scale: float | None = None,
) -> torch.Tensor:
    """One decode step of attention over a paged KV cache: out (H, d).

    q (H, d); k_cache, v_cache (num_blocks, block_size, H, d); block_table 1-D int tensor
    (may be longer than needed). out = softmax(q k^T * scale) v over tokens 0..context_len-1,
    scale = 1 / sqrt(d) by default; no other slot of the pool is read.
    Taught in notebooks/11_streaming_generation.ipynb, "8. PagedAttention".
    """
    _check_paged(q, k_cache, v_cache, scale)  # gather_paged checks the table and the length
    k = gather_paged(k_cache, block_table, context_len)  # (C, H, d)
    v = gather_paged(v_cache, block_table, context_len)  # (C, H, d)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.einsum("hd,chd->hc", q, k) * scale  # (H, C)
    return torch.einsum("hc,chd->hd", scores.softmax(dim=-1), v)  # (H, d)


class BlockAllocator:
    """Block tables over a pool of num_blocks blocks: free list, reference counts, copy-on-write.

    allocate(seq, n_tokens) gives a new sequence the blocks for its first tokens; append(seq)
    makes room for one more token and returns (block, slot) to write it to, plus a (src, dst)
    block copy when the last block was shared (copy-on-write), else None; fork(parent, child)
    shares every block of parent with child (a prefix, e.g. one prompt and several samples);
    free(seq) returns blocks whose count drops to 0 to the free list.
    Taught in notebooks/11_streaming_generation.ipynb, "8. PagedAttention".
    """

    def __init__(self, num_blocks: int, block_size: int) -> None:
        _check_pool(num_blocks, block_size)
        self.block_size = block_size
        self.free_blocks = list(range(num_blocks - 1, -1, -1))  # a stack: pop() gives block 0 first
        self.refs = [0] * num_blocks  # how many sequences use each block
        self.tables: dict[Any, list[int]] = {}  # sequence -> its block ids, in order
        self.lengths: dict[Any, int] = {}  # sequence -> tokens stored

    def allocate(self, seq: Any, n_tokens: int) -> list[int]:
        """Blocks for the first n_tokens of a new sequence: ceil(n_tokens / block_size) of them."""
        _check_new(self, seq, n_tokens)
        self.tables[seq] = [self._take() for _ in range(-(-n_tokens // self.block_size))]
        self.lengths[seq] = n_tokens
        return list(self.tables[seq])

    def append(self, seq: Any) -> tuple[int, int, tuple[int, int] | None]:
        """Room for one more token: (block, slot, copy), copy = (src, dst) when copy-on-write."""
        _check_seq(self, seq)
        table, t = self.tables[seq], self.lengths[seq]  # t: the new token's position
        copy = None
        if t % self.block_size == 0:  # the last block is full (or there is none): a new one
            table.append(self._take())
        elif self.refs[table[-1]] > 1:  # shared, partly filled: copy it before writing
            src, table[-1] = table[-1], self._take()
            self.refs[src] -= 1
            copy = (src, table[-1])
        self.lengths[seq] = t + 1
        return table[-1], t % self.block_size, copy

    def fork(self, parent: Any, child: Any) -> None:
        """child starts as parent's copy: the same blocks, each one's reference count + 1."""
        _check_fork(self, parent, child)
        self.tables[child] = list(self.tables[parent])
        self.lengths[child] = self.lengths[parent]
        for b in self.tables[child]:
            self.refs[b] += 1

    def free(self, seq: Any) -> None:
        """Drop a finished sequence; blocks nobody uses any more go back to the free list."""
        _check_seq(self, seq)
        for b in self.tables.pop(seq):
            self.refs[b] -= 1
            if self.refs[b] == 0:
                self.free_blocks.append(b)
        del self.lengths[seq]

    def block_table(self, seq: Any) -> torch.Tensor:
        """The sequence's block ids as an int32 tensor, for paged_attention."""
        _check_seq(self, seq)
        return torch.tensor(self.tables[seq], dtype=torch.int32)

    def _take(self) -> int:
        if not self.free_blocks:
            raise MemoryError("out of KV blocks: free a sequence (or preempt one) first.")
        b = self.free_blocks.pop()
        self.refs[b] = 1
        return b


def kv_waste(lengths: Sequence[int], max_len: int, block_size: int) -> dict[str, float | int]:
    """KV slots reserved vs used for sequences of these lengths (tokens), two ways.

    contiguous: every sequence reserves max_len slots up front (its length is unknown when it
    starts); paged: ceil(length / block_size) * block_size slots. waste = 1 - used / reserved.
    Taught in notebooks/11_streaming_generation.ipynb, "8. PagedAttention".
    """
    _check_waste(lengths, max_len, block_size)
    used = sum(lengths)
    contiguous = len(lengths) * max_len
    paged = sum(-(-n // block_size) * block_size for n in lengths)
    return {
        "used_slots": used,
        "contiguous_slots": contiguous,
        "paged_slots": paged,
        "contiguous_waste": 1 - used / contiguous,
        "paged_waste": 1 - used / paged,
    }


def request_mix(n: int, seed: int = 0, max_len: int = 2048) -> list[tuple[int, int]]:
    """n (prompt, output) token counts shaped like chat traffic, capped at max_len in total.

    Log-normal lengths, medians 100 (prompt) and 220 (output) tokens, means about 165 and 300
    (the vLLM paper's ShareGPT trace averages 161 and 338): most requests are short, a few long.
    Taught in notebooks/11_streaming_generation.ipynb, "8. PagedAttention".
    """
    _check_mix(n, max_len, seed)
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randn(n, generator=gen, dtype=torch.float64).add(math.log(100)).exp()
    output = torch.randn(n, generator=gen, dtype=torch.float64).mul(0.8).add(math.log(220)).exp()
    mix = []
    for a, b in zip(prompt.tolist(), output.tolist(), strict=True):
        p = min(max(1, round(a)), max_len - 1)
        mix.append((p, min(max(1, round(b)), max_len - p)))
    return mix


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_table(cache: Any, block_table: Any, context_len: Any) -> None:
    if not isinstance(cache, torch.Tensor) or cache.ndim != 4:
        raise ValueError(
            "the cache must be a tensor (num_blocks, block_size, H, d), got "
            f"{tuple(getattr(cache, 'shape', ())) or type(cache).__name__}."
        )
    ok = isinstance(block_table, torch.Tensor) and block_table.dtype in (torch.int32, torch.int64)
    if not ok or block_table.ndim != 1:
        raise ValueError(
            "block_table must be a 1-D int32 or int64 tensor of block ids in sequence order, got "
            f"{getattr(block_table, 'dtype', type(block_table).__name__)} "
            f"{tuple(getattr(block_table, 'shape', ()))}."
        )
    num_blocks, block_size = cache.shape[:2]
    check_int(context_len, "context_len", low=1, high=len(block_table) * block_size)
    used = block_table[: -(-context_len // block_size)]
    if used.min() < 0 or used.max() >= num_blocks:
        raise ValueError(
            f"block_table's first {len(used)} entries (the blocks of {context_len} tokens) must be "
            f"block ids in 0..{num_blocks - 1}, got {used.tolist()}."
        )


def _check_paged(q: Any, k_cache: Any, v_cache: Any, scale: Any) -> None:
    shapes = [tuple(getattr(t, "shape", ())) for t in (q, k_cache, v_cache)]
    ok = all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in (q, k_cache, v_cache))
    ok = ok and len(shapes[0]) == 2 and len(shapes[1]) == 4 and shapes[1] == shapes[2]
    if not ok or shapes[1][2:] != shapes[0]:
        raise ValueError(
            "paged_attention needs float q (H, d) and k_cache, v_cache (num_blocks, block_size, "
            f"H, d) with the same H and d; got q {shapes[0]}, k_cache {shapes[1]}, "
            f"v_cache {shapes[2]}."
        )
    if scale is not None:
        check_positive(scale, "scale (None: 1 / sqrt(d))")


def _check_pool(num_blocks: Any, block_size: Any) -> None:
    check_int(num_blocks, "num_blocks", low=1, high=10**7)
    check_int(block_size, "block_size", low=1, high=10**5)


def _check_new(alloc: BlockAllocator, seq: Any, n_tokens: Any) -> None:
    _check_hashable(seq, "seq")
    if seq in alloc.tables:
        raise ValueError(f"seq={seq!r} already has blocks; free it first or use a new id.")
    capacity = len(alloc.refs) * alloc.block_size
    check_int(n_tokens, f"n_tokens (at most the pool's {capacity} slots)", low=1, high=capacity)
    need = -(-n_tokens // alloc.block_size)
    if need > len(alloc.free_blocks):
        raise MemoryError(
            f"{n_tokens} tokens need {need} blocks, only {len(alloc.free_blocks)} are free: free a "
            "finished sequence first (or build the allocator with more blocks)."
        )


def _check_seq(alloc: BlockAllocator, seq: Any, name: str = "seq") -> None:
    _check_hashable(seq, name)
    if seq not in alloc.tables:
        raise ValueError(
            f"{name}={seq!r} has no blocks (known: {list(alloc.tables)[:8]}); allocate it first "
            "with allocate(seq, n_tokens) (or fork it from a parent)."
        )


def _check_fork(alloc: BlockAllocator, parent: Any, child: Any) -> None:
    _check_seq(alloc, parent, "parent")
    _check_hashable(child, "child")
    if child in alloc.tables:
        raise ValueError(
            f"child={child!r} already has blocks; free it first or fork into a new id."
        )


def _check_hashable(seq: Any, name: str) -> None:
    try:
        hash(seq)
    except TypeError:
        raise ValueError(
            f"{name} must be a hashable sequence id (a str or an int), got {type(seq).__name__}."
        ) from None


def _check_waste(lengths: Any, max_len: Any, block_size: Any) -> None:
    if isinstance(lengths, str | dict) or not hasattr(lengths, "__len__"):
        raise ValueError(
            f"lengths must be a list of sequence lengths (tokens), got {type(lengths).__name__}."
        )
    check_nonempty(lengths, "lengths")
    check_int(max_len, "max_len", low=1)
    check_int(block_size, "block_size", low=1)
    for i, n in enumerate(lengths):
        check_int(n, f"lengths[{i}] (<= max_len={max_len})", low=1, high=max_len)


def _check_mix(n: Any, max_len: Any, seed: Any) -> None:
    check_int(n, "n", low=1, high=10**6)
    check_int(seed, "seed")
    check_int(max_len, "max_len", low=2)
