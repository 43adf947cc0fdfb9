"""A one-page PDF report of a scored radiograph (fpdf2): the image, its heatmap overlay, the anomaly score with its
risk band and components, where it sits among calibration normals, the model version and the disclaimer.

`case_report(case, pipeline)` builds it from a scored `medsight.case.Case` (the app's button and `medsight report`
both call it); `build_report` lays out the page. Built in memory and returned as bytes: nothing is written to disk."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from medsight.vision.detectors.catalog import MAP_DETECTOR


def _png(rgb_or_gray: np.ndarray) -> io.BytesIO:
    buf = io.BytesIO()
    Image.fromarray(rgb_or_gray).save(buf, format="PNG")
    buf.seek(0)
    return buf


def _latin1(text: str) -> str:
    # The core PDF fonts are Latin-1; replace anything else rather than fail on a file name.
    return str(text).replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'").encode("latin-1", "replace").decode("latin-1")


def build_report(image: np.ndarray, result, model_version: str, disclaimer: str, overlay: np.ndarray | None = None,
                 heatmap_method: str = "", gate_reasons: list[str] | None = None, title: str = "MedSight anomaly report",
                 colour_bar: np.ndarray | None = None, heatmap_note: str = "") -> bytes:
    """`image`: uint8 grayscale as scored; `result`: a ScoreResult; `overlay`: RGB heatmap overlay (or None) with its
    `colour_bar` (RGB legend image, `medsight.vision.render.colour_bar`) and `heatmap_note` (how to read it)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_title(title)
    pdf.set_creator("MedSight")
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, _latin1(f"Image: {result.file}    Generated: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    y = pdf.get_y()
    pdf.image(_png(image), x=12, y=y, w=88, h=88 * image.shape[0] / image.shape[1] if image.shape[1] else 88)
    if overlay is not None:
        pdf.image(_png(overlay), x=108, y=y, w=88, h=88 * overlay.shape[0] / overlay.shape[1])
    pdf.set_y(y + 90)
    pdf.set_font("Helvetica", "I", 8)
    pdf.cell(90, 4, "Radiograph (as scored)")
    pdf.cell(0, 4, _latin1(f"Heatmap: {heatmap_method}" if overlay is not None else "Heatmap: not computed"),
             new_x="LMARGIN", new_y="NEXT")
    if overlay is not None and colour_bar is not None:
        y = pdf.get_y() + 1
        pdf.image(_png(colour_bar), x=108, y=y, w=88, h=88 * colour_bar.shape[0] / colour_bar.shape[1])
        pdf.set_y(y + 88 * colour_bar.shape[0] / colour_bar.shape[1] + 1)
    if overlay is not None and heatmap_note:
        pdf.set_x(108)
        pdf.multi_cell(88, 3.5, _latin1(heatmap_note), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    pdf.set_font("Helvetica", "B", 12)
    band = f"risk band {result.risk}" if getattr(result, "scored", True) else "no risk band (not a frontal chest film)"
    pdf.cell(0, 7, _latin1(f"Anomaly score {result.anomaly_score:.3f}  -  {band}"
                           + ("  (flagged)" if result.flagged else "")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    rows = [("Threshold (95% specificity on held-out normals)", f"{result.threshold:.3f}"),
            ("Share of calibration normals scoring lower", f"{result.normal_percentile:.1f}%"),
            *[(f"Component: {k}", f"{v:.4f}") for k, v in result.components.items()],
            ("Latency", f"{result.latency_ms:.0f} ms"),
            ("Model", model_version)]
    for label, value in rows:
        pdf.cell(85, 6, _latin1(label), border=1)
        pdf.multi_cell(0, 6, _latin1(value), border=1, new_x="LMARGIN", new_y="NEXT")
    if gate_reasons:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 10)
        pdf.set_text_color(180, 0, 0)
        pdf.multi_cell(0, 5, _latin1("Warning: this image may not be a frontal chest X-ray: " + "; ".join(gate_reasons) + "."),
                       new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, _latin1(disclaimer), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


log = logging.getLogger(__name__)

#: heatmap the report prefers: a spatial one first (the latent attention map has no spatial layout), cheapest first
REPORT_METHODS = ("anomaly_map", f"anomaly_map:{MAP_DETECTOR}", "gradcam", "latent_attention")


def report_heatmap(case, pipeline) -> tuple[str | None, np.ndarray | None, list[tuple[str, str]]]:
    """(method, map, failures) for the report: the first of REPORT_METHODS the pipeline offers that computes (kept
    in `case.heatmaps`); a method that fails is logged with its traceback and returned in `failures`, not hidden."""
    from medsight.vision.explain import available_methods, explain

    failures = []
    detector = pipeline.detector.name
    offered = available_methods(pipeline)
    for method in [m for m in REPORT_METHODS if m in offered]:
        key = (detector, method)
        try:
            if key not in case.heatmaps:
                case.heatmaps[key] = explain(pipeline, case.image, method)
            return method, case.heatmaps[key], failures
        except Exception as exc:  # noqa: BLE001 - returned to the caller and logged loudly
            log.exception("heatmap %s failed", method)
            failures.append((method, f"{type(exc).__name__}: {exc}"))
    return None, None, failures


def case_report(case, pipeline, model: str | None = None) -> tuple[bytes, list[tuple[str, str]]]:
    """The PDF of `case` scored by `pipeline` (scored here if it was not yet) and the heatmap failures, if any."""
    from medsight.imaging.preprocess import to_square
    from medsight.vision.pipeline import DISCLAIMER
    from medsight.vision.explain import map_meaning, stretch
    from medsight.vision.render import colour_bar, render_overlay

    result = case.score(pipeline)
    square = to_square(case.image.pixels)
    method, heatmap, failures = report_heatmap(case, pipeline)
    overlay = bar = None
    note = ""
    if heatmap is not None:
        # on the normal films' scale where the detector has one: a LOW film's map stays quiet
        meaning = map_meaning(pipeline, method)
        vmax = meaning.display_max if meaning.absolute else None
        overlay = render_overlay(square, heatmap if meaning.absolute else stretch(heatmap), 0.65, 0.0, True, True, vmax)
        bar = colour_bar(vmax, True, caption=meaning.unit)
        note = (f"Highest value {float(heatmap.max()):.2f}. " if meaning.absolute else "") + (
            f"Note: {meaning.note}." if meaning.note else "")
    pdf = build_report(square, result, model or model_version(pipeline.detector.name), DISCLAIMER, overlay,
                       method or "", None if result.scored else result.reasons, colour_bar=bar, heatmap_note=note)
    return pdf, failures


def model_version(detector: str, weights_dir: str | Path | None = None) -> str:
    """'paper (paper_vae_vit), trained 2026-11-28 09:14 UTC, weights sha256 1a2b3c4d5e6f' for reports and pages."""
    from medsight import config

    tensors = Path(weights_dir or config.WEIGHTS_DIR) / f"{detector}.safetensors"
    return _model_version(str(tensors.parent), detector, tensors.stat().st_mtime if tensors.is_file() else 0.0)


@lru_cache(maxsize=64)
def _model_version(folder: str, detector: str, _mtime: float) -> str:
    meta_path, tensors = Path(folder) / f"{detector}.json", Path(folder) / f"{detector}.safetensors"
    if not meta_path.is_file():
        return f"{detector} (no weights)"
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256(tensors.read_bytes()).hexdigest()[:12] if tensors.is_file() else "?"
    trained = (meta.get("card") or {}).get("trained_at", "unknown date")
    return f"{detector} ({meta.get('kind', '?')}), trained {trained}, weights sha256 {digest}"
