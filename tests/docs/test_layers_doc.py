"""docs/architecture.md's layer list is the import-linter contract of pyproject.toml, line for line."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def documented_layers(text: str) -> list[str]:
    section = text.split("## Layers (enforced)", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None, "docs/architecture.md: no code block under '## Layers (enforced)'"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_documented_layers_are_the_enforced_ones():
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contract if c["type"] == "layers")["layers"]
    assert documented_layers((ROOT / "docs" / "architecture.md").read_text()) == [x.strip() for x in layers]


def test_a_layer_missing_from_the_doc_is_found():
    doc = (ROOT / "docs" / "architecture.md").read_text().replace("genlab.training\n", "", 1)
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    assert documented_layers(doc) != contract
