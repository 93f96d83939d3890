"""rfid and recon of a tiny trained VAE against a direct computation; a GAN asked for rfid gets one line."""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import load_dataset
from genlab.data.base import to_float
from genlab.evaluation import evaluate_loaded, run_default_metrics
from genlab.metrics import FeatureStats, compute_features, fid_from_stats
from genlab.metrics.features.classifier import classifier_extractor
from genlab.sampling import load_run

EXE = Path(sys.executable).with_name("genlab")


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


def test_gan_run_asked_for_rfid_gets_one_line(gan_run, tmp_path):
    assert "rfid" not in run_default_metrics(load_run(gan_run))
    r = subprocess.run([str(EXE), "eval", str(gan_run), "--metrics", "fid,rfid", "--num-samples", "16",
                        "--out", str(tmp_path / "e.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "rfid needs a model with an encoder" in lines[0] and "dcgan" in lines[0], r.stderr
    assert not (tmp_path / "e.json").exists()
