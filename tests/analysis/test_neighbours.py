"""`genlab neighbours`: exact nearest training images by pixels and by features, the artifact and the report."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from genlab.analysis.neighbours import find_neighbours
from genlab.cli import app
from genlab.data import load_dataset
from genlab.data.base import ImageData, to_float
from genlab.errors import GenlabError
from genlab.metrics.features.base import FeatureExtractor
from genlab.reporting.page import Section
from genlab.reporting.run_sections import RunContext, _neighbours_section
from genlab.sampling import load_run

runner = CliRunner()


class RowMeans(nn.Module):
    """Features: the mean of each image row (a shift-blind 1-D profile), logits: nothing useful."""

    def forward(self, x):
        f = x.mean(dim=(1, 3))
        return f, f[:, :2]


def brute(q: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    q, b = q.reshape(len(q), -1).double().numpy(), b.reshape(len(b), -1).double().numpy()
    return np.sqrt(((q[:, None] - b[None]) ** 2).sum(-1))


def test_neighbours_by_pixels_and_features_are_the_exact_nearest():
    g = torch.Generator().manual_seed(0)
    train = ImageData(images=torch.randint(0, 256, (60, 1, 12, 12), generator=g, dtype=torch.uint8), split="train")
    copies = to_float(train.images[[7, 21]])
    shifted = to_float(torch.roll(train.images[[33]], 1, dims=-1))  # same rows, columns moved by one
    generated = torch.cat([copies, shifted, to_float(torch.randint(0, 256, (2, 1, 12, 12), generator=g,
                                                                  dtype=torch.uint8))])
    ext = FeatureExtractor(RowMeans(), name="rowmeans", hash="0" * 12, feature_dim=12, num_classes=2)
    nb = find_neighbours(generated, train, k=3, extractor=ext)
    pix, feat = nb.spaces[1], nb.spaces[0]
    full = brute(generated, to_float(train.images))
    assert np.array_equal(pix.indices, np.argsort(full, 1, kind="stable")[:, :3])
    # searched on the uint8 scale of the training images: equal up to the float32 rounding of to_float
    np.testing.assert_allclose(pix.distances, np.sort(full, 1)[:, :3], rtol=1e-7, atol=1e-6)
    assert list(pix.indices[:2, 0]) == [7, 21] and np.all(pix.distances[:2, 0] < 1e-6)
    assert pix.indices[2, 0] != 33 and feat.indices[2, 0] == 33  # the shift fools pixels, not the row profile
    images, labels, dists = nb.grid()
    assert images.shape == (5 * 2 * 4, 1, 12, 12) and labels[:2] == ["#0 features", "#0 pixels"]
    assert torch.equal(images[5], to_float(train.images[7])) and len(dists[0]) == 3  # row 2: #0 by pixels
    with pytest.raises(GenlabError, match="between 1 and the 60 training images"):
        find_neighbours(generated, train, k=61, spaces=("pixels",))


def test_neighbours_cli_writes_figure_numbers_and_the_report_shows_them(gan_run, classifier_cache_28, tmp_path,
                                                                        monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(gan_run, run_dir)  # the session's run folder stays as other tests expect it
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    s = Section("n", "n")
    _neighbours_section(RunContext(path=run_dir), s)  # nothing saved yet: pixel space, computed now
    assert len(s.images) == 1 and "computed now" in s.notes[0] and "genlab neighbours" in s.notes[0]

    res = runner.invoke(app, ["neighbours", str(run_dir), "--num", "3", "--k", "2", "--features", "classifier"])
    assert res.exit_code == 0, res.output
    numbers = json.loads((run_dir / "analysis" / "neighbours.json").read_text())
    assert (run_dir / "analysis" / "neighbours.png").is_file() and numbers["num_train"] == 128
    run = load_run(run_dir)
    train = load_dataset(run.cfg.data, split="train")
    full = brute(run.sample(3, seed=0), to_float(train.images))
    pix = numbers["spaces"]["pixels"]
    assert pix["indices"] == np.argsort(full, 1, kind="stable")[:, :2].tolist()
    np.testing.assert_allclose(pix["distances"], np.sort(full, 1)[:, :2], rtol=1e-6)
    assert np.array(numbers["spaces"]["features"]["indices"]).shape == (3, 2)
    assert numbers["extractor"].startswith("classifier ") and "median distance" in res.output

    s = Section("n", "n")
    _neighbours_section(RunContext(path=run_dir), s)
    assert len(s.images) == 1 and "analysis/neighbours.json" in s.images[0].caption and not s.notes
    assert [r[0] for r in s.tables[0].rows] == ["features", "pixels"]
    res = runner.invoke(app, ["neighbours", str(run_dir), "--space", "colour"])
    assert res.exit_code != 0 and "features, pixels or both" in str(res.exception)
