"""Upload & score (app.py) in AppTest: a real radiograph, a DICOM, a corrupt file, a colour photo, a sample."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from apphelpers import CORRUPT_PNG, TIMEOUT, page, rendered_text

pytestmark = pytest.mark.slow


def run_upload(name: str, data: bytes, mime: str) -> AppTest:
    at = AppTest.from_file(page("app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.file_uploader(key="upload").upload(name, data, mime).run()
    assert not at.exception, at.exception
    return at


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_real_radiograph_is_scored_with_band_components_chart_and_model(weights_ready, radiograph, reference_pipeline):
    path, data = radiograph
    at = run_upload(path.name, data, "image/jpeg")
    expected = reference_pipeline.score(path)
    shown = metrics(at)
    assert shown["Anomaly score"] == f"{expected.anomaly_score:.3f}"
    assert shown["Threshold"] == f"{expected.threshold:.3f}"
    assert shown["Normals scoring lower"] == f"{expected.normal_percentile:.1f}%"
    text = rendered_text(at)
    assert f">{expected.risk}</span>" in text
    for component in expected.components:
        assert f"<td>{component}</td>" in text
    assert "Latency" in text and f"model {reference_pipeline.detector.name} (" in text and "weights sha256" in text
    assert len(at.get("plotly_chart")) == 1
    assert not at.warning  # a frontal CXR passes the gate
    # the report: button -> a download button
    at.button(key="build_report").click().run()
    assert not at.exception, at.exception
    assert at.get("download_button"), "no report download after building it"


def test_dicom_is_scored_and_identifying_tags_are_never_shown(weights_ready, dicom_bytes, reference_pipeline):
    at = run_upload("study.dcm", dicom_bytes, "application/dicom")
    assert "Anomaly score" in metrics(at)
    text = rendered_text(at)
    assert "DICOM" in text and "Modality DX" in text and "ViewPosition PA" in text
    for secret in ("Doe", "Jane", "SECRET-1234", "19500101"):
        assert secret not in text


def test_corrupt_file_gives_one_clear_sentence_and_no_score(weights_ready):
    at = run_upload("broken.png", CORRUPT_PNG, "image/png")
    assert [e.value for e in at.error] == ["broken.png: not a readable PNG, JPEG or DICOM image (OSError)."] or \
        all("not a readable" in e.value for e in at.error) and len(at.error) == 1
    assert not at.metric


def test_colour_photo_gets_a_warning_instead_of_a_score(weights_ready, colour_photo):
    at = run_upload("holiday.png", colour_photo, "image/png")
    assert len(at.warning) == 1
    assert "does not look like a frontal chest X-ray" in at.warning[0].value and "colour" in at.warning[0].value
    assert not at.metric  # no confident score
    at.checkbox(key="force_score").check().run()
    assert "Anomaly score" in metrics(at)
    assert "not a meaningful result" in rendered_text(at)


def test_sample_radiographs_show_licence_and_source_and_score(weights_ready, cxr_manifest):
    at = AppTest.from_file(page("app.py"), default_timeout=TIMEOUT)
    at.run()
    box = at.selectbox(key="sample_choice")
    assert len(box.options) >= 4
    assert any("Licence:" in c.value and "Source:" in c.value for c in at.caption)
    at.button(key="use_sample").click().run()
    assert not at.exception, at.exception
    assert "Anomaly score" in metrics(at)
    assert any("licence:" in c.value for c in at.caption)


def test_missing_weights_is_one_sentence(monkeypatch, tmp_path):
    from medsight import config

    monkeypatch.setattr(config, "WEIGHTS_DIR", tmp_path)
    at = AppTest.from_file(page("app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert "No trained detector weights found" in at.error[0].value


def test_upside_down_film_is_caught_and_can_be_turned_upright(weights_ready, radiograph, reference_pipeline):
    import io

    from PIL import Image

    path, data = radiograph
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(buf, format="PNG")
    at = run_upload("flipped.png", buf.getvalue(), "image/png")
    assert len(at.warning) == 1 and "upside down" in at.warning[0].value
    assert not at.metric
    at.button(key="turn_upright").click().run()
    assert not at.exception, at.exception
    assert not at.warning  # upright again: it passes the gate and is scored like the original film
    assert metrics(at)["Anomaly score"] == f"{reference_pipeline.score(path).anomaly_score:.3f}"
