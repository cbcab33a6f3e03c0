"""usage: python3 -m labkit <command>   (run from the repository root)

python3 -m labkit setup      make .venv, install the course (CPU torch on CPU-only machines), open JupyterLab
python3 -m labkit test       run every test: unit tests, notebooks (native + another instruction set), browser
python -m labkit doctor      what this machine has, and a one-line verdict
python -m labkit gpu-check   run every GPU path of the course and print a table
python -m labkit reset NN    put notebook NN back to the course's version (yours is kept in my_work/)
python -m labkit progress    your exercises and quiz, per notebook (--reset to clear)
python -m labkit site        build the course website into _site/ from the saved notebooks (offline)
python -m labkit classroom   release OUT | grade SUBMISSIONS | guide   (for teachers)
python -m labkit export-html OUT   the saved notebooks as HTML with offline math (OUT/<name>.html)
"""

from __future__ import annotations

import sys

USAGE = __doc__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cmd, rest = (args[0], args[1:]) if args else ("", [])
    if cmd in ("setup", "test", "reset"):
        from labkit.course import cli  # standard library only

        return getattr(cli, cmd)(rest)
    if cmd == "progress":
        from labkit.core.progress import main as progress  # standard library only

        return progress(rest)
    if cmd == "site":
        from labkit.course.site import main as site

        return site(rest)
    if cmd == "export-html":
        from labkit.course.export_html import main as export_html

        return export_html(rest)
    if cmd == "classroom":
        from labkit.course.classroom import main as classroom

        return classroom(rest)
    if cmd == "doctor":
        from labkit.core.env import doctor

        return doctor()
    if cmd == "gpu-check":
        from labkit.course.gpu_check import main as gpu_check

        return gpu_check(rest)
    print(USAGE)
    return 0 if cmd in ("-h", "--help", "help") else 2


if __name__ == "__main__":
    raise SystemExit(main())
