"""The Ray executor runs the same sweep as Ray tasks on a local Ray instance started by the test.

Ray is pinned in requirements/dev.lock, so under `make test` a missing or broken Ray fails here (no skip)."""
from __future__ import annotations

import json
import os
import re
import socket

import pytest
import ray
import yaml

from genlab.sweeps import load_sweep, make_executor, run_sweep, write_results


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_executor_runs_every_run_as_a_task(local_ray, tiny_fmnist, tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "data": {"name": "fashion-mnist", "root": str(tiny_fmnist), "verify": False, "resolution": 28,
                                      "limit": 64},
        "model": {"name": "dcgan", "latent_dim": 8, "hidden_dim": 8},
        "train": {"epochs": 1, "batch_size": 32, "channels_last": "false", "device": "cpu"},
        "log": {"every_steps": 1, "tensorboard": False}}))
    (tmp_path / "s.yaml").write_text("base: tiny.yaml\ngrid: {model.hidden_dim: [8]}\nseeds: 2\n")
    out = tmp_path / "out"
    ex = make_executor("ray", workers=2, cpus_per_run=1)
    assert "ray: tasks on a local Ray instance" in ex.describe()
    lines = []
    outcome = run_sweep(load_sweep(tmp_path / "s.yaml"), out, ex, log=lines.append)
    assert sorted(r.name for r in outcome.results) == ["hidden_dim=8/seed=0", "hidden_dim=8/seed=1"]
    assert all(r.ok for r in outcome.results), [r.tail() for r in outcome.results]
    # ran inside Ray workers: each run's own Ray task (the driver is none) in a process other than this one
    assert ray.get_runtime_context().get_task_id() is None
    tasks = [r.ray_task for r in outcome.results]
    assert all(re.fullmatch(r"[0-9a-f]{16,}", t) for t in tasks) and len(set(tasks)) == 2, tasks
    assert all(r.pid not in (0, os.getpid()) for r in outcome.results), [r.pid for r in outcome.results]
    assert {r.host for r in outcome.results} == {socket.gethostname()}
    for seed in (0, 1):
        assert json.loads((out / "hidden_dim=8" / f"seed={seed}" / "status.json").read_text())["state"] == "finished"
    assert (out / "logs" / "hidden_dim=8__seed=1.log").read_text().count("finished 2 steps") == 1
    assert write_results(out)["md"].read_text().count("| 8 |") == 1
    again = run_sweep(load_sweep(tmp_path / "s.yaml"), out, ex, log=lines.append)
    assert again.results == [] and "nothing to run: every run is finished" in lines
