"""SyncBatchNorm (what several GPUs get): the converted networks are the ones the optimizers step, the step
trains, the EMA copies and the checkpoint saves (issue 31). The conversion runs on the CPU; a SyncBatchNorm
outside a process group normalises as BatchNorm does, so one process can train through it."""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from genlab.data.base import ImageData
from genlab.recipe import build_networks, load_config
from genlab.training.loop import Trainer, epoch_permutation, prepare_run


def synthetic(n: int = 32) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def trainer(path, sync: bool) -> Trainer:
    cfg = load_config(None, ["model.name=dcgan", "data.resolution=28", "data.channels=1", "model.hidden_dim=4",
                             "model.latent_dim=4", "train.batch_size=16", "train.ema=0.5", "log.progress=false",
                             "log.tensorboard=false", "train.device=cpu", "train.channels_last=false"])
    return Trainer(cfg, prepare_run(cfg, path), synthetic(), log=lambda *_: None,
                   adjust_runtime=lambda rt: dataclasses.replace(rt, sync_batchnorm=sync))


def test_converted_networks_are_what_optimizers_step_ema_copies_and_checkpoints_save(tmp_path):
    t, plain = trainer(tmp_path / "sync", True), trainer(tmp_path / "plain", False)
    nets = t.state.nets
    assert any(isinstance(m, nn.SyncBatchNorm) for m in nets.modules())
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in plain.state.nets.modules())
    assert t.ctx.nets is nets and t.step_fn.nets is nets  # the phases see the converted networks
    for name, opt in t.state.optimizers.items():  # each optimizer holds exactly its network's parameters
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        assert held == {id(p) for p in nets[name].parameters()}, name
    assert {id(p) for ps in t.step_fn._params.values() for p in ps} == {id(p) for p in nets.parameters()}
    ema = t.state.ema.net
    assert any(isinstance(m, nn.SyncBatchNorm) for m in ema.modules())
    assert not {id(p) for p in ema.parameters()} & {id(p) for p in nets.parameters()}  # a copy, not a view
    perm = epoch_permutation(0, 0, 32)
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    ema_before = [p.clone() for p in ema.parameters()]
    torch.manual_seed(1)
    a = t.step_fn(t.batches.at(perm, 0))
    torch.manual_seed(1)
    b = plain.step_fn(plain.batches.at(perm, 0))
    for k in a:  # one process: SyncBatchNorm is BatchNorm, so the same step
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    after = nets.state_dict()
    for name, p in nets.named_parameters():  # every BatchNorm affine parameter moved with the rest
        assert not torch.equal(p, before[name]), name
    assert any(not torch.equal(after[k], before[k]) for k in after if k.endswith("running_mean"))
    assert all(not torch.equal(p, q) for p, q in zip(ema.parameters(), ema_before))  # EMA followed the G stepped
    # the checkpoint of a SyncBatchNorm run loads into plain networks (sampling, another world size)
    sd = t.state.state_dict()
    fresh = build_networks(t.cfg, 10)
    for name, net in fresh.items():
        net.load_state_dict(sd["nets"][name])
    assert sd["nets"]["G"].keys() == plain.state.nets["G"].state_dict().keys()
