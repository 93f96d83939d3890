"""rfid and recon of a tiny trained VAE against a direct computation; which runs default to them."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from genlab.data import load_dataset
from genlab.data.base import to_float
from genlab.evaluation import evaluate_loaded, run_default_metrics
from genlab.metrics import FeatureStats, compute_features, fid_from_stats
from genlab.metrics.features.classifier import classifier_extractor
from genlab.sampling import load_run


@pytest.fixture
def classifier_cache(classifier_cache_28, tmp_path, monkeypatch):
    dest = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, dest)
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(dest))
    return dest


def test_vae_rfid_and_recon_match_a_direct_computation(vae_run, classifier_cache):
    run = load_run(vae_run)
    assert run_default_metrics(run)[-2:] == ("rfid", "recon")
    result = evaluate_loaded(run, metrics="fid,rfid,recon,copies", features="classifier", num_samples=64,
                             batch_size=32)
    test = load_dataset(run.cfg.data, split="test")
    x = to_float(test.images)
    with torch.no_grad():
        rec = run.nets["G"](run.nets["E"](x)[0]).float()
    diff = (rec - x).double()
    assert result["recon"]["mse"] == pytest.approx(float((diff ** 2).mean()), rel=1e-6)
    assert result["recon"]["mae"] == pytest.approx(float(diff.abs().mean()), rel=1e-6)
    assert result["recon"]["num_images"] == len(test) == result["protocol"]["reconstructed"]["images"]
    ext = classifier_extractor(dataset=run.cfg.data, train=False)
    assert ext.hash == result["protocol"]["extractor_hash"]

    def stats(images):
        return FeatureStats.from_features(compute_features(ext, [images]))

    with pytest.warns(UserWarning, match="singular"):  # 64 images of 128-d features
        want = fid_from_stats(stats(rec), stats(x))
    assert isinstance(result["rfid"], float) and math.isfinite(result["rfid"])
    assert result["rfid"] == pytest.approx(want, rel=1e-6)
    assert result["copies"]["num_train"] == 128  # the run's data.limit: the images it trained on
    assert 0.0 <= result["copies"]["copy_rate"] <= 1.0 and np.isfinite(result["copies"]["real_rate"])


def test_gan_runs_default_to_no_reconstruction_metrics(gan_run):
    # asked for anyway, a GAN run gets one line through the real CLI: tests/cli/test_bad_input.py "eval-rfid-gan"
    assert run_default_metrics(load_run(gan_run)) == ("fid", "kid", "is", "pr", "coverage", "fid_inf", "ci95", "copies")
    assert run_default_metrics(load_run(gan_run), "dinov2-vits14") == ("fid", "kid", "pr", "fid_inf", "ci95", "copies")
