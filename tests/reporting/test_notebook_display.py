"""How runs, results and comparisons show themselves in a notebook (the IPython display protocol), on a tiny run."""
from __future__ import annotations

import json
import shutil

import genlab
from genlab.reporting.notebook import Result

PROTOCOL = {"extractor": "classifier", "extractor_hash": "abc123", "num_generated": 64, "num_reference": 64,
            "reference": {"dataset": "fashion-mnist", "split": "test", "resolution": 28, "channels": 1}}


def test_result_shows_metrics_with_intervals_and_protocol():
    r = Result({"fid": 50.0, "ci95": {"fid_low": 49.0, "fid_high": 51.5}, "kid": {"mean": 0.01, "std": 0.001},
                "protocol": PROTOCOL})
    assert isinstance(r, dict) and json.loads(json.dumps(r))["fid"] == 50.0  # still the plain result
    md = r._repr_markdown_()
    assert "| FID | 50 | 49 - 51.5 | lower |" in md and "| KID | 0.01 |  | lower |" in md
    assert "kid/std" not in md and "ci95" not in md  # bookkeeping numbers and interval ends are not rows
    assert "classifier abc123, 64 generated vs 64 reference, fashion-mnist test 28px/1ch" in md
    assert "<td>FID</td><td>50</td><td>49 - 51.5</td>" in r._repr_html_()


def test_run_and_comparison_display(gan_run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(gan_run, a)
    shutil.copytree(gan_run, b)
    (a / "eval.json").write_text(json.dumps({"fid": 40.0, "protocol": PROTOCOL}))
    (b / "eval.json").write_text(json.dumps({"fid": 45.0, "protocol": {**PROTOCOL, "num_generated": 128}}))
    run = genlab.load_run(a, device="cpu")
    html = run._repr_html_()
    assert "<b>genlab run</b> a" in html and "data:image/png;base64," in html and "<td>FID</td><td>40</td>" in html
    assert "| model | dcgan |" in run._repr_markdown_()
    assert run.grid(16, seed=1).size == (4 * 30 + 2, 4 * 30 + 2) and run.curves().width > 300
    c = genlab.compare(run, b)
    assert c.keys == []  # the same config: no differing keys
    header, rows = c.table()
    assert header == ["run", "FID", "protocol"] and [r[:2] for r in rows] == [["a", "40"], ["b", "45"]]
    assert "different protocols" in c._repr_html_()  # 64 vs 128 generated images: not comparable
    (b / "eval.json").write_text(json.dumps({"fid": 45.0, "protocol": PROTOCOL}))
    assert "different protocols" not in genlab.compare(a, b)._repr_html_()  # negative control
