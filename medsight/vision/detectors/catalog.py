"""The one list of MedSight's detectors: for each name, its detector kind, the configuration `medsight train` fits
it with, and the label the app shows. Training, the app and the evaluation read it from here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DetectorRecipe:
    kind: str  # a key of medsight.vision.detectors.DETECTOR_TYPES
    label: str  # what the app's detector picker shows
    config: dict = field(default_factory=dict)


#: the default detector: chosen on dev by the mean of the three controlled AUROCs (see README results)
DEFAULT_DETECTOR = "fused_lungs"
#: the detector whose patch-level anomaly map accompanies detectors that have none (same backbone pass)
MAP_DETECTOR = "patchcore"

_WHOLE_RELU4 = {"layer": "relu4_3", "region": None, "centred": False}
_WHOLE_RELU4_CENTRED = {"layer": "relu4_3", "region": None, "centred": True}
_LUNGS_RELU3_CENTRED = {"layer": "relu3_3", "region": [3, 12, 2, 12], "centred": True}

CATALOG: dict[str, DetectorRecipe] = {
    "paper": DetectorRecipe("paper_vae_vit", "paper: VAE + ViT (the source paper's detector)"),
    "knn": DetectorRecipe("pooled_knn", "knn: k nearest normals, pooled relu4_3", {"members": [_WHOLE_RELU4]}),
    "knn_centred": DetectorRecipe("pooled_knn", "knn_centred: k-NN on features centred on the mean normal",
                                  {"members": [_WHOLE_RELU4_CENTRED, _LUNGS_RELU3_CENTRED]}),
    # the same three views with augmented normals (incl. resampled / re-encoded) in the bank
    "knn_fused": DetectorRecipe("pooled_knn", "knn_fused: three k-NN views fused, augmented bank",
                                {"bank_augmented": True,
                                 "members": [_WHOLE_RELU4, _WHOLE_RELU4_CENTRED, _LUNGS_RELU3_CENTRED]}),
    "knn_fused_noaug": DetectorRecipe("pooled_knn", "knn_fused_noaug: knn_fused without augmented normals",
                                      {"members": [_WHOLE_RELU4, _WHOLE_RELU4_CENTRED, _LUNGS_RELU3_CENTRED]}),
    "patchcore": DetectorRecipe("patchcore", "patchcore: patch memory bank in the lung field (own anomaly map)",
                                {"layers": ["relu3_3", "relu4_3"]}),
    # the paper's "multi-scale latent analysis" (8.2): one VAE per VGG block, fused by held-out z-scores
    "paper_multiscale": DetectorRecipe("multiscale_vae",
                                       "paper_multiscale: one VAE per VGG block (the paper's multi-scale future work)"),
    # needs knn_fused and patchcore trained first (in the same run or folder)
    "fused_lungs": DetectorRecipe("fusion", "fused_lungs: centred k-NN views + lung-field patch distance (default)",
                                  {"parts": [["knn_fused", "relu4_3_full_centred"], ["knn_fused", "relu3_3_lungs_centred"],
                                             ["patchcore", "mean_patch_distance"]]}),
}


def label(name: str) -> str:
    return CATALOG[name].label if name in CATALOG else name
