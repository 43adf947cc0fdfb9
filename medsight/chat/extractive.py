"""Tier 3, the offline default: the answer quoted from the passages. The sentence the fitted selector
(`medsight.chat.selection`) judges most likely to answer comes first, with its `[n]` citation; a second sentence
follows only when it is nearly as likely. Questions about the case are answered from the case's own facts and
MedSight's explanatory passages (`medsight.chat.case_questions`). The tier cannot fail and never invents: every
claim it shows is either a quoted sentence or a number the app computed.
"""

from __future__ import annotations

import os
import re
import time
from typing import Iterator

from medsight.chat.context import Prompt
from medsight.chat.grounding import NOTHING_FOUND, TREATMENT_NOTE, addresses, content_words

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


class ExtractiveTier:
    """`second_ratio`: a further sentence (up to `max_sentences`) is added when its probability is at least this share
    of the first's, chosen on the fitting half of the COVID-QA development questions (docs/chat.md). Nothing is
    quoted when the best sentence shares no content word with the question (the passages do not answer it)."""

    name = "extractive"

    def __init__(self, max_sentences: int = 3, second_ratio: float = 0.2, word_delay: float | None = None):
        self.max_sentences = max_sentences
        self.second_ratio = second_ratio
        self.word_delay = float(os.environ.get("MEDSIGHT_WORD_DELAY", 0.0)) if word_delay is None else word_delay

    def select(self, question: str, passages) -> list:
        from medsight.chat.selection import rank_sentences

        ranked = rank_sentences(question, passages)
        if not ranked or not addresses(question, ranked[0].text, min_overlap=0.0):
            return []
        chosen = [ranked[0]]
        for c in ranked[1:]:
            if len(chosen) == self.max_sentences or c.score < self.second_ratio * ranked[0].score:
                break
            if not any(repeats(c.text, d.text) for d in chosen):
                chosen.append(c)
        return chosen

    def compose(self, prompt: Prompt) -> str:
        from medsight.chat.case_questions import answer_about_case

        intent = detect_intent(prompt.question)
        if intent == "greeting" and len(prompt.question.split()) <= 6:
            return GREETING
        if prompt.about_case:
            return answer_about_case(prompt, self)
        chosen = self.select(prompt.question, prompt.passages)
        if not chosen:
            return NOTHING_FOUND
        parts = [cite(c.text, c.passage) for c in chosen]
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
