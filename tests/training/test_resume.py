"""Resume is exact: 4 epochs in one go == 2 + resume + 2, == killed (SIGKILL / Ctrl-C) mid-epoch + resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from genlab.errors import ConfigError, RunError
from genlab.recipe import load_config
from genlab.resume import resume_config
from genlab.rundir import RunDir
from genlab.training.callbacks import Callback
from genlab.training.loop import train


def overrides(root: Path, epochs: int, extra=()) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=128",
            "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "model.dropout_d=0.2",
            "train.batch_size=32", f"train.epochs={epochs}", "log.every_steps=1", "log.progress=false",
            "log.keep_checkpoints=10", "train.ema=0.999", *extra,  # EMA with warm-up: its count must resume too
            "train.device=cpu"]


def deterministic_records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in RunDir.of(run).read_records()]


def final_weights(run: Path) -> dict:
    ckpt = torch.load(RunDir.of(run).checkpoint_path("last"), weights_only=True)
    return {**ckpt["nets"], "ema": ckpt["ema"]}


def assert_same_weights(a: dict, b: dict) -> None:
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"


@pytest.fixture(scope="module")
def reference_run(tiny_fmnist, tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    train(load_config(None, overrides(tiny_fmnist, 4)), run, log=lambda *_: None)
    return run


def test_two_plus_two_equals_four(reference_run, tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    train(load_config(None, overrides(tiny_fmnist, 2)), run, log=lambda *_: None)
    cfg = resume_config(RunDir.of(run), ["train.epochs=4"])
    trainer = train(cfg, run, resume=True, log=lambda *_: None)
    assert trainer.state.step == 16 and trainer.state.epoch == 4
    assert_same_weights(final_weights(reference_run), final_weights(run))
    assert deterministic_records(reference_run) == deterministic_records(run)
    assert len(deterministic_records(run)) == 16
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_000{i}.png" for i in range(1, 5)]


def test_same_seed_same_numbers_other_seed_differs(reference_run, tiny_fmnist, tmp_path):
    run = tmp_path / "again"
    train(load_config(None, overrides(tiny_fmnist, 4)), run, log=lambda *_: None)
    assert deterministic_records(run) == deterministic_records(reference_run)
    other = tmp_path / "other"
    train(load_config(None, overrides(tiny_fmnist, 1, ["train.seed=1"])), other, log=lambda *_: None)
    assert deterministic_records(other)[0] != deterministic_records(reference_run)[0]


def test_resume_refuses_changed_config(reference_run):
    with pytest.raises(ConfigError) as e:
        resume_config(RunDir.of(reference_run), ["model.latent_dim=9", "train.g_opt.lr=0.1"])
    assert "model.latent_dim" in str(e.value) and "train.g_opt.lr" in str(e.value)


def test_existing_run_folder_is_not_overwritten(reference_run, tiny_fmnist):
    with pytest.raises(RunError, match="already exists"):
        train(load_config(None, overrides(tiny_fmnist, 1)), reference_run, log=lambda *_: None)


def test_batch_larger_than_dataset_fails_early(tiny_fmnist, tmp_path):
    with pytest.raises(ConfigError, match="train.batch_size=256 is larger than the training set"):
        train(load_config(None, overrides(tiny_fmnist, 1, ["train.batch_size=256"])), tmp_path / "r",
              log=lambda *_: None)


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tiny_fmnist, tmp_path):
    run = tmp_path / "nan"
    train(load_config(None, overrides(tiny_fmnist, 1)), run, log=lambda *_: None)
    before = RunDir.of(run).checkpoint_files()
    from genlab.errors import TrainingDiverged

    cfg = resume_config(RunDir.of(run), ["train.epochs=3"])
    class Poison(Callback):
        """Makes loss_G NaN from the step after step 5 on (the step is wrapped before the loop reads it)."""

        def on_fit_start(self, trainer):
            step = trainer.step_fn

            def poisoned(batch):
                stats = step(batch)
                if trainer.state.step >= 5:
                    stats["loss_G"] = stats["loss_G"] * float("nan")
                return stats

            trainer.step_fn = poisoned

    with pytest.raises(TrainingDiverged) as e:
        train(cfg, run, resume=True, log=lambda *_: None, callbacks=(Poison(),))
    assert "loss_G" in str(e.value) and "step 6" in str(e.value) and "last good checkpoint" in str(e.value)
    assert RunDir.of(run).checkpoint_files() == before
    assert json.loads((run / "status.json").read_text())["state"] == "diverged"


def _cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genlab", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_step(run: Path, proc: subprocess.Popen, min_step: int, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process ended before step {min_step}: {proc.stdout.read()}")
        try:
            lines = (run / "metrics.jsonl").read_text().splitlines()
            step = json.loads(lines[-1])["step"] if lines else 0
        except (FileNotFoundError, json.JSONDecodeError, IndexError):
            step = 0
        if step >= min_step:
            return step
        time.sleep(0.005)
    raise AssertionError("timed out")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_mid_epoch_resumes_identically(sig, tiny_fmnist, tmp_path):
    # 512 images / batch 16 = 32 steps per epoch: long enough to stop inside epoch 3
    extra = ["data.limit=256", "train.batch_size=16"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref = tmp_path / "ref"
    train(load_config(None, overrides(tiny_fmnist, 3, extra)), ref, log=lambda *_: None)

    run = tmp_path / "killed"
    recipe = tmp_path / "recipe.yaml"  # the same config as `ref`, as a recipe file
    OmegaConf.save(OmegaConf.from_dotlist(overrides(tiny_fmnist, 3, extra)), recipe)
    proc = _cli(["train", str(recipe), "--run-dir", str(run)], env)
    step = _wait_for_step(run, proc, 16 * 2 + 3)
    proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0]
    assert step < 48, "the run finished before it could be stopped; the test needs longer epochs"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted (Ctrl-C) at step" in out, out
        assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
        assert RunDir.of(run).checkpoint_files()[-1].name != "step_000000032.pt"  # a mid-epoch checkpoint
    else:
        assert proc.returncode == -signal.SIGKILL
        assert RunDir.of(run).checkpoint_files()[-1].name == "step_000000032.pt"  # last good one intact
    recipe.unlink()  # resuming needs only the run folder, not the recipe the run started from
    resumed = _cli(["train", "--resume", str(run)], env)
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    assert_same_weights(final_weights(ref), final_weights(run))
    assert deterministic_records(ref) == deterministic_records(run)
