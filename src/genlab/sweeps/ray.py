"""Run sweep jobs as Ray tasks: the same ``python -m genlab train ...`` commands, scheduled by a Ray cluster.

Ray is optional (the ``ray`` extra: ``pip install -e ".[ray]"`` in genlab's clone) and imported only when this
executor runs. Each task asks Ray for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs; Ray sets
``CUDA_VISIBLE_DEVICES`` for the task and the run's process inherits it. With 0 GPUs per run the runs are pinned
to the CPU (``CUDA_VISIBLE_DEVICES=""``): Ray versions differ on whether such a task sees no GPU or every GPU (all
runs on cuda:0). Run folders, logs and recipes are plain paths: on a multi-machine cluster they must sit on a
filesystem every node mounts at the same path (NFS, a shared home), and every node needs genlab installed in the
same Python environment.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from genlab.errors import GenlabError
from genlab.sweeps.local import Job, JobResult, SweepInterrupted, run_job, thread_env


def import_ray():
    try:
        import ray
    except ImportError:
        raise GenlabError('the ray executor needs Ray: pip install -e ".[ray]" in genlab\'s clone (or pip install '
                          '"ray[default]>=2.9,<3"); '
                          "the default --executor local needs nothing extra") from None
    return ray


def run_task(job: Job) -> JobResult:
    """``run_job`` as a Ray task; the result names the task (Ray's runtime context), so where it ran is known."""
    import ray

    return dataclasses.replace(run_job(job), ray_task=ray.get_runtime_context().get_task_id() or "")


class RayExecutor:
    """Submit every job as a Ray task to the cluster at ``address`` (None: an already initialised Ray, else a
    local Ray started with ``workers`` CPUs)."""

    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None, cpus_per_run: float = 1.0,
                 gpus_per_run: float = 0.0, threads: int | None = None, **_ignored):
        if cpus_per_run <= 0 or gpus_per_run < 0:
            raise GenlabError(f"cpus_per_run={cpus_per_run}, gpus_per_run={gpus_per_run}: CPUs must be positive, "
                              "GPUs non-negative")
        self.workers = workers
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.threads = threads or max(1, int(cpus_per_run))

    def describe(self) -> str:
        where = self.address or "a local Ray instance"
        gpus = (f"{self.gpus_per_run:g} GPU" if self.gpus_per_run else
                "no GPU (runs on the CPU; --gpus-per-run 1 gives each a GPU)")
        return f"ray: tasks on {where}, {self.cpus_per_run:g} CPU and {gpus} per run, {self.threads} thread(s) each"

    def job_env(self) -> dict[str, str]:
        """What every task's run gets on top of the worker's environment."""
        # genlab's own settings (cache and data folders) follow the runs; paths are assumed shared
        env = {**{k: v for k, v in os.environ.items() if k.startswith("GENLAB_")}, **thread_env(self.threads)}
        if not self.gpus_per_run:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    def _connect(self, ray) -> None:
        if ray.is_initialized():
            return
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, int(self.workers * self.cpus_per_run)), include_dashboard=False,
                         log_to_driver=False)
        except ConnectionError as e:
            raise GenlabError(f"cannot reach the Ray cluster at {self.address!r}: {e}; start it with "
                              "`ray start --head` (see docs/scaling.md)") from None

    def run(self, jobs: Sequence[Job], on_done: Callable[[JobResult], None] = lambda r: None) -> list[JobResult]:
        ray = import_ray()
        self._connect(ray)
        task = ray.remote(run_task).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                            max_retries=0)
        env = self.job_env()
        refs = [task.remote(Job(j.name, j.args, j.log, {**env, **j.env}, j.cwd)) for j in jobs]
        results: list[JobResult] = []
        remaining = list(refs)
        try:
            while remaining:
                done, remaining = ray.wait(remaining, num_returns=1)
                for ref in done:
                    res = ray.get(ref)
                    results.append(res)
                    on_done(res)
        except KeyboardInterrupt:
            for ref in remaining:
                ray.cancel(ref)
            raise SweepInterrupted("sweep interrupted: the Ray tasks were cancelled; runs continue from their last "
                                   "checkpoint when the same `genlab sweep` command runs again") from None
        return results
