"""Rebuild the course: re-execute every notebook in place and save it with its outputs.

    python -m labkit.course.build_notebooks            # all notebooks, in course order
    python -m labkit.course.build_notebooks 03 05      # only those whose name starts with 03 / 05

Before running, the first code cell of each notebook is (re)written as the Colab setup
cell, built from the repository URL in pyproject.toml. Progress bars are off and widgets
render as static figures (LABKIT_QUIET=1). Wall time per notebook goes to
notebooks/build_times.json (the README's time-to-run column).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import nbformat
import tomllib
from nbclient import NotebookClient

from labkit.core.paths import NOTEBOOKS, ROOT, notebook_paths

TIMES = NOTEBOOKS / "build_times.json"
COLAB_MARK = "# @title Colab set-up"


def repo_url() -> str:
    """The repository URL, kept in one place: pyproject.toml [project.urls] Repository."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


def colab_cell_source(url: str | None = None) -> str:
    """The first code cell of every notebook: installs the course on Colab, else does nothing.

    Saved collapsed (JupyterLab: source_hidden; Colab: a form showing only its title)."""
    url = url or repo_url()
    return f"""{COLAB_MARK} (runs only on Google Colab; elsewhere it does nothing)
import sys

if "google.colab" in sys.modules:  # fetch the course, install it, turn the widgets on
    import os
    import subprocess

    cmd = "git clone -q --depth 1 {url} /content/course; cd /content/course && pip install -q -r requirements.txt"
    subprocess.run(cmd, shell=True, check=True)
    sys.path.insert(0, "/content/course")
    os.chdir("/content/course/notebooks")
    from google.colab import output

    output.enable_custom_widget_manager()"""


def set_colab_cell(nb: nbformat.NotebookNode) -> None:
    """Make the Colab setup cell the first code cell, right after the title cell."""
    nb.cells = [
        c
        for c in nb.cells
        if not (c.cell_type == "code" and c.source.startswith((COLAB_MARK, "# Colab setup")))
    ]
    cell = nbformat.v4.new_code_cell(colab_cell_source())
    cell.metadata.update({"jupyter": {"source_hidden": True}, "cellView": "form"})
    nb.cells.insert(1, cell)


PLOTLY = "application/vnd.plotly.v1+json"
CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")


def add_static_images(nb: nbformat.NotebookNode, width: int = 820, height: int = 460) -> int:
    """Put a PNG beside every plotly figure output, so GitHub, nbviewer and Colab's preview
    (which cannot run plotly.js) show the figure. Uses kaleido with the system Chromium
    (never a downloaded browser). Returns the number of images added."""
    import base64

    import kaleido
    import plotly.graph_objects as go
    import plotly.io as pio

    if not os.path.exists(CHROMIUM):
        raise SystemExit(
            f"static images need Chromium at {CHROMIUM} (apt-get install chromium, or set "
            "LABKIT_CHROMIUM); the build does not download a browser."
        )
    os.environ.setdefault("BROWSER_PATH", CHROMIUM)
    outputs = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if PLOTLY in o.get("data", {})
    ]
    if not outputs:
        return 0
    kaleido.start_sync_server(silence_warnings=True)
    warnings.filterwarnings("ignore", message="The kopts argument is ignored")
    try:
        for o in outputs:
            spec = o["data"][PLOTLY]
            fig = go.Figure(spec, skip_invalid=True)
            w = int(fig.layout.width or width)
            h = int(fig.layout.height or height)
            png = pio.to_image(fig, format="png", width=w, height=h, scale=1)
            o["data"]["image/png"] = base64.b64encode(png).decode("ascii")
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
    return len(outputs)


TIME_LINE = re.compile(r"\*\*Time to run:\*\* [^·\n]*")


def set_time_line(nb: nbformat.NotebookNode, seconds: float) -> None:
    """The title cell's first-screen line says how long this build took (README map: same)."""
    title = nb.cells[0]
    title.source = TIME_LINE.sub(
        f"**Time to run:** {round(seconds)} s on the 2-core machine that built it "
        "(up to a few times longer on an older laptop) ",
        title.source,
    )


def build(path: Path, timeout: int = 600) -> float:
    """Execute one notebook in place; return its wall time in seconds (to 0.1 s)."""
    nb = nbformat.read(path, as_version=4)
    set_colab_cell(nb)
    for c in nb.cells:
        c.metadata.pop("execution", None)
        if "id" not in c:
            c["id"] = nbformat.v4.new_code_cell().id
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    os.environ["LABKIT_QUIET"] = "1"
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    t0 = time.perf_counter()
    client.execute()
    seconds = round(time.perf_counter() - t0, 1)  # what build_times.json keeps
    set_time_line(nb, seconds)
    nb.metadata.pop("widgets", None)  # live widget state: megabytes, and stale once saved
    add_static_images(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    prefixes = sys.argv[1:] if argv is None else argv
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    for path in notebook_paths(prefixes):
        print(f"building {path.name} ...", flush=True)
        times[path.name] = build(path)
        print(f"  {times[path.name]:.1f} s", flush=True)
    TIMES.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
