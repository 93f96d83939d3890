"""Pixel conversion rules shared by every dataset."""
from __future__ import annotations

import numpy as np
from PIL import Image

from genlab.data.images import fit_array, fit_image, rgb_to_l, to_mode


def test_rgb_to_l_is_pillows_formula():
    rgb = np.random.default_rng(0).integers(0, 256, size=(4, 3, 9, 9), dtype=np.uint8)
    for i in range(4):
        ref = np.asarray(Image.fromarray(rgb[i].transpose(1, 2, 0)).convert("L"))
        assert np.array_equal(rgb_to_l(rgb)[i, 0], ref)


def test_fit_array_equals_per_image_fit_image():
    rng = np.random.default_rng(1)
    for c, size, res, channels in ((1, 28, 32, 1), (3, 32, 16, 3), (3, 32, 7, 1), (1, 28, 28, 3)):
        arr = rng.integers(0, 256, size=(5, c, size, size), dtype=np.uint8)
        out = fit_array(arr, res, channels)
        assert out.shape == (5, channels, res, res) and out.flags.c_contiguous
        for i in range(5):
            im = Image.fromarray(arr[i, 0] if c == 1 else arr[i].transpose(1, 2, 0))
            assert np.array_equal(out[i], fit_image(im, res, channels).transpose(2, 0, 1))


def test_modes_alpha_palette_and_wide_grey():
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    p.info["transparency"] = 1
    assert np.asarray(to_mode(p, 3)).tolist() == [[[255, 255, 255]] * 4] * 4
    la = Image.new("LA", (2, 2), (0, 0))
    assert np.asarray(to_mode(la, 1)).max() == 255
    wide = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    assert np.asarray(to_mode(wide, 1)).tolist() == [[0, 100, 255]]
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    assert np.asarray(to_mode(cmyk, 3)).tolist() == [[[255, 255, 255]] * 2] * 2


def test_non_square_is_centre_cropped():
    arr = np.zeros((10, 30), dtype=np.uint8)
    arr[:, 10:20] = 255  # only the centre square is white
    out = fit_image(Image.fromarray(arr), 5, 1)
    assert out.shape == (5, 5, 1) and out.min() >= 230  # lanczos rings a little at the crop edge
