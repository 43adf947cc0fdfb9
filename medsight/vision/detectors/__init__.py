"""Anomaly detectors over frozen-backbone feature maps. Each is a small class with `signals(maps)` returning
named raw signals plus `score` (higher = more anomalous), optional `anomaly_map(maps)`, and save / load."""

from pathlib import Path

from medsight.vision.detectors import base
from medsight.vision.detectors.base import DETECTOR_TYPES, Detector, available_detectors
from medsight.vision.detectors import fusion, knn, multiscale_vae, paper, patchcore, student  # noqa: F401  (register the detector kinds)

__all__ = ["Detector", "load_detector", "available_detectors", "DETECTOR_TYPES"]


def load_detector(directory: str | Path, name: str) -> Detector:
    """`base.load_detector`, for names of trained detectors only: any other name (a misspelling, or another
    artefact of the weights folder such as the gate's `ood` check) is a FileNotFoundError naming the real ones."""
    if name not in available_detectors(directory):
        known = ", ".join(available_detectors(directory)) or "none (train some with `medsight train`)"
        raise FileNotFoundError(f"there is no trained detector named {name!r} in {directory}; the detectors are: {known}.")
    return base.load_detector(directory, name)
