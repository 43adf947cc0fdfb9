"""Zero-shot condition scores and note-image fusion on real report sentences."""

import pytest

from medsight.nlp import CONDITION_NAMES
from medsight.nlp.fusion import fuse


def _prob(analysis, name):
    return next(c for c in analysis.conditions if c.name == name).probability


def test_twenty_pulmonary_conditions_are_scored(analyze):
    a = analyze("Mild cardiomegaly. Lungs are clear.")
    assert len(CONDITION_NAMES) == 20
    assert {c.name for c in a.conditions} == set(CONDITION_NAMES)
    assert all(0.0 <= c.probability <= 1.0 for c in a.conditions)


def test_reported_condition_scores_high_and_is_first(analyze):
    a = analyze("Findings: Moderate cardiomegaly. Impression: Enlarged heart.")
    assert a.conditions[0].name == "cardiomegaly"
    assert a.conditions[0].probability > 0.7
    assert "cardiomegaly" in a.conditions[0].evidence.lower() or "heart" in a.conditions[0].evidence.lower()


def test_negated_condition_scores_low(analyze):
    affirmed = analyze("There is a large right pneumothorax.")
    negated = analyze("There is no pneumothorax.")
    assert _prob(affirmed, "pneumothorax") > 0.7
    assert _prob(negated, "pneumothorax") < 0.3
    assert "pneumothorax" in negated.negated_conditions
    assert "pneumothorax" not in [c.name for c in negated.reported_conditions]


def test_normal_report_reports_nothing(analyze):
    a = analyze("The heart is normal in size. The mediastinum is unremarkable. The lungs are clear. No pleural effusion or pneumothorax.")
    assert a.reported_conditions == []
    assert {"pleural effusion", "pneumothorax"} <= set(a.negated_conditions)


@pytest.mark.parametrize(
    "note, band, agreement",
    [
        ("Dense right lower lobe consolidation.", "HIGH", "consistent"),
        ("Dense right lower lobe consolidation.", "LOW", "discordant"),
        ("Lungs are clear. No pleural effusion or pneumothorax.", "LOW", "consistent"),
        ("Lungs are clear. No pleural effusion or pneumothorax.", "HIGH", "discordant"),
        ("Lungs are clear. No pleural effusion or pneumothorax.", "MEDIUM", "indeterminate"),
    ],
)
def test_fusion_agreement(analyze, note, band, agreement):
    score = {"LOW": 0.1, "MEDIUM": 0.5, "HIGH": 0.9}[band]
    fusion = analyze(note, anomaly_score=score, risk_band=band).fusion
    assert fusion.agreement == agreement
    assert fusion.reason.endswith(agreement) or f": {agreement} (" in fusion.reason
    assert f"image anomaly {band}" in fusion.reason
    assert 0.0 <= fusion.agreement_score <= 1.0


def test_fusion_reason_names_the_finding(analyze):
    fusion = analyze("Right lower lobe consolidation.", anomaly_score=0.9, risk_band="HIGH").fusion
    assert fusion.reason.startswith("note reports consolidation")
    assert fusion.reason.endswith("image anomaly HIGH: consistent")


def test_fusion_rejects_bad_image_values(analyze):
    a = analyze("Mild cardiomegaly.")
    with pytest.raises(ValueError):
        fuse(a, anomaly_score=0.9)  # a raw score alone has no common scale: band or percentile needed
    with pytest.raises(ValueError):
        fuse(a, risk_band="SEVERE")
    with pytest.raises(ValueError):
        fuse(a, normal_percentile=140.0)
    with pytest.raises(ValueError):
        fuse(a, anomaly_score=float("nan"), risk_band="LOW")
    with pytest.raises(ValueError):
        fuse(a)
    assert fuse(a, normal_percentile=97.5).image_risk_band == "HIGH"
    assert fuse(a, normal_percentile=85.0).image_risk_band == "MEDIUM"
    assert fuse(a, normal_percentile=10.0).image_risk_band == "LOW"


@pytest.mark.parametrize("raw_score, band, percentile", [(13.3, "HIGH", 99.9), (-2.4, "LOW", 0.0), (0.991, "LOW", 41.0),
                                                        (4.1, "MEDIUM", 90.0)])
def test_fusion_reads_the_calibrated_scale_for_any_raw_score(analyze, raw_score, band, percentile):
    """Raw scores of the default detector are z-sums (HIGH films score far above 1, typical normals below 0): the
    note comparison must work for all of them and read the band and percentile, never the raw number."""
    a = analyze("Dense right lower lobe consolidation.", anomaly_score=raw_score, risk_band=band,
                normal_percentile=percentile)
    f = a.fusion
    assert f.image_risk_band == band and f.image_anomaly_score == pytest.approx(raw_score)
    assert f.image_normal_percentile == pytest.approx(percentile)
    assert f.agreement == {"HIGH": "consistent", "LOW": "discordant", "MEDIUM": "indeterminate"}[band]
    assert 0.0 <= f.agreement_score <= 1.0
