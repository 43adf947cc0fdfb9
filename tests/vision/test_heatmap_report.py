"""The PDF's heatmap (issue 16): on the normal films' scale with a colour bar and a line that says how to read it;
a LOW film's overlay stays close to the radiograph, a HIGH film's glows."""

from __future__ import annotations

import numpy as np
import pytest


def _uncompressed(monkeypatch):
    from fpdf import FPDF

    original = FPDF.__init__

    def no_compression(self, *a, **k):
        original(self, *a, **k)
        self.compress = False

    monkeypatch.setattr(FPDF, "__init__", no_compression)


def test_report_shows_the_colour_bar_and_the_maps_reading(monkeypatch):
    from medsight.report import build_report
    from medsight.vision.map_scale import PATCH_UNIT
    from medsight.vision.pipeline import ScoreResult
    from medsight.vision.render import colour_bar

    _uncompressed(monkeypatch)
    gray = np.full((224, 224), 90, np.uint8)
    result = ScoreResult(file="x.png", anomaly_score=0.1, risk="LOW", components={}, threshold=2.0,
                         normal_percentile=40.0, latency_ms=5.0, detector="fused_lungs", flagged=False)
    pdf = build_report(gray, result, "fused_lungs", "Not a medical device.", overlay=np.stack([gray] * 3, -1),
                       heatmap_method="anomaly_map", colour_bar=colour_bar(2.0, caption=PATCH_UNIT),
                       heatmap_note="Highest value 0.21. Note: outside the lung fields (atlas) down-weighted to 50%.")
    assert pdf.count(b"/Subtype /Image") == 3  # radiograph, overlay, colour bar
    assert b"Highest value 0.21" in pdf and b"down-weighted to 50%" in pdf


@pytest.mark.slow
def test_case_report_overlay_is_on_the_normal_scale(real_radiographs):
    from medsight import config
    from medsight.case import Case
    from medsight.imaging.preprocess import to_square
    from medsight.report import case_report
    from medsight.vision.detectors import available_detectors
    from medsight.vision.explain import map_meaning
    from medsight.vision.pipeline import DEFAULT_DETECTOR, AnomalyPipeline
    from medsight.vision.render import clahe, render_overlay

    if DEFAULT_DETECTOR not in available_detectors(config.WEIGHTS_DIR):
        pytest.skip(f"no trained {DEFAULT_DETECTOR!r} detector in {config.WEIGHTS_DIR}")
    pipe = AnomalyPipeline.load(DEFAULT_DETECTOR, device="cpu")
    by_label = {label: path for path, label in real_radiographs}
    glow = {}
    for label in ("normal", "bacterial_pneumonia"):
        case = Case.from_file(by_label[label])
        pdf, failures = case_report(case, pipe)
        assert pdf.startswith(b"%PDF") and not failures
        (method, heatmap), = case.heatmaps.items()
        meaning = map_meaning(pipe, method[1])
        assert meaning.absolute and meaning.display_max == 2.0
        square = to_square(case.image.pixels)
        overlay = render_overlay(square, heatmap, 0.65, 0.0, True, True, meaning.display_max)
        glow[label] = float(np.abs(overlay.astype(int) - clahe(square)[..., None]).mean())
    assert glow["normal"] < 0.5 * glow["bacterial_pneumonia"]  # the same colours mean the same on both films
