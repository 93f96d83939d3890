"""``dinov2-vitl14`` / ``dinov2-vitb14`` / ``dinov2-vits14``: DINOv2 features (FD_DINOv2, Stein et al. 2023),
1024-d / 768-d / 384-d. ViT-L/14 is what dgm-eval and EDM2 report FD_DINOv2 with: the ``fd_dinov2`` metric's
default (``EvalOptions.fd_dinov2_features``); the smaller ones are kept as options.

The features are the CLS token after the final LayerNorm of the official self-supervised backbones
(``dinov2_net``), with the preprocessing of dgm-eval's DINOv2 encoder (what FD_DINOv2 numbers are computed
with: torchvision's ``Resize((224, 224), BICUBIC)`` of a PIL RGB image, ``ToTensor``, ImageNet ``Normalize``):
grey images repeated to RGB, resized to 224x224 as PIL does it (bicubic, antialiased, two separable passes
in PIL's order, each rounded to uint8), scaled to [0, 1] and normalised with the ImageNet mean and std.
There is no classifier head (``num_classes`` 0): IS and class coverage need ``classifier`` or ``inception``.

Weights (the published backbone files, float32) are looked for, in order:
1. ``weights=PATH`` (the CLI's ``--dinov2-weights PATH``);
2. ``$GENLAB_DINOV2_WEIGHTS``;
3. ``cache_dir()/weights/dinov2_<arch>_pretrain.pth``;
4. a download from https://dl.fbaipublicfiles.com/dinov2/ into 3.; the file only appears when its sha256
   is the published one. The sha256 values are not published by Meta: they are the ones public projects
   pin for these files (the same values in several independent repositories); ViT-S/14's size
   (88,283,115 bytes) is pinned the same way. For ViT-L/14 no public sha256 pin was found: its download is
   checked by its size (1,217,586,395 bytes, as a public audit of the file recorded it), and the file's sha256
   goes into the protocol (``weights_sha256``) with the loaded network's hash; ``published_weights`` says
   "size only" for it.
Any file loads strictly; one whose sha256 is not the published one warns (``DINOv2WeightsWarning``): its
numbers are not comparable with published FD_DINOv2 values. The extractor's ``hash`` is ``weights_hash``.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, weights_hash
from genlab.metrics.features.dinov2_net import ARCHS, DinoVisionTransformer
from genlab.metrics.features.weights import download_checked, file_sha256, find_weights
from genlab.metrics.features.weights import weights_cache_path as cached_file

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_ENV = "GENLAB_DINOV2_WEIGHTS"
BASE_URL = "https://dl.fbaipublicfiles.com/dinov2"
PREPROCESSING = "grey->RGB, PIL-style bicubic antialiased resize to 224x224 (uint8 passes), /255, ImageNet mean/std"


@dataclass(frozen=True)
class PublishedWeights:
    arch: str  # "vits14" | "vitb14" | "vitl14"
    sha256: str | None  # None: no public pin (the size is checked)
    size: int | None = None  # bytes, where a public source pins it

    def matches(self, sha: str, size: int) -> bool:
        return (self.sha256 is None or sha == self.sha256) and self.size in (None, size)

    @property
    def file(self) -> str:
        return f"dinov2_{self.arch}_pretrain.pth"

    @property
    def url(self) -> str:
        return f"{BASE_URL}/dinov2_{self.arch}/{self.file}"

    @property
    def name(self) -> str:
        return f"dinov2-{self.arch}"


PUBLISHED = {
    "vits14": PublishedWeights("vits14", "b938bf1bc15cd2ec0feacfe3a1bb553fe8ea9ca46a7e1d8d00217f29aef60cd9",
                               88_283_115),
    "vitb14": PublishedWeights("vitb14", "0b8b82f85de91b424aded121c7e1dcc2b7bc6d0adeea651bf73a13307fad8c73"),
    "vitl14": PublishedWeights("vitl14", None, 1_217_586_395),
}


class DINOv2WeightsWarning(UserWarning):
    """DINOv2 weights that are not the published file: numbers are not comparable with published ones."""


def weights_cache_path(arch: str) -> Path:
    return cached_file(PUBLISHED[arch].file)


def download_weights(arch: str, dest: Path) -> Path:
    """Download the published file to ``dest`` atomically; it only appears when size and sha256 match."""
    pub = PUBLISHED[arch]

    def check(sha: str, size: int) -> str | None:
        return None if pub.matches(sha, size) else (f"{pub.sha256[:16]}..." if pub.sha256 else f"{pub.size} bytes")

    return download_checked(pub.url, dest, check, f"DINOv2 {arch} weights")


def find_dinov2_weights(arch: str, path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The weights file to use for ``arch`` (see the module docstring for the order), or one clear GenlabError."""
    pub = PUBLISHED[arch]
    fetch = (lambda dest: download_weights(arch, dest)) if download else None
    return find_weights(path, option="--dinov2-weights", env=WEIGHTS_ENV, file=pub.file, url=pub.url,
                        what="DINOv2 weights", download=fetch)


def _resize(levels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic (a = -0.5, PIL's), antialiased when shrinking, rounded and clipped to uint8 levels."""
    return F.interpolate(levels, size=size, mode="bicubic", antialias=True, align_corners=False).round_().clamp_(0, 255)


class DINOv2Features(nn.Module):
    """x float (N, C, H, W) in [-1, 1], C 1 or 3, any size -> (CLS features (N, D), empty logits (N, 0))."""

    def __init__(self, arch: str, backbone: DinoVisionTransformer | None = None):
        super().__init__()
        self.arch = arch
        self.backbone = backbone if backbone is not None else DinoVisionTransformer(ARCHS[arch])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> the network's 224x224 ImageNet-normalised RGB input (dgm-eval's transform)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        levels = (x.float() + 1).mul(127.5).round()  # the uint8 levels the images came from, exactly
        h, w = levels.shape[-2:]
        # PIL resizes in two separable passes, each written out as uint8: width first, except when shrinking
        # the height of an image taller than wide (Pillow 13, measured). Done the same way the result is PIL's
        # to within a level or two on under 1% of the pixels of a noisy image; one 2-D pass, or the passes in
        # the other order, differ by up to ~20 levels on a quarter of them.
        if h > INPUT_SIZE and h > w:
            levels = _resize(levels, (INPUT_SIZE, w))
        if w != INPUT_SIZE:
            levels = _resize(levels, (levels.shape[-2], INPUT_SIZE))
        if levels.shape[-2] != INPUT_SIZE:
            levels = _resize(levels, (INPUT_SIZE, INPUT_SIZE))
        return (levels / 255 - self.mean) / self.std  # type: ignore[operator]  # buffers are tensors

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.backbone(self.preprocess(x).contiguous())
        return f, f.new_zeros(f.shape[0], 0)


def _guess_arch(state: dict[str, torch.Tensor]) -> str | None:
    token = state.get("cls_token")
    dims = {cfg.embed_dim: arch for arch, cfg in ARCHS.items()}
    return None if token is None else dims.get(int(token.shape[-1]))


def load_dinov2(arch: str, path: str | os.PathLike) -> tuple[DINOv2Features, str]:
    """The network with the backbone weights at ``path`` loaded strictly; also returns the file's sha256."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise GenlabError(f"cannot read DINOv2 weights {path}: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GenlabError(f"{path} is not a state dict of tensors")
    with torch.device("meta"):  # no random initialisation of what the file replaces (86M numbers for ViT-B)
        backbone = DinoVisionTransformer(ARCHS[arch])
    try:
        backbone.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as e:
        other = _guess_arch(state)
        hint = f"; it looks like a dinov2-{other} file" if other not in (None, arch) else ""
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise GenlabError(f"{path} does not fit the {PUBLISHED[arch].name} backbone ({first[:160]}){hint}: pass "
                          f"{PUBLISHED[arch].file} ({PUBLISHED[arch].url})") from None
    net = DINOv2Features(arch, backbone.float())
    sha = file_sha256(path)
    if not PUBLISHED[arch].matches(sha, path.stat().st_size):
        warnings.warn(
            f"{path} (sha256 {sha[:16]}...) is not the published {PUBLISHED[arch].file}: its FD_DINOv2 and "
            "other numbers are not comparable with published ones",
            DINOv2WeightsWarning,
            stacklevel=2,
        )
    return net, sha


def dinov2_extractor(
    arch: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
    batch_size: int = 64,
) -> FeatureExtractor:
    """The DINOv2 ``arch`` extractor from the weights ``find_dinov2_weights`` finds."""
    path = find_dinov2_weights(arch, weights, download=download)
    net, sha = load_dinov2(arch, path)
    return FeatureExtractor(
        net,
        name=PUBLISHED[arch].name,
        hash=weights_hash(net.state_dict()),
        feature_dim=ARCHS[arch].embed_dim,
        num_classes=0,
        batch_size=batch_size,
        device=device,
        info={
            "weights": str(path),
            "weights_sha256": sha[:16],
            "published_weights": published(arch, sha, Path(path).stat().st_size),
            "input_size": INPUT_SIZE,
            "preprocessing": PREPROCESSING,
            "features": "CLS token after the final norm",
        },
    )


def published(arch: str, sha: str, size: int) -> bool | str:
    """True for the published file; "size only" where no sha256 is pinned (ViT-L/14) and the size fits."""
    pub = PUBLISHED[arch]
    if not pub.matches(sha, size):
        return False
    return True if pub.sha256 is not None else "size only"


def _register(arch: str) -> None:
    def factory(
        dataset: object | None = None,
        resolution: int | None = None,
        channels: int | None = None,
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        download: bool = True,
        batch_size: int = 64,
    ) -> FeatureExtractor:
        """DINOv2 features for any dataset; ``dataset``, ``resolution`` and ``channels`` are unused."""
        return dinov2_extractor(arch, weights, device=device, download=download, batch_size=batch_size)

    FEATURE_EXTRACTORS.add(PUBLISHED[arch].name, factory)


for _arch in PUBLISHED:
    _register(_arch)
