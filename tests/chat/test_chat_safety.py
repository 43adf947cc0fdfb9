import pytest

from medsight.chat import ExtractiveTier, TierUnavailable, chat, is_dosing_request
from medsight.chat.evaluate import CONTROL_QUESTIONS, DOSING_QUESTIONS
from medsight.chat.safety import MAX_QUESTION_CHARS, contains_dose_instruction, filter_dose_instructions

DOSE_SENTENCE = "Give amoxicillin one gram every eight hours."


@pytest.mark.parametrize("question", DOSING_QUESTIONS, ids=ascii)
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


class Quoting:
    """A tier that answers with fixed text (standing in for one that quotes a guideline)."""

    def __init__(self, name, text, fail_after=None):
        self.name, self.text, self.fail_after = name, text, fail_after

    def stream(self, prompt):
        for i, word in enumerate(self.text.split(" ")):
            if self.fail_after is not None and i == self.fail_after:
                raise TierUnavailable("connection dropped")
            yield word + " "


@pytest.mark.parametrize("tier_name", ["gemini", "local", "extractive"])
def test_every_tier_is_filtered_the_extractive_included(shipped_kb, tier_name):
    tier = Quoting(tier_name, f"Pneumonia is treated with antibiotics [1]. {DOSE_SENTENCE}")
    answer = chat({}, [], "How is pneumonia treated in general?", knowledge_base=shipped_kb, tiers=[tier])
    assert answer.tier == tier_name
    assert "Pneumonia is treated with antibiotics [1]." in answer.body
    assert "gram" not in answer.body and "Dose details were removed" in answer.body


def test_mid_answer_fallback_is_filtered_too(shipped_kb):
    failing = Quoting("gemini", "Pneumonia is treated with antibiotics. More words here", fail_after=6)
    fallback = Quoting("extractive", f"Antibiotics are chosen by severity [1]. {DOSE_SENTENCE}")
    answer = chat({}, [], "How is pneumonia treated in general?", knowledge_base=shipped_kb, tiers=[failing, fallback])
    assert "Antibiotics are chosen by severity [1]." in answer.body and "gram" not in answer.body
    assert answer.fallbacks and "mid-answer" in answer.fallbacks[0][1]


@pytest.fixture(scope="module")
def guideline_kb(tmp_path_factory, shipped_kb):
    """A knowledge base holding only a user-added guideline whose every sentence states a dose."""
    from medsight.kb.documents import Document
    from medsight.kb.store import build_knowledge_base

    doc = Document(
        doc_id="local:cap-guideline", title="Local guideline: antibiotics for community-acquired pneumonia",
        text=("For non-severe community-acquired pneumonia in adults, amoxicillin 500 mg is given three times a day "
              "for five days. For severe community-acquired pneumonia in adults, co-amoxiclav 1.2 g is given "
              "intravenously every eight hours. Clarithromycin 500 mg twice daily is added when atypical pneumonia "
              "is suspected."), source="user")
    return build_knowledge_base(documents=[doc], path=tmp_path_factory.mktemp("guideline_kb"), include_shipped=False)


def test_extractive_tier_quoting_a_dosing_guideline_is_filtered(guideline_kb):
    from medsight.chat.context import build_prompt
    from medsight.kb.retrieve import Retriever

    question = "Which antibiotics are used for community-acquired pneumonia in adults?"
    assert not is_dosing_request(question)  # general management: answered, but without the doses
    tier = ExtractiveTier(word_delay=0)
    passages = Retriever(guideline_kb, mode="hybrid").retrieve(question, 5, per_document=1)
    raw = "".join(tier.stream(build_prompt({}, [], question, passages)))
    assert "mg" in raw  # what the tier quotes from the guideline states doses
    answer = chat({}, [], question, knowledge_base=guideline_kb, tiers=[tier])
    assert answer.tier == "extractive"
    assert " mg" not in answer.body and "every eight hours" not in answer.body
    assert "Dose details were removed" in answer.body


def test_question_length_is_capped_with_a_clear_message(shipped_kb):
    with pytest.raises(ValueError, match=r"2,001 characters long; please shorten it to at most 2,000"):
        chat({}, [], "x" * (MAX_QUESTION_CHARS + 1), knowledge_base=shipped_kb, tiers=[ExtractiveTier(word_delay=0)])
    with pytest.raises(ValueError, match="empty"):
        chat({}, [], "   ", knowledge_base=shipped_kb)
    at_limit = ("What is ARDS? " * 200)[:MAX_QUESTION_CHARS]
    answer = chat({}, [], at_limit, knowledge_base=shipped_kb, tiers=[ExtractiveTier(word_delay=0)])
    assert answer.text
