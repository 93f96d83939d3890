"""A resume on a GPU: the checkpoint's RNG states must reach the setters as CPU byte tensors, and CUDA states are
restored only for the GPUs that exist. No GPU here: ``map_location="meta"`` stands for "loaded off the CPU" and the
device count is faked by replacing ``torch.cuda`` functions (issue 31)."""
from __future__ import annotations

import pytest
import torch

from genlab import checkpoint
from genlab.checkpoint import rng_state, set_rng_state
from genlab.data.base import ImageData
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.sampling import load_run
from genlab.training.loop import Trainer, epoch_permutation, prepare_run


def synthetic(n: int = 32) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def tiny():
    return load_config(None, ["model.name=dcgan", "data.resolution=28", "data.channels=1", "model.hidden_dim=4",
                              "model.latent_dim=4", "train.batch_size=16", "train.ema=0.9", "log.progress=false",
                              "log.tensorboard=false", "train.device=cpu", "train.channels_last=false"])


@pytest.fixture
def saved(tmp_path):
    cfg = tiny()
    t = Trainer(cfg, prepare_run(cfg, tmp_path / "run"), synthetic(), log=lambda *_: None)
    t.step_fn(t.batches.at(epoch_permutation(0, 0, 32), 0))
    t.state.step = t.state.step_in_epoch = 1
    return t, t.save()


def test_resume_and_sampling_load_the_checkpoint_on_the_cpu(saved, monkeypatch):
    t, path = saved
    # what a load onto a GPU does to the RNG states (every tensor off the CPU): the setter refuses them
    off_cpu = torch.load(path, map_location="meta", weights_only=True)
    assert off_cpu["rng"]["torch"].device.type == "meta"
    with pytest.raises((RuntimeError, TypeError)):
        set_rng_state(off_cpu["rng"])
    seen = []
    real_load = torch.load

    def load(f, *args, **kwargs):
        if str(f).endswith(path.name):  # the checkpoint (load_run also reads other files)
            seen.append(kwargs.get("map_location"))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "load", load)
    torch.manual_seed(123)  # moved away from the checkpoint's stream; the resume must put it back
    resumed = Trainer(t.cfg, t.run, synthetic(), resume_from=path, log=lambda *_: None)
    assert seen == ["cpu"]  # the literal CPU, not the run's device (a GPU resume would get GPU tensors)
    assert torch.equal(torch.get_rng_state(), real_load(path, weights_only=True)["rng"]["torch"])
    assert resumed.state.step == 1
    load_run(t.run.path, device="cpu")
    assert seen == ["cpu", "cpu"]  # genlab sample/eval: sampling.restore moves only the networks


def test_cuda_rng_states_are_restored_only_for_the_gpus_this_process_sees(monkeypatch):
    """A checkpoint written with 2 GPUs visible, resumed where 1 is: device 1's state is not restored (the real
    setter fails with an invalid device ordinal, as the fake here does)."""
    restored = []

    def fake_set_rng_state(state, device="cuda"):
        index = torch.device(device).index if not isinstance(device, int) else device
        if index is not None and index >= 1:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index}")
        assert state.device.type == "cpu" and state.dtype == torch.uint8
        restored.append(index)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", fake_set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", fake_set_rng_state)  # what set_rng_state_all calls
    state = {"torch": torch.get_rng_state(), "cuda": [torch.zeros(16, dtype=torch.uint8)] * 2}
    set_rng_state(state)
    assert restored == [0]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    restored.clear()
    set_rng_state(state)
    assert restored == []


def test_a_cpu_checkpoint_has_no_cuda_states_and_round_trips(saved):
    t, path = saved
    state = rng_state()
    assert set(state) == {"torch"}  # CUDA never initialised here: nothing to save or restore
    ckpt = checkpoint.load_checkpoint(path, "cpu")
    assert ckpt["rng"]["torch"].dtype == torch.uint8 and RunDir.of(t.run.path).checkpoint_files() == [path]
