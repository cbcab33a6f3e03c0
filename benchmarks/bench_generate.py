"""Notebook 11: KV cache, TTFT, INT8 (and where its time goes), speculative decoding, PagedAttention.

    python benchmarks/bench_generate.py

Prints markdown tables of ratios measured in this one run (warm-up, median, 1 thread: batch-1
decoding of this tiny model is fastest and most stable on one thread, as in notebook 11).
Targets from the course: KV-cache tokens/s >= 4x the no-cache tokens/s for 256 new tokens;
speculative decoding >= 1.8x the KV-cached target's tokens/s at identical greedy output
(reported as met or not, with the acceptance rate and the draft's relative cost that explain it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit import bench, data, env, generate, qat
from labkit.generate import gpt

NEW_TOKENS = 256
PROMPT = "Assignment statements are used to (re)bind names to values and"  # as notebook 11


def main(repeats: int = 3) -> None:
    env.setup(seed=0, threads=1)
    model, _ = gpt.load_char_gpt()
    stoi, _ = gpt.vocab()
    prompt = data.encode(PROMPT, stoi)
    print("## Streaming generation (11)\n")
    no_cache = generate.tokens_per_second(
        model, prompt, NEW_TOKENS, use_cache=False, repeats=repeats
    )
    cache = generate.tokens_per_second(model, prompt, NEW_TOKENS, use_cache=True, repeats=repeats)
    qmodel = generate.quantize_linear_int8(model)
    q_cache = generate.tokens_per_second(
        qmodel, prompt, NEW_TOKENS, use_cache=True, repeats=repeats
    )
    tmodel = qat.torch_int8(model)
    t_cache = generate.tokens_per_second(
        tmodel, prompt, NEW_TOKENS, use_cache=True, repeats=repeats
    )
    print("| measurement (greedy, 256 new tokens, 1 thread) | tokens/s | ratio |\n|---|---|---|")
    print(f"| no cache (fp32) | {no_cache:.0f} | 1.00 |")
    print(f"| KV cache (fp32) | {cache:.0f} | {cache / no_cache:.2f} |")
    print(f"| KV cache (INT8, from scratch) | {q_cache:.0f} | {q_cache / no_cache:.2f} |")
    print(f"| KV cache (INT8, PyTorch dynamic) | {t_cache:.0f} | {t_cache / no_cache:.2f} |")
    long_prompt = data.encode(data.load_text()[:256], stoi)
    for use_cache in (False, True):
        s = generate.stream_latency(model, long_prompt, 32, use_cache, repeats=3)
        print(
            f"\nTTFT with a 256-char prompt, use_cache={use_cache}: {s['ttft_ms']:.1f} ms, "
            f"inter-token {s['inter_token_ms']:.2f} ms"
        )
    fp = list(generate.generate(model, prompt, NEW_TOKENS))
    q8 = list(generate.generate(qmodel, prompt, NEW_TOKENS))
    print(
        f"\nINT8: greedy agreement {generate.greedy_agreement(fp, q8)}/{NEW_TOKENS} tokens, "
        f"val loss fp32 {gpt.val_loss(model):.4f} vs int8 {gpt.val_loss(qmodel):.4f} nats/char"
    )
    big = torch.nn.Sequential(torch.nn.Linear(4096, 4096)).eval()
    big_q = qat.torch_int8(big)
    x1 = torch.randn(1, 4096)
    with torch.no_grad():
        t32 = bench.latency(big, x1, warmup=5, repeats=30).median
        t8 = bench.latency(big_q, x1, warmup=5, repeats=30).median
    print(f"\nINT8 (PyTorch dynamic) speed-up on a 4096x4096 linear, 1 token: {t32 / t8:.2f}x")
    int8_parts()
    speculative(model, prompt)
    paged()
    print(f"\nthreads: {torch.get_num_threads()}")


def int8_parts() -> None:
    """torch._int_mm alone vs fp32, and the per-call quantisation inside Int8Linear."""
    print("\n## Where Int8Linear's time goes (speed-up over the fp32 matmul, IQR)\n")
    print(
        f"int8_matmul path: {'torch._int_mm' if generate.int_mm_is_exact() else 'int32 fallback'}\n"
    )
    print(
        "| M x K x N | torch._int_mm (codes ready) | quantize x only | Int8Linear |\n|---|---|---|---|"
    )
    for m, k, n in [(1, 96, 384), (32, 1024, 1024), (32, 4096, 4096)]:
        lin = torch.nn.Linear(k, n, bias=False)
        q8 = generate.Int8Linear(lin)
        x = torch.randn(m, k)
        w_t, x_q = lin.weight.detach().t().contiguous(), generate.quantize_rows(x)[0]
        c = bench.compare(
            {
                "fp32": lambda: x @ w_t,  # noqa: B023 (timed inside this iteration)
                "int_mm": lambda: torch._int_mm(x_q, q8.weight_q.t()),  # noqa: B023
                "quant": lambda: generate.quantize_rows(x),  # noqa: B023
                "all": lambda: q8(x),  # noqa: B023
            },
            baseline="fp32",
            rounds=7,
            repeats=20 if m == 1 else 3,
            threads=1,
        )
        cells = [
            f"{c.speedup[v]:.2f}x ({c.spread[v][0]:.2f}-{c.spread[v][1]:.2f})"
            for v in ("int_mm", "quant", "all")
        ]
        print(f"| {m} x {k} x {n} | " + " | ".join(cells) + " |")


def speculative(model: torch.nn.Module, prompt: torch.Tensor, n: int = 128) -> None:
    """Speculative decoding vs the KV-cached target alone, identical greedy output."""
    draft, _ = generate.load_draft_gpt()
    ref = list(generate.generate(model, prompt, n))
    print(f"\n## Speculative decoding ({n} new tokens, greedy, 1 thread)\n")
    fns = {"target alone": lambda: list(generate.generate(model, prompt, n))}
    rows = []
    for k in (1, 2, 4, 8):
        st: dict[str, int] = {}
        out = list(generate.speculative_generate(model, draft, prompt, n, k=k, stats=st))
        assert out == ref, "speculative greedy output differs from the target's"
        alpha = st["accepted"] / st["tested"]
        rows.append((k, alpha, n / st["target_calls"], generate.expected_tokens_per_call(alpha, k)))
        fns[f"k={k}"] = lambda k=k: list(
            generate.speculative_generate(model, draft, prompt, n, k=k)
        )
    fns["draft alone"] = lambda: list(generate.generate(draft, prompt, n))
    c = bench.compare(fns, baseline="target alone", rounds=5, repeats=1, warmup=1, threads=1)
    print(
        "| k | alpha | tokens per target call | expected | speed-up (IQR) |\n|---|---|---|---|---|"
    )
    for k, alpha, per_call, expected in rows:
        lo, hi = c.spread[f"k={k}"]
        print(
            f"| {k} | {alpha:.3f} | {per_call:.2f} | {expected:.2f} | {c.speedup[f'k={k}']:.2f}x ({lo:.2f}-{hi:.2f}) |"
        )
    best = max(c.speedup[f"k={k}"] for k in (1, 2, 4, 8))
    cost = 1 / c.speedup["draft alone"]
    print(
        f"\ndraft step = {cost:.2f} target steps; best speed-up {best:.2f}x: target >= 1.8x "
        f"{'met' if best >= 1.8 else 'not met'}"
    )


def paged(context: int = 1024, heads: int = 8, d: int = 64, block: int = 16) -> None:
    """One decode step of paged attention (shuffled blocks) vs SDPA on the contiguous cache."""
    g = torch.Generator().manual_seed(0)
    k, v = torch.randn(context, heads, d, generator=g), torch.randn(context, heads, d, generator=g)
    q = torch.randn(heads, d, generator=g)
    n_blocks = context // block
    table = torch.randperm(2 * n_blocks, generator=g)[:n_blocks]
    k_cache = torch.zeros(2 * n_blocks, block, heads, d)
    v_cache = torch.zeros(2 * n_blocks, block, heads, d)
    k_cache[table] = k.view(n_blocks, block, heads, d)
    v_cache[table] = v.view(n_blocks, block, heads, d)
    kt, vt = k.transpose(0, 1).contiguous(), v.transpose(0, 1).contiguous()  # (H, C, d)
    out = generate.paged_attention(q, k_cache, v_cache, table, context)
    ref = F.scaled_dot_product_attention(q[:, None], kt, vt)[:, 0]
    assert torch.allclose(out, ref, atol=1e-5), "paged attention differs from contiguous"
    c = bench.compare(
        {
            "contiguous (SDPA)": lambda: F.scaled_dot_product_attention(q[:, None], kt, vt),
            "paged (gather + attention)": lambda: generate.paged_attention(
                q, k_cache, v_cache, table, context
            ),
        },
        rounds=7,
        repeats=20,
        threads=1,
    )
    print(
        f"\n## PagedAttention decode step ({context} tokens, {heads} heads, d={d}, blocks of {block})\n"
    )
    print(c.report())


if __name__ == "__main__":
    main()
