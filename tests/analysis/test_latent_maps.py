"""Latent plane, traversal, encoded-split scatter and PCA."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.analysis import traversal as tv
from genlab.errors import GenlabError
from genlab.sampling import load_run


def test_axis_values():
    q = tv.axis_values(5, grid="quantile")
    assert np.allclose(q, -q[::-1]) and q[2] == pytest.approx(0) and q[-1] == pytest.approx(1.6448536, rel=1e-5)
    assert np.allclose(tv.axis_values(3, radius=2, grid="linear"), [-2, 0, 2])
    with pytest.raises(GenlabError, match="unknown"):
        tv.axis_values(3, grid="polar")


def test_latent_plane_orientation(vae_run):
    run = load_run(vae_run)
    plane = tv.latent_plane(run, n=4, grid="linear", radius=2.0)
    assert plane.images.shape == (16, 1, 28, 28)
    assert plane.ys[0] > plane.ys[-1] and plane.xs[0] < plane.xs[-1]  # top row = largest z[1]
    r, c = 1, 3  # row 1, column 3 decodes z = (xs[3], ys[1])
    z = torch.tensor([[plane.xs[c], plane.ys[r]]], dtype=torch.float32)
    assert torch.allclose(plane.images[r * 4 + c], run.generate(z)[0], atol=1e-5)


def test_latent_plane_checks_dims(gan_run):
    run = load_run(gan_run)
    with pytest.raises(GenlabError, match="out of range"):
        tv.latent_plane(run, dims=(0, 8))
    with pytest.raises(GenlabError, match="two different"):
        tv.latent_plane(run, dims=(1, 1))
    plane = tv.latent_plane(run, n=3, dims=(2, 5))  # above 2-D: two dims vary, the rest stay at zero
    assert plane.images.shape[0] == 9


def test_traversal_changes_one_dimension_per_row(gan_run):
    run = load_run(gan_run)
    t = tv.traversal(run, dims=[1, 4], steps=5, radius=2.0, seed=7)
    assert t.images.shape == (10, 1, 28, 28) and t.dims == [1, 4]
    base = run.latents(1, 7).cpu()[0]
    z = base.clone()
    z[4] = float(t.values[3])
    assert torch.allclose(t.images[5 + 3], run.generate(z[None])[0], atol=1e-5)
    assert not torch.allclose(t.images[0], t.images[4])
    assert tv.traversal(run, steps=3).dims == list(range(8))  # default: the first max_dims dimensions


def test_encode_split_and_pca(vae_run):
    run = load_run(vae_run)
    enc = tv.encode_split(run, "test", limit=50)
    assert enc.points.shape == (50, 2) and enc.labels.shape == (50,) and len(enc.class_names) == 10
    pts, ratio = tv.pca_2d(enc.points)
    assert np.array_equal(pts, enc.points) and np.array_equal(ratio, [1, 1])  # 2-D passes through


def test_pca_finds_the_main_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5)) * np.array([0.1, 5.0, 0.1, 2.0, 0.1])
    pts, ratio = tv.pca_2d(x)
    assert ratio[0] > ratio[1] > 0.1 and ratio.sum() > 0.95
    assert abs(np.corrcoef(pts[:, 0], x[:, 1])[0, 1]) > 0.99
    assert abs(np.corrcoef(pts[:, 1], x[:, 3])[0, 1]) > 0.99
    assert np.allclose(tv.pca_2d(-x)[0], -pts) or np.allclose(np.abs(tv.pca_2d(-x)[0]), np.abs(pts))


def test_scatter_needs_an_encoder(gan_run):
    with pytest.raises(GenlabError, match="needs a VAE"):
        tv.encode_split(load_run(gan_run))
