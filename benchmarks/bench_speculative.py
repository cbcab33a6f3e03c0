"""Notebook 11, section 7: speculative decoding with a 1-layer GPT draft and an n-gram draft.

    python benchmarks/bench_speculative.py

For several prompts from the validation text (never seen by the n-gram counts), one thread:
the KV-cached target alone against speculative decoding with each draft, k chosen from the cost
model E(alpha, k) / (k c + 1) (alpha measured at k = 4, c = draft step / target step measured by
timing each draft alone). Prints alpha, c, the predicted and the measured speed-up (median and
IQR of bench.compare's interleaved rounds) per prompt, the median over prompts, and the verdict
against the course's target: >= 1.8x tokens/s at identical greedy output.
"""

from __future__ import annotations

import statistics

from labkit import bench, data, env, generate
from labkit.generate import gpt

NEW_TOKENS, PROMPT_CHARS, PROMPTS, TARGET = 96, 64, 8, 1.8


def val_prompts(n: int = PROMPTS) -> list[str]:
    """n prompts at evenly spaced offsets of the validation text (the last 10 %)."""
    text = data.load_text()
    val = text[int(len(text) * 0.9) :]
    step = (len(val) - PROMPT_CHARS) // n
    return [val[i * step : i * step + PROMPT_CHARS] for i in range(n)]


def best_k(alpha: float, c: float) -> tuple[int, float]:
    """The k in 1..8 with the highest predicted speed-up E(alpha, k) / (k c + 1), and that speed-up."""
    pred = {k: generate.expected_tokens_per_call(alpha, k) / (k * c + 1) for k in range(1, 9)}
    k = max(pred, key=pred.get)
    return k, pred[k]


def one_prompt(model, drafts: dict, text: str, rounds: int) -> dict[str, tuple]:
    """Per draft: (alpha, c, k, predicted, measured speed-up, IQR low, IQR high) for one prompt."""
    stoi, _ = gpt.vocab()
    prompt = data.encode(text, stoi)
    ref = list(generate.generate(model, prompt, NEW_TOKENS))
    fns = {"target": lambda: list(generate.generate(model, prompt, NEW_TOKENS))}
    for name, d in drafts.items():
        fns[f"{name} alone"] = lambda d=d: list(generate.generate(d, prompt, NEW_TOKENS))
    cost = bench.compare(fns, baseline="target", rounds=3, repeats=1, warmup=1, threads=1)
    fns, rows = {"target": fns["target"]}, {}
    for name, d in drafts.items():
        st: dict[str, int] = {}
        out = list(generate.speculative_generate(model, d, prompt, NEW_TOKENS, k=4, stats=st))
        assert out == ref, f"speculative greedy output with the {name} differs"
        alpha, c = st["accepted"] / st["tested"], 1 / cost.speedup[f"{name} alone"]
        rows[name] = (alpha, c, *best_k(alpha, c))
        fns[name] = lambda d=d, k=rows[name][2]: list(
            generate.speculative_generate(model, d, prompt, NEW_TOKENS, k=k)
        )
    cmp = bench.compare(fns, baseline="target", rounds=rounds, repeats=1, warmup=1, threads=1)
    return {n: (*row, cmp.speedup[n], *cmp.spread[n]) for n, row in rows.items()}


def main(rounds: int = 5) -> None:
    env.setup(seed=0, threads=1)
    model, _ = gpt.load_char_gpt()
    drafts = {
        "GPT draft": generate.load_draft_gpt()[0],
        "n-gram draft": generate.load_ngram_draft(),
    }
    print("## Speculative decoding (11): target alone vs GPT draft vs n-gram draft\n")
    print("| prompt | draft | alpha | c | k | predicted | measured (IQR) |")
    print("|---|---|---|---|---|---|---|")
    measured: dict[str, list[float]] = {name: [] for name in drafts}
    for text in val_prompts():
        for name, (alpha, c, k, pred, r, lo, hi) in one_prompt(model, drafts, text, rounds).items():
            measured[name].append(r)
            print(
                f"| {text[:24]!r} | {name} | {alpha:.2f} | {c:.3f} | {k} | {pred:.2f}x | "
                f"{r:.2f}x ({lo:.2f}-{hi:.2f}) |"
            )
    print()
    for name, ratios in measured.items():
        med, lo, hi = statistics.median(ratios), min(ratios), max(ratios)
        met = sum(r >= TARGET for r in ratios)
        verdict = "met" if med >= TARGET else "not met"
        print(
            f"{name}: median {med:.2f}x over {len(ratios)} prompts (range {lo:.2f}-{hi:.2f}x), "
            f"{met} of {len(ratios)} prompts >= {TARGET}x: target >= {TARGET}x {verdict}"
        )


if __name__ == "__main__":
    main()
