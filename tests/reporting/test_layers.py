"""Package layering: sweeps -> reporting -> analysis (-> metrics, sampling, data), never back, and no
function-local genlab import to hide a cycle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import genlab

SRC = Path(genlab.__file__).parent
#: package -> the packages it must not import
FORBIDDEN = {"analysis": ("genlab.reporting", "genlab.sweeps"), "reporting": ("genlab.sweeps",), "sweeps": ()}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import of a source file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
    return out


FILES = [p for pkg in FORBIDDEN for p in sorted((SRC / pkg).glob("*.py"))]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_layering(path: Path):
    pkg = path.parent.name
    for module, top_level in imports(path):
        assert not module.startswith(FORBIDDEN[pkg]), f"{pkg}/{path.name} imports {module}"
        assert top_level or not module.startswith("genlab"), f"{pkg}/{path.name}: function-local import of {module}"


FRESH_IMPORT = """
import importlib, sys
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "genlab" or m.startswith("genlab.")]:
        del sys.modules[m]  # third-party modules stay loaded, so each import is quick
    importlib.import_module(name)
"""


def test_each_module_imports_first():
    """Every module imports as the first genlab module of a process (an import cycle fails one of them)."""
    names = ["genlab." + p.parent.name + ("" if p.stem == "__init__" else f".{p.stem}") for p in FILES]
    res = subprocess.run([sys.executable, "-c", FRESH_IMPORT, *names], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
