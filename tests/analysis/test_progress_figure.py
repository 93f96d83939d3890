"""The progress figure: saved fixed-noise grids in one labelled figure."""
from __future__ import annotations

import shutil

import pytest

from genlab.analysis.epoch_grids import sample_epochs, select_epochs
from genlab.errors import GenlabError
from genlab.reporting.epoch_grids_figure import progress_figure


def test_select_epochs_like_the_reports():
    assert select_epochs(range(1, 301), 10) == list(range(30, 301, 30))
    assert select_epochs([1, 2, 3], 10) == [1, 2, 3]
    assert select_epochs(range(1, 24), 10)[-1] == 23
    with pytest.raises(GenlabError):
        select_epochs([1], 0)


def test_progress_figure_labels_each_epoch(gan_run, tmp_path):
    assert list(sample_epochs(gan_run)) == [1, 2, 3]
    fig = progress_figure(gan_run, max_panels=2, columns=5)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["epoch 1", "epoch 3"]
    assert fig.axes[0].images[0].get_array().shape == (8 * 30 + 2, 8 * 30 + 2, 3)  # the saved 8x8 grid
    fig = progress_figure(gan_run, epochs=[2])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["epoch 2"]
    with pytest.raises(GenlabError, match="no sample grid for epochs"):
        progress_figure(gan_run, epochs=[9])
    empty = tmp_path / "empty"
    shutil.copytree(gan_run, empty, ignore=shutil.ignore_patterns("epoch_*"))
    with pytest.raises(GenlabError, match="no samples"):
        progress_figure(empty)
