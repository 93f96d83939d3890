"""What every feature extractor is: a frozen network with a name, a weights hash and a fixed input contract.

Input contract (the seam's one uint8 edge): ``features(images)`` takes either uint8 (N, C, H, W) images in
[0, 255] or float images in [-1, 1]. Float images are first quantised with ``genlab.data.base.to_uint8``,
so generated samples go through exactly the pipeline that real images (stored as uint8) do, then mapped
back to [-1, 1] float32 for the network. NaN or infinite inputs raise a GenlabError.

``FEATURE_EXTRACTORS`` maps a CLI name to a factory
``factory(dataset=None, resolution=None, channels=None, weights=None, device="cpu") -> FeatureExtractor``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch import nn

from genlab.data.base import to_float, to_uint8
from genlab.errors import GenlabError
from genlab.metrics.stats import check_finite
from genlab.registry import Registry

FEATURE_EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature extractor")


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


class FeatureExtractor:
    """A frozen network ``net(x) -> (features, logits)`` for x float32 in [-1, 1] (N, C, H, W).

    name: the registry name; hash: weights_hash of the network (goes into every result);
    feature_dim: size of the features used by FID/KID/PR; num_classes: size of the logits (IS, coverage);
    resolution / channels: the input size the network needs, or None when it adapts (e.g. Inception
    resizes to 299 and repeats grey images to RGB).
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
        batch_size: int = 250,
        device: str | torch.device = "cpu",
        info: dict | None = None,
    ):
        self.net = net.to(device).to(memory_format=torch.channels_last).eval().requires_grad_(False)
        self.name = name
        self.hash = hash
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.resolution = resolution
        self.channels = channels
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.info = dict(info or {})  # extra facts for the protocol (e.g. weights file, test accuracy)

    def __repr__(self) -> str:
        return f"FeatureExtractor({self.name!r}, hash={self.hash!r}, feature_dim={self.feature_dim})"

    def describe(self) -> dict:
        return {"name": self.name, "hash": self.hash, "feature_dim": self.feature_dim,
                "num_classes": self.num_classes, **self.info}

    def check_input(self, images: torch.Tensor) -> None:
        c, h, w = images.shape[1:]
        if self.channels is not None and c != self.channels:
            raise GenlabError(f"extractor {self.name!r} takes {self.channels}-channel images, got {c}")
        if self.resolution is not None and (h, w) != (self.resolution, self.resolution):
            raise GenlabError(
                f"extractor {self.name!r} takes {self.resolution}x{self.resolution} images, got {h}x{w}"
            )

    @torch.inference_mode()
    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, feature_dim), logits (N, num_classes)), float32 on the CPU, in ``batch_size`` chunks."""
        images = as_uint8(images)
        self.check_input(images)
        feats, logits = [], []
        for i in range(0, images.shape[0], self.batch_size):
            # Canonical channels-last strides whatever the images' source (e.g. decoded HWC arrays with C=1):
            # the same conv kernels run, hence bitwise the same features; channels-last is also ~1.4x faster
            # through oneDNN convolutions on CPU.
            batch = images[i : i + self.batch_size].to(self.device)
            x = to_float(torch.empty_like(batch, memory_format=torch.channels_last).copy_(batch))
            f, logit = self.net(x)
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
