"""Sample radiographs a user can pick in the app: a folder with a `manifest.csv` (the development data's columns:
file, label, source, license, original_dataset, ...), each shown with its licence and source.

The folder is a setting (`MEDSIGHT_SAMPLES`); by default the development data in `../shared/data/cxr` when it is
there, else the folder `scripts/fetch_samples.py` fills. Sample images are read from that folder, never copied
into the project."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from medsight import config

#: where scripts/fetch_samples.py puts openly licensed radiographs
FETCHED_SAMPLES_DIR = config.CACHE_DIR / "samples"
DEV_DATA_DIR = config.REPO_ROOT.parent / "shared" / "data" / "cxr"


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    source: str
    license: str
    dataset: str

    @property
    def title(self) -> str:
        return f"{self.label.replace('_', ' ')} - {self.path.name}"


def samples_dir() -> Path | None:
    """The configured samples folder, or None when there is none."""
    configured = os.environ.get("MEDSIGHT_SAMPLES")
    candidates = [Path(configured)] if configured else [DEV_DATA_DIR, FETCHED_SAMPLES_DIR]
    return next((d for d in candidates if (d / "manifest.csv").is_file()), None)


def list_samples(folder: Path | None = None, per_label: int = 2, split: str = "dev") -> list[Sample]:
    """A few samples of each label (the first rows of each, so the choice is stable), from `split` when the manifest
    has splits (the development data's training split is not shown)."""
    folder = folder or samples_dir()
    if folder is None:
        return []
    picked: dict[str, list[Sample]] = {}
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("split") and row["split"] != split:
                continue
            label = row.get("label") or "unlabelled"
            if len(picked.setdefault(label, [])) >= per_label:
                continue
            path = folder / row["file"]
            if path.is_file():
                picked[label].append(Sample(path, label, row.get("source", ""), row.get("license", "unknown"),
                                            row.get("original_dataset", "")))
    return [s for label in sorted(picked) for s in picked[label]]
