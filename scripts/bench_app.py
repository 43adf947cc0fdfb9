"""Benchmark the app as a user meets it and print the numbers:

1. time from `streamlit run` to a usable first page (the upload widget visible in a real browser),
2. time from upload to the first score on screen (the first score includes loading the backbone if the background
   load has not finished),
3. memory with every model loaded: the registry loading all models in priority order in one process
   (resident memory and, on CUDA, the allocator's count), with each model's load time and footprint;
4. with `--sessions N [N ...]`, instead: N browser sessions at once against one fresh server (per N), each uploading
   a different real radiograph: time to the risk band and to the heatmaps (median / max), heatmap errors, each
   session's score against `medsight score` on the same file, and the server's peak resident memory;
5. with `--gradcam-cost`: what one Grad-CAM costs with its hooks on a private module tree (the fix for concurrent
   sessions) against hooks on the shared backbone, and the alternatives (a full deepcopy of the backbone).

    .venv/bin/python scripts/bench_app.py [--image PATH] [--skip-browser] [--json]
    nice -n 10 .venv/bin/python scripts/bench_app.py --sessions 1 6
    .venv/bin/python scripts/bench_app.py --gradcam-cost

Browser steps need Debian chromium and Playwright (`/usr/bin/chromium`, or MEDSIGHT_CHROMIUM; never `playwright
install`). Images default to dev radiographs in ../shared/data/cxr (one per label in turn, so HIGH films are among
them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


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


def dev_images(n: int) -> list[Path]:
    """n different dev radiographs, one label after another (normal, pneumonias, covid), from the manifest."""
    manifest = REPO.parent / "shared" / "data" / "cxr" / "manifest.csv"
    if not manifest.is_file():
        return []
    import csv

    by_label: dict[str, list[Path]] = {}
    with open(manifest, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] == "dev":
                by_label.setdefault(row["label"], []).append(manifest.parent / row["file"])
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in by_label.values()):
        out += [files[i] for files in by_label.values() if i < len(files)]
        i += 1
    return out[:n]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (what the work costs, whatever else the machine runs)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def rss_mb(pid: int, children: bool = True) -> float:
    import psutil

    proc = psutil.Process(pid)
    procs = [proc] + (proc.children(recursive=True) if children else [])
    return sum(p.memory_info().rss for p in procs) / 2**20


@contextmanager
def streamlit_server(extra_env: dict | None = None):
    """`streamlit run app.py` on a free local port, without a file watcher; yields (process, url, seconds to healthy)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MEDSIGHT_CHAT_TIERS": os.environ.get("MEDSIGHT_CHAT_TIERS", "gemini,local,extractive"), **(extra_env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none",
                             "--browser.gatherUsageStats", "false"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
            if proc.poll() is not None or time.perf_counter() - t0 > 300:
                raise RuntimeError("streamlit did not start within 300 s")
        yield proc, url, time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class PeakRSS:
    """Samples a process's resident memory (with its children) every `every` seconds on a thread; `.peak` in MB."""

    def __init__(self, pid: int, every: float = 0.25):
        self.pid, self.every, self.peak, self._stop = pid, every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except Exception:  # noqa: BLE001 - the process ended
                return
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def bench_browser(image: Path, chromium: Path) -> dict:
    from playwright.sync_api import sync_playwright

    out = {}
    t0 = time.perf_counter()
    with streamlit_server() as (proc, url, healthy_s), sync_playwright() as p:
        out["server_healthy_s"] = healthy_s
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
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
    return out


# -- many sessions at once -------------------------------------------------------------------------------------------
async def _wait_for_models(browser, url: str, timeout_s: float) -> float:
    """Open the Model status page until it no longer says it is loading (the registry's background load is done)."""
    page = await browser.new_page()
    t0 = time.perf_counter()
    try:
        await page.goto(f"{url}/Model_status")
        while time.perf_counter() - t0 < timeout_s:
            await page.get_by_role("heading", name="Model status").wait_for(timeout=300_000)
            await page.wait_for_timeout(1500)
            if await page.get_by_text("Loading in the background").count() == 0:
                break
            await page.reload()
    finally:
        await page.close()
    return time.perf_counter() - t0


async def _open(browser, url: str, timeout_ms: int):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})  # its own cookies: its own session
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    await page.goto(url)
    await page.locator("input[type=file]").first.wait_for(state="attached")
    return page


async def _session(page, image: Path, index: int) -> dict:
    rec: dict = {"session": index, "image": image.name}
    t0 = time.perf_counter()
    await page.locator("input[type=file]").first.set_input_files(str(image))
    await page.locator("#risk-band, #risk-band-none").first.wait_for()
    rec["to_risk_band_s"] = time.perf_counter() - t0
    band = page.locator("#risk-band")
    rec["band"] = (await band.inner_text()).strip() if await band.count() else None
    value = page.locator("[data-testid=stMetric]", has_text="Anomaly score").locator("[data-testid=stMetricValue]")
    if rec["band"] is not None:  # a scored film: its score follows the band on the page
        await value.first.wait_for()
    rec["app_score"] = float((await value.first.inner_text()).strip()) if await value.count() else None
    t1 = time.perf_counter()
    await page.get_by_role("link", name="Heatmap viewer").first.click()
    await page.get_by_role("heading", name="Heatmap viewer").wait_for()
    main = page.locator("[data-testid=stMain]")
    failed = main.locator("[data-testid=stAlert]", has_text="failed").or_(main.locator("[data-testid=stException]"))
    await main.locator("[data-testid=stImageCaption]", has_text="gradcam").or_(failed).first.wait_for()
    rec["to_heatmaps_s"] = time.perf_counter() - t1
    rec["upload_to_heatmaps_s"] = time.perf_counter() - t0
    rec["maps"] = [c.strip() for c in await main.locator("[data-testid=stImageCaption]").all_inner_texts()]
    rec["heatmap_errors"] = [e.strip()[:300] for e in await failed.all_inner_texts()]
    return rec


async def _sessions(url: str, pid: int, images: list[Path], chromium: Path, warm: bool, timeout_s: float) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {"models_loaded_s": None}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        if warm:
            out["models_loaded_s"] = await _wait_for_models(browser, url, timeout_s)
        pages = await asyncio.gather(*[_open(browser, url, int(timeout_s * 1000)) for _ in images])
        out["rss_before_uploads_mb"], cpu0, t0 = rss_mb(pid), cpu_seconds(pid), time.perf_counter()
        records = await asyncio.gather(*[_session(pg, im, i) for i, (pg, im) in enumerate(zip(pages, images))],
                                       return_exceptions=True)
        out["rss_after_mb"], out["server_cpu_s"] = rss_mb(pid), cpu_seconds(pid) - cpu0
        out["wall_s"] = time.perf_counter() - t0
        await browser.close()
    out["records"] = [r if isinstance(r, dict) else {"session": i, "image": images[i].name, "error": f"{type(r).__name__}: {r}"}
                      for i, r in enumerate(records)]
    return out


def cli_scores(images: list[Path]) -> dict[str, float | None]:
    """`medsight score --json` on the files: the reference each session's score must match."""
    cli = Path(sys.executable).with_name("medsight")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-c", "from medsight.cli import main; raise SystemExit(main())"]
    run = subprocess.run(cmd + ["score", "--json", *map(str, images)], capture_output=True, text=True, cwd=REPO, check=False)
    out = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            out[Path(row["file"]).name] = row.get("anomaly_score")
    return out


def bench_sessions(n: int, chromium: Path, warm: bool = True, timeout_s: float = 900.0) -> dict:
    images = dev_images(n)
    if len(images) < n:
        raise SystemExit(f"--sessions {n} needs {n} dev radiographs in ../shared/data/cxr; found {len(images)}")
    load_before = os.getloadavg()[0]
    with streamlit_server() as (proc, url, healthy_s), PeakRSS(proc.pid) as peak:
        run = asyncio.run(_sessions(url, proc.pid, images, chromium, warm, timeout_s))
    run["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]  # other work on this machine
    records = run.pop("records")
    reference = cli_scores(images)
    for rec in records:
        ref = reference.get(rec["image"])
        rec["cli_score"] = ref
        rec["score_matches_cli"] = (rec.get("app_score") is not None and ref is not None
                                    and abs(rec["app_score"] - ref) <= 0.0005 + 1e-9)
    ok = [r for r in records if "error" not in r]

    def spread(key: str) -> dict:
        values = [r[key] for r in ok if key in r]
        return {"median": statistics.median(values), "max": max(values)} if values else {}
    return {"sessions": n, "server_healthy_s": healthy_s, **run, "peak_server_rss_mb": peak.peak, "to_risk_band_s": spread("to_risk_band_s"), "to_heatmaps_s": spread("to_heatmaps_s"),
            "upload_to_heatmaps_s": spread("upload_to_heatmaps_s"),
            "heatmap_errors": sum(len(r.get("heatmap_errors", [])) for r in ok),
            "session_errors": len(records) - len(ok), "scores_matching_cli": sum(r["score_matches_cli"] for r in records),
            "records": records}


def print_sessions(res: dict) -> None:
    print(f"\n== {res['sessions']} concurrent session(s) ==")
    if res["models_loaded_s"] is not None:
        print(f"server healthy after {res['server_healthy_s']:.1f} s; every model loaded after {res['models_loaded_s']:.1f} s more")
    print(f"{'#':>2s} {'image':44s} {'band':6s} {'app':>7s} {'CLI':>9s} {'band s':>7s} {'maps s':>7s}  heatmaps")
    for r in res["records"]:
        if "error" in r:
            print(f"{r['session']:2d} {r['image'][:44]:44s} ERROR {r['error'][:200]}")
            continue
        cli = f"{r['cli_score']:.4f}" if r["cli_score"] is not None else "-"
        maps = "; ".join(r["heatmap_errors"]) or ", ".join(m for m in r["maps"] if not m.startswith("original"))
        print(f"{r['session']:2d} {r['image'][:44]:44s} {r['band'] or '-':6s} {r['app_score'] or float('nan'):7.3f} {cli:>9s} "
              f"{r['to_risk_band_s']:7.1f} {r['to_heatmaps_s']:7.1f}  {maps}")
    for key, label in (("to_risk_band_s", "upload -> risk band"), ("to_heatmaps_s", "heatmap page -> maps"),
                       ("upload_to_heatmaps_s", "upload -> maps")):
        if res[key]:
            print(f"{label:22s} median {res[key]['median']:6.1f} s   max {res[key]['max']:6.1f} s")
    print(f"scores equal to `medsight score`: {res['scores_matching_cli']}/{res['sessions']}; heatmap errors: "
          f"{res['heatmap_errors']}; sessions that failed: {res['session_errors']}")
    print(f"server RSS: {res['rss_before_uploads_mb']:.0f} MB before the uploads, peak {res['peak_server_rss_mb']:.0f} MB, "
          f"{res['rss_after_mb']:.0f} MB after")
    print(f"server CPU time for the sessions: {res['server_cpu_s']:.0f} s in {res['wall_s']:.0f} s wall "
          f"({res['server_cpu_s'] / res['sessions']:.0f} CPU-s per session: upload, score, heatmap page)")
    print(f"machine load average (1 min) before / after: {res['load_average_1min'][0]} / {res['load_average_1min'][1]} "
          f"on {os.cpu_count()} CPUs")


# -- what Grad-CAM's isolation costs --------------------------------------------------------------------------------
def bench_gradcam_cost(image: Path, repeats: int = 5) -> dict:
    import copy

    import torch

    from medsight.imaging import load_image
    from medsight.imaging.preprocess import to_square
    from medsight.vision.explain import gradcam_on, private_backbone
    from medsight.vision.pipeline import AnomalyPipeline

    pipe = AnomalyPipeline.load(device="cpu")
    gray = to_square(load_image(image).pixels)

    def median_ms(fn, n: int) -> float:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    out = {"detector": pipe.detector.name, "torch_threads": torch.get_num_threads(),
           "backbone_weights_mb": sum(p.numel() * p.element_size() for p in pipe.backbone.parameters()) / 2**20,
           "private_tree_ms": median_ms(lambda: private_backbone(pipe.backbone), 50),
           "full_deepcopy_ms": median_ms(lambda: copy.deepcopy(pipe.backbone), 10)}
    gradcam_on(pipe.backbone, pipe.detector, gray)  # warm-up
    shared, private = [], []
    for _ in range(repeats):  # interleaved, so load from other processes hits both alike
        shared.append(median_ms(lambda: gradcam_on(pipe.backbone, pipe.detector, gray), 1))
        private.append(median_ms(lambda: gradcam_on(private_backbone(pipe.backbone), pipe.detector, gray), 1))
    out["gradcam_shared_hooks_ms"] = statistics.median(shared)
    out["gradcam_private_tree_ms"] = statistics.median(private)
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
    ap.add_argument("--sessions", type=int, nargs="+", metavar="N", help="concurrent browser sessions (one run per N)")
    ap.add_argument("--cold", action="store_true", help="with --sessions: start the sessions without waiting for "
                    "the background model load (the default waits, to measure serving, not start-up)")
    ap.add_argument("--gradcam-cost", action="store_true")
    args = ap.parse_args(argv)
    chromium = Path(os.environ.get("MEDSIGHT_CHROMIUM", "/usr/bin/chromium"))
    if args.sessions or args.gradcam_cost:
        results: dict = {}
        if args.gradcam_cost:
            image = args.image or default_image()
            if image is None:
                raise SystemExit("--gradcam-cost needs --image or ../shared/data/cxr")
            results["gradcam_cost"] = cost = bench_gradcam_cost(image)
            if not args.json:
                print(f"Grad-CAM on {cost['detector']} ({cost['torch_threads']} torch threads): hooks on the shared backbone "
                      f"{cost['gradcam_shared_hooks_ms']:.0f} ms, on a private module tree {cost['gradcam_private_tree_ms']:.0f} ms "
                      f"per call;\n  building the private tree {cost['private_tree_ms']:.2f} ms (no weight copy); a full "
                      f"deepcopy {cost['full_deepcopy_ms']:.1f} ms and {cost['backbone_weights_mb']:.0f} MB")
        if args.sessions and not chromium.exists():
            raise SystemExit(f"--sessions needs chromium at {chromium} (apt-get install chromium)")
        for n in args.sessions or []:
            results[f"sessions_{n}"] = res = bench_sessions(n, chromium, warm=not args.cold)
            if not args.json:
                print_sessions(res)
        if args.json:
            print(json.dumps(results, indent=1, default=float))
        return 0
    results = {}
    image = args.image or default_image()
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
    print(f"\n{'model':16s} {'state':12s} {'device':7s} {'MB':>7s} {'from':28s} {'tensors':>7s} {'load s':>7s}  note")
    for m in results["models"]:
        load = f"{m['load_s']:.2f}" if m["load_s"] is not None else "-"
        tensors = f"{m['tensors_mb']:.0f}" if m.get("tensors_mb") is not None else "-"
        print(f"{m['model']:16s} {m['state']:12s} {m['device']:7s} {m['memory_mb']:7.0f} {m.get('memory_from', '-')[:28]:28s} "
              f"{tensors:>7s} {load:>7s}  {m['note'][:60]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
