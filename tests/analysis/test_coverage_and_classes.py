"""Class-conditional grids and mode coverage (histograms from any predictor)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab import metrics
from genlab.analysis import conditional, coverage
from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.metrics import DatasetRef, get_extractor
from genlab.metrics.features import classifier as clf
from genlab.sampling import load_run


def test_class_grid_rows_are_classes_with_shared_noise(cond_run):
    run = load_run(cond_run)
    g = conditional.class_grid(run, per_class=3, seed=5)
    assert g.images.shape == (10 * 3, 1, 28, 28)
    assert g.classes == list(range(10)) and g.class_names == run.class_names[:10]
    z = run.latents(3, 5).cpu()
    expect_row7 = run.generate(z, torch.full((3,), 7))
    assert torch.allclose(g.images[21:24], expect_row7, atol=1e-5)
    some = conditional.class_grid(run, per_class=2, classes=[3, 1], shared_noise=False)
    assert some.classes == [3, 1] and some.images.shape[0] == 4
    with pytest.raises(GenlabError, match="out of range"):
        conditional.class_grid(run, classes=[10])


def test_class_grid_refuses_unconditional_models(gan_run):
    with pytest.raises(GenlabError, match="not class-conditional"):
        conditional.class_grid(load_run(gan_run))


def test_histograms_and_summary():
    cov = coverage.compare([0, 0, 1, 1, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2, 3, 3], 4, ["a", "b", "c", "d"])
    assert cov.generated.tolist() == [2, 4, 2, 0] and cov.real.tolist() == [2, 2, 2, 2]
    assert cov.covered == [0, 1, 2] and cov.missing == [3]
    assert cov.total_variation == pytest.approx(0.25)  # 0.5 * (0 + .25 + 0 + .25)
    s = cov.summary()
    assert s["classes_covered"] == 3 and s["missing"] == ["d"] and s["n_generated"] == 8
    with pytest.raises(GenlabError, match="0..3"):
        coverage.class_histogram([4], 4)


def test_mode_coverage_with_a_custom_predictor(gan_run, band_predictor):
    run = load_run(gan_run)
    cov = coverage.mode_coverage(run, n=200, seed=0, predictor=band_predictor, real_limit=64)
    labels = load_dataset(run.cfg.data, "test").labels[:64].numpy()
    assert np.array_equal(cov.real, np.bincount(labels, minlength=10))  # the predictor is right on real images
    assert cov.generated.sum() == 200 and len(cov.class_names) == 10


def test_plot_class_coverage():
    from genlab.reporting.plots import plot_class_coverage

    cov = coverage.compare([0, 1, 1], [0, 1, 2], 3, ["x", "y", "z"])
    fig = plot_class_coverage(cov)
    ax = fig.axes[0]
    assert len(ax.patches) == 6 and [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert any(t.get_text() == "missing" for t in ax.texts)


def test_mode_coverage_without_predictor_says_why(gan_run, monkeypatch):
    monkeypatch.setattr(coverage, "find_predictor", lambda run, train=False: (None, "no classifier for this dataset"))
    with pytest.raises(GenlabError, match="no classifier for this dataset"):
        coverage.mode_coverage(load_run(gan_run), n=10)


def test_summary_agrees_with_the_metrics_package():
    for gen, real in (([2, 4, 2, 0], [2, 2, 2, 2]), ([50, 1, 0, 30], [10, 10, 0, 10])):
        cov = coverage.compare(np.repeat(np.arange(4), gen), np.repeat(np.arange(4), real), 4)
        ref = metrics.class_coverage(gen, real)
        assert (len(cov.covered), int((cov.real > 0).sum())) == (ref.classes_covered, ref.classes_in_real)


def test_coverage_with_the_metrics_classifier(gan_run):
    run = load_run(gan_run)
    predictor, why = coverage.find_predictor(run, train=False)
    assert predictor is None and "no cached classifier" in why  # nothing is trained behind the caller's back
    d = run.cfg.data
    # short; cached like the real one
    clf.train_classifier(d.name, d.resolution, d.channels, root=d.root, verify=d.verify, epochs=2)
    predictor, why = coverage.find_predictor(run, train=False)
    assert predictor is not None and why.startswith("classifier extractor")
    cov = coverage.mode_coverage(run, n=100, real_limit=64)  # finds the cached classifier itself
    test = load_dataset(d, "test")
    labels = test.labels[:64].numpy()
    assert cov.real.sum() == 64 and cov.generated.sum() == 100 and cov.source == why
    # the real histogram is exactly the cached classifier's predictions on the first 64 test images ...
    ext = get_extractor("classifier", dataset=DatasetRef(d.name, "test", d.resolution, d.channels, root=d.root))
    predicted = ext.features(test.images[:64])[1].argmax(1).numpy()
    assert cov.real.tolist() == np.bincount(predicted, minlength=10).tolist()
    # ... so it is as far from the labels' histogram as that classifier's mistakes allow, no further: each
    # mistake moves one image between two bins. Its accuracy after 2 epochs depends on the seed and the width
    # (width 24, seeds 0-4: 0.91, 0.50, 0.19, 1.00, 0.61; the shift augmentation blurs 2-px bar bands); seed 0
    # at the grey default width 16: 18 of 64 wrong. Chance would get ~58 wrong.
    mistakes = int((predicted != labels).sum())
    assert mistakes <= 32  # far from chance
    assert np.abs(cov.real - np.bincount(labels, minlength=10)).sum() <= 2 * mistakes
