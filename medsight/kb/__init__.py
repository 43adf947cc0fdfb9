"""The knowledge base behind grounded chat: documents and chunking, the Chroma store, hybrid retrieval."""

from medsight.kb.documents import Chunk, Document, load_path
from medsight.kb.pubmed import PubMedClient
from medsight.kb.retrieve import Passage, Retriever, evaluate_retrieval
from medsight.kb.store import KnowledgeBase, build_knowledge_base, knowledge_base

__all__ = [
    "Chunk",
    "Document",
    "KnowledgeBase",
    "Passage",
    "PubMedClient",
    "Retriever",
    "build_knowledge_base",
    "evaluate_retrieval",
    "knowledge_base",
    "load_path",
]
