"""Sweep and comparison tables: mean ± std over seeds, the bootstrap interval, and the ≈ mark of differences
inside the noise (pure table functions on hand-made rows; the real eval.json reading through run_evaluation)."""
from __future__ import annotations

import json
from pathlib import Path

from genlab.reporting.page import Section
from genlab.reporting.records import run_evaluation
from genlab.reporting.run_sections import RunContext, _metrics_section
from genlab.reporting.sweep_table import NOISE_RULE, RunRow, mean_std, run_cell, summarize
from genlab.sweeps.results import to_csv, to_markdown


def rows(spec: dict[str, list], metric: str = "fid") -> list[RunRow]:
    out = []
    for cell, runs in spec.items():
        for seed, run in enumerate(runs):
            value, ci = run if isinstance(run, tuple) else (run, None)
            out.append(RunRow(cell=cell, values={"model.latent_dim": cell}, seed=seed, path=Path(f"/x/{cell}/{seed}"),
                              state="finished", metrics={metric: value}, intervals={metric: ci} if ci else {}))
    return out


def by_cell(t) -> dict:
    return {c["cell"]: c for c in t.cells}


def test_cells_within_two_std_of_the_best_are_marked():
    # best mean 51 (std 1.41: band 48.17..53.83); 53 is inside, 54.5 and 81 are not
    t = summarize(["model.latent_dim"], rows({"a": [50, 52], "b": [52, 54], "c": [54, 55], "d": [80, 82]}))
    c = by_cell(t)
    assert c["a"]["fid"]["top"] and not c["a"]["fid"]["noise"]
    assert c["b"]["fid"]["noise"] and not c["c"]["fid"]["noise"] and not c["d"]["fid"]["noise"]
    assert mean_std(c["b"], "fid").endswith(" ≈") and "≈" not in mean_std(c["c"], "fid")
    md = to_markdown(t)
    assert NOISE_RULE in md and md.count("≈") == 1 + NOISE_RULE.count("≈")
    csv = to_csv(t).splitlines()
    assert csv[0].endswith(",fid_within_noise") and [r.rsplit(",", 1)[1] for r in csv[1:]] == ["0", "1", "0", "0"]


def test_one_seed_uses_the_bootstrap_interval_and_the_direction_of_the_metric():
    t = summarize(["model.latent_dim"], rows({"a": [(50.0, (47.0, 53.0))], "b": [(52.0, (49.0, 56.0))],
                                              "c": [(60.0, (57.0, 63.0))]}))
    c = by_cell(t)
    assert c["b"]["fid"]["noise"] and not c["c"]["fid"]["noise"]
    assert mean_std(c["a"], "fid") == "50 [47, 53]" and mean_std(c["b"], "fid") == "52 [49, 56] ≈"
    assert to_csv(t).splitlines()[0].endswith("fid_n,fid_ci_low,fid_ci_high,fid_within_noise")
    # precision: higher is better, so the top cell is the largest mean
    t = summarize(["model.latent_dim"], rows({"a": [0.5, 0.52], "b": [0.7, 0.72], "c": [0.69, 0.7]}, "pr/precision"))
    c = by_cell(t)
    assert c["b"]["pr/precision"]["top"] and c["c"]["pr/precision"]["noise"] and not c["a"]["pr/precision"]["noise"]
    # without seeds or intervals there is no noise estimate: nothing is marked
    t = summarize(["model.latent_dim"], rows({"a": [50.0], "b": [50.5]}))
    assert not any(c["fid"]["noise"] for c in t.cells)


def test_comparison_cells_and_intervals_read_from_eval_json(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    ci = {"fid_low": 47.0, "fid_high": 53.0, "fid_std": 1.5, "kid_low": 0.01, "kid_high": 0.02, "kid_std": 0.003,
          "resamples": 50, "level": 0.95, "kid_rows": 2000}
    (run / "eval.json").write_text(json.dumps({"fid": 50.0, "kid": {"mean": 0.015, "std": 0.001}, "ci95": ci,
                                               "protocol": {}}))
    ev = run_evaluation(run)
    assert ev.intervals == {"fid": (47.0, 53.0), "kid/mean": (0.01, 0.02)}
    assert set(ev.metrics) == {"fid", "kid/mean"}  # interval ends and bootstrap bookkeeping are not columns
    values = [ev.metrics, {"fid": 52.0}, {"fid": 58.0}]
    cis = [ev.intervals, {}, {}]
    assert run_cell("fid", 0, values, cis, [0, 0, 0]) == "50 [47, 53]"
    assert run_cell("fid", 1, values, cis, [0, 0, 0]) == "52 ≈"
    assert run_cell("fid", 2, values, cis, [0, 0, 0]) == "58"
    assert run_cell("fid", 1, values, cis, [0, 1, 0]) == "52"  # another protocol: never compared
    section = Section(id="metrics", title="Metrics")  # the run report's table shows the interval next to FID
    _metrics_section(RunContext(run), section)
    table = section.tables[0]
    assert table.header == ["metric", "value", "interval (ci95)", "better"]
    assert ["FID", "50", "[47, 53]", "lower"] in table.rows and ["KID", "0.015", "[0.01, 0.02]", "lower"] in table.rows
