"""Notebook 11: KV-cache speed-up for 256 new tokens, TTFT, and dynamic INT8 generation.

    python benchmarks/bench_generate.py

Prints markdown tables of ratios measured in this one run (warm-up, median, 1 thread: batch-1
decoding of this tiny model is fastest and most stable on one thread, as in notebook 11).
Target from the course: KV-cache tokens/s >= 4x the no-cache tokens/s for 256 new tokens.
"""

from __future__ import annotations

import torch

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
    print(f"threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
