"""Heatmaps on the normal films' scale (issue 16): the atlas regions partition the square and measure where a map's
mass falls; the patch scale puts held-out normals at 1.0 only in 1% of films; the score scale of CAMs; a quiet map
renders as the radiograph itself, with a colour bar that says what the colours mean."""

import numpy as np
import pytest

from medsight.vision import map_scale
from medsight.vision.regions import (BORDER_PX, LABELS, REGIONS, atlas_from_probability, border_band, load_atlas,
                                     lung_weight, map_location)


def _two_lungs(size: int = 224) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    left = ((xx - 70) / 35) ** 2 + ((yy - 100) / 70) ** 2 < 1
    right = ((xx - 154) / 35) ** 2 + ((yy - 95) / 65) ** 2 < 1
    return (left | right).astype(np.float32) * 0.5


def test_atlas_regions_partition_the_square():
    atlas = atlas_from_probability(_two_lungs())
    assert set(np.unique(atlas)) == set(LABELS.values())
    assert np.array_equal(atlas == LABELS["border"], border_band())
    assert border_band()[BORDER_PX - 1, 100] and not border_band()[BORDER_PX, 100]
    # the mediastinum lies between the lungs, below the diaphragm lies under them
    assert atlas[100, 112] == LABELS["mediastinum"] and atlas[190, 112] == LABELS["below_diaphragm"]
    assert atlas[100, 70] == LABELS["lung"] and atlas[100, 154] == LABELS["lung"]
    loc = map_location(np.ones((224, 224)), atlas)
    assert sum(loc[f"{r}_mass"] for r in REGIONS) == pytest.approx(1.0)
    assert all(loc[f"{r}_mass"] == pytest.approx(loc[f"{r}_area"]) for r in REGIONS)  # uniform map = area shares


def test_map_location_shares():
    atlas = atlas_from_probability(_two_lungs())
    edge = np.zeros((224, 224))
    edge[-10:] = 1.0
    assert map_location(edge, atlas)["border_mass"] == pytest.approx(1.0)
    lung = (atlas == LABELS["lung"]).astype(float)
    assert map_location(lung * 3, atlas)["lung_mass"] == pytest.approx(1.0)
    assert map_location(np.zeros((224, 224)), atlas)["border_mass"] == 0.0  # no mass: shares 0, no NaN
    assert map_location(np.full((14, 14), 2.0), atlas)["lung_mass"] == pytest.approx(float((atlas == 1).mean()), abs=0.01)


def test_lung_weight_keeps_the_lungs_and_lowers_the_rest():
    atlas = atlas_from_probability(_two_lungs())
    w = lung_weight(atlas, 0.25)
    assert w[atlas == LABELS["lung"]].min() == pytest.approx(1.0)
    assert w[atlas == LABELS["border"]].max() == pytest.approx(0.25)
    assert w.min() == pytest.approx(0.25) and w[200, 112] == pytest.approx(0.25)


def test_shipped_atlas_looks_like_lungs():
    atlas = load_atlas()
    lung = atlas == LABELS["lung"]
    assert 0.2 < lung.mean() < 0.4
    assert lung[:, :112].sum() == pytest.approx(lung[:, 112:].sum(), rel=0.3)  # two lungs of similar size
    rows = np.flatnonzero(lung.any(axis=1))
    assert 20 < rows.min() < 60 and 140 < rows.max() < 200  # apices to costophrenic angles
    assert np.array_equal(atlas == LABELS["border"], border_band())


def _normal_distances(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = 0.3 + 0.1 * np.linspace(0, 1, 14)[:, None]  # positions differ in their typical distance
    return (base + 0.02 * rng.standard_normal((n, 14, 14))).astype(np.float32)


def test_patch_scale_puts_one_percent_of_normal_films_above_one():
    from medsight.vision.detectors.patchcore import region_mask

    atlas = atlas_from_probability(_two_lungs())
    weight = lung_weight(atlas, 0.5)
    scored = region_mask()
    normals = _normal_distances(400)
    scale = map_scale.PatchScale.fit(normals, scored, weight)
    maps = scale.to_maps(normals, weight)
    assert maps.shape == (400, 224, 224) and maps.min() >= 0
    assert np.mean(maps.reshape(400, -1).max(1) > 1.0) == pytest.approx(0.01, abs=0.006)
    fresh = scale.to_maps(_normal_distances(200, seed=1), weight)
    assert np.median(fresh.reshape(200, -1).max(1)) < 0.8  # a typical normal film is quiet
    sick = _normal_distances(1, seed=2)
    sick[0, 6:9, 3:6] += 0.15  # a patch of unusual distances in the right lung field
    m = scale.to_maps(sick, weight)[0]
    assert m.max() > 2 and 100 <= np.unravel_index(m.argmax(), m.shape)[0] <= 150
    edge = _normal_distances(1, seed=3)
    edge[0, 0, :] += 5  # positions the detector does not score stay 0
    assert scale.to_maps(edge, weight)[0][:8].max() == 0
    again = map_scale.PatchScale.from_dict(scale.to_dict())
    assert np.allclose(again.to_maps(sick, weight), m[None], atol=1e-4)


def test_scales_apply_only_to_the_detector_they_were_fitted_with(tmp_path):
    from medsight.vision.detectors.patchcore import PatchCore, region_mask
    from medsight.vision.scoring import Calibration

    det = PatchCore("pc")
    det.calibration = Calibration.from_normal_scores(np.linspace(0, 1, 50))
    patch = map_scale.PatchScale.fit(_normal_distances(100), region_mask(), np.ones((224, 224), np.float32))
    map_scale.MapScales("pc", map_scale.fingerprint(det), patch, "test").save(tmp_path)
    assert map_scale.scales_for(det, tmp_path).patch.n_films == 100
    other = PatchCore("pc")
    other.calibration = Calibration.from_normal_scores(np.linspace(0, 1.1, 50))  # refitted: another calibration
    assert map_scale.scales_for(other, tmp_path) is None


def test_score_scale_of_cams():
    from medsight.vision.detectors.patchcore import PatchCore
    from medsight.vision.scoring import Calibration

    det = PatchCore("pc")
    det.calibration = Calibration.from_normal_scores(np.linspace(0, 100, 101))
    s = map_scale.ScoreScale.of(det)
    assert (s.low, s.q99) == pytest.approx((1, 99))
    assert s.excess(-5) == 0 and s.excess(1) == 0 and s.excess(50) == pytest.approx(0.5)
    assert s.excess(99) == pytest.approx(1) and s.excess(197) == pytest.approx(2)
    det.calibration = Calibration.from_normal_scores([0.1, 0.2])  # too few normals: no scale
    assert map_scale.ScoreScale.of(det) is None


def test_quiet_map_renders_as_the_radiograph_and_bar_says_what_colours_mean():
    from medsight.vision.explain import stretch
    from medsight.vision.render import clahe, colour_bar, render_overlay

    gray = (np.arange(224 * 224).reshape(224, 224) % 251).astype(np.uint8)
    quiet = np.repeat(np.linspace(0, 0.02, 224, dtype=np.float32)[None], 224, axis=0)
    base = np.repeat(clahe(gray)[..., None], 3, axis=2)
    out = render_overlay(gray, quiet, vmax=2.0)
    assert np.abs(out.astype(int) - base).max() <= 1  # on the normal scale a quiet film stays quiet
    assert np.abs(render_overlay(gray, stretch(quiet)).astype(int) - base).max() > 50  # stretched, it glows
    strong = render_overlay(gray, np.full((224, 224), 3.0, np.float32), vmax=2.0)
    assert strong[..., 0].mean() > base[..., 0].mean() + 40  # above the top of the scale: saturated yellow-red
    bar = colour_bar(2.0, caption=map_scale.PATCH_UNIT)
    assert bar.ndim == 3 and bar.shape[1] == 448 and bar.shape[0] > 40
    assert tuple(bar[8, 11]) == (0, 0, 0) and bar[8, 436, 0] == 255  # black at 0, bright at the top
