"""Exercise keys name what they teach.

Every key "<topic>.<name>" of labkit/<package>/exercises.py (chapter 00's labkit/measure/ holds
the "bench." keys) either names a public function of labkit.<topic> (labkit.bench for "bench.") that
passes that exercise's own checker - so the learner re-implements exactly that library
function - or is listed below with the reason it is not one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import labkit
from labkit import accumulation, checks, precision, prune

# Exercises a learner writes that have no library function of the same name and behaviour.
LEARNER_ONLY = {
    "bench.measure_latency": "returns the median seconds as a float; bench.latency returns a "
    "Timing (median, p90, ...)",
    "bench.conv2d_macs": "the MAC formula of one Conv2d from its sizes; bench.count_macs counts "
    "a whole model with forward hooks",
    "accumulation.clip_accumulated": "the one right clipping order with a GradScaler; the lesson "
    "compares orders (accumulation.clip_order_effect)",
    "deploy.parity_check": "returns (max_abs_diff, ok); deploy.parity returns a dict",
    "generate.top_k_probs": "generate.next_token_probs with the arguments (logits, k, temperature)",
    "qat.ste_fake_quant": "notebook 05's quant.fake_quantize (straight-through gradient), "
    "re-implemented in notebook 06",
}

# Exercises that are a special case of the library function they name: how to call the
# library function with the exercise's arguments.
SPECIAL_CASES: dict[str, Callable[..., Any]] = {
    # the loss is fixed to cross-entropy
    "accumulation.accumulate_gradients": lambda model, x, y, mb: accumulation.accumulate_gradients(
        model, torch.nn.functional.cross_entropy, x, y, mb
    ),
    # the format is given by its field widths (1 sign bit, E exponent bits, M mantissa bits)
    "precision.bits_to_float": lambda bits, e, m: precision.bits_to_float(
        bits, precision.FloatFormat("custom", e, m, torch.float32)
    ),
    # the conv -> conv case, without a BatchNorm between the two (bn=None)
    "prune.prune_conv_pair": lambda conv, nxt, keep: prune.prune_conv_pair(conv, None, nxt, keep)[
        ::2
    ],
}

# Old keys kept for notebooks that still call them: the same Exercise under the new key.
ALIASES: dict[str, str] = {}


def all_exercises() -> dict[str, checks.Exercise]:
    out: dict[str, checks.Exercise] = {}
    root = Path(labkit.__file__).parent
    for path in sorted(root.glob("*/exercises.py")):
        module = importlib.import_module("labkit." + path.parent.name + ".exercises")
        out.update(module.EXERCISES)
    return out


EXERCISES = all_exercises()


# Keys whose library function is core (an earlier chapter uses it), re-implemented in a later one.
CORE_HOME = {"deploy.calibration_reader": "onnx.calibration_reader"}  # used by 06, taught in 09


def library(key: str) -> Any:
    topic, name = CORE_HOME.get(key, key).split(".", 1)
    return getattr(getattr(labkit, topic), name, None)


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_key_names_the_library_function_it_teaches(key: str) -> None:
    if key in LEARNER_ONLY or key in ALIASES:
        return
    fn = SPECIAL_CASES.get(key) or library(key)
    topic, name = key.split(".", 1)
    assert callable(fn) and not name.startswith("_"), (
        f"{key}: labkit.{topic} has no public function {name!r}; rename the key to the library "
        "function the learner re-implements, or add it to LEARNER_ONLY with a reason."
    )
    result = checks.check(key, fn)
    assert result.passed, f"labkit.{topic}.{name} does not pass its own exercise: {result.message}"


def test_allow_lists_are_current() -> None:
    for key, reason in LEARNER_ONLY.items():
        assert key in EXERCISES and reason, key
        assert library(key) is None, f"{key} is a library function now: drop it from LEARNER_ONLY"
    for key in SPECIAL_CASES:
        assert callable(library(key)), key
    for old, new in ALIASES.items():
        assert EXERCISES[old] is EXERCISES[new], f"{old} must be the same Exercise as {new}"


def test_a_drifted_key_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a key naming no library function, or one that behaves otherwise."""
    from labkit import edge

    monkeypatch.setitem(EXERCISES, "edge.low_rank", EXERCISES["edge.low_rank_factors"])
    with pytest.raises(AssertionError, match="no public function 'low_rank'"):
        test_key_names_the_library_function_it_teaches("edge.low_rank")
    # a library function that no longer does what the exercise teaches (no SVD)
    monkeypatch.setattr(edge, "low_rank_factors", lambda w, r: (w[:, :r], w[:r]))
    with pytest.raises(AssertionError, match="does not pass its own exercise"):
        test_key_names_the_library_function_it_teaches("edge.low_rank_factors")
