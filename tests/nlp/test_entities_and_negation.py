"""Entities, assertion status and abbreviations on real clinical sentences (shipped NER model + lexicon + NegEx)."""

import pytest


def _ents(analyze, text):
    return {(e.text.lower(), e.label): e for e in analyze(text).entities}


def test_bc5cdr_style_chemical_and_disease(analyze):
    ents = _ents(analyze, "Lidocaine-induced cardiac asystole was observed after intravenous administration.")
    assert ("lidocaine", "Chemical") in ents
    assert ("cardiac asystole", "Disease") in ents


def test_negated_findings_are_absent_and_hedged_ones_possible(analyze):
    text = "No pleural effusion or pneumothorax. Right lower lobe consolidation, cannot exclude pneumonia."
    ents = _ents(analyze, text)
    assert ents[("pleural effusion", "Disease")].assertion == "absent"
    assert ents[("pneumothorax", "Disease")].assertion == "absent"
    assert ents[("consolidation", "Disease")].assertion == "present"
    assert ents[("pneumonia", "Disease")].assertion == "possible"


@pytest.mark.parametrize(
    "text, mention, expected",
    [
        ("There is no evidence of pneumothorax.", "pneumothorax", "absent"),
        ("The patient denies chest pain.", "chest pain", "absent"),
        ("Findings suspicious for pneumonia in the left base.", "pneumonia", "possible"),
        ("Small left pleural effusion.", "pleural effusion", "present"),
        ("The previously seen pleural effusion has resolved.", "pleural effusion", "absent"),
        ("Pneumothorax is not excluded.", "pneumothorax", "possible"),
    ],
)
def test_assertion_status(analyze, text, mention, expected):
    found = [e for e in analyze(text).entities if e.text.lower() == mention]
    assert found, f"{mention!r} not found in {text!r}"
    assert found[0].assertion == expected


def test_symptoms_anatomy_and_medication_classes(analyze):
    a = analyze("Presents with shortness of breath and productive cough for three days. Started on metoprolol and azithromycin. Opacity in the left lower lobe.")
    by_text = {e.text.lower(): e for e in a.entities}
    assert by_text["shortness of breath"].label == "SYMPTOM"
    assert by_text["shortness of breath"].concept_id == "HP:0002094"  # HPO Dyspnea
    assert by_text["productive cough"].label == "SYMPTOM"
    assert by_text["lower lobe"].label == "ANATOMY"
    assert by_text["metoprolol"].label == "Chemical" and by_text["metoprolol"].medication_class == "beta blocker"
    assert by_text["azithromycin"].medication_class == "macrolide antibiotic"


def test_abbreviation_defined_in_the_note_is_expanded(analyze):
    a = analyze("History of chronic obstructive pulmonary disease (COPD). COPD exacerbation with wheezing.")
    expanded = {e.text: e.expansion for e in a.entities if e.expansion}
    assert expanded.get("COPD") == "chronic obstructive pulmonary disease"
