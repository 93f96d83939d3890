"""Recipes by name: every file of configs/ ships (src/genlab/configs points at it) and resolves by name, alias and
``configs/...`` path from any folder; a name genlab does not ship is one error that lists the names."""
from __future__ import annotations

from pathlib import Path

import pytest

from genlab import recipe_files
from genlab.errors import ConfigError
from genlab.recipe import load_config
from genlab.sweeps.grid import load_sweep

REPO = Path(__file__).resolve().parents[1]


def test_every_config_file_ships_under_its_name():
    on_disk = sorted(p.relative_to(REPO / "configs").with_suffix("").as_posix()
                     for p in (REPO / "configs").rglob("*.yaml"))
    assert len(on_disk) > 20 and "sweeps/mnist_latent_hidden" in on_disk
    assert sorted(r.name for r in recipe_files.shipped()) == on_disk
    # the package's folder is the repository's configs/ (one place to add a recipe), not a copy
    assert recipe_files.SHIPPED.resolve() == (REPO / "configs").resolve()
    assert {r.kind for r in recipe_files.shipped()} >= {"recipe", "sweeps"}


def test_names_aliases_and_configs_paths_resolve_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    demo = REPO / "configs" / "demo_fashion_mnist_dcgan.yaml"
    assert not (tmp_path / "configs").exists()
    for arg in ("demo", "demo_fashion_mnist_dcgan", "demo_fashion_mnist_dcgan.yaml",
                "configs/demo_fashion_mnist_dcgan.yaml"):
        assert recipe_files.locate(arg).resolve() == demo.resolve(), arg
    cfg = load_config("demo", ["train.max_steps=5"])
    assert cfg.name == "demo-fashion-mnist-dcgan" and cfg.train.max_steps == 5
    # a shipped sweep by name, and its `base: configs/...` found inside the package
    sweep = load_sweep("sweeps/mnist_latent_hidden")
    assert sweep.base == (REPO / "configs" / "mnist_mlp_gan_sweep_base.yaml").resolve()
    assert load_sweep("configs/sweeps/mnist_latent_hidden.yaml").base == sweep.base


def test_a_local_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text("name: mine\ndata: {name: mnist}\nmodel: {name: mlp-gan}\n")
    assert recipe_files.locate("demo") == Path("demo")
    assert load_config("demo").name == "mine"


@pytest.mark.parametrize("arg", ["no_such_recipe", "configs/no_such.yaml", "../configs/demo_fashion_mnist_dcgan",
                                 "/abs/demo_fashion_mnist_dcgan.yaml"])
def test_unknown_names_fail_with_the_list(arg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        recipe_files.locate(arg)
    assert repr(arg) in str(e.value) and "demo_fashion_mnist_dcgan" in str(e.value)
    assert "genlab recipes list" in str(e.value)
