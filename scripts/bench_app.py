"""Benchmark the app as a user meets it and print the numbers:

1. time from `streamlit run` to a usable first page (the upload widget visible in a real browser),
2. time from upload to the first score on screen (the first score includes loading the backbone if the background
   load has not finished),
3. memory with every model loaded: the registry loading all models in priority order in one process
   (resident memory and, on CUDA, the allocator's count), with each model's load time and footprint.

    .venv/bin/python scripts/bench_app.py [--image PATH] [--skip-browser] [--json]

Steps 1-2 need Debian chromium and Playwright (`/usr/bin/chromium`, or MEDSIGHT_CHROMIUM); without them only step 3
runs. The image defaults to the first normal dev radiograph in ../shared/data/cxr.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def default_image() -> Path | None:
    manifest = REPO.parent / "shared" / "data" / "cxr" / "manifest.csv"
    if not manifest.is_file():
        return None
    import csv

    with open(manifest, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] == "dev" and row["label"] == "normal":
                return manifest.parent / row["file"]
    return None


def rss_mb(pid: int, children: bool = True) -> float:
    import psutil

    proc = psutil.Process(pid)
    procs = [proc] + (proc.children(recursive=True) if children else [])
    return sum(p.memory_info().rss for p in procs) / 2**20


def bench_browser(image: Path, chromium: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MEDSIGHT_CHAT_TIERS=os.environ.get("MEDSIGHT_CHAT_TIERS", "gemini,local,extractive"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    out = {}
    try:
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("streamlit did not start within 300 s")
        out["server_healthy_s"] = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.set_default_timeout(600_000)
            page.goto(url)
            page.locator("input[type=file]").first.wait_for(state="attached")
            page.get_by_text("Upload a chest radiograph").wait_for()
            out["first_page_usable_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            page.locator("input[type=file]").first.set_input_files(str(image))
            page.locator("#risk-band").wait_for()
            out["upload_to_first_score_s"] = time.perf_counter() - t1
            out["start_to_first_score_s"] = time.perf_counter() - t0
            out["server_rss_after_first_score_mb"] = rss_mb(proc.pid)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def bench_all_models() -> dict:
    from medsight.registry import build_app_registry

    t0 = time.perf_counter()
    before = rss_mb(os.getpid(), children=False)
    registry = build_app_registry()
    registry.start_background().join()
    status = registry.status()
    return {"all_models_load_s": time.perf_counter() - t0, "rss_before_mb": before,
            "rss_all_models_mb": rss_mb(os.getpid(), children=False), "gpu_used_mb": status["gpu_used_mb"],
            "budget_mb": status["budget_mb"], "device": status["device"], "models": status["models"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results: dict = {}
    image = args.image or default_image()
    chromium = Path(os.environ.get("MEDSIGHT_CHROMIUM", "/usr/bin/chromium"))
    if args.skip_browser or image is None or not chromium.exists():
        print(f"browser timings skipped ({'--skip-browser' if args.skip_browser else 'no image' if image is None else f'no {chromium}'})")
    else:
        results.update(bench_browser(image, chromium))
    results.update(bench_all_models())
    if args.json:
        print(json.dumps(results, indent=1, default=float))
        return 0
    for key in ("server_healthy_s", "first_page_usable_s", "upload_to_first_score_s", "start_to_first_score_s"):
        if key in results:
            print(f"{key:34s} {results[key]:8.2f} s")
    if "server_rss_after_first_score_mb" in results:
        print(f"{'server_rss_after_first_score_mb':34s} {results['server_rss_after_first_score_mb']:8.0f} MB")
    print(f"{'all_models_load_s':34s} {results['all_models_load_s']:8.2f} s")
    print(f"{'rss_all_models_mb':34s} {results['rss_all_models_mb']:8.0f} MB (process before loading: {results['rss_before_mb']:.0f} MB)")
    print(f"{'gpu_used_mb':34s} {results['gpu_used_mb']:8.0f} MB of a {results['budget_mb']:.0f} MB budget on {results['device']}")
    print(f"\n{'model':16s} {'state':12s} {'device':7s} {'MB':>7s} {'load s':>7s}  note")
    for m in results["models"]:
        load = f"{m['load_s']:.2f}" if m["load_s"] is not None else "-"
        print(f"{m['model']:16s} {m['state']:12s} {m['device']:7s} {m['memory_mb']:7.0f} {load:>7s}  {m['note'][:70]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
