"""Many devices, one run: the torchrun process group and the collectives the loop and evaluation use.

``torchrun --nproc_per_node=N -m genlab train RECIPE ...`` starts N copies of ``genlab train``. :func:`setup`
reads torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` and joins the process group (NCCL with CUDA, gloo on
the CPU); one process without those variables is a world of one and nothing here changes what it does.

How the loop uses it (see docs/scaling.md):

- ``train.batch_size`` stays the GLOBAL batch: each rank takes its ``batch_size / world_size`` slice of the
  same epoch permutation, gradients are averaged, so N ranks follow the single-process recipe.
- The DDP wrappers and per-phase views of the networks are ``genlab.training.ddp``'s.
- Rank 0 alone writes the run folder; all ranks agree on errors (:func:`run_on_main`), Ctrl-C and the clock of
  ``train.minutes`` and the schedule (:func:`agree`: rank 0's) and NaNs; logged statistics are averaged
  (:func:`mean_over_ranks`).
- Evaluation: :func:`collective` hands ``genlab.metrics.evaluate`` the group (:class:`GroupCollective`), and
  the metrics shard their sampling and gather the features themselves.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from genlab import errors
from genlab.device import resolve_device
from genlab.metrics.collective import SINGLE_PROCESS, Collective
from genlab.metrics.collective import shard as shard_of

T = TypeVar("T")

@dataclass
class DistContext:
    """Where this process stands in the job. A world of one when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""
    owns_group: bool = False  # this process initialised the group (and destroys it in close())
    holders: list[Callable[[], None]] = field(default_factory=list, repr=False)  # see hold()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def device(self, name: str) -> torch.device:
        """``train.device`` for this rank: with several ranks each takes the GPU ``cuda:LOCAL_RANK``."""
        if self.enabled and name.startswith("cuda:") and name != f"cuda:{self.local_rank}":
            raise errors.ConfigError(f"train.device={name!r} with {self.world_size} ranks: each rank uses "
                                     "cuda:LOCAL_RANK; use train.device=cuda or auto")
        dev = resolve_device(name)  # ConfigError for a device this machine lacks
        return torch.device("cuda", self.local_rank) if dev.type == "cuda" and self.enabled else dev

    def __enter__(self) -> DistContext:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(clean=exc_type is None)

    def hold(self, release: Callable[[], None]) -> None:
        """Register an owner of objects that hold the process group (DDP reducers): ``release`` drops them in
        close(), before the group is destroyed. A holder that outlives the group is torn down during interpreter
        exit, where gloo aborts the process (SIGABRT, "terminate called without an active exception")."""
        self.holders.append(release)

    def close(self, clean: bool = True) -> None:
        """Release the holders, then leave the process group. On a clean exit every rank first meets at a
        barrier: a rank that tears its gloo connections down while a peer still drains the last collective
        aborts that peer. After an error there is no barrier (a crashed peer would never reach it)."""
        while self.holders:
            self.holders.pop()()
        if self.owns_group and dist.is_initialized():
            if clean and self.enabled:
                dist.barrier()
            dist.destroy_process_group()
            self.owns_group = False


def env_ranks(env: Mapping[str, str] = os.environ) -> tuple[int, int, int, int]:
    """(rank, world_size, local_rank, local_world_size) from torchrun's variables; (0, 1, 0, 1) without them."""
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", str(rank)))
    local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    return rank, world, local, local_world


def setup(device_name: str = "auto", timeout_s: float = 1800) -> DistContext:
    """Join the process group torchrun describes (or reuse one already initialised)."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        _, _, local, local_world = env_ranks()
        return DistContext(rank, world, local, local_world, dist.get_backend(), owns_group=False)
    rank, world, local, local_world = env_ranks()
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise errors.ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    ctx = DistContext(rank, world, local, local_world)
    device = ctx.device(device_name)
    ctx.backend = "nccl" if device.type == "cuda" else "gloo"
    kw: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kw["device_id"] = device
    dist.init_process_group(ctx.backend, timeout=datetime.timedelta(seconds=timeout_s), **kw)
    ctx.owns_group = True
    return ctx


# --------------------------------------------------------------------------------------------- collectives
def group_enabled() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group; (0, 1) without one."""
    return (dist.get_rank(), dist.get_world_size()) if group_enabled() else (0, 1)


def comm_device() -> torch.device:
    """Where tensors must live for a collective: the current GPU with NCCL, the CPU with gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def run_on_main(fn: Callable[[], T]) -> T | None:
    """Rank 0 runs ``fn``; if it raised a GenlabError every rank raises it (no rank is left waiting)."""
    if not group_enabled():
        return fn()
    result, failure = None, None
    if dist.get_rank() == 0:
        try:
            result = fn()
        except errors.GenlabError as e:
            failure = (type(e).__name__, str(e))
    box = [failure]
    dist.broadcast_object_list(box, src=0)
    if box[0] is not None:
        cls = getattr(errors, box[0][0], errors.GenlabError)
        raise cls(box[0][1])
    return result


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (small picklable things: RNG states, flags)."""
    if not group_enabled():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank when it is True on at least one (e.g. a Ctrl-C seen by some ranks)."""
    if not group_enabled():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def agree(flag: bool, seconds: float) -> tuple[bool, float]:
    """(``flag`` on any rank, rank 0's ``seconds``) on every rank, in one all-reduce: what the loop decides at a
    log window (Ctrl-C, and the clock that drives ``train.minutes`` and the learning-rate schedule; each rank's own
    clock would give the ranks different rates and stopping steps)."""
    if not group_enabled():
        return flag, seconds
    mine = seconds if dist.get_rank() == 0 else -1.0  # seconds >= 0: the maximum is rank 0's
    t = torch.tensor([1.0 if flag else 0.0, mine], dtype=torch.float64, device=comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0].item()), float(t[1].item())


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``t`` over ranks (the logged statistics of a window: one collective)."""
    if not group_enabled():
        return t
    buf = t.detach().to(comm_device(), torch.float64)
    dist.all_reduce(buf)
    return (buf / dist.get_world_size()).to(t.device, t.dtype)


def gather_features(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows (features, logits, images) in rank order; ranks may hold different counts.

    Returns the whole (sum N_r, ...) tensor on every rank, on ``local``'s device. A world of one returns
    ``local`` itself, so evaluation code can call it unconditionally.
    """
    if not group_enabled():
        return local
    world = dist.get_world_size()
    dev = comm_device()
    n = torch.tensor([local.shape[0]], device=dev, dtype=torch.int64)
    counts = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(counts, n)
    sizes = [int(c.item()) for c in counts]
    longest = max(sizes)
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=dev)
    padded[: local.shape[0]] = local.to(dev)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(local.device)


def shard(n: int, rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """(start, count) of this rank's contiguous share of ``n`` items (the first ``n % world`` ranks get one more);
    ``rank`` / ``world`` default to the process group's. The split is the metrics' (genlab.metrics.collective)."""
    if rank is None or world is None:
        rank, world = rank_and_world()
    return shard_of(n, rank, world)


@dataclass(frozen=True)
class GroupCollective:
    """``genlab.metrics.Collective`` over the initialised process group, from the collectives above."""

    rank: int
    world_size: int

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return gather_features(rows)

    def main_first(self, fn: Callable[[], T]) -> T:
        got = run_on_main(fn)  # the others wait here until rank 0 is done (and share its error)
        return got if self.rank == 0 else fn()  # type: ignore[return-value]


def collective() -> Collective:
    """What ``genlab.metrics.evaluate(collective=...)`` shares its work with: the process group of N > 1 ranks
    when one is initialised (every rank must then evaluate), else this process alone."""
    rank, world = rank_and_world()
    return GroupCollective(rank, world) if world > 1 else SINGLE_PROCESS
