"""Your progress through the course, kept on this machine only.

Every `labkit.checks.exercise(...)` run records (exercise key, passed, time), and the interview
quiz records what you marked as known, in one small JSON file under your user data directory
(`$LABKIT_PROGRESS_DIR`, else `$XDG_DATA_HOME/labkit`, else `~/.local/share/labkit`): never in
the repository, never sent anywhere. It survives kernel restarts and `git pull`.

    python -m labkit progress          one line per notebook: a bar, the exercises still open
    python -m labkit progress --reset  forget everything

Nothing is recorded while tests and notebook builds run (LABKIT_QUIET=1) or with
LABKIT_PROGRESS=off. A damaged file is set aside (renamed) with a notice, never a crash.
Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from labkit.core.paths import notebook_paths

EXERCISE_CALL = re.compile(r"""checks\.exercise\(\s*["']([\w.]+)["']""")


def progress_file() -> Path:
    """Where progress is kept (see the module docstring)."""
    base = os.environ.get("LABKIT_PROGRESS_DIR") or os.environ.get("XDG_DATA_HOME")
    folder = Path(base) if base else Path.home() / ".local" / "share"
    return (
        folder if os.environ.get("LABKIT_PROGRESS_DIR") else folder / "labkit"
    ) / "progress.json"


def enabled() -> bool:
    return os.environ.get("LABKIT_PROGRESS", "on") != "off" and not os.environ.get("LABKIT_QUIET")


def load() -> dict:
    """The saved progress ({"exercises": {...}, "quiz": {...}}); a damaged file is set aside."""
    path = progress_file()
    empty = {"exercises": {}, "quiz": {}}
    if not path.exists():
        return empty
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("exercises"), dict) or not isinstance(data.get("quiz"), dict):
            raise ValueError("unexpected layout")
        return data
    except (OSError, ValueError, AttributeError) as exc:
        aside = path.with_name(f"progress.damaged-{int(time.time())}.json")
        try:
            path.rename(aside)
            print(f"labkit: the progress file was damaged ({exc}); kept as {aside}, starting anew.")
        except OSError:
            print(f"labkit: the progress file {path} is damaged ({exc}) and cannot be moved.")
        return empty


def _save(data: dict) -> None:
    path = progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)  # atomic: a crash mid-write never leaves half a file


def record_exercise(key: str, passed: bool) -> None:
    """Remember the latest result of exercise ``key`` (a pass is kept once earned)."""
    if not enabled():
        return
    try:
        data = load()
        was = data["exercises"].get(key, {})
        data["exercises"][key] = {
            "passed": bool(passed or was.get("passed")),
            "tries": int(was.get("tries", 0)) + 1,
            "last": time.strftime("%Y-%m-%d %H:%M"),
        }
        _save(data)
    except OSError as exc:  # a read-only home, a full disk: the notebook goes on
        print(f"labkit: progress not saved ({exc}).")


def record_quiz(marks: dict[int, bool], total: int) -> None:
    """Remember the interview quiz: questions marked known, out of ``total``."""
    if not enabled():
        return
    try:
        data = load()
        data["quiz"] = {"known": sum(marks.values()), "marked": len(marks), "total": total}
        _save(data)
    except OSError as exc:
        print(f"labkit: progress not saved ({exc}).")


def course_exercises() -> dict[str, list[str]]:
    """notebook stem -> the exercise keys its checker cells use, in order."""
    out = {}
    for path in notebook_paths():
        cells = json.loads(path.read_text()).get("cells", [])
        code = "\n".join("".join(c["source"]) for c in cells if c.get("cell_type") == "code")
        out[path.stem] = list(dict.fromkeys(EXERCISE_CALL.findall(code)))
    return out


def report(width: int = 20) -> str:
    """One line per notebook: a bar of passed exercises and the ones still open; the quiz."""
    data = load()
    done = {k for k, v in data["exercises"].items() if v.get("passed")}
    lines = []
    for stem, keys in course_exercises().items():
        if not keys:
            continue
        n = sum(k in done for k in keys)
        bar = "#" * round(width * n / len(keys)) + "-" * (width - round(width * n / len(keys)))
        still = [k for k in keys if k not in done]
        lines.append(
            f"{stem:32s} [{bar}] {n}/{len(keys)}" + (f"  open: {', '.join(still)}" if still else "")
        )
    quiz = data["quiz"]
    if quiz:
        lines.append(f"interview quiz: {quiz['known']} of {quiz['total']} questions marked known")
    else:
        lines.append("interview quiz: not taken yet (notebooks/interview_prep.ipynb)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`python -m labkit progress [--reset]`."""
    if "--reset" in argv:
        progress_file().unlink(missing_ok=True)
        print(f"progress cleared ({progress_file()})")
        return 0
    print(report())
    print(f"(kept in {progress_file()})")
    return 0
