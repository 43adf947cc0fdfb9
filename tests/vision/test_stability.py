"""The stability metric: perturbations keep the image a radiograph, the metric is zero for an unchanged image and
small for mild acquisition changes next to a drastic one, on real radiographs with a k-NN detector fitted here."""

import numpy as np
import pytest

from medsight.imaging.load import load_image
from medsight.imaging.preprocess import to_square
from medsight.training import stability as S


@pytest.fixture(scope="module")
def grays(real_radiographs):
    return [to_square(load_image(p).pixels) for p, _ in real_radiographs]


@pytest.mark.parametrize("name", list(S.PERTURBATIONS))
def test_perturbations_are_mild_seeded_and_keep_the_shape(grays, name):
    g = grays[0]
    a, b = S.PERTURBATIONS[name](g, 3), S.PERTURBATIONS[name](g, 3)
    assert a.dtype == np.uint8 and a.shape == g.shape and np.array_equal(a, b)
    diff = np.abs(a.astype(int) - g.astype(int))
    assert 0 < diff.mean() < 60  # an auto-level re-window can shift a dim film a lot, but stays one film
    assert np.corrcoef(a.ravel(), g.ravel())[0, 1] > 0.9


def test_sample_is_stratified_by_label(cxr_manifest):
    from medsight.training.dataset import read_manifest

    dev = read_manifest(cxr_manifest, "dev")
    s = S.sample_for_stability(dev, 50)
    assert s["label"].value_counts().min() == s["label"].value_counts().max() == 50 // dev["label"].nunique()


@pytest.fixture(scope="module")
def knn_pipeline(cpu_backbone, train_normal_maps):
    from medsight.vision.detectors.knn import PooledKNN
    from medsight.vision.pipeline import AnomalyPipeline

    maps = train_normal_maps(24, seed=1)
    det = PooledKNN.fit(maps[:16], maps[16:], k=3, log=lambda *_: None)
    return AnomalyPipeline(cpu_backbone, det)


def test_stability_on_real_radiographs(knn_pipeline, grays):
    det = knn_pipeline.detector
    res = S.stability_of_images(knn_pipeline, grays, perturbations=["jpeg_q50_70", "gamma"])
    assert set(res) == {"jpeg_q50_70", "gamma"}
    for v in res.values():
        assert v["median_abs_delta"] >= 0 and 0 <= v["flip_rate"] <= 1 and v["n"] == len(grays)
    clean = knn_pipeline.maps(grays)
    same = S.stability([det], clean, {"identity": clean})[det.name]["identity"]
    assert same["median_abs_delta"] == 0 and same["flip_rate"] == 0
    # a drastic change (a blank film) moves the score far more than re-encoding does
    blank = knn_pipeline.maps([np.full_like(g, int(g.mean())) for g in grays])
    drastic = S.stability([det], clean, {"blank": blank})[det.name]["blank"]
    assert drastic["median_abs_delta"] > 3 * res["jpeg_q50_70"]["median_abs_delta"]
