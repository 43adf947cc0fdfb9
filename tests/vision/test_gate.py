"""The OOD gate on real data: dev radiographs pass; blank and inverted films, photos, a CT slice and documents are
flagged by image statistics or by the feature-space distance to training normals."""

import pytest

from medsight.imaging.gate import check_frontal_cxr
from medsight.imaging.load import load_image
from medsight.imaging.ood_samples import package_samples, transformed


@pytest.fixture(scope="module")
def radiographs(real_radiographs):
    return [load_image(p) for p, _ in real_radiographs]


def test_real_radiographs_pass_the_statistics(radiographs):
    results = [check_frontal_cxr(im) for im in radiographs]
    assert all(r.ok for r in results), [r.reasons for r in results]
    assert all(-1 <= r.checks["symmetry_lr"] <= 1 for r in results)


def test_blank_and_inverted_films_are_flagged(radiographs):
    assert all(not check_frontal_cxr(im).ok for im in transformed(radiographs, "blank"))
    inv = [check_frontal_cxr(im) for im in transformed(radiographs, "inverted")]
    assert sum(not r.ok for r in inv) >= len(inv) - 1
    assert any("inverted" in " ".join(r.reasons) for r in inv)


def test_colour_photos_and_odd_shapes_are_flagged():
    pytest.importorskip("skimage")
    kinds = package_samples()
    assert len(kinds["colour_photo"]) >= 5 and len(kinds["ct_mr_slice"]) >= 3
    assert all(not check_frontal_cxr(im).ok for _, im in kinds["colour_photo"])
    page = dict(kinds["document"])["page"]
    assert "aspect" in " ".join(check_frontal_cxr(page).reasons)


@pytest.fixture(scope="module")
def feature_state(cpu_backbone, train_normal_maps, tmp_path_factory):
    from medsight.vision.ood import fit_ood, load_ood, save_ood

    maps = train_normal_maps(24, seed=0)
    state = fit_ood(maps[:18], maps[18:], k=3)
    d = tmp_path_factory.mktemp("ood")
    save_ood(state, d)
    return cpu_backbone, load_ood(d), state


def test_feature_distance_separates_radiographs_from_other_images(feature_state, radiographs):
    from medsight.training.gate_eval import _maps
    from medsight.vision.ood import ood_check, ood_distance

    pytest.importorskip("skimage")
    backbone, state, fitted = feature_state
    assert state["threshold"] == pytest.approx(fitted["threshold"]) and state["bank"].shape == (18, 1280)
    kinds = package_samples()
    others = [dict(kinds["ct_mr_slice"])["CT_small.dcm"], dict(kinds["gray_photo"])["camera"],
              dict(kinds["document"])["screenshot_1"]]
    d_cxr = ood_distance(_maps(backbone, radiographs), state)
    d_other = ood_distance(_maps(backbone, others), state)
    # the radiographs include pneumonia and COVID films: pathology must stay closer than any non-radiograph
    assert d_cxr.max() < d_other.min(), (d_cxr, d_other)
    checks = ood_check(_maps(backbone, others), state)
    assert all(c["ood"] for c in checks)
    gate = check_frontal_cxr(others[0], checks[0])
    assert not gate.ok and "ood_distance" in gate.checks and "trained on" in " ".join(gate.reasons)


def test_gate_eval_writes_rates_per_kind(cxr_manifest, feature_state, tmp_path, monkeypatch):
    from medsight import config
    from medsight.training.gate_eval import evaluate_gate
    from medsight.vision.ood import save_ood

    pytest.importorskip("skimage")
    _, state, _ = feature_state
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    save_ood(state, tmp_path / "weights")
    m = evaluate_gate(cxr_manifest, tmp_path / "out", n_dev=5, n_transform=2, weights_dir=tmp_path / "weights",
                      all_dev=False, log=lambda *_: None)
    assert (tmp_path / "out" / "metrics.json").exists() and (tmp_path / "out" / "gate_results.csv").exists()
    rates = m["detection_rate"]
    assert {"colour_photo", "ct_mr_slice", "blank", "inverted", "upside_down"} <= set(rates)
    assert rates["colour_photo"]["combined"] == 1.0 and rates["blank"]["combined"] == 1.0
    assert rates["ct_mr_slice"]["ood_only"] == 1.0 and m["false_flag_rate_dev"]["n"] == 5
