"""RunDir: every file of a run, read and written through one object."""
from __future__ import annotations

import json

import pytest
import torch

from genlab.errors import RunError
from genlab.rundir import RunDir


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
