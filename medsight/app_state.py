"""The app's process-wide resources (`st.cache_resource`) and each user's study (`st.session_state`), plus the chrome
every page shares. The one module of `medsight` that imports Streamlit; pages import it, the library never does.

Nothing here writes what a user uploads or types to disk: images, notes and chat live in the session only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import streamlit as st

from medsight.imaging import LoadedImage
from medsight.vision.pipeline import DEFAULT_DETECTOR, MAP_DETECTOR
from medsight.registry import APP_MODELS, ModelRegistry, ModelUnavailable, build_app_registry

log = logging.getLogger(__name__)

APP_TITLE = "MedSight"
DETECTOR_LABELS = {
    "paper": "paper: VAE + ViT (the source paper's detector)",
    "paper_multiscale": "paper_multiscale: one VAE per VGG block (the paper's multi-scale future work)",
    "knn": "knn: k nearest normals, pooled relu4_3",
    "knn_fused": "knn_fused: three k-NN views fused, augmented bank",
    "fused_lungs": "fused_lungs: centred k-NN views + lung-field patch distance (default)",
    "patchcore": "patchcore: patch memory bank in the lung field (own anomaly map)",
}


def preload_keys() -> list[str]:
    """Models loaded in the background at start-up: `MEDSIGHT_PRELOAD` = all (default) | none | comma list."""
    value = os.environ.get("MEDSIGHT_PRELOAD", "all").strip().lower()
    from medsight import config
    from medsight.vision.detectors import available_detectors

    keys = ["vgg16", *available_detectors(config.WEIGHTS_DIR), *APP_MODELS[2:]]
    if value == "all":
        return keys
    if value in ("", "none"):
        return []
    return [k.strip() for k in value.split(",") if k.strip() in keys]


@st.cache_resource(show_spinner=False)
def get_registry() -> ModelRegistry:
    """One registry per process, shared by every browser session; starts loading in priority order at once."""
    registry = build_app_registry()
    keys = preload_keys()
    if keys:
        registry.start_background(keys)
    return registry


@contextmanager
def vision_pipeline(detector: str = DEFAULT_DETECTOR) -> Iterator[Any]:
    """An AnomalyPipeline over the shared backbone and detector, pinned on its device while in use.
    Raises ModelUnavailable (one sentence) when the weights are missing."""
    from medsight.vision import AnomalyPipeline

    registry = get_registry()
    with registry.use("vgg16") as backbone:
        companion = None
        if detector != MAP_DETECTOR and MAP_DETECTOR in available_detectors():
            try:
                companion = registry.get(MAP_DETECTOR)
            except ModelUnavailable:
                companion = None
        yield AnomalyPipeline(backbone, registry.get(detector), map_detector=companion)


def available_detectors() -> list[str]:
    """Detectors whose weights exist (the status page explains the others)."""
    from medsight import config

    from medsight.vision.detectors import available_detectors as trained

    names = trained(config.WEIGHTS_DIR)
    return sorted(names, key=lambda d: (d != DEFAULT_DETECTOR, d))


def model_version(detector: str) -> str:
    """'paper (paper_vae_vit), trained 2026-11-28 09:14 UTC, weights sha256 1a2b3c4d5e6f' for reports and pages."""
    return _model_version(detector, _weights_mtime(detector))


@st.cache_data(show_spinner=False)
def _model_version(detector: str, _mtime: float) -> str:
    import json

    from medsight import config

    meta_path, tensors = config.WEIGHTS_DIR / f"{detector}.json", config.WEIGHTS_DIR / f"{detector}.safetensors"
    if not meta_path.is_file():
        return f"{detector} (no weights)"
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256(tensors.read_bytes()).hexdigest()[:12] if tensors.is_file() else "?"
    trained = (meta.get("card") or {}).get("trained_at", "unknown date")
    return f"{detector} ({meta.get('kind', '?')}), trained {trained}, weights sha256 {digest}"


def _weights_mtime(detector: str) -> float:
    from medsight import config

    path = config.WEIGHTS_DIR / f"{detector}.safetensors"
    return path.stat().st_mtime if path.is_file() else 0.0


# -- the user's study ----------------------------------------------------------------------------------------------
@dataclass
class Study:
    """One radiograph and everything derived from it in this session."""

    name: str
    image: LoadedImage
    origin: str  # "upload" or "sample"
    sample: dict = field(default_factory=dict)  # label, source, licence of a sample image
    results: dict = field(default_factory=dict)  # detector -> ScoreResult
    heatmaps: dict = field(default_factory=dict)  # (detector, method) -> HxW map in [0, 1]
    digest: str = ""

    def result(self, detector: str):
        return self.results.get(detector)


def current_study() -> Study | None:
    return st.session_state.get("study")


def set_study(image: LoadedImage, name: str, origin: str, sample: dict | None = None, digest: str = "") -> Study:
    study = Study(name=name, image=image, origin=origin, sample=sample or {}, digest=digest)
    st.session_state["study"] = study
    st.session_state.pop("note_analysis", None)  # a note belongs to the study it was analysed with
    return study


def score_study(study: Study, detector: str):
    """Score (once per detector) and keep the result on the study."""
    if detector not in study.results:
        with vision_pipeline(detector) as pipeline:
            study.results[detector] = pipeline.score(study.image, study.name)
    return study.results[detector]


def study_heatmap(study: Study, detector: str, method: str) -> np.ndarray:
    key = (detector, method)
    if key not in study.heatmaps:
        from medsight.vision.explain import explain

        with vision_pipeline(detector) as pipeline:
            study.heatmaps[key] = explain(pipeline, study.image, method)
    return study.heatmaps[key]


#: heatmap the report prefers: a spatial one first (the latent attention map has no spatial layout)
REPORT_METHODS = ("anomaly_map", f"anomaly_map:{MAP_DETECTOR}", "gradcam", "latent_attention")  # cheapest first


def report_heatmap(study: Study, detector: str) -> tuple[str | None, np.ndarray | None, list[tuple[str, str]]]:
    """(method, map, failures) for the PDF: the first of REPORT_METHODS the detector offers that computes; a method
    that fails is logged with its traceback and reported on the page, not hidden."""
    failures = []
    methods = heatmap_methods(detector)
    for method in [m for m in REPORT_METHODS if m in methods]:
        try:
            return method, study_heatmap(study, detector, method), failures
        except Exception as exc:  # noqa: BLE001 - shown to the user and logged loudly below
            log.exception("heatmap %s failed", method)
            failures.append((method, f"{type(exc).__name__}: {exc}"))
    return None, None, failures


def heatmap_methods(detector: str) -> list[str]:
    from medsight.vision.explain import available_methods

    with vision_pipeline(detector) as pipeline:
        return available_methods(pipeline)


def case_for_chat() -> dict:
    """The current case as plain data for `medsight.chat.chat` and `medsight.nlp` fusion."""
    study, case = current_study(), {}
    if study is not None:
        detector = st.session_state.get("detector", DEFAULT_DETECTOR)
        result = study.result(detector) or next(iter(study.results.values()), None)
        if result is not None:
            case["vision"] = {"anomaly_score": result.anomaly_score, "risk_band": result.risk, "threshold": result.threshold,
                              "components": result.components, "detector": result.detector}
    analysis = st.session_state.get("note_analysis")
    if analysis is not None:
        case["note"] = analysis.to_dict()
        case["note"]["text"] = analysis.text
    return case


# -- shared chrome ----------------------------------------------------------------------------------------------------
def page_setup(title: str, icon: str = "🩻") -> ModelRegistry:
    """Page config, the registry (started on whichever page a user opens first) and the sidebar. Call first."""
    st.set_page_config(page_title=f"{title} - {APP_TITLE}", page_icon=icon, layout="wide")
    registry = get_registry()
    with st.sidebar:
        study = current_study()
        if study is not None:
            st.caption("Current study")
            st.image(study.image.pixels, caption=study.name, width=160)
            for det, res in study.results.items():
                st.markdown(f"**{det}**: {res.anomaly_score:.3f} · {res.risk}")
        else:
            st.caption("No study yet: upload a radiograph or pick a sample on the main page.")
        status = registry.status()
        ready = sum(m["state"] == "loaded" for m in status["models"])
        st.caption(f"Models ready: {ready}/{len(status['models'])} on {status['device']}"
                   + (" (loading in the background)" if status["loading"] else ""))
        st.caption(disclaimer())
    return registry


def disclaimer() -> str:
    from medsight.vision import DISCLAIMER

    return DISCLAIMER


def show_unavailable(exc: Exception) -> None:
    st.error(f"{exc} The Model status page shows what is loaded.")


__all__ = ["ModelUnavailable", "Study", "case_for_chat", "current_study", "get_registry", "page_setup", "score_study",
           "set_study", "study_heatmap", "vision_pipeline", "model_version", "available_detectors", "heatmap_methods"]
