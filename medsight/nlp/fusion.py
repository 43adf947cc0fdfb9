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
    image_anomaly_score: float | None
    agreement_score: float  # 1 - |note_abnormality - image anomaly|, in [0, 1]; 1 = both signals equal
    findings: list[str] = field(default_factory=list)
    method: str = "rule"  # rule | biomedclip
    image_text_similarity: float | None = None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _band_from_score(score: float) -> str:
    # Used only when the caller passes a score without a band; the vision package owns the real thresholds.
    return "HIGH" if score >= 0.66 else "MEDIUM" if score >= 0.33 else "LOW"


def fuse(analysis, anomaly_score: float | None = None, risk_band: str | None = None,
         image_text_similarity: float | None = None, threshold: float = 0.5) -> Fusion:
    """Combine a NoteAnalysis with the image detector's `anomaly_score` in [0, 1] and/or `risk_band`."""
    if anomaly_score is not None:
        anomaly_score = float(anomaly_score)
        if not 0.0 <= anomaly_score <= 1.0:
            raise ValueError(f"anomaly_score must lie in [0, 1], got {anomaly_score}")
    if risk_band is None:
        if anomaly_score is None:
            raise ValueError("fuse needs the image's anomaly_score or risk_band")
        risk_band = _band_from_score(anomaly_score)
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
    image_value = anomaly_score if anomaly_score is not None else image_level
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
