"""A real browser against `streamlit run`: Debian chromium driven by Playwright uploads a radiograph, sees the
score and the heatmap, opens every page (also by direct URL) and saves screenshots to tests/browser/screenshots/
(git-ignored)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MEDSIGHT_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "tests" / "browser" / "screenshots"
SITE_HOME = Path(tempfile.mkdtemp(prefix="medsight-home-"))  # $MEDSIGHT_HOME of the app under test
PAGES = {"Heatmap_viewer": "Heatmap viewer", "Clinical_notes": "Clinical notes", "Chat": "Chat about this case",
         "Model_status": "Model status"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(weights_ready):
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright")
    port = free_port()
    env = dict(os.environ, MEDSIGHT_PRELOAD="vgg16,fused_lungs", MEDSIGHT_CHAT_TIERS="extractive",
               MEDSIGHT_HOME=str(SITE_HOME))  # saved site profiles go to a throw-away folder, never the user's home
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser_page(app_url):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        yield page
        browser.close()


def test_upload_score_heatmap_and_every_page(app_url, browser_page, radiograph):
    page = browser_page
    path, _ = radiograph
    page.goto(app_url)
    page.get_by_text("Upload & score").first.wait_for()
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.locator("#risk-band").wait_for()
    band = page.locator("#risk-band").inner_text()
    assert band in ("LOW", "MEDIUM", "HIGH")
    page.get_by_text("Anomaly score").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(SHOTS / "1_upload_score.png"), full_page=True)

    # the heatmap page, reached through the sidebar navigation (keeps the session's study)
    page.locator("[data-testid=stSidebarNav] a", has_text="Heatmap viewer").click()
    page.get_by_role("heading", name="Heatmap viewer").wait_for()
    try:
        main = page.locator("[data-testid=stMain]")
        main.get_by_text("original (CLAHE)").wait_for()
        main.locator("[data-testid=stImageCaption]", has_text="gradcam").first.wait_for()  # the default detector offers Grad-CAM
        assert main.locator("[data-testid=stImage] img").count() >= 2  # the original beside an overlay
    finally:
        page.screenshot(path=str(SHOTS / "2_heatmap_viewer.png"), full_page=True)

    for slug, heading in PAGES.items():
        page.goto(f"{app_url}/{slug}")  # a direct URL: a fresh session without a study
        page.get_by_role("heading", name=heading).wait_for()
        assert page.locator("[data-testid=stException]").count() == 0
        page.screenshot(path=str(SHOTS / f"3_direct_{slug}.png"), full_page=True)
