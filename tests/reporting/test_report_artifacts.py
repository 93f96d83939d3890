"""The report shows what analysis commands left in RUN/analysis/ and computes only what is missing: a run with
analysis/coverage.json gets its coverage histogram without a classifier or a single generated image."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from genlab.analysis import artifacts
from genlab.analysis.coverage import compare
from genlab.cli import app
from genlab.reporting import run_sections
from genlab.reporting.html import build_report
from genlab.rundir import RunDir


def section(text: str, sid: str) -> str:
    return text.split(f'id="{sid}"')[1].split("</section>")[0]


@pytest.fixture
def run(gan_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(gan_run, dst)
    shutil.rmtree(dst / "analysis", ignore_errors=True)
    return dst


@pytest.fixture
def coverage_calls(monkeypatch) -> list[str]:
    """Records every attempt of the report to find a classifier or measure coverage itself."""
    calls: list[str] = []

    def find_predictor(run, train=False):
        calls.append(f"find_predictor(train={train})")
        return None, "no classifier in this test"

    def mode_coverage(*a, **kw):
        calls.append("mode_coverage")
        raise AssertionError("the report sampled the model for coverage")

    monkeypatch.setattr(run_sections.coverage_analysis, "find_predictor", find_predictor)
    monkeypatch.setattr(run_sections.coverage_analysis, "mode_coverage", mode_coverage)
    return calls


def write_coverage(run: Path, checkpoint: str, step: int) -> Path:
    gen = np.repeat(np.arange(10), [30, 20, 10, 10, 10, 10, 5, 5, 0, 0])
    real = np.repeat(np.arange(10), 10)
    cov = compare(gen, real, 10, [f"c{k}" for k in range(10)], source="band test predictor")
    rd = RunDir.of(run)
    return artifacts.write_numbers(rd, rd.artifact("coverage.png"), cov.to_dict(),
                                   artifacts.Source(checkpoint=checkpoint, step=step, seed=0))


def test_report_reads_coverage_json_instead_of_measuring(run, tmp_path, coverage_calls):
    last = RunDir.of(run).checkpoint_path("last")
    write_coverage(run, last.name, 12)
    text = build_report([run], tmp_path / "r.html", log=lambda *_: None).read_text()
    assert coverage_calls == []  # no classifier looked up or trained, no images generated for coverage
    cov = section(text, "run0-coverage")
    assert cov.count("<img") == 1 and "from analysis/coverage.json" in cov and last.name in cov
    assert "100 generated vs 100 real" in cov and "kl to real" in cov and "computed now" not in cov
    assert "could not be drawn" not in text

    # made from another checkpoint: the numbers are not this checkpoint's, so the report measures (and says why)
    write_coverage(run, "step_000000001.pt", 1)
    text = build_report([run], tmp_path / "r2.html", log=lambda *_: None).read_text()
    assert coverage_calls == ["find_predictor(train=False)"]
    assert "no classifier in this test" in section(text, "run0-coverage")


def test_report_embeds_saved_figures_and_says_what_it_computed(run, tmp_path, monkeypatch, coverage_calls):
    cli = CliRunner()
    for args in (["interpolate", str(run)], ["latent", str(run)], ["plot", "progress", str(run)]):
        res = cli.invoke(app, args)
        assert res.exit_code == 0, res.output
    saved = RunDir.of(run).read_artifact_json(artifacts.INTERPOLATION)
    assert saved["checkpoint"] == RunDir.of(run).checkpoint_path("last").name and saved["method"] == "slerp"

    def must_not_run(*a, **kw):
        raise AssertionError("the report recomputed a saved figure")

    for name in ("interpolation_rows", "traversal", "latent_plane", "progress_figure"):
        monkeypatch.setattr(run_sections, name, must_not_run)
    text = build_report([run], tmp_path / "r.html", log=lambda *_: None).read_text()
    assert "could not be drawn" not in text
    interp = section(text, "run0-interpolation")
    assert "image/gif" in interp and "image/png" in interp and "from analysis/interpolation.json" in interp
    latent = section(text, "run0-latent")
    assert latent.count("<img") == 1 and "from analysis/latent.json" in latent and "no encoder" in latent
    assert "from analysis/progress.json" in section(text, "run0-progress")
    # coverage was never analysed: the report tried (cached classifiers only) and said how to get it
    assert coverage_calls == ["find_predictor(train=False)"]
    assert "`genlab coverage" in section(text, "run0-coverage")


def test_report_says_which_parts_it_computed(run, tmp_path):
    text = build_report([run], tmp_path / "r.html", log=lambda *_: None).read_text()
    for sid, command in (("progress", "genlab plot progress"), ("interpolation", "genlab interpolate"),
                         ("latent", "genlab latent")):
        part = section(text, f"run0-{sid}")
        assert "computed now for this report" in part and command in part, sid
