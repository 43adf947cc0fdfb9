"""Question answering measured as a user gets it (`medsight chat-eval --qa FILE`): every question of a JSONL file
(`query`, optional gold `answer`) goes through `chat()` with the tiers a user would get, and each answer is
scored against its gold answer and against the passages the answering tier was given.

Measures (answers.jsonl has one line per question; qa_metrics.json the summary, overall and per tier):
- gold answer contained: the SQuAD-normalised gold answer (lower case, no punctuation or articles) is a substring
  of the normalised answer;
- token F1 (SQuAD's), and the share of gold-answer tokens present in the answer;
- unsupported content: the share of answers with more than 20% of their content words absent from the passages
  they were given (`medsight.chat.grounding.absent_share`; fixed messages such as "I found nothing..." or "(Dose
  details were removed...)" make no claim and are left out; a declined question counts as supported);
- seconds per answer (wall time from the question to the last chunk), time to the first chunk, and the CPU time
  of both (what the wall time would be on an idle machine: the timings share the CPU with whatever else runs).
All three measure the text shown above the sources list, i.e. without the "Sources:" block and the disclaimer.
"""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections import Counter
from pathlib import Path
from typing import Iterable

from medsight.chat.safety import DISCLAIMER

ANSWER_KEYS = ("query", "answer", "tier", "refused", "sources", "passages", "seconds")
UNSUPPORTED_ABOVE = 0.2  # an answer is "unsupported" when more than this share of its content words is absent
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATION = re.compile(r"\s*\[\d+\]")


def normalise(text: str) -> str:
    """SQuAD answer normalisation: lower case, punctuation and articles removed, whitespace collapsed."""
    text = "".join(ch if ch not in string.punctuation else " " for ch in text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def shown_answer(text: str) -> str:
    """The answer as shown above the sources list and the disclaimer, citation markers removed."""
    for marker in ("\n\nSources:\n", f"\n\n_{DISCLAIMER}_"):
        text = text.split(marker)[0]
    return _CITATION.sub("", text).strip()


def gold_contained(answer: str, gold: str) -> bool:
    g = normalise(gold)
    return bool(g) and g in normalise(answer)


def token_f1(answer: str, gold: str) -> float:
    a, g = normalise(answer).split(), normalise(gold).split()
    common = sum((Counter(a) & Counter(g)).values())
    if not a or not g or not common:
        return 0.0
    precision, recall = common / len(a), common / len(g)
    return 2 * precision * recall / (precision + recall)


def gold_token_share(answer: str, gold: str) -> float:
    a, g = set(normalise(answer).split()), normalise(gold).split()
    return sum(t in a for t in g) / len(g) if g else 0.0


def read_questions(path: str | Path, limit: int | None = None) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if not row.get("query"):
                    raise ValueError(f"{path}: a line has no 'query'")
                rows.append(row)
                if limit and len(rows) == limit:
                    break
    return rows


class LexicalKnowledgeBase:
    """Documents chunked in memory exactly as `medsight kb build` chunks them, searchable by BM25 alone: measures
    the chat over a corpus whose dense store is not built yet (`chat-eval --documents`, retrieval mode bm25)."""

    def __init__(self, sources, include_shipped: bool = True):
        from medsight.kb.documents import chunk_documents, load_path
        from medsight.kb.retrieve import LexicalIndex
        from medsight.kb.store import SHIPPED_KB_DIR

        docs: dict = {}
        for src in ([SHIPPED_KB_DIR] if include_shipped else []) + [Path(s) for s in sources]:
            for doc in load_path(src):
                if doc.doc_id not in docs or len(doc.text) > len(docs[doc.doc_id].text):
                    docs[doc.doc_id] = doc
        self.chunks = chunk_documents(docs.values())
        self.path = Path("+".join(Path(s).name for s in sources) or "shipped")
        self._lexical = LexicalIndex(self.chunks)

    def lexical_index(self):
        return self._lexical

    def __len__(self) -> int:
        return len(self.chunks)


def answer_questions(questions: Iterable[dict], kb, tiers=None, case=None, log=None,
                     retrieval_mode: str = "hybrid") -> list[dict]:
    """One answers.jsonl record per question (exactly ANSWER_KEYS), plus `_gold` and `_first_s` kept aside for
    the metrics (dropped when written)."""
    from medsight.chat.cascade import chat

    records = []
    for i, q in enumerate(questions, 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        answer = chat(case or {}, [], q["query"], knowledge_base=kb, tiers=tiers, retrieval_mode=retrieval_mode)
        first_cpu = time.process_time() - cpu_start
        text = answer.text  # reads the whole stream
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        record = {
            "query": q["query"],
            "answer": text,
            "tier": answer.tier,
            "refused": answer.refused,
            "sources": [{k: v for k, v in s.items() if k != "text"} for s in answer.sources],
            "passages": [p.text for p in answer.passages],
            "seconds": round(seconds, 3),
            "_gold": q.get("answer"),
            "_first_s": answer.first_token_s,
            "_cpu_s": cpu,
            "_first_cpu_s": first_cpu,
        }
        records.append(record)
        if log:
            mark = "" if record["_gold"] is None else (" ok" if gold_contained(shown_answer(text), record["_gold"]) else " --")
            log(f"[{i}] {answer.tier} {seconds:.2f}s{mark} {q['query'][:70]}")
    return records


def _summary(records: list[dict]) -> dict:
    answered = [r for r in records if not r["refused"]]
    with_gold = [r for r in records if r.get("_gold")]  # a declined question with a gold answer counts as missed
    shown = {id(r): shown_answer(r["answer"]) for r in records}
    from medsight.chat.grounding import absent_share, without_framing

    absent = [absent_share(without_framing(shown[id(r)]), r["passages"]) for r in answered]
    seconds = [r["seconds"] for r in records]
    first = [r["_first_s"] for r in records if r.get("_first_s") is not None]
    out = {
        "questions": len(records),
        "refused": len(records) - len(answered),
        "with_gold_answer": len(with_gold),
        "gold_contained": _mean(gold_contained(shown[id(r)], r["_gold"]) for r in with_gold),
        "token_f1": _mean(token_f1(shown[id(r)], r["_gold"]) for r in with_gold),
        "gold_token_share": _mean(gold_token_share(shown[id(r)], r["_gold"]) for r in with_gold),
        "unsupported_answer_share": _mean(a > UNSUPPORTED_ABOVE for a in absent),
        "mean_absent_content_share": _mean(absent),
        "answer_words_median": statistics.median(len(shown[id(r)].split()) for r in records) if records else None,
        "seconds_median": statistics.median(seconds) if seconds else None,
        "seconds_p90": _quantile(seconds, 0.9),
        "seconds_max": max(seconds) if seconds else None,
        "first_text_seconds_median": statistics.median(first) if first else None,
        "first_text_seconds_max": max(first) if first else None,
        # CPU time of this process per answer: what the wall time would be on an otherwise idle core
        "cpu_seconds_median": _median(r.get("_cpu_s") for r in records),
        "first_text_cpu_seconds_median": _median(r.get("_first_cpu_s") for r in answered),
    }
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def _mean(values) -> float | None:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else None


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _quantile(values, q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def qa_metrics(records: list[dict]) -> dict:
    tiers = sorted({r["tier"] for r in records})
    return {**_summary(records), "per_tier": {t: _summary([r for r in records if r["tier"] == t]) for t in tiers}}


def write_results(records: list[dict], out: str | Path, extra: dict | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "answers.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({k: r[k] for k in ANSWER_KEYS}, ensure_ascii=False) + "\n")
    metrics = {**(extra or {}), **qa_metrics(records)}
    (out / "qa_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics
