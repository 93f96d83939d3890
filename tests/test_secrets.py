"""Recipes are shared files: an OmegaConf resolver that reads the environment or decodes data must never copy a
secret into config.yaml, checkpoints, exports or reports. Tested with a real environment variable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.errors import ConfigError
from genlab.recipe import from_dict, load_config

SECRET = "hunter2-not-for-anyone"
EXE = Path(sys.executable).with_name("genlab")


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("GENLAB_TEST_TOKEN", SECRET)
    return "GENLAB_TEST_TOKEN"


def recipe(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("value", ["${oc.env:GENLAB_TEST_TOKEN}", "run-${oc.env:GENLAB_TEST_TOKEN,x}",
                                   "${oc.select:${oc.env:GENLAB_TEST_TOKEN},y}", "'${oc.decode:\"[1, 2]\"}'",
                                   "'${oc.create:{a: 1}}'", "${my.own.resolver:1}"])
def test_recipes_overrides_and_saved_configs_may_not_call_resolvers(tmp_path, token, value):
    with pytest.raises(ConfigError) as e:
        load_config(recipe(tmp_path, f"name: {value}\n"))
    assert "key 'name' calls the resolver" in str(e.value) and SECRET not in str(e.value)
    with pytest.raises(ConfigError, match="key 'name' calls the resolver"):
        load_config(None, [f"name={value}"])
    with pytest.raises(ConfigError, match="calls the resolver"):
        from_dict({"name": value.strip("'")})


def test_interpolating_another_key_stays_fine_and_an_escaped_one_is_text(tmp_path, token):
    cfg = load_config(recipe(tmp_path, "name: dcgan-${model.latent_dim}\nmodel: {latent_dim: 16}\n"))
    assert cfg.name == "dcgan-16"
    assert load_config(recipe(tmp_path, "name: '\\${oc.env:GENLAB_TEST_TOKEN}'\n")).name == \
        "${oc.env:GENLAB_TEST_TOKEN}"  # literal text: never resolved, never the secret


def test_a_recipe_reading_the_environment_writes_nothing_anywhere(tmp_path, token, tiny_fmnist):
    r = recipe(tmp_path, "name: ${oc.env:GENLAB_TEST_TOKEN}\n")
    run = tmp_path / "runs" / "x"
    proc = subprocess.run([str(EXE), "train", str(r), "--run-dir", str(run), f"data.root={tiny_fmnist}",
                           "data.verify=false", "data.limit=64", "train.epochs=1"], capture_output=True, text=True,
                          env={**os.environ, "GENLAB_TEST_TOKEN": SECRET}, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "calls the resolver 'oc.env'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not run.exists()
    for p in tmp_path.rglob("*"):
        assert not p.is_file() or SECRET.encode() not in p.read_bytes(), p
