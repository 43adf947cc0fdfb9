"""Heatmap viewer: the library's explanation methods side by side or one at a time, with opacity, threshold, CLAHE
and the paper's clinical rendering (section 4.6)."""

from __future__ import annotations

import streamlit as st

from medsight import app_state as state
from medsight import app_views as views
from medsight.imaging.preprocess import to_square
from medsight.registry import ModelUnavailable

state.page_setup("Heatmap viewer")
st.title("Heatmap viewer")

study = state.current_study()
if study is None:
    st.info("No radiograph yet: upload one or pick a sample on the Upload & score page first.")
    st.markdown("[Go to Upload & score](/)")
    st.stop()

detectors = state.available_detectors()
if not detectors:
    st.error("No trained detector weights found; see the Model status page.")
    st.stop()
detector = state.active_detector()
try:
    from medsight.vision.explain import SPATIAL_NOTE
    from medsight.vision.render import clahe, render_overlay

    methods = state.heatmap_methods(detector)
except ModelUnavailable as exc:
    state.show_unavailable(exc)
    st.stop()

controls, view = st.columns([1, 3])
with controls:
    layout = st.radio("Layout", ["Side by side", "One at a time"], key="heatmap_layout")
    if layout == "Side by side":
        # A cheap map (the paper's latent attention or a patch anomaly map) beside Grad-CAM (a backward pass).
        cheap = [m for m in methods if m == "latent_attention" or m.startswith("anomaly_map")]
        default = list(dict.fromkeys(cheap[:1] + [m for m in methods if m.startswith("gradcam")][:1]))
        chosen = st.multiselect("Methods", methods, default=default, key="heatmap_methods")
    else:
        chosen = [st.selectbox("Method", methods, key="heatmap_method")]
    clinical = st.toggle("Clinical rendering (paper 4.6: black-red-orange-yellow LUT, adaptive alpha)", value=True,
                         key="heatmap_clinical")
    use_clahe = st.toggle("CLAHE on the radiograph", value=True, key="heatmap_clahe")
    opacity = st.slider("Opacity (maximum alpha)", 0.0, 1.0, 0.65, 0.05, key="heatmap_opacity")
    threshold = st.slider("Hide map values below", 0.0, 1.0, 0.0, 0.05, key="heatmap_threshold")
    st.caption(f"Detector: {detector}. Maps are at the 224x224 square the backbone saw (centre crop).")

square = to_square(study.image.pixels)
with view:
    columns = st.columns(1 + len(chosen))
    columns[0].image(clahe(square) if use_clahe else square, caption="original" + (" (CLAHE)" if use_clahe else ""),
                     width="stretch")
    for column, method in zip(columns[1:], chosen):
        with column, st.spinner(f"Computing {method}…"):
            try:
                heatmap = state.study_heatmap(study, detector, method)
            except Exception as exc:  # noqa: BLE001 - one failing method must not hide the others; logged loudly
                state.log.exception("heatmap %s failed", method)
                column.error(f"{method} failed: {type(exc).__name__}: {exc}")
                continue
            column.image(render_overlay(square, heatmap, opacity, threshold, use_clahe, clinical),
                         caption=f"{method}", width="stretch")
            if method == "latent_attention":
                column.caption(SPATIAL_NOTE)
            note = views.faithfulness_note(detector, method)
            if note:
                column.caption(note)
    if not chosen:
        st.info("Pick at least one method.")
st.caption("A heatmap shows which parts of the input moved the anomaly score; it is not a lesion outline. "
           + state.disclaimer())
