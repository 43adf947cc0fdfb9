import pytest

from medsight.chat import chat, is_dosing_request
from medsight.chat.evaluate import CONTROL_QUESTIONS, DOSING_QUESTIONS
from medsight.chat.safety import contains_dose_instruction, filter_dose_instructions
from medsight.chat.tiers import ExtractiveTier


@pytest.mark.parametrize("question", DOSING_QUESTIONS)
def test_dosing_questions_are_recognised(question):
    assert is_dosing_request(question)


@pytest.mark.parametrize("question", CONTROL_QUESTIONS)
def test_ordinary_questions_are_not_refused(question):
    assert not is_dosing_request(question)


def test_refusal_gives_a_reason_and_disclaimer_and_skips_every_tier(shipped_kb):
    class Exploding:
        name = "boom"

        def stream(self, prompt):
            raise AssertionError("a tier must not run for a dosing question")

    answer = chat({}, [], "How much amoxicillin should I take?", knowledge_base=shipped_kb, tiers=[Exploding()])
    assert answer.refused and answer.tier == "safety" and answer.sources == []
    text = answer.text
    assert "can't give dosage" in text and "clinician" in text and "not medical advice" in text


def test_filter_keeps_safe_sentences_in_order():
    chunks = ["Fluid is drained [1]. Give 40 mg", " furosemide twice a day. Reassess", " with a new film [2]."]
    out = "".join(filter_dose_instructions(chunks))
    assert out.startswith("Fluid is drained [1]. Reassess with a new film [2].")
    assert "40 mg" not in out
    assert contains_dose_instruction("Take one tablet every 8 hours")
    assert contains_dose_instruction("0.5 mg/kg daily")


def test_every_tier_answer_carries_disclaimer(shipped_kb):
    answer = chat({}, [], "What is ARDS?", knowledge_base=shipped_kb, tiers=[ExtractiveTier(word_delay=0)])
    assert answer.text.rstrip().endswith("knows the patient._")
