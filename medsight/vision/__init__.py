"""Vision: the frozen backbone, detectors (the paper's VAE + ViT and feature-space detectors), calibration,
scoring and explanations."""

from medsight.vision.pipeline import DEFAULT_DETECTOR, DISCLAIMER, AnomalyPipeline, ScoreResult

__all__ = ["AnomalyPipeline", "ScoreResult", "DEFAULT_DETECTOR", "DISCLAIMER"]
