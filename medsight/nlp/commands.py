"""`medsight nlp ...`: train and measure the clinical-note models, analyse a note, benchmark throughput."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The CLI (not the library) knows where the development corpus usually is; --corpus or $MEDSIGHT_CORPUS override it.
NER_CHOICES = ["auto", "smollm", "transformer", "cnn", "scispacy"]  # medsight.nlp.ner.NER_KINDS
DEFAULT_CORPUS = Path(os.environ.get("MEDSIGHT_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "data" / "corpus"))


def register(subparsers) -> None:
    nlp = subparsers.add_parser("nlp", help="clinical notes: entities, negation, condition scores, fusion")
    sub = nlp.add_subparsers(dest="nlp_command", required=True)

    train = sub.add_parser("train-ner", help="train the BC5CDR NER (smollm: weights/ner_smollm; "
                           "transformer: weights/ner_transformer; cnn: weights/ner/model)")
    train.add_argument("--kind", choices=["smollm", "transformer", "cnn"], default="smollm")
    train.add_argument("--corpus", default=str(DEFAULT_CORPUS / "bc5cdr"), help="folder with CDR_*.PubTator.txt")
    train.add_argument("--out", help="model folder (default weights/ner_smollm, weights/ner_transformer or weights/ner/model)")
    train.add_argument("--epochs", type=int, help="default: 12 (smollm, cnn) or 8 (transformer)")
    train.add_argument("--lr", type=float, help="transformer learning rate (default 1e-4)")
    train.add_argument("--frozen-layers", type=int, help="transformer: lowest encoder layers kept pretrained and cached (of 6; default 0)")
    train.add_argument("--max-minutes", type=float, help="cnn: stop after the epoch that crosses this (default 30); "
                       "transformer: stop (resumably) after this many minutes of this run (default 600)")
    train.add_argument("--dev", action="store_true", help="cnn, smollm: train on Training only and report Development "
                       "F1 per epoch (the transformer always does, unless --add-dev)")
    train.add_argument("--add-dev", action="store_true", help="transformer: fit on Training+Development for exactly "
                       "--epochs (no Development selection; not how the shipped model was made)")
    train.add_argument("--checkpoints", help="transformer: resumable checkpoint folder (default .cache/ner_transformer/<run>)")
    train.add_argument("--resume", action="store_true", help="cnn: continue training the model already in --out")
    train.add_argument("--epochs-from", metavar="RUN", help="cnn, smollm: fit on Training+Development for the epoch count "
                       "with the best Development F1 in RUN (a `--dev` run's model folder); recorded as selected_on = dev")
    train.set_defaults(func=_train_ner)

    ev = sub.add_parser("eval-ner", help="entity P/R/F1 per type on BC5CDR Test (writes DIR/metrics.json)")
    ev.add_argument("--out", required=True, help="folder for metrics.json")
    ev.add_argument("--corpus", default=str(DEFAULT_CORPUS / "bc5cdr"))
    ev.add_argument("--split", default="test", choices=["test", "dev", "train"])
    ev.add_argument("--model", help="model folder (default: the one --kind names)")
    ev.add_argument("--kind", choices=NER_CHOICES, help="default: $MEDSIGHT_NER or auto (what the app uses: scispaCy "
                    "en_ner_bc5cdr_md if installed, else weights/ner_transformer, else weights/ner/model)")
    ev.add_argument("--limit", type=int, help="only the first N abstracts of the split")
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
    an.add_argument("--anomaly-score", type=float, help="the image's raw anomaly score (shown only; any detector scale)")
    an.add_argument("--risk-band", choices=["LOW", "MEDIUM", "HIGH"], help="image risk band for fusion")
    an.add_argument("--normal-percentile", type=float, help="share (0-100) of held-out normals scoring lower, for fusion")
    an.set_defaults(func=_analyze)

    bench = sub.add_parser("bench", help="throughput of analyze_note in notes/s")
    bench.add_argument("--reports", default=str(DEFAULT_CORPUS / "iu_xray_reports" / "NLMCXR_reports.tgz"))
    bench.add_argument("--notes", type=int, default=200, help="how many reports to time")
    bench.add_argument("--out", help="folder for bench_<ner kind>.json")
    bench.add_argument("--ner", choices=NER_CHOICES, help="NER to time (sets $MEDSIGHT_NER)")
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
    from medsight.errors import UserError
    from medsight.nlp.corpus import read_bc5cdr
    from medsight.nlp.lexicon import write_symptom_lexicon

    _limit_threads()
    held_out = args.dev if args.kind in ("cnn", "smollm") else not args.add_dev
    try:
        training, development = read_bc5cdr(args.corpus, ["train"]), read_bc5cdr(args.corpus, ["dev"])
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    train_docs, dev_docs = (training, development) if held_out else (training + development, None)
    print(f"symptom lexicon: {write_symptom_lexicon()}", file=sys.stderr)
    if args.kind == "transformer":
        return _train_transformer(args, train_docs, dev_docs)
    selection = _selection(args)
    epochs = selection["epochs"] if selection else (args.epochs or 12)
    if args.kind == "smollm":
        return _train_smollm(args, training, development, held_out, epochs, selection)
    from medsight.nlp.ner import MODEL_DIR, TrainConfig, train_ner

    train_ner(train_docs, args.out or MODEL_DIR, TrainConfig(epochs=epochs, max_minutes=args.max_minutes or 30.0),
              dev_docs=dev_docs, resume=args.resume, selection=selection)
    print(f"saved NER model to {args.out or MODEL_DIR}")
    return 0


def _selection(args) -> dict | None:
    """The epoch count a `--dev` run's Development curve chose, for --epochs-from (None without it)."""
    from medsight.errors import UserError
    from medsight.nlp.ner import epochs_chosen_on_dev

    if not args.epochs_from:
        return None
    if args.dev or args.epochs or args.resume:
        raise UserError("--epochs-from picks the epoch count itself: leave out --dev, --epochs and --resume")
    meta_path = Path(args.epochs_from) / "meta.json"
    if not meta_path.exists():
        raise UserError(f"{meta_path} not found: give the folder of a `train-ner --kind {args.kind} --dev` run")
    meta = json.loads(meta_path.read_text())
    try:
        selection = epochs_chosen_on_dev(meta.get("history") or meta.get("medsight_train", {}).get("history", []))
    except ValueError as exc:
        raise UserError(f"{args.epochs_from}: {exc}") from None
    print(f"epochs chosen on Development: {selection['epochs']} (Development F1 {selection['dev_f1']})", file=sys.stderr)
    return selection


def _train_smollm(args, training, development, held_out: bool, epochs: int, selection: dict | None) -> int:
    from medsight.config import CACHE_DIR
    from medsight.nlp.lm_ner import LM_NER_DIR
    from medsight.nlp.lm_ner_train import LMTrainConfig, split_features, train_head

    progress = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    cache = CACHE_DIR / "features" / "ner_smollm"  # one cache per split, shared by the --dev run and the final fit
    train, dev = split_features(training, cache, progress), split_features(development, cache, progress)
    if not held_out:
        train, dev = train + dev, None
    cfg = LMTrainConfig(epochs=epochs, **({"learn_rate": args.lr} if args.lr else {}))
    out = Path(args.out) if args.out else LM_NER_DIR
    train_head(train, out, cfg, dev=dev, selection=selection, progress=progress,
               trained_on="BC5CDR Training" if held_out else "BC5CDR Training+Development")
    print(f"saved LM NER head to {out}")
    return 0


def _train_transformer(args, train_docs, dev_docs) -> int:
    from dataclasses import replace

    from medsight.config import CACHE_DIR
    from medsight.nlp.transformer_ner import DEFAULT_RECIPE, TRANSFORMER_DIR
    from medsight.nlp.transformer_train import (
        TransformerTrainConfig,
        train_transformer_ner,
    )

    cfg = replace(TransformerTrainConfig(**DEFAULT_RECIPE), max_minutes=args.max_minutes or 600.0)
    for field, value in (("epochs", args.epochs), ("learn_rate", args.lr), ("frozen_layers", args.frozen_layers)):
        if value is not None:
            cfg = replace(cfg, **{field: value})
    run = f"{'train' if dev_docs else 'train+dev'}-l{cfg.frozen_layers}-lr{cfg.learn_rate:g}-e{cfg.epochs}"
    out = Path(args.out) if args.out else TRANSFORMER_DIR
    train_transformer_ner(train_docs, out, cfg, dev_docs=dev_docs, checkpoint_dir=args.checkpoints or CACHE_DIR / "ner_transformer" / run,
                          progress=lambda m: print(m, file=sys.stderr, flush=True),
                          trained_on="BC5CDR Training" if dev_docs else "BC5CDR Training+Development")
    print(f"saved transformer NER model to {out}")
    return 0


def _eval_ner(args) -> int:
    from medsight.errors import UserError
    from medsight.nlp.corpus import read_bc5cdr
    from medsight.nlp.ner import evaluate_ner, load_ner

    _limit_threads()
    try:
        docs = read_bc5cdr(args.corpus, [args.split])[: args.limit]
        nlp = load_ner(args.model, kind=args.kind)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    metrics = evaluate_ner(nlp, docs)
    metrics["dataset"] = f"BC5CDR {args.split} split ({len(docs)} PubMed abstracts), exact mention spans"
    metrics["model"] = nlp.meta.get("name", "?")
    name = nlp.meta.get("name", "")
    metrics["kind"] = ("smollm" if name.endswith("smollm") else "transformer" if name.endswith("transformer")
                       else "cnn" if name == "medsight_ner_bc5cdr" else "scispacy")
    metrics["selected_on"] = _selected_on(nlp)
    metrics["extra_types"] = _extra_type_counts(docs, nlp)
    _write(args.out, "metrics.json", metrics)
    print(json.dumps({k: metrics[k] for k in ("precision", "recall", "f1", "per_type", "selected_on")}, indent=1))
    return 0


def _selected_on(nlp) -> str:
    """The split the model's training choices were made on: the transformer records it; so does a CNN trained with
    `--epochs-from` (dev); the first shipped CNN's epoch count was chosen with its Test score in view (docs/nlp.md);
    scispaCy's by its authors."""
    if nlp.meta.get("name", "").endswith(("transformer", "smollm")):
        return nlp.get_pipe("ner").tagger.meta.get("selected_on", "?")
    if nlp.meta.get("name") == "medsight_ner_bc5cdr":
        return nlp.meta.get("medsight_train", {}).get("selection", {}).get("selected_on", "test")
    return "unknown (third-party model)"


def _extra_type_counts(docs, ner) -> dict:
    """How often the lexicon types fire on the split (no gold exists for them in BC5CDR): the vocabulary ruler alone,
    on the NER pipeline's tokenizer."""
    from collections import Counter

    from medsight.nlp.lexicon import add_lexicon_ruler
    from medsight.nlp.ner import blank_pipeline
    from medsight.nlp.zeroshot import CONDITIONS

    nlp = blank_pipeline()
    add_lexicon_ruler(nlp, extra_disease_terms=sorted({s for c in CONDITIONS for s in c.synonyms if len(s) > 4 and not s.isupper()}))
    counts: Counter = Counter()
    for doc in nlp.pipe([d.text for d in docs], batch_size=32):
        counts.update(e.label_ for e in doc.ents if e.label_ in ("SYMPTOM", "ANATOMY"))
    return {"note": "mentions found by the vocabulary ruler; BC5CDR has no gold for these types", **counts}


def _eval_zeroshot(args) -> int:
    from medsight.errors import UserError
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
    from medsight.errors import UserError
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
        analysis = analyze_note(raw, anomaly_score=args.anomaly_score, risk_band=args.risk_band,
                                normal_percentile=args.normal_percentile)
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
    from medsight.errors import UserError
    from medsight.nlp.corpus import read_iu_reports
    from medsight.nlp.evaluate import benchmark
    from medsight.nlp.note import MAX_NOTE_CHARS

    if args.ner:
        os.environ["MEDSIGHT_NER"] = args.ner
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
    from medsight.nlp.ner import ner_kind

    result["ner"] = ner_kind()
    if args.out:
        _write(args.out, f"bench_{result['ner']}.json", result)
    print(json.dumps(result, indent=1))
    return 0


def _card(args) -> int:
    from medsight.nlp.evaluate import render_model_card
    from medsight.nlp.ner import NLP_WEIGHTS_DIR
    from medsight.nlp.lm_ner import LM_NER_DIR
    from medsight.nlp.transformer_ner import TRANSFORMER_DIR

    def read(path):
        return json.loads(path.read_text()) if path.exists() else None

    meta = read(NLP_WEIGHTS_DIR / "model/meta.json") or {}
    transformer = None
    if (TRANSFORMER_DIR / "meta.json").exists():
        transformer = {"meta": read(TRANSFORMER_DIR / "meta.json"), "dev": read(TRANSFORMER_DIR / "dev" / "metrics.json"),
                       "test": read(TRANSFORMER_DIR / "test" / "metrics.json"),
                       "size_mb": (TRANSFORMER_DIR / "model.safetensors").stat().st_size / 1e6}
    lm = None
    if (LM_NER_DIR / "meta.json").exists():
        lm = {"meta": read(LM_NER_DIR / "meta.json"), "test": read(NLP_WEIGHTS_DIR / "metrics_ner_smollm.json"),
              "size_mb": (LM_NER_DIR / "head.safetensors").stat().st_size / 1e6}
    benches = {p.stem.removeprefix("bench_"): read(p) for p in sorted(NLP_WEIGHTS_DIR.glob("bench_*.json"))}
    card = render_model_card(read(NLP_WEIGHTS_DIR / "metrics_ner.json"), read(NLP_WEIGHTS_DIR / "metrics_zeroshot.json"),
                             read(NLP_WEIGHTS_DIR / "bench.json"), meta.get("medsight_train"), transformer=transformer, benches=benches,
                             lm=lm)
    path = NLP_WEIGHTS_DIR / "MODEL_CARD.md"
    path.write_text(card, encoding="utf-8")
    print(f"wrote {path}")
    return 0
