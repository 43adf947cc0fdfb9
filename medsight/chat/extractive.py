"""Tier 3, the offline default: the answer quoted from the passages. The sentence the fitted selector
(`medsight.chat.selection`) judges most likely to answer comes first, with the sentence that follows it in its
passage and its `[n]` citation; up to four more such excerpts follow when the selector rates them at least a fifth
as likely. Questions about the case are answered from the case's own facts and MedSight's explanatory passages
(`medsight.chat.case_questions`). The tier cannot fail and never invents: every claim it shows is either a quoted
sentence or a number the app computed.
"""

from __future__ import annotations

import os
import re
import time
from typing import Iterator

from medsight.chat.context import Prompt
from medsight.chat.grounding import ASK_IN_WORDS, NOTHING_FOUND, TREATMENT_NOTE, addresses, content_words

INTENTS = {
    "greeting": r"^\s*(hi|hello|hey|thanks|thank you|good (morning|afternoon|evening))\b",
    "case": r"\b(my|this|the) (result|score|scan|x-?ray|image|case|report|risk|study|radiograph|film)\b|\banomaly score\b"
            r"|\brisk band\b|\bheat ?map\b|\bwhat does (it|this) mean\b",
    "cause": r"\b(cause[sd]?|why|risk factors?|etiology|aetiology)\b",
    "symptoms": r"\b(symptoms?|signs?|present(s|ation)?|feel)\b",
    "imaging": r"\b(look like|appear(ance)?|x-?ray|radiograph|ct|imaging|opacit|finding)\w*",
    "diagnosis": r"\b(diagnos\w*|test(s|ing)?|detect\w*|confirm)\b",
    "treatment": r"\b(treat\w*|manage\w*|therap\w*|cure)\b",
    "prognosis": r"\b(prognosis|outcome|mortality|survival|recover\w*|serious|dangerous)\b",
    "definition": r"^\s*(what (is|are)|define|explain|describe)\b",
}

GREETING = ("Hello. Ask me about this case's findings or about a chest condition, and I will answer from the "
            "knowledge base with sources.")


def detect_intent(question: str) -> str:
    q = question.lower()
    for intent, pattern in INTENTS.items():
        if re.search(pattern, q):
            return intent
    return "other"


def repeats(sentence: str, earlier: str) -> bool:
    """Does `sentence` say little beyond `earlier` (80% of its content words already there)?"""
    words, seen = set(content_words(sentence)), set(content_words(earlier))
    return bool(words) and len(words & seen) / len(words) >= 0.8


def cite(sentence: str, n: int) -> str:
    """'Text.' -> 'Text [n].' (the citation stays inside the sentence it supports)."""
    sentence = sentence.rstrip()
    if sentence and sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]."


def choose(question: str, ranked, max_sentences: int, second_ratio: float) -> list:
    """The best sentence, then up to `max_sentences - 1` more whose probability is at least `second_ratio` of its
    and which say something new; nothing when the best shares no content word with the question."""
    if not ranked or not addresses(question, ranked[0].text, min_overlap=0.0):
        return []
    chosen = [ranked[0]]
    for c in ranked[1:]:
        if len(chosen) == max_sentences or c.score < second_ratio * ranked[0].score:
            break
        if not any(repeats(c.text, d.text) for d in chosen):
            chosen.append(c)
    return chosen


# the quoted article's own reference markers ("[23]", "[2, 5]", "[16-18]"): shown, they would read as citations of
# passages that the Sources list does not have
_ARTICLE_REFERENCES = re.compile(r"\s*\[\d+(?:\s*[,;–-]\s*\d+)*\]")


def without_references(text: str) -> str:
    text = _ARTICLE_REFERENCES.sub("", text)
    return re.sub(r"\s+([.,;:])", r"\1", text).strip()


def excerpts(chosen, following: bool = True, preceding: bool = False) -> list[str]:
    """Each chosen sentence as a cited excerpt, with the sentence that follows it in its passage when `following`
    (an answer often runs on into it) and, when `preceding`, the sentence before it if it opens by pointing back; the
    article's own reference markers removed; a sentence already shown is not repeated."""
    shown: set[tuple[int, int]] = set()
    parts = []
    for c in chosen:
        if (c.passage, c.position) in shown:
            continue
        shown.add((c.passage, c.position))
        text = c.text
        if preceding and c.refers_back and c.preceding and (c.passage, c.position - 1) not in shown:
            shown.add((c.passage, c.position - 1))
            text = f"{c.preceding} {text}"
        if following and c.following and (c.passage, c.position + 1) not in shown:
            shown.add((c.passage, c.position + 1))
            text = f"{text} {c.following}"
        parts.append(cite(without_references(text), c.passage))
    return parts


class ExtractiveTier:
    """`second_ratio`: a further sentence (up to `max_sentences`) is added when its probability is at least this share
    of the first's; `following`: each sentence is shown with the one after it in its passage; `preceding`: a sentence
    that opens by pointing back ("Its genome ...") is shown after the sentence before it, which names its subject.
    Chosen by grouped cross-validation on the COVID-QA development questions (docs/chat.md). Nothing is quoted when
    the best sentence shares no content word with the question (the passages do not answer it)."""

    name = "extractive"

    def __init__(self, max_sentences: int = 5, second_ratio: float = 0.2, following: bool = True,
                 preceding: bool = True, word_delay: float | None = None):
        self.max_sentences = max_sentences
        self.second_ratio = second_ratio
        self.following = following
        self.preceding = preceding
        self.word_delay = float(os.environ.get("MEDSIGHT_WORD_DELAY", 0.0)) if word_delay is None else word_delay

    def select(self, question: str, passages) -> list:
        from medsight.chat.selection import rank_sentences

        return choose(question, rank_sentences(question, passages), self.max_sentences, self.second_ratio)

    def compose(self, prompt: Prompt) -> str:
        from medsight.chat.case_questions import answer_about_case

        intent = detect_intent(prompt.question)
        if intent == "greeting" and len(prompt.question.split()) <= 6:
            return GREETING
        if not any(any(ch.isalpha() for ch in w) for w in content_words(prompt.question)):
            return ASK_IN_WORDS  # emoji, digits or citation markers alone: any sentence would "match" it
        if prompt.about_case:
            return answer_about_case(prompt, self)
        chosen = self.select(prompt.question, prompt.passages)
        if not chosen:
            return NOTHING_FOUND
        parts = excerpts(chosen, self.following, self.preceding)
        if intent == "treatment":
            parts.append(TREATMENT_NOTE)
        return " ".join(parts)

    def stream(self, prompt: Prompt) -> Iterator[str]:
        text = self.compose(prompt)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word + (" " if i < len(words) - 1 else "")
            if self.word_delay:
                time.sleep(self.word_delay)
