"""Checkpoint loading says what is wrong with a file (corrupt / not a checkpoint / another model / a device the
machine lacks), and a resume skips a corrupt newest checkpoint, keeping it, and still ends at the same weights."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from genlab.checkpoint import (
    CorruptCheckpoint,
    NotACheckpoint,
    _first_line,
    load_checkpoint,
    older_checkpoint,
    prune,
    resume_checkpoint,
    save_checkpoint,
)
from genlab.device import resolve_device
from genlab.errors import ConfigError, RunError
from genlab.recipe import load_config
from genlab.resume import resume_config
from genlab.rundir import RunDir
from genlab.sampling import load_run, restore
from genlab.training.loop import Trainer, train

EXE = Path(sys.executable).with_name("genlab")
CUDA = torch.cuda.is_available()


def overrides(root: Path, epochs: int, extra=()) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=64",
            "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "train.batch_size=32",
            f"train.epochs={epochs}", "log.every_steps=1", "log.progress=false", "log.tensorboard=false",
            "log.sample_every=0", "train.ema=0.9", "train.device=cpu", *extra]


@pytest.fixture(scope="module")
def two_epochs(tiny_fmnist, tmp_path_factory) -> Path:
    """2 epochs of 2 steps, a checkpoint each epoch: step_000000002.pt and step_000000004.pt."""
    run = tmp_path_factory.mktemp("ckpt") / "run"
    train(load_config(None, overrides(tiny_fmnist, 2)), run, log=lambda *_: None)
    assert [p.name for p in RunDir.of(run).checkpoint_files()] == ["step_000000002.pt", "step_000000004.pt"]
    return run


@pytest.fixture
def run_copy(two_epochs, tmp_path) -> RunDir:
    return RunDir.of(shutil.copytree(two_epochs, tmp_path / "run"))


def tensors(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, weights_only=True)
    return {f"{net}.{k}": v for net, sd in {**ckpt["nets"], "ema": ckpt["ema"]}.items() for k, v in sd.items()}


def test_not_a_genlab_checkpoint_says_what_it_is_and_what_to_pass(run_copy):
    model, plain = run_copy.path / "model.pt", run_copy.path / "weights.pt"
    torch.save(nn.Linear(2, 2), model)
    torch.save(nn.Linear(2, 2).state_dict(), plain)
    for path, words in ((run_copy.noise, ["holds a dict of z", "fixed sample noise"]),
                        (plain, ["holds a dict of weight, bias"]), (model, ["pickled Python objects"])):
        with pytest.raises(NotACheckpoint) as e:
            load_checkpoint(path)
        msg = str(e.value)
        assert msg.startswith(f"{path} is not a genlab checkpoint") and "step_*.pt" in msg, msg
        assert all(w in msg for w in words) and "corrupt" not in msg and "delete" not in msg, msg


DAMAGE = {"truncated": lambda b: b[: len(b) // 2], "zeroed": lambda b: bytes(len(b)), "empty": lambda b: b"",
          "short-zeroed": lambda b: bytes(100), "text": lambda b: b"not a checkpoint\n"}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_corrupt_checkpoint_is_named_with_the_older_one_to_use(damage, run_copy):
    older, newest = run_copy.checkpoint_files()
    newest.write_bytes(DAMAGE[damage](newest.read_bytes()))
    with pytest.raises(CorruptCheckpoint) as e:
        load_checkpoint(newest)
    assert str(e.value).startswith(f"checkpoint {newest} is corrupt (") and f"use the older {older}" in str(e.value)
    shutil.copy(newest, older)
    with pytest.raises(CorruptCheckpoint, match="there is no older checkpoint to fall back to"):
        load_checkpoint(older)


def test_a_checkpoint_of_another_model_names_both_models(run_copy):
    path = run_copy.checkpoint_path("last")
    ckpt = load_checkpoint(path)
    cfg = load_config(None, [*overrides(Path("."), 2), "model.hidden_dim=16"])
    with pytest.raises(ConfigError, match=r"stored in the checkpoint in model.hidden_dim \(8 -> 16\)"):
        Trainer(cfg, run_copy, _synthetic(), resume_from=path, log=lambda *_: None)  # refused before any load
    wider = {**ckpt, "config": {**ckpt["config"], "model": {**ckpt["config"]["model"], "hidden_dim": 16}}}
    with pytest.raises(RunError) as e:  # weights of hidden_dim=8 under a config that says 16
        restore(wider, torch.device("cpu"), run_copy, path)
    msg = str(e.value)
    assert f"checkpoint {path} does not fit the config" in msg and "size mismatch" in msg, msg
    ckpt["nets"]["G"] = {k: v for k, v in list(ckpt["nets"]["G"].items())[1:]}  # a tensor missing
    with pytest.raises(RunError, match=r"does not fit the config: .*Missing key"):
        restore(ckpt, torch.device("cpu"), run_copy, path)


def _synthetic():
    from genlab.data.base import ImageData

    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(64) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def test_device_names_are_checked_before_any_checkpoint_is_loaded(run_copy):
    with pytest.raises(ConfigError, match="'gpu' is not a device name; use one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device("gpu")
    if not CUDA:
        with pytest.raises(ConfigError, match="CUDA is not available on this machine .*; use --device cpu"):
            load_run(run_copy.path, "last", "cuda")
    assert resolve_device("cpu") == torch.device("cpu") and load_run(run_copy.path, "last", "cpu").step == 4


CLI_CASES = [(["--checkpoint", "noise.pt"], "is not a genlab checkpoint"),
             (["--device", "gpu"], "'gpu' is not a device name"),
             pytest.param(["--device", "cuda"], "CUDA is not available on this machine",
                          marks=pytest.mark.skipif(CUDA, reason="this machine has CUDA"))]


@pytest.mark.parametrize("args, words", CLI_CASES)
def test_genlab_sample_reports_the_real_problem_in_one_line(args, words, run_copy, tmp_path):
    args = [str(run_copy.noise) if a == "noise.pt" else a for a in args]
    r = subprocess.run([str(EXE), "sample", str(run_copy.path), "-o", str(tmp_path / "s.png"), *args],
                       capture_output=True, text=True, timeout=300)
    err = r.stderr.strip()
    assert r.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, (r.returncode, err)
    assert words in err and "corrupt" not in err and "delete" not in err, err


def test_resume_skips_a_truncated_newest_checkpoint_keeps_it_and_ends_at_the_same_weights(two_epochs, run_copy):
    older, newest = run_copy.checkpoint_files()
    reference = tensors(two_epochs / "checkpoints" / newest.name)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 3])
    lines: list[str] = []
    train(resume_config(run_copy, []), run_copy.path, resume=True, log=lines.append)
    corrupt = [ln for ln in lines if "is corrupt" in ln]
    assert len(corrupt) == 1 and corrupt[0].startswith(f"checkpoints/{newest.name} is corrupt ("), lines
    assert corrupt[0].endswith(f"resuming from {older.name}"), corrupt
    aside = newest.with_name(newest.name + ".corrupt")
    assert aside.read_bytes() == data[: len(data) // 3]  # kept, not deleted
    after = tensors(newest)  # written again by the resumed epoch
    assert after.keys() == reference.keys()
    for k in reference:
        assert torch.equal(after[k], reference[k]), k


def test_resume_checkpoint_can_choose_without_moving_anything(run_copy):
    older, newest = run_copy.checkpoint_files()
    newest.write_bytes(bytes(os.path.getsize(newest)))
    lines: list[str] = []
    assert resume_checkpoint(run_copy, lines.append, set_aside=False) == older
    assert run_copy.checkpoint_files() == [older, newest]  # nothing renamed
    assert len(lines) == 1 and lines[0].startswith(f"checkpoints/{newest.name} is corrupt (")
    assert lines[0].endswith(f"resuming from {older.name}") and "kept as" not in lines[0], lines
    older.write_bytes(b"")
    with pytest.raises(RunError, match="is corrupt .* and the run has no older checkpoint"):
        resume_checkpoint(run_copy, lines.append, set_aside=False)


# ------------------------------------------------------------------ small files, no training (fast)
def _minimal(step: int) -> dict:
    """The smallest dict load_checkpoint accepts (its required keys)."""
    return {"nets": {}, "optimizers": {}, "step": step, "epoch": 0, "config": {}}


def test_a_failed_checkpoint_write_names_the_cause_and_the_checkpoint_still_good(tmp_path):
    """RLIMIT_FSIZE for real (soft limit only, restored), as in tests/test_io.py."""
    import resource
    import signal

    folder = tmp_path / "run" / "checkpoints"
    good = save_checkpoint(folder / "step_000000002.pt", _minimal(2))
    big = {**_minimal(4), "w": torch.zeros(100_000)}  # 400 kB
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, hard))
    try:
        with pytest.raises(RunError) as e:
            save_checkpoint(folder / "step_000000004.pt", big)
        with pytest.raises(RunError) as first:
            save_checkpoint(tmp_path / "new" / "checkpoints" / "step_000000002.pt", big)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert str(e.value) == (f"could not write checkpoint {folder / 'step_000000004.pt'}: File too large [EFBIG]; a "
                            f"file-size limit was hit (ulimit -f); the last good checkpoint {good} is intact: "
                            f"continue from it with `genlab train --resume {tmp_path / 'run'}`"), e.value
    assert str(first.value).endswith("a file-size limit was hit (ulimit -f); no earlier checkpoint exists"), first.value
    assert sorted(p.name for p in folder.iterdir()) == ["step_000000002.pt"]


def test_what_is_not_a_checkpoint_file_is_named(tmp_path):
    with pytest.raises(RunError) as e:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(e.value) == (f"checkpoint {str(tmp_path / 'nope.pt')!r} does not exist; use --checkpoint last, best or "
                            "a path to a .pt file")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(RunError) as e:
        load_checkpoint(tmp_path / "folder.pt")
    assert str(e.value) == (f"checkpoint {str(tmp_path / 'folder.pt')!r} cannot be read: Is a directory; check the "
                            "path and its permissions")
    for obj, what in (({k: 0 for k in "abcdefg"}, "a dict of a, b, c, d, e, ..."),
                      ({k: 0 for k in "abcde"}, "a dict of a, b, c, d, e"), ([1, 2], "a list")):
        torch.save(obj, tmp_path / "x.pt")
        with pytest.raises(NotACheckpoint) as e:
            load_checkpoint(tmp_path / "x.pt")
        assert str(e.value) == (f"{tmp_path / 'x.pt'} is not a genlab checkpoint: it holds {what}, not nets, "
                                "optimizers, step, epoch, config; pass a checkpoint written by `genlab train` "
                                "(RUN/checkpoints/step_*.pt or best.pt, or --checkpoint last|best)"), e.value


def test_the_older_checkpoint_and_pruning_follow_the_step_order(tmp_path):
    files = [save_checkpoint(tmp_path / f"step_{s:09d}.pt", _minimal(s)) for s in (2, 4, 6)]
    best = save_checkpoint(tmp_path / "best.pt", _minimal(4))
    assert [older_checkpoint(p) for p in files] == [None, files[0], files[1]]
    assert older_checkpoint(best) == files[2]
    (tmp_path / "step_000000006.pt").write_bytes(b"")
    with pytest.raises(CorruptCheckpoint) as e:
        load_checkpoint(files[2])
    assert str(e.value) == (f"checkpoint {files[2]} is corrupt (the file is empty); use the older {files[1]} instead "
                            "(pass it to --checkpoint; `genlab train --resume` falls back to it by itself)")
    files[2].write_bytes(b"not a checkpoint\n")  # not empty: the cause is what torch said
    with pytest.raises(CorruptCheckpoint) as e:
        load_checkpoint(files[2])
    assert e.value.cause.startswith("UnpicklingError: ") and "the file is empty" not in str(e.value), e.value
    prune(files, 0)
    assert all(p.exists() for p in files)
    prune(files, 2)
    assert [p.exists() for p in files] == [False, True, True] and best.exists()


def test_a_damaged_files_cause_is_its_first_sentence():
    assert _first_line(ValueError("First part. Second part.\nMore")) == "ValueError: First part"
    assert _first_line(ValueError("  ")) == "ValueError"
    assert _first_line(RuntimeError("Weights only load failed. Advice.\nWeightsUnpickler error: Bad opcode 7. More"
                                    )) == "RuntimeError: Bad opcode 7"
    assert _first_line(OSError("x" * 200)) == "OSError: " + "x" * 120


def test_a_resume_sets_a_corrupt_newest_checkpoint_aside_and_names_it(tmp_path):
    run = RunDir.of(tmp_path / "run")
    older = save_checkpoint(run.checkpoints / "step_000000002.pt", _minimal(2))
    newest = run.checkpoints / "step_000000004.pt"
    newest.write_bytes(b"")
    lines: list[str] = []
    assert resume_checkpoint(run, lines.append) == older
    assert lines == ["checkpoints/step_000000004.pt is corrupt (the file is empty, kept as step_000000004.pt.corrupt); "
                     "resuming from step_000000002.pt"], lines
    assert not newest.exists() and (run.checkpoints / "step_000000004.pt.corrupt").read_bytes() == b""
    newest.write_bytes(b"")
    lines.clear()
    assert resume_checkpoint(run, lines.append, set_aside=False) == older and newest.exists()
    assert lines == ["checkpoints/step_000000004.pt is corrupt (the file is empty); resuming from step_000000002.pt"]
    torch.save({"w": 1}, newest)  # a readable file that is no checkpoint is not skipped
    with pytest.raises(NotACheckpoint):
        resume_checkpoint(run, lines.append)
    assert resume_checkpoint(RunDir.of(tmp_path / "empty"), lines.append) is None
