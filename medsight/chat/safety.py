"""Safety overlays shared by every answer tier: dosing/prescribing questions are declined with a reason,
dose instructions are cut from every tier's text, the disclaimer is appended to every answer, questions are
length-capped, data put into a prompt cannot close its block, and chat text shown in the app cannot pull in
remote images or HTML. What counts as dosing lives in medsight.chat.dosing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from medsight.chat.dosing import contains_dose_instruction, dosing_reasons, is_dosing_request

__all__ = ["DISCLAIMER", "MAX_QUESTION_CHARS", "REFUSAL", "check_question", "contains_dose_instruction",
           "dosing_reasons", "escape_prompt_data", "filter_dose_instructions", "is_dosing_request", "safe_markdown"]

DISCLAIMER = (
    "MedSight is a teaching and research tool, not a medical device, and this is not medical advice. "
    "Diagnosis and treatment decisions belong to a qualified clinician who knows the patient."
)

REFUSAL = (
    "I can't give dosage or prescribing advice. The right medicine and dose depend on things this tool does not "
    "know — weight, age, kidney and liver function, allergies, pregnancy, other medicines — and must come from the "
    "treating clinician or a pharmacist. I can explain what the findings mean, or what the literature says about "
    "a condition and its management in general terms."
)

# Long enough for a pasted report paragraph plus a question; a longer text is a document, not a question, and
# would crowd the retrieved passages out of the model's context.
MAX_QUESTION_CHARS = 2000


def check_question(question: str | None) -> str:
    """The question, stripped; ValueError (one sentence a user can act on) when it is empty or too long."""
    question = (question or "").strip()
    if not question:
        raise ValueError("The question is empty.")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"The question is {len(question):,} characters long; please shorten it to at most "
                         f"{MAX_QUESTION_CHARS:,} characters (put long notes on the Clinical notes page).")
    return question


def escape_prompt_data(text: str) -> str:
    """Angle brackets in data (a note, a passage, a question) as entities, so a `</note>` or `</case>` inside the
    data cannot close the block that fences it in the prompt."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


# Every markdown image starts with "![" (inline, reference or nested); every raw HTML tag, comment or autolink
# with "<" followed by a letter, "/", "!" or "?".
# A character is escaped when an odd number of backslashes precede it, so the count is made odd.
_IMAGE_START = re.compile(r"(\\*)!(?=\[)")
_TAG_START = re.compile(r"(\\*)<(?=[A-Za-z/!?])")


def _escape(match: re.Match) -> str:
    slashes = match.group(1)
    return slashes + ("" if len(slashes) % 2 else "\\") + match.group(0)[len(slashes):]


def safe_markdown(text: str) -> str:
    """Chat text made safe to pass to a markdown renderer: markdown images (inline `![x](url)`, reference-style
    `![x][ref]`) and raw HTML (`<img>`, `<iframe>`, `<script>`, autolinks) are backslash-escaped, so they show as
    the literal characters and nothing is fetched; ordinary text and `[text](url)` links are left as they are."""
    return _IMAGE_START.sub(_escape, _TAG_START.sub(_escape, str(text)))


_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")


def filter_dose_instructions(chunks: Iterable[str]) -> Iterator[str]:
    """Re-chunk a stream into whole sentences and drop those that state doses or intake frequencies.

    Buffering to a sentence boundary costs a little latency but means nothing unsafe is shown and then withdrawn.
    """
    buffer = ""
    removed = emitted = False
    for chunk in chunks:
        buffer += chunk
        parts = _SENTENCE_BOUNDARY.split(buffer)
        if len(parts) == 1:
            continue
        # Keep the separators: find where the last complete sentence ends.
        last = buffer.rfind(parts[-1]) if parts[-1] else len(buffer)
        complete, buffer = buffer[:last], buffer[last:]
        kept = _keep_safe(complete)
        removed |= kept != complete
        if kept.strip() or (kept and emitted):
            emitted = True
            yield from _words(kept)
    if buffer:
        kept = _keep_safe(buffer)
        removed |= kept != buffer
        if kept.strip() or (kept and emitted):
            emitted = True
            yield from _words(kept)
    if removed:
        yield ("\n\n" if emitted else "") + "(Dose details were removed: MedSight does not give dosage advice.)"


def _words(text: str) -> Iterator[str]:
    """Released sentences go out word by word again, as the tiers stream them."""
    yield from re.findall(r"\s*\S+\s*|\s+", text)


def _keep_safe(text: str) -> str:
    pieces = re.split(r"((?<=[.!?])\s+|\n+)", text)
    out = []
    for i in range(0, len(pieces), 2):
        sentence = pieces[i]
        sep = pieces[i + 1] if i + 1 < len(pieces) else ""
        if sentence and contains_dose_instruction(sentence):
            continue
        out.append(sentence + sep)
    return "".join(out)
