"""Agreement between what a clinical note says and what the image anomaly detector found.

The offline default is a rule over plain values: the note side is "abnormal" when it reports (affirms) a pulmonary
condition or disease, "normal" when it only rules findings out, "uncertain" when it only hedges; the image side is
the detector's risk band. The result is 'consistent', 'discordant' or 'indeterminate' with a one-line reason.

What it can mean: two independent signals (the text and an unsupervised image anomaly score) point the same way or
not; a discordance is a prompt to look again at both. What it cannot mean: the image detector is trained on normal
radiographs only and knows no conditions, so 'consistent' never confirms the condition the note names, nor its side
or location; and a 'consistent' normal/LOW pair does not rule disease out. With BiomedCLIP installed locally
(`open_clip` + the model in the Hugging Face cache), `image_text_alignment` adds a true image-text similarity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RISK_BANDS = ("LOW", "MEDIUM", "HIGH")
BIOMEDCLIP_MODEL = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"


@dataclass
class Fusion:
    agreement: str  # consistent | discordant | indeterminate
    reason: str  # plain language, e.g. "note reports consolidation; image anomaly HIGH: consistent"
    note_state: str  # abnormal | normal | uncertain
    note_abnormality: float  # in [0, 1]: highest probability among conditions the note reports
    image_risk_band: str
    image_anomaly_score: float | None  # the detector's raw score, for display only (each detector has its own scale)
    agreement_score: float  # 1 - |note_abnormality - image level|, in [0, 1]; image level = normal percentile / 100
    findings: list[str] = field(default_factory=list)
    method: str = "rule"  # rule | biomedclip
    image_text_similarity: float | None = None
    image_normal_percentile: float | None = None  # share (%) of held-out normal films scoring lower

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


#: the calibration's bands on the normal-percentile scale (medsight.vision.scoring): LOW below the 80th percentile of
#: held-out normals, HIGH from the threshold at the 95th
_MEDIUM_PERCENTILE, _HIGH_PERCENTILE = 80.0, 95.0


def _band_from_percentile(percentile: float) -> str:
    return "HIGH" if percentile >= _HIGH_PERCENTILE else "MEDIUM" if percentile >= _MEDIUM_PERCENTILE else "LOW"


def fuse(analysis, anomaly_score: float | None = None, risk_band: str | None = None,
         image_text_similarity: float | None = None, threshold: float = 0.5,
         normal_percentile: float | None = None) -> Fusion:
    """Combine a NoteAnalysis with the image result on its calibrated scale: the `risk_band` and/or the
    `normal_percentile` (0-100, the share of held-out normal films that score lower), which every detector has.
    The raw `anomaly_score` is on the detector's own scale (any real number); it is carried for display only."""
    if anomaly_score is not None:
        anomaly_score = float(anomaly_score)
        if anomaly_score != anomaly_score or anomaly_score in (float("inf"), float("-inf")):
            raise ValueError(f"anomaly_score must be a finite number, got {anomaly_score}")
    if normal_percentile is not None:
        normal_percentile = float(normal_percentile)
        if not 0.0 <= normal_percentile <= 100.0:
            raise ValueError(f"normal_percentile must lie in [0, 100], got {normal_percentile}")
    if risk_band is None:
        if normal_percentile is None:
            raise ValueError("comparing a note with the image needs the image's risk band or normal percentile "
                             "(a raw anomaly score has no common scale across detectors)")
        risk_band = _band_from_percentile(normal_percentile)
    risk_band = str(risk_band).upper()
    if risk_band not in RISK_BANDS:
        raise ValueError(f"risk_band must be one of {', '.join(RISK_BANDS)}, got {risk_band!r}")

    reported = [c for c in analysis.conditions if c.probability >= threshold and not c.negated]
    affirmed_diseases = sorted({e.text.lower() for e in analysis.entities if e.label == "Disease" and e.assertion == "present"})
    hedged = sorted({e.text.lower() for e in analysis.entities if e.label == "Disease" and e.assertion == "possible"})
    ruled_out = sorted({e.text.lower() for e in analysis.entities if e.label == "Disease" and e.assertion == "absent"})
    findings = [c.name for c in reported] or affirmed_diseases
    if findings:
        note_state = "abnormal"
        note_phrase = f"note reports {', '.join(findings[:3])}"
    elif hedged:
        note_state, findings = "uncertain", hedged
        note_phrase = f"note raises possible {', '.join(hedged[:3])}"
    else:
        note_state = "normal"
        note_phrase = f"note rules out {', '.join(ruled_out[:3])}" if ruled_out else "note reports no finding"
    note_abnormality = max([c.probability for c in reported], default=0.0)
    if note_state == "abnormal" and not reported:
        note_abnormality = 1.0  # an affirmed disease mention without a matching pulmonary condition
    elif note_state == "uncertain":
        note_abnormality = 0.5

    image_level = {"LOW": 0.0, "MEDIUM": 0.5, "HIGH": 1.0}[risk_band]
    image_value = normal_percentile / 100.0 if normal_percentile is not None else image_level
    if note_state == "uncertain" or risk_band == "MEDIUM":
        agreement = "indeterminate"
    elif (note_state == "abnormal") == (risk_band == "HIGH"):
        agreement = "consistent"
    else:
        agreement = "discordant"
    reason = f"{note_phrase}; image anomaly {risk_band}: {agreement}"
    if agreement == "discordant" and note_state == "abnormal":
        reason += " (the finding may be subtle, outside the lungs, or missed by the image detector)"
    elif agreement == "discordant":
        reason += " (the image shows something the note does not describe, or an artefact)"
    return Fusion(
        agreement=agreement,
        reason=reason,
        note_state=note_state,
        note_abnormality=float(note_abnormality),
        image_risk_band=risk_band,
        image_anomaly_score=anomaly_score,
        agreement_score=float(1.0 - abs(note_abnormality - image_value)),
        findings=findings,
        method="biomedclip" if image_text_similarity is not None else "rule",
        image_text_similarity=image_text_similarity,
        image_normal_percentile=normal_percentile,
    )


def image_text_alignment(image, text: str) -> float | None:
    """BiomedCLIP cosine similarity between a PIL image and text, or None when open_clip / the model is not local."""
    try:
        import open_clip  # optional: not in requirements.txt
        import torch
    except ImportError:
        return None
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(BIOMEDCLIP_MODEL)
        tokenizer = open_clip.get_tokenizer(BIOMEDCLIP_MODEL)
    except Exception:  # model not in the local cache (offline): the rule-based fusion stands alone
        return None
    with torch.no_grad():
        img = model.encode_image(preprocess(image).unsqueeze(0))
        txt = model.encode_text(tokenizer([text], context_length=256))
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
    return float((img @ txt.T).item())
