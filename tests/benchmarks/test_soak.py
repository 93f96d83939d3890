"""benchmarks/soak.py at its smallest: two SIGKILLs (during a step, during a checkpoint write) and resumes through
the real `genlab` executable end bit-identical to the uninterrupted run."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def test_two_kills_resume_to_the_same_checkpoint_and_metrics(tiny_fmnist, classifier_cache_28, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)  # the classifier behind the eval's FID, trained once per session
    work = tmp_path / "soak"
    r = subprocess.run([sys.executable, str(SOAK), "--kills", "2", "--epochs", "2", "--no-sweep", "--seed", "0",
                        "--data", str(tiny_fmnist), "--cache", str(cache), "--work", str(work)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    rows = re.findall(r"^\s+(\d+)  (.{24})  (.{48})  (\S.*)$", out, flags=re.M)
    assert [int(i) for i, *_ in rows] == [1, 2], out
    # seed 0 aims at a step, then at a checkpoint; what the killed process left behind says where it died
    assert rows[0][1].startswith("after step") and rows[0][2].startswith("training step"), out
    assert rows[1][1].startswith("checkpoint of step"), out
    assert re.match(r"checkpoint write \(step \d+, temp file left\)|after the checkpoint of step", rows[1][2]), out
    assert rows[0][3] == "(fresh start)" and re.fullmatch(r"step_\d{9}\.pt", rows[1][3]), out
    assert re.search(r"final checkpoint: \d+ tensors bit-identical; metrics.jsonl records and eval.json: equal", out)
    assert "train verdict: 2/2 identical" in out and out.rstrip().endswith("verdict: identical"), out
    # the comparison is real: both runs' folders are there, evaluated, and the killed one was resumed
    for run in ("ref", "killed"):
        assert (work / run / "eval.json").is_file() and (work / run / "checkpoints" / "step_000000016.pt").is_file()
