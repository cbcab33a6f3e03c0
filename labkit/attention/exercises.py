"""Exercises of notebook 08: online softmax (read in one pass), one tile update of the forward
pass, one tile of the backward pass, and the HBM traffic of FlashAttention-1 vs -2.

The online-softmax checker watches HOW the learner's function reads x, not only what it returns:
torch.softmax and a two-pass softmax give the right numbers, but not the one-pass running max and
sum the exercise teaches. See _ReadWatch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from labkit import attention
from labkit.core.checks import Case, Exercise, close

INF = float("inf")


def _x(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# ---------------------------------------------------------------- 1. online softmax, one pass


def _softmax_cases() -> list[Case]:
    return [
        Case(
            (torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 2), label="x = [1, 2, 3, 4, 5], block_size=2"
        ),
        Case((_x(4, 9, seed=0), 4), label="a (4, 9) batch of rows, block_size=4"),
        Case(
            (torch.tensor([1000.0, 1001.0, 999.0, 1002.0]), 2),
            label="large values (exp overflows without the max), block_size=2",
        ),
        Case((torch.tensor([5.0, 1.0, 0.0, -3.0]), 1), label="largest value first, block_size=1"),
        Case(
            (torch.arange(12.0), 3),
            label="increasing values 0..11, block_size=3 (the max grows in every block)",
        ),
        Case(
            (torch.tensor([[-INF, -INF, 2.0, 0.5, -INF]]), 2),
            label="a first block that is all -inf (masked), block_size=2",
        ),
        Case(
            (torch.tensor([[1000.0, 1001.0, 1002.0], [0.0, 1.0, 2.0]]), 2),
            label="rows on very different scales ([[1000, 1001, 1002], [0, 1, 2]]: one max per row)",
        ),
        Case(
            (_x(2, 3, 17, seed=1, scale=50.0), 5),
            label="3-D input, values up to ~150, block_size=5",
        ),
        Case(
            (torch.tensor([[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]]), 2),
            label="a (2, 3) batch (softmax over the LAST dim), block_size=2",
        ),
    ]


VIEWS = {"__getitem__", "split", "chunk", "unbind", "narrow", "select", "tensor_split"}
COPIES = {"clone", "detach", "contiguous", "float", "double", "to", "type", "cpu"}
LAYOUT = {"cat", "concat", "concatenate", "stack", "hstack", "__setitem__", "copy_", "index_put_"}
SOFTMAX = {"softmax", "log_softmax", "_softmax", "softmin"}
REDUCE = {
    "sum", "amax", "amin", "max", "min", "mean", "logsumexp", "prod", "nansum", "norm", "cumsum",
    "logcumsumexp", "cummax", "std", "var", "median", "argmax", "argmin", "sort", "topk",
}  # fmt: skip
IN_PLACE = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"}


class _ReadWatch(TorchFunctionMode):
    """Sees every torch call while the learner's online_softmax(x, block_size) runs.

    It knows which columns of x each slice holds (x[..., a:b], x[..., j], x.split(b, -1), ...)
    and tags every tensor computed from x with the slices it came from and the pass ("sweep")
    in which they were read: a sweep restarts when x is read again from further left. It reports
    the first of: a softmax op on x; a reduction (max, sum, ...) over more than block_size
    columns at once; a third pass over x; a second pass that still combines columns (a max or
    sum, or a running total over columns) - the two-pass softmax. The final read that produces
    exp(x - m) / l column by column is a pass that combines nothing.
    """

    def __init__(self, x: torch.Tensor, block_size: int) -> None:
        super().__init__()
        self.n, self.block = x.shape[-1], block_size
        self.pieces: dict[int, tuple[Any, int, int]] = {id(x): (None, 0, self.n)}
        self.tags: dict[int, frozenset] = {}  # id(tensor) -> {(rows, lo, hi, sweep), ...}
        self.keep: list[Any] = [x]  # keeps every watched tensor alive: ids stay unique
        self.sweeps: dict[Any, list[int]] = {}  # rows -> [sweep number, leftmost column read]
        self.problem: str | None = None

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.problem is None:
            self._see(getattr(func, "__name__", ""), args, kwargs, out)
        return out

    def _see(self, name: str, args: Any, kwargs: Any, out: Any) -> None:
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        watched = [t for t in ins if id(t) in self.pieces or id(t) in self.tags]
        if not watched or name.startswith("new_") or name.endswith("_like"):
            return  # not about x, or only its shape and dtype
        if name in {"numpy", "tolist", "__array__"}:
            self.problem = f"it reads x outside torch (.{name}()): use torch ops on the tensor"
            return
        if not outs:
            return  # a shape, a dtype or a Python number: nothing read into a tensor
        base = self.pieces.get(id(args[0])) if args and isinstance(args[0], torch.Tensor) else None
        if base == (None, 0, self.n) and name in VIEWS:
            return self._slice(name, args, kwargs, outs)
        if base is not None and name in COPIES:
            for t in outs:
                self.pieces[id(t)] = base
                self.keep.append(t)
            return
        per_input = [self._tags_of(t) for t in ins]
        tags = frozenset().union(*per_input)
        self._judge(name, args, kwargs, per_input)
        for t in outs:
            self.tags[id(t)] = tags
            self.keep.append(t)
        if (name in IN_PLACE or (name.endswith("_") and not name.startswith("_"))) and ins:
            self.tags[id(ins[0])] = self.tags.get(id(ins[0]), frozenset()) | tags
            self.keep.append(ins[0])

    def _tags_of(self, t: torch.Tensor) -> frozenset:
        if id(t) not in self.pieces:
            return self.tags.get(id(t), frozenset())
        rows, lo, hi = self.pieces[id(t)]
        sweep = self.sweeps.setdefault(rows, [1, lo])
        if lo < sweep[1]:  # read again from further left: a new pass over x
            sweep[0] += 1
        sweep[1] = lo if lo < sweep[1] else max(sweep[1], lo)
        if sweep[0] > 2 and self.problem is None:
            self.problem = (
                "it reads x three times; online softmax reads it once for the max AND the sum "
                "together, and once more for the output"
            )
        return frozenset({(rows, lo, hi, sweep[0])})

    def _judge(self, name: str, args: Any, kwargs: Any, per_input: list[frozenset]) -> None:
        second = [frozenset(t for t in tags if t[3] >= 2) for tags in per_input]
        if name in SOFTMAX:
            self.problem = f"it calls torch's {name} on x: build it from a running max and sum"
        elif name in REDUCE and not (name in {"max", "min"} and len(per_input) > 1):
            x0 = args[0]
            dim = kwargs.get(
                "dim", args[1] if len(args) > 1 and not isinstance(args[1], torch.Tensor) else None
            )
            dims = (
                {d % max(x0.ndim, 1) for d in (dim if isinstance(dim, (tuple, list)) else [dim])}
                if dim is not None
                else None
            )
            over_last = dims is None or (x0.ndim - 1) in dims
            if x0.ndim and over_last and x0.shape[-1] == self.n > self.block:  # x's columns
                self.problem = (
                    f"it reduces {x0.shape[-1]} columns at once (`{name}`, but block_size is "
                    f"{self.block}): read x block by block and keep a running max and sum"
                )
            elif second[0]:
                self.problem = self._two_pass(name)
        elif name not in LAYOUT and len({s for s in second if s}) > 1:
            self.problem = self._two_pass(name)

    @staticmethod
    def _two_pass(name: str) -> str:
        return (
            f"after its first pass over x it still combines columns (`{name}` in a second pass): "
            "that is the two-pass softmax, max first and the sum after. Update the sum in the "
            "same pass as the max, rescaling it by exp(m_old - m_new) when the max grows"
        )

    def _slice(self, name: str, args: Any, kwargs: Any, outs: list[torch.Tensor]) -> None:
        """Record which columns of x each slice holds (rows: a key for a subset of rows)."""
        x, nd = args[0], args[0].ndim
        if name == "__getitem__":
            rows, lo, hi = _index_columns(args[1], nd, self.n)
            spans = [(rows, lo, hi)]
        elif name in ("narrow", "select"):
            dim = kwargs.get("dim", args[1]) % nd
            start = kwargs.get("start", kwargs.get("index", args[2])) % x.shape[dim]
            width = kwargs.get("length", args[3] if len(args) > 3 else 1) if name == "narrow" else 1
            spans = [
                (None, start, start + width) if dim == nd - 1 else (f"{name}{start}", 0, self.n)
            ]
        else:  # split, chunk, unbind, tensor_split: outputs in order along dim
            dim = (
                kwargs.get("dim", args[2] if len(args) > 2 else 0)
                if name != "unbind"
                else kwargs.get("dim", args[1] if len(args) > 1 else 0)
            )
            dim, spans, lo = dim % nd, [], 0
            for i, t in enumerate(outs):
                width = 1 if name == "unbind" else t.shape[dim]
                spans.append((None, lo, lo + width) if dim == nd - 1 else (f"{name}{i}", 0, self.n))
                lo += width
        for t, span in zip(outs, spans, strict=False):
            self.pieces[id(t)] = span
            self.keep.append(t)


def _index_columns(index: Any, ndim: int, n: int) -> tuple[Any, int, int]:
    """(rows key, lo, hi): which columns of the last dim x[index] keeps, and of which rows."""
    index = index if isinstance(index, tuple) else (index,)
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    full: list[Any] = []
    for i in index:
        full += [slice(None)] * (ndim - used) if i is Ellipsis else [] if i is None else [i]
    full += [slice(None)] * (ndim - len(full))
    last, lead = full[ndim - 1], full[: ndim - 1]
    rows = None if all(i == slice(None) for i in lead) else repr(lead)
    if isinstance(last, int):
        return rows, last % n, last % n + 1
    if isinstance(last, slice) and last.step in (None, 1):
        lo, hi, _ = last.indices(n)
        return rows, lo, max(lo, hi)
    return rows, 0, n


def _check_online_softmax(fn: Callable[..., Any]) -> str | None:
    """Run every case with _ReadWatch; a wrong way of reading x, or wrong values, is reported."""
    compare = close(atol=1e-6, rtol=1e-4)  # exp(x - lse) (a log-space answer) is ~1e-5 off
    for case in _softmax_cases():
        x, block = case.args
        expected = attention.online_softmax(x.clone(), block)
        mine = x.clone()
        with _ReadWatch(mine, block) as watch:
            got = fn(mine, block)
        if watch.problem:
            return f"on {case.label}: {watch.problem}."
        if not torch.equal(mine.nan_to_num(0.0), x.nan_to_num(0.0)):
            return f"on {case.label} your function changed x in place: work on a copy."
        if got is None:
            return f"returned None on {case.label} - did you forget `return`?"
        msg = compare(got, expected)
        if msg:
            return f"wrong on {case.label}: {msg}."
    return None


# ---------------------------------------------------------------- 2. one tile update (forward)


def _state(rows: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A plausible running state (o, m, l) after some earlier tiles."""
    o = _x(rows, d, seed=seed)
    m = _x(rows, seed=seed + 1)
    l = torch.rand(rows, generator=torch.Generator().manual_seed(seed + 2)) + 0.5  # noqa: E741
    return o, m, l


def _tile_cases() -> list[Case]:
    first = (torch.zeros(3, 2), torch.full((3,), -INF), torch.zeros(3))
    o, m, l = _state(3, 2, 10)  # noqa: E741
    bigger = _x(3, 4, seed=20) + 5.0  # this tile's scores exceed the running max
    masked = _x(3, 4, seed=21).masked_fill(torch.tensor([False, True, True, False]), -INF)
    # causal masking: the first key tile can be entirely in the future for some query rows
    row_masked = _x(3, 4, seed=22).masked_fill(torch.tensor([[False], [True], [False]]), -INF)
    return [
        Case(
            (*first, _x(3, 4, seed=0), _x(4, 2, seed=1)), label="the first tile (o=0, m=-inf, l=0)"
        ),
        Case(
            (o, m, l, _x(3, 4, seed=2) - 5.0, _x(4, 2, seed=3)), label="a tile with smaller scores"
        ),
        Case(
            (o, m, l, bigger, _x(4, 2, seed=4)), label="a tile whose scores raise the running max"
        ),
        Case((o, m, l, masked, _x(4, 2, seed=5)), label="a tile with masked (-inf) columns"),
        Case((*_state(5, 3, 30), _x(5, 1, seed=6), _x(1, 3, seed=7)), label="a tile one key wide"),
        Case(
            (*first, row_masked, _x(4, 2, seed=8)),
            label="the first tile with row 1 fully masked (it must stay o=0, m=-inf, l=0, no nan)",
        ),
        Case(
            (*_state(2, 3, 40), _x(2, 4, seed=9) + 100.0, _x(4, 3, seed=11)),
            label="scores 100 above the running max (exp would overflow without m_new)",
        ),
    ]


# ---------------------------------------------------------------- 3. one tile of the backward


def _backward_case(
    rows: int, keys: int, d: int, d_v: int, j0: int, j1: int, *, seed: int, lead: tuple = (),
    q_scale: float = 1.0, scale: float | None = None, causal_at: int | None = None,
) -> tuple[Any, ...]:  # fmt: skip
    """A tile (query rows, keys j0:j1) of a full attention row: lse and delta of the WHOLE row."""
    q = _x(*lead, rows, d, seed=seed, scale=q_scale)
    k, v = _x(*lead, keys, d, seed=seed + 1), _x(*lead, keys, d_v, seed=seed + 2)
    do = _x(*lead, rows, d_v, seed=seed + 3)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale  # (..., rows, keys) the full rows, for lse and delta
    full_mask = None
    if causal_at is not None:  # query rows sit at positions causal_at ... causal_at + rows - 1
        full_mask = attention.causal_tile_mask(causal_at, 0, rows, keys)
        s = s.masked_fill(~full_mask, -INF)
    lse = torch.logsumexp(s, -1)  # (..., rows)
    o = torch.softmax(s, -1) @ v  # (..., rows, d_v)
    delta = (do * o).sum(-1)  # (..., rows)
    mask = None if full_mask is None else full_mask[:, j0:j1]
    return (q, k[..., j0:j1, :], v[..., j0:j1, :], do, lse, delta, scale, mask)


def _backward_cases() -> list[Case]:
    return [
        Case(
            _backward_case(4, 12, 3, 3, 4, 8, seed=0), label="a 4 x 4 tile in the middle of 12 keys"
        ),
        Case(
            _backward_case(3, 10, 4, 2, 0, 5, seed=10),
            label="a 3 x 5 tile, d = 4, d_v = 2 (B_r != B_c: mind the transposes)",
        ),
        Case(
            _backward_case(4, 8, 3, 3, 4, 8, seed=20, causal_at=4),
            label="a causal tile on the diagonal (mask given: True = the query sees the key)",
        ),
        Case(
            _backward_case(3, 9, 4, 4, 3, 6, seed=30, lead=(2, 2)),
            label="leading (batch, heads) dims (2, 2)",
        ),
        Case(
            _backward_case(4, 8, 3, 3, 0, 4, seed=40, scale=0.3),
            label="scale = 0.3 (not 1/sqrt(d))",
        ),
        Case(
            _backward_case(3, 8, 4, 4, 4, 8, seed=50, q_scale=60.0),
            label="large scores (~100): exp(s) alone overflows, exp(s - lse) does not",
        ),
    ]


# ---------------------------------------------------------------- 4. HBM traffic and block sizes


def _traffic_cases() -> list[Case]:
    a100 = 192 * 1024 // 2  # 192 KiB of SRAM per SM, in fp16 elements
    return [
        Case((4096, 64, a100, "fa2"), label="N=4096, d=64, M=98,304 (A100 SRAM, fp16), fa2"),
        Case((4096, 64, a100, "fa1"), label="N=4096, d=64, M=98,304, fa1"),
        Case((1000, 64, a100, "fa2"), label="N=1000 (not a multiple of the blocks), fa2"),
        Case((781, 64, 100_000, "fa1"), label="N=781, M=100,000 (M / 4d = 390.6: round up), fa1"),
        Case((781, 64, 100_000, "fa2"), label="N=781, M=100,000, fa2"),
        Case((100, 16, 4096, "fa1"), label="N=100, d=16, M=4096 (B_r = d < B_c), fa1"),
        Case((300, 64, 1000, "fa2"), label="a tiny SRAM: M=1000, d=64 (blocks of 4 rows), fa2"),
    ]


EXERCISES = {
    "attention.online_softmax": Exercise(
        reference=attention.online_softmax,
        custom=_check_online_softmax,
        hint="Read x block by block, ONCE, for both statistics: each row keeps its own running max "
        "and running sum (shape x.shape[:-1]). When a block raises a row's max, the sum collected "
        "so far was computed against the old max and must be corrected before you add the block. "
        "Only then read x again, to write the output. Try a row whose first block is all -inf.",
        formula="for each block b = x[..., j:j+block_size]:  m_new = max(m, b.amax(-1));  "
        "l = l·exp(m − m_new) + exp(b − m_new[..., None]).sum(-1);  m = m_new.  Result: "
        "exp(x − m[..., None]) / l[..., None]. While m_new is −inf, subtract 0 instead "
        "(−inf − (−inf) is nan).",
    ),
    "attention.tile_update": Exercise(
        reference=attention.tile_update,
        cases=_tile_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="Find the new running max per row first; everything accumulated so far (o AND l) was "
        "computed against the old max and must shrink by the same factor. Do not divide by l "
        "here. A row whose scores are all -inf so far must stay o=0, m=-inf, l=0.",
        formula="m_new = max(m, s.amax(-1));  m_safe = 0 where m_new is −inf else m_new;  "
        "α = exp(m − m_safe);  p = exp(s − m_safe[..., None]);  "
        "return (α[..., None]·o + p @ v, m_new, α·l + p.sum(-1)).",
    ),
    "attention.backward_tile": Exercise(
        reference=attention.backward_tile,
        cases=_backward_cases,
        compare=close(atol=1e-5, rtol=1e-4),
        hint="This tile holds only some of the keys of each row: its probabilities are not a "
        "softmax over the tile, but come from the whole row's log-sum-exp, and the D you need is "
        "the whole row's (it is given). Masked entries have probability 0. Scores were scaled in "
        "the forward pass, so the chain rule scales dQ and dK too.",
        formula="s = q @ k.mT · scale (−inf where mask is False);  p = exp(s − lse[..., None]);  "
        "dv = p.mT @ do;  dp = do @ v.mT;  ds = p · (dp − delta[..., None]);  "
        "dq = ds @ k · scale;  dk = ds.mT @ q · scale.",
    ),
    "attention.hbm_traffic": Exercise(
        reference=attention.hbm_traffic,
        cases=_traffic_cases,
        compare=close(atol=0, rtol=0),
        hint="First the block sizes from the SRAM size (four blocks of d columns must fit, and "
        "B_r is also capped at d); round block counts UP. Then ask, for each loop order, which "
        "matrix stays on chip for the whole inner loop and which is re-read at every outer step. "
        "Count elements, not bytes.",
        formula="B_c = ⌈M/4d⌉, B_r = min(B_c, d), T_r = ⌈N/B_r⌉, T_c = ⌈N/B_c⌉.  fa2: q_read = Nd, "
        "k_read = v_read = T_r·Nd, o_read = 0, o_write = Nd.  fa1: q_read = T_c·Nd, k_read = "
        "v_read = Nd, o_read = T_c·Nd, o_write = (T_c + 1)·Nd (the initial O = 0 too).  "
        "total = the sum of the five; also return 'B_r' and 'B_c'.",
    ),
}
