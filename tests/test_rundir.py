"""RunDir: every file of a run, read and written through one object."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import genlab
from genlab.errors import ConfigError, DataError, RunError
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.loop import train

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs_v010"


def test_create_refuses_an_existing_folder_without_overwrite(tmp_path):
    run = RunDir.of(tmp_path / "r")
    run.create()
    assert run.samples.is_dir() and run.checkpoints.is_dir() and not run.exists()
    (run.path / "x").write_text("1")
    with pytest.raises(RunError, match="already exists"):
        run.create()
    with pytest.raises(RunError, match="not a genlab run folder"):
        run.require()
    run.write_config("name: x\n")
    assert run.require() is run and run.read_config() == {"name": "x"}


def test_records_append_read_and_truncate_skip_a_torn_line(tmp_path):
    run = RunDir.of(tmp_path)
    for step in (10, 20, 30):
        run.append_record({"step": step, "loss": step / 10})
    with run.metrics.open("a") as f:
        f.write('{"step": 40, "lo')  # a crash mid-write
    assert [r["step"] for r in run.read_records()] == [10, 20, 30]
    run.truncate_records(20)
    assert [r["step"] for r in run.read_records()] == [10, 20]
    assert run.metrics.read_text().endswith("\n")


def test_json_files_round_trip_and_unreadable_ones_read_as_none(tmp_path):
    run = RunDir.of(tmp_path)
    assert run.read_status() is None and run.read_eval() is None and run.read_runtime() is None
    run.write_status("running", step=3)
    run.write_runtime({"precision": "fp32"})
    run.write_eval({"fid": 1.5, "protocol": {}})
    assert run.read_status() == {"state": "running", "step": 3}
    assert run.read_runtime() == {"precision": "fp32"} and run.read_eval()["fid"] == 1.5
    other = tmp_path / "elsewhere.json"
    run.write_eval({"fid": 2.0}, other)
    assert json.loads(other.read_text()) == {"fid": 2.0} and run.read_eval()["fid"] == 1.5
    run.status_json.write_bytes(b"\x00\xff")
    assert run.read_status() is None
    run.write_artifact_json("coverage.json", {"kl": 0.1})
    assert run.read_artifact_json("coverage.json") == {"kl": 0.1}
    assert run.artifact("coverage.json").parent == run.analysis


def test_noise_samples_and_checkpoints(tmp_path):
    run = RunDir.of(tmp_path / "r")
    run.create()
    assert run.load_noise() is None
    run.save_noise({"z": torch.arange(4.0)})
    assert torch.equal(run.load_noise()["z"], torch.arange(4.0))
    assert run.sample_path(3).name == "epoch_0003.png" and run.sample_path(3, "recon").name == "recon_epoch_0003.png"
    for p in (run.sample_path(2), run.sample_path(1), run.sample_path(1, "recon")):
        p.write_bytes(b"png")
    assert [p.name for p in run.sample_grids()] == ["epoch_0001.png", "epoch_0002.png"]
    assert [p.name for p in run.sample_grids("recon")] == ["recon_epoch_0001.png"]
    with pytest.raises(RunError, match="no checkpoint yet"):
        run.checkpoint_path("last")
    for step in (100, 20):
        run.step_checkpoint(step).write_bytes(b"ckpt%d" % step)
    assert run.checkpoint_path("last") == run.step_checkpoint(100)  # by step, not by name length
    with pytest.raises(RunError, match="no best.pt"):
        run.checkpoint_path("best")
    run.keep_as_best(run.step_checkpoint(20))
    assert run.checkpoint_path("best").read_bytes() == b"ckpt20"
    assert run.checkpoint_path(str(run.step_checkpoint(20))) == run.step_checkpoint(20)
    assert run.checkpoint_path(run.step_checkpoint(20).name) == run.step_checkpoint(20)
    with pytest.raises(RunError, match="not found"):
        run.checkpoint_path("nope.pt")


# ------------------------------------------------------------------------------------------------ --overwrite
def _run_like(path: Path) -> Path:
    """A folder that looks like a genlab 0.1.0 run (config.yaml + checkpoints/, no marker)."""
    (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text("name: x\n")
    (path / "checkpoints" / "step_000000001.pt").write_bytes(b"old")
    return path


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_create_marks_the_folder_and_overwrite_replaces_a_run_folder(tmp_path):
    run = RunDir.of(tmp_path / "r")
    with run.create():
        assert json.loads(run.marker.read_text()) == {"genlab_version": genlab.__version__}
        assert run.is_run_folder() and not run.exists()
    (run.checkpoints / "step_000000004.pt").write_bytes(b"old")
    (run.path / "notes.txt").write_text("mine")  # a file genlab did not write: refused, nothing removed
    with pytest.raises(RunError, match="notes.txt"):
        run.create(overwrite=True)
    assert (run.path / "notes.txt").read_text() == "mine" and run.step_checkpoint(4).is_file()
    (run.path / "notes.txt").unlink()
    with run.create(overwrite=True):
        assert _listing(run.path) == sorted([".genlab-run", ".lock", "checkpoints", "samples"])


def test_overwrite_replaces_a_run_of_genlab_010_without_a_marker(tmp_path):
    old = tmp_path / "v010"
    shutil.copytree(FIXTURES / "dcgan-ema", old)
    assert RunDir.of(old).is_run_folder() and not RunDir.of(old).marker.exists()
    with RunDir.of(old).create(overwrite=True):
        assert RunDir.of(old).checkpoint_files() == [] and not (old / "metrics.jsonl").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run_folder(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "cat.png").write_bytes(b"png")
    (data / "config.yaml").write_text("mine: 1\n")  # a config.yaml alone does not make a run folder
    before = _listing(data)
    with pytest.raises(RunError) as e:
        RunDir.of(data).create(overwrite=True)
    assert "refusing to --overwrite" in str(e.value) and "not a genlab run folder" in str(e.value)
    assert _listing(data) == before  # nothing removed, not even a lock file created


def test_overwrite_never_removes_the_current_folder_its_parents_home_or_root(tmp_path, monkeypatch):
    work = _run_like(tmp_path / "project" / "work")
    (work / ".genlab-run").write_text("{}")  # even with genlab's own marker
    _run_like(tmp_path / "project")
    monkeypatch.chdir(work)
    cases = {".": "the current folder", str(work): "the current folder", "..": "a parent of the current folder",
             str(tmp_path / "project"): "a parent of the current folder", "/": "the root folder"}
    home = _run_like(tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    cases[str(home)] = "your home folder"
    monkeypatch.chdir(tmp_path / "project" / "work" / "checkpoints")  # cwd inside the run: its parents stay
    cases["../.."] = "a parent of the current folder"
    for path, what in cases.items():
        before = _listing(tmp_path)
        with pytest.raises(RunError) as e:
            RunDir.of(path).create(overwrite=True)
        assert "refusing to --overwrite" in str(e.value) and what in str(e.value), (path, str(e.value))
        assert _listing(tmp_path) == before


# ------------------------------------------------------------------------------------------------ the lock
def test_the_lock_excludes_a_second_holder_and_a_stale_one_is_taken_over(tmp_path):
    run = RunDir.of(tmp_path / "r")
    lock = run.create()
    assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()
    assert run.lock_owner()["pid"] == os.getpid()
    for attempt in (run.lock, lambda: run.create(overwrite=True)):
        with pytest.raises(RunError) as e:
            attempt()
        assert f"genlab process {os.getpid()}" in str(e.value) and "is in use" in str(e.value)
    lock.release()
    assert run.lock_owner() is None and run.lock_file.read_text() == ""
    with run.lock() as again:
        assert again.stale_owner is None and again.describe_takeover() is None
    run.lock_file.write_text(json.dumps({"pid": 999999, "host": "elsewhere"}))  # left by a SIGKILLed process
    with run.lock() as taken:
        assert taken.stale_owner["pid"] == 999999
        assert "999999" in taken.describe_takeover() and "taking the run over" in taken.describe_takeover()


EXE = Path(sys.executable).with_name("genlab")


def _train_args(root: Path, extra=()) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=64",
            "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "train.batch_size=32",
            "log.every_steps=1", "log.progress=false", "log.tensorboard=false", "log.sample_every=0",
            "train.device=cpu", *extra]


def _genlab(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([str(EXE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


def _one_error_line(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 2 and "Traceback" not in err, (proc.returncode, out, err)
    err = err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_a_second_process_on_a_training_run_is_refused_and_a_killed_one_is_taken_over(tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    first = _genlab("train", *_train_args(tiny_fmnist, ["train.epochs=100000"]), "--run-dir", str(run))
    try:
        deadline = time.time() + 300
        while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text().strip():
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline, "the first run never reached its first step"
            time.sleep(0.05)
        second = [_genlab("train", "--resume", str(run)),
                  _genlab("train", *_train_args(tiny_fmnist, ["train.epochs=1"]), "--run-dir", str(run), "--overwrite")]
        for proc in second:
            err = _one_error_line(proc)
            assert f"genlab process {first.pid} on" in err and "is in use" in err and ".lock" in err, err
        assert first.poll() is None, "the first run must still be training"
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    epoch = torch.load(RunDir.of(run).checkpoint_path("last"), weights_only=True)["epoch"]
    resumed = _genlab("train", "--resume", str(run), f"train.epochs={epoch + 1}")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, (out, err)
    out = " ".join(out.split())  # rich wraps long lines at 80 columns without a terminal
    assert f"genlab process {first.pid} on" in out and "taking the run over" in out, out
    assert RunDir.of(run).lock_owner() is None and run.joinpath(".lock").read_text() == ""


# ------------------------------------------------------------------------------------------------ failed starts
@pytest.mark.parametrize("case", ["unknown-dataset", "empty-image-folder"])
def test_a_run_that_fails_before_its_first_step_leaves_no_folder(case, tiny_fmnist, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    extra = {"unknown-dataset": ["data.name=imagenet-99", f"data.root={tiny_fmnist}"],
             "empty-image-folder": ["data.name=image-folder", f"data.root={empty}"]}[case]
    args = [a for a in _train_args(tiny_fmnist, ["train.epochs=1"]) if not a.startswith(("data.name=", "data.root="))]
    run = tmp_path / "runs" / "r"
    err = _one_error_line(_genlab("train", *args, *extra, "--run-dir", str(run)))
    assert ("imagenet-99" in err) if case == "unknown-dataset" else (str(empty) in err), err
    assert not run.exists(), _listing(run)


def test_a_failed_start_in_an_existing_empty_folder_removes_only_what_it_made(tmp_path):
    run, empty = tmp_path / "mine", tmp_path / "no-images"
    run.mkdir()
    empty.mkdir()
    cfg = load_config(None, ["data.name=image-folder", f"data.root={empty}", "data.resolution=28", "model.name=dcgan",
                             "log.progress=false", "log.tensorboard=false"])
    with pytest.raises(DataError):
        train(cfg, run, log=lambda *_: None)
    assert run.is_dir() and list(run.iterdir()) == []  # the folder was the user's: kept, emptied of ours


# ------------------------------------------------------------------ small cases found by mutation testing (fast)
def test_a_run_folder_is_made_with_its_missing_parents_and_the_lock_names_the_writer(tmp_path):
    run = RunDir.of(tmp_path / "a" / "b" / "run")
    with run.create():
        assert json.loads(run.lock_file.read_text()) == {"pid": os.getpid(), "host": os.uname().nodename,
                                                         "genlab_version": genlab.__version__}
    assert run.path.is_dir() and run.checkpoints.is_dir()


def test_the_last_checkpoint_is_the_newest_and_a_missing_best_says_what_to_use(tmp_path):
    run = RunDir.of(tmp_path / "run")
    run.create().release()
    for step in (2, 4, 6):
        run.step_checkpoint(step).write_bytes(b"x")
    assert run.checkpoint_path("last") == run.checkpoints / "step_000000006.pt"
    assert run.checkpoint_path("step_000000004.pt") == run.checkpoints / "step_000000004.pt"
    with pytest.raises(RunError) as e:
        run.checkpoint_path("best")
    assert str(e.value) == (f"run {str(run.path)!r} has no best.pt (it is kept when eval.every > 0); use "
                            "--checkpoint last")


def test_records_survive_a_bad_line_in_the_middle_and_truncation_ends_lines(tmp_path):
    run = RunDir.of(tmp_path / "run")
    run.create().release()
    run.metrics.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n{"note": "no step"}\n{"step": 4}')
    assert run.read_records() == [{"step": 1}, {"step": 3}, {"note": "no step"}, {"step": 4}]
    run.metrics.write_text('{"step": 1}\n{"note": "no step"}\n{"step": 2}')  # the last line has no newline
    run.truncate_records(2)
    run.append_record({"step": 3})
    assert run.read_records() == [{"step": 1}, {"note": "no step"}, {"step": 2}, {"step": 3}]
    assert run.metrics.read_text() == '{"step": 1}\n{"note": "no step"}\n{"step": 2}\n{"step": 3}\n'


def test_small_json_files_take_numpy_and_torch_numbers(tmp_path):
    import numpy as np

    run = RunDir.of(tmp_path / "run")
    run.create().release()
    run.write_status("running", loss=np.float32(0.5), fid=torch.tensor(1.25))
    assert run.read_status() == {"state": "running", "loss": 0.5, "fid": 1.25}


def test_a_folder_without_a_config_and_a_config_that_is_no_mapping_are_named(tmp_path):
    run = RunDir.of(tmp_path / "run")
    with pytest.raises(RunError) as e:
        run.require()
    assert str(e.value) == (f"{str(run.path)!r} is not a genlab run folder (no config.yaml); train one with "
                            "`genlab train RECIPE --run-dir PATH`")
    assert run.read_config_text() == ""
    run.create().release()
    run.write_config("- a\n- b\n")
    assert run.read_config_text() == "- a\n- b\n"
    with pytest.raises(ConfigError, match="holds a YAML list, not a genlab config mapping; restore it from a "):
        run.read_config()
    assert RunDir.of(run) is run
    run.write_config("model: {name: dcgan\n")
    with pytest.raises(ConfigError) as e:
        run.read_config()
    assert str(e.value) == (f"{run.config} is not a readable genlab config (did not find expected ',' or '}}'); "
                            "restore it from a checkpoint's config or train the run again")
