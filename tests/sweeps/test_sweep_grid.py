"""Sweep files: validation with clear errors, cells and run folders, per-cell config validation up front."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genlab.errors import ConfigError
from genlab.sweeps.grid import format_value, load_sweep, parse_sweep, validate_plan
from genlab.sweeps.runner import plan_actions, run_sweep


@pytest.fixture
def recipe(tmp_path, tiny_fmnist) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({
        "name": "tiny", "data": {"name": "fashion-mnist", "root": str(tiny_fmnist), "verify": False, "resolution": 28,
                                      "limit": 64},
        "model": {"name": "dcgan", "latent_dim": 8, "hidden_dim": 8},
        "train": {"epochs": 1, "batch_size": 32, "channels_last": "false"},
        "log": {"every_steps": 1, "tensorboard": False}}))
    return p


def sweep_dict(recipe: Path, **kw) -> dict:
    return {"base": str(recipe), "overrides": {"train.epochs": 2},
            "grid": {"model.latent_dim": [16, 100], "model.hidden_dim": [16, 100]}, "seeds": 5, **kw}


def test_cells_and_run_folders(recipe, tmp_path):
    s = parse_sweep(sweep_dict(recipe))
    cells = s.cells()
    assert [c.name for c in cells] == ["latent_dim=16,hidden_dim=16", "latent_dim=16,hidden_dim=100",
                                       "latent_dim=100,hidden_dim=16", "latent_dim=100,hidden_dim=100"]
    runs = s.plan(tmp_path / "out")
    assert len(runs) == 20 and s.seeds == [0, 1, 2, 3, 4]
    r = runs[1 * 5 + 2]
    assert r.path == (tmp_path / "out" / "latent_dim=16,hidden_dim=100" / "seed=2").absolute()
    assert r.overrides == ("train.epochs=2", "log.progress=false", "model.latent_dim=16", "model.hidden_dim=100",
                           "train.seed=2")


def test_nested_overrides_lists_and_colliding_names(recipe):
    s = parse_sweep({"base": str(recipe), "overrides": {"train": {"g_opt": {"betas": [0.5, 0.9]}}},
                     "grid": {"train.g_opt.lr": [1e-4], "train.d_opt.lr": [2e-4, 4e-4]}, "seeds": [2022, 2024]})
    assert s.overrides == {"train.g_opt.betas": [0.5, 0.9]} and s.seeds == [2022, 2024]
    assert [c.name for c in s.cells()] == ["train.g_opt.lr=0.0001,train.d_opt.lr=0.0002",
                                           "train.g_opt.lr=0.0001,train.d_opt.lr=0.0004"]
    assert format_value([0.5, 0.9]) == "[0.5,0.9]" and format_value(None) == "null" and format_value(True) == "true"
    cfgs = validate_plan(s, s.plan("/tmp/x"))
    assert cfgs["train.g_opt.lr=0.0001,train.d_opt.lr=0.0004/seed=2024"].train.d_opt.lr == 4e-4
    assert cfgs["train.g_opt.lr=0.0001,train.d_opt.lr=0.0004/seed=2024"].train.g_opt.betas == [0.5, 0.9]
    assert cfgs["train.g_opt.lr=0.0001,train.d_opt.lr=0.0004/seed=2024"].train.seed == 2024


def test_run_folder_names_are_injective(recipe):
    """Values that read the same in a folder name ("a b", "a/b", "a-b") get distinct folders; names that spell
    themselves stay as they are, and long names are cut with a hash."""
    s = parse_sweep({"base": str(recipe), "grid": {"name": ["a b", "a/b", "a-b", "..", [16, 32]]}})
    names = [c.name for c in s.cells()]
    assert len(set(names)) == 5 and names[2] == "name=a-b"
    assert all("/" not in n and n not in (".", "..") for n in names) and names[0].startswith("name=a-b~")
    assert [c.name for c in s.cells()] == names  # a pure function of the values: a re-run finds its folders
    long = parse_sweep({"base": str(recipe), "grid": {"name": ["x" * 300, "x" * 299 + "y"]}})
    assert [len(c.name) for c in long.cells()] == [160, 160] and len({c.name for c in long.cells()}) == 2


@pytest.mark.parametrize("change, message", [
    ({"grd": {}}, "unknown key 'grd'"),
    ({"base": None}, "'base' is required"),
    ({"base": "nope.yaml"}, "does not exist"),
    ({"grid": {"model.latent_dims": [1]}}, "grid key 'model.latent_dims' is not a config key"),
    ({"grid": {"latent_dim": [1]}}, "did you mean model.latent_dim"),
    ({"overrides": {"train.epoch": 3}}, "overrides key 'train.epoch' is not a config key"),
    ({"grid": {"model.latent_dim": 16}}, "grid.model.latent_dim must be a non-empty list"),
    ({"grid": {"model.latent_dim": [16, 16]}}, "repeats a value"),
    ({"grid": {"train.seed": [1, 2]}}, "'train.seed' is set by 'seeds'"),
    ({"overrides": {"model.latent_dim": 4}}, "both in overrides and in grid"),
    ({"seeds": 0}, "at least one seed"),
    ({"seeds": [1, 1]}, "distinct non-negative integers"),
    ({"seeds": "five"}, "a count or a list"),
])
def test_sweep_file_errors_name_the_problem(recipe, change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_sweep(sweep_dict(recipe, **change))


def test_load_sweep_resolves_the_recipe_next_to_the_file(recipe, tmp_path, monkeypatch):
    f = tmp_path / "s.yaml"
    f.write_text("base: tiny.yaml\ngrid: {model.latent_dim: [4]}\n")
    monkeypatch.chdir("/")
    s = load_sweep(f)
    assert s.base == recipe.resolve() and s.name == "s" and s.seeds == [0]
    f.write_text("base: tiny.yaml\ngrid: [oops\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sweep(f)


def test_bad_cell_fails_before_anything_runs(recipe, tmp_path):
    s = parse_sweep(sweep_dict(recipe, grid={"model.latent_dim": [8, 0]}, seeds=1))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"sweep cell latent_dim=0 \(seed 0\): model.latent_dim=0 is not allowed"):
        run_sweep(s, out, log=lambda *_: None)
    assert not out.exists()


def test_objective_options_are_swept_and_checked_against_the_model(recipe, tmp_path):
    """objective.* keys depend on the model (a flow model's steps, a GAN's n_critic): checked when the plan is built."""
    s = parse_sweep(sweep_dict(recipe, grid={"objective.n_critic": [1, 2]}, seeds=1))
    configs = validate_plan(s, s.plan(tmp_path / "out"))
    assert sorted(c.objective["n_critic"] for c in configs.values()) == [1, 2]
    flow = parse_sweep(sweep_dict(recipe, overrides={"model.name": "flow-unet"}, grid={"objective.steps": [2, 10]},
                                  seeds=1))
    assert sorted(c.objective["steps"] for c in validate_plan(flow, flow.plan(tmp_path / "f")).values()) == [2, 10]
    bad = parse_sweep(sweep_dict(recipe, grid={"objective.steps": [2, 10]}, seeds=1))
    with pytest.raises(ConfigError, match=r"sweep cell steps=2 \(seed 0\): objective.steps=2 is not an option of "
                                          "model dcgan"):
        validate_plan(bad, bad.plan(tmp_path / "b"))


def test_existing_run_with_another_config_is_refused(recipe, tmp_path):
    s = parse_sweep(sweep_dict(recipe, grid={"model.latent_dim": [8]}, seeds=1))
    out = tmp_path / "out"
    run = out / "latent_dim=8" / "seed=0"
    run.mkdir(parents=True)
    from genlab.config import to_yaml
    from genlab.recipe import load_config

    (run / "config.yaml").write_text(to_yaml(load_config(recipe, ["model.hidden_dim=32", "train.seed=0"])))
    with pytest.raises(ConfigError, match="model.hidden_dim"):
        plan_actions(s, out)


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    import sys

    from genlab.errors import GenlabError
    from genlab.sweeps import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    ex = make_executor("ray", workers=1)
    with pytest.raises(GenlabError, match=r'pip install -e "\.\[ray\]"'):
        ex.run([])
    with pytest.raises(ConfigError, match="unknown executor 'slurm'"):
        make_executor("slurm")


def test_shipped_sweep_files_are_valid():
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "configs" / "sweeps").glob("*.yaml"))
    assert files, "configs/sweeps/ has no example sweep"
    for f in files:
        s = load_sweep(f)
        runs = s.plan("/tmp/never-created")
        configs = validate_plan(s, runs)
        assert len(configs) == len(runs) == len(s.cells()) * len(s.seeds)
        # the numbers the file's comment promises are measured in every run, when its training ends
        comment = " ".join(line for line in f.read_text().splitlines() if line.startswith("#"))
        promised = {key for word, key in (("FID", "fid"), ("KID", "kid"), ("precision", "pr")) if word in comment}
        assert promised, f"{f.name}: its comment names no metric the sweep measures"
        for cfg in configs.values():
            assert (cfg.eval.at_end or cfg.eval.every > 0) and promised <= set(cfg.eval.metrics), (f.name, cfg.eval)
