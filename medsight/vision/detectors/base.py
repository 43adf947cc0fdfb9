"""The detector interface and its on-disk form: `<dir>/<name>.safetensors` (tensors) + `<name>.json` (config,
calibration, provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from medsight.vision.scoring import Calibration

DETECTOR_TYPES: dict[str, type["Detector"]] = {}


def register(cls):
    DETECTOR_TYPES[cls.kind] = cls
    return cls


class Detector:
    kind = "base"
    #: signal names `signals()` returns besides `score`, in display order
    components: tuple[str, ...] = ()
    has_anomaly_map = False
    #: index in VGG16 `features` of the convolution Grad-CAM targets (the last one the detector reads)
    cam_layer = 28

    def __init__(self, name: str, config: dict | None = None):
        self.name = name
        self.config = dict(config or {})
        self.calibration: Calibration | None = None
        self.card: dict = {}  # provenance: data, training, metrics

    # -- to implement -------------------------------------------------------------------------------------
    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def anomaly_map(self, maps: np.ndarray) -> np.ndarray | None:
        """N x 14 x 14 patch-level anomaly (higher = more anomalous), or None when the detector has none."""
        return None

    def tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------------
    def score(self, maps: np.ndarray) -> np.ndarray:
        return self.signals(maps)["score"]

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.tensors().items()}, str(directory / f"{self.name}.safetensors"))
        meta = {"kind": self.kind, "name": self.name, "config": self.config,
                "calibration": self.calibration.to_dict() if self.calibration else None, "card": self.card}
        (directory / f"{self.name}.json").write_text(json.dumps(meta, indent=1, default=float))
        return directory / f"{self.name}.json"


def available_detectors(directory: str | Path) -> list[str]:
    """Names of the trained detectors in a weights folder (a `<name>.json` with a `kind` beside its tensors)."""
    names = []
    for meta in sorted(Path(directory).glob("*.json")):
        if meta.with_suffix(".safetensors").exists():
            try:
                if "kind" in json.loads(meta.read_text()):
                    names.append(meta.stem)
            except ValueError:
                continue
    return names


def load_detector(directory: str | Path, name: str) -> Detector:
    directory = Path(directory)
    meta_path = directory / f"{name}.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"no trained detector {name!r} in {directory}")
    meta = json.loads(meta_path.read_text())
    det = DETECTOR_TYPES[meta["kind"]](meta["name"], meta["config"])
    det.load_tensors(load_file(str(directory / f"{name}.safetensors")))
    if hasattr(det, "bind"):  # detectors built on other detectors load those from the same folder
        det.bind(directory)
    det.calibration = Calibration.from_dict(meta["calibration"]) if meta.get("calibration") else None
    det.card = meta.get("card", {})
    _freeze(det)
    return det


def _freeze(det: Detector) -> None:
    """A loaded detector is for inference: no gradient (Grad-CAM's backward passes, several sessions at once) may
    accumulate in its networks' weights."""
    for value in vars(det).values():
        for module in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
