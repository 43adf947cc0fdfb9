"""A tiny end-to-end run on real shared radiographs: train on a few dozen normals, evaluate on a few dozen dev
images, check the metrics file, plots and report, then score through the CLI with the trained weights."""

import json

import pytest

from medsight import config
from medsight.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cxr_manifest):
    root = tmp_path_factory.mktemp("tiny")
    mp = pytest.MonkeyPatch()
    mp.setattr(config, "CACHE_DIR", root / "cache")
    weights = root / "weights"
    from medsight.training.workflow import train_from_manifest

    summary = train_from_manifest(cxr_manifest, weights, "train", limit=40, vae_epochs=2, vit_epochs=2,
                                  detectors=("paper", "knn_fused", "patchcore", "fused_lungs"), device="cpu", log=lambda *_: None)
    yield root, weights, summary
    mp.undo()


def test_training_writes_calibrated_detectors(tiny_run):
    root, weights, summary = tiny_run
    assert summary["n_train_normals"] == 40 and summary["n_holdout"] >= 1
    meta = json.loads((weights / "paper.json").read_text())
    assert meta["calibration"]["threshold"] > 0 and "No pathology image" in meta["card"]["trained_on"]
    assert len(meta["card"]["history"]["vae"]["train_loss"]) == 2
    assert (weights / "paper.safetensors").exists() and (weights / "knn_fused.safetensors").exists()


def test_evaluate_writes_metrics_plots_report(tiny_run, cxr_manifest):
    root, weights, _ = tiny_run
    out = root / "eval"
    assert main(["evaluate", "--manifest", str(cxr_manifest), "--split", "dev", "--out", str(out),
                 "--weights", str(weights), "--limit", "48", "--stability-n", "6"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 48 and 0 <= m["auroc"] <= 1 and len(m["auroc_ci95"]) == 2
    for key in ("auprc", "sensitivity_at_95_specificity", "per_label", "by_age", "by_source", "confusion", "components"):
        assert key in m
    assert m["primary_detector"] == "fused_lungs"  # the default detector
    assert set(m["detectors"]["paper"]["components"]) == {"recon", "kl", "vit", "recon_kl", "fused"}
    assert set(m["detectors"]) == {"paper", "knn_fused", "patchcore", "fused_lungs"}
    assert set(m["stability"]) >= {"resample", "window"} and 0 <= m["stability"]["resample"]["flip_rate"] <= 1
    c = m["confusion"]
    assert c["tp"] + c["fp"] + c["tn"] + c["fn"] == 48
    for plot in ("roc.png", "score_distributions.png", "confusion_matrix.png", "training_curves.png", "latent_umap.png"):
        assert (out / plot).stat().st_size > 1000, plot
    assert "ablation" in (out / "report.md").read_text()


def test_cli_score_json_with_trained_weights(tiny_run, real_radiographs, capsys, monkeypatch):
    root, weights, _ = tiny_run
    monkeypatch.setattr(config, "WEIGHTS_DIR", weights)
    path = str(real_radiographs[0][0])
    assert main(["score", path, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert set(rec) >= {"file", "anomaly_score", "risk", "components", "threshold", "latency_ms"}
    # scores are on the detector's own scale; the risk band and the flag follow the stored threshold
    assert rec["risk"] in ("LOW", "MEDIUM", "HIGH") and rec["detector"] == "fused_lungs"
    assert (rec["risk"] == "HIGH") == (rec["anomaly_score"] >= rec["threshold"]) == rec["flagged"]
    assert 0 <= rec["normal_percentile"] <= 100


def test_cli_score_bad_file_is_one_clear_line(tiny_run, tmp_path, capsys, monkeypatch):
    root, weights, _ = tiny_run
    monkeypatch.setattr(config, "WEIGHTS_DIR", weights)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    assert main(["score", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err
