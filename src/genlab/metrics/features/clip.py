"""``clip-vitl14-336``: CLIP ViT-L/14@336px image embeddings, the features of CMMD (Jayasumana et al., CVPR 2024).

The features are the image tower's embeddings (``clip_net``), L2-normalised, 768-d, with the preprocessing of the
paper's reference code (google-research/cmmd ``embedding.py``): images in [0, 1] (grey repeated to RGB), resized
to 336x336 by ``torch.nn.functional.interpolate(mode="bicubic")`` (not antialiased, float, not clipped), then
normalised with CLIP's mean and std; no centre crop. There is no classifier head (``num_classes`` 0).

Weights: OpenAI's ``ViT-L-14-336px.pt`` (the checkpoint transformers' ``openai/clip-vit-large-patch14-336``,
which the reference code loads, was converted from), looked for in order:
1. ``weights=PATH`` (the CLI's ``--clip-weights PATH``);
2. ``$GENLAB_CLIP_WEIGHTS``;
3. ``cache_dir()/weights/ViT-L-14-336px.pt``;
4. a download from OpenAI's URL into 3.; the file only appears when its sha256 is the one OpenAI publishes
   (it is part of the URL, and openai/CLIP checks it the same way).
Read: OpenAI's file is a TorchScript archive; it is opened with ``torch.jit.load`` only after its sha256 was
found to be OpenAI's (a TorchScript file of any other origin is refused: convert it to a state dict). A plain
state dict (``torch.save``, loaded with ``weights_only=True``) or a ``.safetensors`` file in OpenAI's names
(``visual.*``) or transformers' (``vision_model.*``, ``visual_projection.weight``) is read as well; the text
tower's tensors are ignored. The image tower loads strictly; a file that is not OpenAI's warns
(``CLIPWeightsWarning``): its numbers are not comparable with published CMMD values.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file as load_safetensors
from torch import nn

from genlab.errors import GenlabError
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, weights_hash
from genlab.metrics.features.clip_net import VITL14_336, CLIPVisionConfig, CLIPVisionTransformer, hf_to_openai
from genlab.metrics.features.weights import download_checked, file_sha256, find_weights
from genlab.metrics.features.weights import weights_cache_path as cached_file

NAME = "clip-vitl14-336"
WEIGHTS_FILE = "ViT-L-14-336px.pt"
WEIGHTS_SHA256 = "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"
WEIGHTS_URL = f"https://openaipublic.azureedge.net/clip/models/{WEIGHTS_SHA256}/{WEIGHTS_FILE}"
WEIGHTS_ENV = "GENLAB_CLIP_WEIGHTS"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PREPROCESSING = ("grey->RGB, [0, 1], torch bicubic resize to 336x336 (not antialiased, as google-research/cmmd), "
                 "CLIP mean/std")


class CLIPWeightsWarning(UserWarning):
    """CLIP weights that are not OpenAI's file: numbers are not comparable with published ones."""


def weights_cache_path() -> Path:
    return cached_file(WEIGHTS_FILE)


def download_weights(dest: Path) -> Path:
    """Download OpenAI's file to ``dest`` atomically; it only appears when its sha256 is the published one."""
    return download_checked(WEIGHTS_URL, dest, lambda sha, size: None if sha == WEIGHTS_SHA256
                            else f"{WEIGHTS_SHA256[:16]}...", "CLIP ViT-L/14@336px weights")


def find_clip_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The weights file to use (see the module docstring for the order), or one clear GenlabError."""
    return find_weights(path, option="--clip-weights", env=WEIGHTS_ENV, file=WEIGHTS_FILE, url=WEIGHTS_URL,
                        what="CLIP ViT-L/14@336px weights", download=download_weights if download else None)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def read_state(path: Path, sha: str) -> dict[str, torch.Tensor]:
    """The image tower's tensors of a weights file, in ``clip_net``'s names, float32."""
    try:
        if path.suffix == ".safetensors":
            state = load_safetensors(str(path))
        elif _is_torchscript(path):
            if sha != WEIGHTS_SHA256:
                raise GenlabError(f"{path} is a TorchScript archive that is not OpenAI's {WEIGHTS_FILE}; save its "
                                  "state dict with torch.save(model.state_dict()) and pass that file")
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; OpenAI publishes only this format
                warnings.simplefilter("ignore", DeprecationWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()  # OpenAI's file, checked above
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except GenlabError:
        raise
    except Exception as e:
        raise GenlabError(f"cannot read CLIP weights {path}: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GenlabError(f"{path} is not a state dict of tensors")
    if any(k.startswith("vision_model.") for k in state):
        state = hf_to_openai(state)
    elif any(k.startswith("visual.") for k in state):
        state = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
    return {k: v.float() for k, v in state.items()}


class CLIPFeatures(nn.Module):
    """x float (N, C, H, W) in [-1, 1], C 1 or 3, any size -> (L2-normalised embeddings (N, E), empty logits)."""

    def __init__(self, tower: CLIPVisionTransformer | None = None):
        super().__init__()
        self.tower = tower if tower is not None else CLIPVisionTransformer(VITL14_336)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> the tower's input (the reference code's transform: see the module docstring)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x.float() + 1) / 2
        size = self.tower.cfg.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
        return (x - self.mean) / self.std  # type: ignore[operator]  # buffers are tensors

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.tower(self.preprocess(x).contiguous())
        e = e / e.norm(dim=-1, keepdim=True)
        return e, e.new_zeros(e.shape[0], 0)


def load_clip(path: str | os.PathLike, cfg: CLIPVisionConfig = VITL14_336) -> tuple[CLIPFeatures, str]:
    """The network with the image tower at ``path`` loaded strictly into ``cfg``'s architecture; also returns the
    file's sha256."""
    path = Path(path)
    sha = file_sha256(path)
    state = read_state(path, sha)
    with torch.device("meta"):  # no random initialisation of what the file replaces (300M numbers)
        tower = CLIPVisionTransformer(cfg)
    try:
        tower.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise GenlabError(f"{path} does not fit the CLIP {cfg.describe()} image tower ({first[:160]}): pass "
                          f"{WEIGHTS_FILE} ({WEIGHTS_URL})") from None
    if sha != WEIGHTS_SHA256:
        warnings.warn(f"{path} (sha256 {sha[:16]}...) is not OpenAI's {WEIGHTS_FILE}: its CMMD and other numbers "
                      "are not comparable with published ones", CLIPWeightsWarning, stacklevel=2)
    return CLIPFeatures(tower.float()), sha


def clip_extractor(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                   download: bool = True, batch_size: int = 32, cfg: CLIPVisionConfig = VITL14_336,
                   name: str = NAME) -> FeatureExtractor:
    """The CLIP extractor from the weights ``find_clip_weights`` finds (``cfg``: another architecture, tests)."""
    path = find_clip_weights(weights, download=download)
    net, sha = load_clip(path, cfg)
    return FeatureExtractor(
        net, name=name, hash=weights_hash(net.state_dict()), feature_dim=cfg.embed_dim, num_classes=0,
        batch_size=batch_size, device=device,
        info={"weights": str(path), "weights_sha256": sha[:16], "published_weights": sha == WEIGHTS_SHA256,
              "architecture": cfg.describe(), "preprocessing": PREPROCESSING,
              "features": "image embeddings (ln_post(class token) @ proj), L2-normalised"})


@FEATURE_EXTRACTORS.register(NAME)
def _factory(dataset: object | None = None, resolution: int | None = None, channels: int | None = None,
             weights: str | os.PathLike | None = None, device: str | torch.device = "cpu", download: bool = True,
             batch_size: int = 32) -> FeatureExtractor:
    """CLIP image embeddings for any dataset; ``dataset``, ``resolution`` and ``channels`` are unused."""
    return clip_extractor(weights, device=device, download=download, batch_size=batch_size)
