"""Run folders written by genlab 0.1.0 (tests/fixtures/runs_v010, made by make_runs_v010.py before the core
redesign) keep working: they sample, plot, evaluate and resume with today's genlab, through the real CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v010"
RUNS = ("dcgan-ema", "cgan", "conv-vae")


@pytest.fixture(scope="module")
def data_and_cache(tiny_fmnist, tmp_path_factory) -> tuple[Path, Path]:
    """The data the fixtures were trained on (same files, same seed) found through $GENLAB_DATA_DIR, as their
    configs say (data.root null), and a cache with the classifier extractor for exactly that dataset key
    (trained once with few steps; the default >= 1000 steps would cost minutes)."""
    from genlab.metrics.features import train_classifier

    data = tmp_path_factory.mktemp("data")
    (data / "fashion-mnist").symlink_to(tiny_fmnist)
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_DATA_DIR", str(data))
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        train_classifier("fashion-mnist", 28, 1, epochs=8, batch_size=32, verify=False)
    return data, cache


@pytest.fixture
def env(data_and_cache, tmp_path) -> dict:
    data, cache = data_and_cache
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    return {**os.environ, "GENLAB_DATA_DIR": str(data), "GENLAB_CACHE_DIR": str(mine)}


def genlab(*args: str, env: dict) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    return r


def copy_run(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


@pytest.mark.parametrize("name", RUNS)
def test_a_v010_run_samples_the_same_images_as_its_generator(name, env, tmp_path):
    from genlab.sampling import load_run

    run = copy_run(name, tmp_path)
    out = tmp_path / "grid.png"
    genlab("sample", str(run), "-n", "8", "-o", str(out), "--seed", "3", env=env)
    with Image.open(out) as im:
        assert im.size[0] > 28
    loaded = load_run(run)
    assert loaded.step == 16 and loaded.epoch == 2
    a, b = loaded.sample(8, seed=3), loaded.sample(8, seed=3)
    assert torch.equal(a, b) and a.shape[0] == 8 and a.abs().max() <= 1


@pytest.mark.parametrize("name", RUNS)
def test_a_v010_run_plots_its_curves(name, env, tmp_path):
    run = copy_run(name, tmp_path)
    out = tmp_path / "curves.png"
    genlab("plot", "curves", str(run), "-o", str(out), env=env)
    with Image.open(out) as im:
        im.verify()


def test_a_v010_run_evaluates(env, tmp_path):
    run = copy_run("dcgan-ema", tmp_path)
    genlab("eval", str(run), "--metrics", "fid,coverage", "--features", "classifier", "--num-samples", "64",
           "--no-verify", env=env)  # the fixtures' data is the tiny fake Fashion-MNIST (its md5 is not published)
    result = json.loads((run / "eval.json").read_text())
    assert result["fid"] > 0 and result["protocol"]["step"] == 16 and result["protocol"]["ema"] is True


@pytest.mark.parametrize("name", RUNS)
def test_a_v010_run_resumes_where_it_stopped(name, env, tmp_path):
    run = copy_run(name, tmp_path)
    before = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the 0.1.0 configs have no data.verify; the fake data they were trained on needs it off
    genlab("train", "--resume", str(run), "train.epochs=3", "log.progress=false", "data.verify=false", env=env)
    after = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert after[:len(before)] == before and after[-1]["step"] == 24 and after[-1]["epoch"] == 3
    ckpt = torch.load(run / "checkpoints" / "step_000000024.pt", weights_only=True)
    assert ckpt["step"] == 24 and ckpt["epoch"] == 3
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
