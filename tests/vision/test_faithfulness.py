"""Heatmap faithfulness: masking and location helpers are exact, and the deletion / insertion evaluation runs on a
real radiograph with a k-NN detector fitted here, with Grad-CAM and the random baseline."""

import numpy as np
import pytest

from medsight.imaging.load import load_image
from medsight.imaging.preprocess import to_square
from medsight.training import faithfulness as F


@pytest.fixture(scope="module")
def gray(real_radiographs):
    path = [p for p, label in real_radiographs if label != "normal"][0]
    return to_square(load_image(path).pixels)


def test_masked_views_replace_exactly_the_most_salient_pixels(gray):
    sal = np.zeros(gray.shape, np.float32)
    sal[:50] = 1.0  # the top 50 rows are "salient"
    base = F.blurred(gray)
    frac = 50 * gray.shape[1] / gray.size
    d0, d_half, d1 = F.masked_views(gray, sal, [0.0, frac, 1.0], "deletion", base=base)
    assert np.array_equal(d0, gray) and np.array_equal(d1, base)
    assert np.array_equal(d_half[:50], base[:50]) and np.array_equal(d_half[50:], gray[50:])
    i0, i_half, _ = F.masked_views(gray, sal, [0.0, frac, 1.0], "insertion", base=base)
    assert np.array_equal(i0, base) and np.array_equal(i_half[:50], gray[:50])


def test_map_location_shares():
    uniform = F.map_location(np.ones((224, 224)))
    assert uniform["lung_mass"] == pytest.approx(uniform["lung_area"])
    assert uniform["border_mass"] == pytest.approx(uniform["border_area"])
    edge = np.zeros((224, 224))
    edge[:5] = 1
    assert F.map_location(edge)["border_mass"] == pytest.approx(1.0) and F.map_location(edge)["lung_mass"] == 0
    r = F.random_map(3)
    assert np.array_equal(r, F.random_map(3)) and r.min() == 0 and r.max() == pytest.approx(1)


def test_faithfulness_on_a_real_radiograph(cpu_backbone, train_normal_maps, gray):
    from medsight.vision.detectors.knn import PooledKNN
    from medsight.vision.pipeline import AnomalyPipeline

    maps = train_normal_maps(16, seed=2)
    pipe = AnomalyPipeline(cpu_backbone, PooledKNN.fit(maps[:12], maps[12:], k=3, log=lambda *_: None))
    res = F.faithfulness(pipe, [gray], methods=["gradcam"], fractions=(0.0, 0.2, 1.0), road=(0.3,))
    assert set(res) == {"gradcam", "random", "_summary"}
    for m in ("gradcam", "random"):
        v = res[m]
        assert np.isfinite([v["deletion_auc"], v["insertion_auc"]]).all() and v["n"] == 1
        assert np.isfinite([v["road_morf"], v["road_lerf"]]).all()
        assert v["road_combined"] == pytest.approx(v["road_lerf"] - v["road_morf"])
        assert 0 <= v["lung_mass"] <= 1 and 0 <= v["border_mass"] <= 1
    assert res["random"]["deletion_minus_random"] == 0
    assert res["_summary"]["detector"] == "knn" and res["_summary"]["n_images"] == 1


def test_road_views_impute_exactly_the_removed_pixels(gray):
    sal = np.zeros(gray.shape, np.float32)
    sal[100:140, 80:150] = 1.0  # a salient block
    frac = float((sal > 0).mean())
    (morf,) = F.road_views(gray, sal, [frac], "morf")
    (lerf,) = F.road_views(gray, sal, [1 - frac], "lerf")
    inside = sal > 0
    assert np.array_equal(morf[~inside], gray[~inside]) and not np.array_equal(morf[inside], gray[inside])
    assert np.array_equal(lerf[inside], gray[inside])  # LeRF removed everything but the salient block
    # imputed from the neighbours: close to the block's surroundings, not a constant or noise
    ring = np.zeros_like(inside)
    ring[96:144, 76:154] = True
    ring &= ~inside
    assert abs(float(morf[inside].mean()) - float(gray[ring].mean())) < 25
