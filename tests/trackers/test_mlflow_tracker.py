"""The MLflow tracker for real: runs logged to the default local store (SQLite beside the run folder) and to a
`mlflow server` process started here, read back with MLflow's own client; a real Ctrl-C, a divergence, a full
disk and a server killed mid-training."""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

import genlab
from genlab.errors import Interrupted, TrainingDiverged
from genlab.rundir import RunDir
from genlab.trackers.mlflow_tracker import HTTP_DEFAULTS, local_store_uri, metric_key

from .conftest import EVAL, warning_lines

MLFLOW_EXE = Path(sys.executable).with_name("mlflow")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One runs folder for the module: its runs share the default store runs/mlflow/mlflow.db (created once)."""
    return tmp_path_factory.mktemp("runs")


def client_of(run_dir: Path) -> tuple[MlflowClient, str]:
    ids = RunDir.of(run_dir).read_tracker_ids()["mlflow"]
    return MlflowClient(tracking_uri=ids["tracking_uri"]), ids["run_id"]


def train_records(run_dir: Path) -> list[dict]:
    return [r for r in RunDir.of(run_dir).read_records() if r.get("kind") != "eval"]


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def artifact_files(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for a in client.list_artifacts(run_id, path):
        out += artifact_files(client, run_id, a.path) if a.is_dir else [a.path]
    return out


class InterruptAt(genlab.Callback):
    """A real Ctrl-C: SIGINT to this process after step ``step`` (the loop checkpoints and stops)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer) -> None:
        if trainer.state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_the_local_store_holds_the_run_and_a_resume_continues_it(runs, tiny_train, eval_cache, tmp_path):
    run_dir = runs / "gan"
    with pytest.raises(Interrupted):
        tiny_train(run_dir, "train.epochs=3", "log.trackers=[mlflow]", *EVAL, callbacks=[InterruptAt(3)])
    client, run_id = client_of(run_dir)
    assert RunDir.of(run_dir).read_tracker_ids()["mlflow"]["tracking_uri"] == local_store_uri(RunDir.of(run_dir))
    assert (runs / "mlflow" / "mlflow.db").is_file()
    first = client.get_run(run_id)
    assert first.info.status == "KILLED" and first.data.tags["genlab.status"] == "interrupted"
    assert [s for s, _ in history(client, run_id, "loss_G")] == [1, 2, 3]

    # the resume (evaluating on fewer images: a new protocol) continues the same MLflow run
    run = tiny_train(run_dir, "eval.num_samples=32", resume=True)
    assert run.step == 6
    assert client_of(run_dir)[1] == run_id
    assert [r.info.run_id for r in client.search_runs([first.info.experiment_id])
            if r.info.run_name == "gan"] == [run_id]
    done = client.get_run(run_id)
    assert done.info.status == "FINISHED" and done.data.tags["genlab.status"] == "finished"

    # every record of metrics.jsonl, at its step (D(G(z)) under an MLflow-safe name)
    records = train_records(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for key in ("loss_G", "loss_D", "D(x)", "D(G(z))", "lr/G", "time/images_per_s"):
        assert history(client, run_id, metric_key(key)) == [(r["step"], r[key]) for r in records], key
    assert metric_key("D(G(z))") == "D_G_z" and "D_G_z" in done.data.metrics
    evals = [r for r in RunDir.of(run_dir).read_records() if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert history(client, run_id, "fid") == [(r["step"], r["fid"]) for r in evals]

    # the config as params (the first value kept; a change on resume as a tag)
    params = done.data.params
    assert params["model.name"] == "dcgan" and params["train.epochs"] == "3" and params["eval.num_samples"] == "64"
    assert params["log.trackers"] == '["mlflow"]' and len(params) > 60
    assert done.data.tags["changed_on_resume/eval.num_samples"] == "32"

    # each evaluation with its own protocol, the grids, the final export and eval.json
    files = artifact_files(client, run_id)
    for r in evals:
        name = f"evaluations/step_{r['step']:09d}.json"
        assert name in files
        logged = json.loads(Path(client.download_artifacts(run_id, name, str(tmp_path))).read_text())
        assert logged == r
    assert [e["protocol"]["num_generated"] for e in evals] == [64, 32, 32]
    assert "32 generated" in done.data.tags["genlab.eval_protocol"]
    grid_steps = sorted(int(f.split("+")[2]) for f in files if f.startswith("images/samples+") and f.endswith(".png"))
    assert grid_steps == [2, 4, 6]
    assert {"export/generator.safetensors", "export/generator.json", "eval.json"} <= set(files)
    export = Path(client.download_artifacts(run_id, "export", str(tmp_path / "dl")))
    assert torch.equal(genlab.load_generator(export).sample(4, seed=1), run.sample(4, seed=1))
    eval_json = Path(client.download_artifacts(run_id, "eval.json", str(tmp_path / "dl")))
    assert eval_json.read_bytes() == RunDir.of(run_dir).eval_json.read_bytes()


def test_a_tracker_added_on_resume_gets_the_records_so_far(runs, tiny_train):
    run_dir = runs / "late"
    tiny_train(run_dir, "log.trackers=[]")
    assert RunDir.of(run_dir).read_tracker_ids() == {}
    tiny_train(run_dir, "train.epochs=2", "log.trackers=[mlflow]", resume=True)
    client, run_id = client_of(run_dir)
    assert history(client, run_id, "loss_G") == [(r["step"], r["loss_G"]) for r in train_records(run_dir)]
    assert [s for s, _ in history(client, run_id, "loss_G")] == [1, 2, 3, 4]


class NaNWeights(genlab.Callback):
    """G's weights become NaN after step 1, so step 2's losses are not finite: a real divergence."""

    def on_step_end(self, trainer) -> None:
        if trainer.state.step == 1:
            with torch.no_grad():
                for p in trainer.state.nets["G"].parameters():
                    p.fill_(float("nan"))


def test_a_diverged_run_is_a_failed_mlflow_run(runs, tiny_train):
    run_dir = runs / "nan"
    with pytest.raises(TrainingDiverged):
        tiny_train(run_dir, "train.epochs=2", "log.trackers=[mlflow]", callbacks=[NaNWeights()])
    client, run_id = client_of(run_dir)
    got = client.get_run(run_id)
    assert got.info.status == "FAILED" and got.data.tags["genlab.status"] == "diverged"
    assert [s for s, _ in history(client, run_id, "loss_G")] == [1]


class DiskFillsUp(genlab.Callback):
    """After step ``step`` the process may not grow the MLflow database any more (RLIMIT_FSIZE at its size: what a
    full disk or a quota does to SQLite); checkpoints and grids, all smaller than the database, still fit."""

    def __init__(self, db: Path, step: int):
        self.db, self.step, self.freelist = db, step, None

    def on_step_end(self, trainer) -> None:
        if trainer.state.step == self.step:
            with sqlite3.connect(self.db) as con:  # no free pages: the next new row needs the file to grow
                self.freelist = con.execute("pragma freelist_count").fetchone()[0]
            size = self.db.stat().st_size
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_full_disk_costs_one_warning_and_nothing_of_the_run(runs, tiny_train, capfd):
    run_dir = runs / "full"
    db = runs / "mlflow" / "mlflow.db"
    old_limit, old_handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    fills = DiskFillsUp(db, step=4)
    lines: list[str] = []
    try:
        run = tiny_train(run_dir, "train.epochs=16", "log.trackers=[mlflow]", callbacks=[fills], lines=lines)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert fills.freelist == 0  # the limit really was reached by the tracker's writes
    [warning] = warning_lines(lines)
    assert warning.startswith("warning: the mlflow tracker failed to log a record at step "), warning
    failed_at = int(warning.split(" at step ")[1].split()[0])
    assert 4 <= failed_at < 32
    assert "training goes on" in warning and "the run folder keeps everything" in warning
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "disk I/O error" not in out + err  # MLflow's own logging kept quiet
    # the run is whole: every record, the grids, the checkpoints, the status
    assert run.step == 32 and [r["step"] for r in train_records(run_dir)] == list(range(1, 33))
    assert len(RunDir.of(run_dir).sample_grids()) == 16 and RunDir.of(run_dir).checkpoint_files()
    assert RunDir.of(run_dir).read_status()["state"] == "finished"
    # the store kept what was logged before the disk filled up
    client, run_id = client_of(run_dir)
    assert [s for s, _ in history(client, run_id, "loss_G")] == list(range(1, failed_at))


# ------------------------------------------------------------------------------------------ a real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`mlflow server` on a free local port with its stores in a tmp folder; started on first use (again after
    a test killed it)."""

    def __init__(self, folder: Path):
        self.folder, self.proc, self.uri = folder, None, ""

    def ensure(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            return self.uri
        port = free_port()
        self.uri = f"http://127.0.0.1:{port}"
        self.close_log()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner process: starts faster
        self.log = (self.folder / f"server-{port}.log").open("w")
        self.proc = subprocess.Popen(
            [str(MLFLOW_EXE), "server", "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
             "--artifacts-destination", str(self.folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 240  # a loaded 2-core machine: the database migrations take a while
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / f"server-{port}.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self.uri
            except OSError:
                time.sleep(0.25)
        raise AssertionError(f"mlflow server did not answer at {self.uri} within 240 s")

    def kill(self) -> None:
        """SIGKILL to the server and its workers (its own session), as a crashed or unplugged server."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def close_log(self) -> None:
        if getattr(self, "log", None) is not None:
            self.log.close()

    @property
    def store(self) -> str:
        return f"sqlite:///{self.folder / 'server.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("mlflow-server"))
    yield s
    s.kill()
    s.close_log()


@pytest.fixture
def own_environ():
    """The tracker sets MLflow's HTTP retry variables in this process (setdefault); put the environment back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_run_logged_to_an_mlflow_server_reads_back(server, tiny_train, runs, tmp_path, own_environ):
    uri = server.ensure()
    run_dir = runs / "served"
    run = tiny_train(run_dir, "train.epochs=2", "log.trackers=[tensorboard,mlflow]", f"log.mlflow_uri={uri}",
                     "log.experiment=served")
    client, run_id = client_of(run_dir)
    assert RunDir.of(run_dir).read_tracker_ids()["mlflow"]["tracking_uri"] == uri
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "served"
    assert client.get_experiment(got.info.experiment_id).name == "served"
    assert history(client, run_id, "loss_D") == [(r["step"], r["loss_D"]) for r in train_records(run_dir)]
    assert got.data.params["train.batch_size"] == "32"
    files = artifact_files(client, run_id)
    assert {"export/generator.safetensors", "export/generator.json"} <= set(files) and "eval.json" not in files
    export = Path(client.download_artifacts(run_id, "export", str(tmp_path)))
    assert torch.equal(genlab.load_generator(export).sample(4, seed=2), run.sample(4, seed=2))
    assert (run_dir / "tb").is_dir()  # the other tracker of the list too


class KillServerAt(genlab.Callback):
    def __init__(self, server: Server, step: int):
        self.server, self.step = server, step

    def on_step_end(self, trainer) -> None:
        if trainer.state.step == self.step:
            self.server.kill()


def test_a_server_killed_mid_training_costs_one_warning(server, tiny_train, runs, own_environ, capfd):
    uri = server.ensure()
    for k in HTTP_DEFAULTS:  # genlab's short retries, not MLflow's minutes of them
        os.environ.pop(k, None)
    os.environ["MLFLOW_TRACKING_URI"] = uri  # the server named the other way: MLflow's own variable
    run_dir = runs / "orphan"
    lines: list[str] = []
    run = tiny_train(run_dir, "train.epochs=4", "log.trackers=[mlflow]", callbacks=[KillServerAt(server, 3)],
                     lines=lines)
    assert RunDir.of(run_dir).read_tracker_ids()["mlflow"]["tracking_uri"] == uri
    assert server.proc.poll() is not None  # it really is gone
    assert {k: os.environ[k] for k in HTTP_DEFAULTS} == HTTP_DEFAULTS
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "Max retries" not in out + err
    [warning] = warning_lines(lines)
    # killed after step 3's update, before its record: that record is the first that cannot be sent
    assert warning.startswith("warning: the mlflow tracker failed to log a record at step 3 "), warning
    assert run.step == 8 and [r["step"] for r in train_records(run_dir)] == list(range(1, 9))
    assert [p.name for p in RunDir.of(run_dir).sample_grids()] == [f"epoch_000{e}.png" for e in (1, 2, 3, 4)]
    assert RunDir.of(run_dir).read_status()["state"] == "finished"
    # the server's own store holds what reached it before it died
    store = MlflowClient(tracking_uri=server.store)
    run_id = RunDir.of(run_dir).read_tracker_ids()["mlflow"]["run_id"]
    assert [s for s, _ in history(store, run_id, "loss_G")] == [1, 2]
    assert store.get_run(run_id).info.status == "RUNNING"  # nobody could tell it the run ended
