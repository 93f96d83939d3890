"""The trackers' registry and callback: which trackers a config chooses, unknown names, a package that is not
installed (the real `genlab` with the import made to fail as for a missing package), and imports kept lazy."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genlab.errors import ConfigError
from genlab.recipe import load_config
from genlab.trackers import TRACKERS, Trackers, chosen_trackers
from genlab.trackers.callback import numbers

from .conftest import base_overrides

EXE = Path(sys.executable).with_name("genlab")
#: a sitecustomize that makes importing the named packages fail as for a package that is not installed, and
#: writes each attempt to $BLOCKED_LOG
BLOCKER = '''
import importlib.abc, os, sys

BLOCKED = set(os.environ["BLOCKED"].split(","))


class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            with open(os.environ["BLOCKED_LOG"], "a") as f:
                f.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Missing())
'''


def test_the_registry_names_the_trackers_and_refuses_others():
    assert TRACKERS.names() == ["mlflow", "tensorboard", "wandb"]
    with pytest.raises(ConfigError, match="unknown tracker 'neptune'; choose one of: mlflow, tensorboard, wandb"):
        Trackers(["tensorboard", "neptune"])
    assert [t.name for t in Trackers(["mlflow", "wandb"]).trackers] == ["mlflow", "wandb"]  # both installed here


def test_the_config_chooses_the_trackers():
    assert chosen_trackers(load_config(None, [])) == ["tensorboard"]
    cfg = load_config(None, ["log.trackers=[mlflow,tensorboard,mlflow]"])
    assert chosen_trackers(cfg) == ["mlflow", "tensorboard"]
    no_tb = load_config(None, ["log.trackers=[tensorboard,wandb]", "log.tensorboard=false"])
    assert chosen_trackers(no_tb) == ["wandb"]
    with pytest.raises(ConfigError, match="log.experiment"):
        load_config(None, ["log.experiment=' '"])


def test_a_record_gives_its_finite_numbers():
    record = {"step": 3, "epoch": 1, "loss_G": 0.5, "D(x)": 1, "kind": "eval", "protocol": {"a": 1},
              "bad": float("nan"), "flag": True}
    assert numbers(record) == {"loss_G": 0.5, "D(x)": 1.0}


def test_a_missing_package_is_one_line_naming_the_extra(tiny_fmnist, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    log = tmp_path / "attempts.txt"
    env = {"PYTHONPATH": str(site), "BLOCKED": "mlflow,wandb", "BLOCKED_LOG": str(log)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # the block works: for Python, mlflow is not installed
    r = subprocess.run([sys.executable, "-c", "import mlflow"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "ModuleNotFoundError: No module named 'mlflow'" in r.stderr
    log.unlink()
    # `genlab --help` never imports a tracker's package
    r = subprocess.run([str(EXE), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout, r.stderr
    assert not log.exists()
    run_dir = tmp_path / "runs" / "r"
    r = subprocess.run([str(EXE), "train", *base_overrides(tiny_fmnist), "log.trackers=[tensorboard,mlflow,wandb]",
                        "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=300)
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, (r.returncode, err)
    assert err == ("error: log.trackers lists mlflow, but the mlflow package is not installed; install it with: "
                   "pip install 'genlab[mlflow]'")
    assert not run_dir.exists() and not (tmp_path / "runs").exists()  # refused before anything was written
    assert log.read_text().split() == ["mlflow"]


def test_the_wandb_extra_is_named_too(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # Python's own "not installed" for this import
    with pytest.raises(ConfigError) as e:
        Trackers(["wandb"])
    assert str(e.value) == ("log.trackers lists wandb, but the wandb package is not installed; install it with: "
                            "pip install 'genlab[wandb]'")
