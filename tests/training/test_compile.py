"""torch.compile for every family, on the CPU with the ``aot_eager`` backend: the same autograd machinery as
inductor on a GPU (double backward, functionalised BatchNorm buffers) without generating code (issue 31)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch._dynamo.utils import counters

from genlab.data.base import ImageData
from genlab.models import MODELS
from genlab.recipe import load_config
from genlab.training.loop import Trainer, epoch_permutation, prepare_run

CRITIC = ["train.loss=wasserstein", "train.n_critic=2"]
EXTRA = {"wgan": CRITIC, "wgan-gp": CRITIC, "text-wgan-gp": CRITIC, "vae": ["model.depth=1"],
         "r3gan": ["train.loss=relativistic", "objective.reg_every=1"]}
#: the networks a gradient penalty differentiates twice: never compiled
EAGER = {"wgan-gp": {"D"}, "text-wgan-gp": {"D"}, "r3gan": {"D"}}


def synthetic(n: int = 32) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def trainer(model: str, path, compile_: bool) -> Trainer:
    cfg = load_config(None, [f"model.name={model}", "data.resolution=28", "data.channels=1", "model.hidden_dim=4",
                             "model.latent_dim=4", "train.batch_size=16", "log.progress=false",
                             "log.tensorboard=false", "train.device=cpu", "train.channels_last=false",
                             f"train.compile={str(compile_).lower()}", *EXTRA.get(model, [])])
    return Trainer(cfg, prepare_run(cfg, path), synthetic(), log=lambda *_: None,
                   adjust_runtime=lambda rt: dataclasses.replace(rt, compile_backend="aot_eager"))


@pytest.mark.parametrize("model", MODELS.names())
def test_every_family_trains_compiled_as_it_does_eager(model, tmp_path):
    torch._dynamo.reset()
    eager, compiled = trainer(model, tmp_path / "eager", False), trainer(model, tmp_path / "compiled", True)
    assert not eager.runtime.compile and compiled.runtime.compile
    nets = set(compiled.state.nets.keys())
    assert set(compiled.runtime.compiled) == nets - EAGER.get(model, set())
    recorded = json.loads((tmp_path / "compiled" / "runtime.json").read_text())
    assert recorded["compiled"] == list(compiled.runtime.compiled)
    if model in EAGER:  # auto says why D stays eager
        assert any("D stays eager" in n and "twice" in n for n in recorded["notes"]), recorded["notes"]
    perm = epoch_permutation(0, 0, 32)
    torch.manual_seed(1)
    a = eager.step_fn(eager.batches.at(perm, 0))
    torch.manual_seed(1)
    b = compiled.step_fn(compiled.batches.at(perm, 0))
    assert a.keys() == b.keys()
    for k in a:  # the same graph, traced: the same numbers up to the order of float operations
        assert torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4), (k, a[k], b[k])
    for (name, p), q in zip(eager.state.nets.named_parameters(), compiled.state.nets.parameters()):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-5), name
    # the phases' requires_grad toggles cost one graph per network and role, traced once: no recompile per step
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    compiled.step_fn(compiled.batches.at(perm, 1))
    assert counters["stats"]["unique_graphs"] == graphs
