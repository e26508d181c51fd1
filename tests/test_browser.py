"""The notebooks as a person uses them: JupyterLab in headless Chromium, driven by Playwright.

Needs Debian's chromium at /usr/bin/chromium and the playwright package (its own browser download is
not used). Without them the tests skip, except in CI, where they fail. Screenshots of every step go
to artifacts/browser/, with the JupyterLab log.
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

import cl_course

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sync_playwright = None

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
WIDGET = ".jp-OutputArea-output > .widget-vbox"  # the demo's outermost box
# A typical wrong EWC importance: the square of each batch's mean gradient, not the mean of squared
# per-sample gradients. The self-check names this mistake.
WRONG_FISHER = '''def fisher_diagonal(model, batches):
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        for n, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            fisher[n] += g.pow(2)
        count += 1
    return {n: f / count for n, f in fisher.items()}'''


def require(ok, why):
    # .ci/run sets CL_COURSE_REQUIRE_DATA; a CI that lost its browser must not pass by skipping
    if not ok:
        if os.environ.get("CI") or os.environ.get("CL_COURSE_REQUIRE_DATA"):
            pytest.fail(f"{why} (required in CI)")
        pytest.skip(why)


def api(base, token, path, method="GET"):
    request = urllib.request.Request(f"{base}/{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def start_lab(tmp, env, log):
    """JupyterLab on 127.0.0.1 on a port the OS picks (read back from the runtime dir); returns the
    process and its base URL once /api/status answers."""
    token = secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp / 'root'}", "--ServerApp.allow_root=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return server, None, token
        info = next((tmp / "runtime").glob("jpserver-*.json"), None)
        if info:
            base = f"http://127.0.0.1:{json.loads(info.read_text())['port']}"
            try:
                api(base, token, "api/status")
                return server, base, token
            except OSError:
                pass
        time.sleep(0.2)
    return server, None, token


def stop_lab(server, base, token, runtime):
    """Kernels first, through the API; then the server's process group; then any kernel left over
    (kernels run in sessions of their own, outside the group: their command line names the runtime dir)."""
    try:
        for kernel in api(base, token, "api/kernels") if base else []:
            api(base, token, f"api/kernels/{kernel['id']}", method="DELETE")
    except OSError:  # the server does not answer: the sweep at the end stops its kernels
        pass
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    except ProcessLookupError:  # it had exited (a failed start)
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(runtime).encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except OSError:  # gone already
            pass


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    require(sync_playwright is not None, "playwright is not installed (pip install -e '.[dev]')")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory, data_root):
    """JupyterLab serving a copy of notebooks/ (so that nothing it saves lands in the repo), with Jupyter's
    and the demo's per-user folders in a temp dir: an empty demo cache, so Run really trains. It needs
    `browser` only to start after it: nothing starts when the browser is missing."""
    tmp = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", tmp / "root" / "notebooks")
    notification = tmp / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no news toast over the page
    env = os.environ | {
        "CL_COURSE_DATA": str(Path(data_root).resolve()), "CL_COURSE_PROFILE": "quick",
        "XDG_CACHE_HOME": str(tmp / "cache"), "IPYTHONDIR": str(tmp / "ipython"),
        # the venv's kernelspec and widget extension are still found: they are under sys.prefix
        "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
    with open(ARTIFACTS / "jupyterlab.log", "w") as log:
        server, base, token = start_lab(tmp, env, log)
        try:
            assert base, f"JupyterLab did not start; see {ARTIFACTS / 'jupyterlab.log'}"
            yield SimpleNamespace(url=lambda path: f"{base}/{path}?reset&token={token}",
                                  demo_cache=tmp / "cache" / "cl-course" / "demo")
        finally:
            stop_lab(server, base, token, tmp / "runtime")


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    page.screenshot(path=ARTIFACTS / f"{request.node.name}-last.png")  # where it stopped, when it fails
    context.close()


def shot(page, name):
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def open_notebook(page, lab, name):
    page.goto(lab.url(f"lab/tree/notebooks/{name}"))
    # cells run before the kernel is connected can start a second kernel and be lost with the first
    expect(page.get_by_title(f"Change kernel for {name}")).to_have_text(re.compile(r"\| Idle$"), timeout=120_000)
    return page.locator(".jp-NotebookPanel").filter(visible=True)


def code_cell(notebook, source):
    return notebook.locator(".jp-CodeCell").filter(has=notebook.page.locator(".jp-InputArea", has_text=source))


def run_cell(cell):
    cell.locator(".jp-InputArea .cm-content").click()
    cell.page.keyboard.press("Shift+Enter")


def rendered_demo(demo):
    """(Run button, status, images) of the demo widget `demo`, once its controls have rendered."""
    run = demo.get_by_role("button", name="Run", exact=True)
    status, images = demo.locator(".widget-html-content"), demo.locator("img")
    expect(run).to_be_visible(timeout=120_000)
    for control in ("scenario", "methods", "protocol", "train subset", "λ ewc", "λ scp"):
        expect(demo.get_by_label(control)).to_be_visible()
    expect(demo.locator(".widget-hslider")).to_have_count(2)
    return run, status, images


def test_demo_controls_shipped_curves_run_and_errors(lab, page):
    notebook = open_notebook(page, lab, "demo_forgetting_curves.ipynb")
    shot(page, "demo-1-opened")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    demo = notebook.locator(WIDGET)
    run, status, images = rendered_demo(demo)
    expect(notebook).not_to_contain_text("Loading widget")
    expect(notebook).not_to_contain_text("Error displaying widget")
    # the shipped HW14 run: average accuracy, forgetting curves, accuracy matrix; nothing trained
    expect(status).to_contain_text("Showing the shipped HW14 run")
    expect(images).to_have_count(3)
    shipped = images.first.get_attribute("src")
    demo.scroll_into_view_if_needed()
    shot(page, "demo-2-controls-and-shipped-curves")

    demo.get_by_label("λ ewc").fill("-1")
    demo.get_by_label("λ ewc").press("Enter")
    run.click()
    expect(status).to_contain_text("lambda for ewc must be >= 0")
    expect(status.locator("span")).to_have_css("color", "rgb(176, 0, 32)")
    shot(page, "demo-3-error-message")
    demo.get_by_label("λ ewc").fill("100")
    demo.get_by_label("λ ewc").press("Enter")

    demo.get_by_label("methods").select_option(["baseline", "ewc"])
    for slider in ("tasks", "epochs"):  # to their minimum: 2 tasks, 1 epoch
        demo.locator(".widget-hslider", has_text=slider).get_by_role("slider").press("Home")
    demo.get_by_label("train subset").select_option(label="300")
    shot(page, "demo-4-settings")
    run.click()
    expect(status).to_have_text("Done: baseline, ewc (2 tasks x 1 epoch, 300 training images per task).",
                                timeout=180_000)
    expect(images).to_have_count(3)
    assert images.first.get_attribute("src") != shipped, "the plot was not redrawn"
    assert len(list(lab.demo_cache.glob("*.json"))) == 2, "Run did not train both methods"
    shot(page, "demo-5-trained")

    # Split MNIST class-IL: its methods and its shipped curves at once, and Run looks those up
    trained = images.first.get_attribute("src")
    demo.get_by_label("scenario").select_option(label="Split MNIST, class-IL")
    expect(status).to_contain_text("Showing the shipped Split MNIST class-IL runs")
    expect(images).to_have_count(3)
    expect(images.first).not_to_have_attribute("src", trained)
    expect(demo.get_by_label("iterations")).to_be_visible()
    expect(demo.get_by_label("methods").locator("option", has_text="icarl")).to_have_count(1)
    run.click()
    expect(status).to_contain_text("Shipped runs: baseline, ")
    demo.scroll_into_view_if_needed()
    shot(page, "demo-6-split-mnist-class-il")

    # callback errors would be tracebacks in an output or in JupyterLab's log console
    expect(notebook).not_to_contain_text("Traceback")
    expect(page.locator(".jp-LogConsoleStatusItem")).to_be_hidden()


def test_student_notebook_runs_and_a_self_check_names_the_mistake(lab, page):
    notebook = open_notebook(page, lab, "hw14_lifelong_learning.ipynb")
    shot(page, "student-1-opened")
    setup = code_cell(notebook, "# Set-up: install the course package")
    run_cell(setup)
    expect(setup.locator(".jp-OutputArea")).to_contain_text(f"cl_course {cl_course.__version__}", timeout=120_000)
    start = code_cell(notebook, "course.start(PROFILE)")
    run_cell(start)
    expect(start.locator(".jp-OutputArea")).to_contain_text("profile quick: 5 tasks x 2 epochs", timeout=120_000)
    shot(page, "student-2-set-up")

    fisher = code_cell(notebook, "def fisher_diagonal")
    fisher.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(WRONG_FISHER)  # as pasted: no auto-indent or bracket closing
    page.keyboard.press("Shift+Enter")
    check = code_cell(notebook, 'selfcheck.check("fisher_diagonal"')
    run_cell(check)
    failure = check.locator(".jp-OutputArea")
    expect(failure).to_contain_text("SelfCheckError: fisher_diagonal: ", timeout=60_000)
    expect(failure).to_contain_text("Likely mistake: looks like the square of the batch-mean gradient")
    check.scroll_into_view_if_needed()
    shot(page, "student-3-self-check-failure")
