import pytest

from genlab.config import diff, known_keys, load_config, to_dict
from genlab.errors import ConfigError

REQUIRED_KEYS = ["data.name", "data.root", "data.limit", "data.resolution", "data.channels", "model.name",
                 "model.latent_dim", "model.hidden_dim", "train.epochs", "train.batch_size", "train.seed",
                 "log.sample_every", "log.checkpoint_every"]


def test_required_keys_exist():
    keys = known_keys()
    for k in REQUIRED_KEYS:
        assert k in keys


def test_overrides_apply_and_types_convert():
    cfg = load_config("configs/demo_fashion_mnist_dcgan.yaml", ["model.latent_dim=7", "train.g_opt.lr=0.001"])
    assert cfg.model.latent_dim == 7 and cfg.train.g_opt.lr == 0.001


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


def test_every_recipe_loads():
    from pathlib import Path

    recipes = sorted(Path("configs").glob("*.yaml"))
    assert recipes
    for r in recipes:
        cfg = load_config(r)
        d = to_dict(cfg)
        for k in REQUIRED_KEYS:
            sec, key = k.split(".")
            assert key in d[sec]


def test_diff_names_changed_keys():
    a = load_config(None, [])
    b = load_config(None, ["model.latent_dim=5", "train.g_opt.lr=0.1"])
    assert diff(a, b) == ["model.latent_dim", "train.g_opt.lr"]


def test_missing_recipe_is_clear():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("configs/nope.yaml")
