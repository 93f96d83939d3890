"""A checkpoint write that fails for real (RLIMIT_FSIZE, as a full disk or a quota would) stops the run with one
line naming the file and the cause; the last good checkpoint stays intact and a resume ends at the same weights
as a run that was never interrupted."""
from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.loop import train

EXE = Path(sys.executable).with_name("genlab")


def overrides(root: Path, epochs: int) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=64",
            "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "train.batch_size=32",
            f"train.epochs={epochs}", "log.every_steps=1", "log.progress=false", "log.tensorboard=false",
            "log.keep_checkpoints=10", "train.ema=0.9", "train.device=cpu"]


def tensors(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, weights_only=True)
    groups = {**ckpt["nets"], "ema": ckpt["ema"]}
    return {f"{net}.{k}": v for net, sd in groups.items() for k, v in sd.items()}


def file_size_limit(limit: int):
    def preexec() -> None:  # in the child, before exec: writes past `limit` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # ignored dispositions survive exec; default kills
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_failed_checkpoint_write_stops_cleanly_and_the_resume_is_exact(tiny_fmnist, tmp_path):
    reference = tmp_path / "reference"
    train(load_config(None, overrides(tiny_fmnist, 3)), reference, log=lambda *_: None)
    run = RunDir.of(tmp_path / "run")
    train(load_config(None, overrides(tiny_fmnist, 1)), run.path, log=lambda *_: None)
    [good] = run.checkpoint_files()
    good_bytes = good.read_bytes()
    # every checkpoint of this model has the same size; every other file of the run stays well below it, so a
    # limit of one byte less lets the run start and fails exactly its next checkpoint write (measured here)
    limit = len(good_bytes) - 1
    others = [p for p in run.path.rglob("*") if p.is_file() and p.suffix != ".pt"]
    assert max(p.stat().st_size for p in others) < limit // 4

    r = subprocess.run([str(EXE), "train", "--resume", str(run.path), "train.epochs=3"], capture_output=True,
                       text=True, timeout=600, preexec_fn=file_size_limit(limit))
    err = r.stderr.strip()
    assert r.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, (r.returncode, err)
    failed = run.step_checkpoint(4)
    assert err.startswith(f"error: could not write checkpoint {failed}: File too large [EFBIG]"), err
    assert f"the last good checkpoint {good} is intact" in err and f"genlab train --resume {run.path}" in err, err
    assert run.checkpoint_files() == [good] and good.read_bytes() == good_bytes
    assert load_checkpoint(good)["step"] == 2
    assert [p for p in run.path.rglob("*") if p.name.endswith(".tmp")] == []  # no half-written file left

    r = subprocess.run([str(EXE), "train", "--resume", str(run.path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout, r.stderr)
    final, expected = tensors(run.checkpoint_path("last")), tensors(RunDir.of(reference).checkpoint_path("last"))
    assert run.checkpoint_path("last").name == "step_000000006.pt" and final.keys() == expected.keys()
    for k in expected:
        assert torch.equal(final[k], expected[k]), k
