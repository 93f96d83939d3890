"""genlab.registry: checked names, sorted listing, one-line errors that list the choices."""
from __future__ import annotations

import pytest

from genlab.errors import ConfigError
from genlab.registry import Registry


def test_register_get_and_list_sorted():
    r: Registry[int] = Registry("widget")
    r.add("b", 2)

    @r.register("a")
    def a():
        return 1

    assert r.get("b") == 2 and r.get("a") is a
    assert r.names() == ["a", "b"] and [k for k, _ in r.items()] == ["a", "b"]
    assert "a" in r and "c" not in r and len(r) == 2


def test_unknown_name_is_a_config_error_listing_the_choices():
    r: Registry[int] = Registry("widget")
    r.add("beta", 1)
    r.add("alpha", 2)
    with pytest.raises(ConfigError, match=r"^unknown widget 'gamma'; choose one of: alpha, beta$"):
        r.get("gamma")


def test_a_name_registered_twice_is_refused():
    r: Registry[int] = Registry("widget")
    r.add("x", 1)
    with pytest.raises(ValueError, match="registered twice"):
        r.add("x", 2)
    assert r.get("x") == 1


def test_the_real_registries_are_the_cli_choices():
    from genlab.data import DATASETS
    from genlab.models import MODELS
    from genlab.objectives import LOSSES

    assert {"dcgan", "wgan-gp", "acgan", "vae", "vae-gan"} <= set(MODELS.names())
    assert {"fashion-mnist", "cifar10", "flowers102", "image-folder"} <= set(DATASETS.names())
    assert {"bce", "hinge", "wasserstein"} <= set(LOSSES.names())
