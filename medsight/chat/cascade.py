"""`chat(case, history, question)`: retrieve, build the context, and answer through the first tier that can
(Gemini -> extractive by default; the local generator when asked for), with the safety overlays applied to every
tier. Questions about the case are answered from the case and MedSight's own explanatory passages."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from medsight.chat.base import TierUnavailable
from medsight.chat.case_questions import case_passages, is_case_question
from medsight.chat.context import build_prompt
from medsight.chat.extractive import ExtractiveTier
from medsight.chat.gemini import GeminiTier
from medsight.chat.local import LocalTier
from medsight.chat.safety import DISCLAIMER, REFUSAL, check_question, filter_dose_instructions, is_dosing_request


DEFAULT_TIERS = "gemini,extractive"  # the local generator lost to the extractive tier on dev (docs/chat.md)


def default_tiers(names: str | None = None) -> list:
    """Gemini -> extractive; `names` or `MEDSIGHT_CHAT_TIERS` (e.g. "gemini,local,extractive") picks others."""
    make = {"gemini": GeminiTier, "local": LocalTier, "extractive": ExtractiveTier}
    names = [n.strip() for n in (names or os.environ.get("MEDSIGHT_CHAT_TIERS", DEFAULT_TIERS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in make]
    if unknown:
        raise ValueError(f"MEDSIGHT_CHAT_TIERS names unknown tiers {unknown}; use gemini, local, extractive")
    tiers = [make[n]() for n in names]
    if "extractive" not in names:  # the cascade must always end in a tier that cannot fail
        tiers.append(ExtractiveTier())
    return tiers


@dataclass
class ChatAnswer:
    """A streamed answer. Iterate it for text chunks (the body, then sources and disclaimer); `tier`, `sources`
    and `refused` are known as soon as `chat()` returns; `body` is the tier's text alone."""

    tier: str
    sources: list[dict]
    refused: bool
    fallbacks: list[tuple[str, str]] = field(default_factory=list)  # (tier, why it did not answer)
    first_token_s: float | None = None
    _body: str = ""
    passages: list = field(default_factory=list)
    _chunks: Iterator[str] | None = None
    _text: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        if self._chunks is None:
            yield from self._text
            return
        chunks, self._chunks = self._chunks, None
        for chunk in chunks:
            self._text.append(chunk)
            yield chunk

    @property
    def body(self) -> str:
        """The tier's own text, without sources and disclaimer (reads the rest of the stream if needed)."""
        self.text
        return self._body

    @property
    def text(self) -> str:
        """The whole answer (reads the rest of the stream if needed)."""
        for _ in self:
            pass
        return "".join(self._text)

    def as_dict(self) -> dict:
        text = self.text
        return {
            "answer": text,
            "tier": self.tier,
            "refused": self.refused,
            "sources": [{k: v for k, v in s.items() if k != "text"} for s in self.sources],
            "fallbacks": [{"tier": t, "reason": r} for t, r in self.fallbacks],
        }


def cited_sources(sources: Sequence[dict], body: str = "") -> tuple[list, list]:
    """([(n, source)] the body cites, [(n, source)] the rest), numbered as cited; all are "cited" when it cites none."""
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", body) if 1 <= int(n) <= len(sources)}
    numbered = list(enumerate(sources, 1))
    if not cited:
        return numbered, []
    return [(i, s) for i, s in numbered if i in cited], [(i, s) for i, s in numbered if i not in cited]


def source_line(n: int, source: dict, markdown: bool = False) -> str:
    """"[n] Title (year), citation"; with `markdown` the title in bold (the app's sources list)."""
    year = f" ({source['year']})" if source.get("year") else ""
    title = source.get("title") or source.get("doc_id")
    if markdown:
        return f"[{n}] **{title}**{year}: {source.get('citation', '')}"
    return f"[{n}] {title}{year}, {source.get('citation', '')}"


def sources_block(sources: Sequence[dict], body: str = "") -> str:
    """The numbered sources the body cites (all of them when it cites none), keeping their numbers."""
    if not sources:
        return ""
    cited, rest = cited_sources(sources, body)
    more = f"\n({len(rest)} more retrieved passage{'s' if len(rest) > 1 else ''} not cited.)" if rest else ""
    return "\n\nSources:\n" + "\n".join(source_line(i, s) for i, s in cited) + more


def _retrieve(question: str, history, knowledge_base, k: int, mode: str, per_document: int):
    from medsight.kb.retrieve import Retriever

    if knowledge_base is None:
        from medsight.kb.store import knowledge_base as default_kb

        knowledge_base = default_kb()
    # A follow-up ("and how is it treated?") needs the previous question to retrieve anything useful.
    last_user = next((m["content"] for m in reversed(list(history or [])) if isinstance(m, dict) and m.get("role") == "user"), "")
    query = question if len(question.split()) > 5 or not last_user else f"{last_user} {question}"
    return Retriever(knowledge_base, mode=mode).retrieve(query, k, per_document=per_document)


def chat(
    case: Any,
    history: Sequence | None,
    question: str,
    *,
    knowledge_base=None,
    tiers: Sequence | None = None,
    k: int = 30,
    per_document: int = 10,
    retrieval_mode: str = "hybrid",
) -> ChatAnswer:
    """Answer `question` about `case` (plain data: vision scores, risk band, note entities/conditions, fusion).

    Returns once the answering tier has produced its first chunk, so `tier` is settled; iterate the result for
    the streamed text. A tier that fails before its first chunk hands over to the next; one that fails mid-answer
    is finished by the extractive tier, and `fallbacks` records why. `k` passages are retrieved, at most
    `per_document` from one document (the answer to a question about an article is often in one of its lower-ranked
    passages: 30 / 10 hold it for 86% of the COVID-QA dev questions, 10 / 3 for 75%; docs/chat.md).
    """
    start = time.perf_counter()  # first-token time counts from the question, retrieval included
    question = check_question(question)  # ValueError when empty or longer than MAX_QUESTION_CHARS
    if is_dosing_request(question):
        answer = ChatAnswer(tier="safety", sources=[], refused=True, _body=REFUSAL)
        answer._chunks = iter([REFUSAL, f"\n\n_{DISCLAIMER}_"])
        return answer

    about_case = is_case_question(question)
    # The case's own questions are answered from MedSight's explanatory texts, never from literature on other diseases.
    if about_case:
        passages = case_passages(question)
    else:
        passages = _retrieve(question, history, knowledge_base, k, retrieval_mode, per_document)
    prompt = build_prompt(case, history, question, passages, about_case=about_case)
    sources = [p.as_source() for p in passages]
    tiers = list(tiers) if tiers is not None else default_tiers()
    fallbacks: list[tuple[str, str]] = []
    for i, tier in enumerate(tiers):
        stream = filter_dose_instructions(tier.stream(prompt))  # every tier: quoted passages can hold doses too
        try:
            first = next(stream)
        except TierUnavailable as exc:
            fallbacks.append((tier.name, str(exc)))
            continue
        except StopIteration:
            fallbacks.append((tier.name, "empty answer"))
            continue
        answer = ChatAnswer(tier=tier.name, sources=sources, refused=False, fallbacks=fallbacks,
                            first_token_s=time.perf_counter() - start, passages=list(passages))
        answer._chunks = _finish(answer, first, stream, prompt, tiers[i + 1:])
        return answer
    # Every tier failed (the extractive tier only fails on a bug in our own code, which stays loud above).
    raise RuntimeError(f"no chat tier could answer: {fallbacks}")


def _finish(answer: ChatAnswer, first: str, stream: Iterator[str], prompt, later_tiers) -> Iterator[str]:
    body = [first]
    yield first
    try:
        for chunk in stream:
            body.append(chunk)
            yield chunk
    except TierUnavailable as exc:
        answer.fallbacks.append((answer.tier, f"stopped mid-answer: {exc}"))
        extractive = next((t for t in later_tiers if t.name == "extractive"), ExtractiveTier(word_delay=0))
        note = "\n\n(The answer was cut off; continuing from the retrieved evidence.)\n\n"
        body.append(note)
        yield note
        for chunk in filter_dose_instructions(extractive.stream(prompt)):
            body.append(chunk)
            yield chunk
    answer._body = "".join(body)
    yield sources_block(answer.sources, answer._body)
    yield f"\n\n_{DISCLAIMER}_"
