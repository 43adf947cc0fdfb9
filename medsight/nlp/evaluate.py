"""Measurements of the NLP pipeline on real text: entity P/R/F1 on BC5CDR (see ner.evaluate_ner), zero-shot condition
AUROC on Indiana University chest X-ray reports against their MeSH findings, and throughput in notes per second."""

from __future__ import annotations

import time

import numpy as np

from medsight.nlp.zeroshot import CONDITIONS, Calibration, condition_similarities, embed_sentences


def _report_scores(reports, progress=None):
    """Per report: best similarity per condition with absent mentions removed, and on the raw sentences."""
    from medsight.nlp import _affirmed_sentences, _entities, load_pipeline
    from medsight.nlp.note import NoteError, validate_note

    nlp = load_pipeline()
    affirmed, raw, negated = [], [], []
    texts = []
    for r in reports:
        try:
            texts.append(validate_note(r.text))
        except NoteError:
            texts.append("")
    for i, doc in enumerate(nlp.pipe(texts, batch_size=64)):
        entities = _entities(doc)
        affirmed.append([s for s in _affirmed_sentences(doc, entities) if any(c.isalpha() for c in s)])
        raw.append([s.text for s in doc.sents if any(c.isalpha() for c in s.text)])
        negated.append({e.condition for e in entities if e.condition and e.assertion == "absent"})
        if progress and (i + 1) % 500 == 0:
            progress(f"parsed {i + 1}/{len(texts)} reports")
    unique = sorted({s for group in affirmed + raw for s in group})
    index = {s: i for i, s in enumerate(unique)}
    if progress:
        progress(f"embedding {len(unique)} distinct sentences")
    sims = condition_similarities(embed_sentences(unique)) if unique else np.zeros((0, len(CONDITIONS)))

    def best(groups):
        out = np.zeros((len(groups), len(CONDITIONS)), dtype="float32")
        for i, group in enumerate(groups):
            if group:
                out[i] = np.maximum(sims[[index[s] for s in group]].max(axis=0), 0.0)
        return out

    return best(affirmed), best(raw), negated


def fit_calibration(similarity: np.ndarray, labels: np.ndarray, fitted_on: str) -> Calibration:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=100.0).fit(similarity.reshape(-1, 1), labels)
    slope = float(model.coef_[0, 0])
    center = float(-model.intercept_[0] / slope)
    return Calibration(center=round(center, 5), slope=round(slope, 4), fitted_on=fitted_on)


def _ece(prob: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (prob >= lo) & (prob < hi if hi < 1 else prob <= hi)
        if mask.any():
            ece += mask.mean() * abs(prob[mask].mean() - labels[mask].mean())
    return float(ece)


def evaluate_zeroshot(reports, min_positives: int = 10, progress=None) -> tuple[dict, Calibration]:
    """Per-condition and macro AUROC of the offline zero-shot scores against IU MeSH findings.

    Conditions both sides cover are those with a MeSH mapping and at least `min_positives` positive reports. A global
    logistic calibration is fitted on even-numbered reports and its Brier score / ECE measured on odd-numbered ones."""
    from sklearn.metrics import roc_auc_score

    t0 = time.time()
    scores, scores_raw, _ = _report_scores(reports, progress)
    per_condition, skipped = {}, {}
    labels = np.zeros((len(reports), len(CONDITIONS)), dtype=int)
    for j, condition in enumerate(CONDITIONS):
        labels[:, j] = [any(f in r.findings for f in condition.iu_mesh) for r in reports]
        positives = int(labels[:, j].sum())
        if not condition.iu_mesh or positives < min_positives:
            skipped[condition.name] = f"{positives} positive reports" if condition.iu_mesh else "no IU MeSH term"
            continue
        per_condition[condition.name] = {
            "auroc": round(float(roc_auc_score(labels[:, j], scores[:, j])), 4),
            "auroc_without_negation": round(float(roc_auc_score(labels[:, j], scores_raw[:, j])), 4),
            "positives": positives,
            "negatives": int(len(reports) - positives),
            "mesh": list(condition.iu_mesh),
        }
    evaluated = [j for j, c in enumerate(CONDITIONS) if c.name in per_condition]
    fit_rows = np.arange(len(reports)) % 2 == 0
    calibration = fit_calibration(
        scores[fit_rows][:, evaluated].ravel(), labels[fit_rows][:, evaluated].ravel(),
        fitted_on=f"IU X-ray reports, even-numbered half ({int(fit_rows.sum())} reports), {len(evaluated)} conditions pooled",
    )
    held_scores = scores[~fit_rows][:, evaluated].ravel()
    held_labels = labels[~fit_rows][:, evaluated].ravel()
    prob = np.array([calibration(s) for s in held_scores])
    calibration.extra = {
        "heldout_brier": round(float(np.mean((prob - held_labels) ** 2)), 4),
        "heldout_ece": round(_ece(prob, held_labels), 4),
        "heldout_prevalence": round(float(held_labels.mean()), 4),
    }
    metrics = {
        "dataset": "Indiana University chest X-ray reports (NLMCXR), indication + findings + impression text",
        "reports": len(reports),
        "backend": "embedding:all-MiniLM-L6-v2, max sentence-synonym cosine, NegEx-absent mentions removed",
        "macro_auroc": round(float(np.mean([v["auroc"] for v in per_condition.values()])), 4),
        "macro_auroc_without_negation": round(float(np.mean([v["auroc_without_negation"] for v in per_condition.values()])), 4),
        "per_condition": per_condition,
        "not_evaluated": skipped,
        "calibration": calibration.__dict__,
        "seconds": round(time.time() - t0, 1),
    }
    return metrics, calibration


def benchmark(notes: list[str], repeat: int = 1) -> dict:
    """Throughput of analyze_note on `notes` (after one warm-up call)."""
    from medsight.nlp import analyze_note

    analyze_note(notes[0])
    t0 = time.perf_counter()
    n = chars = 0
    for _ in range(repeat):
        for note in notes:
            analyze_note(note)
            n += 1
            chars += len(note)
    seconds = time.perf_counter() - t0
    return {"notes": n, "seconds": round(seconds, 3), "notes_per_s": round(n / seconds, 2), "chars_per_s": round(chars / seconds)}
