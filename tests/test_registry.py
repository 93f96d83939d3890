"""genlab.registry: checked names, sorted listing, one-line errors that list the choices."""
from __future__ import annotations

import re

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


def names(text: str) -> list[str]:
    return [n.strip() for n in re.split(r"[,|]", text) if n.strip()]


def cli_help(*command: str) -> str:
    """``genlab COMMAND --help`` as the CLI renders it, one wide line per row (in this process: the executable's
    own --help is run by tests/training/test_outputs.py)."""
    from typer.testing import CliRunner

    from genlab.cli import app

    r = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "2000", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    return r.output


def test_the_real_registries_are_the_cli_choices():
    """What the CLI offers in its --help is each registry's names, exactly: the dataset choices of
    `genlab datasets prepare`, the model, dataset and loss lists of `genlab train`, the executors of `sweep`."""
    from genlab.data import DATASETS
    from genlab.models import MODELS
    from genlab.objectives import LOSSES
    from genlab.sweeps.runner import EXECUTORS

    # the real registries are filled (the comparisons below would hold for empty lists too)
    assert {"dcgan", "wgan-gp", "acgan", "vae", "vae-gan"} <= set(MODELS.names())
    assert {"fashion-mnist", "cifar10", "flowers102", "image-folder"} <= set(DATASETS.names())
    assert {"bce", "hinge", "wasserstein"} <= set(LOSSES.names())
    assert EXECUTORS.names() == ["local", "ray"]
    prepare = re.search(r"\bname\s+<([^>]*)>", cli_help("datasets", "prepare"))
    assert prepare, "no choices for NAME in `genlab datasets prepare --help`"
    assert names(prepare.group(1)) == DATASETS.names()
    listed = re.search(r"Choices: models: (.*); datasets: (.*); losses: (.*?)\s*$", cli_help("train"), re.M)
    assert listed, "no choices in `genlab train --help`"
    assert [names(g) for g in listed.groups()] == [MODELS.names(), DATASETS.names(), LOSSES.names()]
    sweep = cli_help("sweep")
    executors = [re.search(r"Executors: ([^.]*)\.", sweep), re.search(r"where runs execute: ([^\[]*)\[", sweep)]
    assert all(executors), sweep
    assert [names(m.group(1)) for m in executors] == [EXECUTORS.names()] * 2
