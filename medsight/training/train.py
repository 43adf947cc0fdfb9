"""Training phases of the paper's detector (section 5), honestly unsupervised.

Phase 1 fits the VAE on normal features (clean + augmented views). Phase 2 fits the ViT to separate latents of
normal images (label 0) from latents of synthetic anomalies made from the same training normals (label 1): no
pathology image is used anywhere. Early stopping and calibration use a held-out slice of the training normals.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from medsight.vision.detectors.paper import PaperDetector
from medsight.vision.scoring import Calibration
from medsight.vision.vae import elbo_loss


@dataclass
class PhaseConfig:
    epochs: int
    lr: float
    weight_decay: float = 1e-5
    batch_size: int = 32
    patience: int = 10  # early stopping
    plateau_patience: int = 3
    plateau_factor: float = 0.5


VAE_PHASE = PhaseConfig(epochs=50, lr=1e-4)
VIT_PHASE = PhaseConfig(epochs=30, lr=5e-5)
BETA = 1e-3


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def holdout_split(n: int, groups: list | None = None, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, holdout): a `fraction` of groups (patients where known, else images) held out."""
    rng = np.random.default_rng(seed)
    keys = np.asarray([g if isinstance(g, str) and g else f"#{i}" for i, g in enumerate(groups)] if groups is not None
                      else [f"#{i}" for i in range(n)])
    uniq = np.unique(keys)
    held = set(rng.choice(uniq, max(1, int(round(fraction * len(uniq)))), replace=False))
    mask = np.array([k in held for k in keys])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _run_phase(model: nn.Module, cfg: PhaseConfig, train_step, val_fn, n_train: int, device: str, log=print,
               name: str = "phase") -> History:
    """Generic loop: AdamW, ReduceLROnPlateau on the validation loss, early stopping on it, best weights kept.
    On CUDA: FP16 autocast, gradient scaling, and 4-step gradient accumulation (effective batch 4x)."""
    cuda = device.startswith("cuda")
    accumulate = 4 if cuda else 1
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    hist, best, best_state, bad = History(), math.inf, None, 0
    t0 = time.time()
    gen = torch.Generator().manual_seed(0)
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(n_train, generator=gen)
        total, steps = 0.0, 0
        opt.zero_grad(set_to_none=True)
        for i in range(0, n_train, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
                loss = train_step(idx)
            scaler.scale(loss / accumulate).backward()
            steps += 1
            if steps % accumulate == 0 or i + cfg.batch_size >= n_train:
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
            total += float(loss.detach())
        model.eval()
        with torch.no_grad():
            val_loss, val_metric = val_fn()
        sched.step(val_loss)
        hist.train_loss.append(total / max(steps, 1))
        hist.val_loss.append(float(val_loss))
        hist.val_metric.append(float(val_metric))
        log(f"[{name}] epoch {epoch + 1}/{cfg.epochs} train {hist.train_loss[-1]:.4f} val {val_loss:.4f} "
            f"metric {val_metric:.4f} lr {opt.param_groups[0]['lr']:.1e}")
        if val_loss < best - 1e-6:
            best, best_state, bad, hist.best_epoch = val_loss, copy.deepcopy(model.state_dict()), 0, epoch + 1
        else:
            bad += 1
            if bad >= cfg.patience:
                log(f"[{name}] early stop at epoch {epoch + 1} (best {hist.best_epoch})")
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.time() - t0
    return hist


def train_paper_detector(
    fit_feats: np.ndarray,
    holdout_feats: np.ndarray,
    synth_fit_feats: np.ndarray,
    synth_holdout_feats: np.ndarray,
    fit_aug_feats: np.ndarray | None = None,
    device: str = "cpu",
    vae_phase: PhaseConfig = VAE_PHASE,
    vit_phase: PhaseConfig = VIT_PHASE,
    seed: int = 0,
    log=print,
) -> tuple[PaperDetector, dict]:
    """Train VAE then ViT on 512-d pool5 features of normals (+ augmented views) and of synthetic anomalies."""
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    det = PaperDetector()
    normals = fit_feats if fit_aug_feats is None else np.concatenate([fit_feats, fit_aug_feats])
    det.feature_mean = torch.as_tensor(fit_feats.mean(0), dtype=torch.float32)
    det.feature_std = torch.as_tensor(fit_feats.std(0) + 1e-6, dtype=torch.float32)
    x_train = det.standardise(normals).to(device)
    x_val = det.standardise(holdout_feats).to(device)
    vae = det.vae.to(device)

    def vae_step(idx):
        x = x_train[idx.to(device)]
        x_hat, mu, logvar, _ = vae(x)
        return elbo_loss(x_hat, x, mu, logvar, BETA)[0]

    def vae_val():
        x_hat, mu, logvar, _ = vae(x_val)
        loss, recon, kl = elbo_loss(x_hat, x_val, mu, logvar, BETA)
        return float(loss), float(recon)

    vae_hist = _run_phase(vae, vae_phase, vae_step, vae_val, len(x_train), device, log, "vae")
    det.vae = vae.cpu().eval()

    with torch.no_grad():
        z_norm = det.vae.encode(det.standardise(normals))[0]
        z_syn = det.vae.encode(det.standardise(synth_fit_feats))[0]
        zv_norm = det.vae.encode(x_val.cpu())[0]
        zv_syn = det.vae.encode(det.standardise(synth_holdout_feats))[0]
    z_train = torch.cat([z_norm, z_syn]).to(device)
    y_train = torch.cat([torch.zeros(len(z_norm)), torch.ones(len(z_syn))]).to(device)
    z_val = torch.cat([zv_norm, zv_syn]).to(device)
    y_val = torch.cat([torch.zeros(len(zv_norm)), torch.ones(len(zv_syn))]).to(device)
    pos_weight = torch.tensor(len(z_norm) / max(len(z_syn), 1), device=device)
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    vit = det.vit.to(device)

    def vit_step(idx):
        idx = idx.to(device)
        return bce(vit.logits(z_train[idx]), y_train[idx])

    def vit_val():
        logits = vit.logits(z_val)
        return float(bce(logits, y_val)), float(roc_auc_score(y_val.cpu().numpy(), logits.float().cpu().numpy()))

    vit_hist = _run_phase(vit, vit_phase, vit_step, vit_val, len(z_train), device, log, "vit")
    det.vit = vit.cpu().eval()

    # calibration statistics (paper: from the training set) and the threshold from held-out normals only
    r_fit = det.raw(fit_feats)
    det.config["stats"] = {"recon_mean": float(r_fit["recon"].mean()), "recon_std": float(r_fit["recon"].std() + 1e-12),
                           "kl_mean": float(r_fit["kl"].mean()), "kl_std": float(r_fit["kl"].std() + 1e-12)}
    held_scores = det.signals_from_features(holdout_feats)["score"]
    det.calibration = Calibration.from_normal_scores(held_scores)
    history = {"vae": vae_hist.__dict__, "vit": vit_hist.__dict__,
               "n_fit_normals": int(len(fit_feats)), "n_fit_augmented": int(0 if fit_aug_feats is None else len(fit_aug_feats)),
               "n_holdout_normals": int(len(holdout_feats)), "n_synthetic_fit": int(len(synth_fit_feats)),
               "n_synthetic_holdout": int(len(synth_holdout_feats))}
    return det, history
