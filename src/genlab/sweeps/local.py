"""Run sweep jobs as separate ``python -m genlab ...`` processes, N at a time, on this machine.

Each process gets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = cores // workers (so N runs do not fight over the
cores) and, with ``gpus``, one GPU per slot through ``CUDA_VISIBLE_DEVICES`` (``gpu_slots``: ids count within an
inherited ``CUDA_VISIBLE_DEVICES``). Output goes to one log file per
run. A stop signal to the sweep (Ctrl-C, SIGTERM from ``kill`` or a scheduler, SIGHUP) sends each running
process a single SIGINT and waits for it: it writes a checkpoint and stops, and running the sweep again continues
from there. Each run is in a session of its own (a terminal's Ctrl-C reaches only the sweep) and, on Linux, is
sent SIGINT by the kernel if the sweep dies without passing it on (``kill -9``), so no run trains on unattended.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab import signals
from genlab.errors import GenlabError, Interrupted


class SweepInterrupted(Interrupted):
    """Ctrl-C during a sweep; the runs were checkpointed (the CLI exits 130)."""


@dataclass(frozen=True)
class Job:
    name: str  # the run's name inside the sweep, e.g. "latent_dim=16/seed=0"
    args: tuple[str, ...]  # arguments after ``python -m genlab``
    log: Path  # stdout + stderr of the process (appended)
    env: dict[str, str] = field(default_factory=dict)  # extra environment variables
    cwd: str | None = None  # working directory (relative recipe paths resolve here)


@dataclass(frozen=True)
class JobResult:
    name: str
    returncode: int
    seconds: float
    log: Path
    host: str = ""
    pid: int = 0  # the process that ran the job's command (0: the sweep's own loop, the local executor)
    ray_task: str = ""  # the Ray task that ran it (ray executor), from Ray's runtime context

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def thread_env(threads: int) -> dict[str, str]:
    t = str(max(1, int(threads)))
    return {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}


def gpu_slots(gpus: Sequence[str], inherited: str | None) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` of each GPU slot. Under an inherited ``CUDA_VISIBLE_DEVICES`` (SLURM, a
    container) the ids count within it, as CUDA counts them there: ``0`` is the first GPU this process may use;
    an entry that is not a number (a GPU UUID) must be one of the inherited ones."""
    ids = [str(g).strip() for g in gpus if str(g).strip()]
    if inherited is None:
        return ids
    visible = [v.strip() for v in inherited.split(",") if v.strip()]
    slots = []
    for g in ids:
        if g.isdigit() and int(g) < len(visible):
            slots.append(visible[int(g)])
        elif not g.isdigit() and g in visible:
            slots.append(g)
        else:
            raise GenlabError(f"--gpus {g}: this process may use {len(visible)} GPU(s) (CUDA_VISIBLE_DEVICES="
                              f"{inherited!r}), counted from 0 within them; use ids 0 to {len(visible) - 1}"
                              if visible else f"--gpus {g}: CUDA_VISIBLE_DEVICES={inherited!r} hides every GPU "
                              "from this process; unset it or drop --gpus")
    return slots


def command(job: Job) -> list[str]:
    return [sys.executable, "-m", "genlab", *job.args]


def _stop_with_parent() -> None:
    """In a run's process, before it starts (Linux): the kernel sends it SIGINT when the sweep process dies,
    however it dies, so the run checkpoints and stops instead of training on alone."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _open_log(job: Job):
    job.log.parent.mkdir(parents=True, exist_ok=True)
    f = job.log.open("a")
    f.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} genlab {' '.join(job.args)}\n")
    f.flush()
    return f


def run_job(job: Job) -> JobResult:
    """Run one job to completion in the foreground (what a Ray task executes on its worker)."""
    import socket

    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **job.env}
    cwd = job.cwd if job.cwd and Path(job.cwd).is_dir() else None
    with _open_log(job) as f:
        proc = subprocess.run(command(job), stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                              preexec_fn=_stop_with_parent if sys.platform == "linux" else None)
    return JobResult(job.name, proc.returncode, time.perf_counter() - t0, job.log, socket.gethostname(), os.getpid())


class LocalExecutor:
    """``workers`` processes at a time on this machine."""

    name = "local"

    def __init__(self, workers: int = 1, threads: int | None = None, gpus: Sequence[str] = (),
                 poll_s: float = 0.2, **_ignored):
        if workers < 1:
            raise GenlabError(f"--workers {workers}: at least one worker")
        self.workers = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.gpus = gpu_slots(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
        self.poll_s = poll_s

    def describe(self) -> str:
        gpus = f", GPUs {','.join(self.gpus)} round-robin" if self.gpus else ""
        return f"local: {self.workers} process(es) at a time, {self.threads} thread(s) each{gpus}"

    def _env(self, slot: int) -> dict[str, str]:
        env = thread_env(self.threads)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def run(self, jobs: Sequence[Job], on_done: Callable[[JobResult], None] = lambda r: None) -> list[JobResult]:
        pending = list(jobs)
        running: dict[int, tuple[Job, subprocess.Popen, float, Any]] = {}
        results: list[JobResult] = []
        # Ctrl-C / kill / SIGHUP must stop the sweep even when SIGINT arrived ignored (a job started with `&` from
        # a script inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler) or its KeyboardInterrupt
        # is swallowed on the way (genlab.signals: the next result written raises it again); not the main
        # thread: the signals are not ours to handle
        restore = signals.install_handler(signals.handler)
        try:
            while pending or running:
                for slot in range(self.workers):
                    if slot not in running and pending:
                        job = pending.pop(0)
                        f = _open_log(job)
                        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self._env(slot), **job.env}
                        # own session: a terminal Ctrl-C reaches only us; we forward exactly one SIGINT
                        proc = subprocess.Popen(command(job), stdout=f, stderr=subprocess.STDOUT, env=env,
                                                cwd=job.cwd, start_new_session=True,
                                                preexec_fn=_stop_with_parent if sys.platform == "linux" else None)
                        running[slot] = (job, proc, time.perf_counter(), f)
                for slot, (job, proc, t0, f) in list(running.items()):
                    if proc.poll() is not None:
                        f.close()
                        del running[slot]
                        res = JobResult(job.name, proc.returncode, time.perf_counter() - t0, job.log)
                        results.append(res)
                        on_done(res)
                signals.check()
                if running:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            signum = signals.which()
            signals.clear()  # handled here: what follows may write again
            self._stop(running)
            ok = [r.name for r in results if r.ok]
            finished = f"{len(ok)} of {len(jobs)} run(s) finished ({', '.join(ok)})" if ok else \
                f"none of the {len(jobs)} run(s) finished"
            stopped = ", ".join(job.name for job, *_ in running.values()) or "none"
            raise SweepInterrupted(f"sweep interrupted ({signals.describe(signum)}): {finished}; checkpointed and "
                                   f"stopped: {stopped}; run the same `genlab sweep` command again to continue "
                                   "(finished runs are skipped, stopped ones resume)", signum) from None
        finally:
            signals.restore(restore)
        return results

    @staticmethod
    def _stop(running: dict, timeout_s: float = 120.0) -> None:
        for _, proc, _, _ in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.time() + timeout_s
        for _, proc, _, f in running.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            f.close()
