"""Vision: the frozen backbone, detectors (the paper's VAE + ViT and feature-space detectors), calibration,
scoring and explanations."""

from medsight.vision.pipeline import DEFAULT_DETECTOR, DISCLAIMER, AnomalyPipeline, ScoreResult, score_file

__all__ = ["AnomalyPipeline", "ScoreResult", "score_file", "DEFAULT_DETECTOR", "DISCLAIMER"]
