"""EvalRequest: one frozen object per evaluation, checked once when it is built, defaults in one place."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from genlab.errors import ConfigError, GenlabError
from genlab.evaluation import EvalRequest
from genlab.metrics import EvalOptions
from genlab.metrics.protocols import BATCH_SIZE
from genlab.sampling import Truncation

SRC = Path(__file__).resolve().parents[1] / "src" / "genlab"


def test_arguments_people_type_become_checked_fields():
    r = EvalRequest.of("fid, kid,fid", 64, truncation=0.7, truncation_mode="interp", protocol="paper",
                       inception_weights="w.pth", steps=3, solver="heun", guidance=2.0)
    assert r.metrics == ("fid", "kid")  # a string, stripped and de-duplicated
    assert r.truncation == Truncation(0.7, "interp")
    assert r.options.protocol == "paper" and r.weights == "w.pth"
    assert r.sampling == {"steps": 3, "solver": "heun", "guidance": 2.0}
    assert r.settings.num_samples == 64 and r.settings.split == "train"  # the paper protocol's split
    assert EvalRequest().batch_size == BATCH_SIZE and EvalRequest().settings.num_samples == 10_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, message", [
    ({"num_samples": 0}, "--num-samples 0 (num_samples) is not allowed"),
    ({"batch_size": 0}, "--batch-size 0 (batch_size) is not allowed"),
    ({"metrics": "fid,nope"}, "nope"),
    ({"metrics": ""}, "no metric chosen"),
    ({"steps": 0}, "--steps 0 (steps) is not allowed"),
    ({"solver": "rk99"}, "rk99"),
    ({"guidance": -1.0}, "--guidance -1.0 (guidance) is not allowed"),
    ({"truncation": -0.5}, "psi"),
    ({"protocol": "nope"}, "nope"),
    ({"options": EvalOptions(resize="sinc")}, "--resize sinc (resize) is not allowed"),
    ({"protocol": "genlab", "reference_stats": "/nonexistent/stats.npz"}, "no such file"),
    ({"out": "result.txt"}, ".json"),
])
def test_a_bad_request_is_one_line_when_it_is_built(kwargs, message):
    with pytest.raises(GenlabError, match=re.escape(message)) as e:
        EvalRequest.of(**kwargs)
    assert "\n" not in str(e.value)


def test_a_request_copied_with_a_bad_value_is_checked_again():
    with pytest.raises(ConfigError, match="--num-samples -3"):
        dataclasses.replace(EvalRequest(), num_samples=-3)


def test_the_evaluation_batch_size_is_declared_once():
    """``250`` images per batch is ``metrics.protocols.BATCH_SIZE``; no function repeats the literal."""
    repeated = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
                for i, line in enumerate(p.read_text().splitlines(), 1)
                if re.search(r"batch_size\s*(:\s*int\s*)?=\s*250\b|Option\(250\b", line)]
    assert repeated == []
