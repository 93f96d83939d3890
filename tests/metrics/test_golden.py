"""Golden values: the whole protocol pinned end to end.

A small image set computed here from closed-form patterns (no RNG), a fixed extractor whose weights are
closed-form too (sines of their index), and ``evaluate`` with fixed options give FID, KID, IS and
precision/recall/density/coverage values pinned below to 1e-6 relative. The generated side is 24px RGB
float images and the reference 16px grey uint8, so the path crosses every protocol step: quantisation to
uint8, the extractor's recolouring (BT.601 luma) and antialiased bicubic resize to its 16px/1ch input,
float32 features in batches of 64 (generated) and 50 (reference), float64 statistics, KID subsets and PR
subsampling drawn from the seed. Any change to one of them fails here loudly.

Updating the values is a deliberate protocol change: when a change is meant to move these numbers (a new
resize, another colour formula, other statistics), check that it is the only difference (the batch-size and
reference tests still pass), copy the ``got`` dict from this test's failure message into ``GOLDEN``, bump
``genlab.metrics.refstats.REFSTATS_VERSION`` (cached reference statistics are no longer valid), and say
in the commit message and the changelog that FIDs computed before are not comparable with those after.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data.base import ImageData, to_float
from genlab.metrics import EvalOptions, evaluate, flatten_results
from genlab.metrics.features.base import FeatureExtractor, weights_hash

#: pinned 2026-12-01 (issue 14: extractors resize their input, antialiased bicubic; BT.601 luma)
GOLDEN: dict[str, float] = {
    "fid": 0.07630097156541682,
    "kid/mean": 0.02213627208896236,
    "kid/std": 0.003915063459670924,
    "is/mean": 1.8545311182478426,
    "is/std": 0.11317440801202347,
    "pr/precision": 0.368,
    "pr/recall": 0.32,
    "pr/density": 0.20266666666666666,
    "pr/coverage": 0.204,
}


def pattern_images(n: int, side: int, channels: int, phase: float) -> np.ndarray:
    """uint8 (n, C, side, side): a soft blob whose place, size and colour follow sines of the image index."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) / side
    out = np.empty((n, channels, side, side))
    for i in range(n):
        cy, cx = 0.5 + 0.3 * np.sin(1.3 * i + phase), 0.5 + 0.3 * np.cos(0.7 * i + 2 * phase)
        r = 0.12 + 0.06 * np.sin(0.37 * i)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        stripes = 0.15 * (1 + np.sin(2 * np.pi * (3 + i % 4) * (xx + yy) + phase))
        for c in range(channels):
            out[i, c] = 0.8 * blob * (0.6 + 0.4 * np.cos(i + 2.1 * c + phase)) + stripes
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


class ClosedFormNet(nn.Module):
    """conv(1->8, s2) relu conv(8->16, s2) relu mean -> 16-d features f; logits linear(sin(10 f)) (the sine
    takes out the features' common offset, so predictions vary and IS is informative). Weights are
    a sin(0.731 k + j) over the k-th entry of the j-th tensor, a = 0.5 for the convolutions, 2 for the
    linear layer, 0.05 for biases: no RNG involved."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, 2, 1)
        self.c2 = nn.Conv2d(8, 16, 3, 2, 1)
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():
            for j, (name, p) in enumerate(self.named_parameters()):
                k = torch.arange(p.numel(), dtype=torch.float64)
                a = 2.0 if name == "fc.weight" else 0.5 if p.ndim > 1 else 0.05
                p.copy_((torch.sin(0.731 * k + j) * a).reshape(p.shape))

    def forward(self, x):
        f = torch.relu(self.c2(torch.relu(self.c1(x)))).mean(dim=(2, 3))
        return f, self.fc(torch.sin(10 * f))


def golden_extractor() -> FeatureExtractor:
    net = ClosedFormNet()
    return FeatureExtractor(net, name="golden", hash=weights_hash(net.state_dict()), feature_dim=16, num_classes=10,
                            resolution=16, channels=1, batch_size=64)


def test_golden_values():
    generated = to_float(torch.from_numpy(pattern_images(300, 24, 3, phase=0.4)))
    reference = ImageData(images=torch.from_numpy(pattern_images(250, 16, 1, phase=0.0)), name="golden-ref")
    pos = [0]

    def sampler(n: int) -> torch.Tensor:
        pos[0] += n
        return generated[pos[0] - n : pos[0]]

    options = EvalOptions(kid_subsets=20, kid_subset_size=100, is_splits=5, pr_k=3)
    result = evaluate(sampler, 300, reference, golden_extractor(), ("fid", "kid", "is", "pr"), batch_size=50,
                      options=options, cache=False)
    fixed = ("subsets", "subset_size", "splits", "/k")  # the options, not results
    got = {k: v for k, v in flatten_results(result).items() if not k.endswith(fixed)}
    assert result["protocol"]["generated"]["resized"] == "24px/3ch -> 16px/1ch"
    assert got.keys() == GOLDEN.keys(), f"got = {got!r}"
    for key, value in GOLDEN.items():
        assert got[key] == pytest.approx(value, rel=1e-6), f"{key}: got = {got!r}"
