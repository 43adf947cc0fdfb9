"""Readers for the two text corpora the NLP pipeline is trained and measured on: BC5CDR (PubTator format, entity
offsets) and the Indiana University chest X-ray reports (XML with MeSH findings). Paths always come from the caller."""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

BC5CDR_SPLITS = {
    "train": "CDR_TrainingSet.PubTator.txt",
    "dev": "CDR_DevelopmentSet.PubTator.txt",
    "test": "CDR_TestSet.PubTator.txt",
}


@dataclass
class AnnotatedDoc:
    """One PubMed title + abstract with gold entity mentions as (start, end, label) character offsets."""

    doc_id: str
    text: str
    entities: list[tuple[int, int, str]] = field(default_factory=list)


def read_pubtator(path: str | Path) -> list[AnnotatedDoc]:
    """Parse a PubTator file: `id|t|title`, `id|a|abstract`, then tab-separated mentions; relation lines are skipped."""
    docs: list[AnnotatedDoc] = []
    title = abstract = None
    current: AnnotatedDoc | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            current, title, abstract = None, None, None
            continue
        if "|t|" in line[:20]:
            doc_id, _, title = line.split("|", 2)
            continue
        if "|a|" in line[:20]:
            doc_id, _, abstract = line.split("|", 2)
            current = AnnotatedDoc(doc_id=doc_id, text=f"{title} {abstract}")
            docs.append(current)
            continue
        parts = line.split("\t")
        if current is not None and len(parts) >= 5 and parts[1].isdigit():
            start, end, label = int(parts[1]), int(parts[2]), parts[4]
            if current.text[start:end] != parts[3]:
                raise ValueError(f"{path}: offsets of {parts[3]!r} in document {current.doc_id} do not match its text")
            current.entities.append((start, end, label))
    return docs


def read_bc5cdr(corpus_dir: str | Path, splits: list[str]) -> list[AnnotatedDoc]:
    """Documents of the named BC5CDR splits ('train', 'dev', 'test') from the folder holding the PubTator files."""
    corpus_dir = Path(corpus_dir)
    docs: list[AnnotatedDoc] = []
    for split in splits:
        path = corpus_dir / BC5CDR_SPLITS[split]
        if not path.exists():
            raise FileNotFoundError(f"BC5CDR file {path} not found: pass the folder holding the CDR_*.PubTator.txt files")
        docs.extend(read_pubtator(path))
    return docs


@dataclass
class RadiologyReport:
    """One IU chest X-ray report: its free text (indication, findings, impression) and its MeSH major findings."""

    report_id: str
    text: str
    findings: list[str]  # first component of each MeSH major term, e.g. "Pleural Effusion", "normal"


def read_iu_reports(path: str | Path) -> list[RadiologyReport]:
    """Reports from the NLMCXR_reports.tgz archive (or a folder of its XML files); reports without text are skipped."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.rglob("*.xml"))
        if not candidates:
            candidates = sorted(path.rglob("*.tgz"))
            if not candidates:
                raise FileNotFoundError(f"no IU report XML or .tgz archive under {path}")
            return read_iu_reports(candidates[0])
        blobs = [(p.name, p.read_bytes()) for p in candidates]
    else:
        if not path.exists():
            raise FileNotFoundError(f"IU report archive {path} not found")
        with tarfile.open(path, "r:gz") as tar:
            blobs = [
                (m.name, tar.extractfile(m).read())  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile() and m.name.endswith(".xml")
            ]
    reports = []
    for name, blob in sorted(blobs):
        root = ET.fromstring(blob)
        sections = {a.get("Label"): (a.text or "").strip() for a in root.iter("AbstractText")}
        text = " ".join(
            f"{label.title()}: {sections[label]}"
            for label in ("INDICATION", "FINDINGS", "IMPRESSION")
            if sections.get(label)
        )
        if not sections.get("FINDINGS") and not sections.get("IMPRESSION"):
            continue
        findings = sorted({(m.text or "").split("/")[0].strip() for m in root.iter("major") if m.text})
        report_id = re.sub(r"\.xml$", "", Path(name).name)
        reports.append(RadiologyReport(report_id=report_id, text=text, findings=findings))
    return reports
