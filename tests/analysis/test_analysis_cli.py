"""`genlab interpolate | latent | class-grid | coverage | plot ...` write their files and fail with one line."""
from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from genlab.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def test_interpolate_cli(gan_run, tmp_path):
    out = tmp_path / "strip.png"
    res = invoke("interpolate", str(gan_run), "--seeds", "1,2,3", "--steps", "4", "-o", str(out))
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.width > 6 * im.height  # one row of 7 frames
    with Image.open(out.with_suffix(".gif")) as im:
        assert im.n_frames == 7 + 5
    res = invoke("interpolate", str(gan_run), "--rows", "2", "--steps", "3", "--no-gif", "--method", "lerp")
    assert res.exit_code == 0, res.output
    assert (gan_run / "analysis" / "interpolation.png").is_file()
    numbers = json.loads((gan_run / "analysis" / "interpolation.json").read_text())
    assert numbers["method"] == "lerp" and numbers["rows"] == 2 and numbers["gif"] is None
    assert numbers["checkpoint"].startswith("step_") and numbers["step"] > 0
    res = invoke("interpolate", str(gan_run), "--seeds", "1,x")
    assert res.exit_code != 0 and "comma-separated integers" in str(res.exception)


def test_latent_cli_for_a_vae(vae_run, tmp_path):
    res = invoke("latent", str(vae_run), "-o", str(tmp_path), "-n", "5", "--steps", "5")
    assert res.exit_code == 0, res.output
    for name in ("latent_plane", "latent_traversal", "latent_scatter"):
        assert (tmp_path / f"{name}.png").is_file() and (tmp_path / f"{name}.svg").is_file(), name


def test_latent_cli_for_a_gan(gan_run, tmp_path):
    res = invoke("latent", str(gan_run), "-o", str(tmp_path), "--dims", "0,1", "--steps", "3")
    assert res.exit_code == 0, res.output
    assert "no encoder" in res.output and (tmp_path / "latent_traversal.png").is_file()
    assert not (tmp_path / "latent_scatter.png").exists() and not (tmp_path / "latent_plane.png").exists()


def test_class_grid_cli(cond_run, gan_run, tmp_path):
    res = invoke("class-grid", str(cond_run), "-n", "4", "-o", str(tmp_path / "cg.png"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cg.png").is_file()
    res = invoke("class-grid", str(gan_run))
    assert res.exit_code != 0 and "not class-conditional" in str(res.exception)


def test_coverage_cli_skips_without_classifier(gan_run, monkeypatch, tmp_path):
    from genlab.analysis import coverage

    monkeypatch.setattr(coverage, "find_predictor", lambda run, train=False: (None, "no classifier extractor yet"))
    res = invoke("coverage", str(gan_run), "-o", str(tmp_path / "c.png"))
    assert res.exit_code == 0 and "coverage skipped" in res.output and "no classifier extractor yet" in res.output
    assert not (tmp_path / "c.png").exists()


def test_coverage_cli_with_a_predictor(gan_run, monkeypatch, tmp_path, band_predictor):
    from genlab.analysis import coverage

    monkeypatch.setattr(coverage, "find_predictor", lambda run, train=False: (band_predictor, "band test predictor"))
    res = invoke("coverage", str(gan_run), "-n", "100", "--real", "64", "-o", str(tmp_path / "c.png"))
    assert res.exit_code == 0, res.output
    assert "classes covered" in res.output
    assert (tmp_path / "c.png").is_file() and (tmp_path / "c.json").is_file()
    numbers = json.loads((tmp_path / "c.json").read_text())
    assert sum(numbers["generated"]) == 100 and sum(numbers["real"]) == 64 and len(numbers["class_names"]) == 10
    assert numbers["checkpoint"].startswith("step_") and numbers["step"] > 0 and numbers["seed"] == 0
    assert 0 <= numbers["entropy_normalized"] <= 1 and numbers["kl_to_real"] >= 0
    assert numbers["source"] == "band test predictor" and "classes_covered" in numbers


def test_plot_cli(gan_run, tmp_path):
    res = invoke("plot", "curves", str(gan_run), "-o", str(tmp_path / "curves.png"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "curves.svg").is_file()
    res = invoke("plot", "progress", str(gan_run), "-o", str(tmp_path / "progress.png"), "--max-panels", "2")
    assert res.exit_code == 0, res.output
    res = invoke("plot", "metric", str(gan_run), "-o", str(tmp_path / "m.png"))
    assert res.exit_code != 0 and "eval.every" in str(res.exception)


@pytest.mark.parametrize("cmd", ["interpolate", "latent", "class-grid", "coverage"])
def test_not_a_run_folder(cmd, tmp_path):
    res = invoke(cmd, str(tmp_path))
    assert res.exit_code != 0 and "not a genlab run folder" in str(res.exception)
