"""`genlab datasets list|prepare`."""
from __future__ import annotations

from typer.testing import CliRunner

from genlab.cli.datasets import app
from genlab.errors import DataError


def test_list_shows_every_dataset_and_local_copies(tmp_path, fx, monkeypatch):
    fx.make_idx(tmp_path / "data" / "mnist")
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in ("mnist", "fashion-mnist", "cifar10", "flowers102", "image-folder"):
        assert name in result.output
    assert str(tmp_path / "data" / "mnist") in result.output


def test_prepare_decodes_and_reports_and_fails_cleanly(tmp_path, fx, monkeypatch):
    fx.make_idx(tmp_path / "m")
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["prepare", "mnist", "--root", str(tmp_path / "m"), "--no-download"])
    assert result.exit_code != 0 and isinstance(result.exception, DataError)  # not MNIST's published files
    assert "data.verify=false" in str(result.exception)
    result = CliRunner().invoke(app, ["prepare", "mnist", "--root", str(tmp_path / "m"), "--no-download",
                                      "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "12 images" in result.output and str(tmp_path / "m") in result.output and "prepared" in result.output
    result = CliRunner().invoke(app, ["prepare", "cifar10", "--no-download"])
    assert result.exit_code != 0 and isinstance(result.exception, DataError)  # printed as one line by genlab.cli
    assert "cifar-10-python.tar.gz" in str(result.exception)
