"""Which numbers of an evaluation result are scores, and which way is better (reporting/metric_names.py)."""
from __future__ import annotations

import pytest

from genlab.metrics import flatten_results
from genlab.reporting.metric_names import best_of, higher_is_better, is_score


def test_the_settings_of_a_measurement_are_not_scores():
    result = {"fid": 12.0, "kid": {"mean": 0.01, "std": 0.002, "subsets": 100, "subset_size": 1000},
              "pr": {"precision": 0.7, "recall": 0.5, "k": 3}, "protocol": {"num_generated": 10}}
    scores = sorted(k for k in flatten_results(result) if is_score(k))
    assert scores == ["fid", "kid/mean", "pr/precision", "pr/recall"]


@pytest.mark.parametrize("metric, higher", [("fid", False), ("kid/mean", False), ("is/mean", True),
                                            ("pr/precision", True), ("coverage/kl_to_real", False),
                                            ("coverage/classes_covered", True)])
def test_direction(metric, higher):
    assert higher_is_better(metric) is higher
    assert best_of(metric, [1.0, 3.0, 2.0]) == (3.0 if higher else 1.0)
