"""TrainState: state_dict -> a new state -> load_state_dict gives identical tensors and the same next step."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from genlab.checkpoint import rng_state, set_rng_state
from genlab.data.base import ImageData
from genlab.errors import RunError
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.sampling import restore
from genlab.training.loop import Trainer, epoch_permutation, prepare_run

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
    assert sd["extra"]["runtime"] == a.runtime.as_dict() and sd["extra"]["world_size"] == 1
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


def restore_in_memory(sd: dict, device: torch.device, source: str = "(in memory)"):
    """A checkpoint dict restored for drawing (sampling.restore), in no run folder."""
    return restore(sd, device, RunDir.of("."), Path(source))


def test_restore_rebuilds_networks_and_ema_generator(tmp_path):
    t = trainer(tmp_path / "a")
    advance(t, epoch_permutation(0, 0, 64), 2)
    restored = restore_in_memory(t.state.state_dict(), torch.device("cpu"))
    assert restored.cfg == t.cfg and restored.extra["class_names"] == [str(i) for i in range(10)]
    assert_same_tensors(restored.nets.state_dict(), t.state.nets.state_dict(), "nets")
    assert_same_tensors(restored.ema.state_dict(), t.state.ema.net.state_dict(), "ema")
    assert not restored.nets.training and not restored.ema.training


def test_load_refuses_another_world_size(tmp_path):
    t = trainer(tmp_path / "a")
    sd = t.state.state_dict(world_size=2)
    with pytest.raises(RunError, match="written by a run on 2 process") as e:
        trainer(tmp_path / "b").state.load_state_dict(sd)
    assert str(e.value).endswith("or start a new run from its weights"), e.value


def test_restored_networks_go_to_the_device_asked_and_a_run_without_ema_has_none(tmp_path):
    t = trainer(tmp_path / "a", ["train.ema=0"])
    restored = restore_in_memory(t.state.state_dict(), torch.device("meta"))  # any device but the CPU's
    assert {p.device.type for p in restored.nets.parameters()} == {"meta"}
    assert restored.ema is None and t.state.state_dict()["ema"] is None


def test_a_class_conditional_run_is_rebuilt_with_its_classes(tmp_path):
    t = trainer(tmp_path / "a", ["model.name=cgan"])
    restored = restore_in_memory(t.state.state_dict(), torch.device("cpu"))
    z, labels = torch.randn(4, 8), torch.tensor([0, 3, 7, 9])
    with torch.no_grad():
        assert torch.equal(restored.ema(z, labels), t.state.ema.net.eval()(z, labels))


def mismatch_message(sd: dict, **kw) -> str:
    with pytest.raises(RunError) as e:
        restore_in_memory(sd, torch.device("cpu"), **kw)
    return str(e.value)


def test_a_checkpoint_that_does_not_fit_names_the_tensor_the_network_and_the_fix(tmp_path):
    sd = trainer(tmp_path / "a").state.state_dict()
    name, w = next(iter(sd["nets"]["G"].items()))
    sd["nets"]["G"][name] = torch.zeros(w.shape[0] + 1, *w.shape[1:])
    msg = mismatch_message(sd)
    # torch's header line ("Error(s) in loading state_dict for ...") is dropped for the line that says what differs
    assert "checkpoint (in memory) does not fit the config: the checkpoint holds model.name=dcgan, " in msg, msg
    assert f"(G: size mismatch for {name}: copying a param with shape" in msg and "Error(s)" not in msg, msg
    assert msg.endswith("its weights were not written by this config (a hand-edited checkpoint or another genlab "
                        "version?); use a checkpoint written by `genlab train`"), msg
    sd = trainer(tmp_path / "b").state.state_dict()
    sd["nets"]["X"] = {}
    msg = mismatch_message(sd, source="ckpt.pt")
    assert "checkpoint ckpt.pt does not fit" in msg and "(X: a network 'X' that this model does not have)" in msg, msg


def test_the_writer_side_state_comes_back_scalers_seconds_and_the_objective(tmp_path):
    """Loss scalers, trained seconds and the objective's own state (LeCam's averages), each first moved away from a
    fresh run's, come back in a fresh state."""
    extra = ["train.precision=fp16", "objective.lecam=0.1"]
    a = trainer(tmp_path / "a", extra)
    advance(a, epoch_permutation(0, 0, 64), 2)
    a.state.scalers["G"].update(new_scale=2.0 ** 10)
    a.state.scalers["D"].update(new_scale=2.0 ** 7)
    a.state.seconds = 12.5
    sd = through_file(a.state.state_dict())
    b = trainer(tmp_path / "b", extra)
    fresh = {k: s.state_dict() for k, s in b.state.scalers.items()}, b.state.objective.state_dict()
    written = {k: s.state_dict() for k, s in a.state.scalers.items()}, a.state.objective.state_dict()
    assert written[0]["G"] != fresh[0]["G"] and written[0]["D"] != fresh[0]["D"] and written[1] != fresh[1]
    b.state.load_state_dict(sd)
    assert ({k: s.state_dict() for k, s in b.state.scalers.items()}, b.state.objective.state_dict()) == written
    assert b.state.seconds == 12.5 and not set(b.state.extra) & {"scalers", "train_seconds", "objective_state"}


def test_each_rank_takes_its_own_rng_stream(tmp_path):
    t = trainer(tmp_path / "a")
    streams = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        streams.append(rng_state())
    sd = t.state.state_dict(world_size=2, rank_rng=streams)
    for rank in (0, 1):
        torch.manual_seed(99)
        trainer(tmp_path / f"r{rank}").state.load_state_dict(sd, rank=rank, world_size=2)
        assert torch.equal(torch.get_rng_state(), streams[rank]["torch"])


def test_older_checkpoints_without_newer_entries_load(tmp_path):
    """No world_size (one process), no trained seconds (0), no EMA update count (the step's), no EMA at all (the
    EMA is kept)."""
    a = trainer(tmp_path / "a")
    advance(a, epoch_permutation(0, 0, 64), 3)
    sd = through_file(a.state.state_dict())
    del sd["extra"]["world_size"], sd["extra"]["train_seconds"], sd["ema"]["num_updates"]
    b = trainer(tmp_path / "b")
    b.state.seconds = 5.0
    b.state.load_state_dict(sd)
    assert b.state.ema._updates == 3 and b.state.step == 3 and b.state.seconds == 0.0
    sd["ema"] = None
    c = trainer(tmp_path / "c")
    before = {k: v.clone() for k, v in c.state.ema.state_dict().items()}
    c.state.load_state_dict(sd)
    assert_same_tensors(c.state.ema.state_dict(), before, "ema")


def test_a_resume_into_another_model_names_the_checkpoint_and_the_fix(tmp_path):
    sd = trainer(tmp_path / "a").state.state_dict()
    with pytest.raises(RunError) as e:
        trainer(tmp_path / "b", ["model.hidden_dim=16"]).state.load_state_dict(sd, source="step_3.pt")
    msg = str(e.value)
    assert msg.startswith("checkpoint step_3.pt does not fit the config: the checkpoint holds model.name=dcgan "
                          "(hidden_dim=8), the config asks for model.name=dcgan (hidden_dim=16)"), msg
    assert msg.endswith("; resume the run that wrote it (its own --resume folder), or start a new run for this "
                        "config"), msg


@pytest.mark.parametrize("warmup", [True, False])
def test_the_ema_follows_the_config(warmup, tmp_path):
    t = trainer(tmp_path / "a", [f"train.ema_warmup={warmup}"])
    assert (t.state.ema.decay, t.state.ema.warmup) == (0.9, warmup)
