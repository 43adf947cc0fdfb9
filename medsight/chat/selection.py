"""Question-aware answer selection: which sentence of the retrieved passages answers the question?

Every sentence of the passages is a candidate. Each gets a handful of features: sentence-level BM25 against the
question (idf over the candidate pool), idf-weighted coverage of the question's words in the sentence, in the
sentence before it, in the two read together and in the sentence after it, MiniLM cosine similarity to the question
(of the sentence, and of the sentence read with the one before it), ranks of those, the retrieval rank of its
passage, whether it holds the kind of phrase the question asks for (a number, a date, a place, an agent, a reason),
whether it opens with a reference to an earlier sentence ("It", "These"), and its length. A logistic regression over
those features, fitted on the COVID-QA development questions (`scripts/fit_answer_selector.py`; C and the answer
rule chosen by cross-validation grouped by article, numbers in docs/chat.md), turns them into the probability that
the sentence holds the answer.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections import OrderedDict
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
            "first_passage", "number_match", "log_words", "novelty",
            # the sentence read with the one before it (an answer sentence often names its subject only there)
            "window_coverage", "window_cosine", "window_cosine_rel", "next_coverage", "opens_with_reference",
            "date_match", "cosine_rank_inv", "bm25_rank_inv", "window_coverage_rank_inv",
            # the kind of phrase the question asks for, and whether the sentence holds one (ANSWER_TYPES)
            "type_count", "type_time", "type_place", "type_agent", "type_reason",
            # what the sentence's document is about: share of the question's words in its title, MiniLM cosine of the
            # question to the title (absolute and relative to the best candidate's)
            "title_coverage", "title_cosine", "title_cosine_rel")
_REFERENCE = re.compile(r"^(it|its|they|their|this|these|those|he|she|such)\b", re.I)
_WANTS_DATE = re.compile(r"\b(when|what year|which year|date)\b", re.I)
_HAS_DATE = re.compile(r"\b(1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|"
                       r"november|december)\b", re.I)


# (question asks for ..., the sentence holds one): a count or share, a time, a place, an agent, a reason. The place and
# agent patterns read capitals (a country, "Smith et al.", "WHO"), the others ignore case.
ANSWER_TYPES = (
    (re.compile(r"how (many|much)|number of|what (percentage|proportion)"),
     re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred|thousand|million|"
                r"billion|half|twice|single|double)\b", re.I)),
    (re.compile(r"\bwhen\b|what year|which year|what date|since when"),
     re.compile(r"\b(1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|november|"
                r"december|spring|summer|autumn|winter|century|decade)\b", re.I)),
    (re.compile(r"\bwhere\b|which (country|countries|region|city|province)"), re.compile(r"\b(in|from|at|across) [A-Z][a-z]+")),
    (re.compile(r"\bwho\b|\bwhom\b|which (group|organi[sz]ation|agency|institut)"),
     re.compile(r"\b[A-Z][a-z]+ (et al|and colleagues)|\b[A-Z]{2,}\b")),
    (re.compile(r"\bwhy\b|what caus|reason"),
     re.compile(r"\b(because|due to|caused by|owing to|result of|lead[s]? to|since)\b", re.I)),
)


def answer_type_columns(question: str, candidates) -> list[list[float]]:
    """One column per ANSWER_TYPES entry: 1 where the question asks for that kind of phrase and the sentence holds one."""
    q = question.lower()
    return [[float(bool(asks.search(q)) and bool(holds.search(c.text))) for c in candidates] for asks, holds in ANSWER_TYPES]


@dataclass
class Candidate:
    """One sentence of a retrieved passage, with its passage number (1-based, as cited) and its selection score."""

    text: str
    passage: int
    position: int  # index of the sentence inside its passage
    score: float = 0.0
    following: str = ""  # the passage's next sentence (shown after this one: answers often run on into it)
    preceding: str = ""  # the passage's sentence before this one
    title: str = ""  # the title of its document

    @property
    def refers_back(self) -> bool:
        """Does it open with a word that points at an earlier sentence ("Its genome is ...")?"""
        return bool(_REFERENCE.match(self.text))


def candidate_sentences(passages, min_words: int = 4, max_words: int = 90) -> list[Candidate]:
    """The passages' sentences (title prefix and section labels removed), near-verbatim duplicates dropped."""
    from medsight.kb.documents import split_sentences

    out: list[Candidate] = []
    seen: set[str] = set()
    for i, p in enumerate(passages, 1):
        body = p.text
        # the chunker prefixes "Title. " unless the text already opens with the title (then it is the first
        # sentence's subject, "Pulmonary embolism (PE) is ...", and stays)
        if p.title and body.startswith(f"{p.title}. "):
            body = body[len(p.title) + 2:]
        sentences = [_SECTION_LABELS.sub("", s).strip() for s in split_sentences(body)]
        for j, sent in enumerate(sentences):
            key = " ".join(tokenize(sent))
            if not (min_words <= len(sent.split()) <= max_words) or key in seen:
                continue
            if _boilerplate(sent):
                continue
            seen.add(key)
            out.append(Candidate(sent, i, j, following=_neighbour(sentences, j + 1, max_words),
                                 preceding=_neighbour(sentences, j - 1, max_words), title=p.title or ""))
    return out


def _boilerplate(sentence: str) -> bool:
    return sentence.lower().startswith(("http", "doi", "license", "copyright"))


def _neighbour(sentences: list[str], j: int, max_words: int) -> str:
    """Sentence j of the passage when it exists and could be shown beside a candidate, else ""."""
    if not 0 <= j < len(sentences) or _boilerplate(sentences[j]) or len(sentences[j].split()) > max_words:
        return ""
    return sentences[j]


def _idf(token_lists: Sequence[list[str]]) -> dict[str, float]:
    n = len(token_lists)
    df: dict[str, int] = {}
    for toks in token_lists:
        for t in set(toks):
            df[t] = df.get(t, 0) + 1
    return {t: math.log1p((n - d + 0.5) / (d + 0.5)) for t, d in df.items()}


def _rank_inv(x):
    import numpy as np

    order = np.argsort(-np.asarray(x), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return 1.0 / ranks


def features(question: str, candidates: Sequence[Candidate], n_passages: int, cosines=None, window_cosines=None):
    """Feature matrix (len(candidates) x len(FEATURES)); `cosines` are question-sentence similarities and
    `window_cosines` question-(previous + sentence) similarities (`similarities`); left out, they are zero (the
    lexical features need no embedding; `selector_matrix` fills them for the candidates it keeps)."""
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
    cosines = np.zeros(len(candidates)) if cosines is None else np.asarray(cosines, dtype="float64")
    window_cosines = np.zeros(len(candidates)) if window_cosines is None else np.asarray(window_cosines, dtype="float64")
    window_cov, next_cov = np.zeros(len(toks)), np.zeros(len(toks))
    sets = [set(t) for t in toks]
    for i, c in enumerate(candidates):
        words = sets[i] | (sets[i - 1] if i and candidates[i - 1].passage == c.passage else set())
        window_cov[i] = sum(idf[t] for t in q if t in words) / q_weight
        if i + 1 < len(toks) and candidates[i + 1].passage == c.passage:
            next_cov[i] = coverage[i + 1]
    q_set = set(q)
    q_tokens = tokenize(question)
    q_bigrams = set(zip(q_tokens, q_tokens[1:]))
    bigrams = np.array([len(q_bigrams & set(zip(tl, tl[1:]))) / max(len(q_bigrams), 1) for tl in toks])
    novelty = np.array([sum(t not in q_set for t in tl) / max(len(tl), 1) for tl in toks])
    wants_number = bool(_WANTS_NUMBER.search(question))
    wants_date = bool(_WANTS_DATE.search(question))
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
        window_cov,
        window_cosines,
        window_cosines - window_cosines.max(),
        next_cov,
        np.array([float(c.refers_back) for c in candidates]),
        np.array([float(wants_date and bool(_HAS_DATE.search(c.text))) for c in candidates]),
        _rank_inv(cosines),
        _rank_inv(bm25),
        _rank_inv(window_cov),
        *map(np.asarray, answer_type_columns(question, candidates)),
        np.array([len(q_set & set(tokenize(c.title))) / max(len(q_set), 1) for c in candidates]),
        np.zeros(len(candidates)),  # title_cosine, title_cosine_rel: set by selector_matrix for the kept candidates
        np.zeros(len(candidates)),
    ])


_VECTORS: OrderedDict = OrderedDict()  # sentence text -> MiniLM vector, least recently used first
_VECTORS_LOCK = threading.Lock()
VECTOR_CACHE_SIZE = 20_000  # about 30 MB of float32 vectors


def cached_embed(texts):
    """`medsight.kb.store.embed` with a process-wide LRU cache: the knowledge base's sentences are fixed, and the next
    question about the same article (a follow-up, another student) reads the same candidates. Safe across sessions."""
    import numpy as np

    from medsight.kb.store import embed

    with _VECTORS_LOCK:
        found = {t: _VECTORS[t] for t in texts if t in _VECTORS}
        for t in found:
            _VECTORS.move_to_end(t)
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        found.update(zip(missing, embed(missing)))
        with _VECTORS_LOCK:
            for t in missing:
                _VECTORS[t] = found[t]
            while len(_VECTORS) > VECTOR_CACHE_SIZE:
                _VECTORS.popitem(last=False)
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 384), dtype="float32")


def similarities(question: str, candidates: Sequence[Candidate], indices, embed_fn=None):
    """MiniLM cosine of the question to each candidate of `indices`, to that candidate read with the candidate
    before it in the same passage (the mean of the two sentence vectors, renormalised), and to its document's title
    (0 without one)."""
    import numpy as np

    if embed_fn is None:
        embed_fn = cached_embed
    indices = list(indices)
    prev = {i: i - 1 for i in indices if i and candidates[i - 1].passage == candidates[i].passage}
    texts = list(dict.fromkeys([question] + [candidates[i].text for i in indices] + [candidates[j].text for j in prev.values()]
                               + [candidates[i].title for i in indices if candidates[i].title]))
    vecs = dict(zip(texts, embed_fn(texts)))
    qv = vecs[question]
    cos, window, title = np.zeros(len(indices)), np.zeros(len(indices)), np.zeros(len(indices))
    for k, i in enumerate(indices):
        v = vecs[candidates[i].text]
        cos[k] = float(v @ qv)
        w = v + vecs[candidates[prev[i]].text] if i in prev else v
        window[k] = float(w @ qv / max(float(np.linalg.norm(w)), 1e-9))
        title[k] = float(vecs[candidates[i].title] @ qv) if candidates[i].title else 0.0
    return cos, window, title


def selector_weights() -> tuple:
    """(coefficients, intercept) of the fitted selector, in FEATURES order: answer_selector.json, or the file
    $MEDSIGHT_ANSWER_SELECTOR names (a selector fitted without some questions, to measure on them)."""
    return _read_weights(os.environ.get("MEDSIGHT_ANSWER_SELECTOR") or str(WEIGHTS_PATH))


@lru_cache(maxsize=4)
def _read_weights(path: str) -> tuple:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise RuntimeError(f"{path} was fitted on features {data['features']}, the code computes {FEATURES}: refit it "
                           "with scripts/fit_answer_selector.py")
    return tuple(data["coef"]), float(data["intercept"])


PREFILTER = 40  # candidates embedded per question, the best by lexical evidence (dev, 30 passages: 0.816 of 0.834 kept)
_LEXICAL = [FEATURES.index(f) for f in ("bm25_rel", "coverage", "bigrams")]


def lexical_order(question: str, candidates: Sequence[Candidate]) -> list[int]:
    """Indices of `candidates`, the most lexical evidence for the question first (BM25, coverage, shared pairs)."""
    if not candidates:
        return []
    return _by_lexical_evidence(features(question, candidates, 1))


def _by_lexical_evidence(X) -> list[int]:
    import numpy as np

    return [int(i) for i in np.argsort(-X[:, _LEXICAL].sum(axis=1), kind="stable")]


def selector_matrix(question: str, candidates: Sequence[Candidate], n_passages: int, embed_fn=None) -> tuple:
    """(indices, feature rows) as the selector sees them: lexical features over all candidates, then only the
    PREFILTER candidates with the most lexical evidence kept and embedded (with the sentence before each), their
    similarity features set. Fitting (scripts/fit_answer_selector.py) and answering both call this."""
    X = features(question, candidates, n_passages)
    keep = sorted(_by_lexical_evidence(X)[:PREFILTER])
    cos, window, title = similarities(question, candidates, keep, embed_fn)
    X = X[keep]
    for name, values in (("cosine", cos), ("cosine_rel", cos - cos.max()), ("window_cosine", window),
                         ("window_cosine_rel", window - window.max()), ("cosine_rank_inv", _rank_inv(cos)),
                         ("title_cosine", title), ("title_cosine_rel", title - title.max())):
        X[:, FEATURES.index(name)] = values
    return keep, X


def logistic_scores(question: str, candidates: Sequence[Candidate], n_passages: int) -> tuple:
    """(indices, probabilities) from the fitted logistic selector over `selector_matrix`'s candidates."""
    import numpy as np

    coef, intercept = selector_weights()
    keep, X = selector_matrix(question, candidates, n_passages)
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
