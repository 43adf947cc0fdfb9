"""The other pages in AppTest: heatmap viewer, clinical notes, chat, model status (with the teaching view).
Each is opened directly (as a direct URL would), with and without a study in the session."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from apphelpers import TIMEOUT, page, rendered_text, scored_case
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.slow

PAGES = ["pages/1_Heatmap_viewer.py", "pages/2_Clinical_notes.py", "pages/3_Chat.py", "pages/4_Model_status.py"]


@pytest.fixture
def scored_study(weights_ready, radiograph, reference_pipeline):
    return scored_case(radiograph[0], reference_pipeline)


def open_page(name: str, study=None, **state) -> AppTest:
    at = AppTest.from_file(page(name), default_timeout=TIMEOUT)
    if study is not None:
        at.session_state["study"] = study
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("name", PAGES)
def test_every_page_opens_directly_without_a_study(weights_ready, name, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSIGHT_EVAL_DIR", str(tmp_path / "none"))
    at = open_page(name)
    assert at.title and at.title[0].value
    assert "No study yet" in rendered_text(at)  # the shared sidebar


def test_heatmap_viewer_renders_original_and_overlays(scored_study):
    at = open_page(PAGES[0], scored_study, active_detector="paper")  # the paper detector offers the latent-attention map
    layout = at.radio(key="heatmap_layout")
    layout.set_value("One at a time").run()
    at.selectbox(key="heatmap_method").set_value("latent_attention").run()
    assert not at.exception, at.exception
    captions = [c for img in at.image for c in (img.captions or []) if img not in at.sidebar.image]
    assert "original (CLAHE)" in captions and any(c.startswith("latent_attention") for c in captions)
    assert "no spatial layout" in rendered_text(at)
    heatmap = scored_study.heatmaps[("paper", "latent_attention")]
    assert heatmap.shape == (224, 224) and 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    # controls re-render without recomputing the map
    at.toggle(key="heatmap_clahe").set_value(False).run()
    at.slider(key="heatmap_opacity").set_value(0.3).run()
    captions = [c for img in at.image for c in (img.captions or [])]
    assert "original" in captions and not at.exception


def test_heatmap_viewer_gradcam(scored_study):
    """Grad-CAM through the library (medsight.vision.explain) renders without an error."""
    at = open_page(PAGES[0], scored_study)
    at.radio(key="heatmap_layout").set_value("One at a time").run()
    at.selectbox(key="heatmap_method").set_value("gradcam").run()
    assert not at.error, [e.value for e in at.error]
    assert any(c.startswith("gradcam (") for img in at.image for c in (img.captions or []))  # with its scale
    # the measured faithfulness of the default detector's maps is shown beside them (assets/evaluation/explain)
    from medsight.app_views import faithfulness_note
    from medsight.vision.pipeline import DEFAULT_DETECTOR

    note = faithfulness_note(DEFAULT_DETECTOR, "gradcam")
    if DEFAULT_DETECTOR == "fused_lungs":
        assert note and "ROAD" in note and note in rendered_text(at)


@pytest.mark.parametrize("film", ["high_film", "negative_film", "radiograph"])
def test_clinical_note_after_any_score_shows_entities_and_agreement(weights_ready, reference_pipeline, film, request):
    """Issue 10: the note page crashed after every HIGH and every negative score (raw scores outside [0, 1]).
    The comparison reads the band and the normal percentile, whatever the raw number."""
    path = request.getfixturevalue(film)
    path = path[0] if isinstance(path, tuple) else path
    study = scored_case(path, reference_pipeline)
    result = study.vision
    at = open_page(PAGES[1], study)
    at.button(key="example_note").click().run()
    at.button(key="analyse_note").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    text = rendered_text(at)
    assert "entity-Disease assertion-present" in text  # consolidation
    assert "assertion-absent" in text and "pleural effusion" in text  # "No pleural effusion." is marked negated
    assert "Ruled out by the note:" in text
    assert len(at.get("plotly_chart")) == 1
    fusion = at.session_state["note_analysis"].fusion
    assert fusion is not None and fusion.image_risk_band == result.risk
    assert fusion.image_normal_percentile == pytest.approx(result.normal_percentile)
    assert fusion.agreement == {"HIGH": "consistent", "LOW": "discordant", "MEDIUM": "indeterminate"}[result.risk]
    shown = [a.value for a in list(at.success) + list(at.warning) + list(at.info)]
    assert any(fusion.agreement.capitalize() in s for s in shown)
    assert f"above {result.normal_percentile:.1f}% of held-out normal films" in text


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-8-sig", "cp1252"])
def test_clinical_note_text_files_in_other_encodings_are_read(weights_ready, codec):
    note = "No pleural effusion. Right lower lobe consolidation, 38.5 °C."
    at = AppTest.from_file(page(PAGES[1]), default_timeout=TIMEOUT)
    at.run()
    at.file_uploader(key="note_file").upload("note.txt", note.encode(codec), "text/plain").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.text_area(key="note_text").value == note


def test_clinical_note_entity_models_default_accurate_and_fast_on_request(weights_ready):
    """Issue 14: the notes page reads with the LM-feature NER by default and offers the fast CNN; each label carries
    its BC5CDR Test F1 and the analysis names the model that read the note."""
    from medsight.nlp.lm_ner import lm_ner_available

    if not lm_ner_available():
        pytest.skip("no LM NER head or SmolLM2 installed")
    at = open_page(PAGES[1])
    options = at.radio(key="ner_model").options
    assert len(options) == 2 and options[0].startswith("accurate (SmolLM2 features, BC5CDR F1 0.8")
    assert options[1].startswith("fast (CNN, BC5CDR F1 0.8")
    note = "Cisplatin-induced nephrotoxicity. No pleural effusion."
    for option, model in zip(options, ["medsight_ner_bc5cdr_smollm", "medsight_ner_bc5cdr"]):
        at.radio(key="ner_model").set_value(option).run()
        at.text_area(key="note_text").set_value(note).run()
        at.button(key="analyse_note").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        analysis = at.session_state["note_analysis"]
        assert analysis.backends["ner"] == model
        assert any(e.text.lower() == "pleural effusion" and e.assertion == "absent" for e in analysis.entities)
    found = {(e.text, e.label) for e in at.session_state["note_analysis"].entities}
    assert ("Cisplatin", "Chemical") in found  # the CNN finds the drug too; the accurate model was checked above
    at.radio(key="ner_model").set_value(options[0]).run()
    at.button(key="analyse_note").click().run()
    found = {(e.text, e.label, e.assertion) for e in at.session_state["note_analysis"].entities}
    assert ("Cisplatin", "Chemical", "present") in found and ("nephrotoxicity", "Disease", "present") in found


def test_clinical_note_empty_is_one_sentence(weights_ready):
    at = open_page(PAGES[1])
    at.button(key="analyse_note").click().run()
    assert not at.exception and len(at.error) == 1


def test_chat_streams_an_answer_with_tier_sources_and_disclaimer(scored_study):
    at = open_page(PAGES[2], scored_study)
    assert "anomaly score" in rendered_text(at)
    at.chat_input(key="chat_question").set_value("What does a high anomaly score mean?").run()
    assert not at.exception, at.exception
    text = rendered_text(at)
    assert "answered by: extractive" in text
    assert "[1] **" in text  # a retrieved passage with its source
    assert "not a medical device" in text.lower() or "not a diagnosis" in text.lower()
    history = at.session_state["chat_history"]
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1]["tier"] == "extractive"


@pytest.fixture
def stored_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    labels = ["normal"] * 50 + ["covid"] * 50
    scores = np.r_[rng.normal(0.3, 0.1, 50), rng.normal(0.6, 0.1, 50)]
    pd.DataFrame({"file": [f"f{i}.jpg" for i in range(100)], "label": labels, "score_paper": scores}).to_csv(tmp_path / "scores.csv", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"detectors": {"paper": {"confusion": {"threshold": 0.45}}}}))
    return tmp_path, np.array([0] * 50 + [1] * 50), scores


def test_model_status_lists_registry_and_teaching_view_moves_with_threshold(weights_ready, stored_evaluation, monkeypatch):
    folder, y, s = stored_evaluation
    monkeypatch.setenv("MEDSIGHT_EVAL_DIR", str(folder))
    at = open_page(PAGES[3])
    text = rendered_text(at)
    for model in ("vgg16", "paper", "knn_fused", "patchcore", "fused_lungs", "nlp", "knowledge_base", "chat_local"):
        assert f"<td>{model}</td>" in text
    assert "GPU budget" in [m.label for m in at.metric]
    slider = at.slider(key="eval_threshold")
    assert slider.value == pytest.approx(0.45)
    for threshold in (0.45, 0.6):
        slider.set_value(threshold).run()
        shown = {m.label: m.value for m in at.metric}
        sens = ((s >= threshold) & (y == 1)).sum() / 50
        spec = ((s < threshold) & (y == 0)).sum() / 50
        assert shown["Sensitivity"] == f"{sens:.1%}" and shown["Specificity"] == f"{spec:.1%}"
        assert f"<td>{int(((s >= threshold) & (y == 1)).sum())}</td>" in rendered_text(at)
    assert len(at.get("plotly_chart")) == 1


def test_model_status_without_stored_results_says_how_to_make_them(weights_ready, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSIGHT_EVAL_DIR", str(tmp_path / "missing"))
    at = open_page(PAGES[3])
    assert any("No stored evaluation results" in i.value and "medsight evaluate" in i.value for i in at.info)
