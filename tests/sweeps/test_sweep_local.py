"""A real sweep with the local executor: runs as processes N at a time, skip finished, resume unfinished,
Ctrl-C checkpoints, failures reported; then the results table."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from genlab.cli import app
from genlab.sweeps import load_sweep, make_executor, run_sweep
from genlab.sweeps.runner import plan_actions


def write_recipe(folder: Path, root: Path, **train) -> Path:
    p = folder / "tiny.yaml"
    p.write_text(yaml.safe_dump({
        "name": "tiny", "data": {"name": "fashion-mnist", "root": str(root), "verify": False, "resolution": 28,
                 "limit": 64},
        "model": {"name": "dcgan", "latent_dim": 8, "hidden_dim": 8},
        "train": {"epochs": 1, "batch_size": 32, "channels_last": "false", "device": "cpu", **train},
        "log": {"every_steps": 1, "tensorboard": False}}))
    return p


@pytest.fixture(scope="module")
def finished_sweep(tiny_fmnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    write_recipe(folder, tiny_fmnist)
    (folder / "s.yaml").write_text("base: tiny.yaml\noverrides: {train.epochs: 2}\n"
                                   "grid: {model.latent_dim: [4, 8]}\nseeds: 2\n")
    out = folder / "out"
    res = CliRunner().invoke(app, ["sweep", str(folder / "s.yaml"), "--out", str(out), "--workers", "2"])
    return folder, out, res


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def test_every_cell_and_seed_is_a_finished_run(finished_sweep):
    folder, out, res = finished_sweep
    assert res.exit_code == 0, res.output
    assert "2 cell(s) x 2 seed(s) = 4 runs; 4 new" in res.output and "2 process(es) at a time" in res.output
    runs = sorted(p.relative_to(out).as_posix() for p in out.glob("*/seed=*"))
    assert runs == ["latent_dim=4/seed=0", "latent_dim=4/seed=1", "latent_dim=8/seed=0", "latent_dim=8/seed=1"]
    for r in runs:
        s = status(out / r)
        assert s["state"] == "finished" and s["epoch"] == 2
    from omegaconf import OmegaConf

    from genlab.recipe import from_dict

    cfg = from_dict(OmegaConf.to_container(OmegaConf.load(out / "latent_dim=8" / "seed=1" / "config.yaml")))
    assert cfg.model.latent_dim == 8 and cfg.train.seed == 1 and cfg.train.epochs == 2
    log = (out / "logs" / "latent_dim=4__seed=0.log").read_text()
    assert "genlab train" in log and "finished 4 steps" in log
    # no run has metrics: the table holds final losses and says FID was not evaluated
    md = (out / "results.md").read_text()
    assert "FID was not evaluated" in md and "eval.every" in md and "loss D best" in md
    assert (out / "results.csv").read_text().splitlines()[0].startswith("latent_dim,seeds,finished,loss_D_best")
    assert (out / "results_heatmap.png").is_file()
    assert json.loads((out / "sweep.json").read_text())["keys"] == ["model.latent_dim"]


def test_rerun_skips_finished_resumes_unfinished_and_restarts_missing(finished_sweep):
    folder, out, _ = finished_sweep
    interrupted, missing = out / "latent_dim=4" / "seed=1", out / "latent_dim=8" / "seed=0"
    st = status(interrupted)
    (interrupted / "status.json").write_text(json.dumps({**st, "state": "interrupted"}))
    import shutil

    shutil.rmtree(missing)
    untouched = {p: p.stat().st_mtime_ns for p in out.glob("logs/*.log")
                 if "latent_dim=4__seed=1" not in p.name and "latent_dim=8__seed=0" not in p.name}
    actions = {a.run.name: a for a in plan_actions(load_sweep(folder / "s.yaml"), out)}
    assert {k: a.state for k, a in actions.items()} == {
        "latent_dim=4/seed=0": "finished", "latent_dim=4/seed=1": "resume", "latent_dim=8/seed=0": "new",
        "latent_dim=8/seed=1": "finished"}
    assert actions["latent_dim=4/seed=1"].args == ("train", "--resume", str(interrupted))
    outcome = run_sweep(load_sweep(folder / "s.yaml"), out, make_executor("local", workers=2), log=lambda *_: None)
    assert sorted(r.name for r in outcome.results) == ["latent_dim=4/seed=1", "latent_dim=8/seed=0"]
    assert all(r.ok for r in outcome.results)
    assert status(interrupted)["state"] == "finished" and status(missing)["state"] == "finished"
    assert "resuming from" in (out / "logs" / "latent_dim=4__seed=1.log").read_text()
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # finished runs were not touched


def test_more_epochs_resumes_finished_runs(finished_sweep):
    folder, out, _ = finished_sweep
    s = load_sweep(folder / "s.yaml")
    s.overrides["train.epochs"] = 3
    actions = plan_actions(s, out)
    assert {a.state for a in actions} == {"resume"}
    assert all(a.args[-1] == "train.epochs=3" for a in actions)


def test_results_with_eval_numbers(finished_sweep):
    folder, out, _ = finished_sweep
    fids = {"latent_dim=4/seed=0": 80.0, "latent_dim=4/seed=1": 70.0, "latent_dim=8/seed=0": 50.0,
            "latent_dim=8/seed=1": 60.0}
    for rel, fid in fids.items():
        (out / rel / "eval.json").write_text(json.dumps({"fid": fid, "protocol": {}}))
    try:
        res = CliRunner().invoke(app, ["sweep", "--table-only", "--out", str(out)])
        assert res.exit_code == 0, res.output
        rows = (out / "results.csv").read_text().splitlines()
        assert rows[0] == "latent_dim,seeds,finished,fid_best,fid_mean,fid_std,fid_n,fid_within_noise"
        # 75 lies outside the best cell's noise band 55 ± 2 x 7.07: not marked
        assert rows[1] == "4,2,2,70,75,7.07107,2,0" and rows[2] == "8,2,2,50,55,7.07107,2,0"
        assert "FID was not evaluated" not in (out / "results.md").read_text()
    finally:
        for rel in fids:
            (out / rel / "eval.json").unlink()


def test_runs_of_different_protocols_are_never_summarised_together(finished_sweep):
    """A seed evaluated with 1024 samples (the others with 128) is its own row, tagged, and the table says why."""
    folder, out, _ = finished_sweep

    def result(fid: float, n: int) -> dict:
        return {"fid": fid, "protocol": {"extractor": "classifier", "extractor_hash": "c" * 40, "num_generated": n,
                                         "num_reference": 64, "reference": {"dataset": "fashion-mnist",
                                                                            "split": "test", "resolution": 28}}}

    fids = {"latent_dim=4/seed=0": (80.0, 128), "latent_dim=4/seed=1": (70.0, 128), "latent_dim=8/seed=0": (50.0, 128),
            "latent_dim=8/seed=1": (20.0, 1024)}
    for rel, (fid, n) in fids.items():
        (out / rel / "eval.json").write_text(json.dumps(result(fid, n)))
    try:
        res = CliRunner().invoke(app, ["sweep", "--table-only", "--out", str(out)])
        assert res.exit_code == 0, res.output
        rows = (out / "results.csv").read_text().splitlines()
        assert rows[0] == "latent_dim,protocol,seeds,finished,fid_best,fid_mean,fid_std,fid_n,fid_within_noise"
        assert [r.split(",")[0] for r in rows[1:]] == ["4", "8", "8"]
        assert rows[2].endswith(",1,1,50,50,,1,0") and rows[3].endswith(",1,1,20,20,,1,0")  # 20 is not 8's "best"
        assert "P2 = classifier cccccccccccc, 1024 generated vs 64 reference" in rows[3]
        md = (out / "results.md").read_text()
        assert ("> these runs were evaluated under 2 different protocols: P1 = classifier cccccccccccc, 128 "
                "generated vs 64 reference, fashion-mnist test 28px/?ch; P2 = ") in md
        assert "| 8 | P2 | 1 (1) | 20 |" in md and "| 8 | P1 | 1 (1) | 50 |" in md
        assert "different protocols" in res.output
        runs = (out / "runs.csv").read_text().splitlines()
        assert runs[0].startswith("cell,seed,state,source,path,protocol") and ",P2," in runs[4]
    finally:
        for rel in fids:
            (out / rel / "eval.json").unlink()


def test_dry_run_prints_the_plan(finished_sweep):
    folder, out, _ = finished_sweep
    res = CliRunner().invoke(app, ["sweep", str(folder / "s.yaml"), "--out", str(out / "elsewhere"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.count("genlab train") == 4 and not (out / "elsewhere").exists()


def test_failed_run_is_reported_with_its_log(tiny_fmnist, tmp_path):
    write_recipe(tmp_path, tiny_fmnist)
    (tmp_path / "s.yaml").write_text(f"base: tiny.yaml\noverrides: {{data.root: {tmp_path / 'nothing'}, "
                                     "data.download: false}\n")
    res = CliRunner().invoke(app, ["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out")])
    assert res.exit_code != 0
    msg = str(res.exception)
    assert "1 run(s) failed: base/seed=0" in msg and "base__seed=0.log" in msg
    assert "error:" in (tmp_path / "out" / "logs" / "base__seed=0.log").read_text()


def test_ctrl_c_checkpoints_and_the_next_invocation_resumes(tiny_fmnist, tmp_path):
    # 256 images / batch 4 = 64 steps per epoch, 3 epochs, a wider net: long enough to interrupt mid-run
    write_recipe(tmp_path, tiny_fmnist, batch_size=4)
    (tmp_path / "s.yaml").write_text("base: tiny.yaml\n"
                                     "overrides: {data.limit: 256, train.epochs: 3, model.hidden_dim: 32}\n")
    out = tmp_path / "out"
    run = out / "base" / "seed=0"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "genlab", "sweep", str(tmp_path / "s.yaml"), "--out", str(out), "--threads", "1"]
    # started as `genlab sweep ... &` from a script is: SIGINT arrives ignored, and Ctrl-C must still work
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").is_file():
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends to the sweep
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130 and "sweep interrupted" in output, output
    assert status(run)["state"] == "interrupted" and status(run)["step"] < 192
    assert list((run / "checkpoints").glob("step_*.pt"))
    lines = []
    outcome = run_sweep(load_sweep(tmp_path / "s.yaml"), out, make_executor("local", workers=1, threads=1),
                        log=lines.append)
    assert "1 resume" in lines[0] and all(r.ok for r in outcome.results)
    assert status(run)["state"] == "finished" and status(run)["step"] == 192
    assert "resuming from" in (out / "logs" / "base__seed=0.log").read_text()
