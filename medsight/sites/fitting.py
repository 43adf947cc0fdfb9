"""A site's normal films -> feature maps -> site profile, from a manifest, a folder or zip, or the app's uploads."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from medsight import config
from medsight.vision.site_fit import fit_profile
from medsight.vision.sites import SiteError, SiteProfile, check_name

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff", ".bmp"}
#: most films one profile is fitted from (more adds little and costs extraction time)
MAX_FILMS = 3000

Progress = Callable[[float, str], None]


def load_detectors(weights_dir: str | Path | None = None, names: Sequence[str] | None = None) -> dict:
    """The trained detectors of a weights folder, loaded (a profile is fitted for every one of them)."""
    from medsight.vision.detectors import available_detectors, load_detector

    directory = Path(weights_dir or config.WEIGHTS_DIR)
    names = list(names or available_detectors(directory))
    if not names:
        raise SiteError(f"no trained detectors in {directory}: a site profile adapts trained detectors (run `medsight train`).")
    return {n: load_detector(directory, n) for n in names}


def _backbone():
    from medsight.vision.backbone import load_backbone

    return load_backbone("auto", None)


def cached_site_maps(files: Sequence[str], progress: bool = True) -> np.ndarray:
    """Feature maps of these files from the feature cache: from any complete clean-view store that holds them all
    (an evaluation's cache of a whole split, say), else extracted once into their own resumable store."""
    from medsight.imaging.preprocess import INPUT_CONTRACT
    from medsight.training.features import FeatureStore, cached_maps
    from medsight.vision.features import GRID, LAYERS

    files = [str(f) for f in files]
    want = json.loads(json.dumps({"grid": GRID, "layers": LAYERS, "contract": INPUT_CONTRACT}))
    root = Path(config.CACHE_DIR) / "features"
    for meta_path in sorted(root.glob("*/meta.json")) if root.is_dir() else []:
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("view") != "clean" or meta.get("seed") != 0 or {k: meta.get(k) for k in want} != want:
                continue
            listed = (meta_path.parent / "files.txt").read_text().splitlines()
            if len(listed) >= len(files) and set(files) <= set(listed):
                return np.asarray(FeatureStore.open(meta_path.parent).select(files))
        except (OSError, ValueError, RuntimeError):
            continue
    return np.asarray(cached_maps(files, _backbone, progress=progress))


def images_in_folder(folder: str | Path) -> list[Path]:
    """Image files (PNG, JPEG, DICOM, TIFF, BMP by suffix) anywhere under a folder, hidden ones left out, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SiteError(f"{folder} is not a folder.")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_zip(data: bytes, limit: int = MAX_FILMS) -> list[tuple[str, bytes]]:
    """(name, bytes) of the image members of a zip held in memory; members larger than the loader's file limit are
    refused before they are decompressed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise SiteError("the uploaded file is not a readable zip archive.") from None
    out = []
    for info in archive.infolist():
        name = info.filename
        if info.is_dir() or Path(name).suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith((".", "__MACOSX")) for p in Path(name).parts):
            continue
        if info.file_size > config.MAX_FILE_BYTES:
            raise SiteError(f"{name} in the zip is larger than {config.MAX_FILE_BYTES // 2**20} MB.")
        if len(out) >= limit:
            raise SiteError(f"the zip holds more than {limit} films; a profile needs a few hundred at most.")
        out.append((name, archive.read(info)))
    return out


def _fit(name: str, maps: np.ndarray, names: list[str], groups, source: str, weights_dir, detectors, save: bool,
         progress: Progress | None, root=None) -> SiteProfile:
    check_name(name)
    if len(names) > MAX_FILMS:
        raise SiteError(f"{len(names)} films: a profile takes at most {MAX_FILMS}.")
    profile = fit_profile(name, maps, names, detectors or load_detectors(weights_dir), groups, source, progress=progress)
    if save:
        profile.save(root)
    return profile


def fit_from_manifest(name: str, manifest: str | Path, split: str | None = None, source: str | None = None,
                      weights_dir=None, save: bool = True, progress: Progress | None = None, root=None,
                      detectors: dict | None = None) -> SiteProfile:
    """Profile from a manifest's normal rows (`is_normal == 1`; of one split and source if given), held-out folds
    by `patient_id` where the manifest has it. Features come from the resumable feature cache."""
    from medsight.training.dataset import read_manifest

    check_name(name)
    df = read_manifest(manifest, split)
    if source and source != "all":
        if source not in set(df["source"]):
            raise SiteError(f"source {source!r} is not in the manifest (it has {', '.join(sorted(set(df['source'])))}).")
        df = df[df["source"] == source]
    df = df[df["is_normal"] == 1].reset_index(drop=True)
    if not source and "source" in df.columns and df["source"].nunique() > 1:
        counts = df["source"].value_counts()
        listed = ", ".join(f"{s} {n:,}" for s, n in counts.items())
        raise SiteError(f"the manifest's normal films{f' in split {split}' if split else ''} come from "
                        f"{len(counts)} sources ({listed}); a site profile describes one site: add --source NAME, "
                        "or --source all to pool them.")
    if source == "all":
        source = None
    groups = df["patient_id"].fillna("").astype(str).tolist() if "patient_id" in df.columns else None
    maps = cached_site_maps(df["path"].tolist(), progress=progress is None)
    what = f"manifest {Path(manifest).name}" + (f", split {split}" if split else "") + (f", source {source}" if source else "")
    return _fit(name, maps, df["file"].astype(str).tolist(), groups, what, weights_dir, detectors, save, progress, root)


def fit_from_images(name: str, folder: str | Path, weights_dir=None, save: bool = True, progress: Progress | None = None,
                    root=None, detectors: dict | None = None) -> SiteProfile:
    """Profile from every image under a folder (all taken as normal films; no patient ids: folds by film)."""
    check_name(name)
    files = images_in_folder(folder)
    if not files:
        raise SiteError(f"no PNG, JPEG, DICOM or TIFF files under {folder}.")
    maps = cached_site_maps([str(f.resolve()) for f in files], progress=progress is None)
    names = [str(f.relative_to(folder)) for f in files]
    return _fit(name, maps, names, None, f"folder {Path(folder).name} ({len(files)} films)", weights_dir, detectors,
                save, progress, root)


def maps_of_uploads(pipeline, items: Sequence[tuple[str, bytes]], progress: Progress | None = None,
                    batch: int = 8) -> tuple[np.ndarray, list[str], list[str]]:
    """Feature maps of uploaded films through the pipeline's backbone, in memory (nothing written to disk). Films
    that do not load, or that the gate rejects (not a frontal chest film), are left out: (maps, names, skipped
    with reasons)."""
    from medsight.imaging.gate import check_frontal_cxr
    from medsight.imaging.load import ImageLoadError, load_image
    from medsight.vision.ood import ood_check

    say = progress or (lambda frac, text: None)
    maps, names, skipped = [], [], []
    for start in range(0, len(items), batch):
        chunk, loaded = items[start : start + batch], []
        for name, data in chunk:
            try:
                loaded.append((name, load_image(data, name)))
            except ImageLoadError as exc:
                skipped.append(f"{name}: {exc}")
        if loaded:
            m = pipeline.maps([im.pixels for _, im in loaded])
            oods = ood_check(m, pipeline.ood_state) if pipeline.ood_state else [None] * len(loaded)
            for i, (name, im) in enumerate(loaded):
                gate = check_frontal_cxr(im, oods[i])
                if gate.ok:
                    maps.append(m[i])
                    names.append(name)
                else:
                    skipped.append(f"{name}: not used ({'; '.join(gate.reasons)})")
        say(min(start + batch, len(items)) / max(len(items), 1), f"features: {min(start + batch, len(items))} of {len(items)} films")
    return (np.stack(maps) if maps else np.zeros((0, 1280, 14, 14), np.float32)), names, skipped


def fit_from_uploads(name: str, items: Sequence[tuple[str, bytes]], pipeline, detectors: dict,
                     extract_progress: Progress | None = None, fit_progress: Progress | None = None) -> tuple[SiteProfile, list[str]]:
    """Profile from uploaded films (the app): not saved; `SiteProfile.save()` when the user asks."""
    check_name(name)
    maps, names, skipped = maps_of_uploads(pipeline, items, extract_progress)
    profile = _fit(name, maps, names, None, f"{len(names)} uploaded films", None, detectors, False, fit_progress)
    return profile, skipped
