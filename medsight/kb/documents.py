"""Documents for the knowledge base: loaders (JSONL, folders, COVID-QA full texts, PubMed through NCBI
E-utilities), and chunking into passages small enough that an answer inside a long article is retrievable.

A `Document` is one article or summary with its provenance (PMID / DOI, title, year, licence); a `Chunk` is a
passage of it that keeps the same provenance, so a retrieved passage can always be cited.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator


@dataclass
class Document:
    doc_id: str
    text: str
    title: str = ""
    pmid: str = ""
    doi: str = ""
    year: str = ""
    license: str = ""
    source: str = ""
    pmids_cited: list[str] = field(default_factory=list)  # for our own summaries: the PMIDs they rest on


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    text: str
    metadata: dict

    @property
    def citation(self) -> str:
        """Short human-readable reference: PMID, else DOI, else the document id."""
        md = self.metadata
        if md.get("pmids_cited") or (md.get("source") == "MedSight summary" and md.get("doi")):
            cites = []
            if md.get("pmids_cited"):
                cites.append("PMID " + ", ".join(md["pmids_cited"].split(",")))
            if md.get("doi"):
                cites.append("DOI " + md["doi"])
            return "MedSight summary citing " + "; ".join(cites)
        if md.get("pmid"):
            return f"PMID {md['pmid']}"
        if md.get("doi"):
            return f"DOI {md['doi']}"
        return self.doc_id


# ---------------------------------------------------------------------------------------------------- loaders

def _clean(value) -> str:
    return "" if value is None else str(value).strip()


def document_from_record(record: dict) -> Document:
    """A JSONL record (`doc_id`, `text`, optional `title`, `pmid`, `doi`, `year`, `license`, `source`)."""
    if not record.get("text"):
        raise ValueError(f"record {record.get('doc_id')!r} has no text")
    pmid = _clean(record.get("pmid"))
    doc_id = _clean(record.get("doc_id")) or (f"pubmed:{pmid}" if pmid else "")
    if not doc_id:
        raise ValueError("record has neither doc_id nor pmid")
    cited = record.get("pmids_cited") or []
    return Document(
        doc_id=doc_id,
        text=_clean(record["text"]),
        title=_clean(record.get("title")) or _clean(record.get("question_from_title")),
        pmid=pmid,
        doi=_clean(record.get("doi")),
        year=_clean(record.get("year")),
        license=_clean(record.get("license")),
        source=_clean(record.get("source")),
        pmids_cited=[str(p) for p in cited],
    )


def load_jsonl(path: str | Path) -> list[Document]:
    docs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                docs.append(document_from_record(json.loads(line)))
    return docs


_HEADER_DOI = re.compile(r"^DOI:\s*(\S+)", re.M)
_HEADER_LICENSE = re.compile(r"^License:\s*(.+)$", re.M)
_HEADER_DATE = re.compile(r"^(\d{4})-\d{2}-\d{2}$", re.M)


def load_covid_qa(path: str | Path) -> list[Document]:
    """COVID-QA (SQuAD format) full texts: one document per article, id `covidqa:<document_id>`.

    Each context starts with a header (title, PMC link, authors, date, DOI, licence) that we parse into metadata.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    docs = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            context = para["context"]
            head = context[:3000]
            title = context.split("\n", 1)[0].strip()
            doi = _HEADER_DOI.search(head)
            lic = _HEADER_LICENSE.search(head)
            date = _HEADER_DATE.search(head)
            # The body starts at "Abstract:"; the header lines above it are metadata, not content.
            start = head.find("\nAbstract:")
            body = context[start + 1 :] if start >= 0 else context.split("\n", 6)[-1]
            docs.append(
                Document(
                    doc_id=f"covidqa:{para['document_id']}",
                    text=body,
                    title=title,
                    doi=doi.group(1) if doi else "",
                    year=date.group(1) if date else "",
                    license=f"article licence: {lic.group(1).strip()}" if lic else "",
                    source="COVID-QA (CORD-19 article, full text)",
                )
            )
    return docs


def _load_markdown(path: Path) -> Document:
    """A Markdown summary with a small front matter block (`key: value` lines between `---`)."""
    raw = path.read_text(encoding="utf-8")
    meta: dict = {}
    body = raw
    if raw.startswith("---"):
        _, front, body = raw.split("---", 2)
        for line in front.strip().splitlines():
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    cited = [p.strip() for p in meta.get("pmids", "").split(",") if p.strip()]
    dois = [d.strip() for d in meta.get("dois", "").split(",") if d.strip()]
    return Document(
        doc_id=meta.get("doc_id") or f"medsight:{path.stem}",
        text=body.strip(),
        title=meta.get("title", path.stem.replace("_", " ")),
        doi=", ".join(dois),
        year=meta.get("year", ""),
        license=meta.get("license", ""),
        source=meta.get("source", "MedSight summary"),
        pmids_cited=cited,
    )


def load_path(path: str | Path) -> list[Document]:
    """Load documents from a JSONL file, a COVID-QA JSON file, a Markdown/text file, or a folder of those.

    In a folder, a COVID-QA full text replaces the abstract of the same document (the longer text wins).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no documents at {path}")
    if path.is_dir():
        docs: dict[str, Document] = {}
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix in {".jsonl", ".json", ".md", ".txt"} and _is_document_file(child):
                for doc in load_path(child):
                    old = docs.get(doc.doc_id)
                    if old is None or len(doc.text) > len(old.text):
                        docs[doc.doc_id] = doc
        return list(docs.values())
    if path.suffix == ".jsonl":
        return load_jsonl(path)
    if path.suffix == ".json":
        return load_covid_qa(path)
    if path.suffix in {".md", ".txt"}:
        return [_load_markdown(path)]
    raise ValueError(f"unsupported document file {path.name} (use .jsonl, COVID-QA .json, .md or .txt)")


def _is_document_file(path: Path) -> bool:
    """Skip query files, licences and READMEs that sit beside documents in a corpus folder."""
    name = path.name.lower()
    if name.startswith(("queries", "readme", "license", "test_ground_truth")):
        return False
    if path.suffix == ".json":
        try:
            with open(path, encoding="utf-8") as fh:
                return '"paragraphs"' in fh.read(4096)
        except OSError:
            return False
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
        return '"text"' in first
    return path.suffix == ".md"


# ---------------------------------------------------------------------------------------------------- chunking

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])|\n{2,}")


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


def chunk_document(doc: Document, max_words: int = 120, overlap_sentences: int = 1) -> list[Chunk]:
    """Sentence-aligned windows of at most ~`max_words` words, overlapping by whole sentences.

    Short documents (abstracts, our summaries) stay one chunk when they fit. The title is prepended to each
    chunk's text because questions often name the topic the title states and the passage only implies.
    """
    sentences = split_sentences(doc.text)
    windows: list[list[str]] = []
    current: list[str] = []
    words = 0
    for sent in sentences:
        n = len(sent.split())
        if current and words + n > max_words:
            windows.append(current)
            current = current[-overlap_sentences:] if overlap_sentences else []
            words = sum(len(s.split()) for s in current)
        current.append(sent)
        words += n
    if current and (not windows or current != windows[-1][-len(current):]):
        windows.append(current)
    metadata = {
        "doc_id": doc.doc_id,
        "title": doc.title,
        "pmid": doc.pmid,
        "doi": doc.doi,
        "year": doc.year,
        "license": doc.license,
        "source": doc.source,
        "pmids_cited": ",".join(doc.pmids_cited),
    }
    metadata = {k: v for k, v in metadata.items() if v}  # Chroma rejects None; empty strings carry nothing
    chunks = []
    for i, window in enumerate(windows):
        body = " ".join(window)
        text = f"{doc.title}. {body}" if doc.title and not body.startswith(doc.title[:40]) else body
        chunks.append(Chunk(f"{doc.doc_id}#{i}", doc.doc_id, text, dict(metadata, chunk=i)))
    return chunks


def chunk_documents(docs: Iterable[Document], max_words: int = 120) -> list[Chunk]:
    return [c for d in docs for c in chunk_document(d, max_words=max_words)]


# ---------------------------------------------------------------------------------------------------- PubMed

def documents_to_jsonl(docs: Iterable[Document], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(asdict(doc), ensure_ascii=False) + "\n")


def iter_queries(path: str | Path) -> Iterator[dict]:
    """Evaluation queries: JSONL lines with `query` and `gold_doc_id`."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                if "query" not in rec or "gold_doc_id" not in rec:
                    raise ValueError(f"{path}: each line needs 'query' and 'gold_doc_id'")
                yield rec
