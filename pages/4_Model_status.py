"""Model status: every model in the registry (device, memory, state and why), the GPU budget and evictions; and a
teaching view over stored evaluation results: ROC curve and a threshold slider with sensitivity, specificity and
the confusion matrix."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from medsight import app_state as state
from medsight import app_views as views

registry = state.page_setup("Model status")
st.title("Model status")
site = state.active_site()
st.caption(f"Site profile in use: **{site.name}** ({site.meta.get('n_films')} normal films, fitted {site.meta.get('created')}): "
           "the detectors' reference and thresholds are the site's (Site profile page)." if site is not None else
           "Site profile: none, the shipped reference (a hospital's own normal films can be the reference: Site profile page).")

status = registry.status()
c1, c2, c3 = st.columns(3)
c1.metric("Device", status["device"])
c2.metric("GPU memory in use", f"{status['gpu_used_mb']:.0f} MB", help="Measured from the CUDA allocator when models load.")
c3.metric("GPU budget", f"{status['budget_mb']:.0f} MB", help="MEDSIGHT_GPU_BUDGET_MB; least recently used models move to CPU beyond it.")
table = pd.DataFrame(status["models"]).rename(columns={"memory_mb": "memory MB", "memory_from": "memory from",
                                                       "estimate_mb": "spec estimate MB", "load_s": "load s",
                                                       "in_use": "in use", "retry_in_s": "retry in s"})
st.markdown(views.table_html(table), unsafe_allow_html=True)
st.caption("States: loaded · loading · pending (queued by priority) · evicted (moved to CPU or unloaded to keep the "
           "GPU budget; reloaded on next use) · unavailable (the note says why; tried again after a while or with the "
           "button below). Memory: measured from the CUDA allocator on a GPU, from the process's resident-memory growth "
           "during the load on a CPU, or the spec table's estimate where neither could be measured (column 'memory from').")
if status["loading"]:
    st.caption("Loading in the background…")
b1, b2, b3 = st.columns(3)
if b1.button("Load every model now", key="load_all"):
    registry.start_background()
    st.rerun()
if b2.button("Retry unavailable models", key="retry_models",
             help="Models that failed to load (a missing package since installed, a busy disk) are tried again."):
    registry.retry()
    registry.start_background()
    st.rerun()
if b3.button("Refresh", key="refresh_status"):
    st.rerun()
st.subheader("Evictions")
if status["evictions"]:
    st.markdown(views.table_html(pd.DataFrame(status["evictions"])), unsafe_allow_html=True)
else:
    st.caption("None: every loaded model fits the budget.")

st.header("Teaching view: choosing a threshold")
try:
    evaluation = views.load_evaluation()
except views.EvaluationMissing as exc:
    st.info(str(exc))
    st.stop()
detector = st.selectbox("Detector", evaluation.detectors, key="eval_detector")
y, s = evaluation.labels(), evaluation.detector_scores(detector)
if len(set(y)) < 2:
    st.warning("The stored results hold only one class; a ROC curve needs normal and abnormal images.")
    st.stop()
stored = evaluation.stored_threshold(detector)
lo, hi = float(s.min()), float(s.max())
threshold = st.slider("Threshold (scores at or above are called abnormal)", lo, hi,
                      float(min(max(stored if stored is not None else (lo + hi) / 2, lo), hi)), (hi - lo) / 200 or 0.001,
                      format="%.3f", key="eval_threshold")
point = views.operating_point(y, s, threshold)
m1, m2, m3 = st.columns(3)
m1.metric("Sensitivity", f"{point['sensitivity']:.1%}")
m2.metric("Specificity", f"{point['specificity']:.1%}")
m3.metric("Images", f"{len(y)} ({int(y.sum())} abnormal)")
left, right = st.columns([3, 2])
left.plotly_chart(views.roc_figure(y, s, point, detector), width="stretch")
with right:
    st.markdown("**Confusion matrix**")
    st.markdown(views.table_html(views.confusion_frame(point), index=True), unsafe_allow_html=True)
    if stored is not None:
        st.caption(f"The shipped threshold ({stored:.3f}) is the 95th percentile of held-out normal scores.")
st.caption(f"Stored results: {evaluation.folder} (MEDSIGHT_EVAL_DIR). Development data only; see the README's "
           "confounders: age and hospital differ between classes, so these numbers overstate what the model knows about disease.")
