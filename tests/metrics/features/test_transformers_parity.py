"""The two new backbones against an independent definition, transformers' (torchvision-free) ``Dinov2Model`` and
``CLIPVisionModelWithProjection``, built from a config with random weights (nothing downloaded):

- layout: genlab's full ViT-L/14 (DINOv2) and CLIP ViT-L/14@336 image tower have exactly the parameter names and
  shapes of the official checkpoints (``dinov2_vitl14_pretrain.pth``; OpenAI's ``ViT-L-14-336px.pt``, ``visual.``),
  derived from transformers' full-size state dicts, built on the meta device (no memory, no time);
- numbers: a reduced size of the SAME architecture (fewer blocks, narrower; 64-d heads as the full models),
  transformers' random weights mapped into genlab's layout: features equal to 1e-5 (ViT-L/14 at full size was
  compared once by hand: docs/published_numbers.md).
- the CLIP reader: transformers' safetensors names, OpenAI's TorchScript archive (only when its sha256 is OpenAI's),
  and the preprocessing constants (transformers' OPENAI_CLIP_MEAN / _STD)."""
from __future__ import annotations

import re
import warnings

import pytest
import torch
import transformers
from safetensors.torch import save_file

from genlab.errors import GenlabError
from genlab.metrics.features import clip
from genlab.metrics.features.clip_net import VITL14_336, CLIPVisionConfig, CLIPVisionTransformer, hf_to_openai
from genlab.metrics.features.dinov2_net import ARCHS, DinoVisionTransformer, ViTConfig


def dinov2_official_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' Dinov2Model names -> facebookresearch/dinov2's (the published checkpoint's): q, k and v
    stacked into one ``qkv``, ``layer_scaleK.lambda1`` -> ``lsK.gamma``; written here, independently of genlab."""
    top = {"embeddings.cls_token": "cls_token", "embeddings.mask_token": "mask_token",
           "embeddings.position_embeddings": "pos_embed", "layernorm.weight": "norm.weight",
           "layernorm.bias": "norm.bias", "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
           "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias"}
    block = {"norm1": "norm1", "norm2": "norm2", "attention.o_proj": "attn.proj", "mlp.fc1": "mlp.fc1",
             "mlp.fc2": "mlp.fc2"}
    out, qkv = {}, {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        i, part, kind = re.match(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$", key).groups()
        if part.startswith("layer_scale"):
            out[f"blocks.{i}.ls{part[-1]}.gamma"] = value
        elif part.endswith(("q_proj", "k_proj", "v_proj")):
            qkv.setdefault(f"blocks.{i}.attn.qkv.{kind}", {})[part[-6]] = value
        else:
            out[f"blocks.{i}.{block[part]}.{kind}"] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def hf_dinov2(d: int, depth: int, heads: int) -> torch.nn.Module:
    cfg = transformers.Dinov2Config(hidden_size=d, num_hidden_layers=depth, num_attention_heads=heads,
                                    image_size=518, patch_size=14, layerscale_value=1.0)
    return transformers.Dinov2Model(cfg)


def hf_clip(cfg: CLIPVisionConfig) -> torch.nn.Module:
    c = transformers.CLIPVisionConfig(hidden_size=cfg.width, intermediate_size=4 * cfg.width,
                                      num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                                      image_size=cfg.image_size, patch_size=cfg.patch_size,
                                      projection_dim=cfg.embed_dim, hidden_act="quick_gelu")
    return transformers.CLIPVisionModelWithProjection(c)


def randomise(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.02 if p.ndim > 1 else 0.1))
    return net.eval()


def test_full_size_layouts_are_the_official_checkpoints():
    with torch.device("meta"):
        theirs_dino = dinov2_official_names(hf_dinov2(1024, 24, 16).state_dict())
        ours_dino = DinoVisionTransformer(ARCHS["vitl14"]).state_dict()
        theirs_clip = hf_to_openai(hf_clip(VITL14_336).state_dict())
        ours_clip = CLIPVisionTransformer(VITL14_336).state_dict()
    assert len(ours_dino) == 7 + 14 * 24 and shapes(ours_dino) == shapes(theirs_dino)
    assert ours_dino["pos_embed"].shape == (1, 1 + 37 * 37, 1024) and ours_dino["mask_token"].shape == (1, 1024)
    # OpenAI's visual.* keys: 8 top-level tensors, 12 per block, the projection (width, embed) as OpenAI stores it
    assert len(ours_clip) == 8 + 12 * 24 and shapes(ours_clip) == shapes(theirs_clip)
    assert ours_clip["positional_embedding"].shape == (577, 1024) and ours_clip["proj"].shape == (1024, 768)
    assert ours_clip["transformer.resblocks.23.attn.in_proj_weight"].shape == (3072, 1024)
    assert sum(v.numel() for v in ours_dino.values()) > 300e6 and sum(v.numel() for v in ours_clip.values()) > 300e6


def test_reduced_dinov2_vitl_architecture_equals_transformers():
    """ViT-L/14's code path at width 128 (two 64-d heads), 2 blocks; the 518px pretraining grid (37 x 37 patches),
    where neither resamples its position embeddings (transformers resamples with size=, the official code with
    an offset; genlab does the latter, checked against the official code: dinov2_net.py)."""
    theirs = randomise(hf_dinov2(128, 2, 2), 0)
    ours = DinoVisionTransformer(ViTConfig(embed_dim=128, depth=2, num_heads=2)).eval()
    ours.load_state_dict(dinov2_official_names(theirs.state_dict()), strict=True)
    x = torch.randn(2, 3, 518, 518, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(pixel_values=x).pooler_output  # the CLS token after the final LayerNorm
        got = ours(x)
    assert expected.shape == got.shape == (2, 128) and expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_reduced_clip_tower_equals_transformers_through_genlabs_readers(tmp_path):
    """Width 128 (two 64-d heads), 2 blocks, 14px patches at 336px: transformers' random weights saved as
    safetensors in transformers' names, read by genlab's CLIP loader (names mapped, strict), image embeddings
    equal; the extractor's preprocessing is the reference code's (constants from transformers)."""
    cfg = CLIPVisionConfig(width=128, layers=2, heads=2, patch_size=14, image_size=336, embed_dim=32)
    theirs = randomise(hf_clip(cfg), 2)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, str(path))
    with pytest.warns(clip.CLIPWeightsWarning, match="not OpenAI's"):
        net, _ = clip.load_clip(path, cfg)
    x = torch.randn(2, 3, 336, 336, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = theirs(pixel_values=x).image_embeds
        got = net.tower(x)
    assert expected.abs().max() > 0.01
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    assert clip.CLIP_MEAN == tuple(OPENAI_CLIP_MEAN) and clip.CLIP_STD == tuple(OPENAI_CLIP_STD)
    images = torch.rand(2, 1, 28, 28) * 2 - 1  # grey, small: repeated to RGB, bicubic to 336, normalised
    manual = torch.nn.functional.interpolate((images.expand(-1, 3, -1, -1) + 1) / 2, size=(336, 336), mode="bicubic")
    manual = (manual - torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(net.preprocess(images), manual)
    emb, logits = net(images)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    assert logits.shape == (2, 0)


class OpenAIStyle(torch.nn.Module):
    """A stand-in for OpenAI's full CLIP module: the image tower under ``visual`` (plus a text-side tensor)."""

    def __init__(self, tower: CLIPVisionTransformer):
        super().__init__()
        self.visual = tower
        self.token_embedding = torch.nn.Embedding(4, 8)

    def forward(self, x):
        return self.visual(x)


def test_torchscript_archives_load_only_when_they_are_openais(tmp_path, monkeypatch):
    cfg = CLIPVisionConfig(width=64, layers=1, heads=1, patch_size=14, image_size=28, embed_dim=16)
    torch.manual_seed(0)
    tower = CLIPVisionTransformer(cfg).eval()
    path = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13; OpenAI's files are TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(OpenAIStyle(tower), torch.randn(1, 3, 28, 28)).save(str(path))
    with pytest.raises(GenlabError, match="TorchScript archive that is not OpenAI's"):
        clip.load_clip(path, cfg)
    sha = clip.file_sha256(path)
    monkeypatch.setattr(clip, "WEIGHTS_SHA256", sha)  # as if this were OpenAI's published file
    net, got_sha = clip.load_clip(path, cfg)  # no warning: the published checksum
    assert got_sha == sha
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(net.tower(x), tower(x))
    with pytest.raises(GenlabError, match="does not fit the CLIP"):
        clip.load_clip(path, CLIPVisionConfig(width=64, layers=2, heads=1, patch_size=14, image_size=28,
                                              embed_dim=16))
