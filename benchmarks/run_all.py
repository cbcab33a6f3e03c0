"""Run every benchmark in this folder and write the course's headline numbers to REPORT.md.

    python benchmarks/run_all.py

Each benchmarks/bench_*.py prints markdown; this script runs them one after another (never in
parallel: they would slow each other down) and collects their output with the machine report.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    from labkit.core.env import format_report

    parts = [
        "# Benchmark report\n",
        f"Measured on {time.strftime('%Y-%m-%d')}; ratios from one run each.\n",
        "```\n" + format_report() + "\n```\n",
    ]
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"running {script.name} ...", flush=True)
        res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        if res.returncode != 0:
            failed.append(script.name)
            parts.append(f"## {script.name}: FAILED\n\n```\n{res.stderr[-2000:]}\n```\n")
        else:
            parts.append(res.stdout.strip() + "\n")
    (HERE / "REPORT.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'REPORT.md'}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
