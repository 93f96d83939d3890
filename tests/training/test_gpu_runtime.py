"""What ``auto`` resolves to on each GPU generation, with the facts ``torch.cuda`` would report faked (no GPU here;
resolve_runtime only reads them): the run's own device is asked, emulated bf16 does not count, and penalty
objectives keep D eager (issue 31)."""
from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.recipe import build_networks, load_config
from genlab.training import perf
from genlab.training.families import build_objective

#: (name, compute capability) per device index: a mixed box, cuda:0 a V100 and cuda:1 an A100, cuda:2 an H100
GPUS = {0: ("Tesla V100-SXM2-16GB", (7, 0)), 1: ("NVIDIA A100-SXM4-40GB", (8, 0)), 2: ("NVIDIA H100 80GB HBM3", (9, 0)),
        3: ("Tesla P100-PCIE-16GB", (6, 0))}


@pytest.fixture
def fake_gpus(monkeypatch):
    def index(device=None) -> int:
        d = torch.device("cuda", 0) if device is None else torch.device(device)
        return d.index or 0

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(GPUS))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: GPUS[index(device)][1])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: GPUS[index(device)][0])
    # what torch reports on a V100: True, because it counts emulation (the trap this test guards against)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(perf, "_has_triton", lambda: True)


LOSS = {"wgan-gp": "wasserstein", "text-wgan-gp": "wasserstein", "r3gan": "relativistic"}


def config(model: str, *extra: str):
    return load_config(None, [f"model.name={model}", "data.resolution=28", "data.channels=1", "model.hidden_dim=4",
                              "model.latent_dim=4", "train.device=cuda", f"train.loss={LOSS.get(model, 'bce')}",
                              *extra])


def resolve(model: str, index: int, *extra: str) -> perf.Runtime:
    cfg = config(model, *extra)
    return perf.resolve_runtime(cfg.train, torch.device("cuda", index), build_networks(cfg, 10),
                                double_backward=build_objective(cfg).double_backward())


@pytest.mark.parametrize("index, precision, words", [
    (0, "fp16", "float16 tensor cores and no bfloat16 units"),  # sm70: bf16 only emulated
    (1, "bf16", "has bfloat16 units"),  # sm80
    (2, "bf16", "has bfloat16 units"),  # sm90
    (3, "fp32", "no tensor cores"),  # sm60
])
def test_auto_precision_follows_the_run_devices_generation(fake_gpus, index, precision, words):
    rt = resolve("dcgan", index)  # current_device() is always cuda:0: the answer must come from cuda:index
    assert (rt.precision, rt.device, rt.tf32, rt.cudnn_benchmark) == (precision, f"cuda:{index}", True, True)
    note = next(n for n in rt.notes if n.startswith("precision auto"))
    assert words in note and GPUS[index][0] in note, note
    assert rt.compile and set(rt.compiled) == {"G", "D"}  # Triton present: compile auto is on


def test_fp16_runs_get_a_loss_scaler_per_optimizer(fake_gpus):
    rt = resolve("dcgan", 0)
    assert rt.precision == "fp16" and rt.amp_dtype == torch.float16
    opts = {"D": object(), "G": object()}
    scalers = perf.make_scalers(opts, perf.Runtime(device="cpu", precision="fp16"))  # the CPU's: real objects
    assert set(scalers) == {"D", "G"} and all(isinstance(s, torch.amp.GradScaler) for s in scalers.values())


def test_explicit_bf16_on_a_gpu_without_bfloat16_units_is_refused(fake_gpus):
    with pytest.raises(ConfigError, match=r"Tesla V100.*no bfloat16 units.*fp16"):
        resolve("dcgan", 0, "train.precision=bf16")
    assert resolve("dcgan", 1, "train.precision=bf16").precision == "bf16"


@pytest.mark.parametrize("model, eager", [("wgan-gp", {"D"}), ("text-wgan-gp", {"D"}), ("r3gan", {"D"}),
                                          ("acgan", set()), ("vae-gan", set()), ("vae", set())])
@pytest.mark.parametrize("index", [0, 2])
def test_penalty_objectives_compile_everything_but_the_critic(fake_gpus, model, eager, index):
    rt = resolve(model, index)
    nets = set(build_networks(config(model), 10).keys())
    assert rt.compile and set(rt.compiled) == nets - eager
    said = [n for n in rt.notes if "stays eager" in n]
    assert bool(said) == bool(eager), rt.notes
    if model == "r3gan":  # without penalties (gamma 0) nothing is differentiated twice
        assert set(resolve(model, index, "objective.gamma=0").compiled) == nets
