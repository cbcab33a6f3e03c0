"""Command line: ``python -m labkit doctor``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["doctor"]:
        from labkit.env import format_report

        print(format_report())
        return 0
    print("usage: python -m labkit doctor")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
