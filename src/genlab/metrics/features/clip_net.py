"""The image tower of OpenAI's CLIP ViT-L/14@336px in plain torch, with the parameter names of OpenAI's checkpoint.

Names follow the ``visual`` module of openai/CLIP's ``VisionTransformer`` (the ``visual.`` prefix of the
checkpoint dropped), so ``ViT-L-14-336px.pt``'s image tower loads with ``strict=True``: ``conv1`` (a 14x14
stride-14 convolution without bias), ``class_embedding`` (W,), ``positional_embedding`` (1 + 24*24, W),
``ln_pre``; per block ``transformer.resblocks.N.`` ``attn.in_proj_weight`` (3W, W) and ``attn.in_proj_bias``
(query, key and value stacked, as ``nn.MultiheadAttention`` keeps them), ``attn.out_proj``, ``ln_1``,
``mlp.c_fc``, ``mlp.c_proj``, ``ln_2``; then ``ln_post`` and ``proj`` (W, E), the projection into the joint
image-text space. LayerNorm eps 1e-5; the MLP uses QuickGELU, x * sigmoid(1.702 x), as OpenAI's models do.

The output is the image embedding: ``ln_post`` of the class token, times ``proj`` (what CLIP's
``encode_image`` and transformers' ``CLIPVisionModelWithProjection.image_embeds`` return). The position
embeddings are used as they are: the input must be ``image_size`` square (336 for ViT-L/14@336px).
``hf_to_openai`` maps a transformers ``CLIPModel`` / ``CLIPVisionModelWithProjection`` state dict to these
names (tests/metrics/features/test_transformers_parity.py checks the features against transformers' definition).
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LAYERNORM_EPS = 1e-5
HEAD_DIM = 64  # OpenAI's ViTs: heads = width / 64


@dataclass(frozen=True)
class CLIPVisionConfig:
    width: int = 1024
    layers: int = 24
    heads: int = 16
    patch_size: int = 14
    image_size: int = 336
    embed_dim: int = 768  # the joint image-text space

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def describe(self) -> str:
        return (f"ViT width {self.width}, {self.layers} layers, {self.heads} heads, patch {self.patch_size}, "
                f"{self.image_size}px, {self.embed_dim}-d embeddings")


#: ViT-L/14 at 336 px, the tower of CMMD's ``openai/clip-vit-large-patch14-336``
VITL14_336 = CLIPVisionConfig()


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names (q, k, v stacked in one
    projection), computed with ``scaled_dot_product_attention``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.out_proj(out.transpose(1, 2).reshape(n, t, d))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm block: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = nn.LayerNorm(width, eps=LAYERNORM_EPS)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width, eps=LAYERNORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*(ResidualAttentionBlock(width, heads) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class CLIPVisionTransformer(nn.Module):
    """x (N, 3, S, S) CLIP-normalised, S = ``image_size`` -> image embeddings (N, ``embed_dim``), not normalised."""

    def __init__(self, cfg: CLIPVisionConfig = VITL14_336):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.conv1 = nn.Conv2d(3, w, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.positional_embedding = nn.Parameter(torch.empty(cfg.grid * cfg.grid + 1, w))
        self.ln_pre = nn.LayerNorm(w, eps=LAYERNORM_EPS)
        self.transformer = Transformer(w, cfg.layers, cfg.heads)
        self.ln_post = nn.LayerNorm(w, eps=LAYERNORM_EPS)
        self.proj = nn.Parameter(torch.empty(w, cfg.embed_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A random initialisation in the spirit of OpenAI's (tests use it; real use loads weights)."""
        if self.proj.is_meta:  # built to be loaded (assign=True)
            return
        w = self.cfg.width
        nn.init.normal_(self.class_embedding, std=w**-0.5)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.proj, std=w**-0.5)
        nn.init.normal_(self.conv1.weight, std=0.02)
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=w**-0.5)
            nn.init.zeros_(block.attn.in_proj_bias)
            for lin in (block.attn.out_proj, block.mlp.c_fc, block.mlp.c_proj):
                nn.init.normal_(lin.weight, std=(2 * w) ** -0.5)
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.cfg.image_size, self.cfg.image_size):
            raise ValueError(f"input {tuple(x.shape[-2:])} is not {self.cfg.image_size}x{self.cfg.image_size}")
        tokens = self.conv1(x).flatten(2).transpose(1, 2)  # (N, grid^2, W)
        cls = self.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.positional_embedding.to(tokens.dtype)
        tokens = self.transformer(self.ln_pre(tokens))
        return self.ln_post(tokens[:, 0]) @ self.proj


def config_of(state: dict[str, torch.Tensor]) -> CLIPVisionConfig:
    """The architecture of a state dict in these names, read off its shapes as openai/CLIP's ``build_model``
    does (heads = width / 64)."""
    width, _, patch, _ = state["conv1.weight"].shape
    layers = len({int(m.group(1)) for k in state if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k))})
    grid = math.isqrt(state["positional_embedding"].shape[0] - 1)
    return CLIPVisionConfig(width=int(width), layers=layers, heads=max(1, int(width) // HEAD_DIM),
                            patch_size=int(patch), image_size=int(patch) * grid, embed_dim=int(state["proj"].shape[1]))


_HF_BLOCK = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
             "self_attn.out_proj": "attn.out_proj"}


def hf_to_openai(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIP state dict (``vision_model.*``, ``visual_projection.weight``; text tower keys are
    dropped) in these names: q/k/v projections stacked into ``in_proj_*``, the projection transposed."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    top = {"embeddings.class_embedding": "class_embedding", "embeddings.patch_embedding.weight": "conv1.weight",
           "embeddings.position_embedding.weight": "positional_embedding", "pre_layrnorm.weight": "ln_pre.weight",
           "pre_layrnorm.bias": "ln_pre.bias", "post_layernorm.weight": "ln_post.weight",
           "post_layernorm.bias": "ln_post.bias"}
    for key, value in state.items():
        if key == "visual_projection.weight":
            out["proj"] = value.T.contiguous()
            continue
        if not key.startswith("vision_model.") or key.endswith("position_ids"):
            continue
        k = key[len("vision_model."):]
        if k in top:
            out[top[k]] = value
            continue
        m = re.match(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", k)
        if m is None:
            raise KeyError(f"unexpected key {key}")
        i, part, kind = int(m.group(1)), m.group(2), m.group(3)
        if part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault((i, kind), {})[part[-6]] = value
        else:
            out[f"transformer.resblocks.{i}.{_HF_BLOCK[part]}.{kind}"] = value
    for (i, kind), parts in qkv.items():
        out[f"transformer.resblocks.{i}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out
