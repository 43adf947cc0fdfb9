"""The PDF report, the sample picker's manifest reader and the app boundary (the library never imports Streamlit)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from medsight.report import build_report
from medsight.vision.pipeline import ScoreResult


def _result(**kw) -> ScoreResult:
    base = dict(file="chest ü.png", anomaly_score=0.71234, risk="HIGH", components={"recon": 1.2, "kl": 20.5, "vit": 0.8},
                threshold=0.6, normal_percentile=99.5, latency_ms=123.4, detector="paper", flagged=True)
    base.update(kw)
    return ScoreResult(**base)


def test_report_is_a_pdf_with_scores_model_and_disclaimer():
    gray = (np.random.default_rng(0).random((224, 224)) * 255).astype(np.uint8)
    overlay = np.stack([gray] * 3, axis=-1)
    pdf = build_report(gray, _result(), "paper (paper_vae_vit), weights sha256 abc123", "Not a medical device.",
                       overlay=overlay, heatmap_method="gradcam", gate_reasons=None)
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000  # two embedded images


def test_report_text(monkeypatch):
    """The text a reader sees, checked in the uncompressed PDF stream."""
    from fpdf import FPDF

    gray = np.zeros((100, 80), dtype=np.uint8) + 128
    original = FPDF.__init__

    def no_compression(self, *a, **k):
        original(self, *a, **k)
        self.compress = False

    monkeypatch.setattr(FPDF, "__init__", no_compression)
    pdf = build_report(gray, _result(), "paper (paper_vae_vit), weights sha256 abc123", "Not a medical device.",
                       gate_reasons=["the image is in colour"])
    for text in (b"Anomaly score 0.712", b"risk band HIGH", b"sha256 abc123", b"Not a medical device.", b"in colour",
                 b"Heatmap: not computed", b"99.5%"):
        assert text in pdf, text


def test_samples_from_a_manifest(tmp_path):
    from PIL import Image

    from medsight.samples import list_samples

    rows = ["file,label,split,source,license,original_dataset"]
    for i, label in enumerate(["normal", "normal", "normal", "covid"]):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{label},dev,src{i},CC BY 4.0,ds")
    rows.append("missing.png,covid,dev,x,CC0,ds")
    rows.append("train.png,normal,train,x,CC0,ds")
    (tmp_path / "manifest.csv").write_text("\n".join(rows))
    samples = list_samples(tmp_path, per_label=2)
    assert [(s.label, s.path.name) for s in samples] == [("covid", "3.png"), ("normal", "0.png"), ("normal", "1.png")]
    assert samples[0].license == "CC BY 4.0" and samples[0].source == "src3"


def test_library_does_not_import_streamlit():
    code = ("import sys, medsight, medsight.registry, medsight.report, medsight.app_views, medsight.samples, "
            "medsight.vision, medsight.imaging; assert 'streamlit' not in sys.modules, 'streamlit imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
