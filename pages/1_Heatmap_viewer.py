"""Heatmap viewer: the library's explanation methods side by side or one at a time, on the normal films' scale (or
stretched per image, labelled), with a colour bar, opacity, threshold, CLAHE and the paper's clinical rendering
(section 4.6)."""

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
    from medsight.vision.explain import SPATIAL_NOTE, map_meaning, stretch
    from medsight.vision.render import clahe, colour_bar, render_overlay

    methods = state.heatmap_methods(detector)
    with state.vision_pipeline(detector) as pipeline:
        meanings = {m: map_meaning(pipeline, m) for m in methods}
except ModelUnavailable as exc:
    state.show_unavailable(exc)
    st.stop()

STRETCHED = "Stretched per image (every film looks equally strong)"
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
    scale = st.radio("Colour scale", ["Normal films' scale (the same colour means the same on every film)", STRETCHED],
                     key="heatmap_scale",
                     help="On the normal films' scale, 1.0 is what only the most unusual 1% of held-out training "
                          "normals reach, so a film that scores LOW looks quiet. Stretched, each map runs from its own "
                          "minimum to its own maximum: fine for the shape, not for how strong it is.")
    stretched = scale == STRETCHED
    clinical = st.toggle("Clinical rendering (paper 4.6: black-red-orange-yellow LUT)", value=True, key="heatmap_clinical")
    use_clahe = st.toggle("CLAHE on the radiograph", value=True, key="heatmap_clahe")
    opacity = st.slider("Opacity (maximum alpha)", 0.0, 1.0, 0.65, 0.05, key="heatmap_opacity")
    threshold = st.slider("Hide map values below (share of the colour scale)", 0.0, 1.0, 0.0, 0.05, key="heatmap_threshold")
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
            meaning = meanings[method]
            absolute = meaning.absolute and not stretched
            shown = heatmap if absolute else stretch(heatmap)
            vmax = meaning.display_max if absolute else None
            column.image(render_overlay(square, shown, opacity, threshold * (vmax or 1.0), use_clahe, clinical, vmax),
                         caption=f"{method} ({'normal films’ scale' if absolute else 'stretched per image'})",
                         width="stretch")
            unit = ("stretched per image (your choice): min = this film's lowest value, max = its highest"
                    if stretched else meaning.unit)
            column.image(colour_bar(vmax, clinical, caption=unit), width="stretch")
            if absolute:
                column.caption(f"Highest value on this film: {float(heatmap.max()):.2f}.")
            if meaning.note:
                column.caption(f"Note: {meaning.note}.")
            if method == "latent_attention":
                column.caption(SPATIAL_NOTE)
            note = views.faithfulness_note(detector, method)
            if note:
                column.caption(note)
    if not chosen:
        st.info("Pick at least one method.")
st.caption("A heatmap shows which parts of the input moved the anomaly score; it is not a lesion outline. "
           + state.disclaimer())
