"""Feature-space detectors and explanations on real backbone features of a few shared radiographs."""

import numpy as np
import pytest

from medsight.imaging import load_image
from medsight.vision.backbone import build_offline_weights, load_backbone
from medsight.vision.detectors import load_detector
from medsight.vision.detectors.knn import PooledKNN
from medsight.vision.detectors.patchcore import PatchCore, greedy_coreset, region_mask
from medsight.vision.explain import available_methods, explain
from medsight.vision.pipeline import AnomalyPipeline
from medsight.vision.render import adaptive_alpha, clinical_lut, render_overlay


@pytest.fixture(scope="module")
def setup(cxr_manifest):
    import pandas as pd

    df = pd.read_csv(cxr_manifest)
    normals = df[(df.split == "train")].sample(14, random_state=0)
    grays = [load_image(cxr_manifest.parent / f).pixels for f in normals.file]
    build_offline_weights()
    backbone = load_backbone("offline", "cpu")
    pipe = AnomalyPipeline.__new__(AnomalyPipeline)  # detectors are fitted per test below
    pipe.backbone, pipe.ood_state, pipe.map_detector = backbone, None, None
    maps = np.concatenate([pipe.maps(grays[i : i + 7]) for i in (0, 7)])
    return pipe, grays, maps


def test_knn_fits_scores_and_roundtrips(setup, tmp_path):
    pipe, grays, maps = setup
    det = PooledKNN.fit(maps[:10], maps[10:], k=3, log=lambda *_: None)
    assert det.components == ("relu4_3_full",)
    assert det.banks[0].shape == (10, 512)
    own = det.signals(maps[:10].astype(np.float32))["score"]
    held = det.signals(maps[10:].astype(np.float32))["score"]
    assert own.max() < held.min() + 0.05  # bank members are (near-)zero distance from themselves
    det.save(tmp_path)
    again = load_detector(tmp_path, "knn")
    assert np.allclose(again.score(maps[10:].astype(np.float32)), held, atol=1e-3)
    assert again.calibration.threshold == pytest.approx(det.calibration.threshold)


def test_patchcore_map_finds_a_pasted_anomaly(setup):
    pipe, grays, maps = setup
    det = PatchCore.fit(maps[:12], maps[12:], bank_images=12, bank_size=800, log=lambda *_: None)
    assert det.bank.shape == (800, 768)
    g = grays[12].copy()
    g[100:150, 60:110] = 255  # a bright square inside the lung field
    pm = pipe.maps([g])
    amap = det.anomaly_map(pm)[0]
    y, x = np.unravel_index(np.argmax(amap), amap.shape)
    assert 5 <= y <= 10 and 2 <= x <= 8, (y, x)  # the 14x14 cell of the square (rows 100-150, cols 60-110)
    assert det.score(pm)[0] > det.score(maps[12:13])[0]
    inside = region_mask(**det.config["region"])
    assert (amap[~inside] == amap[inside].min()).all()  # borders are never scored above the lung field


def test_greedy_coreset_covers_clusters():
    import torch

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)) * 10
    x = torch.tensor(np.concatenate([c + rng.normal(size=(200, 16)) * 0.1 for c in centres]), dtype=torch.float32)
    idx = greedy_coreset(x, 5, proj_dim=8)
    assert len(set((i // 200) for i in idx)) == 5  # one point from every cluster


def test_explain_methods_and_rendering(setup):
    pipe, grays, maps = setup
    pipe.detector = PatchCore.fit(maps[:12], maps[12:], bank_images=12, bank_size=400, log=lambda *_: None)
    methods = available_methods(pipe)
    assert methods[0] == "anomaly_map" and "gradcam" in methods
    for method in ("anomaly_map", "gradcam"):
        m = explain(pipe, grays[12], method)
        assert m.shape == (224, 224) and m.min() >= 0 and m.max() == pytest.approx(1.0)
    res, heat, method = pipe.score_with_map(load_image(_png(grays[12])))
    assert method == "anomaly_map" and heat.shape == (224, 224) and res.risk in ("LOW", "MEDIUM", "HIGH")
    rgb = render_overlay(grays[12], heat, opacity=0.65, threshold=0.2, use_clahe=True, clinical=True)
    assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8


def test_clinical_lut_and_alpha():
    lut = clinical_lut()
    assert tuple(lut[0]) == (0, 0, 0) and lut[-1][0] == 255 and lut[-1][1] == 255  # black -> bright yellow
    assert lut[128][0] > lut[128][1] > lut[128][2]  # red/orange in the middle
    h = np.linspace(0, 1, 101)
    a = adaptive_alpha(h)
    assert a[:30].max() == 0 and a[-1] == pytest.approx(0.65)  # only the top 70% glows, max alpha 0.65


def _png(gray):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG")
    return buf.getvalue()


def test_companion_patch_map_for_a_detector_without_one(setup):
    pipe, grays, maps = setup
    knn = PooledKNN.fit(maps[:10], maps[10:], k=3, log=lambda *_: None)
    pc = PatchCore.fit(maps[:12], maps[12:], bank_images=12, bank_size=400, log=lambda *_: None)
    combo = AnomalyPipeline(pipe.backbone, knn, map_detector=pc)
    assert available_methods(combo)[0] == "anomaly_map:patchcore"
    res, heat, method = combo.score_with_map(load_image(_png(grays[12])))
    assert method == "anomaly_map:patchcore" and heat.shape == (224, 224) and res.detector == "knn"
    assert np.allclose(heat, explain(combo, grays[12], method), atol=1e-5)
    # a detector with its own map keeps it
    assert AnomalyPipeline(pipe.backbone, pc, map_detector=pc).map_detector is None


def test_fusion_of_detector_signals_standardised_on_normals(setup, tmp_path):
    from medsight.vision.detectors.fusion import FusionDetector

    pipe, grays, maps = setup
    PooledKNN.fit(maps[:10], maps[10:], name="k", k=3, log=lambda *_: None).save(tmp_path)
    PatchCore.fit(maps[:12], maps[12:], name="p", bank_images=12, bank_size=300, log=lambda *_: None).save(tmp_path)
    fused = FusionDetector.fit(None, maps[10:], name="f", parts=[["k", "relu4_3_full"], ["p", "mean_patch_distance"]],
                               directory=tmp_path, log=lambda *_: None)
    fused.save(tmp_path)
    again = load_detector(tmp_path, "f")
    x = maps[10:].astype(np.float32)
    sig = again.signals(x)
    (m1, s1), (m2, s2) = again.config["z"]
    manual = ((sig["k.relu4_3_full"] - m1) / s1 + (sig["p.mean_patch_distance"] - m2) / s2) / np.sqrt(2)
    assert np.allclose(sig["score"], manual, atol=1e-5)
    assert abs(float(np.mean(sig["score"]))) < 1e-3  # z-scores centred on the held-out normals they were fitted on
    assert again.has_anomaly_map and again.anomaly_map(x).shape == (len(x), 14, 14)
    pipe.detector = again
    assert "gradcam" in available_methods(pipe)
    g = explain(pipe, grays[12], "gradcam")
    assert g.shape == (224, 224) and g.max() == pytest.approx(1.0)


def test_patch_distances_are_reused_not_corrupted_by_the_map(setup):
    pipe, grays, maps = setup
    det = PatchCore.fit(maps[:12], maps[12:], bank_images=12, bank_size=300, log=lambda *_: None)
    x = maps[12:13].astype(np.float32)
    before = det.signals(x)["score"].copy()
    amap = det.anomaly_map(x)
    assert det.patch_distances(x) is det.patch_distances(x)  # same maps object: computed once
    assert np.array_equal(det.signals(x)["score"], before)
    assert np.allclose(det.anomaly_map(x.copy()), amap)  # a new array is recomputed to the same values


def test_multiscale_vae_fits_on_normals_roundtrips_and_explains(setup, tmp_path):
    import torch

    from medsight.vision.detectors.multiscale_vae import MultiScaleVAE

    pipe, grays, maps = setup
    f32 = maps.astype(np.float32)
    det = MultiScaleVAE.fit(f32[:10], f32[10:], aug_maps=f32[:4], epochs=3, hidden=[64, 32], latent=8, log=lambda *_: None)
    assert det.components == ("recon_relu3_3", "recon_relu4_3", "recon_relu5_3") and det.cam_layer == 28
    sig = det.signals(f32)
    held = sig["score"][10:]
    # the z-scores are standardised on the held-out normals: mean 0 per block, and the fused score follows
    for j, name in enumerate(det.components):
        mu, sd = det.config["z"][j]
        assert np.mean((sig[name][10:] - mu) / sd) == pytest.approx(0.0, abs=1e-4)
    assert det.calibration.threshold == pytest.approx(np.percentile(held, 95), rel=0.05, abs=0.05)
    det.save(tmp_path)
    again = load_detector(tmp_path, "paper_multiscale")
    assert np.allclose(again.score(f32), sig["score"], atol=1e-5)
    # the differentiable score from backbone taps matches the cached-feature score (for Grad-CAM)
    from medsight.imaging.preprocess import to_backbone_tensor

    with torch.no_grad():
        taps = pipe.backbone(torch.cat([to_backbone_tensor(g) for g in grays[:2]]))
        t = again.torch_score(taps).numpy()
    assert np.allclose(t, sig["score"][:2], atol=0.15 * max(1.0, float(np.abs(sig["score"][:2]).max())))
    pipe.detector = again
    assert "gradcam" in available_methods(pipe)
    m = explain(pipe, grays[12], "gradcam")
    assert m.shape == (224, 224) and np.isfinite(m).all()
