"""Figures and tables the app's pages show, built from library results: plain functions (plotly, pandas), no
Streamlit, so they are tested without a running app."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from medsight import config

RISK_COLOURS = {"LOW": "#2e7d32", "MEDIUM": "#f9a825", "HIGH": "#c62828"}
#: what the paper's components are called on screen
COMPONENT_NAMES = {"recon": "VAE reconstruction error", "kl": "KL divergence", "vit": "ViT anomaly probability",
                   "recon_kl": "VAE only (recon + KL)", "fused": "fused score", "knn_distance": "kNN distance to normals"}
ENTITY_COLOURS = {"Disease": "#ffcdd2", "SYMPTOM": "#fff9c4", "ANATOMY": "#c8e6c9", "Chemical": "#bbdefb"}


def evaluation_dir() -> Path:
    """Stored evaluation results (`medsight evaluate` output) for the teaching view; `MEDSIGHT_EVAL_DIR` overrides."""
    import os

    return Path(os.environ.get("MEDSIGHT_EVAL_DIR", config.REPO_ROOT / "assets" / "evaluation" / "dev"))


def faithfulness_note(detector: str, method: str) -> str | None:
    """One line of what `medsight explain-eval --road` measured for this detector's map (shipped in
    assets/evaluation/explain/metrics.json), or None when it was not measured."""
    import json

    path = evaluation_dir().parent / "explain" / "metrics.json"
    if not path.is_file():
        return None
    v = json.loads(path.read_text()).get("detectors", {}).get(detector, {}).get(method)
    if not v or "road_combined" not in v:
        return None
    n = v["n"]
    return (f"Measured on {n} abnormal dev films: ROAD (remove and impute the most vs least salient pixels) beats a "
            f"random map on {round(v['share_road_beats_random'] * n)}/{n}; {v['lung_mass']:.0%} of the map on the "
            f"lung fields ({v['lung_area']:.0%} of the area), {v['border_mass']:.0%} on the border band ({v['border_area']:.0%}).")


def calibration_figure(normal_scores, anomaly_score: float, threshold: float, medium: float) -> go.Figure:
    """Histogram of held-out normal scores with this image's score, the MEDIUM boundary and the threshold."""
    s = np.asarray(normal_scores, dtype=float)
    fig = go.Figure(go.Histogram(x=s, nbinsx=40, name="calibration normals", marker_color="#90a4ae", opacity=0.85))
    for x, text, colour, dash in ((medium, "MEDIUM from", RISK_COLOURS["MEDIUM"], "dot"),
                                  (threshold, "threshold (HIGH)", RISK_COLOURS["HIGH"], "dash"),
                                  (anomaly_score, "this image", "#1565c0", "solid")):
        fig.add_vline(x=x, line_color=colour, line_dash=dash, line_width=3 if text == "this image" else 2,
                      annotation_text=f"{text} {x:.3f}", annotation_position="top")
    lo, hi = float(min(s.min(), anomaly_score)), float(max(s.max(), anomaly_score))
    pad = (hi - lo) * 0.05 or 0.01
    fig.update_layout(xaxis_title="anomaly score", yaxis_title="held-out normal radiographs", showlegend=False,
                      xaxis_range=[lo - pad, hi + pad], height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


PATCH_NAMES = {"mean_patch_distance": "PatchCore mean lung-field patch distance",
               "max_patch_distance": "PatchCore largest lung-field patch distance"}


def component_label(key: str) -> str:
    """Readable name of a score component: the paper's, a k-NN member (`relu4_3_full_centred`), a PatchCore signal,
    or a fusion part (`detector.signal`)."""
    if key in COMPONENT_NAMES:
        return COMPONENT_NAMES[key]
    if key in PATCH_NAMES:
        return PATCH_NAMES[key]
    if key == "site_student.score":
        return "site profile: student-teacher error (relu3_3 -> relu4_3 regression, lung field)"
    if "." in key:
        detector, signal = key.split(".", 1)
        return f"{detector}: {component_label(signal)}"
    parts = key.split("_")
    if len(parts) >= 3 and parts[0].startswith("relu") and parts[2] in ("full", "lungs"):
        where = "whole image" if parts[2] == "full" else "lung field"
        return f"k-NN distance, {parts[0]}_{parts[1]}, {where}" + (", centred" if key.endswith("_centred") else "")
    return key


def components_table(components: dict) -> pd.DataFrame:
    return pd.DataFrame([{"component": component_label(k), "key": k, "value": round(float(v), 4)}
                         for k, v in components.items()])


# -- the teaching view: ROC and a threshold over stored evaluation results --------------------------------------
@dataclass
class StoredEvaluation:
    folder: Path
    scores: pd.DataFrame  # file, label, ..., score_<detector>
    metrics: dict
    detectors: list[str]

    def labels(self) -> np.ndarray:
        """1 = abnormal (positive), 0 = normal."""
        return (self.scores["label"] != "normal").astype(int).to_numpy()

    def detector_scores(self, detector: str) -> np.ndarray:
        return self.scores[f"score_{detector}"].to_numpy(dtype=float)

    def stored_threshold(self, detector: str) -> float | None:
        m = (self.metrics.get("detectors") or {}).get(detector) or {}
        return (m.get("confusion") or {}).get("threshold")


class EvaluationMissing(FileNotFoundError):
    """No stored evaluation results in the folder; the message says how to make them."""


def load_evaluation(folder: Path | None = None) -> StoredEvaluation:
    folder = Path(folder or evaluation_dir())
    scores_path, metrics_path = folder / "scores.csv", folder / "metrics.json"
    if not scores_path.is_file():
        raise EvaluationMissing(f"No stored evaluation results in {folder} (expected scores.csv and metrics.json from "
                                f"`medsight evaluate --out {folder}`; set MEDSIGHT_EVAL_DIR to use another folder).")
    scores = pd.read_csv(scores_path)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    detectors = [c[len("score_"):] for c in scores.columns if c.startswith("score_")]
    if "label" not in scores.columns or not detectors:
        raise EvaluationMissing(f"{scores_path} has no label or score_<detector> columns.")
    return StoredEvaluation(folder, scores, metrics, detectors)


def operating_point(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    """Sensitivity, specificity and the confusion matrix when scores >= threshold are called abnormal."""
    from medsight.training.metrics import confusion_at

    return confusion_at(y, s, threshold)


def roc_figure(y: np.ndarray, s: np.ndarray, point: dict | None = None, name: str = "") -> go.Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    auc = roc_auc_score(y, s)
    fig = go.Figure(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} AUROC {auc:.3f}", line_color="#1565c0"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#9e9e9e"), name="chance"))
    if point:
        fig.add_trace(go.Scatter(x=[1 - point["specificity"]], y=[point["sensitivity"]], mode="markers",
                                 marker=dict(size=14, color="#c62828"), name=f"threshold {point['threshold']:.3f}"))
    fig.update_layout(xaxis_title="1 - specificity (false positive rate)", yaxis_title="sensitivity (true positive rate)",
                      height=380, margin=dict(l=10, r=10, t=30, b=10), legend=dict(x=0.45, y=0.05))
    return fig


def confusion_frame(point: dict) -> pd.DataFrame:
    return pd.DataFrame({"called abnormal": [point["tp"], point["fp"]], "called normal": [point["fn"], point["tn"]]},
                        index=["truly abnormal", "truly normal"])


def highlighted_note_html(text: str, entities) -> str:
    """The note as HTML with each entity marked by type; negated ones struck through, possible ones italic."""
    import html

    parts, pos = [], 0
    for e in sorted(entities, key=lambda e: e.start):
        if e.start < pos:
            continue
        parts.append(html.escape(text[pos:e.start]))
        style = f"background:{ENTITY_COLOURS.get(e.label, '#eeeeee')};padding:1px 3px;border-radius:3px;"
        if e.assertion == "absent":
            style += "text-decoration:line-through;"
        elif e.assertion == "possible":
            style += "font-style:italic;"
        tip = f"{e.label}, {e.assertion}" + (f", = {e.expansion}" if e.expansion else "")
        parts.append(f'<span class="entity entity-{e.label} assertion-{e.assertion}" style="{style}" title="{html.escape(tip)}">'
                     f"{html.escape(text[e.start:e.end])}<sub>{html.escape(e.label)}{' (neg)' if e.assertion == 'absent' else ''}</sub></span>")
        pos = e.end
    parts.append(html.escape(text[pos:]))
    return "<div style='line-height:2'>" + "".join(parts).replace("\n", "<br>") + "</div>"


def conditions_figure(conditions, top: int = 10) -> go.Figure:
    rows = list(conditions)[:top][::-1]
    colours = ["#9e9e9e" if getattr(c, "negated", False) else "#1565c0" for c in rows]
    fig = go.Figure(go.Bar(x=[c.probability for c in rows], y=[c.name + (" (ruled out)" if getattr(c, "negated", False) else "") for c in rows],
                           orientation="h", marker_color=colours))
    fig.update_layout(xaxis_title="probability the note reports it", xaxis_range=[0, 1], height=40 + 28 * len(rows),
                      margin=dict(l=10, r=10, t=10, b=10))
    return fig


def table_html(df: pd.DataFrame, index: bool = False) -> str:
    """A plain HTML table. The pages use it instead of st.dataframe, whose Arrow serialisation needs a pyarrow built
    for the installed NumPy (pyarrow 26 refuses NumPy 1.x, which torch 2.x here is pinned to)."""
    return df.to_html(index=index, border=0, classes="medsight-table", na_rep="-", float_format=lambda v: f"{v:.4g}")


def ner_choices() -> dict[str, str | None]:
    """The note page's entity models, {label: `analyze_note(ner=...)`}: the default first (None), then the other of our
    two shipped models when installed (the accurate LM-feature NER, the fast CNN); labels carry their BC5CDR Test F1."""
    from medsight.nlp.lm_ner import lm_ner_available
    from medsight.nlp.ner import NLP_WEIGHTS_DIR, ner_kind

    def label(kind: str) -> str:
        metrics = NLP_WEIGHTS_DIR / {"smollm": "metrics_ner_smollm.json", "cnn": "metrics_ner.json"}.get(kind, "-")
        f1 = f", BC5CDR F1 {json.loads(metrics.read_text())['f1']:.3f}" if metrics.is_file() else ""
        return {"smollm": f"accurate (SmolLM2 features{f1})", "cnn": f"fast (CNN{f1})"}.get(kind, kind)

    kind = ner_kind()
    out: dict[str, str | None] = {label(kind): None}
    for other in ("smollm", "cnn"):
        if other != kind and (other == "cnn" or lm_ner_available()):
            out[label(other)] = other
    return out
