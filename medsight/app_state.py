"""The app's process-wide resources (`st.cache_resource`) and each user's study (`st.session_state`), plus the chrome
every page shares. The one module of `medsight` that imports Streamlit; pages import it, the library never does.

Nothing here writes what a user uploads or types to disk: images, notes and chat live in the session only.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import streamlit as st

from medsight.case import Case
from medsight.imaging import LoadedImage
from medsight.vision.detectors.catalog import CATALOG, DEFAULT_DETECTOR
from medsight.registry import APP_MODELS, ModelRegistry, ModelUnavailable, build_app_registry

log = logging.getLogger(__name__)

APP_TITLE = "MedSight"
#: the detector picker's labels, from the one catalogue of detectors
DETECTOR_LABELS = {name: recipe.label for name, recipe in CATALOG.items()}


def preload_keys() -> list[str]:
    """Models loaded in the background at start-up: `MEDSIGHT_PRELOAD` = all (default) | none | comma list."""
    value = os.environ.get("MEDSIGHT_PRELOAD", "all").strip().lower()
    from medsight import config
    from medsight.vision.detectors import available_detectors

    keys = ["vgg16", *available_detectors(config.WEIGHTS_DIR), *APP_MODELS[2:]]
    if value == "all":
        from medsight.chat.cascade import DEFAULT_TIERS

        tiers = os.environ.get("MEDSIGHT_CHAT_TIERS", DEFAULT_TIERS)
        # the local generator is off the default chat path (docs/chat.md): load it only where it is asked for
        return [k for k in keys if k != "chat_local" or "local" in tiers]
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
    """The same AnomalyPipeline as the CLI's (`AnomalyPipeline.load`: detector, companion map detector, the gate's
    feature-space check) over the registry's shared backbone and detectors, pinned on its device while in use.
    Raises ModelUnavailable (one sentence) when the weights are missing."""
    from medsight.vision import AnomalyPipeline

    registry = get_registry()
    with registry.use("vgg16") as backbone:
        yield AnomalyPipeline.load(detector, backbone=backbone, get_detector=registry.get, site=active_site())


def available_detectors() -> list[str]:
    """Detectors whose weights exist (the status page explains the others)."""
    from medsight import config

    from medsight.vision.detectors import available_detectors as trained

    names = trained(config.WEIGHTS_DIR)
    return sorted(names, key=lambda d: (d != DEFAULT_DETECTOR, d))


def model_version(detector: str) -> str:
    """'paper (paper_vae_vit), trained 2026-11-28 09:14 UTC, weights sha256 1a2b3c4d5e6f' for reports and pages."""
    from medsight.report import model_version as version

    return version(detector)


# -- the user's case ------------------------------------------------------------------------------------------------
#: the app's name for a case (one radiograph and everything derived from it in this session)
Study = Case


def active_detector() -> str:
    """The detector the user chose on the upload page; every page uses it (kept outside widget state, which
    Streamlit drops when the widget is not on the page)."""
    detectors = available_detectors()
    chosen = st.session_state.get("active_detector")
    if chosen not in detectors:
        chosen = detectors[0] if detectors else DEFAULT_DETECTOR
        st.session_state["active_detector"] = chosen
    return chosen


def set_active_detector(detector: str) -> None:
    st.session_state["active_detector"] = detector
    case = current_study()
    if case is not None:
        case.detector = detector


def current_study() -> Case | None:
    """The session's case when it has a radiograph, else None."""
    case = st.session_state.get("study")
    return case if case is not None and case.image is not None else None


def set_study(image: LoadedImage, name: str, origin: str, sample: dict | None = None, digest: str = "") -> Case:
    """A new radiograph starts a new case; a note analysed with the previous one is dropped with it."""
    case = Case(name=name, image=image, origin=origin, sample=sample or {}, digest=digest, detector=active_detector())
    st.session_state["study"] = case
    st.session_state.pop("note_analysis", None)
    st.session_state.pop("report_pdf", None)
    return case


def score_study(study: Case, detector: str | None = None):
    """Score (once per detector) and keep the result on the case."""
    detector = detector or study.detector
    if detector not in study.results:
        with vision_pipeline(detector) as pipeline:
            study.score(pipeline)
    return study.results[detector]


def study_heatmap(study: Case, detector: str, method: str) -> np.ndarray:
    key = (detector, method)
    if key not in study.heatmaps:
        from medsight.vision.explain import explain

        with vision_pipeline(detector) as pipeline:
            study.heatmaps[key] = explain(pipeline, study.image, method)
    return study.heatmaps[key]


def case_report(study: Case) -> tuple[bytes, list[tuple[str, str]]]:
    """The PDF report of the case with the active detector (`medsight.report.case_report`, as `medsight report`)."""
    from medsight.report import case_report as build

    with vision_pipeline(study.detector) as pipeline:
        return build(study, pipeline)


def heatmap_methods(detector: str) -> list[str]:
    from medsight.vision.explain import available_methods

    with vision_pipeline(detector) as pipeline:
        return available_methods(pipeline)


def note_analysis():
    """The note analysed in this session (kept with the case it was compared with), or None."""
    return st.session_state.get("note_analysis")


def set_note_analysis(analysis) -> None:
    st.session_state["note_analysis"] = analysis
    case = current_study()
    if case is not None:
        case.note = analysis


def case_for_chat() -> dict:
    """The current case as plain data for `medsight.chat.chat` (`Case.to_chat`), the note included even when no
    radiograph was scored."""
    case = current_study()
    analysis = note_analysis()
    if case is None:
        case = Case(name="", note=analysis)
    else:
        case.detector = active_detector()
        case.note = analysis
    return case.to_chat()


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
                st.markdown(f"**{det}**: " + (f"{res.anomaly_score:.3f} · {res.risk}" if res.scored
                                               else "not a frontal chest film: no risk band"))
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


__all__ = ["ModelUnavailable", "Case", "Study", "active_detector", "set_active_detector", "note_analysis",
           "set_note_analysis", "case_for_chat", "current_study", "get_registry", "page_setup", "score_study",
           "set_study", "study_heatmap", "vision_pipeline", "model_version", "available_detectors", "heatmap_methods"]


# -- site profile (issue 13) ------------------------------------------------------------------------------------------
def active_site():
    """The session's site profile (`medsight.vision.sites.SiteProfile`: a saved one, or one fitted in this session
    and not saved), or None: the shipped reference. A saved profile removed meanwhile falls back to None."""
    site = st.session_state.get("active_site")
    if isinstance(site, str):
        from medsight.vision.sites import SiteError, resolve

        try:
            return resolve(site)
        except SiteError:
            st.session_state.pop("active_site", None)
            return None
    return site


def set_active_site(site) -> None:
    """Use a profile (its name, a `SiteProfile`, or None) from now on; the current case's scores and maps, made
    against the other reference, are dropped and made again on the next page that needs them."""
    st.session_state["active_site"] = site
    case = current_study()
    if case is not None:
        case.results.clear()
        case.heatmaps.clear()
