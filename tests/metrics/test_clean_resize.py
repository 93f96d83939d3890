"""The paper protocol's resizes equal the published code's: ``clean`` is clean-fid's own ``make_resizer("PIL",
False, "bicubic", (299, 299))`` and ``legacy`` clean-fid's ``legacy_pytorch`` resizer (pytorch-fid's
``F.interpolate(bilinear)``), both run from the clean-fid wheel (tests/metrics/reference_code.py) on the same
uint8 images: up from 28 px, down from 512 px, and 300 -> 299."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data.base import to_float
from genlab.metrics.features.base import to_input

from .reference_code import module


@pytest.fixture(scope="module")
def cleanfid_resize():
    return module("clean_fid", "cleanfid/resize.py")


def levels(images: np.ndarray, mode: str) -> np.ndarray:
    """genlab's resize of (H, W, C) uint8 images to 299, as float pixel levels in [0, 255], (299, 299, 3)."""
    x = to_float(torch.from_numpy(images).permute(2, 0, 1)[None].contiguous())
    return ((to_input(x, 299, 3, mode)[0].permute(1, 2, 0) + 1) * 127.5).numpy()


@pytest.mark.parametrize("size", [28, 300, 512])
def test_clean_and_legacy_equal_clean_fids_own_resizers(cleanfid_resize, size):
    rng = np.random.default_rng(size)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    clean = cleanfid_resize.make_resizer("PIL", False, "bicubic", (299, 299))(img)
    legacy = cleanfid_resize.make_resizer("PyTorch", False, "bilinear", (299, 299))(img)
    assert clean.shape == legacy.shape == (299, 299, 3) and clean.dtype == np.float32
    # Pillow resamples float images in float32: a hundredth of a level apart at most (measured 0.008 at 300 px)
    np.testing.assert_allclose(levels(img, "clean"), clean, rtol=0, atol=0.02)
    np.testing.assert_allclose(levels(img, "legacy"), legacy, rtol=0, atol=1e-3)
    if size > 299:  # negative control: genlab's own Inception resize antialiases where pytorch-fid aliases
        assert np.abs(levels(img, "bilinear") - legacy).max() > 1.0


def test_grey_images_are_resized_as_clean_fid_resizes_their_rgb_copy(cleanfid_resize):
    """clean-fid reads every image as RGB; genlab resizes one grey channel and repeats it: the same pixels."""
    grey = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    clean = cleanfid_resize.make_resizer("PIL", False, "bicubic", (299, 299))(rgb)
    x = to_float(torch.from_numpy(grey)[None, None].contiguous())
    ours = ((to_input(x, 299, 3, "clean")[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    np.testing.assert_allclose(ours, clean, rtol=0, atol=0.02)
