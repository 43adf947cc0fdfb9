"""Question-aware answer selection: which sentence of the retrieved passages answers the question?

Every sentence of the passages is a candidate. Each gets a handful of features: sentence-level BM25 against the
question (idf over the candidate pool), idf-weighted coverage of the question's words in the sentence and in the
sentence before it, MiniLM cosine similarity to the question, the retrieval rank of its passage, whether it holds
a number when the question asks for one, and its length. A logistic regression over those features, fitted on the
fitting half of the COVID-QA development questions (`scripts/fit_answer_selector.py`; split by article, numbers in
docs/chat.md), turns them into the probability that the sentence holds the answer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from medsight.kb.retrieve import tokenize

WEIGHTS_PATH = Path(__file__).with_name("answer_selector.json")

# "Abstract: BACKGROUND: ...", "METHODS AND FINDINGS: ...", or a stray reference list "1,2 " opening a sentence.
_SECTION_LABELS = re.compile(r"^(?:(?:Abstract|Text|[A-Z][A-Z ,&/]{2,40}):\s*|\d+(?:[,-]\d+)*\s+(?=[A-Z]))+")
_WANTS_NUMBER = re.compile(r"\b(how (many|much|long|old|large|big|far|often)|what (percentage|proportion|number|"
                           r"rate|size|year|age|period|duration)|when|which year|ratio|rate of|incubation|median|"
                           r"mean|average|percent\w*|period)\b", re.I)
_HAS_NUMBER = re.compile(r"\d")

FEATURES = ("bm25", "bm25_rel", "coverage", "prev_coverage", "bigrams", "cosine", "cosine_rel", "passage_rank_inv",
            "first_passage", "number_match", "log_words", "novelty")


@dataclass
class Candidate:
    """One sentence of a retrieved passage, with its passage number (1-based, as cited) and its selection score."""

    text: str
    passage: int
    position: int  # index of the sentence inside its passage
    score: float = 0.0


def candidate_sentences(passages, min_words: int = 4, max_words: int = 90) -> list[Candidate]:
    """The passages' sentences (title prefix and section labels removed), near-verbatim duplicates dropped."""
    from medsight.kb.documents import split_sentences

    out: list[Candidate] = []
    seen: set[str] = set()
    for i, p in enumerate(passages, 1):
        body = p.text
        if p.title and body.startswith(p.title):
            body = body[len(p.title):].lstrip(". ")
        for j, sent in enumerate(split_sentences(body)):
            sent = _SECTION_LABELS.sub("", sent).strip()
            key = " ".join(tokenize(sent))
            if not (min_words <= len(sent.split()) <= max_words) or key in seen:
                continue
            if sent.lower().startswith(("http", "doi", "license", "copyright")):
                continue
            seen.add(key)
            out.append(Candidate(sent, i, j))
    return out


def _idf(token_lists: Sequence[list[str]]) -> dict[str, float]:
    n = len(token_lists)
    df: dict[str, int] = {}
    for toks in token_lists:
        for t in set(toks):
            df[t] = df.get(t, 0) + 1
    return {t: math.log1p((n - d + 0.5) / (d + 0.5)) for t, d in df.items()}


def features(question: str, candidates: Sequence[Candidate], n_passages: int, cosines=None):
    """Feature matrix (len(candidates) x len(FEATURES)); `cosines` are question-sentence similarities if known."""
    import numpy as np

    if not candidates:
        return np.zeros((0, len(FEATURES)))
    toks = [tokenize(c.text) for c in candidates]
    q = list(dict.fromkeys(tokenize(question)))
    idf = _idf(toks)
    q_weight = sum(idf.get(t, math.log1p(len(toks) + 0.5)) for t in q) or 1.0
    avg_len = max(sum(map(len, toks)) / len(toks), 1.0)
    k1, b = 1.2, 0.75
    bm25, coverage = np.zeros(len(toks)), np.zeros(len(toks))
    for i, tl in enumerate(toks):
        counts: dict[str, int] = {}
        for t in tl:
            counts[t] = counts.get(t, 0) + 1
        norm = k1 * (1 - b + b * len(tl) / avg_len)
        bm25[i] = sum(idf[t] * counts[t] * (k1 + 1) / (counts[t] + norm) for t in q if t in counts)
        coverage[i] = sum(idf[t] for t in q if t in counts) / q_weight
    prev = np.zeros(len(toks))
    for i, c in enumerate(candidates):
        if i and candidates[i - 1].passage == c.passage:
            prev[i] = coverage[i - 1]
    if cosines is None:
        from medsight.kb.store import embed

        vecs = embed([question] + [c.text for c in candidates])
        cosines = vecs[1:] @ vecs[0]
    cosines = np.asarray(cosines, dtype="float64")
    q_set = set(q)
    q_tokens = tokenize(question)
    q_bigrams = set(zip(q_tokens, q_tokens[1:]))
    bigrams = np.array([len(q_bigrams & set(zip(tl, tl[1:]))) / max(len(q_bigrams), 1) for tl in toks])
    novelty = np.array([sum(t not in q_set for t in tl) / max(len(tl), 1) for tl in toks])
    wants_number = bool(_WANTS_NUMBER.search(question))
    return np.column_stack([
        bm25,
        bm25 / max(bm25.max(), 1e-9),
        coverage,
        prev,
        bigrams,
        cosines,
        cosines - cosines.max(),
        np.array([1.0 / c.passage for c in candidates]),
        np.array([float(c.passage == 1) for c in candidates]),
        np.array([float(wants_number and bool(_HAS_NUMBER.search(c.text))) for c in candidates]),
        np.log([max(len(c.text.split()), 1) for c in candidates]),
        novelty,
    ])


@lru_cache(maxsize=1)
def selector_weights(path: str = str(WEIGHTS_PATH)) -> tuple:
    """(coefficients, intercept) of the fitted selector, in FEATURES order."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise RuntimeError(f"{path} was fitted on features {data['features']}, the code computes {FEATURES}: refit it "
                           "with scripts/fit_answer_selector.py")
    return tuple(data["coef"]), float(data["intercept"])


PREFILTER = 20  # candidates embedded per question: the best by lexical evidence (dev: no loss in top-3 recall)
_LEXICAL = [FEATURES.index(f) for f in ("bm25_rel", "coverage", "bigrams")]


def lexical_order(question: str, candidates: Sequence[Candidate]) -> list[int]:
    """Indices of `candidates`, the most lexical evidence for the question first (BM25, coverage, shared pairs)."""
    import numpy as np

    if not candidates:
        return []
    X = features(question, candidates, 1, cosines=np.zeros(len(candidates)))
    return [int(i) for i in np.argsort(-X[:, _LEXICAL].sum(axis=1), kind="stable")]


def logistic_scores(question: str, candidates: Sequence[Candidate], n_passages: int) -> tuple:
    """(indices, probabilities) from the fitted logistic selector; only the PREFILTER candidates with the most lexical
    evidence are embedded and scored when the selector uses the similarity features."""
    import numpy as np

    coef, intercept = selector_weights()
    X = features(question, candidates, n_passages, cosines=np.zeros(len(candidates)))
    keep = list(range(len(candidates)))
    if any(coef[FEATURES.index(f)] for f in ("cosine", "cosine_rel")):  # a lexical-only selector needs no embedding
        from medsight.kb.store import embed

        keep = sorted(lexical_order(question, candidates)[:PREFILTER])
        vecs = embed([question] + [candidates[i].text for i in keep])
        cosines = vecs[1:] @ vecs[0]
        X = X[keep]
        X[:, FEATURES.index("cosine")] = cosines
        X[:, FEATURES.index("cosine_rel")] = cosines - cosines.max()
    return keep, 1.0 / (1.0 + np.exp(-(X @ np.asarray(coef) + intercept)))


def rank_sentences(question: str, passages) -> list[Candidate]:
    """Candidates sorted by the fitted probability that they hold the answer (highest first), `score` set. Only the
    PREFILTER candidates with the most lexical evidence are embedded and ranked, which halves the time to the answer."""
    candidates = candidate_sentences(passages)
    if not candidates:
        return []
    keep, probs = logistic_scores(question, candidates, len(passages))
    ranked = [candidates[i] for i in keep]
    for c, p in zip(ranked, probs):
        c.score = float(p)
    return sorted(ranked, key=lambda c: -c.score)


def best_sentences(question: str, passages, k: int = 3, min_score: float = 0.0) -> list[tuple[str, int, float]]:
    """(sentence, passage number, probability) of the k best-scoring sentences."""
    return [(c.text, c.passage, c.score) for c in rank_sentences(question, passages)[:k] if c.score >= min_score]
