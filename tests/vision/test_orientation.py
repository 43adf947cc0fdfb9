"""The gate's orientation check: upright dev radiographs pass, their upside-down and rotated copies are flagged,
and the classifier can be refitted from training normals alone."""

import numpy as np
import pandas as pd
import pytest

from medsight.imaging.gate import check_frontal_cxr
from medsight.imaging.load import load_image
from medsight.imaging.ood_samples import transformed
from medsight.imaging.orientation import ORIENTATIONS, TURNS, fit_orientation, load_orientation


@pytest.fixture(scope="module")
def radiographs(real_radiographs):
    return [load_image(p) for p, _ in real_radiographs]


def test_shipped_model_passes_upright_films_and_flags_turned_ones(radiographs):
    model = load_orientation()
    assert model is not None, "weights/orientation.json is shipped (medsight orientation-fit)"
    assert model.measured["holdout_flag_rate"]["upright"] < 0.01
    for im in radiographs:
        gate = check_frontal_cxr(im)
        assert gate.ok, gate.reasons
        assert gate.checks["orientation"] == "upright" and gate.checks["p_upright"] > 0.5
    flipped = [check_frontal_cxr(im) for im in transformed(radiographs, "upside_down")]
    assert sum(not g.ok for g in flipped) >= len(flipped) - 1
    assert sum("upside down" in " ".join(g.reasons) for g in flipped) >= len(flipped) - 1
    for name in ("rotated_left", "rotated_right"):
        for im in radiographs:
            o = model.check(TURNS[name](im.pixels))
            assert o["flag"] and o["likely"] == name, (name, o)


def test_orientation_check_can_be_switched_off(radiographs):
    gate = check_frontal_cxr(transformed(radiographs[:1], "upside_down")[0], orientation=None)
    assert "p_upright" not in gate.checks and not any("upside" in r for r in gate.reasons)


def test_fit_on_training_normals_and_round_trip(cxr_manifest, tmp_path, radiographs):
    df = pd.read_csv(cxr_manifest)
    train = df[(df["split"] == "train") & (df["is_normal"] == 1)].sample(n=60, random_state=0)
    films = [load_image(cxr_manifest.parent / f).pixels for f in train["file"]]
    model = fit_orientation(films, holdout=0.25, log=lambda *_: None)
    assert model.measured["n_holdout"] == 15 and model.measured["holdout_accuracy"] >= 0.9
    model.save(tmp_path)
    again = load_orientation(tmp_path)
    p1, p2 = model.probabilities(radiographs[0].pixels), again.probabilities(radiographs[0].pixels)
    assert set(p1) == set(ORIENTATIONS) and np.allclose(list(p1.values()), list(p2.values()))
    assert load_orientation(tmp_path / "nowhere") is None
