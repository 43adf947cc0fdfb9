import json

import pytest

from medsight.nlp.lexicon import SYMPTOM_LEXICON_PATH, medication_class


@pytest.mark.parametrize(
    "drug, cls",
    [
        ("metoprolol", "beta blocker"), ("Lisinopril", "ACE inhibitor"), ("losartan", "angiotensin II receptor blocker"),
        ("levofloxacin", "fluoroquinolone antibiotic"), ("prednisolone", "corticosteroid"), ("tiotropium", "antimuscarinic bronchodilator"),
        ("salmeterol", "beta-2 agonist bronchodilator"), ("apixaban", "factor Xa inhibitor"), ("montelukast", "leukotriene receptor antagonist"),
    ],
)
def test_inn_stems_give_the_drug_class(drug, cls):
    assert medication_class(drug) == cls


@pytest.mark.parametrize("word", ["water", "oxygen", "morphine", "sol", "", "12-olol"])
def test_words_without_a_stem_have_no_class(word):
    assert medication_class(word) is None


def test_shipped_symptom_lexicon_comes_from_hpo():
    lexicon = json.loads(SYMPTOM_LEXICON_PATH.read_text())
    assert lexicon["hpo_version"].startswith("hp/releases/")
    terms = {t["term"]: t["hpo_id"] for t in lexicon["terms"]}
    assert terms["dyspnea"] == "HP:0002094"
    assert terms["hemoptysis"] == "HP:0002105"
    assert "cough" in terms and "chest pain" in terms
    assert "pneumonia" not in terms  # diagnoses are not symptoms
