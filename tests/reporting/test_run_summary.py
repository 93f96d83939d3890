"""What the report says about one run must be true of it: the status line names the budget that ended a
finished run (not "finished at epoch 1/2" for a run its step budget ended), and the loss curves' caption and
0.5 line appear only for losses whose D outputs are probabilities (bce; not hinge, Wasserstein, relativistic)."""
from __future__ import annotations

import shutil

from omegaconf import OmegaConf

from genlab.reporting.page import Section
from genlab.reporting.plots import plot_losses
from genlab.reporting.records import read_records
from genlab.reporting.run_sections import RunContext, _losses_section, _summary_section, status_line


def test_report_names_the_budget_that_ended_the_run():
    config = {"train": {"epochs": 2, "max_steps": 1250, "minutes": 0.0}}
    # status.json written by this version records it
    assert status_line({"state": "finished", "step": 1250, "epoch": 1, "epochs": 2,
                        "ended_by": "train.max_steps=1250"}, config) == (
        "finished at step 1250 (1 of 2 epochs done): train.max_steps=1250 ran out first")
    # an older status.json without ended_by: told from the config and the step
    old = {"state": "finished", "step": 1250, "epoch": 1, "epochs": 2}
    assert status_line(old, config).endswith("train.max_steps=1250 ran out first")
    assert status_line({**old, "step": 938, "epoch": 2}, {"train": {"epochs": 2}}).endswith(
        "train.epochs=2 ran out first")
    assert status_line({**old, "state": "interrupted"}, config) == "interrupted at epoch 1/2, step 1250"


def test_a_tiny_run_reports_the_budget_that_ended_it(gan_run):
    # the session's tiny GAN: train.epochs=3, no max_steps, trained by this version (status.json has ended_by)
    s = Section("summary", "Summary")
    _summary_section(RunContext(gan_run), s)
    status = dict(s.tables[0].rows)["status"]
    assert status.startswith("finished at step ") and status.endswith(": train.epochs=3 ran out first"), status


def losses_caption(run) -> str:
    s = Section("losses", "Loss curves")
    _losses_section(RunContext(run), s)
    return s.images[0].caption


def test_the_half_line_is_shown_only_for_probabilities(gan_run, tmp_path):
    assert OmegaConf.load(gan_run / "config.yaml").train.loss == "bce"
    assert "meet at 0.5" in losses_caption(gan_run)
    hinge = tmp_path / "hinge"
    shutil.copytree(gan_run, hinge)
    cfg = OmegaConf.load(hinge / "config.yaml")
    cfg.train.loss = "hinge"  # its records as a hinge run's: D's raw scores
    (hinge / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    caption = losses_caption(hinge)
    assert "meet at 0.5" not in caption and "raw scores (train.loss hinge)" in caption, caption
    train = read_records(gan_run).train
    assert all(0 <= r["D(x)"] <= 1 for r in train)  # values a 0.5 line would be drawn for

    def half_lines(fig) -> int:
        return sum(line.get_label() == "0.5 (equilibrium)" for ax in fig.axes for line in ax.get_lines())

    assert half_lines(plot_losses(train)) == 1 and half_lines(plot_losses(train, d_probabilities=False)) == 0
