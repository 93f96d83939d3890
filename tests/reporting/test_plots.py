"""Plots from records: smoothing, loss curves (GAN and VAE), metrics over epochs, heatmaps, PNG + SVG output."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from genlab.errors import GenlabError
from genlab.reporting import metric_names, plots, records


def test_ema_is_debiased():
    assert np.allclose(plots.ema([3.0, 3.0, 3.0]), 3.0)
    out = plots.ema([0.0, 10.0], smoothing=0.5)
    assert out[0] == 0.0 and out[1] == pytest.approx(10 * 0.5 / 0.75)
    assert np.array_equal(plots.ema([1.0, 2.0], 0.0), [1.0, 2.0])
    with pytest.raises(GenlabError):
        plots.ema([1.0], 1.0)


def test_direction_of_metrics():
    assert not metric_names.higher_is_better("fid") and not metric_names.higher_is_better("kid")
    assert metric_names.higher_is_better("is") and metric_names.higher_is_better("precision")
    assert metric_names.higher_is_better("recall")
    assert metric_names.best_of("fid", [40.0, 30.0]) == 30.0 and metric_names.best_of("is", [4.0, 5.0]) == 5.0


def test_records_split_train_and_eval(gan_run, tmp_path, with_eval):
    run = with_eval(gan_run, tmp_path / "ev", [50.0, 40.0, 45.0])
    rec = records.read_records(run)
    assert len(rec.train) == 12 and len(rec.eval) == 3
    assert records.eval_metrics(run) == ["fid", "kid", "precision"]
    x, y = records.metric_series(run, "fid")
    assert x.tolist() == [1, 2, 3] and y.tolist() == [50, 40, 45]
    xs, label = plots.fractional_epochs(rec.train)
    assert label == "epoch" and xs[-1] == pytest.approx(3.0) and xs[0] == pytest.approx(0.25)


def _labels(ax):
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_gan_loss_curves(gan_run):
    fig = plots.plot_losses(records.read_records(gan_run).train, title="t")
    a, b = fig.axes
    assert _labels(a) == ["loss D", "loss G"]
    assert _labels(b) == ["D(x)", "D(G(z))", "0.5 (equilibrium)"]
    eq = [line for line in b.get_lines() if line.get_label().startswith("0.5")][0]
    assert set(eq.get_ydata()) == {0.5}
    assert len(a.get_lines()) == 4  # raw + smoothed for each loss


def test_vae_loss_curves():
    train = [{"step": s, "epoch": 1 + (s - 1) // 5, "loss_total": 100.0 - s, "loss_recon": 90.0 - s,
              "loss_kl": 10.0 + 0.1 * s} for s in range(1, 11)]
    assert plots.is_vae_records(train)
    a, b = plots.plot_losses(train).axes
    assert _labels(a) == ["loss_total", "loss_recon"] and _labels(b) == ["loss_kl"]
    assert b.get_title() == "KL divergence"
    with pytest.raises(GenlabError, match="no training records"):
        plots.plot_losses([])


def test_metrics_over_epochs_for_several_runs(gan_run, tmp_path, with_eval):
    a = with_eval(gan_run, tmp_path / "dcgan", [80.0, 60.0, 55.0])
    b = with_eval(gan_run, tmp_path / "wgan-gp", [70.0, 50.0, 52.0])
    fig = plots.plot_metrics([("DCGAN", a), ("WGAN-GP", b), ("never", gan_run)], ["fid", "precision"])
    fid_ax, prec_ax = fig.axes[:2]
    assert [t.get_text() for t in fid_ax.get_legend().get_texts()] == ["DCGAN", "WGAN-GP"]
    assert "lower is better" in fid_ax.get_title() and "higher is better" in prec_ax.get_title()
    best = [c.get_offsets()[0].tolist() for c in fid_ax.collections]
    assert best == [[3.0, 55.0], [2.0, 50.0]]  # each run's minimum FID is circled
    with pytest.raises(GenlabError, match="eval.every"):
        plots.plot_metrics([("never", gan_run)])


def test_save_png_and_svg(gan_run, tmp_path):
    paths = plots.save_figure(plots.plot_losses(records.read_records(gan_run).train), tmp_path / "c.pdf")
    assert [p.name for p in paths] == ["c.png", "c.svg"]
    with Image.open(paths[0]) as im:
        assert im.format == "PNG" and im.width > 500
    assert ET.parse(paths[1]).getroot().tag.endswith("svg")


def test_heatmap_annotations():
    fig = plots.plot_heatmap(np.array([[83.7, 43.4], [79.2, np.nan]]), [16, 100], [16, 100], "latent_dim",
                             "hidden_dim", "fid")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["43.4", "79.2", "83.7", "n/a"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "100"] and ax.get_xlabel() == "hidden_dim"
