"""`medsight nlp ...`: train and measure the clinical-note models, analyse a note, benchmark throughput."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The CLI (not the library) knows where the development corpus usually is; --corpus or $MEDSIGHT_CORPUS override it.
DEFAULT_CORPUS = Path(os.environ.get("MEDSIGHT_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "data" / "corpus"))


def register(subparsers) -> None:
    nlp = subparsers.add_parser("nlp", help="clinical notes: entities, negation, condition scores, fusion")
    sub = nlp.add_subparsers(dest="nlp_command", required=True)

    train = sub.add_parser("train-ner", help="train the BC5CDR NER on Training+Development into weights/ner/model")
    train.add_argument("--corpus", default=str(DEFAULT_CORPUS / "bc5cdr"), help="folder with CDR_*.PubTator.txt")
    train.add_argument("--out", help="model folder (default weights/ner/model)")
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--max-minutes", type=float, default=30.0, help="stop after the epoch that crosses this")
    train.add_argument("--dev", action="store_true", help="train on Training only and report Development F1 per epoch")
    train.add_argument("--resume", action="store_true", help="continue training the model already in --out")
    train.set_defaults(func=_train_ner)

    ev = sub.add_parser("eval-ner", help="entity P/R/F1 per type on BC5CDR Test (writes DIR/metrics.json)")
    ev.add_argument("--out", required=True, help="folder for metrics.json")
    ev.add_argument("--corpus", default=str(DEFAULT_CORPUS / "bc5cdr"))
    ev.add_argument("--split", default="test", choices=["test", "dev", "train"])
    ev.add_argument("--model", help="model folder (default: scispaCy en_ner_bc5cdr_md if installed, else weights/ner/model)")
    ev.set_defaults(func=_eval_ner)

    zs = sub.add_parser("eval-zeroshot", help="condition AUROC on IU X-ray reports vs MeSH (writes DIR/metrics.json)")
    zs.add_argument("--out", required=True, help="folder for metrics.json")
    zs.add_argument("--reports", default=str(DEFAULT_CORPUS / "iu_xray_reports" / "NLMCXR_reports.tgz"))
    zs.add_argument("--limit", type=int, help="only the first N reports")
    zs.add_argument("--save-calibration", action="store_true", help="store the fitted calibration in weights/ner/")
    zs.set_defaults(func=_eval_zeroshot)

    an = sub.add_parser("analyze", help="analyse a clinical note (text file, or - for stdin)")
    an.add_argument("file")
    an.add_argument("--json", action="store_true", help="print the full analysis as JSON")
    an.add_argument("--anomaly-score", type=float, help="image anomaly score in [0, 1] for fusion")
    an.add_argument("--risk-band", choices=["LOW", "MEDIUM", "HIGH"], help="image risk band for fusion")
    an.set_defaults(func=_analyze)

    bench = sub.add_parser("bench", help="throughput of analyze_note in notes/s")
    bench.add_argument("--reports", default=str(DEFAULT_CORPUS / "iu_xray_reports" / "NLMCXR_reports.tgz"))
    bench.add_argument("--notes", type=int, default=200, help="how many reports to time")
    bench.add_argument("--out", help="folder for bench.json")
    bench.set_defaults(func=_bench)

    card = sub.add_parser("card", help="write weights/ner/MODEL_CARD.md from the metrics files in weights/ner/")
    card.set_defaults(func=_card)


def _limit_threads() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("MEDSIGHT_THREADS", "1")))


def _write(out: str, name: str, data: dict) -> Path:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    path = path / name
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return path


def _train_ner(args) -> int:
    from medsight.cli import UserError
    from medsight.nlp.corpus import read_bc5cdr
    from medsight.nlp.lexicon import write_symptom_lexicon
    from medsight.nlp.ner import MODEL_DIR, TrainConfig, train_ner

    _limit_threads()
    try:
        train_docs = read_bc5cdr(args.corpus, ["train"] if args.dev else ["train", "dev"])
        dev_docs = read_bc5cdr(args.corpus, ["dev"]) if args.dev else None
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    print(f"symptom lexicon: {write_symptom_lexicon()}", file=sys.stderr)
    train_ner(train_docs, args.out or MODEL_DIR, TrainConfig(epochs=args.epochs, max_minutes=args.max_minutes), dev_docs=dev_docs, resume=args.resume)
    print(f"saved NER model to {args.out or MODEL_DIR}")
    return 0


def _eval_ner(args) -> int:
    from medsight.cli import UserError
    from medsight.nlp.corpus import read_bc5cdr
    from medsight.nlp.ner import evaluate_ner, load_ner

    _limit_threads()
    try:
        docs = read_bc5cdr(args.corpus, [args.split])
        nlp = load_ner(args.model)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    metrics = evaluate_ner(nlp, docs)
    metrics["dataset"] = f"BC5CDR {args.split} split ({len(docs)} PubMed abstracts), exact mention spans"
    metrics["model"] = nlp.meta.get("name", "?")
    metrics["extra_types"] = _extra_type_counts(docs)
    _write(args.out, "metrics.json", metrics)
    print(json.dumps({k: metrics[k] for k in ("precision", "recall", "f1", "per_type")}, indent=1))
    return 0


def _extra_type_counts(docs) -> dict:
    """How often the lexicon types fire on the split (no gold exists for them in BC5CDR)."""
    from collections import Counter

    from medsight.nlp import load_pipeline

    nlp = load_pipeline()
    counts: Counter = Counter()
    for doc in nlp.pipe([d.text for d in docs], batch_size=32):
        counts.update(e.label_ for e in doc.ents if e.label_ in ("SYMPTOM", "ANATOMY"))
    return {"note": "mentions found by the vocabulary ruler; BC5CDR has no gold for these types", **counts}


def _eval_zeroshot(args) -> int:
    from medsight.cli import UserError
    from medsight.nlp.corpus import read_iu_reports
    from medsight.nlp.evaluate import evaluate_zeroshot
    from medsight.nlp.zeroshot import CALIBRATION_PATH

    _limit_threads()
    try:
        reports = read_iu_reports(args.reports)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    if args.limit:
        reports = reports[: args.limit]
    metrics, calibration = evaluate_zeroshot(reports, progress=lambda m: print(m, file=sys.stderr))
    _write(args.out, "metrics.json", metrics)
    if args.save_calibration:
        calibration.save(CALIBRATION_PATH)
        print(f"wrote {CALIBRATION_PATH}", file=sys.stderr)
    print(json.dumps({"macro_auroc": metrics["macro_auroc"], "per_condition": {k: v["auroc"] for k, v in metrics["per_condition"].items()}}, indent=1))
    return 0


def _analyze(args) -> int:
    from medsight.cli import UserError
    from medsight.nlp import NoteError, analyze_note

    _limit_threads()
    if args.file == "-":
        raw = sys.stdin.buffer.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UserError(f"no note file at {path}")
        raw = path.read_bytes()
    try:
        analysis = analyze_note(raw, anomaly_score=args.anomaly_score, risk_band=args.risk_band)
    except NoteError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:  # bad anomaly score from the command line
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(analysis.to_dict(), indent=1))
        return 0
    for e in analysis.entities:
        extra = " ".join(x for x in (e.expansion and f"= {e.expansion}", e.medication_class, e.concept_id) if x)
        print(f"{e.label:9s} {e.assertion:8s} {e.text} {extra}".rstrip())
    print("conditions:", ", ".join(f"{c.name} {c.probability:.2f}" for c in analysis.reported_conditions) or "none reported")
    if analysis.negated_conditions:
        print("ruled out:", ", ".join(analysis.negated_conditions))
    if analysis.fusion:
        print("fusion:", analysis.fusion.reason)
    return 0


def _bench(args) -> int:
    from medsight.cli import UserError
    from medsight.nlp.corpus import read_iu_reports
    from medsight.nlp.evaluate import benchmark
    from medsight.nlp.note import MAX_NOTE_CHARS

    _limit_threads()
    try:
        notes = [r.text for r in read_iu_reports(args.reports)[: args.notes]]
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    result = {"reports": benchmark(notes)}
    long_note = " ".join(notes)
    long_note = long_note[: long_note.rfind(". ", 0, MAX_NOTE_CHARS) + 1]
    result["longest_note"] = benchmark([long_note]) | {"chars": len(long_note)}
    result["threads"] = int(os.environ.get("MEDSIGHT_THREADS", "1"))
    if args.out:
        _write(args.out, "bench.json", result)
    print(json.dumps(result, indent=1))
    return 0


def _card(args) -> int:
    from medsight.nlp.evaluate import render_model_card
    from medsight.nlp.ner import WEIGHTS_DIR

    def read(name):
        path = WEIGHTS_DIR / name
        return json.loads(path.read_text()) if path.exists() else None

    meta = read("model/meta.json") or {}
    card = render_model_card(read("metrics_ner.json"), read("metrics_zeroshot.json"), read("bench.json"), meta.get("medsight_train"))
    path = WEIGHTS_DIR / "MODEL_CARD.md"
    path.write_text(card, encoding="utf-8")
    print(f"wrote {path}")
    return 0
