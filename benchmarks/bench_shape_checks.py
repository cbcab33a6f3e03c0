"""What does a shape check cost in an inner loop? One online-softmax tile update, three ways.

    python benchmarks/bench_shape_checks.py

The decision it backs (CONTRIBUTING.md, "Lesson first"): shapes go in comments on the line and
one `_check_...` guard, not jaxtyping annotations checked by beartype, because the checked
decorator costs more per call than the tile update itself at decode sizes. jaxtyping and
beartype are not course dependencies: without them the last column is skipped with a notice.
"""

from __future__ import annotations

import torch

from labkit.core import bench, env


def step(m, l, acc, s, v):  # noqa: E741  (m, l: running max and sum, as in the lesson)
    m_new = torch.maximum(m, s.amax(-1))  # (B, Br)
    p = torch.exp(s - m_new[..., None])  # (B, Br, Bc)
    a = torch.exp(m - m_new)  # (B, Br)
    return m_new, a * l + p.sum(-1), a[..., None] * acc + p @ v  # (B, Br), (B, Br, d)


def _check_step(m, l, acc, s, v):  # noqa: E741
    if s.shape[:2] != m.shape or v.shape[-1] != acc.shape[-1] or l.shape != m.shape:
        raise ValueError("s (B, Br, Bc), v (B, Bc, d) must match m, l (B, Br), acc (B, Br, d)")


def guarded(m, l, acc, s, v):  # noqa: E741
    _check_step(m, l, acc, s, v)
    return step(m, l, acc, s, v)


def variants() -> dict[str, object]:
    out = {"plain": step, "one-line guard": guarded}
    try:
        from beartype import beartype
        from jaxtyping import Float, jaxtyped
    except ImportError:
        print("jaxtyping/beartype not installed: `pip install jaxtyping beartype` to time them")
        return out
    T = torch.Tensor

    @jaxtyped(typechecker=beartype)
    def typed(
        m: Float[T, "b r"], l: Float[T, "b r"], acc: Float[T, "b r d"],  # noqa: E741, F722
        s: Float[T, "b r c"], v: Float[T, "b c d"],  # noqa: F722
    ):  # fmt: skip
        return step(m, l, acc, s, v)

    out["jaxtyping+beartype"] = typed
    return out


def main() -> None:
    env.setup(seed=0, threads=2)
    print("| tile (B, Br, Bc, d) | variant | time / plain (median, IQR) |\n|---|---|---|")
    for shape in [(1, 1, 1, 8), (4, 64, 64, 32)]:
        b, r, c, d = shape
        args = (torch.zeros(b, r), torch.zeros(b, r), torch.zeros(b, r, d))
        args += (torch.randn(b, r, c), torch.randn(b, c, d))
        fns = {k: (lambda f=f, a=args: f(*a)) for k, f in variants().items()}
        res = bench.compare(fns, baseline="plain", rounds=15, repeats=200)
        for name in fns:
            if name != "plain":
                lo, hi = res.spread[name]  # speed-ups t(plain) / t(name): invert for the cost
                cost = f"{1 / res.speedup[name]:.2f}x ({1 / hi:.2f}-{1 / lo:.2f})"
                print(f"| {shape} | {name} | {cost} |")


if __name__ == "__main__":
    main()
