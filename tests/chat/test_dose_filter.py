"""The output filter: sentences that state an amount (in digits or words), a per-weight amount or an intake
frequency are cut from every answer; sentences that only name a medicine or give a radiation dose stay."""

import pytest

from medsight.chat.safety import contains_dose_instruction, filter_dose_instructions

INSTRUCTIONS = [
    "Give one gram every eight hours.",
    "Two puffs twice daily.",
    "take half a tablet each morning",
    "500 milligrams",
    "Use it q8h.",
    "Amoxicillin BID.",
    "ibuprofen 400mg tds",
    "Give it every other day.",
    "15 mg/kg per dose.",
    "Give 10 mg per kilo.",
    "Children receive fifteen milligrams per kilogram.",
    "Take one tablet at bedtime.",
    "Inhale two puffs when needed.",
    "Take it for five days.",
    "It should be taken three times a day.",
    "The dose is five hundred.",
    "Give a loading dose of 25 mg.",
    "Patients were given 40 IU of insulin.",
    "Give 10 ml of the syrup.",
    "Tome 500 mg cada 8 horas.",
    "Prenez un comprimé trois fois par jour.",
    "Zweimal täglich eine Tablette einnehmen.",
    "Tomar dois comprimidos ao dia.",
    "Prendere una compressa ogni 8 ore.",
    "Neem twee keer per dag een tablet.",
    "t\u200bwice daily",
    "G\u0456ve \u043ene gram every eight hours.",  # Cyrillic look-alikes
]

KEPT = [
    "Amoxicillin is a common antibiotic for pneumonia [1].",
    "A chest X-ray gives about 0.02 mSv.",
    "The effective dose of a chest CT is about 7 mSv.",
    "Low-dose CT is used for screening.",
    "Pneumonia is treated with antibiotics chosen by severity.",
    "Dosing depends on weight and kidney function, so ask the treating clinician.",
    "Patients with COPD often have daily symptoms.",
    "The nodule measured 8 mm.",
    "About 1,500 ml of fluid can be drained at once.",
    "Haemoglobin was 12 g/dL and CRP 50 mg/L.",
    "Steroids reduced mortality in the RECOVERY trial [2].",
    "In 2019, 50 patients received high-dose steroids [3].",
    "Follow-up CT is done every 6 months.",
    "Amiodarone can cause lung toxicity.",
    "A tablet may be visible on a radiograph.",
]


@pytest.mark.parametrize("sentence", INSTRUCTIONS, ids=ascii)
def test_amounts_and_frequencies_are_instructions(sentence):
    assert contains_dose_instruction(sentence)


@pytest.mark.parametrize("sentence", KEPT, ids=ascii)
def test_mentions_of_drugs_and_radiation_are_kept(sentence):
    assert not contains_dose_instruction(sentence)


def test_stream_is_cut_by_sentence_across_chunk_boundaries():
    chunks = ["Pneumonia is treated with antibiotics [1]. Give one", " gram every eight", " hours. Two puffs",
              " twice daily.\nReassess with a new film [2]."]
    out = "".join(filter_dose_instructions(chunks))
    assert out.startswith("Pneumonia is treated with antibiotics [1]. Reassess with a new film [2].")
    assert "gram" not in out and "puffs" not in out
    assert out.rstrip().endswith("(Dose details were removed: MedSight does not give dosage advice.)")


def test_stream_without_doses_is_unchanged():
    chunks = ["A pneumothorax shows a visceral pleural line [1].", " No lung markings lie beyond it."]
    assert "".join(filter_dose_instructions(chunks)) == "".join(chunks)
