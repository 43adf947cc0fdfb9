"""LM-feature NER: Chemical and Disease mentions tagged from the frozen hidden states of SmolLM2-135M (the process's
one copy, medsight.lm) by a small trained head, wrapped as a spaCy pipe named "ner" so the vocabulary ruler,
abbreviations and NegEx run around it exactly as around the CNN.

Each word (a token of the same spaCy tokenizer as the CNN, medsight.nlp.ner.make_tokenizer) is read at two LM
positions: the last piece that ends the word (the causal model has then seen all of it) and its first piece, at five
layers (6, 12, 18, 24, 30). The head normalises each layer, mixes the five with learnt weights, projects to 256
dimensions and runs a bidirectional LSTM (the LM itself reads left to right only) into BIO tags. Text longer than
WINDOW_TOKENS pieces is cut into windows at sentence ends. Only the head (about 1 M parameters) is trained and shipped
(weights/ner_smollm/head.safetensors); training lives in medsight.nlp.lm_ner_train."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medsight.nlp.ner import NLP_WEIGHTS_DIR
from medsight.nlp.transformer_ner import TAGS, doc_words, spans_from_tags, tagger_pipeline, windows

LM_NER_DIR = NLP_WEIGHTS_DIR.parent / "ner_smollm"
MODEL_NAME = "medsight_ner_bc5cdr_smollm"
LAYERS = (6, 12, 18, 24, 30)
HIDDEN = 576  # SmolLM2-135M
N_VECTORS = 2 * len(LAYERS)  # (last piece, first piece) x layers
WINDOW_TOKENS = 512


def lm_ner_available(model_dir: str | Path | None = None) -> bool:
    from medsight.lm import smollm2_available

    model_dir = Path(model_dir) if model_dir else LM_NER_DIR
    return (model_dir / "head.safetensors").is_file() and (model_dir / "meta.json").is_file() and smollm2_available()


# ---------------------------------------------------------------------------------------------------------------
# Word features from the language model
def word_features(text: str, spans: list[tuple[int, int]], tokenizer=None, model=None) -> np.ndarray:
    """(n_words, N_VECTORS * HIDDEN) float16: for each (start, end) character span of `text`, the hidden states of
    the LM piece that ends the word and of its first piece, at LAYERS."""
    import torch

    if tokenizer is None:
        from medsight.lm import smollm2

        tokenizer, model = smollm2()
    base = getattr(model, "model", model)  # the decoder stack without the LM head
    out = np.zeros((len(spans), N_VECTORS * HIDDEN), dtype=np.float16)
    if not spans:
        return out
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends = np.array([e for _, e in enc["offset_mapping"]])
    word_of_piece = np.searchsorted(np.array([e for _, e in spans]), ends, side="left")
    counts = np.bincount(np.minimum(word_of_piece, len(spans) - 1), minlength=len(spans))

    class _Word:  # windows() only reads .text
        def __init__(self, text):
            self.text = text

    words = [_Word(text[a:b]) for a, b in spans]
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 1
    for a, b in windows(words, [max(1, int(c)) for c in counts], WINDOW_TOKENS - 1):
        lo, hi = spans[a][0], spans[b - 1][1]
        piece = tokenizer(text[lo:hi], add_special_tokens=False, return_offsets_mapping=True)
        p_ends = np.array([lo + e for _, e in piece["offset_mapping"]])
        parts = []  # a single word longer than a window (a pasted blob) is read WINDOW_TOKENS - 1 pieces at a time
        for k in range(0, max(len(piece["input_ids"]), 1), WINDOW_TOKENS - 1):
            ids = [bos] + piece["input_ids"][k : k + WINDOW_TOKENS - 1]
            with torch.inference_mode():
                hidden = base(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
            parts.append(torch.stack([hidden[layer][0, 1:] for layer in LAYERS]).float().numpy())
        stack = np.concatenate(parts, axis=1)  # layers x pieces x HIDDEN
        last_piece = len(p_ends) - 1
        for i in range(a, b):
            s, e = spans[i]
            last = min(int(np.searchsorted(p_ends, e, side="left")), last_piece)
            first = min(int(np.searchsorted(p_ends, s, side="right")), last)
            out[i] = np.concatenate([stack[:, last], stack[:, first]]).reshape(-1)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The head
def build_head(proj: int = 256, hidden: int = 192, dropout: float = 0.3):
    import torch
    from torch import nn

    class LMTagHead(nn.Module):
        """LayerNorm per layer vector -> softmax-weighted layer mix (last and first piece apart) -> projection ->
        BiLSTM -> BIO logits."""

        def __init__(self):
            super().__init__()
            self.mix = nn.Parameter(torch.zeros(N_VECTORS))
            self.norm = nn.LayerNorm(HIDDEN)
            self.proj = nn.Linear(2 * HIDDEN, proj)
            self.drop = nn.Dropout(dropout)
            self.lstm = nn.LSTM(proj, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * hidden, len(TAGS))

        def forward(self, x):  # batch x words x N_VECTORS*HIDDEN
            n, w, _ = x.shape
            x = self.norm(x.view(n, w, N_VECTORS, HIDDEN))
            k = len(LAYERS)
            last = (x[:, :, :k] * torch.softmax(self.mix[:k], 0)[None, None, :, None]).sum(2)
            first = (x[:, :, k:] * torch.softmax(self.mix[k:], 0)[None, None, :, None]).sum(2)
            z = self.drop(torch.relu(self.proj(self.drop(torch.cat([last, first], -1)))))
            z, _ = self.lstm(z)
            return self.out(self.drop(z))

    return LMTagHead()


def predict_tags(head, features: list[np.ndarray], batch_size: int = 16) -> list[list[str]]:
    """BIO tags per document from its word features (as predicted: spans_from_tags starts a run at a stray I- tag)."""
    import torch

    head.eval()
    out: list[list[str]] = [[] for _ in features]
    order = sorted(range(len(features)), key=lambda i: len(features[i]))
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            chunk = [i for i in order[k : k + batch_size] if len(features[i])]
            if not chunk:
                continue
            width = max(len(features[i]) for i in chunk)
            x = torch.zeros((len(chunk), width, N_VECTORS * HIDDEN))
            for r, i in enumerate(chunk):
                x[r, : len(features[i])] = torch.from_numpy(features[i].astype(np.float32))
            pred = head(x).argmax(-1).numpy()
            for r, i in enumerate(chunk):
                out[i] = [TAGS[t] for t in pred[r, : len(features[i])]]  # spans_from_tags reads stray I- tags
    return out


def save_head(head, out_dir: str | Path, meta: dict) -> Path:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(out_dir / "head.safetensors"), metadata={"format": "pt", "encoder": "SmolLM2-135M-Instruct"})
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out_dir


def load_head(model_dir: str | Path | None = None):
    """(head in eval mode, meta) from a folder written by save_head."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir) if model_dir else LM_NER_DIR
    if not (model_dir / "head.safetensors").is_file():
        raise FileNotFoundError(f"no LM NER head in {model_dir}: run `medsight nlp train-ner --kind smollm`")
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    head = build_head(**meta.get("head", {}))
    head.load_state_dict({k: v.float() for k, v in load_file(str(model_dir / "head.safetensors")).items()})
    return head.eval(), meta


# ---------------------------------------------------------------------------------------------------------------
# Prediction and the spaCy pipe
class LMTagger:
    """Predicts Chemical/Disease word spans for spaCy Docs (the interface TransformerNERPipe calls)."""

    def __init__(self, model_dir: str | Path | None = None, head=None, meta: dict | None = None):
        from medsight.lm import smollm2

        if head is None:
            head, meta = load_head(model_dir)
        self.head, self.meta = head, meta or {}
        smollm2()  # load (on a fresh machine: convert) the LM now, with the pipeline, not inside the first note's lock

    def spans(self, docs):
        from spacy.tokens import Span

        feats, all_words = [], []
        for doc in docs:
            words = doc_words(doc)
            all_words.append(words)
            feats.append(word_features(doc.text, [(w.idx, w.idx + len(w.text)) for w in words]))
        result = []
        for doc, words, tags in zip(docs, all_words, predict_tags(self.head, feats)):
            result.append([Span(doc, words[a].i, words[b - 1].i + 1, label=label) for a, b, label in spans_from_tags(tags)])
        return result


def load_lm_pipeline(model_dir: str | Path | None = None):
    """A spaCy pipeline (biomedical tokenizer + the LM tagger as "ner") ready for load_pipeline's additions."""
    model_dir = Path(model_dir) if model_dir else LM_NER_DIR
    if not lm_ner_available(model_dir):
        raise FileNotFoundError(f"no LM NER in {model_dir} (or SmolLM2 not installed): run `medsight nlp train-ner --kind smollm`")
    return tagger_pipeline("medsight_lm_ner", LMTagger, model_dir, MODEL_NAME,
                           "BiLSTM head over frozen SmolLM2-135M hidden states (Chemical, Disease), trained on BC5CDR by medsight")
