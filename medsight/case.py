"""One case from upload to notes, chat and report: the radiograph, its scores (one per detector tried), the detector
the user chose, the heatmaps computed for it and the analysed note. The app keeps one per browser session, the
CLI builds one per command; `to_chat()` is the plain data the chat reads and `note_image_args()` what the note
analysis compares against (the calibrated scale, never the raw score: each detector's raw score has its own units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsight.imaging.load import LoadedImage, load_image
from medsight.vision.pipeline import DEFAULT_DETECTOR, AnomalyPipeline, ScoreResult


@dataclass
class Case:
    name: str
    image: LoadedImage | None = None
    origin: str = "upload"  # "upload" | "sample" | "file"
    sample: dict = field(default_factory=dict)  # label, source, licence of a sample image
    digest: str = ""
    detector: str = DEFAULT_DETECTOR  # the detector the user chose; every page uses it
    results: dict[str, ScoreResult] = field(default_factory=dict)  # detector -> result
    heatmaps: dict = field(default_factory=dict)  # (detector, method) -> 224x224 map
    note: Any = None  # medsight.nlp.NoteAnalysis of the note analysed with this case

    @classmethod
    def from_file(cls, path: str | Path, detector: str = DEFAULT_DETECTOR) -> "Case":
        path = Path(path)
        return cls(name=path.name, image=load_image(path), origin="file", detector=detector)

    def result(self, detector: str | None = None) -> ScoreResult | None:
        return self.results.get(detector or self.detector)

    def score(self, pipeline: AnomalyPipeline) -> ScoreResult:
        """Score once per detector (the pipeline's) and keep the result."""
        name = pipeline.detector.name
        if name not in self.results:
            self.results[name] = pipeline.score(self.image, self.name)
        return self.results[name]

    @property
    def vision(self) -> ScoreResult | None:
        """The chosen detector's result (None before it is scored)."""
        return self.result()

    def note_image_args(self) -> dict:
        """Keyword arguments for `medsight.nlp.analyze_note`: the chosen detector's risk band and normal percentile
        (the calibrated scale every detector has) and its raw score for display. Empty when there is no usable
        score (not scored yet, or the gate rejected the image: a meaningless score is never compared with a note)."""
        res = self.vision
        if res is None or not res.scored:
            return {}
        return {"risk_band": res.risk, "normal_percentile": res.normal_percentile, "anomaly_score": res.anomaly_score}

    def to_chat(self) -> dict:
        """Plain data for `medsight.chat.chat`: {"vision": {...}, "note": {...}, "fusion": {...}} (keys only when known)."""
        out: dict = {}
        res = self.vision
        if res is not None:
            out["vision"] = {"file": res.file, "detector": res.detector, "anomaly_score": res.anomaly_score,
                             "risk_band": res.risk, "threshold": res.threshold,
                             "normal_percentile": res.normal_percentile, "components": dict(res.components),
                             "scored": res.scored, "reasons": list(res.reasons)}
            if not res.scored:  # the chat must not discuss a meaningless number as a result
                out["vision"].update(anomaly_score=None, risk_band=None)
        if self.note is not None:
            out["note"] = self.note.to_dict() | {"text": self.note.text}
            if self.note.fusion is not None:
                out["fusion"] = self.note.fusion.to_dict()
        return out
