"""The browser half of `scripts/space_image.sh --smoke`: waits for the started Space image to answer
`/_stcore/health`, then in Debian Chromium (Playwright, no browser download) uploads one radiograph on the
Upload & score page and waits for its risk band. Writes the timings, the band and the uid the app runs as to a
JSON file; exits 1 with one sentence when any step fails.

    python scripts/space_smoke.py --url http://127.0.0.1:8501 --film FILM --t0 EPOCH --app-pid PID --result OUT.json
    python scripts/space_smoke.py --print-film      # the film it would use

The film defaults to the first normal dev radiograph of ../shared/data/cxr (the benchmark's), else the first film
of the fetched samples (.cache/samples, `scripts/fetch_samples.py`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("MEDSIGHT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class SmokeError(RuntimeError):
    pass


def default_film() -> Path:
    dev_data = REPO.parent / "shared" / "data" / "cxr" / "manifest.csv"
    fetched = REPO / ".cache" / "samples" / "manifest.csv"
    for manifest, want in ((dev_data, {"split": "dev", "label": "normal"}), (fetched, {})):
        if manifest.is_file():
            with open(manifest, newline="") as fh:
                for row in csv.DictReader(fh):
                    if all(row.get(k) == v for k, v in want.items()) and (manifest.parent / row["file"]).is_file():
                        return manifest.parent / row["file"]
    raise SmokeError("no radiograph to upload: put ../shared beside the repo, run scripts/fetch_samples.py, "
                     "or set MEDSIGHT_SMOKE_IMAGE")


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    todo, seen = [root], []
    while todo:
        for child in children.get(todo.pop(), []):
            seen.append(child)
            todo.append(child)
    return seen


def app_process(root: int) -> tuple[int, str]:
    """(uid, command line) of the Streamlit process started under `root` (buildah run)."""
    for pid in process_tree(root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if "streamlit" in cmd and "buildah" not in cmd:
            uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
            return uid, cmd
    raise SmokeError(f"no streamlit process under pid {root}")


def wait_healthy(url: str, t0: float, app_pid: int | None, timeout: float) -> float:
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return time.time() - t0
        except OSError:
            pass
        if app_pid and not Path(f"/proc/{app_pid}").exists():
            raise SmokeError("the image's command exited before it was healthy")
        if time.time() - t0 > timeout:
            raise SmokeError(f"{url}/_stcore/health did not answer ok within {timeout:.0f} s")
        time.sleep(0.25)


def wait_for_band(page, timeout_s: float, warning_grace_s: float = 30.0) -> str:
    """The risk band once it is on screen; SmokeError at once on an error or exception, and on a warning that
    stays for `warning_grace_s` without a band (e.g. the frontal-CXR gate refusing the film)."""
    problems = page.locator("[data-testid=stException], [data-testid=stAlertContentError]")
    warnings = page.locator("[data-testid=stAlertContentWarning]")
    deadline, warned = time.time() + timeout_s, None
    while time.time() < deadline:
        if page.locator("#risk-band").count():
            return page.locator("#risk-band").first.inner_text().strip()
        if problems.count():
            shown = problems.first.inner_text().strip()[:300]
            raise SmokeError(f"the page shows an error instead of a score: {shown}")
        if warnings.count():
            warned = warned or time.time()
            if time.time() - warned > warning_grace_s:
                shown = warnings.first.inner_text().strip()[:300]
                raise SmokeError(f"the page shows a warning instead of a score: {shown}")
        else:
            warned = None
        page.wait_for_timeout(250)
    raise SmokeError(f"no risk band within {timeout_s:.0f} s of the upload")


def upload_and_score(url: str, film: Path, timeout_s: float) -> tuple[str, float, float]:
    """(risk band, epoch when the upload widget was there, seconds from upload to the band on screen)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SmokeError(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_s * 1000)
            page.goto(url)
            page.locator("input[type=file]").first.wait_for(state="attached")
            start = time.time()
            page.locator("input[type=file]").first.set_input_files(str(film))
            band = wait_for_band(page, timeout_s)
            return band, start, time.time() - start
        finally:
            browser.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8501")
    ap.add_argument("--film", type=Path, default=None, help="radiograph to upload (default: see module doc)")
    ap.add_argument("--t0", type=float, default=None, help="epoch seconds when the image's command was started")
    ap.add_argument("--app-pid", type=int, default=None, help="pid of `buildah run` (for the app's uid)")
    ap.add_argument("--app-log", type=Path, default=None, help="the app's output, counted for tracebacks")
    ap.add_argument("--result", type=Path, default=None, help="write the results here as JSON")
    ap.add_argument("--health-timeout", type=float, default=600)
    ap.add_argument("--score-timeout", type=float, default=900)
    ap.add_argument("--print-film", action="store_true", help="print the film that would be uploaded and exit")
    args = ap.parse_args(argv)
    try:
        film = (args.film or default_film()).resolve()
        if not film.is_file():
            raise SmokeError(f"no film at {film}")
        if args.print_film:
            print(film)
            return 0
        t0 = args.t0 or time.time()
        healthy_s = wait_healthy(args.url, t0, args.app_pid, args.health_timeout)
        print(f"[space_smoke] healthy after {healthy_s:.1f} s; uploading {film.name}", file=sys.stderr)
        uid, cmd = app_process(args.app_pid) if args.app_pid else (os.getuid(), "?")
        band, page_ready, upload_s = upload_and_score(args.url, film, args.score_timeout)
    except SmokeError as exc:
        print(f"[space_smoke] FAILED: {exc}", file=sys.stderr)
        return 1
    result = {"film": str(film), "risk_band": band, "healthy_s": healthy_s, "first_page_s": page_ready - t0,
              "upload_to_score_s": upload_s, "start_to_score_s": time.time() - t0, "app_uid": uid, "app_cmd": cmd}
    if args.app_log and args.app_log.is_file():
        lines = args.app_log.read_text(errors="replace").splitlines()
        result.update(log_lines=len(lines), tracebacks=sum("Traceback (most recent call last)" in ln for ln in lines))
    else:
        result.update(log_lines=0, tracebacks=0)
    if args.result:
        args.result.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), file=sys.stderr)
    if uid != 1000:
        print(f"[space_smoke] FAILED: the app runs as uid {uid}, not 1000", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
