"""Sampling steps of flow and diffusion runs: recorded in every evaluation's protocol (a 2-step and a 3-step FID
never share one), refused by one-step generators, and `genlab eval RUN --steps-sweep` writing FID against steps."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from genlab.analysis import artifacts
from genlab.analysis.interpolation import interpolation_rows, seed_latents
from genlab.analysis.steps import parse_steps
from genlab.cli import app
from genlab.errors import ConfigError
from genlab.evaluation import TrainingEval, describe_protocol, evaluate_loaded, protocol_id
from genlab.recipe import load_config
from genlab.reporting.page import Section
from genlab.reporting.run_sections import RunContext, _steps_section
from genlab.rundir import RunDir
from genlab.sampling import load_run
from genlab.training.loop import train

runner = CliRunner()


def test_the_steps_are_part_of_the_protocol_and_gans_refuse_them(flow_run, gan_run, classifier_cache_28, tmp_path,
                                                                 monkeypatch):
    shutil.copytree(classifier_cache_28, tmp_path / "cache")
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "cache"))
    run = load_run(flow_run)
    two = evaluate_loaded(run, metrics="fid", features="classifier", num_samples=32)
    three = evaluate_loaded(run.with_sampling(steps=3, solver="heun"), metrics="fid", features="classifier",
                            num_samples=32)
    assert two["protocol"]["sampling"] == {"process": "flow", "solver": "euler", "steps": 2, "nfe": 2,
                                           "guidance": 1.0}
    assert three["protocol"]["sampling"]["nfe"] == 6
    assert protocol_id(two["protocol"]) != protocol_id(three["protocol"])
    assert "sampled with heun, 3 steps (6 NFE)" in describe_protocol(protocol_id(three["protocol"]))
    gan = load_run(gan_run)
    gan_eval = evaluate_loaded(gan, metrics="fid", features="classifier", num_samples=32)
    assert "sampling" not in gan_eval["protocol"] and "sampling" not in protocol_id(gan_eval["protocol"])
    with pytest.raises(ConfigError, match="dcgan draws each image in one network call"):
        gan.with_sampling(steps=3)
    with pytest.raises(ConfigError, match="'x' is not a positive whole number"):
        parse_steps("1,x")
    assert parse_steps("10, 1,2,2") == [1, 2, 10]


def test_a_flow_run_evaluates_during_training_with_its_sampler(tiny_fmnist, classifier_cache_28, tmp_path,
                                                               monkeypatch):
    shutil.copytree(classifier_cache_28, tmp_path / "cache")
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    cfg = load_config(None, [
        f"data.root={tiny_fmnist}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28",
        "data.limit=64", "model.name=flow-unet", "model.hidden_dim=4", "model.depth=1", "model.channel_mult=[1,2]",
        "objective.steps=3", "objective.solver=heun", "train.batch_size=32", "train.epochs=1", "train.threads=1",
        "train.channels_last=false", "log.progress=false", "log.tensorboard=false", "log.num_samples=4",
        "eval.every=1", "eval.num_samples=32", "eval.features=classifier", "eval.metrics=[fid]"])
    train(cfg, run, log=lambda *_: None, callbacks=(TrainingEval(),))
    evals = [r for r in RunDir.of(run).read_records() if r.get("kind") == "eval"]
    assert len(evals) == 1 and evals[0]["fid"] > 0
    assert evals[0]["protocol"]["sampling"] == {"process": "flow", "solver": "heun", "steps": 3, "nfe": 6,
                                                "guidance": 1.0}
    assert (run / "checkpoints" / "best.pt").exists()


def test_interpolation_slerps_the_starting_noise(flow_run):
    run = load_run(flow_run)
    z = seed_latents(run, [0])
    assert z.shape == (1, 28 * 28)
    rows = interpolation_rows(run, rows=1, steps=3, seed=5)
    ends = run.latents(2, seed=5)
    # the path's ends are the two seeds' images (up to the slerp's float64 round trip and the batch's arithmetic)
    first, last = (run.generate(e, torch.zeros(1, dtype=torch.long))[0] for e in (ends[:1], ends[1:]))
    assert torch.allclose(rows[0], first, atol=1e-4) and torch.allclose(rows[2], last, atol=1e-4)
    assert not torch.allclose(rows[1], first, atol=1e-2) and not torch.allclose(rows[1], last, atol=1e-2)


def test_steps_sweep_cli_writes_the_curve_and_the_report_shows_it(flow_run, classifier_cache_28, tmp_path,
                                                                  monkeypatch):
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    run_dir = tmp_path / "run"
    shutil.copytree(flow_run, run_dir)
    res = runner.invoke(app, ["eval", str(run_dir), "--steps-sweep", "2,1", "--solver", "heun", "--num-samples",
                              "32", "--features", "classifier"], catch_exceptions=True)
    assert res.exit_code == 0, res.output
    numbers = json.loads((run_dir / "analysis" / artifacts.STEPS).read_text())
    assert [(p["steps"], p["nfe"]) for p in numbers["points"]] == [(1, 2), (2, 4)]
    assert numbers["solver"] == "heun" and numbers["process"] == "flow" and numbers["num_samples"] == 32
    assert all(p["fid"] > 0 and p["seconds_per_10k"] > 0 for p in numbers["points"])
    assert numbers["points"][0]["fid"] != numbers["points"][1]["fid"]
    assert "sampling" not in numbers["protocol"] and numbers["protocol"]["num_generated"] == 32
    flat = "".join(res.output.split())
    assert "steps┃nfe┃fid┃seconds_per_10k" in flat and all(f"{p['fid']:.4f}" in flat for p in numbers["points"])
    one = evaluate_loaded(load_run(run_dir).with_sampling(steps=1, solver="heun"), metrics="fid",
                          features="classifier", num_samples=32)
    assert one["fid"] == pytest.approx(numbers["points"][0]["fid"], rel=1e-9)  # the sweep's point is that eval
    s = Section(id="s", title="s")
    _steps_section(RunContext(path=run_dir), s)
    assert len(s.images) == 1 and [row[0] for row in s.tables[0].rows] == ["1", "2"], s.notes


def test_the_curve_takes_a_log_fid_axis_when_the_points_span_more_than_ten_times():
    from genlab.reporting.steps import plot_steps

    def points(*fids: float) -> dict:
        return {"points": [{"steps": s, "nfe": 2 * s, "fid": f, "seconds_per_10k": 30.0 * s}
                           for s, f in zip((1, 2, 5), fids)], "extractor": "classifier", "device": "cpu"}

    wide, narrow = plot_steps(points(370.8, 139.4, 36.4)), plot_steps(points(14.2, 8.0, 7.1))
    assert [ax.get_yscale() for ax in wide.axes] == ["log", "log"]  # 370 / 36 > 10: 1 step would flatten the rest
    assert [ax.get_yscale() for ax in narrow.axes] == ["linear", "linear"]
    assert all(ax.get_xscale() == "log" for ax in (*wide.axes, *narrow.axes))
