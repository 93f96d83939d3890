"""Differentiable augmentation (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training").

The same random transforms are applied to every image D sees, real and fake, in the D and the G phases; each
transform is built from differentiable tensor ops, so G's gradient flows through it. A policy is a comma
separated list of transform groups, e.g. ``"color,translation,cutout"`` (``""`` = off). Images are float in
[-1, 1], (N, C, H, W); each image draws its own random parameters from the global torch RNG (so a resumed run
draws the same ones).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import ConfigError

Transform = Callable[[torch.Tensor], torch.Tensor]


def _uniform(x: torch.Tensor) -> torch.Tensor:
    """One U[0, 1) number per image, broadcastable over (C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Add a per-image offset in [-0.5, 0.5)."""
    return x + (_uniform(x) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's distance to its channel mean by a factor in [0, 2) (a no-op on grayscale)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x) * 2.0) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Scale the distance to the image's mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its side in each direction; uncovered pixels become 0."""
    n, _, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_y, max_y + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_x, max_x + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # read from a copy padded with one ring of zeros; sources outside the image land on that ring
    src_y = (rows - dy + 1).clamp(0, h + 1).expand(n, h, w)
    src_x = (cols - dx + 1).clamp(0, w + 1).expand(n, h, w)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return padded[batch, src_y, src_x].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Set a square of ``ratio`` times the side, centred anywhere in the image (clipped at borders), to 0."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - size_y // 2, cx - size_x // 2
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


#: policy word -> the transforms it applies, in order
POLICIES: dict[str, tuple[Transform, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> list[str]:
    """``"color, translation"`` -> ["color", "translation"]; unknown words raise ConfigError."""
    words = [w.strip() for w in (policy or "").split(",") if w.strip()]
    bad = [w for w in words if w not in POLICIES]
    if bad:
        raise ConfigError(f"train.diffaugment={policy!r}: unknown transform(s) {', '.join(bad)}; "
                          f"use a comma separated subset of {', '.join(POLICIES)} (\"\" = off)")
    return words


class DiffAugment:
    """A callable images -> augmented images for one policy; ``DiffAugment("")`` is the identity."""

    def __init__(self, policy: str = ""):
        self.words = parse_policy(policy)
        self.transforms = [t for w in self.words for t in POLICIES[w]]

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment({','.join(self.words)!r})"


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def make_augment(policy: str) -> Transform:
    """The ``StepContext.augment`` for a ``train.diffaugment`` policy (the identity function when off)."""
    aug = DiffAugment(policy)
    return aug if aug else identity


class AdaptiveAugment:
    """DiffAugment applied to each image with probability ``p``, adapted as in ADA (Karras et al. 2020): D's
    over-fitting is read as ``r = E[sign(D(x))]`` over the reals D scored, and every ``interval`` observed
    batches ``p`` moves by ``sign(r - target) * images / speed_images`` (so 0 -> 1 takes ``speed_images``
    images), clamped to [0, 1]. ``p`` starts at 0. Each image draws its own keep/augment coin from the global
    torch RNG when ``p`` > 0, so a resumed run (``state_dict``) draws the same ones.

    ``deferred`` (on a GPU): each interval's statistics are copied to the host without waiting and applied one
    interval later, so no step waits for the GPU to drain (reading them at once synchronised every ``interval``
    batches); ``p`` then trails by ``interval`` batches, small against ``speed_images``. On the CPU there is
    nothing to wait for and the statistics are applied at once.
    """

    def __init__(self, policy: str, target: float, interval: int = 4, speed_images: int = 100_000,
                 deferred: bool = False):
        self.aug = DiffAugment(policy)
        self.target, self.interval, self.speed_images = target, interval, speed_images
        self.deferred = deferred
        self.p = 0.0
        self._signs: torch.Tensor | None = None  # sum of sign(D(x)) since the last adjustment (no sync per step)
        self._images = 0
        self._batches = 0
        self._pending: tuple[torch.Tensor, Any] | None = None  # deferred: (host copy, its CUDA event or None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0.0:
            return x
        coin = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
        return torch.where(coin, self.aug(x), x)

    def observe(self, real_logits: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Count D's signs on a real batch; every ``interval`` batches adjust ``p`` (``reduce``: the mean over
        DDP ranks, so every rank keeps the same ``p``)."""
        s = real_logits.detach().float().sign().sum()
        self._signs = s if self._signs is None else self._signs + s
        self._images += real_logits.shape[0]
        self._batches += 1
        if self._batches % self.interval == 0:
            # torch.full, not torch.tensor: a host-to-device copy from pageable memory waits for the stream
            stat = torch.stack([self._signs, torch.full((), float(self._images), device=s.device)])
            if reduce is not None:
                stat = reduce(stat)
            if self.deferred:
                ready, self._pending = self._pending, self._copy_to_host(stat)
                if ready is not None:
                    self._adjust(ready)
            else:
                self._adjust((stat, None))
            self._signs, self._images = None, 0

    @staticmethod
    def _copy_to_host(stat: torch.Tensor) -> tuple[torch.Tensor, object]:
        if stat.device.type != "cuda":
            return stat.detach().cpu(), None
        host = stat.detach().to("cpu", non_blocking=True)  # into pinned memory, behind the queued work
        event = torch.cuda.Event()
        event.record()
        return host, event

    def _adjust(self, pending: tuple[torch.Tensor, Any]) -> None:
        stat, event = pending
        if event is not None:
            event.synchronize()  # recorded an interval ago: long done
        signs, images = stat.tolist()
        r = signs / max(images, 1.0)
        step = (1.0 if r > self.target else -1.0 if r < self.target else 0.0) * images / self.speed_images
        self.p = min(1.0, max(0.0, self.p + step))

    @property
    def sign_rate(self) -> float | None:
        """The current window's E[sign(D(x))] (None right after an adjustment); syncs."""
        return None if self._signs is None else float(self._signs) / max(self._images, 1)

    def state_dict(self) -> dict:
        out = {"p": self.p, "signs": 0.0 if self._signs is None else float(self._signs), "images": self._images,
               "batches": self._batches}
        if self._pending is not None:  # deferred: the statistics of the last interval, not applied yet
            stat, event = self._pending
            if event is not None:
                event.synchronize()
            out["pending"] = [float(v) for v in stat.tolist()]  # type: ignore[assignment]  # a list entry
        return out

    def load_state_dict(self, d: dict) -> None:
        self.p, self._images, self._batches = float(d["p"]), int(d["images"]), int(d["batches"])
        self._signs = torch.tensor(float(d["signs"])) if self._images else None
        self._pending = (torch.tensor(d["pending"], dtype=torch.float32), None) if d.get("pending") else None
