"""Fetch a few openly licensed chest radiographs from Wikimedia Commons into the app's samples folder, for users
who do not have the development data. Needs internet; never run by the tests.

Each file's licence, author and page are read from the Commons API at fetch time (not typed here), and written
with the image into `manifest.csv` (the columns the app's sample picker reads). Files whose licence is not an open
one (public domain, CC0, CC BY, CC BY-SA) are skipped.

    .venv/bin/python scripts/fetch_samples.py [--out DIR]    # default: .cache/samples (MEDSIGHT_SAMPLES to move it)
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

API = "https://commons.wikimedia.org/w/api.php"
USER_AGENT = "MedSight/0.1 (teaching app; sample fetcher)"

#: Commons file titles and what they show (the label the picker displays). Licences come from the API.
CANDIDATES = [
    ("File:Normal posteroanterior (PA) chest radiograph (X-ray).jpg", "normal"),
    ("File:Chest Xray PA 3-8-2010.png", "normal"),
    ("File:Pneumonia x-ray.jpg", "pneumonia"),
    ("File:Right middle lobe pneumonia.jpg", "pneumonia"),
    ("File:Pleural effusion.jpg", "pleural_effusion"),
    ("File:Pneumothorax CXR.jpg", "pneumothorax"),
]
OPEN_LICENCES = re.compile(r"^(public domain|pd|cc0|cc[ -]by(-sa)?( \d\.\d)?)", re.I)


def commons_info(title: str) -> dict | None:
    query = urllib.parse.urlencode({"action": "query", "format": "json", "prop": "imageinfo", "titles": title,
                                    "iiprop": "url|extmetadata|mime", "iiurlwidth": 1024})
    req = urllib.request.Request(f"{API}?{query}", headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(req, timeout=30) as resp:
        pages = json.load(resp)["query"]["pages"]
    page = next(iter(pages.values()))
    if "imageinfo" not in page:
        return None
    info = page["imageinfo"][0]
    meta = info.get("extmetadata", {})
    plain = lambda key: re.sub(r"<[^>]+>", "", meta.get(key, {}).get("value", "")).strip()  # noqa: E731
    return {"url": info.get("thumburl") or info["url"], "page": info.get("descriptionurl", ""),
            "license": plain("LicenseShortName"), "artist": plain("Artist")}


def fetch(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for title, label in CANDIDATES:
        try:
            info = commons_info(title)
        except OSError as exc:
            print(f"skip {title}: {exc}")
            continue
        if info is None:
            print(f"skip {title}: not on Commons")
            continue
        if not OPEN_LICENCES.match(info["license"]):
            print(f"skip {title}: licence {info['license']!r} is not an open one")
            continue
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", title.removeprefix("File:"))
        req = urllib.request.Request(info["url"], headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(req, timeout=60) as resp:
            (out / name).write_bytes(resp.read())
        rows.append({"file": name, "label": label, "split": "dev", "source": "Wikimedia Commons",
                     "license": f"{info['license']} ({info['artist'] or 'see page'}; {info['page']})",
                     "original_dataset": info["page"]})
        print(f"saved {name} ({info['license']})")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "label", "split", "source", "license", "original_dataset"])
        writer.writeheader()
        writer.writerows(rows)
    # Check every saved file reads as a radiograph the app accepts.
    from medsight.imaging import ImageLoadError, load_image

    for row in rows:
        try:
            load_image(out / row["file"])
        except ImageLoadError as exc:
            print(f"warning: {exc}")
    print(f"{len(rows)} samples in {out}; the app finds them there (or set MEDSIGHT_SAMPLES={out})")
    return 0 if rows else 1


def main(argv=None) -> int:
    from medsight.samples import FETCHED_SAMPLES_DIR

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=FETCHED_SAMPLES_DIR)
    return fetch(ap.parse_args(argv).out)


if __name__ == "__main__":
    raise SystemExit(main())
