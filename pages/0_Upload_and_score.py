"""Upload & score: the app's first page (app.py routes to it). Thin: session state in, library calls, widgets out.
Scoring goes through the same `AnomalyPipeline.load` as the CLI, gate included: an image the gate rejects gets no
risk band (the teaching "score anyway" shows its meaningless number, marked as such)."""

from __future__ import annotations

import dataclasses
import hashlib

import streamlit as st

from medsight import app_state as state
from medsight import app_views as views
from medsight.imaging import ImageLoadError, load_image
from medsight.imaging.orientation import turn_upright
from medsight.registry import ModelUnavailable
from medsight.samples import list_samples, samples_dir

registry = state.page_setup("Upload & score")
st.title("MedSight: upload & score")
st.caption("Unsupervised chest X-ray anomaly detection for teaching: the model learnt what normal radiographs look "
           "like and scores how unusual a new one is. " + state.disclaimer())

detectors = state.available_detectors()
if not detectors:
    st.error("No trained detector weights found (weights/paper.json). Run `medsight train` or `bash scripts/setup.sh`.")
    st.stop()
detector = state.active_detector()
st.session_state["detector_select"] = detector  # the widget follows the session's choice on every page visit
st.selectbox("Detector", detectors, key="detector_select", format_func=lambda d: state.DETECTOR_LABELS.get(d, d),
             on_change=lambda: state.set_active_detector(st.session_state["detector_select"]),
             help="Used on every page: heatmaps, notes, chat and the report.")

upload_col, sample_col = st.columns([3, 2])
with upload_col:
    uploaded = st.file_uploader("Upload a chest radiograph (PNG, JPEG or DICOM)", key="upload",
                                help="Read in memory only; nothing you upload is written to disk. Identifying DICOM tags are never read.")
    if uploaded is not None:
        data = uploaded.getvalue()
        digest = hashlib.sha1(data).hexdigest()
        study = state.current_study()
        if study is None or study.digest != digest:
            try:
                state.set_study(load_image(data, uploaded.name), uploaded.name, "upload", digest=digest)
                st.rerun()  # the sidebar (drawn first) shows the new study
            except ImageLoadError as exc:
                st.session_state.pop("study", None)
                st.error(str(exc))
with sample_col:
    samples = list_samples()
    if samples:
        choice = st.selectbox("…or pick a sample radiograph", range(len(samples)), key="sample_choice",
                              format_func=lambda i: samples[i].title)
        sample = samples[choice]
        st.caption(f"Source: {sample.source} ({sample.dataset}) · Licence: {sample.license} · label: {sample.label}")
        if st.button("Use this sample", key="use_sample"):
            state.set_study(load_image(sample.path), sample.path.name, "sample",
                            sample={"label": sample.label, "source": sample.source, "license": sample.license,
                                    "dataset": sample.dataset}, digest=f"sample:{sample.path}")
            st.rerun()
    else:
        st.caption(f"No sample folder found (set MEDSIGHT_SAMPLES, or run `python scripts/fetch_samples.py`). "
                   f"Looked for {samples_dir() or 'a manifest.csv'}.")

study = state.current_study()
if study is None:
    st.info("Upload a radiograph or pick a sample to score it.")
    st.stop()

image_col, result_col = st.columns([2, 3])
with image_col:
    st.image(study.image.pixels, caption=f"{study.name} · {study.image.source_format} · "
             f"{study.image.original_shape[1]}x{study.image.original_shape[0]} px", width="stretch")
    if study.image.info.get("Modality"):
        st.caption("DICOM: " + ", ".join(f"{k} {v}" for k, v in study.image.info.items()))
    for note in getattr(study.image, "notes", None) or []:
        st.caption(f"ℹ️ {note}")
    if study.sample:
        st.caption(f"Sample from {study.sample['source']} ({study.sample['dataset']}), licence: {study.sample['license']}; "
                   f"dataset label: {study.sample['label']}")

try:
    fresh = detector not in study.results
    with st.spinner("Scoring…"):
        result = state.score_study(study, detector)
except ModelUnavailable as exc:
    state.show_unavailable(exc)
    st.stop()
if fresh:
    st.rerun()  # the sidebar (drawn first) shows the new score
with result_col:
    if not result.scored:
        st.warning("**This does not look like a frontal chest X-ray**, so no score is shown: "
                   + "; ".join(result.reasons) + ". The detector was trained on frontal chest radiographs only; "
                   "its score would be meaningless here.")
        turned = result.gate.get("checks", {}).get("orientation", "upright")
        if turned != "upright" and st.button("Turn it upright", key="turn_upright",
                                             help="Undo the turn the orientation check found, then check it again."):
            image = dataclasses.replace(study.image, pixels=turn_upright(study.image.pixels, turned))
            state.set_study(image, f"{study.name} (turned upright)", study.origin, sample=study.sample, digest=study.digest)
            st.rerun()
        if not st.checkbox("Score it anyway (for teaching: see how the detector reacts to the wrong input)", key="force_score"):
            st.stop()
        st.markdown("<div style='font-size:1.1rem'>Risk band: <span id='risk-band-none' style='background:#757575;"
                    "color:white;padding:4px 12px;border-radius:6px;font-weight:700'>none: not a chest film</span></div>",
                    unsafe_allow_html=True)
    else:
        colour = views.RISK_COLOURS[result.risk]
        st.markdown(f"<div style='font-size:1.1rem'>Risk band: <span id='risk-band' style='background:{colour};color:white;"
                    f"padding:4px 12px;border-radius:6px;font-weight:700'>{result.risk}</span></div>", unsafe_allow_html=True)
    m1, m2, m3 = st.columns(3)
    m1.metric("Anomaly score", f"{result.anomaly_score:.3f}", help="Higher = less like the normal radiographs the model learnt from.")
    m2.metric("Threshold", f"{result.threshold:.3f}", help="95% of held-out normal radiographs score below it.")
    m3.metric("Normals scoring lower", f"{result.normal_percentile:.1f}%")
    if not result.scored:
        st.caption("⚠️ Scored despite the warning above: not a meaningful result, so no risk band is given.")
    site = state.active_site()
    st.caption((f"Reference: site profile **{site.name}** ({site.meta.get('n_films')} normal films of your site; "
                "threshold and bands set on them). " if site is not None else
                "Reference: the shipped normal films (no site profile; see the Site profile page). ")
               + f"Latency {result.latency_ms:.0f} ms on {registry.status()['device']} · model {state.model_version(detector)}")
    st.markdown(views.table_html(views.components_table(result.components)), unsafe_allow_html=True)

with state.vision_pipeline(detector) as pipeline:
    cal = pipeline.detector.calibration
st.subheader("Where this image sits among the calibration normals")
st.plotly_chart(views.calibration_figure(cal.normal_scores, result.anomaly_score, cal.threshold, cal.medium),
                width="stretch")
st.caption(f"{cal.n_normals} held-out normal radiographs, never used for fitting. LOW below the 80th percentile, "
           f"MEDIUM up to the threshold (95th percentile), HIGH above.")

st.subheader("Report")
if st.button("Build PDF report (with a heatmap)", key="build_report"):
    with st.spinner("Computing the heatmap and the report…"):
        pdf, failures = state.case_report(study)
        for failed, why in failures:
            st.error(f"Heatmap {failed} failed ({why}); the report uses the next method that works.")
        st.session_state["report_pdf"] = (study.digest, detector, pdf)
report = st.session_state.get("report_pdf")
if report and report[0] == study.digest and report[1] == detector:
    st.download_button("Download the PDF report", report[2], file_name=f"medsight_{study.name.rsplit('.', 1)[0]}.pdf",
                       mime="application/pdf", key="download_report")
