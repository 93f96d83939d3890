"""Evaluation of runs end to end: eval.every during training (best.pt), `genlab eval`, `genlab eval-folder`."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.evaluation import TrainingEval, progress_lines
from genlab.grids import png_bytes
from genlab.metrics import DatasetRef, FeatureStats, compute_features, evaluate_folder, fid_from_stats, get_extractor
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.callbacks import Callback
from genlab.training.loop import train


class Saves(Callback):
    """The steps of every checkpoint written (Trainer.save calls on_checkpoint once per write)."""

    def __init__(self):
        self.steps: list[int] = []

    def on_checkpoint(self, trainer, path):
        self.steps.append(trainer.state.step)


def overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=128",
            "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "train.batch_size=32",
            "train.epochs=2", "log.progress=false", "train.threads=1", "train.channels_last=false",
            "eval.every=1", "eval.metrics=[fid,coverage,vendi]", "eval.features=classifier", "eval.num_samples=128",
            "train.device=cpu"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory, classifier_cache_28):
    import shutil

    dest = tmp_path_factory.mktemp("evalcache")
    shutil.copytree(classifier_cache_28, dest, dirs_exist_ok=True)
    return dest


@pytest.fixture(scope="module")
def evaluated_run(tiny_fmnist, tmp_path_factory, cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("GENLAB_CACHE_DIR", str(cache))
    run = tmp_path_factory.mktemp("eval") / "run"
    lines = []
    saves = Saves()  # before TrainingEval: the order of callbacks must not matter
    train(load_config(None, overrides(tiny_fmnist)), run, log=lines.append, callbacks=(saves, TrainingEval()))
    mp.undo()
    lines.append(saves)
    return run, lines


def test_training_eval_logs_records_and_keeps_best(evaluated_run):
    run, lines = evaluated_run
    evals = [r for r in RunDir.of(run).read_records() if r.get("kind") == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2]
    for r in evals:
        assert r["fid"] > 0 and "coverage/classes_covered" in r and r["vendi/score"] > 1  # a new metric too
    assert (run / "checkpoints" / "best.pt").is_file()
    result = json.loads((run / "eval.json").read_text())
    assert result["protocol"]["extractor"] == "classifier" and result["protocol"]["num_generated"] == 128
    assert any("FID" in line and "classifier features" in line for line in map(str, lines))
    import torch

    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert best["extra"]["best"] == min(r["fid"] for r in evals)
    # one write per epoch end, also when a new best FID and the epoch's checkpoint fall on the same step
    saves = lines[-1].steps
    assert len(saves) == 2 and len(set(saves)) == 2, saves
    assert best["step"] in saves


def test_progress_lines_quiet_when_short_a_line_every_30_s_when_long():
    clock = iter([0.0, 1.0, 31.0, 32.0, 40.0, 41.0, 45.0]).__next__
    lines = []
    show = progress_lines(lines.append, every_s=30.0, clock=clock)
    show("classifier", 0, 100, "epoch 1/3")  # t=0
    show("classifier", 10, 100, "epoch 1/3")  # t=1: quiet
    show("classifier", 50, 100, "epoch 2/3")  # t=31: running for 30 s, a line
    show("classifier", 60, 100)  # t=32: quiet
    show("features", 0, 10)  # t=40: another task
    show("features", 10, 10)  # t=41: done within 30 s: quiet
    show("classifier", 100, 100, "test acc 91.0%")  # t=45: a long task's end is said
    assert lines == ["eval: classifier 50/100 (epoch 2/3)", "eval: classifier done (test acc 91.0%)"]


def genlab(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_cli_eval_writes_json_with_metric_keys_and_protocol(evaluated_run, cache, tmp_path):
    run, _ = evaluated_run
    out = tmp_path / "e.json"
    r = genlab("eval", str(run), "--checkpoint", "best", "--metrics", "fid,kid,is,pr,coverage", "--features",
               "classifier", "--num-samples", "200", "--out", str(out), cache=cache)
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(out.read_text())
    assert {"fid", "kid", "is", "pr", "coverage", "protocol"} <= set(result)
    p = result["protocol"]
    for key in ("extractor", "extractor_hash", "num_generated", "reference", "seed", "genlab_version"):
        assert key in p
    assert p["checkpoint"].endswith("best.pt") and "FID" in r.stdout


def test_eval_folder_against_dataset(evaluated_run, cache, tmp_path, tiny_fmnist):
    run, _ = evaluated_run
    from genlab.data.base import to_uint8
    from genlab.grids import png_bytes
    from genlab.sampling import load_run

    images = to_uint8(load_run(run).sample(64, seed=3))
    folder = tmp_path / "gen"
    folder.mkdir()
    for i, im in enumerate(images):
        (folder / f"{i:03d}.png").write_bytes(png_bytes(im[0].numpy()))
    out = tmp_path / "result.json"
    r = genlab("eval-folder", str(folder), "--against", "fashion-mnist:test", "--root", str(tiny_fmnist),
               "--no-verify", "--features", "classifier", "--metrics", "fid,coverage", "--out", str(out), cache=cache)
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(out.read_text())
    assert result["fid"] > 0 and result["protocol"]["num_generated"] == 64
    check_folder_fid_against_direct_computation(images, result["fid"], cache, tmp_path, tiny_fmnist)


def check_folder_fid_against_direct_computation(images, fid: float, cache: Path, tmp_path: Path, root: Path):
    """The CLI's FID equals classifier features -> statistics -> Frechet distance computed here; the test split
    written as PNGs scores ~0 against itself, and uniform noise far from it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        ref = DatasetRef("fashion-mnist", "test", 28, 1, root=str(root))
        ext = get_extractor("classifier", dataset=ref)
        with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:  # the raw file: 16 header bytes, then pixels
            real = torch.from_numpy(np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 1, 28, 28).copy())
        real_stats = FeatureStats.from_features(compute_features(ext, [real]))
        direct = fid_from_stats(FeatureStats.from_features(compute_features(ext, [images])), real_stats)
        assert fid == pytest.approx(direct, rel=1e-5)
        scores = {}
        noise = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (64, 1, 28, 28), dtype=np.uint8))
        for name, batch in (("real", real), ("noise", noise)):
            folder = tmp_path / name
            folder.mkdir()
            for i, im in enumerate(batch):
                (folder / f"{i:03d}.png").write_bytes(png_bytes(im[0].numpy()))
            scores[name] = evaluate_folder(folder, ref, "classifier", metrics="fid")["fid"]
    assert abs(scores["real"]) < 1e-3 < fid, scores  # the same images as the reference: the same statistics
    assert scores["noise"] > 10, scores  # (measured 140; the 2-epoch toy generator's grey images score ~160)


def test_inception_missing_weights_is_one_clear_error(evaluated_run, cache, tmp_path):
    run, _ = evaluated_run
    env_missing = tmp_path / "nope.pth"
    r = subprocess.run([sys.executable, "-m", "genlab", "eval", str(run), "--features", "inception",
                        "--num-samples", "16"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "GENLAB_CACHE_DIR": str(cache), "GENLAB_INCEPTION_WEIGHTS": str(env_missing)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nope.pth" in r.stderr


def test_features_auto_records_the_extractor_it_chose(evaluated_run, cache, monkeypatch):
    import genlab

    run, _ = evaluated_run
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))  # no Inception weights there: auto picks the classifier
    result = genlab.evaluate(run, metrics="fid", num_samples=64, features="auto")
    p = result["protocol"]
    assert p["extractor"] == "classifier" and p["features_requested"] == "auto" and result["fid"] > 0


def test_eval_refuses_to_write_another_runs_checkpoint_into_this_runs_eval_json(evaluated_run, cache, tmp_path):
    import shutil

    from genlab.api import load_run
    from genlab.errors import RunError

    run, _ = evaluated_run
    other = tmp_path / "other"
    shutil.copytree(run, other)
    before = (run / "eval.json").read_bytes()
    foreign = sorted((other / "checkpoints").glob("step_*.pt"))[-1]
    args = ("eval", str(run), "--checkpoint", str(foreign), "--metrics", "fid", "--features", "classifier",
            "--num-samples", "64")
    r = genlab(*args, cache=cache)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert f"checkpoint {foreign} belongs to another run (it is not under {run / 'checkpoints'})" in lines[0]
    assert f"`genlab eval {other} --checkpoint {foreign.name}`" in lines[0] and "--out FILE" in lines[0]
    assert (run / "eval.json").read_bytes() == before
    out = tmp_path / "other.json"
    with pytest.MonkeyPatch.context() as mp:  # an explicit elsewhere is fine (what --out passes)
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        load_run(run, str(foreign)).evaluate("fid", 64, features="classifier", out=out)
    assert json.loads(out.read_text())["protocol"]["checkpoint"] == str(foreign)
    assert (run / "eval.json").read_bytes() == before
    # a checkpoint in the run's own folder whose config is not the run's (config.yaml replaced) is refused too
    cfg = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(cfg.replace("latent_dim: 8", "latent_dim: 9"))
    with pytest.raises(RunError, match=r"its config differs from .*config.yaml in model.latent_dim"):
        load_run(other).evaluate("fid", 64, features="classifier", out=other / "eval.json")


def test_the_cli_and_the_api_build_one_request_and_give_the_same_numbers(evaluated_run, cache, tmp_path,
                                                                         monkeypatch):
    from genlab import EvalRequest, load_run

    run, _ = evaluated_run
    out = tmp_path / "cli.json"
    r = genlab("eval", str(run), "--metrics", "fid,kid,coverage", "--features", "classifier", "--num-samples", "150",
               "--seed", "3", "--batch-size", "50", "--out", str(out), cache=cache)
    assert r.returncode == 0, r.stderr + r.stdout
    cli = json.loads(out.read_text())
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    loaded = load_run(run, device="cpu")
    by_args = loaded.evaluate("fid,kid,coverage", 150, features="classifier", seed=3, batch_size=50)
    request = EvalRequest.of("fid,kid,coverage", 150, features="classifier", seed=3, batch_size=50)
    by_request = loaded.evaluate(request=request)
    for result in (by_args, by_request):
        assert result["fid"] == cli["fid"] and result["kid"] == cli["kid"]
        assert result["protocol"]["extractor_hash"] == cli["protocol"]["extractor_hash"]
    assert request.metrics == ("fid", "kid", "coverage") and request.batch_size == 50
    with pytest.raises(Exception, match="request= or as arguments, not both"):
        loaded.evaluate("fid", request=request)
