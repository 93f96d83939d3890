"""Statistics files that travel, both ways, with pytorch-fid's own code (its wheel's ``fid_score.py``:
``compute_statistics_of_path``, ``calculate_activation_statistics``, ``save_fid_stats``,
``calculate_frechet_distance``; tests/metrics/reference_code.py). Its feature network (``InceptionV3``,
``get_activations``) needs torchvision, so there the features under test are handed to pytorch-fid's statistics
code; everything from the activations on (mean, covariance, the file, its loading, the Frechet distance) is
pytorch-fid's. And the checks ``read_stats`` makes before any image is processed."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.metrics import EvalOptions, evaluate, evaluate_folder
from genlab.metrics.reference import iter_folder
from genlab.metrics.stats import FeatureStats
from genlab.metrics.statsfile import read_stats, write_stats

from .conftest import blob_images, make_random_extractor, noise_images
from .reference_code import functions
from .test_evaluate import sampler_from

EXE = Path(sys.executable).with_name("genlab")


class NoNetwork:
    """pytorch-fid's InceptionV3 stands for the network that ``get_activations`` runs; here the activations come
    from genlab's extractor instead, so only its class constant is needed."""

    BLOCK_INDEX_BY_DIM = {32: 0}

    def __init__(self, blocks):
        self.blocks = blocks

    def to(self, device):
        return self


def pytorch_fid(extractor) -> dict:
    """pytorch-fid's functions; ``get_activations(files, ...)`` = genlab's extractor on the PNG files."""

    def get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=1):
        images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("L")) for f in files]))[:, None]
        return extractor.features(images)[0].numpy()

    namespace = {"np": np, "linalg": scipy.linalg, "os": os, "pathlib": pathlib, "InceptionV3": NoNetwork,
                 "get_activations": get_activations, "IMAGE_EXTENSIONS": {"png"}}
    return functions("pytorch_fid", "pytorch_fid/fid_score.py",
                     ("calculate_frechet_distance", "calculate_activation_statistics", "compute_statistics_of_path",
                      "save_fid_stats"), namespace)


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images[:, 0].numpy()):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture
def folders(tmp_path, real_images):
    """Generated images unlike the real ones (noise on half of them): an FID well above 0, so that pytorch-fid's
    float32 mean of the activations (``np.mean`` keeps their dtype) stays below 1e-6 of it."""
    generated = torch.cat([blob_images(100, seed=5), noise_images(100, seed=6)])
    return write_pngs(tmp_path / "generated", generated), write_pngs(tmp_path / "real", real_images[:300])


def test_pytorch_fid_reads_genlabs_file_and_gives_genlabs_fid(tmp_path, folders, extractor):
    generated, real = folders
    path = tmp_path / "real_stats.npz"
    stats = FeatureStats.from_features(extractor.features(torch.cat(list(iter_folder(real))))[0].numpy())
    write_stats(path, stats, {"extractor": extractor.describe()})
    ours = evaluate_folder(generated, None, extractor, ["fid"], options=EvalOptions(reference_stats=str(path)))

    ref = pytorch_fid(extractor)
    m2, s2 = ref["compute_statistics_of_path"](str(path), None, 50, 32, "cpu")  # its .npz loading
    m1, s1 = ref["compute_statistics_of_path"](str(generated), None, 50, 32, "cpu")  # its statistics
    theirs = ref["calculate_frechet_distance"](m1, s1, m2, s2)
    assert m2.shape == (32,) and s2.shape == (32, 32) and theirs > 1.0
    assert ours["fid"] == pytest.approx(theirs, rel=1e-6)
    p = ours["protocol"]["reference"]
    assert p["stats_file"] == str(path) and len(p["stats_sha256"]) == 64 and p["num_images"] == 300
    assert ours["protocol"]["num_reference"] == 300


def test_genlab_reads_a_file_written_by_pytorch_fid(tmp_path, folders, extractor):
    generated, real = folders
    ref = pytorch_fid(extractor)
    path = tmp_path / "pytorch_fid_stats.npz"
    ref["save_fid_stats"]([str(real), str(path)], 50, "cpu", 32)  # np.savez_compressed(mu=, sigma=)
    m1, s1 = ref["compute_statistics_of_path"](str(generated), None, 50, 32, "cpu")
    theirs = ref["calculate_frechet_distance"](m1, s1, *ref["compute_statistics_of_path"](str(path), None, 50, 32,
                                                                                         "cpu"))
    # the same generated images through genlab's sampling path, against pytorch-fid's file
    images = torch.cat(list(iter_folder(generated)))
    ours = evaluate(sampler_from(images), len(images), None, extractor, ["fid", "fid_inf"],
                    options=EvalOptions(reference_stats=str(path), fid_inf_min=50))
    assert ours["fid"] == pytest.approx(theirs, rel=1e-6)
    assert ours["protocol"]["num_reference"] is None  # pytorch-fid's files do not say
    with np.load(path) as f:
        assert set(f.files) == {"mu", "sigma"}


def stats_file(path: Path, **entries) -> Path:
    np.savez(path, **entries)
    return path


def test_bad_files_are_one_clear_line(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    good = stats_file(tmp_path / "good.npz", mu=mu, sigma=sigma)
    stats, desc = read_stats(good, feature_dim=4)
    assert np.array_equal(stats.sigma, sigma) and desc["num_images"] is None and desc["feature_dim"] == 4
    cases = {
        "no sigma": ({"mu": mu}, "has no sigma"),
        "shapes": ({"mu": mu, "sigma": sigma[:3, :3]}, "do not fit"),
        "asymmetric": ({"mu": mu, "sigma": sigma + np.triu(np.ones((4, 4)), 1)}, "not symmetric"),
        "nan": ({"mu": np.where(np.arange(4) == 1, np.nan, mu), "sigma": sigma}, "NaN or infinite"),
        "negative": ({"mu": mu, "sigma": -sigma}, "negative variances"),
    }
    for name, (entries, message) in cases.items():
        with pytest.raises(GenlabError, match=message):
            read_stats(stats_file(tmp_path / f"{name}.npz", **entries))
    with pytest.raises(GenlabError, match="4-d statistics but the extractor's features are 2048-d"):
        read_stats(good, feature_dim=2048)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(GenlabError, match="cannot read"):
        read_stats(tmp_path / "broken.npz")


def test_a_statistics_file_refuses_metrics_that_need_reference_rows_before_sampling(tmp_path, extractor):
    path = write_stats(tmp_path / "s.npz", FeatureStats.from_features(np.random.default_rng(0).normal(size=(40, 32))))
    drawn = []

    def sample_fn(n):
        drawn.append(n)
        return torch.zeros(n, 1, 16, 16)

    with pytest.raises(GenlabError, match="kid need.* feature rows"):
        evaluate(sample_fn, 8, None, extractor, ["fid", "kid"], options=EvalOptions(reference_stats=str(path)))
    other = write_stats(tmp_path / "d.npz", FeatureStats.from_features(np.random.default_rng(0).normal(size=(40, 8))))
    with pytest.raises(GenlabError, match="8-d statistics"):
        evaluate(sample_fn, 8, None, extractor, ["fid"], options=EvalOptions(reference_stats=str(other)))
    assert drawn == []  # refused before any image was drawn
    made_by = write_stats(tmp_path / "m.npz", FeatureStats.from_features(np.ones((3, 32)) + np.eye(3, 32)),
                          {"extractor": {"name": "classifier"}})
    with pytest.raises(GenlabError, match="holds classifier statistics, not randconv's"):
        evaluate(sample_fn, 8, None, extractor, ["fid"], options=EvalOptions(reference_stats=str(made_by)))


def test_cli_features_stats_then_eval_folder_against_it(tmp_path, other_real_images, classifier_cache, tiny_fmnist):
    """`genlab features stats DATASET:SPLIT -o F.npz` writes what pytorch-fid's loader reads; `genlab eval-folder
    --reference-stats` refuses a file that does not fit the extractor in one line, before any image is read (the
    classifier extractor of the tiny dataset: no Inception on a CPU here)."""
    out = tmp_path / "test.npz"
    root = ["--root", str(tiny_fmnist), "--no-verify"]
    run = subprocess.run([str(EXE), "features", "stats", "fashion-mnist:test", "-o", str(out), "--features",
                          "classifier", *root], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "statistics of 64 images, classifier features (128-d" in " ".join(run.stdout.split())
    ref = pytorch_fid(make_random_extractor())
    mu, sigma = ref["compute_statistics_of_path"](str(out), None, 50, 128, "cpu")
    assert mu.shape == (128,) and sigma.shape == (128, 128)
    stats, desc = read_stats(out, 128)
    assert desc["genlab"]["extractor"]["name"] == "classifier" and desc["genlab"]["source"]["split"] == "test"
    assert desc["num_images"] == 64 and np.array_equal(stats.mu, mu)
    bad = stats_file(tmp_path / "bad.npz", mu=np.zeros(16), sigma=np.eye(16))
    generated = write_pngs(tmp_path / "generated", other_real_images[:2])
    run = subprocess.run([str(EXE), "eval-folder", str(generated), "--against", "fashion-mnist:test", *root,
                          "--reference-stats", str(bad), "--features", "classifier", "--metrics", "fid",
                          "--out", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "16-d statistics but the extractor's features are 128-d" in " ".join((run.stdout + run.stderr).split())
    assert not (tmp_path / "r.json").exists()
