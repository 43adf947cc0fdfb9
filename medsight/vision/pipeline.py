"""Scoring a radiograph end to end: load -> input contract -> frozen backbone -> detector -> calibrated result.

`AnomalyPipeline` is the one door the CLI, the app and the chat use; it holds a backbone and a detector.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from medsight import config
from medsight.imaging.load import LoadedImage, load_image
from medsight.imaging.preprocess import to_backbone_tensor, to_square
from medsight.vision.features import maps_from_taps
from medsight.vision.backbone import VGG16Taps, forward_taps, load_backbone
from medsight.vision.detectors import Detector, load_detector
from medsight.vision.detectors.catalog import DEFAULT_DETECTOR, MAP_DETECTOR

DISCLAIMER = ("MedSight is a teaching and research tool, not a medical device. Its scores are not a diagnosis; "
              "a qualified clinician must interpret every radiograph.")


@dataclass
class ScoreResult:
    """One scored radiograph. When the gate rejects the image (not a frontal chest film), `scored` is False, `risk`
    is None and `reasons` says why: the anomaly score is still computed (the app's teaching view shows it, marked
    as meaningless) but no risk band is given anywhere."""

    file: str
    anomaly_score: float
    risk: str | None
    components: dict[str, float]
    threshold: float
    normal_percentile: float
    latency_ms: float
    detector: str
    flagged: bool
    gate: dict = field(default_factory=dict)
    scored: bool = True
    reasons: list[str] = field(default_factory=list)
    #: what the loader did to the file (transparency flattened, extra frames ignored, downscaled), plain sentences
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class AnomalyPipeline:
    def __init__(self, backbone: VGG16Taps, detector: Detector, ood_state: dict | None = None,
                 map_detector: Detector | None = None):
        self.backbone = backbone
        self.detector = detector
        self.ood_state = ood_state  # feature-space "is this a chest film?" check (medsight.vision.ood), optional
        #: for a detector without a patch-level map: a detector that has one (patchcore), read from the same maps
        self.map_detector = map_detector if (map_detector is not None and not detector.has_anomaly_map) else None
        if detector.calibration is None:
            raise ValueError(f"detector {detector.name!r} has no calibration")

    @classmethod
    def load(cls, detector: str = DEFAULT_DETECTOR, device: str | None = None, weights_dir: str | Path | None = None,
             backbone_source: str = "auto", backbone: VGG16Taps | None = None,
             get_detector: Callable[[str], Detector] | None = None, site=None) -> "AnomalyPipeline":
        """The one load path of the CLI, the app and the chat: backbone, detector, its companion map detector and
        the feature-space OOD state of the gate. The app passes the registry's shared `backbone` and its
        `get_detector` (name -> loaded detector) so that nothing is loaded twice; the rest is the same. `site`: a
        site profile (its name under $MEDSIGHT_HOME/sites, or a `SiteProfile`) whose normals become the detectors'
        reference and calibration (`medsight.vision.sites`); None changes nothing."""
        from medsight.vision.detectors import available_detectors

        directory = Path(weights_dir or config.WEIGHTS_DIR)
        get = get_detector or (lambda name: load_detector(directory, name))
        det = get(detector)
        companion = None
        if not det.has_anomaly_map and MAP_DETECTOR in available_detectors(directory):
            companion = get(MAP_DETECTOR)
        if site is not None:
            from medsight.vision.sites import resolve

            profile = resolve(site)
            det = profile.adapt(det)
            if companion is not None and companion.name in profile.detectors:
                companion = profile.adapt(companion)
        if backbone is None:
            backbone = load_backbone(backbone_source, device)
        return cls(backbone, det, _ood_state(directory), companion)

    @property
    def device(self) -> str:
        return next(self.backbone.parameters()).device.type

    def maps(self, images: list[np.ndarray]) -> np.ndarray:
        """uint8 grayscale images -> N x 1280 x 14 x 14 feature maps (float32)."""
        taps = forward_taps(self.backbone, to_backbone_tensor([to_square(g) for g in images]))
        return maps_from_taps(taps).cpu().numpy()

    def score_images(self, images: list[LoadedImage], names: list[str] | None = None) -> list[ScoreResult]:
        t0 = time.perf_counter()
        maps = self.maps([im.pixels for im in images])
        return self._results(images, names, maps, t0)

    def _results(self, images: list[LoadedImage], names: list[str] | None, maps: np.ndarray, t0: float) -> list[ScoreResult]:
        from medsight.imaging.gate import check_frontal_cxr
        from medsight.vision.ood import ood_check

        sig = self.detector.signals(maps)
        oods = ood_check(maps, self.ood_state) if self.ood_state else [None] * len(images)
        per_image_ms = (time.perf_counter() - t0) * 1000 / max(len(images), 1)
        cal = self.detector.calibration
        out = []
        for i, im in enumerate(images):
            score = float(sig["score"][i])
            gate = check_frontal_cxr(im, oods[i])
            out.append(ScoreResult(
                file=(names[i] if names else f"image{i}"),
                anomaly_score=round(score, 6),
                risk=cal.risk_band(score) if gate.ok else None,
                components={k: round(float(sig[k][i]), 6) for k in self.detector.components if k in sig},
                threshold=round(cal.threshold, 6),
                normal_percentile=round(cal.normal_percentile(score), 2),
                latency_ms=round(per_image_ms, 2),
                detector=self.detector.name,
                flagged=bool(gate.ok and score >= cal.threshold),
                gate=gate.to_dict(),
                scored=gate.ok,
                reasons=list(gate.reasons),
                notes=list(getattr(im, "notes", None) or []),
            ))
        return out

    def score_with_map(self, source: LoadedImage | str | Path | bytes, name: str | None = None) -> tuple[ScoreResult, np.ndarray, str]:
        """Score and a map from one backbone pass: the detector's own patch-level anomaly map where it has one, else
        the companion map detector's (`anomaly_map:patchcore`), else Grad-CAM. Returns (result, 224x224 map on the
        normal films' scale (`medsight.vision.explain`), method)."""
        from medsight.vision.explain import explain

        image = source if isinstance(source, LoadedImage) else load_image(source, name)
        t0 = time.perf_counter()
        gray = to_square(image.pixels)
        maps = self.maps([gray])
        result = self._results([image], [name or "upload"], maps, t0)[0]
        if self.detector.has_anomaly_map or self.map_detector is not None:
            from medsight.vision.explain import map_from_maps

            heat, method = map_from_maps(self, maps)
        else:
            heat, method = explain(self, gray, "gradcam"), "gradcam"
        result.latency_ms = round((time.perf_counter() - t0) * 1000, 2)
        return result, heat, method

    def score(self, source: LoadedImage | str | Path | bytes, name: str | None = None) -> ScoreResult:
        image = source if isinstance(source, LoadedImage) else load_image(source, name)
        if name is None and isinstance(source, (str, Path)):
            name = str(source)
        return self.score_images([image], [name or "upload"])[0]


def _ood_state(directory: Path) -> dict | None:
    """The gate's feature-space OOD state stored beside the detectors (read once per folder and file version)."""
    from medsight.vision.ood import OOD_NAME, load_ood

    meta = directory / f"{OOD_NAME}.json"
    key = (str(directory), meta.stat().st_mtime if meta.exists() else 0.0)
    with _OOD_LOCK:
        if key not in _OOD_CACHE:
            _OOD_CACHE[key] = load_ood(directory)
        return _OOD_CACHE[key]


_OOD_CACHE: dict[tuple, dict | None] = {}
_OOD_LOCK = threading.Lock()
