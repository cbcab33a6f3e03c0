"""A sweep over every public function of every topic (each face's __all__): each required
argument replaced by one kind of nonsense at a time for all of them (text, None, a negative
count, a fraction, a dict) must end in a clear error naming one of its parameters (see
badinput_probe.py), unless REVIEWED below says why that call is legitimate or checked later.
A new public function is swept without anyone writing its cases."""

import importlib
import inspect
from pathlib import Path

import pytest
from badinput_probe import Case, outcome

TOPICS = sorted(
    p.name
    for p in (Path(__file__).resolve().parents[2] / "labkit").iterdir()
    if (p / "__init__.py").exists() and p.name not in ("core", "course")
)
NONSENSE = {"text": "bogus", "None": None, "negative": -3, "fraction": 2.5, "dict": {"a": 1}}
LAZY = "checks its arguments when first used: on entering the with block / at the loop's first step"
RECORD = "a plain NamedTuple record; every function that takes one checks it"
REVIEWED = {
    "attention.forced_backend": LAZY,
    "prune.head_gates": LAZY,
    "generate.generate": LAZY,
    "generate.generate_text": LAZY,
    "generate.speculative_generate": LAZY,
    **dict.fromkeys(
        ["distill.Difference", "edge.Codebook", "pipeline.Stage", "qat.LinearStats"]
        + ["quant.IntLinear", "quant.Pow2Codes", "quant.QParams"],
        RECORD,
    ),
    "deploy.parity/negative": "two numbers are two one-element arrays: they agree",
    "deploy.parity/fraction": "two numbers are two one-element arrays: they agree",
    "distributed.tensor_bytes/dict": "a dict of non-tensors holds 0 tensor bytes (a step count)",
    "edge.entropy_bits/dict": "a dict of symbol counts is what it takes",
    "edge.huffman_code/dict": "a dict of symbol counts is what it takes",
    "edge.over_budget/dict": "{name: value} and {name: limit} are what it takes",
    "generate.greedy_agreement/text": "two texts compare character by character",
    "generate.greedy_agreement/dict": "dicts iterate their keys: tokens",
    "generate.timed/text": "a text is a stream of characters",
    "generate.timed/dict": "a dict iterates its keys: a stream",
    "interview.Classic/text": "every field of a question is text",
    "interview.Question/text": "every field of a question is text",
    "interview.notebook_headings/text": "an unknown notebook stem has no headings (documented)",
    "interview.notebook_text/text": "an unknown notebook stem has no text (documented)",
    "interview.parse_key_terms/text": "a text without a key-terms table has no terms",
    "interview.section_link/text": "any stem and heading make a link",
    "prune.l1_loss_fn/fraction": "2.5 is a valid penalty weight",
    "quant.compute_qparams/negative": "xmin = xmax = -3 is a valid degenerate range",
    "quant.compute_qparams/fraction": "xmin = xmax = 2.5 is a valid degenerate range",
    "quant.quantize_multiplier/fraction": "M = 2.5 is a valid multiplier (a negative shift)",
}


def swept() -> list[Case]:
    cases = []
    for topic in TOPICS:
        face = importlib.import_module(f"labkit.{topic}")
        for name in getattr(face, "__all__", []):
            fn = getattr(face, name)
            try:
                sig = inspect.signature(fn)
            except (TypeError, ValueError):
                continue  # not a function (a table, a constant)
            params = list(sig.parameters.values())
            required = [
                p
                for p in params
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if not callable(fn) or not required:
                continue
            for label, bad in NONSENSE.items():
                key = f"{topic}.{name}"
                if key in REVIEWED or f"{key}/{label}" in REVIEWED:
                    continue
                kwargs = {p.name: bad for p in required}
                cases.append(
                    Case(
                        key,
                        f"every required argument {label}",
                        lambda f=fn, k=kwargs: f(**k),
                        tuple(p.name for p in params),
                        max_s=10.0,
                    )  # fmt: skip
                )
    return cases


CASES = swept()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    assert outcome(case) == "clear"


def test_the_reviewed_list_names_real_functions_and_kinds() -> None:
    for key in REVIEWED:
        name, _, kind = key.partition("/")
        topic, _, fn = name.partition(".")
        assert fn in importlib.import_module(f"labkit.{topic}").__all__, key
        assert kind in ("", *NONSENSE), key


def test_the_sweep_covers_every_topic() -> None:
    assert {c.fn.split(".")[0] for c in CASES} >= set(TOPICS) - {"measure"}
    assert len(CASES) > 1500
