"""Numbers of different evaluation protocols are never put side by side as comparable: `genlab plot metric`, the
report's comparison of runs and sweep tables group them by protocol and say so."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from genlab.evaluation import describe_protocol, protocol_id
from genlab.reporting import plots
from genlab.reporting.html import comparison_block
from genlab.reporting.records import run_evaluation

EXE = Path(sys.executable).with_name("genlab")


def protocol(n_gen: int, ext_hash: str = "a" * 40) -> dict:
    """A protocol as metrics.evaluate writes it (extractor, hash, counts, reference as refstats describes it)."""
    return {"extractor": "classifier", "extractor_hash": ext_hash, "num_generated": n_gen, "num_reference": 64,
            "reference": {"dataset": "fashion-mnist", "split": "test", "resolution": 28, "channels": 1,
                          "root": "/somewhere", "limit": None, "cached": n_gen > 100},
            "seed": 0, "seconds": {"metrics": 0.1 * n_gen}}


def evaluated(src: Path, dst: Path, fids: list[float], n_gen: int) -> Path:
    """A copy of a run with one evaluation record per epoch and an eval.json, all under one protocol."""
    shutil.copytree(src, dst)
    pid = protocol_id(protocol(n_gen))
    with (dst / "metrics.jsonl").open("a") as f:
        for i, fid in enumerate(fids, start=1):
            f.write(json.dumps({"kind": "eval", "step": 4 * i, "epoch": i, "fid": fid, "protocol": pid}) + "\n")
    (dst / "eval.json").write_text(json.dumps({"fid": fids[-1], "protocol": protocol(n_gen)}))
    return dst


def test_protocol_id_keeps_what_makes_numbers_comparable():
    a, b = protocol_id(protocol(128)), protocol_id(protocol(128))
    assert a == b and a["reference"] == {"dataset": "fashion-mnist", "split": "test", "resolution": 28, "channels": 1}
    assert protocol_id(protocol(256)) != a and protocol_id(protocol(128, "b" * 40)) != a
    assert describe_protocol(a) == ("classifier aaaaaaaaaaaa, 128 generated vs 64 reference, "
                                    "fashion-mnist test 28px/1ch")
    assert protocol_id({}) is None and describe_protocol(None) == "protocol not recorded"


def test_plot_metric_splits_lines_by_protocol_and_says_so(gan_run, tmp_path):
    a = evaluated(gan_run, tmp_path / "a", [80.0, 60.0, 55.0], 128)
    b = evaluated(gan_run, tmp_path / "b", [30.0, 20.0, 25.0], 1024)
    same = evaluated(gan_run, tmp_path / "same", [70.0, 65.0, 50.0], 128)
    said: list[str] = []
    fig = plots.plot_metrics([("A", a), ("B", b), ("C", same)], ["fid"], warn=said.append)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A [P1]", "B [P2]", "C [P1]"]
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "--", "-"]
    assert len(said) == 1 and said[0].startswith("these runs were evaluated under 2 different protocols: P1 = "
                                                 "classifier aaaaaaaaaaaa, 128 generated vs 64 reference")
    assert "P2 = classifier aaaaaaaaaaaa, 1024 generated" in said[0]
    quiet: list[str] = []
    fig = plots.plot_metrics([("A", a), ("C", same)], ["fid"], warn=quiet.append)
    assert quiet == [] and [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["A", "C"]
    # the command prints the warning as one line and still writes the figure
    out = tmp_path / "m.png"
    r = subprocess.run([str(EXE), "plot", "metric", str(a), str(b), "--metric", "fid", "-o", str(out), "--no-svg"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stdout.splitlines() if "different protocols" in line]
    assert warning == [said[0]] and out.is_file()


def test_the_comparison_of_runs_tags_protocols_and_warns(gan_run, tmp_path):
    a = evaluated(gan_run, tmp_path / "a", [80.0, 55.0], 128)
    b = evaluated(gan_run, tmp_path / "b", [30.0, 25.0], 1024)
    c = evaluated(gan_run, tmp_path / "c", [70.0, 50.0], 128)
    assert run_evaluation(b).protocol == protocol_id(protocol(1024))
    table = comparison_block([a, b, c], ["a", "b", "c"]).sections[0]
    t = table.tables[0]
    assert t.header[:3] == ["run", "protocol", "FID"]
    assert [row[:3] for row in t.rows] == [["a", "P1", "55"], ["c", "P1", "50"], ["b", "P2", "25"]]
    assert "P2 = classifier aaaaaaaaaaaa, 1024 generated vs 64 reference" in t.caption
    assert any(n.startswith("these runs were evaluated under 2 different protocols") for n in table.notes)
    one = comparison_block([a, c], ["a", "c"]).sections[0]
    assert one.tables[0].header[:2] == ["run", "FID"] and not one.notes
    assert one.tables[0].caption == "protocol: classifier aaaaaaaaaaaa, 128 generated vs 64 reference, " \
                                    "fashion-mnist test 28px/1ch"
