"""benchmarks/search_study.py at its smallest: the study's bookkeeping per trial against a real trial (one of two
steps) on the tiny IDX data, then the summary of the search folder a real search left."""
from __future__ import annotations

import importlib.util
import shutil
import warnings
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "search_study.py"


def load_script():
    spec = importlib.util.spec_from_file_location("search_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_overhead_and_summary_at_toy_size(tiny_fmnist, classifier_cache_28, tmp_path, monkeypatch, capsys):
    shutil.copytree(classifier_cache_28, tmp_path / "cache")
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tiny.yaml").write_text(
        f"data: {{name: fashion-mnist, root: {tiny_fmnist}, verify: false, resolution: 28, limit: 64}}\n"
        "model: {name: dcgan, latent_dim: 8, hidden_dim: 8}\n"
        "train: {epochs: 1, batch_size: 32, channels_last: 'false', threads: 1}\n"
        "log: {every_steps: 2, tensorboard: false, num_samples: 16, progress: false}\n"
        "eval: {features: classifier, num_samples: 32}\n")
    search = tmp_path / "s.yaml"
    search.write_text(f"base: {tmp_path / 'tiny.yaml'}\nspace: {{train.g_opt.lr: {{low: 1.0e-4, high: 1.0e-3, "
                      "log: true}}\nbudget: {minutes: 2}\ntrials: 1\npruner: none\n")
    mod = load_script()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic IDX files do not match the published checksums
        res = mod.main(["overhead", "--search", str(search), "--trials", "2", "--repeats", "1", "--real-steps", "2",
                        "--out", str(tmp_path / "o.json")])
    assert len(res["sqlite"]["ms_per_trial"]) == 1 and res["sqlite"]["mean"] > 0
    assert res["baseline"]["steps"] == 2 and res["baseline"]["seconds"] > 0
    assert res["sqlite"]["share_of_budget_trial"] == pytest.approx(res["sqlite"]["mean"] / 1000 / 120)
    out = capsys.readouterr().out
    assert "ms of study bookkeeping per trial (2 stub trials x 1 repeats, 4 reports each)" in out
    assert "of a 2-step trial" in out and "of a 2-minute trial" in out and (tmp_path / "o.json").is_file()
    # summarize: a real (one-trial) search folder
    import genlab

    folder = tmp_path / "searched"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        genlab.search(search, out=folder, log=lambda *_: None)
    s = mod.main(["summarize", str(folder)])
    assert s["states"] == {"COMPLETE": 1} and s["minutes_without_pruning"] == 2 and s["workers"] == 1
    out = capsys.readouterr().out
    assert "1 finished trials (1 complete, 0 pruned, 0 failed) on 1 worker(s)" in out
    assert f"--arm '{folder / 'best.yaml'} data.limit=null eval.every=0'" in out
