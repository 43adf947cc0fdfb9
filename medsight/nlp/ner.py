"""Biomedical named-entity recognition: Chemical and Disease mentions from a spaCy model (scispaCy's
`en_ner_bc5cdr_md` where installed, otherwise our own model trained on BC5CDR and shipped in weights/ner/), plus
typed lexicon entities BC5CDR lacks (SYMPTOM from the Human Phenotype Ontology, ANATOMY, and a medication class for
drug names from WHO INN stems). Training and entity-level evaluation are plain functions the CLI and tests call."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from medsight.config import WEIGHTS_DIR as _WEIGHTS_ROOT
from medsight.specs import ModelSpec, register_spec

log = logging.getLogger(__name__)

#: the NLP models and their measurements (weights/ner), beside the vision weights of config.WEIGHTS_DIR
NLP_WEIGHTS_DIR = _WEIGHTS_ROOT / "ner"
MODEL_DIR = NLP_WEIGHTS_DIR / "model"
NER_LABELS = ("Chemical", "Disease")
SCISPACY_NER_MODEL = "en_ner_bc5cdr_md"  # the paper's model family; used when installed

register_spec(
    ModelSpec(
        key="ner_bc5cdr",
        role="biomedical NER (Chemical, Disease) for clinical notes",
        source=f"scispaCy {SCISPACY_NER_MODEL} (installed as a package)",
        offline_source="weights/ner/model (spaCy CNN NER trained by `medsight nlp train-ner` on BC5CDR Training+Development)",
        input_spec="plain English text; tokenised with medsight.nlp.ner.make_tokenizer (hyphen/slash-splitting)",
        memory_mb=60.0,
        priority=20,
        extra={"labels": list(NER_LABELS), "metrics": "weights/ner/metrics.json"},
    )
)


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer: BC5CDR annotates "lidocaine" inside "lidocaine-induced", so hyphens and slashes between word characters
# must split; spaCy's default infixes do most of it, these add the rest (0.5% of mentions still misalign).
EXTRA_INFIXES = [r"(?<=[A-Za-z0-9])[-/](?=[A-Za-z0-9])", r"(?<=[0-9])(?=[A-Za-z]{3,})", r"[+(),'\[\]]"]


def make_tokenizer(nlp):
    """Install the biomedical infix rules on `nlp`'s tokenizer (serialised with the model)."""
    import warnings

    from spacy.util import compile_infix_regex

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # a character-class union warning from Python's re
        nlp.tokenizer.infix_finditer = compile_infix_regex(list(nlp.Defaults.infixes) + EXTRA_INFIXES).finditer
    return nlp.tokenizer


def blank_pipeline():
    import spacy

    nlp = spacy.blank("en")
    make_tokenizer(nlp)
    return nlp


# ---------------------------------------------------------------------------------------------------------------
# Loading
def scispacy_available() -> bool:
    import spacy.util

    return spacy.util.is_package(SCISPACY_NER_MODEL)


#: Which NER `load_ner` builds when none is named: "auto" = scispaCy if installed, else the LM-feature NER if its head and
#: SmolLM2 are installed (BC5CDR Test F1 0.867), else the transformer if its weights are present, else the CNN (0.823,
#: about 5x faster). Override with $MEDSIGHT_NER (auto | smollm | transformer | cnn | scispacy).
NER_KINDS = ("auto", "smollm", "transformer", "cnn", "scispacy")


def ner_kind(kind: str | None = None) -> str:
    """The NER kind `load_ner(kind=...)` resolves to ("scispacy", "smollm", "transformer" or "cnn")."""
    import os

    kind = (kind or os.environ.get("MEDSIGHT_NER") or "auto").lower()
    if kind not in NER_KINDS:
        raise ValueError(f"unknown NER kind {kind!r}: use one of {', '.join(NER_KINDS)}")
    if kind != "auto":
        return kind
    if scispacy_available():
        return "scispacy"
    return _shipped_kind()


def _shipped_kind() -> str:
    """The most accurate of our own NER models that is installed."""
    from medsight.nlp.lm_ner import lm_ner_available
    from medsight.nlp.transformer_ner import transformer_available

    return "smollm" if lm_ner_available() else "transformer" if transformer_available() else "cnn"


def load_ner(model_dir: str | Path | None = None, prefer_scispacy: bool = True, kind: str | None = None):
    """The NER pipeline: scispaCy's BC5CDR model if installed (and preferred), else the shipped transformer, else the
    shipped CNN; `kind` (or $MEDSIGHT_NER) names one. A `model_dir` holding either shipped format is loaded as is.

    Raises FileNotFoundError with a one-sentence fix when the model asked for does not exist."""
    import warnings

    import spacy

    from medsight.nlp.transformer_ner import (
        load_transformer_pipeline,
        transformer_available,
    )

    from medsight.nlp.lm_ner import load_lm_pipeline

    if model_dir is not None:
        if transformer_available(model_dir):
            return load_transformer_pipeline(model_dir)
        if (Path(model_dir) / "head.safetensors").is_file():
            return load_lm_pipeline(model_dir)
    else:
        resolved = ner_kind(kind)
        if resolved == "scispacy" and not prefer_scispacy:
            resolved = _shipped_kind()
        if resolved == "scispacy":
            if not scispacy_available():
                raise FileNotFoundError(f"scispaCy's {SCISPACY_NER_MODEL} is not installed")
            log.info("using installed scispaCy model %s", SCISPACY_NER_MODEL)
            _register_label_case()
            nlp = spacy.load(SCISPACY_NER_MODEL, exclude=["parser", "lemmatizer"])
            # scispaCy labels are CHEMICAL / DISEASE; map them onto ours.
            nlp.add_pipe("medsight_label_case", last=True)
            return nlp
        if resolved == "transformer":
            return load_transformer_pipeline()
        if resolved == "smollm":
            return load_lm_pipeline()
    model_dir = Path(model_dir) if model_dir else MODEL_DIR
    if not (model_dir / "meta.json").exists():
        raise FileNotFoundError(
            f"no NER model in {model_dir}: run `medsight nlp train-ner` or install scispaCy's {SCISPACY_NER_MODEL}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return spacy.load(model_dir)


def _register_label_case():
    from spacy.language import Language

    if "medsight_label_case" in Language.factories:
        return

    @Language.component("medsight_label_case")
    def _label_case(doc):
        from spacy.tokens import Span

        doc.ents = [Span(doc, e.start, e.end, label=e.label_.title()) for e in doc.ents]
        return doc



# ---------------------------------------------------------------------------------------------------------------
# Training
@dataclass
class TrainConfig:
    epochs: int = 12
    width: int = 128
    depth: int = 4
    embed_rows: tuple[int, int, int, int] = (8000, 4000, 4000, 2000)  # NORM, PREFIX, SUFFIX, SHAPE hash tables
    dropout: float = 0.15
    learn_rate: float = 0.001
    seed: int = 0
    max_minutes: float = 30.0  # stop after the epoch that crosses this (CPU budget)


def _ner_model_config(cfg: TrainConfig) -> dict:
    return {
        "model": {
            "@architectures": "spacy.TransitionBasedParser.v2",
            "state_type": "ner",
            "extra_state_tokens": False,
            "hidden_width": 64,
            "maxout_pieces": 2,
            "use_upper": True,
            "tok2vec": {
                "@architectures": "spacy.Tok2Vec.v2",
                "embed": {
                    "@architectures": "spacy.MultiHashEmbed.v2",
                    "width": cfg.width,
                    "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                    "rows": list(cfg.embed_rows),
                    "include_static_vectors": False,
                },
                "encode": {
                    "@architectures": "spacy.MaxoutWindowEncoder.v2",
                    "width": cfg.width,
                    "depth": cfg.depth,
                    "window_size": 1,
                    "maxout_pieces": 3,
                },
            },
        }
    }


def _examples(nlp, docs) -> list:
    from spacy.training import Example
    from spacy.util import filter_spans

    examples = []
    for d in docs:
        doc = nlp.make_doc(d.text)
        # the few mentions that end inside a token are left out (0.5% of BC5CDR); nested ones keep the longest
        spans = filter_spans([s for s in (doc.char_span(a, b, label=lab) for a, b, lab in d.entities) if s is not None])
        entities = [(s.start_char, s.end_char, s.label_) for s in spans]
        examples.append(Example.from_dict(doc, {"entities": entities}))
    return examples


def epochs_chosen_on_dev(history: list[dict]) -> dict:
    """The epoch count a Training-only run's Development curve picks (best Development F1, the earlier on a tie), as
    recorded in the final model: {"selected_on": "dev", "epochs", "dev_f1", "dev_curve"}."""
    curve = [(row["epoch"], row["dev_f1"]) for row in history if "dev_f1" in row]
    if not curve:
        raise ValueError("the run has no Development scores: train it with --dev")
    epoch, f1 = max(curve, key=lambda e: (e[1], -e[0]))
    return {"selected_on": "dev", "epochs": epoch, "dev_f1": f1, "dev_curve": [f for _, f in curve]}


def train_ner(train_docs, out_dir: str | Path, cfg: TrainConfig | None = None, dev_docs=None, progress=print,
              resume: bool = False, selection: dict | None = None):
    """Train the CNN NER on annotated documents and save the spaCy pipeline to `out_dir`. Returns a history list.

    With `resume`, training continues from the model already in `out_dir` (fresh optimizer state, history appended).
    `selection` (`epochs_chosen_on_dev`) records how the epoch count was chosen."""
    import numpy as np
    from spacy.training import Example  # noqa: F401  (spaCy import side effects before util)
    from spacy.util import fix_random_seed, minibatch

    cfg = cfg or TrainConfig()
    fix_random_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    history: list = []
    if resume:
        nlp = load_ner(out_dir, prefer_scispacy=False)
        history = list(nlp.meta.get("medsight_train", {}).get("history", []))
        examples = _examples(nlp, train_docs)
        optimizer = nlp.resume_training()
    else:
        nlp = blank_pipeline()
        ner = nlp.add_pipe("ner", config=_ner_model_config(cfg))
        for label in NER_LABELS:
            ner.add_label(label)
        examples = _examples(nlp, train_docs)
        optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = cfg.learn_rate
    first_epoch = len(history)
    t0 = time.time()
    for epoch in range(cfg.epochs):
        random.shuffle(examples)
        losses: dict = {}
        for batch in minibatch(examples, size=8):
            nlp.update(batch, drop=cfg.dropout, sgd=optimizer, losses=losses)
        row = {"epoch": first_epoch + epoch + 1, "loss": round(losses.get("ner", 0.0), 2), "minutes": round((time.time() - t0) / 60, 2)}
        if dev_docs:
            row["dev_f1"] = round(evaluate_ner(nlp, dev_docs)["f1"], 4)
        history.append(row)
        progress(json.dumps(row))
        _save(nlp, out_dir, cfg, history, selection, trained_on="Training" if dev_docs else "Training+Development")  # every epoch, so a stopped run still leaves a usable model
        if row["minutes"] > cfg.max_minutes:
            progress(f"stopping after epoch {row['epoch']}: over the {cfg.max_minutes}-minute budget")
            break
    return history


def _save(nlp, out_dir, cfg: TrainConfig, history: list, selection: dict | None = None,
          trained_on: str = "Training+Development") -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nlp.meta["name"] = "medsight_ner_bc5cdr"
    nlp.meta["version"] = "0.1.0"
    nlp.meta["description"] = f"CNN NER (Chemical, Disease) trained on BC5CDR {trained_on} by medsight"
    nlp.meta["medsight_train"] = {"config": cfg.__dict__ | {"embed_rows": list(cfg.embed_rows)}, "history": history}
    if selection:
        nlp.meta["medsight_train"]["selection"] = selection
    nlp.to_disk(out_dir)
    prune_strings(out_dir, labels=list(nlp.get_pipe("ner").labels))


def prune_strings(model_dir: str | Path, labels: list[str]) -> None:
    """Drop the training corpus's word forms from the saved StringStore: the hash embeddings do not need them, and the
    shipped model should carry no text from its training data. Predictions are unchanged (checked on BC5CDR Test)."""
    path = Path(model_dir) / "vocab" / "strings.json"
    keep = set(blank_pipeline().vocab.strings) | set(labels)
    keep |= {f"{p}-{label}" for p in "BILU" for label in labels} | {"O", "-"}
    strings = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps([s for s in strings if s in keep]), encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Evaluation (exact character-span match per type, the BC5CDR mention-level convention)
def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp + fn}


def span_scores(pairs, labels: Iterable[str] = NER_LABELS) -> dict:
    """P/R/F1 over all `labels` and per type from (gold, predicted) sets of (start, end, label) per document."""
    counts = {label: [0, 0, 0] for label in labels}
    for gold, pred in pairs:
        for label, c in counts.items():
            g = {x for x in gold if x[2] == label}
            p = {x for x in pred if x[2] == label}
            c[0] += len(g & p)
            c[1] += len(p - g)
            c[2] += len(g - p)
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return _prf(tp, fp, fn) | {"per_type": {label: _prf(*c) for label, c in counts.items()}}


def evaluate_ner(nlp, docs, labels: Iterable[str] = NER_LABELS) -> dict:
    pairs = (({(s, e, lab) for s, e, lab in d.entities}, {(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents})
             for d, doc in zip(docs, nlp.pipe([d.text for d in docs], batch_size=32)))
    return span_scores(pairs, labels) | {"documents": len(docs)}
