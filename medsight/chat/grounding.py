"""Is a sentence supported by the passages it was written from? The shared check behind the generative tier's gate
and the chat evaluation's "unsupported content" measure.

Support is lexical on purpose: a sentence counts as supported when its numbers all appear in the passage it cites
(or in any passage it was given, when it cites none) and at most `max_absent` of its content words are missing
there. A fluent sentence that merely resembles the passages (the old embedding-similarity gate) does not pass:
an invented virus name, date or count is a content word or number that no passage holds.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Sequence

from medsight.chat.base import TierUnavailable
from medsight.kb.retrieve import tokenize

CITATION = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")

# Words that carry no claim of their own (tokenize() already drops the common stopwords).
_FUNCTION_WORDS = frozenset(
    """not no nor all any both each few more most other some such only own same so too very just but if because
    until against through over under again further once here there here also however thus therefore although
    though whereas within without upon via among per one two three first second may might must shall should
    can could would will used using use based including include includes such known well often usually""".split()
)

# Fixed messages the tiers add around or instead of quoted evidence: they make no claim about the literature, so the
# support measures leave them out.
NOTHING_FOUND = ("I found nothing in the knowledge base that answers this question; a clinician or a current "
                 "reference is the right source.")
ASK_IN_WORDS = ("I could not find a question in that message. Ask in words, for example \"What does a pleural effusion "
                "look like on a chest X-ray?\" or \"What does my anomaly score mean?\"")
TREATMENT_NOTE = "(General information from the literature, not a treatment plan.)"
FRAMING = (NOTHING_FOUND, ASK_IN_WORDS, TREATMENT_NOTE)
_FIXED_NOTES = re.compile(r"\((Dose details were removed|The answer was cut off)[^)]*\)")


def without_framing(text: str) -> str:
    """`text` without the fixed messages above and the safety notes (dose details removed, answer cut off)."""
    for message in FRAMING:
        text = text.replace(message, " ")
    return _FIXED_NOTES.sub(" ", text)


def content_words(text: str) -> list[str]:
    """Lower-case content tokens (stopwords, function words and citation markers removed; light plural strip)."""
    return [t for t in tokenize(CITATION.sub(" ", text)) if t not in _FUNCTION_WORDS and not (len(t) == 1 and t.isalpha())]


def _vocabulary(texts: Iterable[str]) -> set[str]:
    vocab: set[str] = set()
    for text in texts:
        vocab.update(tokenize(text))
    return vocab


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(CITATION.sub(" ", text))}


def absent_share(text: str, passages: Sequence[str]) -> float:
    """Share of `text`'s content words that appear in none of `passages` (0.0 for text with no content words)."""
    words = content_words(text)
    if not words:
        return 0.0
    vocab = _vocabulary(passages)
    return sum(w not in vocab for w in words) / len(words)


def _texts(passages) -> list[str]:
    return [p if isinstance(p, str) else p.text for p in passages]


def support(sentence: str, passages, max_absent: float = 0.2) -> tuple[bool, float]:
    """(supported, share of content words absent) for one sentence against the passage(s) it cites.

    `passages` are the numbered passages the writer was given ([1] is the first); a sentence citing none is
    checked against all of them. Every number in the sentence must appear in that pool."""
    texts = _texts(passages)
    cited = [int(n) for n in CITATION.findall(sentence) if 1 <= int(n) <= len(texts)]
    pool = [texts[i - 1] for i in cited] if cited else texts
    absent = absent_share(sentence, pool)
    pool_numbers = set().union(*(_numbers(t) for t in pool)) if pool else set()
    numbers_ok = _numbers(sentence) <= pool_numbers
    return numbers_ok and absent <= max_absent, absent


def addresses(question: str, text: str, min_overlap: float = 0.34) -> bool:
    """Does `text` take up the question's subject? At least a third of the question's content words (and at
    least one) reappear in it."""
    wanted = set(content_words(question))
    if not wanted:
        return True
    found = set(content_words(text))
    hit = len(wanted & found)
    return hit >= 1 and hit / len(wanted) >= min_overlap


def grounded_sentences(chunks: Iterator[str], passages, question: str | None = None, max_absent: float = 0.2,
                       min_words: int = 4) -> Iterator[str]:
    """Pass through only the generated sentences the passages support (see `support`); drop the rest.

    Nothing is shown until a supported sentence that addresses the question (when one is given) has been seen;
    if none comes, `TierUnavailable` is raised before anything is shown, so the cascade falls back to the
    extractive tier. A small model invents freely, and an unsupported sentence is worse than a shorter answer."""
    from medsight.kb.documents import split_sentences

    buffer, started = "", False

    def judge(text: str) -> Iterator[str]:
        nonlocal started
        for sent in split_sentences(text):
            if len(sent.split()) < min_words or not support(sent, passages, max_absent)[0]:
                continue
            if not started and question and not addresses(question, sent):
                continue
            started = True
            yield sent + " "

    for chunk in chunks:
        buffer += chunk
        cut = max(buffer.rfind(". "), buffer.rfind("? "), buffer.rfind("! "), buffer.rfind("\n"))
        if cut > 0:
            done, buffer = buffer[: cut + 1], buffer[cut + 1:]
            yield from judge(done)
    yield from judge(buffer)
    if not started:
        raise TierUnavailable("the generated answer was not supported by the passages or did not address the question")
