"""The instructor's demo in the classic notebook 6.5.7 with ipywidgets 7.7.1 and widgetsnbextension
3.6.10, the versions Colab has (where an Output widget does not render), in headless Chromium driven
by Playwright.

The server runs in a fresh virtual environment on top of `.venv-colab` (`make colab-env`) into which
the instructor's wheel from `python -m grader release` is installed, as an instructor would install
it on Colab. Screenshots go to artifacts/browser/classic-*.png with the server's log.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import COLAB, colab_overlay
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, api, rendered_demo, require, stop_lab

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sync_playwright = None

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
DEMO = "demo_forgetting_curves.ipynb"


def instructor_environment(tmp):
    """A virtual environment seeing .venv-colab's packages, with the instructor's wheel installed."""
    done = subprocess.run([sys.executable, "-m", "grader", "release", "--repo", "test/classic", "--out",
                           str(tmp / "release")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wheel = next((tmp / "release-instructor").glob("cl_course-*.whl"))
    python = colab_overlay(tmp / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    return python


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def classic(tmp_path_factory, data_root):
    """The classic notebook server on 127.0.0.1 serving a copy of the demo, with Jupyter's, IPython's and
    the demo's per-user folders in a temp dir (an empty demo cache: Run really trains)."""
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    require(sync_playwright is not None, "playwright is not installed (pip install -e '.[dev]')")
    require(COLAB.exists(), f"{COLAB} is missing: run `make colab-env`")
    tmp = tmp_path_factory.mktemp("classic")
    python = instructor_environment(tmp)
    (tmp / "root").mkdir()
    shutil.copy(ROOT / "notebooks" / DEMO, tmp / "root" / DEMO)
    token, port = os.urandom(16).hex(), free_port()
    env = os.environ | {
        "CL_COURSE_DATA": str(Path(data_root).resolve()), "XDG_CACHE_HOME": str(tmp / "cache"),
        "IPYTHONDIR": str(tmp / "ipython"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        # the widgets nbextension and its enabling config live under .venv-colab, not this venv's prefix
        "JUPYTER_PATH": str(COLAB.parents[1] / "share" / "jupyter"),
        "JUPYTER_CONFIG_PATH": str(COLAB.parents[1] / "etc" / "jupyter")}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "classic-notebook.log", "w") as log:
        server = subprocess.Popen(
            [python, "-m", "notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--NotebookApp.port_retries=0", f"--NotebookApp.token={token}", f"--notebook-dir={tmp / 'root'}",
             "--allow-root"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    api(base, token, "api/status")
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                pytest.fail(f"the classic notebook did not start; see {ARTIFACTS / 'classic-notebook.log'}")
            yield base, token, tmp / "cache" / "cl-course" / "demo"
        finally:
            stop_lab(server, base, token, tmp / "runtime")


def assert_shown_whole(page, images):
    """The demo is not in the classic notebook's scroll box (which an output taller than 100 lines gets unless
    its cell says "scrolled": false): its output area holds every figure."""
    for image in images.all():  # loaded, so the output area has its full height
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("img => img.naturalHeight") > 0
    expect(page.locator(".output_scroll")).to_have_count(0)
    area = page.locator("div.output:has(.widget-vbox)").bounding_box()
    last = images.last.bounding_box()
    assert last["y"] + last["height"] <= area["y"] + area["height"] + 1, (last, area)


def test_the_demo_renders_and_trains_in_the_classic_notebook_with_colabs_widgets(classic):
    base, token, cache = classic
    console = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(30_000)
        page.on("console", lambda message: console.append((message.type, message.text)))
        try:
            page.goto(f"{base}/notebooks/{DEMO}?token={token}")
            expect(page.locator("#kernel_indicator_icon.kernel_idle_icon")).to_be_attached(timeout=120_000)
            page.screenshot(path=ARTIFACTS / "classic-1-opened.png")
            page.click("#celllink")
            page.click("#run_all_cells")

            demo = page.locator(".output_area .widget-vbox").first
            run, status, images = rendered_demo(demo)
            expect(images).to_have_count(3)
            expect(status).to_contain_text("Showing the shipped HW14 run")
            shipped = images.first.get_attribute("src")
            demo.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "classic-2-shipped-curves.png")
            assert_shown_whole(page, images)

            demo.get_by_label("methods").select_option(["baseline", "ewc"])
            for slider in demo.locator(".widget-hslider .ui-slider-handle").all():  # tasks and epochs to 2 and 1
                slider.press("Home")
            demo.get_by_label("train subset").select_option(label="300")
            run.click()
            expect(status).to_have_text("Done: baseline, ewc (2 tasks x 1 epoch, 300 training images per task).",
                                        timeout=180_000)
            assert images.first.get_attribute("src") != shipped, "the plot was not redrawn"
            assert len(list(cache.glob("*.json"))) == 2, "Run did not train both methods"
            page.screenshot(path=ARTIFACTS / "classic-3-trained.png")
            assert_shown_whole(page, images)

            for text in ("Traceback", "Loading widget", "Error displaying widget", "Could not create"):
                expect(page.locator("#notebook")).not_to_contain_text(text)
        finally:
            page.screenshot(path=ARTIFACTS / "classic-last.png")
            browser.close()
    broken = [text for kind, text in console if kind == "error" and ("widget" in text.lower() or "deserialize" in text)]
    assert not broken, broken
