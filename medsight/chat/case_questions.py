"""Questions about the case itself ("What does a HIGH anomaly score mean for this radiograph?", "what does the
heatmap show?", "what did the note find?"): answered from the facts the app holds, with their numbers, and from
MedSight's own explanatory passages, never from literature about some other disease.
"""

from __future__ import annotations

import re
import threading

from medsight.chat.context import Prompt

# A question is about the case when it points at this study or at MedSight's own outputs.
_CASE_QUESTION = re.compile(
    r"\b(my|this|our|his|her) (result|score|scan|x-?ray|image|case|radiograph|film|patient|note|heat ?map|band)s?\b"
    r"|\bthe (anomaly|heat ?map|note|band|score|image|radiograph|x-?ray)\b"
    r"|\banomaly scores?\b|\brisk bands?\b|\bheat ?maps?\b|\bnormal percentile\b|\boperating threshold\b"
    r"|\bscore'?s? components?\b|^\W*what does (it|this|that) mean\W*$|\b(high|medium|low) (anomaly )?(score|risk|band)\b"
    r"|\bimage-note fusion\b|\bmedsight\b",
    re.I,
)

_TOPICS = {
    "components": re.compile(r"\bcomponents?\b|\bsignals?\b|\bz-?scores?\b", re.I),
    "heatmap": re.compile(r"\bheat ?maps?\b|\bgrad-?cam\b|\bregions?\b|\bwhere\b|\bhighlight", re.I),
    "note": re.compile(r"\bnote\b|\bfindings?\b|\bentit|\bmention|\bconditions?\b|\breport(ed)?\b|\bsymptom", re.I),
    "fusion": re.compile(r"\bfusion\b|\bagree|\bconsistent\b|\bdiscordant\b|\bmatch", re.I),
}

_LOCK = threading.Lock()
_EXPLANATORY: list = []


def is_case_question(question: str) -> bool:
    return bool(_CASE_QUESTION.search(question))


def explanatory_passages() -> list:
    """MedSight's own explanatory texts (front matter `source: MedSight documentation` in assets/kb), as passages.
    Read from the shipped files rather than the store, so they are there whatever store is open."""
    from medsight.kb.documents import chunk_documents, load_path
    from medsight.kb.retrieve import Passage
    from medsight.kb.store import SHIPPED_KB_DIR

    with _LOCK:
        if not _EXPLANATORY:
            docs = [d for d in load_path(SHIPPED_KB_DIR) if d.source == "MedSight documentation"]
            _EXPLANATORY.extend(Passage(c, 1.0) for c in chunk_documents(docs))
        return list(_EXPLANATORY)


def case_passages(question: str, k: int = 5) -> list:
    """The explanatory passages most related to the question (lexical overlap), best first."""
    from medsight.kb.retrieve import LexicalIndex

    passages = explanatory_passages()
    scores = LexicalIndex([p.chunk for p in passages]).scores(question)
    order = sorted(range(len(passages)), key=lambda i: -scores[i])
    return [passages[i] for i in order[:k]]


def case_facts(prompt: Prompt) -> list[str]:
    """The case's own facts that bear on the question (the score facts when nothing narrower is asked)."""
    view, q = prompt.case, prompt.question
    topics = [t for t, pattern in _TOPICS.items() if pattern.search(q)]
    facts: list[str] = []
    if "components" in topics:
        facts += view.score_sentences() + view.component_sentences()
    if "note" in topics:
        facts += view.note_sentences() or ["No clinical note has been analysed for this case."]
    if "fusion" in topics:
        facts += view.fusion_sentences() or ["There is no image-note fusion yet: it needs both a scored image and a note."]
    if not facts:
        facts = view.score_sentences() or view.note_sentences()
    return list(dict.fromkeys(facts))


def answer_about_case(prompt: Prompt, tier) -> str:
    """Facts with their numbers, then up to two explanatory sentences quoted with their citations."""
    from medsight.chat.extractive import cite, repeats

    if prompt.case.empty:
        parts = ["No radiograph or note has been analysed yet, so there is no case result to explain. In general:"]
    else:
        parts = case_facts(prompt)
    from medsight.chat.selection import candidate_sentences, rank_sentences

    ranked = rank_sentences(prompt.question, prompt.passages)
    chosen: list = []
    for c in ranked:
        if len(chosen) < 2 and not any(repeats(c.text, d.text) for d in chosen):
            chosen.append(c)
    # Whatever was asked about the score, say what it is not.
    if not any("diagnos" in c.text for c in chosen):
        chosen += [c for c in ranked + candidate_sentences(prompt.passages) if "diagnos" in c.text][:1]
    parts += [cite(c.text, c.passage) for c in chosen]
    return " ".join(parts)
