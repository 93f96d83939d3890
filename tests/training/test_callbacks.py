"""Callbacks: the order of events on a tiny run, a user callback sees every record, a callback can stop a fit."""
from __future__ import annotations

import torch

from genlab.data.base import ImageData
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.callbacks import Callback
from genlab.training.loop import Trainer, fit, prepare_run


def make(tmp_path, name: str) -> Trainer:
    """A tiny DCGAN on 64 synthetic images, batch 16 (4 steps per epoch), 2 epochs, a record every 2 steps."""
    cfg = load_config(None, ["model.name=dcgan", "data.resolution=28", "data.channels=1", "model.hidden_dim=8",
                             "model.latent_dim=8", "train.batch_size=16", "train.epochs=2", "log.every_steps=2",
                             "log.progress=false", "log.tensorboard=false", "train.device=cpu"])
    g = torch.Generator().manual_seed(0)
    data = ImageData(images=torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g))
    return Trainer(cfg, prepare_run(cfg, tmp_path / name), data, log=lambda *_: None)


class Recorder(Callback):
    def __init__(self):
        self.events: list[str] = []
        self.records: list[dict] = []

    def on_fit_start(self, trainer):
        self.events.append(f"fit_start {trainer.state.step}")

    def on_step_end(self, trainer):
        self.events.append(f"step {trainer.state.step}")

    def on_record(self, trainer, record):
        self.events.append(f"record {record['step']}")
        self.records.append(record)

    def on_epoch_end(self, trainer, epoch, final):
        self.events.append(f"epoch_end {epoch} {final}")

    def on_image(self, trainer, tag, grid):
        self.events.append(f"image {tag} {trainer.state.step}")

    def on_checkpoint(self, trainer, path):
        self.events.append(f"checkpoint {path.name}")

    def on_fit_end(self, trainer, status, error=None):
        self.events.append(f"fit_end {status}")


def test_events_come_in_order_and_a_user_callback_sees_every_record(tmp_path):
    t = make(tmp_path, "run")
    rec = Recorder()
    fit(t, (rec,))
    epoch = [["step 1", "step 2", "record 2", "step 3", "step 4", "record 4", "image samples 4", "epoch_end 1 False",
              "checkpoint step_000000004.pt"],
             ["step 5", "step 6", "record 6", "step 7", "step 8", "record 8", "image samples 8", "epoch_end 2 True",
              "checkpoint step_000000008.pt"]]
    assert rec.events == ["fit_start 0", *epoch[0], *epoch[1], "fit_end finished"]
    run = RunDir.of(tmp_path / "run")
    assert rec.records == run.read_records()
    assert run.read_status()["state"] == "finished"


def test_a_stopped_fit_continues_where_it_stopped(tmp_path):
    class StopAt(Callback):
        def on_step_end(self, trainer):
            if trainer.state.step == 3:
                trainer.request_stop()

    straight = make(tmp_path, "a")
    fit(straight, standard=False)
    stopped = make(tmp_path, "b")
    rec = Recorder()
    fit(stopped, (StopAt(), rec), standard=False)
    assert stopped.state.step == 3 and rec.events[-1] == "fit_end stopped"
    assert not RunDir.of(tmp_path / "b").checkpoint_files()  # standard=False: nothing written
    fit(stopped, standard=False)
    assert stopped.state.step == straight.state.step == 8
    for (name, p), q in zip(straight.state.nets.state_dict().items(), stopped.state.nets.state_dict().values()):
        assert torch.equal(p, q), name
