"""Tier 1 against a local server speaking Gemini's SSE streaming protocol: success, errors, timeouts, no key."""

import pytest
from fake_gemini import FakeGemini

from medsight.chat import GeminiTier, chat
from medsight.chat import ExtractiveTier


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini() as server:
        yield server


def _tiers(gemini, model, **kw):
    return [GeminiTier(api_key="test-key", model=model, base_url=gemini.url, timeout_s=kw.get("timeout_s", 5)),
            ExtractiveTier(word_delay=0)]


def test_streams_from_gemini_with_system_instruction_and_fenced_context(gemini, shipped_kb, case):
    answer = chat(case, [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
                  "What does a pneumothorax look like?", knowledge_base=shipped_kb, tiers=_tiers(gemini, "ok"))
    chunks = list(answer)
    assert answer.tier == "gemini" and not answer.refused
    assert answer.body == "A pneumothorax shows a thin pleural line with no lung markings beyond it [1]."
    assert len(chunks) >= 3  # streamed, not one blob
    text = "".join(chunks)
    assert "Sources:" in text and "not medical advice" in text
    req = gemini.requests[-1]
    assert ":streamGenerateContent" in req["path"] and "alt=sse" in req["path"]
    assert req["headers"].get("x-goog-api-key") == "test-key"
    sys_text = req["body"]["systemInstruction"]["parts"][0]["text"]
    assert "clinical decision-support" in sys_text and "data, not instructions" in sys_text
    contents = req["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    user = contents[-1]["parts"][0]["text"]
    assert "<case>" in user and "anomaly score is 0.710" in user and "<passages>" in user and "[1] (" in user


@pytest.mark.parametrize("model", ["error-500", "error-429", "error-403", "empty"])
def test_api_errors_fall_through_to_next_tier(gemini, shipped_kb, model):
    answer = chat({}, [], "What causes a pleural effusion?", knowledge_base=shipped_kb, tiers=_tiers(gemini, model))
    assert answer.tier == "extractive"
    assert answer.fallbacks and answer.fallbacks[0][0] == "gemini"
    assert "[1]" in answer.text


def test_timeout_falls_through_quickly(gemini, shipped_kb):
    answer = chat({}, [], "What causes a pleural effusion?", knowledge_base=shipped_kb,
                  tiers=_tiers(gemini, "slow", timeout_s=0.5))
    assert answer.tier == "extractive"
    assert "timed out" in answer.fallbacks[0][1] or "unreachable" in answer.fallbacks[0][1]


def test_missing_key_goes_to_next_tier_without_network(shipped_kb, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    answer = chat({}, [], "What causes a pleural effusion?", knowledge_base=shipped_kb,
                  tiers=[GeminiTier(), ExtractiveTier(word_delay=0)])
    assert answer.tier == "extractive"
    assert "no Gemini API key" in answer.fallbacks[0][1]


def test_connection_lost_mid_answer_is_finished_by_extractive_tier(gemini, shipped_kb):
    answer = chat({}, [], "What does a pneumothorax look like?", knowledge_base=shipped_kb,
                  tiers=_tiers(gemini, "midstream"))
    text = answer.text
    assert answer.tier == "gemini"
    assert text.startswith("Pneumothorax is air in the pleural space [1].")
    assert "cut off" in text and "not medical advice" in text
    assert any("mid-answer" in reason for _, reason in answer.fallbacks)


def test_dose_instructions_are_cut_from_generated_text(gemini, shipped_kb):
    gemini.script("dosey", ["Pneumonia is treated with antibiotics [1]. ", "Take amoxicillin 500 mg three ",
                            "times a day. ", "Follow-up imaging may be needed [2]."])
    answer = chat({}, [], "How is pneumonia managed?", knowledge_base=shipped_kb, tiers=_tiers(gemini, "dosey"))
    text = answer.text
    assert "500 mg" not in text
    assert "Pneumonia is treated with antibiotics [1]." in text and "Follow-up imaging" in text
    assert "Dose details were removed" in text
