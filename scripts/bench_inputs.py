"""Benchmark the image-loading layer and print the numbers (issue 10, "Inputs"):

1. peak memory: peak RSS of `medsight score --json` on a 10000x10000 16-bit PNG (a dev radiograph upscaled, about
   300 KB on disk), next to the same command on the 224x224 original (what the models alone cost);
2. containers: the same 8-bit pixels of N dev films (stratified by label) written as PNG 8/16-bit, TIFF 8/16-bit and
   DICOM (8, 12, 16 bits; JPEG Lossless, JPEG-LS, RLE; headerless), scored in one `medsight score --json` run: how
   many films change risk band against PNG 8-bit, and how many loaded arrays differ from PNG 8-bit's;
3. load time: milliseconds per `load_image` call for each container, and for the 10000x10000 PNG.

    .venv/bin/python scripts/bench_inputs.py [--n 40] [--skip-rss] [--skip-bands] [--json]

Needs ../shared/data/cxr (manifest.csv) and the encoders of requirements-dev.txt (pyjpegls, imagecodecs).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "imaging"))
MANIFEST = REPO.parent / "shared" / "data" / "cxr" / "manifest.csv"
MEDSIGHT = [sys.executable, "-m", "medsight.cli"]


def dev_films(n: int):
    import pandas as pd

    from medsight.training.stability import sample_for_stability

    df = pd.read_csv(MANIFEST)
    rows = sample_for_stability(df[df["split"] == "dev"], n)
    return [MANIFEST.parent / f for f in rows["file"]]


def gray8(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def make_big_png(src: Path, out: Path, side: int = 10_000) -> Path:
    """The radiograph upscaled (nearest) to side x side, stored as 16-bit (v * 257): compresses to a few hundred KB."""
    from PIL import Image

    big = Image.fromarray(gray8(src)).resize((side, side), Image.NEAREST)
    arr = np.asarray(big).astype(np.uint16) * 257
    del big
    Image.fromarray(arr).save(out, "PNG", compress_level=9)
    return out


def peak_rss_mb(args: list[str]) -> tuple[float, int, str]:
    """Run a command as a child; its peak resident set size (MB), exit code and last output line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(args, capture_output=True, text=True, env=_env())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        print("warning: a previous child had a higher peak; the number below is an upper bound", file=sys.stderr)
    last = (proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines() or [""])[-1]
    return peak / 1024, proc.returncode, last


def _env() -> dict:
    import os

    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", OMP_NUM_THREADS="1")


def bench_rss(tmp: Path, src: Path) -> dict:
    big = make_big_png(src, tmp / "big16.png")
    small = tmp / "small.png"
    from PIL import Image

    Image.fromarray(gray8(src)).save(small)
    out = {"big_png_bytes": big.stat().st_size}
    # each measurement in its own child so ru_maxrss (the largest child so far) is that command's own peak: small first
    for key, path in (("score_224_png", small), ("score_10000x10000_16bit_png", big)):
        mb, rc, last = peak_rss_mb(MEDSIGHT + ["score", "--json", str(path)])
        out[key] = {"peak_rss_mb": round(mb, 1), "exit": rc, "output": last[:300]}
    return out


_EXT = {"dic": "dcm", "png": "png", "tif": "tif"}


def bench_bands(tmp: Path, n: int) -> dict:
    from cxr_containers import containers

    from medsight.imaging import load_image

    files, arrays_differ, names = [], {}, None
    load_ms: dict[str, list[float]] = {}
    for i, film in enumerate(dev_films(n)):
        g = gray8(film)
        for name, data in containers(g).items():
            p = tmp / f"{i:03d}_{name}.{_EXT[name[:3]]}"
            p.write_bytes(data)
            files.append(p)
            t0 = time.perf_counter()
            try:
                px = load_image(p).pixels
            except Exception as exc:  # an unreadable container is what this benchmark reports
                px = None
                print(f"{p.name}: {exc}", file=sys.stderr)
            load_ms.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
            arrays_differ.setdefault(name, 0)
            arrays_differ[name] += int(px is None or not np.array_equal(px, g))
        names = list(containers(g)) if names is None else names
    proc = subprocess.run(MEDSIGHT + ["score", "--json", *map(str, files)], capture_output=True, text=True, env=_env())
    by_file = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            by_file[Path(d["file"]).name] = d.get("risk") if "error" not in d else "error: " + d["error"]
    changed = {name: 0 for name in names}
    for i in range(len(files) // len(names)):
        ref = by_file.get(f"{i:03d}_png8.png")
        for f in files[i * len(names):(i + 1) * len(names)]:
            name = f.stem.split("_", 1)[1]
            changed[name] += int(by_file.get(f.name) != ref)
    any_change = sum(
        any(by_file.get(f.name) != by_file.get(f"{i:03d}_png8.png") for f in files[i * len(names):(i + 1) * len(names)])
        for i in range(len(files) // len(names)))
    readable_change = sum(
        any(by_file.get(f.name) != by_file.get(f"{i:03d}_png8.png") for f in files[i * len(names):(i + 1) * len(names)]
            if not str(by_file.get(f.name)).startswith("error"))
        for i in range(len(files) // len(names)))
    return {"films": len(files) // len(names), "films_with_any_band_change": any_change,
            "films_with_band_change_among_readable": readable_change,
            "band_changed_vs_png8": changed, "array_differs_from_8bit_pixels": arrays_differ,
            "load_ms_median": {k: round(float(np.median(v)), 2) for k, v in load_ms.items()}}


def bench_big_load(tmp: Path, src: Path) -> dict:
    from medsight.imaging import load_image

    big = tmp / "big16.png"
    if not big.exists():
        make_big_png(src, big)
    t0 = time.perf_counter()
    img = load_image(big)
    return {"load_10000x10000_16bit_png_s": round(time.perf_counter() - t0, 2), "loaded_shape": list(img.pixels.shape),
            "notes": getattr(img, "notes", None)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="dev films for the container comparison")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-bands", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not MANIFEST.is_file():
        print(f"no development data at {MANIFEST}", file=sys.stderr)
        return 2
    src = dev_films(5)[0]
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_rss:
            res["rss"] = bench_rss(tmp, src)
        if not args.skip_bands:
            res["containers"] = bench_bands(tmp, args.n)
        res["big_load"] = bench_big_load(tmp, src)
    print(json.dumps(res, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
