"""What the app's site page shows of a profile: a summary table and the teaching view of its calibration normals
before (the shipped detector on the site's films) and after (the site profile, out-of-fold). Plotly only."""

from __future__ import annotations

import numpy as np

from medsight.vision.sites import SiteProfile


def summary_rows(profile: SiteProfile) -> list[dict]:
    """One row per detector: threshold and share of the site's normals flagged, shipped vs profile."""
    rows = []
    for name, entry in profile.detectors.items():
        before = profile.meta.get("before", {}).get(name, {})
        rows.append({"detector": name,
                     "reference": "recalibrated only" if entry.get("reference") == "shipped" else "site normals",
                     "shipped threshold": before.get("shipped_threshold"),
                     "site normals flagged (shipped)": _pct(before.get("shipped_flag_rate")),
                     "profile threshold": entry["calibration"]["threshold"],
                     "site normals flagged (profile, held out)": _pct(1 - entry["calibration"]["specificity_target"])})
    return rows


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.0f}%"


def before_after_figure(profile: SiteProfile, detector: str):
    """Two histograms of the same site normals: scored by the shipped detector against our training normals, and
    scored held out against the site's own normals; each with its threshold (scales differ: each is its own)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    before = profile.meta.get("before", {}).get(detector, {})
    cal = profile.calibration(detector)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"shipped reference: {_pct(before.get('shipped_flag_rate'))} of these normals flagged",
        f"site profile (held out): {_pct(1 - cal.specificity_target) if cal else ''} flagged by design"))
    for col, scores, thr, colour in ((1, before.get("shipped_scores") or [], before.get("shipped_threshold"), "#888"),
                                     (2, cal.normal_scores if cal else [], cal.threshold if cal else None, "#2a7ab9")):
        fig.add_trace(go.Histogram(x=np.asarray(scores), nbinsx=30, marker_color=colour, showlegend=False), row=1, col=col)
        if thr is not None:
            fig.add_vline(x=thr, line_dash="dash", line_color="#c0392b", row=1, col=col)
    fig.update_xaxes(title_text="anomaly score (detector's own scale)")
    fig.update_yaxes(title_text="site normal films", col=1)
    fig.update_layout(height=320, margin=dict(l=40, r=10, t=50, b=40))
    return fig
