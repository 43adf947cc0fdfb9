"""A resumable, memory-mapped cache of frozen-backbone feature maps.

The backbone is frozen, so every image (and every augmented or synthetic view of it) goes through VGG16 once.
Each store keeps, per image, the ReLU maps of blocks 3-5 average-pooled to a 14x14 grid (relu3_3 256 ch,
relu4_3 512 ch, relu5_3 512 ch; float16); the layout and what is derived from it live in `medsight.vision.features`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from medsight.imaging.load import load_image
from medsight.imaging.preprocess import INPUT_CONTRACT, to_backbone_tensor, to_square
from medsight.vision.features import CHANNELS, GRID, LAYERS, maps_from_taps

ViewFn = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class FeatureStore:
    path: Path
    files: list[str]
    maps: np.ndarray  # memmap N x 1280 x 14 x 14 float16
    done: np.ndarray  # bool N

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    @classmethod
    def open(cls, path: str | Path) -> "FeatureStore":
        path = Path(path)
        files = (path / "files.txt").read_text().splitlines()
        maps = np.load(path / "maps.npy", mmap_mode="r")
        done = np.load(path / "done.npy")
        return cls(path, files, maps, done)

    def select(self, files: Sequence[str]) -> np.ndarray:
        """Maps for the given files (in that order) as a float16 array in memory."""
        index = {f: i for i, f in enumerate(self.files)}
        idx = np.array([index[f] for f in files])
        if not self.done[idx].all():
            raise RuntimeError(f"{self.path}: features for some requested files are not extracted yet")
        order = np.argsort(idx)
        out = np.empty((len(idx),) + self.maps.shape[1:], dtype=np.float16)
        out[order] = self.maps[np.sort(idx)]
        return out


def extract(
    files: Sequence[str | Path],
    out_dir: str | Path,
    backbone,
    view: ViewFn | None = None,
    view_name: str = "clean",
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
) -> FeatureStore:
    """Extract feature maps for `files` into `out_dir`, resuming where an earlier run stopped.

    `view(gray224, seed_i)` transforms each 224x224 image before the backbone (augmentation, synthetic anomaly);
    the per-image seed is `seed * 1_000_003 + i`, so a resumed run makes the same views.
    """
    from medsight.vision.backbone import forward_taps

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [str(f) for f in files]
    meta = {"view": view_name, "seed": seed, "n": len(files), "grid": GRID, "layers": LAYERS, "contract": INPUT_CONTRACT}
    meta_path, files_path = out_dir / "meta.json", out_dir / "files.txt"
    fresh = not (meta_path.exists() and files_path.exists() and json.loads(meta_path.read_text()) == json.loads(json.dumps(meta))
                 and files_path.read_text().splitlines() == files)
    if fresh:
        files_path.write_text("\n".join(files) + "\n")
        meta_path.write_text(json.dumps(meta, indent=1))
        maps = np.lib.format.open_memmap(out_dir / "maps.npy", mode="w+", dtype=np.float16, shape=(len(files), CHANNELS, GRID, GRID))
        done = np.zeros(len(files), dtype=bool)
        np.save(out_dir / "done.npy", done)
    else:
        maps = np.load(out_dir / "maps.npy", mmap_mode="r+")
        done = np.load(out_dir / "done.npy")
    todo = np.flatnonzero(~done)
    t0, n0 = time.time(), len(todo)
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        grays = []
        for i in idx:
            g = to_square(load_image(files[i]).pixels)
            if view is not None:
                g = view(g, seed * 1_000_003 + int(i))
            grays.append(g)
        taps = forward_taps(backbone, to_backbone_tensor(grays))
        maps[idx] = maps_from_taps(taps).cpu().numpy().astype(np.float16)
        done[idx] = True
        if (start // batch_size) % 8 == 7 or start + batch_size >= len(todo):
            maps.flush()
            np.save(out_dir / "done.npy", done)
            if progress:
                k = min(start + batch_size, n0)
                rate = k / max(time.time() - t0, 1e-6)
                print(f"[{view_name}] {done.sum()}/{len(files)} images, {rate:.1f} img/s, "
                      f"eta {(n0 - k) / max(rate, 1e-6) / 60:.1f} min", flush=True)
    maps.flush()
    np.save(out_dir / "done.npy", done)
    return FeatureStore.open(out_dir)


def find_store_dir(files: Sequence[str | Path], view_name: str, seed: int, root: str | Path) -> Path:
    """The cache folder holding (or to hold) these files' features for this view: an existing folder whose file
    list, view and seed match, else a new `<view>-<hash>` folder under `root`."""
    import hashlib

    files = [str(f) for f in files]
    root = Path(root)
    if root.exists():
        for meta_path in sorted(root.glob("*/meta.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            if meta.get("view") == view_name and meta.get("seed") == seed and meta.get("n") == len(files):
                if (meta_path.parent / "files.txt").read_text().splitlines() == files:
                    return meta_path.parent
    digest = hashlib.sha1(("\n".join(files) + f"|{view_name}|{seed}").encode()).hexdigest()[:12]
    return root / f"{view_name}-{digest}"


def cached_maps(files: Sequence[str | Path], backbone_factory, view: ViewFn | None = None, view_name: str = "clean",
                seed: int = 0, root: str | Path | None = None, progress: bool = True) -> np.ndarray:
    """Feature maps for `files` (float16, N x 1280 x 14 x 14), extracted once and cached (resumable)."""
    from medsight import config

    root = Path(root or config.CACHE_DIR / "features")
    store_dir = find_store_dir(files, view_name, seed, root)
    store = FeatureStore.open(store_dir) if (store_dir / "done.npy").exists() else None
    if store is None or not store.complete:
        store = extract(files, store_dir, backbone_factory(), view, view_name, seed, progress=progress)
    return np.asarray(store.maps)
