"""`genlab interpolate | latent | class-grid | coverage | plot ...` write their files and fail with one line."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genlab.analysis import coverage
from genlab.cli import app
from genlab.data import load_dataset
from genlab.sampling import load_run

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def picture(path, min_levels: int = 10) -> np.ndarray:
    """A written PNG, decoded: an image of some size with more than ``min_levels`` grey levels in it (a figure;
    the toy generators' own images are near-uniform grey on a white padding: 3)."""
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 50 and im.height >= 50, (path, im.size)
        a = np.asarray(im.convert("L"), dtype=np.int16)
    assert len(np.unique(a)) > min_levels, f"{path} is (almost) blank: levels {np.unique(a)[:20]}"
    return a


def test_interpolate_cli(gan_run, tmp_path):
    out = tmp_path / "strip.png"
    res = invoke("interpolate", str(gan_run), "--seeds", "1,2,3", "--steps", "4", "-o", str(out))
    assert res.exit_code == 0, res.output
    strip = picture(out, min_levels=3)
    assert strip.shape[1] > 6 * strip.shape[0]  # one row of 7 frames (3 seeds: 2 segments of 4 steps)
    frame = strip.shape[1] // 7
    first, last = strip[:, :frame], strip[:, -frame:]
    assert np.abs(first - last).mean() > 0  # the ends are different images (seeds 1 and 3)
    with Image.open(out.with_suffix(".gif")) as im:
        assert im.n_frames == 7 + 5
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("L"), dtype=np.int16))
    assert frames[0].shape[0] >= 28 and np.abs(frames[0] - frames[6]).mean() > 0  # the animation moves
    res = invoke("interpolate", str(gan_run), "--rows", "2", "--steps", "3", "--no-gif", "--method", "lerp")
    assert res.exit_code == 0, res.output
    assert (gan_run / "analysis" / "interpolation.png").is_file()
    numbers = json.loads((gan_run / "analysis" / "interpolation.json").read_text())
    assert numbers["method"] == "lerp" and numbers["rows"] == 2 and numbers["gif"] is None
    last = sorted((gan_run / "checkpoints").glob("step_*.pt"))[-1]
    assert numbers["checkpoint"] == last.name and numbers["step"] == int(last.stem.split("_")[1]) > 0
    res = invoke("interpolate", str(gan_run), "--seeds", "1,x")
    assert res.exit_code != 0 and "comma-separated integers" in str(res.exception)


def test_latent_cli_for_a_vae(vae_run, tmp_path):
    res = invoke("latent", str(vae_run), "-o", str(tmp_path), "-n", "5", "--steps", "5")
    assert res.exit_code == 0, res.output
    for name in ("latent_plane", "latent_traversal", "latent_scatter"):
        picture(tmp_path / f"{name}.png")
        assert "<svg" in (tmp_path / f"{name}.svg").read_text()[:2000], name


def test_latent_cli_for_a_gan(gan_run, tmp_path):
    res = invoke("latent", str(gan_run), "-o", str(tmp_path), "--dims", "0,1", "--steps", "3")
    assert res.exit_code == 0, res.output
    assert "no encoder" in res.output and (tmp_path / "latent_traversal.png").is_file()
    assert not (tmp_path / "latent_scatter.png").exists() and not (tmp_path / "latent_plane.png").exists()


def test_class_grid_cli(cond_run, gan_run, tmp_path):
    res = invoke("class-grid", str(cond_run), "-n", "4", "-o", str(tmp_path / "cg.png"))
    assert res.exit_code == 0, res.output
    grid = picture(tmp_path / "cg.png", min_levels=3)
    # 10 class rows x 4 columns of 28-px tiles, labelled with the class names: a tall figure (374 x 704 measured)
    assert grid.shape[0] > 1.5 * grid.shape[1], grid.shape
    res = invoke("class-grid", str(gan_run))
    assert res.exit_code != 0 and "not class-conditional" in str(res.exception)


def test_coverage_cli_skips_without_classifier(gan_run, monkeypatch, tmp_path):
    monkeypatch.setattr(coverage, "find_predictor", lambda run, train=False: (None, "no classifier extractor yet"))
    res = invoke("coverage", str(gan_run), "-o", str(tmp_path / "c.png"))
    assert res.exit_code == 0 and "coverage skipped" in res.output and "no classifier extractor yet" in res.output
    assert not (tmp_path / "c.png").exists()


def test_coverage_cli_with_a_predictor(gan_run, monkeypatch, tmp_path, band_predictor):
    monkeypatch.setattr(coverage, "find_predictor", lambda run, train=False: (band_predictor, "band test predictor"))
    res = invoke("coverage", str(gan_run), "-n", "100", "--real", "64", "-o", str(tmp_path / "c.png"))
    assert res.exit_code == 0, res.output
    assert "classes covered" in res.output
    picture(tmp_path / "c.png")
    numbers = json.loads((tmp_path / "c.json").read_text())
    assert sum(numbers["generated"]) == 100 and sum(numbers["real"]) == 64 and len(numbers["class_names"]) == 10
    # the numbers are the histograms: real = the (perfect) predictor on the first 64 test images = their labels
    run = load_run(gan_run)
    labels = load_dataset(run.cfg.data, "test").labels[:64].numpy()
    assert numbers["real"] == np.bincount(labels, minlength=10).tolist()
    again = coverage.mode_coverage(run, n=100, seed=0, predictor=band_predictor, real_limit=64)
    assert numbers["generated"] == again.generated.tolist()  # the same seeded samples
    g, r = np.asarray(numbers["generated"]) / 100, np.asarray(numbers["real"]) / 64
    assert numbers["total_variation"] == pytest.approx(0.5 * np.abs(g - r).sum(), abs=5e-5)
    entropy = -sum(p * math.log(p) for p in g if p > 0)
    assert numbers["entropy_normalized"] == pytest.approx(entropy / math.log(10), rel=1e-9)
    assert numbers["checkpoint"].startswith("step_") and numbers["step"] > 0 and numbers["seed"] == 0
    assert 0 <= numbers["entropy_normalized"] <= 1 and numbers["kl_to_real"] >= 0
    assert numbers["source"] == "band test predictor" and "classes_covered" in numbers


def test_plot_cli(gan_run, tmp_path):
    res = invoke("plot", "curves", str(gan_run), "-o", str(tmp_path / "curves.png"))
    assert res.exit_code == 0, res.output
    picture(tmp_path / "curves.png")
    assert "<svg" in (tmp_path / "curves.svg").read_text()[:2000]
    res = invoke("plot", "progress", str(gan_run), "-o", str(tmp_path / "progress.png"), "--max-panels", "2")
    assert res.exit_code == 0, res.output
    picture(tmp_path / "progress.png")
    res = invoke("plot", "metric", str(gan_run), "-o", str(tmp_path / "m.png"))
    assert res.exit_code != 0 and "eval.every" in str(res.exception)


@pytest.mark.parametrize("cmd", ["interpolate", "latent", "class-grid", "coverage"])
def test_not_a_run_folder(cmd, tmp_path):
    res = invoke(cmd, str(tmp_path))
    assert res.exit_code != 0 and "not a genlab run folder" in str(res.exception)
