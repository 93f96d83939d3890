import dataclasses
from pathlib import Path

import pytest
import yaml

from genlab.config import (
    DataConfig,
    EvalConfig,
    LogConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    diff,
    known_keys,
    to_dict,
)
from genlab.errors import ConfigError
from genlab.recipe import load_config  # with the cross-registry checks

REQUIRED_KEYS = ["data.name", "data.root", "data.limit", "data.resolution", "data.channels", "model.name",
                 "model.latent_dim", "model.hidden_dim", "train.epochs", "train.batch_size", "train.seed",
                 "log.sample_every", "log.checkpoint_every"]


def test_required_keys_exist_and_defaults_are_the_documented_ones():
    keys = known_keys()
    for k in REQUIRED_KEYS:
        assert k in keys
    # with no recipe and no override, every value is the default written in the dataclass declaration
    loaded = to_dict(load_config(None, []))
    sections = (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig), ("log", LogConfig),
                ("eval", EvalConfig), ("train.g_opt", OptimConfig), ("train.d_opt", OptimConfig))
    for section, cls in sections:
        values = loaded
        for part in section.split("."):
            values = values[part]
        assert values == dataclasses.asdict(cls()), section
        for f in dataclasses.fields(cls):  # and each value has its declared type (bool is not an int here)
            if values[f.name] == []:  # an empty list (model.attention) has no element type to check
                assert f.type.startswith("list["), f"{section}.{f.name}"
            elif not dataclasses.is_dataclass(values[f.name]) and not isinstance(values[f.name], dict):
                assert _type_name(values[f.name]) in f.type.replace(" ", "").split("|"), f"{section}.{f.name}"
    assert loaded["name"] == "" and loaded["description"] == ""


def _type_name(v) -> str:
    return "None" if v is None else f"list[{type(v[0]).__name__}]" if isinstance(v, list) else type(v).__name__


def test_overrides_apply_and_types_convert():
    recipe = "configs/demo_fashion_mnist_dcgan.yaml"
    raw = yaml.safe_load(open(recipe))
    plain = load_config(recipe, [])
    # the recipe's value wins over the dataclass default ...
    assert plain.model.latent_dim == raw["model"]["latent_dim"] == 128 != ModelConfig().latent_dim
    assert plain.train.max_steps == raw["train"]["max_steps"] and plain.train.epochs == raw["train"]["epochs"]
    assert plain.data.limit is None and "limit" not in raw["data"]  # ... and the dataclass default fills the rest
    # ... and an override wins over the recipe, changing only its own key, converted to the declared type
    cfg = load_config(recipe, ["model.latent_dim=7", "train.g_opt.lr=0.001", "train.d_opt.lr=1",
                               "log.tensorboard=false", "data.limit=500", "train.g_opt.betas=[0.1,0.2]"])
    assert cfg.model.latent_dim == 7 and type(cfg.model.latent_dim) is int
    assert cfg.train.g_opt.lr == 0.001 and cfg.train.d_opt.lr == 1.0 and type(cfg.train.d_opt.lr) is float
    assert cfg.log.tensorboard is False and cfg.data.limit == 500
    assert list(cfg.train.g_opt.betas) == [0.1, 0.2] and list(cfg.train.d_opt.betas) == raw["train"]["d_opt"]["betas"]
    changed = {"model.latent_dim", "train.g_opt.lr", "train.d_opt.lr", "log.tensorboard", "data.limit",
               "train.g_opt.betas"}
    assert set(diff(plain, cfg)) == changed
    # overrides apply in order: the last one wins
    assert load_config(recipe, ["model.latent_dim=3", "model.latent_dim=5"]).model.latent_dim == 5


@pytest.mark.parametrize("override, words", [
    ("model.latnet_dim=3", ["model.latnet_dim", "unknown"]),
    ("model.latent_dim=abc", ["model.latent_dim", "abc"]),
    ("model.latent_dim=0", ["model.latent_dim=0", "positive"]),
    ("data.resolution=48", ["data.resolution=48", "28, 32, 64, 128"]),
    ("data.channels=2", ["data.channels=2", "1 (grayscale) or 3"]),
    ("train.loss=foo", ["train.loss='foo'", "bce"]),
    ("model.name=nope", ["model.name='nope'", "dcgan"]),
    ("nokey", ["key=value"]),
])
def test_bad_values_fail_with_one_line_naming_key(override, words):
    with pytest.raises(ConfigError) as e:
        load_config("configs/demo_fashion_mnist_dcgan.yaml", [override])
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_every_recipe_loads_with_its_own_values():
    recipes = sorted(Path("configs").glob("*.yaml"))
    assert len(recipes) >= 10
    defaults = _leaves(to_dict(load_config(None, [])))
    for r in recipes:
        loaded = _leaves(to_dict(load_config(r)))
        written = _leaves(yaml.safe_load(r.read_text()))
        for k in REQUIRED_KEYS:
            assert k in loaded, f"{r.name}: {k}"
        for k, v in written.items():  # every value written in the recipe is the value loaded, same type
            assert k in loaded, f"{r.name}: {k} was dropped"
            assert loaded[k] == v and type(loaded[k]) is type(v), f"{r.name}: {k}={loaded[k]!r}, recipe says {v!r}"
        for k, v in loaded.items():  # and every other value is the default
            if k not in written and not k.startswith("objective."):
                assert v == defaults[k], f"{r.name}: {k}={v!r} is neither the recipe's nor the default"


def test_diff_names_changed_keys():
    a = load_config(None, [])
    b = load_config(None, ["model.latent_dim=5", "train.g_opt.lr=0.1"])
    assert diff(a, b) == ["model.latent_dim", "train.g_opt.lr"]


def test_missing_recipe_is_clear():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("configs/nope.yaml")


#: the GAN objectives' options for small datasets (LeCam, adaptive augmentation), added after 0.1.0: off
GAN_SMALL_DATA_DEFAULTS = {"lecam": 0.0, "lecam_decay": 0.99, "ada_target": 0.0, "ada_interval": 4,
                           "ada_images": 100_000}


def test_objective_options_follow_the_models_objective():
    cfg = load_config(None, ["model.name=wgan-gp", "train.loss=wasserstein", "objective.n_critic=5"])
    assert cfg.objective == {"real_label": 1.0, "n_critic": 5, "merged_batch": False, "grad_penalty": 10.0,
                             **GAN_SMALL_DATA_DEFAULTS}
    assert load_config(None, ["model.name=vae"]).objective == {"beta": 1.0, "recon_loss": "bce"}
    with pytest.raises(ConfigError, match=r"objective.grad_penalty=1 is not an option of model dcgan"):
        load_config(None, ["objective.grad_penalty=1"])
    with pytest.raises(ConfigError, match=r"objective.recon_loss='l1' is not allowed: bce or mse"):
        load_config(None, ["model.name=vae", "objective.recon_loss=l1"])


def test_train_objective_keys_still_load_with_one_deprecation_warning(tmp_path):
    from genlab.config import ConfigDeprecationWarning
    from genlab.recipe import from_dict

    recipe = tmp_path / "old.yaml"
    recipe.write_text("model: {name: wgan}\ntrain: {loss: wasserstein, n_critic: 5, clip_value: 0.02}\n")
    with pytest.warns(ConfigDeprecationWarning) as caught:
        cfg = load_config(recipe, ["train.n_critic=3"])
    assert len(caught) == 1 and "train.clip_value, train.n_critic" in str(caught[0].message)
    assert cfg.objective["n_critic"] == 3 and cfg.objective["clip_value"] == 0.02
    saved = to_dict(load_config(None, []))
    saved["train"].update(n_critic=1, beta=1.0, real_label=0.9)  # a 0.1.0 config.yaml names every option
    del saved["objective"]
    with pytest.warns(ConfigDeprecationWarning):
        old = from_dict(saved)
    assert old.objective == {"real_label": 0.9, "n_critic": 1, "merged_batch": False, **GAN_SMALL_DATA_DEFAULTS}


def test_resume_refusal_names_the_moved_key(tmp_path):
    from genlab.resume import resume_config
    from genlab.rundir import RunDir

    run = RunDir.of(tmp_path / "run")
    saved = to_dict(load_config(None, []))
    saved["train"]["n_critic"] = 2
    del saved["objective"]
    run.path.mkdir(parents=True)
    run.write_config(yaml.safe_dump(saved))
    with pytest.warns(FutureWarning):
        assert resume_config(run, ["train.epochs=20"]).objective["n_critic"] == 2
        with pytest.raises(ConfigError, match=r"changed in objective.n_critic"):
            resume_config(run, ["train.n_critic=3"])


def test_short_keys_tell_every_key_apart():
    from genlab.config import short_keys

    keys = ["train.g_opt.lr", "train.d_opt.lr", "train.g_opt.betas.0", "train.d_opt.betas.0", "model.hidden_dim",
            "train.batch_size"]
    assert short_keys(keys) == {"train.g_opt.lr": "g_opt.lr", "train.d_opt.lr": "d_opt.lr",
                                "train.g_opt.betas.0": "g_opt.betas.0", "train.d_opt.betas.0": "d_opt.betas.0",
                                "model.hidden_dim": "hidden_dim", "train.batch_size": "batch_size"}
    assert short_keys(["model.latent_dim", "seed"]) == {"model.latent_dim": "latent_dim", "seed": "seed"}
    assert short_keys(["a.x", "b.a.x"]) == {"a.x": "a.x", "b.a.x": "b.a.x"}
