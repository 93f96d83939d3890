"""Report 001's experiment as one command: a sweep whose recipe sets ``eval.at_end`` trains every cell x seed,
each run evaluates FID once when its training ends, and `genlab sweep` prints the per-cell table (best, mean ±
std over seeds), which the heatmap and `genlab report` show too. Run again, it trains and evaluates nothing; a
run that finished without an evaluation is evaluated (`genlab eval`), not retrained."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import genlab
from genlab.cli import app
from genlab.reporting.html import build_report
from genlab.reporting.sweep_table import load_table, pivot
from genlab.sweeps import load_sweep
from genlab.sweeps.runner import plan_actions

RUNS = ("latent_dim=4/seed=0", "latent_dim=4/seed=1", "latent_dim=8/seed=0", "latent_dim=8/seed=1")


def eval_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("kind") == "eval"]


@pytest.fixture(scope="module")
def evaluated_sweep(tiny_fmnist, classifier_cache_28, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep_at_end")
    cache = folder / "cache"
    shutil.copytree(classifier_cache_28, cache)  # the runs (subprocesses) find the classifier features here
    (folder / "tiny.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "data": {"name": "fashion-mnist", "root": str(tiny_fmnist), "verify": False,
                                 "resolution": 28, "limit": 64},
        "model": {"name": "mlp-gan", "latent_dim": 8, "hidden_dim": 8, "depth": 1},
        "train": {"epochs": 1, "batch_size": 32, "channels_last": "false"},
        "log": {"every_steps": 1, "tensorboard": False},
        "eval": {"at_end": True, "metrics": ["fid"], "features": "classifier", "num_samples": 64}}))
    (folder / "s.yaml").write_text("base: tiny.yaml\ngrid: {model.latent_dim: [4, 8]}\nseeds: 2\n")
    out = folder / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        res = CliRunner().invoke(app, ["sweep", str(folder / "s.yaml"), "--out", str(out), "--workers", "2"])
    return folder, out, cache, res


def test_every_run_is_evaluated_once_at_its_end_and_the_table_shows_fid_per_cell(evaluated_sweep):
    folder, out, _, res = evaluated_sweep
    assert res.exit_code == 0, res.output
    for rel in RUNS:
        run = out / rel
        status = json.loads((run / "status.json").read_text())
        records = eval_records(run)
        # one evaluation, at the last step, in metrics.jsonl and eval.json alike
        assert status["state"] == "finished" and len(records) == 1, (rel, records)
        assert records[0]["step"] == status["step"] == 2 and records[0]["fid"] > 0
        assert json.loads((run / "eval.json").read_text())["fid"] == pytest.approx(records[0]["fid"])
        assert "eval at epoch 1: FID" in (out / "logs" / (rel.replace("/", "__") + ".log")).read_text()
    # the printed table and results.md: per cell the best FID and its mean ± std over the two seeds
    assert "FID was not evaluated" not in res.output and "FID best" in res.output
    table = load_table(out)
    assert table.evaluated and table.primary == "fid" and [c["cell"] for c in table.cells] == [
        "latent_dim=4", "latent_dim=8"]
    for c in table.cells:
        fids = [eval_records(out / c["cell"] / f"seed={s}")[0]["fid"] for s in (0, 1)]
        assert c["fid"]["n"] == 2 and c["fid"]["best"] == pytest.approx(min(fids))
        assert c["fid"]["mean"] == pytest.approx(sum(fids) / 2) and c["fid"]["std"] > 0
    md = (out / "results.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 4 |"))
    best4 = table.cells[0]["fid"]
    assert f"{best4['best']:.4g}" in row and f"{best4['mean']:.4g} ± " in row, row
    # the heatmap's labels: the best, then mean ± std
    labels = pivot(table, "fid").labels[0]
    assert labels[0].startswith(f"{best4['best']:.4g}\n{best4['mean']:.4g} ± "), labels
    assert (out / "results_heatmap.png").is_file()
    # genlab report of the sweep shows the same numbers
    html = build_report([out], folder / "report.html", log=lambda *_: None).read_text()
    assert "FID best" in html and f"{best4['mean']:.4g} ± " in html and "FID was not evaluated" not in html


def test_rerun_of_the_finished_sweep_trains_and_evaluates_nothing(evaluated_sweep, monkeypatch):
    folder, out, cache, _ = evaluated_sweep
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    before = {rel: ((out / rel / "eval.json").stat().st_mtime_ns, (out / rel / "metrics.jsonl").read_text())
              for rel in RUNS}
    assert {a.state for a in plan_actions(load_sweep(folder / "s.yaml"), out)} == {"finished"}
    res = CliRunner().invoke(app, ["sweep", str(folder / "s.yaml"), "--out", str(out)])
    assert res.exit_code == 0 and "nothing to run: every run is finished" in res.output, res.output
    # a resume of a finished run trains nothing and evaluates nothing again
    lines: list[str] = []
    genlab.train(None, [], out / RUNS[0], resume=True, log=lines.append)
    assert not any("eval at" in line for line in lines), lines
    assert {rel: ((out / rel / "eval.json").stat().st_mtime_ns, (out / rel / "metrics.jsonl").read_text())
            for rel in RUNS} == before


def test_a_run_finished_without_an_evaluation_is_evaluated_not_retrained(evaluated_sweep, monkeypatch):
    """A run trained before the sweep asked for eval.at_end: the sweep evaluates its last checkpoint instead."""
    folder, out, cache, _ = evaluated_sweep
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    run = out / "latent_dim=8" / "seed=1"
    fid = eval_records(run)[0]["fid"]
    saved = {p: p.read_bytes() for p in (run / "eval.json", run / "metrics.jsonl")}
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    try:
        (run / "eval.json").unlink()
        lines = (run / "metrics.jsonl").read_text().splitlines()
        (run / "metrics.jsonl").write_text("".join(f"{x}\n" for x in lines if '"kind": "eval"' not in x))
        assert eval_records(run) == []
        actions = {a.run.name: a for a in plan_actions(load_sweep(folder / "s.yaml"), out)}
        assert {k: a.state for k, a in actions.items()} == {**dict.fromkeys(RUNS, "finished"),
                                                             "latent_dim=8/seed=1": "evaluate"}
        assert actions["latent_dim=8/seed=1"].args == (
            "eval", str(run), "--metrics", "fid", "--features", "classifier", "--num-samples", "64",
            "--split", "test", "--seed", "1")
        res = CliRunner().invoke(app, ["sweep", str(folder / "s.yaml"), "--out", str(out)])
        assert res.exit_code == 0 and "1 evaluate" in res.output, res.output
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ckpts  # nothing was trained
        again = json.loads((run / "eval.json").read_text())
        # the same checkpoint step, options and seed as the evaluation at the end of training
        assert again["fid"] == pytest.approx(fid, rel=1e-5) and again["protocol"]["step"] == 2
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
