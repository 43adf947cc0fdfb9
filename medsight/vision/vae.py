"""The paper's variational autoencoder on 512-d backbone features (section 4.3), and its beta-VAE ELBO."""

from __future__ import annotations

import torch
from torch import nn


def _block(i: int, o: int, dropout: float) -> list[nn.Module]:
    return [nn.Linear(i, o), nn.LayerNorm(o), nn.GELU(), nn.Dropout(dropout)]


class FeatureVAE(nn.Module):
    """Encoder 512-512-384-256 (Linear, LayerNorm, GELU, Dropout) -> mu, logvar (256); symmetric decoder.
    1,318,656 parameters, as in the paper."""

    def __init__(self, input_dim: int = 512, hidden: tuple[int, ...] = (512, 384, 256), latent_dim: int = 256, dropout: float = 0.1):
        super().__init__()
        dims = (input_dim, *hidden)
        self.encoder = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in _block(a, b, dropout)])
        self.fc_mu = nn.Linear(hidden[-1], latent_dim)
        self.fc_logvar = nn.Linear(hidden[-1], latent_dim)
        dec = (latent_dim, *reversed(hidden))
        self.decoder = nn.Sequential(*[m for a, b in zip(dec, dec[1:]) for m in _block(a, b, dropout)], nn.Linear(hidden[0], input_dim))
        self.latent_dim = latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar, z


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(q(z|x) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def reconstruction_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error."""
    return (x_hat - x).pow(2).mean(dim=-1)


def elbo_loss(x_hat, x, mu, logvar, beta: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-mean beta-VAE loss: MSE + beta * KL. Returns (loss, recon, kl)."""
    recon = reconstruction_error(x_hat, x).mean()
    kl = kl_divergence(mu, logvar).mean()
    return recon + beta * kl, recon, kl
