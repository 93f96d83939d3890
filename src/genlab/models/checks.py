"""Config checks that belong to a model family (``ModelSpec.check``): options it cannot honour fail loudly."""
from __future__ import annotations

from typing import Callable

from genlab.config import Config
from genlab.errors import ConfigError


def unsupported(model: str, **defaults) -> Callable[[Config], None]:
    """A check that ``train.<key>`` keeps its default for ``model`` (e.g. ``merged_batch=False``)."""

    def check(cfg: Config) -> None:
        for key, default in defaults.items():
            value = getattr(cfg.train, key)
            if value != default:
                raise ConfigError(f"train.{key}={value!r} is not supported by model {model}; leave it at {default!r}")

    return check


def all_of(*checks: Callable[[Config], None]) -> Callable[[Config], None]:
    def check(cfg: Config) -> None:
        for c in checks:
            c(cfg)

    return check
