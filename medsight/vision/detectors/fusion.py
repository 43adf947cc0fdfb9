"""Fusion of signals from other trained detectors: each part (detector, signal) is standardised on held-out
normals (z-score) and the parts are summed. Weights and thresholds come from normal data only; the parts'
detectors are loaded from the same weights folder and read the same feature maps (one backbone pass)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medsight.vision.detectors.base import Detector, register
from medsight.vision.scoring import Calibration


@register
class FusionDetector(Detector):
    kind = "fusion"

    def __init__(self, name: str = "fusion", config: dict | None = None):
        super().__init__(name, config)
        self.config.setdefault("parts", [])  # [[detector name, signal name], ...]
        self.config.setdefault("z", [[0.0, 1.0] for _ in self.config["parts"]])
        self.parts: dict[str, Detector] = {}
        self.components = tuple(f"{d}.{sig}" for d, sig in self.config["parts"])

    def bind(self, directory: str | Path) -> None:
        from medsight.vision.detectors.base import load_detector

        self.parts = {d: load_detector(directory, d) for d in dict.fromkeys(d for d, _ in self.config["parts"])}

    @property
    def has_anomaly_map(self) -> bool:
        return any(p.has_anomaly_map for p in self.parts.values())

    @property
    def cam_layer(self) -> int:
        return min(p.cam_layer for p in self.parts.values())

    def _fuse(self, raw: dict) -> dict:
        out, total = {}, 0.0
        for (d, sig), (mu, sd), name in zip(self.config["parts"], self.config["z"], self.components):
            out[name] = raw[d][sig]
            total = total + (raw[d][sig] - mu) / sd
        out["score"] = total / np.sqrt(len(self.components))
        return out

    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        return self._fuse({d: det.signals(maps) for d, det in self.parts.items()})

    def anomaly_map(self, maps: np.ndarray) -> np.ndarray | None:
        for det in self.parts.values():
            if det.has_anomaly_map:
                return det.anomaly_map(maps)
        return None

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._fuse({d: det.torch_signals(taps) for d, det in self.parts.items()})["score"]

    @classmethod
    def fit(cls, fit_maps, holdout_maps: np.ndarray, name: str = "fusion", aug_maps=None, log=print, directory=None, **config):
        det = cls(name, config)
        det.bind(directory)
        raw = {d: p.signals(np.asarray(holdout_maps, dtype=np.float32)) for d, p in det.parts.items()}
        det.config["z"] = [[float(raw[d][s].mean()), float(raw[d][s].std() + 1e-8)] for d, s in det.config["parts"]]
        det.calibration = Calibration.from_normal_scores(det.signals(np.asarray(holdout_maps, dtype=np.float32))["score"])
        log(f"[{name}] parts {det.components}, threshold {det.calibration.threshold:.4f}")
        return det

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"version": torch.zeros(1)}  # no weights of its own: the parts hold them

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
