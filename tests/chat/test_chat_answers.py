"""Answers that answer the question from the passages: the extractive selection, the grounding check, questions
about the case, and `medsight chat-eval --qa` on a tiny store built here."""

import json

import pytest

from medsight.chat import ExtractiveTier, TierUnavailable, build_prompt, chat
from medsight.chat.grounding import absent_share, grounded_sentences, support
from medsight.chat.qa_eval import ANSWER_KEYS, gold_contained, shown_answer, token_f1
from medsight.chat.selection import rank_sentences
from medsight.cli import main
from medsight.kb.documents import Chunk, Document
from medsight.kb.retrieve import Passage


def passage(text, doc="d", pmid="1"):
    return Passage(Chunk(f"{doc}#0", doc, text, {"doc_id": doc, "pmid": pmid}), 1.0)


INCUBATION = passage(
    "Coronaviruses are enveloped RNA viruses that infect birds and mammals. Several studies estimated the "
    "incubation period of COVID-19. The median incubation period was 5.2 days, with 95% of cases within 12.5 days. "
    "Masks reduce the spread of respiratory droplets.", doc="a")
OTHER = passage("Influenza causes seasonal epidemics every winter. Vaccination is recommended for older adults.", doc="b")

DOCS = [
    Document("covid:1", "The median incubation period of COVID-19 was 5.2 days in the first Wuhan cluster. Most "
             "patients had fever and dry cough.", title="Early transmission dynamics in Wuhan", pmid="111"),
    Document("mers:2", "MERS coronavirus was first isolated in Saudi Arabia in 2012. Dromedary camels are the main "
             "animal reservoir of MERS-CoV.", title="MERS coronavirus origins", pmid="222"),
    Document("flu:3", "Oseltamivir is a neuraminidase inhibitor. Influenza vaccines are updated every year because the "
             "virus drifts antigenically.", title="Influenza prevention", pmid="333"),
]


MERS = passage("MERS coronavirus was first isolated in Saudi Arabia in 2012. Dromedary camels are the main animal "
               "reservoir of MERS-CoV. Bats carry many related coronaviruses.", doc="m")


def test_selection_ranks_the_answering_sentence_above_the_rest():
    ranked = rank_sentences("What is the main animal reservoir of MERS-CoV?", [OTHER, MERS])
    assert ranked[0].text.startswith("Dromedary camels are the main animal reservoir") and ranked[0].passage == 2
    ranked = rank_sentences("What was the median incubation period of COVID-19?", [OTHER, INCUBATION])
    # the sentence that merely restates the question may rank first; the answer is never below it by much
    assert any(c.text.startswith("The median incubation period was 5.2 days") for c in ranked[:2])
    assert all(c.passage == 2 for c in ranked[:2]) and ranked[0].score > 10 * ranked[-1].score


def test_extractive_answer_opens_with_a_quoted_sentence_and_cites_it():
    prompt = build_prompt({}, [], "What is the main animal reservoir of MERS-CoV?", [OTHER, MERS])
    body = ExtractiveTier(word_delay=0).compose(prompt)
    # the answering sentence first, read on into the sentence after it in its passage, cited once
    assert body.startswith("Dromedary camels are the main animal reservoir of MERS-CoV. Bats carry many related "
                           "coronaviruses [2].")
    assert "retrieved evidence" not in body and "Influenza" not in body
    assert ExtractiveTier(word_delay=0, following=False).compose(prompt).startswith(
        "Dromedary camels are the main animal reservoir of MERS-CoV [2].")
    assert absent_share(body, [OTHER.text, MERS.text]) == 0.0
    prompt = build_prompt({}, [], "What was the median incubation period of COVID-19?", [OTHER, INCUBATION])
    body = ExtractiveTier(word_delay=0).compose(prompt)
    assert "The median incubation period was 5.2 days, with 95% of cases within 12.5 days" in body
    # no sentence is shown twice, even when a chosen sentence is the one that follows another
    sentences = [s.strip() for s in body.replace(" [2]", "").split(". ") if s.strip()]
    assert len(sentences) == len(set(sentences))


def test_an_answer_that_runs_over_two_sentences_is_shown_whole():
    text = ("Vertical transmission of HIV-1 has several causes. Genetic variants in CCR5 have been shown to influence "
            "vertical transmission of HIV-1. CCR5 promoter variants resulting in higher expression of the receptor "
            "were associated with increased risk of transmission. Breastfeeding is another route.")
    gold = ("Genetic variants in CCR5 have been shown to influence vertical transmission of HIV-1. CCR5 promoter "
            "variants resulting in higher expression of the receptor were associated with increased risk")
    prompt = build_prompt({}, [], "Which genetic variants influence vertical transmission of HIV-1?",
                          [OTHER, passage(text, doc="h")])
    assert gold_contained(shown_answer(ExtractiveTier(word_delay=0).compose(prompt)), gold)
    assert not gold_contained(shown_answer(ExtractiveTier(word_delay=0, following=False, max_sentences=1)
                                           .compose(prompt)), gold)


def test_support_rejects_invented_words_and_numbers():
    passages = [INCUBATION]
    assert support("The median incubation period was 5.2 days [1].", passages)[0]
    assert not support("The median incubation period was 7.4 days [1].", passages)[0]  # a number no passage holds
    ok, absent = support("SARS-H1N1 spread through bone-marrow biopsy clinics in 2009 [1].", passages)
    assert not ok and absent > 0.5
    # a citation points at the passage the sentence must be supported by
    assert not support("The median incubation period was 5.2 days [2].", [INCUBATION, OTHER])[0]


def test_grounding_gate_drops_unsupported_sentences_and_hands_over_when_nothing_answers():
    raw = iter(["The median incubation period was 5.2 days [1]. ", "A SARS-H1N1 virus appeared in ",
                "hypotrichia clinics in 2009. ", "Masks reduce the spread of respiratory droplets [1]."])
    out = "".join(grounded_sentences(raw, [INCUBATION], "What was the median incubation period?"))
    assert "5.2 days" in out and "Masks" in out and "H1N1" not in out
    # supported but off the question: nothing is shown, the next tier answers
    with pytest.raises(TierUnavailable):
        list(grounded_sentences(iter(["Masks reduce the spread of respiratory droplets [1]."]), [INCUBATION],
                                "What was the median incubation period?"))


def test_qa_scoring_functions():
    text = "Mother-to-child transmission is the main cause [1].\n\nSources:\n[1] A, PMID 1\n\n_x_"
    assert shown_answer(text) == "Mother-to-child transmission is the main cause."
    assert gold_contained(shown_answer(text), "mother to child transmission")
    assert not gold_contained("something else", "mother to child transmission")
    assert 0 < token_f1("main cause is transmission", "transmission is the main cause of it") < 1


@pytest.fixture()
def high_case():
    return {"vision": {"anomaly_score": 2.41, "risk": "HIGH", "threshold": 2.03, "normal_percentile": 98.6,
                       "components": {"knn_global_z": 1.8, "lung_patch_z": 2.9}, "detector": "fused_lungs"},
            "note": {"entities": [{"text": "cough"}, {"text": "effusion", "assertion": "absent"}]}}


def test_case_question_is_answered_from_the_case_and_medsight_docs(shipped_kb, high_case):
    answer = chat(high_case, [], "What does a HIGH anomaly score mean for this radiograph?", knowledge_base=shipped_kb,
                  tiers=[ExtractiveTier(word_delay=0)])
    body = answer.body
    assert body.startswith("This image's anomaly score is 2.410 (detector fused_lungs)")
    assert "HIGH risk band" in body and "2.030" in body and "98.6%" in body
    assert "diagnos" in body and "[1]" in body
    # only MedSight's own explanatory texts, never literature about some other disease
    assert answer.sources and all(s["doc_id"].startswith("medsight:reading_") for s in answer.sources)
    assert "sickle" not in body.lower()


def test_case_questions_about_components_note_and_an_empty_case(shipped_kb, high_case):
    body = chat(high_case, [], "What are the components of my score?", knowledge_base=shipped_kb,
                tiers=[ExtractiveTier(word_delay=0)]).body
    assert "lung_patch_z 2.900" in body
    body = chat(high_case, [], "What did the note find?", knowledge_base=shipped_kb, tiers=[ExtractiveTier(word_delay=0)]).body
    assert "cough" in body and "no effusion" in body
    body = chat({}, [], "What does the heatmap show?", knowledge_base=shipped_kb, tiers=[ExtractiveTier(word_delay=0)]).body
    assert body.startswith("No radiograph or note has been analysed yet") and "heatmap" in body.lower()


def test_chat_eval_qa_writes_answers_with_exactly_the_agreed_keys(tmp_path, capsys):
    from medsight.kb.store import build_knowledge_base

    store = tmp_path / "store"
    build_knowledge_base(documents=DOCS, path=store, include_shipped=False)
    qa = tmp_path / "qa.jsonl"
    rows = [{"query": "What was the median incubation period of COVID-19 in Wuhan?", "answer": "5.2 days"},
            {"query": "What is the main animal reservoir of MERS-CoV?", "answer": "Dromedary camels"},
            {"query": "What dose of oseltamivir should I take?"},
            {"query": "Why are influenza vaccines updated every year?", "answer": "the virus drifts antigenically"}]
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["chat-eval", "--qa", str(qa), "--store", str(store), "--out", str(out), "--tiers", "extractive"]) == 0
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4 and all(list(a) == list(ANSWER_KEYS) for a in answers)
    assert answers[2]["refused"] and answers[2]["tier"] == "safety" and answers[2]["passages"] == []
    assert answers[0]["tier"] == "extractive" and answers[0]["passages"] and answers[0]["seconds"] > 0
    metrics = json.loads((out / "qa_metrics.json").read_text())
    assert metrics["questions"] == 4 and metrics["refused"] == 1 and metrics["with_gold_answer"] == 3
    assert metrics["gold_contained"] == 1.0 and metrics["unsupported_answer_share"] == 0.0
    assert {"token_f1", "seconds_median", "first_text_seconds_median", "per_tier"} <= set(metrics)
    assert set(metrics["per_tier"]) == {"extractive", "safety"}
    assert main(["chat-eval", "--qa", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    assert "no question file" in capsys.readouterr().err


def test_the_articles_own_reference_markers_are_not_shown_as_citations():
    text = ("Aerosol delivery of siRNA to the lung has been studied. A particle size between 1-5 um is the most appropriate "
            "for deposition at the lower respiratory tract [23] . Mucus and surfactant proteins are barriers [24, 25] .")
    prompt = build_prompt({}, [], "What particle size is most appropriate for deposition at the lower respiratory tract?",
                          [OTHER, passage(text, doc="s")])
    body = ExtractiveTier(word_delay=0).compose(prompt)
    assert body.startswith("A particle size between 1-5 um is the most appropriate for deposition at the lower "
                           "respiratory tract. Mucus and surfactant proteins are barriers [2].")
    assert "[23]" not in body and "[24" not in body


def test_a_sentence_that_points_back_is_shown_after_the_sentence_naming_its_subject():
    text = ("Bovine coronavirus causes enteric and respiratory disease in cattle. Its genome is a single-stranded RNA of "
            "around 31 kb. The virus was first described in 1973.")
    prompt = build_prompt({}, [], "How large is the single-stranded RNA genome?", [OTHER, passage(text, doc="b")])
    body = ExtractiveTier(word_delay=0).compose(prompt)
    assert body.startswith("Bovine coronavirus causes enteric and respiratory disease in cattle. Its genome is a "
                           "single-stranded RNA of around 31 kb.")
    assert ExtractiveTier(word_delay=0, preceding=False).compose(prompt).startswith("Its genome")


@pytest.mark.parametrize("question", ["🫁🫁 ?", "[1] [2] [3]", "??? 42"])
def test_a_message_without_words_gets_asked_for_a_question_not_a_random_quote(question):
    from medsight.chat.grounding import ASK_IN_WORDS

    prompt = build_prompt({}, [], question, [OTHER, MERS])
    assert ExtractiveTier(word_delay=0).compose(prompt) == ASK_IN_WORDS


def test_answer_type_features_mark_the_sentence_that_holds_what_the_question_asks_for():
    from medsight.chat.selection import FEATURES, Candidate, answer_type_columns, features

    two = Candidate("The two surface proteins, haemagglutinin and neuraminidase, are vaccine targets.", 1, 0)
    none = Candidate("Surface proteins of the virus are well characterised in the literature.", 1, 1)
    when = Candidate("The survey was conducted from March to June 2010 by survey teams.", 1, 2)
    cols = answer_type_columns("How many surface proteins does H1N1 have?", [two, none, when])
    assert cols[0] == [1.0, 0.0, 1.0]  # a count asked: "two" and "2010" hold a number, the other sentence none
    assert answer_type_columns("When was the study conducted?", [two, none, when])[1] == [0.0, 0.0, 1.0]
    assert all(v == 0.0 for col in answer_type_columns("What is a coronavirus?", [two, none, when]) for v in col)
    X = features("How many surface proteins does H1N1 have?", [two, none, when], 1)
    assert X.shape == (3, len(FEATURES)) and X[0, FEATURES.index("type_count")] == 1.0


def test_a_summary_whose_text_opens_with_its_title_keeps_the_subject_of_its_first_sentence():
    """The chunker prefixes "Title. " only when the text does not open with the title; the selector must not cut
    "Pulmonary embolism" off "Pulmonary embolism (PE) is obstruction of pulmonary arteries"."""
    from medsight.chat.selection import candidate_sentences

    chunk = Chunk("pe#0", "pe", "Pulmonary embolism (PE) is obstruction of pulmonary arteries, usually by thrombus. "
                  "CT pulmonary angiography confirms it.", {"doc_id": "pe", "title": "Pulmonary embolism"})
    prefixed = Chunk("m#0", "m", "MERS coronavirus origins. Dromedary camels are the main animal reservoir of MERS-CoV.",
                     {"doc_id": "m", "title": "MERS coronavirus origins"})
    texts = [c.text for c in candidate_sentences([Passage(chunk, 1.0), Passage(prefixed, 0.5)])]
    assert texts[0].startswith("Pulmonary embolism (PE) is obstruction")
    assert texts[-1].startswith("Dromedary camels") and not any(t.startswith("MERS coronavirus origins") for t in texts)


def test_topic_questions_over_the_shipped_summaries_are_answered_from_the_right_summary(shipped_kb):
    """The offline default on a fresh machine (the public Space): 24 questions a student asks about the shipped
    summaries' conditions. Measured: the first citation is the on-topic summary for 19 of 24 (17 before the
    title features and the title fix), and the on-topic summary is cited somewhere in 23 of 24."""
    import re
    from pathlib import Path

    rows = [json.loads(line) for line in (Path(__file__).parent / "topic_questions.jsonl").read_text().splitlines()]
    first = anywhere = 0
    for row in rows:
        answer = chat({}, [], row["query"], knowledge_base=shipped_kb, tiers=[ExtractiveTier(word_delay=0)])
        cited = [answer.sources[int(n) - 1]["doc_id"] for n in re.findall(r"\[(\d+)\]", answer.body)]
        assert cited, row["query"]
        first += cited[0] == row["doc_id"]
        anywhere += row["doc_id"] in cited
    assert first >= 18 and anywhere >= 23, (first, anywhere)


def test_a_selector_fitted_elsewhere_is_read_from_the_environment(tmp_path, monkeypatch):
    from medsight.chat import selection

    shipped = json.loads(selection.WEIGHTS_PATH.read_text())
    flipped = dict(shipped, coef=[-c for c in shipped["coef"]], intercept=-shipped["intercept"])
    (tmp_path / "flipped.json").write_text(json.dumps(flipped))
    question = "What is the main animal reservoir of MERS-CoV?"
    assert rank_sentences(question, [OTHER, MERS])[0].text.startswith("Dromedary camels")
    monkeypatch.setenv("MEDSIGHT_ANSWER_SELECTOR", str(tmp_path / "flipped.json"))
    assert not rank_sentences(question, [OTHER, MERS])[0].text.startswith("Dromedary camels")
    (tmp_path / "stale.json").write_text(json.dumps(dict(shipped, features=shipped["features"][:-1])))
    monkeypatch.setenv("MEDSIGHT_ANSWER_SELECTOR", str(tmp_path / "stale.json"))
    with pytest.raises(RuntimeError, match="refit"):
        rank_sentences(question, [OTHER, MERS])


def test_sentence_vectors_are_cached_across_questions_and_threads(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from medsight.chat import selection
    from medsight.kb import store

    texts = ["Dromedary camels are the main animal reservoir of MERS-CoV.", "Bats carry many related coronaviruses.",
             "Influenza causes seasonal epidemics every winter."]
    reference = store.embed(texts)
    monkeypatch.setattr(selection, "_VECTORS", selection.OrderedDict())
    calls = []
    real = store.embed
    monkeypatch.setattr(store, "embed", lambda batch: calls.append(list(batch)) or real(batch))
    with ThreadPoolExecutor(8) as pool:  # sessions asking at once: every result is the plain embedding
        results = list(pool.map(lambda i: selection.cached_embed(texts[i % 3:] + texts[:i % 3]), range(16)))
    for i, got in enumerate(results):
        assert np.allclose(got, np.roll(reference, -(i % 3), axis=0), atol=1e-5)
    calls.clear()
    assert np.allclose(selection.cached_embed(texts[::-1]), reference[::-1], atol=1e-5) and calls == []
    monkeypatch.setattr(selection, "VECTOR_CACHE_SIZE", 2)
    selection.cached_embed(["A new sentence about pleural effusion."])
    assert len(selection._VECTORS) == 2 and "A new sentence about pleural effusion." in selection._VECTORS
