"""What every feature extractor is: a frozen network with a name, a weights hash and a fixed input contract.

Input contract (the seam's one uint8 edge): ``features(images)`` takes either uint8 (N, C, H, W) images in
[0, 255] or float images in [-1, 1], of any size and 1 or 3 channels. Float images are first quantised with
``genlab.data.base.to_uint8``, so generated samples go through exactly the pipeline that real images (stored
as uint8) do, then mapped back to [-1, 1] float32. NaN or infinite inputs raise a GenlabError.

Every extractor then brings the images to its own input size (``resolution`` x ``resolution``,
``channels``), the way Inception takes everything at 299 (``to_input``):
- colour first: RGB -> grey with the fixed ITU-R BT.601 luma weights 0.299, 0.587, 0.114 (Pillow's
  ``convert("L")``), in float; grey -> RGB repeats the channel (after resizing: cheaper, same result);
- size: ``torch.nn.functional.interpolate(mode=..., align_corners=False, antialias=...)`` as the extractor's
  ``resize`` says (``RESIZE_MODES``), clamped to [-1, 1]. ``resize`` is ``"bicubic"`` (Pillow's antialiased
  bicubic, a=-0.5) unless an extractor documents another: Inception keeps the published FID code's
  ``"bilinear"`` (its upsizing is that code's exactly; downsizing is antialiased). Two more modes reproduce the
  resizes published FID tables used, for the paper protocol (``genlab.metrics.protocols``): ``"legacy"``,
  pytorch-fid's ``F.interpolate(bilinear, align_corners=False)`` without antialiasing (aliased when shrinking),
  and ``"clean"``, clean-fid's resize (Pillow's bicubic on float pixels, per channel, clipped to [0, 255]),
  which torch's antialiased bicubic equals (tests/metrics/test_clean_resize.py checks it against clean-fid's
  own ``make_resizer``). Bicubic was chosen on the tiny Fashion-MNIST
  set: training images drawn at 64px (LANCZOS, as the data layer prepares a 64px run's data) score FID 1.5
  against the 28px test split under the 28px classifier, the same images at 28px 1.3; bilinear gave 2.2, and
  a 2x bilinear upsample 2.6 (bicubic) against 4.0 (bilinear). Non-square images are stretched to the square
  (genlab's images are square; folders are centre-cropped on reading).
Images already at the input size are passed through untouched, so real images at a dataset's native size
reach the network bit for bit. The protocol records the input size and method (``extractor_info.input``,
e.g. "28px/1ch", and ``extractor_info.resize``).

``FEATURE_EXTRACTORS`` maps a CLI name to a factory
``factory(dataset=None, resolution=None, channels=None, weights=None, device="cpu") -> FeatureExtractor``;
``resolution`` / ``channels`` are the generated images' size, which no extractor needs any more (kept so
that callers passing them keep working).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.base import to_float, to_uint8
from genlab.errors import GenlabError
from genlab.metrics.protocols import BATCH_SIZE
from genlab.metrics.stats import check_finite
from genlab.registry import Registry

FEATURE_EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature extractor")

#: ITU-R BT.601 luma weights (those of Pillow's convert("L")) for RGB -> grey
GREY_WEIGHTS = (0.299, 0.587, 0.114)
#: the ways an extractor may resize its input: name -> (``torch.nn.functional.interpolate`` mode, antialias)
RESIZES: dict[str, tuple[str, bool]] = {
    "bicubic": ("bicubic", True),  # Pillow's antialiased bicubic (a = -0.5)
    "bilinear": ("bilinear", True),  # upsizing as the published FID code; downsizing antialiased
    "legacy": ("bilinear", False),  # pytorch-fid's resize exactly (aliased when shrinking)
    "clean": ("bicubic", True),  # clean-fid's "clean" resize (Pillow's bicubic on float pixels)
}
RESIZE_MODES = tuple(RESIZES)
#: what the protocol says of each resize
RESIZE_NOTES = {"bicubic": "bicubic, antialiased", "bilinear": "bilinear, antialiased",
                "legacy": "legacy: pytorch-fid's bilinear, not antialiased",
                "clean": "clean: clean-fid's Pillow bicubic, antialiased"}


def to_input(x: torch.Tensor, resolution: int | None, channels: int | None, resize: str = "bicubic") -> torch.Tensor:
    """Float images (N, C, H, W) in [-1, 1] at ``resolution`` / ``channels`` (None: left as they are).

    The module docstring gives the method. Input at the target size is returned as is.
    """
    c, h, w = x.shape[1:]
    if channels is not None and c != channels:
        if c == 3 and channels == 1:
            weights = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * weights).sum(1, keepdim=True)
        elif c != 1 or channels != 3:
            raise GenlabError(f"images must have 1 or 3 channels, got {c}")
    elif c not in (1, 3):
        raise GenlabError(f"images must have 1 or 3 channels, got {c}")
    if resolution is not None and (h, w) != (resolution, resolution):
        mode, antialias = RESIZES[resize]
        x = F.interpolate(x, size=(resolution, resolution), mode=mode, align_corners=False, antialias=antialias)
        x = x.clamp_(-1.0, 1.0)
    if channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def weights_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 (first 16 hex digits) of a state dict's contents: names, dtypes, shapes and bytes.

    BatchNorm's ``num_batches_tracked`` counters are skipped: they never change an eval-mode output.
    """
    h = hashlib.sha256()
    for key in sorted(state_dict):
        if key.endswith("num_batches_tracked"):
            continue
        t = state_dict[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as they are; float images in [-1, 1] quantised (after a NaN check)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise GenlabError(f"images must be a (N, C, H, W) tensor, got {type(images).__name__} "
                          f"{tuple(getattr(images, 'shape', ()))}")
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise GenlabError(f"images must be uint8 or float in [-1, 1], got {images.dtype}")
    check_finite(images, "images")
    return to_uint8(images)


@contextlib.contextmanager
def full_float32(device: torch.device) -> Iterator[None]:
    """On a GPU: IEEE float32 matmuls and convolutions (no TF32) and no cuDNN autotuning while the block runs; the
    settings are put back afterwards. Training turns both on for the whole process (perf.apply_process_settings),
    and they move features in their last digits (TF32 keeps 10 mantissa bits), so reference statistics cached by
    a training run would differ from those ``genlab eval`` computes. Nothing changes on other devices."""
    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    new_api = hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision")  # PyTorch >= 2.9 (as perf.py)
    saved = ((matmul.fp32_precision, conv.fp32_precision) if new_api else (matmul.allow_tf32, cudnn.allow_tf32),
             cudnn.benchmark)
    try:
        if new_api:
            matmul.fp32_precision = conv.fp32_precision = "ieee"
        else:
            matmul.allow_tf32 = cudnn.allow_tf32 = False
        cudnn.benchmark = False
        yield
    finally:
        if new_api:
            matmul.fp32_precision, conv.fp32_precision = saved[0]
        else:
            matmul.allow_tf32, cudnn.allow_tf32 = saved[0]
        cudnn.benchmark = saved[1]


class FeatureExtractor:
    """A frozen network ``net(x) -> (features, logits)`` for x float32 in [-1, 1] (N, C, H, W).

    name: the registry name; hash: weights_hash of the network (goes into every result);
    feature_dim: size of the features used by FID/KID/PR; num_classes: size of the logits (IS, coverage);
    resolution / channels: the network's input size; images of any other size are brought to it by
    ``to_input`` (None: passed as they are, for a network that adapts itself); resize: its method
    (``RESIZE_MODES``). ``with_resize`` gives the same network with another resize (the paper protocol's).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        hash: str,
        feature_dim: int,
        num_classes: int,
        resolution: int | None = None,
        channels: int | None = None,
        batch_size: int = BATCH_SIZE,
        device: str | torch.device = "cpu",
        info: dict | None = None,
        resize: str = "bicubic",
    ):
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.net = net.to(device).to(memory_format=torch.channels_last).eval().requires_grad_(False)
        self.name = name
        self.hash = hash
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.resolution = resolution
        self.channels = channels
        self.batch_size = batch_size
        self.resize = resize
        self.default_resize = resize  # the extractor's own; another one (with_resize) is a variant of it
        self.device = torch.device(device)
        self.info = dict(info or {})  # extra facts for the protocol (e.g. weights file, test accuracy)

    def __repr__(self) -> str:
        return f"FeatureExtractor({self.name!r}, hash={self.hash!r}, feature_dim={self.feature_dim})"

    @property
    def input(self) -> str:
        """The input size as the protocol names it: ``"28px/1ch"`` (``"any"`` for a side it does not fix)."""
        res = "any" if self.resolution is None else f"{self.resolution}px"
        ch = "any" if self.channels is None else f"{self.channels}ch"
        return f"{res}/{ch}"

    def describe(self) -> dict:
        return {"name": self.name, "hash": self.hash, "feature_dim": self.feature_dim, "num_classes": self.num_classes,
                "input": self.input, "resize": RESIZE_NOTES[self.resize], **self.info}

    @property
    def variant(self) -> str:
        """"" for the extractor as registered; ``"resize-legacy"`` etc. for one given another resize (its features
        differ: cache keys and protocols name the variant)."""
        return "" if self.resize == self.default_resize else f"resize-{self.resize}"

    def with_resize(self, resize: str | None) -> FeatureExtractor:
        """The same network with another resize (None: this one as it is). Only for extractors that resize
        through ``to_input`` (a fixed input size); others preprocess themselves and refuse."""
        if resize is None or resize == self.resize:
            return self
        if resize not in RESIZES:
            raise GenlabError(f"unknown resize {resize!r}; choose from: {', '.join(RESIZE_MODES)}")
        if self.resolution is None:
            raise GenlabError(f"the {self.name} extractor does its own preprocessing; a resize ({resize}) applies "
                              "to extractors with a fixed input size such as inception")
        other = copy.copy(self)
        other.resize = resize
        return other

    def resizes(self, resolution: int, channels: int) -> str | None:
        """What ``features`` does to images of this size, e.g. ``"64px/3ch -> 28px/1ch"`` (None: nothing)."""
        res = self.resolution or resolution
        ch = self.channels or channels
        if (res, ch) == (resolution, channels):
            return None
        return f"{resolution}px/{channels}ch -> {res}px/{ch}ch"

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, feature_dim), logits (N, num_classes)), float32 on the CPU, in ``batch_size`` chunks."""
        images = as_uint8(images)
        if images.shape[1] not in (1, 3):
            raise GenlabError(f"extractor {self.name!r} takes 1- or 3-channel images, got {images.shape[1]}")
        feats, logits = [], []
        with full_float32(self.device):  # the same numbers whatever speed settings training left on
            for i in range(0, images.shape[0], self.batch_size):
                # Canonical channels-last strides whatever the images' source (e.g. decoded HWC arrays with C=1):
                # the same conv kernels run, hence bitwise the same features; channels-last is also ~1.4x faster
                # through oneDNN convolutions on CPU.
                batch = images[i : i + self.batch_size].to(self.device)
                x = to_float(torch.empty_like(batch, memory_format=torch.channels_last).copy_(batch))
                x = to_input(x, self.resolution, self.channels, self.resize)
                f, logit = self.net(x.contiguous(memory_format=torch.channels_last))
                feats.append(f.float().cpu())
                logits.append(logit.float().cpu())
        if not feats:
            return torch.empty(0, self.feature_dim), torch.empty(0, self.num_classes)
        return torch.cat(feats), torch.cat(logits)


def get_extractor(
    name: str,
    *,
    dataset: object | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    weights: str | None = None,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """Build the extractor registered as ``name`` (a checked choice; see ``FEATURE_EXTRACTORS.names()``)."""
    factory = FEATURE_EXTRACTORS.get(name)
    return factory(dataset=dataset, resolution=resolution, channels=channels, weights=weights, device=device)
