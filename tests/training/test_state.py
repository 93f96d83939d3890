"""TrainState: state_dict -> a new state -> load_state_dict gives identical tensors and the same next step."""
from __future__ import annotations

import io

import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import RunError
from genlab.recipe import load_config
from genlab.training.checkpoint import set_rng_state
from genlab.training.loop import Trainer, epoch_permutation, prepare_run
from genlab.training.state import networks_from_checkpoint

CHECKPOINT_KEYS = {"nets", "ema", "optimizers", "step", "epoch", "step_in_epoch", "rng", "config", "genlab_version",
                   "extra"}


def tiny(extra=()):
    return load_config(None, ["model.name=dcgan", "data.resolution=28", "data.channels=1", "model.hidden_dim=8",
                              "model.latent_dim=8", "model.dropout_d=0.2", "train.batch_size=16", "train.ema=0.9",
                              "log.progress=false", "log.tensorboard=false", "train.device=cpu", *extra])


def synthetic(n: int = 64) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def trainer(path, extra=()) -> Trainer:
    cfg = tiny(extra)
    return Trainer(cfg, prepare_run(cfg, path), synthetic(), log=lambda *_: None)


def advance(t: Trainer, perm: torch.Tensor, n: int) -> dict:
    stats = {}
    for _ in range(n):
        stats = t.step_fn(t.batches.at(perm, t.state.step_in_epoch))
        t.state.step += 1
        t.state.step_in_epoch += 1
    return stats


def through_file(sd: dict) -> dict:
    """What a checkpoint file gives back (weights_only); the live dict shares tensors with the optimizers."""
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def assert_same_tensors(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_round_trip_gives_identical_tensors_and_the_same_next_step(tmp_path):
    a = trainer(tmp_path / "a")
    perm = epoch_permutation(0, 0, 64)
    advance(a, perm, 2)
    a.state.best = 12.5
    sd = through_file(a.state.state_dict(runtime=a.runtime.as_dict()))
    assert set(sd) == CHECKPOINT_KEYS
    assert sd["step"] == 2 and sd["step_in_epoch"] == 2 and sd["extra"]["best"] == 12.5
    b = trainer(tmp_path / "b", ["train.seed=1"])  # other initial weights
    assert not torch.equal(next(a.state.nets["G"].parameters()), next(b.state.nets["G"].parameters()))
    b.state.load_state_dict(sd)
    assert (b.state.step, b.state.epoch, b.state.step_in_epoch, b.state.best) == (2, 0, 2, 12.5)
    assert "runtime" not in b.state.extra and b.state.extra["num_classes"] == 10
    again = b.state.state_dict(runtime=a.runtime.as_dict())
    for key in ("nets", "ema", "optimizers"):
        assert_same_tensors(sd[key], again[key], key)
    # the same next step: same losses (dropout and latents from the restored RNG) and the same weights after it
    stats_b = advance(b, perm, 1)
    set_rng_state(sd["rng"])
    stats_a = advance(a, perm, 1)
    assert stats_a.keys() == stats_b.keys()
    for k in stats_a:
        assert torch.equal(stats_a[k], stats_b[k]), k
    assert_same_tensors(a.state.state_dict()["nets"], b.state.state_dict()["nets"], "nets after a step")


def test_networks_from_checkpoint_rebuild_networks_and_ema_generator(tmp_path):
    t = trainer(tmp_path / "a")
    advance(t, epoch_permutation(0, 0, 64), 2)
    restored = networks_from_checkpoint(t.state.state_dict(), torch.device("cpu"))
    assert restored.cfg == t.cfg and restored.extra["class_names"] == [str(i) for i in range(10)]
    assert_same_tensors(restored.nets.state_dict(), t.state.nets.state_dict(), "nets")
    assert_same_tensors(restored.ema.state_dict(), t.state.ema.net.state_dict(), "ema")
    assert not restored.nets.training and not restored.ema.training


def test_load_refuses_another_world_size(tmp_path):
    t = trainer(tmp_path / "a")
    sd = t.state.state_dict(world_size=2)
    with pytest.raises(RunError, match="written by a run on 2 process"):
        trainer(tmp_path / "b").state.load_state_dict(sd)
