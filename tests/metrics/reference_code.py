"""The reference packages' own code, read from their published wheels.

clean-fid and pytorch-fid both declare torchvision as a dependency, which cannot be used here (and genlab must not
need), so they are not installed: ``make dev`` downloads their wheels, pinned by hash in
``requirements/reference.txt``, into ``.venv/reference/``. A test reads the package's module source from its
wheel and runs it: a whole module when its imports are available (clean-fid's ``resize.py`` imports only
numpy, torch and Pillow), else only the named functions (pytorch-fid's ``fid_score.py`` imports torchvision
at its top), executed in a namespace that gives them what they use. It is still the package's code, byte for
byte.
"""
from __future__ import annotations

import ast
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

REFERENCE_DIR = Path(sys.prefix) / "reference"


def wheel(package: str) -> Path:
    """The downloaded wheel of ``package`` (e.g. ``clean_fid``), or a failure that says how to get it."""
    found = sorted(REFERENCE_DIR.glob(f"{package}-*.whl"))
    if not found:
        pytest.fail(f"no {package} wheel in {REFERENCE_DIR}: run `make dev` (it downloads requirements/reference.txt)")
    return found[-1]


def source(package: str, path: str) -> str:
    with zipfile.ZipFile(wheel(package)) as z:
        return z.read(path).decode()


def module(package: str, path: str) -> types.ModuleType:
    """A module of the package, executed from the wheel's source."""
    mod = types.ModuleType(f"reference_{package}_{Path(path).stem}")
    exec(compile(source(package, path), f"{package}/{path}", "exec"), mod.__dict__)
    return mod


def functions(package: str, path: str, names: tuple[str, ...], namespace: dict[str, Any]) -> dict[str, Any]:
    """The functions ``names`` of a module of the package, defined in ``namespace`` (what their bodies use)."""
    tree = ast.parse(source(package, path))
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    missing = set(names) - {d.name for d in defs}
    assert not missing, f"{package}/{path} has no {sorted(missing)}"
    exec(compile(ast.Module(body=defs, type_ignores=[]), f"{package}/{path}", "exec"), namespace)
    return {n: namespace[n] for n in names}
