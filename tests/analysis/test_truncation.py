"""Truncation: the truncated-normal latents (against scipy's truncnorm), the seeded order it keeps, the interp form,
and `genlab eval RUN --truncation-sweep` writing its table, analysis/truncation.png/.json and the report section."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from typer.testing import CliRunner

from genlab.analysis import artifacts
from genlab.analysis.truncation import parse_psis
from genlab.cli import app
from genlab.data.base import ImageData
from genlab.errors import ConfigError
from genlab.evaluation import evaluate_loaded
from genlab.metrics import evaluate
from genlab.metrics.features.base import FeatureExtractor
from genlab.recipe import load_config
from genlab.reporting.page import Section
from genlab.reporting.run_sections import RunContext, _truncation_section
from genlab.sampling import Truncation, load_run
from genlab.training.loop import Trainer, fit, prepare_run

runner = CliRunner()


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_resampled_latents_follow_the_truncated_normal(psi):
    z = torch.randn(40_000, 8, generator=torch.Generator().manual_seed(0))
    t = Truncation(psi).apply(z, torch.Generator().manual_seed(1))
    assert t.abs().max() <= psi
    inside = z.abs() <= psi
    assert torch.equal(t[inside], z[inside])  # only the coordinates outside psi are redrawn
    ref = stats.truncnorm(-psi, psi)
    assert t.var().item() == pytest.approx(ref.var(), rel=0.02)
    ks = stats.kstest(t[~inside].numpy(), ref.cdf)  # the redrawn ones too are truncated normals
    assert ks.pvalue > 1e-3, ks


def test_interp_shrinks_towards_the_prior_mean_and_bad_psis_are_refused():
    z = torch.randn(100, 4)
    assert torch.equal(Truncation(0.7, "interp").apply(z, torch.Generator()), z * 0.7)
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="positive number"):
            Truncation(bad)
    with pytest.raises(ConfigError, match="resample, interp"):
        Truncation(0.5, "clip")
    assert parse_psis("1.5, 0.5,0.7,0.5") == [0.5, 0.7, 1.5]
    with pytest.raises(ConfigError, match="'x' is not a number"):
        parse_psis("0.5,x")


def test_truncation_keeps_the_labels_and_a_wide_psi_changes_nothing(gan_run):
    run = load_run(gan_run)
    plain, wide = run.sample(16, seed=3), run.sample(16, seed=3, truncation=50.0)
    assert torch.equal(plain, wide)
    narrow = run.latents(16, seed=3, truncation=0.5)
    assert narrow.abs().max() <= 0.5 and not torch.equal(narrow, run.latents(16, seed=3))


def test_truncation_sweep_cli_writes_the_curve_and_the_report_shows_it(gan_run, classifier_cache_28, tmp_path,
                                                                       monkeypatch):
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    run_dir = tmp_path / "run"
    shutil.copytree(gan_run, run_dir)
    res = runner.invoke(app, ["eval", str(run_dir), "--truncation-sweep", "1.0,0.5", "--num-samples", "64",
                              "--features", "classifier"], catch_exceptions=True)
    assert res.exit_code == 0, res.output
    numbers = json.loads((run_dir / "analysis" / artifacts.TRUNCATION).read_text())
    flat = "".join(res.output.split())  # the console wraps at 80 columns here
    assert "psi┃fid┃precision┃recall" in flat and "analysis/truncation.png" in flat
    assert all(f"{p['fid']:.4f}" in flat for p in numbers["points"])  # the printed table holds the numbers
    assert [p["psi"] for p in numbers["points"]] == [0.5, 1.0]
    assert numbers["extractor"] == "classifier" and numbers["num_samples"] == 64 and numbers["mode"] == "resample"
    assert numbers["checkpoint"].startswith("step_") and numbers["protocol"]["num_generated"] == 64
    assert all(p["fid"] > 0 and 0 <= p["precision"] <= 1 and 0 <= p["recall"] <= 1 for p in numbers["points"])
    assert (run_dir / "analysis" / "truncation.png").stat().st_size > 5000
    # the psi = 1 point is `genlab eval --truncation 1.0` (the same seed, samples and reference)
    one = evaluate_loaded(load_run(run_dir), metrics="fid,pr", features="classifier", num_samples=64, truncation=1.0)
    assert one["fid"] == pytest.approx(numbers["points"][1]["fid"], rel=1e-9)
    assert one["protocol"]["truncation"] == {"psi": 1.0, "mode": "resample"}
    s = Section(id="t", title="t")
    _truncation_section(RunContext(path=run_dir), s)
    assert len(s.images) == 1 and [row[0] for row in s.tables[0].rows] == ["0.5", "1"], s.notes
    empty = Section(id="t", title="t")
    _truncation_section(RunContext(path=gan_run), empty)
    assert not empty.images and "--truncation-sweep" in empty.notes[0]


# ----------------------------------------------------------------------------------------------- on a trained model
SIDE = 28


def sliding_bars(n: int, seed: int) -> ImageData:
    """A horizontal bar at a continuous height (rows 6..21) and width: a one-parameter family whose position a
    trained generator maps from its latents, so truncation's effect on diversity is known."""
    rng = np.random.default_rng(seed)
    p, w = rng.uniform(6, SIDE - 7, size=n), rng.uniform(1.0, 3.0, size=n)
    y = np.arange(SIDE)[None, :, None]
    x = 255 * np.exp(-((y - p[:, None, None]) ** 2) / (2 * w[:, None, None] ** 2)) * np.ones((1, 1, SIDE))
    return ImageData(images=torch.from_numpy(x[:, None].round().astype(np.uint8)), name="sliding-bars", split="test")


class BarHeight(nn.Module):
    """Features that read the toy's one factor: the bar's height (brightness-weighted mean row)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = ((x + 1) / 2).mean(dim=(1, 3))
        weighted = (rows * torch.arange(rows.shape[1], dtype=rows.dtype)).sum(1, keepdim=True)
        height = weighted / (rows.sum(1, keepdim=True) + 1e-6)
        return height / 4, torch.cat([height, -height], 1)


def test_shrinking_psi_trades_recall_away_on_a_trained_vae(tmp_path):
    cfg = load_config(None, ["model.name=vae", f"data.resolution={SIDE}", "data.channels=1", "model.hidden_dim=32",
                             "model.latent_dim=2", "model.depth=2", "train.g_opt.lr=2e-3", "train.batch_size=32",
                             "train.max_steps=200", "train.epochs=100", "log.progress=false", "log.tensorboard=false",
                             "train.device=cpu",
                             "log.num_samples=16", "log.sample_every=0", "log.checkpoint_every=200", "train.threads=1",
                             "train.channels_last=false"])
    fit(Trainer(cfg, prepare_run(cfg, tmp_path / "run"), sliding_bars(512, 0), log=lambda *_: None))
    run = load_run(tmp_path / "run")
    ext = FeatureExtractor(BarHeight(), name="bar-height", hash="bar-height-v1", feature_dim=1, num_classes=2,
                           resolution=SIDE, channels=1)
    reference = sliding_bars(300, 9)
    curve = {psi: evaluate(run.sampler(seed=1, truncation=psi), 300, reference, ext, ["pr"], cache=False)["pr"]
             for psi in (0.25, 0.5, 1.0, 3.0)}
    recall = [curve[psi]["recall"] for psi in (0.25, 0.5, 1.0, 3.0)]
    coverage = [curve[psi]["coverage"] for psi in (0.25, 0.5, 1.0, 3.0)]
    assert recall == sorted(recall) and recall[-1] - recall[0] > 0.3, curve  # fewer heights as psi shrinks
    assert coverage == sorted(coverage), curve
    assert min(c["precision"] for c in curve.values()) >= 0.85, curve  # while the heights drawn stay real ones
