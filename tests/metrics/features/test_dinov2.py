"""DINOv2 extractors: the published key layout, strict loading through the real paths, preprocessing against
PIL (what dgm-eval resizes with), outputs, and the one-line errors."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli.eval import extractor_weights
from genlab.data.base import ImageData, to_float
from genlab.errors import ConfigError, GenlabError
from genlab.metrics import evaluate_folder
from genlab.metrics.features import dinov2, get_extractor, weights, weights_hash
from genlab.metrics.features.dinov2 import IMAGENET_MEAN, IMAGENET_STD, PUBLISHED, DINOv2Features, DINOv2WeightsWarning
from genlab.metrics.features.dinov2_net import ARCHS, DinoVisionTransformer

EXE = Path(sys.executable).with_name("genlab")


def published_layout(d: int) -> dict[str, tuple[int, ...]]:
    """Every key of the published dinov2_<arch>_pretrain.pth (what the official hub model loads strictly) with
    its shape, for embedding width d (384: ViT-S/14, 768: ViT-B/14): 7 top-level tensors, then 14 per block for
    blocks.0 ... blocks.11 (block_chunks=0: no chunk level in the names; no register tokens)."""
    layout = {
        "cls_token": (1, 1, d),
        "pos_embed": (1, 1370, d),  # 1 + 37 * 37: the 518px pretraining grid
        "mask_token": (1, d),
        "patch_embed.proj.weight": (d, 3, 14, 14),
        "patch_embed.proj.bias": (d,),
        "norm.weight": (d,),
        "norm.bias": (d,),
    }
    block = {
        "norm1.weight": (d,),
        "norm1.bias": (d,),
        "attn.qkv.weight": (3 * d, d),
        "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": (d, d),
        "attn.proj.bias": (d,),
        "ls1.gamma": (d,),
        "norm2.weight": (d,),
        "norm2.bias": (d,),
        "mlp.fc1.weight": (4 * d, d),
        "mlp.fc1.bias": (4 * d,),
        "mlp.fc2.weight": (d, 4 * d),
        "mlp.fc2.bias": (d,),
        "ls2.gamma": (d,),
    }
    for i in range(12):
        layout.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    return layout


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Randomly initialised ViT-S/14 weights saved like the published file (a plain state dict of tensors)."""
    torch.manual_seed(0)
    state = DinoVisionTransformer(ARCHS["vits14"]).state_dict()
    path = tmp_path_factory.mktemp("weights") / "random-dinov2-vits14.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def extractor(random_weights):
    with pytest.warns(DINOv2WeightsWarning, match="not the published"):
        return get_extractor("dinov2-vits14", weights=random_weights[0])


def test_vits14_has_the_published_layout(random_weights):
    _, state = random_weights
    expected = published_layout(384)
    assert len(expected) == 175
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(v.numel() for v in state.values()) == 22_056_576  # DINOv2 ViT-S/14: 22.06M parameters
    assert all(v.dtype == torch.float32 for v in state.values())


def test_vitb14_has_the_published_layout_by_shapes():
    with torch.device("meta"):  # no 330 MB of numbers
        state = DinoVisionTransformer(ARCHS["vitb14"]).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == published_layout(768)
    assert sum(v.numel() for v in state.values()) == 86_580_480  # DINOv2 ViT-B/14: 86.58M parameters


def test_strict_load_shapes_determinism_and_batch_independence(extractor, random_weights):
    _, state = random_weights
    ext = extractor
    assert (ext.name, ext.feature_dim, ext.num_classes, ext.resolution) == ("dinov2-vits14", 384, 0, None)
    assert ext.info["published_weights"] is False and ext.info["input_size"] == 224
    for key, value in ext.net.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key

    # ViT-S/14 at 224 on one CPU thread: two images, five image-forwards in all
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 1, 28, 28), generator=g, dtype=torch.uint8)  # grey: repeated to RGB
    ext.batch_size = 2
    feats, logits = ext.features(images)
    assert feats.shape == (2, 384) and logits.shape == (2, 0)
    assert torch.isfinite(feats).all()
    # the CLS token after the final LayerNorm (weight 1, bias 0 here): zero mean and unit variance per image
    torch.testing.assert_close(feats.mean(1), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(feats.var(1, unbiased=False), torch.ones(2), atol=1e-3, rtol=0)
    assert not torch.allclose(feats[0], feats[1])

    ext.batch_size = 1
    single, _ = ext.features(images)
    torch.testing.assert_close(single, feats, rtol=1e-4, atol=1e-5)  # batch-size independent
    again, _ = ext.features(images[:1])
    assert torch.equal(again, single[:1])  # deterministic


def test_preprocessing_matches_pil_resize():
    """dgm-eval resizes PIL RGB images with torchvision's Resize((224, 224), BICUBIC), i.e. PIL's resize."""
    net = DINOv2Features("vits14", backbone=torch.nn.Identity())
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    g = torch.Generator().manual_seed(0)
    # noise is the hardest case; non-square shrinking covers PIL's order of the two passes
    for c, h, w in [(1, 28, 28), (3, 32, 32), (3, 300, 260), (3, 260, 300), (1, 40, 28), (1, 500, 100)]:
        u = torch.randint(0, 256, (1, c, h, w), generator=g, dtype=torch.uint8)
        levels = ((net.preprocess(to_float(u))[0] * std + mean) * 255).round()
        arr = u[0].permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[..., 0] if c == 1 else arr).convert("RGB").resize((224, 224), Image.BICUBIC)
        ref = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float()
        diff = (levels - ref).abs()
        assert diff.max() <= 2 and (diff > 0).float().mean() < 0.01, (c, h, w, diff.max(), (diff > 0).float().mean())
    u = torch.randint(0, 256, (1, 3, 224, 224), generator=g, dtype=torch.uint8)
    torch.testing.assert_close(net.preprocess(to_float(u))[0], (u[0] / 255 - mean) / std)  # no resize at 224


def test_position_embeddings_follow_the_input_grid(random_weights):
    _, state = random_weights
    with torch.device("meta"):
        vit = DinoVisionTransformer(ARCHS["vits14"])
    vit.load_state_dict(state, strict=True, assign=True)
    assert vit.position_embedding(37, 37) is vit.pos_embed  # the 518px grid: unchanged
    pos = vit.position_embedding(16, 16)  # 224px
    assert pos.shape == (1, 257, 384) and torch.equal(pos[:, 0], state["pos_embed"][:, 0])


def test_env_variable_and_cache_are_found_and_load_strictly(monkeypatch, random_weights):
    path, state = random_weights
    monkeypatch.setenv("GENLAB_DINOV2_WEIGHTS", str(path))
    assert dinov2.find_dinov2_weights("vitb14") == path  # the variable wins over the cache, for either arch
    monkeypatch.setenv("GENLAB_DINOV2_WEIGHTS", "/nonexistent/w.pth")
    with pytest.raises(GenlabError, match=r"\$GENLAB_DINOV2_WEIGHTS=/nonexistent/w.pth: no such file"):
        get_extractor("dinov2-vits14")
    monkeypatch.delenv("GENLAB_DINOV2_WEIGHTS")
    cached = dinov2.weights_cache_path("vits14")
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, cached)
    with pytest.warns(DINOv2WeightsWarning):
        ext = get_extractor("dinov2-vits14")  # found in the cache: no download is tried
    assert ext.info["weights"] == str(cached)
    assert ext.hash == weights_hash({f"backbone.{k}": v for k, v in state.items()})  # the weights, nothing else


def test_wrong_files_are_one_clear_error(tmp_path, random_weights):
    path, state = random_weights
    with pytest.raises(GenlabError, match="does not fit the dinov2-vitb14 backbone .*looks like a dinov2-vits14 file"):
        get_extractor("dinov2-vitb14", weights=path)
    without_mask = tmp_path / "no-mask-token.pth"
    torch.save({k: v for k, v in state.items() if k != "mask_token"}, without_mask)
    with pytest.raises(GenlabError, match='does not fit .*Missing key.*"mask_token"'):
        get_extractor("dinov2-vits14", weights=without_mask)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(GenlabError, match="cannot read DINOv2 weights"):
        get_extractor("dinov2-vits14", weights=garbage)
    with pytest.raises(GenlabError, match="--dinov2-weights /nonexistent/file.pth: no such file"):
        get_extractor("dinov2-vits14", weights="/nonexistent/file.pth")


def test_offline_without_weights_and_bad_downloads(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.delenv("GENLAB_OFFLINE")  # the tests' default: here the download itself is what fails
    monkeypatch.setattr(weights.urllib.request, "urlopen", offline)
    for arch in ("vits14", "vitb14", "vitl14"):
        with pytest.raises(GenlabError) as err:
            get_extractor(f"dinov2-{arch}")
        msg = str(err.value)
        for part in (PUBLISHED[arch].file, PUBLISHED[arch].url, str(dinov2.weights_cache_path(arch)),
                     "--dinov2-weights", "$GENLAB_DINOV2_WEIGHTS", "download failed"):
            assert part in msg, part
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"not the weights"))
    with pytest.raises(GenlabError, match="sha256"):
        get_extractor("dinov2-vits14")
    assert list(dinov2.weights_cache_path("vits14").parent.glob("*")) == []  # nothing half-written is left


def test_is_and_coverage_need_a_classifier_head(extractor, tmp_path):
    data = ImageData(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), name="zeros", split="test")
    for metric, what in (("is", "IS"), ("coverage", "class coverage")):
        with pytest.raises(GenlabError) as err:
            evaluate_folder(tmp_path, data, extractor, metrics=f"fid,{metric}")
        assert str(err.value).startswith(f"{what} needs an extractor with a classifier head; dinov2-vits14 has "
                                         "none: use --features classifier or inception")


def test_weights_option_goes_to_the_chosen_extractor():
    assert extractor_weights("dinov2-vitb14", None, "b.pth") == "b.pth"
    assert extractor_weights("inception", "i.pth", None) == "i.pth"
    assert extractor_weights("auto", "i.pth", None) == "i.pth"
    with pytest.raises(ConfigError, match="--dinov2-weights is for --features dinov2-vitl14, dinov2-vitb14 or "
                                          "dinov2-vits14, or the fd_dinov2 metric; not for inception"):
        extractor_weights("inception", None, "b.pth")
    with pytest.raises(ConfigError, match="--inception-weights is for the inception features"):
        extractor_weights("dinov2-vits14", "i.pth", None)


def test_cli_offline_without_weights_is_one_line(tmp_path):
    """The installed executable, with every connection refused (a dead proxy): one line, exit 2."""
    folder = tmp_path / "images"
    folder.mkdir()
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "https_proxy": dead, "HTTPS_PROXY": dead, "no_proxy": "", "NO_PROXY": ""}
    r = subprocess.run([str(EXE), "eval-folder", str(folder), "--against", str(folder), "--features",
                        "dinov2-vits14", "--metrics", "fid", "--resolution", "28", "--channels", "1"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    err = r.stderr.strip()
    assert r.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, (r.returncode, err)
    for part in ("dinov2_vits14_pretrain.pth", PUBLISHED["vits14"].url, "--dinov2-weights",
                 "$GENLAB_DINOV2_WEIGHTS", str(dinov2.weights_cache_path("vits14"))):
        assert part in err, part
