"""Site profiles (issue 13): fitting from a site's normal films, storage under $MEDSIGHT_HOME, the adapted
detectors (shipped ones untouched), and the CLI (`site fit / list / remove`, `score --site`, `evaluate --site`).
Real backbone features of NIH dev films from ../shared; the tests skip without them or without trained weights."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from medsight import config
from medsight.vision.site_fit import files_sha256, fit_profile, group_folds
from medsight.vision.sites import SiteError, SiteProfile, check_name, list_profiles, remove_profile

DETECTORS = ("fused_lungs", "knn_fused", "patchcore")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")  # feature caches of the CLI tests
    return tmp_path / "home"


def test_folds_keep_a_patients_films_together():
    groups = ["a", "a", "b", "c", "c", "c", "", "", "d", "e", "f", "g"]
    folds = group_folds(groups, 5)
    assert len(folds) == 5
    held = np.concatenate([h for _, h in folds])
    assert sorted(held) == list(range(len(groups)))  # every film held out exactly once
    for ref, h in folds:
        assert not set(ref) & set(h)
        for pid in ("a", "c"):
            idx = {i for i, g in enumerate(groups) if g == pid}
            assert idx <= set(h) or not idx & set(h)


def test_names_and_zip_uploads():
    from medsight.sites.fitting import read_zip

    for bad in ("../x", "", "a/b", ".hidden", "x" * 65):
        with pytest.raises(SiteError):
            check_name(bad)
    assert check_name("st_marys-2024.v1") == "st_marys-2024.v1"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("films/a.png", b"png bytes")
        z.writestr("films/readme.txt", b"not a film")
        z.writestr("__MACOSX/films/._a.png", b"resource fork")
        z.writestr("films/b.DCM", b"dicom bytes")
    assert [n for n, _ in read_zip(buf.getvalue())] == ["films/a.png", "films/b.DCM"]
    with pytest.raises(SiteError, match="not a readable zip"):
        read_zip(b"PK not really")
    assert files_sha256(["b", "a"]) == files_sha256(["a", "b"]) != files_sha256(["a", "c"])


@pytest.fixture(scope="module")
def nih(cxr_manifest, cpu_backbone):
    """Feature maps of 24 dev `nih_talo` normals (with patient ids) and 6 pneumonia films, and the shipped detectors."""
    from medsight.imaging.load import load_image
    from medsight.training.dataset import read_manifest
    from medsight.training.gate_eval import _maps
    from medsight.vision.detectors import available_detectors, load_detector

    missing = [d for d in DETECTORS if d not in available_detectors(config.WEIGHTS_DIR)]
    if missing:
        pytest.skip(f"trained detectors {missing} not in {config.WEIGHTS_DIR}")
    df = read_manifest(cxr_manifest, "dev")
    df = df[df["source"] == "nih_talo"]
    picks = pd.concat([df[df.is_normal == 1].sample(24, random_state=0), df[df.is_normal == 0].sample(6, random_state=0)])
    maps = _maps(cpu_backbone, [load_image(p) for p in picks["path"]]).astype(np.float32)
    dets = {n: load_detector(config.WEIGHTS_DIR, n) for n in DETECTORS}
    return picks.reset_index(drop=True), maps, dets


def _scores(det, maps):
    return det.signals(maps)["score"]


def test_profile_adapts_copies_and_leaves_the_shipped_detectors_alone(nih):
    picks, maps, dets = nih
    normal = maps[:24]
    before = {n: _scores(d, maps).copy() for n, d in dets.items()}
    profile = fit_profile("site_a", normal, picks["file"][:24].tolist(), dets, picks["patient_id"][:24].tolist(), "test")
    adapted = {n: profile.adapt(d) for n, d in dets.items()}
    for n, d in dets.items():  # the shared detectors still score as shipped
        assert np.allclose(_scores(d, maps), before[n])
        assert adapted[n] is not d and adapted[n].calibration.threshold != d.calibration.threshold
    knn, shipped_knn = adapted["knn_fused"], dets["knn_fused"]
    assert knn.components[0] == "relu4_3_full" and len(knn.banks[0]) == 24  # the site's normals are the bank
    # centred members keep our reference (method "auto"); the site's mean is what "site" centres on
    assert knn.banks[1] is shipped_knn.banks[1] and knn.means[1] is shipped_knn.means[1]
    site = profile.tensors["pooled.relu4_3.full"].float().numpy()
    alt = SiteProfile("alt", profile.meta | {"method": {"knn_bank": "site", "patch_bank": "site"}}, profile.tensors).adapt(shipped_knn)
    assert all(len(b) == 24 for b in alt.banks) and np.allclose(alt.means[1], site.mean(0), atol=1e-6)
    assert adapted["patchcore"].bank.shape[0] == profile.tensors["patch_bank"].shape[0] <= 24 * 132
    fused = adapted["fused_lungs"]
    assert fused.parts["patchcore"].bank is not dets["patchcore"].bank
    # the threshold is the 95th percentile of out-of-fold site normals; every film was held out once
    cal = fused.calibration
    assert cal.n_normals == 24 and cal.threshold == pytest.approx(np.quantile(cal.normal_scores, 0.95))
    assert profile.meta["n_films"] == 24 and profile.meta["n_patients"] == picks["patient_id"][:24].nunique()
    # the site's student-teacher head is one more part of the fusion (not of the shipped one), with its own z
    assert fused.components[-1] == "site_student.score" and len(fused.config["z"]) == len(fused.components)
    assert "site_student.score" not in dets["fused_lungs"].components and "site_student" not in dets["fused_lungs"].parts
    sig = fused.signals(maps)
    assert np.isfinite(sig["score"]).all() and (sig["site_student.score"] > 0).all()
    assert any(k.startswith("site_student.") for k in profile.tensors)
    # a film inside the reference is nearer to it than when it was held out (k-NN distance to itself is 0)
    own = knn.signals(normal)["relu4_3_full"]
    assert (own <= profile_oof_bound(profile, knn, normal) + 1e-6).all()
    # fitted against these weights: another version of a detector is refused
    other = dets["patchcore"].__class__("patchcore", dets["patchcore"].config)
    other.card = {"trained_at": "1999-01-01 00:00 UTC"}
    with pytest.raises(SiteError, match="another version"):
        profile.adapt(other)


def profile_oof_bound(profile, knn, normal):
    """The same films' distances when the bank is the other films only (leave-one-out upper reference)."""
    site = profile.tensors["pooled.relu4_3.full"].float().numpy()
    out = []
    for i in range(len(site)):
        bank = np.delete(site, i, axis=0)
        sim = site[i] @ bank.T
        out.append(float((1 - np.sort(sim)[::-1][: knn.config["k"]]).mean()))
    return np.array(out)


def test_saved_profile_roundtrip_pipeline_and_listing(nih, home):
    from medsight.vision.pipeline import AnomalyPipeline

    picks, maps, dets = nih
    profile = fit_profile("site_b", maps[:24], picks["file"][:24].tolist(), dets, None, "test")
    folder = profile.save()
    assert folder == home / "sites" / "site_b" and (folder / "profile.safetensors").is_file()
    meta = json.loads((folder / "profile.json").read_text())
    assert meta["n_films"] == 24 and len(meta["files_sha256"]) == 64 and meta["created"].endswith("UTC")
    loaded = SiteProfile.load("site_b")
    a, b = profile.adapt(dets["fused_lungs"]), loaded.adapt(dets["fused_lungs"])
    assert np.allclose(_scores(a, maps), _scores(b, maps), atol=1e-3)  # banks stored as float16
    assert [p["name"] for p in list_profiles()] == ["site_b"]
    shipped_threshold = dets["fused_lungs"].calibration.threshold
    # (no backbone needed to check what load() builds)
    with_site = AnomalyPipeline.load("fused_lungs", backbone=object(), get_detector=dets.get, site="site_b")
    assert with_site.detector.calibration.threshold == pytest.approx(loaded.calibration("fused_lungs").threshold)
    assert with_site.detector.site == "site_b"
    without = AnomalyPipeline.load("fused_lungs", backbone=object(), get_detector=dets.get)
    assert without.detector is dets["fused_lungs"] and without.detector.calibration.threshold == shipped_threshold
    remove_profile("site_b")
    assert list_profiles() == []
    with pytest.raises(SiteError, match="no site profile named 'site_b'"):
        SiteProfile.load("site_b")


def test_cli_site_fit_list_score_evaluate_remove(nih, tmp_path, capsys):
    import shutil

    from medsight.cli import main

    picks, _, _ = nih
    assert main(["site", "list"]) == 0 and "no site profiles" in capsys.readouterr().out
    assert main(["site", "remove", "nope"]) == 2 and "no site profile named 'nope'" in capsys.readouterr().err
    film = picks["path"].iloc[25]
    assert main(["score", film, "--site", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one sentence
    films = tmp_path / "films"
    films.mkdir()
    for p in picks["path"][:12]:
        shutil.copy(p, films)
    assert main(["site", "fit", "ward3", "--images", str(films), "--weights", str(config.WEIGHTS_DIR)]) == 0
    out = capsys.readouterr().out
    assert "site profile 'ward3': 12 normal films" in out and "fused_lungs: threshold" in out
    assert main(["site", "list", "--json"]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == ["ward3"]
    assert main(["score", film, "--json", "--site", "ward3"]) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[0])
    assert res["site"] == "ward3" and res["threshold"] == pytest.approx(SiteProfile.load("ward3").calibration(res["detector"]).threshold, abs=1e-5)
    assert main(["score", film, "--json"]) == 0
    assert "site" not in json.loads(capsys.readouterr().out.splitlines()[0])  # without --site nothing changes
    manifest = tmp_path / "m.csv"
    picks.assign(file=picks["path"]).drop(columns="path").to_csv(manifest, index=False)
    assert main(["evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "ev"), "--detector", "fused_lungs",
                 "--no-plots", "--stability-n", "0", "--site", "ward3"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["site_profile"]["name"] == "ward3" and metrics["site_profile"]["n_films"] == 12
    assert metrics["confusion"]["threshold"] == pytest.approx(SiteProfile.load("ward3").calibration("fused_lungs").threshold)
    assert main(["site", "remove", "ward3"]) == 0 and list_profiles() == []


def test_a_manifest_of_several_sites_needs_a_source(tmp_path, capsys):
    """The shared dev manifest mixes three sources; a profile of all of them is not one site's: one sentence, exit 2,
    before any feature is extracted (`--source all` pools them on purpose)."""
    from medsight.cli import main

    manifest = tmp_path / "m.csv"
    pd.DataFrame({"file": ["a.png", "b.png", "c.png", "d.png"], "label": ["normal"] * 3 + ["pneumonia"],
                  "is_normal": [1, 1, 1, 0], "split": ["dev"] * 4, "source": ["site_a", "site_a", "site_b", "site_b"],
                  "patient_id": ["p1", "p2", "p3", "p4"]}).to_csv(manifest, index=False)
    assert main(["site", "fit", "mixed", "--manifest", str(manifest), "--split", "dev"]) == 2
    err = capsys.readouterr().err
    assert "come from 2 sources (site_a 2, site_b 1)" in err and "--source" in err and err.count("\n") == 1
    assert list_profiles() == []


def test_uploaded_films_and_a_zip_fit_a_session_profile(nih, cpu_backbone):
    """The app's path: bytes in memory (files and a zip), features through the pipeline's backbone with progress,
    unreadable files left out and listed, the profile not saved until asked."""
    from medsight.sites.fitting import fit_from_uploads, read_zip
    from medsight.vision.pipeline import AnomalyPipeline

    picks, _, dets = nih
    films = [(f"film{i}.jpg", open(p, "rb").read()) for i, p in enumerate(picks["path"][:12])]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in films[6:]:
            z.writestr(f"normals/{name}", data)
    items = films[:6] + read_zip(buf.getvalue()) + [("broken.png", b"\x89PNG\r\n\x1a\n not an image")]
    pipe = AnomalyPipeline.load("fused_lungs", backbone=cpu_backbone, get_detector=dets.get)
    seen = []
    profile, skipped = fit_from_uploads("upload_site", items, pipe, dets, extract_progress=lambda f, t: seen.append(f))
    assert profile.meta["n_films"] == 12 and not profile.saved and list_profiles() == []
    assert len(skipped) == 1 and skipped[0].startswith("broken.png")
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    before = profile.meta["before"]["fused_lungs"]
    assert len(before["shipped_scores"]) == 12 and 0 <= before["shipped_flag_rate"] <= 1
    from medsight.sites.views import before_after_figure, summary_rows

    rows = {r["detector"]: r for r in summary_rows(profile)}
    assert {r["reference"] for r in rows.values()} == {"site normals"} and set(rows) == set(DETECTORS)
    fig = before_after_figure(profile, "fused_lungs")
    assert len(fig.data) == 2 and sum(len(t.x) for t in fig.data) == 24  # the same 12 films, before and after
    profile.save()
    assert [p["name"] for p in list_profiles()] == ["upload_site"]


def test_the_site_student_scores_the_same_through_the_grad_cam_path(nih, cpu_backbone):
    """Grad-CAM of the default detector with a profile goes through the student's differentiable path; its scores
    equal the feature-map path's, and the map is not empty."""
    from medsight.imaging.load import load_image
    from medsight.imaging.preprocess import to_square
    from medsight.vision.explain import cams_on, private_backbone

    picks, maps, dets = nih
    profile = fit_profile("site_c", maps[:24], picks["file"][:24].tolist(), dets, None, "test", before=False)
    fused = profile.adapt(dets["fused_lungs"])
    grays = [to_square(load_image(p).pixels) for p in picks["path"][24:26]]
    cams, scores = cams_on(private_backbone(cpu_backbone), fused, grays)
    assert np.allclose(scores, fused.signals(maps[24:26])["score"], atol=1e-2)
    assert cams["gradcam"].shape == (2, 224, 224) and (cams["gradcam"].max(axis=(1, 2)) > 0).all()
