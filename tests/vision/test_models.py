"""The paper's networks and math: parameter counts, shapes, ELBO and fusion against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from medsight.vision.scoring import Calibration, fused_score
from medsight.vision.vae import FeatureVAE, elbo_loss, kl_divergence
from medsight.vision.vit import LatentViT


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_vae_parameter_count_and_shapes():
    vae = FeatureVAE()
    assert n_params(vae) == 1_318_656  # paper 4.3
    x = torch.randn(5, 512)
    x_hat, mu, logvar, z = vae.eval()(x)
    assert x_hat.shape == (5, 512) and mu.shape == logvar.shape == z.shape == (5, 256)
    assert torch.equal(z, mu)  # eval mode: no sampling


def test_vit_parameter_count_and_shapes():
    vit = LatentViT()
    # paper reports 1,209,729; standard encoder layers with this table give 1,195,521 (see vit.py docstring)
    assert n_params(vit) == 1_195_521
    assert abs(n_params(vit) - 1_209_729) / 1_209_729 < 0.012
    vit.eval()
    z = torch.randn(3, 256)
    p = vit(z)
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()
    att = vit.cls_attention(z)
    assert att.shape == (3, 8) and torch.allclose(att.sum(1), torch.ones(3), atol=1e-5)
    assert vit.pos_embed.shape == (1, 9, 128)


def test_kl_and_elbo_match_hand_computation():
    mu = torch.tensor([[1.0, 0.0], [0.5, -0.5]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # KL = -1/2 sum(1 + logvar - mu^2 - exp(logvar))
    kl0 = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2) - 0 - 2))
    kl1 = -0.5 * ((1 - 0.25 - 1) + (1 - 0.25 - 1))
    assert torch.allclose(kl_divergence(mu, logvar), torch.tensor([kl0, kl1]), atol=1e-6)
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x_hat = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    recon = ((0 + 4) / 2 + (1 + 1) / 2) / 2
    loss, r, k = elbo_loss(x_hat, x, mu, logvar, beta=0.001)
    assert r.item() == pytest.approx(recon)
    assert k.item() == pytest.approx((kl0 + kl1) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(recon + 0.001 * (kl0 + kl1) / 2, abs=1e-6)


def test_fused_score_matches_paper_formula():
    stats = {"recon_mean": 0.01386, "recon_std": 0.00390, "kl_mean": 0.6930, "kl_std": 0.0804}  # paper 6.3
    recon, kl, vit = 0.01776, 0.6930, 0.25  # recon one sigma above the mean, KL at the mean
    sig = lambda v: 1 / (1 + math.exp(-v))
    expected = 0.4 * sig(1.0) + 0.2 * sig(0.0) + 0.4 * 0.25
    assert fused_score(recon, kl, vit, stats) == pytest.approx(expected, abs=1e-6)
    assert fused_score(np.array([recon, 0.0]), np.array([kl, 0.0]), np.array([vit, 0.0]), stats).shape == (2,)


def test_calibration_threshold_and_bands_from_normals():
    scores = np.linspace(0, 1, 1001)
    cal = Calibration.from_normal_scores(scores)
    assert cal.threshold == pytest.approx(0.95) and cal.medium == pytest.approx(0.80)
    assert cal.risk_band(0.5) == "LOW" and cal.risk_band(0.9) == "MEDIUM" and cal.risk_band(0.97) == "HIGH"
    assert cal.normal_percentile(0.5) == pytest.approx(50, abs=0.2)
    assert Calibration.from_dict(cal.to_dict()).threshold == cal.threshold
