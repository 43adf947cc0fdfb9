"""Site profile: the user's own hospital films as the detectors' reference (issue 13). Upload normal films (many
files or a zip), fit a profile for this session (features with a progress bar), save it when asked, and choose the
active profile; every page then scores against it. Thin: session state in, library calls, widgets out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from medsight import app_state as state
from medsight import app_views as views
from medsight.registry import ModelUnavailable
from medsight.sites.fitting import fit_from_uploads, read_zip
from medsight.sites.views import before_after_figure, summary_rows
from medsight.vision.sites import SiteError, SiteProfile, list_profiles, remove_profile, sites_dir

registry = state.page_setup("Site profile")
st.title("Site profile")
st.caption("Every detector measures how far a film is from the normal films it knows: ours, from other hospitals. "
           "Films from your hospital can look unusual simply because of its equipment and habits. A site profile takes "
           "a set of your hospital's **normal** films as the reference instead, and resets the threshold and risk bands "
           "so that about 5% of your normal films are flagged. Without a profile nothing changes. " + state.disclaimer())

# -- which profile this session uses ---------------------------------------------------------------------------------
active = state.active_site()
session_profile = st.session_state.get("site_session_profile")
saved = list_profiles()
choices: list = [None] + [p["name"] for p in saved]
if isinstance(session_profile, SiteProfile) and not session_profile.saved:
    choices.append(session_profile)


def _label(choice) -> str:
    if choice is None:
        return "none: the shipped reference (our training normals)"
    if isinstance(choice, SiteProfile):
        return f"{choice.name} (fitted in this session, not saved)"
    return choice


current = None if active is None else (active if not active.saved else active.name)
# The widget follows the session's profile on every run (a fit or a save elsewhere on this page changes it); only a
# pick by the user changes the profile.
st.session_state["site_select"] = next((i for i, c in enumerate(choices) if c is current or c == current), 0)
st.selectbox("Active site profile", range(len(choices)), format_func=lambda i: _label(choices[i]), key="site_select",
             on_change=lambda: state.set_active_site(choices[st.session_state["site_select"]]),
             help="Used on every page of this session: scores, heatmaps, the report.")
if active is not None:
    s = active.summary()
    st.success(f"Scoring against site profile **{s['name']}**: {s['n_films']} normal films ({s['source']}), "
               f"fitted {s['created']}.")

# -- fit a profile from uploaded normal films -----------------------------------------------------------------------
st.header("Fit a profile from your normal films")
st.caption("Only films read as normal. 50 or more films give stable thresholds; 100-300 are better (see docs/sites.md). "
           "Films are read in memory; only the profile (feature summaries, no images) is written, and only when you "
           "save it, to " + str(sites_dir()) + ".")
name = st.text_input("Profile name", value="my_site", key="site_name", max_chars=64)
uploads = st.file_uploader("Normal films: many files or one zip (PNG, JPEG, DICOM)", accept_multiple_files=True,
                           type=["png", "jpg", "jpeg", "dcm", "dicom", "tif", "tiff", "zip"], key="site_uploads")
if st.button("Fit profile", key="site_fit", disabled=not uploads):
    try:
        items = []
        for up in uploads:
            if up.name.lower().endswith(".zip"):
                items.extend(read_zip(up.getvalue()))
            else:
                items.append((up.name, up.getvalue()))
        bar = st.progress(0.0, text=f"features: 0 of {len(items)} films")
        fit_bar = st.progress(0.0, text="profile: waiting for the features")
        detectors = {n: registry.get(n) for n in state.available_detectors()}
        with registry.use("vgg16") as backbone:
            from medsight.vision import AnomalyPipeline

            pipeline = AnomalyPipeline.load(state.active_detector(), backbone=backbone, get_detector=registry.get)
            profile, skipped = fit_from_uploads(name, items, pipeline, detectors,
                                                extract_progress=lambda f, t: bar.progress(min(f, 1.0), text=t),
                                                fit_progress=lambda f, t: fit_bar.progress(min(f, 1.0), text=f"profile: {t}"))
        st.session_state["site_session_profile"] = profile
        st.session_state["site_skipped"] = skipped
        state.set_active_site(profile)
        st.rerun()
    except (SiteError, ModelUnavailable) as exc:
        st.error(str(exc))

session_profile = st.session_state.get("site_session_profile")
if isinstance(session_profile, SiteProfile):
    s = session_profile.summary()
    st.subheader(f"Profile {s['name']!r}" + (" (saved)" if session_profile.saved else " (this session only)"))
    st.caption(f"{s['n_films']} films, fitted in {s['fit_seconds']} s; files sha256 {s['files_sha256'][:12]}.")
    skipped = st.session_state.get("site_skipped") or []
    if skipped:
        with st.expander(f"{len(skipped)} file(s) not used"):
            st.markdown("\n".join(f"- {line}" for line in skipped))
    st.markdown(views.table_html(pd.DataFrame(summary_rows(session_profile))), unsafe_allow_html=True)
    det = state.active_detector()
    if det in session_profile.detectors:
        st.markdown(f"**Teaching view** ({det}): the same normal films of your site, scored against our normals and "
                    "against your own (each film held out from the reference it is scored against).")
        st.plotly_chart(before_after_figure(session_profile, det), width="stretch")
    if not session_profile.saved and st.button("Save this profile", key="site_save"):
        try:
            session_profile.save()
            state.set_active_site(session_profile.name)
            st.rerun()
        except (SiteError, OSError) as exc:
            st.error(str(exc))

# -- saved profiles ------------------------------------------------------------------------------------------------
st.header("Saved profiles")
if not saved:
    st.caption(f"None yet in {sites_dir()}. Fit one above, or with `medsight site fit NAME --images DIR`.")
else:
    st.markdown(views.table_html(pd.DataFrame([{k: p[k] for k in ("name", "n_films", "created", "source")} for p in saved])),
                unsafe_allow_html=True)
    gone = st.selectbox("Remove a profile", [""] + [p["name"] for p in saved], key="site_remove_pick")
    if gone and st.button(f"Remove {gone}", key="site_remove"):
        remove_profile(gone)
        if active is not None and active.saved and active.name == gone:
            state.set_active_site(None)
        st.rerun()
