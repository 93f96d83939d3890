"""The DINOv2 vision transformers (ViT-S/14, ViT-B/14, ViT-L/14) of facebookresearch/dinov2, in plain torch.

Module and parameter names follow the official ``DinoVisionTransformer`` as its torch.hub entry points build
it (``img_size=518, patch_size=14, init_values=1.0, block_chunks=0``, no register tokens), so that the
published ``dinov2_vit{s,b,l}14_pretrain.pth`` load with ``strict=True``:
``cls_token`` (1, 1, D), ``pos_embed`` (1, 1 + 37*37, D) for the 518px pretraining grid, ``mask_token`` (1, D)
(used only in training, kept so the file loads), ``patch_embed.proj`` (a 14x14 stride-14 conv), per block
``norm1``, ``attn.qkv``, ``attn.proj``, ``ls1.gamma`` (LayerScale), ``norm2``, ``mlp.fc1``, ``mlp.fc2``,
``ls2.gamma``; then ``norm``. LayerNorm eps is 1e-6 and the MLP uses the exact (erf) GELU, as upstream.

The position embeddings are interpolated from the 37x37 grid to the input's patch grid as the official model
does it: bicubic, no antialiasing, with ``scale_factor = (grid + 0.1) / 37`` (its "interpolate_offset"),
which samples slightly differently from ``size=grid``; the CLS position is kept as is.

Checked once by hand against the official code (facebookresearch/dinov2 at b8931f7, no xformers): with the
same random ViT-S/14 weights loaded into both, the CLS features are bit for bit equal at 112, 224 and 518 px.
ViT-L/14 (24 blocks, width 1024, 16 heads) is the same code wider and deeper: its layout is checked against
transformers' ``Dinov2Model`` at full size and its features at a reduced size of the same architecture
(tests/metrics/features/test_transformers_parity.py; transformers resamples the position embeddings with
``size=`` instead of the official offset, so the features are compared at the 518px pretraining grid).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PATCH_SIZE = 14
PRETRAIN_SIZE = 518  # the published checkpoints' pos_embed grid: 518 / 14 = 37 patches a side
INTERPOLATE_OFFSET = 0.1
LAYERNORM_EPS = 1e-6


@dataclass(frozen=True)
class ViTConfig:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: int = 4


ARCHS: dict[str, ViTConfig] = {
    "vits14": ViTConfig(embed_dim=384, depth=12, num_heads=6),
    "vitb14": ViTConfig(embed_dim=768, depth=12, num_heads=12),
    "vitl14": ViTConfig(embed_dim=1024, depth=24, num_heads=16),
}


class PatchEmbed(nn.Module):
    """(N, 3, H, W) -> (N, (H/14)*(W/14), D) by one 14x14 convolution with stride 14."""

    def __init__(self, embed_dim: int, in_chans: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """A learned per-channel scale of a residual branch."""

    def __init__(self, dim: int, init_value: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(x)))."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        d = cfg.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=LAYERNORM_EPS)
        self.attn = Attention(d, cfg.num_heads)
        self.ls1 = LayerScale(d)
        self.norm2 = nn.LayerNorm(d, eps=LAYERNORM_EPS)
        self.mlp = Mlp(d, cfg.mlp_ratio * d)
        self.ls2 = LayerScale(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """x (N, 3, H, W), ImageNet-normalised, H and W multiples of 14 -> the CLS token after the final norm (N, D)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        grid = PRETRAIN_SIZE // PATCH_SIZE
        self.patch_embed = PatchEmbed(d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=LAYERNORM_EPS)
        self.mask_token = nn.Parameter(torch.zeros(1, d))  # masked-image training only; in the published file
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A random initialisation in the spirit of upstream's (tests use it; real use loads weights)."""
        if self.pos_embed.is_meta:  # built to be loaded (assign=True): skip; normal_ on meta costs ~6 s at first
            return
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """pos_embed for an (h, w) patch grid: the pretraining grid's, resampled like upstream's."""
        pos = self.pos_embed
        m = math.isqrt(pos.shape[1] - 1)
        if (h, w) == (m, m):
            return pos
        cls_pos, patch_pos = pos[:, :1], pos[:, 1:].float()
        d = pos.shape[-1]
        patch_pos = F.interpolate(
            patch_pos.reshape(1, m, m, d).permute(0, 3, 1, 2),
            scale_factor=((h + INTERPOLATE_OFFSET) / m, (w + INTERPOLATE_OFFSET) / m),
            mode="bicubic",
            antialias=False,
        )
        if patch_pos.shape[-2:] != (h, w):
            raise RuntimeError(f"position embeddings resampled to {tuple(patch_pos.shape[-2:])}, not {(h, w)}")
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, h * w, d).to(pos.dtype)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f"input {height}x{width} is not a multiple of the patch size {PATCH_SIZE}")
        tokens = torch.cat([self.cls_token.expand(n, -1, -1), self.patch_embed(x)], dim=1)
        tokens = tokens + self.position_embedding(height // PATCH_SIZE, width // PATCH_SIZE)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]
