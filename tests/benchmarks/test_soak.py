"""benchmarks/soak.py at its smallest: two SIGKILLs (during a step, during a checkpoint write) and resumes through
the real `genlab` executable end bit-identical to the uninterrupted run."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

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

    # negative control: the soak's own comparison sees one changed weight, one changed training record and a
    # changed eval.json (each in a copy of the resumed run), so its "identical" above is a real comparison
    soak = load_soak()
    assert soak.compare_run(work / "ref", work / "killed") == {"checkpoint": [], "metrics": []}
    weight = tamper(work / "killed", tmp_path / "weight")
    ckpt_path = weight / "checkpoints" / "step_000000016.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    w = next(iter(ckpt["nets"]["G"].values()))
    w.view(-1)[0] = torch.nextafter(w.view(-1)[0], torch.tensor(float("inf")))  # one float, one ulp
    torch.save(ckpt, ckpt_path)
    problems = soak.compare_run(work / "ref", weight)
    assert problems["metrics"] == [] and len(problems["checkpoint"]) == 1, problems
    assert problems["checkpoint"][0].startswith("1 of ") and "nets.G." in problems["checkpoint"][0], problems
    record = tamper(work / "killed", tmp_path / "record")
    lines = (record / "metrics.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    key = next(k for k, v in first.items() if k.startswith("loss") and isinstance(v, float))
    lines[0] = json.dumps({**first, key: first[key] + 1e-6})
    (record / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert soak.compare_run(work / "ref", record) == {"checkpoint": [], "metrics": ["training records differ (16 vs "
                                                                                    "16 in the reference)"]}
    evaluated = tamper(work / "killed", tmp_path / "eval")
    result = json.loads((evaluated / "eval.json").read_text())
    result["fid"] = result["fid"] * 2
    (evaluated / "eval.json").write_text(json.dumps(result))
    assert soak.compare_run(work / "ref", evaluated)["metrics"] == ["eval.json differs"]


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tamper(run: Path, to: Path) -> Path:
    """A copy of a run folder to change one thing in."""
    shutil.copytree(run, to)
    return to
