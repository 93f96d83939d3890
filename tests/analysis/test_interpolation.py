"""Latent interpolation: the maths of lerp/slerp, paths through several points, decoding, PNG strips and GIFs."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from genlab import grids
from genlab.analysis import interpolation as interp
from genlab.errors import GenlabError
from genlab.sampling import load_run


def test_slerp_hits_the_ends_and_stays_on_the_sphere():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    b = b / b.norm() * a.norm()  # same radius: the great-circle path keeps it
    t = torch.linspace(0, 1, 7)
    path = interp.slerp(a, b, t)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(7), rtol=1e-5)
    mid_lerp = interp.lerp(a, b, torch.tensor([0.5]))[0]
    assert mid_lerp.norm() < 0.9 * a.norm()  # the straight line cuts through the low-density middle
    # equal angular steps along the circle
    cos = [float(torch.nn.functional.cosine_similarity(path[i], path[i + 1], dim=0)) for i in range(6)]
    assert max(cos) - min(cos) < 1e-5


def test_slerp_of_parallel_vectors_falls_back_to_a_line():
    a = torch.ones(8)
    path = interp.slerp(a, 3 * a, torch.linspace(0, 1, 3))
    assert torch.isfinite(path).all() and torch.allclose(path[1], 2 * a)


def test_path_through_three_points_visits_each_once():
    pts = torch.eye(3) * 2
    path = interp.interpolate_path(pts, steps=5, method="lerp")
    assert path.shape == (interp.frame_count(3, 5), 3) == (9, 3)
    assert torch.equal(path[0], pts[0]) and torch.equal(path[4], pts[1]) and torch.equal(path[8], pts[2])
    with pytest.raises(GenlabError, match="unknown"):
        interp.interpolate_path(pts, 5, "cubic")
    with pytest.raises(GenlabError, match="at least 2"):
        interp.interpolate_path(pts, 1)
    with pytest.raises(GenlabError, match="two latent points"):
        interp.interpolate_path(pts[:1], 5)


def test_interpolation_ends_are_the_seeds_own_samples(gan_run):
    run = load_run(gan_run)
    assert torch.equal(interp.seed_latents(run, [3]), run.latents(1, 3).cpu())
    images = interp.interpolate(run, interp.seed_latents(run, [3, 11]), steps=6)
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert torch.allclose(images[0], run.sample(1, seed=3)[0], atol=1e-6)
    assert torch.allclose(images[-1], run.sample(1, seed=11)[0], atol=1e-6)
    assert not torch.allclose(images[2], images[3])


def test_rows_png_and_gif(gan_run, tmp_path):
    run = load_run(gan_run)
    images = interp.interpolation_rows(run, rows=3, steps=5, method="slerp", seed=1)
    assert images.shape[0] == 15
    png = grids.save_strip(images, tmp_path / "i.png", nrow=5, scale=2)
    with Image.open(png) as im:
        assert im.size == ((5 * 30 + 2) * 2, (3 * 30 + 2) * 2)  # 28px cells + 2px padding, doubled
    gif = grids.save_gif(images, tmp_path / "i.gif", rows=3, scale=1, bounce=True)
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 5 + 3  # forth, then back without repeating the ends
        assert im.size == (3 * 30 + 2, 30 + 2)  # each frame: one step of every row side by side
    with pytest.raises(GenlabError, match="cannot be split"):
        grids.gif_bytes(images[:14], rows=3)


def test_latents_from_noise_file(gan_run):
    run = load_run(gan_run)
    z = interp.load_latents(gan_run / "noise.pt", [0, 5])
    fixed = torch.load(gan_run / "noise.pt", weights_only=True)["z"]
    assert torch.equal(z, fixed[[0, 5]])
    with pytest.raises(GenlabError, match="out of range"):
        interp.load_latents(gan_run / "noise.pt", [999])
    with pytest.raises(GenlabError, match="latent_dim=8"):
        interp.interpolate(run, torch.zeros(2, 5))


def test_conditional_label_checks(gan_run):
    run = load_run(gan_run)
    with pytest.raises(GenlabError, match="not class-conditional"):
        interp.labels_for(run, 4, label=1)
    assert interp.labels_for(run, 4, None) is None


def test_vae_interpolates_between_encoded_images(vae_run):
    from genlab.data import load_dataset
    from genlab.data.base import to_float

    run = load_run(vae_run)
    data = load_dataset(run.cfg.data, "test")
    mu = interp.encode_images(run, to_float(data.images[:2]))
    assert mu.shape == (2, 2) and torch.isfinite(mu).all()
    images = interp.interpolate(run, mu, steps=4, method="lerp")
    assert images.shape == (4, 1, 28, 28)
    assert torch.allclose(images[0], run.generate(mu[:1])[0], atol=1e-6)
    assert math.isclose(float(interp.lerp(mu[0], mu[1], torch.tensor([1.0]))[0, 0]), float(mu[1, 0]), abs_tol=1e-6)


def test_encoding_needs_an_encoder(gan_run):
    with pytest.raises(GenlabError, match="no encoder"):
        interp.encode_images(load_run(gan_run), torch.zeros(1, 1, 28, 28))
