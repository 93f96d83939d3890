"""DistributedDataParallel for phases: each network wrapped once, and a view of the networks per phase.

A phase sees the networks it trains through DDP and all others (frozen, e.g. D during G's step, which
backpropagates through D) as plain modules, so DDP never waits for gradients that a frozen network does not
produce. :class:`Synced` lets phases call any method (``D.heads``, ``G.pre_tanh``) through DDP, since DDP only
synchronises what goes through its ``forward``. The process group and collectives are ``distributed``'s.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from genlab.training.distributed import comm_device, group_enabled


def _module_api() -> frozenset[str]:
    return frozenset(dir(nn.Module))


_MODULE_API = _module_api()


class _Call(nn.Module):
    """What DDP wraps: ``forward(method, *args)`` calls any method of the network, so ``D.heads(x)`` or
    ``G.pre_tanh(z)`` go through DDP's forward (which is what arms its gradient all-reduce)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, method: str, *args, **kwargs):
        fn = self.net if method == "forward" else getattr(self.net, method)
        return fn(*args, **kwargs)


class Synced:
    """A network as a phase that trains it sees it: calls and method calls run through DDP; attributes,
    submodules and ``nn.Module`` methods (``parameters()``, ``train()`` ...) are the network's own."""

    def __init__(self, net: nn.Module, ddp: nn.Module):
        self.module = net
        self.ddp = ddp

    def __call__(self, *args, **kwargs):
        return self.ddp("forward", *args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self.module, name)
        if callable(value) and not isinstance(value, nn.Module) and name not in _MODULE_API:
            return partial(self.ddp, name)
        return value


class PhaseNets(Mapping):
    """``ctx.nets`` during one phase: trained networks through DDP, the others as they are."""

    def __init__(self, nets: Mapping[str, Any]):
        self._nets = dict(nets)

    def __getitem__(self, key: str):
        return self._nets[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nets)

    def __len__(self) -> int:
        return len(self._nets)


def wrap_ddp(nets: nn.ModuleDict, device: torch.device) -> dict[str, Synced]:
    """One DDP per network that has trainable parameters (rank 0's weights are broadcast to all ranks here).

    ``broadcast_buffers=False``: BatchNorm running statistics are not sent before every forward; they are
    SyncBatchNorm's (GPU) or broadcast at epoch ends by :func:`broadcast_buffers` (CPU).
    """
    import inspect
    import warnings

    from torch.nn.parallel import DistributedDataParallel as DDP

    # newer PyTorch renames broadcast_buffers; both spellings still sync buffers once, at construction
    renamed = "forward_sync_buffers" in inspect.signature(DDP).parameters
    no_forward_sync: dict[str, Any] = {"forward_sync_buffers": False} if renamed else {"broadcast_buffers": False}
    # channels_last weights with one input/output channel have two valid stride patterns; the reducer copies
    # such gradients into its buckets (a few hundred floats) and says so once per process
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    out = {}
    for name, net in nets.items():
        if not any(p.requires_grad for p in net.parameters()):
            continue
        ddp = DDP(_Call(net), device_ids=[device.index] if device.type == "cuda" else None,
                  find_unused_parameters=False, **no_forward_sync)
        out[name] = Synced(net, ddp)
    return out


def phase_views(nets: nn.ModuleDict, synced: Mapping[str, Synced], phases) -> dict[str, PhaseNets]:
    """phase name -> the networks as that phase sees them."""
    return {ph.name: PhaseNets({k: synced[k] if k in ph.trains and k in synced else v for k, v in nets.items()})
            for ph in phases}


@torch.no_grad()
def broadcast_buffers(nets: nn.Module, src: int = 0) -> None:
    """Give every rank rank ``src``'s buffers (BatchNorm running statistics, spectral-norm vectors)."""
    if not group_enabled():
        return
    dev = comm_device()
    for b in nets.buffers():
        if b.device == dev:
            dist.broadcast(b, src)
        else:
            tmp = b.to(dev)
            dist.broadcast(tmp, src)
            b.copy_(tmp)


@torch.no_grad()
def out_of_sync(nets: nn.ModuleDict) -> list[str]:
    """Networks whose parameters differ between ranks (there should be none): a checksum per network, one
    MAX and one MIN all-reduce. Catches a phase that bypasses DDP (e.g. calls ``D.body(x)`` directly)."""
    if not group_enabled():
        return []
    names = list(nets.keys())
    sums = []
    for k in names:
        total = torch.zeros((), dtype=torch.float64)
        for p in nets[k].parameters():
            d = p.detach().double()
            total += (d.sum() + d.square().sum()).cpu()
        sums.append(total)
    hi = torch.stack(sums).to(comm_device())
    lo = hi.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return [k for k, a, b in zip(names, hi.tolist(), lo.tolist()) if a != b]


def weight_digest(nets: nn.ModuleDict) -> dict[str, str]:
    """network -> sha256 of its parameters' bytes (in ``named_parameters`` order)."""
    out = {}
    for name, net in nets.items():
        h = hashlib.sha256()
        for pname, p in net.named_parameters():
            h.update(pname.encode())
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
        out[name] = h.hexdigest()
    return out
