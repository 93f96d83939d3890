"""The rows of a search's table (genlab.reporting.search_table) from real Optuna trials."""
from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from genlab.reporting.search_table import rows


def test_a_waiting_retry_does_not_show_its_dead_trial_s_note():
    dist = {"train.g_opt.lr": FloatDistribution(1e-4, 1e-2, log=True)}
    note = "interrupted (Ctrl-C) and checkpointed; continued by its retry"
    study = optuna.create_study()
    study.add_trial(create_trial(state=TrialState.FAIL, params={"train.g_opt.lr": 1e-3}, distributions=dist,
                                 user_attrs={"error": note, "folder": "trials/0000"}))
    study.enqueue_trial({"train.g_opt.lr": 1e-3}, user_attrs={"error": note, "folder": "trials/0000"})
    failed, waiting = rows(study.get_trials())
    assert (failed.state, failed.note) == ("failed", note)
    assert (waiting.state, waiting.note) == ("waiting", "")
