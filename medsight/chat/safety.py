"""Safety overlays shared by every answer tier: dosing/prescribing questions are declined with a reason,
dose instructions are cut from generated text, and the disclaimer is appended to every answer."""

from __future__ import annotations

import re
from typing import Iterable, Iterator

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

# Phrases that talk about radiation or study design use "dose" without asking for prescribing advice.
_NOT_PRESCRIBING = re.compile(r"\b(radiation|effective dose|dose[- ]response|exposure|msv|gray|sievert|dose[- ]escalation stud)", re.I)

_DOSING_PATTERNS = [
    re.compile(p, re.I)
    for p in (
        r"\b(dose|doses|dosage|dosages|dosing|posology)\b",
        r"\bhow (much|many)\b[^?]*\b(mg|milligrams?|mcg|micrograms?|grams?|ml|millilit(er|re)s?|tablets?|pills?|"
        r"capsules?|units?|puffs?|drops?|injections?|shots?)\b",
        r"\bhow (much|many|often)\b[^?]*\b(take|give|use|inject|administer|prescribe)\b",
        r"\b\d+(\.\d+)?\s?(mg|mcg|µg|ug|g|ml|iu|units?)\b(?!\s*/\s*dl)",
        r"\bmg\s*/\s*kg\b",
        r"\b(prescribe|prescribing|prescription|titrat\w*|taper(ing|ed)?)\b",
        r"\bhow (much|many)\b[^?]*\b(\w+(cillin|mycin|floxacin|olol|pril|sartan|azole|statin|pam|lam|semide|sone|"
        r"olone|phine|done|ine|arin|parin|mab|vir|cycline|xaban|gatran)|medicines?|medications?|drugs?|"
        r"antibiotics?|steroids?|inhalers?|oxygen|syrup)\b",
        r"\b(should|can|could|may|must|do) (i|he|she|we|they|you|the patient|my \w+|our \w+) (take|start|stop|"
        r"use|increase|decrease|double|halve|skip|switch to|be (given|put on))\b",
        r"\b(what|which) (medicine|medication|drug|antibiotic|steroid|inhaler)s?\b(?! (class|resistance|reaction|"
        r"induced|toxicity))",
        r"\b(max(imum)?|daily|loading|maintenance) (dose|amount)\b",
        r"\boverdose\b",
    )
]


def is_dosing_request(question: str) -> bool:
    """True when the question asks what to take, how much, or how often (prescribing advice)."""
    text = question.strip()
    if not text:
        return False
    hits = [p for p in _DOSING_PATTERNS if p.search(text)]
    if not hits:
        return False
    # "What radiation dose does a chest X-ray give?" is physics, not prescribing.
    if _NOT_PRESCRIBING.search(text) and not re.search(r"\b(take|prescri|mg|tablet|pill|medic|drug)", text, re.I):
        return False
    return True


# A sentence in generated text that instructs a dose: a quantity with a unit, or a frequency of intake.
_DOSE_INSTRUCTION = re.compile(
    r"\b\d+(\.\d+)?\s?(mg|mcg|µg|ug|g|ml|iu|units?)\b(?!\s*/\s*dl)|\bmg\s*/\s*kg\b|"
    r"\b(once|twice|three times|\d+ times) (a|per|each) (day|daily|week)\b|\bevery \d+ ?(hours?|h)\b",
    re.I,
)

_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")


def contains_dose_instruction(sentence: str) -> bool:
    return bool(_DOSE_INSTRUCTION.search(sentence))


def filter_dose_instructions(chunks: Iterable[str]) -> Iterator[str]:
    """Re-chunk a stream into whole sentences and drop those that state doses or intake frequencies.

    Buffering to a sentence boundary costs a little latency but means nothing unsafe is shown and then withdrawn.
    """
    buffer = ""
    removed = False
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
        if kept:
            yield kept
    if buffer:
        kept = _keep_safe(buffer)
        removed |= kept != buffer
        if kept:
            yield kept
    if removed:
        yield "\n\n(Dose details were removed: MedSight does not give dosage advice.)"


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
