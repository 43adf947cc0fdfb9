"""Retrieval over the knowledge base: dense (MiniLM + Chroma), lexical (BM25), and their hybrid by reciprocal-rank
fusion, with optional MMR to spread the passages over different documents.

Which combination is kept is decided by `medsight kb eval` on COVID-QA dev questions (numbers in docs/chat.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from medsight.kb.documents import Chunk

_STOPWORDS = frozenset(
    """a an and are as at be been being by can could did do does for from had has have how i in into is it its
    of on or that the their there these this those to was were what when where which who whom why will with
    would you your than then them they we our us about after before between during while also may might""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stopwords, with a light plural strip (`infections` -> `infection`)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok in _STOPWORDS:
            continue
        if len(tok) > 4 and tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
            tok = tok[:-1]
        out.append(tok)
    return out


class LexicalIndex:
    """BM25 (Okapi, k1=1.5, b=0.75, as rank_bm25) with Lucene's always-positive idf,
    log(1 + (N - n + 0.5) / (n + 0.5)); the classic idf turns negative for terms in more than half the passages,
    which breaks small knowledge bases. Term weights are precomputed into a sparse passage x term matrix, so a
    query costs one column sum instead of a Python loop over every passage."""

    k1 = 1.5
    b = 0.75

    def __init__(self, chunks: Sequence[Chunk]):
        import numpy as np
        from scipy.sparse import csc_matrix

        self.chunks = list(chunks)
        self.vocab: dict[str, int] = {}
        rows, cols, tfs, lengths = [], [], [], []
        for i, chunk in enumerate(self.chunks):
            counts: dict[int, int] = {}
            tokens = tokenize(chunk.text)
            lengths.append(len(tokens))
            for tok in tokens:
                j = self.vocab.setdefault(tok, len(self.vocab))
                counts[j] = counts.get(j, 0) + 1
            rows.extend([i] * len(counts))
            cols.extend(counts.keys())
            tfs.extend(counts.values())
        n_docs = len(self.chunks)
        if not n_docs:
            self._weights = None
            return
        rows_a, cols_a, tf = np.asarray(rows), np.asarray(cols), np.asarray(tfs, dtype="float64")
        doc_len = np.asarray(lengths, dtype="float64")
        avgdl = max(doc_len.mean(), 1e-9)
        df = np.bincount(cols_a, minlength=len(self.vocab))
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1 - self.b + self.b * doc_len[rows_a] / avgdl)
        weights = idf[cols_a] * tf * (self.k1 + 1) / (tf + norm)
        self._weights = csc_matrix((weights, (rows_a, cols_a)), shape=(n_docs, len(self.vocab)))

    def scores(self, query: str):
        import numpy as np

        cols = [self.vocab[t] for t in tokenize(query) if t in self.vocab]
        if self._weights is None or not cols:
            return np.zeros(len(self.chunks))
        return np.asarray(self._weights[:, cols].sum(axis=1)).ravel()

    def search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        import numpy as np

        scores = self.scores(query)
        if not len(scores):
            return []
        top = np.argsort(-scores)[:k]
        return [(self.chunks[i], float(scores[i])) for i in top if scores[i] > 0]


@dataclass
class Passage:
    """A retrieved passage with its provenance and the score that ranked it."""

    chunk: Chunk
    score: float

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def title(self) -> str:
        return self.chunk.metadata.get("title", "")

    @property
    def citation(self) -> str:
        return self.chunk.citation

    def as_source(self) -> dict:
        md = self.chunk.metadata
        return {
            "id": self.chunk.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "citation": self.citation,
            "pmid": md.get("pmid", ""),
            "pmids_cited": [p for p in md.get("pmids_cited", "").split(",") if p],
            "doi": md.get("doi", ""),
            "year": md.get("year", ""),
            "license": md.get("license", ""),
            "score": round(self.score, 4),
            "text": self.text,
        }


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Chunk]], k: int = 60, weights: Sequence[float] | None = None):
    """Fuse ranked lists: score = sum_i w_i / (k + rank_i). Robust to the different scales of BM25 and cosine."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    by_id: dict[str, Chunk] = {}
    for ranking, w in zip(rankings, weights):
        for rank, chunk in enumerate(ranking):
            by_id[chunk.chunk_id] = chunk
            scores[chunk.chunk_id] = scores.get(chunk.chunk_id, 0.0) + w / (k + rank + 1)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [(by_id[cid], scores[cid]) for cid in order]


def mmr(query_vec, candidates: list[tuple[Chunk, float]], k: int, lambda_: float = 0.7, vectors=None):
    """Maximal marginal relevance over candidate passages (relevance = cosine to the query). `vectors` are the
    candidates' stored embeddings; without them the passages are embedded again."""
    from medsight.kb.store import embed

    if len(candidates) <= 1:
        return candidates[:k]
    vecs = vectors if vectors is not None else embed([c.text for c, _ in candidates])
    rel = vecs @ query_vec
    chosen: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(chosen) < k:
        if not chosen:
            best = max(remaining, key=lambda i: rel[i])
        else:
            sim = vecs[remaining] @ vecs[chosen].T
            best = remaining[int((lambda_ * rel[remaining] - (1 - lambda_) * sim.max(axis=1)).argmax())]
        chosen.append(best)
        remaining.remove(best)
    return [candidates[i] for i in chosen]


MODES = ("dense", "bm25", "hybrid", "hybrid_mmr")


class Retriever:
    """`retrieve(query, k)` -> passages, by `mode` (default: the one `kb eval` measured best, see docs/chat.md)."""

    # Fusion settings chosen on COVID-QA dev questions (docs/chat.md): lexical evidence counts double and a small
    # RRF constant rewards agreement at the top of both lists.
    def __init__(self, kb, mode: str = "hybrid", candidates: int = 50, dense_weight: float = 0.5,
                 lexical_weight: float = 1.0, rrf_k: int = 10):
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; choose from {', '.join(MODES)}")
        self.kb = kb
        self.mode = mode
        self.candidates = candidates
        self.weights = (dense_weight, lexical_weight)
        self.rrf_k = rrf_k

    def ranked(self, query: str) -> list[tuple[Chunk, float]]:
        """All candidate passages in ranked order (no cut, no diversification)."""
        if self.mode == "dense":
            return self.kb.dense_search(query, self.candidates)
        if self.mode == "bm25":
            return self.kb.lexical_index().search(query, self.candidates)
        dense = [c for c, _ in self.kb.dense_search(query, self.candidates)]
        lexical = [c for c, _ in self.kb.lexical_index().search(query, self.candidates)]
        return reciprocal_rank_fusion([dense, lexical], k=self.rrf_k, weights=self.weights)

    def _diversify(self, query: str, ranked, n: int):
        from medsight.kb.store import embed

        pool = ranked[:n]
        return mmr(embed([query])[0], pool, n, vectors=self.kb.stored_embeddings([c.chunk_id for c, _ in pool]))

    def retrieve(self, query: str, k: int = 5, per_document: int | None = None) -> list[Passage]:
        """The k best passages; `per_document` caps how many may come from one document."""
        ranked = self.ranked(query)
        if self.mode == "hybrid_mmr":
            ranked = self._diversify(query, ranked, max(4 * k, 20))
        out: list[Passage] = []
        counts: dict[str, int] = {}
        for chunk, score in ranked:
            if per_document and counts.get(chunk.doc_id, 0) >= per_document:
                continue
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
            out.append(Passage(chunk, score))
            if len(out) == k:
                break
        return out

    def rank_documents(self, query: str, k: int = 10) -> list[str]:
        """Document ids in the order their best passage ranks (for document-level recall)."""
        ranked = self.ranked(query)
        if self.mode == "hybrid_mmr":
            ranked = self._diversify(query, ranked, max(4 * k, 20))
        seen: list[str] = []
        for chunk, _ in ranked:
            if chunk.doc_id not in seen:
                seen.append(chunk.doc_id)
                if len(seen) == k:
                    break
        return seen


def evaluate_retrieval(retriever: Retriever, queries: Sequence[dict], ks=(1, 5, 10)) -> dict:
    """Recall@k (gold document among the top k documents) and MRR (over the top max(ks)) for query/gold pairs."""
    kmax = max(ks)
    hits = {k: 0 for k in ks}
    rr = 0.0
    for q in queries:
        docs = retriever.rank_documents(q["query"], kmax)
        if q["gold_doc_id"] in docs:
            rank = docs.index(q["gold_doc_id"]) + 1
            rr += 1.0 / rank
            for k in ks:
                hits[k] += rank <= k
    n = max(len(queries), 1)
    out = {f"recall_at_{k}": hits[k] / n for k in ks}
    out["mrr"] = rr / n
    out["n_queries"] = len(queries)
    return out
