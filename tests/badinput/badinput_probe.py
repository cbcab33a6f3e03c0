"""An independent probe of bad input (issue 18, section 5): does every learner-callable function
answer a bad argument with one clear sentence?

A case is one call with one bad argument. Its outcome is
- ``clear``: a ValueError or labkit MissingDependency (the house's two error types, CONTRIBUTING
  "Bad input") raised by labkit's own code (the innermost frame is under ``labkit/``: a torch
  error raised by a C function that labkit called does not count) whose message names the
  parameter;
- ``unclear``: any other exception (a raw torch / numpy / Python traceback, or labkit's own error
  that does not name the parameter);
- ``silent``: the call returned (a wrong or meaningless result, no error);
- ``slow``: the call ran past ``max_s`` seconds (a huge allocation or loop before any check).

The test files ``test_bad_input_<group>.py`` beside this one hold the cases and assert ``clear``
for each; ``python tests/badinput/badinput_probe.py`` prints the share that is clear per topic.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABKIT = HERE.parent.parent / "labkit"


@dataclass(frozen=True)
class Case:
    """One bad call: ``fn`` names the function (``topic.name``), ``what`` the bad input."""

    fn: str
    what: str
    call: Callable[[], object]
    param: str | tuple[str, ...]  # the parameter the message must name (or any of these)
    max_s: float = 5.0

    @property
    def id(self) -> str:
        return f"{self.fn}: {self.what}"


def outcome(case: Case) -> str:
    """``clear``, or ``unclear: ...`` / ``silent: ...`` / ``slow: ...`` saying what happened."""
    start = time.perf_counter()
    try:
        result = case.call()
    except Exception as exc:  # noqa: BLE001 - classifying every exception is the point
        took = time.perf_counter() - start
        frames = traceback.extract_tb(exc.__traceback__)
        ours = bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(LABKIT)
        ours = ours and not _from_torch(exc)
        params = (case.param,) if isinstance(case.param, str) else case.param
        named = any(re.search(rf"(?<![\w]){re.escape(p)}(?![\w])", str(exc)) for p in params)
        is_clear = (isinstance(exc, ValueError) or _missing_dependency(exc)) and ours and named
        if took > case.max_s:
            return f"slow: {took:.1f} s before {type(exc).__name__}: {str(exc)[:120]}"
        if is_clear:
            return "clear"
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        return f"unclear: {type(exc).__name__} at {where}: {str(exc)[:160]}"
    took = time.perf_counter() - start
    if took > case.max_s:
        return f"slow: {took:.1f} s, then returned {type(result).__name__}"
    return f"silent: returned {type(result).__name__} {str(result)[:80]!r}"


def _missing_dependency(exc: BaseException) -> bool:
    return type(exc).__name__ == "MissingDependency"


def _from_torch(exc: BaseException) -> bool:
    """torch's own argument errors, raised in C under a labkit frame: 'multinomial(): ...'."""
    return re.match(r"\w+\(\)( got| argument|: argument)", str(exc)) is not None


def all_cases() -> dict[str, list[Case]]:
    """Every test file's CASES, by file stem."""
    found = {}
    for path in sorted(HERE.glob("test_bad_input_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        found[path.stem] = module.CASES
    return found


def main() -> None:
    """Print, per topic, how many cases end in a clear error, and every case that does not."""
    sys.path.insert(0, str(HERE))
    per_topic: dict[str, list[int]] = {}
    misses = []
    for cases in all_cases().values():
        for case in cases:
            got = outcome(case)
            tally = per_topic.setdefault(case.fn.split(".")[0], [0, 0])
            tally[0] += got == "clear"
            tally[1] += 1
            if got != "clear":
                misses.append(f"  {case.id}  ->  {got}")
    clear = sum(t[0] for t in per_topic.values())
    total = sum(t[1] for t in per_topic.values())
    for topic, (c, n) in sorted(per_topic.items()):
        print(f"{topic:14s} {c:4d} / {n:4d} clear")
    print(f"{'all':14s} {clear:4d} / {total:4d} clear ({100 * clear / max(total, 1):.1f} %)")
    print("\n".join(misses))


if __name__ == "__main__":
    main()
