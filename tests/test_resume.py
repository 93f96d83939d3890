"""The resume policy against the checkpoint: an edited config.yaml cannot slip a change past the refusal, and a
changed data.root is accepted only when it holds the same training images."""
from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from genlab.config import to_dict
from genlab.errors import ConfigError
from genlab.recipe import load_config
from genlab.resume import check_against_checkpoint, check_resume, resume_config
from genlab.rundir import RunDir
from genlab.training.loop import train

EXE = Path(sys.executable).with_name("genlab")
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28",
            "data.limit=64", "model.name=dcgan", "model.hidden_dim=4", "model.latent_dim=4", "train.batch_size=32",
            "train.epochs=1", "log.progress=false", "log.tensorboard=false", "log.num_samples=4",
            "train.channels_last=false", "train.threads=1", "train.device=cpu"]


@pytest.fixture(scope="module")
def trained(tiny_fmnist, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("resume") / "run"
    train(load_config(None, overrides(tiny_fmnist)), run, log=lambda *_: None)
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(trained, dest)
    return dest


def last_checkpoint(run: Path) -> Path:
    return RunDir.of(run).checkpoint_files()[-1]


def test_the_checkpoint_records_the_training_images(run):
    identity = torch.load(last_checkpoint(run), weights_only=True)["extra"]["data_identity"]
    assert identity["shape"] == [64, 1, 28, 28] and len(identity["sha256"]) == 64


def test_an_edited_config_yaml_is_refused_against_the_checkpoint(run):
    path = run / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    saved["train"]["g_opt"]["lr"] = 0.1  # by hand: config.yaml and the checkpoint now disagree
    path.write_text(yaml.safe_dump(saved))
    cfg = resume_config(RunDir.of(run), ["train.epochs=2"])  # config.yaml alone cannot tell
    with pytest.raises(ConfigError) as e:
        train(cfg, run, resume=True, log=lambda *_: None)
    assert "stored in the checkpoint" in str(e.value) and "train.g_opt.lr (0.0002 -> 0.1)" in str(e.value)
    # the command line says it in one line, exit 2, and trains nothing
    r = subprocess.run([str(EXE), "train", "--resume", str(run), "train.epochs=2"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "GENLAB_TRACEBACK": ""})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "train.g_opt.lr" in lines[0] and "was config.yaml edited?" in lines[0]
    assert [p.name for p in RunDir.of(run).checkpoint_files()] == ["step_000000002.pt"]


def test_a_data_root_with_other_images_is_refused_and_a_copy_is_accepted(run, tiny_fmnist, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_fmnist, other)
    raw = bytearray(gzip.decompress((other / TRAIN_IMAGES).read_bytes()))
    raw[16] ^= 0xFF  # one pixel of the first training image
    (other / TRAIN_IMAGES).write_bytes(gzip.compress(bytes(raw)))
    cfg = resume_config(RunDir.of(run), ["train.epochs=2", f"data.root={other}"])  # data.root may change
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    partial = run / "checkpoints" / ".step_000000009.pt.123.abcd.tmp"  # what a killed checkpoint write leaves
    partial.write_bytes(b"half a checkpoint")
    with pytest.raises(ConfigError) as e:
        train(cfg, run, resume=True, log=lambda *_: None)
    saved_sha = torch.load(last_checkpoint(run), weights_only=True)["extra"]["data_identity"]["sha256"]
    assert re.search(rf"data\.root {re.escape(str(other))} holds different images than the run was trained on "
                     rf"\(64x1x28x28 images, sha256 (?!{saved_sha[:12]})[0-9a-f]{{12}} now, 64x1x28x28 images, "
                     rf"sha256 {saved_sha[:12]} in the checkpoint\); point data\.root at the run's data \(it was "
                     rf"{re.escape(str(tiny_fmnist))}\), or start a new run$", str(e.value)), str(e.value)
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before, "a refused resume changed the run folder (config.yaml keeps the trained-on data.root)"
    assert not partial.exists(), "the unfinished checkpoint write was not cleaned up under the lock"
    same = tmp_path / "same"
    shutil.copytree(tiny_fmnist, same)
    trainer = train(resume_config(RunDir.of(run), ["train.epochs=2", f"data.root={same}"]), run, resume=True,
                    log=lambda *_: None)
    assert trainer.state.step == 4 and trainer.state.epoch == 2


def test_an_old_checkpoint_without_the_data_identity_is_accepted_and_said(run, tiny_fmnist, tmp_path):
    path = last_checkpoint(run)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["extra"]["data_identity"]
    del ckpt["digest"]  # checkpoints of that age carried no checksum either
    torch.save(ckpt, path)
    lines: list[str] = []
    trainer = train(resume_config(RunDir.of(run), ["train.epochs=2"]), run, resume=True, log=lines.append)
    assert trainer.state.step == 4
    notes = [line for line in lines if "does not record which training images" in line]
    assert notes == [f"note: {path} does not record which training images it was trained on (written by an older "
                     "genlab); the data is not checked against it"], notes
    ckpt = torch.load(last_checkpoint(run), weights_only=True)  # the next checkpoint records them
    assert ckpt["extra"]["data_identity"]["shape"] == [64, 1, 28, 28]


def test_the_resume_policy_lets_length_logging_and_evaluation_change_and_nothing_else():
    saved = load_config(None, ["model.name=dcgan"])
    fine = load_config(None, ["model.name=dcgan", "train.epochs=7", "log.every_steps=3", "eval.every=2",
                              "name=other", "train.threads=1"])
    assert check_resume(saved, fine) == []
    changed = load_config(None, ["model.name=dcgan", "model.hidden_dim=16", "train.g_opt.lr=0.1", "train.epochs=7"])
    assert check_resume(saved, changed) == ["model.hidden_dim", "train.g_opt.lr"]


def test_a_changed_objective_option_is_named_with_both_values():
    saved = to_dict(load_config(None, ["objective.lecam=0.1"]))
    requested = load_config(None, ["objective.lecam=0.2", "objective.lecam_decay=0.9"])
    with pytest.raises(ConfigError) as e:
        check_against_checkpoint(saved, requested, source="step_2.pt")
    assert str(e.value) == ("cannot resume from step_2.pt: the requested config differs from the one stored in the "
                            "checkpoint in objective.lecam (0.1 -> 0.2), objective.lecam_decay (0.99 -> 0.9) (was "
                            "config.yaml edited?); put those keys back, or start a new run (another --run-dir) for a "
                            "different config"), str(e.value)


def test_a_resume_with_a_recipe_takes_the_recipe(run, tmp_path):
    """`genlab train RECIPE --resume RUN`: the recipe's values (here a new name and more epochs), checked against
    the run's saved config."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RunDir.of(run).read_config(), "name": "renamed"}))
    cfg = resume_config(RunDir.of(run), ["train.epochs=3"], recipe=str(recipe))
    assert cfg.name == "renamed" and cfg.train.epochs == 3
    with pytest.raises(ConfigError) as e:
        resume_config(RunDir.of(run), ["train.epochs=3", "model.hidden_dim=16", "train.g_opt.lr=0.1"])
    assert str(e.value) == (f"cannot resume {run}: the config changed in model.hidden_dim, train.g_opt.lr; start a "
                            "new run (another --run-dir) for a different config"), str(e.value)
