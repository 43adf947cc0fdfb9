"""The paper's ViT anomaly scorer on the VAE latent (section 4.4): z (256) -> 8 patches of 32 -> d_model 128,
[CLS] + 9 positional embeddings, 6 pre-norm encoder layers, 8 heads, MLP 512, dropout 0.1, sigmoid output.

It has 1,195,521 parameters with standard PyTorch encoder layers; the paper reports 1,209,729 without saying
where the 14,208 extra parameters sit (its head is not specified)."""

from __future__ import annotations

import torch
from torch import nn


class LatentViT(nn.Module):
    def __init__(self, latent_dim: int = 256, patch_dim: int = 32, d_model: int = 128, depth: int = 6, heads: int = 8,
                 mlp_dim: int = 512, dropout: float = 0.1):
        super().__init__()
        assert latent_dim % patch_dim == 0
        self.n_patches, self.patch_dim = latent_dim // patch_dim, patch_dim
        self.patch_embed = nn.Linear(patch_dim, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_patches + 1, d_model))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, heads, mlp_dim, dropout, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def tokens(self, z: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(z.view(z.shape[0], self.n_patches, self.patch_dim))
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.dropout(x)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Anomaly probability in [0, 1], shape (N,)."""
        return torch.sigmoid(self.logits(z))

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        x = self.tokens(z)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x[:, 0])).squeeze(-1)

    @torch.no_grad()
    def cls_attention(self, z: torch.Tensor) -> torch.Tensor:
        """[CLS] -> patch attention of the last layer, averaged over heads, summing to 1: N x 8 (paper 4.6)."""
        x = self.tokens(z)
        for layer in self.layers[:-1]:
            x = layer(x)
        last = self.layers[-1]
        h = last.norm1(x)
        _, weights = last.self_attn(h, h, h, need_weights=True, average_attn_weights=True)
        patches = weights[:, 0, 1:]
        return patches / patches.sum(dim=1, keepdim=True)  # renormalised over the 8 patches (CLS->CLS dropped)
