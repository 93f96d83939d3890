"""Flow and diffusion runs have what a GAN run has: exact resume after kill -9, a divergence named by its step, the
EMA they need, label dropout; on the tiny IDX dataset with a tiny U-Net."""
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

from genlab.errors import TrainingDiverged
from genlab.models.ema import EMA
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.callbacks import Callback
from genlab.training.families import build_objective
from genlab.training.loop import train
from genlab.training.phases import Batch


def flow_overrides(root: Path, epochs: int, *extra: str) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28",
            "data.limit=128", "model.name=cflow-unet", "model.hidden_dim=4", "model.depth=1",
            "model.channel_mult=[1,2]", "model.attention=[14]", "train.batch_size=16", f"train.epochs={epochs}",
            "train.ema_halflife_kimg=1", "train.channels_last=false", "train.threads=1", "log.every_steps=1",
            "log.progress=false", "log.tensorboard=false", "log.num_samples=4", "log.keep_checkpoints=10",
            "objective.steps=2",
            # every random draw of the objective: noise, times, label dropout and the OT pairing (which reorders
            # the noise), so the resume must restore all of them
            "objective.ot_pairing=true", "objective.time_sampling=logit-normal", "objective.label_dropout=0.3",
            *extra]


def checkpoint_state(run: Path) -> dict:
    ckpt = torch.load(RunDir.of(run).checkpoint_path("last"), weights_only=True)
    return {**ckpt["nets"], "ema": ckpt["ema"], "step": ckpt["step"]}


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in RunDir.of(run).read_records()]


def test_a_flow_run_killed_with_sigkill_resumes_bit_for_bit(tiny_fmnist, tmp_path):
    ref = tmp_path / "ref"
    train(load_config(None, flow_overrides(tiny_fmnist, 2)), ref, log=lambda *_: None)
    run, recipe = tmp_path / "killed", tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.from_dotlist(flow_overrides(tiny_fmnist, 2)), recipe)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "train", str(recipe), "--run-dir", str(run)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    step, deadline = 0, time.monotonic() + 240
    while step < 11:  # 8 steps per epoch: stop inside epoch 2, past the checkpoint of epoch 1
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the run did not reach step 11"
        try:
            lines = (run / "metrics.jsonl").read_text().splitlines()
            step = json.loads(lines[-1])["step"] if lines else 0
        except (FileNotFoundError, json.JSONDecodeError):
            step = 0
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and step < 16
    assert RunDir.of(run).checkpoint_files()[-1].name == "step_000000008.pt"
    resumed = subprocess.run([sys.executable, "-m", "genlab", "train", "--resume", str(run)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    want, got = checkpoint_state(ref), checkpoint_state(run)
    assert want["step"] == got["step"] == 16
    for net in ("G", "ema"):
        for k, v in want[net].items():
            assert torch.equal(v, got[net][k]), f"{net}.{k}"
    assert records(ref) == records(run)
    assert (run / "samples" / "epoch_0002.png").read_bytes() == (ref / "samples" / "epoch_0002.png").read_bytes()


def test_a_diverging_flow_run_stops_naming_the_step(tiny_fmnist, tmp_path):
    class Blowup(Callback):
        """From step 3 on, G's weights are infinite: the loss is not finite."""

        def on_step_end(self, trainer) -> None:
            if trainer.state.step == 3:
                with torch.no_grad():
                    for p in trainer.state.nets["G"].parameters():
                        p.fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 4"):
        train(load_config(None, flow_overrides(tiny_fmnist, 1, "model.name=flow-unet", "objective.label_dropout=0",
                                               "objective.ot_pairing=false")),
              tmp_path / "run", log=lambda *_: None, callbacks=(Blowup(),))
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "diverged"


def test_the_half_life_ema_copies_first_then_averages_over_a_ramped_window():
    net = torch.nn.Linear(1, 1)
    ema = EMA(net, 0.0, halflife_images=1000, rampup=0.05, batch_size=10)
    decays = []
    for _ in range(3000):
        decays.append(ema.current_decay())
        ema.update(net)
    assert decays[0] == 0.0  # the first update copies the weights
    assert decays[100] == pytest.approx(0.5 ** (10 / (100 * 10 * 0.05)))  # half-life 5% of the 1000 images seen
    assert decays[2500] == pytest.approx(0.5 ** (10 / 1000))  # capped at the half-life: 1000 images
    assert all(a <= b for a, b in zip(decays, decays[1:]))
    cfg = load_config(None, ["model.name=flow-unet", "data.resolution=28", "train.ema_halflife_kimg=0.5",
                             "train.batch_size=8"])
    assert cfg.train.ema == 0.0  # the half-life alone turns the EMA on
    with pytest.raises(Exception, match="train.ema_halflife_kimg"):
        load_config(None, ["train.ema_halflife_kimg=-1"])


def test_label_dropout_replaces_about_that_share_of_the_labels(tiny_fmnist):
    cfg = load_config(None, flow_overrides(tiny_fmnist, 1, "objective.label_dropout=0.25"))
    objective = build_objective(cfg)
    ctx = objective.context(torch.nn.ModuleDict(), torch.device("cpu"), 10)
    torch.manual_seed(0)
    y = torch.arange(4000) % 10
    c = objective.condition(Batch(x=torch.zeros(4000, 1, 1, 1), y=y), ctx)
    dropped = c == -1
    assert 0.22 < dropped.float().mean().item() < 0.28
    assert torch.equal(c[~dropped], y[~dropped])  # the others keep their label
