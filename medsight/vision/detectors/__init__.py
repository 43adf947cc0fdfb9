"""Anomaly detectors over frozen-backbone feature maps. Each is a small class with `signals(maps)` returning
named raw signals plus `score` (higher = more anomalous), optional `anomaly_map(maps)`, and save / load."""

from medsight.vision.detectors.base import DETECTOR_TYPES, Detector, available_detectors, load_detector
from medsight.vision.detectors import fusion, knn, multiscale_vae, paper, patchcore  # noqa: F401  (register the detector kinds)

__all__ = ["Detector", "load_detector", "available_detectors", "DETECTOR_TYPES"]
