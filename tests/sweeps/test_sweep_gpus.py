"""Which GPU each sweep run gets: ``--gpus`` ids count within an inherited ``CUDA_VISIBLE_DEVICES`` (SLURM,
containers), spaces in ``--gpus "0, 1"`` are dropped, and Ray runs without GPUs are pinned to the CPU whatever
Ray's version does with ``num_gpus=0`` (issue 31). The environment is real; no GPU is needed to check it."""
from __future__ import annotations

import pytest

from genlab.errors import GenlabError
from genlab.sweeps.local import LocalExecutor, gpu_slots
from genlab.sweeps.ray import RayExecutor


def slots(ex: LocalExecutor, n: int) -> list[str]:
    return [ex._env(slot)["CUDA_VISIBLE_DEVICES"] for slot in range(n)]


def test_gpu_ids_index_into_an_inherited_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,GPU-8f2a")  # what SLURM gave this job
    ex = LocalExecutor(workers=3, gpus=["0", " 1", "GPU-8f2a "])
    assert slots(ex, 4) == ["4", "5", "GPU-8f2a", "4"]  # round-robin over the slots
    with pytest.raises(GenlabError, match=r"--gpus 3: this process may use 3 GPU\(s\).*ids 0 to 2"):
        LocalExecutor(gpus=["3"])
    with pytest.raises(GenlabError, match="--gpus GPU-0000"):
        LocalExecutor(gpus=["GPU-0000"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(GenlabError, match="hides every GPU"):
        LocalExecutor(gpus=["0"])


def test_without_an_inherited_list_the_ids_are_the_machines(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ex = LocalExecutor(workers=2, gpus=["0", " 1 ", ""])
    assert slots(ex, 2) == ["0", "1"] and "GPUs 0,1" in ex.describe()
    assert "CUDA_VISIBLE_DEVICES" not in LocalExecutor(workers=2)._env(0)
    assert gpu_slots(["2", "3"], None) == ["2", "3"]


def test_ray_runs_without_gpus_are_pinned_to_the_cpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    cpu = RayExecutor(cpus_per_run=2)
    assert cpu.job_env()["CUDA_VISIBLE_DEVICES"] == "" and "runs on the CPU" in cpu.describe()
    gpu = RayExecutor(cpus_per_run=2, gpus_per_run=1)
    assert "CUDA_VISIBLE_DEVICES" not in gpu.job_env()  # Ray sets it per task to the GPU it assigned
    assert gpu.job_env()["OMP_NUM_THREADS"] == "2"
