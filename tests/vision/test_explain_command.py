"""`medsight explain` with the shipped default detector on real dev radiographs: one 224x224 float32 map per file
on the normal films' scale and one maps.jsonl line per file; Grad-CAM's peak is the film's score on the held-out
normals' scale; mistakes are one sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_ready():
    from medsight import config
    from medsight.vision.detectors import available_detectors
    from medsight.vision.pipeline import DEFAULT_DETECTOR

    if DEFAULT_DETECTOR not in available_detectors(config.WEIGHTS_DIR):
        pytest.skip(f"no trained {DEFAULT_DETECTOR!r} detector in {config.WEIGHTS_DIR}")
    return DEFAULT_DETECTOR


@pytest.fixture(scope="module")
def films(real_radiographs):
    by_label = {label: path for path, label in real_radiographs}
    return [str(by_label["normal"]), str(by_label["bacterial_pneumonia"])]


def _run(argv, capsys):
    from medsight.cli import main

    code = main(argv)
    return code, capsys.readouterr()


def _records(out):
    return [json.loads(line) for line in (out / "maps.jsonl").read_text().splitlines()]


def test_explain_writes_maps_on_the_normal_scale(default_ready, films, tmp_path, capsys):
    from medsight.vision.regions import map_location

    out = tmp_path / "maps"
    code, io = _run(["explain", *films, "--out", str(out)], capsys)
    assert code == 0, io.err
    records = _records(out)
    assert [r["file"] for r in records] == films
    for r in records:
        m = np.load(out / r["map"])
        assert m.shape == (224, 224) and m.dtype == np.float32 and m.min() >= 0
        assert r["method"] == "anomaly_map" and r["absolute"] and "1% of held-out normal films" in r["scale"]
        assert r["max"] == pytest.approx(float(m.max()), abs=1e-4)
        loc = map_location(m)
        assert r["border_mass"] == pytest.approx(loc["border_mass"], abs=1e-4)
        assert r["lung_mass"] == pytest.approx(loc["lung_mass"], abs=1e-4)
        assert r["border_mass"] < 0.15  # the detector does not read the image edge
    normal, pneumonia = records
    assert pneumonia["max"] > 1.0 > normal["max"]  # the same value means the same on both films
    assert pneumonia["risk"] == "HIGH"

    code, _ = _run(["explain", films[0], "--out", str(tmp_path / "s"), "--stretched"], capsys)
    assert code == 0 and _records(tmp_path / "s")[0]["max"] == pytest.approx(1.0)


def test_gradcam_peak_is_the_score_on_the_normals_scale(default_ready, films, tmp_path, capsys):
    from medsight import config
    from medsight.vision.detectors import load_detector
    from medsight.vision.map_scale import ScoreScale

    code, io = _run(["explain", films[1], "--method", "gradcam", "--out", str(tmp_path)], capsys)
    assert code == 0, io.err
    (r,) = _records(tmp_path)
    scale = ScoreScale.of(load_detector(config.WEIGHTS_DIR, default_ready))
    assert r["method"] == "gradcam" and "down-weighted" in r["note"]
    assert r["max"] == pytest.approx(scale.excess(r["anomaly_score"]), rel=0.03)
    # down-weighting outside the lung fields moves the map's mass from the edge onto the lungs
    from medsight.imaging import load_image
    from medsight.imaging.preprocess import to_square
    from medsight.vision.explain import cam_on, private_backbone
    from medsight.vision.pipeline import AnomalyPipeline
    from medsight.vision.regions import map_location

    pipe = AnomalyPipeline.load(default_ready, device="cpu")
    raw = map_location(cam_on(private_backbone(pipe.backbone), pipe.detector, to_square(load_image(films[1]).pixels)))
    assert r["border_mass"] < 0.7 * raw["border_mass"] and r["lung_mass"] > raw["lung_mass"]


def test_explain_mistakes_are_one_sentence(default_ready, films, tmp_path, capsys):
    code, io = _run(["explain", films[0], "--method", "saliency", "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and io.err.count("\n") == 1 and "has no 'saliency' map" in io.err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, io = _run(["explain", films[0], "--out", str(blocker)], capsys)
    assert code == 2 and "is a file, not a folder" in io.err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    code, io = _run(["explain", str(broken), films[0], "--out", str(tmp_path / "b")], capsys)
    records = _records(tmp_path / "b")
    assert code == 1 and "error" in records[0] and records[1]["map"].endswith(".npy")
