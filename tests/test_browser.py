"""Real-browser test: every notebook with a live widget, run in JupyterLab in Chromium.

For each notebook whose code displays a widget (found from its source, so new chapters are
covered without editing this file): copy it into a scratch JupyterLab root, open it in
headless Chromium (Playwright), clear outputs, Run All Cells, wait until every code cell has
an execution count, check that no cell shows an error, then change every control of every
widget (slider: arrow keys on the handle; dropdown: another option; checkbox / button: click;
number box: a new value) and check that the widget's plotly figure (or, for a widget without
a figure such as the quiz, its text) changes. A screenshot is saved under the test's tmp dir
on failure.

Needs Chromium at /usr/bin/chromium (or $LABKIT_CHROMIUM; `.ci/run` installs Debian's) and the
`playwright` Python package (the ``browser`` fixture of tests/conftest.py, shared with
tests/test_site.py); it fails with a clear message when either is missing.
Deselect with `pytest -m "not browser"`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# Generous limits: the course machine is a shared 2-core CPU.
SERVER_START_S = 180
OPEN_S = 180
RUN_ALL_S = float(os.environ.get("LABKIT_BROWSER_RUN_S", "900"))
WIDGET_CHANGE_S = 90
# A code cell that displays a live widget: labkit's widgets, ipywidgets, a FigureWidget.
WIDGET_CODE = re.compile(
    r"labkit\.widgets|from\s+labkit\s+import[^\n]*\bwidgets\b|\bipywidgets\b|FigureWidget"
    r"|\w+_explorer\(|\bquiz\("
)
# Environment variables that put labkit's widgets into their static fallback.
STATIC_ENV = ("LABKIT_QUIET", "LABKIT_STATIC_WIDGETS", "PYTEST_CURRENT_TEST")
# Which front end: "lab" (JupyterLab, the default and CI's) or "notebook" (Notebook 7, for a
# manual check: `pip install notebook; LABKIT_BROWSER_UI=notebook pytest tests/test_browser.py`).
UI = os.environ.get("LABKIT_BROWSER_UI", "lab")
APP = {
    "lab": ("jupyterlab", "LabApp", "lab/tree"),
    "notebook": ("notebook", "JupyterNotebookApp", "notebooks"),
}
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b", re.M)


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def shown_code_cells(path: Path) -> int:
    """Code cells whose input JupyterLab draws (the Colab set-up cell is saved collapsed)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return sum(
        c["cell_type"] == "code"
        and not c.get("metadata", {}).get("jupyter", {}).get("source_hidden")
        for c in cells
    )


def has_widget(path: Path) -> bool:
    """True if a code cell (other than the Colab set-up cell) displays a live widget."""
    return any(WIDGET_CODE.search(src) for src in code_cells(path) if "google.colab" not in src)


WIDGET_NOTEBOOKS = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if has_widget(p))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server serving copies of the widget notebooks."""

    url: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def write_lab_settings(settings: Path) -> None:
    """Every cell in the DOM (no virtual scrolling); no news or update pop-ups."""
    files = {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        # What `python3 -m labkit setup` turns on: saved notebooks keep their widgets' state.
        "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    }
    for name, values in files.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server (it shuts its kernels down); kill its process group if it hangs."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("jupyterlab")
    root, cfg = base / "root", base / "config"
    root.mkdir()
    # Copies only: JupyterLab autosaves, and the committed notebooks keep their outputs.
    for nb in WIDGET_NOTEBOOKS:
        shutil.copy(nb, root / nb.name)
    write_lab_settings(cfg / "settings")
    env = {k: v for k, v in os.environ.items() if k not in STATIC_ENV}  # live widgets
    env.update(
        JUPYTER_CONFIG_DIR=str(cfg / "jupyter"),
        JUPYTER_DATA_DIR=str(cfg / "data"),
        JUPYTER_RUNTIME_DIR=str(cfg / "runtime"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    assert UI in APP, f"LABKIT_BROWSER_UI must be one of {sorted(APP)}, got {UI!r}"
    module, app, _ = APP[UI]
    if UI == "notebook" and importlib.util.find_spec("notebook") is None:
        pytest.fail("LABKIT_BROWSER_UI=notebook needs Notebook 7: pip install 'notebook>=7'")
    port, token = free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", module, "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--{app}.user_settings_dir={cfg / 'settings'}",
        f"--{app}.workspaces_dir={cfg / 'workspaces'}",
        f"--{app}.extension_manager=readonly",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                server.api("GET", "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"jupyter lab did not answer in {SERVER_START_S} s:\n{server.log_tail()}"
                    )
                time.sleep(1)
        yield server
    finally:
        stop(proc)


# ---------------------------------------------------------------- page helpers

# Execution state of the notebook: the code cells' prompts and the kernel indicator.
STATE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(e => e.textContent.trim());
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts, status: ind ? ind.getAttribute('data-status') : null};
}"""
# Text of every output a user would read as an error.
ERRORS_JS = """() => {
  const errs = [...document.querySelectorAll(
      '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText);
  const all = document.querySelector('.jp-Notebook').innerText;
  for (const m of all.matchAll(/Error (displaying|rendering) widget[^\\n]*/g)) errs.push(m[0]);
  return errs;
}"""
# What a widget shows: its plotly figures (minus hover labels) and its HTML/Output parts.
VIEW_JS = """el => ({
  plots: [...el.querySelectorAll('.js-plotly-plot .main-svg')].map(s => {
    const c = s.cloneNode(true);
    c.querySelectorAll('.hoverlayer').forEach(n => n.remove());
    return c.innerHTML;
  }).join('\\n'),
  html: [...el.querySelectorAll('.widget-html-content, .widget-htmlmath-content, .widget-output')]
    .map(h => h.innerHTML).join('\\n'),
})"""
WIDGET_OUTPUT = ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output"
STDERR = "application/vnd.jupyter.stderr"
CONTROLS = {
    "slider": ".noUi-handle",
    "dropdown": ".widget-dropdown select, .widget-select select",
    "checkbox": ".widget-checkbox input[type=checkbox]",
    "number/text box": ".widget-text input, .widget-textarea textarea",
    "toggle button": "button.widget-toggle-button",
    "button": "button.widget-button",
    "radio": ".widget-radio-box input[type=radio]",
}


def poll(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def menu(page: Any, top: str, command: str, took_effect: Callable[[], bool], what: str) -> None:
    """Click menu ``top`` > ``command``; click again if nothing happened (a lost click)."""
    for attempt in range(3):
        page.locator(".lm-MenuBar-item", has_text=top).first.click(timeout=120_000)
        page.locator(f".lm-Menu-item[data-command='{command}']").first.click(timeout=120_000)
        try:
            poll(took_effect, 30, what)
            return
        except AssertionError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")  # close a menu left open


def run_all(page: Any, name: str, n_code: int) -> list[str]:
    """Clear outputs, Run All Cells, wait until no cell is queued; return the prompts."""

    def prompts() -> list[str]:
        return page.evaluate(STATE_JS)["prompts"]

    # JupyterLab renders a long notebook's cells in batches: wait for all of them.
    poll(lambda: len(prompts()) == n_code, OPEN_S, f"{name}: all {n_code} code cells to render")
    menu(
        page, "Edit", "editmenu:clear-all",
        lambda: all(p == "[ ]:" for p in prompts()), f"{name}: outputs to clear",
    )  # fmt: skip
    # JupyterLab marks every queued cell [*] at once: seeing no change means a lost click.
    menu(
        page, "Run", "runmenu:run-all",
        lambda: any(p != "[ ]:" for p in prompts()), f"{name}: Run All to start",
    )  # fmt: skip
    t0, last = time.monotonic(), 0.0

    def finished() -> list[str] | None:
        nonlocal last
        state = page.evaluate(STATE_JS)
        ps = state["prompts"]
        done = sum(bool(re.fullmatch(r"\[\d+\]:", p)) for p in ps)
        if time.monotonic() - last > 30:
            last = time.monotonic()
            print(f"  {name}: {done}/{len(ps)} cells run after {last - t0:.0f} s", flush=True)
        queued = any(p == "[*]:" for p in ps)
        return ps if done and not queued and state["status"] == "idle" else None

    try:
        return poll(finished, RUN_ALL_S, f"{name} to finish Run All Cells", every=2)
    except AssertionError as e:
        raise AssertionError(f"{e}; cell prompts and kernel: {page.evaluate(STATE_JS)}") from None


def change(kind: str, control: Any) -> str:
    """Change one control the way a learner would; return what was done."""
    if kind == "slider":
        before = control.get_attribute("aria-valuetext")  # aria-valuenow is rounded
        control.focus()
        for key in ("ArrowRight", "ArrowLeft"):  # ArrowLeft when already at the maximum
            for _ in range(3):
                control.press(key)
            now = control.get_attribute("aria-valuetext")
            if now != before:
                return f"slider {before} -> {now}"
        box = control.bounding_box()  # then drag it with the mouse, as most learners do
        for dx in (60, -60):
            control.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            control.page.mouse.down()
            control.page.mouse.move(box["x"] + box["width"] / 2 + dx, box["y"] + 2, steps=8)
            control.page.mouse.up()
            now = control.get_attribute("aria-valuetext")
            if now != before:
                return f"slider dragged {before} -> {now}"
        raise AssertionError(f"slider did not move from {before} with the arrow keys or the mouse")
    if kind == "dropdown":
        n = control.locator("option").count()
        assert n >= 2, "dropdown has a single option: nothing to change"
        index = (control.evaluate("s => s.selectedIndex") + 1) % n
        control.select_option(index=index)
        return f"dropdown -> option {index}"
    if kind == "number/text box":
        old = control.input_value()
        try:
            new = repr(float(old) * 2 + 1)
        except ValueError:
            new = old + "x"
        control.fill(new)
        control.press("Enter")
        return f"box {old} -> {new}"
    control.click()
    return f"{kind} clicked"


def exercise_widget(page: Any, output: Any, name: str, index: int, shots: Path) -> int:
    """Change every control of one widget output; assert its figure/text follows each time."""
    output.scroll_into_view_if_needed()
    # Every figure of the widget drawn with its traces (an empty view is a bug).
    poll(
        lambda: output.evaluate(
            "el => [...el.querySelectorAll('.js-plotly-plot')]"
            ".every(p => p.querySelector('.main-svg') && p.data && p.data.length > 0)"
        ),
        60,
        f"{name} widget {index}: its plotly figure to render with data",
    )
    controls = [(k, c) for k, sel in CONTROLS.items() for c in output.locator(sel).all()]
    assert controls, f"{name} widget {index}: no slider/dropdown/checkbox/box/button found"
    for kind, control in controls:
        if not control.is_visible() or not control.is_enabled():
            continue
        before = output.evaluate(VIEW_JS)
        key = "plots" if before["plots"] else "html"
        assert before[key], f"{name} widget {index}: no plotly figure and no text to watch"
        done = change(kind, control)
        poll(
            lambda before=before, key=key: output.evaluate(VIEW_JS)[key] != before[key],
            WIDGET_CHANGE_S,
            f"{name} widget {index}: the {'figure' if key == 'plots' else 'text'} to change "
            f"after {done} (did the update callback fail? see the kernel log)",
        )
        print(f"  {name} widget {index}: {done}: {'figure' if key == 'plots' else 'text'} changed")
    output.screenshot(path=str(shots / f"{name}-widget{index}.png"))
    return len(controls)


def reopen_after_save(page: Any, lab: Lab, notebook: Path, n_widgets: int) -> None:
    """Save (what autosave does), stop the kernel, reopen: the widgets show, with their
    figures, from the saved state - not 'Error displaying widget: model not found'."""
    name = notebook.stem

    def saved_with_state() -> bool:
        meta = json.loads((lab.root / notebook.name).read_text()).get("metadata", {})
        return "widgets" in meta

    menu(
        page,
        "File",
        "docmanager:save",
        saved_with_state,
        f"{name}: the save to store the widget state",
    )
    lab.shut_down_kernels()
    page.goto(f"{lab.url}/{APP[UI][2]}/{notebook.name}?reset&token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=OPEN_S * 1000)
    outputs = page.locator(WIDGET_OUTPUT).filter(has=page.locator(".jupyter-widgets"))
    poll(lambda: outputs.count() >= n_widgets, 120, f"{name}: widgets to show after reopening")
    for i, o in enumerate(outputs.all()):
        o.scroll_into_view_if_needed()
        poll(
            lambda o=o: o.evaluate(VIEW_JS)["plots"] or o.evaluate(VIEW_JS)["html"],
            60,
            f"{name} widget {i}: its figure or text after reopening",
        )
    errors = [e for e in page.evaluate(ERRORS_JS) if "widget" in e]
    assert not errors, f"{name}: after reopening the saved notebook: {errors}"
    print(f"  {name}: reopened after save: {outputs.count()} widgets shown from saved state")


# ---------------------------------------------------------------- tests


def test_widget_notebooks_are_found() -> None:
    names = {p.stem for p in WIDGET_NOTEBOOKS}
    assert {"01_mixed_precision", "05_quantization_math", "interview_prep"} <= names, names
    assert not has_widget(NOTEBOOKS / "02_gradient_accumulation.ipynb")


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_widgets_in_jupyterlab(
    notebook: Path, lab: Lab, browser: Any, tmp_path: Path
) -> None:
    name = notebook.stem
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    console: list[str] = []
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    t0 = time.monotonic()
    try:
        page.goto(f"{lab.url}/{APP[UI][2]}/{notebook.name}?reset&token={lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=OPEN_S * 1000)
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=OPEN_S * 1000
        )
        t_open = time.monotonic()

        prompts = run_all(page, name, shown_code_cells(notebook))
        t_run = time.monotonic()
        errors = [e for e in page.evaluate(ERRORS_JS) if ERROR_TEXT.search(e)]
        assert not errors, f"{name}: error output after Run All:\n" + "\n---\n".join(errors)
        unrun = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
        assert not unrun, f"{name}: code cells {unrun} did not run (Run All stopped?)"
        text = page.locator(".jp-Notebook").inner_text()
        assert "Saved view at" not in text, f"{name}: widgets rendered static; live mode expected"

        # Right after Run All, with no re-run: every control moves and its figure follows.
        outputs = page.locator(WIDGET_OUTPUT).filter(has=page.locator(".jupyter-widgets"))
        poll(outputs.count, 60, f"{name}: a widget to render")
        n = sum(exercise_widget(page, o, name, i, tmp_path) for i, o in enumerate(outputs.all()))
        errors = [e for e in page.evaluate(ERRORS_JS) if ERROR_TEXT.search(e)]
        assert not errors, f"{name}: error output after moving widgets:\n" + "\n---\n".join(errors)
        print(
            f"{name}: opened {t_open - t0:.0f} s, Run All {t_run - t_open:.0f} s, "
            f"{n} controls checked in {time.monotonic() - t_run:.0f} s"
        )
        reopen_after_save(page, lab, notebook, outputs.count())
    except BaseException:
        shot = tmp_path / f"{name}-failure.png"
        try:
            errors = page.locator(f"{WIDGET_OUTPUT}[data-mime-type='{STDERR}']")
            if errors.count():  # show the first error, not wherever the notebook scrolled to
                errors.first.scroll_into_view_if_needed(timeout=10_000)
            page.screenshot(path=str(shot))
            print(f"\n{name}: screenshot of the failure: {shot}")
        except Exception as e:  # the page may be gone; keep the original failure
            print(f"\n{name}: no screenshot ({e})")
        if console:
            print(f"{name}: browser console errors:\n  " + "\n  ".join(console[-20:]))
        print(f"{name}: end of the JupyterLab log ({lab.log}):\n{lab.log_tail()}")
        raise
    finally:
        context.close()
        lab.shut_down_kernels()
