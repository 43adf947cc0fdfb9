"""Feature-space out-of-distribution check: how far an image's pooled backbone features lie from the training
normals' (mean cosine distance to the k nearest of a bank of normal radiographs).

It reads the feature maps the pipeline computes anyway (`AnomalyPipeline.maps`), so it costs no second backbone
pass. The threshold is set from held-out training normals only: a high quantile of their distances times a margin,
because pathology must not trip it (an abnormal chest film is still a chest film). Stored as `weights/ood.json`
(threshold, configuration) + `weights/ood.safetensors` (the bank).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from medsight.vision.features import pooled

OOD_NAME = "ood"
#: pooled features of all three tapped layers: relu3_3 carries image statistics (texture, noise, contrast),
#: relu4_3 / relu5_3 content and layout (an inverted or upside-down film moves these)
DEFAULT_LAYERS = ("relu3_3", "relu4_3", "relu5_3")
DEFAULT_K = 5
#: threshold = QUANTILE of held-out normal distances x MARGIN. Chosen on dev (docs/vision_extras.md): x1.15 flags 2%
#: of dev radiographs (pathology and pediatric films sit further out), x1.3 about 0.5%, losing some upside-down films.
QUANTILE = 0.995
MARGIN = 1.3


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def embed(maps: np.ndarray, layers=DEFAULT_LAYERS) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float32)
    return _unit(np.concatenate([_unit(pooled(maps, name)) for name in layers], axis=1))


def _knn_distance(emb: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(len(emb), dtype=np.float32)
    b = torch.from_numpy(np.asarray(bank, dtype=np.float32))
    for i in range(0, len(emb), 512):
        sim = torch.from_numpy(emb[i : i + 512]) @ b.T
        out[i : i + 512] = (1 - torch.topk(sim, min(k, len(bank)), dim=1).values).mean(1).numpy()
    return out


def fit_ood(normal_maps: np.ndarray, holdout_maps: np.ndarray, layers=DEFAULT_LAYERS, k: int = DEFAULT_K,
            quantile: float = QUANTILE, margin: float = MARGIN, bank_size: int = 2000, seed: int = 0) -> dict:
    """Bank of (at most `bank_size`) training-normal embeddings; threshold = `quantile` of the held-out normals'
    distances x `margin`. Both arguments hold normal radiographs only."""
    emb = np.concatenate([embed(normal_maps[i : i + 512], layers) for i in range(0, len(normal_maps), 512)])
    if len(emb) > bank_size:
        emb = emb[np.sort(np.random.default_rng(seed).choice(len(emb), bank_size, replace=False))]
    hold = np.sort(_knn_distance(embed(holdout_maps, layers), emb, k))
    return {"layers": list(layers), "k": int(k), "quantile": quantile, "margin": margin,
            "threshold": float(np.quantile(hold, quantile) * margin), "n_bank": int(len(emb)), "n_holdout": int(len(hold)),
            "holdout_distance_quantiles": {q: float(np.quantile(hold, float(q))) for q in ("0.5", "0.95", "0.99", "0.995")},
            "bank": emb.astype(np.float16)}


def ood_distance(maps: np.ndarray, state: dict) -> np.ndarray:
    return _knn_distance(embed(maps, state["layers"]), state["bank"], state["k"])


def ood_check(maps: np.ndarray, state: dict) -> list[dict]:
    """Per image: {"ood_distance", "ood_threshold", "ood"} (ood = True when the image is far from every normal).
    Pass each dict to `medsight.imaging.gate.check_frontal_cxr(image, ood=...)`."""
    d = ood_distance(maps, state)
    thr = float(state["threshold"])
    return [{"ood_distance": round(float(v), 5), "ood_threshold": round(thr, 5), "ood": bool(v > thr)} for v in d]


def save_ood(state: dict, directory: str | Path) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({"bank": torch.from_numpy(np.asarray(state["bank"], dtype=np.float16))}, str(directory / f"{OOD_NAME}.safetensors"))
    meta = {k: v for k, v in state.items() if k != "bank"}  # no "kind" key: evaluate must not take it for a detector
    (directory / f"{OOD_NAME}.json").write_text(json.dumps(meta, indent=1))
    return directory / f"{OOD_NAME}.json"


def load_ood(directory: str | Path) -> dict | None:
    """The stored OOD state, or None when `directory` has none (the gate then uses image statistics only)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta_path = directory / f"{OOD_NAME}.json"
    if not meta_path.exists() or not (directory / f"{OOD_NAME}.safetensors").exists():
        return None
    state = json.loads(meta_path.read_text())
    state["bank"] = load_file(str(directory / f"{OOD_NAME}.safetensors"))["bank"].float().numpy()
    return state
