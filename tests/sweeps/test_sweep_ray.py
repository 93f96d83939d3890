"""The Ray executor runs the same sweep as Ray tasks on a local Ray instance started by the test."""
from __future__ import annotations

import json
import socket

import pytest
import yaml

from genlab.sweeps import load_sweep, make_executor, run_sweep, write_results

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]" (optional extra)')


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
    assert {r.host for r in outcome.results} == {socket.gethostname()}  # ran inside Ray workers, reported back
    for seed in (0, 1):
        assert json.loads((out / "hidden_dim=8" / f"seed={seed}" / "status.json").read_text())["state"] == "finished"
    assert (out / "logs" / "hidden_dim=8__seed=1.log").read_text().count("finished 2 steps") == 1
    assert write_results(out)["md"].read_text().count("| 8 |") == 1
    again = run_sweep(load_sweep(tmp_path / "s.yaml"), out, ex, log=lines.append)
    assert again.results == [] and "nothing to run: every run is finished" in lines
